//! The typed path: [`TypedMempool::builder`] with its defaults and setters, and [`PoolObj`]
//! handles that move through a [`HandleRing`] from one lcore to another, go home when a ring
//! holding them is dropped, and are handed back whole when `put_all` is given one of another
//! pool.

use dpmem_eal::{Eal, ErrorKind, Socket};
use dpmem_mempool::{
    calc_obj_size, Mempool, MempoolFlags, PoolObj, TypedMempool, CACHE_LINE, CACHE_MAX_SIZE,
    DEFAULT_HANDLER, MEMPOOL_NAME_MAX,
};
use dpmem_ring::{HandleRing, RingFlags};

mod common;

use common::no_huge_eal as eal;

/// Three words: not a multiple of a cache line, so the slot size shows whether objects are
/// cache-line aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    index: u32,
    seq: u64,
    check: u64,
}

impl Record {
    fn fresh(index: u32) -> Record {
        Record {
            index,
            seq: u64::MAX,
            check: 0,
        }
    }
}

/// A value that cannot be told from its sequence number by accident.
fn scramble(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555_aaaa_5555_aaaa
}

/// Refused with `kind`, leaving no pool of that name and no memzone behind.
fn assert_refused<T: Copy + Send + std::fmt::Debug>(
    eal: &Eal,
    result: Result<TypedMempool<'_, T>, dpmem_mempool::MempoolError>,
    name: &str,
    kind: ErrorKind,
    zones_before: u32,
) {
    match result {
        Ok(pool) => panic!("{name}: created, should be refused: {}", pool.raw().dump()),
        Err(e) => assert_eq!(e.kind(), kind, "{name}: {e}"),
    }
    assert!(Mempool::lookup(eal, name).is_err(), "{name} left behind");
    assert_eq!(
        eal.memzones().count(),
        zones_before,
        "{name}: memzones left"
    );
}

