//! A real secondary process (this test binary re-executed) finds the primary's pools by
//! name and takes and returns objects at the same addresses; a pool a secondary creates on new
//! pages is used by the primary and another secondary at once, and leaves nothing when freed.

use dpmem_eal::{Eal, ProcessRole, Socket};
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};

mod common;

#[test]
fn a_secondary_uses_the_primarys_pools() {
    if !common::hugepages_usable(16) {
        return;
    }
    let prefix = format!("mpmp{}_", std::process::id());
    let eal = Eal::init(["primary", "-l", "0", "-m", "16", "--file-prefix", &prefix]).unwrap();
    let pools: Vec<Mempool<'_>> = ["ring_mp_mc", "lf_stack"]
        .iter()
        .map(|handler| {
            let config = MempoolConfig {
                name: &format!("shared_{handler}"),
                n: 1000,
                elt_size: 256,
                cache_size: 32,
                private_data_size: 64,
                socket: Socket::Any,
                flags: MempoolFlags::empty(),
            };
            let mut pool = Mempool::create_empty(&eal, &config).unwrap();
            pool.set_handler(handler).unwrap();
            pool.populate_default().unwrap();
            // SAFETY: the private area has 64 bytes; nothing else uses it.
            unsafe { pool.private_data().cast::<u64>().write(0x5eed) };
            pool
        })
        .collect();
    for pool in &pools {
        assert!(!pool.is_non_io());
        // Keep 10 objects out, marked, for the secondary to find in obj_iter.
        let mut out = vec![core::ptr::null_mut(); 10];
        pool.get_bulk(&mut out).unwrap();
        for &obj in &out {
            // SAFETY: the object is ours.
            unsafe { obj.cast::<u64>().write(0xabcd) };
        }
        std::mem::forget(out);
    }
    dpmem_testkit::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_body",
        |c| {
            c.env("DPMEM_MEMPOOL_TEST_PREFIX", &prefix);
        },
    );
    for pool in &pools {
        // The secondary kept 5 objects out and wrote its mark into them.
        assert_eq!(pool.in_use_count(), 15, "{}", pool.dump());
        let mut marked = 0;
        pool.obj_iter(|_, obj, _| {
            // SAFETY: every object has 256 bytes; reading them races with nobody now.
            if unsafe { obj.cast::<u64>().read() } == 0x5ec0 {
                marked += 1;
            }
        });
        assert_eq!(marked, 5);
        pool.audit().unwrap();
    }
}

#[test]
#[ignore = "run by a_secondary_uses_the_primarys_pools in a child process"]
fn secondary_body() {
    let prefix = std::env::var("DPMEM_MEMPOOL_TEST_PREFIX").expect("run by the primary test");
    let eal =
        // Lcore id 1 (the primary is lcore 0: per-lcore caches are per id), on the CPU the
        // primary's affinity left us.
        Eal::init(["secondary", "--proc-type=secondary", "--lcores", "1@0", "--file-prefix", &prefix])
            .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    for handler in ["ring_mp_mc", "lf_stack"] {
        let pool = Mempool::lookup(&eal, &format!("shared_{handler}")).unwrap();
        assert_eq!(pool.handler_name(), handler);
        assert_eq!(pool.size(), 1000);
        assert_eq!(pool.in_use_count(), 10);
        // SAFETY: the primary wrote a u64 there.
        assert_eq!(unsafe { pool.private_data().cast::<u64>().read() }, 0x5eed);
        let mut primary_marks = 0;
        pool.obj_iter(|_, obj, _| {
            // SAFETY: objects have 256 bytes.
            if unsafe { obj.cast::<u64>().read() } == 0xabcd {
                primary_marks += 1;
            }
        });
        assert_eq!(primary_marks, 10, "the same objects at the same addresses");
        // Take 100 (through lcore 1's cache), give 95 back, keep 5 marked.
        let mut objs = vec![core::ptr::null_mut(); 100];
        pool.get_bulk(&mut objs).unwrap();
        for &obj in &objs {
            // SAFETY: the objects are ours, 256 bytes each.
            unsafe { obj.cast::<u64>().write(0x5ec0) };
            // SAFETY: as above.
            assert!(unsafe { pool.owns(obj) });
        }
        // SAFETY: the objects came from this pool.
        unsafe { pool.put_bulk(&objs[5..]) };
        for &obj in &objs[5..] {
            // Unmark what goes back, so the primary counts only the 5 kept.
            // SAFETY: the object is back in the pool; nothing else runs on it now.
            unsafe { obj.cast::<u64>().write(0) };
        }
        pool.flush_lcore_cache();
        assert_eq!(pool.in_use_count(), 15);
    }
}

