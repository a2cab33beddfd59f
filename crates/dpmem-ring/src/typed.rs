//! `Ring<T>`: the safe, typed ring, and the producer/consumer handles that use it.
//!
//! Safety of the single-thread modes comes from the handles: a ring whose producer side
//! is SP hands out one [`Producer`] at a time ([`RingError::Busy`] otherwise, checked in
//! the shared header so it holds across processes), and every data operation takes the
//! handle by `&mut`, so one thread enqueues at a time. MP sides hand out any number of
//! producers. Consumers likewise.

use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ops::Deref;

use crate::config::{Behavior, RingFlags};
use crate::error::RingError;
use crate::headtail::{Claim, HeadTail};
use crate::held::{Held, TakeOne};
use crate::memory::{HeapRegion, RingMemory};
use crate::mode::SyncType;
use crate::raw::RawRing;
use crate::side::{ConsumerSide, ProducerSide, Side};
use crate::sync::Ordering;
use crate::view::{CopyIn, CopyOut, Dispatch, RingView, SlotCopy};

/// A ring of `T` values in a block of memory `M`.
///
/// The ring copies values in and out; `T: Copy` because a value in a shared-memory ring
/// may be read by another process, which must not run a destructor it does not own. Pass
/// owned things as pointers or indices (as DPDK rings carry mbuf pointers).
pub struct Ring<T: Copy, M: RingMemory = HeapRegion> {
    raw: RawRing<M>,
    _elem: PhantomData<T>,
}

/// The outcome of a bulk or burst call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Elements moved (bulk: 0 or all).
    pub count: u32,
    /// After the call: free slots (enqueue) or elements left (dequeue) — at least this many
    /// on a ring made with [`RingFlags::CACHED_OTHER_TAIL`], where the count can be behind.
    pub remaining: u32,
}

impl<T: Copy> Ring<T> {
    /// A ring in a heap block, as DPDK sizes them: `count` slots, a power of two, holding
    /// `count - 1` elements; with [`RingFlags::EXACT_SZ`] any `count`, holding exactly `count`
    /// (in the next power of two of slots).
    pub fn new(name: &str, count: u32, flags: RingFlags) -> Result<Self, RingError> {
        let () = Self::ELEMENT_FITS;
        Ok(Ring {
            raw: RawRing::new(name, count, size_of::<T>() as u32, flags)?,
            _elem: PhantomData,
        })
    }
}

impl<T: Copy, M: RingMemory> Ring<T, M> {
    /// Refuses, at compile time, element types the ring cannot hold: sizes that are zero or
    /// not a multiple of 4, and alignments above the slot array's 128 bytes.
    const ELEMENT_FITS: () = assert!(
        size_of::<T>() != 0
            && size_of::<T>().is_multiple_of(4)
            && core::mem::align_of::<T>() <= 128,
        "ring elements must be a non-zero multiple of 4 bytes, aligned to at most 128"
    );

    /// Build a ring in `memory`.
    pub fn create_in(
        memory: M,
        name: &str,
        count: u32,
        flags: RingFlags,
    ) -> Result<Self, RingError> {
        let () = Self::ELEMENT_FITS;
        Ok(Ring {
            raw: RawRing::create_in(memory, name, count, size_of::<T>() as u32, flags)?,
            _elem: PhantomData,
        })
    }

    /// A handle on a ring built in `memory` by someone else; its element size must be `T`'s.
    ///
    /// # Safety
    /// The ring's elements are valid `T`s (it was built for `T`, or for a type with the
    /// same layout).
    pub unsafe fn attach(memory: M) -> Result<Self, RingError> {
        let () = Self::ELEMENT_FITS;
        let raw = RawRing::attach(memory)?;
        if raw.esize() as usize != size_of::<T>() {
            return Err(RingError::InvalidElementSize { esize: raw.esize() });
        }
        Ok(Ring {
            raw,
            _elem: PhantomData,
        })
    }

    /// The raw handle (counts, modes, dump, the `unsafe` byte API).
    pub fn raw(&self) -> &RawRing<M> {
        &self.raw
    }

