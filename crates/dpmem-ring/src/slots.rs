//! Copying elements into and out of the slot array, across the wrap.
//!
//! A run of `n` elements starting at position `p` occupies slots `p & mask ..` up to the
//! end of the array and, if it wraps, continues at slot 0: at most two contiguous copies.
//! Everything is copied as bytes, `esize` per element; the typed API passes
//! `size_of::<T>()`, a constant, so each copy compiles for its element size.

use core::ptr;

use crate::sync::compiler_barrier;

/// Copy `len` bytes, a multiple of 4 (as every element size is), from `src` to `dst`.
///
/// Not `ptr::copy_nonoverlapping(src, dst, len)`: with a length the compiler cannot see,
/// that is a call into the C library's `memcpy`, whose size dispatch costs more than moving
/// a burst of 8 pointers (and a plain loop of blocks is recognised and turned into the
/// same call, hence the barrier in it). Instead 64-byte blocks in a loop, then a 32, 16, 8 and 4-byte
/// block as the low bits of the length say, each a fixed size the compiler emits as a
/// few 16-byte (or smaller) moves. When the length is `n * size_of::<T>()` the compiler
/// knows its low bits and drops the steps that cannot happen: 16-byte elements move as
/// whole 16-byte units, pointers as pairs and singles.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `len` bytes, and the ranges do not
/// overlap. No alignment is needed.
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    debug_assert!(
        len.is_multiple_of(4),
        "copy of {len} bytes, not whole elements"
    );
    let mut done = 0;
    while len - done >= 64 {
        // SAFETY: 64 bytes from `done` are inside both ranges (len - done >= 64).
        unsafe { copy_block::<64>(src, dst, done) };
        done += 64;
        // Without it, the compiler turns this loop back into a `memcpy` call wherever it
        // can tell the two ranges apart (a caller's local array and the slots).
        compiler_barrier();
    }
    let rest = len - done;
    // Each step copies a block whose size is one bit of `rest` (below 64), so the blocks
    // add up to `rest` and stay inside the ranges. `rest` is a multiple of 4 (the
    // caller's contract), so no smaller step is needed.
    if rest & 32 != 0 {
        // SAFETY: see above: 32 <= what is left.
        unsafe { copy_block::<32>(src, dst, done) };
        done += 32;
    }
    if rest & 16 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<16>(src, dst, done) };
        done += 16;
    }
    if rest & 8 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<8>(src, dst, done) };
        done += 8;
    }
    if rest & 4 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<4>(src, dst, done) };
    }
}

/// Copy bytes `at..at + N` from `src` to `dst`: a fixed size, which the compiler emits
/// inline.
///
/// # Safety
/// Both ranges hold `at + N` bytes (the caller's [`copy_bytes`] contract).
#[inline(always)]
unsafe fn copy_block<const N: usize>(src: *const u8, dst: *mut u8, at: usize) {
    // SAFETY: at + N bytes are inside the source range.
    let from = unsafe { src.add(at) }.cast::<[u8; N]>();
    // SAFETY: at + N bytes are inside the destination range.
    let to = unsafe { dst.add(at) }.cast::<[u8; N]>();
    // SAFETY: both valid for N bytes ([u8; N] needs no alignment) and disjoint. This is
    // an untyped copy: padding bytes of the elements are carried over as they are.
    unsafe { ptr::copy_nonoverlapping(from, to, 1) };
}

/// Where a run of `n` elements starting at `position` lies in a slot array of `mask + 1`
/// slots: the slot index of its start, and how many elements fit before the end.
#[inline(always)]
pub(crate) fn split(position: u32, n: u32, mask: u32) -> (usize, u32) {
    let index = position & mask;
    let room = mask - index + 1;
    (index as usize, n.min(room))
}

/// Tell loom that this thread writes (`for_write`) or reads the `n` slots from `position`
/// of the ring whose slot array is at `slots` (see `RingMeta::slot_cells`): a read that is
/// not ordered after the slot's last write, or a write not ordered after its last read, is
/// a causality violation loom reports. Nothing outside loom.
///
/// # Safety
/// `slots` is the slot array of a ring built by this crate (its header sits
/// [`SLOTS_OFFSET`](crate::header::SLOTS_OFFSET) bytes before it), of `mask + 1` slots.
#[inline(always)]
pub(crate) unsafe fn track(slots: *const u8, mask: u32, position: u32, n: u32, for_write: bool) {
    #[cfg(loom)]
    {
        let header = slots
            .wrapping_sub(crate::header::SLOTS_OFFSET)
            .cast::<crate::header::RingHeader>();
        // SAFETY: the caller's contract: a built ring's header, which lives while its slots
        // are used; `slot_cells` is never written after initialisation.
        let cells = unsafe { &(*header).meta.0.slot_cells };
        for i in 0..n {
            let cell = &cells[(position.wrapping_add(i) & mask) as usize];
            if for_write {
                cell.with_mut(|_| ());
            } else {
                cell.with(|_| ());
            }
        }
    }
    #[cfg(not(loom))]
    let _ = (slots, mask, position, n, for_write);
}

