//! `Mempool::lcore_cache`: a handle on the calling thread's cache that keeps the cache's
//! length to itself. It must follow the same cache algorithm as the plain calls, keep
//! `avail_count` exact, and keep every other path (this thread's plain calls, its flush, a
//! second handle, a thread given the same lcore id later) off the cache while it lives.

use std::collections::HashSet;

use dpmem_eal::{ErrorKind, Socket};
use dpmem_mempool::{Mempool, MempoolFlags};

mod common;

use common::no_huge_eal as eal;

fn pool<'e>(eal: &'e dpmem_eal::Eal, name: &str, n: u32, cache: u32) -> Mempool<'e> {
    Mempool::create(
        eal,
        name,
        n,
        64,
        cache,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap()
}

#[test]
fn handle_follows_the_cache_algorithm_and_keeps_counts_exact() {
    let eal = eal("handle_algo");
    let pool = pool(&eal, "handled", 1000, 100);
    let mut cache = pool.lcore_cache().unwrap();
    assert!(
        cache.is_cached(),
        "the main thread is lcore 0: it has a cache"
    );
    assert!(cache.is_empty());
    let obj = cache.get().unwrap();
    assert_eq!(cache.len(), 100, "a miss refills to the cache size");
    assert!(!cache.is_empty());
    let shown = format!("{cache:?}");
    assert!(
        shown.contains("\"handled\"")
            && shown.contains("cached: true")
            && shown.contains("len: 100"),
        "the handle's debug form names its pool, that it is cached and its length: {shown}"
    );
    assert_eq!(pool.lcore_cache_len(), 100, "the length is published");
    assert_eq!(pool.avail_count(), 999);
    // SAFETY: the object came from this pool and goes back once.
    unsafe { cache.put(obj) };
    assert_eq!(cache.len(), 101);
    let mut objs = vec![core::ptr::null_mut(); 150];
    cache.get_bulk(&mut objs).unwrap();
    assert_eq!(
        cache.len(),
        100,
        "101 cached, 49 short: refill 149, take 49"
    );
    // SAFETY: as above.
    unsafe { cache.put_bulk(&objs[..50]) };
    assert_eq!(cache.len(), 150, "up to the threshold the objects stay");
    // SAFETY: as above.
    unsafe { cache.put_bulk(&objs[50..]) };
    assert_eq!(cache.len(), 100, "past it the 150 are flushed first");
    assert_eq!(pool.avail_count(), 1000);
    assert!(pool.is_full());
    // More than the pool has: refused, nothing taken, the cache as it was.
    let mut too_many = vec![core::ptr::null_mut(); 1001];
    let e = cache.get_bulk(&mut too_many).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt, "{e}");
    assert_eq!(cache.len(), 100);
    assert_eq!(pool.avail_count(), 1000);
    // Every object exactly once, through the handle alone.
    let mut all = vec![core::ptr::null_mut(); 1000];
    cache.get_bulk(&mut all).unwrap();
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 1000);
    assert!(cache.get().is_err());
    assert!(pool.is_empty());
    // SAFETY: as above.
    unsafe { cache.put_bulk(&all[..990]) };
    assert_eq!(
        cache.len(),
        0,
        "more than the threshold goes to the handler"
    );
    // SAFETY: as above.
    unsafe { cache.put_bulk(&all[990..]) };
    assert_eq!(cache.len(), 10);
    cache.flush();
    assert_eq!(cache.len(), 0);
    assert_eq!(pool.lcore_cache_len(), 0);
    drop(cache);
    assert!(pool.is_full());
    pool.audit().unwrap();
    pool.free().unwrap();
}

#[test]
fn while_a_handle_lives_every_other_path_leaves_the_cache_alone() {
    let eal = eal("handle_excl");
    let pool = pool(&eal, "exclusive", 600, 50);
    let mut cache = pool.lcore_cache().unwrap();
    let held = cache.get().unwrap();
    assert_eq!(cache.len(), 50);

    // A second handle on the same cache is refused, and changes nothing.
    let e = pool.lcore_cache().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert_eq!(cache.len(), 50);

    // This thread's plain calls go to the handler: the cache keeps its 50.
    let plain = pool.get().unwrap();
    assert_eq!(pool.lcore_cache_len(), 50);
    // SAFETY: the object came from this pool.
    unsafe { pool.put(plain) };
    assert_eq!(pool.lcore_cache_len(), 50);
    pool.flush_lcore_cache();
    assert_eq!(
        pool.lcore_cache_len(),
        50,
        "flush leaves a held cache alone"
    );
    assert_eq!(pool.avail_count(), 599);

    // The handle goes on from what it holds.
    // SAFETY: the object came from this pool.
    unsafe { cache.put(held) };
    assert_eq!(cache.len(), 51);
    drop(cache);

    // Dropped: the plain calls use the cache again, from the length the handle left.
    let obj = pool.get().unwrap();
    assert_eq!(pool.lcore_cache_len(), 50);
    // SAFETY: the object came from this pool.
    unsafe { pool.put(obj) };
    pool.flush_lcore_cache();
    assert_eq!(pool.lcore_cache_len(), 0);
    assert!(pool.is_full());
    pool.audit().unwrap();
    pool.free().unwrap();
}

