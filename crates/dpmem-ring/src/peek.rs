//! Two-phase operations: peek (start/finish) and zero-copy, on SP/SC and HTS sides.
//!
//! *Start* claims slots by moving the head and leaves the tail where it is; *finish*
//! publishes some or all of them (a shorter finish gives the rest back). Between the two,
//! the thread may look at dequeued elements before deciding to take them (peek), or
//! write or read the slots in place (zero-copy). This needs a side where one operation is
//! in flight at a time: single-thread, or HTS, whose head and tail share one word so that
//! other threads wait while an operation is open. MP/MC and RTS sides are refused with
//! an error.
//!
//! A typed reservation gives its claim back when dropped unfinished. One that is leaked
//! (`mem::forget`) leaves the claim open: on a single-thread side the open claim is marked in
//! the head word, and the next single-thread claim gives it back first, so no unwritten slot
//! is ever published (a multi-thread claim on that side, which the raw API's contract forbids
//! while the claim is open, does not look for the mark);
//! on an HTS side, where the open claim could as well be another thread's, the side stays
//! busy and later operations wait, as they would behind a leaked lock guard.

use crate::config::Behavior;
use crate::error::RingError;
use crate::headtail::{Claim, HeadTail};
use crate::memory::RingMemory;
use crate::mode::SyncType;
use crate::raw::RawRing;
use crate::side::Side;
use crate::slots;

/// The slots a zero-copy start handed out: one run, or two when it wraps.
#[derive(Debug, Clone, Copy)]
pub struct ZeroCopyRegions {
    /// First slot of the run.
    pub first: *mut u8,
    /// Elements in the first run.
    pub first_len: u32,
    /// Slot 0 when the claim wraps (holding `n - first_len` elements), else null.
    pub second: *mut u8,
    /// Elements claimed in all.
    pub n: u32,
    /// Free slots (enqueue) or filled slots (dequeue) left after the claim (at least this
    /// many on a ring with [`RingFlags::CACHED_OTHER_TAIL`](crate::RingFlags::CACHED_OTHER_TAIL)).
    pub remaining: u32,
}

impl<M: RingMemory> RawRing<M> {
    fn two_phase_sync(side: &HeadTail) -> Option<SyncType> {
        match side.sync_type() {
            s @ (SyncType::St | SyncType::MtHts) => Some(s),
            _ => None,
        }
    }

    /// The sync type of `which` when it serves peek and zero-copy, or the error that names
    /// `what` was refused.
    pub(crate) fn check_two_phase(
        &self,
        which: Side,
        what: &'static str,
    ) -> Result<SyncType, RingError> {
        Self::two_phase_sync(self.side(which)).ok_or_else(|| {
            let name = self.name().to_owned();
            match which {
                Side::Producer => RingError::ProducerModeUnsupported {
                    name,
                    what,
                    mode: self.producer_mode(),
                },
                Side::Consumer => RingError::ConsumerModeUnsupported {
                    name,
                    what,
                    mode: self.consumer_mode(),
                },
            }
        })
    }

    /// Move the head of side `which` without publishing.
    pub(crate) fn claim_open(
        &self,
        which: Side,
        sync: SyncType,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        let side = self.side(which);
        let other = self.side(which.other());
        let capacity = which.room_base(self.meta());
        if sync == SyncType::MtHts {
            return side.hts_move_head(other, capacity, n, behavior);
        }
        // Peek and zero-copy serve single-thread sides, whose heads are always apart.
        let claim = if side.layout().cached {
            side.move_head::<true, false, true>(other, capacity, n, behavior)
        } else {
            side.move_head::<true, false, false>(other, capacity, n, behavior)
        };
        side.mark_open_claim(&claim);
        claim
    }

    /// Ends a claim of `claimed` elements on side `which`, publishing `n` of them
    /// ([`RawRing::finish_open`]). A claim of nothing on an HTS side left the side idle and
    /// holds nothing; another thread may hold the side by now, and finishing would end that
    /// thread's claim, so there is nothing to do. (A single-thread side's empty claim is
    /// still marked open, and its finish clears the mark.)
    #[inline]
    pub(crate) fn finish_claim(&self, which: Side, claimed: u32, n: u32) {
        if claimed == 0 && self.side(which).sync_type() == SyncType::MtHts {
            return;
        }
        self.finish_open(which, n);
    }

    /// Publish `n` of the open claim on side `which` and give back the rest.
    ///
    /// # Panics
    /// When `n` is more than the open claim holds.
    pub(crate) fn finish_open(&self, which: Side, n: u32) {
        let side = self.side(which);
        let (tail, open) = side.in_flight();
        assert!(
            n <= open,
            "ring {}: finishing {n} elements, only {open} were started",
            self.name()
        );
        // The caller wrote (or read) the finished slots through the claim's regions, before
        // this call: tell loom so, ahead of the move that publishes them.
        // SAFETY: this ring's slot array, of `size` slots.
        unsafe {
            slots::track(
                self.slots::<u8>(),
                self.size() - 1,
                tail,
                n,
                which.writes_slots(),
            )
        };
        side.finish_in_flight(tail, n);
    }

    /// The open claim's regions, as element pointers.
    pub(crate) fn regions_of(&self, claim: Claim) -> ZeroCopyRegions {
        let (index, first_len) = slots::split(claim.start, claim.n, self.size() - 1);
        let base = self.slots::<u8>();
        let esize = self.esize() as usize;
        ZeroCopyRegions {
            // SAFETY: index < size, so the slot is inside the array.
            first: unsafe { base.add(index * esize) },
            first_len,
            second: if first_len < claim.n {
                base
            } else {
                core::ptr::null_mut()
            },
            n: claim.n,
            remaining: claim.room - claim.n,
        }
    }

