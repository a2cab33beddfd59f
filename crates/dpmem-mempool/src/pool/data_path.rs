//! What the plain gets and puts ([`Mempool::get_bulk`], [`Mempool::put_bulk`], the generic
//! calls) and the [`LcoreCache`](super::lcore_cache::LcoreCache) handle share, below both:
//! finding the calling thread's cache, the way through a cache or straight to the handler's
//! store, the out-of-line calls for threads without a cache, and the cold paths of a refused
//! put or too few objects.
//!
//! The data path is tuned to the cycle: what is `#[inline(always)]` here is meant to fold
//! into the caller's loop, what is `#[inline(never)]` or `#[cold]` is meant to stay out of it
//! (see the README's mempool section and the `get_put_loop` example).

use dpmem_eal::options::MAX_LCORE;

use crate::cache::{self, CacheState};
use crate::error::MempoolError;
use crate::handler::Store;
use crate::pool::Mempool;
use crate::sync::Ordering;

/// Object pointers as the words the caches and stores move.
pub(super) fn as_words(objs: &[*mut u8]) -> &[usize] {
    // SAFETY: *mut u8 and usize have the same size and alignment; addresses are read as
    // integers only.
    unsafe { core::slice::from_raw_parts(objs.as_ptr().cast(), objs.len()) }
}

/// As [`as_words`], for the caller's array a get fills.
pub(super) fn as_words_mut(objs: &mut [*mut u8]) -> &mut [usize] {
    // SAFETY: as `as_words`; any usize written is a valid (if unusable) pointer value.
    unsafe { core::slice::from_raw_parts_mut(objs.as_mut_ptr().cast(), objs.len()) }
}

impl<'eal> Mempool<'eal> {
    /// The calling thread's cache in this pool, or null (no caches, or no lcore id).
    #[inline(always)]
    pub(super) fn lcore_cache_slot(&self) -> *mut CacheState {
        if self.caches.is_null() {
            return core::ptr::null_mut();
        }
        let lcore = self.lcore.lcore_id();
        if lcore >= MAX_LCORE {
            return core::ptr::null_mut();
        }
        // SAFETY: lcore < MAX_LCORE: the caches area holds one cache per lcore id.
        unsafe { self.caches.add(lcore as usize) }
    }

    /// The calling thread's lcore id in the pool's EAL.
    pub(super) fn current_lcore(&self) -> u32 {
        self.lcore.lcore_id()
    }

    /// The calling thread's cache when plain gets and puts may use it: null without one, or
    /// while an [`LcoreCache`](super::lcore_cache::LcoreCache) handle holds it (the handle
    /// keeps its length in a register).
    #[inline(always)]
    pub(super) fn plain_lcore_cache(&self) -> *mut CacheState {
        let cache = self.lcore_cache_slot();
        // SAFETY: a non-null slot is a live cache in the pool's memzone; the reference covers
        // the atomic `held` alone. Acquire pairs with the release of a dropped handle, so the
        // slots it wrote are seen.
        if !cache.is_null() && unsafe { (*cache).held.load(Ordering::Acquire) } != 0 {
            return core::ptr::null_mut();
        }
        cache
    }

    /// [`Mempool::get_bulk`] without a cache, out of line (one object with its length known,
    /// so the handler's copy is a single move).
    #[inline(never)]
    pub(super) fn get_uncached(&self, objs: &mut [*mut u8]) -> Result<(), MempoolError> {
        match objs {
            // SAFETY: a null cache, which `get_with` takes as none.
            [one] => unsafe { self.get_with(core::slice::from_mut(one), core::ptr::null_mut()) },
            // SAFETY: a null cache, which `get_with` takes as none.
            _ => unsafe { self.get_with(objs, core::ptr::null_mut()) },
        }
    }

    /// [`Mempool::put_bulk`] without a cache, out of line.
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline(never)]
    pub(super) unsafe fn put_uncached(&self, objs: &[*mut u8]) {
        match objs {
            // SAFETY: the objects are as `put_bulk` requires (the caller's contract), and a
            // null cache is none.
            [one] => unsafe { self.put_with(core::slice::from_ref(one), core::ptr::null_mut()) },
            // SAFETY: the objects are as `put_bulk` requires (the caller's contract), and a
            // null cache is none.
            _ => unsafe { self.put_with(objs, core::ptr::null_mut()) },
        }
    }

    /// # Safety
    /// `cache` is null or a cache of this pool used by no other thread during the call.
    #[inline(always)]
    pub(super) unsafe fn get_with(
        &self,
        objs: &mut [*mut u8],
        cache: *mut CacheState,
    ) -> Result<(), MempoolError> {
        let out = as_words_mut(objs);
        let done = match &self.store {
            None => false,
            Some(store) if cache.is_null() => store.dequeue(out),
            // SAFETY: the caller's contract on the cache.
            Some(store) => unsafe { cache::get(cache, store, out) },
        };
        if !done {
            return Err(self.exhausted(objs.len()));
        }
        self.debug_after_get(objs);
        Ok(())
    }

    /// # Safety
    /// As [`Mempool::put_bulk`], and `cache` as in `get_with`.
    #[inline(always)]
    pub(super) unsafe fn put_with(&self, objs: &[*mut u8], cache: *mut CacheState) {
        let store = self.store_for_put(objs);
        let words = as_words(objs);
        if cache.is_null() {
            self.enqueue_direct(store, words);
        } else {
            // SAFETY: the caller's contract on the cache.
            unsafe { cache::put(cache, store, words) };
        }
    }

    /// The store, once the pool is populated (for the gets and puts of
    /// [`LcoreCache`](super::lcore_cache::LcoreCache)).
    #[inline(always)]
    pub(super) fn store(&self) -> Option<&Store<'eal>> {
        self.store.as_ref()
    }

    /// The store a put goes to, after the `debug` feature's checks of `objs`.
    ///
    /// # Panics
    /// As [`Mempool::debug_before_put`], and when the pool has no store (so no object could
    /// have come from it).
    #[inline(always)]
    fn store_for_put(&self, objs: &[*mut u8]) -> &Store<'eal> {
        self.debug_before_put(objs);
        match &self.store {
            Some(store) => store,
            None => self.put_without_store(),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn put_without_store(&self) -> ! {
        panic!(
            "mempool {:?}: put into a pool that has no objects",
            self.name
        );
    }

    /// Puts `words` into the store, bypassing any cache.
    ///
    /// # Panics
    /// When the store refuses them: more objects put than the pool holds.
    #[inline(always)]
    fn enqueue_direct(&self, store: &Store<'eal>, words: &[usize]) {
        if !store.enqueue(words) {
            self.refused_put(words.len());
        }
    }

    #[cold]
    #[inline(never)]
    fn refused_put(&self, n: usize) -> ! {
        panic!(
            "mempool {:?}: handler refused {n} objects (put twice?)",
            self.name
        );
    }

    #[cold]
    pub(super) fn exhausted(&self, wanted: usize) -> MempoolError {
        MempoolError::Exhausted {
            pool: self.name.clone(),
            wanted,
        }
    }
}
