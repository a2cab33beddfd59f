//! Flags of one operation (DPDK's `RTE_DMA_OP_FLAG_*`).

bitflags::bitflags! {
    /// How an operation is queued.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct OpFlags: u64 {
        /// Runs only after every earlier operation has finished; if one of them failed in
        /// the same batch, this one and the rest of its batch are not attempted
        /// ([`Status::NotAttempted`](crate::Status::NotAttempted)).
        const FENCE = 1 << 0;
        /// Rings the doorbell once the operation is queued, as
        /// [`Vchan::submit`](crate::Vchan::submit) would.
        const SUBMIT = 1 << 1;
        /// A hint to leave the destination in the last-level cache; a software copy leaves it
        /// wherever the copy left it, so the hint changes nothing.
        const LLC = 1 << 2;
    }
}
