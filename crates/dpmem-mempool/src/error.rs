//! What can go wrong with a mempool, with the errno-like kind a DPDK user expects.

use dpmem_eal::{EalError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// A bad argument (`EINVAL`): cache too large, unknown flags, zero objects, ...
    #[error("{0}")]
    InvalidArgument(String),
    #[error("mempool name {name:?} is {len} bytes; at most {max} are allowed")]
    NameTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("mempool {0:?} already exists")]
    AlreadyExists(String),
    #[error("no mempool called {0:?}")]
    NotFound(String),
    /// The pool exists but is not fully populated yet (`ENOENT`): its builder is still
    /// writing it. A pool whose builder stopped (or died) before populating it fully stays
    /// so, and its name stays taken, until that builder frees it.
    #[error("mempool {0:?} is not fully populated yet")]
    NotReady(String),
    #[error("no mempool handler called {0:?}")]
    UnknownHandler(String),
    /// The handler cannot change once the pool holds objects (`EEXIST`, as DPDK).
    #[error("mempool {pool:?}: the handler cannot change after populate (it is {handler:?})")]
    HandlerFixed { pool: String, handler: String },
    #[error("mempool handler {0:?} is already registered")]
    HandlerExists(String),
    #[error("no room for another mempool handler ({max} registered)")]
    HandlerTableFull { max: usize },
    /// Not enough objects (`ENOENT`, as `rte_mempool_get_bulk`): nothing was taken.
    #[error("mempool {pool:?}: {wanted} objects wanted, not that many available")]
    Exhausted { pool: String, wanted: usize },
    /// The pool already holds all its objects (`ENOSPC`).
    #[error("mempool {0:?} is already fully populated")]
    Full(String),
    /// A populate region too small for even one object (`EINVAL`).
    #[error("mempool {pool:?}: {len} bytes at {addr:#x} cannot hold one {total} byte object")]
    RegionTooSmall {
        pool: String,
        addr: usize,
        len: usize,
        total: usize,
    },
    /// A pointer that is not an object of this pool, or one put twice (`EINVAL`).
    #[error("mempool {pool:?}: {addr:#x} {reason}")]
    BadObject {
        pool: String,
        addr: usize,
        reason: &'static str,
    },
    /// The handler's store refused an operation.
    #[error("mempool {pool:?}, handler {handler:?}: {reason}")]
    Handler {
        pool: String,
        handler: String,
        reason: String,
    },
    /// Another [`LcoreCache`](crate::LcoreCache) handle holds this lcore's cache (`EBUSY`).
    #[error("mempool {pool:?}: the cache of lcore {lcore} is held by another handle")]
    CacheBusy { pool: String, lcore: u32 },
    #[error("mempool event callback not registered")]
    CallbackNotFound,
    /// Memory or memzones from the EAL.
    #[error("mempool {pool:?}: {source}")]
    Eal { pool: String, source: EalError },
}

impl MempoolError {
    /// The errno family DPDK would report.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MempoolError::InvalidArgument(_)
            | MempoolError::RegionTooSmall { .. }
            | MempoolError::BadObject { .. } => ErrorKind::Inval,
            MempoolError::NameTooLong { .. } => ErrorKind::NameTooLong,
            MempoolError::AlreadyExists(_)
            | MempoolError::HandlerFixed { .. }
            | MempoolError::HandlerExists(_) => ErrorKind::Exist,
            MempoolError::NotFound(_)
            | MempoolError::NotReady(_)
            | MempoolError::UnknownHandler(_)
            | MempoolError::Exhausted { .. }
            | MempoolError::CallbackNotFound => ErrorKind::NoEnt,
            MempoolError::HandlerTableFull { .. } | MempoolError::Full(_) => ErrorKind::NoSpc,
            MempoolError::Handler { .. } => ErrorKind::Io,
            MempoolError::CacheBusy { .. } => ErrorKind::Busy,
            MempoolError::Eal { source, .. } => source.kind(),
        }
    }
}
