//! Feature `debug`: every block ends with a cookie, so a write past the end is reported by
//! free, validate and the heap check, with the block's address and size, and the heap is left
//! as it was (`cargo test -p dpmem-eal --features debug`).
#![cfg(feature = "debug")]

mod common;

use common::*;
use dpmem_eal::{Eal, EalError, ErrorKind, MemzoneFlags, Socket};

fn no_huge() -> Eal {
    let prefix = unique_prefix("heapdbg");
    Eal::init(args(&["--no-huge", "-m", "16", "--file-prefix", &prefix])).unwrap()
}

#[test]
fn a_write_past_the_end_is_reported_and_the_block_kept() {
    let eal = no_huge();
    let heaps = eal.heaps();
    let fresh = heaps.stats(Socket::Node(0)).unwrap();
    let p = heaps.malloc(100, 0).unwrap();
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    let usable = unsafe { heaps.validate(p.as_ptr()) }.unwrap();
    assert_eq!(usable, 128, "100 bytes round up to two cache lines");
    // SAFETY: the byte just past the usable bytes is the trailer, mapped heap memory; this test
    // reads it, overwrites it (the overrun under test) and later puts it back.
    let past_end = unsafe { p.as_ptr().add(usable) };
    // SAFETY: as above.
    let original = unsafe { past_end.read() };
    // SAFETY: the block's own bytes, then the deliberate overrun by one byte.
    unsafe { p.as_ptr().write_bytes(0xaa, usable) };
    // SAFETY: as above.
    unsafe { past_end.write(!original) };

    let expect_overrun = |err: EalError| {
        assert_eq!(err.kind(), ErrorKind::Fault);
        match err {
            EalError::BlockOverrun { addr, size } => {
                assert_eq!((addr, size), (p.as_ptr() as usize, usable));
            }
            other => panic!("expected an overrun report, got {other}"),
        }
    };
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    expect_overrun(unsafe { heaps.validate(p.as_ptr()) }.unwrap_err());
    // SAFETY: the block is ours; the free is refused, so it stays ours.
    expect_overrun(unsafe { heaps.free(p) }.unwrap_err());
    let err = heaps.check().unwrap_err();
    assert!(err.to_string().contains("written past its end"), "{err}");
    let held = heaps.stats(Socket::Node(0)).unwrap();
    assert_eq!(
        held.alloc_count,
        fresh.alloc_count + 1,
        "the block was not freed"
    );

    // Putting the overwritten byte back makes the block whole: it frees and merges again.
    // SAFETY: as above.
    unsafe { past_end.write(original) };
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(p.as_ptr()) }.unwrap(), usable);
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(p) }.unwrap();
    heaps.check().unwrap();
    assert_eq!(heaps.stats(Socket::Node(0)).unwrap(), fresh);
}

#[test]
fn blocks_that_stay_inside_their_bytes_free_cleanly_through_realloc_and_memzones() {
    let eal = no_huge();
    let heaps = eal.heaps();
    let fresh = heaps.stats(Socket::Node(0)).unwrap();
    let p = heaps.malloc(1000, 256).unwrap();
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    let usable = unsafe { heaps.validate(p.as_ptr()) }.unwrap();
    // SAFETY: exactly the block's usable bytes.
    unsafe { p.as_ptr().write_bytes(1, usable) };
    // SAFETY: the block is ours and not used after the call.
    let p = unsafe { heaps.realloc(Some(p), 5000, 256) }.unwrap();
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    let usable = unsafe { heaps.validate(p.as_ptr()) }.unwrap();
    // SAFETY: exactly the grown block's usable bytes.
    unsafe { p.as_ptr().write_bytes(2, usable) };
    heaps.check().unwrap();
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(p) }.unwrap();

    let mz = eal
        .memzones()
        .reserve("dbg", 0, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    // SAFETY: the memzone's own bytes.
    unsafe { (mz.va as *mut u8).write_bytes(3, mz.len) };
    heaps.check().unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&mz) }.unwrap();
    let end = heaps.stats(Socket::Node(0)).unwrap();
    assert_eq!(end.free_bytes, fresh.free_bytes);
    assert_eq!(end.greatest_free_bytes, fresh.greatest_free_bytes);
}

/// A memzone bounded by its own length (or of length 0 with a bound) on a fresh heap, whose free
/// block ends on a multiple of the bound: the block goes in the window below that boundary,
/// which leaves the trailer room, instead of failing with megabytes free.
#[test]
fn a_memzone_as_long_as_its_bound_fits_below_a_free_block_ending_on_the_bound() {
    let eal = no_huge();
    let zones = eal.memzones();
    let free_before = eal.heaps().stats(Socket::Node(0)).unwrap().free_bytes;
    for (name, len, bound) in [("exact", 4096, 4096), ("zero", 0, 64 << 10)] {
        let zone = zones
            .request(name, len)
            .bound(bound)
            .reserve()
            .unwrap_or_else(|e| panic!("{name}: {e} ({free_before} bytes were free)"));
        assert_eq!(zone.len, bound, "{name}");
        let (start, end) = (zone.va, zone.va + zone.len - 1);
        assert_eq!(
            start / bound,
            end / bound,
            "{name} crosses a {bound}-byte boundary"
        );
    }
    eal.heaps().check().unwrap();
}
