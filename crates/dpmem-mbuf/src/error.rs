//! What can go wrong with a packet buffer or its pool, with the errno-like kind a DPDK user
//! expects. Every error leaves the packet and the pool as they were.

use dpmem_eal::ErrorKind;
use dpmem_mempool::MempoolError;

#[derive(Debug, thiserror::Error)]
pub enum MbufError {
    /// A bad argument (`EINVAL`): a private size not a multiple of 8, a data room that does not
    /// fit, a zero-length external area, ...
    #[error("{0}")]
    InvalidArgument(String),
    /// The pool underneath refused (creating, finding, populating, or out of buffers).
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The mempool exists but was not made as a packet buffer pool (`EINVAL`).
    #[error("mempool {0:?} is not a packet buffer pool")]
    NotAPacketPool(String),
    /// The external memory given to a pinned pool holds fewer buffers than the pool's size
    /// (`ENOMEM`); nothing was created.
    #[error("packet buffer pool {pool:?}: the external memory holds {available} buffers, {wanted} wanted")]
    ExternalMemoryShort {
        pool: String,
        available: usize,
        wanted: u32,
    },
    /// Not enough buffers for an all-or-nothing allocation (`ENOENT`); nothing was taken.
    #[error("packet buffer pool {pool:?}: {wanted} buffers wanted, not that many available")]
    Exhausted { pool: String, wanted: usize },
    /// Chaining would give a packet more than 65,535 segments (`EOVERFLOW`).
    #[error("a chain of {segs} segments is past the limit of {max}")]
    TooManySegments { segs: u32, max: u32 },
    /// A packet would grow past what its 32-bit length holds (`EOVERFLOW`).
    #[error("a packet of {len} bytes is past what a packet length holds")]
    PacketTooLong { len: u64 },
    /// Appending more than the last segment's tailroom (`ENOSPC`).
    #[error("{wanted} bytes do not fit in the tailroom of {room} bytes")]
    NoTailroom { wanted: usize, room: u16 },
    /// Prepending more than the first segment's headroom (`ENOSPC`).
    #[error("{wanted} bytes do not fit in the headroom of {room} bytes")]
    NoHeadroom { wanted: usize, room: u16 },
    /// Removing more than a segment holds (`EINVAL`): `adj` from the first, `trim` from the
    /// last.
    #[error("{wanted} bytes to remove from a segment of {len} bytes")]
    SegmentTooShort { wanted: usize, len: u16 },
    /// A range past the end of the packet (`EINVAL`).
    #[error("bytes {offset}..{offset}+{len} are past the packet's {pkt_len} bytes")]
    OutOfPacket { offset: u64, len: u64, pkt_len: u32 },
    /// An operation that needs a direct buffer with one owner got another (`EBUSY`):
    /// attaching to a buffer that is indirect, external or shared.
    #[error("the buffer must be direct with one reference; {0}")]
    NotDirectOrShared(String),
    /// A buffer that fails the sanity check (`EINVAL`), with the reason.
    #[error("bad packet buffer: {0}")]
    Corrupt(&'static str),
    /// A name too long (`ENAMETOOLONG`).
    #[error("name {name:?} is {len} bytes; at most {max} are allowed")]
    NameTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    /// A dynamic field or flag name taken with other parameters (`EEXIST`).
    #[error("dynamic {what} {name:?} is registered with other parameters")]
    DynamicExists { what: &'static str, name: String },
    /// The offset or bit asked for is taken (`EBUSY`).
    #[error("dynamic {what} {name:?} cannot go there: {reason}")]
    DynamicBusy {
        what: &'static str,
        name: String,
        reason: String,
    },
    /// No room is left for a new dynamic field or flag (`ENOENT`, as DPDK).
    #[error("no room for dynamic {what} {name:?}: {reason}")]
    DynamicNoRoom {
        what: &'static str,
        name: String,
        reason: String,
    },
    /// No dynamic field or flag with that name (`ENOENT`).
    #[error("no dynamic {what} called {name:?}")]
    DynamicNotFound { what: &'static str, name: String },
    /// The pool is still open elsewhere in this process (`EBUSY`).
    #[error("packet buffer pool {0:?} has other handles open in this process")]
    PoolBusy(String),
    #[error(transparent)]
    Eal(#[from] dpmem_eal::EalError),
}

impl MbufError {
    /// The errno-like kind of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MbufError::InvalidArgument(_)
            | MbufError::NotAPacketPool(_)
            | MbufError::SegmentTooShort { .. }
            | MbufError::OutOfPacket { .. }
            | MbufError::Corrupt(_) => ErrorKind::Inval,
            MbufError::Mempool(e) => e.kind(),
            MbufError::Exhausted { .. }
            | MbufError::DynamicNotFound { .. }
            | MbufError::DynamicNoRoom { .. } => ErrorKind::NoEnt,
            MbufError::TooManySegments { .. } | MbufError::PacketTooLong { .. } => {
                ErrorKind::Overflow
            }
            MbufError::NoTailroom { .. } | MbufError::NoHeadroom { .. } => ErrorKind::NoSpc,
            MbufError::NotDirectOrShared(_) | MbufError::PoolBusy(_) => ErrorKind::Busy,
            MbufError::DynamicBusy { .. } => ErrorKind::Busy,
            MbufError::NameTooLong { .. } => ErrorKind::NameTooLong,
            MbufError::ExternalMemoryShort { .. } => ErrorKind::NoMem,
            MbufError::DynamicExists { .. } => ErrorKind::Exist,
            MbufError::Eal(e) => e.kind(),
        }
    }
}