/// Objects of the pool a secondary creates on pages the primary maps for it.
const GROWN_POOL: &str = "grown_by_secondary";
const GROWN_N: u32 = 4096;
/// 4096 objects of 2 KiB: 8 MiB and more, on pages none of the processes had.
const GROWN_ELT: u32 = 2048;
/// The mailbox (a memzone reserved before anyone attached): the creator's first object.
const GROWN_MAILBOX: &str = "grown_pool_mailbox";
const CHILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The pattern of byte `at` of object `index`.
fn pattern(index: u32, at: usize) -> u8 {
    (index as usize).wrapping_mul(31).wrapping_add(at) as u8
}

/// Whether object `obj` (number `index`) holds its pattern, from byte `from` on.
///
/// # Safety
/// `obj` is an object of the grown pool (`GROWN_ELT` bytes) that nobody writes meanwhile.
unsafe fn holds_pattern(obj: *const u8, index: u32, from: usize) -> bool {
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(obj, GROWN_ELT as usize) };
    bytes[from..]
        .iter()
        .enumerate()
        .all(|(at, &b)| b == pattern(index, at + from))
}

fn grown_mailbox(eal: &Eal) -> &'static std::sync::atomic::AtomicU64 {
    let zone = eal.memzones().lookup(GROWN_MAILBOX).expect("the mailbox");
    // SAFETY: the zone has 8 bytes or more, cache-line aligned, outlives the test's EALs and is
    // only ever accessed through this atomic.
    unsafe { &*(zone.as_ptr() as *const std::sync::atomic::AtomicU64) }
}

fn child_line() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    line.trim().to_owned()
}

/// Takes 100 objects, checks and marks them, gives them back: what a user of the pool does.
fn get_check_put(pool: &Mempool<'_>, indices: &std::collections::HashMap<usize, u32>, mark: u8) {
    let mut objs = vec![core::ptr::null_mut(); 100];
    pool.get_bulk(&mut objs).unwrap();
    for &obj in &objs {
        let index = indices[&(obj as usize)];
        // SAFETY: an object of this pool, ours until put back; its first 8 bytes are the
        // takers' marks, the rest the creator's pattern.
        let intact = unsafe { holds_pattern(obj, index, 8) };
        assert!(intact, "object {index}");
        // SAFETY: as above; the mark goes into the takers' bytes.
        unsafe { obj.write(mark) };
    }
    // SAFETY: the objects came from this pool and are not used after.
    unsafe { pool.put_bulk(&objs) };
    pool.flush_lcore_cache();
}

/// Each object's number, by address.
fn object_indices(pool: &Mempool<'_>) -> std::collections::HashMap<usize, u32> {
    let mut indices = std::collections::HashMap::new();
    pool.obj_iter(|_, obj, index| {
        indices.insert(obj as usize, index);
    });
    indices
}

