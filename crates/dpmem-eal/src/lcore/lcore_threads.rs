//! The lcore side of one EAL instance: its table, its worker threads, and the operations on
//! them (roles, iteration, launch, wait, registration).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

use dpmem_sys::cpu_topology::CpuTopology;
use dpmem_sys::thread::NativeThread;

use super::error::LcoreError;
use super::launch::{run_caught, Job, Launch, MainLcore, MpLaunch, SlotState, WorkerSlot};
use super::registry::LcoreRegistry;
use super::table::{build_table, LcoreInfo, LcoreRole};
use super::thread_local;
use crate::error::EalError;
use crate::memory::{Memory, MemoryMode, PageRequest, ProcessRole};
use crate::options::{LcoreMap, MAX_LCORE};
use crate::socket::Socket;

/// What waiting on an lcore gives: the untyped result of its work (downcast it to the
/// closure's return type; work launched in a [`LcoreThreads::scope`] gives `()` here, its
/// value going to [`ScopedLaunch::join`](super::ScopedLaunch::join)), `None` when the lcore
/// was idle, or why there is none.
pub type WaitResult = Result<Option<Box<dyn Any + Send>>, LcoreError>;

/// What [`LcoreThreads::start`] needs from the EAL's initialisation.
#[derive(Debug)]
pub(crate) struct LcoreSetup<'a> {
    pub lcores: &'a LcoreMap,
    pub main_lcore: u32,
    pub topology: &'a CpuTopology,
    /// Pin threads for real (false on a fake sysfs root, whose CPUs are imaginary).
    pub pinning: bool,
    /// `--huge-worker-stack`: `Some(None)` for the system's default size.
    pub huge_worker_stack_kb: Option<Option<u64>>,
    /// The calling thread's affinity before the EAL pinned it (control threads start there).
    pub original_affinity: BTreeSet<u32>,
}

#[derive(Debug)]
enum WorkerThread {
    Std(std::thread::JoinHandle<()>),
    /// Runs on hugepage memory; joined before that memory goes.
    HugeStack(NativeThread),
}

impl WorkerThread {
    fn join(self) {
        match self {
            // The worker catches the panics of launched work; a panic escaping it would be a
            // dpmem bug, which the join cannot fix either.
            WorkerThread::Std(handle) => {
                let _ = handle.join();
            }
            WorkerThread::HugeStack(thread) => thread.join(),
        }
    }
}

#[derive(Debug)]
struct Worker {
    slot: Arc<WorkerSlot>,
    thread: Option<WorkerThread>,
    /// Start of the hugepage stack, if the worker runs on one.
    stack_va: Option<usize>,
}

/// See [`LcoreThreads::lcore_id_probe`].
#[derive(Debug, Clone, Copy)]
pub struct LcoreIdProbe<'a> {
    registry: &'a LcoreRegistry,
}

impl LcoreIdProbe<'_> {
    /// The calling thread's lcore id in the probe's EAL, or
    /// [`LCORE_ID_ANY`](super::LCORE_ID_ANY).
    #[inline(always)]
    pub fn lcore_id(self) -> u32 {
        thread_local::lcore_id_in_live(self.registry)
    }
}

/// The lcores of one EAL: table, worker threads, launch and registration.
#[derive(Debug)]
pub struct LcoreThreads {
    registry: Arc<LcoreRegistry>,
    workers: BTreeMap<u32, Worker>,
    /// CPUs control threads run on.
    control_cpus: BTreeSet<u32>,
    stopped: bool,
}

