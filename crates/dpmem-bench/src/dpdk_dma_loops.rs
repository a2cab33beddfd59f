//! The DPDK 22.11 side of the `dma` workload: DPDK's software DMA device (the
//! `dma_skeleton` vdev) driven by the loop [`crate::dma`] runs on dpmem's copy engine. The
//! `dpmem-bench-dpdk` program implements it in C, with the rest of [`crate::DpdkLoops`].

/// What one row's timed loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyCount {
    /// Copies reported complete while the clock ran.
    pub copies: u64,
    /// Nanoseconds the loop ran.
    pub elapsed_ns: u64,
}

/// The copy-engine loops of DPDK's side.
pub trait DpdkDmaLoops {
    /// `rte_eal_init(args)` (whose arguments create the device), then device `device` with
    /// one memory-to-memory channel of `nb_desc` descriptors, started, and `slots` source
    /// and destination slots of `slot_len` bytes.
    fn dma_eal_init(
        &self,
        args: &[String],
        device: &str,
        nb_desc: u32,
        slots: u32,
        slot_len: u32,
    ) -> Result<(), String>;

    /// One row: bursts of up to `burst` copies of `len` bytes, each burst submitted and
    /// followed by one `completed` of up to `max_reap`, for `duration_ns`.
    fn dma_run(
        &self,
        len: u32,
        burst: u32,
        max_reap: u32,
        duration_ns: u64,
    ) -> Result<CopyCount, String>;
}
