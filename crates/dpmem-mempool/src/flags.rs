//! Creation flags, with DPDK 22.11's bit values so that a flag word means the same in both.

use crate::error::MempoolError;

bitflags::bitflags! {
    /// Flags of a pool ([`MempoolConfig`](crate::MempoolConfig)): the caller's, and two that
    /// dpmem sets and a pool's flags report.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MempoolFlags: u32 {
        /// Accepted for DPDK compatibility. dpmem never spreads objects over memory channels
        /// (it is not told how many there are), so there is nothing to turn off.
        const NO_SPREAD = 0x0001;
        /// Objects are aligned to 8 bytes instead of a cache line.
        const NO_CACHE_ALIGN = 0x0002;
        /// One thread at a time puts (the default handler becomes single-producer).
        const SP_PUT = 0x0004;
        /// One thread at a time gets (the default handler becomes single-consumer).
        const SC_GET = 0x0008;
        /// Set by dpmem once the handler's store exists (after the first populate).
        const POOL_CREATED = 0x0010;
        /// Objects need not be IOVA-contiguous: they may straddle page boundaries.
        const NO_IOVA_CONTIG = 0x0020;
        /// Set by dpmem while no object has a valid IOVA (not usable for device IO).
        const NON_IO = 0x0040;
    }
}

impl MempoolFlags {
    /// The flags a caller may pass.
    pub const USER: MempoolFlags = MempoolFlags::NO_SPREAD
        .union(MempoolFlags::NO_CACHE_ALIGN)
        .union(MempoolFlags::SP_PUT)
        .union(MempoolFlags::SC_GET)
        .union(MempoolFlags::NO_IOVA_CONTIG);

    /// `self` if it holds only caller flags, else `EINVAL` naming the other bits.
    pub(crate) fn checked(self) -> Result<MempoolFlags, MempoolError> {
        let unknown = self.difference(Self::USER);
        if !unknown.is_empty() {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool flags {:#x} are not the caller's to set (allowed: {:#x})",
                unknown.bits(),
                Self::USER.bits()
            )));
        }
        Ok(self)
    }
}
