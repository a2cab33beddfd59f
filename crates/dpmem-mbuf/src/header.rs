//! [`MbufHeader`]: the 128-byte header in front of every packet buffer, laid out as DPDK
//! 22.11's `struct rte_mbuf` is (two cache lines; what a receive or transmit path touches
//! first is on the first), and the offload flags in it.
//!
//! The header lives in a mempool object, in shared memory at the same address in every
//! process, so it holds absolute addresses (its buffer, the next segment, its pool's
//! description, an external buffer's shared info) and nothing process-local.

use core::cell::Cell;
use core::ptr::null_mut;

use crate::pool_info::PoolInfo;
use crate::shared_info::ExtSharedInfo;
use crate::sync::AtomicU16;

/// Bytes kept free in front of the data of a freshly reset buffer (DPDK's
/// `RTE_PKTMBUF_HEADROOM`): room to prepend headers without moving the payload.
pub const HEADROOM: u16 = 128;

/// The most segments one packet may have (DPDK's `RTE_MBUF_MAX_NB_SEGS`): the segment count
/// is a 16-bit field.
pub const MAX_SEGS: u32 = 65_535;

/// The port of a buffer that came from no port (DPDK's `RTE_MBUF_PORT_INVALID`).
pub const PORT_INVALID: u16 = u16::MAX;

/// Bytes of the header (`sizeof(struct rte_mbuf)`).
pub const HEADER_SIZE: usize = 128;

/// The private area after the header is a multiple of this (DPDK's `RTE_MBUF_PRIV_ALIGN`).
pub const PRIV_ALIGN: u16 = 8;

/// Offset and length of the space dynamic fields are placed in (`dynfield1`).
pub const DYNFIELD_OFFSET: usize = 92;
pub const DYNFIELD_LEN: usize = 36;

bitflags::bitflags! {
    /// The offload flags word (`ol_flags`). Only the bits this crate acts on are named; every
    /// other bit (receive and transmit offloads, dynamic flags) is kept as set.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct OlFlags: u64 {
        /// A VLAN tag is in `vlan_tci` (`RTE_MBUF_F_RX_VLAN`).
        const RX_VLAN = 1 << 0;
        /// `hash` holds the RSS hash (`RTE_MBUF_F_RX_RSS_HASH`).
        const RX_RSS_HASH = 1 << 1;
        /// The data is in an external buffer described by a shared info
        /// (`RTE_MBUF_F_EXTERNAL`).
        const EXTERNAL = 1 << 61;
        /// The data is another buffer's: this one is attached to a direct buffer
        /// (`RTE_MBUF_F_INDIRECT`).
        const INDIRECT = 1 << 62;
        const _ = !0;
    }
}

/// A packet buffer's header (`struct rte_mbuf`), 128 bytes, aligned to a cache line.
///
/// Fields are private: the functions of this crate keep them consistent (a segment's data
/// inside its buffer, a packet's length the sum of its segments'), and accessors give what a
/// program reads. The layout is checked against DPDK's offsets below.
///
/// The fields are cells: the header is shared memory that other threads reach too — a
/// clone's holder changes this buffer's reference count while its owner sets its port — so
/// the crate never takes a `&mut MbufHeader` (which would claim the count as well); it
/// writes fields through shared references, and the count is atomic. A header is not `Sync`:
/// a thread reaches one through a packet it holds.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct MbufHeader {
    // First cache line: what a receive path writes and a transmit path reads.
    /// Start of the buffer (this buffer's room, another buffer's when attached, or an
    /// external buffer).
    pub(crate) buf_addr: Cell<*mut u8>,
    /// Device address of `buf_addr`; all ones when unknown.
    pub(crate) buf_iova: Cell<u64>,
    /// Where the data starts in the buffer.
    pub(crate) data_off: Cell<u16>,
    /// References to this buffer: 1 for a buffer with one owner, more once cloned. Updated
    /// atomically except when it is 1 (nobody else holds it).
    pub(crate) refcnt: AtomicU16,
    /// Segments of the packet; meaningful in the first segment.
    pub(crate) nb_segs: Cell<u16>,
    pub(crate) port: Cell<u16>,
    pub(crate) ol_flags: Cell<u64>,
    pub(crate) packet_type: Cell<u32>,
    /// Bytes of the whole packet (every segment); meaningful in the first segment.
    pub(crate) pkt_len: Cell<u32>,
    /// Bytes of data in this segment.
    pub(crate) data_len: Cell<u16>,
    pub(crate) vlan_tci: Cell<u16>,
    pub(crate) hash: Cell<u64Unaligned>,
    pub(crate) vlan_tci_outer: Cell<u16>,
    /// Bytes of the buffer at `buf_addr`.
    pub(crate) buf_len: Cell<u16>,
    /// The description of the pool the header came from (its room and private sizes), in
    /// that pool's mempool private area.
    pub(crate) pool: Cell<*const PoolInfo>,
    // Second cache line.
    /// The next segment, or null in the last.
    pub(crate) next: Cell<*mut MbufHeader>,
    pub(crate) tx_offload: Cell<u64>,
    /// The external buffer's shared info, when `EXTERNAL`.
    pub(crate) shinfo: Cell<*mut ExtSharedInfo>,
    /// Bytes of the private area between the header and its own room.
    pub(crate) priv_size: Cell<u16>,
    pub(crate) timesync: Cell<u16>,
    /// Space for dynamic fields ([`crate::dynamic`]).
    pub(crate) dynfield1: Cell<[u32; 9]>,
}

