//! Mempool behaviour as DPDK 22.11 documents it: full → take all → next get fails → empty →
//! put all → full; obj_init survives; every handler with and without caches; the argument
//! checks and their error kinds; populate rules; events.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dpmem_eal::{ErrorKind, Iova, Socket};
use dpmem_mempool::{
    handler_names, register_event_callback, unregister_event_callback, Mempool, MempoolConfig,
    MempoolError, MempoolEvent, MempoolFlags, TypedMempool, UserCache, CACHE_MAX_SIZE,
    MEMPOOL_NAME_MAX,
};

mod common;

use common::no_huge_eal as eal;

fn config(name: &str, n: u32, cache: u32) -> MempoolConfig<'_> {
    MempoolConfig {
        name,
        n,
        elt_size: 128,
        cache_size: cache,
        private_data_size: 0,
        socket: Socket::Any,
        flags: MempoolFlags::empty(),
    }
}

/// The DPDK lifecycle on one pool, through `get`/`put` of the calling thread.
fn take_all_then_give_back(pool: &Mempool<'_>) {
    let n = pool.size() as usize;
    assert!(pool.is_full(), "{}", pool.dump());
    assert_eq!(pool.avail_count(), n as u32);
    assert_eq!(pool.in_use_count(), 0);
    let mut objs = Vec::new();
    for _ in 0..n {
        objs.push(pool.get().unwrap().as_ptr());
    }
    let unique: HashSet<_> = objs.iter().collect();
    assert_eq!(unique.len(), n, "every object handed out once");
    let err = pool.get().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoEnt, "{err}");
    assert!(pool.is_empty());
    assert_eq!(pool.in_use_count(), n as u32);
    for &obj in &objs {
        // SAFETY: each object came from this pool once and goes back once.
        assert!(unsafe { pool.owns(obj) });
    }
    // SAFETY: as above.
    unsafe { pool.put_bulk(&objs) };
    assert!(pool.is_full(), "{}", pool.dump());
    pool.audit().unwrap();
}

#[test]
fn every_handler_with_and_without_cache_follows_the_lifecycle() {
    let eal = eal("handlers");
    let handlers = [
        "ring_mp_mc",
        "ring_sp_sc",
        "ring_mp_sc",
        "ring_sp_mc",
        "ring_mt_rts",
        "ring_mt_hts",
        "stack",
        "lf_stack",
    ];
    for handler in handlers {
        assert!(handler_names().iter().any(|h| h == handler));
        for cache in [0, 32] {
            let name = format!("h{cache}_{handler}");
            let mut pool = Mempool::create_empty(&eal, &config(&name, 300, cache)).unwrap();
            pool.set_handler(handler).unwrap();
            assert_eq!(pool.populate_default().unwrap(), 300);
            assert_eq!(pool.handler_name(), handler);
            take_all_then_give_back(&pool);
            // Bulk: all or nothing at the edge.
            let mut many = vec![core::ptr::null_mut(); 301];
            let err = pool.get_bulk(&mut many).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoEnt);
            assert!(pool.is_full(), "a failed bulk get takes nothing");
            let mut all = vec![core::ptr::null_mut(); 300];
            pool.get_bulk(&mut all).unwrap();
            assert!(pool.is_empty());
            // SAFETY: the objects came from this pool and go back once.
            unsafe { pool.put_bulk(&all) };
            assert!(pool.is_full());
            pool.free().unwrap();
        }
    }
    assert!(
        eal.memzones().list().is_empty(),
        "freeing pools frees every memzone: {:?}",
        eal.memzones().list()
    );
}

/// A ring handler's ring holds every object with room to spare: twice the pool for RTS (whose
/// consumer tail can lag a pool's worth behind), at least half a pool more for the kinds that
/// keep the room they saw (so a put rarely finds it used up and reads the consumers' line).
/// HTS keeps no room, so its ring is DPDK's size: the pool plus one, to a power of two. The
/// ring is the memzone-backed named ring `MP_<pool>`, found the way a secondary finds it.
#[test]
fn ring_handlers_leave_room_beyond_every_object() {
    let eal = eal("ringroom");
    for (handler, n, least, most) in [
        ("ring_mp_mc", 2047, 3070, u32::MAX),
        ("ring_sp_sc", 2047, 3070, u32::MAX),
        ("ring_mp_sc", 1000, 1500, u32::MAX),
        ("ring_sp_mc", 1000, 1500, u32::MAX),
        ("ring_mt_hts", 400, 511, 511),
        ("ring_mt_rts", 2047, 4094, u32::MAX),
    ] {
        let name = format!("room_{handler}");
        let mut pool = Mempool::create_empty(&eal, &config(&name, n, 0)).unwrap();
        pool.set_handler(handler).unwrap();
        assert_eq!(pool.populate_default().unwrap(), n);
        // SAFETY: the pool's ring holds object addresses, usize-sized elements.
        let ring =
            unsafe { dpmem_ring::named::lookup::<usize>(&eal, &format!("MP_{name}")) }.unwrap();
        let capacity = ring.raw().capacity();
        assert!(
            (least..=most).contains(&capacity),
            "{handler}: capacity {capacity} for {n} objects, wanted {least}..={most}"
        );
        assert_eq!(ring.count(), n, "{handler}: every object is in the ring");
        take_all_then_give_back(&pool);
        drop(ring);
        pool.free().unwrap();
    }
}

