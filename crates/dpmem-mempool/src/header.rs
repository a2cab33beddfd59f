//! The pool's shared state: a header at the start of the memzone `MP_<name>`, then the
//! private data area, then one cache per lcore id; and the records of the memory chunks
//! that hold the objects (blocks of the EAL's heap). No field points at process-local memory.

use crate::cache::CacheState;
use crate::layout::ObjSize;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Marks an initialised pool header (changed with the layout: a header of another layout is no
/// pool to this build).
pub(crate) const POOL_MAGIC: u64 = 0x6470_6d65_6d50_4f32;

/// Longest pool name (`RTE_MEMPOOL_NAMESIZE` less its NUL): `MP_` + name must fit a ring
/// name, and `RG_MP_` + name a memzone name.
pub const MEMPOOL_NAME_MAX: usize = 25;

/// Prefix of the memzones a pool owns: its header `MP_<name>`, chunks `MP_<name>_<n>`.
pub(crate) const MEMZONE_PREFIX: &str = "MP_";

#[repr(C, align(64))]
pub(crate) struct PoolHeader {
    /// [`POOL_MAGIC`] once the header is complete: stored with `Release` after every other
    /// field, loaded with `Acquire` before any other is read by another handle.
    pub magic: AtomicU64,
    pub name: [u8; 32],
    /// The handler's name: every process resolves it in its own handler registry.
    pub handler: [u8; 32],
    /// [`MempoolFlags`](crate::MempoolFlags) bits, including dpmem's own (`POOL_CREATED`,
    /// `NON_IO`).
    pub flags: AtomicU32,
    /// Objects when full.
    pub size: u32,
    pub cache_size: u32,
    /// The element size the caller asked for.
    pub requested_elt_size: u32,
    pub header_size: u32,
    pub rounded_elt_size: u32,
    pub trailer_size: u32,
    pub total_size: u32,
    pub private_data_size: u32,
    pub socket_id: i32,
    /// Objects created so far.
    pub populated_size: AtomicU32,
    pub nb_mem_chunks: AtomicU32,
    /// Numbers the chunk memzones of the default populate.
    pub next_zone_id: u32,
    /// Offset of the private data area from the header.
    pub private_offset: u32,
    /// Offset of the per-lcore caches from the header (0: no caches).
    pub cache_offset: u32,
    _reserved: u32,
    /// Page size objects must not straddle (0: none); fixed at the first populate.
    pub page_bound: u64,
    /// The handler's word (its store's address).
    pub pool_data: u64,
    /// First and last [`ChunkRecord`], in populate order (0: none).
    pub chunk_head: u64,
    pub chunk_tail: u64,
    /// First and last object header of the list of every object (0: none).
    pub obj_head: u64,
    pub obj_tail: u64,
    /// Tells this pool from another made later at the same address: a random number drawn at
    /// creation, never changed (what a [`UserCache`](crate::UserCache) binds to with the
    /// header's address).
    pub serial: u64,
}

impl PoolHeader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        handler: &str,
        flags: u32,
        size: u32,
        cache_size: u32,
        requested_elt_size: u32,
        obj: ObjSize,
        private_data_size: u32,
        socket_id: i32,
        private_offset: u32,
        cache_offset: u32,
    ) -> PoolHeader {
        PoolHeader {
            magic: AtomicU64::new(0),
            name: encode(name),
            handler: encode(handler),
            flags: AtomicU32::new(flags),
            size,
            cache_size,
            requested_elt_size,
            header_size: obj.header_size,
            rounded_elt_size: obj.elt_size,
            trailer_size: obj.trailer_size,
            total_size: obj.total_size,
            private_data_size,
            socket_id,
            populated_size: AtomicU32::new(0),
            nb_mem_chunks: AtomicU32::new(0),
            next_zone_id: 0,
            private_offset,
            cache_offset,
            _reserved: 0,
            page_bound: 0,
            pool_data: 0,
            chunk_head: 0,
            chunk_tail: 0,
            obj_head: 0,
            obj_tail: 0,
            serial: new_serial(),
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    pub fn set_flags(&self, set: u32, clear: u32) {
        let now = self.flags.load(Ordering::Relaxed);
        self.flags.store((now | set) & !clear, Ordering::Release);
    }
}

/// A number no other pool of any process is likely to draw (one in 2^64): hashed with keys the
/// standard library seeds from the operating system's randomness.
fn new_serial() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A block of memory holding objects (DPDK's `rte_mempool_memhdr`), in the EAL's heap.
#[repr(C)]
pub(crate) struct ChunkRecord {
    /// Next record (0: last).
    pub next: u64,
    pub addr: u64,
    /// IOVA of `addr`, or `BAD_IOVA`.
    pub iova: u64,
    pub len: u64,
    /// The memzone the chunk is in when the pool reserved it (freed with the pool), else
    /// empty.
    pub memzone: [u8; 32],
    /// The chunk is an anonymous mapping of the populating process (unmapped with the pool).
    pub anonymous: u32,
    /// Objects in the chunk.
    pub objects: u32,
}

/// Size in the header memzone of the caches of every lcore id.
pub(crate) fn caches_size() -> usize {
    core::mem::size_of::<CacheState>() * dpmem_eal::options::MAX_LCORE as usize
}

pub(crate) fn encode(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = s.len().min(31);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

pub(crate) fn decode(raw: &[u8; 32]) -> String {
    let len = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..len]).into_owned()
}
