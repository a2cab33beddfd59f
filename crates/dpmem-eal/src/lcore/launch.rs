//! Running work on worker lcores (DPDK's `rte_eal_remote_launch`, `rte_eal_wait_lcore`,
//! `rte_eal_mp_remote_launch`, `rte_eal_mp_wait_lcore`).
//!
//! Each worker owns a [`WorkerSlot`]: a small state machine under a mutex, with one condition
//! variable both sides wait on. `Idle → Launched` (the launcher hands work over) `→ Running`
//! (the worker took it) `→ Finished` (the result waits to be collected) `→ Idle` (a wait
//! collected it). Unlike DPDK, a finished but uncollected lcore counts as busy, so a second
//! launch cannot silently throw away a result — or a panic.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::LcoreError;

pub(crate) type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;
/// What a launch produced: the work's return value, or its panic message.
pub(crate) type Outcome = Result<Box<dyn Any + Send>, String>;

pub(crate) enum SlotState {
    /// The thread is starting and has not pinned itself yet.
    Starting,
    /// The thread could not become its lcore and is ending.
    StartFailed(LcoreError),
    Idle,
    Launched(Job),
    Running,
    Finished(Outcome),
    /// The EAL is going away; the thread ends once it sees this.
    Stopping,
}

/// The mailbox between the launching side and one worker thread.
pub(crate) struct WorkerSlot {
    pub lcore: u32,
    state: Mutex<Slot>,
    changed: Condvar,
}

pub(crate) struct Slot {
    pub state: SlotState,
    /// Counts launches, so a [`Launch`] can tell its own result from a later launch's.
    pub generation: u64,
    /// Generation of the result in `Finished`.
    pub finished_generation: u64,
}

impl std::fmt::Debug for WorkerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSlot")
            .field("lcore", &self.lcore)
            .finish()
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

