//! Copying elements into and out of the slot array, across the wrap.
//!
//! A run of `n` elements starting at position `p` occupies slots `p & mask ..` up to the
//! end of the array and, if it wraps, continues at slot 0: at most two contiguous copies.
//! Elements are copied in units `S` (the element type itself for the typed API, bytes for
//! the raw byte API), `scale` units per element.

use core::ptr;

/// Copy `count` units from `src` to `dst`.
///
/// Byte units (the raw API, whose buffers have any alignment) go to `memcpy`. Wider units
/// are copied as a sum of fixed-size blocks — 32, then 16, 8, 4, 2, 1 units as the count's
/// bits say — each of which the compiler emits as a few vector moves. A plain loop would
/// be turned back into a call to `memcpy`, which for a burst of 8 pointers costs more than
/// the copy itself.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `count` units of `S`, both aligned
/// for `S`, and the two ranges do not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_run<S: Copy>(src: *const S, dst: *mut S, count: usize) {
    if core::mem::size_of::<S>() == 1 {
        // SAFETY: the caller's contract, for `count` bytes.
        unsafe { ptr::copy_nonoverlapping(src, dst, count) };
        return;
    }
    let mut done = 0;
    while count - done >= 32 {
        // SAFETY: 32 units from `done` are inside both ranges (count - done >= 32).
        unsafe { copy_block::<S, 32>(src, dst, done) };
        done += 32;
    }
    let rest = count - done;
    // Each step copies a block whose size is one bit of `rest`, so the blocks add up to
    // `rest` and stay inside the ranges.
    if rest & 16 != 0 {
        // SAFETY: see above: 16 <= what is left.
        unsafe { copy_block::<S, 16>(src, dst, done) };
        done += 16;
    }
    if rest & 8 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<S, 8>(src, dst, done) };
        done += 8;
    }
    if rest & 4 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<S, 4>(src, dst, done) };
        done += 4;
    }
    if rest & 2 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<S, 2>(src, dst, done) };
        done += 2;
    }
    if rest & 1 != 0 {
        // SAFETY: as above.
        unsafe { copy_block::<S, 1>(src, dst, done) };
    }
}

/// Copy units `at..at + N` from `src` to `dst`, a fixed size the compiler unrolls.
///
/// # Safety
/// Both ranges hold `at + N` units (the caller's [`copy_run`] contract).
#[inline(always)]
unsafe fn copy_block<S: Copy, const N: usize>(src: *const S, dst: *mut S, at: usize) {
    // SAFETY: at + N units are inside the source range.
    let from = unsafe { src.add(at) }.cast::<[S; N]>();
    // SAFETY: at + N units are inside the destination range.
    let to = unsafe { dst.add(at) }.cast::<[S; N]>();
    // SAFETY: both valid and aligned for N units of S ([S; N] has S's alignment), disjoint.
    unsafe { ptr::copy_nonoverlapping(from, to, 1) };
}

/// Where a run of `n` elements starting at `position` lies in the slot array: the slot
/// index of its start, and how many elements fit before the end of the array.
#[inline(always)]
pub(crate) fn split(position: u32, n: u32, size: u32, mask: u32) -> (usize, u32) {
    let index = position & mask;
    let first = if n <= size - index { n } else { size - index };
    (index as usize, first)
}

/// Copy `n` elements from `src` into the slots starting at `position`.
///
/// # Safety
/// `slots` points at the ring's slot array of `size` elements of `scale` units; `src` is
/// valid for `n * scale` units; `n <= size`; the calling thread has claimed the slots
/// `position..position + n` (no other thread touches them until they are published).
#[inline(always)]
pub(crate) unsafe fn write<S: Copy>(
    slots: *mut S,
    size: u32,
    mask: u32,
    scale: usize,
    position: u32,
    src: *const S,
    n: u32,
) {
    let (index, first) = split(position, n, size, mask);
    // SAFETY: index < size: a slot of the array.
    let at = unsafe { slots.add(index * scale) };
    // SAFETY: index + first <= size, inside the array; src holds n >= first elements.
    unsafe { copy_run(src, at, first as usize * scale) };
    if first < n {
        // SAFETY: first < n, inside the source run.
        let rest = unsafe { src.add(first as usize * scale) };
        // SAFETY: the rest wraps to slot 0; n - first <= size - first fits before index.
        unsafe { copy_run(rest, slots, (n - first) as usize * scale) };
    }
}

/// Copy `n` elements out of the slots starting at `position` into `dst`.
///
/// # Safety
/// As [`write`], with `dst` valid for writing `n * scale` units.
#[inline(always)]
pub(crate) unsafe fn read<S: Copy>(
    slots: *const S,
    size: u32,
    mask: u32,
    scale: usize,
    position: u32,
    dst: *mut S,
    n: u32,
) {
    let (index, first) = split(position, n, size, mask);
    // SAFETY: index < size: a slot of the array.
    let at = unsafe { slots.add(index * scale) };
    // SAFETY: index + first <= size, inside the array; dst has room for n >= first.
    unsafe { copy_run(at, dst, first as usize * scale) };
    if first < n {
        // SAFETY: first < n, inside the destination run.
        let rest = unsafe { dst.add(first as usize * scale) };
        // SAFETY: the rest wraps to slot 0 and fits (see `write`).
        unsafe { copy_run(slots, rest, (n - first) as usize * scale) };
    }
}
