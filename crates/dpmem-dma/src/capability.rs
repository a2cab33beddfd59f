//! What a device can do ([`Capabilities`], DPDK's `RTE_DMA_CAPA_*`) and how it describes
//! itself ([`DmaInfo`], `rte_dma_info`).

use dpmem_eal::Socket;

bitflags::bitflags! {
    /// A device's capabilities, with DPDK 22.11's bit numbers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Capabilities: u64 {
        /// Copies from memory to memory.
        const MEM_TO_MEM = 1 << 0;
        const MEM_TO_DEV = 1 << 1;
        const DEV_TO_MEM = 1 << 2;
        const DEV_TO_DEV = 1 << 3;
        /// Takes any virtual address of the process as a device address.
        const SVA = 1 << 4;
        /// Can run without reporting completions.
        const SILENT = 1 << 5;
        /// Reports a failed operation through its status and goes on with the next.
        const HANDLES_ERRORS = 1 << 6;
        /// Copy operations.
        const OPS_COPY = 1 << 32;
        /// Scatter-gather copies.
        const OPS_COPY_SG = 1 << 33;
        /// Fill operations.
        const OPS_FILL = 1 << 34;
    }
}

/// A device's description (DPDK's `rte_dma_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaInfo {
    /// The device's name.
    pub name: String,
    pub capabilities: Capabilities,
    /// Virtual channels the device can have.
    pub max_vchans: u16,
    /// Largest ring a channel can have.
    pub max_desc: u16,
    /// Smallest ring a channel can have.
    pub min_desc: u16,
    /// Entries of a scatter-gather list (0: no scatter-gather).
    pub max_sges: u16,
    /// The NUMA node the device is attached to; `Socket::Any` when it is not one node.
    pub socket: Socket,
    /// Channels configured now.
    pub nb_vchans: u16,
}