#[test]
fn create_checks_its_arguments_and_changes_nothing_when_refusing() {
    let eal = eal("args");
    let before = eal.memzones().count();
    let refuse = |c: MempoolConfig<'_>| {
        Mempool::create(
            &eal,
            c.name,
            c.n,
            c.elt_size,
            c.cache_size,
            c.private_data_size,
            c.socket,
            c.flags,
        )
        .unwrap_err()
    };
    let long = "p".repeat(MEMPOOL_NAME_MAX + 1);
    assert_eq!(refuse(config(&long, 100, 0)).kind(), ErrorKind::NameTooLong);
    assert_eq!(refuse(config("", 100, 0)).kind(), ErrorKind::Inval);
    assert_eq!(refuse(config("zero", 0, 0)).kind(), ErrorKind::Inval);
    let e = refuse(config("bigcache", 10_000, CACHE_MAX_SIZE + 1));
    assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    // flush threshold 1.5 x 100 = 150 > 120 objects.
    let e = refuse(config("cache_vs_n", 120, 100));
    assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    let mut bad_flags = config("flags", 100, 0);
    bad_flags.flags = MempoolFlags::from_bits_retain(0x8000);
    assert_eq!(refuse(bad_flags).kind(), ErrorKind::Inval);
    let mut internal = config("internal", 100, 0);
    internal.flags = MempoolFlags::POOL_CREATED;
    assert_eq!(refuse(internal).kind(), ErrorKind::Inval);
    // Elements whose slot, header and padding included, would not fit the u32 sizes.
    for elt_size in [u32::MAX, u32::MAX - 120] {
        let e = refuse(MempoolConfig {
            elt_size,
            ..config("vast", 3, 0)
        });
        assert_eq!(e.kind(), ErrorKind::Inval, "{elt_size}: {e}");
    }
    assert_eq!(eal.memzones().count(), before, "nothing reserved");

    // The longest name works; a second pool of that name is EEXIST, the first intact.
    let name = "q".repeat(MEMPOOL_NAME_MAX);
    let pool = Mempool::create(
        &eal,
        &name,
        100,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let e = Mempool::create(
        &eal,
        &name,
        100,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist, "{e}");
    assert!(matches!(e, MempoolError::AlreadyExists(_)));
    take_all_then_give_back(&pool);
    pool.free().unwrap();
    assert_eq!(eal.memzones().count(), before);
}

#[test]
fn obj_init_content_survives_and_pool_init_fills_private_data() {
    let eal = eal("init");
    let mut c = config("inits", 200, 16);
    c.private_data_size = 24;
    let pool = Mempool::create_with(
        &eal,
        &c,
        |p| {
            // SAFETY: the private area has room for 24 bytes and nothing else uses it.
            unsafe { p.private_data().cast::<[u8; 24]>().write([7; 24]) };
        },
        |_, obj, i| {
            // SAFETY: obj is a fresh object of 128 bytes.
            unsafe { obj.cast::<u32>().write(i * 3 + 1) };
        },
    )
    .unwrap();
    // SAFETY: written by pool_init.
    let private = unsafe { pool.private_data().cast::<[u8; 24]>().read() };
    assert_eq!(private, [7; 24]);
    assert_eq!(pool.private_data() as usize % 64, 0);
    let mut seen = HashSet::new();
    let mut objs = vec![core::ptr::null_mut(); 200];
    pool.get_bulk(&mut objs).unwrap();
    for &obj in &objs {
        // SAFETY: every object was written by obj_init.
        let v = unsafe { obj.cast::<u32>().read() };
        assert_eq!(v % 3, 1);
        assert!(seen.insert(v));
    }
    // SAFETY: the objects came from this pool.
    unsafe { pool.put_bulk(&objs) };
    assert_eq!(pool.obj_iter(|_, _, _| {}), 200);
    pool.free().unwrap();
}

