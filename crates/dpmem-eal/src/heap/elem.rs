//! A heap element: the header that sits one cache line before the memory it describes, inside
//! the hugepage memory itself (DPDK's `struct malloc_elem`).
//!
//! Elements tile the memory a heap owns. Every element is linked to its neighbours in address
//! order (`prev`/`next`); two elements are *adjacent* only when one ends exactly where the next
//! begins inside the same memseg list, so memory that is not virtually contiguous is never
//! merged. Free elements are also linked into one of the heap's segregated free lists.
//!
//! With feature `memcheck` the headers (and trailers) are no-access to valgrind's memcheck, so
//! a program that writes before its block or past its end is reported; the heap reaches its
//! own bookkeeping there with error reports paused for the duration of the access
//! ([`crate::memcheck::ReportsPaused`]), which leaves every byte's state as it was. Marking each
//! header accessible around each access would be as cheap, but wrong when a foreign pointer
//! makes the heap read "a header" that is really part of a live block, whose state must not
//! change.

use crate::crash_point::crash_point;
use crate::error::EalError;

/// Bytes of an element header; user data starts this far after it (one cache line).
pub const HEADER_LEN: usize = 64;
/// Every size and alignment the heap hands out is a multiple of this.
pub const CACHE_LINE: usize = 64;
/// Smallest data area worth a free element of its own.
pub const MIN_DATA_LEN: usize = CACHE_LINE;
/// A leftover is split off as a free element only when larger than this (DPDK's
/// `MALLOC_ELEM_OVERHEAD + MIN_DATA_SIZE`); smaller ones stay with the busy element.
pub const MIN_SPLIT_LEN: usize = HEADER_LEN + MIN_DATA_LEN;

/// Bytes at the end of every busy element holding a cookie that a write past the block's end
/// would change (feature `debug`; DPDK's `RTE_MALLOC_DEBUG` trailer). One cache line, so every
/// size and alignment stays a multiple of one.
#[cfg(feature = "debug")]
pub const TRAILER_LEN: usize = CACHE_LINE;
#[cfg(not(feature = "debug"))]
pub const TRAILER_LEN: usize = 0;

/// What the trailer holds, mixed with the element's address like the header's magic.
const TRAILER_COOKIE: u64 = 0x6470_6d65_6d5f_7472;

/// Mixed with the header's own address, so a copied header or user bytes that happen to look
/// like a header do not pass for one.
const ELEM_MAGIC: u64 = 0x6470_6d65_6d5f_656c;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ElemState {
    Free = 1,
    Busy = 2,
    /// A dummy header between an aligned block's real header and its data; `pad` leads back.
    Pad = 3,
    /// A freed small block waiting, unmerged, on its heap's quick list for the next allocation
    /// of its size (see [`super::quick_lists`]). Free memory to everything but the merge.
    Parked = 4,
}

pub mod elem_flags {
    /// The element's bytes may be non-zero (zeroing allocations must clear them).
    pub const DIRTY: u8 = 1 << 0;
    /// Some pages under the element were mapped on demand and may go back to the system.
    pub const RELEASABLE: u8 = 1 << 1;
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ElemHeader {
    /// `ELEM_MAGIC ^ address of this header` while the header is live; erased when merged away.
    pub magic: u64,
    /// Address of the heap (its header in the shared configuration) owning this element.
    pub heap: u64,
    /// Previous and next element of the heap in address order (0: none).
    pub prev: u64,
    pub next: u64,
    /// Links of the free list the element is on (free elements only); a parked element's
    /// quick list runs through them too.
    pub free_prev: u64,
    pub free_next: u64,
    /// Bytes from this header to the end of the element (header, padding, data, slack).
    pub size: u64,
    /// Busy element: bytes between this header and the pad header before the data.
    /// Pad header: the same distance, back to the real header.
    pub pad: u32,
    /// The memseg list holding the element.
    pub list_index: u16,
    pub state: u8,
    /// [`elem_flags`] bits.
    pub flags: u8,
}

const _: () = assert!(std::mem::size_of::<ElemHeader>() == HEADER_LEN);

/// Byte offsets of the 8-byte words of a header that the chain journal notes
/// ([`super::chain_journal`]).
pub mod field {
    use crate::heap::elem::ElemHeader;
    use std::mem::offset_of;