impl LcoreThreads {
    /// Starts one thread per worker lcore, each pinned to its CPU set (and on a hugepage stack
    /// with `--huge-worker-stack`), then makes the calling thread the main lcore. On failure
    /// every thread started so far is stopped and joined: nothing is left running.
    pub(crate) fn start(setup: LcoreSetup<'_>, memory: &Memory) -> Result<LcoreThreads, EalError> {
        let table = build_table(setup.lcores, setup.main_lcore, setup.topology);
        let main_cpus = table
            .iter()
            .find(|i| i.role == LcoreRole::Main)
            .map(|i| i.cpus.clone())
            .ok_or(LcoreError::UnknownLcore {
                lcore: setup.main_lcore,
            })?;
        let lcore_cpus: BTreeSet<u32> = table.iter().flat_map(|i| i.cpus.iter().copied()).collect();
        // DPDK's rule: control threads get what the data plane leaves of the original CPUs,
        // and share the main lcore's CPUs when it leaves nothing.
        let mut control_cpus: BTreeSet<u32> = setup
            .original_affinity
            .difference(&lcore_cpus)
            .copied()
            .collect();
        if control_cpus.is_empty() {
            control_cpus = main_cpus;
        }
        let registry = Arc::new(LcoreRegistry::new(
            table,
            setup.main_lcore,
            setup.topology.clone(),
            setup.pinning,
        ));
        let mut threads = LcoreThreads {
            registry,
            workers: BTreeMap::new(),
            control_cpus,
            stopped: false,
        };
        // Dropping `threads` on an error path stops and joins what was started.
        threads.start_workers(setup.huge_worker_stack_kb, memory)?;
        thread_local::enter_main(&threads.registry)?;
        Ok(threads)
    }

    fn start_workers(
        &mut self,
        huge_stack_kb: Option<Option<u64>>,
        memory: &Memory,
    ) -> Result<(), EalError> {
        let workers: Vec<LcoreInfo> = self
            .registry
            .configured
            .values()
            .filter(|i| i.role == LcoreRole::Worker)
            .cloned()
            .collect();
        for info in workers {
            let lcore = info.lcore_id;
            let slot = Arc::new(WorkerSlot::new(lcore));
            let registry = self.registry.clone();
            let worker_slot = slot.clone();
            let work = move || {
                dpmem_sys::thread::set_current_name(&format!("dpmem-lcore-{lcore}"));
                match thread_local::enter_worker(&registry, lcore) {
                    Ok(()) => {
                        worker_slot.report_start(Ok(()));
                        worker_slot.serve();
                    }
                    Err(e) => worker_slot.report_start(Err(e)),
                }
            };
            let (thread, stack_va) = match huge_stack_kb {
                None => {
                    let handle = std::thread::Builder::new()
                        .name(format!("dpmem-lcore-{lcore}"))
                        .spawn(work)
                        .map_err(|e| LcoreError::WorkerStart {
                            lcore,
                            reason: e.to_string(),
                        })?;
                    (WorkerThread::Std(handle), None)
                }
                Some(kb) => {
                    let (va, len) = huge_stack(memory, kb, info.socket, lcore)?;
                    // SAFETY: `[va, va+len)` is hugepage memory mapped just now for this stack
                    // alone, page-aligned; the EAL joins this thread (`shutdown`, or the drop
                    // of `NativeThread`) before `Memory` unmaps it, since `Eal` stops its lcore
                    // threads before its memory goes.
                    let thread =
                        unsafe { NativeThread::spawn_on_stack(va as *mut u8, len, Box::new(work)) }
                            .map_err(|e| {
                                LcoreError::sys(format!("start worker lcore {lcore}"), e)
                            })?;
                    (WorkerThread::HugeStack(thread), Some(va))
                }
            };
            self.workers.insert(
                lcore,
                Worker {
                    slot: slot.clone(),
                    thread: Some(thread),
                    stack_va,
                },
            );
            slot.await_start()?;
        }
        Ok(())
    }

