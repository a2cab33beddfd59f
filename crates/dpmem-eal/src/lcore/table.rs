//! The lcore table: for each lcore of an EAL, its role, CPU set and socket.
//!
//! Built from the parsed [`LcoreMap`] and the CPU topology alone, without starting a thread,
//! so the table of a machine with CPUs this one lacks can be checked in tests.

use std::collections::BTreeSet;

use dpmem_sys::cpu_topology::CpuTopology;

use crate::options::LcoreMap;
use crate::socket::{Socket, SOCKET_ID_ANY};

/// What an lcore id is used for (DPDK's `rte_lcore_role_t`, with its `ROLE_RTE` split into
/// main and worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum LcoreRole {
    /// The thread that initialised the EAL.
    Main,
    /// An EAL worker thread, pinned to its CPU set, running launched work.
    Worker,
    /// An id lent to a plain thread by `register_thread`.
    NonEal,
    /// Not in use.
    Off,
}

impl LcoreRole {
    /// The lowercase name `dpmem info` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            LcoreRole::Main => "main",
            LcoreRole::Worker => "worker",
            LcoreRole::NonEal => "non-eal",
            LcoreRole::Off => "off",
        }
    }
}

/// One lcore of an EAL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LcoreInfo {
    pub lcore_id: u32,
    pub role: LcoreRole,
    /// The CPUs the lcore's thread may run on.
    pub cpus: BTreeSet<u32>,
    /// The NUMA node of every CPU of the set, or [`Socket::Any`] when the set spans nodes.
    #[cfg_attr(feature = "serde", serde(rename = "socket_id"))]
    pub socket: Socket,
    /// The lowest CPU of the set (what `rte_lcore_to_cpu_id` reports).
    pub cpu_id: u32,
}

/// The socket a thread restricted to `cpus` runs on: one node, or [`SOCKET_ID_ANY`].
pub(crate) fn socket_of(topology: &CpuTopology, cpus: &BTreeSet<u32>) -> i32 {
    topology
        .node_of_cpus(cpus)
        .map_or(SOCKET_ID_ANY, |n| n as i32)
}

/// The main and worker lcores of `map`, ascending by lcore id. `main_lcore` must be in `map`.
pub fn build_table(map: &LcoreMap, main_lcore: u32, topology: &CpuTopology) -> Vec<LcoreInfo> {
    map.iter()
        .map(|(lcore_id, cpus)| LcoreInfo {
            lcore_id,
            role: if lcore_id == main_lcore {
                LcoreRole::Main
            } else {
                LcoreRole::Worker
            },
            cpus: cpus.clone(),
            socket: Socket::from_recorded(socket_of(topology, cpus)),
            // LcoreMap keeps every CPU set non-empty.
            cpu_id: cpus.iter().next().copied().unwrap_or(0),
        })
        .collect()
}