    pub const PREV: usize = offset_of!(ElemHeader, prev);
    pub const NEXT: usize = offset_of!(ElemHeader, next);
    pub const SIZE: usize = offset_of!(ElemHeader, size);
    /// The last word: padding, list index, state and flags.
    pub const TAIL: usize = offset_of!(ElemHeader, pad);
}

const _: () =
    assert!(field::TAIL == 56 && field::PREV == 16 && field::NEXT == 24 && field::SIZE == 48);

impl ElemHeader {
    #[inline]
    pub fn state(&self) -> Option<ElemState> {
        match self.state {
            1 => Some(ElemState::Free),
            2 => Some(ElemState::Busy),
            3 => Some(ElemState::Pad),
            4 => Some(ElemState::Parked),
            _ => None,
        }
    }

    #[inline]
    pub fn is_dirty(&self) -> bool {
        self.flags & elem_flags::DIRTY != 0
    }

    #[inline]
    pub fn is_free(&self) -> bool {
        self.state == ElemState::Free as u8
    }

    /// Bytes the owner of a busy element may use: the element minus header, padding and
    /// trailer (0 for a header too small for them, which no block has).
    #[inline]
    pub fn usable_len(&self) -> usize {
        (self.size as usize).saturating_sub(self.pad as usize + HEADER_LEN + TRAILER_LEN)
    }
}

/// Runs the heap's own access `f` to memory that memcheck may see as no-access (feature
/// `memcheck`; a plain call without it).
#[inline(always)]
pub(super) fn bookkeeping<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "memcheck")]
    let _paused = crate::memcheck::ReportsPaused::new();
    f()
}

/// The address of an element header in heap memory. Reading or writing through it is valid
/// while the owning heap's lock is held and the address is a header of that heap (callers
/// establish this: from the heap's own links, or, for a pointer a caller passed in, by finding
/// its page mapped in one of the heap's lists before [`Elem::live_block`] reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Elem(pub(crate) usize);

impl Elem {
    #[inline]
    pub fn from_addr(addr: u64) -> Option<Elem> {
        (addr != 0).then_some(Elem(addr as usize))
    }

    #[inline]
    pub fn addr(self) -> u64 {
        self.0 as u64
    }

    #[inline]
    pub fn data(self) -> usize {
        self.0 + HEADER_LEN
    }

    #[inline]
    pub fn expected_magic(self) -> u64 {
        ELEM_MAGIC ^ self.addr()
    }

    #[inline]
    pub fn load(self) -> ElemHeader {
        // SAFETY: see the type's invariant: a header of a heap whose lock the caller holds, in
        // mapped memory, 64-byte aligned.
        let header = bookkeeping(|| unsafe { (self.0 as *const ElemHeader).read() });
        // What was read may be a live block's unwritten bytes (a foreign pointer being checked):
        // the copy is the heap's own, and deciding on it must not be reported as a use of
        // uninitialised memory.
        #[cfg(feature = "memcheck")]
        crate::memcheck::make_defined((&raw const header).cast(), HEADER_LEN);
        header
    }

    #[inline]
    pub fn store(self, header: ElemHeader) {
        crash_point();
        // SAFETY: as in `load`; the heap lock makes this the only writer.
        bookkeeping(|| unsafe { (self.0 as *mut ElemHeader).write(header) })
    }

    /// Applies `f` to the header in place.
    #[inline]
    pub fn update(self, f: impl FnOnce(&mut ElemHeader)) {
        let mut h = self.load();
        f(&mut h);
        self.store(h);
    }

    /// Where field `T` at byte `offset` of this header lies (see [`std::mem::offset_of`]).
    #[inline]
    fn field<T>(self, offset: usize) -> *mut T {
        (self.0 + offset) as *mut T
    }