    /// Stops the worker threads (after the work they run returns) and gives the main thread
    /// its affinity back when called there. Idempotent; dropping does it too.
    pub fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.registry.mark_dead();
        for worker in self.workers.values() {
            let guard = worker.slot.lock();
            if !matches!(guard.state, SlotState::StartFailed(_)) {
                worker.slot.set(guard, SlotState::Stopping);
            }
        }
        for worker in self.workers.values_mut() {
            if let Some(thread) = worker.thread.take() {
                thread.join();
            }
        }
        thread_local::leave_main(&self.registry);
    }

    pub(crate) fn registry(&self) -> &Arc<LcoreRegistry> {
        &self.registry
    }

    pub(crate) fn control_cpus_set(&self) -> &BTreeSet<u32> {
        &self.control_cpus
    }

    /// The main lcore (`rte_get_main_lcore`).
    pub fn main_lcore(&self) -> u32 {
        self.registry.main_lcore
    }

    /// Number of main and worker lcores (`rte_lcore_count`; registered threads not counted).
    pub fn lcore_count(&self) -> usize {
        self.registry.configured.len()
    }

    /// The role of any lcore id (`rte_eal_lcore_role`).
    pub fn role(&self, lcore: u32) -> LcoreRole {
        self.registry.role(lcore)
    }

    /// Whether `lcore` is a main or worker lcore (`rte_lcore_is_enabled`).
    pub fn is_enabled(&self, lcore: u32) -> bool {
        self.registry.configured.contains_key(&lcore)
    }

    /// The socket of `lcore`'s CPU set, [`Socket::Any`] when it spans nodes; `None` for an id
    /// not in use (`rte_lcore_to_socket_id`).
    pub fn lcore_socket(&self, lcore: u32) -> Option<Socket> {
        self.lcore_info(lcore).map(|i| i.socket)
    }

    /// The lowest CPU of `lcore`'s set (`rte_lcore_to_cpu_id`).
    pub fn lcore_cpu(&self, lcore: u32) -> Option<u32> {
        self.lcore_info(lcore).map(|i| i.cpu_id)
    }

    /// The CPU set of `lcore` (`rte_lcore_cpuset`).
    pub fn lcore_cpus(&self, lcore: u32) -> Option<BTreeSet<u32>> {
        self.lcore_info(lcore).map(|i| i.cpus)
    }

    /// Everything about one lcore in use (configured or registered).
    pub fn lcore_info(&self, lcore: u32) -> Option<LcoreInfo> {
        match self.registry.configured.get(&lcore) {
            Some(info) => Some(info.clone()),
            None => self
                .registry
                .snapshot()
                .into_iter()
                .find(|i| i.lcore_id == lcore),
        }
    }

    /// Every lcore in use, ascending: main, workers and registered threads.
    pub fn table(&self) -> Vec<LcoreInfo> {
        self.registry.snapshot()
    }

    /// The next enabled lcore after `after` (`None` starts from the beginning), skipping the
    /// main lcore if asked, wrapping past the last id if asked (`rte_get_next_lcore`).
    /// `None` when there is none — where DPDK returns `RTE_MAX_LCORE`, or, wrapping with only
    /// the main lcore and `skip_main`, loops forever.
    pub fn next_lcore(&self, after: Option<u32>, skip_main: bool, wrap: bool) -> Option<u32> {
        let eligible = |l: &u32| !(skip_main && *l == self.registry.main_lcore);
        let start = after.map_or(0, |a| a.saturating_add(1));
        let configured = &self.registry.configured;
        configured
            .range(start..)
            .map(|(l, _)| *l)
            .find(eligible)
            .or_else(|| {
                wrap.then(|| configured.keys().copied().find(eligible))
                    .flatten()
            })
            .filter(|&l| l < MAX_LCORE)
    }

    /// Main and worker lcore ids, ascending (`RTE_LCORE_FOREACH`).
    pub fn lcore_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.registry.configured.keys().copied()
    }

    /// Worker lcore ids, ascending (`RTE_LCORE_FOREACH_WORKER`).
    pub fn worker_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.workers.keys().copied()
    }

    /// The calling thread's lcore id in this EAL, or [`LCORE_ID_ANY`](super::LCORE_ID_ANY).
    #[inline]
    pub fn current_lcore_id(&self) -> u32 {
        thread_local::lcore_id_in(&self.registry)
    }

    /// A handle that answers [`current_lcore_id`](Self::current_lcore_id) for as long as it is
    /// borrowed, for per-lcore fast paths (the mempool's caches) that ask on every call: it
    /// skips the walk from the EAL to its registry and the liveness check (the borrow keeps
    /// the EAL alive).
    pub fn lcore_id_probe(&self) -> LcoreIdProbe<'_> {
        LcoreIdProbe {
            registry: &self.registry,
        }
    }

    /// The bottom address of worker `lcore`'s hugepage stack (with `--huge-worker-stack`).
    pub fn worker_stack(&self, lcore: u32) -> Option<usize> {
        self.workers.get(&lcore).and_then(|w| w.stack_va)
    }

    fn worker_slot(&self, lcore: u32) -> Result<&Arc<WorkerSlot>, LcoreError> {
        if let Some(worker) = self.workers.get(&lcore) {
            return Ok(&worker.slot);
        }
        Err(match self.registry.role(lcore) {
            LcoreRole::Main => LcoreError::MainLcore { lcore },
            LcoreRole::Off => LcoreError::UnknownLcore { lcore },
            role => LcoreError::NotWorker { lcore, role },
        })
    }

    /// Runs `f` on worker `lcore` (`rte_eal_remote_launch`). Fails with
    /// [`LcoreError::Busy`] when the lcore runs earlier work or holds an uncollected result,
    /// and for the main lcore, registered threads' ids and ids not in use.
    ///
    /// Work that borrows from the caller goes through [`LcoreThreads::scope`] instead.
    pub fn remote_launch<R, F>(&self, lcore: u32, f: F) -> Result<Launch<R>, LcoreError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (slot, generation) = self.launch_job(
            lcore,
            Box::new(move || Box::new(f()) as Box<dyn Any + Send>),
        )?;
        Ok(Launch {
            slot,
            generation,
            _result: PhantomData,
        })
    }

    /// Hands `job` to idle worker `lcore`: its slot and the launch's generation.
    pub(super) fn launch_job(
        &self,
        lcore: u32,
        job: Job,
    ) -> Result<(Arc<WorkerSlot>, u64), LcoreError> {
        let slot = self.worker_slot(lcore)?;
        let mut guard = slot.lock();
        if let Some(reason) = WorkerSlot::busy_reason(&guard.state) {
            return Err(LcoreError::Busy { lcore, reason });
        }
        let generation = slot.launch(&mut guard, job);
        drop(guard);
        slot.notify();
        Ok((slot.clone(), generation))
    }

    /// Waits for `lcore`'s current work and collects its result (`rte_eal_wait_lcore`):
    /// `Ok(None)` when the lcore was idle, [`LcoreError::Panicked`] when the work panicked.
    pub fn wait_lcore(&self, lcore: u32) -> WaitResult {
        let slot = self.worker_slot(lcore)?;
        if self.current_lcore_id() == lcore {
            return Err(LcoreError::WaitOnSelf { lcore });
        }
        match slot.collect(None)? {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(value)),
            Some(Err(message)) => Err(LcoreError::Panicked { lcore, message }),
        }
    }

    /// Runs `f(lcore)` on every worker, and on the calling thread as the main lcore with
    /// [`MainLcore::Call`] (`rte_eal_mp_remote_launch`). All workers must be idle: if one is
    /// busy nothing is launched.
    pub fn mp_remote_launch<R, F>(&self, f: F, main: MainLcore) -> Result<MpLaunch<R>, LcoreError>
    where
        F: Fn(u32) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let f = Arc::new(f);
        // Lock every slot (always in lcore order, so two launchers cannot deadlock), check all
        // are idle, and only then hand the work out.
        let mut guards: Vec<_> = self
            .workers
            .iter()
            .map(|(&lcore, w)| (lcore, &w.slot, w.slot.lock()))
            .collect();
        for (lcore, _, guard) in &guards {
            if let Some(reason) = WorkerSlot::busy_reason(&guard.state) {
                return Err(LcoreError::Busy {
                    lcore: *lcore,
                    reason,
                });
            }
        }
        let mut launches = Vec::with_capacity(guards.len());
        for (lcore, slot, guard) in &mut guards {
            let (f, lcore) = (f.clone(), *lcore);
            let generation = slot.launch(
                guard,
                Box::new(move || Box::new(f(lcore)) as Box<dyn Any + Send>),
            );
            launches.push(Launch {
                slot: (*slot).clone(),
                generation,
                _result: PhantomData,
            });
        }
        drop(guards);
        for launch in &launches {
            launch.slot.notify();
        }
        let main = (main == MainLcore::Call).then(|| {
            let lcore = self.registry.main_lcore;
            (lcore, run_caught(lcore, || f(lcore)))
        });
        Ok(MpLaunch {
            workers: launches,
            main,
        })
    }

    /// Waits for every worker and collects the results (`rte_eal_mp_wait_lcore`), ascending
    /// by lcore id; idle workers give `Ok(None)`.
    pub fn mp_wait_lcore(&self) -> Vec<(u32, WaitResult)> {
        self.worker_ids()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|lcore| (lcore, self.wait_lcore(lcore)))
            .collect()
    }

    /// Lends the calling thread a free lcore id of this EAL (`rte_thread_register`); its
    /// affinity is kept and its socket recorded from it. Threads that end without
    /// [`unregister_thread`](Self::unregister_thread) give the id back as they exit.
    pub fn register_thread(&self) -> Result<u32, LcoreError> {
        thread_local::register(&self.registry)
    }

    /// Gives back the calling thread's registered lcore id (`rte_thread_unregister`); the
    /// thread then sees [`LCORE_ID_ANY`](super::LCORE_ID_ANY) for this EAL.
    pub fn unregister_thread(&self) -> Result<u32, LcoreError> {
        thread_local::unregister(&self.registry)
    }
}

