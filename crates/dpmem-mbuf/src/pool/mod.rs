//! [`PktmbufPool`]: a pool of packet buffers — a mempool whose objects are a header, a
//! private area and a data room (DPDK's `rte_pktmbuf_pool_create`), or a header and the
//! shared info of a piece of pinned external memory (`rte_pktmbuf_pool_create_extbuf`).
//!
//! - `create`: the builder, and setting up each buffer once;
//! - `open_pools`: the process's table from a buffer's pool address to its handle.

pub(crate) mod create;
pub(crate) mod open_pools;

use core::ptr::NonNull;
use std::sync::atomic::AtomicUsize;

use dpmem_eal::Eal;
use dpmem_mempool::Mempool;

use crate::error::MbufError;
use crate::pool_info::{self, PoolInfo};

/// What a mempool holding packet buffers says about them ([`PktmbufPool::describe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketPoolInfo {
    /// Bytes of each buffer's room; in a pinned pool, how much of each external element a
    /// buffer uses.
    pub data_room: u16,
    /// Bytes of each buffer's private area.
    pub priv_size: u16,
    /// Whether the data is pinned external memory.
    pub pinned: bool,
}

/// This process's state of one open pool, shared by every handle on it in the process and
/// found from a buffer's header through [`open_pools`].
#[derive(Debug)]
pub(crate) struct PoolEntry<'eal> {
    pub(crate) mempool: Mempool<'eal>,
    /// Handles open on this entry ([`PktmbufPool`] values); counted under the table's lock.
    pub(crate) handles: AtomicUsize,
}

/// A handle on a packet buffer pool. Every handle on one pool in a process shares one entry;
/// buffers borrow the handle they were allocated through, so the pool stays open while any
/// of them lives.
pub struct PktmbufPool<'eal> {
    entry: NonNull<PoolEntry<'eal>>,
    info: NonNull<PoolInfo>,
}

// SAFETY: the entry is shared by handles of any thread and only read (its handle count is an
// atomic changed under the table's lock); the mempool handle in it is `Sync`, and the pool
// info is written once before the pool is published.
unsafe impl Send for PktmbufPool<'_> {}
// SAFETY: as above.
unsafe impl Sync for PktmbufPool<'_> {}

impl std::fmt::Debug for PktmbufPool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PktmbufPool")
            .field("name", &self.name())
            .field("size", &self.size())
            .field("data_room", &self.data_room())
            .field("priv_size", &self.priv_size())
            .field("pinned", &self.is_pinned())
            .finish()
    }
}

