//! Errors of lcore and thread operations.

use crate::error::{EalError, ErrorKind};
use dpmem_sys::SysError;

use super::table::LcoreRole;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LcoreError {
    #[error("lcore {lcore} is not an lcore of this EAL")]
    UnknownLcore { lcore: u32 },

    #[error("lcore {lcore} is the main lcore: work runs there by calling it, not by launching it")]
    MainLcore { lcore: u32 },

    #[error("lcore {lcore} is a {role:?} lcore, which has no worker thread to launch on")]
    NotWorker { lcore: u32, role: LcoreRole },

    #[error("lcore {lcore} is busy: {reason}")]
    Busy { lcore: u32, reason: &'static str },

    #[error("lcore {lcore}: the launched function panicked: {message}")]
    Panicked { lcore: u32, message: String },

    #[error("lcore {lcore}: the result of this launch was already collected by another wait")]
    ResultTaken { lcore: u32 },

    #[error("lcore {lcore}: a thread cannot wait for itself")]
    WaitOnSelf { lcore: u32 },

    #[error("no free lcore id: all {max} ids are taken by EAL lcores and registered threads")]
    NoFreeLcore { max: u32 },

    #[error("this thread already is lcore {lcore} of this EAL")]
    AlreadyRegistered { lcore: u32 },

    #[error("this thread is not a registered non-EAL thread of this EAL")]
    NotRegistered,

    #[error("the EAL this lcore belongs to has been torn down")]
    EalGone,

    #[error("cpu set is empty")]
    EmptyCpuSet,

    #[error("{context}: {source}")]
    Sys { context: String, source: SysError },

    #[error("lcore {lcore}: worker thread failed to start: {reason}")]
    WorkerStart { lcore: u32, reason: String },
}

impl LcoreError {
    pub(crate) fn sys(context: impl Into<String>, source: SysError) -> Self {
        LcoreError::Sys {
            context: context.into(),
            source,
        }
    }

    /// The errno-like kind, as DPDK reports it (`-EBUSY` for a busy lcore, `ENOMEM` when no
    /// lcore id is left for `rte_thread_register`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LcoreError::UnknownLcore { .. }
            | LcoreError::MainLcore { .. }
            | LcoreError::NotWorker { .. }
            | LcoreError::NotRegistered
            | LcoreError::EmptyCpuSet
            | LcoreError::WaitOnSelf { .. } => ErrorKind::Inval,
            LcoreError::Busy { .. } => ErrorKind::Busy,
            LcoreError::Panicked { .. } | LcoreError::WorkerStart { .. } => ErrorKind::Io,
            LcoreError::ResultTaken { .. } | LcoreError::EalGone => ErrorKind::NoEnt,
            LcoreError::NoFreeLcore { .. } => ErrorKind::NoMem,
            LcoreError::AlreadyRegistered { .. } => ErrorKind::Exist,
            LcoreError::Sys { source, .. } => EalError::sys("", source.clone()).kind(),
        }
    }
}

/// Start-up failures surface from `Eal::init` as EAL errors with the same kind and message.
impl From<LcoreError> for EalError {
    fn from(e: LcoreError) -> Self {
        match e {
            LcoreError::Sys { context, source } => EalError::Sys { context, source },
            LcoreError::Busy { .. } => EalError::Busy(e.to_string()),
            LcoreError::NoFreeLcore { .. } => EalError::Limit(e.to_string()),
            other => EalError::InvalidArgument(other.to_string()),
        }
    }
}