/// Copy `n` elements of `esize` bytes from `src` into the slots starting at `position`.
///
/// # Safety
/// `slots` points at the slot array of a ring built by this crate (its header sits
/// [`SLOTS_OFFSET`](crate::header::SLOTS_OFFSET) bytes before, which [`track`] relies on
/// under loom), of `mask + 1` elements of `esize` bytes; `src` is valid for `n * esize`
/// bytes; `n <= mask + 1`; the calling thread has claimed the slots `position..position + n`
/// (no other thread touches them until they are published).
#[inline(always)]
pub(crate) unsafe fn write(
    slots: *mut u8,
    mask: u32,
    esize: usize,
    position: u32,
    src: *const u8,
    n: u32,
) {
    // SAFETY: the caller's contract: the slot array of a ring of mask + 1 slots.
    unsafe { track(slots, mask, position, n, true) };
    let index = (position & mask) as usize;
    let (n, size) = (n as usize, mask as usize + 1);
    // SAFETY: index <= mask: a slot of the array.
    let at = unsafe { slots.add(index * esize) };
    if index + n <= size {
        // The common case, and the only one for a single element (the compiler sees that
        // index + 1 <= mask + 1 always holds).
        // SAFETY: index + n <= size, inside the array; src holds n elements.
        unsafe { copy_bytes(src, at, n * esize) };
    } else {
        let first = size - index;
        // SAFETY: the run up to the end of the array; src holds n > first elements.
        unsafe { copy_bytes(src, at, first * esize) };
        // SAFETY: first < n, inside the source run.
        let rest = unsafe { src.add(first * esize) };
        // SAFETY: the rest wraps to slot 0; n - first <= size - first fits before index.
        unsafe { copy_bytes(rest, slots, (n - first) * esize) };
    }
}

/// Copy `n` elements of `esize` bytes out of the slots starting at `position` into `dst`.
///
/// # Safety
/// As [`write()`], with `dst` valid for writing `n * esize` bytes and the slots claimed for
/// reading.
#[inline(always)]
pub(crate) unsafe fn read(
    slots: *const u8,
    mask: u32,
    esize: usize,
    position: u32,
    dst: *mut u8,
    n: u32,
) {
    // SAFETY: the caller's contract: the slot array of a ring of mask + 1 slots.
    unsafe { track(slots, mask, position, n, false) };
    let index = (position & mask) as usize;
    let (n, size) = (n as usize, mask as usize + 1);
    // SAFETY: index <= mask: a slot of the array.
    let at = unsafe { slots.add(index * esize) };
    if index + n <= size {
        // SAFETY: index + n <= size, inside the array; dst has room for n elements.
        unsafe { copy_bytes(at, dst, n * esize) };
    } else {
        let first = size - index;
        // SAFETY: the run up to the end of the array; dst has room for n > first.
        unsafe { copy_bytes(at, dst, first * esize) };
        // SAFETY: first < n, inside the destination run.
        let rest = unsafe { dst.add(first * esize) };
        // SAFETY: the rest wraps to slot 0 and fits (see `write`).
        unsafe { copy_bytes(slots, rest, (n - first) * esize) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn copy_bytes_copies_exactly_the_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in (0..=288).step_by(4) {
            // Unaligned on purpose on both sides, with guard bytes after the end.
            let mut dst = vec![0xeeu8; 300];
            let (from, to) = (src[1..].as_ptr(), dst[3..].as_mut_ptr());
            // SAFETY: both hold len bytes and more from there; distinct allocations.
            unsafe { copy_bytes(from, to, len) };
            assert_eq!(&dst[3..3 + len], &src[1..1 + len], "len {len}");
            assert!(dst[..3].iter().all(|b| *b == 0xee), "len {len}");
            assert!(dst[3 + len..].iter().all(|b| *b == 0xee), "len {len}");
        }
    }

    #[test]
    fn runs_split_at_the_end_of_the_array() {
        // 8 slots of 12 bytes; 5 elements from position 13 (slot 5): 3 at the end, 2 at 0.
        let mut slots = [0u8; 96];
        let src: Vec<u8> = (1..=60).collect();
        // SAFETY: 8 slots of 12 bytes; src holds 5 elements; nothing else uses either.
        unsafe { write(slots.as_mut_ptr(), 7, 12, 13, src.as_ptr(), 5) };
        assert_eq!(&slots[60..96], &src[..36]);
        assert_eq!(&slots[..24], &src[36..]);
        assert!(slots[24..60].iter().all(|b| *b == 0));
        let mut back = [0u8; 60];
        // SAFETY: as above, reading the same run back.
        unsafe { read(slots.as_ptr(), 7, 12, 13, back.as_mut_ptr(), 5) };
        assert_eq!(&back[..], &src[..]);
        assert_eq!(split(13, 5, 7), (5, 3));
        assert_eq!(split(13, 2, 7), (5, 2));
    }
}