    /// Empty the ring. `&mut self`: nothing else can be using it.
    pub fn reset(&mut self) {
        // SAFETY: &mut self, so no handle of this process borrows the ring. Other
        // processes attached to the same memory are the caller's concern, as in DPDK.
        unsafe { self.raw.reset() }
    }

    /// A producer handle: the only one while the producer side is SP, one of many on MP,
    /// RTS and HTS sides. `EBUSY` ([`RingError::Busy`]) when the SP side's handle is taken.
    #[inline]
    pub fn producer(&self) -> Result<Producer<'_, T, M>, RingError> {
        self.try_producer()
            .ok_or_else(|| side_busy(&self.raw, "producer"))
    }

    /// A consumer handle (see [`Ring::producer`]).
    #[inline]
    pub fn consumer(&self) -> Result<Consumer<'_, T, M>, RingError> {
        self.try_consumer()
            .ok_or_else(|| side_busy(&self.raw, "consumer"))
    }

    /// [`Ring::producer`], `None` when the SP side's handle is taken. For code that takes a
    /// handle per operation (a mempool's puts): an `Option` of a handle is the handle or a
    /// null pointer, and comes back in registers, where the `Result` is built in memory and
    /// read back before its stores have landed.
    #[inline(always)]
    pub fn try_producer(&self) -> Option<Producer<'_, T, M>> {
        let side = self.raw.prod();
        if !claim_side(side) {
            return None;
        }
        Some(Producer {
            ring: self,
            view: self.raw.view(),
            mode: Dispatch::for_side(side),
        })
    }

    /// [`Ring::consumer`], `None` when the SC side's handle is taken (see
    /// [`Ring::try_producer`]).
    #[inline(always)]
    pub fn try_consumer(&self) -> Option<Consumer<'_, T, M>> {
        let side = self.raw.cons();
        if !claim_side(side) {
            return None;
        }
        Some(Consumer {
            ring: self,
            view: self.raw.view(),
            mode: Dispatch::for_side(side),
        })
    }
}

impl<T: Copy, M: RingMemory> Ring<T, M> {
    /// Enqueue all of `items` or none, without a handle, on a multi-thread producer side (MP,
    /// RTS or HTS, each in its own protocol) — DPDK's `rte_ring_enqueue_bulk` on such a ring.
    /// `None`, having done nothing, on an SP side, whose one [`Producer`] is the way in.
    ///
    /// For code that enqueues once per call from any thread (a mempool's puts): no handle is
    /// made, and the layout is looked up with the layout of dpmem's mempool rings tested
    /// first, where a handle tests the default layout first.
    #[inline(always)]
    pub fn mp_enqueue_bulk(&self, items: &[T]) -> Option<Moved> {
        let sync = self.raw.prod().sync_type();
        if sync == SyncType::St {
            return None;
        }
        let fill = CopyIn {
            src: items.as_ptr().cast(),
            esize: size_of::<T>(),
        };
        let view = self.raw.view();
        // SAFETY: a multi-thread side in its own mode, which any number of threads may
        // enqueue into at once; `fill` copies from items, which holds that many values of T.
        let claim = unsafe {
            view.transfer_as::<ProducerSide>(sync, slice_count(items.len()), Behavior::Fixed, fill)
        };
        Some(moved(claim))
    }

    /// Dequeue exactly `out.len()` values or none, without a handle, on a multi-thread
    /// consumer side (see [`Ring::mp_enqueue_bulk`]). `None`, having done nothing, on an SC
    /// side.
    #[inline(always)]
    pub fn mc_dequeue_bulk(&self, out: &mut [T]) -> Option<Moved> {
        let sync = self.raw.cons().sync_type();
        if sync == SyncType::St {
            return None;
        }
        let empty = CopyOut {
            dst: out.as_mut_ptr().cast(),
            esize: size_of::<T>(),
        };
        let view = self.raw.view();
        // SAFETY: a multi-thread side in its own mode, which any number of threads may
        // dequeue from at once; `empty` copies into out, which has room for that many.
        let claim = unsafe {
            view.transfer_as::<ConsumerSide>(sync, slice_count(out.len()), Behavior::Fixed, empty)
        };
        Some(moved(claim))
    }
}