#[test]
fn caches_count_in_avail_and_flush_past_the_threshold() {
    let eal = eal("cache");
    let pool = Mempool::create(
        &eal,
        "cached",
        1000,
        64,
        100,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    // The main thread is lcore 0 of this EAL, so it has a cache.
    let obj = pool.get().unwrap();
    assert_eq!(
        pool.lcore_cache_len(),
        100,
        "a miss refills to the cache size"
    );
    assert_eq!(pool.avail_count(), 999, "cached objects count as available");
    // SAFETY: the object came from this pool.
    unsafe { pool.put(obj) };
    assert_eq!(pool.lcore_cache_len(), 101);
    let mut objs = vec![core::ptr::null_mut(); 150];
    pool.get_bulk(&mut objs).unwrap();
    // 101 cached, 49 short: a refill of 100 + 49, of which 49 are taken.
    assert_eq!(pool.lcore_cache_len(), 100);
    // SAFETY: as above.
    unsafe { pool.put_bulk(&objs[..50]) };
    // 150 <= the threshold of 150: they stay; 100 more would pass it: the 150 are flushed
    // first and the 100 stay.
    assert_eq!(pool.lcore_cache_len(), 150);
    // SAFETY: as above.
    unsafe { pool.put_bulk(&objs[50..]) };
    assert_eq!(pool.lcore_cache_len(), 100);
    pool.flush_lcore_cache();
    assert_eq!(pool.lcore_cache_len(), 0);
    assert!(pool.is_full());

    // A thread without an lcore id bypasses the cache.
    std::thread::scope(|s| {
        s.spawn(|| {
            let obj = pool.get().unwrap();
            assert_eq!(pool.lcore_cache_len(), 0);
            // SAFETY: the object came from this pool.
            unsafe { pool.put(obj) };
        });
    });
    assert!(pool.is_full());

    // A user cache: its objects are not counted, flush gives them back; another pool's
    // user of the same cache is refused.
    let mut cache = UserCache::new(64).unwrap();
    let mut objs = vec![core::ptr::null_mut(); 10];
    assert!(cache.is_empty());
    pool.generic_get(&mut objs, Some(&mut cache)).unwrap();
    assert_eq!(cache.len(), 64);
    assert!(!cache.is_empty());
    let shown = format!("{cache:?}");
    assert!(
        shown.contains("size: 64") && shown.contains("len: 64"),
        "a user cache's debug form gives its size and length: {shown}"
    );
    assert_eq!(pool.avail_count(), 1000 - 74);
    // SAFETY: the objects came from this pool.
    unsafe { pool.generic_put(&objs, Some(&mut cache)) }.unwrap();
    let other = Mempool::create(
        &eal,
        "other",
        100,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let e = other.generic_get(&mut objs, Some(&mut cache)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    cache.flush(&pool).unwrap();
    assert!(pool.is_full());
    assert_eq!(UserCache::new(0).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(UserCache::new(513).unwrap_err().kind(), ErrorKind::Inval);
    other.free().unwrap();
    pool.free().unwrap();
}

#[test]
fn handler_cannot_change_after_populate_and_populate_twice_is_refused() {
    let eal = eal("twice");
    let mut pool = Mempool::create_empty(&eal, &config("twice", 100, 0)).unwrap();
    assert_eq!(pool.handler_name(), "ring_mp_mc");
    let e = pool.set_handler("no_such_handler").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert!(pool.is_non_io(), "no objects yet, so no IOVA");
    pool.populate_default().unwrap();
    let e = pool.set_handler("stack").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist, "{e}");
    assert_eq!(pool.handler_name(), "ring_mp_mc");
    let e = pool.populate_default().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist, "{e}");
    let e = pool.populate_anon().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist, "{e}");
    assert!(!pool.is_non_io(), "no-huge memory has IOVA = VA");
    take_all_then_give_back(&pool);
    pool.free().unwrap();

    // The SP_PUT/SC_GET flags pick the ring mode.
    for (flags, handler) in [
        (MempoolFlags::SP_PUT | MempoolFlags::SC_GET, "ring_sp_sc"),
        (MempoolFlags::SP_PUT, "ring_sp_mc"),
        (MempoolFlags::SC_GET, "ring_mp_sc"),
    ] {
        let mut c = config("modes", 100, 0);
        c.flags = flags;
        let pool = Mempool::create_empty(&eal, &c).unwrap();
        assert_eq!(pool.handler_name(), handler);
        pool.free().unwrap();
    }
}

#[test]
fn caller_memory_populates_and_is_freed_through_the_callback() {
    let eal = eal("caller");
    let mut pool = Mempool::create_empty(&eal, &config("callermem", 64, 0)).unwrap();
    let slot = pool.obj_size().total_size as usize;
    // Two 4 KiB pages of heap memory from the EAL, as a user would hand over; objects do
    // not straddle pages, so each page holds 4096 / slot of them.
    let per_page = 4096 / slot;
    let region = eal.heaps().zmalloc(2 * 4096, 4096).unwrap();
    let freed = Arc::new(AtomicUsize::new(0));
    let f = freed.clone();
    let base = Iova::new(0x1000_0000);
    // Too small for one object: EINVAL, nothing recorded.
    // SAFETY: the region is ours and stays alive until the callback frees it.
    let e = unsafe { pool.populate_iova(region.as_ptr(), base, slot / 2, None) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert_eq!(pool.nb_mem_chunks(), 0);
    // SAFETY: as above.
    let added = unsafe {
        pool.populate_iova(
            region.as_ptr(),
            base,
            2 * 4096,
            Some(Box::new(move |_, len| {
                f.store(len, Ordering::SeqCst);
            })),
        )
    }
    .unwrap();
    assert_eq!(added as usize, 2 * per_page);
    assert!(!pool.is_non_io());
    // IOVAs follow the caller's base.
    let mut iovas = Vec::new();
    pool.obj_iter(|_, obj, _| {
        // SAFETY: obj is an object of this pool.
        iovas.push((obj as usize, unsafe { Mempool::obj_iova(obj) }));
    });
    for (va, iova) in &iovas {
        let offset = (va - region.as_ptr() as usize) as u64;
        assert_eq!(*iova, Iova::new(0x1000_0000 + offset));
    }
    // The rest from anonymous memory is refused (already has memory)... but populate_iova
    // can add more: memory of unknown IOVA does not make the pool non-IO again.
    let region2 = eal.heaps().zmalloc(40 * slot + 64, 64).unwrap();
    // SAFETY: as above.
    let added2 = unsafe { pool.populate_iova(region2.as_ptr(), None, 40 * slot, None) }.unwrap();
    assert_eq!(
        added2 as usize,
        64 - 2 * per_page,
        "only the rest of the 64 fit"
    );
    assert!(pool.is_full());
    assert_eq!(pool.nb_mem_chunks(), 2);
    let mut chunks = Vec::new();
    pool.mem_iter(|_, c| chunks.push(*c));
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].objects + chunks[1].objects, 64);
    // Full: ENOSPC.
    // SAFETY: as above.
    let e = unsafe { pool.populate_iova(region2.as_ptr(), None, slot, None) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    take_all_then_give_back(&pool);
    pool.free().unwrap();
    assert_eq!(freed.load(Ordering::SeqCst), 2 * 4096, "free callback ran");
    // SAFETY: the pool is gone; the blocks are ours again.
    unsafe { eal.heaps().free(region) }.unwrap();
    // SAFETY: as above.
    unsafe { eal.heaps().free(region2) }.unwrap();
    eal.heaps().check().unwrap();
}

#[test]
fn anonymous_memory_makes_a_non_io_pool() {
    let eal = eal("anon");
    let mut pool = Mempool::create_empty(&eal, &config("anon", 500, 32)).unwrap();
    assert_eq!(pool.populate_anon().unwrap(), 500);
    assert!(pool.is_non_io());
    pool.obj_iter(|_, obj, _| {
        // SAFETY: obj is an object of this pool.
        assert_eq!(unsafe { Mempool::obj_iova(obj) }, None);
    });
    take_all_then_give_back(&pool);
    pool.free().unwrap();
}

#[test]
fn single_region_populate_makes_one_chunk() {
    let eal = eal("single");
    let mut pool = Mempool::create_empty(&eal, &config("umem", 1000, 0)).unwrap();
    assert_eq!(pool.populate_single_region().unwrap(), 1000);
    assert_eq!(pool.nb_mem_chunks(), 1);
    let mut chunk = None;
    pool.mem_iter(|_, c| chunk = Some(*c));
    let chunk = chunk.unwrap();
    assert_eq!(chunk.objects, 1000);
    pool.obj_iter(|_, obj, _| {
        let a = obj as usize;
        assert!(a > chunk.addr && a < chunk.addr + chunk.len);
    });
    pool.free().unwrap();
}

#[test]
fn objects_never_straddle_a_page_unless_allowed() {
    let eal = eal("pages");
    // 1000-byte elements make 1088-byte slots: 3 per 4 KiB page, and straddling would be
    // common if allowed.
    for (flags, may_straddle) in [
        (MempoolFlags::empty(), false),
        (MempoolFlags::NO_IOVA_CONTIG, true),
    ] {
        let mut c = config("pages", 300, 0);
        c.elt_size = 1000;
        c.flags = flags;
        let pool = Mempool::create_with(&eal, &c, |_| {}, |_, _, _| {}).unwrap();
        let total = pool.obj_size().total_size as usize;
        let header = pool.obj_size().header_size as usize;
        let mut straddling = 0;
        pool.obj_iter(|_, obj, _| {
            let start = obj as usize - header;
            if start / 4096 != (start + total - 1) / 4096 {
                straddling += 1;
            }
        });
        if may_straddle {
            assert!(straddling > 0, "packed back to back, slots cross pages");
        } else {
            assert_eq!(straddling, 0);
        }
        pool.free().unwrap();
    }
}

#[test]
fn lookup_and_walk_find_pools_and_free_waits_for_other_handles() {
    let eal = eal("lookup");
    let pool = Mempool::create(
        &eal,
        "findme",
        100,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let found = Mempool::lookup(&eal, "findme").unwrap();
    let obj = found.get().unwrap();
    assert_eq!(pool.avail_count(), 99, "one pool, two handles");
    // SAFETY: the object came from this pool.
    assert_eq!(unsafe { Mempool::pool_name_of(obj.as_ptr()) }, "findme");
    // SAFETY: as above.
    unsafe { pool.put(obj) };
    let e = Mempool::lookup(&eal, "nobody").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    let mut names = Vec::new();
    Mempool::walk(&eal, |p| names.push(p.name().to_owned()));
    assert_eq!(names, ["findme"]);
    let e = pool.free().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "another handle is open");
    drop(found);
    let pool = Mempool::lookup(&eal, "findme").unwrap();
    pool.free().unwrap();
    assert!(Mempool::lookup(&eal, "findme").is_err());
}

#[test]
fn events_fire_and_callbacks_may_change_the_registry_during_one() {
    let eal = eal("events");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let later_id = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let self_id = Arc::new(Mutex::new(None));
    let me = self_id.clone();
    let later = later_id.clone();
    let s2 = seen.clone();
    let id = register_event_callback(move |event, pool| {
        if !pool.name().starts_with("ev_") {
            return;
        }
        s.lock()
            .unwrap()
            .push(("once", event, pool.name().to_owned()));
        // Unregister itself and register another, during the event.
        unregister_event_callback(me.lock().unwrap().unwrap()).unwrap();
        let s3 = s2.clone();
        *later.lock().unwrap() = Some(register_event_callback(move |event, pool| {
            if pool.name().starts_with("ev_") {
                s3.lock()
                    .unwrap()
                    .push(("later", event, pool.name().to_owned()));
            }
        }));
    });
    *self_id.lock().unwrap() = Some(id);
    let pool = Mempool::create(
        &eal,
        "ev_a",
        50,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    pool.free().unwrap();
    let pool = Mempool::create_empty(&eal, &config("ev_b", 50, 0)).unwrap();
    pool.free().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("once", MempoolEvent::Ready, "ev_a".to_owned()),
            ("later", MempoolEvent::Destroy, "ev_a".to_owned()),
            ("later", MempoolEvent::Destroy, "ev_b".to_owned()),
        ],
        "an unpopulated pool is never ready"
    );
    assert_eq!(
        unregister_event_callback(id).unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    unregister_event_callback(later_id.lock().unwrap().unwrap()).unwrap();
}

#[test]
fn typed_pool_hands_out_guards_that_return_on_drop() {
    let eal = eal("typed");
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Frame {
        seq: u64,
        bytes: [u8; 200],
    }
    let pool = TypedMempool::<Frame>::builder("frames", 64)
        .cache_size(8)
        .socket(Socket::Any)
        .flags(MempoolFlags::empty())
        .create(&eal, |i| Frame {
            seq: u64::from(i),
            bytes: [0; 200],
        })
        .unwrap();
    {
        let mut a = pool.get().unwrap();
        a.bytes[0] = 0xab;
        let seq = a.seq;
        assert!(seq < 64);
        assert_eq!(pool.raw().in_use_count(), 1);
        drop(a);
        assert_eq!(pool.raw().in_use_count(), 0);
        // The most recently put object comes back first (cache is a stack), content kept.
        let b = pool.get().unwrap();
        assert_eq!(b.seq, seq);
        assert_eq!(b.bytes[0], 0xab);
    }
    let batch = pool.get_array::<16>().unwrap();
    assert_eq!(pool.raw().in_use_count(), 16);
    pool.put_all(batch).unwrap();
    assert!(pool.raw().is_full());
    #[derive(Clone, Copy, Debug)]
    #[repr(align(128))]
    struct TooAligned(#[allow(dead_code)] u8);
    let e = TypedMempool::<TooAligned>::builder("aligned", 8)
        .create(&eal, |_| TooAligned(0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    pool.free().unwrap();
}

/// A user handler: a FIFO behind a mutex, counting calls. Its store is process-local, which
/// is enough for a pool used by one process.
struct CountingFifo {
    allocs: Arc<AtomicUsize>,
    frees: Arc<AtomicUsize>,
}

struct FifoStore {
    objs: Mutex<std::collections::VecDeque<usize>>,
}

impl dpmem_mempool::HandlerStore for FifoStore {
    fn enqueue(&self, objs: &[usize]) -> bool {
        self.objs.lock().unwrap().extend(objs);
        true
    }
    fn dequeue(&self, out: &mut [usize]) -> bool {
        let mut q = self.objs.lock().unwrap();
        if q.len() < out.len() {
            return false;
        }
        for slot in out.iter_mut() {
            *slot = q.pop_front().unwrap();
        }
        true
    }
    fn count(&self) -> u32 {
        self.objs.lock().unwrap().len() as u32
    }
}

impl dpmem_mempool::MempoolHandler for CountingFifo {
    fn name(&self) -> &str {
        "test_fifo"
    }
    fn alloc(
        &self,
        pool: &dpmem_mempool::PoolContext<'_>,
    ) -> Result<(u64, Box<dyn dpmem_mempool::HandlerStore>), String> {
        assert!(pool.size > 0);
        self.allocs.fetch_add(1, Ordering::SeqCst);
        let store = FifoStore {
            objs: Mutex::new(Default::default()),
        };
        Ok((0x1234, Box::new(store)))
    }
    fn attach(
        &self,
        _pool: &dpmem_mempool::PoolContext<'_>,
    ) -> Result<Box<dyn dpmem_mempool::HandlerStore>, String> {
        Err("a process-local FIFO cannot be attached".into())
    }
    fn free(
        &self,
        pool: &dpmem_mempool::PoolContext<'_>,
        _store: Box<dyn dpmem_mempool::HandlerStore>,
    ) {
        assert_eq!(pool.pool_data, 0x1234, "the handler's word comes back");
        self.frees.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_registered_user_handler_serves_a_pool() {
    let eal = eal("userhandler");
    let allocs = Arc::new(AtomicUsize::new(0));
    let frees = Arc::new(AtomicUsize::new(0));
    dpmem_mempool::register_handler(Arc::new(CountingFifo {
        allocs: allocs.clone(),
        frees: frees.clone(),
    }))
    .unwrap();
    let again = dpmem_mempool::register_handler(Arc::new(CountingFifo {
        allocs: allocs.clone(),
        frees: frees.clone(),
    }))
    .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Exist);
    assert!(handler_names().iter().any(|n| n == "test_fifo"));

    let mut pool = Mempool::create_empty(&eal, &config("fifo", 100, 0)).unwrap();
    pool.set_handler("test_fifo").unwrap();
    assert_eq!(
        allocs.load(Ordering::SeqCst),
        0,
        "the store is built at populate"
    );
    pool.populate_default().unwrap();
    assert_eq!(allocs.load(Ordering::SeqCst), 1);
    // FIFO: the first object in is the first out.
    let mut first = None;
    pool.obj_iter(|_, obj, i| {
        if i == 0 {
            first = Some(obj);
        }
    });
    assert_eq!(pool.get().unwrap().as_ptr(), first.unwrap());
    let e = Mempool::lookup(&eal, "fifo").unwrap_err();
    assert!(e.to_string().contains("cannot be attached"), "{e}");
    take_all_after_one_out(&pool, first.unwrap());
    pool.free().unwrap();
    assert_eq!(frees.load(Ordering::SeqCst), 1);
}

fn take_all_after_one_out(pool: &Mempool<'_>, out: *mut u8) {
    assert_eq!(pool.in_use_count(), 1);
    // SAFETY: the object came from this pool.
    unsafe { pool.put(core::ptr::NonNull::new(out).unwrap()) };
    take_all_then_give_back(pool);
}

#[test]
fn populate_virt_checks_pages_and_frees_the_region_once() {
    let eal = eal("virt");
    let mut pool = Mempool::create_empty(&eal, &config("virtmem", 30, 0)).unwrap();
    let region = eal.heaps().zmalloc(4 * 4096, 4096).unwrap();
    // SAFETY: misaligned on purpose: refused before the memory is touched.
    let e = unsafe { pool.populate_virt(region.as_ptr().wrapping_add(64), 4096, 4096, None) }
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    // SAFETY: as above: a length that is not whole pages.
    let e = unsafe { pool.populate_virt(region.as_ptr(), 4000, 4096, None) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert_eq!(pool.nb_mem_chunks(), 0);
    let freed = Arc::new(Mutex::new(Vec::new()));
    let f = freed.clone();
    // SAFETY: the region is ours and stays alive until the callback runs.
    let added = unsafe {
        pool.populate_virt(
            region.as_ptr(),
            4 * 4096,
            4096,
            Some(Box::new(move |addr, len| {
                f.lock().unwrap().push((addr as usize, len))
            })),
        )
    }
    .unwrap();
    assert_eq!(added, 30);
    // Each chunk reports its own memory, inside the region.
    let mut covered = 0;
    pool.mem_iter(|_, c| {
        assert!(c.addr >= region.as_ptr() as usize);
        assert!(c.addr + c.len <= region.as_ptr() as usize + 4 * 4096);
        covered += c.len;
    });
    assert!(covered <= 4 * 4096);
    take_all_then_give_back(&pool);
    pool.free().unwrap();
    assert_eq!(
        *freed.lock().unwrap(),
        [(region.as_ptr() as usize, 4 * 4096)],
        "called once, with the whole region"
    );
    // SAFETY: the pool is gone; the block is ours again.
    unsafe { eal.heaps().free(region) }.unwrap();
}

#[test]
fn a_pool_lives_on_an_external_heap_when_given_its_socket() {
    let eal = eal("ext_heap_pool");
    let len = 8 << 20;
    let addr = dpmem_sys::mapping::reserve(len, 4096, None).unwrap();
    // SAFETY: the reservation made just above, of `len` bytes, holds nothing yet.
    unsafe { dpmem_sys::mapping::map_anonymous_fixed(addr, len, None, false) }.unwrap();
    let mem = addr as *mut u8;
    let heaps = eal.heaps();
    let socket = heaps.heap_create("user_frames").unwrap();
    // SAFETY: the mapping is read-write, used by nothing else, and outlives its time in the
    // heap (removed below, before it is unmapped).
    unsafe { heaps.heap_memory_add("user_frames", mem, len, None, 4096) }.unwrap();
    let pool = Mempool::create(
        &eal,
        "on_user_mem",
        1000,
        2048,
        32,
        0,
        socket,
        MempoolFlags::empty(),
    )
    .unwrap();
    let inside = |p: *mut u8| (mem as usize..mem as usize + len).contains(&(p as usize));
    let mut objs = vec![core::ptr::null_mut(); 1000];
    pool.get_bulk(&mut objs).unwrap();
    assert!(
        objs.iter().all(|&o| inside(o)),
        "every object in the user's memory"
    );
    // SAFETY: the objects came from this pool.
    unsafe { pool.put_bulk(&objs) };
    assert!(pool.is_full());
    assert_eq!(
        heaps
            .heap_memory_remove("user_frames", mem, len)
            .unwrap_err()
            .kind(),
        ErrorKind::Busy,
        "the pool holds the memory"
    );
    pool.free().unwrap();
    heaps.heap_memory_remove("user_frames", mem, len).unwrap();
    heaps.heap_destroy("user_frames").unwrap();
    // SAFETY: nothing uses the mapping any more.
    unsafe { dpmem_sys::mapping::release(mem as usize, len) }.unwrap();
}

#[test]
fn other_handles_open_a_pool_only_once_it_is_fully_populated() {
    let eal = eal("not_ready");
    let mut pool = Mempool::create_empty(&eal, &config("half_built", 100, 0)).unwrap();
    // Its builder may still change the handler and write the chunk lists: nobody else may
    // read them yet.
    let e = Mempool::lookup(&eal, "half_built").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt, "{e}");
    assert!(matches!(e, MempoolError::NotReady(_)), "{e}");
    let mut seen = Vec::new();
    Mempool::walk(&eal, |p| seen.push(p.name().to_owned()));
    assert!(!seen.contains(&"half_built".to_owned()));
    pool.set_handler("stack").unwrap();
    pool.populate_default().unwrap();
    let other = Mempool::lookup(&eal, "half_built").unwrap();
    assert_eq!(other.handler_name(), "stack");
    assert!(other.is_full());
    drop(other);
    pool.free().unwrap();
}

/// A user handler whose store holds at most `limit` objects and refuses (all or none) an
/// enqueue past it: what a store of fixed capacity does.
struct BoundedFifo {
    limit: usize,
}

struct BoundedStore {
    limit: usize,
    objs: Mutex<Vec<usize>>,
}

impl dpmem_mempool::HandlerStore for BoundedStore {
    fn enqueue(&self, objs: &[usize]) -> bool {
        let mut held = self.objs.lock().unwrap();
        if held.len() + objs.len() > self.limit {
            return false;
        }
        held.extend(objs);
        true
    }
    fn dequeue(&self, out: &mut [usize]) -> bool {
        let mut held = self.objs.lock().unwrap();
        if held.len() < out.len() {
            return false;
        }
        let rest = held.len() - out.len();
        out.copy_from_slice(&held[rest..]);
        held.truncate(rest);
        true
    }
    fn count(&self) -> u32 {
        self.objs.lock().unwrap().len() as u32
    }
}

impl dpmem_mempool::MempoolHandler for BoundedFifo {
    fn name(&self) -> &str {
        "test_bounded"
    }
    fn alloc(
        &self,
        _pool: &dpmem_mempool::PoolContext<'_>,
    ) -> Result<(u64, Box<dyn dpmem_mempool::HandlerStore>), String> {
        let store = BoundedStore {
            limit: self.limit,
            objs: Mutex::new(Vec::new()),
        };
        Ok((0, Box::new(store)))
    }
    fn attach(
        &self,
        _pool: &dpmem_mempool::PoolContext<'_>,
    ) -> Result<Box<dyn dpmem_mempool::HandlerStore>, String> {
        Err("a process-local store cannot be attached".into())
    }
    fn free(
        &self,
        _pool: &dpmem_mempool::PoolContext<'_>,
        _store: Box<dyn dpmem_mempool::HandlerStore>,
    ) {
    }
}

#[test]
fn a_chunk_the_store_refuses_leaves_the_pool_as_it_was() {
    let eal = eal("refusedchunk");
    bounded_handler();
    let mut pool = Mempool::create_empty(&eal, &config("bounded", 100, 0)).unwrap();
    pool.set_handler("test_bounded").unwrap();
    let slot = pool.obj_size().total_size as usize;
    let first = eal.heaps().zmalloc(30 * slot + 64, 64).unwrap();
    let second = eal.heaps().zmalloc(30 * slot + 64, 64).unwrap();
    // Objects do not straddle pages, so a region may hold one fewer than its bytes say.
    // SAFETY: the regions are ours and outlive the pool (freed below, after it).
    let kept = unsafe { pool.populate_iova(first.as_ptr(), None, 30 * slot + 64, None) }.unwrap();
    assert!(kept >= 28, "{kept}");
    let heap_blocks = || -> u64 { eal.heaps().all_stats().iter().map(|s| s.alloc_count).sum() };
    let blocks_before = heap_blocks();

    // 28 or more would pass the store's 40: refused, and nothing of the second region stays.
    // SAFETY: as above.
    let e = unsafe { pool.populate_iova(second.as_ptr(), None, 30 * slot + 64, None) }.unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    assert_eq!(pool.populated_size(), kept);
    assert_eq!(pool.nb_mem_chunks(), 1);
    assert_eq!(
        heap_blocks(),
        blocks_before,
        "the refused chunk's record is given back"
    );
    let first_range = first.as_ptr() as usize..first.as_ptr() as usize + 30 * slot + 64;
    let mut listed = 0;
    pool.obj_iter(|_, obj, _| {
        assert!(
            first_range.contains(&(obj as usize)),
            "{obj:?} is not of the first region"
        );
        listed += 1;
    });
    assert_eq!(
        listed, kept,
        "the object list holds the first region's objects only"
    );
    let mut out = vec![core::ptr::null_mut(); kept as usize];
    pool.get_bulk(&mut out).unwrap();
    assert!(out.iter().all(|&obj| first_range.contains(&(obj as usize))));
    // SAFETY: the objects came from this pool just above.
    unsafe { pool.put_bulk(&out) };

    // A region the store can take still goes in after the refusal.
    let third = eal.heaps().zmalloc(5 * slot + 64, 64).unwrap();
    // SAFETY: as above.
    let added = unsafe { pool.populate_iova(third.as_ptr(), None, 5 * slot + 64, None) }.unwrap();
    assert!(added >= 4, "{added}");
    assert_eq!(pool.populated_size(), kept + added);
    pool.free().unwrap();
    for region in [first, second, third] {
        // SAFETY: the pool that used the regions is gone.
        unsafe { eal.heaps().free(region.cast()) }.unwrap();
    }
}

/// Registers [`BoundedFifo`] (store of 40) once for the tests of this binary.
fn bounded_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        dpmem_mempool::register_handler(Arc::new(BoundedFifo { limit: 40 })).unwrap();
    });
}

#[test]
fn a_populate_refused_after_its_first_runs_leaves_the_pool_empty() {
    // A memzone whose pages are not IOVA-contiguous goes into a pool a run of pages at a time,
    // each run a chunk, so a store can refuse a run after taking the ones before. Such memory on demand: an external heap of 4 KiB pages given IOVAs
    // with a gap after every page, under an EAL in IOVA-as-PA mode (real hugepages, root).
    if !common::hugepages_usable(8) {
        return;
    }
    let prefix = format!("mpruns{}", std::process::id());
    let eal =
        dpmem_eal::Eal::init(["runs", "-l", "0", "-m", "16", "--file-prefix", &prefix]).unwrap();
    if eal.iova_mode() != dpmem_eal::IovaMode::Pa {
        eprintln!("skipped: IOVA mode is {:?}, not PA", eal.iova_mode());
        return;
    }
    const PAGE: usize = 4096;
    const PAGES: usize = 64;
    let va = dpmem_sys::mapping::reserve(PAGES * PAGE, PAGE, None).unwrap();
    // SAFETY: the reservation made just above holds nothing yet.
    unsafe { dpmem_sys::mapping::map_anonymous_fixed(va, PAGES * PAGE, None, false) }.unwrap();
    let iovas: Vec<Iova> = (0..PAGES)
        .map(|i| Iova::new((0x40_0000_0000 + 2 * i * PAGE) as u64).unwrap())
        .collect();
    let heaps = eal.heaps();
    let socket = heaps.heap_create("gappy").unwrap();
    // SAFETY: the mapping is this test's, read-write, and stays until the heap lets it go.
    unsafe { heaps.heap_memory_add("gappy", va as *mut u8, PAGES * PAGE, Some(&iovas), PAGE) }
        .unwrap();

    bounded_handler();
    let mut c = config("boundedruns", 100, 0);
    c.socket = socket;
    let mut pool = Mempool::create_empty(&eal, &c).unwrap();
    pool.set_handler("test_bounded").unwrap();
    let zones_before = eal.memzones().count();
    let heap_blocks = || -> u64 { eal.heaps().all_stats().iter().map(|s| s.alloc_count).sum() };
    let blocks_before = heap_blocks();
    // The first runs go in, a later one is refused: the pool is empty again, as
    // `populate_default` promises, and has given back its memzone and chunk records.
    let e = pool.populate_default().unwrap_err();
    assert!(
        e.to_string().contains("refused") && !e.to_string().contains("refused 100 "),
        "a run is refused, not the whole pool at once: {e}"
    );
    assert_eq!(pool.populated_size(), 0);
    assert_eq!(pool.nb_mem_chunks(), 0);
    assert_eq!(
        eal.memzones().count(),
        zones_before,
        "the pool's memzone is given back"
    );
    assert_eq!(
        heap_blocks(),
        blocks_before,
        "the chunk records are given back"
    );
    let mut listed = 0;
    pool.obj_iter(|_, _, _| listed += 1);
    assert_eq!(listed, 0);
    pool.free().unwrap();
    heaps
        .heap_memory_remove("gappy", va as *mut u8, PAGES * PAGE)
        .unwrap();
    heaps.heap_destroy("gappy").unwrap();
    drop(eal);
    // SAFETY: the heap that used the mapping is gone.
    unsafe { dpmem_sys::mapping::release(va, PAGES * PAGE) }.unwrap();
}
