//! Memory mapped by any process is usable in every attached process as soon as the call that
//! mapped it returns (DPDK's synchronous hotplug round): a secondary grows the shared heap
//! through the primary; a zone the primary reserves after two secondaries attached is read in
//! both with no further call; a request no node can serve brings the primary's error back,
//! and one secondary that cannot map a page makes the allocation fail everywhere, with nothing
//! left mapped. Real processes: this test binary re-executed as secondaries. The first two run
//! with one file per page and again with `--single-file-segments`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use dpmem_eal::{Eal, ErrorKind, MemEvent, MemzoneFlags, PageRequest, Socket};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_GROWTH_PREFIX";
const CHILD_LIMIT: Duration = Duration::from_secs(30);
/// Bytes of each zone: three 2 MiB pages' worth, so new pages are needed.
const ZONE_LEN: usize = 5 << 20;
/// The mailbox (a memzone reserved before anyone attached): slot 0 the primary's zone, slot 1
/// the reserving secondary's.
const MAILBOX: &str = "growth_mailbox";

fn spawn_body(body: &str, prefix: &str) -> ChildTest {
    ChildTest::spawn(&std::env::current_exe().unwrap(), body, |command| {
        command.env(ENV_PREFIX, prefix);
    })
}

fn secondary() -> &'static Eal {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a secondary-growth test");
    Box::leak(Box::new(attach_secondary(&prefix)))
}

/// Whether this process maps a hugepage file at `va` (`/proc/self/maps`).
fn file_mapped_at(va: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|line| {
            let range = line.split_whitespace().next().unwrap_or_default();
            let (lo, hi) = range.split_once('-').unwrap_or_default();
            let lo = usize::from_str_radix(lo, 16).unwrap_or(0);
            let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
            lo <= va && va < hi && line.contains("map_")
        })
}

fn primary(tag: &str) -> (Eal, String) {
    primary_with(tag, &[])
}

/// A primary started with `flags` besides its file prefix.
fn primary_with(tag: &str, flags: &[&str]) -> (Eal, String) {
    let prefix = unique_prefix(tag);
    let mut all = vec!["--file-prefix", prefix.as_str()];
    all.extend_from_slice(flags);
    let eal = Eal::init(args(&all)).unwrap();
    eal.memzones()
        .reserve(MAILBOX, 64, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    (eal, prefix)
}

#[test]
fn zones_mapped_by_any_process_are_readable_at_once_in_every_other() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "zones_mapped_by_any_process_are_readable_at_once_in_every_other",
        24,
    ) {
        return;
    }
    // With one file per page, and with one file per list (`--single-file-segments`).
    for (tag, flags) in [
        ("mpgrow", &[][..]),
        ("mpgrow_sf", &["--single-file-segments"][..]),
    ] {
        let (eal, prefix) = primary_with(tag, flags);
        let mut grower = spawn_body("growing_secondary_body", &prefix);
        let mut reader = spawn_body("reading_secondary_body", &prefix);
        grower.wait_for_line("attached", CHILD_LIMIT);
        reader.wait_for_line("attached", CHILD_LIMIT);
        let slots = mailbox(&eal, MAILBOX);
        let heap_before = eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes;

        // The primary's zone, after both attached: its pages are new to both.
        let zone = eal
            .memzones()
            .reserve(
                "from_primary",
                ZONE_LEN,
                Socket::Node(0),
                MemzoneFlags::empty(),
            )
            .unwrap();
        // SAFETY: the zone's bytes are this test's.
        unsafe { std::ptr::write_bytes(zone.as_ptr(), 0x3C, ZONE_LEN) };
        slots[0].store(zone.va as u64, Ordering::Release);
        grower.send("read and grow");
        // The grower's zone needed pages too, which it asked the primary for.
        let theirs = wait_for_slot(&slots[1], CHILD_LIMIT);
        assert!(
            eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes
                >= heap_before + 2 * ZONE_LEN as u64,
            "{flags:?}: both zones came from new pages"
        );
        // Readable here at once, with no call: the round ran before the grower's call returned.
        // SAFETY: the grower's zone, written before it published the address; read only.
        let bytes = unsafe { std::slice::from_raw_parts(theirs as *const u8, ZONE_LEN) };
        assert!(
            bytes.iter().all(|&b| b == 0xA7),
            "{flags:?}: the grower's bytes"
        );
        reader.send("read");
        reader.wait_for_line("read both", CHILD_LIMIT);
        grower.send("free");
        grower.wait_for_line("freed", CHILD_LIMIT);
        reader.send("check");
        let (eal, _) = reader.assert_passed_keeping(CHILD_LIMIT, eal);
        let (eal, _) = grower.assert_passed_keeping(CHILD_LIMIT, eal);
        // SAFETY: nobody uses the zone any more.
        unsafe { eal.memzones().free(&zone) }.unwrap();
        eal.heaps().check().unwrap();
    }
}