    /// A parked element's `free_next`, `size` and `flags`, read without the rest of its header.
    #[inline]
    pub fn quick_fields(self) -> (u64, u64, u8) {
        let free_next = self.field::<u64>(std::mem::offset_of!(ElemHeader, free_next));
        let size = self.field::<u64>(std::mem::offset_of!(ElemHeader, size));
        let flags = self.field::<u8>(std::mem::offset_of!(ElemHeader, flags));
        bookkeeping(|| {
            // SAFETY: as in `load`; each field lies inside the header, aligned.
            let free_next = unsafe { free_next.read() };
            // SAFETY: see above.
            let size = unsafe { size.read() };
            // SAFETY: see above.
            let flags = unsafe { flags.read() };
            (free_next, size, flags)
        })
    }

    /// Marks a parked element busy, its quick-list link cleared.
    #[inline]
    pub fn set_busy_from_parked(self) {
        let free_next = self.field::<u64>(std::mem::offset_of!(ElemHeader, free_next));
        let state = self.field::<u8>(std::mem::offset_of!(ElemHeader, state));
        crash_point();
        bookkeeping(|| {
            // SAFETY: as in `store`; the field lies inside the header, aligned.
            unsafe { free_next.write(0) };
        });
        crash_point();
        // SAFETY: as above.
        bookkeeping(|| unsafe { state.write(ElemState::Busy as u8) })
    }

    /// Sets the header's `free_prev` link alone (a quick or free list's back link), without
    /// copying the rest of the header in and out.
    #[inline]
    pub fn set_free_prev(self, addr: u64) {
        let field = self.field::<u64>(std::mem::offset_of!(ElemHeader, free_prev));
        crash_point();
        // SAFETY: as in `store`; the field lies inside the header, aligned.
        bookkeeping(|| unsafe { field.write(addr) })
    }

    /// Sets the header's `free_next` link alone.
    #[inline]
    pub fn set_free_next(self, addr: u64) {
        let field = self.field::<u64>(std::mem::offset_of!(ElemHeader, free_next));
        crash_point();
        // SAFETY: as in `store`; the field lies inside the header, aligned.
        bookkeeping(|| unsafe { field.write(addr) })
    }

    /// Where the trailer of this element (of `size` bytes) lies.
    #[inline]
    fn trailer(self, size: u64) -> *mut u64 {
        (self.0 + size as usize - TRAILER_LEN) as *mut u64
    }

    /// Writes the trailer cookie at the end of busy element `self` of `size` bytes (a no-op
    /// without feature `debug`).
    #[inline]
    pub fn seal(self, size: u64) {
        if TRAILER_LEN == 0 {
            return;
        }
        crash_point();
        // SAFETY: the last TRAILER_LEN bytes of a busy element belong to the heap (the owner's
        // usable bytes end before them); the caller holds the heap lock; 8-byte aligned.
        bookkeeping(|| unsafe { self.trailer(size).write(TRAILER_COOKIE ^ self.addr()) })
    }

    /// Whether the trailer cookie of busy element `self` of `size` bytes is intact (always,
    /// without feature `debug`).
    #[inline]
    pub fn seal_intact(self, size: u64) -> bool {
        if TRAILER_LEN == 0 {
            return true;
        }
        // SAFETY: as in `seal`: mapped heap memory at the end of the element, lock held.
        bookkeeping(|| unsafe { self.trailer(size).read() == TRAILER_COOKIE ^ self.addr() })
    }

