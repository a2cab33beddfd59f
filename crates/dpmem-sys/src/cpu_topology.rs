//! Which CPUs exist, and which core, package and NUMA node each belongs to.
//!
//! The EAL maps lcores to CPUs and needs each CPU's NUMA node to pick the socket whose heap
//! an lcore allocates from. As in DPDK, a CPU counts as present when the kernel publishes
//! its topology (`cpu<N>/topology/core_id`); CPUs listed as present but without topology
//! (offline on older kernels) are left out.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Errno, SysError, SysResult};
use crate::root::SysRoot;

const CPU_DIR: &str = "/sys/devices/system/cpu";
const NODE_DIR: &str = "/sys/devices/system/node";

/// One CPU as the kernel describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuInfo {
    /// The kernel's CPU number.
    pub cpu: u32,
    /// Core id within its package; hyperthreads of one core share it.
    pub core_id: u32,
    /// Physical package (socket) id.
    pub package_id: u32,
    /// NUMA node, which DPDK calls the socket id; 0 when the kernel publishes none.
    pub node: u32,
}

/// The CPUs of the machine, ascending by CPU number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTopology {
    /// Every detected CPU, ascending by `cpu`.
    pub cpus: Vec<CpuInfo>,
}

impl CpuTopology {
    /// The CPU numbered `cpu`, if it was detected.
    pub fn cpu(&self, cpu: u32) -> Option<&CpuInfo> {
        self.cpus
            .binary_search_by_key(&cpu, |c| c.cpu)
            .ok()
            .map(|i| &self.cpus[i])
    }

    /// Whether CPU `cpu` was detected.
    pub fn contains(&self, cpu: u32) -> bool {
        self.cpu(cpu).is_some()
    }

    /// The distinct NUMA nodes that have CPUs, ascending.
    pub fn socket_ids(&self) -> Vec<u32> {
        self.cpus
            .iter()
            .map(|c| c.node)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// How many NUMA nodes have CPUs.
    pub fn socket_count(&self) -> usize {
        self.socket_ids().len()
    }

    /// The `index`-th socket id in ascending order (DPDK's `rte_socket_id_by_idx`): socket ids
    /// need not be dense (a machine may have nodes 0 and 2), so code that loops over sockets
    /// goes by index.
    pub fn socket_id_by_index(&self, index: usize) -> Option<u32> {
        self.socket_ids().get(index).copied()
    }

    /// The node every CPU of `cpus` belongs to, or `None` when they span several nodes (or
    /// the set is empty). A CPU the topology does not know counts as node 0, as for
    /// [`CpuInfo::node`] when the kernel publishes none.
    pub fn node_of_cpus(&self, cpus: &BTreeSet<u32>) -> Option<u32> {
        let mut nodes = cpus.iter().map(|&cpu| self.cpu(cpu).map_or(0, |c| c.node));
        let first = nodes.next()?;
        nodes.all(|n| n == first).then_some(first)
    }
}

/// Reads the CPU topology of the machine at `root`.
///
/// The candidate CPUs come from `cpu/present`, else `cpu/possible`, else the `cpu<N>`
/// directory names. Each CPU's node is the `node<M>` link inside its directory, else the
/// node whose `cpulist` names it, else 0.
pub fn discover(root: &SysRoot) -> SysResult<CpuTopology> {
    let candidates = candidate_cpus(root)?;
    let mut node_of_cpu: Option<BTreeMap<u32, u32>> = None;
    let mut cpus = Vec::new();
    for cpu in candidates {
        let dir = format!("{CPU_DIR}/cpu{cpu}");
        // An offline CPU on older kernels has no topology directory; DPDK treats the
        // presence of `core_id` as "this CPU exists", and so does dpmem.
        let Some(core_id) = read_topology_id(root, &format!("{dir}/topology/core_id"))? else {
            continue;
        };
        let package_id = read_topology_id(root, &format!("{dir}/topology/physical_package_id"))?
            .unwrap_or(Some(0));
        let node = match node_link(root, &dir)? {
            Some(node) => node,
            None => {
                // Built lazily: only kernels without the per-CPU node link need the scan.
                let map = match &node_of_cpu {
                    Some(map) => map,
                    None => node_of_cpu.insert(nodes_from_cpulists(root)?),
                };
                map.get(&cpu).copied().unwrap_or(0)
            }
        };
        cpus.push(CpuInfo {
            cpu,
            core_id: core_id.unwrap_or(cpu),
            package_id: package_id.unwrap_or(0),
            node,
        });
    }
    Ok(CpuTopology { cpus })
}

/// Parses the kernel's list syntax used by `cpulist`, `present`, `online` and node lists:
/// comma-separated numbers and inclusive ranges (`0-3,5,8-9`). Surrounding whitespace is
/// ignored and an empty list is valid (a node without CPUs prints one). Malformed input
/// (`1-`, `1,`, `3-1`, `a`) gives `None`.
pub fn parse_cpu_list(text: &str) -> Option<BTreeSet<u32>> {
    let text = text.trim();
    let mut set = BTreeSet::new();
    if text.is_empty() {
        return Some(set);
    }
    for item in text.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (parse_decimal(a)?, parse_decimal(b)?),
            None => {
                let n = parse_decimal(item)?;
                (n, n)
            }
        };
        if first > last {
            return None;
        }
        set.extend(first..=last);
    }
    Some(set)
}

