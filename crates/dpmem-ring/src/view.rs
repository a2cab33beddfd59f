//! The data path: claim, copy, publish, for every mode, over what it needs of the header.
//!
//! An enqueue or dequeue needs both sides' head and tail, the slot array, its mask and the
//! capacity, all at fixed places from the header, whose address never changes.
//! [`RingView`] is that address: a typed handle makes one when it is created, so that a
//! call starts from the header instead of following handle, ring and header to it; the
//! raw API makes one per call.
//!
//! The copy is the caller's: the operations claim slots, hand them to a [`SlotCopy`], and
//! publish them, so a single typed element is written or read in place ([`crate::held`])
//! while bulk and burst calls copy runs ([`crate::slots`]).
//!
//! The mode is dispatched once per call ([`RingView::transfer_as`], or a handle's
//! [`Dispatch`]), into a copy of the whole operation specialised for that mode, so the
//! fast path has one predictable branch rather than one per step.
//!
//! An enqueue and a dequeue are one operation on opposite sides: claim on one's own head
//! against the other side's tail, copy, publish one's own tail. So each is written once,
//! with the side as a type parameter ([`RingSide`]: [`ProducerSide`] enqueues,
//! [`ConsumerSide`] dequeues), and compiled once per side, the side a constant in each copy.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::config::Behavior;
use crate::header::{RingHeader, SLOTS_OFFSET};
use crate::headtail::{Claim, HeadTail, Layout};
use crate::mode::SyncType;
use crate::side::{ConsumerSide, ProducerSide, RingSide};
use crate::slots;

/// [`SyncType`]s as `u32` const parameters.
const ST: u32 = SyncType::St as u32;
const MT: u32 = SyncType::Mt as u32;
const RTS: u32 = SyncType::MtRts as u32;
const HTS: u32 = SyncType::MtHts as u32;

/// What an operation does with the slots it claimed: copy into them (enqueue) or out of
/// them (dequeue).
///
/// A trait whose implementations are all `#[inline(always)]`, not a closure: a closure
/// called from the arms of the mode dispatch is one function that the compiler may keep
/// out of line, which put a call in the middle of every bulk operation.
pub(crate) trait SlotCopy {
    /// Copy between the caller and the `n` slots from position `start`.
    ///
    /// # Safety
    /// The calling thread holds the claim of those slots (published by the other side,
    /// for a dequeue), and `n` is at most what the operation was asked to move.
    unsafe fn copy(self, view: &RingView<'_>, start: u32, n: u32);
}

/// Copy a run of elements of `esize` bytes in from `src`, which holds as many as the
/// operation was asked to move.
#[derive(Clone, Copy)]
pub(crate) struct CopyIn {
    pub(crate) src: *const u8,
    pub(crate) esize: usize,
}

impl SlotCopy for CopyIn {
    #[inline(always)]
    unsafe fn copy(self, view: &RingView<'_>, start: u32, n: u32) {
        // SAFETY: claimed slots (the trait's contract); src holds n or more elements of
        // esize bytes, the ring's element size (CopyIn's).
        unsafe { view.write_run(start, self.src, self.esize, n) }
    }
}

/// Copy a run of elements of `esize` bytes out to `dst`, which has room for as many as
/// the operation was asked to move.
#[derive(Clone, Copy)]
pub(crate) struct CopyOut {
    pub(crate) dst: *mut u8,
    pub(crate) esize: usize,
}

impl SlotCopy for CopyOut {
    #[inline(always)]
    unsafe fn copy(self, view: &RingView<'_>, start: u32, n: u32) {
        // SAFETY: claimed, published slots (the trait's contract); dst has room for n or
        // more elements of the ring's size (CopyOut's).
        unsafe { view.read_run(start, self.dst, self.esize, n) }
    }
}

/// A side's mode, decoded once for a handle that runs many operations in it.
///
/// Each path has a flag of its own, tested in turn. A match on the modes is compiled into a
/// jump table — a load and an indirect jump on every call, a visible share of an operation
/// that is a dozen instructions long — and tests of one value against each mode in turn are
/// merged back into that same table; tests of separate flags stay plain, predicted
/// branches. Every path is inlined: a call left in the function to serve the rare ones out
/// of line cost a mempool get+put of one object 3 ns on one core, taken or not (the
/// registers it clobbers are saved around the whole function).
///
/// The side's layout (head beside tail or apart, room left kept or not) is decoded here
/// too, into a copy of each path per layout, so the data path never looks it up. Both come
/// from the side itself ([`Dispatch::for_side`]), which is what makes the paths chosen below
/// the side's own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatch {
    /// Single-thread, apart: a default SP or SC side.
    single: bool,
    /// Classic multi-thread, apart: a default MP or MC side.
    classic: bool,
    /// Classic multi-thread, together, cached: a side of a multi-thread mempool's ring.
    classic_together_cached: bool,
    /// Single-thread, cached (always apart): a side of an SP/SC mempool's ring, or of a
    /// pipeline that asked for the cache.
    single_cached: bool,
    /// Classic multi-thread, apart, cached.
    classic_cached: bool,
    /// What is left: RTS or HTS.
    sync: SyncType,
}