    /// The live block whose data starts at `ptr`, this element being the header just before
    /// it, in the heap whose shared state is at `heap`: the block's real header and what it
    /// says. Foreign pointers, pointers into the middle of a block and freed blocks are refused
    /// by what the headers say; a pad header is followed back to its block only when
    /// `is_mapped` says the address it leads to is mapped. With feature `debug`, a block
    /// written past its end is refused too, never merged into a neighbour.
    ///
    /// The caller holds the heap's lock and found this header's page mapped in the heap's
    /// memory (the type's invariant).
    pub(crate) fn live_block(
        self,
        heap: u64,
        ptr: usize,
        is_mapped: impl Fn(usize) -> bool,
    ) -> Result<(Elem, ElemHeader), EalError> {
        let bad = |reason: &'static str| EalError::BadPointer { addr: ptr, reason };
        let h = self.load();
        if h.magic != self.expected_magic() || h.heap != heap {
            return Err(bad(
                "no live block starts here (never handed out, or freed and merged since)",
            ));
        }
        let real = match h.state() {
            Some(ElemState::Busy) if h.pad == 0 => self,
            Some(ElemState::Busy) => {
                return Err(bad("inside a padded block, not at its start"));
            }
            Some(ElemState::Free | ElemState::Parked) => {
                return Err(EalError::DoubleFree { addr: ptr })
            }
            Some(ElemState::Pad) => {
                let real = Elem(self.0.wrapping_sub(h.pad as usize));
                // Pads are whole cache lines (blocks and elements start on them), so a header
                // read there lies in one page, the one checked mapped.
                if h.pad == 0 || !(h.pad as usize).is_multiple_of(CACHE_LINE) || !is_mapped(real.0)
                {
                    return Err(bad("a pad header leads outside the heap"));
                }
                let rh = real.load();
                if rh.magic != real.expected_magic() || rh.heap != heap || rh.pad != h.pad {
                    return Err(bad("a pad header leads to no block"));
                }
                match rh.state() {
                    Some(ElemState::Busy) => real,
                    Some(ElemState::Free | ElemState::Parked) => {
                        return Err(EalError::DoubleFree { addr: ptr })
                    }
                    _ => return Err(bad("a pad header leads to no block")),
                }
            }
            None => return Err(bad("no live block starts here")),
        };
        let rh = real.load();
        // What the header says of its size is what the trailer check and the usable length
        // compute from: a size no block can have is refused before either.
        let min_size = (HEADER_LEN + rh.pad as usize + TRAILER_LEN) as u64;
        if rh.size < min_size || !rh.size.is_multiple_of(CACHE_LINE as u64) {
            return Err(bad(
                "no live block starts here (its header's size is impossible)",
            ));
        }
        if cfg!(feature = "debug") && !is_mapped(real.0 + rh.size as usize - TRAILER_LEN) {
            return Err(bad(
                "no live block starts here (its header's size leads outside the heap)",
            ));
        }
        if !real.seal_intact(rh.size) {
            return Err(EalError::BlockOverrun {
                addr: ptr,
                size: rh.usable_len(),
            });
        }
        Ok((real, rh))
    }

    /// Fills `[start, start+len)` with zeroes: erased headers and cleared data.
    #[inline]
    pub fn zero_range(start: usize, len: usize) {
        crash_point();
        // SAFETY: callers pass ranges of mapped heap memory that nobody else is using: inside
        // free elements or a block being freed, under the heap's lock, or a busy block just
        // handed out to the caller (`clear_block`, after the lock is released).
        bookkeeping(|| unsafe { std::ptr::write_bytes(start as *mut u8, 0, len) })
    }

    /// Makes the first `len` bytes of a block just handed out at `data` read as zero: clears them
    /// when the block may hold old data (`dirty`), else they are zero already and only memcheck
    /// (feature `memcheck`) is told that they are defined.
    #[inline]
    pub fn clear_block(data: usize, len: usize, dirty: bool) {
        if dirty && len >= STREAMING_CLEAR_MIN {
            // SAFETY: the block at `data` was just handed out to this call (busy, so the heap
            // gives it to nobody else even though its lock is released by now), in mapped
            // memory, and `len` is within its usable length.
            bookkeeping(|| unsafe { stream_zero(data, len) });
        } else if dirty {
            Elem::zero_range(data, len);
        } else {
            #[cfg(feature = "memcheck")]
            crate::memcheck::make_defined(data as *const u8, len);
        }
    }
}

/// Blocks at least this long are cleared with non-temporal stores: they outsize a core's
/// second-level cache, so ordinary stores would first read every line in only to overwrite it
/// and push the cache's contents out on the way.
pub(crate) const STREAMING_CLEAR_MIN: usize = 1 << 20;

