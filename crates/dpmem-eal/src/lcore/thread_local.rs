//! What a thread knows about itself: its lcore id in each EAL it belongs to, the CPU set it
//! was restricted to through dpmem, and the socket of that set (DPDK's per-lcore `_lcore_id`,
//! `_cpuset`, `_socket_id`).
//!
//! See the [module documentation](super) for how bindings behave when several EALs coexist.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use dpmem_sys::cpu_topology::{self, CpuTopology};
use dpmem_sys::root::SysRoot;

use super::error::LcoreError;
use super::registry::LcoreRegistry;
use super::table::socket_of;
use super::LCORE_ID_ANY;
use crate::socket::{Socket, SOCKET_ID_ANY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindingKind {
    Main,
    Worker,
    NonEal,
}

/// This thread is `lcore_id` of the EAL owning `registry`.
#[derive(Debug)]
struct Binding {
    registry: Arc<LcoreRegistry>,
    lcore_id: u32,
    kind: BindingKind,
}

#[derive(Debug)]
struct ThreadState {
    /// Newest last. Bindings of dead EALs stay until the next change prunes them; readers
    /// skip them.
    bindings: Vec<Binding>,
    /// The CPU set dpmem restricted this thread to; `None` until it does.
    cpus: Option<BTreeSet<u32>>,
    /// The socket of `cpus`, [`SOCKET_ID_ANY`] when they span nodes or were never set.
    socket_id: i32,
    /// The affinity this thread had before its first live main binding pinned it; restored
    /// when its last main binding goes.
    affinity_before_main: Option<BTreeSet<u32>>,
}

impl ThreadState {
    fn newest_live(&self) -> Option<&Binding> {
        self.bindings.iter().rev().find(|b| b.registry.is_alive())
    }

    fn live_in(&self, instance: u64) -> Option<&Binding> {
        self.bindings
            .iter()
            .find(|b| b.registry.instance == instance && b.registry.is_alive())
    }

    fn prune(&mut self) {
        self.bindings.retain(|b| b.registry.is_alive());
    }

    fn record(&mut self, cpus: BTreeSet<u32>, topology: &CpuTopology) {
        self.socket_id = socket_of(topology, &cpus);
        self.cpus = Some(cpus);
    }
}

impl Drop for ThreadState {
    /// A registered thread that ends without unregistering gives its lcore ids back, so
    /// short-lived threads cannot exhaust them.
    fn drop(&mut self) {
        forget_last_lookup();
        for b in &self.bindings {
            if b.kind == BindingKind::NonEal {
                b.registry.release(b.lcore_id);
            }
        }
    }
}

thread_local! {
    static STATE: RefCell<ThreadState> = const {
        RefCell::new(ThreadState {
            bindings: Vec::new(),
            cpus: None,
            socket_id: SOCKET_ID_ANY,
            affinity_before_main: None,
        })
    };
}

thread_local! {
    /// The answer of the last [`lcore_id_in`]: `(EAL instance, lcore id)`. Fast paths (the
    /// mempool's per-lcore cache) ask it on every call, so it must cost a thread-local read,
    /// not a walk over the bindings. Only this thread changes its bindings, and every change
    /// goes through [`with_state`] or [`leave_main`], which forget the answer.
    static LAST_LOOKUP: Cell<(u64, u32)> = const { Cell::new((NO_INSTANCE, LCORE_ID_ANY)) };
}

/// No EAL instance has this number (instances count up from 0).
const NO_INSTANCE: u64 = u64::MAX;

fn forget_last_lookup() {
    let _ = LAST_LOOKUP.try_with(|c| c.set((NO_INSTANCE, LCORE_ID_ANY)));
}

fn with_state<T>(f: impl FnOnce(&mut ThreadState) -> T) -> T {
    forget_last_lookup();
    STATE.with(|s| f(&mut s.borrow_mut()))
}

fn host_topology() -> &'static CpuTopology {
    static HOST: OnceLock<CpuTopology> = OnceLock::new();
    HOST.get_or_init(|| {
        cpu_topology::discover(&SysRoot::host()).unwrap_or(CpuTopology { cpus: Vec::new() })
    })
}

/// The calling thread's lcore id in the newest live EAL it belongs to, or [`LCORE_ID_ANY`]
/// (DPDK's `rte_lcore_id`).
pub fn lcore_id() -> u32 {
    STATE
        .try_with(|s| {
            s.borrow()
                .newest_live()
                .map_or(LCORE_ID_ANY, |b| b.lcore_id)
        })
        .unwrap_or(LCORE_ID_ANY)
}

