//! A secondary working while the primary maps and unmaps pages (dynamic mode): its heap calls
//! catch up under the heap lock, so it never carves a block out of a page it has not mapped or
//! out of a stale one; and memory event callbacks that call back into dpmem during a catch-up
//! do not deadlock it. (Found in review: both failed before the catch-up moved under the heap
//! lock and learnt to skip itself inside its own callbacks.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::{Eal, MemzoneFlags, Socket};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_HOTPLUG_PREFIX";

/// How long a secondary may take to attach, or to finish once told to.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

fn spawn_body(body: &str, prefix: &str) -> ChildTest {
    ChildTest::spawn(&std::env::current_exe().unwrap(), body, |command| {
        command.env(ENV_PREFIX, prefix);
    })
}

fn secondary() -> &'static Eal {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a secondary-hotplug test");
    Box::leak(Box::new(attach_secondary(&prefix)))
}

#[test]
fn a_secondary_allocates_while_the_primary_grows_and_shrinks_its_heap() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_allocates_while_the_primary_grows_and_shrinks_its_heap",
        64,
    ) {
        return;
    }
    let prefix = unique_prefix("hprace");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let mut child = spawn_body("racing_secondary_body", &prefix);
    child.wait_for_line("attached", CHILD_LIMIT);
    // Whole pages come and go while the secondary takes and frees blocks next to them.
    let mut rounds = 0u64;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait() {
            break status;
        }
        assert!(
            start.elapsed() < CHILD_LIMIT,
            "the secondary did not finish:\n{}",
            child.transcript()
        );
        if let Ok(block) = eal.heaps().malloc(5 << 20, 0) {
            std::thread::sleep(Duration::from_micros(200));
            // SAFETY: the block was just allocated and nothing else uses it.
            unsafe { eal.heaps().free(block) }.unwrap();
        }
        rounds += 1;
    };
    let rest = child.transcript();
    assert!(
        status.success(),
        "secondary failed after {rounds} primary rounds:\n{rest}"
    );
    assert!(rest.contains("1 passed"), "{rest}");
    eal.heaps().check().unwrap();
}

#[test]
#[ignore = "run by a_secondary_allocates_while_the_primary_grows_and_shrinks_its_heap"]
fn racing_secondary_body() {
    let eal = secondary();
    println!("attached");
    let start = Instant::now();
    let mut held = Vec::new();
    let mut blocks = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        // Stats walk every free header, some of them on pages the primary just mapped.
        eal.heaps()
            .stats(Socket::Node(0))
            .expect("stats of the shared heap");
        let Ok(block) = eal.heaps().malloc(512 << 10, 0) else {
            continue;
        };
        // Touch it all: a block on a page this process has not mapped, or on a stale one,
        // crashes here or shows up in the heap check and the free below.
        // SAFETY: a live block of 512 KiB.
        unsafe { std::ptr::write_bytes(block.as_ptr(), 0xA5, 512 << 10) };
        held.push(block);
        blocks += 1;
        if held.len() >= 60 {
            for block in held.drain(..) {
                // SAFETY: this process's own live block, freed once.
                unsafe { eal.heaps().free(block) }
                    .unwrap_or_else(|e| panic!("free of own block after {blocks} blocks: {e}"));
            }
        }
    }
    for block in held.drain(..) {
        // SAFETY: as above.
        unsafe { eal.heaps().free(block) }.unwrap();
    }
    assert!(blocks > 100, "only {blocks} blocks in 3 s");
    eal.heaps().check().unwrap();
}

#[test]
fn memory_callbacks_of_a_secondary_may_call_dpmem_during_its_catch_up() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "memory_callbacks_of_a_secondary_may_call_dpmem_during_its_catch_up",
        16,
    ) {
        return;
    }
    let prefix = unique_prefix("hpcb");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let mut child = spawn_body("reentrant_callback_body", &prefix);
    child.wait_for_line("attached", CHILD_LIMIT);
    let zone = eal
        .memzones()
        .reserve("late", 6 << 20, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    // SAFETY: the zone's bytes are ours until it is freed.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0x7E, zone.len) };
    child.send("go");
    let (eal, _) = child.assert_passed_keeping(CHILD_LIMIT, eal);
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
}

