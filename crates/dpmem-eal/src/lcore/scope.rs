//! Scoped launching: work on worker lcores that borrows from the launching code, as
//! `std::thread::scope` lets threads borrow (DPDK has no counterpart: its launched functions
//! take a `void *` the caller must keep alive by hand).
//!
//! [`LcoreThreads::scope`] runs a closure that may [`LcoreScope::launch`] work on worker
//! lcores; that work may borrow anything that outlives the call — the `Eal`, pools, rings,
//! locals of the caller — because `scope` does not return before every launch made in it has
//! finished. Results come back through [`ScopedLaunch::join`], a panic as
//! [`LcoreError::Panicked`]; a launch nobody joined is waited for when the scope ends, and if
//! it panicked, `scope` panics with its message once every launch has finished (as
//! `std::thread::scope` does).

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::LcoreError;
use super::launch::{Job, WorkerSlot};
use super::lcore_threads::LcoreThreads;

/// Where a scoped launch leaves its return value for [`ScopedLaunch::join`].
type ResultCell<R> = Arc<Mutex<Option<R>>>;

/// A launch made in a scope, as the scope keeps track of it.
struct Launched {
    slot: Arc<WorkerSlot>,
    generation: u64,
    /// Set once [`ScopedLaunch::join`] collected the outcome.
    joined: Arc<Mutex<bool>>,
}

/// The scope of [`LcoreThreads::scope`]: launches made through it may borrow anything that
/// lives for `'env`.
pub struct LcoreScope<'scope, 'env: 'scope> {
    threads: &'env LcoreThreads,
    launched: Mutex<Vec<Launched>>,
    /// Invariant in both lifetimes, as `std::thread::Scope` is: a launch's borrows can neither
    /// be shortened to let the scope end early nor lengthened past `'env`.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl std::fmt::Debug for LcoreScope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let launched = self.launched.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("LcoreScope")
            .field("launched", &launched.len())
            .finish()
    }
}

/// Work launched on a worker lcore within a scope; [`ScopedLaunch::join`] gives its result.
#[must_use = "an unjoined launch is waited for when the scope ends, and its panic re-raised"]
pub struct ScopedLaunch<'scope, R> {
    slot: Arc<WorkerSlot>,
    generation: u64,
    result: ResultCell<R>,
    joined: Arc<Mutex<bool>>,
    _scope: PhantomData<&'scope ()>,
}

impl<R> std::fmt::Debug for ScopedLaunch<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedLaunch")
            .field("lcore", &self.slot.lcore)
            .field("generation", &self.generation)
            .finish()
    }
}

impl LcoreThreads {
    /// Runs `f` with a scope in which work can be launched on worker lcores that borrows from
    /// the caller, and returns what `f` returns once every such launch has finished.
    ///
    /// ```no_run
    /// # let eal = dpmem_eal::Eal::init(["app", "-l", "0-1", "--no-huge", "-m", "16"])?;
    /// let threads = eal.lcore_threads();
    /// let worker = threads.worker_ids().next().expect("-l 0-1 has a worker");
    /// let totals = [1u64, 2, 3];
    /// let sum = threads.scope(|s| {
    ///     // The work borrows `totals` and the EAL: no `'static`, no leak.
    ///     let on_worker = s.launch(worker, || totals.iter().sum::<u64>() + eal.heaps().sockets().len() as u64)?;
    ///     on_worker.join()
    /// })?;
    /// assert!(sum >= 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A launch that was not joined and panicked makes `scope` panic, after every launch has
    /// finished; a panic of `f` itself is re-raised the same way.
    pub fn scope<'env, F, T>(&'env self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope LcoreScope<'scope, 'env>) -> T,
    {
        let scope = LcoreScope {
            threads: self,
            launched: Mutex::new(Vec::new()),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
        // Whatever happened, no launch may outlive the borrows it was given.
        let unjoined_panic = scope.finish_all();
        match outcome {
            Err(payload) => panic::resume_unwind(payload),
            Ok(_) if unjoined_panic.is_some() => {
                let (lcore, message) = unjoined_panic.expect("checked above");
                panic!("work launched on lcore {lcore} in a scope panicked and was not joined: {message}")
            }
            Ok(value) => value,
        }
    }
}