impl Drop for LcoreThreads {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Maps a worker's stack from hugepages on `socket` (any socket when the lcore spans several):
/// `kb` KiB, or the system's default thread stack size, rounded up to whole pages of the
/// smallest hugepage size. Returns `(va, len)`.
fn huge_stack(
    memory: &Memory,
    kb: Option<u64>,
    socket: Socket,
    lcore: u32,
) -> Result<(usize, usize), EalError> {
    if memory.role() == ProcessRole::Secondary {
        return Err(EalError::Unsupported(
            "--huge-worker-stack in a secondary process: only the primary maps pages yet".into(),
        ));
    }
    let bytes = kb.map_or(dpmem_sys::thread::default_stack_size() as u64, |kb| {
        kb * 1024
    });
    let page_size =
        memory.page_sizes().into_iter().next().ok_or_else(|| {
            EalError::Unsupported("--huge-worker-stack: no hugepage memory".into())
        })?;
    let count = bytes.div_ceil(page_size) as usize;
    let mut request = PageRequest::new(page_size, socket, count);
    // Legacy memory only grows by pinned pages; the pages go back with the EAL's memory.
    request.pinned = memory.mode() != MemoryMode::Dynamic;
    let run = memory.map_pages(request).map_err(|e| match e {
        EalError::OutOfMemory { reason, .. } => EalError::OutOfMemory {
            pages: count,
            page_size,
            socket,
            reason: format!("stack of worker lcore {lcore}: {reason}"),
        },
        e @ EalError::NodeShortfall { .. } => EalError::OutOfMemory {
            pages: count,
            page_size,
            socket,
            reason: format!("stack of worker lcore {lcore}: {e}"),
        },
        other => other,
    })?;
    Ok((run.va, run.len))
}
