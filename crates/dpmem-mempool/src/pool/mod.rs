//! [`Mempool`]: a named pool of fixed-size objects in memzones, with per-lcore caches in
//! front of a pluggable handler (DPDK's `rte_mempool`).
//!
//! The handle and its accessors are here; the rest of the pool is in one file per concept,
//! each using only files listed before it (and this one), so that no module reaches back:
//!
//! - `objects`: an object's header, and iterating objects and memory chunks;
//! - `cookies`: the `debug` feature's checks of objects going in and out;
//! - `data_path`: what the plain calls and the [`LcoreCache`](lcore_cache::LcoreCache)
//!   handle share: finding the lcore's cache, the way to the handler with and without a
//!   cache, the out-of-line and cold paths;
//! - `user_cache`, `get_put`, `lcore_cache`: the caller's own cache, the public gets and
//!   puts, and the handle on the lcore's cache;
//! - `counts` and `audit`: what is in the pool, and checking and describing it;
//! - `events`: the ready and destroy callbacks;
//! - `populate`: giving a pool its objects chunk by chunk (caller memory, anonymous memory)
//!   and taking the memory back;
//! - `populate_default`: the EAL's memory, in one block when it can, else in as many as it
//!   takes;
//! - `create`: creating, finding, walking and freeing pools, and counting this process's
//!   handles.

mod audit;
mod cookies;
mod counts;
pub(crate) mod create;
mod data_path;
pub(crate) mod events;
mod get_put;
pub(crate) mod lcore_cache;
pub(crate) mod objects;
pub(crate) mod populate;
mod populate_default;
pub(crate) mod user_cache;

use core::ptr::NonNull;

use dpmem_eal::lcore::LcoreIdProbe;
use dpmem_eal::memzone::Memzone;
use dpmem_eal::{Eal, EalError, Socket};

use crate::cache::CacheState;
use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::handler::{Handler, PoolContext, Store};
use crate::header::{decode, PoolHeader};
use crate::layout::ObjSize;
use crate::sync::Ordering;

/// A handle on a mempool. Handles are per process and per EAL; the pool itself is in shared
/// memory, found by name from any process ([`Mempool::lookup`]).
pub struct Mempool<'eal> {
    eal: &'eal Eal,
    zone: Memzone,
    header: NonNull<PoolHeader>,
    /// Cache of lcore 0 (the others follow), or null when the pool has no caches.
    caches: *mut CacheState,
    /// Finds the calling thread's lcore id (its cache) in one thread-local read.
    lcore: LcoreIdProbe<'eal>,
    handler: Handler,
    /// The handler's store, once the pool is populated (or found populated).
    store: Option<Store<'eal>>,
    name: String,
}

// SAFETY: the handle's pointers are into memzones that live as long as the EAL borrow; the
// shared words are atomics or protected by the pool's protocols (caches are only touched by
// the thread holding their lcore id; the store synchronises itself).
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; `&Mempool` operations are the get/put protocol.
unsafe impl Sync for Mempool<'_> {}

impl std::fmt::Debug for Mempool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name)
            .field("size", &self.size())
            .field("populated", &self.populated_size())
            .field("handler", &self.handler_name())
            .finish()
    }
}

/// Wraps an EAL error with the pool's name.
fn eal_error(pool: &str) -> impl FnOnce(EalError) -> MempoolError + '_ {
    move |source| MempoolError::Eal {
        pool: pool.to_owned(),
        source,
    }
}

impl<'eal> Mempool<'eal> {
    #[inline(always)]
    fn hdr(&self) -> &PoolHeader {
        // SAFETY: the header lives in the pool's memzone, which outlives the handle.
        unsafe { self.header.as_ref() }
    }

    fn hdr_mut(&mut self) -> &mut PoolHeader {
        // SAFETY: as `hdr`; the fields written through this are written only by the
        // populating handle (`&mut self`), before other threads can use the objects.
        unsafe { self.header.as_mut() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn eal(&self) -> &'eal Eal {
        self.eal
    }

    /// Objects when full.
    pub fn size(&self) -> u32 {
        self.hdr().size
    }

    pub fn cache_size(&self) -> u32 {
        self.hdr().cache_size
    }

    /// The element size asked for.
    pub fn elt_size(&self) -> u32 {
        self.hdr().requested_elt_size
    }

    /// The slot layout of every object.
    pub fn obj_size(&self) -> ObjSize {
        let h = self.hdr();
        ObjSize {
            header_size: h.header_size,
            elt_size: h.rounded_elt_size,
            trailer_size: h.trailer_size,
            total_size: h.total_size,
        }
    }

    pub fn socket(&self) -> Socket {
        Socket::from_raw(self.hdr().socket_id).unwrap_or(Socket::Any)
    }

    pub fn flags(&self) -> MempoolFlags {
        MempoolFlags::from_bits_retain(self.hdr().flags())
    }

    /// Whether no object has a valid IOVA (the pool cannot be used for device IO).
    pub fn is_non_io(&self) -> bool {
        self.flags().contains(MempoolFlags::NON_IO)
    }

    pub fn handler_name(&self) -> String {
        decode(&self.hdr().handler)
    }

    pub fn populated_size(&self) -> u32 {
        self.hdr().populated_size.load(Ordering::Acquire)
    }

    pub fn nb_mem_chunks(&self) -> u32 {
        self.hdr().nb_mem_chunks.load(Ordering::Acquire)
    }

    /// The private data area (`rte_mempool_get_priv`): `private_data_size` bytes, rounded up
    /// to a cache line, zeroed at creation.
    pub fn private_data(&self) -> *mut u8 {
        // SAFETY: the private area is inside the header memzone at this offset.
        unsafe { self.zone.as_ptr().add(self.hdr().private_offset as usize) }
    }

    pub fn private_data_size(&self) -> u32 {
        self.hdr().private_data_size
    }

    /// The memzone holding the header, private area and caches.
    pub fn memzone(&self) -> &Memzone {
        &self.zone
    }

    fn context(&self) -> PoolContext<'_> {
        PoolContext {
            eal: self.eal,
            name: &self.name,
            size: self.size(),
            socket: self.socket(),
            flags: self.flags(),
            pool_data: self.hdr().pool_data,
        }
    }

    fn handler_error(&self, reason: String) -> MempoolError {
        MempoolError::Handler {
            pool: self.name.clone(),
            handler: self.handler_name(),
            reason,
        }
    }
}
