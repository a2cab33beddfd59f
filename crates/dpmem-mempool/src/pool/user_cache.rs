//! [`UserCache`]: a cache the caller owns (`rte_mempool_cache_create`), for the generic gets
//! and puts.

use crate::cache::{self, CacheState, CACHE_MAX_SIZE};
use crate::error::MempoolError;
use crate::pool::Mempool;

/// A cache owned by the caller (`rte_mempool_cache_create`), for threads without an lcore id
/// or to keep objects apart from the lcore's cache. It binds to the first pool it is used
/// with; using it with another is refused (`EINVAL`), a pool made later at the same address
/// included (the objects it holds are of the pool that was freed). Flush it before dropping
/// it, or its objects stay out of the pool.
pub struct UserCache {
    state: Box<CacheState>,
    /// The bound pool's serial (see `PoolHeader::serial`), with `state.bound_pool` its address.
    bound_serial: u64,
}

impl std::fmt::Debug for UserCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCache")
            .field("size", &self.state.size)
            .field("len", &self.state.len())
            .finish()
    }
}

impl UserCache {
    /// A cache of `size` objects (1..=512, `EINVAL` otherwise).
    pub fn new(size: u32) -> Result<UserCache, MempoolError> {
        if size == 0 || size > CACHE_MAX_SIZE {
            return Err(MempoolError::InvalidArgument(format!(
                "cache size {size} must be 1..={CACHE_MAX_SIZE}"
            )));
        }
        Ok(UserCache {
            state: Box::new(CacheState::new(size)),
            bound_serial: 0,
        })
    }

    pub fn len(&self) -> u32 {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn bind(&mut self, pool: &Mempool<'_>) -> Result<*mut CacheState, MempoolError> {
        let addr = pool.header.as_ptr() as u64;
        let serial = pool.hdr().serial;
        if self.state.bound_pool == 0 {
            self.state.bound_pool = addr;
            self.bound_serial = serial;
        } else if self.state.bound_pool != addr || self.bound_serial != serial {
            return Err(MempoolError::InvalidArgument(format!(
                "this cache holds objects of another pool than {:?}",
                pool.name
            )));
        }
        Ok(&mut *self.state)
    }

    /// Puts every cached object back into `pool` (`rte_mempool_cache_flush`).
    pub fn flush(&mut self, pool: &Mempool<'_>) -> Result<(), MempoolError> {
        let cache = self.bind(pool)?;
        if let Some(store) = &pool.store {
            // SAFETY: the cache is borrowed mutably; its objects came from this pool.
            unsafe { cache::flush(cache, store) };
        }
        Ok(())
    }
}
