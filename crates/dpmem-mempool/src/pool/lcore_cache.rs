//! [`LcoreCache`]: a thread's hold on its lcore cache of one pool, for tight loops.
//!
//! [`Mempool::get_bulk`] and [`Mempool::put_bulk`] find the calling thread's cache on every
//! call and read its length from shared memory, where other threads may be counting it; the
//! compiler must reload that length after every call. DPDK's C loops avoid both: they look the
//! cache up once (`rte_mempool_default_cache`) and the compiler keeps the length in a
//! register. A handle does the same in Rust. It keeps the cache's length in itself and writes
//! it back after every call (so [`Mempool::avail_count`] stays exact); its gets and puts never
//! read it back (a flush empties the cache through the shared path, which does).
//!
//! That is only right while nothing else changes the cache, so the handle marks it held
//! (`held` in the shared cache state) and every other path sees the mark and leaves the
//! cache alone: this thread's plain gets and puts and a thread given the same lcore id after
//! this one unregistered go to the handler instead, and [`Mempool::flush_lcore_cache`] does
//! nothing.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::cache::{self, CacheState};
use crate::error::MempoolError;
use crate::handler::Store;
use crate::pool::data_path::{as_words, as_words_mut};
use crate::pool::Mempool;
use crate::sync::Ordering;

impl<'eal> Mempool<'eal> {
    /// The calling thread's cache as a handle (`rte_mempool_default_cache`), for loops that
    /// get and put many times: the handle finds the cache once and keeps its length in a
    /// register, where [`get_bulk`](Self::get_bulk) and [`put_bulk`](Self::put_bulk) look both
    /// up on every call. Without a cache (a pool made with cache size 0, or a thread with no
    /// lcore id) the handle's gets and puts go to the handler, as those calls do.
    ///
    /// While the handle lives, this thread's plain gets and puts skip the cache (going to the
    /// handler), so the two never disagree about what it holds. `EBUSY`
    /// ([`MempoolError::CacheBusy`]) when another handle holds the cache.
    ///
    /// Without a cache the handle reaches the handler through a call, so that loops over a
    /// handle with a cache hold the cache's few instructions only: a pool made without caches
    /// is better served by [`generic_get`](Self::generic_get) and
    /// [`generic_put`](Self::generic_put) with no cache (as DPDK code passes a null cache),
    /// which inline the handler.
    #[inline]
    pub fn lcore_cache(&self) -> Result<LcoreCache<'_, 'eal>, MempoolError> {
        LcoreCache::new(self)
    }
}

/// The calling thread's cache in one pool (see [`Mempool::lcore_cache`]); dropping it lets
/// the plain calls use the cache again. A handle that is forgotten (`mem::forget`) instead
/// of dropped leaves the cache held for good: its objects stay counted as available but
/// unreachable, and the plain calls keep going to the handler.
///
/// Not `Send`: the cache belongs to the thread holding the lcore id.
pub struct LcoreCache<'pool, 'eal> {
    pool: &'pool Mempool<'eal>,
    /// The pool's store (`None` before populate), kept here so the loop need not look.
    store: Option<&'pool Store<'eal>>,
    /// The cache, or null: every call goes to the handler.
    state: *mut CacheState,
    /// Objects in the cache; the shared `len` is written from this, never read.
    len: u32,
    size: u32,
    flush_threshold: u32,
    /// Keeps the handle on its thread even if `state` stops being a raw pointer.
    _not_send: PhantomData<*mut ()>,
}

impl std::fmt::Debug for LcoreCache<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LcoreCache")
            .field("pool", &self.pool.name())
            .field("cached", &!self.state.is_null())
            .field("len", &self.len)
            .field("size", &self.size)
            .finish()
    }
}

impl<'pool, 'eal> LcoreCache<'pool, 'eal> {
    /// Holds the calling thread's cache of `pool` (none for a pool without caches or a
    /// thread without an lcore id).
    #[inline]
    pub(crate) fn new(pool: &'pool Mempool<'eal>) -> Result<Self, MempoolError> {
        let state = pool.lcore_cache_slot();
        let mut handle = LcoreCache {
            pool,
            store: pool.store(),
            state: core::ptr::null_mut(),
            len: 0,
            size: 0,
            flush_threshold: 0,
            _not_send: PhantomData,
        };
        if state.is_null() {
            return Ok(handle);
        }
        // SAFETY: a non-null slot is a live cache in the pool's memzone; the reference covers
        // the atomic `held` alone. Acquire: the last holder's writes to the slots are seen.
        let taken =
            unsafe { &(*state).held }.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
        if taken.is_err() {
            return Err(MempoolError::CacheBusy {
                pool: pool.name().to_owned(),
                lcore: pool.current_lcore(),
            });
        }
        // SAFETY: the cache is live and now held by this thread.
        let (size, flush_threshold) = unsafe { cache::limits_of(state) };
        // SAFETY: as above.
        let len = unsafe { cache::len_of(state) };
        if len as usize > cache::CACHE_SLOTS || flush_threshold as usize > cache::CACHE_SLOTS {
            // Give the cache back untouched: nothing was taken from it.
            // SAFETY: as the compare-exchange above.
            unsafe { &(*state).held }.store(0, Ordering::Release);
            return Err(MempoolError::Handler {
                pool: pool.name().to_owned(),
                handler: pool.handler_name(),
                reason: format!(
                    "lcore cache is corrupt: {len} objects, flush threshold {flush_threshold}"
                ),
            });
        }
        // From here on `Drop` gives the cache back.
        handle.state = state;
        handle.len = len;
        handle.size = size;
        handle.flush_threshold = flush_threshold;
        Ok(handle)
    }

