//! What hugepages the machine has: sizes, counts per NUMA node, and where each size is mounted.
//!
//! The kernel publishes one directory per supported hugepage size under
//! `/sys/kernel/mm/hugepages/hugepages-<N>kB`, with global counters, and the same counters per
//! NUMA node under `/sys/devices/system/node/node<M>/hugepages/`. The EAL uses these figures
//! to decide how much memory it can place on each socket before it tries to map any of it.

use std::path::PathBuf;

use crate::cpu_topology::parse_cpu_list;
use crate::error::{Errno, SysError, SysResult};
use crate::meminfo;
use crate::mounts;
use crate::root::SysRoot;

const GLOBAL_HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";
const NODE_DIR: &str = "/sys/devices/system/node";

/// Everything discovery learned about hugepages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageInfo {
    /// The kernel's default hugepage size (`Hugepagesize:` in `/proc/meminfo`), in bytes;
    /// `None` when the kernel has no hugepage support.
    pub default_page_size: Option<u64>,
    /// One entry per page size the kernel supports, sorted ascending by page size. Empty
    /// when the kernel has no hugepage support.
    pub sizes: Vec<HugepageSizeInfo>,
    /// The online NUMA nodes, ascending (`[0]` on a machine without NUMA).
    pub numa_nodes: Vec<u32>,
}

/// The counters of one hugepage size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageSizeInfo {
    /// Page size in bytes.
    pub page_size: u64,
    /// Pages in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages not yet faulted in by anyone (`free_hugepages`); this still counts reserved pages.
    pub free: u64,
    /// Pages promised to mappings that have not faulted them yet (`resv_hugepages`), so
    /// `free - reserved` is what a new mapping can really get.
    pub reserved: u64,
    /// Pages allocated beyond `total` through overcommit (`surplus_hugepages`).
    pub surplus: u64,
    /// Per-node counters, ascending by node. Empty when the kernel publishes no per-node
    /// figures (a kernel built without NUMA); see [`HugepageSizeInfo::on_node`].
    pub per_node: Vec<NodeHugepages>,
    /// The hugetlbfs mount points serving this page size, in `/proc/mounts` order.
    pub mounts: Vec<PathBuf>,
}

/// The counters of one hugepage size on one NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHugepages {
    /// NUMA node id.
    pub node: u32,
    /// Pages in this node's pool.
    pub total: u64,
    /// Pages of this node's pool not yet faulted in.
    pub free: u64,
    /// Overcommitted pages on this node.
    pub surplus: u64,
}

impl HugepageInfo {
    /// The counters of one page size, if the kernel supports it.
    pub fn size(&self, page_size: u64) -> Option<&HugepageSizeInfo> {
        self.sizes.iter().find(|s| s.page_size == page_size)
    }

    /// Free pages of `page_size` on `node`; 0 when the size or the node is unknown.
    pub fn free_on_node(&self, page_size: u64, node: u32) -> u64 {
        self.size(page_size).map_or(0, |s| s.on_node(node).free)
    }

    /// Total bytes of free hugepages of every size.
    pub fn free_bytes(&self) -> u64 {
        self.sizes
            .iter()
            .map(|s| s.free.saturating_mul(s.page_size))
            .sum()
    }
}

impl HugepageSizeInfo {
    /// The counters on `node`. Without per-node figures the whole pool is on node 0,
    /// which is where a non-NUMA kernel puts every page.
    pub fn on_node(&self, node: u32) -> NodeHugepages {
        if self.per_node.is_empty() {
            if node == 0 {
                return NodeHugepages {
                    node,
                    total: self.total,
                    free: self.free,
                    surplus: self.surplus,
                };
            }
            return NodeHugepages {
                node,
                total: 0,
                free: 0,
                surplus: 0,
            };
        }
        self.per_node
            .iter()
            .find(|n| n.node == node)
            .copied()
            .unwrap_or(NodeHugepages {
                node,
                total: 0,
                free: 0,
                surplus: 0,
            })
    }
}