/// The 8-byte hash union at offset 44, which DPDK aligns to 4: two 32-bit words.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub(crate) struct u64Unaligned {
    pub(crate) lo: u32,
    pub(crate) hi: u32,
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<MbufHeader>() == HEADER_SIZE);
    assert!(align_of::<MbufHeader>() == 64);
    assert!(offset_of!(MbufHeader, buf_iova) == 8);
    assert!(offset_of!(MbufHeader, data_off) == 16);
    assert!(offset_of!(MbufHeader, refcnt) == 18);
    assert!(offset_of!(MbufHeader, nb_segs) == 20);
    assert!(offset_of!(MbufHeader, port) == 22);
    assert!(offset_of!(MbufHeader, ol_flags) == 24);
    assert!(offset_of!(MbufHeader, packet_type) == 32);
    assert!(offset_of!(MbufHeader, pkt_len) == 36);
    assert!(offset_of!(MbufHeader, data_len) == 40);
    assert!(offset_of!(MbufHeader, vlan_tci) == 42);
    assert!(offset_of!(MbufHeader, hash) == 44);
    assert!(offset_of!(MbufHeader, vlan_tci_outer) == 52);
    assert!(offset_of!(MbufHeader, buf_len) == 54);
    assert!(offset_of!(MbufHeader, pool) == 56);
    assert!(offset_of!(MbufHeader, next) == 64);
    assert!(offset_of!(MbufHeader, tx_offload) == 72);
    assert!(offset_of!(MbufHeader, shinfo) == 80);
    assert!(offset_of!(MbufHeader, priv_size) == 88);
    assert!(offset_of!(MbufHeader, timesync) == 90);
    assert!(offset_of!(MbufHeader, dynfield1) == DYNFIELD_OFFSET);
};

impl MbufHeader {
    /// A header with every field zero but those a pool sets once per object.
    pub(crate) fn new_in_pool(
        buf_addr: *mut u8,
        buf_iova: u64,
        buf_len: u16,
        priv_size: u16,
        pool: *const PoolInfo,
    ) -> MbufHeader {
        MbufHeader {
            buf_addr: Cell::new(buf_addr),
            buf_iova: Cell::new(buf_iova),
            data_off: Cell::new(HEADROOM.min(buf_len)),
            refcnt: AtomicU16::new(1),
            nb_segs: Cell::new(1),
            port: Cell::new(PORT_INVALID),
            ol_flags: Cell::new(0),
            packet_type: Cell::new(0),
            pkt_len: Cell::new(0),
            data_len: Cell::new(0),
            vlan_tci: Cell::new(0),
            hash: Cell::new(u64Unaligned::default()),
            vlan_tci_outer: Cell::new(0),
            buf_len: Cell::new(buf_len),
            pool: Cell::new(pool),
            next: Cell::new(null_mut()),
            tx_offload: Cell::new(0),
            shinfo: Cell::new(null_mut()),
            priv_size: Cell::new(priv_size),
            timesync: Cell::new(0),
            dynfield1: Cell::new([0; 9]),
        }
    }

    /// The offload flags.
    #[inline]
    pub fn ol_flags(&self) -> OlFlags {
        OlFlags::from_bits_retain(self.ol_flags.get())
    }

    /// Whether the buffer holds its own data (neither attached nor external:
    /// `RTE_MBUF_DIRECT`).
    #[inline]
    pub fn is_direct(&self) -> bool {
        self.ol_flags.get() & (OlFlags::INDIRECT.bits() | OlFlags::EXTERNAL.bits()) == 0
    }

    /// Whether the buffer is attached to another buffer's data (`RTE_MBUF_CLONED`).
    #[inline]
    pub fn is_indirect(&self) -> bool {
        self.ol_flags.get() & OlFlags::INDIRECT.bits() != 0
    }

