//! The rows of the `mbuf` workload and the shape both sides share: the pools' geometry and
//! the packets' sizes (`dpdk/csrc/dpdk_mbuf_shim.c` checks at init that it was built for the
//! same).

use dpmem_mbuf::{DEFAULT_BUF_SIZE, HEADROOM};

use crate::dpdk_loops::MbufShape;

/// Packets per burst: the bulk rows, the transmit row and the cross-core ring's moves.
pub(crate) const BURST: usize = 32;
/// Bytes of a transmitted packet's header (Ethernet, IPv4, UDP, RTP and the ST 2110-20
/// payload header, as MTL's transmitter writes it).
pub(crate) const HDR_LEN: u16 = 62;
/// Bytes of a transmitted packet's payload, a piece of the external frame.
pub(crate) const EXT_LEN: u16 = 1260;
/// Bytes of the packet the clone, copy and cross-core rows start from.
pub(crate) const COPY_LEN: u16 = 1200;
/// The data-operations row grows the tail by this much and the head by [`PREPEND_LEN`].
pub(crate) const APPEND_LEN: u16 = 64;
pub(crate) const PREPEND_LEN: u16 = 14;
/// Where the transmit row writes each header's sequence number: the RTP one, after
/// Ethernet (14), IPv4 (20), UDP (8) and the RTP flags (2).
pub(crate) const SEQ_OFFSET: usize = 44;
/// Slots of the cross-core ring.
pub(crate) const RING_SIZE: u32 = 1024;

/// The pools and sizes of every row, on both sides: pools of 8191 buffers with a cache of
/// 256 and no private area; the main and second pools with DPDK's default room (2048 bytes
/// after the 128-byte headroom), the header pool with room for a header after the headroom,
/// the chain pool with none (its buffers carry external memory).
pub(crate) const SHAPE: MbufShape = MbufShape {
    buffers: 8191,
    cache: 256,
    data_room: DEFAULT_BUF_SIZE,
    hdr_room: HEADROOM + 64,
    burst: BURST as u32,
    hdr_len: HDR_LEN,
    ext_len: EXT_LEN,
    copy_len: COPY_LEN as u32,
};

/// One row of the table; its code is its place in [`MbufRow::ALL`], which the C side numbers
/// the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MbufRow {
    AllocFree,
    Bulk,
    DataOps,
    Clone,
    Copy,
    Extbuf,
    TxPacket,
    MixedPools,
    CrossCore,
}

impl MbufRow {
    /// Every row, in table order.
    pub(crate) const ALL: [MbufRow; 9] = [
        MbufRow::AllocFree,
        MbufRow::Bulk,
        MbufRow::DataOps,
        MbufRow::Clone,
        MbufRow::Copy,
        MbufRow::Extbuf,
        MbufRow::TxPacket,
        MbufRow::MixedPools,
        MbufRow::CrossCore,
    ];

    /// The code the C side knows the row by.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// Its name in the table (and for `--filter`).
    pub(crate) fn name(self) -> String {
        match self {
            MbufRow::AllocFree => "alloc+free".to_owned(),
            MbufRow::Bulk => format!("bulk {BURST} alloc+free, per buffer"),
            MbufRow::DataOps => "append+prepend+adj+trim".to_owned(),
            MbufRow::Clone => "clone+free, 1 segment".to_owned(),
            MbufRow::Copy => format!("copy {COPY_LEN} B+free"),
            MbufRow::Extbuf => "alloc+attach extbuf+free".to_owned(),
            MbufRow::TxPacket => {
                format!("tx packet {HDR_LEN} B hdr + {EXT_LEN} B extbuf, burst {BURST}")
            }
            MbufRow::MixedPools => format!("free_bulk {BURST} over 2 pools, per buffer"),
            MbufRow::CrossCore => "2c clone, free on the other lcore".to_owned(),
        }
    }

    /// What one operation is, and which calls each side makes: the dpmem layer is the one a
    /// Rust program would write, the safe handle wherever it has the operation.
    pub(crate) fn note(self) -> String {
        match self {
            MbufRow::AllocFree => "dpmem: pool.alloc(), the Mbuf dropped (safe handle); DPDK: \
                                   rte_pktmbuf_alloc, rte_pktmbuf_free"
                .to_owned(),
            MbufRow::Bulk => format!(
                "dpmem: alloc_burst into a Burst::<{BURST}>, cleared (one bulk free; safe); \
                 DPDK: rte_pktmbuf_alloc_bulk, rte_pktmbuf_free_bulk"
            ),
            MbufRow::DataOps => format!(
                "append {APPEND_LEN}, prepend {PREPEND_LEN}, adj {PREPEND_LEN}, trim \
                 {APPEND_LEN} on one buffer, a byte written at each grown end; dpmem: the Mbuf \
                 methods (safe: append and prepend check the data is not shared); DPDK: \
                 rte_pktmbuf_append/prepend/adj/trim"
            ),
            MbufRow::Clone => format!(
                "a {COPY_LEN}-byte packet cloned into the same pool; dpmem: Mbuf::clone_in, \
                 dropped (safe); DPDK: rte_pktmbuf_clone, rte_pktmbuf_free"
            ),
            MbufRow::Copy => format!(
                "dpmem: Mbuf::copy_in(pool, 0, {COPY_LEN}), dropped (safe); DPDK: \
                 rte_pktmbuf_copy, rte_pktmbuf_free"
            ),
            MbufRow::Extbuf => format!(
                "{EXT_LEN} bytes of an external frame, chain pool; dpmem: ExternalBuffer::attach \
                 (alloc, +1 on the shared info, attach, lengths), dropped (safe); DPDK: \
                 rte_pktmbuf_alloc, rte_mbuf_ext_refcnt_update(+1), rte_pktmbuf_attach_extbuf, \
                 lengths, rte_pktmbuf_free"
            ),
            MbufRow::TxPacket => format!(
                "per packet; header pool and chain pool; dpmem: headers by alloc_burst into \
                 a Burst::<{BURST}>, append({HDR_LEN}) + template + sequence number, \
                 ExternalBuffer::attach, Mbuf::chain, the burst cleared (safe); DPDK: \
                 rte_pktmbuf_alloc_bulk, append, rte_memcpy, the extbuf row's steps, \
                 rte_pktmbuf_chain, rte_pktmbuf_free_bulk"
            ),
            MbufRow::MixedPools => format!(
                "{} buffers from each of two pools, alternating in one bulk free; dpmem: \
                 alloc_burst into two Burst::<{}> (safe), the handles popped and their \
                 addresses interleaved into one free::free_bulk (raw, as a ported C loop); \
                 DPDK: rte_pktmbuf_alloc_bulk, rte_pktmbuf_free_bulk",
                BURST / 2,
                BURST / 2
            ),
            MbufRow::CrossCore => format!(
                "per packet; lcore 0 clones a {COPY_LEN}-byte packet, bursts of {BURST} go \
                 through a {RING_SIZE}-slot SP/SC ring, lcore 1 frees each; time from the first \
                 start to the last end of the two loops; dpmem: clone_in, a HandleRing<Mbuf> \
                 (enqueue_burst/dequeue_burst of Vecs), drop (safe); DPDK: rte_pktmbuf_clone, \
                 rte_ring_sp_enqueue_burst/sc_dequeue_burst, rte_pktmbuf_free"
            ),
        }
    }
}
