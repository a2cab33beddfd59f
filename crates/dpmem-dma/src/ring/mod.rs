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
//! - **`done`, release / acquire.** The worker copies, writes the status of a failed
//!   operation and counts it in `failed`, then releases `done`; the owner acquires `done`
//!   before reading `failed` and statuses. So once `completed` reports an operation, its bytes
//!   are visible to the owner's thread (and to any thread the owner then synchronises with):
//!   DPDK's "visible to all cores" promise, kept by the same edge that makes the status
//!   readable.
//! - **Statuses are written only for failures.** A slot's status reads `Successful` unless
//!   the worker failed its operation; the owner, reaping a failure, sets it back. Comparing
//!   `failed` with the failures it has reaped tells the owner whether anything in a batch
//!   failed, so a batch that did not costs no status reads — and the slots' cache lines go
//!   one way only, owner to worker, instead of bouncing back with every status.
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
use crate::sync::{AtomicU16, AtomicU32, Ordering, SlotCell};
use descriptor::{desc_flags, Descriptor};

/// How many operations the worker finishes between two publications of `done` (it also
/// publishes at the end of every pass): rarely enough that the line holding `done`, which the
/// owner polls, does not bounce to the owner's core and back after every few copies.
#[cfg(not(loom))]
const PUBLISH_EVERY: u16 = 64;
/// Under the model, every operation is published on its own, so the model sees each step.
#[cfg(loom)]
const PUBLISH_EVERY: u16 = 1;

/// Descriptors the worker reads before carrying the first of them out.
const READ_AHEAD: usize = 8;

/// What the worker publishes, on one cache line: the owner reads both in one transfer.
#[derive(Debug)]
struct Finished {
    /// Every operation before it is finished: its bytes are in place and, if it failed, its
    /// status written. Written by the worker only (release), read by the owner (acquire).
    done: AtomicU16,
    /// Operations the worker has failed since the ring was made, wrapping. Written by the
    /// worker only, before the `done` that covers them.
    failed: AtomicU32,
}

/// A channel's ring: its slots and the indices both sides read.
#[derive(Debug)]
pub(crate) struct Ring {
    /// The operations the owner queued, one per slot.
    ops: Box<[SlotCell<Descriptor>]>,
    /// Per slot, `Successful` unless the worker failed the slot's operation and the owner
    /// has not reaped it yet.
    statuses: Box<[SlotCell<Status>]>,
    /// `nb_desc − 1`: masks a ring index into a slot number, and is the most operations the
    /// ring holds at once.
    mask: u16,
    /// The doorbell: every operation before it is the worker's to carry out. Written by the
    /// owner only (release), read by the worker (acquire).
    submitted: CachePadded<AtomicU16>,
    finished: CachePadded<Finished>,
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
    /// Failed operations reported so far, wrapping (compared with the ring's `failed`).
    failed_reaped: u32,
}

