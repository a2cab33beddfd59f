//! Memzones, conformance with DPDK 22.11's documented behaviour.

mod common;

use std::ops::ControlFlow;

use common::*;
use dpmem_eal::memzone::{flags, DEFAULT_MAX_MEMZONES};
use dpmem_eal::{Eal, EalOptions, EalSettings, ErrorKind, SOCKET_ID_ANY};

fn no_huge(mb: u32) -> Eal {
    no_huge_eal("mz", mb)
}

#[test]
fn a_memzone_reports_where_it_is_and_is_found_by_name() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    assert_eq!(mz.capacity(), DEFAULT_MAX_MEMZONES);
    let zone = mz.reserve("rx_ring", 100, SOCKET_ID_ANY, 0).unwrap();
    assert_eq!(zone.name, "rx_ring");
    assert_eq!(zone.len, 128, "length rounded up to a cache line");
    assert_eq!(zone.va % 64, 0);
    assert_eq!(zone.iova, zone.va, "--no-huge runs with IOVA = VA");
    assert_eq!(zone.page_size, 4096);
    assert_eq!(zone.socket_id, 0);
    assert_eq!(zone.flags, 0);
    assert_eq!(eal.memory().virt_to_iova(zone.va as usize), Some(zone.iova));
    // The memory is usable, and is heap memory.
    // SAFETY: the memzone's 128 bytes are ours.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0xAB, 128) };
    assert!(eal.heaps().validate(zone.as_ptr()).unwrap() >= 128);
    assert_eq!(mz.lookup("rx_ring"), Some(zone.clone()));
    assert_eq!(mz.lookup("tx_ring"), None);
    assert_eq!(mz.count(), 1);
    mz.free(&zone).unwrap();
    assert_eq!(mz.lookup("rx_ring"), None);
    assert_eq!(mz.count(), 0);
    assert_eq!(mz.free(&zone).unwrap_err().kind(), ErrorKind::NoEnt);
    eal.heaps().check().unwrap();
    assert_eq!(eal.heaps().stats(0).unwrap().free_count, 1);
}

#[test]
fn names_duplicates_and_bad_arguments_get_dpdks_errors() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    let name31 = "n".repeat(31);
    mz.reserve(&name31, 64, 0, 0).unwrap();
    let err = mz.reserve(&"n".repeat(32), 64, 0, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NameTooLong, "{err}");
    assert_eq!(
        mz.reserve(&name31, 64, 0, 0).unwrap_err().kind(),
        ErrorKind::Exist
    );
    let kinds = [
        mz.reserve_aligned("a", 64, 0, 0, 3).unwrap_err().kind(),
        mz.reserve_aligned("a", 64, 0, 0, 100).unwrap_err().kind(),
        mz.reserve_bounded("a", 64, 0, 0, 64, 100)
            .unwrap_err()
            .kind(),
        mz.reserve_bounded("a", 4096, 0, 0, 64, 1024)
            .unwrap_err()
            .kind(),
        mz.reserve("a", 64, 0, 0x8000_0000).unwrap_err().kind(),
        mz.reserve("a", 64, -3, 0).unwrap_err().kind(),
        mz.reserve("", 64, 0, 0).unwrap_err().kind(),
        mz.reserve("a", usize::MAX - 3, 0, 0).unwrap_err().kind(),
    ];
    assert!(kinds.iter().all(|&k| k == ErrorKind::Inval), "{kinds:?}");
    let err = mz.reserve("a", 64 << 20, 0, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    // 2 MiB pages were asked for and there are none; as a hint only, any page will do.
    assert_eq!(
        mz.reserve("a", 4096, 0, flags::PAGE_2MB)
            .unwrap_err()
            .kind(),
        ErrorKind::NoMem
    );
    let hinted = mz
        .reserve("a", 4096, 0, flags::PAGE_2MB | flags::SIZE_HINT_ONLY)
        .unwrap();
    assert_eq!(hinted.page_size, 4096);
    assert_eq!(hinted.flags, flags::PAGE_2MB | flags::SIZE_HINT_ONLY);
    let contig = mz.reserve("c", 1 << 20, 0, flags::IOVA_CONTIG).unwrap();
    assert_eq!(
        eal.memory()
            .virt_to_iova(contig.va as usize + (1 << 20) - 1),
        Some(contig.iova + (1 << 20) - 1)
    );
    assert_eq!(mz.count(), 3);
    eal.heaps().check().unwrap();
}

#[test]
fn aligned_memzones_start_on_their_alignment() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    for shift in 0..=20 {
        let align = 1usize << shift;
        let zone = mz
            .reserve_aligned(&format!("al{shift}"), 1000, 0, 0, align)
            .unwrap();
        assert_eq!(zone.va as usize % align.max(64), 0, "align {align}");
        assert_eq!(zone.len, 1024);
    }
    eal.heaps().check().unwrap();
}

#[test]
fn bounded_memzones_never_cross_their_boundary() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    let mut zones = Vec::new();
    for i in 0..200usize {
        let len = 64 + (i * 997) % 4000;
        let bound = if i % 2 == 0 { 4096 } else { 8192 };
        let zone = mz
            .reserve_bounded(&format!("b{i}"), len, 0, 0, 64, bound)
            .unwrap();
        let (start, end) = (zone.va, zone.va + zone.len - 1);
        assert_eq!(
            start / bound as u64,
            end / bound as u64,
            "{zone:?} crosses {bound}"
        );
        zones.push(zone);
    }
    // Length 0 with a bound: the whole window.
    let whole = mz.reserve_bounded("window", 0, 0, 0, 64, 1 << 16).unwrap();
    assert_eq!(whole.len, 1 << 16);
    assert_eq!(whole.va % (1 << 16), 0);
    eal.heaps().check().unwrap();
    for zone in zones.iter().chain([&whole]) {
        mz.free(zone).unwrap();
    }
    assert_eq!(eal.heaps().stats(0).unwrap().free_count, 1);
}