/// Elements a call on a slice of `len` moves at most (a ring never holds more than 2^31).
#[inline(always)]
fn slice_count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[inline(always)]
fn moved(claim: Claim) -> Moved {
    Moved {
        count: claim.n,
        remaining: claim.room - claim.n,
    }
}

/// Take the single-thread handle of a side (a side of another mode needs none): false when
/// it is taken.
#[inline(always)]
fn claim_side(side: &HeadTail) -> bool {
    side.sync_type() != SyncType::St || side.head.handle_taken.swap(1, Ordering::Acquire) == 0
}

#[cold]
#[inline(never)]
fn side_busy<M: RingMemory>(raw: &RawRing<M>, which: &'static str) -> RingError {
    RingError::Busy {
        name: raw.name().to_owned(),
        side: which,
    }
}

impl<T: Copy, M: RingMemory> Deref for Ring<T, M> {
    type Target = RawRing<M>;
    fn deref(&self) -> &RawRing<M> {
        &self.raw
    }
}

impl<T: Copy, M: RingMemory> core::fmt::Debug for Ring<T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.raw.fmt(f)
    }
}

/// The right to enqueue into a [`Ring`].
///
/// The handle keeps what every enqueue needs of the ring — the header's address and the
/// side's mode, decoded — from when it is made.
pub struct Producer<'r, T: Copy, M: RingMemory = HeapRegion> {
    ring: &'r Ring<T, M>,
    view: RingView<'r>,
    mode: Dispatch,
}

impl<'r, T: Copy, M: RingMemory> Producer<'r, T, M> {
    /// Claim up to `n` slots, let `fill` copy values of `T` into them, publish them.
    ///
    /// # Safety
    /// `fill` copies up to `n` values of `T` from memory that holds them.
    #[inline(always)]
    unsafe fn put(&mut self, n: u32, behavior: Behavior, fill: impl SlotCopy) -> Claim {
        // SAFETY: mode is the side's own; an ST side has one Producer, this one, borrowed
        // mutably here, so no other thread enqueues; the fill is the caller's.
        unsafe {
            self.mode
                .transfer::<ProducerSide>(&self.view, n, behavior, fill)
        }
    }

    /// Enqueue `items` in one bulk or burst.
    #[inline(always)]
    fn put_slice(&mut self, items: &[T], behavior: Behavior) -> Moved {
        let n = slice_count(items.len());
        let fill = CopyIn {
            src: items.as_ptr().cast(),
            esize: size_of::<T>(),
        };
        // SAFETY: `fill` copies from items, which holds n values of T.
        moved(unsafe { self.put(n, behavior, fill) })
    }

    /// Free slots as of now: a lower bound for a single producer (consumers only add room),
    /// a hint on a multi-thread side.
    #[inline]
    pub(crate) fn room(&self) -> u32 {
        self.ring.raw.free_count()
    }

    /// Enqueue one value, or hand it back when the ring is full.
    #[inline]
    pub fn enqueue(&mut self, value: T) -> Result<(), T> {
        // SAFETY: value is a T.
        let held = unsafe { Held::load(&value) };
        // SAFETY: `held` is one value of T.
        let claim = unsafe { self.put(1, Behavior::Fixed, held) };
        if claim.n == 1 {
            Ok(())
        } else {
            Err(value)
        }
    }

    /// Enqueue all of `items` or none (`count` is 0 when they do not all fit).
    #[inline]
    pub fn enqueue_bulk(&mut self, items: &[T]) -> Moved {
        self.put_slice(items, Behavior::Fixed)
    }

    /// Enqueue as many of `items` as fit, from the front.
    #[inline]
    pub fn enqueue_burst(&mut self, items: &[T]) -> Moved {
        self.put_slice(items, Behavior::Variable)
    }

