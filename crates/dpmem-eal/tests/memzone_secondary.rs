//! A secondary process (this test binary re-executed) finds the primary's memzones by name,
//! reads their bytes, and reserves a memzone of its own in the shared heap.

mod common;

use common::*;
use dpmem_eal::{Eal, MemzoneFlags, Socket};

const ENV_PREFIX: &str = "DPMEM_TEST_MZ_PREFIX";
const ZONE_LEN: usize = 1 << 20;

#[test]
fn a_secondary_finds_the_primarys_memzones_and_reads_their_bytes() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_finds_the_primarys_memzones_and_reads_their_bytes",
        8,
    ) {
        return;
    }
    let prefix = unique_prefix("mzsec");
    let eal = Eal::init(args(&["-m", "8", "--file-prefix", &prefix])).unwrap();
    let zone = eal
        .memzones()
        .reserve(
            "shared_zone",
            ZONE_LEN,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .unwrap();
    // SAFETY: the memzone's bytes are ours until it is freed.
    let bytes = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), ZONE_LEN) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "memzone_secondary_body",
        |c| {
            c.env(ENV_PREFIX, &prefix)
                .env("DPMEM_TEST_MZ_VA", zone.va.to_string());
        },
    );
    // The secondary's answer, written into the primary's memzone.
    assert_eq!(bytes[ZONE_LEN - 1], 0xEE);
    // The memzone the secondary reserved is in the shared table and the shared heap.
    let theirs = eal
        .memzones()
        .lookup("from_secondary")
        .expect("reserved by the secondary");
    // SAFETY: the secondary wrote 4096 bytes there and has exited.
    let written = unsafe { std::slice::from_raw_parts(theirs.as_ptr(), 4096) };
    assert!(written.iter().all(|&b| b == 0x5A));
    eal.heaps().check().unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&theirs) }.unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap().free_count, 1);
}

#[test]
#[ignore = "run by a_secondary_finds_the_primarys_memzones_and_reads_their_bytes in a child process"]
fn memzone_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the memzone multi-process test");
    let va: usize = std::env::var("DPMEM_TEST_MZ_VA").unwrap().parse().unwrap();
    let eal = attach_secondary(&prefix);
    let zone = eal
        .memzones()
        .lookup("shared_zone")
        .expect("the primary's memzone");
    assert_eq!(zone.va, va, "same address in both processes");
    assert_eq!(zone.len, ZONE_LEN);
    // SAFETY: the primary's memzone, mapped at the same address here.
    let bytes = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), ZONE_LEN) };
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(*b, (i % 251) as u8, "byte {i}");
    }
    bytes[ZONE_LEN - 1] = 0xEE;
    // The heap is shared: the secondary reserves from the primary's free memory.
    let mine = eal
        .memzones()
        .reserve(
            "from_secondary",
            4096,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .unwrap();
    // SAFETY: the new memzone's bytes are ours.
    unsafe { std::ptr::write_bytes(mine.as_ptr(), 0x5A, 4096) };
    eal.heaps().check().unwrap();
}

/// Bytes of each zone the primary makes after the secondary attached: 3 pages' worth, so the
/// heap must map new pages for it.
const LATE_LEN: usize = 6 << 20;

fn fill(zone: &dpmem_eal::memzone::Memzone, seed: u8) {
    // SAFETY: the memzone's bytes are ours until it is freed.
    let bytes = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), zone.len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 241) as u8 ^ seed;
    }
}

