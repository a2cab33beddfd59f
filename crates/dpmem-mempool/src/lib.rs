//! dpmem's mempools: DPDK 22.11's `rte_mempool` in Rust.
//!
//! A mempool is a fixed number of fixed-size objects carved out of hugepage memory once, then
//! taken and returned at line rate. Everything it keeps lives in memzones — the header (with
//! the private area and one cache per lcore id) in `MP_<name>`, the objects in `MP_<name>_<n>`,
//! the free objects in the handler's store (`RG_MP_<name>` for the ring handlers) — so a
//! secondary process finds the pool by name and uses it at the same addresses.
//!
//! - **Objects**: each has a header just before it (owning pool, IOVA, a cookie checked by
//!   the `debug` feature) and, with `debug`, a trailer cookie after it; slots are whole cache
//!   lines unless [`MempoolFlags::NO_CACHE_ALIGN`]. Objects never straddle a page unless
//!   [`MempoolFlags::NO_IOVA_CONTIG`], so each one is IOVA-contiguous.
//! - **Memory**: [`Mempool::populate_default`] (what [`Mempool::create`] uses) takes the
//!   whole pool in one IOVA-contiguous block when the EAL has one, and otherwise builds it
//!   from as many chunks as the memory's pieces need ([`Mempool::mem_iter`] lists them).
//! - **Handlers** hold the objects that are in the pool ([`handler`]): rings in every mode
//!   (the default follows [`MempoolFlags::SP_PUT`] / [`MempoolFlags::SC_GET`]), a spinlocked
//!   and a lock-free stack, or one the user registers.
//! - **Caches**: each lcore id has a cache of up to 512 objects in front of the handler;
//!   EAL threads and registered threads use theirs automatically, other threads go to the
//!   handler directly, and [`UserCache`] is a cache the caller owns ([`cache`] has the
//!   algorithm). A loop that gets and puts many times takes its lcore's cache once with
//!   [`Mempool::lcore_cache`] (DPDK's `rte_mempool_default_cache` with
//!   `rte_mempool_generic_get/put`): the [`LcoreCache`] handle keeps the cache's length in a
//!   register, about twice as fast per object as the plain calls.
//! - **Typed**: [`TypedMempool`] hands out [`PoolObj`] handles that put their value back when
//!   dropped; they are `Send` and travel through a [`HandleRing`](dpmem_ring::HandleRing)
//!   to another lcore and back, with no `unsafe` in the program.
//!
//! - **Telemetry**: `/mempool/list` and `/mempool/info,<name>` on the EAL's telemetry socket
//!   (DPDK's commands and field names), registered when the process first creates, looks up
//!   or walks a pool, or calls [`register_telemetry`].
//!
//! A per-lcore cache belongs to whichever thread holds that lcore id; as in DPDK, two
//! processes must not run threads with the same lcore id on one pool.
//!
//! The raw object API, as DPDK's C has it:
//!
//! ```no_run
//! use dpmem_mempool::MempoolConfig;
//! let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"]).unwrap();
//! let pool = MempoolConfig::new("frames", 4095, 2048).cache_size(256).create(&eal).unwrap();
//! let mut objs = [core::ptr::null_mut(); 32];
//! pool.get_bulk(&mut objs).unwrap();
//! // SAFETY: the objects came from this pool and are given back once.
//! unsafe { pool.put_bulk(&objs) };
//! // In a hot loop: find the lcore's cache once.
//! let mut cache = pool.lcore_cache().unwrap();
//! for _ in 0..1000 {
//!     cache.get_bulk(&mut objs).unwrap();
//!     // SAFETY: as above.
//!     unsafe { cache.put_bulk(&objs) };
//! }
//! ```

pub mod cache;
mod error;
mod flags;
pub mod handler;
mod header;
mod layout;
mod pool;
mod telemetry;
/// The ring's atomics shim: loom's types under `--cfg loom`, the hardware's otherwise.
use dpmem_ring::sync;
mod typed;

pub use cache::{flush_threshold, CACHE_MAX_SIZE};
pub use error::MempoolError;
pub use flags::MempoolFlags;
pub use handler::{
    handler_names, register_handler, HandlerStore, MempoolHandler, PoolContext, StackKind,
    DEFAULT_HANDLER,
};
pub use header::MEMPOOL_NAME_MAX;
pub use layout::{calc_obj_size, ObjSize, CACHE_LINE};
pub use pool::create::MempoolConfig;
pub use pool::events::{
    register_event_callback, unregister_event_callback, CallbackId, MempoolEvent,
};
pub use pool::lcore_cache::LcoreCache;
pub use pool::objects::MemChunk;
pub use pool::populate::ChunkFreeFn;
pub use pool::user_cache::UserCache;
pub use pool::Mempool;
pub use telemetry::register_telemetry;
pub use typed::{PoolObj, TypedMempool, TypedPoolBuilder};
