//! The rows of the `frame` workload and the shape both sides share: the stream (1080p59.94
//! 4:2:2 10-bit), the pools a transmit session of one frame makes, the receive pool and the
//! copy device's channel (`dpdk/csrc/dpdk_frame_shim.c` checks at init that it was built for
//! the same header length and burst).

use dpmem_frame::{St20Format, DEFAULT_BURST, HEADER_LEN, RX_DATA_ROOM};
use dpmem_mbuf::HEADROOM;

use crate::dpdk_frame_loops::FrameShape;

/// The stream every row sends or receives.
pub(crate) const FORMAT: St20Format = St20Format::FHD_5994_422_10;
/// Packets made, freed or received at once: the transmit session's default burst.
pub(crate) const BURST: usize = DEFAULT_BURST;
/// Descriptors of the copy device's channel.
pub(crate) const NB_DESC: u16 = 1024;
/// Completions taken per look, at most.
pub(crate) const MAX_REAP: u16 = 64;
/// Buffers of the receive pool: the most the copy device can hold (a ring's worth) and a
/// burst, with room to spare, as a port's RX pool would be.
pub(crate) const RX_BUFFERS: u32 = 8191;

/// Buffers of the header pool and of the payload pool: what a session of one frame buffer
/// makes by default (two frames' packets, for a redundant path, and a burst).
pub(crate) fn tx_buffers() -> u32 {
    2 * FORMAT.packets_per_frame() + BURST as u32
}

/// Packets of a reassembled frame: its full payloads (the short last one would be a CPU
/// copy on dpmem's device path, which copies at most 1,024 bytes with the CPU).
pub(crate) fn rx_packets() -> u32 {
    (FORMAT.frame_size() / FORMAT.payload_len as usize) as u32
}

/// The shape of both sides. The transmit pools' cache is the session's (64 for pools of 512
/// or more); the receive pool's is `dpmem_frame::rx_pool`'s (a quarter, at most 256).
pub(crate) fn shape() -> FrameShape {
    FrameShape {
        tx_buffers: tx_buffers(),
        tx_cache: 64,
        hdr_room: HEADROOM + HEADER_LEN as u16,
        rx_buffers: RX_BUFFERS,
        rx_cache: (RX_BUFFERS / 4).min(256),
        rx_room: RX_DATA_ROOM,
        burst: BURST as u32,
        hdr_len: HEADER_LEN as u16,
        payload_len: FORMAT.payload_len,
        frame_size: FORMAT.frame_size() as u32,
        line_bytes: FORMAT.line_bytes() as u32,
        pgroup_bytes: FORMAT.pgroup_bytes,
        pgroup_pixels: FORMAT.pgroup_pixels,
        fps_num: FORMAT.fps_num,
        fps_den: FORMAT.fps_den,
        rx_packets: rx_packets(),
        nb_desc: u32::from(NB_DESC),
        max_reap: u32::from(MAX_REAP),
    }
}

/// One row of the table; its code is its place in [`FrameRow::ALL`], which the C side
/// numbers the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameRow {
    Packetise,
    PacketiseRedundant,
    ReassemblyCpu,
    ReassemblyDevice,
}

impl FrameRow {
    /// Every row, in table order.
    pub(crate) const ALL: [FrameRow; 4] = [
        FrameRow::Packetise,
        FrameRow::PacketiseRedundant,
        FrameRow::ReassemblyCpu,
        FrameRow::ReassemblyDevice,
    ];

    /// The code the C side knows the row by.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// Packets one frame of the row counts as: per path for the redundant row.
    pub(crate) fn packets_per_frame(self) -> u64 {
        match self {
            FrameRow::Packetise => u64::from(FORMAT.packets_per_frame()),
            FrameRow::PacketiseRedundant => 2 * u64::from(FORMAT.packets_per_frame()),
            FrameRow::ReassemblyCpu | FrameRow::ReassemblyDevice => u64::from(rx_packets()),
        }
    }

