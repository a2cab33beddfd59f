//! Errors of the inter-process channel, each with the errno kind DPDK's `rte_mp_*` calls
//! leave in `rte_errno`.

use dpmem_sys::SysError;

use crate::error::ErrorKind;

/// Why a channel call failed. Nothing was sent when a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("message name is empty")]
    EmptyName,

    #[error("message name {name:?} is {len} bytes; at most {max} fit")]
    NameTooLong {
        name: String,
        len: usize,
        max: usize,
    },

    #[error("message {name:?} has {len} bytes of parameters; at most {max} fit")]
    ParamsTooLong {
        name: String,
        len: usize,
        max: usize,
    },

    #[error("message {name:?} carries {count} file descriptors; at most {max} fit")]
    TooManyFds {
        name: String,
        count: usize,
        max: usize,
    },

    /// The EAL runs without a runtime directory (`--in-memory`): no peer could exist.
    #[error("inter-process channel disabled: {0}")]
    Disabled(String),

    #[error("an action is already registered for {0:?}")]
    ActionExists(String),

    #[error("no action is registered for {0:?}")]
    NoAction(String),

    /// A reply to a one-way message, or a second reply to one request.
    #[error("cannot reply to {name:?}: {reason}")]
    CannotReply { name: String, reason: &'static str },

    /// A synchronous request from an action: its replies would be handled by the very thread
    /// that waits for them.
    #[error("a synchronous request cannot be made from within an action (use request_async)")]
    SyncFromAction,

    /// A typed message whose parameters did not decode.
    #[error("message {name:?}: {reason}")]
    Decode { name: String, reason: String },

    /// The channel is stopping (its EAL is being dropped).
    #[error("inter-process channel stopped")]
    Stopped,

    #[error("{context}: {source}")]
    Sys { context: String, source: SysError },
}

impl IpcError {
    pub(crate) fn sys(context: impl Into<String>, source: SysError) -> IpcError {
        IpcError::Sys {
            context: context.into(),
            source,
        }
    }

    /// The errno-like kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IpcError::EmptyName
            | IpcError::ParamsTooLong { .. }
            | IpcError::TooManyFds { .. }
            | IpcError::CannotReply { .. }
            | IpcError::SyncFromAction
            | IpcError::Decode { .. } => ErrorKind::Inval,
            IpcError::NameTooLong { .. } => ErrorKind::NameTooLong,
            IpcError::Disabled(_) => ErrorKind::NotSup,
            IpcError::ActionExists(_) => ErrorKind::Exist,
            IpcError::NoAction(_) => ErrorKind::NoEnt,
            IpcError::Stopped => ErrorKind::Busy,
            IpcError::Sys { source, .. } => match source.errno {
                dpmem_sys::error::Errno::NOMEM | dpmem_sys::error::Errno::NOBUFS => {
                    ErrorKind::NoMem
                }
                dpmem_sys::error::Errno::AGAIN => ErrorKind::Busy,
                dpmem_sys::error::Errno::INVAL => ErrorKind::Inval,
                _ => ErrorKind::Io,
            },
        }
    }
}
