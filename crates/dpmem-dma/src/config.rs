//! How a device and its channels are set up (DPDK's `rte_dma_conf` and
//! `rte_dma_vchan_conf`), and the limits they are checked against.

use crate::error::DmaError;

/// Fewest descriptors a channel's ring may have.
pub const MIN_DESC: u16 = 32;
/// Most descriptors a channel's ring may have.
pub const MAX_DESC: u16 = 8192;
/// Most virtual channels a device may have: each is a ring the one worker thread visits in
/// turn, so more only spread the worker thinner.
pub const MAX_VCHANS: u16 = 8;

/// A device's configuration (DPDK's `rte_dma_conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaConf {
    /// Virtual channels to set up, 1..=[`MAX_VCHANS`].
    pub nb_vchans: u16,
    /// Whether completions go unreported; needs the `SILENT` capability, which this device
    /// does not have, so `true` is refused.
    pub enable_silent: bool,
}

impl DmaConf {
    /// `nb_vchans` channels, completions reported.
    pub fn new(nb_vchans: u16) -> DmaConf {
        DmaConf {
            nb_vchans,
            enable_silent: false,
        }
    }

    pub(crate) fn check(&self) -> Result<(), DmaError> {
        if self.nb_vchans == 0 || self.nb_vchans > MAX_VCHANS {
            return Err(DmaError::invalid(format!(
                "{} virtual channels: a device has 1 to {MAX_VCHANS}",
                self.nb_vchans
            )));
        }
        if self.enable_silent {
            return Err(DmaError::invalid(
                "silent mode needs the SILENT capability, which this device does not have",
            ));
        }
        Ok(())
    }
}

/// Where a channel's transfers go (DPDK's `rte_dma_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    MemToMem,
    MemToDev,
    DevToMem,
    DevToDev,
}

/// A channel's configuration (DPDK's `rte_dma_vchan_conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VchanConf {
    /// Only [`Direction::MemToMem`]: the device copies between memories of this host.
    pub direction: Direction,
    /// Descriptors of the ring: a power of two in [`MIN_DESC`]..=[`MAX_DESC`]. One is kept
    /// empty to tell a full ring from an empty one, so `nb_desc - 1` operations fit.
    pub nb_desc: u16,
}

impl VchanConf {
    /// A memory-to-memory channel with a ring of `nb_desc` descriptors.
    pub fn mem_to_mem(nb_desc: u16) -> VchanConf {
        VchanConf {
            direction: Direction::MemToMem,
            nb_desc,
        }
    }

    pub(crate) fn check(&self) -> Result<(), DmaError> {
        if self.direction != Direction::MemToMem {
            return Err(DmaError::invalid(format!(
                "direction {:?}: this device copies memory to memory only",
                self.direction
            )));
        }
        if !self.nb_desc.is_power_of_two() || !(MIN_DESC..=MAX_DESC).contains(&self.nb_desc) {
            return Err(DmaError::invalid(format!(
                "{} descriptors: a ring has a power of two from {MIN_DESC} to {MAX_DESC}",
                self.nb_desc
            )));
        }
        Ok(())
    }
}