    /// Its name in the table (and for `--filter`).
    pub(crate) fn name(self) -> String {
        let payload = FORMAT.payload_len;
        match self {
            FrameRow::Packetise => "packetise 1080p59.94, per packet".to_owned(),
            FrameRow::PacketiseRedundant => {
                "packetise 1080p59.94 ST 2022-7, per packet per path".to_owned()
            }
            FrameRow::ReassemblyCpu => format!("reassembly copy {payload} B, CPU, per packet"),
            FrameRow::ReassemblyDevice => {
                format!("reassembly copy {payload} B, copy engine, per packet")
            }
        }
    }

    /// What one packet is, and which calls each side makes.
    pub(crate) fn note(self) -> String {
        let total = FORMAT.packets_per_frame();
        let payload = FORMAT.payload_len;
        let rx = rx_packets();
        match self {
            FrameRow::Packetise => format!(
                "a 1080p59.94 frame in {total} packets, then freed as TX completion does; \
                 dpmem: TxSession::get_frame, transmit into a Vec (per packet: header buffer \
                 from the header pool, {HEADER_LEN} B appended and written from the template \
                 with sequence, timestamp, row, offset, length, lengths and IPv4 checksum; a \
                 zero-room buffer from the payload pool attached to the frame on the builder's \
                 credited reference; Mbuf::chain; handed over {BURST} at a time), then \
                 Mbuf::free_all (bulk frees of 64); DPDK: per burst of {BURST} \
                 rte_pktmbuf_alloc_bulk of headers, per packet rte_pktmbuf_append, rte_memcpy \
                 of the template and the same fields, rte_pktmbuf_alloc of a payload buffer, \
                 rte_mbuf_ext_refcnt_update(+1), rte_pktmbuf_attach_extbuf, lengths, \
                 rte_pktmbuf_chain; the builder's reference dropped; rte_pktmbuf_free_bulk \
                 per burst; both: the frame's done callback must run once per frame"
            ),
            FrameRow::PacketiseRedundant => format!(
                "as the row above on two paths, time over 2 x {total} packets; dpmem: \
                 transmit_redundant into two Vecs (a second header buffer and a second \
                 payload buffer attached to the same frame bytes, one more credited \
                 reference), both freed by Mbuf::free_all; DPDK: a second header per packet \
                 (rte_pktmbuf_alloc_bulk, append, template, fields) chained to the same \
                 payload segment after rte_mbuf_refcnt_update(+1) on it, as MTL does"
            ),
            FrameRow::ReassemblyCpu => format!(
                "per packet of {rx} (a frame's full payloads): a receive buffer taken in a \
                 bulk of {BURST}, {HEADER_LEN} + {payload} B appended, an 8-byte stamp written \
                 at the payload, the payload copied to its offset in a frame memzone, the \
                 buffer freed; dpmem: alloc_array::<{BURST}> (alloc_into for the frame's last, \
                 shorter burst), Mbuf::append, DmaBorrower::copy with no \
                 device (the CPU path: both ends looked up as dpmem memory, ptr::copy, the \
                 packet dropped); DPDK: rte_pktmbuf_alloc_bulk, rte_pktmbuf_append, \
                 rte_memcpy, rte_pktmbuf_free; both: every stamp checked in the frame after \
                 the row"
            ),
            FrameRow::ReassemblyDevice => format!(
                "as the row above with the copies on the copy engine: before each burst the \
                 main lcore reaps until the channel has room for it, queues the copies, rings \
                 the doorbell and reaps up to {MAX_REAP}; each packet held until its copy is \
                 reported, then freed; the frame ends when nothing is in flight; dpmem: \
                 DmaBorrower::copy over dpmem-dma's software engine (every copy must go to the \
                 device), submit, completed; DPDK: rte_dma_copy of rte_pktmbuf_iova_offset on \
                 the dma_skeleton vdev, rte_dma_submit, rte_dma_completed, rte_pktmbuf_free; \
                 both engines copy on a control thread ({NB_DESC} descriptors)"
            ),
        }
    }
}