/// Primary in dynamic mode (no `-m`: memory comes and goes with use). A secondary attaches;
/// then the primary reserves a zone on pages mapped after that, frees it (its pages go back
/// to the kernel, their files unlinked), and reserves another one on the same addresses (new
/// files under the old names). After each step the secondary must read exactly the
/// primary's bytes: it maps the new pages, drops the freed ones, and remaps the replaced ones.
#[test]
fn a_secondary_catches_up_with_pages_the_primary_maps_and_unmaps_after_it_attached() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_catches_up_with_pages_the_primary_maps_and_unmaps_after_it_attached",
        16,
    ) {
        return;
    }
    let prefix = unique_prefix("mzlate");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let mut child = dpmem_testkit::ChildTest::spawn(
        &std::env::current_exe().unwrap(),
        "late_pages_secondary_body",
        |command| {
            command.env(ENV_PREFIX, &prefix);
        },
    );
    let limit = std::time::Duration::from_secs(30);
    child.wait_for_line("attached", limit);

    let first = eal
        .memzones()
        .reserve(
            "late_zone",
            LATE_LEN,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .unwrap();
    fill(&first, 0x11);
    child.send(&format!("read late_zone 17 {}", first.va));
    child.wait_for_line("done", limit);

    // Freed: the heap gives the whole pages back, then maps fresh ones for the next zone.
    let va = first.va;
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&first) }.unwrap();
    let second = eal
        .memzones()
        .reserve(
            "late_zone_2",
            LATE_LEN,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .unwrap();
    fill(&second, 0x5C);
    child.send(&format!("read late_zone_2 92 {va}"));
    child.wait_for_line("done", limit);

    // A heap block on pages mapped after the secondary last looked, handed over by address:
    // the secondary's first heap call on it (validate) catches up.
    let block = eal.heaps().malloc(LATE_LEN, 0).unwrap();
    // SAFETY: a live block of LATE_LEN bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(block.as_ptr(), LATE_LEN) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 241) as u8 ^ 0x3C;
    }
    child.send(&format!("block {} 60", block.as_ptr() as usize));
    child.wait_for_line("done", limit);
    child.send("quit");
    let (eal, _) = child.assert_passed_keeping(limit, eal);
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&second) }.unwrap();
    // SAFETY: the block is ours; the secondary has exited.
    unsafe { eal.heaps().free(block) }.unwrap();
    eal.heaps().check().unwrap();
}

#[test]
#[ignore = "run by a_secondary_catches_up_with_pages_the_primary_maps_and_unmaps_after_it_attached"]
fn late_pages_secondary_body() {
    use std::io::BufRead;
    let prefix = std::env::var(ENV_PREFIX).expect("run by the late-pages multi-process test");
    let eal = attach_secondary(&prefix);
    // The catch-up announces what it maps and unmaps, as the primary's own changes are.
    let events: std::sync::Arc<std::sync::Mutex<Vec<(dpmem_eal::MemEvent, usize, usize)>>> =
        Default::default();
    let seen = events.clone();
    eal.memory()
        .register_event_callback("late_pages", move |event, va, len| {
            seen.lock().unwrap().push((event, va, len));
        })
        .unwrap();
    // Bytes of `event` ranges overlapping the zone at `va`.
    let overlapping = |event: dpmem_eal::MemEvent, va: usize| -> usize {
        let end = va + LATE_LEN;
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, at, len)| *e == event && *at < end && *at + *len > va)
            .map(|(_, _, len)| *len)
            .sum()
    };
    println!("attached");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["read", name, seed, first_va] => {
                let seed: u8 = seed.parse().unwrap();
                let zone = eal.memzones().lookup(name).expect("the primary's new zone");
                assert_eq!(zone.len, LATE_LEN);
                if *name == "late_zone_2" {
                    assert_eq!(
                        zone.va.to_string(),
                        *first_va,
                        "the second zone reuses the first one's addresses (new page files)"
                    );
                }
                // SAFETY: the primary's memzone, mapped here by the lookup's catch-up.
                let bytes = unsafe { std::slice::from_raw_parts(zone.as_ptr(), LATE_LEN) };
                for (i, b) in bytes.iter().enumerate() {
                    assert_eq!(*b, (i % 241) as u8 ^ seed, "{name} byte {i}");
                }
                // All but perhaps a page the zone shares with older heap memory is new here.
                assert!(
                    overlapping(dpmem_eal::MemEvent::Alloc, zone.va) >= LATE_LEN - (2 << 20),
                    "Alloc events for the zone's new pages: {:?}",
                    events.lock().unwrap()
                );
                if *name == "late_zone_2" {
                    assert!(
                        overlapping(dpmem_eal::MemEvent::Free, zone.va) > 0,
                        "Free events for the replaced pages: {:?}",
                        events.lock().unwrap()
                    );
                }
                events.lock().unwrap().clear();
                println!("done");
            }
            ["block", addr, seed] => {
                let addr: usize = addr.parse().unwrap();
                let seed: u8 = seed.parse().unwrap();
                // SAFETY: a live block the primary handed over and no longer writes to.
                let usable = unsafe { eal.heaps().validate(addr as *const u8) }
                    .expect("the primary's live block");
                assert!(usable >= LATE_LEN);
                // SAFETY: a live block of the primary's, mapped here by validate's catch-up.
                let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, LATE_LEN) };
                for (i, b) in bytes.iter().enumerate() {
                    assert_eq!(*b, (i % 241) as u8 ^ seed, "block byte {i}");
                }
                println!("done");
            }
            ["quit"] => break,
            other => panic!("unexpected command {other:?}"),
        }
    }
}