#[test]
#[ignore = "run by zones_mapped_by_any_process_are_readable_at_once_in_every_other"]
fn growing_secondary_body() {
    let eal = secondary();
    let slots = mailbox(eal, MAILBOX);
    println!("attached");
    assert_eq!(stdin_line(), "read and grow");
    let primarys = wait_for_slot(&slots[0], CHILD_LIMIT);
    // SAFETY: the primary's zone, written before its address was published; read only.
    let bytes = unsafe { std::slice::from_raw_parts(primarys as *const u8, ZONE_LEN) };
    assert!(bytes.iter().all(|&b| b == 0x3C), "the primary's bytes");
    let zone = eal
        .memzones()
        .reserve(
            "from_secondary",
            ZONE_LEN,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .expect("a secondary's zone on pages the primary maps for it");
    // SAFETY: the zone's bytes are this process's.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0xA7, ZONE_LEN) };
    slots[1].store(zone.va as u64, Ordering::Release);
    assert_eq!(stdin_line(), "free");
    // SAFETY: the others have read it and use it no more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    println!("freed");
}

#[test]
#[ignore = "run by zones_mapped_by_any_process_are_readable_at_once_in_every_other"]
fn reading_secondary_body() {
    let eal = secondary();
    let slots = mailbox(eal, MAILBOX);
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = heard.clone();
    eal.memory()
        .register_event_callback("heard", move |event, va, len| {
            sink.lock().unwrap().push((event, va, len));
        })
        .unwrap();
    println!("attached");
    assert_eq!(stdin_line(), "read");
    // No dpmem call between here and the reads: the rounds mapped both zones already.
    let (primarys, theirs) = (
        wait_for_slot(&slots[0], CHILD_LIMIT),
        wait_for_slot(&slots[1], CHILD_LIMIT),
    );
    for (va, byte) in [(primarys, 0x3C), (theirs, 0xA7)] {
        // SAFETY: a zone of another process, written before its address was published.
        let bytes = unsafe { std::slice::from_raw_parts(va as *const u8, ZONE_LEN) };
        assert!(bytes.iter().all(|&b| b == byte), "bytes at {va:#x}");
    }
    let covered = |event: MemEvent, va: usize| {
        heard
            .lock()
            .unwrap()
            .iter()
            .any(|&(e, at, len)| e == event && at <= va && va < at + len)
    };
    assert!(covered(MemEvent::Alloc, primarys), "Alloc heard here");
    assert!(covered(MemEvent::Alloc, theirs), "Alloc heard here");
    println!("read both");
    assert_eq!(stdin_line(), "check");
    // The grower freed its zone: its pages went back through the primary, and the round
    // unmapped them here too (the Free heard first).
    let page = theirs.next_multiple_of(2 << 20);
    assert!(covered(MemEvent::Free, page), "Free heard here");
    assert!(!file_mapped_at(page), "page {page:#x} still mapped here");
}

#[test]
fn a_secondary_asking_for_more_than_the_node_has_gets_the_primarys_error() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_asking_for_more_than_the_node_has_gets_the_primarys_error",
        8,
    ) {
        return;
    }
    let dir = mount_2m().expect("hugepages_available checked the mount");
    // With one file per page, and with one file per list (whose size must not change either).
    for (tag, flags) in [
        ("mpbig", &[][..]),
        ("mpbig_sf", &["--single-file-segments"][..]),
    ] {
        let (eal, prefix) = primary_with(tag, flags);
        let mut asker = spawn_body("greedy_secondary_body", &prefix);
        asker.wait_for_line("attached", CHILD_LIMIT);
        let sizes = || -> Vec<(String, u64)> {
            files_with_prefix(&dir, &prefix)
                .into_iter()
                .map(|name| {
                    let len = std::fs::metadata(dir.join(&name)).unwrap().len();
                    (name, len)
                })
                .collect()
        };
        let (bytes, files, free) = (
            eal.memory().socket_bytes(Socket::Node(0)),
            sizes(),
            dpmem_testkit::free_2m(),
        );
        asker.send(&format!("{}", free + 64));
        let (eal, _) = asker.assert_passed_keeping(CHILD_LIMIT, eal);
        assert_eq!(
            eal.memory().socket_bytes(Socket::Node(0)),
            bytes,
            "{flags:?}"
        );
        assert_eq!(sizes(), files, "{flags:?}: nothing left mapped");
        assert_eq!(dpmem_testkit::free_2m(), free, "{flags:?}: hugepages kept");
        eal.heaps().check().unwrap();
    }
}

