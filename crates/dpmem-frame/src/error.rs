//! What can go wrong with frames and their sessions.

use dpmem_dma::DmaError;
use dpmem_eal::EalError;
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
    #[error(transparent)]
    Mbuf(#[from] MbufError),
    #[error(transparent)]
    Eal(#[from] EalError),
    /// The copy engine's borrowing layer refused (an RX session closed on a borrower it is
    /// not registered with).
    #[error(transparent)]
    Dma(#[from] DmaError),
}