#[test]
#[ignore = "run by memory_callbacks_of_a_secondary_may_call_dpmem_during_its_catch_up"]
fn reentrant_callback_body() {
    let eal = secondary();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    eal.memory()
        .register_event_callback("calls_back", move |event, va, _| {
            // What a memory event callback may do (heap and memzone calls it may not, as in
            // DPDK): walk the memory, translate the page it hears of, ask for a catch-up
            // (skipped, as one is running), all under the hotplug lock the catch-up holds.
            let _ = eal
                .memory()
                .walk_segments(|_, _| core::ops::ControlFlow::Break(()));
            if event == dpmem_eal::MemEvent::Alloc {
                assert!(
                    eal.memory().virt_to_iova(va).is_some(),
                    "a page just mapped"
                );
            }
            eal.memory().sync_with_primary().unwrap();
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    println!("attached");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    // The catch-up runs from inside a walk, which holds the hotplug lock already (a walk may
    // ask for one; it may not call memzone functions, whose lock comes first).
    eal.memory()
        .walk_segments(|_, _| core::ops::ControlFlow::Break(eal.memory().sync_with_primary()))
        .expect("a segment to walk")
        .expect("the catch-up from inside the walk");
    let zone = eal
        .memzones()
        .lookup("late")
        .expect("the primary's new zone");
    // SAFETY: the primary's zone, mapped here by the catch-up in the walk.
    let bytes = unsafe { std::slice::from_raw_parts(zone.as_ptr(), zone.len) };
    assert!(bytes.iter().all(|&b| b == 0x7E), "the primary's bytes");
    assert!(
        calls.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "callbacks ran"
    );
}

/// A page the primary replaced (freed, then mapped again under a new file) whose new file the
/// secondary cannot open: the secondary's catch-up fails with the reason, and the stale page
/// is gone from it (announced freed, unmapped, recorded unmapped so the next catch-up maps the
/// new one) instead of staying mapped and recorded current after its Free was announced. The
/// test removes the new page files by hand; a secondary short of descriptors would fail the
/// same way.
#[test]
fn a_replaced_page_whose_new_file_cannot_be_opened_leaves_the_secondary() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_replaced_page_whose_new_file_cannot_be_opened_leaves_the_secondary",
        16,
    ) {
        return;
    }
    let dir = mount_2m().expect("hugepages_available checked the mount");
    let prefix = unique_prefix("hprepl");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let before = eal
        .memzones()
        .reserve("before", 6 << 20, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    let mut child = spawn_body("replaced_page_secondary_body", &prefix);
    child.wait_for_line("mapped", CHILD_LIMIT);
    // Freeing the zone gives its pages back; the next zone maps new pages, in new files, into
    // the same slots of the memseg list (the lowest free ones).
    let files_before = files_with_prefix(&dir, &prefix);
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&before) }.unwrap();
    let after = eal
        .memzones()
        .reserve("after", 6 << 20, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    assert_eq!(
        files_with_prefix(&dir, &prefix),
        files_before,
        "the new zone's pages went into the same slots"
    );
    remove_files_with_prefix(&dir, &prefix);
    child.send("go");
    let (eal, _) = child.assert_passed_keeping(CHILD_LIMIT, eal);
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&after) }.unwrap();
}

