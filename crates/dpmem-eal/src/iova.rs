//! IO virtual addresses: what a device would use to reach dpmem memory.

use serde::Serialize;

/// How memseg IOVAs are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IovaMode {
    /// Physical addresses read from `/proc/self/pagemap` (needs root).
    Pa,
    /// IOVA equals the virtual address (an IOMMU maps it, or memory never reaches a device).
    Va,
}

impl IovaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IovaMode::Pa => "pa",
            IovaMode::Va => "va",
        }
    }
}

impl std::fmt::Display for IovaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DPDK's automatic choice when no `--iova-mode` is given: without physical addresses only VA
/// can work; with an IOMMU in use (any IOMMU group) devices expect VA; otherwise PA.
pub fn choose_automatically(
    physical_addresses_available: bool,
    iommu_groups_present: bool,
) -> IovaMode {
    if !physical_addresses_available || iommu_groups_present {
        IovaMode::Va
    } else {
        IovaMode::Pa
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_choice_follows_dpdk_rules() {
        assert_eq!(choose_automatically(false, false), IovaMode::Va);
        assert_eq!(choose_automatically(false, true), IovaMode::Va);
        assert_eq!(choose_automatically(true, true), IovaMode::Va);
        assert_eq!(choose_automatically(true, false), IovaMode::Pa);
    }
}
