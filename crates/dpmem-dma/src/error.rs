//! What can go wrong with a copy device, a virtual channel or the borrowing layer, with the
//! errno-like kind a DPDK user expects. Every error leaves the device, the channel and the
//! packets as they were.

use dpmem_eal::lcore::LcoreError;
use dpmem_eal::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    /// A bad argument or a call in the wrong state (`EINVAL`): a ring size that is not a power
    /// of two in 32..=8192, a direction other than memory to memory, a zero length, a channel
    /// that does not exist, a device that is not configured or not started, ...
    #[error("{0}")]
    InvalidArgument(String),
    /// The channel's ring holds as many operations as it can (`ENOSPC`); nothing was queued.
    #[error("vchan {vchan}: no room for another operation ({in_flight} in flight)")]
    NoSpace { vchan: u16, in_flight: u16 },
    /// The device or channel is in use (`EBUSY`): reconfiguring a started device, taking a
    /// channel another owner holds, releasing a lender with copies in flight.
    #[error("{0}")]
    Busy(String),
    /// The device's worker thread could not be started, or ended by a panic.
    #[error(transparent)]
    Lcore(#[from] LcoreError),
}

impl DmaError {
    /// The errno-like kind of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DmaError::InvalidArgument(_) => ErrorKind::Inval,
            DmaError::NoSpace { .. } => ErrorKind::NoSpc,
            DmaError::Busy(_) => ErrorKind::Busy,
            DmaError::Lcore(e) => e.kind(),
        }
    }

    #[cold]
    pub(crate) fn invalid(message: impl Into<String>) -> DmaError {
        DmaError::InvalidArgument(message.into())
    }

    #[cold]
    pub(crate) fn busy(message: impl Into<String>) -> DmaError {
        DmaError::Busy(message.into())
    }
}