#[test]
fn threads_without_a_cache_get_a_handle_that_goes_to_the_handler() {
    let eal = eal("handle_nocache");
    let uncached = pool(&eal, "uncached", 100, 0);
    let cached = pool(&eal, "cached2", 100, 10);
    {
        let mut handle = uncached.lcore_cache().unwrap();
        assert!(!handle.is_cached(), "a pool without caches");
        let shown = format!("{handle:?}");
        assert!(shown.contains("cached: false"), "{shown}");
        let obj = handle.get().unwrap();
        assert_eq!(uncached.avail_count(), 99);
        // SAFETY: the object came from this pool.
        unsafe { handle.put(obj) };
        assert!(uncached.is_full());
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut handle = cached.lcore_cache().unwrap();
            assert!(!handle.is_cached(), "a thread with no lcore id");
            let obj = handle.get().unwrap();
            assert_eq!(cached.avail_count(), 99);
            // SAFETY: the object came from this pool.
            unsafe { handle.put(obj) };
        });
    });
    assert!(cached.is_full());
    uncached.free().unwrap();
    cached.free().unwrap();
}

#[test]
fn a_thread_given_a_held_lcore_id_bypasses_the_cache() {
    let eal = eal("handle_reuse");
    let owned = pool(&eal, "reused", 400, 20);
    let pool = &owned;
    let threads = eal.lcore_threads();
    // A registered thread takes a cache handle, then gives its lcore id back while still
    // holding it; the next thread registered gets the same id and must not touch the cache.
    let (lcore_tx, lcore_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let first = s.spawn(move || {
            let lcore = threads.register_thread().unwrap();
            let mut handle = pool.lcore_cache().unwrap();
            assert!(handle.is_cached());
            let obj = handle.get().unwrap();
            assert_eq!(handle.len(), 20);
            threads.unregister_thread().unwrap();
            lcore_tx.send(lcore).unwrap();
            go_rx.recv().unwrap();
            // The handle still works on what it holds.
            // SAFETY: the object came from this pool.
            unsafe { handle.put(obj) };
            assert_eq!(handle.len(), 21);
        });
        let lcore = lcore_rx.recv().unwrap();
        let second = s
            .spawn(move || {
                assert_eq!(
                    threads.register_thread().unwrap(),
                    lcore,
                    "the same id again"
                );
                let obj = pool.get().unwrap();
                assert_eq!(pool.lcore_cache_len(), 20, "the held cache was not used");
                // SAFETY: the object came from this pool.
                unsafe { pool.put(obj) };
                assert_eq!(pool.lcore_cache_len(), 20);
                let e = pool.lcore_cache().unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
                threads.unregister_thread().unwrap();
            })
            .join();
        // Let the first thread finish even when the second failed, so the scope can end.
        go_tx.send(()).unwrap();
        first.join().unwrap();
        second.unwrap();
    });
    assert_eq!(pool.avail_count(), 400);
    pool.audit().unwrap();
    owned.free().unwrap();
}

/// A user cache holding objects of a pool that is freed keeps refusing every other pool, one
/// made later at the very same address included: its objects are not that pool's, and taking
/// them would hand two owners one object.
#[test]
fn a_user_cache_refuses_a_pool_made_later_where_its_pool_was() {
    use dpmem_mempool::{MempoolConfig, UserCache};
    let eal = eal("ucstale");
    let first = MempoolConfig::new("first", 63, 64)
        .cache_size(16)
        .create(&eal)
        .unwrap();
    let mut cache = UserCache::new(32).unwrap();
    let mut one = [core::ptr::null_mut(); 1];
    first.generic_get(&mut one, Some(&mut cache)).unwrap();
    // SAFETY: the object came from `first` and goes back once, into the user cache.
    unsafe { first.generic_put(&one, Some(&mut cache)) }.unwrap();
    assert!(!cache.is_empty(), "the cache holds objects of `first`");
    let first_addr = first.memzone().va;
    first.free().unwrap();
    let second = MempoolConfig::new("second", 63, 64)
        .cache_size(16)
        .create(&eal)
        .unwrap();
    // The heap gives the freed header's block back to the next pool of the same size: the
    // case an address alone could not tell apart.
    assert_eq!(
        second.memzone().va,
        first_addr,
        "the second pool reuses the first's place"
    );
    let err = cache.flush(&second).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    let mut taken = [core::ptr::null_mut(); 1];
    let err = second
        .generic_get(&mut taken, Some(&mut cache))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert_eq!(second.avail_count(), 63);
    second.audit().unwrap();
}
