//! The lcore ids of one EAL: the fixed main and worker lcores, and the ids lent to registered
//! non-EAL threads (DPDK's `eal_lcore_non_eal_allocate` / `_release`).
//!
//! Threads hold an `Arc` of their EAL's registry in their thread-local bindings, so the
//! registry outlives the EAL when a thread still refers to it; `alive` tells them it is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use dpmem_sys::cpu_topology::CpuTopology;

use super::error::LcoreError;
use super::table::{LcoreInfo, LcoreRole};
use crate::options::MAX_LCORE;

/// Distinguishes EAL instances in thread-local bindings (addresses could be reused).
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub(crate) struct LcoreRegistry {
    /// Unique per EAL instance in this process.
    pub instance: u64,
    /// False once the EAL is torn down; bindings to a dead registry read as no lcore.
    alive: AtomicBool,
    pub main_lcore: u32,
    /// Main and worker lcores, ascending by id; fixed for the EAL's life.
    pub configured: BTreeMap<u32, LcoreInfo>,
    /// The topology sockets of CPU sets are computed from.
    pub topology: CpuTopology,
    /// Whether threads are really pinned (false on a fake sysfs root).
    pub pinning: bool,
    /// Ids lent to registered threads, with the CPU set each had when it registered.
    non_eal: Mutex<BTreeMap<u32, BTreeSet<u32>>>,
}

impl LcoreRegistry {
    pub fn new(
        table: Vec<LcoreInfo>,
        main_lcore: u32,
        topology: CpuTopology,
        pinning: bool,
    ) -> Self {
        Self {
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            alive: AtomicBool::new(true),
            main_lcore,
            configured: table.into_iter().map(|i| (i.lcore_id, i)).collect(),
            topology,
            pinning,
            non_eal: Mutex::new(BTreeMap::new()),
        }
    }

    #[inline]
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn mark_dead(&self) {
        self.alive.store(false, Ordering::Release);
    }

    fn non_eal(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, BTreeSet<u32>>> {
        // The map is only ever inserted into or removed from; a panic cannot leave it torn.
        self.non_eal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The role of any lcore id (off for ids nobody uses, including ids ≥ `MAX_LCORE`).
    pub fn role(&self, lcore: u32) -> LcoreRole {
        if let Some(info) = self.configured.get(&lcore) {
            return info.role;
        }
        if self.non_eal().contains_key(&lcore) {
            LcoreRole::NonEal
        } else {
            LcoreRole::Off
        }
    }

    /// Lends the lowest free id to a thread running on `cpus`.
    pub fn allocate(&self, cpus: BTreeSet<u32>) -> Result<u32, LcoreError> {
        let mut lent = self.non_eal();
        let free = (0..MAX_LCORE)
            .find(|id| !self.configured.contains_key(id) && !lent.contains_key(id))
            .ok_or(LcoreError::NoFreeLcore { max: MAX_LCORE })?;
        lent.insert(free, cpus);
        Ok(free)
    }

    pub fn release(&self, lcore: u32) {
        self.non_eal().remove(&lcore);
    }

    /// Every lcore in use: configured ones and registered threads, ascending by id.
    pub fn snapshot(&self) -> Vec<LcoreInfo> {
        let mut all: BTreeMap<u32, LcoreInfo> = self.configured.clone();
        for (&lcore_id, cpus) in self.non_eal().iter() {
            all.insert(
                lcore_id,
                LcoreInfo {
                    lcore_id,
                    role: LcoreRole::NonEal,
                    cpus: cpus.clone(),
                    socket: crate::socket::Socket::from_recorded(super::table::socket_of(
                        &self.topology,
                        cpus,
                    )),
                    cpu_id: cpus.iter().next().copied().unwrap_or(0),
                },
            );
        }
        all.into_values().collect()
    }
}