    /// Whether the data is an external buffer (`RTE_MBUF_HAS_EXTBUF`).
    #[inline]
    pub fn has_extbuf(&self) -> bool {
        self.ol_flags.get() & OlFlags::EXTERNAL.bits() != 0
    }

    /// Where the data starts in the buffer (the headroom).
    #[inline]
    pub fn data_off(&self) -> u16 {
        self.data_off.get()
    }

    /// Bytes of data in this segment.
    #[inline]
    pub fn data_len(&self) -> u16 {
        self.data_len.get()
    }

    /// Bytes of the whole packet (meaningful in a first segment).
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.pkt_len.get()
    }

    /// Segments of the packet (meaningful in a first segment).
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.nb_segs.get()
    }

    /// Bytes of the buffer.
    #[inline]
    pub fn buf_len(&self) -> u16 {
        self.buf_len.get()
    }

    /// Start of the buffer.
    #[inline]
    pub fn buf_addr(&self) -> *mut u8 {
        self.buf_addr.get()
    }

    /// The device address of the buffer, when known.
    #[inline]
    pub fn buf_iova(&self) -> Option<dpmem_eal::Iova> {
        dpmem_eal::Iova::new(self.buf_iova.get())
    }

    /// The next segment, or null.
    #[inline]
    pub fn next(&self) -> *mut MbufHeader {
        self.next.get()
    }

    /// Bytes of the private area after the header.
    #[inline]
    pub fn priv_size(&self) -> u16 {
        self.priv_size.get()
    }

    /// The private area after the header (`rte_mbuf_to_priv`), `priv_size` bytes.
    #[inline]
    pub fn priv_area(&self) -> *mut u8 {
        core::ptr::from_ref(self)
            .cast::<u8>()
            .cast_mut()
            .wrapping_add(HEADER_SIZE)
    }

    #[inline]
    pub fn port(&self) -> u16 {
        self.port.get()
    }

    #[inline]
    pub fn set_port(&self, port: u16) {
        self.port.set(port);
    }

    #[inline]
    pub fn packet_type(&self) -> u32 {
        self.packet_type.get()
    }

    #[inline]
    pub fn set_packet_type(&self, ptype: u32) {
        self.packet_type.set(ptype);
    }

    #[inline]
    pub fn vlan_tci(&self) -> u16 {
        self.vlan_tci.get()
    }

    #[inline]
    pub fn set_vlan_tci(&self, tci: u16) {
        self.vlan_tci.set(tci);
    }

    /// The RSS hash (the low word of the hash union).
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        self.hash.get().lo
    }

    #[inline]
    pub fn set_rss_hash(&self, hash: u32) {
        let mut h = self.hash.get();
        h.lo = hash;
        self.hash.set(h);
    }

    #[inline]
    pub fn tx_offload(&self) -> u64 {
        self.tx_offload.get()
    }

    #[inline]
    pub fn set_tx_offload(&self, tx_offload: u64) {
        self.tx_offload.set(tx_offload);
    }

    /// Sets offload flags other than `EXTERNAL` and `INDIRECT`, which say where the data is
    /// and only this crate's attach and detach change.
    #[inline]
    pub fn insert_ol_flags(&self, flags: OlFlags) {
        let keep = flags - OlFlags::EXTERNAL - OlFlags::INDIRECT;
        self.ol_flags.set(self.ol_flags.get() | keep.bits());
    }

    /// Clears offload flags other than `EXTERNAL` and `INDIRECT` (see
    /// [`insert_ol_flags`](Self::insert_ol_flags)).
    #[inline]
    pub fn remove_ol_flags(&self, flags: OlFlags) {
        let drop = flags - OlFlags::EXTERNAL - OlFlags::INDIRECT;
        self.ol_flags.set(self.ol_flags.get() & !drop.bits());
    }

    /// The references to this buffer.
    #[inline]
    pub fn refcnt(&self) -> u16 {
        self.refcnt.load(crate::sync::Ordering::Acquire)
    }

    /// The space dynamic fields live in, as 36 bytes (byte 0 is header offset
    /// [`DYNFIELD_OFFSET`]).
    #[inline]
    pub fn dynfield_bytes(&self) -> [u8; DYNFIELD_LEN] {
        let words = self.dynfield1.get();
        let mut out = [0u8; DYNFIELD_LEN];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        out
    }

    /// Writes the dynamic field space.
    #[inline]
    pub fn set_dynfield_bytes(&self, bytes: [u8; DYNFIELD_LEN]) {
        let mut words = [0u32; 9];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        self.dynfield1.set(words);
    }
}