    /// Peek: claim up to `n` slots for enqueue (`rte_ring_enqueue_bulk_elem_start` and
    /// burst). Returns how many were claimed and the free slots left (a lower bound with
    /// `CACHED_OTHER_TAIL`).
    ///
    /// # Safety
    /// On an SP side, nothing else enqueues until the matching finish: no other thread, and
    /// not this one either (a single-thread enqueue between a start and its finish gives the
    /// open claim back, as it would a leaked one). The thread that starts finishes.
    pub unsafe fn enqueue_start(
        &self,
        n: u32,
        behavior: Behavior,
    ) -> Result<(u32, u32), RingError> {
        let sync = self.check_two_phase(Side::Producer, "enqueue peek")?;
        let claim = self.claim_open(Side::Producer, sync, n, behavior);
        Ok((claim.n, claim.room - claim.n))
    }

    /// Peek: write the first `n` elements of `objs` into the claimed slots and publish
    /// them; the rest of the claim is given back.
    ///
    /// # Safety
    /// Follows a successful [`RawRing::enqueue_start`] on this thread; on an HTS side,
    /// one that claimed at least one element (a claim of nothing holds nothing, and a finish
    /// would end the claim another thread may hold by then).
    ///
    /// # Panics
    /// When `n` is more than was claimed or `objs` is shorter than `n` elements.
    pub unsafe fn enqueue_finish(&self, objs: &[u8], n: u32) {
        assert!(
            objs.len() >= n as usize * self.esize() as usize,
            "buffer too short"
        );
        let (start, open) = self.prod().in_flight();
        assert!(
            n <= open,
            "ring {}: finishing {n} elements, only {open} were started",
            self.name()
        );
        // SAFETY: the slots start..start + open are this thread's open claim; n <= open and
        // objs holds n elements (checked).
        unsafe {
            slots::write(
                self.slots::<u8>(),
                self.size() - 1,
                self.esize() as usize,
                start,
                objs.as_ptr(),
                n,
            )
        };
        self.finish_open(Side::Producer, n);
    }

    /// Peek: copy up to `n` elements out without taking them (`..._dequeue_..._start`).
    /// Returns how many were copied and how many are left after them (a lower bound with
    /// `CACHED_OTHER_TAIL`).
    ///
    /// # Safety
    /// On an SC side, nothing else dequeues until the matching finish, on this thread or
    /// another (as [`RawRing::enqueue_start`]).
    ///
    /// # Panics
    /// When `objs` is shorter than `n` elements.
    pub unsafe fn dequeue_start(
        &self,
        objs: &mut [u8],
        n: u32,
        behavior: Behavior,
    ) -> Result<(u32, u32), RingError> {
        assert!(
            objs.len() >= n as usize * self.esize() as usize,
            "buffer too short"
        );
        let sync = self.check_two_phase(Side::Consumer, "dequeue peek")?;
        let claim = self.claim_open(Side::Consumer, sync, n, behavior);
        // SAFETY: the claim's slots are published by producers and held by this thread.
        unsafe {
            slots::read(
                self.slots::<u8>(),
                self.size() - 1,
                self.esize() as usize,
                claim.start,
                objs.as_mut_ptr(),
                claim.n,
            )
        };
        Ok((claim.n, claim.room - claim.n))
    }

    /// Peek: take `n` of the elements the start copied; the others stay in the ring.
    ///
    /// # Safety
    /// Follows a successful [`RawRing::dequeue_start`] on this thread; on an HTS side,
    /// one that claimed at least one element (a claim of nothing holds nothing, and a finish
    /// would end the claim another thread may hold by then).
    pub unsafe fn dequeue_finish(&self, n: u32) {
        self.finish_open(Side::Consumer, n);
    }

    /// Zero-copy: claim up to `n` slots to fill in place.
    ///
    /// # Safety
    /// As [`RawRing::enqueue_start`]; the caller writes the slots it later publishes.
    pub unsafe fn enqueue_zc_start(
        &self,
        n: u32,
        behavior: Behavior,
    ) -> Result<ZeroCopyRegions, RingError> {
        let sync = self.check_two_phase(Side::Producer, "zero-copy enqueue")?;
        Ok(self.regions_of(self.claim_open(Side::Producer, sync, n, behavior)))
    }

    /// Zero-copy: publish the first `n` claimed slots.
    ///
    /// # Safety
    /// Follows [`RawRing::enqueue_zc_start`] on this thread (on an HTS side, one that claimed
    /// at least one slot, as for [`RawRing::enqueue_finish`]), and the first `n` slots of the
    /// regions have been written.
    pub unsafe fn enqueue_zc_finish(&self, n: u32) {
        self.finish_open(Side::Producer, n);
    }

    /// Zero-copy: claim up to `n` filled slots to read in place.
    ///
    /// # Safety
    /// As [`RawRing::dequeue_start`].
    pub unsafe fn dequeue_zc_start(
        &self,
        n: u32,
        behavior: Behavior,
    ) -> Result<ZeroCopyRegions, RingError> {
        let sync = self.check_two_phase(Side::Consumer, "zero-copy dequeue")?;
        Ok(self.regions_of(self.claim_open(Side::Consumer, sync, n, behavior)))
    }

    /// Zero-copy: release the first `n` claimed slots to producers.
    ///
    /// # Safety
    /// Follows [`RawRing::dequeue_zc_start`] on this thread (on an HTS side, one that claimed
    /// at least one slot, as for [`RawRing::dequeue_finish`]).
    pub unsafe fn dequeue_zc_finish(&self, n: u32) {
        self.finish_open(Side::Consumer, n);
    }
}
