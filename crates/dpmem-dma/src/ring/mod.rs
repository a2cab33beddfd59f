//! A virtual channel's descriptor ring, and the four wrapping 16-bit indices that hand its
//! slots back and forth between the channel's one owner and the device's worker thread.
//!
//! Operation `i` — `i` is its ring index, what `copy` returns — lives in slot `i & mask`.
//! The ring has a power-of-two number of slots no larger than 65,536, so that stays true
//! when the 16-bit indices wrap, and every distance below is a wrapping subtraction.
//!
//! | index       | written by                                   | operations before it are |
//! | ----------- | -------------------------------------------- | ------------------------ |
//! | `enq`       | the owner, privately                         | queued (ring indices handed out) |
//! | `submitted` | the owner, release store: the doorbell       | the worker's to carry out |
//! | `done`      | the worker, release store after their effects | finished: status written, bytes in place |
//! | `reaped`    | the owner, privately                         | reported to the owner; their slots are free |
//!
//! so `reaped ≤ done ≤ submitted ≤ enq` along the ring, and `enq − reaped ≤ nb_desc − 1`: one
//! slot stays empty, which is what lets a full ring be told from an empty one without a
//! fifth index (DPDK's "usable capacity `nb_desc − 1`").
//!
//! Why each ordering is what it is:
//!
//! - **`submitted`, release / acquire.** The owner writes a descriptor, then releases
//!   `submitted` past it; the worker acquires `submitted` before reading the slot, so it reads
//!   the whole descriptor the owner wrote.
//! - **`done`, release / acquire.** The worker copies, writes the status, then releases
//!   `done`; the owner acquires `done` before reading statuses. So once `completed` reports an
//!   operation, its bytes are visible to the owner's thread (and to any thread the owner then
//!   synchronises with): DPDK's "visible to all cores" promise, kept by the same edge that
//!   makes the status readable.
//! - **Reuse of a slot.** The owner writes slot `i` again only as operation `i + nb_desc`,
//!   which needs `reaped` past `i`, which needs `done` past `i` observed — an acquire of the
//!   worker's release, which came after the worker's last read and write of the slot. The
//!   worker reads slot `i + nb_desc` only after acquiring a `submitted` past it, which the
//!   owner released after writing it. No slot is ever touched by both sides at once.
//!
//! The loom model next to this file checks all of it (`loom_model.rs`).

pub(crate) mod descriptor;
#[cfg(all(test, loom))]
mod loom_model;

use crate::cache_padded::CachePadded;
use crate::status::Status;
use crate::sync::{AtomicU16, Ordering, SlotCell};
use descriptor::{desc_flags, Descriptor};

/// How many operations the worker finishes between two publications of `done`: often enough
/// that the owner sees completions while a long burst is still being copied, rarely enough
/// that the line holding `done` does not bounce to the owner's core after every small copy.
#[cfg(not(loom))]
const PUBLISH_EVERY: u16 = 16;
/// Under the model, every operation is published on its own, so the model sees each step.
#[cfg(loom)]
const PUBLISH_EVERY: u16 = 1;

/// One slot: the operation the owner queued, and the status the worker gave it.
#[derive(Debug)]
struct Slot {
    op: SlotCell<Descriptor>,
    status: SlotCell<Status>,
}

/// A channel's ring: its slots and the two indices both sides read.
#[derive(Debug)]
pub(crate) struct Ring {
    slots: Box<[Slot]>,
    /// `nb_desc − 1`: masks a ring index into a slot number, and is the most operations the
    /// ring holds at once.
    mask: u16,
    /// The doorbell: every operation before it is the worker's to carry out. Written by the
    /// owner only (release), read by the worker (acquire).
    submitted: CachePadded<AtomicU16>,
    /// Every operation before it is finished: its bytes are in place and its status written.
    /// Written by the worker only (release), read by the owner (acquire).
    done: CachePadded<AtomicU16>,
}

// SAFETY: the slots' cells are only touched as the module notes lay out — a slot by one side
// at a time, handed over by a release of `submitted` or `done` and an acquire of it.
unsafe impl Sync for Ring {}

/// The owner's side of a ring: the two indices only it uses, and the doorbell as it last
/// rang it. Kept with the channel's owner ([`crate::Vchan`]), never shared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserCursor {
    /// The ring index the next operation gets.
    enq: u16,
    /// What the owner last stored in the ring's `submitted` (no need to read it back).
    submitted: u16,
    /// Operations before it have been reported and their slots are free.
    reaped: u16,
}

