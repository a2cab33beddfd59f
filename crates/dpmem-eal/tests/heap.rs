//! Malloc heaps, conformance with DPDK 22.11's documented behaviour, on `--no-huge` memory
//! (any user) and on real hugepages where the machine has them.

mod common;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use dpmem_eal::heap::{HeapElement, HeapElementState};
use dpmem_eal::{Eal, ErrorKind, HeapStats, MemEvent, Socket};

fn no_huge(mb: u32) -> Eal {
    no_huge_eal("heap", mb)
}

/// Bytes every busy element ends with under feature `debug` (its overrun cookie).
const TRAILER: usize = if cfg!(feature = "debug") { 64 } else { 0 };

fn stats(eal: &Eal) -> HeapStats {
    eal.heaps().stats(Socket::Node(0)).unwrap()
}

fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: callers pass blocks they allocated, of at least `len` bytes.
    unsafe { std::ptr::write_bytes(ptr.as_ptr(), byte, len) }
}

fn bytes(ptr: NonNull<u8>, len: usize) -> &'static [u8] {
    // SAFETY: callers pass live blocks of at least `len` bytes and stop using the slice before
    // freeing them.
    unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) }
}

fn free(eal: &Eal, ptr: NonNull<u8>) {
    // SAFETY: tests free only blocks they own and no longer read.
    unsafe { eal.heaps().free(ptr) }.unwrap();
}

#[test]
fn a_fresh_heap_is_one_free_block_holding_all_memory() {
    let eal = no_huge(16);
    let s = stats(&eal);
    assert_eq!(s.socket, Socket::Node(0));
    assert_eq!(s.name, "socket_0");
    assert_eq!(s.total_bytes, 16 << 20);
    assert_eq!(s.free_bytes, s.total_bytes);
    assert_eq!(s.greatest_free_bytes, s.total_bytes);
    assert_eq!((s.free_count, s.alloc_count, s.alloc_bytes), (1, 0, 0));
    assert_eq!(eal.heaps().sockets(), vec![Socket::Node(0)]);
    eal.heaps().check().unwrap();
}

#[test]
fn alignments_from_1_to_4096_are_honoured_without_overlap() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let before = stats(&eal);
    let mut blocks = Vec::new();
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in [1usize, 63, 64, 65, 1000, 4096, 10_000] {
            let p = heaps.malloc(size, align).unwrap();
            assert_eq!(
                p.as_ptr() as usize % align.max(64),
                0,
                "align {align} size {size}"
            );
            // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
            let usable = unsafe { heaps.validate(p.as_ptr()) }.unwrap();
            assert!(usable >= size, "usable {usable} < {size}");
            fill(p, size, (blocks.len() % 251) as u8);
            blocks.push((p, size));
        }
    }
    let mut ranges: Vec<(usize, usize)> = blocks
        .iter()
        .map(|(p, s)| (p.as_ptr() as usize, p.as_ptr() as usize + s))
        .collect();
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 <= w[1].0),
        "blocks overlap"
    );
    for (n, (p, size)) in blocks.iter().enumerate() {
        assert!(
            bytes(*p, *size).iter().all(|&b| b == (n % 251) as u8),
            "block {n} overwritten"
        );
    }
    heaps.check().unwrap();
    assert_eq!(stats(&eal).alloc_count, blocks.len() as u64);
    for (p, _) in blocks {
        free(&eal, p);
    }
    heaps.check().unwrap();
    let after = stats(&eal);
    assert_eq!(after.free_count, 1);
    assert_eq!(after.greatest_free_bytes, before.greatest_free_bytes);
}