    /// The pool the handle is for.
    pub fn pool(&self) -> &'pool Mempool<'eal> {
        self.pool
    }

    /// Whether the calls go through a cache (the pool has caches and the thread an lcore id).
    pub fn is_cached(&self) -> bool {
        !self.state.is_null()
    }

    /// Objects in the cache.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the length back where other threads count it (nothing without a cache; the
    /// callers have tested that already, so the test folds away where they are inlined).
    #[inline(always)]
    fn publish_len(&self) {
        if self.state.is_null() {
            return;
        }
        // SAFETY: a non-null `state` is the live cache this handle holds (`new` took `held`);
        // the store covers the atomic `len` alone.
        unsafe { (*self.state).len.store(self.len, Ordering::Relaxed) };
    }

    /// Takes `objs.len()` objects, all or none, as [`Mempool::get_bulk`] does.
    #[inline(always)]
    pub fn get_bulk(&mut self, objs: &mut [*mut u8]) -> Result<(), MempoolError> {
        if self.state.is_null() {
            // Out of line, as the plain calls without a cache: the handler's code inlined next
            // to the cache's few instructions would make every loop over a handle carry both,
            // and the compiler then keeps less of the cache's state in registers.
            return self.pool.get_uncached(objs);
        }
        let n = objs.len();
        let Some(store) = self.store else {
            return Err(self.pool.exhausted(n));
        };
        // SAFETY: the handle holds the cache (`held`) and stays on this thread.
        let slots = unsafe { cache::slots_of(self.state) };
        let Some(len) = cache::get_from(slots, self.len, self.size, store, as_words_mut(objs))
        else {
            return Err(self.pool.exhausted(n));
        };
        self.len = len;
        self.publish_len();
        self.pool.debug_after_get(objs);
        Ok(())
    }

    /// One object, as [`Mempool::get`].
    #[inline(always)]
    pub fn get(&mut self) -> Result<NonNull<u8>, MempoolError> {
        let mut one = [core::ptr::null_mut(); 1];
        self.get_bulk(&mut one)?;
        Ok(NonNull::new(one[0]).expect("pool objects are never at 0"))
    }

    /// Returns objects, as [`Mempool::put_bulk`].
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`]: every pointer came from a get on this pool and has not been
    /// put back since, and nothing uses the objects afterwards.
    #[inline(always)]
    pub unsafe fn put_bulk(&mut self, objs: &[*mut u8]) {
        if self.state.is_null() {
            // SAFETY: the caller's contract. Out of line, as in `get_bulk`.
            return unsafe { self.pool.put_uncached(objs) };
        }
        self.pool.debug_before_put(objs);
        let Some(store) = self.store else {
            self.pool.put_without_store()
        };
        let words = as_words(objs);
        // SAFETY: the handle holds the cache (`held`) and stays on this thread.
        let slots = unsafe { cache::slots_of(self.state) };
        self.len = cache::put_into(slots, self.len, self.flush_threshold, store, words);
        self.publish_len();
    }

    /// Returns one object, as [`Mempool::put`].
    ///
    /// # Safety
    /// As [`LcoreCache::put_bulk`].
    #[inline(always)]
    pub unsafe fn put(&mut self, obj: NonNull<u8>) {
        // SAFETY: the caller's contract.
        unsafe { self.put_bulk(&[obj.as_ptr()]) }
    }

    /// Empties the cache into the handler (`rte_mempool_cache_flush`).
    pub fn flush(&mut self) {
        if let (false, Some(store)) = (self.state.is_null(), self.store) {
            // SAFETY: the handle holds the cache (`held`) and stays on this thread; the shared
            // length it empties is the handle's, published after every call.
            unsafe { cache::flush(self.state, store) };
            self.len = 0;
        }
    }
}

impl Drop for LcoreCache<'_, '_> {
    // Inlined so the handle never has its address taken: it lives in registers.
    #[inline]
    fn drop(&mut self) {
        if self.state.is_null() {
            return;
        }
        self.publish_len();
        // SAFETY: the cache is live (the pool outlives the handle); the reference covers the
        // atomic `held` alone. Release: the next user of the cache sees its slots as left.
        unsafe { &(*self.state).held }.store(0, Ordering::Release);
    }
}