impl UserCursor {
    /// The cursor of a ring whose indices all start at `first`.
    pub(crate) fn at(first: u16) -> UserCursor {
        UserCursor {
            enq: first,
            submitted: first,
            reaped: first,
        }
    }

    /// The ring index of the last operation reported (one before the first, before any).
    #[inline(always)]
    pub(crate) fn last_idx(&self) -> u16 {
        self.reaped.wrapping_sub(1)
    }

    /// Operations queued and not yet reported.
    #[inline(always)]
    pub(crate) fn in_flight(&self) -> u16 {
        self.enq.wrapping_sub(self.reaped)
    }

    /// Operations queued since the doorbell last rang.
    #[inline(always)]
    pub(crate) fn unsubmitted(&self) -> u16 {
        self.enq.wrapping_sub(self.submitted)
    }

    /// The ring index the next operation gets.
    #[inline(always)]
    pub(crate) fn next_idx(&self) -> u16 {
        self.enq
    }
}

/// The worker's side of one ring: where it is, and what it knows of the current batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerCursor {
    /// Operations before it are finished (what it last published, or about to).
    done: u16,
    /// An operation of the current batch failed: a fenced one after it is not attempted.
    failed_in_batch: bool,
    /// A fence after a failure was met: the rest of the batch is not attempted.
    skipping: bool,
}

impl WorkerCursor {
    /// The cursor of a ring whose indices all start at `first`.
    pub(crate) fn at(first: u16) -> WorkerCursor {
        WorkerCursor {
            done: first,
            failed_in_batch: false,
            skipping: false,
        }
    }
}

/// What the owner took off the ring in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reaped {
    /// Operations reported.
    pub count: u16,
    /// Of them, how many failed.
    pub errors: u16,
    /// A failed operation was met (reported, or left at the head for `completed_status`).
    pub has_error: bool,
}

impl Ring {
    /// A ring of `nb_desc` slots (a power of two from 2 to 32,768) whose indices all start
    /// at `first`: 0 on a device, near the wrap in the tests.
    pub(crate) fn starting_at(nb_desc: u16, first: u16) -> Ring {
        debug_assert!(nb_desc.is_power_of_two() && nb_desc >= 2);
        let slots = (0..nb_desc)
            .map(|_| Slot {
                op: SlotCell::new(Descriptor::EMPTY),
                status: SlotCell::new(Status::Successful),
            })
            .collect();
        Ring {
            slots,
            mask: nb_desc - 1,
            submitted: CachePadded(AtomicU16::new(first)),
            done: CachePadded(AtomicU16::new(first)),
        }
    }

    /// Descriptors of the ring.
    pub(crate) fn nb_desc(&self) -> u32 {
        u32::from(self.mask) + 1
    }

    #[inline(always)]
    fn slot(&self, idx: u16) -> &Slot {
        // The mask keeps the index inside the slice; the compiler drops the bound check.
        &self.slots[usize::from(idx & self.mask)]
    }

    // ---- the owner's side -------------------------------------------------------------

    /// Room for more operations before the ring is full.
    #[inline(always)]
    pub(crate) fn capacity(&self, user: &UserCursor) -> u16 {
        self.mask - user.in_flight()
    }