impl Dispatch {
    /// The mode and layout of `side`, as its header records them.
    pub(crate) fn for_side(side: &HeadTail) -> Self {
        let (sync, layout) = (side.sync_type(), side.layout());
        let (st, mt) = (sync == SyncType::St, sync == SyncType::Mt);
        Dispatch {
            single: st && layout == Layout::APART,
            classic: mt && layout == Layout::APART,
            classic_together_cached: mt && layout == Layout::TOGETHER_CACHED,
            single_cached: st && layout == Layout::APART_CACHED,
            classic_cached: mt && layout == Layout::APART_CACHED,
            sync,
        }
    }

    /// Whether the side is single-thread.
    pub(crate) fn is_single(self) -> bool {
        self.sync == SyncType::St
    }

    /// [`RingView::transfer_as`] on side `S` in this mode.
    ///
    /// # Safety
    /// As [`RingView::transfer_as`] with this mode, which is side `S`'s (`for_side` of it).
    #[inline(always)]
    pub(crate) unsafe fn transfer<S: RingSide>(
        self,
        view: &RingView<'_>,
        n: u32,
        behavior: Behavior,
        copy: impl SlotCopy,
    ) -> Claim {
        if self.single {
            // SAFETY: the caller's contract; single-thread, apart is the side's own mode and
            // layout (`for_side` read both from its header).
            unsafe { view.transfer::<S, ST, false, false>(n, behavior, copy) }
        } else if self.classic {
            // SAFETY: the caller's contract; classic multi-thread, apart is the side's own
            // mode and layout (`for_side`).
            unsafe { view.transfer::<S, MT, false, false>(n, behavior, copy) }
        } else if self.classic_together_cached {
            // SAFETY: the caller's contract; classic multi-thread, together, cached is the
            // side's own mode and layout (`for_side`).
            unsafe { view.transfer::<S, MT, true, true>(n, behavior, copy) }
        } else if self.single_cached {
            // SAFETY: the caller's contract; single-thread, apart, cached is the side's own
            // mode and layout (`for_side`).
            unsafe { view.transfer::<S, ST, false, true>(n, behavior, copy) }
        } else if self.classic_cached {
            // SAFETY: the caller's contract; classic multi-thread, apart, cached is the side's
            // own mode and layout (`for_side`).
            unsafe { view.transfer::<S, MT, false, true>(n, behavior, copy) }
        } else if self.sync == SyncType::MtRts {
            // SAFETY: the caller's contract; the side is RTS (`for_side`), whose path finds
            // its head word as it goes and so serves every layout.
            unsafe { view.transfer::<S, RTS, false, false>(n, behavior, copy) }
        } else {
            debug_assert_eq!(self.sync, SyncType::MtHts);
            // SAFETY: the caller's contract; the tests above leave HTS, the one sync type left
            // (`for_side`), whose head is in the tail word in every layout, and only the known
            // layouts reach here (`init_in` writes no other, `attach` refuses any other).
            unsafe { view.transfer::<S, HTS, false, false>(n, behavior, copy) }
        }
    }
}

/// A ring's header, as the data path sees it.
///
/// Only the header's address: both sides and the slots lie at fixed offsets from it, and
/// the mask and capacity are read from it on each call, as DPDK does — they sit on a line
/// nothing ever writes, so every core keeps it, and loading them costs less than holding
/// them in registers across a caller's loop would (a loop that enqueues and dequeues
/// through two handles would need ten registers for two full copies).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingView<'r> {
    /// The header at the start of the ring's block, with provenance over the whole block
    /// (the slots are reached through it).
    header: NonNull<RingHeader>,
    _ring: PhantomData<&'r RingHeader>,
}

// SAFETY: a view is a borrowed pointer to a ring's header, which holds only atomics and
// fields never written after initialisation, and to the slots after it. Whoever holds a
// view also borrows the ring (its lifetime 'r), whose operations are the ring protocol
// itself, so sharing or sending the view gives no access that a `&RawRing` would not.
unsafe impl Send for RingView<'_> {}
// SAFETY: as above.
unsafe impl Sync for RingView<'_> {}

