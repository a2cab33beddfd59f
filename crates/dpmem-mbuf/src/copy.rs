//! Deep copies (`rte_pktmbuf_copy`): the bytes of a range of a packet into new buffers of a
//! pool, chained as needed, with the header fields of the source (not its private area).

use core::ptr::NonNull;

use crate::attach::copy_header_fields;
use crate::data::{data_at, next_of, tailroom};
use crate::error::MbufError;
use crate::free::free;
use crate::header::{MbufHeader, OlFlags};
use crate::pool::PktmbufPool;

impl PktmbufPool<'_> {
    /// A copy of `len` bytes at `offset` of packet `m` (fewer when the packet ends first) in
    /// buffers of this pool (`rte_pktmbuf_copy`). `EINVAL` when `offset` is at or past the
    /// packet's end; `ENOENT` when the pool runs out, with whatever was made freed.
    ///
    /// # Safety
    /// The caller holds a reference on the live packet `m`.
    pub unsafe fn copy_raw(
        &self,
        m: NonNull<MbufHeader>,
        offset: u32,
        len: u32,
    ) -> Result<NonNull<MbufHeader>, MbufError> {
        // SAFETY: the caller's contract.
        let src = unsafe { m.as_ref() };
        let pkt_len = src.pkt_len.get();
        if offset >= pkt_len {
            return Err(MbufError::OutOfPacket {
                offset: offset as u64,
                len: len as u64,
                pkt_len,
            });
        }
        let mut len = len.min(pkt_len - offset);
        let head = self.alloc_raw_reset()?;
        // SAFETY: fresh from the pool, ours.
        let mc = unsafe { head.as_ref() };
        copy_header_fields(mc, src);
        // The source's flags but where its data is; the copy's data is in its own buffer,
        // which is external for good in a pinned pool (dropping that bit would make a clone
        // of the copy look for a direct buffer in front of the external memory).
        let own_data = mc.ol_flags.get() & OlFlags::EXTERNAL.bits();
        let where_data = (OlFlags::INDIRECT | OlFlags::EXTERNAL).bits();
        mc.ol_flags
            .set((src.ol_flags.get() & !where_data) | own_data);
        let mut last = mc;
        let mut seg = src;
        let mut off = offset;
        while len > 0 {
            // The range was cut to the packet, so a segment holding `off` follows.
            while off >= seg.data_len.get() as u32 {
                off -= seg.data_len.get() as u32;
                seg = next_of(seg).expect("the range is inside the packet");
            }
            if tailroom(last) == 0 {
                match self.alloc_raw_reset() {
                    Ok(next) => {
                        mc.nb_segs.set(mc.nb_segs.get() + 1);
                        last.next.set(next.as_ptr());
                        // SAFETY: fresh from the pool, ours.
                        last = unsafe { next.as_ref() };
                    }
                    Err(e) => {
                        // SAFETY: the partial copy is ours; its pool is open.
                        unsafe { free(head) };
                        return Err(e);
                    }
                }
            }
            let here = (seg.data_len.get() as u32 - off)
                .min(len)
                .min(tailroom(last) as u32);
            // SAFETY: `here` bytes at `off` of the source segment's data are readable; as many
            // fit in the last new buffer's tailroom, which is ours.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data_at(seg, off as usize),
                    data_at(last, last.data_len.get() as usize),
                    here as usize,
                )
            };
            last.data_len.set(last.data_len.get() + here as u16);
            mc.pkt_len.set(mc.pkt_len.get() + here);
            off += here;
            len -= here;
        }
        Ok(head)
    }
}