    /// Queues `op` and returns its ring index; `Err` with the operations in flight when the
    /// ring is full (nothing queued).
    #[inline(always)]
    pub(crate) fn enqueue(&self, user: &mut UserCursor, op: Descriptor) -> Result<u16, u16> {
        let in_flight = user.in_flight();
        if in_flight >= self.mask {
            return Err(in_flight);
        }
        let idx = user.enq;
        // SAFETY: the slot is the owner's. `idx` is at or past `submitted`, so the worker has
        // not been given it; its previous operation, `idx − nb_desc`, is before `reaped`
        // (fewer than `nb_desc − 1` in flight), and the owner reaped it only after acquiring
        // a `done` past it, which the worker released after its last access to the slot.
        unsafe { self.slot(idx).op.write(op) };
        user.enq = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Rings the doorbell: every queued operation becomes the worker's. The last of them is
    /// marked as the end of a batch (what a fence after a failure skips up to). Returns how
    /// many operations it handed over.
    #[inline(always)]
    pub(crate) fn submit(&self, user: &mut UserCursor) -> u16 {
        let new = user.unsubmitted();
        if new == 0 {
            return 0;
        }
        let last = self.slot(user.enq.wrapping_sub(1));
        // SAFETY: the last queued operation is past `submitted`: the owner's slot still.
        let mut op = unsafe { last.op.read() };
        op.flags |= desc_flags::BATCH_END;
        // SAFETY: as above.
        unsafe { last.op.write(op) };
        self.submitted.store(user.enq, Ordering::Release);
        user.submitted = user.enq;
        new
    }

    /// Takes up to `max` finished operations off the ring, stopping before the first that
    /// failed (DPDK's `rte_dma_completed`): that one stays at the head, for
    /// [`Ring::reap_status`], and `has_error` says so.
    #[inline(always)]
    pub(crate) fn reap_successful(&self, user: &mut UserCursor, max: u16) -> Reaped {
        let done = self.done.load(Ordering::Acquire);
        let ready = done.wrapping_sub(user.reaped).min(max);
        let mut count = 0;
        let mut has_error = false;
        while count < ready {
            let idx = user.reaped.wrapping_add(count);
            // SAFETY: `idx` is before the acquired `done`: the worker wrote its status before
            // releasing `done` and does not touch the slot again until it is submitted anew.
            let status = unsafe { self.slot(idx).status.read() };
            if !status.is_success() {
                has_error = true;
                break;
            }
            count += 1;
        }
        user.reaped = user.reaped.wrapping_add(count);
        Reaped {
            count,
            errors: 0,
            has_error,
        }
    }

    /// Takes up to `out.len()` finished operations off the ring, failed or not, writing each
    /// one's status (DPDK's `rte_dma_completed_status`).
    #[inline(always)]
    pub(crate) fn reap_status(&self, user: &mut UserCursor, out: &mut [Status]) -> Reaped {
        let done = self.done.load(Ordering::Acquire);
        let room = u16::try_from(out.len()).unwrap_or(u16::MAX);
        let ready = done.wrapping_sub(user.reaped).min(room);
        let mut errors = 0;
        for (k, status) in out[..usize::from(ready)].iter_mut().enumerate() {
            let idx = user.reaped.wrapping_add(k as u16);
            // SAFETY: as in `reap_successful`: `idx` is before the acquired `done`.
            *status = unsafe { self.slot(idx).status.read() };
            errors += u16::from(!status.is_success());
        }
        user.reaped = user.reaped.wrapping_add(ready);
        Reaped {
            count: ready,
            errors,
            has_error: errors != 0,
        }
    }

    /// Whether every submitted operation is finished (from any thread).
    pub(crate) fn is_idle(&self) -> bool {
        // `submitted` first: a `done` read after it that equals it covers everything
        // submitted by then.
        let submitted = self.submitted.load(Ordering::Acquire);
        self.done.load(Ordering::Acquire) == submitted
    }

    /// The two shared indices, for a dump: (submitted, done).
    pub(crate) fn shared_indices(&self) -> (u16, u16) {
        (
            self.submitted.load(Ordering::Acquire),
            self.done.load(Ordering::Acquire),
        )
    }

    // ---- the worker's side ------------------------------------------------------------

    /// Operations submitted and not yet finished.
    #[inline(always)]
    pub(crate) fn pending(&self, worker: &WorkerCursor) -> u16 {
        self.submitted
            .load(Ordering::Acquire)
            .wrapping_sub(worker.done)
    }

    /// Carries out up to `budget` submitted operations in order, each through `execute`,
    /// and publishes them as done. Returns how many it finished.
    ///
    /// A fenced operation after a failure in its batch is not attempted, nor is anything
    /// after it up to the batch's end (the doorbell that submitted it).
    #[inline]
    pub(crate) fn process(
        &self,
        worker: &mut WorkerCursor,
        budget: u16,
        mut execute: impl FnMut(&Descriptor) -> Status,
    ) -> u16 {
        let submitted = self.submitted.load(Ordering::Acquire);
        let n = submitted.wrapping_sub(worker.done).min(budget);
        for k in 1..=n {
            let slot = self.slot(worker.done);
            // SAFETY: the operation is before the acquired `submitted`: the owner wrote it
            // before releasing `submitted`, and writes the slot again only once `done` is
            // past it, which this side has not published yet.
            let op = unsafe { slot.op.read() };
            let status = if worker.skipping {
                Status::NotAttempted
            } else if op.has(desc_flags::FENCE) && worker.failed_in_batch {
                worker.skipping = true;
                Status::NotAttempted
            } else {
                execute(&op)
            };
            worker.failed_in_batch |= !status.is_success();
            if op.has(desc_flags::BATCH_END) {
                worker.failed_in_batch = false;
                worker.skipping = false;
            }
            // SAFETY: as above: the slot is the worker's until `done` is published past it.
            unsafe { slot.status.write(status) };
            worker.done = worker.done.wrapping_add(1);
            if k % PUBLISH_EVERY == 0 || k == n {
                self.done.store(worker.done, Ordering::Release);
            }
        }
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::descriptor::OpKind;
    use super::*;

    fn op(src: u64, flags: u8) -> Descriptor {
        Descriptor {
            src,
            dst: 0,
            len: 8,
            kind: OpKind::Copy,
            flags,
        }
    }

    #[test]
    fn capacity_is_one_less_than_the_ring_and_wraps() {
        let ring = Ring::starting_at(4, u16::MAX - 1);
        let mut user = UserCursor::at(u16::MAX - 1);
        let mut worker = WorkerCursor::at(u16::MAX - 1);
        assert_eq!(ring.capacity(&user), 3);
        let ids: Vec<u16> = (0..3)
            .map(|i| ring.enqueue(&mut user, op(i, 0)).unwrap())
            .collect();
        assert_eq!(ids, [u16::MAX - 1, u16::MAX, 0]);
        assert_eq!(ring.enqueue(&mut user, op(9, 0)), Err(3));
        assert_eq!(ring.capacity(&user), 0);
        assert_eq!(ring.submit(&mut user), 3);
        let mut seen = Vec::new();
        assert_eq!(
            ring.process(&mut worker, 16, |d| {
                seen.push(d.src);
                Status::Successful
            }),
            3
        );
        assert_eq!(seen, [0, 1, 2]);
        let r = ring.reap_successful(&mut user, 8);
        assert_eq!((r.count, r.has_error, user.last_idx()), (3, false, 0));
        assert_eq!(ring.capacity(&user), 3);
        assert!(ring.is_idle());
    }

    #[test]
    fn completed_stops_at_a_failure_and_status_reports_it() {
        let ring = Ring::starting_at(8, 0);
        let mut user = UserCursor::at(0);
        let mut worker = WorkerCursor::at(0);
        for i in 0..4 {
            ring.enqueue(&mut user, op(i, 0)).unwrap();
        }
        ring.submit(&mut user);
        ring.process(&mut worker, 16, |d| {
            if d.src == 2 {
                Status::InvalidSrcAddr
            } else {
                Status::Successful
            }
        });
        let r = ring.reap_successful(&mut user, 8);
        assert_eq!((r.count, r.has_error, user.last_idx()), (2, true, 1));
        // Again: nothing more, the error still at the head, last_idx unchanged.
        let r = ring.reap_successful(&mut user, 8);
        assert_eq!((r.count, r.has_error, user.last_idx()), (0, true, 1));
        let mut out = [Status::ErrorUnknown; 1];
        let r = ring.reap_status(&mut user, &mut out);
        assert_eq!((r.count, r.errors, out[0]), (1, 1, Status::InvalidSrcAddr));
        let r = ring.reap_successful(&mut user, 8);
        assert_eq!((r.count, r.has_error, user.last_idx()), (1, false, 3));
    }

    #[test]
    fn a_fence_after_a_failure_skips_the_rest_of_its_batch_only() {
        let ring = Ring::starting_at(16, 0);
        let mut user = UserCursor::at(0);
        let mut worker = WorkerCursor::at(0);
        // Batch one: 0 fails, 1 runs, 2 is fenced (skipped), 3 skipped. Batch two: 4 runs.
        for (i, flags) in [(0, 0), (1, 0), (2, desc_flags::FENCE), (3, 0)] {
            ring.enqueue(&mut user, op(i, flags)).unwrap();
        }
        ring.submit(&mut user);
        ring.enqueue(&mut user, op(4, desc_flags::FENCE)).unwrap();
        ring.submit(&mut user);
        let mut ran = Vec::new();
        ring.process(&mut worker, 16, |d| {
            ran.push(d.src);
            if d.src == 0 {
                Status::InvalidSrcAddr
            } else {
                Status::Successful
            }
        });
        assert_eq!(ran, [0, 1, 4]);
        let mut out = [Status::ErrorUnknown; 8];
        let r = ring.reap_status(&mut user, &mut out);
        assert_eq!(r.count, 5);
        assert_eq!(
            out[..5],
            [
                Status::InvalidSrcAddr,
                Status::Successful,
                Status::NotAttempted,
                Status::NotAttempted,
                Status::Successful
            ]
        );
        assert_eq!(r.errors, 3);
    }
}