impl<'r> RingView<'r> {
    /// # Safety
    /// `header` points at an initialised ring header at the start of a block that also
    /// holds its slots, valid for the life `'r`, with provenance over that block.
    pub(crate) unsafe fn new(header: NonNull<RingHeader>) -> Self {
        RingView {
            header,
            _ring: PhantomData,
        }
    }

    #[inline(always)]
    fn header(&self) -> &'r RingHeader {
        // SAFETY: an initialised header, valid for 'r (the contract of `new`); its shared
        // parts are atomics or never written after initialisation.
        unsafe { self.header.as_ref() }
    }

    #[inline(always)]
    fn mask(&self) -> u32 {
        self.header().meta.mask
    }

    /// Slot 0.
    #[inline(always)]
    fn slots(&self) -> *mut u8 {
        self.header.as_ptr().cast::<u8>().wrapping_add(SLOTS_OFFSET)
    }

    /// Tell loom that this thread writes (or reads) the slot at `position` (see
    /// [`slots::track`]); nothing outside loom.
    #[inline(always)]
    pub(crate) fn track_slot(&self, position: u32, for_write: bool) {
        // SAFETY: this view's ring: its slot array and mask.
        unsafe { slots::track(self.slots(), self.mask(), position, 1, for_write) }
    }

    /// Slot `position & mask`, for elements of `esize` bytes (the ring's element size,
    /// or the address is meaningless; using it is the caller's `unsafe`).
    #[inline(always)]
    pub(crate) fn slot(&self, position: u32, esize: usize) -> *mut u8 {
        let index = (position & self.mask()) as usize;
        self.slots().wrapping_add(index * esize)
    }

    /// Copy `n` elements of `esize` bytes from `src` into the slots from `position`.
    ///
    /// # Safety
    /// This thread holds the claim of those slots; `src` is valid for `n * esize` bytes;
    /// `esize` is the ring's element size.
    #[inline(always)]
    pub(crate) unsafe fn write_run(&self, position: u32, src: *const u8, esize: usize, n: u32) {
        // SAFETY: the caller's contract; n <= capacity < mask + 1 as any claim is.
        unsafe { slots::write(self.slots(), self.mask(), esize, position, src, n) }
    }

    /// Copy `n` elements of `esize` bytes out of the slots from `position` into `dst`.
    ///
    /// # Safety
    /// This thread holds the claim of those (published) slots; `dst` is valid for writing
    /// `n * esize` bytes; `esize` is the ring's element size.
    #[inline(always)]
    pub(crate) unsafe fn read_run(&self, position: u32, dst: *mut u8, esize: usize, n: u32) {
        // SAFETY: the caller's contract, as in write_run.
        unsafe { slots::read(self.slots(), self.mask(), esize, position, dst, n) }
    }

    /// Enqueue `n` elements of `esize` bytes from `src` in mode `sync`.
    ///
    /// # Safety
    /// `src` is valid for `n * esize` bytes; `esize` is the ring's element size; when
    /// `sync` is ST, no other thread enqueues concurrently; `sync` is ST or MT on an ST/MT
    /// side, or the side's own mode.
    #[inline(always)]
    pub(crate) unsafe fn enqueue_from(
        &self,
        sync: SyncType,
        src: *const u8,
        esize: usize,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        let fill = CopyIn { src, esize };
        // SAFETY: the caller's contract; `fill` writes only the slots it is handed, from a
        // buffer of n elements of the ring's size.
        unsafe { self.transfer_as::<ProducerSide>(sync, n, behavior, fill) }
    }

    /// Dequeue up to `n` elements of `esize` bytes into `dst` in mode `sync`.
    ///
    /// # Safety
    /// As [`RingView::enqueue_from`], with `dst` valid for writing `n * esize` bytes and
    /// SC for ST.
    #[inline(always)]
    pub(crate) unsafe fn dequeue_into(
        &self,
        sync: SyncType,
        dst: *mut u8,
        esize: usize,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        let empty = CopyOut { dst, esize };
        // SAFETY: the caller's contract; `empty` reads only the slots it is handed, into a
        // buffer with room for n elements of the ring's size.
        unsafe { self.transfer_as::<ConsumerSide>(sync, n, behavior, empty) }
    }

    /// On side `S`, claim up to `n` slots in mode `sync` — free slots to enqueue into, or
    /// filled ones to dequeue from — let `copy` fill or empty them, then publish them to the
    /// other side.
    ///
    /// The one dispatch on the mode, into a copy of the whole operation for that mode and
    /// the side's layout. A single-thread call on a side whose head is beside its tail (a
    /// multi-thread side of such a ring) runs the multi-thread protocol, which is correct
    /// for one thread too; no single-thread path keeps its head there.
    ///
    /// # Safety
    /// When `sync` is ST, no other thread works on side `S` concurrently; `sync` is ST or MT
    /// on an ST/MT side, or the side's own mode; `copy` can copy `n` elements of the ring's
    /// element size in (its buffer holds them) or out (its buffer has room for them), as `S`
    /// enqueues or dequeues.
    #[inline(always)]
    pub(crate) unsafe fn transfer_as<S: RingSide>(
        &self,
        sync: SyncType,
        n: u32,
        behavior: Behavior,
        copy: impl SlotCopy,
    ) -> Claim {
        let layout = S::SIDE.of(self.header()).layout();
        match sync {
            SyncType::St | SyncType::Mt if layout == Layout::TOGETHER_CACHED => {
                // SAFETY: the caller's contract, on the layout just read; MT serves ST calls.
                unsafe { self.transfer::<S, MT, true, true>(n, behavior, copy) }
            }
            SyncType::St if layout.cached => {
                // SAFETY: the caller's contract: the mode it chose, on the layout just read.
                unsafe { self.transfer::<S, ST, false, true>(n, behavior, copy) }
            }
            SyncType::Mt if layout.cached => {
                // SAFETY: the caller's contract: the mode it chose, on the layout just read.
                unsafe { self.transfer::<S, MT, false, true>(n, behavior, copy) }
            }
            SyncType::St => {
                // SAFETY: the caller's contract: the mode it chose, on the layout just read.
                unsafe { self.transfer::<S, ST, false, false>(n, behavior, copy) }
            }
            SyncType::Mt => {
                // SAFETY: the caller's contract: the mode it chose, on the layout just read.
                unsafe { self.transfer::<S, MT, false, false>(n, behavior, copy) }
            }
            // RTS finds its head word as it goes (`HeadTail::head_word`), HTS keeps its head
            // in the tail word, and neither keeps the room left: one copy serves every layout.
            SyncType::MtRts => {
                // SAFETY: the caller's contract: the mode it chose.
                unsafe { self.transfer::<S, RTS, false, false>(n, behavior, copy) }
            }
            SyncType::MtHts => {
                // SAFETY: the caller's contract: the mode it chose.
                unsafe { self.transfer::<S, HTS, false, false>(n, behavior, copy) }
            }
        }
    }

    /// [`RingView::transfer_as`] on side `S` for one mode (`MODE` is a [`SyncType`] as `u32`)
    /// and layout.
    ///
    /// # Safety
    /// As [`RingView::transfer_as`], and `TOGETHER` and `CACHED` are side `S`'s layout (a
    /// wrong one reads the wrong head word and claims slots that are not free, or trusts a
    /// record of the other side's tail that nobody keeps).
    #[inline(always)]
    unsafe fn transfer<S: RingSide, const MODE: u32, const TOGETHER: bool, const CACHED: bool>(
        &self,
        n: u32,
        behavior: Behavior,
        copy: impl SlotCopy,
    ) -> Claim {
        let header = self.header();
        let (own, other) = (S::SIDE.of(header), S::SIDE.other().of(header));
        // Producers' room is the free slots: the capacity plus the consumers' tail; consumers'
        // is what producers published: 0 plus their tail.
        let base = S::SIDE.room_base(&header.meta);
        let claim = match MODE {
            ST => own.move_head::<true, TOGETHER, CACHED>(other, base, n, behavior),
            MT => own.move_head::<false, TOGETHER, CACHED>(other, base, n, behavior),
            RTS => own.rts_move_head(other, base, n, behavior),
            _ => own.hts_move_head(other, base, n, behavior),
        };
        if claim.n == 0 {
            return claim;
        }
        // A bulk claim that succeeded holds exactly n: saying so lets a constant n (a
        // single element) reach the copy as a constant.
        let moved = match behavior {
            Behavior::Fixed => n,
            Behavior::Variable => claim.n,
        };
        // SAFETY: this thread holds the claim of slots claim.start.. + moved, moved <= n
        // (for a dequeue, slots the producers published).
        unsafe { copy.copy(self, claim.start, moved) };
        match MODE {
            ST => own.update_tail::<true>(claim.start, moved),
            MT => own.update_tail::<false>(claim.start, moved),
            RTS => own.rts_update_tail(),
            _ => own.hts_update_tail(claim.start, moved),
        }
        claim
    }
}