#[test]
fn bad_arguments_are_refused_and_change_nothing() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let before = stats(&eal);
    assert_eq!(heaps.malloc(0, 0).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(heaps.malloc(64, 3).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(heaps.malloc(64, 100).unwrap_err().kind(), ErrorKind::Inval);
    // Without hugepages every node is the same memory: node 7's request is served from
    // node 0's heap, as DPDK does (a hugepage EAL refuses it: see below).
    let p = heaps.malloc_socket(64, 0, Socket::Node(7)).unwrap();
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        unsafe { heaps.socket_of(p.as_ptr()) }.unwrap(),
        Socket::Node(0)
    );
    free(&eal, p);
    // Node ids DPDK's integer cannot name (256 and up are external heaps' ids) and external
    // indices past it: refused naming what was asked, not what the id would have saturated to.
    for (socket, named) in [
        (Socket::Node(256), "socket 256"),
        (Socket::Node(u32::MAX), "socket 4294967295"),
        (Socket::External(u32::MAX), "External(4294967295)"),
    ] {
        let refusals = [
            heaps.malloc_socket(64, 0, socket).map(|_| ()),
            heaps.zmalloc_socket(64, 0, socket).map(|_| ()),
            heaps.stats(socket).map(|_| ()),
            heaps.allocator(socket).map(|_| ()),
            heaps.heap_socket_is_external(socket).map(|_| ()),
            heaps.request(64).socket(socket).alloc().map(|_| ()),
            eal.memzones()
                .reserve("badsock", 64, socket, Default::default())
                .map(|_| ()),
        ];
        for refusal in refusals {
            let err = refusal.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
            assert!(err.to_string().contains(named), "{socket:?}: {err}");
        }
    }
    // An external heap nobody created has no memory to fall back on.
    assert_eq!(
        heaps
            .malloc_socket(64, 0, Socket::External(5))
            .unwrap_err()
            .kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        heaps.calloc(usize::MAX, 2, 0).unwrap_err().kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        heaps.malloc(usize::MAX - 10, 0).unwrap_err().kind(),
        ErrorKind::Inval
    );
    // More than the heap has: out of memory (no-huge memory cannot grow).
    let err = heaps.malloc(32 << 20, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert_eq!(stats(&eal), before);
    heaps.check().unwrap();
    drop(eal);
    // On hugepages each node's heap is its own: node 7 has none, and nothing is taken.
    let Some((_serial, eal, free_before)) = hugepage_eal(
        "bad_arguments_are_refused_and_change_nothing",
        "heapbadsock",
        &[],
    ) else {
        return;
    };
    let before = stats(&eal);
    let err = eal
        .heaps()
        .malloc_socket(64, 0, Socket::Node(7))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert_eq!(stats(&eal), before);
    assert_eq!(free_2m(), free_before);
}

#[test]
fn one_allocation_moves_the_stats_by_exactly_its_block() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let before = stats(&eal);
    let p = heaps.malloc(1000, 0).unwrap();
    let after = stats(&eal);
    // 1000 rounds up to 1024, plus one cache line of header; taken from the end of the one
    // free element, so no padding and no leftover.
    assert_eq!(after.alloc_count, before.alloc_count + 1);
    assert_eq!(
        after.alloc_bytes,
        before.alloc_bytes + 1088 + TRAILER as u64
    );
    assert_eq!(after.free_bytes, before.free_bytes - 1088 - TRAILER as u64);
    assert_eq!(after.free_count, before.free_count);
    assert_eq!(after.total_bytes, before.total_bytes);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(p.as_ptr()) }.unwrap(), 1024);
    // Allocations come from the end of the free element.
    assert_eq!(p.as_ptr() as usize + 1024 + TRAILER, {
        let list = &eal.memory().lists()[0];
        list.base_va + list.len
    });
    free(&eal, p);
    assert_eq!(stats(&eal), before);
}

#[test]
fn frees_in_every_order_merge_back_into_one_block() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let initial = stats(&eal);
    let sizes = [64usize, 200, 4096, 70_000, 128];
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    let mut permutations = 0;
    loop {
        let blocks: Vec<NonNull<u8>> = sizes.iter().map(|&s| heaps.malloc(s, 0).unwrap()).collect();
        for &i in &order {
            free(&eal, blocks[i]);
            heaps.check().unwrap();
        }
        let s = stats(&eal);
        assert_eq!(s.free_count, 1, "order {order:?}");
        assert_eq!(
            s.greatest_free_bytes, initial.greatest_free_bytes,
            "order {order:?}"
        );
        permutations += 1;
        if !next_permutation(&mut order) {
            break;
        }
    }
    assert_eq!(permutations, 120);
}

fn next_permutation(v: &mut [usize]) -> bool {
    let Some(i) = (1..v.len()).rev().find(|&i| v[i - 1] < v[i]) else {
        return false;
    };
    let j = (i..v.len()).rev().find(|&j| v[j] > v[i - 1]).unwrap();
    v.swap(i - 1, j);
    v[i..].reverse();
    true
}

#[test]
fn realloc_grows_in_place_once_the_neighbour_is_free_and_moves_otherwise() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    // Blocks come from the end of the free element, so `low` sits just below `high`.
    let high = heaps.malloc(1000, 0).unwrap();
    let low = heaps.malloc(1000, 0).unwrap();
    assert_eq!(
        low.as_ptr() as usize + 1024 + TRAILER + 64,
        high.as_ptr() as usize
    );
    fill(low, 1000, 0x22);
    // The neighbour above is busy: growing moves the data (below, from the free element).
    // SAFETY: `low` is ours and not used after the call.
    let moved = unsafe { heaps.realloc(Some(low), 3000, 0) }.unwrap();
    assert_ne!(moved, low);
    assert_eq!(
        moved.as_ptr() as usize + 3008 + TRAILER + 64,
        low.as_ptr() as usize
    );
    assert!(bytes(moved, 1000).iter().all(|&b| b == 0x22));
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        unsafe { heaps.validate(low.as_ptr()) }.unwrap_err().kind(),
        ErrorKind::Inval
    );
    // Moving freed `low`, the neighbour right above `moved`: now it grows in place.
    // SAFETY: `moved` is ours.
    let grown = unsafe { heaps.realloc(Some(moved), 4000, 0) }.unwrap();
    assert_eq!(grown, moved, "grown in place into the freed neighbour");
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { heaps.validate(grown.as_ptr()) }.unwrap() >= 4000);
    assert!(bytes(grown, 1000).iter().all(|&b| b == 0x22));
    heaps.check().unwrap();
    // Shrinking stays in place and gives the rest back.
    let before = stats(&eal);
    // SAFETY: `grown` is ours.
    let shrunk = unsafe { heaps.realloc(Some(grown), 64, 0) }.unwrap();
    assert_eq!(shrunk, grown);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(shrunk.as_ptr()) }.unwrap(), 64);
    assert!(stats(&eal).free_bytes > before.free_bytes);
    assert_eq!(bytes(shrunk, 64)[63], 0x22);
    // A stricter alignment than the block has moves it.
    // SAFETY: `shrunk` is ours.
    let aligned = unsafe { heaps.realloc(Some(shrunk), 64, 1 << 20) }.unwrap();
    assert_eq!(aligned.as_ptr() as usize % (1 << 20), 0);
    assert_eq!(bytes(aligned, 64)[0], 0x22);
    heaps.check().unwrap();
    for p in [high, aligned] {
        free(&eal, p);
    }
    assert_eq!(stats(&eal).free_count, 1);
}

