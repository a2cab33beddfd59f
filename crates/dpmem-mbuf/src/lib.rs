//! dpmem's packet buffers: DPDK 22.11's `rte_mbuf` in Rust.
//!
//! A packet buffer is a 128-byte header ([`MbufHeader`], laid out as DPDK's), a private area
//! and a data room, carved from a mempool in shared memory, so a buffer has the same address
//! in every process. Packets are chains of segments; segments share data by reference count
//! (clones are indirect buffers attached to a direct one), or point into external memory
//! described by a shared info whose callback gives it back after the last reference.
//!
//! - **Pools** ([`PktmbufPool`]): ordinary ones with a data room per buffer, and pinned ones
//!   whose buffers' data is fixed pieces of the caller's memory.
//! - **The safe handle** ([`Mbuf`]): owns a packet and frees it on drop; segments are byte
//!   slices; clones share data and make it read-only; [`ExternalBuffer`] lends a program's
//!   memory to packets; [`Mbuf::into_bytes`] hands a packet to code that takes
//!   `bytes::Bytes`, without a copy.
//! - **Bursts** ([`Burst`]): up to `N` packets kept in place, filled by one bulk allocation
//!   and freed by one bulk free, for loops that move packets 32 at a time.
//! - **The raw functions**, named as DPDK's, for porting C code: [`free`], [`data`],
//!   [`attach`], the pool's `*_raw` methods and [`check`].
//! - **Dynamic fields and flags** ([`dynamic`]): named places in the header every process
//!   agrees on.
//! - **Telemetry**: `/dpmem/mbuf_pools` and `/dpmem/mbuf_pool_info,<name>` on the EAL's
//!   telemetry socket, registered when a process first creates, looks up or describes a pool
//!   (or calls [`register_telemetry`]).
//!
//! ```
//! use dpmem_mbuf::PktmbufPool;
//! let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64", "--file-prefix", "mbuf-doc"])?;
//! let pool = PktmbufPool::builder("rx", 1023).cache_size(32).create(&eal)?;
//! let mut packet = pool.alloc()?;
//! packet.extend_from_slice(b"payload")?;
//! packet.prepend(4)?.copy_from_slice(b"hdr:");
//! let clone = packet.clone_in(&pool)?;
//! assert_eq!(clone.to_vec(), b"hdr:payload");
//! assert!(packet.append(1).is_err()); // shared now: read-only
//! drop((packet, clone));
//! assert_eq!(pool.avail_count(), 1023);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alloc;
pub mod attach;
mod burst;
mod bytes_owner;
pub mod check;
mod clone;
mod copy;
pub mod data;
pub mod dynamic;
mod error;
mod external;
pub mod free;
mod handle;
mod header;
mod pool;
mod pool_info;
mod put;
mod refcount;
mod ring_handle;
mod shared_info;
mod sync;
mod telemetry;

pub use alloc::reset;
pub use burst::{Burst, BurstDrain};
pub use error::MbufError;
pub use external::ExternalBuffer;
pub use handle::{Mbuf, Segments};
pub use header::{
    MbufHeader, OlFlags, DYNFIELD_LEN, DYNFIELD_OFFSET, HEADER_SIZE, HEADROOM, MAX_SEGS,
    PORT_INVALID, PRIV_ALIGN,
};
pub use pool::create::{ExtMem, PktmbufPoolBuilder, DEFAULT_BUF_SIZE};
pub use pool::{PacketPoolInfo, PktmbufPool};
pub use pool_info::POOL_F_PINNED_EXT_BUF;
pub use shared_info::{ExtFreeCallback, ExtSharedInfo};
pub use telemetry::register_telemetry;
