//! [`PacketShape`]: everything a data operation may change in a packet, read through its
//! headers, so that a test can say "the packet is exactly as it was" after a refused one.

use dpmem_mbuf::data;
use dpmem_mbuf::MbufHeader;

/// One segment as the headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentShape {
    pub header: usize,
    pub data_at: usize,
    pub data_off: u16,
    pub data_len: u16,
    pub pkt_len: u32,
    pub nb_segs: u16,
    pub refcnt: u16,
    pub bytes: Vec<u8>,
}

/// A packet: its segments in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketShape {
    pub segments: Vec<SegmentShape>,
}

impl PacketShape {
    /// The packet's bytes, every segment's in order.
    pub fn bytes(&self) -> Vec<u8> {
        self.segments.iter().flat_map(|s| s.bytes.clone()).collect()
    }
}

/// The shape of the live packet whose first segment is `m`.
pub fn shape(m: &MbufHeader) -> PacketShape {
    let mut segments = Vec::new();
    let mut seg: *const MbufHeader = m;
    while !seg.is_null() {
        // SAFETY: a live packet's `next` pointers lead to its live segments, alive as long as
        // the packet the caller borrows.
        let s = unsafe { &*seg };
        let at = data::data_at(s, 0);
        // SAFETY: a segment's data is inside its buffer, readable while the packet lives.
        let bytes = unsafe { core::slice::from_raw_parts(at, s.data_len() as usize) }.to_vec();
        segments.push(SegmentShape {
            header: seg as usize,
            data_at: at as usize,
            data_off: s.data_off(),
            data_len: s.data_len(),
            pkt_len: s.pkt_len(),
            nb_segs: s.nb_segs(),
            refcnt: s.refcnt(),
            bytes,
        });
        seg = s.next();
    }
    PacketShape { segments }
}