impl<'scope, 'env> LcoreScope<'scope, 'env> {
    /// Runs `f` on worker `lcore` (as [`LcoreThreads::remote_launch`] does), letting it borrow
    /// anything that outlives the scope. Fails, launching nothing, when the lcore is busy, is
    /// the main lcore, or is not a worker of this EAL.
    pub fn launch<F, R>(
        &'scope self,
        lcore: u32,
        f: F,
    ) -> Result<ScopedLaunch<'scope, R>, LcoreError>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: Send + 'scope,
    {
        let result: ResultCell<R> = Arc::new(Mutex::new(None));
        let cell = result.clone();
        let job: Box<dyn FnOnce() -> Box<dyn Any + Send> + Send + 'scope> = Box::new(move || {
            let value = f();
            *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
            Box::new(()) as Box<dyn Any + Send>
        });
        // SAFETY: only the lifetime bound of the boxed closure changes (same layout). What it
        // borrows lives for 'scope, and the closure is run and dropped before 'scope ends:
        // every launch made here is recorded below before this returns, and `scope` waits for
        // each recorded launch to finish — the worker drops the job before it reports the
        // launch finished — before it returns, whether `f` returned or panicked.
        let job: Job = unsafe {
            std::mem::transmute::<Box<dyn FnOnce() -> Box<dyn Any + Send> + Send + 'scope>, Job>(
                job,
            )
        };
        // The record is made under its lock together with the launch, so a launch can never
        // run unrecorded.
        let mut launched = self.launched.lock().unwrap_or_else(PoisonError::into_inner);
        let (slot, generation) = self.threads.launch_job(lcore, job)?;
        let joined = Arc::new(Mutex::new(false));
        launched.push(Launched {
            slot: slot.clone(),
            generation,
            joined: joined.clone(),
        });
        Ok(ScopedLaunch {
            slot,
            generation,
            result,
            joined,
            _scope: PhantomData,
        })
    }

    /// The lcores of the EAL the scope launches on (ids, roles, sockets).
    pub fn lcore_threads(&self) -> &'env LcoreThreads {
        self.threads
    }

    /// Waits for every launch nobody joined; the first panic among them, if any.
    ///
    /// Work running in the scope may launch more (the scope is `Sync`), so this takes the
    /// list again after each pass until a pass finds it empty: only running work adds to
    /// it, and a pass waits for all of it, so once a pass begins with an empty list nothing
    /// can be added any more.
    fn finish_all(&self) -> Option<(u32, String)> {
        let mut first_panic = None;
        loop {
            let launched =
                std::mem::take(&mut *self.launched.lock().unwrap_or_else(PoisonError::into_inner));
            if launched.is_empty() {
                return first_panic;
            }
            for launch in launched {
                // A join in progress holds this lock until its launch has finished.
                let mut joined = launch.joined.lock().unwrap_or_else(PoisonError::into_inner);
                if *joined {
                    continue;
                }
                *joined = true;
                if let Ok(Some(Err(message))) = launch.slot.collect(Some(launch.generation)) {
                    first_panic.get_or_insert((launch.slot.lcore, message));
                }
            }
        }
    }
}

impl<R> ScopedLaunch<'_, R> {
    /// The lcore the work runs on.
    pub fn lcore(&self) -> u32 {
        self.slot.lcore
    }

    /// Waits for the work to end: its return value, or [`LcoreError::Panicked`] with the
    /// panic message. The lcore is idle afterwards.
    pub fn join(self) -> Result<R, LcoreError> {
        let lcore = self.slot.lcore;
        let outcome = {
            let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
            if *joined {
                // The scope's end collected it first (a handle joined from other work racing
                // the end of its scope).
                return Err(LcoreError::ResultTaken { lcore });
            }
            *joined = true;
            self.slot.collect(Some(self.generation))
        };
        let value = || {
            self.result
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .ok_or(LcoreError::ResultTaken { lcore })
        };
        match outcome {
            Ok(Some(Ok(_))) => value(),
            Ok(Some(Err(message))) => Err(LcoreError::Panicked { lcore, message }),
            // A plain `wait_lcore` collected the outcome first: the work had finished, and
            // its value, unless it panicked, is in the cell it wrote.
            Ok(None) | Err(LcoreError::ResultTaken { .. }) => value(),
            Err(e) => Err(e),
        }
    }
}
