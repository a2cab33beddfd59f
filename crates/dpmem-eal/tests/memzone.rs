//! Memzones, conformance with DPDK 22.11's documented behaviour.

mod common;

use std::ops::ControlFlow;

use common::*;
use dpmem_eal::limits::MAX_HEAPS;
use dpmem_eal::memzone::DEFAULT_MAX_MEMZONES;
use dpmem_eal::{Eal, EalOptions, EalSettings, ErrorKind, Iova, MemzoneFlags, Socket};

/// No flags.
const NONE: MemzoneFlags = MemzoneFlags::empty();
/// Socket 0.
const S0: Socket = Socket::Node(0);

fn no_huge(mb: u32) -> Eal {
    no_huge_eal("mz", mb)
}

#[test]
fn a_memzone_reports_where_it_is_and_is_found_by_name() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    assert_eq!(mz.capacity(), DEFAULT_MAX_MEMZONES);
    let zone = mz.reserve("rx_ring", 100, Socket::Any, NONE).unwrap();
    assert_eq!(zone.name, "rx_ring");
    assert_eq!(zone.len, 128, "length rounded up to a cache line");
    assert_eq!(zone.va % 64, 0);
    assert_eq!(
        zone.iova,
        Iova::new(zone.va as u64),
        "--no-huge runs with IOVA = VA"
    );
    assert_eq!(zone.page_size, 4096);
    assert_eq!(zone.socket, Socket::Node(0));
    assert_eq!(zone.flags, NONE);
    assert_eq!(eal.memory().virt_to_iova(zone.va), zone.iova);
    // The memory is usable, and is heap memory.
    // SAFETY: the memzone's 128 bytes are ours.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0xAB, 128) };
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { eal.heaps().validate(zone.as_ptr()) }.unwrap() >= 128);
    assert_eq!(mz.lookup("rx_ring"), Some(zone.clone()));
    assert_eq!(mz.lookup("tx_ring"), None);
    assert_eq!(mz.count(), 1);
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&zone) }.unwrap();
    assert_eq!(mz.lookup("rx_ring"), None);
    assert_eq!(mz.count(), 0);
    // SAFETY: the zone is freed already (nothing uses it); the table must refuse it again.
    let err = unsafe { mz.free(&zone) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoEnt);
    eal.heaps().check().unwrap();
    assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap().free_count, 1);
}

#[test]
fn names_duplicates_and_bad_arguments_get_dpdks_errors() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    let name31 = "n".repeat(31);
    mz.reserve(&name31, 64, S0, NONE).unwrap();
    let err = mz.reserve(&"n".repeat(32), 64, S0, NONE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NameTooLong, "{err}");
    assert_eq!(
        mz.reserve(&name31, 64, S0, NONE).unwrap_err().kind(),
        ErrorKind::Exist
    );
    let kinds = [
        mz.reserve_aligned("a", 64, S0, NONE, 3).unwrap_err().kind(),
        mz.reserve_aligned("a", 64, S0, NONE, 100)
            .unwrap_err()
            .kind(),
        mz.reserve_bounded("a", 64, S0, NONE, 64, 100)
            .unwrap_err()
            .kind(),
        mz.reserve_bounded("a", 4096, S0, NONE, 64, 1024)
            .unwrap_err()
            .kind(),
        mz.reserve("a", 64, Socket::Node(MAX_HEAPS as u32), NONE)
            .unwrap_err()
            .kind(),
        mz.reserve("", 64, S0, NONE).unwrap_err().kind(),
        mz.reserve("a", usize::MAX - 3, S0, NONE)
            .unwrap_err()
            .kind(),
        // A bit no flag names (DPDK refuses unknown flags with EINVAL).
        mz.reserve("a", 64, S0, MemzoneFlags::from_bits_retain(0x8000_0000))
            .unwrap_err()
            .kind(),
    ];
    assert!(kinds.iter().all(|&k| k == ErrorKind::Inval), "{kinds:?}");
    let err = mz.reserve("a", 64 << 20, S0, NONE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    // 2 MiB pages were asked for and there are none; as a hint only, any page will do.
    assert_eq!(
        mz.reserve("a", 4096, S0, MemzoneFlags::PAGE_2MB)
            .unwrap_err()
            .kind(),
        ErrorKind::NoMem
    );
    let hinted = mz
        .reserve(
            "a",
            4096,
            S0,
            MemzoneFlags::PAGE_2MB | MemzoneFlags::SIZE_HINT_ONLY,
        )
        .unwrap();
    assert_eq!(hinted.page_size, 4096);
    assert_eq!(
        hinted.flags,
        MemzoneFlags::PAGE_2MB | MemzoneFlags::SIZE_HINT_ONLY
    );
    let contig = mz
        .reserve("c", 1 << 20, S0, MemzoneFlags::IOVA_CONTIG)
        .unwrap();
    let first = contig.iova.expect("--no-huge IOVAs are known").get();
    assert_eq!(
        eal.memory()
            .virt_to_iova(contig.va + (1 << 20) - 1)
            .map(Iova::get),
        Some(first + (1 << 20) - 1)
    );
    assert_eq!(mz.count(), 3);
    eal.heaps().check().unwrap();
}

