//! Giving buffers back: a segment (`rte_pktmbuf_free_seg`), a whole chain
//! (`rte_pktmbuf_free`), many packets of any pools at once (`rte_pktmbuf_free_bulk`), and the
//! raw put with no reference-count step (`rte_mbuf_raw_free`).
//!
//! A segment goes back to its pool when its last reference goes. Releasing an indirect or
//! external segment first drops its reference on the data it is attached to (which may send
//! that buffer home too, or run an external buffer's callback); a pinned pool's buffer stays
//! out while clones still share its memory, and goes home with the last of them.

use core::ptr::{null_mut, NonNull};

use crate::attach::detach_data;
use crate::header::MbufHeader;
use crate::pool_info::PoolInfo;
use crate::put::mempool_at;
pub use crate::put::raw_free;
use crate::refcount;

/// Drops one reference on segment `m`; when it was the last, readies the segment to go back
/// to its pool (detached, alone, count 1) and returns it (`rte_pktmbuf_prefree_seg`).
///
/// # Safety
/// The caller holds the reference it drops on a live segment; the pools involved are open
/// in this process.
#[inline(always)]
pub(crate) unsafe fn prefree_seg(m: NonNull<MbufHeader>) -> Option<NonNull<MbufHeader>> {
    // SAFETY: the caller's contract: the segment is live.
    let h = unsafe { m.as_ref() };
    if !refcount::release_for_reuse(&h.refcnt) {
        return None;
    }
    // The last reference is gone: this thread has the segment alone.
    // SAFETY: as above, and the pools are open.
    if !h.is_direct() && !unsafe { detach_data(m) } {
        // A pinned buffer whose memory clones still share: the last clone sends it home.
        return None;
    }
    if !h.next.get().is_null() {
        h.next.set(null_mut());
    }
    if h.nb_segs.get() != 1 {
        h.nb_segs.set(1);
    }
    Some(m)
}

/// Frees one segment, whatever its place in a chain (`rte_pktmbuf_free_seg`).
///
/// # Safety
/// The caller holds the reference it drops; the segment's pool is open in this process.
#[inline(always)]
pub unsafe fn free_seg(m: NonNull<MbufHeader>) {
    // SAFETY: the caller's contract.
    if let Some(m) = unsafe { prefree_seg(m) } {
        // SAFETY: the segment is ready for its pool, and its pool is open.
        unsafe { raw_free(m) }
    }
}

/// Frees a packet: every segment of the chain, each going home when its last reference goes
/// (`rte_pktmbuf_free`).
///
/// # Safety
/// The caller holds the packet's reference; every segment's pool is open in this process.
#[inline]
pub unsafe fn free(m: NonNull<MbufHeader>) {
    let mut seg = Some(m);
    while let Some(m) = seg {
        // SAFETY: read before the segment can go back to its pool.
        seg = NonNull::new(unsafe { m.as_ref() }.next.get());
        // SAFETY: the caller's contract covers every segment.
        unsafe { free_seg(m) };
    }
}

/// How many segments a bulk free gathers before putting them back in one call.
const BULK_PENDING: usize = 64;

/// Frees many packets, of any pools, with as few pool calls as it can
/// (`rte_pktmbuf_free_bulk`): segments going to the same pool one after another are put back
/// together. Null entries are skipped.
///
/// # Safety
/// As [`free`] for every packet.
pub unsafe fn free_bulk(packets: &[*mut MbufHeader]) {
    let mut pending = [null_mut::<u8>(); BULK_PENDING];
    let mut n = 0usize;
    let mut pending_pool = core::ptr::null();
    for &packet in packets {
        let mut seg = NonNull::new(packet);
        while let Some(m) = seg {
            // SAFETY: read before the segment can go back to its pool.
            seg = NonNull::new(unsafe { m.as_ref() }.next.get());
            // SAFETY: the caller's contract.
            let Some(m) = (unsafe { prefree_seg(m) }) else {
                continue;
            };
            // SAFETY: the segment is live (ready for its pool, not yet put).
            let pool = unsafe { m.as_ref() }.pool.get();
            if n == BULK_PENDING || (n > 0 && pool != pending_pool) {
                // SAFETY: the pending segments are ready for `pending_pool`, which is open.
                unsafe { put_pending(pending_pool, &pending[..n]) };
                n = 0;
            }
            pending_pool = pool;
            pending[n] = m.as_ptr().cast();
            n += 1;
        }
    }
    if n > 0 {
        // SAFETY: as above.
        unsafe { put_pending(pending_pool, &pending[..n]) };
    }
}

/// Puts segments of the pool at `info` back in one call.
///
/// # Safety
/// Every pointer is a segment ready for that pool, owned by the caller; the pool is open.
#[inline(always)]
unsafe fn put_pending(info: *const PoolInfo, segs: &[*mut u8]) {
    #[cfg(feature = "debug")]
    for &m in segs {
        // SAFETY: the caller's contract: each is a live buffer.
        if let Err(reason) = unsafe { crate::check::check_header(m.cast(), false) } {
            panic!("freeing a bad packet buffer {m:p}: {reason}");
        }
    }
    // SAFETY: the caller's contract: the pool is open.
    let pool = unsafe { mempool_at(info) };
    // SAFETY: the caller's contract: all of that pool, owned, ready.
    unsafe { pool.put_bulk(segs) }
}