/// Zeroes `[start, start+len)` with stores that bypass the caches (`movntdq`), then fences
/// so that the zeroes are seen before anything stored after (the caller's own writes, and
/// whatever publishes the block to other threads).
///
/// # Safety
/// The range is mapped, writable, and used by nobody else during the call.
#[cfg(target_arch = "x86_64")]
unsafe fn stream_zero(start: usize, len: usize) {
    use core::arch::x86_64::{__m128i, _mm_setzero_si128, _mm_sfence, _mm_stream_si128};
    // The head up to a 64-byte boundary and the tail past the last whole line, ordinarily.
    let first_line = start.next_multiple_of(64).min(start + len);
    let last_line = (start + len) & !63;
    // SAFETY: a prefix of the caller's range.
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, first_line - start) };
    if last_line > first_line {
        // SAFETY: SSE2 is part of the x86-64 baseline every build of this crate targets.
        let zero = unsafe { _mm_setzero_si128() };
        let mut at = first_line;
        while at < last_line {
            // Four 16-byte stores fill the 64-byte aligned line at `at`.
            for quarter in 0..4 {
                let dst = (at + quarter * 16) as *mut __m128i;
                // SAFETY: `dst` is 16-byte aligned inside a whole line of the caller's range;
                // SSE2 is baseline (above).
                unsafe { _mm_stream_si128(dst, zero) };
            }
            at += 64;
        }
        // SAFETY: SSE is part of the x86-64 baseline.
        unsafe { _mm_sfence() };
        // SAFETY: the suffix of the caller's range past the last whole line.
        unsafe { std::ptr::write_bytes(last_line as *mut u8, 0, start + len - last_line) };
    } else {
        // SAFETY: the rest of the caller's range (shorter than a line past the head).
        unsafe { std::ptr::write_bytes(first_line as *mut u8, 0, start + len - first_line) };
    }
}

/// Elsewhere: an ordinary clear.
///
/// # Safety
/// As the x86-64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn stream_zero(start: usize, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, len) }
}

#[cfg(test)]
mod stream_zero_tests {
    use super::*;

    #[test]
    fn streaming_clear_zeroes_exactly_its_range_at_any_alignment() {
        for (offset, len) in [
            (0, 1 << 20),
            (8, (1 << 20) + 24),
            (63, 4096 + 5),
            (1, 10),
            (40, 60),
        ] {
            let mut buf = vec![0xEEu8; (2 << 20) + 256];
            let base = buf.as_mut_ptr() as usize;
            let start = base.next_multiple_of(64) + offset;
            // SAFETY: [start, start+len) lies inside `buf`, which nothing else uses.
            unsafe { stream_zero(start, len) };
            let from = start - base;
            assert!(
                buf[from..from + len].iter().all(|&b| b == 0),
                "{offset} {len}"
            );
            assert!(
                buf[..from].iter().all(|&b| b == 0xEE),
                "before, {offset} {len}"
            );
            assert!(
                buf[from + len..].iter().all(|&b| b == 0xEE),
                "after, {offset} {len}"
            );
        }
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    const HEAP: u64 = 0x5eed_0000;
    const LINES: usize = 16;

    /// Element headers in ordinary memory, 256-byte aligned so that the first line's address
    /// has bits 6 and 7 clear: `live_block` only reads headers (and, with feature `debug`,
    /// trailers), so no heap is needed to check what it accepts and refuses.
    #[repr(C, align(256))]
    struct Lines([ElemHeader; LINES]);

    impl Lines {
        fn new() -> Box<Lines> {
            Box::new(Lines([ElemHeader::default(); LINES]))
        }

        fn elem(&self, line: usize) -> Elem {
            Elem(&raw const self.0[line] as usize)
        }

        /// Whether `addr` lies in these lines: the "mapped memory" the checks are given.
        fn holds(&self, addr: usize) -> bool {
            let base = self.elem(0).0;
            (base..base + LINES * HEADER_LEN).contains(&addr)
        }

        /// Writes a live header of `state` at `line`, of `size` bytes and padding `pad`, and
        /// seals it as the heap seals a busy element.
        fn put(&mut self, line: usize, state: ElemState, size: u64, pad: u32) -> Elem {
            let e = self.elem(line);
            e.store(ElemHeader {
                magic: e.expected_magic(),
                heap: HEAP,
                size,
                pad,
                state: state as u8,
                ..ElemHeader::default()
            });
            if state == ElemState::Busy {
                e.seal(size);
            }
            e
        }

        /// `live_block` for the block whose data follows the header at `line`, every address of
        /// these lines counted as mapped.
        fn check(&self, line: usize) -> Result<(Elem, ElemHeader), EalError> {
            let e = self.elem(line);
            e.live_block(HEAP, e.data(), |a| self.holds(a))
        }
    }

    fn refused_because(r: Result<(Elem, ElemHeader), EalError>) -> &'static str {
        match r {
            Err(EalError::BadPointer { reason, .. }) => reason,
            other => panic!("expected a bad pointer, got {other:?}"),
        }
    }