    /// Peek: claim `n` slots (bulk) or up to `n` (burst), to fill with
    /// [`EnqueueReservation::finish`]. SP and HTS producers only.
    pub fn enqueue_start(
        &mut self,
        n: u32,
        behavior: Behavior,
    ) -> Result<EnqueueReservation<'_, 'r, T, M>, RingError> {
        let sync = self
            .ring
            .raw
            .check_two_phase(Side::Producer, "enqueue peek")?;
        let claim = self.ring.raw.claim_open(Side::Producer, sync, n, behavior);
        Ok(EnqueueReservation {
            producer: self,
            start: claim.start,
            n: claim.n,
            remaining: claim.room - claim.n,
            done: false,
        })
    }

    /// Zero-copy: claim `n` slots (bulk) or up to `n` (burst) to write in place. SP and
    /// HTS producers only.
    pub fn enqueue_zc_start(
        &mut self,
        n: u32,
        behavior: Behavior,
    ) -> Result<ZeroCopyEnqueue<'_, 'r, T, M>, RingError> {
        let sync = self
            .ring
            .raw
            .check_two_phase(Side::Producer, "zero-copy enqueue")?;
        let claim = self.ring.raw.claim_open(Side::Producer, sync, n, behavior);
        let regions = self.ring.raw.regions_of(claim);
        Ok(ZeroCopyEnqueue {
            producer: self,
            regions,
            done: false,
        })
    }
}

impl<T: Copy, M: RingMemory> Drop for Producer<'_, T, M> {
    fn drop(&mut self) {
        if self.mode.is_single() {
            self.ring
                .raw
                .prod()
                .head
                .handle_taken
                .store(0, Ordering::Release);
        }
    }
}

impl<T: Copy, M: RingMemory> core::fmt::Debug for Producer<'_, T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.ring.name())
            .field("mode", &self.mode)
            .finish()
    }
}

/// The right to dequeue from a [`Ring`]. Like [`Producer`], it keeps what every dequeue
/// needs of the ring.
pub struct Consumer<'r, T: Copy, M: RingMemory = HeapRegion> {
    ring: &'r Ring<T, M>,
    view: RingView<'r>,
    mode: Dispatch,
}

impl<'r, T: Copy, M: RingMemory> Consumer<'r, T, M> {
    /// Claim up to `n` filled slots, let `empty` copy their values of `T` out, release
    /// them.
    ///
    /// # Safety
    /// `empty` copies up to `n` values of `T` into memory with room for them.
    #[inline(always)]
    unsafe fn take(&mut self, n: u32, behavior: Behavior, empty: impl SlotCopy) -> Claim {
        // SAFETY: mode is the side's own; an SC side has one Consumer, this one, borrowed
        // mutably here, so no other thread dequeues; the copy is the caller's.
        unsafe {
            self.mode
                .transfer::<ConsumerSide>(&self.view, n, behavior, empty)
        }
    }

    /// Dequeue into the front of `out` in one bulk or burst.
    #[inline(always)]
    fn take_slice(&mut self, out: &mut [T], behavior: Behavior) -> Moved {
        let n = slice_count(out.len());
        let empty = CopyOut {
            dst: out.as_mut_ptr().cast(),
            esize: size_of::<T>(),
        };
        // SAFETY: `empty` copies into out, which has room for n values of T.
        moved(unsafe { self.take(n, behavior, empty) })
    }

    /// Dequeue into the front of `out`, which need not be initialised: all of it or nothing
    /// ([`Behavior::Fixed`]) or as many as are there. The first `count` elements of `out` are
    /// then initialised. For element types no placeholder value exists for (handles holding
    /// references: [`crate::HandleRing`]).
    #[inline]
    pub(crate) fn dequeue_uninit(
        &mut self,
        out: &mut [MaybeUninit<T>],
        behavior: Behavior,
    ) -> Moved {
        let n = slice_count(out.len());
        let empty = CopyOut {
            dst: out.as_mut_ptr().cast(),
            esize: size_of::<T>(),
        };
        // SAFETY: `empty` copies into out, which has room for n values of T (uninitialised
        // memory may be written through a raw pointer).
        moved(unsafe { self.take(n, behavior, empty) })
    }