impl WorkerSlot {
    pub fn new(lcore: u32) -> Self {
        Self {
            lcore,
            state: Mutex::new(Slot {
                state: SlotState::Starting,
                generation: 0,
                finished_generation: 0,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Slot> {
        // Work runs outside the lock and its panics are caught, so the state is never torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Slot>) -> MutexGuard<'a, Slot> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, mut guard: MutexGuard<'_, Slot>, state: SlotState) {
        guard.state = state;
        drop(guard);
        self.changed.notify_all();
    }

    /// Worker side: reports whether the thread became its lcore.
    pub fn report_start(&self, result: Result<(), LcoreError>) {
        let guard = self.lock();
        match result {
            Ok(()) => self.set(guard, SlotState::Idle),
            Err(e) => self.set(guard, SlotState::StartFailed(e)),
        }
    }

    /// Launcher side: waits until the worker has reported its start.
    pub fn await_start(&self) -> Result<(), LcoreError> {
        let mut guard = self.lock();
        loop {
            match &guard.state {
                SlotState::Starting => guard = self.wait(guard),
                SlotState::StartFailed(e) => return Err(e.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Worker side: runs launched work until told to stop.
    pub fn serve(&self) {
        loop {
            let mut guard = self.lock();
            let job = loop {
                match std::mem::replace(&mut guard.state, SlotState::Running) {
                    SlotState::Launched(job) => break job,
                    SlotState::Stopping => {
                        guard.state = SlotState::Stopping;
                        return;
                    }
                    other => {
                        guard.state = other;
                        guard = self.wait(guard);
                    }
                }
            };
            drop(guard);
            self.changed.notify_all();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job))
                .map_err(|payload| panic_message(payload.as_ref()));
            let mut guard = self.lock();
            guard.finished_generation = guard.generation;
            // A stop request that arrived meanwhile wins: nobody will collect the result.
            if !matches!(guard.state, SlotState::Stopping) {
                self.set(guard, SlotState::Finished(outcome));
            }
        }
    }

    /// Hands `job` to an idle worker; returns the launch's generation.
    pub fn launch(&self, guard: &mut MutexGuard<'_, Slot>, job: Job) -> u64 {
        guard.generation += 1;
        guard.state = SlotState::Launched(job);
        guard.generation
    }

    pub fn busy_reason(state: &SlotState) -> Option<&'static str> {
        match state {
            SlotState::Idle => None,
            SlotState::Launched(_) | SlotState::Running => Some("work launched earlier is running"),
            SlotState::Finished(_) => Some("the result of the previous launch was not collected"),
            SlotState::Starting | SlotState::StartFailed(_) => Some("its thread is not ready"),
            SlotState::Stopping => Some("its EAL is shutting down"),
        }
    }

    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits for the current launch to finish and collects its outcome; `None` when the
    /// lcore was idle (nothing to wait for). With `generation`, only that launch's result is
    /// taken.
    pub fn collect(&self, generation: Option<u64>) -> Result<Option<Outcome>, LcoreError> {
        let mut guard = self.lock();
        loop {
            match &guard.state {
                SlotState::Launched(_) | SlotState::Running | SlotState::Starting => {
                    if generation.is_some_and(|g| g != guard.generation) {
                        return Err(LcoreError::ResultTaken { lcore: self.lcore });
                    }
                    guard = self.wait(guard);
                }
                SlotState::Finished(_) => {
                    if generation.is_some_and(|g| g != guard.finished_generation) {
                        return Err(LcoreError::ResultTaken { lcore: self.lcore });
                    }
                    let SlotState::Finished(outcome) =
                        std::mem::replace(&mut guard.state, SlotState::Idle)
                    else {
                        unreachable!("matched Finished above");
                    };
                    drop(guard);
                    self.changed.notify_all();
                    return Ok(Some(outcome));
                }
                SlotState::Idle => {
                    return match generation {
                        Some(_) => Err(LcoreError::ResultTaken { lcore: self.lcore }),
                        None => Ok(None),
                    }
                }
                SlotState::StartFailed(_) | SlotState::Stopping => return Err(LcoreError::EalGone),
            }
        }
    }
}

/// Work launched on one worker lcore; [`Launch::wait`] gives its result.
///
/// Dropping it without waiting leaves the result for
/// [`LcoreThreads::wait_lcore`](super::LcoreThreads::wait_lcore).
#[must_use = "the lcore stays busy until its result is collected"]
pub struct Launch<R> {
    pub(crate) slot: Arc<WorkerSlot>,
    pub(crate) generation: u64,
    pub(crate) _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Launch<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("lcore", &self.slot.lcore)
            .field("generation", &self.generation)
            .finish()
    }
}

impl<R: 'static> Launch<R> {
    /// The lcore the work runs on.
    pub fn lcore(&self) -> u32 {
        self.slot.lcore
    }

    /// Waits for the work to end: its return value, or [`LcoreError::Panicked`] with the
    /// panic message. The lcore is idle afterwards.
    pub fn wait(self) -> Result<R, LcoreError> {
        let lcore = self.slot.lcore;
        match self.slot.collect(Some(self.generation))? {
            Some(Ok(value)) => value
                .downcast::<R>()
                .map(|b| *b)
                .map_err(|_| LcoreError::ResultTaken { lcore }),
            Some(Err(message)) => Err(LcoreError::Panicked { lcore, message }),
            None => Err(LcoreError::ResultTaken { lcore }),
        }
    }
}

/// Whether [`LcoreThreads::mp_remote_launch`](super::LcoreThreads::mp_remote_launch) also
/// runs the work on the calling (main) thread (DPDK's `rte_rmt_call_main_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainLcore {
    Skip,
    Call,
}

/// Work launched on every worker (and perhaps run on the main lcore).
#[must_use = "the lcores stay busy until their results are collected"]
#[derive(Debug)]
pub struct MpLaunch<R> {
    pub(crate) workers: Vec<Launch<R>>,
    /// The main lcore's own run, done before `mp_remote_launch` returned.
    pub(crate) main: Option<(u32, Result<R, LcoreError>)>,
}

impl<R: 'static> MpLaunch<R> {
    /// Waits for every worker; results ascend by lcore id, the main lcore's among them.
    pub fn wait(self) -> Vec<(u32, Result<R, LcoreError>)> {
        let mut results: Vec<(u32, Result<R, LcoreError>)> = self
            .workers
            .into_iter()
            .map(|l| (l.lcore(), l.wait()))
            .collect();
        results.extend(self.main);
        results.sort_by_key(|(lcore, _)| *lcore);
        results
    }
}

/// Runs `f` on the calling thread the way a worker would: a panic becomes an error.
pub(crate) fn run_caught<R>(lcore: u32, f: impl FnOnce() -> R) -> Result<R, LcoreError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| LcoreError::Panicked {
        lcore,
        message: panic_message(payload.as_ref()),
    })
}