#[test]
fn length_zero_takes_the_biggest_free_block() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    let small = mz.reserve("small", 4096, 0, 0).unwrap();
    let greatest = eal.heaps().stats(0).unwrap().greatest_free_bytes;
    let all = mz.reserve("all", 0, SOCKET_ID_ANY, 0).unwrap();
    // Feature `debug` also keeps a cache line at the end for the overrun cookie.
    let trailer = if cfg!(feature = "debug") { 64 } else { 0 };
    assert_eq!(
        all.len,
        greatest - 64 - trailer,
        "the biggest element less its header"
    );
    let after = eal.heaps().stats(0).unwrap();
    assert_eq!(after.free_bytes, 0);
    assert_eq!(
        mz.reserve("more", 64, 0, 0).unwrap_err().kind(),
        ErrorKind::NoMem
    );
    // An aligned zero-length memzone loses only what the alignment costs.
    mz.free(&all).unwrap();
    let aligned = mz.reserve_aligned("all", 0, 0, 0, 1 << 20).unwrap();
    assert_eq!(aligned.va % (1 << 20), 0);
    assert!(aligned.len >= greatest - 64 - (1 << 20));
    mz.free(&aligned).unwrap();
    mz.free(&small).unwrap();
    eal.heaps().check().unwrap();
}

#[test]
fn the_table_limit_is_enforced_and_freed_slots_are_reused() {
    let (options, _) = EalOptions::parse(args(&[
        "--no-huge",
        "-m",
        "16",
        "--file-prefix",
        &unique_prefix("mzlimit"),
    ]))
    .unwrap();
    let eal = Eal::init_with(
        options,
        EalSettings {
            max_memzones: 8,
            ..EalSettings::default()
        },
    )
    .unwrap();
    let mz = eal.memzones();
    assert_eq!(mz.capacity(), 8);
    let zones: Vec<_> = (0..8)
        .map(|i| mz.reserve(&format!("z{i}"), 64, 0, 0).unwrap())
        .collect();
    let err = mz.reserve("z8", 64, 0, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpc, "{err}");
    // A full table refuses before looking at the name (DPDK's order of checks).
    assert_eq!(
        mz.reserve("z0", 64, 0, 0).unwrap_err().kind(),
        ErrorKind::NoSpc
    );
    mz.free(&zones[3]).unwrap();
    let again = mz.reserve("z8", 64, 0, 0).unwrap();
    assert_eq!(mz.count(), 8);
    let names: Vec<String> = mz.list().into_iter().map(|z| z.name).collect();
    assert_eq!(
        names,
        ["z0", "z1", "z2", "z8", "z4", "z5", "z6", "z7"],
        "slot 3 reused"
    );
    assert_eq!(mz.lookup("z8"), Some(again));
}

#[test]
fn walk_and_dump_show_every_memzone() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    for name in ["alpha", "beta", "gamma"] {
        mz.reserve(name, 1000, 0, 0).unwrap();
    }
    let mut seen = Vec::new();
    let stopped = mz.walk(|z| {
        seen.push(z.name.clone());
        if z.name == "beta" {
            ControlFlow::Break(z.len)
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(stopped, Some(1024));
    assert_eq!(seen, ["alpha", "beta"]);
    let dump = mz.dump();
    assert_eq!(dump.lines().count(), 3);
    assert!(dump.contains("gamma"), "{dump}");
}

#[test]
fn on_hugepages_page_size_flags_pick_2mib_memory() {
    let _serial = hugepage_lock();
    if !hugepages_available("on_hugepages_page_size_flags_pick_2mib_memory", 8) {
        return;
    }
    let prefix = unique_prefix("mzhuge");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let mz = eal.memzones();
    let big = mz.reserve("huge", 3 << 20, 0, flags::PAGE_2MB).unwrap();
    assert_eq!(big.page_size, 2 << 20);
    assert_eq!(big.socket_id, 0);
    assert_eq!(
        big.iova,
        eal.memory().virt_to_iova(big.va as usize).unwrap()
    );
    // IOVA-contiguous (in PA mode two physically adjacent pages may not exist, as for DPDK,
    // so ask for less than a page): the last byte's IOVA follows from the first's.
    let zone = mz
        .reserve("contig", 1 << 20, 0, flags::PAGE_2MB | flags::IOVA_CONTIG)
        .unwrap();
    assert_eq!(zone.page_size, 2 << 20);
    assert_eq!(
        zone.iova,
        eal.memory().virt_to_iova(zone.va as usize).unwrap()
    );
    let last = zone.va as usize + zone.len as usize - 1;
    assert_eq!(
        eal.memory().virt_to_iova(last),
        Some(zone.iova + zone.len - 1)
    );
    assert_eq!(
        mz.reserve("1g", 64, 0, flags::PAGE_1GB).unwrap_err().kind(),
        ErrorKind::NoMem
    );
    mz.free(&zone).unwrap();
    mz.free(&big).unwrap();
    assert_eq!(
        eal.heaps().stats(0).unwrap().total_bytes,
        0,
        "pages given back"
    );
}