/// Reads the hugepage counters, NUMA nodes and hugetlbfs mounts of the machine at `root`.
///
/// A kernel without hugepage support (no `/sys/kernel/mm/hugepages`) gives an empty
/// `sizes` list rather than an error, because dpmem still runs there (`--no-huge`).
pub fn discover(root: &SysRoot) -> SysResult<HugepageInfo> {
    let default_page_size = meminfo::default_page_size(root)?;
    let numa_nodes = numa_nodes(root)?;
    let mounts = match root.read_string("/proc/mounts") {
        Ok(text) => mounts::parse_hugetlbfs_mounts(&text, default_page_size),
        // A tree without procfs has no mounts to offer; that is not a reason to fail.
        Err(e) if e.errno == Errno::NOENT => Vec::new(),
        Err(e) => return Err(e),
    };

    let mut sizes = Vec::new();
    for page_size in page_sizes(root)? {
        let dir = format!("{GLOBAL_HUGEPAGES_DIR}/{}", size_dir_name(page_size));
        let mut per_node = Vec::new();
        for &node in &numa_nodes {
            let node_dir = format!(
                "{NODE_DIR}/node{node}/hugepages/{}",
                size_dir_name(page_size)
            );
            // Nodes without this directory (memoryless nodes, non-NUMA kernels) have no pool.
            if !root.exists(&node_dir) {
                continue;
            }
            per_node.push(NodeHugepages {
                node,
                total: root.read_u64(&format!("{node_dir}/nr_hugepages"))?,
                free: root.read_u64(&format!("{node_dir}/free_hugepages"))?,
                surplus: root
                    .read_u64_if_exists(&format!("{node_dir}/surplus_hugepages"))?
                    .unwrap_or(0),
            });
        }
        sizes.push(HugepageSizeInfo {
            page_size,
            total: root.read_u64(&format!("{dir}/nr_hugepages"))?,
            free: root.read_u64(&format!("{dir}/free_hugepages"))?,
            reserved: root
                .read_u64_if_exists(&format!("{dir}/resv_hugepages"))?
                .unwrap_or(0),
            surplus: root
                .read_u64_if_exists(&format!("{dir}/surplus_hugepages"))?
                .unwrap_or(0),
            per_node,
            mounts: mounts
                .iter()
                .filter(|m| m.page_size == page_size)
                .map(|m| m.mount_point.clone())
                .collect(),
        });
    }
    Ok(HugepageInfo {
        default_page_size,
        sizes,
        numa_nodes,
    })
}

/// The page sizes (bytes, ascending) the kernel supports, from the directory names under
/// `/sys/kernel/mm/hugepages`. Empty when that directory does not exist.
pub fn page_sizes(root: &SysRoot) -> SysResult<Vec<u64>> {
    let names = match root.read_dir_names(GLOBAL_HUGEPAGES_DIR) {
        Ok(names) => names,
        Err(e) if e.errno == Errno::NOENT => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sizes: Vec<u64> = names
        .iter()
        .filter_map(|name| parse_size_dir_name(name))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// The sysfs directory name for a page size: `hugepages-2048kB` for 2 MiB.
pub fn size_dir_name(page_size: u64) -> String {
    format!("hugepages-{}kB", page_size / 1024)
}

/// The page size in bytes named by a `hugepages-<N>kB` directory.
fn parse_size_dir_name(name: &str) -> Option<u64> {
    let kib: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    kib.checked_mul(1024).filter(|&bytes| bytes > 0)
}

/// The online NUMA nodes, ascending.
///
/// Read from `/sys/devices/system/node/online`; when that file is missing, from the
/// `node<N>` directory names; and when there is no node directory at all (a kernel built
/// without NUMA), the machine is one node, `[0]`.
pub fn numa_nodes(root: &SysRoot) -> SysResult<Vec<u32>> {
    let online = format!("{NODE_DIR}/online");
    match root.read_string(&online) {
        Ok(text) => {
            let nodes = parse_cpu_list(&text).ok_or_else(|| {
                SysError::with_path("parse node list in", &root.path(&online), Errno::INVAL)
            })?;
            if !nodes.is_empty() {
                return Ok(nodes.into_iter().collect());
            }
        }
        Err(e) if e.errno == Errno::NOENT => {}
        Err(e) => return Err(e),
    }
    let names = match root.read_dir_names(NODE_DIR) {
        Ok(names) => names,
        Err(e) if e.errno == Errno::NOENT => return Ok(vec![0]),
        Err(e) => return Err(e),
    };
    let mut nodes: Vec<u32> = names
        .iter()
        .filter_map(|n| n.strip_prefix("node"))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|id| id.parse().ok())
        .collect();
    nodes.sort_unstable();
    if nodes.is_empty() {
        nodes.push(0);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_dir_names_round_trip() {
        assert_eq!(size_dir_name(2 << 20), "hugepages-2048kB");
        assert_eq!(parse_size_dir_name("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(parse_size_dir_name("hugepages-2048"), None);
        assert_eq!(parse_size_dir_name("hugepages-0kB"), None);
        assert_eq!(parse_size_dir_name("other"), None);
    }
}
