//! Taking buffers from a pool: raw (`rte_mbuf_raw_alloc`: as the pool keeps them, one
//! reference, one segment, its own room), reset (`rte_pktmbuf_alloc`: ready for a new
//! packet), and all-or-nothing in bulk (`rte_pktmbuf_alloc_bulk`).

use core::ptr::{null_mut, NonNull};

use crate::error::MbufError;
use crate::header::{MbufHeader, OlFlags, HEADROOM, PORT_INVALID};
use crate::pool::PktmbufPool;

/// Makes `m` an empty one-segment packet with the default headroom, keeping only whether its
/// data is external (`rte_pktmbuf_reset`).
///
/// # Safety
/// The caller owns the live buffer `m`.
#[inline(always)]
pub unsafe fn reset(m: NonNull<MbufHeader>) {
    // SAFETY: the caller's contract: a live header.
    let h = unsafe { m.as_ref() };
    h.next.set(null_mut());
    h.pkt_len.set(0);
    h.tx_offload.set(0);
    h.vlan_tci.set(0);
    h.vlan_tci_outer.set(0);
    h.nb_segs.set(1);
    h.port.set(PORT_INVALID);
    h.ol_flags.set(h.ol_flags.get() & OlFlags::EXTERNAL.bits());
    h.packet_type.set(0);
    h.data_off.set(HEADROOM.min(h.buf_len.get()));
    h.data_len.set(0);
}

impl PktmbufPool<'_> {
    /// A buffer as the pool keeps it, not reset (`rte_mbuf_raw_alloc`): one reference, one
    /// segment, no next, its own room (or its pinned memory). `ENOENT`
    /// ([`MbufError::Exhausted`]) when the pool is empty.
    #[inline(always)]
    pub fn alloc_raw(&self) -> Result<NonNull<MbufHeader>, MbufError> {
        // A bulk get of one: inlined whole, where the single get returns its result through
        // memory.
        let mut one = [core::ptr::null_mut(); 1];
        match self.mempool().get_bulk(&mut one) {
            Ok(()) => Ok(NonNull::new(one[0])
                .expect("pool objects are never at 0")
                .cast()),
            Err(_) => Err(self.exhausted(1)),
        }
    }

    /// A buffer ready for a new packet (`rte_pktmbuf_alloc`), owned by the caller, who frees
    /// it with [`free`](crate::free::free) (or wraps it in an [`Mbuf`](crate::Mbuf)).
    #[inline(always)]
    pub fn alloc_raw_reset(&self) -> Result<NonNull<MbufHeader>, MbufError> {
        let m = self.alloc_raw()?;
        // SAFETY: a buffer fresh from the pool is ours alone.
        unsafe { reset(m) };
        Ok(m)
    }

    /// Fills `out` with buffers ready for new packets, all or none
    /// (`rte_pktmbuf_alloc_bulk`): `ENOENT` ([`MbufError::Exhausted`]) when the pool has
    /// fewer, and then nothing is taken.
    #[inline(always)]
    pub fn alloc_bulk_raw(&self, out: &mut [*mut MbufHeader]) -> Result<(), MbufError> {
        // SAFETY: `*mut MbufHeader` and `*mut u8` have the same layout; the pool writes
        // object addresses only.
        let objs = unsafe { &mut *(core::ptr::from_mut(out) as *mut [*mut u8]) };
        if self.mempool().get_bulk(objs).is_err() {
            return Err(self.exhausted(out.len()));
        }
        for &m in out.iter() {
            // SAFETY: the pool hands out object addresses, never null.
            let m = unsafe { NonNull::new_unchecked(m) };
            // SAFETY: fresh from the pool, ours alone.
            unsafe { reset(m) };
        }
        Ok(())
    }

    #[cold]
    pub(crate) fn exhausted(&self, wanted: usize) -> MbufError {
        MbufError::Exhausted {
            pool: self.name().to_owned(),
            wanted,
        }
    }
}