    /// Dequeue one value, or `None` when the ring is empty.
    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        let mut held = None;
        // SAFETY: `TakeOne` copies one value of T into `held`.
        unsafe { self.take(1, Behavior::Fixed, TakeOne(&mut held)) };
        held.map(Held::into_value)
    }

    /// Fill all of `out` or take nothing.
    #[inline]
    pub fn dequeue_bulk(&mut self, out: &mut [T]) -> Moved {
        self.take_slice(out, Behavior::Fixed)
    }

    /// Take as many as are there, up to `out.len()`, into the front of `out`.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut [T]) -> Moved {
        self.take_slice(out, Behavior::Variable)
    }

    /// Peek: copy `out.len()` elements (bulk) or up to that many (burst) into `out`
    /// without taking them; [`DequeuePeek::finish`] takes some. SC and HTS consumers only.
    pub fn dequeue_start(
        &mut self,
        out: &mut [T],
        behavior: Behavior,
    ) -> Result<DequeuePeek<'_, 'r, T, M>, RingError> {
        let sync = self
            .ring
            .raw
            .check_two_phase(Side::Consumer, "dequeue peek")?;
        let n = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let claim = self.ring.raw.claim_open(Side::Consumer, sync, n, behavior);
        let raw = &self.ring.raw;
        // SAFETY: the claimed slots hold published T values and are this thread's until
        // finish; out has room for claim.n <= n values.
        unsafe {
            crate::slots::read(
                raw.slots::<u8>(),
                raw.size() - 1,
                size_of::<T>(),
                claim.start,
                out.as_mut_ptr().cast(),
                claim.n,
            )
        };
        Ok(DequeuePeek {
            consumer: self,
            n: claim.n,
            remaining: claim.room - claim.n,
            done: false,
        })
    }

    /// Zero-copy: claim `n` filled slots (bulk) or up to `n` (burst) to read in place. SC
    /// and HTS consumers only.
    pub fn dequeue_zc_start(
        &mut self,
        n: u32,
        behavior: Behavior,
    ) -> Result<ZeroCopyDequeue<'_, 'r, T, M>, RingError> {
        let sync = self
            .ring
            .raw
            .check_two_phase(Side::Consumer, "zero-copy dequeue")?;
        let claim = self.ring.raw.claim_open(Side::Consumer, sync, n, behavior);
        let regions = self.ring.raw.regions_of(claim);
        Ok(ZeroCopyDequeue {
            consumer: self,
            regions,
            done: false,
        })
    }
}

impl<T: Copy, M: RingMemory> Drop for Consumer<'_, T, M> {
    fn drop(&mut self) {
        if self.mode.is_single() {
            self.ring
                .raw
                .cons()
                .head
                .handle_taken
                .store(0, Ordering::Release);
        }
    }
}

impl<T: Copy, M: RingMemory> core::fmt::Debug for Consumer<'_, T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("ring", &self.ring.name())
            .field("mode", &self.mode)
            .finish()
    }
}

/// Slots claimed by [`Producer::enqueue_start`]. Dropping it without
/// [`finish`](EnqueueReservation::finish) gives them all back.
///
/// Leaking it (`mem::forget`) leaves its claim open. On an SP/SC side the next claim gives
/// the claim back, so nothing unwritten is ever published; on an HTS side, where an open
/// claim could as well be another thread's, the side stays busy and later operations on it
/// wait, as behind a leaked lock guard.
#[derive(Debug)]
pub struct EnqueueReservation<'p, 'r, T: Copy, M: RingMemory> {
    producer: &'p mut Producer<'r, T, M>,
    start: u32,
    n: u32,
    remaining: u32,
    done: bool,
}

