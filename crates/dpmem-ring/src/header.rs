//! The ring header: what sits at the start of a ring's memory, followed by its slots.
//!
//! Everything here is `#[repr(C)]` and holds no pointer, so a ring in shared memory reads
//! the same from every process that maps it, wherever it is mapped.

use crate::cache_padded::CachePadded;
use crate::headtail::HeadTail;
use crate::sync::AtomicU64;

/// Longest ring name in bytes, as DPDK's (`RTE_RING_NAMESIZE` less the NUL): the memzone
/// that holds a named ring ([`crate::named`]) carries a 3-byte prefix within its 32-byte
/// name.
pub const RING_NAME_MAX: usize = 28;

/// Stored last by initialisation, checked by attach: "dpmeMRN4" in ASCII, read as a
/// little-endian word. The final digit is the header layout's version, so a process built
/// for another layout refuses the ring instead of reading its words in the wrong places:
/// the first ("dpmeMRNG") kept a side's head and tail together, the second put each on a
/// block of its own, the third lets a ring choose (a word for the head beside the tail),
/// the fourth keeps the room left in the high half of the head word when asked (a setting
/// for it beside the head).
pub(crate) const RING_MAGIC: u64 = 0x344e_524d_656d_7064;

/// What never changes after initialisation.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RingMeta {
    /// [`RING_MAGIC`] once the ring is ready, 0 before. Initialisation writes every other
    /// field of the header first and then stores this one with `Release`; whoever loads it
    /// with `Acquire` and finds [`RING_MAGIC`] sees the whole header as written. (An atomic
    /// of the same size and alignment as the `u64` it replaced: the layout is unchanged.)
    pub(crate) magic: AtomicU64,
    /// Bytes of the whole block (header and slots) the ring was built for.
    pub(crate) memory_size: u64,
    /// The name, NUL-padded; at most [`RING_NAME_MAX`] bytes are used.
    pub(crate) name: [u8; 32],
    /// The creation flags.
    pub(crate) flags: u32,
    /// Number of slots, a power of two.
    pub(crate) size: u32,
    /// `size - 1`: a position masked with it is a slot index.
    pub(crate) mask: u32,
    /// How many elements the ring holds at most (`size - 1`, or the exact count).
    pub(crate) capacity: u32,
    /// Bytes per element, a non-zero multiple of 4.
    pub(crate) esize: u32,
    /// Under loom only: one model cell per slot. The slot copies report through them which
    /// thread writes and which reads each slot ([`crate::slots::track`]), so loom checks that
    /// every read of a slot happens after the write it reads, as the head/tail orderings must
    /// ensure: the copies themselves are plain memory, which loom does not see.
    #[cfg(loom)]
    pub(crate) slot_cells: Box<[crate::sync::ModelCell<()>]>,
}

/// The header. The slots start right after it, at [`SLOTS_OFFSET`].
///
/// Five 128-byte blocks: the metadata, then for each side a head block and a tail block
/// (see [`HeadTail`]; the head word sits in one or the other, by the ring's layout), so
/// that the slots start 640 bytes in.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RingHeader {
    pub(crate) meta: CachePadded<RingMeta>,
    /// Producers' head and tail; written by producers, the tail read by consumers.
    pub(crate) prod: HeadTail,
    /// Consumers' head and tail; written by consumers, the tail read by producers.
    pub(crate) cons: HeadTail,
}

/// Byte offset of slot 0 from the start of the ring's memory.
pub(crate) const SLOTS_OFFSET: usize = core::mem::size_of::<RingHeader>();