#[test]
fn a_failed_realloc_keeps_the_old_block() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let p = heaps.malloc(5000, 0).unwrap();
    fill(p, 5000, 0x5C);
    for (size, align, kind) in [
        (64 << 20, 0, ErrorKind::NoMem),
        (0, 0, ErrorKind::Inval),
        (100, 48, ErrorKind::Inval),
    ] {
        // SAFETY: `p` is ours; on failure it stays ours.
        let err = unsafe { heaps.realloc(Some(p), size, align) }.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        assert_eq!(unsafe { heaps.validate(p.as_ptr()) }.unwrap(), 5056);
        assert!(bytes(p, 5000).iter().all(|&b| b == 0x5C));
    }
    heaps.check().unwrap();
    free(&eal, p);
}

#[test]
fn zmalloc_and_calloc_return_zeroes_even_over_dirty_memory() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    for round in 0..3 {
        // Surround the block with busy neighbours so its memory stays dirty once freed.
        let guard_hi = heaps.malloc(64, 0).unwrap();
        let p = heaps.malloc(8192, 0).unwrap();
        let guard_lo = heaps.malloc(64, 0).unwrap();
        fill(p, 8192, 0xFF);
        free(&eal, p);
        let z = if round == 0 {
            heaps.zmalloc(8192, 0).unwrap()
        } else {
            heaps.calloc(8, 1024, 0).unwrap()
        };
        assert_eq!(z, p, "the freed block is reused");
        assert!(bytes(z, 8192).iter().all(|&b| b == 0), "round {round}");
        for q in [z, guard_hi, guard_lo] {
            free(&eal, q);
        }
    }
    // Memory freed next to clean memory is cleared when it merges, so the heap stays clean:
    // at once for a block too big for a quick list, when the heap consolidates for a small one
    // (statistics do). The guards above were parked: merged first, they leave one free block.
    heaps.stats(Socket::Node(0)).unwrap();
    for (len, parked) in [(8192, false), (4096, true)] {
        let p = heaps.malloc(len, 0).unwrap();
        fill(p, len, 0xEE);
        free(&eal, p);
        if parked {
            let q = heaps.malloc(len, 0).unwrap();
            assert_eq!(q, p, "a parked block serves the next request of its size");
            assert!(
                bytes(q, len).iter().any(|&b| b != 0),
                "parked blocks are not cleared"
            );
            free(&eal, q);
            heaps.stats(Socket::Node(0)).unwrap();
        }
        let q = heaps.malloc(len, 0).unwrap();
        assert_eq!(q, p);
        assert!(bytes(q, len).iter().all(|&b| b == 0), "{len} bytes");
        free(&eal, q);
    }
    heaps.check().unwrap();
}

/// Zeroing allocations over memory in every state the heap tracks: thousands of random
/// allocations (plain ones filled with 0xFF at once, as a program would), zeroing ones (checked
/// to read zero, then filled too), reallocations and frees in random order, so blocks of every
/// size are freed next to clean and dirty neighbours and alone, and merged elements are cut
/// again. Every zeroing allocation must read zero; the heap checks out throughout.
#[test]
fn zeroing_allocations_read_zero_whatever_was_freed_around_them() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    let mut zeroed = 0;
    for step in 0..20_000 {
        let r = next();
        let size = 1 + (r >> 8) as usize % [100, 1_000, 20_000, 40_000][(r >> 40) as usize % 4];
        match r % 8 {
            0..=2 if live.len() < 300 => {
                if let Ok(p) = heaps.malloc(size, 64 << ((r >> 50) % 4)) {
                    fill(p, size, 0xFF);
                    live.push((p, size));
                }
            }
            3..=4 if live.len() < 300 => {
                if let Ok(p) = heaps.zmalloc(size, 0) {
                    assert!(
                        bytes(p, size).iter().all(|&b| b == 0),
                        "step {step}: zmalloc of {size} bytes at {p:?} is not zero"
                    );
                    zeroed += 1;
                    fill(p, size, 0xFF);
                    live.push((p, size));
                }
            }
            5 if !live.is_empty() => {
                let i = (r >> 16) as usize % live.len();
                let (p, old) = live[i];
                // SAFETY: a live block of this test, not used again unless the call fails.
                if let Ok(q) = unsafe { heaps.realloc(Some(p), size, 0) } {
                    fill(q, size, 0xFF);
                    live[i] = (q, size);
                } else {
                    assert!(bytes(p, old).iter().all(|&b| b == 0xFF));
                }
            }
            _ if !live.is_empty() => {
                let (p, _) = live.swap_remove((r >> 16) as usize % live.len());
                free(&eal, p);
            }
            _ => {}
        }
        if step % 1000 == 0 {
            heaps.check().unwrap();
        }
    }
    assert!(zeroed > 3000, "only {zeroed} zeroing allocations");
    for (p, _) in live {
        free(&eal, p);
    }
    heaps.check().unwrap();
}

