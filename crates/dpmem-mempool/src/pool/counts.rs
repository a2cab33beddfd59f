//! What a pool holds: the objects in the handler and in the lcore caches
//! (`rte_mempool_avail_count`), those out of it, and the calling lcore's share.

use dpmem_eal::options::MAX_LCORE;

use crate::cache;
use crate::pool::Mempool;

impl<'eal> Mempool<'eal> {
    /// Objects in the pool: the handler's plus every lcore cache's
    /// (`rte_mempool_avail_count`). User caches are not counted.
    pub fn avail_count(&self) -> u32 {
        let mut count = self.store.as_ref().map_or(0, |s| s.count());
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                // `len` is atomic: reading it while its owner works is a race on a counter,
                // not on memory, and the sum is a snapshot.
                count += self.cache_len_at(lcore);
            }
        }
        count.min(self.size())
    }

    /// Objects out of the pool (`rte_mempool_in_use_count`).
    pub fn in_use_count(&self) -> u32 {
        self.populated_size() - self.avail_count().min(self.populated_size())
    }

    pub fn is_full(&self) -> bool {
        self.avail_count() == self.size()
    }

    pub fn is_empty(&self) -> bool {
        self.avail_count() == 0
    }

    /// Objects in the calling lcore's cache (0 without one).
    pub fn lcore_cache_len(&self) -> u32 {
        let cache = self.lcore_cache_slot();
        if cache.is_null() {
            0
        } else {
            // SAFETY: the cache is inside the pool's memzone.
            unsafe { cache::len_of(cache) }
        }
    }

    /// Objects in each lcore's cache that holds any, by lcore id (empty for a pool without
    /// caches). A snapshot read from the caches' counters alone: nothing is taken or flushed,
    /// so another process's pool can be looked at while its lcores work.
    pub fn lcore_cache_counts(&self) -> Vec<(u32, u32)> {
        if self.caches.is_null() {
            return Vec::new();
        }
        (0..MAX_LCORE)
            .map(|lcore| (lcore, self.cache_len_at(lcore as usize)))
            .filter(|&(_, len)| len > 0)
            .collect()
    }

    /// The cache of `lcore` (the pool has caches, `lcore < MAX_LCORE`).
    pub(super) fn cache_len_at(&self, lcore: usize) -> u32 {
        assert!(!self.caches.is_null() && lcore < MAX_LCORE as usize);
        let cache = self.caches.wrapping_add(lcore);
        // SAFETY: the caches area holds MAX_LCORE initialised caches (asserted in range);
        // `len_of` reads the atomic `len` alone, so the owner may be at work.
        unsafe { cache::len_of(cache) }
    }
}
