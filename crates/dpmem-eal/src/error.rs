//! Errors of the EAL layer. Each variant carries the errno-like kind a DPDK user knows and the
//! context a person needs to act (the option, size, socket, path).

use std::path::PathBuf;

use dpmem_sys::SysError;

use crate::socket::Socket;

/// The errno family an [`EalError`] belongs to, as DPDK would report it in `rte_errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Inval,
    NoMem,
    NoSpc,
    Exist,
    NoEnt,
    Busy,
    Perm,
    NotSup,
    Io,
    /// A name longer than its table allows (`ENAMETOOLONG`).
    NameTooLong,
    /// Shared state found inconsistent (`EFAULT`).
    Fault,
    /// A count past what its field holds (`EOVERFLOW`): a chain of too many segments.
    Overflow,
}

#[derive(Debug, thiserror::Error)]
pub enum EalError {
    #[error(transparent)]
    Options(#[from] crate::options::OptionsError),

    #[error("{context}: {source}")]
    Sys { context: String, source: SysError },

    #[error("runtime directory {path}: {reason}")]
    RuntimeDir { path: PathBuf, reason: String },

    #[error("--iova-mode=pa: physical addresses are not available ({reason})")]
    PhysicalAddressesUnavailable { reason: String },

    #[error("no hugepages usable: {reason} (use --no-huge to run on ordinary 4 KiB pages)")]
    NoHugepages { reason: String },

    #[error("{socket}: asked for {requested_mb} MiB, node can supply only {available_mb} MiB ({shortfall_mb} MiB short)")]
    NodeShortfall {
        socket: Socket,
        requested_mb: u64,
        available_mb: u64,
        shortfall_mb: u64,
    },

    #[error(
        "out of memory: cannot allocate {pages} pages of {page_size} bytes on {socket}: {reason}"
    )]
    OutOfMemory {
        pages: usize,
        page_size: u64,
        socket: Socket,
        reason: String,
    },

    #[error("allocation of {bytes} bytes on {socket} refused by validator '{validator}' (limit {limit} bytes)")]
    Vetoed {
        validator: String,
        socket: Socket,
        bytes: u64,
        limit: u64,
    },

    #[error("{what} {name:?} already exists")]
    AlreadyExists { what: &'static str, name: String },

    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("{0}")]
    Unsupported(String),

    #[error("{0}")]
    Busy(String),

    /// An operation DPDK refuses with `EPERM`, such as adding memory to a socket's own heap.
    #[error("not permitted: {0}")]
    NotPermitted(String),

    #[error("secondary process: {0}")]
    Secondary(String),

    #[error("configuration limit: {0}")]
    Limit(String),

    #[error("{what} name {name:?} is longer than {max} bytes")]
    NameTooLong {
        what: &'static str,
        name: String,
        max: usize,
    },

    /// No heap could serve a request; `detail` says what each heap it may come from has free
    /// and why it could not grow.
    #[error("no heap memory for {size} bytes aligned to {align} on {socket}: {detail}")]
    HeapExhausted {
        size: usize,
        align: usize,
        socket: Socket,
        detail: String,
    },

    #[error("{addr:#x} is not a heap block: {reason}")]
    BadPointer { addr: usize, reason: &'static str },

    #[error("block {addr:#x} of {size} bytes was written past its end (trailer cookie changed); the block is left as it is")]
    BlockOverrun { addr: usize, size: usize },

    #[error("{addr:#x} was already freed (double free)")]
    DoubleFree { addr: usize },

    #[error("heap of {socket} is inconsistent: {reason}")]
    HeapCorrupt { socket: Socket, reason: String },

    #[error("memzone table is full ({capacity} memzones)")]
    MemzoneTableFull { capacity: u32 },

    /// A process died holding the lock of a shared structure (a heap, the memzone table), which
    /// could not be repaired: every operation on the structure fails from then on (`EFAULT`).
    /// Only a new primary on the file prefix starts it afresh.
    #[error("{what} is unusable: process {dead_pid} died holding its lock and it could not be repaired{}", reason_text(.reason))]
    OwnerDied {
        what: String,
        dead_pid: u32,
        /// What was found broken, when this call found it (later calls learn only that the
        /// structure was given up; the process that found the damage printed it).
        reason: Option<String>,
    },

    /// The telemetry server could not start (`--no-telemetry` runs without it).
    #[error("telemetry: {0} (--no-telemetry runs without the telemetry socket)")]
    Telemetry(#[from] crate::telemetry::TelemetryError),

    /// Pages could not be mapped or unmapped in every process: the primary refused a
    /// secondary's request (`kind` is the primary's), or a secondary could not map what was
    /// mapped for it (then it was unmapped again everywhere), or the primary could not be
    /// reached.
    #[error("memory hotplug across processes: {reason}")]
    Hotplug { kind: ErrorKind, reason: String },

    /// The inter-process channel could not start, or refused a call.
    #[error("inter-process channel: {0}")]
    Ipc(#[from] crate::ipc::IpcError),
}

fn reason_text(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map_or_else(String::new, |r| format!(": {r}"))
}

impl ErrorKind {
    /// Every kind, in a fixed order: a kind crosses the inter-process channel as its index.
    pub(crate) const ALL: [ErrorKind; 12] = [
        ErrorKind::Inval,
        ErrorKind::NoMem,
        ErrorKind::NoSpc,
        ErrorKind::Exist,
        ErrorKind::NoEnt,
        ErrorKind::Busy,
        ErrorKind::Perm,
        ErrorKind::NotSup,
        ErrorKind::Io,
        ErrorKind::NameTooLong,
        ErrorKind::Fault,
        ErrorKind::Overflow,
    ];
}

impl EalError {
    /// The error of an operation on `what`, whose lock a dead process left it unusable with.
    pub(crate) fn owner_died(what: impl Into<String>, died: crate::sync::OwnerDied) -> Self {
        EalError::OwnerDied {
            what: what.into(),
            dead_pid: died.dead_pid,
            reason: died.reason.map(String::from),
        }
    }

    pub(crate) fn sys(context: impl Into<String>, source: SysError) -> Self {
        EalError::Sys {
            context: context.into(),
            source,
        }
    }

    /// The errno-like kind of this error.
    pub fn kind(&self) -> ErrorKind {
        use dpmem_sys::error::Errno;
        match self {
            EalError::Options(_) | EalError::InvalidArgument(_) => ErrorKind::Inval,
            EalError::Sys { source, .. } => match source.errno {
                Errno::NOMEM | Errno::NOSPC => ErrorKind::NoMem,
                Errno::EXIST => ErrorKind::Exist,
                Errno::NOENT => ErrorKind::NoEnt,
                Errno::ACCESS | Errno::PERM => ErrorKind::Perm,
                Errno::BUSY | Errno::WOULDBLOCK => ErrorKind::Busy,
                Errno::INVAL => ErrorKind::Inval,
                _ => ErrorKind::Io,
            },
            EalError::RuntimeDir { .. } => ErrorKind::Perm,
            EalError::PhysicalAddressesUnavailable { .. } | EalError::Unsupported(_) => {
                ErrorKind::NotSup
            }
            EalError::NoHugepages { .. }
            | EalError::NodeShortfall { .. }
            | EalError::OutOfMemory { .. }
            | EalError::Vetoed { .. } => ErrorKind::NoMem,
            EalError::AlreadyExists { .. } => ErrorKind::Exist,
            EalError::NotFound { .. } | EalError::Secondary(_) => ErrorKind::NoEnt,
            EalError::Busy(_) => ErrorKind::Busy,
            EalError::NotPermitted(_) => ErrorKind::Perm,
            EalError::Limit(_) | EalError::MemzoneTableFull { .. } => ErrorKind::NoSpc,
            EalError::NameTooLong { .. } => ErrorKind::NameTooLong,
            EalError::HeapExhausted { .. } => ErrorKind::NoMem,
            EalError::BadPointer { .. } | EalError::DoubleFree { .. } => ErrorKind::Inval,
            EalError::HeapCorrupt { .. }
            | EalError::BlockOverrun { .. }
            | EalError::OwnerDied { .. } => ErrorKind::Fault,
            EalError::Telemetry(e) => e.kind(),
            EalError::Ipc(e) => e.kind(),
            EalError::Hotplug { kind, .. } => *kind,
        }
    }
}