/// The calling thread's lcore id in the EAL owning `registry`, or [`LCORE_ID_ANY`].
#[inline]
pub(crate) fn lcore_id_in(registry: &LcoreRegistry) -> u32 {
    if let Ok((instance, lcore)) = LAST_LOOKUP.try_with(Cell::get) {
        // A dead EAL's bindings are dead too, whatever the last answer was.
        if instance == registry.instance && registry.is_alive() {
            return lcore;
        }
    }
    lcore_id_in_slow(registry)
}

/// [`lcore_id_in`] for a registry known to be alive (its EAL is borrowed): one thread-local
/// read and one compare on the fast path.
#[inline(always)]
pub(crate) fn lcore_id_in_live(registry: &LcoreRegistry) -> u32 {
    if let Ok((instance, lcore)) = LAST_LOOKUP.try_with(Cell::get) {
        if instance == registry.instance {
            return lcore;
        }
    }
    lcore_id_in_slow(registry)
}

#[cold]
fn lcore_id_in_slow(registry: &LcoreRegistry) -> u32 {
    let lcore = STATE
        .try_with(|s| {
            s.borrow()
                .live_in(registry.instance)
                .map_or(LCORE_ID_ANY, |b| b.lcore_id)
        })
        .unwrap_or(LCORE_ID_ANY);
    let _ = LAST_LOOKUP.try_with(|c| c.set((registry.instance, lcore)));
    lcore
}

/// The socket of the calling thread's CPU set, or [`Socket::Any`] when it spans nodes or
/// dpmem never restricted this thread (DPDK's `rte_socket_id`).
#[inline]
pub fn socket_id() -> Socket {
    Socket::from_recorded(thread_socket_id())
}

/// [`socket_id`] as the shared tables record sockets, for the allocation paths.
#[inline]
pub(crate) fn thread_socket_id() -> i32 {
    STATE
        .try_with(|s| s.borrow().socket_id)
        .unwrap_or(SOCKET_ID_ANY)
}

/// The CPU set of the calling thread: the one dpmem last restricted it to (its lcore's set,
/// or [`set_thread_affinity`]'s), else the kernel's affinity mask (DPDK's
/// `rte_thread_get_affinity`).
pub fn thread_affinity() -> BTreeSet<u32> {
    let recorded = STATE.try_with(|s| s.borrow().cpus.clone()).ok().flatten();
    recorded.unwrap_or_else(|| dpmem_sys::thread::current_affinity().unwrap_or_default())
}

/// Restricts the calling thread to `cpus` and records the set and its socket for
/// [`thread_affinity`] and [`socket_id`] (DPDK's `rte_thread_set_affinity`). Sockets come
/// from the topology of the newest live EAL this thread belongs to, else the host's.
pub fn set_thread_affinity(cpus: &BTreeSet<u32>) -> Result<(), LcoreError> {
    if cpus.is_empty() {
        return Err(LcoreError::EmptyCpuSet);
    }
    dpmem_sys::thread::set_current_affinity(cpus)
        .map_err(|e| LcoreError::sys("set thread affinity", e))?;
    with_state(|s| {
        let topology = s
            .newest_live()
            .map(|b| b.registry.clone())
            .map(|r| r.topology.clone())
            .unwrap_or_else(|| host_topology().clone());
        s.record(cpus.clone(), &topology);
    });
    Ok(())
}

/// The CPUs an EAL initialised on this thread may use: the affinity the thread had before any
/// live EAL pinned it as a main lcore, so a second EAL sees the same CPUs as the first.
pub(crate) fn original_affinity() -> dpmem_sys::SysResult<BTreeSet<u32>> {
    let saved = with_state(|s| {
        let has_main = s
            .bindings
            .iter()
            .any(|b| b.kind == BindingKind::Main && b.registry.is_alive());
        if has_main {
            s.affinity_before_main.clone()
        } else {
            None
        }
    });
    match saved {
        Some(set) => Ok(set),
        None => dpmem_sys::thread::current_affinity(),
    }
}

fn pin(registry: &LcoreRegistry, cpus: &BTreeSet<u32>) -> Result<(), LcoreError> {
    if registry.pinning {
        dpmem_sys::thread::set_current_affinity(cpus)
            .map_err(|e| LcoreError::sys("pin lcore thread", e))?;
    }
    Ok(())
}