impl UserCursor {
    /// The cursor of a ring whose indices all start at `first`.
    pub(crate) fn at(first: u16) -> UserCursor {
        UserCursor {
            enq: first,
            submitted: first,
            reaped: first,
            failed_reaped: 0,
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
    /// Operations failed so far, wrapping (what it last stored in the ring's `failed`).
    failed: u32,
}

impl WorkerCursor {
    /// The cursor of a ring whose indices all start at `first`.
    pub(crate) fn at(first: u16) -> WorkerCursor {
        WorkerCursor {
            done: first,
            failed_in_batch: false,
            skipping: false,
            failed: 0,
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
        Ring {
            ops: (0..nb_desc)
                .map(|_| SlotCell::new(Descriptor::EMPTY))
                .collect(),
            statuses: (0..nb_desc)
                .map(|_| SlotCell::new(Status::Successful))
                .collect(),
            mask: nb_desc - 1,
            submitted: CachePadded(AtomicU16::new(first)),
            finished: CachePadded(Finished {
                done: AtomicU16::new(first),
                failed: AtomicU32::new(0),
            }),
        }
    }

    /// Descriptors of the ring.
    pub(crate) fn nb_desc(&self) -> u32 {
        u32::from(self.mask) + 1
    }

    /// The slot of ring index `idx`: its operation and its status.
    #[inline(always)]
    fn slot(&self, idx: u16) -> (&SlotCell<Descriptor>, &SlotCell<Status>) {
        // The mask keeps the index inside both slices.
        let i = usize::from(idx & self.mask);
        (&self.ops[i], &self.statuses[i])
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
        unsafe { self.slot(idx).0.write(op) };
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
        let (last, _) = self.slot(user.enq.wrapping_sub(1));
        // SAFETY: the last queued operation is past `submitted`: the owner's slot still.
        let mut op = unsafe { last.read() };
        op.flags |= desc_flags::BATCH_END;
        // SAFETY: as above.
        unsafe { last.write(op) };
        self.submitted.store(user.enq, Ordering::Release);
        user.submitted = user.enq;
        new
    }

    /// Operations finished and not yet reaped (at most `max`), and whether a failure may be
    /// among them (else none is, and no status needs reading).
    #[inline(always)]
    fn ready(&self, user: &UserCursor, max: u16) -> (u16, bool) {
        let done = self.finished.done.load(Ordering::Acquire);
        // Relaxed: the acquire of `done` orders this load after the worker's store of the
        // count, which came before the release of `done`; a count that already covers
        // later operations only makes the owner look at statuses it did not need to.
        let failed = self.finished.failed.load(Ordering::Relaxed);
        (
            done.wrapping_sub(user.reaped).min(max),
            failed != user.failed_reaped,
        )
    }

    /// Takes up to `max` finished operations off the ring, stopping before the first that
    /// failed (DPDK's `rte_dma_completed`): that one stays at the head, for
    /// [`Ring::reap_status`], and `has_error` says so.
    #[inline(always)]
    pub(crate) fn reap_successful(&self, user: &mut UserCursor, max: u16) -> Reaped {
        let (ready, maybe_failed) = self.ready(user, max);
        let mut count = ready;
        let mut has_error = false;
        if maybe_failed {
            for k in 0..ready {
                let (_, status) = self.slot(user.reaped.wrapping_add(k));
                // SAFETY: the operation is before the acquired `done`: the worker wrote its
                // status, if it failed, before releasing `done`, and touches the slot again
                // only once it is submitted anew.
                if !unsafe { status.read() }.is_success() {
                    count = k;
                    has_error = true;
                    break;
                }
            }
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
        let room = u16::try_from(out.len()).unwrap_or(u16::MAX);
        let (ready, maybe_failed) = self.ready(user, room);
        let out = &mut out[..usize::from(ready)];
        let mut errors = 0;
        if maybe_failed {
            for (k, slot_status) in out.iter_mut().enumerate() {
                let (_, status) = self.slot(user.reaped.wrapping_add(k as u16));
                // SAFETY: as in `reap_successful`: before the acquired `done`.
                *slot_status = unsafe { status.read() };
                if !slot_status.is_success() {
                    errors += 1;
                    // SAFETY: the operation is reaped here: its slot is the owner's until it
                    // submits the slot again, with a release the worker acquires.
                    unsafe { status.write(Status::Successful) };
                }
            }
        } else {
            out.fill(Status::Successful);
        }
        user.reaped = user.reaped.wrapping_add(ready);
        user.failed_reaped = user.failed_reaped.wrapping_add(u32::from(errors));
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
        self.finished.done.load(Ordering::Acquire) == submitted
    }

    /// The two shared indices, for a dump: (submitted, done).
    pub(crate) fn shared_indices(&self) -> (u16, u16) {
        (
            self.submitted.load(Ordering::Acquire),
            self.finished.done.load(Ordering::Acquire),
        )
    }

    // ---- the worker's side ------------------------------------------------------------

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
        let mut finished = 0;
        while finished < n {
            // Read a few descriptors before carrying any out: each slot line comes from the
            // owner's core, and loads issued together wait for their transfers together.
            let mut ops = [Descriptor::EMPTY; READ_AHEAD];
            let chunk = (n - finished).min(READ_AHEAD as u16);
            for (j, op) in ops[..usize::from(chunk)].iter_mut().enumerate() {
                let (op_cell, _) = self.slot(worker.done.wrapping_add(j as u16));
                // SAFETY: the operation is before the acquired `submitted`: the owner wrote
                // it before releasing `submitted`, and writes the slot again only once `done`
                // is past it, which this side has not published yet.
                *op = unsafe { op_cell.read() };
            }
            for op in &ops[..usize::from(chunk)] {
                let status = if worker.skipping {
                    Status::NotAttempted
                } else if op.has(desc_flags::FENCE) && worker.failed_in_batch {
                    worker.skipping = true;
                    Status::NotAttempted
                } else {
                    execute(op)
                };
                if !status.is_success() {
                    worker.failed_in_batch = true;
                    let (_, status_cell) = self.slot(worker.done);
                    // SAFETY: as above: the slot is the worker's until `done` is published
                    // past it (its status reads `Successful`: the owner reset it when it
                    // reaped the slot's last failure).
                    unsafe { status_cell.write(status) };
                    worker.failed = worker.failed.wrapping_add(1);
                    // Relaxed: published by the release of `done` below.
                    self.finished.failed.store(worker.failed, Ordering::Relaxed);
                }
                if op.has(desc_flags::BATCH_END) {
                    worker.failed_in_batch = false;
                    worker.skipping = false;
                }
                worker.done = worker.done.wrapping_add(1);
                finished += 1;
                if finished % PUBLISH_EVERY == 0 || finished == n {
                    self.finished.done.store(worker.done, Ordering::Release);
                }
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