#[test]
fn builder_defaults_and_setters_take_effect() {
    let eal = eal("builder");
    let zones_before = eal.memzones().count();

    // Defaults: no caches, any socket, no flags; every value made by `init` once.
    let n = 255;
    let pool = TypedMempool::<Record>::builder("defaults", n)
        .create(&eal, Record::fresh)
        .unwrap();
    let raw = pool.raw();
    assert_eq!(raw.name(), "defaults");
    assert_eq!(raw.size(), n);
    assert_eq!(raw.elt_size() as usize, core::mem::size_of::<Record>());
    assert_eq!(raw.cache_size(), 0);
    assert_eq!(raw.socket(), Socket::Any);
    assert_eq!(
        raw.flags().intersection(MempoolFlags::USER),
        MempoolFlags::empty()
    );
    assert_eq!(raw.handler_name(), DEFAULT_HANDLER);
    assert_eq!(raw.private_data_size(), 0);
    assert_eq!(
        raw.obj_size(),
        calc_obj_size(raw.elt_size(), MempoolFlags::empty()).unwrap()
    );
    let all = pool.get_array::<255>().unwrap();
    let mut indices: Vec<u32> = all.iter().map(|v| v.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..n).collect::<Vec<_>>(), "each value made once");
    assert!(all.iter().all(|v| v.seq == u64::MAX && v.check == 0));
    for v in &all {
        assert_eq!(
            v.as_ptr() as usize % CACHE_LINE,
            0,
            "cache-line aligned by default"
        );
    }
    assert!(raw.is_empty());
    pool.put_all(all).unwrap();
    assert!(pool.raw().is_full());
    drop(pool.get().unwrap());
    assert_eq!(pool.raw().lcore_cache_len(), 0, "no cache by default");
    pool.raw().audit().unwrap();
    pool.free().unwrap();

    // Each setter: the cache, the main lcore's socket, single-thread modes and 8-byte slots.
    let socket = eal
        .lcore_threads()
        .lcore_socket(eal.lcore_threads().main_lcore())
        .unwrap();
    assert_ne!(socket, Socket::Any);
    let flags = MempoolFlags::SP_PUT | MempoolFlags::SC_GET | MempoolFlags::NO_CACHE_ALIGN;
    let pool = TypedMempool::<Record>::builder("setters", 1023)
        .cache_size(64)
        .socket(socket)
        .flags(flags)
        .create(&eal, Record::fresh)
        .unwrap();
    let raw = pool.raw();
    assert_eq!(raw.cache_size(), 64);
    assert_eq!(raw.socket(), socket);
    // The header's memzone and the objects' (`MP_setters_<n>`) are all on that socket.
    let zones: Vec<_> = eal
        .memzones()
        .list()
        .into_iter()
        .filter(|z| z.name.starts_with("MP_setters"))
        .collect();
    assert!(zones.len() >= 2, "{zones:?}");
    assert!(zones.iter().all(|z| z.socket == socket), "{zones:?}");
    assert_eq!(raw.flags().intersection(MempoolFlags::USER), flags);
    assert_eq!(raw.handler_name(), "ring_sp_sc");
    assert_eq!(
        raw.obj_size(),
        calc_obj_size(raw.elt_size(), MempoolFlags::NO_CACHE_ALIGN).unwrap()
    );
    assert_ne!(
        raw.obj_size().total_size,
        calc_obj_size(raw.elt_size(), MempoolFlags::empty())
            .unwrap()
            .total_size,
        "8-byte slots differ from cache-line ones for this size"
    );
    drop(pool.get().unwrap());
    assert!(
        raw.lcore_cache_len() > 0,
        "the main lcore keeps the object in its cache"
    );
    assert!(raw.is_full(), "cached objects count as in the pool");
    raw.audit().unwrap();
    pool.free().unwrap();
    assert_eq!(eal.memzones().count(), zones_before);

    // Bad arguments: EINVAL (or the name's own error), nothing left.
    let big = TypedMempool::<Record>::builder("bigcache", 10_000)
        .cache_size(CACHE_MAX_SIZE + 1)
        .create(&eal, Record::fresh);
    assert_refused(&eal, big, "bigcache", ErrorKind::Inval, zones_before);
    // Its flush threshold (1.5 x 100) is more than the pool holds.
    let over = TypedMempool::<Record>::builder("cache_vs_n", 120)
        .cache_size(100)
        .create(&eal, Record::fresh);
    assert_refused(&eal, over, "cache_vs_n", ErrorKind::Inval, zones_before);
    let empty = TypedMempool::<Record>::builder("zero", 0).create(&eal, Record::fresh);
    assert_refused(&eal, empty, "zero", ErrorKind::Inval, zones_before);
    let internal = TypedMempool::<Record>::builder("internal", 63)
        .flags(MempoolFlags::POOL_CREATED)
        .create(&eal, Record::fresh);
    assert_refused(&eal, internal, "internal", ErrorKind::Inval, zones_before);
    let long = "t".repeat(MEMPOOL_NAME_MAX + 1);
    let named = TypedMempool::<Record>::builder(&long, 63).create(&eal, Record::fresh);
    assert_refused(&eal, named, &long, ErrorKind::NameTooLong, zones_before);
    // Values whose slot would pass the pool's u32 sizes (4 GiB and more, and just under, where
    // the header and padding carry it past): refused before any value is made.
    let vast = TypedMempool::<[u8; 1 << 32]>::builder("vast", 3).create(&eal, |_| unreachable!());
    assert_refused(&eal, vast, "vast", ErrorKind::Inval, zones_before);
    let nearly =
        TypedMempool::<[u8; (1 << 32) - 16]>::builder("nearly", 3).create(&eal, |_| unreachable!());
    assert_refused(&eal, nearly, "nearly", ErrorKind::Inval, zones_before);

    // T's alignment against the slot's: 128 is more than a cache line; 16 fits a cache-line
    // slot but not an 8-byte one.
    #[derive(Clone, Copy, Debug)]
    #[repr(align(128))]
    struct LineAndAHalf(#[allow(dead_code)] u8);
    let e = TypedMempool::<LineAndAHalf>::builder("align128", 63).create(&eal, |_| LineAndAHalf(0));
    assert_refused(&eal, e, "align128", ErrorKind::Inval, zones_before);
    #[derive(Clone, Copy, Debug)]
    #[repr(align(16))]
    struct Wide(u64);
    let e = TypedMempool::<Wide>::builder("align16", 63)
        .flags(MempoolFlags::NO_CACHE_ALIGN)
        .create(&eal, |i| Wide(u64::from(i)));
    assert_refused(&eal, e, "align16", ErrorKind::Inval, zones_before);
    let fits = TypedMempool::<Wide>::builder("align16", 63)
        .create(&eal, |i| Wide(u64::from(i)))
        .unwrap();
    let v = fits.get().unwrap();
    assert_eq!(v.as_ptr() as usize % 16, 0);
    assert!(v.0 < 63);
    drop(v);
    fits.free().unwrap();
    assert_eq!(eal.memzones().count(), zones_before);
}

