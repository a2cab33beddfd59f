//! Copying elements into and out of the slot array, across the wrap.
//!
//! A run of `n` elements starting at position `p` occupies slots `p & mask ..` up to the
//! end of the array and, if it wraps, continues at slot 0: at most two contiguous copies.
//! Elements are copied in units `S` (the element type itself for the typed API, bytes for
//! the raw byte API), `scale` units per element.

use core::ptr;

/// Copy `count` units from `src` to `dst`.
///
/// Byte units go to `memcpy`, which handles any alignment. Wider units are copied by an
/// unrolled loop: runs here are short (a burst of 8 or 32 pointers), where a call into
/// `memcpy` costs more than the copy itself.
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
    let mut i = 0;
    while i + 4 <= count {
        // SAFETY: i + 4 <= count: the four units are inside the source range.
        let from = unsafe { src.add(i) }.cast::<[S; 4]>();
        // SAFETY: as above, for the destination range.
        let to = unsafe { dst.add(i) }.cast::<[S; 4]>();
        // SAFETY: both are valid and aligned for four units (S's alignment), disjoint.
        unsafe { ptr::copy_nonoverlapping(from, to, 1) };
        i += 4;
    }
    while i < count {
        // SAFETY: i < count: inside the source range.
        let from = unsafe { src.add(i) };
        // SAFETY: i < count: inside the destination range.
        let to = unsafe { dst.add(i) };
        // SAFETY: both valid and aligned for one unit, disjoint.
        unsafe { ptr::copy_nonoverlapping(from, to, 1) };
        i += 1;
    }
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