/// A plain decimal number: no sign, no spaces, no empty string (which `str::parse` would
/// partly accept via `+`).
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn candidate_cpus(root: &SysRoot) -> SysResult<Vec<u32>> {
    for list in ["present", "possible"] {
        let path = format!("{CPU_DIR}/{list}");
        match root.read_string(&path) {
            Ok(text) => {
                let set = parse_cpu_list(&text).ok_or_else(|| {
                    SysError::with_path("parse CPU list in", &root.path(&path), Errno::INVAL)
                })?;
                return Ok(set.into_iter().collect());
            }
            Err(e) if e.errno == Errno::NOENT => {}
            Err(e) => return Err(e),
        }
    }
    let names = match root.read_dir_names(CPU_DIR) {
        Ok(names) => names,
        Err(e) if e.errno == Errno::NOENT => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut cpus: Vec<u32> = names
        .iter()
        .filter_map(|n| n.strip_prefix("cpu"))
        .filter_map(parse_decimal)
        .collect();
    cpus.sort_unstable();
    Ok(cpus)
}

/// The node named by a `node<M>` entry inside a CPU's sysfs directory.
fn node_link(root: &SysRoot, cpu_dir: &str) -> SysResult<Option<u32>> {
    let names = match root.read_dir_names(cpu_dir) {
        Ok(names) => names,
        Err(e) if e.errno == Errno::NOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(names
        .iter()
        .filter_map(|n| n.strip_prefix("node"))
        .find_map(parse_decimal))
}

/// CPU → node, from every `node<M>/cpulist`.
fn nodes_from_cpulists(root: &SysRoot) -> SysResult<BTreeMap<u32, u32>> {
    let names = match root.read_dir_names(NODE_DIR) {
        Ok(names) => names,
        Err(e) if e.errno == Errno::NOENT => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut map = BTreeMap::new();
    for node in names
        .iter()
        .filter_map(|n| n.strip_prefix("node"))
        .filter_map(parse_decimal)
    {
        let path = format!("{NODE_DIR}/node{node}/cpulist");
        let text = match root.read_string(&path) {
            Ok(text) => text,
            Err(e) if e.errno == Errno::NOENT => continue,
            Err(e) => return Err(e),
        };
        let cpus = parse_cpu_list(&text).ok_or_else(|| {
            SysError::with_path("parse CPU list in", &root.path(&path), Errno::INVAL)
        })?;
        for cpu in cpus {
            map.insert(cpu, node);
        }
    }
    Ok(map)
}

/// Reads a topology id. The outer `None` means the file is missing; the inner `None` means
/// the kernel wrote -1, which it does when the firmware does not say (some VMs and ARM boards).
fn read_topology_id(root: &SysRoot, path: &str) -> SysResult<Option<Option<u32>>> {
    let text = match root.read_string(path) {
        Ok(text) => text,
        Err(e) if e.errno == Errno::NOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = text.trim();
    if text == "-1" {
        return Ok(Some(None));
    }
    parse_decimal(text)
        .map(|id| Some(Some(id)))
        .ok_or_else(|| SysError::with_path("parse topology id in", &root.path(path), Errno::INVAL))
}