impl<'eal> PktmbufPool<'eal> {
    /// The mempool underneath.
    #[inline(always)]
    pub fn mempool(&self) -> &Mempool<'eal> {
        // SAFETY: the entry lives while any handle on it does.
        unsafe { &self.entry.as_ref().mempool }
    }

    #[inline(always)]
    pub(crate) fn info(&self) -> &PoolInfo {
        // SAFETY: the info is in the pool's memzone, alive while the pool is open.
        unsafe { self.info.as_ref() }
    }

    pub fn name(&self) -> &str {
        self.mempool().name()
    }

    pub fn eal(&self) -> &'eal Eal {
        self.mempool().eal()
    }

    /// Buffers when full.
    pub fn size(&self) -> u32 {
        self.mempool().size()
    }

    /// Bytes of each buffer's data room (`rte_pktmbuf_data_room_size`); in a pinned pool,
    /// how much of each external element a buffer uses.
    #[inline]
    pub fn data_room(&self) -> u16 {
        self.info().data_room
    }

    /// Bytes of each buffer's private area (`rte_pktmbuf_priv_size`).
    #[inline]
    pub fn priv_size(&self) -> u16 {
        self.info().priv_size
    }

    /// Whether the buffers' data is pinned external memory (`RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF`).
    #[inline]
    pub fn is_pinned(&self) -> bool {
        self.info().is_pinned()
    }

    /// The pool's flags word (`rte_pktmbuf_priv_flags`).
    pub fn flags(&self) -> u32 {
        self.info().flags
    }

    /// Buffers in the pool, ready to allocate.
    pub fn avail_count(&self) -> u32 {
        self.mempool().avail_count()
    }

    /// Buffers allocated.
    pub fn in_use_count(&self) -> u32 {
        self.mempool().in_use_count()
    }

    /// Checks the pool's counts and objects ([`Mempool::audit`]).
    pub fn audit(&self) -> Result<(), MbufError> {
        Ok(self.mempool().audit()?)
    }

    /// `EINVAL` for a pinned pool, whose buffers are external for good and so can never be
    /// attached to other data (DPDK only asserts this in debug builds).
    #[inline(always)]
    pub(crate) fn check_buffers_attachable(&self) -> Result<(), MbufError> {
        if self.is_pinned() {
            return Err(self.pinned_not_attachable());
        }
        Ok(())
    }

    #[cold]
    fn pinned_not_attachable(&self) -> MbufError {
        MbufError::InvalidArgument(format!(
            "packet buffer pool {:?} is pinned: its buffers cannot be attached to other data",
            self.name()
        ))
    }

    /// Opens an existing pool by name, in this or another process (`rte_mempool_lookup`):
    /// `EINVAL` ([`MbufError::NotAPacketPool`]) for a mempool that holds no packet buffers.
    pub fn lookup(eal: &'eal Eal, name: &str) -> Result<PktmbufPool<'eal>, MbufError> {
        let mempool = Mempool::lookup(eal, name)?;
        let info = Self::info_of(&mempool)?;
        Self::open(info, mempool, false)
    }

    /// What `mempool` says about its packet buffers, if it is a packet buffer pool (for tools
    /// that walk every mempool, such as `dpmem info`).
    pub fn describe(mempool: &Mempool<'_>) -> Option<PacketPoolInfo> {
        crate::telemetry::register_telemetry();
        let info = Self::info_of(mempool).ok()?;
        // SAFETY: `info_of` found the pool info in the pool's private area, which lives with
        // the pool the caller holds.
        let info = unsafe { info.as_ref() };
        Some(PacketPoolInfo {
            data_room: info.data_room,
            priv_size: info.priv_size,
            pinned: info.is_pinned(),
        })
    }

    /// The pool info in a mempool's private area, if it is a packet buffer pool.
    fn info_of(mempool: &Mempool<'_>) -> Result<NonNull<PoolInfo>, MbufError> {
        pool_info::find(mempool).ok_or_else(|| MbufError::NotAPacketPool(mempool.name().to_owned()))
    }

    /// Makes `mempool` this process's handle on its pool, or joins the entry already open;
    /// `fresh`: the pool was just created, so any recorded entry is a leftover.
    fn open(
        info: NonNull<PoolInfo>,
        mempool: Mempool<'eal>,
        fresh: bool,
    ) -> Result<PktmbufPool<'eal>, MbufError> {
        crate::telemetry::register_telemetry();
        let eal: *const Eal = mempool.eal();
        let name = mempool.name().to_owned();
        let mut spare = Some(mempool);
        let opened = open_pools::open(
            info.as_ptr(),
            |entry| !fresh && core::ptr::eq(entry.mempool.eal(), eal),
            || {
                Ok::<_, MbufError>(Box::new(PoolEntry {
                    mempool: spare.take().expect("made once"),
                    handles: AtomicUsize::new(1),
                }))
            },
        );
        match opened {
            Some(Ok(entry)) => Ok(PktmbufPool {
                entry: NonNull::new(entry.cast_mut()).expect("entries are boxed"),
                info,
            }),
            Some(Err(e)) => Err(e),
            None => Err(MbufError::InvalidArgument(format!(
                "packet buffer pool {name:?}: too many pools open in this process"
            ))),
        }
    }

    /// Destroys the pool (`rte_mempool_free`). `EBUSY` ([`MbufError::PoolBusy`]) while other
    /// handles on it are open in this process: this handle is closed and the pool left as it
    /// is.
    pub fn free(self) -> Result<(), MbufError> {
        if open_pools::handles(self.entry.as_ptr()) > 1 {
            return Err(MbufError::PoolBusy(self.name().to_owned()));
        }
        let name = self.name().to_owned();
        let this = core::mem::ManuallyDrop::new(self);
        match open_pools::close(this.info.as_ptr(), this.entry.as_ptr()) {
            Some(entry) => Ok(entry.mempool.free()?),
            // Another handle was opened since the count was read: it keeps the pool.
            None => Err(MbufError::PoolBusy(name)),
        }
    }
}

impl Drop for PktmbufPool<'_> {
    fn drop(&mut self) {
        drop(open_pools::close(self.info.as_ptr(), self.entry.as_ptr()));
    }
}