#[test]
#[ignore = "run by a_replaced_page_whose_new_file_cannot_be_opened_leaves_the_secondary"]
fn replaced_page_secondary_body() {
    let eal = secondary();
    let zone = eal.memzones().lookup("before").expect("the primary's zone");
    // SAFETY: the primary's zone, mapped here by the lookup.
    let first = unsafe { zone.as_ptr().read_volatile() };
    let _ = first;
    // Every page the zone covers: the primary replaces them all, and a catch-up that stopped
    // at the first failure would leave the later ones stale.
    let pages: Vec<usize> = (zone.va & !((2 << 20) - 1)..zone.va + zone.len)
        .step_by(2 << 20)
        .collect();
    assert!(pages.len() > 1, "a zone over several pages");
    let freed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = freed.clone();
    eal.memory()
        .register_event_callback("record_frees", move |event, va, len| {
            if event == dpmem_eal::MemEvent::Free {
                sink.lock().unwrap().push((va, len));
            }
        })
        .unwrap();
    let mapping_at = |va: usize| {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .find(|line| {
                let range = line.split_whitespace().next().unwrap_or_default();
                let (lo, hi) = range.split_once('-').unwrap_or_default();
                let (lo, hi) = (
                    usize::from_str_radix(lo, 16).unwrap_or(0),
                    usize::from_str_radix(hi, 16).unwrap_or(0),
                );
                lo <= va && va < hi
            })
            .unwrap_or_default()
            .to_owned()
    };
    for &page in &pages {
        let mapped = mapping_at(page);
        assert!(mapped.contains("map_"), "the zone's page file: {mapped}");
    }
    // Out of the primary's hotplug rounds (as a process still starting is): this process
    // catches up lazily, at its next call, which is the path under test.
    eal.ipc()
        .unwrap()
        .unregister_action("dpmem_mp_mem_sync")
        .unwrap();
    println!("mapped");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();

    let err = eal
        .memory()
        .sync_with_primary()
        .expect_err("the replaced page's new file is gone");
    assert!(err.to_string().contains("open primary page file"), "{err}");
    for &page in &pages {
        let stale = mapping_at(page);
        assert!(
            !stale.contains("map_"),
            "page {page:#x} is still mapped after a failed replace: {stale}"
        );
        assert!(
            freed
                .lock()
                .unwrap()
                .iter()
                .any(|&(va, len)| va <= page && page < va + len),
            "the Free of page {page:#x} was announced: {:?}",
            freed.lock().unwrap()
        );
    }
    // The next catch-up tries again (maps now, the pages being recorded unmapped) and fails
    // the same way, leaving the range unmapped.
    assert!(eal.memory().sync_with_primary().is_err());
    for &page in &pages {
        assert!(!mapping_at(page).contains("map_"));
    }
}

/// Small blocks a secondary frees in dynamic mode follow the same parking rule as the
/// primary's (it depends on the memory mode, not on the process), so the primary's consistency
/// check agrees with what the secondary did. The primary's two blocks are alone on a fresh
/// page: the first one freed parks (its busy neighbour keeps the page in use), the second
/// cannot (nothing busy is left on the page) and merges with the first. (Before the rule
/// followed the mode, the secondary parked both, and the primary's check reported the page.)
#[test]
fn small_blocks_a_secondary_frees_follow_the_primarys_parking_rule() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "small_blocks_a_secondary_frees_follow_the_primarys_parking_rule",
        16,
    ) {
        return;
    }
    let prefix = unique_prefix("hppark");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let heaps = eal.heaps();
    let upper = heaps.malloc(64, 0).unwrap();
    let lower = heaps.malloc(64, 0).unwrap();
    assert_eq!(
        heaps.stats(Socket::Node(0)).unwrap().total_bytes,
        2 << 20,
        "one fresh page"
    );
    let mut child = spawn_body("parking_secondary_body", &prefix);
    child.wait_for_line("attached", CHILD_LIMIT);
    child.send(&format!(
        "{:x} {:x}",
        upper.as_ptr() as usize,
        lower.as_ptr() as usize
    ));
    child.wait_for_line("freed upper", CHILD_LIMIT);
    heaps.check().unwrap();
    child.send("go");
    child.wait_for_line("freed lower", CHILD_LIMIT);
    heaps.check().unwrap();
    let (eal, _) = child.assert_passed_keeping(CHILD_LIMIT, eal);
    // With nothing busy left on it, the page went back to the system as the primary's own
    // free would have sent it: through the primary, which unmapped it in every process.
    let stats = eal.heaps().stats(Socket::Node(0)).unwrap();
    assert_eq!(
        (stats.alloc_count, stats.free_count, stats.total_bytes),
        (0, 0, 0)
    );
    eal.heaps().check().unwrap();
}

#[test]
#[ignore = "run by small_blocks_a_secondary_frees_follow_the_primarys_parking_rule"]
fn parking_secondary_body() {
    let eal = secondary();
    println!("attached");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let [upper, lower] = [0, 1].map(|i| {
        let hex = line.split_whitespace().nth(i).expect("two addresses");
        std::ptr::NonNull::new(usize::from_str_radix(hex, 16).unwrap() as *mut u8).unwrap()
    });
    // SAFETY: the primary handed this block over and uses it no more.
    unsafe { eal.heaps().free(upper) }.unwrap();
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { eal.heaps().validate(upper.as_ptr()) }.is_err());
    eal.heaps().check().unwrap();
    println!("freed upper");
    line.clear();
    std::io::stdin().read_line(&mut line).unwrap();
    // SAFETY: as above.
    unsafe { eal.heaps().free(lower) }.unwrap();
    eal.heaps().check().unwrap();
    println!("freed lower");
}