    #[test]
    fn a_header_decodes_its_state_flags_and_usable_length() {
        let mut h = ElemHeader::default();
        for (byte, state) in [
            (1, ElemState::Free),
            (2, ElemState::Busy),
            (3, ElemState::Pad),
            (4, ElemState::Parked),
        ] {
            h.state = byte;
            assert_eq!(h.state(), Some(state));
            assert_eq!(h.is_free(), state == ElemState::Free);
        }
        h.state = 5;
        assert_eq!(h.state(), None);
        assert!(!h.is_free());

        assert!(!h.is_dirty());
        h.flags = elem_flags::RELEASABLE;
        assert!(!h.is_dirty(), "the releasable flag is not the dirty one");
        h.flags = elem_flags::DIRTY | elem_flags::RELEASABLE;
        assert!(h.is_dirty());
        assert_eq!(elem_flags::DIRTY & elem_flags::RELEASABLE, 0);
        assert_ne!(elem_flags::RELEASABLE, 0);

        h.size = 512;
        h.pad = 128;
        assert_eq!(h.usable_len(), 512 - 128 - HEADER_LEN - TRAILER_LEN);
        h.size = 64;
        assert_eq!(h.usable_len(), 0, "a header too small for its padding");
        // A leftover becomes an element of its own only if it has room for a header and a line.
        assert_eq!(MIN_SPLIT_LEN, 2 * CACHE_LINE);
    }

    #[test]
    fn a_busy_unpadded_block_is_live_and_freed_ones_are_double_frees() {
        let mut lines = Lines::new();
        let e = lines.put(0, ElemState::Busy, 256, 0);
        let (real, h) = lines.check(0).unwrap();
        assert_eq!(real, e);
        assert_eq!((h.size, h.pad, h.heap), (256, 0, HEAP));

        for state in [ElemState::Free, ElemState::Parked] {
            lines.put(0, state, 256, 0);
            assert!(matches!(lines.check(0), Err(EalError::DoubleFree { .. })));
        }
        lines.0[0].state = 9;
        assert_eq!(refused_because(lines.check(0)), "no live block starts here");
    }

    #[test]
    fn a_header_of_another_heap_or_address_is_no_live_block() {
        const NOT_LIVE: &str =
            "no live block starts here (never handed out, or freed and merged since)";
        let mut lines = Lines::new();
        lines.put(0, ElemState::Busy, 256, 0);
        lines.0[0].heap = HEAP + 64;
        assert_eq!(refused_because(lines.check(0)), NOT_LIVE);
        lines.0[0].heap = HEAP;
        lines.0[0].magic ^= 1 << 40;
        assert_eq!(refused_because(lines.check(0)), NOT_LIVE);

        // A header copied one or two lines on (addresses that differ from the first line's in
        // bit 6 or bit 7 alone) does not pass for a header at its new place.
        lines.put(0, ElemState::Busy, 256, 0);
        for line in [1, 2] {
            lines.0[line] = lines.0[0];
            assert_eq!(refused_because(lines.check(line)), NOT_LIVE, "line {line}");
        }
        assert!(lines.check(0).is_ok());
    }

