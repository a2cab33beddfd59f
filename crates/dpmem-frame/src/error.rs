//! What can go wrong with frames and their sessions.

use dpmem_dma::DmaError;
use dpmem_eal::{EalError, Iova, Socket};
use dpmem_mbuf::MbufError;

/// A frame or session operation's failure. Every one leaves the session as it was (a
/// transmit that fails part-way has sent what it sent; the frame comes back through "done"
/// once those packets are released).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A format or session setting that cannot work (the message says which and why).
    #[error("invalid frame setting: {0}")]
    InvalidFormat(String),
    /// Frame buffers shorter than one frame of the format.
    #[error("frame buffers of {len} bytes are too small for the format's {needed}-byte frames")]
    FrameTooSmall { len: usize, needed: usize },
    /// A pool that cannot hold what one burst of the format needs.
    #[error("pool {pool:?}: {detail}")]
    PoolTooSmall { pool: &'static str, detail: String },
    /// No frame with this id in the session.
    #[error("frame {0} is not one of this session's frames")]
    UnknownFrame(u16),
    /// The frame is still being transmitted: packets reference it.
    #[error("frame {0} is in flight: packets still reference it")]
    InFlight(u16),
    /// The frame is owned by the application already.
    #[error("frame {0} is already owned by the application")]
    AlreadyOwned(u16),
    /// A pool ran dry part-way through a frame: `sent` of `total` packets went out; the frame
    /// comes back through "done" when they are released.
    #[error("pool ran dry after {sent} of {total} packets of frame {frame}: {source}")]
    PoolDry {
        frame: u16,
        sent: u32,
        total: u32,
        source: MbufError,
    },
    /// The session's socket has no memory for one of its allocations, and the session was
    /// built not to take it from another socket.
    #[error(
        "{socket} has no memory for {what}, and the session may not fall back to another socket"
    )]
    NoMemoryOnSocket { socket: Socket, what: String },
    /// Memory that cannot be mapped for I/O as asked (the message says why); nothing was
    /// registered.
    #[error("cannot map {va:#x}+{len:#x} for I/O: {detail}")]
    DmaMap {
        va: usize,
        len: usize,
        detail: String,
    },
    /// An external frame at address 0.
    #[error("an external frame at address 0")]
    ExternalNull,
    /// An external frame not wholly inside the mapping it was lent with, or in memory the
    /// session's EAL does not know as registered external memory.
    #[error("external frame {va:#x}+{len:#x} is not inside memory mapped for I/O: {detail}")]
    ExternalUnknown {
        va: usize,
        len: usize,
        detail: String,
    },
    /// An external frame whose device address is not the one its mapping records.
    #[error("external frame at {va:#x}: device address {given} given, the mapping has {}", .mapped.map_or("none".to_string(), |i| i.to_string()))]
    ExternalIova {
        va: usize,
        given: Iova,
        mapped: Option<Iova>,
    },
    /// An external frame whose bytes overlap a frame lent to the session and still in flight.
    #[error("external frame {va:#x}+{len:#x} overlaps a frame still in flight ({lent_va:#x}+{lent_len:#x})")]
    ExternalInFlight {
        va: usize,
        len: usize,
        lent_va: usize,
        lent_len: usize,
    },
    /// Every slot of the session for lent frames holds a frame in flight (or it has none).
    #[error("no slot for an external frame is free: the session has {slots} (TxSessionBuilder::external_frames)")]
    NoExternalSlot { slots: u16 },
    #[error(transparent)]
    Mbuf(#[from] MbufError),
    #[error(transparent)]
    Eal(#[from] EalError),
    /// The copy engine's borrowing layer refused (an RX session closed on a borrower it is
    /// not registered with).
    #[error(transparent)]
    Dma(#[from] DmaError),
}
