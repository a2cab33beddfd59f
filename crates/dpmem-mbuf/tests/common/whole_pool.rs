//! The check every packet buffer test ends with: every buffer of a pool is back, once.

use std::collections::HashSet;

use dpmem_mbuf::PktmbufPool;

/// Asserts that every buffer of `pool` is back, each once: the audit passes, the count is
/// full, and taking every buffer gives that many distinct buffers and then no more (a buffer
/// put back twice would come out twice, a lost one would be missing). They go back after.
pub fn assert_pool_whole(pool: &PktmbufPool<'_>) {
    let name = pool.name().to_owned();
    if let Err(e) = pool.audit() {
        panic!("pool {name:?}: audit failed: {e}");
    }
    assert_eq!(
        pool.avail_count(),
        pool.size(),
        "pool {name:?}: {} buffers still out",
        pool.in_use_count()
    );
    let mut all = vec![core::ptr::null_mut(); pool.size() as usize];
    pool.alloc_bulk_raw(&mut all)
        .unwrap_or_else(|e| panic!("pool {name:?}: taking every buffer: {e}"));
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "pool {name:?}: a buffer came out twice"
    );
    let extra = pool.alloc_raw();
    assert!(extra.is_err(), "pool {name:?}: more buffers than its size");
    // SAFETY: every buffer was just taken from the pool and is ours; the pool is open.
    unsafe { dpmem_mbuf::free::free_bulk(&all) };
    assert_eq!(pool.avail_count(), pool.size());
}
