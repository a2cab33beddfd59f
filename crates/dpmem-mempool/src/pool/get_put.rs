//! The public gets and puts: the plain calls (`rte_mempool_get_bulk` / `put_bulk`), which go
//! through the calling lcore's cache when it has one, the generic calls with a cache the
//! caller owns or none (`rte_mempool_generic_get` / `put`), and flushing the lcore's cache.
//! A loop that gets and puts many times is better served by the
//! [`LcoreCache`](super::lcore_cache::LcoreCache) handle ([`Mempool::lcore_cache`]).

use core::ptr::NonNull;

use crate::cache;
use crate::error::MempoolError;
use crate::pool::user_cache::UserCache;
use crate::pool::Mempool;

impl<'eal> Mempool<'eal> {
    /// Takes `objs.len()` objects, all or none (`rte_mempool_get_bulk`), through the calling
    /// lcore's cache when it has one. `ENOENT` ([`MempoolError::Exhausted`]) when there are
    /// not that many.
    ///
    /// Without a cache this reaches the handler through a call, for the reason given at
    /// [`Mempool::lcore_cache`]; [`generic_get`](Self::generic_get) with no cache inlines it.
    #[inline(always)]
    pub fn get_bulk(&self, objs: &mut [*mut u8]) -> Result<(), MempoolError> {
        let cache = self.plain_lcore_cache();
        if cache.is_null() {
            return self.get_uncached(objs);
        }
        // SAFETY: a per-lcore cache is used only by the thread holding that lcore id.
        unsafe { self.get_with(objs, cache) }
    }

    /// One object (`rte_mempool_get`).
    #[inline]
    pub fn get(&self) -> Result<NonNull<u8>, MempoolError> {
        let mut one = [core::ptr::null_mut(); 1];
        self.get_bulk(&mut one)?;
        Ok(NonNull::new(one[0]).expect("pool objects are never at 0"))
    }

    /// Returns objects (`rte_mempool_put_bulk`), through the calling lcore's cache.
    ///
    /// # Safety
    /// Every pointer came from a get on this pool and has not been put back since, and
    /// nothing uses the objects afterwards. With the `debug` feature a violation that the
    /// object headers reveal (another pool's object, a double put, a write past the end)
    /// panics before the pool is touched.
    ///
    /// Without a cache this reaches the handler through a call, as [`Mempool::get_bulk`].
    #[inline(always)]
    pub unsafe fn put_bulk(&self, objs: &[*mut u8]) {
        let cache = self.plain_lcore_cache();
        if cache.is_null() {
            // SAFETY: the caller's contract.
            return unsafe { self.put_uncached(objs) };
        }
        // SAFETY: the caller's contract; the cache is this thread's (lcore id).
        unsafe { self.put_with(objs, cache) }
    }

    /// Returns one object (`rte_mempool_put`).
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline]
    pub unsafe fn put(&self, obj: NonNull<u8>) {
        // SAFETY: the caller's contract.
        unsafe { self.put_bulk(&[obj.as_ptr()]) }
    }

    /// Gets through `cache` (`rte_mempool_generic_get`), or straight from the handler.
    #[inline(always)]
    pub fn generic_get(
        &self,
        objs: &mut [*mut u8],
        cache: Option<&mut UserCache>,
    ) -> Result<(), MempoolError> {
        let cache = match cache {
            Some(c) => c.bind(self)?,
            None => core::ptr::null_mut(),
        };
        // SAFETY: a user cache is borrowed mutably for the call.
        unsafe { self.get_with(objs, cache) }
    }

    /// Puts through `cache` (`rte_mempool_generic_put`), or straight into the handler.
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline(always)]
    pub unsafe fn generic_put(
        &self,
        objs: &[*mut u8],
        cache: Option<&mut UserCache>,
    ) -> Result<(), MempoolError> {
        let cache = match cache {
            Some(c) => c.bind(self)?,
            None => core::ptr::null_mut(),
        };
        // SAFETY: the caller's contract; the user cache is borrowed mutably for the call.
        unsafe { self.put_with(objs, cache) };
        Ok(())
    }

    /// Empties the calling lcore's cache into the handler (`rte_mempool_cache_flush` on the
    /// default cache); nothing when the thread has none, or while an
    /// [`LcoreCache`](super::lcore_cache::LcoreCache) of this thread holds it.
    ///
    /// # Panics
    /// When the cache's length in shared memory is past its slots (corrupt memory): its
    /// objects cannot be told apart, and dropping them quietly would lose them.
    pub fn flush_lcore_cache(&self) {
        let cache = self.plain_lcore_cache();
        if let (false, Some(store)) = (cache.is_null(), &self.store) {
            // SAFETY: the cache is the calling thread's (its lcore id).
            unsafe { cache::flush(cache, store) };
        }
    }
}