#[test]
#[ignore = "run by a_secondary_asking_for_more_than_the_node_has_gets_the_primarys_error"]
fn greedy_secondary_body() {
    let eal = secondary();
    println!("attached");
    let pages: usize = stdin_line().parse().unwrap();
    let err = eal
        .memory()
        .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), pages))
        .expect_err("more pages than the node has");
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert!(
        err.to_string().contains("node can supply only"),
        "the primary's reason: {err}"
    );
    let err = eal
        .memzones()
        .reserve(
            "too_big",
            pages << 21,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .expect_err("a zone bigger than the node");
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
}

/// One secondary cannot open another file (its descriptor limit lowered to what it has open):
/// the other secondary's request for pages fails with that reason, and nothing stays mapped in
/// any process (the primary unmapped the pages and ran the round again).
#[test]
fn a_secondary_that_cannot_map_fails_the_allocation_everywhere() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_that_cannot_map_fails_the_allocation_everywhere",
        8,
    ) {
        return;
    }
    let dir = mount_2m().expect("hugepages_available checked the mount");
    let (eal, prefix) = primary("mpfail");
    let mut asker = spawn_body("refused_secondary_body", &prefix);
    let mut stuck = spawn_body("fd_starved_secondary_body", &prefix);
    asker.wait_for_line("attached", CHILD_LIMIT);
    stuck.wait_for_line("attached", CHILD_LIMIT);
    let open = std::fs::read_dir(format!("/proc/{}/fd", stuck.pid()))
        .unwrap()
        .count();
    let limited = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", stuck.pid()))
        .arg(format!("--nofile={open}:{open}"))
        .status()
        .unwrap();
    assert!(limited.success(), "prlimit");
    let (bytes, files) = (
        eal.memory().socket_bytes(Socket::Node(0)),
        files_with_prefix(&dir, &prefix),
    );
    asker.send("go");
    let (eal, _) = asker.assert_passed_keeping(CHILD_LIMIT, eal);
    assert_eq!(eal.memory().socket_bytes(Socket::Node(0)), bytes);
    assert_eq!(
        files_with_prefix(&dir, &prefix),
        files,
        "nothing left mapped"
    );
    stuck.send("check");
    let (eal, _) = stuck.assert_passed_keeping(CHILD_LIMIT, eal);
    eal.heaps().check().unwrap();
}

#[test]
#[ignore = "run by a_secondary_that_cannot_map_fails_the_allocation_everywhere"]
fn refused_secondary_body() {
    let eal = secondary();
    println!("attached");
    assert_eq!(stdin_line(), "go");
    let err = eal
        .memory()
        .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), 2))
        .expect_err("the other secondary cannot map the pages");
    assert!(
        err.to_string()
            .contains("could not be mapped in every process"),
        "{err}"
    );
    assert!(
        err.to_string().contains("unmapped again everywhere"),
        "{err}"
    );
    // Only the mailbox's page stays in the lists.
    let mut pages = 0;
    let _ = eal.memory().walk_segments(|_, _| {
        pages += 1;
        core::ops::ControlFlow::<()>::Continue(())
    });
    assert_eq!(pages, 1, "pages left in the lists");
}

#[test]
#[ignore = "run by a_secondary_that_cannot_map_fails_the_allocation_everywhere"]
fn fd_starved_secondary_body() {
    let eal = secondary();
    let mailbox_page = mailbox(eal, MAILBOX) as *const _ as usize & !((2 << 20) - 1);
    println!("attached");
    assert_eq!(stdin_line(), "check");
    let mapped: Vec<usize> = (1..8)
        .map(|n| mailbox_page + n * (2 << 20))
        .filter(|&va| file_mapped_at(va))
        .collect();
    assert!(mapped.is_empty(), "pages left mapped here: {mapped:x?}");
}
