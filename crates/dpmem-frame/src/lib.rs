//! dpmem's media frames: transmit sessions that own video frames in hugepage memory and send
//! them as SMPTE ST 2110-20 packets without copying them, the way Intel's Media Transport
//! Library does — with the frame's ownership rules held by types and one reference count
//! rather than by care.
//!
//! - **A session** ([`TxSession`]) owns frame buffers in the EAL's memory on its socket
//!   (IOVA-contiguous when it can be had, else with each page's device address known), a
//!   header pool, a zero-room payload pool and a copy pool.
//! - **A frame** cycles free → owned by the application ([`FrameMut`], the only way to
//!   write it) → in flight → free. It is handed out only when no packet references it; the
//!   packetiser holds a reference for the whole packetisation; "done" runs exactly once,
//!   after the last reference, and is the last thing done before the frame is free again
//!   (the frame reference protocol, with its loom model, is in `src/slot.rs`);
//!   [`TxSession::in_flight`] answers whether it is still out.
//! - **The packetiser** ([`TxSession::transmit`]) writes a 62-byte Ethernet/IPv4/UDP/RTP/
//!   ST 2110-20 header per packet and chains behind it a buffer attached to the frame's
//!   bytes; payloads crossing a break in device addresses are copied; ST 2022-7 redundancy
//!   sends a second header over the same bytes.
//! - **External frames**: an application that brings its own frame memory maps it for I/O
//!   ([`DmaMapping`], [`dma_map`]: registered with the EAL as external memory, each page's
//!   device address known) and lends frames from it ([`ExternalFrame`]) to a session built
//!   with external slots; [`TxSession::transmit_external`] sends them in place under the
//!   same reference protocol and hands each back through its own "done", exactly once,
//!   never freeing it.
//! - **NUMA stays visible**: sessions take their memory from their port's socket
//!   ([`PortSocket`]) or the one their builder names; when that socket has no memory they
//!   fall back to any socket, as MTL does, but count it ([`NumaPlacement`], on both
//!   [`TxSession::numa`] and [`RxSession::numa`]), or refuse when told not to.
//! - **Ports** move the chains as a NIC does, releasing each only once its bytes are out:
//!   [`LoopbackPort`] copies each chain's segments into one buffer of an RX pool and queues
//!   it on a bounded RX queue; [`UdpPort`] sends them over a kernel UDP socket
//!   (`sendmmsg`, one gather entry per segment, straight from the frame) and receives with
//!   `recvmmsg` into RX buffers. Both transmit as a [`PacketSink`] and receive as an
//!   [`RxPort`], counting what they drop and why ([`PortStats`]).
//! - **Reassembly** ([`RxSession`]) puts received packets back into frames: each payload
//!   copied to its place by the DMA copy engine's borrowing layer or the CPU, arrivals
//!   tracked, a frame handed to the application ([`RxFrame`]) only when every packet arrived
//!   and every copy into it is reported, and never reused while a copy is in flight or the
//!   application holds it.
//!
//! The frame's shared info callback is a function address: packets of a session are
//! released in the session's process.

mod dma_mapping;
mod done;
mod error;
mod external_frame;
mod format;
mod frame;
mod frame_id;
pub mod header;
mod lend;
mod lent_frames;
mod memory;
mod numa;
mod packetise;
mod port;
mod rx;
mod session;
mod slot;
mod sync;

pub use dma_mapping::{dma_map, dma_unmap, DmaMapping};
pub use done::DoneCallback;
pub use error::FrameError;
pub use external_frame::ExternalFrame;
pub use format::{St20Format, MAX_PACKETS_PER_FRAME, RTP_CLOCK_HZ};
pub use frame::FrameMut;
pub use frame_id::FrameId;
pub use header::{HeaderTemplate, PacketFields, StreamAddress, HEADER_LEN};
pub use lent_frames::ExternalDoneCallback;
pub use numa::{NumaPlacement, PortSocket};
pub use packetise::{PacketSink, TxReport};
pub use port::{
    rx_pool, LoopbackPort, PortDrops, PortError, PortStats, RxPort, SocketBuffers, UdpPort,
    UdpPortBuilder, DATAGRAM_AT, DEFAULT_RX_QUEUE, RX_DATA_ROOM,
};
pub use rx::{RxCopies, RxDrops, RxFrame, RxFrameState, RxSession, RxSessionBuilder, RxStats};
pub use session::{FrameLocation, TxSession, TxSessionBuilder, DEFAULT_BURST};
pub use slot::FrameState;