#[test]
fn pool_objects_cross_lcores_through_a_handle_ring() {
    const COUNT: u64 = 100_000;
    let eal = eal("cross");
    let threads = eal.lcore_threads();
    let main = threads.main_lcore();
    let worker = threads.worker_ids().next().expect("-l 0-1 has a worker");
    assert_eq!(
        threads.current_lcore_id(),
        main,
        "the test thread is the main lcore"
    );

    let n = 1023;
    let pool = TypedMempool::<Record>::builder("crossing", n)
        .cache_size(32)
        .create(&eal, Record::fresh)
        .unwrap();
    let ring: HandleRing<PoolObj<'_, '_, Record>> =
        HandleRing::new("crossing", 256, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();

    let mut objects = std::collections::HashSet::new();
    pool.raw().obj_iter(|_, obj, _| {
        objects.insert(obj as usize);
    });
    assert_eq!(objects.len(), n as usize);

    let (checked, distinct) = threads.scope(|s| {
        let (pool, ring, objects) = (&pool, &ring, &objects);
        // The checker, on the worker: every object in order, as the writer left it. Dropping
        // each one returns it to the pool through the worker's own cache.
        let checker = s
            .launch(worker, move || {
                assert_eq!(dpmem_eal::lcore::lcore_id(), worker);
                let mut consumer = ring.consumer().unwrap();
                let mut addresses = std::collections::HashSet::new();
                let mut batch = Vec::with_capacity(32);
                let mut next = 0u64;
                while next < COUNT {
                    if consumer.dequeue_burst(&mut batch, 32) == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    for obj in batch.drain(..) {
                        assert_eq!(obj.seq, next, "out of order or lost");
                        assert_eq!(obj.check, scramble(next), "object {next} altered");
                        let at = obj.as_ptr() as usize;
                        assert!(objects.contains(&at), "{at:#x} is no object of the pool");
                        addresses.insert(at);
                        next += 1;
                    }
                }
                (next, addresses.len())
            })
            .unwrap();
        // The writer, on the main lcore: takes an object, fills it, moves it into the ring.
        let mut producer = ring.producer().unwrap();
        for seq in 0..COUNT {
            let mut obj = pool
                .get()
                .expect("objects in flight stay far below the pool's size");
            obj.seq = seq;
            obj.check = scramble(seq);
            while let Err(back) = producer.enqueue(obj) {
                obj = back;
                std::thread::yield_now();
            }
        }
        checker.join().unwrap()
    });
    assert_eq!(checked, COUNT);
    eprintln!("{COUNT} objects crossed in {distinct} of the pool's {n} slots");
    assert!(ring.is_empty());
    assert_eq!(pool.raw().avail_count(), n, "every object back in the pool");
    assert_eq!(pool.raw().in_use_count(), 0);
    pool.raw().audit().unwrap();
    drop(ring);
    pool.free().unwrap();
}

#[test]
fn objects_left_in_a_dropped_handle_ring_go_back_to_their_pool() {
    let eal = eal("leftover");
    for cache in [0, 16] {
        let n = 63;
        let pool = TypedMempool::<Record>::builder("leftover", n)
            .cache_size(cache)
            .create(&eal, Record::fresh)
            .unwrap();
        let ring: HandleRing<PoolObj<'_, '_, Record>> =
            HandleRing::new("leftover", 64, RingFlags::NONE).unwrap();
        let mut producer = ring.producer().unwrap();
        for seq in 0..10 {
            let mut obj = pool.get().unwrap();
            obj.seq = seq;
            producer.enqueue(obj).unwrap();
        }
        producer
            .enqueue_bulk(pool.get_array::<8>().unwrap())
            .unwrap();
        drop(producer);
        assert_eq!(ring.len(), 18);
        assert_eq!(
            pool.raw().in_use_count(),
            18,
            "the ring holds them out of the pool"
        );

        // Three are taken out and outlive the ring; the other fifteen go home with it.
        let mut consumer = ring.consumer().unwrap();
        let kept = consumer.dequeue_bulk::<3>().unwrap();
        drop(consumer);
        assert_eq!(kept.each_ref().map(|o| o.seq), [0, 1, 2]);
        drop(ring);
        assert_eq!(pool.raw().in_use_count(), 3, "cache {cache}");
        assert_eq!(pool.raw().avail_count(), n - 3, "cache {cache}");
        pool.raw().audit().unwrap();
        drop(kept);
        assert_eq!(pool.raw().avail_count(), n, "cache {cache}");
        pool.raw().audit().unwrap();
        pool.free().unwrap();
    }
}

#[test]
fn put_all_hands_back_everything_when_one_object_is_of_another_pool() {
    let eal = eal("put_all");
    let home = TypedMempool::<Record>::builder("home", 63)
        .cache_size(8)
        .create(&eal, Record::fresh)
        .unwrap();
    let other = TypedMempool::<Record>::builder("other", 63)
        .create(&eal, Record::fresh)
        .unwrap();
    // In a block: the handles' array must be gone (to the borrow checker) before the pools
    // are freed.
    {
        let mixed = [
            home.get().unwrap(),
            other.get().unwrap(),
            home.get().unwrap(),
        ];
        let addresses = mixed.each_ref().map(|o| o.as_ptr());
        let back = home.put_all(mixed).unwrap_err();
        assert_eq!(
            back.each_ref().map(|o| o.as_ptr()),
            addresses,
            "the same objects, in order"
        );
        assert_eq!(home.raw().in_use_count(), 2, "nothing was put");
        assert_eq!(other.raw().in_use_count(), 1);

        // Still owned and usable: written and read through the handles handed back.
        let mut back = back;
        for (i, obj) in back.iter_mut().enumerate() {
            obj.seq = i as u64;
            obj.check = scramble(i as u64);
        }
        for (i, obj) in back.iter().enumerate() {
            assert_eq!((obj.seq, obj.check), (i as u64, scramble(i as u64)));
        }
        let [first, foreign, last] = back;
        home.put_all([first, last]).unwrap();
        assert!(home.raw().is_full());
        assert_eq!(other.raw().in_use_count(), 1);
        // The other pool's object goes home when dropped.
        drop(foreign);
        assert!(other.raw().is_full());
    }
    home.raw().audit().unwrap();
    other.raw().audit().unwrap();
    home.free().unwrap();
    other.free().unwrap();
}