/// A block with a pad header: one whose data starts 64 bytes into the element it was cut
/// from, too little in front for a free element of its own (DPDK's `elem->pad`). Made by
/// filling a 16 KiB hole, the only free memory left, with a block one line shorter.
fn padded_block(eal: &Eal) -> NonNull<u8> {
    let heaps = eal.heaps();
    let hole = heaps.malloc(16 << 10, 0).unwrap();
    let below = heaps.malloc(256, 0).unwrap();
    free(eal, hole);
    // The greatest free element's size counts its header: asking for a line less than what
    // is left after it (less two with feature `debug`'s trailer) takes all of it, what is left
    // in front becoming padding. (Assumes no other free element of 16 KiB or more.)
    let rest = heaps
        .malloc(stats(eal).greatest_free_bytes as usize - 128, 0)
        .unwrap();
    assert_eq!(stats(eal).free_count, 1, "the hole is all that is free");
    let padded = heaps.malloc((16 << 10) - 64, 0).unwrap();
    assert_eq!(
        padded.as_ptr() as usize,
        hole.as_ptr() as usize + 64,
        "the block fills the hole, its data one line further in"
    );
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        unsafe { heaps.validate(padded.as_ptr()) }.unwrap(),
        (16 << 10) - 64
    );
    free(eal, rest);
    free(eal, below);
    padded
}

#[test]
fn double_frees_and_foreign_pointers_are_errors_and_the_heap_stays_intact() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let hi = heaps.malloc(256, 0).unwrap();
    let mid = heaps.malloc(256, 0).unwrap();
    let lo = heaps.malloc(256, 0).unwrap();
    let padded = padded_block(&eal);
    free(&eal, mid);
    let before = stats(&eal);
    // `mid` sits between busy blocks, so its header still says free: a double free.
    // SAFETY: a deliberate double free; the heap must refuse it.
    let err = unsafe { heaps.free(mid) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    assert!(err.to_string().contains("double free"), "{err}");
    let on_stack = 0u64;
    let foreign = [
        NonNull::from(&on_stack).cast::<u8>(),
        NonNull::new((hi.as_ptr() as usize + 64) as *mut u8).unwrap(),
        NonNull::new((hi.as_ptr() as usize + 8) as *mut u8).unwrap(),
        NonNull::new((padded.as_ptr() as usize - 64) as *mut u8).unwrap(),
        NonNull::new(0x1000 as *mut u8).unwrap(),
    ];
    for p in foreign {
        // SAFETY: deliberately bad pointers; the heap must refuse them untouched.
        let err = unsafe { heaps.free(p) }.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Inval, "{p:?}: {err}");
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        assert!(unsafe { heaps.validate(p.as_ptr()) }.is_err());
    }
    assert_eq!(stats(&eal), before);
    heaps.check().unwrap();
    for p in [hi, lo, padded] {
        free(&eal, p);
    }
    // Freed and merged: the header is gone, and the pointer is still refused.
    // SAFETY: a deliberate double free.
    let again = unsafe { heaps.free(hi) };
    assert_eq!(again.unwrap_err().kind(), ErrorKind::Inval);
    // SAFETY: as above, for a block that had a pad header.
    let again = unsafe { heaps.free(padded) }.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Inval);
    // Its free erased the pad header, so nothing leads from there to a block any more.
    assert!(
        again.to_string().contains("no live block starts here"),
        "{again}"
    );
    heaps.check().unwrap();
    assert_eq!(stats(&eal).free_count, 1);
}

#[test]
fn a_small_freed_block_waits_for_its_size_and_is_refused_like_any_freed_block() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let initial = stats(&eal);
    let hi = heaps.malloc(256, 0).unwrap();
    let mid = heaps.malloc(256, 0).unwrap();
    let lo = heaps.malloc(256, 0).unwrap();
    fill(mid, 256, 0xAB);
    free(&eal, mid);
    // Parked, not merged (no statistics taken since): refused all the same.
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { heaps.validate(mid.as_ptr()) }.is_err());
    // SAFETY: a deliberate double free of a parked block; the heap must refuse it.
    let err = unsafe { heaps.free(mid) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    assert!(err.to_string().contains("double free"), "{err}");
    heaps.check().unwrap();
    // The next request of its size takes it back, old bytes and all (a plain malloc).
    let again = heaps.malloc(256, 0).unwrap();
    assert_eq!(again, mid);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(again.as_ptr()) }.unwrap(), 256);
    assert!(bytes(again, 256).iter().all(|&b| b == 0xAB));
    free(&eal, again);
    // A zeroing request of that size gets it cleared.
    let zeroed = heaps.zmalloc(256, 0).unwrap();
    assert_eq!(zeroed, mid);
    assert!(bytes(zeroed, 256).iter().all(|&b| b == 0));
    fill(zeroed, 256, 0xCD);
    free(&eal, zeroed);
    // A smaller request has no parked block of its size; rather than cut into the biggest free
    // element, the heap merges what is parked first, and the hole `mid` leaves fits it.
    let other = heaps.malloc(192, 0).unwrap();
    // (At the hole's end, as every block is cut: 64 bytes up, the front left as padding.)
    let hole = mid.as_ptr() as usize - 64..mid.as_ptr() as usize + 256;
    assert!(
        hole.contains(&(other.as_ptr() as usize)),
        "served from the merged hole"
    );
    heaps.check().unwrap();
    for p in [hi, lo, other] {
        free(&eal, p);
    }
    heaps.check().unwrap();
    // Statistics see every free merged: one block again, and it reads zero where the parked
    // blocks were (cleared as they merged into clean memory).
    let end = stats(&eal);
    assert_eq!(end.free_count, 1);
    assert_eq!(end.alloc_count, 0);
    assert_eq!(end.greatest_free_bytes, initial.greatest_free_bytes);
    // A plain allocation, so nothing clears it on the way out.
    let all = heaps.malloc(1 << 20, 0).unwrap();
    let covered = (all.as_ptr() as usize..all.as_ptr() as usize + (1 << 20))
        .contains(&(mid.as_ptr() as usize));
    assert!(covered, "the top megabyte holds the parked blocks' memory");
    assert!(bytes(all, 1 << 20).iter().all(|&b| b == 0));
    free(&eal, all);
    heaps.check().unwrap();
}