impl<T: Copy, M: RingMemory> EnqueueReservation<'_, '_, T, M> {
    /// Slots claimed.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Free slots left after the claim.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Write `items` (at most [`len`](Self::len) of them) and publish them; the rest of the
    /// claim is given back.
    ///
    /// # Panics
    /// When `items` is longer than the claim.
    pub fn finish(mut self, items: &[T]) {
        assert!(
            items.len() <= self.n as usize,
            "finishing {} of {} claimed slots",
            items.len(),
            self.n
        );
        let raw = &self.producer.ring.raw;
        // SAFETY: the claimed slots start..start + n are this producer's (the reservation
        // borrows it mutably, and the raw API forbids enqueueing around it); items fits.
        unsafe {
            crate::slots::write(
                raw.slots::<u8>(),
                raw.size() - 1,
                size_of::<T>(),
                self.start,
                items.as_ptr().cast(),
                items.len() as u32,
            )
        };
        raw.finish_claim(Side::Producer, self.n, items.len() as u32);
        self.done = true;
    }
}

impl<T: Copy, M: RingMemory> Drop for EnqueueReservation<'_, '_, T, M> {
    fn drop(&mut self) {
        if !self.done {
            self.producer
                .ring
                .raw
                .finish_claim(Side::Producer, self.n, 0);
        }
    }
}

/// Elements copied by [`Consumer::dequeue_start`] and still in the ring. Dropping it
/// without [`finish`](DequeuePeek::finish) leaves them all there.
///
/// Leaking it (`mem::forget`) leaves its claim open. On an SP/SC side the next claim gives
/// the claim back, so nothing unwritten is ever published; on an HTS side, where an open
/// claim could as well be another thread's, the side stays busy and later operations on it
/// wait, as behind a leaked lock guard.
#[derive(Debug)]
pub struct DequeuePeek<'c, 'r, T: Copy, M: RingMemory> {
    consumer: &'c mut Consumer<'r, T, M>,
    n: u32,
    remaining: u32,
    done: bool,
}

impl<T: Copy, M: RingMemory> DequeuePeek<'_, '_, T, M> {
    /// Elements copied out.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether nothing was copied.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Elements in the ring after the copied ones.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Take the first `n` copied elements out of the ring; the others stay.
    ///
    /// # Panics
    /// When `n` is more than were copied.
    pub fn finish(mut self, n: u32) {
        assert!(n <= self.n, "finishing {n} of {} peeked elements", self.n);
        self.consumer
            .ring
            .raw
            .finish_claim(Side::Consumer, self.n, n);
        self.done = true;
    }
}

impl<T: Copy, M: RingMemory> Drop for DequeuePeek<'_, '_, T, M> {
    fn drop(&mut self) {
        if !self.done {
            self.consumer
                .ring
                .raw
                .finish_claim(Side::Consumer, self.n, 0);
        }
    }
}

/// Slots claimed by [`Producer::enqueue_zc_start`], to write in place.
///
/// Leaking it (`mem::forget`) leaves its claim open. On an SP/SC side the next claim gives
/// the claim back, so nothing unwritten is ever published; on an HTS side, where an open
/// claim could as well be another thread's, the side stays busy and later operations on it
/// wait, as behind a leaked lock guard.
#[derive(Debug)]
pub struct ZeroCopyEnqueue<'p, 'r, T: Copy, M: RingMemory> {
    producer: &'p mut Producer<'r, T, M>,
    regions: crate::peek::ZeroCopyRegions,
    done: bool,
}

impl<T: Copy, M: RingMemory> ZeroCopyEnqueue<'_, '_, T, M> {
    /// Slots claimed.
    pub fn len(&self) -> u32 {
        self.regions.n
    }