    #[test]
    fn a_padded_block_is_live_only_through_its_pad_header() {
        let mut lines = Lines::new();
        // The real header at line 0, the pad header two lines on, just before the data.
        let real = lines.put(0, ElemState::Busy, 512, 128);
        lines.put(2, ElemState::Pad, 0, 128);
        let (found, h) = lines.check(2).unwrap();
        assert_eq!((found, h.size, h.pad), (real, 512, 128));
        // The real header's own data is inside the block, not its start.
        assert_eq!(
            refused_because(lines.check(0)),
            "inside a padded block, not at its start"
        );

        // The block freed since: a double free.
        for state in [ElemState::Free, ElemState::Parked] {
            lines.0[0].state = state as u8;
            assert!(matches!(lines.check(2), Err(EalError::DoubleFree { .. })));
        }
        // The real header another pad header, or a state no header has: no block.
        for state in [ElemState::Pad as u8, 9] {
            lines.0[0].state = state;
            assert_eq!(
                refused_because(lines.check(2)),
                "a pad header leads to no block"
            );
        }
        lines.put(0, ElemState::Busy, 512, 128);

        // The real header of another heap, at another address, or of another padding.
        let good = lines.0[0];
        for bad in [
            ElemHeader {
                heap: HEAP + 64,
                ..good
            },
            ElemHeader {
                magic: good.magic ^ 1,
                ..good
            },
            ElemHeader { pad: 64, ..good },
        ] {
            lines.0[0] = bad;
            assert_eq!(
                refused_because(lines.check(2)),
                "a pad header leads to no block"
            );
        }
        lines.0[0] = good;

        // Pads that no pad header has, or leading to unmapped memory.
        const OUTSIDE: &str = "a pad header leads outside the heap";
        for pad in [0, 72] {
            lines.0[2].pad = pad;
            assert_eq!(refused_because(lines.check(2)), OUTSIDE, "pad {pad}");
        }
        lines.0[2].pad = 128;
        let pad_header = lines.elem(2);
        let unmapped_real =
            pad_header.live_block(HEAP, pad_header.data(), |a| a != real.0 && lines.holds(a));
        assert_eq!(refused_because(unmapped_real), OUTSIDE);
        assert!(lines.check(2).is_ok());
    }

    #[test]
    fn a_size_no_block_can_have_is_refused() {
        const IMPOSSIBLE: &str = "no live block starts here (its header's size is impossible)";
        let mut lines = Lines::new();
        // Unpadded: the header (and trailer) at least, whole lines.
        let smallest = (HEADER_LEN + TRAILER_LEN) as u64;
        lines.put(0, ElemState::Busy, smallest, 0);
        assert_eq!(lines.check(0).unwrap().1.usable_len(), 0);
        for size in [0, smallest - 64, smallest + 36] {
            lines.0[0].size = size;
            assert_eq!(refused_because(lines.check(0)), IMPOSSIBLE, "size {size}");
        }
        // Padded: the padding counts too.
        let smallest = (HEADER_LEN + 128 + TRAILER_LEN) as u64;
        lines.put(0, ElemState::Busy, smallest, 128);
        lines.put(2, ElemState::Pad, 0, 128);
        assert_eq!(lines.check(2).unwrap().1.size, smallest);
        lines.put(0, ElemState::Busy, smallest + 64, 128);
        assert!(lines.check(2).is_ok());
        for size in [64, 128, smallest - 64] {
            lines.0[0].size = size;
            assert_eq!(refused_because(lines.check(2)), IMPOSSIBLE, "size {size}");
        }
    }

    /// Feature `debug`: the trailer cookie is at the block's end, and a block whose size leads
    /// out of mapped memory is refused before the trailer is read.
    #[cfg(feature = "debug")]
    #[test]
    fn a_changed_trailer_or_a_size_past_the_mapped_memory_is_refused() {
        let mut lines = Lines::new();
        let e = lines.put(0, ElemState::Busy, 256, 0);
        assert!(e.seal_intact(256));
        let trailer = (e.0 + 256 - TRAILER_LEN) as *const u64;
        // SAFETY: the last line of the 256-byte block at line 0, inside `lines`.
        assert_eq!(unsafe { trailer.read() }, TRAILER_COOKIE ^ e.addr());
        // Line 4 just past the block is untouched by the seal.
        assert_eq!(lines.0[4].magic, 0);
        lines.0[3].magic ^= 1;
        assert!(!e.seal_intact(256));
        assert!(matches!(
            lines.check(0),
            Err(EalError::BlockOverrun { size: 128, .. })
        ));
        lines.put(0, ElemState::Busy, 256, 0);
        lines.0[0].size = (LINES * HEADER_LEN + 64) as u64;
        assert_eq!(
            refused_because(lines.check(0)),
            "no live block starts here (its header's size leads outside the heap)"
        );
        lines.0[0].size = (LINES * HEADER_LEN) as u64;
        assert!(matches!(lines.check(0), Err(EalError::BlockOverrun { .. })));
    }
}