#[test]
fn threads_churning_never_share_a_byte() {
    let eal = no_huge(32);
    let heaps = eal.heaps();
    let initial = stats(&eal);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let failures = &failures;
            scope.spawn(move || {
                let mut seed = 0x9E37_79B9u32.wrapping_mul(u32::from(t) + 1);
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as usize
                };
                let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
                for i in 0..3000 {
                    if live.len() < 40 && next() % 3 != 0 {
                        let size = 1 + next() % 20_000;
                        let align = 1 << (next() % 13);
                        let p = heaps.malloc(size, align).unwrap();
                        let tag = t.wrapping_mul(64).wrapping_add(i as u8);
                        fill(p, size, tag);
                        live.push((p, size, tag));
                    } else if !live.is_empty() {
                        let (p, size, tag) = live.swap_remove(next() % live.len());
                        if !bytes(p, size).iter().all(|&b| b == tag) {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        // SAFETY: this thread's own block.
                        unsafe { heaps.free(p) }.unwrap();
                    }
                }
                for (p, size, tag) in live {
                    if !bytes(p, size).iter().all(|&b| b == tag) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    // SAFETY: this thread's own block.
                    unsafe { heaps.free(p) }.unwrap();
                }
            });
        }
    });
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "a block was overwritten by another"
    );
    heaps.check().unwrap();
    let end = stats(&eal);
    assert_eq!(end.free_count, 1);
    assert_eq!(end.greatest_free_bytes, initial.greatest_free_bytes);
}

#[test]
fn heap_boxes_drop_their_value_and_free_their_block() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>, [u64; 100]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    {
        let mut b = heaps.boxed(Counted(drops.clone(), [7; 100])).unwrap();
        b.1[99] = 8;
        assert_eq!(b.1[0] + b.1[99], 15);
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        assert_eq!(unsafe { heaps.validate(b.as_ptr().cast()) }.unwrap(), 832);
        assert_eq!(stats(&eal).alloc_count, 1);
        let unit = heaps.boxed_socket((), Socket::Node(0)).unwrap();
        assert_eq!(stats(&eal).alloc_count, 2);
        drop(unit);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    assert_eq!(stats(&eal).alloc_count, 0);
    assert_eq!(stats(&eal).free_count, 1);
}

#[test]
fn the_request_builder_allocates_what_it_describes() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let before = stats(&eal);
    // Defaults: a cache line of alignment, any socket, contents as they are.
    let plain = heaps.request(100).alloc().unwrap();
    assert_eq!(plain.as_ptr() as usize % 64, 0);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(plain.as_ptr()) }.unwrap(), 128);
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        unsafe { heaps.socket_of(plain.as_ptr()) }.unwrap(),
        Socket::Node(0)
    );
    // Dirty memory, freed between busy neighbours so it stays dirty, is what `zeroed` clears.
    let guard_hi = heaps.malloc(64, 0).unwrap();
    let dirty = heaps.malloc(8192, 256).unwrap();
    let guard_lo = heaps.malloc(64, 0).unwrap();
    fill(dirty, 8192, 0xA7);
    free(&eal, dirty);
    let zeroed = heaps
        .request(8192)
        .align(256)
        .socket(Socket::Node(0))
        .zeroed()
        .alloc()
        .unwrap();
    assert_eq!(zeroed, dirty, "the freed block is reused");
    assert_eq!(zeroed.as_ptr() as usize % 256, 0);
    assert!(bytes(zeroed, 8192).iter().all(|&b| b == 0));
    // Bad arguments are refused as the plain calls refuse them.
    let err = heaps.request(64).align(3).alloc().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    let err = heaps.request(0).zeroed().alloc().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    let err = heaps
        .request(64)
        .socket(Socket::External(5))
        .alloc()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    for p in [plain, guard_hi, zeroed, guard_lo] {
        free(&eal, p);
    }
    assert_eq!(stats(&eal), before);
    heaps.check().unwrap();
}

#[test]
fn the_dump_lists_every_element() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    let p = heaps.malloc(100, 4096).unwrap();
    let dump = heaps.dump();
    assert!(dump.contains("heap socket_0 (socket 0)"), "{dump}");
    assert!(dump.contains("busy"), "{dump}");
    assert!(dump.contains("free"), "{dump}");
    free(&eal, p);
}

