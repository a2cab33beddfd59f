//! Creation flags, with DPDK 22.11's bit values so that a flag word means the same in both.

use crate::error::MempoolError;

/// Flags of [`Mempool::create`](crate::Mempool::create).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MempoolFlags(pub u32);

impl MempoolFlags {
    /// Accepted for DPDK compatibility. dpmem never spreads objects over memory channels
    /// (it is not told how many there are), so there is nothing to turn off.
    pub const NO_SPREAD: MempoolFlags = MempoolFlags(0x0001);
    /// Objects are aligned to 8 bytes instead of a cache line.
    pub const NO_CACHE_ALIGN: MempoolFlags = MempoolFlags(0x0002);
    /// One thread at a time puts (the default handler becomes single-producer).
    pub const SP_PUT: MempoolFlags = MempoolFlags(0x0004);
    /// One thread at a time gets (the default handler becomes single-consumer).
    pub const SC_GET: MempoolFlags = MempoolFlags(0x0008);
    /// Set by dpmem once the handler's store exists (after the first populate).
    pub const POOL_CREATED: MempoolFlags = MempoolFlags(0x0010);
    /// Objects need not be IOVA-contiguous: they may straddle page boundaries.
    pub const NO_IOVA_CONTIG: MempoolFlags = MempoolFlags(0x0020);
    /// Set by dpmem while no object has a valid IOVA (not usable for device IO).
    pub const NON_IO: MempoolFlags = MempoolFlags(0x0040);

    /// The flags a caller may pass.
    pub const USER: MempoolFlags = MempoolFlags(0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0020);

    pub const fn empty() -> MempoolFlags {
        MempoolFlags(0)
    }

    pub const fn contains(self, other: MempoolFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: MempoolFlags) -> MempoolFlags {
        MempoolFlags(self.0 | other.0)
    }

    /// `self` if it holds only caller flags, else `EINVAL` naming the unknown bits.
    pub(crate) fn checked(self) -> Result<MempoolFlags, MempoolError> {
        let unknown = self.0 & !Self::USER.0;
        if unknown != 0 {
            return Err(MempoolError::InvalidArgument(format!(
                "unknown mempool flags {unknown:#x} (allowed: {:#x})",
                Self::USER.0
            )));
        }
        Ok(self)
    }
}

impl core::ops::BitOr for MempoolFlags {
    type Output = MempoolFlags;
    fn bitor(self, rhs: MempoolFlags) -> MempoolFlags {
        self.union(rhs)
    }
}