    /// Whether nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.regions.n == 0
    }

    /// Free slots left after the claim.
    pub fn remaining(&self) -> u32 {
        self.regions.remaining
    }

    /// The claimed slots: the run up to the end of the array and, if the claim wraps, the
    /// run from slot 0.
    pub fn regions(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        let r = self.regions;
        let second_len = (r.n - r.first_len) as usize;
        // SAFETY: the first run is r.first_len claimed slots of T inside the array, ours
        // until finish; &mut self keeps the slices unique.
        let first = unsafe {
            core::slice::from_raw_parts_mut(r.first.cast::<MaybeUninit<T>>(), r.first_len as usize)
        };
        let second: &mut [MaybeUninit<T>] = if second_len == 0 {
            &mut []
        } else {
            // SAFETY: the wrapped run starts at slot 0 and holds second_len claimed slots,
            // disjoint from the first run.
            unsafe {
                core::slice::from_raw_parts_mut(r.second.cast::<MaybeUninit<T>>(), second_len)
            }
        };
        (first, second)
    }

    /// Copy `items` into the claimed slots and publish them (the rest are given back).
    ///
    /// # Panics
    /// When `items` is longer than the claim.
    pub fn fill(mut self, items: &[T]) {
        assert!(
            items.len() <= self.regions.n as usize,
            "{} items for {} slots",
            items.len(),
            self.regions.n
        );
        let (first, second) = self.regions();
        for (slot, item) in first.iter_mut().chain(second.iter_mut()).zip(items) {
            slot.write(*item);
        }
        // SAFETY: the first items.len() slots were just written.
        unsafe { self.finish(items.len() as u32) };
    }

    /// Publish the first `n` claimed slots; the rest are given back.
    ///
    /// # Safety
    /// The first `n` slots of [`regions`](Self::regions) (first run, then second) hold
    /// values written through them.
    ///
    /// # Panics
    /// When `n` is more than the claim.
    pub unsafe fn finish(mut self, n: u32) {
        self.producer
            .ring
            .raw
            .finish_claim(Side::Producer, self.regions.n, n);
        self.done = true;
    }
}

impl<T: Copy, M: RingMemory> Drop for ZeroCopyEnqueue<'_, '_, T, M> {
    fn drop(&mut self) {
        if !self.done {
            self.producer
                .ring
                .raw
                .finish_claim(Side::Producer, self.regions.n, 0);
        }
    }
}

/// Filled slots claimed by [`Consumer::dequeue_zc_start`], to read in place.
///
/// Leaking it (`mem::forget`) leaves its claim open. On an SP/SC side the next claim gives
/// the claim back, so nothing unwritten is ever published; on an HTS side, where an open
/// claim could as well be another thread's, the side stays busy and later operations on it
/// wait, as behind a leaked lock guard.
#[derive(Debug)]
pub struct ZeroCopyDequeue<'c, 'r, T: Copy, M: RingMemory> {
    consumer: &'c mut Consumer<'r, T, M>,
    regions: crate::peek::ZeroCopyRegions,
    done: bool,
}

impl<T: Copy, M: RingMemory> ZeroCopyDequeue<'_, '_, T, M> {
    /// Elements claimed.
    pub fn len(&self) -> u32 {
        self.regions.n
    }

    /// Whether nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.regions.n == 0
    }

    /// Elements left in the ring after the claim.
    pub fn remaining(&self) -> u32 {
        self.regions.remaining
    }

    /// The claimed elements: up to the end of the array, then from slot 0 if it wraps.
    pub fn regions(&self) -> (&[T], &[T]) {
        let r = self.regions;
        let second_len = (r.n - r.first_len) as usize;
        // SAFETY: the first run is r.first_len published T values, held by this consumer
        // (no producer reuses them before finish).
        let first = unsafe {
            core::slice::from_raw_parts(r.first.cast::<T>().cast_const(), r.first_len as usize)
        };
        let second: &[T] = if second_len == 0 {
            &[]
        } else {
            // SAFETY: the wrapped run from slot 0, second_len published values, also held.
            unsafe { core::slice::from_raw_parts(r.second.cast::<T>().cast_const(), second_len) }
        };
        (first, second)
    }

    /// Release the first `n` claimed elements to producers; the others stay in the ring.
    ///
    /// # Panics
    /// When `n` is more than the claim.
    pub fn finish(mut self, n: u32) {
        assert!(
            n <= self.regions.n,
            "finishing {n} of {} claimed elements",
            self.regions.n
        );
        self.consumer
            .ring
            .raw
            .finish_claim(Side::Consumer, self.regions.n, n);
        self.done = true;
    }
}

impl<T: Copy, M: RingMemory> Drop for ZeroCopyDequeue<'_, '_, T, M> {
    fn drop(&mut self) {
        if !self.done {
            self.consumer
                .ring
                .raw
                .finish_claim(Side::Consumer, self.regions.n, 0);
        }
    }
}
