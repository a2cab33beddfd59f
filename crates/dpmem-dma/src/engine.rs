//! What a started device shares between its channels' owners and its worker thread — the
//! rings, their counters, the doorbell and the stop request — and the worker's loop.
//!
//! The worker visits every ring in turn, carrying out what was submitted (up to a budget per
//! ring, so that one busy channel cannot starve another). With nothing to do it spins a
//! while, then sleeps on the doorbell ([`crate::doorbell`]): an idle device takes no core.
//! Asked to stop, it first finishes everything submitted, so once `stop` has joined it the
//! device touches no memory.
//!
//! What an operation does to memory is the [`Executor`]'s business: the software copier on
//! the hardware ([`crate::copier`]), a model of it under loom.

use crate::doorbell::Doorbell;
use crate::ring::descriptor::Descriptor;
use crate::ring::{Ring, WorkerCursor};
use crate::status::Status;
use crate::sync::{spin_wait, AtomicBool, AtomicU64, Ordering};

/// Operations the worker carries out on one ring before it looks at the next.
const BUDGET: u16 = 64;

/// Empty looks at the rings before the worker sleeps: long enough (tens of microseconds)
/// that a channel submitting bursts back to back keeps it awake, short enough that an idle
/// device gives its core back at once.
#[cfg(not(loom))]
const SPINS_BEFORE_SLEEP: u32 = 4096;
/// Under the model, one look, then sleep: the sleep path is what the model must explore.
#[cfg(loom)]
const SPINS_BEFORE_SLEEP: u32 = 1;

/// Carries out one operation.
pub(crate) trait Executor {
    /// Does what `op` says and tells how it went.
    fn execute(&mut self, op: &Descriptor) -> Status;
}

/// A channel's statistics (DPDK's `rte_dma_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DmaStats {
    /// Operations handed to the worker by a doorbell.
    pub submitted: u64,
    /// Operations reported back by `completed` or `completed_status`, failed or not.
    pub completed: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
}

impl DmaStats {
    /// The sum of two channels' statistics.
    pub(crate) fn plus(self, other: DmaStats) -> DmaStats {
        DmaStats {
            submitted: self.submitted + other.submitted,
            completed: self.completed + other.completed,
            errors: self.errors + other.errors,
        }
    }
}

/// A channel's counters: bumped by its owner, read (and reset) by the device from any thread.
#[derive(Debug, Default)]
pub(crate) struct VchanCounters {
    submitted: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
}

impl VchanCounters {
    /// Relaxed: statistics order nothing, and each call adds a whole burst.
    #[inline(always)]
    pub(crate) fn add_submitted(&self, n: u16) {
        if n != 0 {
            self.submitted.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }

    #[inline(always)]
    pub(crate) fn add_completed(&self, n: u16, errors: u16) {
        if n != 0 {
            self.completed.fetch_add(u64::from(n), Ordering::Relaxed);
        }
        if errors != 0 {
            self.errors.fetch_add(u64::from(errors), Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> DmaStats {
        DmaStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        self.submitted.store(0, Ordering::Relaxed);
        self.completed.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
    }
}

/// One channel as both sides share it.
#[derive(Debug)]
pub(crate) struct VchanShared {
    pub(crate) ring: Ring,
    pub(crate) counters: VchanCounters,
}

/// A started device's shared state.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) vchans: Box<[VchanShared]>,
    pub(crate) doorbell: Doorbell,
    /// Set (release, then a doorbell) by `stop`; the worker ends once nothing is pending.
    stop: AtomicBool,
}

impl Engine {
    /// An engine with one ring of `nb_desc` slots per channel, every index at `first`.
    pub(crate) fn new(nb_descs: &[u16], first: u16) -> Engine {
        Engine {
            vchans: nb_descs
                .iter()
                .map(|&n| VchanShared {
                    ring: Ring::starting_at(n, first),
                    counters: VchanCounters::default(),
                })
                .collect(),
            doorbell: Doorbell::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// Asks the worker to finish what was submitted and end.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.doorbell.ring();
    }

    /// The worker's loop; returns when a stop was requested and nothing is pending.
    /// `first` is where every ring's indices started.
    pub(crate) fn run_worker(&self, executor: &mut impl Executor, first: u16) {
        let mut cursors: Vec<WorkerCursor> = self
            .vchans
            .iter()
            .map(|_| WorkerCursor::at(first))
            .collect();
        let mut empty_looks = 0;
        loop {
            if self.serve_all(&mut cursors, executor) {
                empty_looks = 0;
                continue;
            }
            // Acquire: pairs with the release store in `request_stop`.
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            empty_looks += 1;
            if empty_looks < SPINS_BEFORE_SLEEP {
                spin_wait();
                continue;
            }
            // The doorbell's value first, then one more look: a doorbell rung after this
            // look changes the value, and `sleep` then returns at once.
            let seen = self.doorbell.observe();
            if self.serve_all(&mut cursors, executor) {
                empty_looks = 0;
                continue;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            self.doorbell.sleep(seen);
            empty_looks = 0;
        }
    }

    /// One pass over every ring; whether anything was done.
    fn serve_all(&self, cursors: &mut [WorkerCursor], executor: &mut impl Executor) -> bool {
        let mut worked = false;
        for (vchan, cursor) in self.vchans.iter().zip(cursors.iter_mut()) {
            let done = vchan
                .ring
                .process(cursor, BUDGET, |op| executor.execute(op));
            worked |= done != 0;
        }
        worked
    }
}
