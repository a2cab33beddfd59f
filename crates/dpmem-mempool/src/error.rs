//! What can go wrong with a mempool, with the errno-like kind a DPDK user expects.

use dpmem_eal::{EalError, ErrorKind, Socket};

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
    /// The EAL's heaps had no free block for the pool's memory, not even a chunk of
    /// `smallest` bytes (`ENOMEM`): one object's worth for the default populate, which takes
    /// memory in as many pieces as it must, the whole pool for
    /// [`Mempool::populate_single_region`](crate::Mempool::populate_single_region). What was
    /// free for the objects (the pool's own chunks given back) on the pool's socket, every
    /// socket's heap for [`Socket::Any`], is named, to tell too little memory from memory in
    /// pieces too small.
    #[error(
        "mempool {pool:?}: no memory for its {objects} objects: they need {needed} bytes{}; \
         free on {socket}: {free_bytes} bytes in {free_blocks} blocks, the largest {largest_free} bytes",
        in_blocks_of(.needed, .smallest)
    )]
    NoMemory {
        pool: String,
        objects: u32,
        /// Bytes the whole pool needs in one block.
        needed: usize,
        /// The smallest request made.
        smallest: usize,
        socket: Socket,
        free_bytes: u64,
        free_blocks: u64,
        /// The biggest free block, its heap header included (as the heap statistics count).
        largest_free: u64,
    },
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
            MempoolError::NoMemory { .. } => ErrorKind::NoMem,
            MempoolError::Eal { source, .. } => source.kind(),
        }
    }
}

/// How the memory of a pool may come: in one block, or in blocks of at least `smallest`.
fn in_blocks_of(needed: &usize, smallest: &usize) -> String {
    if smallest >= needed {
        " in one block".to_owned()
    } else {
        format!(", in blocks of at least {smallest} bytes")
    }
}