#[test]
fn the_request_builder_reserves_what_it_describes() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    // Defaults: any socket, no flags, a cache line of alignment, no bound.
    let plain = mz.request("plain", 100).reserve().unwrap();
    assert_eq!((plain.len, plain.va % 64), (128, 0));
    assert_eq!((plain.socket, plain.flags), (Socket::Node(0), NONE));
    let zone = mz
        .request("described", 1000)
        .socket(S0)
        .flags(MemzoneFlags::IOVA_CONTIG)
        .align(4096)
        .bound(8192)
        .reserve()
        .unwrap();
    assert_eq!(zone.len, 1024);
    assert_eq!(zone.va % 4096, 0);
    assert_eq!(zone.va / 8192, (zone.va + zone.len - 1) / 8192);
    assert_eq!(zone.flags, MemzoneFlags::IOVA_CONTIG);
    assert_eq!(mz.lookup("described"), Some(zone.clone()));
    // Length 0 with a bound: the whole window, as `reserve_bounded` gives it.
    let window = mz.request("window", 0).bound(1 << 16).reserve().unwrap();
    assert_eq!((window.len, window.va % (1 << 16)), (1 << 16, 0));
    // Bad arguments are refused as the plain calls refuse them, and change nothing.
    let request = mz.request("bad", 64);
    for err in [
        request.clone().align(3).reserve().unwrap_err(),
        request.clone().bound(100).reserve().unwrap_err(),
        request
            .clone()
            .socket(Socket::Node(MAX_HEAPS as u32))
            .reserve()
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    }
    assert_eq!(mz.count(), 3);
    for z in [&plain, &zone, &window] {
        // SAFETY: nothing uses the memzone any more.
        unsafe { mz.free(z) }.unwrap();
    }
    assert_eq!(eal.heaps().stats(S0).unwrap().free_count, 1);
    eal.heaps().check().unwrap();
}

#[test]
fn aligned_memzones_start_on_their_alignment() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    for shift in 0..=20 {
        let align = 1usize << shift;
        let zone = mz
            .reserve_aligned(&format!("al{shift}"), 1000, S0, NONE, align)
            .unwrap();
        assert_eq!(zone.va % align.max(64), 0, "align {align}");
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
            .reserve_bounded(&format!("b{i}"), len, S0, NONE, 64, bound)
            .unwrap();
        let (start, end) = (zone.va, zone.va + zone.len - 1);
        assert_eq!(start / bound, end / bound, "{zone:?} crosses {bound}");
        zones.push(zone);
    }
    // Length 0 with a bound: the whole window.
    let whole = mz
        .reserve_bounded("window", 0, S0, NONE, 64, 1 << 16)
        .unwrap();
    assert_eq!(whole.len, 1 << 16);
    assert_eq!(whole.va % (1 << 16), 0);
    eal.heaps().check().unwrap();
    for zone in zones.iter().chain([&whole]) {
        // SAFETY: nothing uses the memzone any more.
        unsafe { mz.free(zone) }.unwrap();
    }
    assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap().free_count, 1);
}

