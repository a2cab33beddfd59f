//! What became of an operation ([`Status`], DPDK's `rte_dma_status_code`) and what a channel
//! is doing ([`VchanStatus`], `rte_dma_vchan_status`).

/// The outcome of one operation, as [`Vchan::completed_status`](crate::Vchan::completed_status)
/// reports it. The numbers are DPDK 22.11's, so a status can be passed to C as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    /// The operation was carried out.
    Successful = 0,
    /// The user stopped the device before the operation ran.
    UserAbort = 1,
    /// Skipped: it came after a fence in a batch where an earlier operation failed.
    NotAttempted = 2,
    /// The source is not memory the device can reach (not dpmem memory, or no IOVA known).
    InvalidSrcAddr = 3,
    /// The destination is not memory the device can reach.
    InvalidDstAddr = 4,
    /// Source or destination is not reachable, which one unknown.
    InvalidAddr = 5,
    /// The range starts in reachable memory but runs past its end.
    InvalidLength = 6,
    InvalidOpcode = 7,
    BusReadError = 8,
    BusWriteError = 9,
    BusError = 10,
    /// DPDK's `RTE_DMA_STATUS_DATA_POISION`.
    DataPoison = 11,
    DescriptorReadError = 12,
    DevLinkError = 13,
    PageFault = 14,
    ErrorUnknown = 0x100,
}

impl Status {
    /// Whether the operation was carried out.
    #[inline(always)]
    pub fn is_success(self) -> bool {
        self == Status::Successful
    }

    /// DPDK's number for the status.
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// What a channel is doing (DPDK's `rte_dma_vchan_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VchanStatus {
    /// Every submitted operation is done: the device waits for more.
    Idle,
    /// Submitted operations are waiting or being carried out.
    Active,
    /// Stopped by an error, taking no more operations (never, for this device: an operation
    /// that fails gets its status and the next one runs).
    HaltedError,
}
