//! Cloning a packet (`rte_pktmbuf_clone`): one indirect buffer per segment, each attached to
//! the segment's data, chained as the source is.

use core::ptr::NonNull;

use crate::attach::attach;
use crate::error::MbufError;
use crate::free::free;
use crate::header::MbufHeader;
use crate::pool::PktmbufPool;

impl PktmbufPool<'_> {
    /// A clone of packet `m`: one indirect buffer from this pool per segment, sharing the
    /// data (`rte_pktmbuf_clone`). On failure whatever was made is freed and `m` is as it
    /// was. `EINVAL` when this pool is pinned.
    ///
    /// # Safety
    /// The caller holds a reference on `m`; its pools are open in this process.
    #[inline]
    pub unsafe fn clone_raw(
        &self,
        m: NonNull<MbufHeader>,
    ) -> Result<NonNull<MbufHeader>, MbufError> {
        self.check_buffers_attachable()?;
        let head = self.alloc_raw_reset()?;
        let mut tail = head;
        let mut seg = m;
        let mut nseg = 0u16;
        loop {
            // SAFETY: `tail` is a fresh buffer of this pool (direct, one reference); the
            // caller holds `m`'s reference, which covers its segments.
            unsafe { attach(tail, seg) }.expect("a fresh buffer is direct with one reference");
            nseg += 1;
            // SAFETY: a segment of the held packet.
            let Some(next) = NonNull::new(unsafe { seg.as_ref() }.next.get()) else {
                break;
            };
            seg = next;
            match self.alloc_raw_reset() {
                Ok(mi) => {
                    // SAFETY: `tail` is ours.
                    unsafe { tail.as_ref() }.next.set(mi.as_ptr());
                    tail = mi;
                }
                Err(e) => {
                    // SAFETY: the partial clone is ours: one chain of attached buffers.
                    unsafe { head.as_ref() }.nb_segs.set(nseg);
                    // SAFETY: as above; the pools are open.
                    unsafe { free(head) };
                    return Err(e);
                }
            }
        }
        // SAFETY: `head` is ours.
        let h = unsafe { head.as_ref() };
        // SAFETY: `m` is held by the caller.
        let src = unsafe { m.as_ref() };
        h.nb_segs.set(nseg);
        h.pkt_len.set(src.pkt_len.get());
        Ok(head)
    }
}