#[test]
fn length_zero_takes_the_biggest_free_block() {
    let eal = no_huge(16);
    let mz = eal.memzones();
    let small = mz.reserve("small", 4096, S0, NONE).unwrap();
    let greatest = eal
        .heaps()
        .stats(Socket::Node(0))
        .unwrap()
        .greatest_free_bytes;
    let all = mz.reserve("all", 0, Socket::Any, NONE).unwrap();
    // Feature `debug` also keeps a cache line at the end for the overrun cookie.
    let trailer = if cfg!(feature = "debug") { 64 } else { 0 };
    assert_eq!(
        all.len as u64,
        greatest - 64 - trailer,
        "the biggest element less its header"
    );
    let after = eal.heaps().stats(Socket::Node(0)).unwrap();
    assert_eq!(after.free_bytes, 0);
    assert_eq!(
        mz.reserve("more", 64, S0, NONE).unwrap_err().kind(),
        ErrorKind::NoMem
    );
    // An aligned zero-length memzone loses only what the alignment costs.
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&all) }.unwrap();
    let aligned = mz.reserve_aligned("all", 0, S0, NONE, 1 << 20).unwrap();
    assert_eq!(aligned.va % (1 << 20), 0);
    assert!(aligned.len as u64 >= greatest - 64 - (1 << 20));
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&aligned) }.unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&small) }.unwrap();
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
        .map(|i| mz.reserve(&format!("z{i}"), 64, S0, NONE).unwrap())
        .collect();
    let err = mz.reserve("z8", 64, S0, NONE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpc, "{err}");
    // A full table refuses before looking at the name (DPDK's order of checks).
    assert_eq!(
        mz.reserve("z0", 64, S0, NONE).unwrap_err().kind(),
        ErrorKind::NoSpc
    );
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&zones[3]) }.unwrap();
    let again = mz.reserve("z8", 64, S0, NONE).unwrap();
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
        mz.reserve(name, 1000, S0, NONE).unwrap();
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
    let big = mz
        .reserve("huge", 3 << 20, S0, MemzoneFlags::PAGE_2MB)
        .unwrap();
    assert_eq!(big.page_size, 2 << 20);
    assert_eq!(big.socket, Socket::Node(0));
    assert_eq!(big.iova, Some(eal.memory().virt_to_iova(big.va).unwrap()));
    // IOVA-contiguous (in PA mode two physically adjacent pages may not exist, as for DPDK,
    // so ask for less than a page): the last byte's IOVA follows from the first's.
    let zone = mz
        .reserve(
            "contig",
            1 << 20,
            S0,
            MemzoneFlags::PAGE_2MB | MemzoneFlags::IOVA_CONTIG,
        )
        .unwrap();
    assert_eq!(zone.page_size, 2 << 20);
    assert_eq!(zone.iova, Some(eal.memory().virt_to_iova(zone.va).unwrap()));
    let last = zone.va + zone.len - 1;
    let first = zone.iova.expect("checked above").get();
    assert_eq!(
        eal.memory().virt_to_iova(last).map(Iova::get),
        Some(first + zone.len as u64 - 1)
    );
    assert_eq!(
        mz.reserve("1g", 64, S0, MemzoneFlags::PAGE_1GB)
            .unwrap_err()
            .kind(),
        ErrorKind::NoMem
    );
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&zone) }.unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { mz.free(&big) }.unwrap();
    assert_eq!(
        eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes,
        0,
        "pages given back"
    );
}
