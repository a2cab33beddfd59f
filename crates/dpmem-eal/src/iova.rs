//! IO virtual addresses: what a device would use to reach dpmem memory, and how they are
//! derived.

use std::fmt;

/// The IOVA of memory whose device address is unknown, as shared memory records it (DPDK's
/// `RTE_BAD_IOVA`). Public values say `None` instead.
pub(crate) const BAD_IOVA: u64 = u64::MAX;

/// A device address (DPDK's `rte_iova_t`): physical in PA mode, the virtual address in VA mode.
/// A type of its own so that a virtual address cannot be handed where a device address is
/// wanted, or the other way round. Unknown device addresses are `Option::None`, never a
/// sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Iova(u64);

impl Iova {
    /// The device address DPDK's integer names; `None` for `RTE_BAD_IOVA` (all ones).
    pub const fn new(raw: u64) -> Option<Iova> {
        if raw == BAD_IOVA {
            None
        } else {
            Some(Iova(raw))
        }
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The device address `offset` bytes further; `None` past the end of the address space.
    pub const fn checked_add(self, offset: u64) -> Option<Iova> {
        match self.0.checked_add(offset) {
            Some(raw) => Iova::new(raw),
            None => None,
        }
    }

    /// DPDK's integer for `iova`: `RTE_BAD_IOVA` for `None`.
    pub const fn to_raw(iova: Option<Iova>) -> u64 {
        match iova {
            Some(i) => i.0,
            None => BAD_IOVA,
        }
    }
}

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::LowerHex for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// How memseg IOVAs are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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