/// Makes the calling thread the EAL's main lcore: pinned to the main lcore's CPU set.
pub(crate) fn enter_main(registry: &Arc<LcoreRegistry>) -> Result<(), LcoreError> {
    let lcore = registry.main_lcore;
    let cpus = registry.configured[&lcore].cpus.clone();
    let before = if registry.pinning {
        Some(original_affinity().map_err(|e| LcoreError::sys("read thread affinity", e))?)
    } else {
        None
    };
    pin(registry, &cpus)?;
    with_state(|s| {
        s.prune();
        if !s.bindings.iter().any(|b| b.kind == BindingKind::Main) {
            s.affinity_before_main = before;
        }
        s.record(cpus, &registry.topology);
        s.bindings.push(Binding {
            registry: registry.clone(),
            lcore_id: lcore,
            kind: BindingKind::Main,
        });
    });
    Ok(())
}

/// Undoes [`enter_main`] when called on the thread that entered; elsewhere does nothing (the
/// binding is dead already, since the EAL is).
pub(crate) fn leave_main(registry: &LcoreRegistry) {
    forget_last_lookup();
    let _ =
        STATE.try_with(|s| {
            let mut s = s.borrow_mut();
            let Some(pos) = s.bindings.iter().position(|b| {
                b.registry.instance == registry.instance && b.kind == BindingKind::Main
            }) else {
                return;
            };
            s.bindings.remove(pos);
            s.prune();
            let newest_main = s
                .bindings
                .iter()
                .rev()
                .find(|b| b.kind == BindingKind::Main)
                .map(|b| b.registry.clone());
            match newest_main {
                Some(other) => {
                    let cpus = other.configured[&other.main_lcore].cpus.clone();
                    if pin(&other, &cpus).is_ok() {
                        s.record(cpus, &other.topology);
                    }
                }
                None => {
                    if let Some(before) = s.affinity_before_main.take() {
                        // Best effort: the CPUs of the saved mask may have gone offline since.
                        let _ = dpmem_sys::thread::set_current_affinity(&before);
                    }
                    s.cpus = None;
                    s.socket_id = SOCKET_ID_ANY;
                }
            }
        });
}

/// Makes the calling (new) thread worker `lcore` of the EAL: pinned to the lcore's CPU set.
pub(crate) fn enter_worker(registry: &Arc<LcoreRegistry>, lcore: u32) -> Result<(), LcoreError> {
    let cpus = registry.configured[&lcore].cpus.clone();
    pin(registry, &cpus)?;
    with_state(|s| {
        s.record(cpus, &registry.topology);
        s.bindings.push(Binding {
            registry: registry.clone(),
            lcore_id: lcore,
            kind: BindingKind::Worker,
        });
    });
    Ok(())
}

/// Lends the calling thread a free lcore id of the EAL (DPDK's `rte_thread_register`). The
/// thread keeps its affinity; its CPU set and socket are recorded from it.
pub(crate) fn register(registry: &Arc<LcoreRegistry>) -> Result<u32, LcoreError> {
    if !registry.is_alive() {
        return Err(LcoreError::EalGone);
    }
    if let Some(b) = with_state(|s| s.live_in(registry.instance).map(|b| b.lcore_id)) {
        return Err(LcoreError::AlreadyRegistered { lcore: b });
    }
    let cpus = thread_affinity();
    let lcore = registry.allocate(cpus.clone())?;
    with_state(|s| {
        s.prune();
        s.record(cpus, &registry.topology);
        s.bindings.push(Binding {
            registry: registry.clone(),
            lcore_id: lcore,
            kind: BindingKind::NonEal,
        });
    });
    Ok(lcore)
}

/// Gives back the lcore id [`register`] lent the calling thread (DPDK's
/// `rte_thread_unregister`); afterwards the thread has no lcore id in that EAL.
pub(crate) fn unregister(registry: &LcoreRegistry) -> Result<u32, LcoreError> {
    with_state(|s| {
        let pos = s
            .bindings
            .iter()
            .position(|b| b.registry.instance == registry.instance && b.kind == BindingKind::NonEal)
            .ok_or(LcoreError::NotRegistered)?;
        let binding = s.bindings.remove(pos);
        registry.release(binding.lcore_id);
        Ok(binding.lcore_id)
    })
}
