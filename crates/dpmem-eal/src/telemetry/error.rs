//! Why a telemetry command could not be registered or answered, and why the server could not
//! start.

use std::path::PathBuf;

use dpmem_sys::SysError;

use crate::error::{EalError, ErrorKind};

/// A telemetry error. A command that fails answers `null` on the socket, as DPDK's does;
/// the error itself is for the code that calls handlers directly (tests, other front ends).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A command name or help text DPDK's registry would refuse.
    #[error("telemetry command {name:?}: {reason}")]
    InvalidCommand { name: String, reason: String },

    #[error("telemetry command {0:?} is registered already")]
    AlreadyRegistered(String),

    /// A dictionary entry name DPDK's clients are not promised to read.
    #[error("telemetry entry name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A request's parameter is missing, or not what the command takes.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// The request names something that does not exist (a heap id, a memzone index).
    #[error("{0} not found")]
    NotFound(String),

    /// The EAL could not give what the command reports.
    #[error(transparent)]
    Eal(Box<EalError>),

    /// A directory on the way to the socket is not safe to use.
    #[error("{}: {reason}", path.display())]
    Directory { path: PathBuf, reason: String },

    /// The kernel refused a step of setting up or serving the socket.
    #[error(transparent)]
    Sys(#[from] SysError),
}

impl From<EalError> for TelemetryError {
    fn from(e: EalError) -> Self {
        TelemetryError::Eal(Box::new(e))
    }
}

impl TelemetryError {
    /// The errno-like kind, as the rest of the EAL reports it.
    pub fn kind(&self) -> ErrorKind {
        use dpmem_sys::error::Errno;
        match self {
            TelemetryError::InvalidCommand { .. }
            | TelemetryError::InvalidName { .. }
            | TelemetryError::InvalidParameter(_) => ErrorKind::Inval,
            TelemetryError::AlreadyRegistered(_) => ErrorKind::Exist,
            TelemetryError::NotFound(_) => ErrorKind::NoEnt,
            TelemetryError::Eal(e) => e.kind(),
            TelemetryError::Directory { .. } => ErrorKind::Perm,
            TelemetryError::Sys(e) => match e.errno {
                Errno::ADDRINUSE | Errno::EXIST => ErrorKind::Exist,
                Errno::NOENT => ErrorKind::NoEnt,
                Errno::ACCESS | Errno::PERM => ErrorKind::Perm,
                Errno::NAMETOOLONG => ErrorKind::NameTooLong,
                Errno::NOMEM | Errno::NOBUFS => ErrorKind::NoMem,
                _ => ErrorKind::Io,
            },
        }
    }
}
