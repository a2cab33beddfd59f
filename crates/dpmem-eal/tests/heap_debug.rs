//! Feature `debug`: every block ends with a cookie, so a write past the end is reported by
//! free, validate and the heap check, with the block's address and size, and the heap is left
//! as it was (`cargo test -p dpmem-eal --features debug`).
#![cfg(feature = "debug")]

mod common;

use common::*;
use dpmem_eal::{Eal, EalError, ErrorKind};

fn no_huge() -> Eal {
    let prefix = unique_prefix("heapdbg");
    Eal::init(args(&["--no-huge", "-m", "16", "--file-prefix", &prefix])).unwrap()
}

#[test]
fn a_write_past_the_end_is_reported_and_the_block_kept() {
    let eal = no_huge();
    let heaps = eal.heaps();
    let fresh = heaps.stats(0).unwrap();
    let p = heaps.malloc(100, 0).unwrap();
    let usable = heaps.validate(p.as_ptr()).unwrap();
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
    expect_overrun(heaps.validate(p.as_ptr()).unwrap_err());
    // SAFETY: the block is ours; the free is refused, so it stays ours.
    expect_overrun(unsafe { heaps.free(p) }.unwrap_err());
    let err = heaps.check().unwrap_err();
    assert!(err.to_string().contains("written past its end"), "{err}");
    let held = heaps.stats(0).unwrap();
    assert_eq!(
        held.alloc_count,
        fresh.alloc_count + 1,
        "the block was not freed"
    );

    // Putting the overwritten byte back makes the block whole: it frees and merges again.
    // SAFETY: as above.
    unsafe { past_end.write(original) };
    assert_eq!(heaps.validate(p.as_ptr()).unwrap(), usable);
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(p) }.unwrap();
    heaps.check().unwrap();
    assert_eq!(heaps.stats(0).unwrap(), fresh);
}

#[test]
fn blocks_that_stay_inside_their_bytes_free_cleanly_through_realloc_and_memzones() {
    let eal = no_huge();
    let heaps = eal.heaps();
    let fresh = heaps.stats(0).unwrap();
    let p = heaps.malloc(1000, 256).unwrap();
    let usable = heaps.validate(p.as_ptr()).unwrap();
    // SAFETY: exactly the block's usable bytes.
    unsafe { p.as_ptr().write_bytes(1, usable) };
    // SAFETY: the block is ours and not used after the call.
    let p = unsafe { heaps.realloc(Some(p), 5000, 256) }.unwrap();
    let usable = heaps.validate(p.as_ptr()).unwrap();
    // SAFETY: exactly the grown block's usable bytes.
    unsafe { p.as_ptr().write_bytes(2, usable) };
    heaps.check().unwrap();
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(p) }.unwrap();

    let mz = eal.memzones().reserve("dbg", 0, 0, 0).unwrap();
    // SAFETY: the memzone's own bytes.
    unsafe { (mz.va as *mut u8).write_bytes(3, mz.len as usize) };
    heaps.check().unwrap();
    eal.memzones().free(&mz).unwrap();
    let end = heaps.stats(0).unwrap();
    assert_eq!(end.free_bytes, fresh.free_bytes);
    assert_eq!(end.greatest_free_bytes, fresh.greatest_free_bytes);
}
