//! How much address space dpmem reserves, and how it is cut into memseg lists.
//!
//! The defaults are DPDK 22.11's build-time limits for x86-64 (`RTE_MAX_MEMSEG_LISTS` and
//! friends); in dpmem they are run-time settings of the builder.

pub use crate::heap::state::MAX_HEAPS;
pub use crate::shared_config::MAX_MEMSEG_LISTS;

/// Limits on memseg lists; every field is configurable through the EAL builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MemsegLimits {
    /// Lists in all (`RTE_MAX_MEMSEG_LISTS`).
    pub max_lists: u32,
    /// Segments one list can hold (`RTE_MAX_MEMSEG_PER_LIST`).
    pub max_segs_per_list: u32,
    /// Memory one list can hold, MiB (`RTE_MAX_MEM_MB_PER_LIST`).
    pub max_mb_per_list: u64,
    /// Segments of one type (page size × socket) (`RTE_MAX_MEMSEG_PER_TYPE`).
    pub max_segs_per_type: u32,
    /// Memory of one type, MiB (`RTE_MAX_MEM_MB_PER_TYPE`).
    pub max_mb_per_type: u64,
    /// Memory of all types together, MiB (`RTE_MAX_MEM_MB`).
    pub max_mb_total: u64,
}

impl Default for MemsegLimits {
    fn default() -> Self {
        Self {
            max_lists: 128,
            max_segs_per_list: 8192,
            max_mb_per_list: 32768,
            max_segs_per_type: 32768,
            max_mb_per_type: 65536,
            max_mb_total: 524_288,
        }
    }
}

/// One list to create: its type and how many segments it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedList {
    pub page_size: u64,
    pub socket_id: i32,
    pub n_segs: u32,
}

/// Cuts the address space into lists for every (page size, socket) type, as DPDK does: each
/// type gets an equal share of the total, capped by the per-type limits, then is split into
/// lists no bigger than the per-list limits. Types are visited socket by socket, smallest page
/// first, so every socket gets lists even when `max_lists` is tight.
pub fn plan_lists(limits: &MemsegLimits, page_sizes: &[u64], sockets: &[i32]) -> Vec<PlannedList> {
    let n_types = (page_sizes.len() * sockets.len()) as u64;
    if n_types == 0 || limits.max_lists == 0 {
        return Vec::new();
    }
    let mb = 1u64 << 20;
    let total_per_type = (limits.max_mb_total * mb) / n_types;
    // Lists are shared out per type so one type cannot starve the others of list slots.
    let lists_per_type = (u64::from(limits.max_lists) / n_types).max(1);
    let mut plan = Vec::new();
    for &socket_id in sockets {
        for &page_size in page_sizes {
            let type_bytes = total_per_type
                .min(limits.max_mb_per_type * mb)
                .min(u64::from(limits.max_segs_per_type) * page_size);
            let mut type_segs = type_bytes / page_size;
            let list_segs_cap =
                u64::from(limits.max_segs_per_list).min(limits.max_mb_per_list * mb / page_size);
            let mut made = 0;
            while type_segs > 0 && made < lists_per_type && (plan.len() as u32) < limits.max_lists {
                let n = type_segs.min(list_segs_cap);
                if n == 0 {
                    break;
                }
                plan.push(PlannedList {
                    page_size,
                    socket_id,
                    n_segs: n as u32,
                });
                type_segs -= n;
                made += 1;
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const M2: u64 = 2 << 20;
    const G1: u64 = 1 << 30;

    #[test]
    fn default_limits_match_dpdk_shape_for_2m_and_1g() {
        let plan = plan_lists(&MemsegLimits::default(), &[M2, G1], &[0]);
        let m2: Vec<_> = plan.iter().filter(|l| l.page_size == M2).collect();
        let g1: Vec<_> = plan.iter().filter(|l| l.page_size == G1).collect();
        // 64 GiB per type: four lists of 8192 2 MiB pages, two lists of 32 1 GiB pages.
        assert_eq!(m2.len(), 4);
        assert!(m2.iter().all(|l| l.n_segs == 8192));
        assert_eq!(g1.len(), 2);
        assert!(g1.iter().all(|l| l.n_segs == 32));
    }

    #[test]
    fn every_socket_gets_lists_and_limits_hold() {
        let limits = MemsegLimits {
            max_lists: 4,
            ..MemsegLimits::default()
        };
        let plan = plan_lists(&limits, &[M2], &[0, 1]);
        assert_eq!(plan.len(), 4);
        assert_eq!(plan.iter().filter(|l| l.socket_id == 1).count(), 2);
        let tiny = MemsegLimits {
            max_mb_total: 64,
            ..MemsegLimits::default()
        };
        let plan = plan_lists(&tiny, &[M2], &[0]);
        assert_eq!(
            plan,
            vec![PlannedList {
                page_size: M2,
                socket_id: 0,
                n_segs: 32
            }]
        );
    }
}