/// A secondary creates a pool that needs pages nobody had: it asks the primary, which maps
/// them in every process before answering. The primary and a second secondary then use the
/// pool at once — the second reads the first object before any dpmem call, and the pages were
/// announced to it before its lookup — and when the creator frees it, the pages go back in
/// every process.
#[test]
fn a_secondary_creates_a_pool_on_new_pages_that_the_others_use_at_once() {
    if !common::hugepages_usable(24) {
        return;
    }
    let prefix = format!("mpgrownpool{}_", std::process::id());
    // No -m: the primary maps pages on demand, and has only what it needed at start-up.
    let eal = Eal::init(["primary", "-l", "0", "--file-prefix", &prefix]).unwrap();
    eal.memzones()
        .reserve(
            GROWN_MAILBOX,
            64,
            Socket::Node(0),
            dpmem_eal::MemzoneFlags::empty(),
        )
        .unwrap();
    let (bytes_before, heap_before, zones_before) = (
        eal.memory().socket_bytes(Socket::Node(0)),
        eal.heaps().stats(Socket::Node(0)).unwrap(),
        eal.memzones().count(),
    );
    let exe = std::env::current_exe().unwrap();
    let spawn = |body: &str, lcores: &str| {
        dpmem_testkit::ChildTest::spawn(&exe, body, |c| {
            c.env("DPMEM_MEMPOOL_TEST_PREFIX", &prefix)
                .env("DPMEM_MEMPOOL_TEST_LCORES", lcores);
        })
    };
    let mut creator = spawn("pool_creating_secondary_body", "1@0");
    let mut user = spawn("pool_using_secondary_body", "2@0");
    creator.wait_for_line("attached", CHILD_LIMIT);
    user.wait_for_line("attached", CHILD_LIMIT);

    creator.send("create");
    creator.wait_for_line("created", CHILD_LIMIT);
    let grown = eal.memory().socket_bytes(Socket::Node(0));
    assert!(
        grown >= bytes_before + u64::from(GROWN_N * GROWN_ELT),
        "the pool's pages were mapped for it: {bytes_before} -> {grown} bytes"
    );
    // The second secondary and the primary at once.
    user.send("use");
    let pool = Mempool::lookup(&eal, GROWN_POOL).expect("the secondary's pool by name");
    assert_eq!(pool.size(), GROWN_N);
    let indices = object_indices(&pool);
    assert_eq!(indices.len(), GROWN_N as usize);
    for (&obj, &index) in &indices {
        // SAFETY: an object of the pool; its first 8 bytes may be a taker's mark.
        let intact = unsafe { holds_pattern(obj as *const u8, index, 8) };
        assert!(intact, "object {index}");
    }
    for _ in 0..20 {
        get_check_put(&pool, &indices, 0xAA);
    }
    user.wait_for_line("used", CHILD_LIMIT);
    pool.audit().unwrap();
    assert_eq!(pool.in_use_count(), 0, "{}", pool.dump());
    drop(pool);
    creator.send("free");
    creator.wait_for_line("freed", CHILD_LIMIT);
    user.send("check");
    let (eal, _) = user.assert_passed_keeping(CHILD_LIMIT, eal);
    let (eal, _) = creator.assert_passed_keeping(CHILD_LIMIT, eal);
    // Nothing of the pool stays: its memzones, its heap blocks and its pages are gone.
    assert!(matches!(
        Mempool::lookup(&eal, GROWN_POOL),
        Err(dpmem_mempool::MempoolError::NotFound(_))
    ));
    assert_eq!(eal.memzones().count(), zones_before);
    assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap(), heap_before);
    assert_eq!(eal.memory().socket_bytes(Socket::Node(0)), bytes_before);
    eal.heaps().check().unwrap();
    drop(eal);
    if let Some(dir) = dpmem_testkit::mount_2m() {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "page files left: {left:?}");
    }
}

