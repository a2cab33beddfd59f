//! What can go wrong opening a port.

use std::net::SocketAddrV4;

use dpmem_mbuf::MbufError;
use dpmem_sys::error::Errno;
use dpmem_sys::SysError;

/// A port that could not be opened; nothing is left open.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The socket could not be made or bound: why, in words, and the kernel's answer.
    #[error("cannot open a UDP port on {addr}: {reason} ({source})")]
    Open {
        addr: SocketAddrV4,
        reason: &'static str,
        source: SysError,
    },
    /// The RX pool's buffers cannot hold what the port receives.
    #[error("RX pool {pool:?}: {detail}")]
    RxPool { pool: String, detail: String },
    /// A setting that cannot work (the message says which and why).
    #[error("invalid port setting: {0}")]
    InvalidSetting(String),
    #[error(transparent)]
    Mbuf(#[from] MbufError),
}

impl PortError {
    /// The error for a socket on `addr` that the kernel refused, with the reason in words.
    pub(crate) fn open(addr: SocketAddrV4, source: SysError) -> PortError {
        let reason = match source.errno {
            Errno::ADDRINUSE => "the address is in use by another socket",
            Errno::ADDRNOTAVAIL => "no interface of this machine has that address",
            Errno::ACCESS => "ports below 1024 need privilege",
            Errno::MFILE | Errno::NFILE => "no file descriptor left",
            Errno::NOBUFS | Errno::NOMEM => "the kernel is short of memory",
            _ => "the kernel refused the socket",
        };
        PortError::Open {
            addr,
            reason,
            source,
        }
    }
}
