//! [`PoolInfo`]: what a packet buffer pool records about its buffers, in the mempool's private
//! area (DPDK's `rte_pktmbuf_pool_private`), where every process finds it at the same address.
//! A buffer's header points here, so the room and private sizes of its pool are one load away
//! when a buffer is detached or checked.

use core::ptr::NonNull;

use dpmem_mempool::Mempool;

/// The pool's buffers hold pinned external memory: each buffer's data is a fixed piece of the
/// caller's memory and is never detached from it (`RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF`).
pub const POOL_F_PINNED_EXT_BUF: u32 = 1 << 0;

/// Marks a mempool private area as a packet buffer pool's ("MBUFPOOL" in ASCII).
pub(crate) const POOL_INFO_MAGIC: u64 = u64::from_le_bytes(*b"MBUFPOOL");

#[repr(C)]
#[derive(Debug)]
pub(crate) struct PoolInfo {
    /// Bytes of each buffer's data room (in a pinned pool, of its external element).
    pub(crate) data_room: u16,
    /// Bytes of the private area between each header and its room.
    pub(crate) priv_size: u16,
    /// `POOL_F_*` flags.
    pub(crate) flags: u32,
    /// [`POOL_INFO_MAGIC`] once the pool is set up: a private area without it is not a
    /// packet buffer pool's.
    pub(crate) magic: u64,
    /// The mempool's shared header: which pool a process's handle must put buffers back to.
    pub(crate) mempool_header: u64,
}

impl PoolInfo {
    #[inline]
    pub(crate) fn is_pinned(&self) -> bool {
        self.flags & POOL_F_PINNED_EXT_BUF != 0
    }
}

/// The pool info in `mempool`'s private area, if it is a packet buffer pool's: the area is
/// long enough for one and carries [`POOL_INFO_MAGIC`]. It lives as long as the pool.
pub(crate) fn find(mempool: &Mempool<'_>) -> Option<NonNull<PoolInfo>> {
    if (mempool.private_data_size() as usize) < core::mem::size_of::<PoolInfo>() {
        return None;
    }
    let info = mempool.private_data().cast::<PoolInfo>();
    // SAFETY: the private area is at least a pool info long, cache-line aligned, and in the
    // pool's memzone; the magic is written before the pool is published.
    if unsafe { (*info).magic } != POOL_INFO_MAGIC {
        return None;
    }
    NonNull::new(info)
}