fn grown_pool_secondary() -> &'static Eal {
    let prefix = std::env::var("DPMEM_MEMPOOL_TEST_PREFIX").expect("run by the primary test");
    let lcores = std::env::var("DPMEM_MEMPOOL_TEST_LCORES").unwrap();
    // Lcore ids of their own (per-lcore caches are per id), on the CPU the primary left us.
    let eal = Eal::init([
        "secondary",
        "--proc-type=auto",
        "--lcores",
        &lcores,
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    Box::leak(Box::new(eal))
}

#[test]
#[ignore = "run by a_secondary_creates_a_pool_on_new_pages_that_the_others_use_at_once"]
fn pool_creating_secondary_body() {
    let eal = grown_pool_secondary();
    println!("attached");
    assert_eq!(child_line(), "create");
    let pool = Mempool::create_with(
        eal,
        &MempoolConfig {
            name: GROWN_POOL,
            n: GROWN_N,
            elt_size: GROWN_ELT,
            cache_size: 32,
            private_data_size: 0,
            socket: Socket::Node(0),
            flags: MempoolFlags::empty(),
        },
        |_| {},
        |_, obj, index| {
            // SAFETY: a fresh object of the pool, `GROWN_ELT` bytes, nobody else's yet.
            let bytes = unsafe { std::slice::from_raw_parts_mut(obj, GROWN_ELT as usize) };
            for (at, b) in bytes.iter_mut().enumerate() {
                *b = pattern(index, at);
            }
        },
    )
    .expect("a pool on pages the primary maps for this secondary");
    pool.obj_iter(|_, obj, index| {
        if index == 0 {
            grown_mailbox(eal).store(obj as u64, std::sync::atomic::Ordering::Release);
        }
    });
    println!("created");
    assert_eq!(child_line(), "free");
    pool.flush_lcore_cache();
    pool.audit().unwrap();
    pool.free().expect("the creator frees its pool");
    println!("freed");
}

#[test]
#[ignore = "run by a_secondary_creates_a_pool_on_new_pages_that_the_others_use_at_once"]
fn pool_using_secondary_body() {
    let eal = grown_pool_secondary();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = heard.clone();
    eal.memory()
        .register_event_callback("heard", move |event, va, len| {
            sink.lock().unwrap().push((event, va, len));
        })
        .unwrap();
    let slot = grown_mailbox(eal);
    println!("attached");
    assert_eq!(child_line(), "use");
    // Before any dpmem call: the creator's first object, its pages mapped here by the round
    // that ran before the creator's call returned.
    let first = slot.load(std::sync::atomic::Ordering::Acquire);
    assert_ne!(first, 0, "the creator published its first object");
    // SAFETY: object 0 of the pool; its first 8 bytes may be a taker's mark.
    let intact = unsafe { holds_pattern(first as *const u8, 0, 8) };
    assert!(intact, "object 0");
    let announced: Vec<(dpmem_eal::MemEvent, usize, usize)> = heard.lock().unwrap().clone();
    let pool = Mempool::lookup(eal, GROWN_POOL).expect("the other secondary's pool by name");
    let mut chunks = Vec::new();
    pool.mem_iter(|_, chunk| chunks.push((chunk.addr, chunk.len)));
    // Every page that starts inside the pool's memory was mapped after this process attached
    // (the mailbox's page aside, which the primary had before): the round announced each here
    // before the lookup, which would otherwise have caught up.
    let mailbox_page = slot as *const _ as usize & !((2 << 20) - 1);
    let pages: Vec<usize> = chunks
        .iter()
        .flat_map(|&(addr, len)| (addr.next_multiple_of(2 << 20)..addr + len).step_by(2 << 20))
        .collect();
    assert!(pages.len() >= 3, "the pool spans new pages: {chunks:x?}");
    for &page in &pages {
        let heard_before = announced.iter().any(|&(event, va, l)| {
            event == dpmem_eal::MemEvent::Alloc && va <= page && page < va + l
        });
        assert!(
            heard_before || page == mailbox_page,
            "page {page:#x} of the pool was not mapped before the lookup: {announced:x?}"
        );
    }
    let indices = object_indices(&pool);
    for _ in 0..20 {
        get_check_put(&pool, &indices, 0xBB);
    }
    drop(pool);
    println!("used");
    assert_eq!(child_line(), "check");
    // The creator freed the pool: its pages went back through the primary and the round
    // unmapped them here too.
    for &page in pages.iter().filter(|&&page| page != mailbox_page) {
        assert!(
            eal.memory().virt_to_memseg(page).is_none(),
            "page {page:#x} of the freed pool still mapped here"
        );
    }
}