#[test]
fn socket_any_serves_from_the_preferred_socket_without_counting_a_fallback() {
    let eal = no_huge(16);
    let heaps = eal.heaps();
    assert_eq!(heaps.preferred_socket(), Socket::Node(0));
    let p = heaps.malloc_socket(64, 0, Socket::Any).unwrap();
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        unsafe { heaps.socket_of(p.as_ptr()) }.unwrap(),
        Socket::Node(0)
    );
    assert_eq!(stats(&eal).fallback_alloc_count, 0);
    free(&eal, p);
}

/// A hugepage EAL for test `test` (None, the test skipped, where hugepages are missing): held
/// under the hugepage lock, since the tests count the machine's free pages, with `extra`
/// options and that count from before it started.
fn hugepage_eal(
    test: &str,
    tag: &str,
    extra: &[&str],
) -> Option<(std::sync::MutexGuard<'static, ()>, Eal, u64)> {
    let serial = hugepage_lock();
    if !hugepages_available(test, 8) {
        return None;
    }
    let prefix = unique_prefix(tag);
    let free_before = free_2m();
    let mut options = extra.to_vec();
    options.extend(["--file-prefix", &prefix]);
    let eal = Eal::init(args(&options)).unwrap();
    Some((serial, eal, free_before))
}

#[test]
fn on_hugepages_the_heap_grows_on_demand_and_gives_whole_pages_back() {
    let Some((_serial, eal, free_before)) = hugepage_eal(
        "on_hugepages_the_heap_grows_on_demand_and_gives_whole_pages_back",
        "heapgrow",
        &[],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    assert_eq!(
        stats(&eal).total_bytes,
        0,
        "dynamic mode without -m starts empty"
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    eal.memory()
        .register_event_callback("heap-test", move |ev, va, len| {
            sink.lock().unwrap().push((ev, va, len))
        })
        .unwrap();
    let p = heaps.malloc(3 << 20, 0).unwrap();
    assert_eq!(
        free_2m(),
        free_before - 2,
        "two 2 MiB pages mapped for 3 MiB"
    );
    assert_eq!(stats(&eal).total_bytes, 4 << 20);
    assert_eq!(events.lock().unwrap().len(), 1);
    assert_eq!(events.lock().unwrap()[0].0, MemEvent::Alloc);
    fill(p, 3 << 20, 0x77);
    let small = heaps.zmalloc(100, 0).unwrap();
    assert!(bytes(small, 100).iter().all(|&b| b == 0));
    heaps.check().unwrap();
    free(&eal, p);
    free(&eal, small);
    heaps.check().unwrap();
    assert_eq!(free_2m(), free_before, "whole free pages went back");
    assert_eq!(stats(&eal).total_bytes, 0);
    assert_eq!(events.lock().unwrap().last().unwrap().0, MemEvent::Free);

    // A validator that refuses growth makes the allocation fail with ENOMEM, heap unchanged.
    eal.memory()
        .register_validator("no-growth", Socket::Node(0), 0, |_, _, _| false)
        .unwrap();
    let err = heaps.malloc(1 << 20, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    heaps.check().unwrap();
    drop(eal);
    assert_eq!(free_2m(), free_before);
}

#[test]
fn on_hugepages_a_small_free_gives_back_the_page_its_merge_frees() {
    // A 4 MiB block maps three pages X|Y|Z, its data from the X/Y boundary up; two small blocks
    // P and B sit just below it on X. Freeing the big block cannot give Y back: only its header's
    // 64 bytes of the free element would be left before Y, too little for an element. Freeing P
    // next (B still busy, so X stays in use) must merge P at once, as a heap without quick lists
    // would: then 256 bytes are left before Y and Y goes back.
    let Some((_serial, eal, free_before)) = hugepage_eal(
        "on_hugepages_a_small_free_gives_back_the_page_its_merge_frees",
        "heapsliver",
        &[],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let big = heaps.malloc((4 << 20) - TRAILER, 0).unwrap();
    assert_eq!(
        free_2m(),
        free_before - 3,
        "three pages for 4 MiB and a header"
    );
    assert!(
        (big.as_ptr() as usize).is_multiple_of(PAGE_2M as usize),
        "data from a page boundary"
    );
    let p = heaps.malloc(100, 0).unwrap();
    let b = heaps.malloc(100, 0).unwrap();
    assert!((p.as_ptr() as usize) < big.as_ptr() as usize && (b.as_ptr() < p.as_ptr()));
    free(&eal, big);
    assert_eq!(free_2m(), free_before - 2, "Z went back, Y stays for now");
    heaps.check().unwrap();
    free(&eal, p);
    assert_eq!(free_2m(), free_before - 1, "Y went back with P's free");
    heaps.check().unwrap();
    free(&eal, b);
    assert_eq!(free_2m(), free_before, "and X with the last block");
    assert_eq!(stats(&eal).total_bytes, 0);
}

// Not with feature `debug`: its trailer makes the 4 MiB element need exactly two pages, so
// growing leaves no free page before the block. The rule does not depend on the feature.
#[cfg(not(feature = "debug"))]
#[test]
fn on_hugepages_a_small_free_on_pinned_memory_gives_back_the_grown_page_beside_it() {
    // One pinned page W (`-m 2`); block P at its top. Growing for a 4 MiB block maps X|Y|Z
    // right after W and cuts the block from the end: Y|Z. X is left a free element of its own,
    // not given back (nothing freed it). Freeing P, on pinned memory, must merge it with W's
    // free part and X at once, as a heap without quick lists would: X then goes back.
    let Some((_serial, eal, free_before)) = hugepage_eal(
        "on_hugepages_a_small_free_on_pinned_memory_gives_back_the_grown_page_beside_it",
        "heapedge",
        &["-m", "2"],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let p = heaps.malloc(64, 0).unwrap();
    let w_end = p.as_ptr() as usize + 64;
    assert!(w_end.is_multiple_of(PAGE_2M as usize), "P at the top of W");
    let big = heaps.malloc((4 << 20) - 64, 0).unwrap();
    assert_eq!(free_2m(), free_before - 4, "W, then X|Y|Z");
    assert_eq!(
        big.as_ptr() as usize - 64,
        w_end + PAGE_2M as usize,
        "X|Y|Z right after W, the block on Y|Z"
    );
    heaps.check().unwrap();
    free(&eal, p);
    assert_eq!(free_2m(), free_before - 3, "X went back with P's free");
    heaps.check().unwrap();
    free(&eal, big);
    assert_eq!(free_2m(), free_before - 1, "only the pinned page is left");
    assert_eq!(stats(&eal).total_bytes, 2 << 20);
}

#[test]
fn on_hugepages_preallocated_memory_stays_pinned_in_the_heap() {
    let Some((_serial, eal, free_before)) = hugepage_eal(
        "on_hugepages_preallocated_memory_stays_pinned_in_the_heap",
        "heappin",
        &["-m", "4"],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    assert_eq!(stats(&eal).total_bytes, 4 << 20);
    assert_eq!(free_2m(), free_before - 2);
    // Fits in the preallocated pages: no growth.
    let p = heaps.malloc(3 << 20, 0).unwrap();
    assert_eq!(free_2m(), free_before - 2);
    // Does not fit: the heap grows by more pages, and gives only those back.
    let q = heaps.malloc(3 << 20, 0).unwrap();
    assert_eq!(free_2m(), free_before - 4);
    free(&eal, q);
    assert_eq!(
        free_2m(),
        free_before - 2,
        "grown pages released, pinned ones kept"
    );
    free(&eal, p);
    assert_eq!(stats(&eal).total_bytes, 4 << 20);
    assert_eq!(stats(&eal).free_count, 1);
    heaps.check().unwrap();
}

/// Socket 0's heap elements as they are now (parked blocks unmerged: statistics would merge
/// them), and the index of the one holding `block`.
fn elements_around(eal: &Eal, block: NonNull<u8>) -> (Vec<HeapElement>, usize) {
    let at = block.as_ptr().addr();
    let elements = eal.heaps().elements(Socket::Node(0)).unwrap();
    let index = elements
        .iter()
        .position(|e| e.va < at && at < e.end())
        .expect("an element holds the block");
    (elements, index)
}

#[test]
fn a_small_free_on_pinned_memory_parks_between_free_neighbours_while_grown_pages_exist() {
    // Pinned page W (`-m 2`) holds guard|A|B|C|guard at its top; a 3 MiB block then
    // grows the heap by pages that may go back. A and C, too big to park, merge at once into
    // free elements on W. B's pages are pinned, so parking it can keep no page mapped: it parks,
    // whatever its neighbours (on a grown page it would merge, with no busy neighbour beside).
    // The walk shows parked blocks as they are (statistics would merge them).
    let Some((_serial, eal, _)) = hugepage_eal(
        "a_small_free_on_pinned_memory_parks_between_free_neighbours_while_grown_pages_exist",
        "heappinpark",
        &["-m", "2"],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let mut blocks = Vec::new();
    for len in [100, 8192, 100, 8192, 100] {
        blocks.push(heaps.malloc(len, 0).unwrap());
    }
    let grown = heaps.malloc(3 << 20, 0).unwrap();
    assert!(stats(&eal).total_bytes > 2 << 20, "the heap grew past W");
    let (a, b, c) = (blocks[1], blocks[2], blocks[3]);
    free(&eal, a);
    free(&eal, c);
    free(&eal, b);
    let (elements, at) = elements_around(&eal, b);
    let states: Vec<_> = elements[at - 1..=at + 1].iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            HeapElementState::Free,
            HeapElementState::Parked,
            HeapElementState::Free
        ],
        "B parked between A's and C's free memory"
    );
    heaps.check().unwrap();
    free(&eal, grown);
    free(&eal, blocks[0]);
    free(&eal, blocks[4]);
    heaps.check().unwrap();
}

#[test]
fn a_small_free_on_a_grown_page_parks_only_beside_a_busy_neighbour_on_that_page() {
    // Dynamic memory without -m: every page may go back. Three small blocks at the top of the
    // first page, top to bottom T|B|L. T, freed first, has busy B below it on its page: it parks.
    // B then has busy L below: it parks too. L, freed last, has no busy neighbour (T and B
    // parked, the heap's free memory below): it merges at once, and with it the parked ones,
    // and the page goes back.
    let Some((_serial, eal, _)) = hugepage_eal(
        "a_small_free_on_a_grown_page_parks_only_beside_a_busy_neighbour_on_that_page",
        "heapgrownpark",
        &[],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let top = heaps.malloc(100, 0).unwrap();
    let mid = heaps.malloc(100, 0).unwrap();
    let low = heaps.malloc(100, 0).unwrap();
    assert!(
        low < mid && mid < top,
        "blocks are cut from the top of the free memory"
    );
    let state_of = |block| {
        let (elements, at) = elements_around(&eal, block);
        elements[at].state
    };
    free(&eal, top);
    assert_eq!(state_of(top), HeapElementState::Parked);
    free(&eal, mid);
    assert_eq!(state_of(mid), HeapElementState::Parked);
    free(&eal, low);
    // Merged with every block of the page, the free memory is the whole page: it went back.
    assert_eq!(eal.heaps().elements(Socket::Node(0)).unwrap(), []);
    assert_eq!(stats(&eal).total_bytes, 0);
    heaps.check().unwrap();
}

#[test]
fn a_small_free_on_pinned_memory_parks_beside_a_free_pinned_page() {
    // `-m 4`: two pinned pages. Two small blocks T|B at the top; the free memory below B holds
    // the whole first page, but pinned, which never goes back. A 5 MiB block then grows the heap
    // by pages that may. Only a free neighbour holding a page that may go back keeps B from
    // parking: this one does not, so B parks.
    let Some((_serial, eal, _)) = hugepage_eal(
        "a_small_free_on_pinned_memory_parks_beside_a_free_pinned_page",
        "heappinnedpage",
        &["-m", "4"],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let top = heaps.malloc(100, 0).unwrap();
    let block = heaps.malloc(100, 0).unwrap();
    let grown = heaps.malloc(5 << 20, 0).unwrap();
    assert!(stats(&eal).total_bytes > 4 << 20, "the heap grew");
    free(&eal, block);
    let (elements, at) = elements_around(&eal, block);
    let below = elements[at - 1];
    assert_eq!(below.state, HeapElementState::Free);
    assert!(
        below.len > PAGE_2M as usize,
        "the free memory below holds a whole page"
    );
    assert_eq!(elements[at].state, HeapElementState::Parked);
    heaps.check().unwrap();
    free(&eal, grown);
    free(&eal, top);
}

#[test]
fn a_small_free_near_the_start_of_a_grown_page_parks_beside_busy_neighbours() {
    // Dynamic memory without -m: the first block A fills a new page but for 4288 bytes at its
    // start (blocks are cut from the top); B (4 KiB) then takes the top of those, and G the 128
    // bytes left, at the very start of the page. B, freed between busy G and A, parks: every
    // byte of its page is someone's. (A 4 KiB block so near the page start is where an element's
    // end, not its start, must decide which pages it covers.)
    let Some((_serial, eal, _)) = hugepage_eal(
        "a_small_free_near_the_start_of_a_grown_page_parks_beside_busy_neighbours",
        "heapnearstart",
        &[],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let page = PAGE_2M as usize;
    let (b_elem, g_elem) = (64 + 4096 + TRAILER, 64 + 64 + TRAILER);
    let a = heaps
        .malloc(page - b_elem - g_elem - 64 - TRAILER, 0)
        .unwrap();
    let b = heaps.malloc(4096, 0).unwrap();
    let g = heaps.malloc(64, 0).unwrap();
    let g_start = g.as_ptr() as usize - 64;
    assert!(g_start.is_multiple_of(page), "G at the start of the page");
    assert_eq!(
        b.as_ptr() as usize - 64,
        g_start + g_elem,
        "B right above G"
    );
    assert_eq!(
        a.as_ptr() as usize - 64,
        g_start + g_elem + b_elem,
        "A right above B"
    );
    free(&eal, b);
    let (elements, at) = elements_around(&eal, b);
    assert_eq!(elements[at].va, g_start + g_elem);
    assert_eq!(elements[at].state, HeapElementState::Parked);
    heaps.check().unwrap();
    free(&eal, g);
    free(&eal, a);
    assert_eq!(stats(&eal).total_bytes, 0, "the page went back");
}

#[test]
fn a_small_free_parks_beside_free_memory_that_holds_no_whole_page() {
    // Dynamic memory without -m. At the top of the first page: an 8 KiB block X, then B and L.
    // X, too big to park, merges at once: a free element on a page that may go back, but not a
    // whole page of it. B, freed with busy L below it on its page, parks: only a free neighbour
    // holding a whole page that may go back would make it merge.
    let Some((_serial, eal, _)) = hugepage_eal(
        "a_small_free_parks_beside_free_memory_that_holds_no_whole_page",
        "heapnowhole",
        &[],
    ) else {
        return;
    };
    let heaps = eal.heaps();
    let x = heaps.malloc(8192, 0).unwrap();
    let b = heaps.malloc(100, 0).unwrap();
    let l = heaps.malloc(100, 0).unwrap();
    assert!(
        l < b && b < x,
        "blocks are cut from the top of the free memory"
    );
    free(&eal, x);
    free(&eal, b);
    let (elements, at) = elements_around(&eal, b);
    let above = elements[at + 1];
    assert_eq!(above.state, HeapElementState::Free);
    assert!(
        above.len < PAGE_2M as usize,
        "X's free memory holds no whole page"
    );
    assert_eq!(elements[at].state, HeapElementState::Parked);
    heaps.check().unwrap();
    free(&eal, l);
    assert_eq!(stats(&eal).total_bytes, 0, "the page went back");
}
