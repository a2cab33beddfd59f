//! RX reassembly: ST 2110-20 packets back into frames, the payload copies done by the DMA
//! copy engine's borrowing layer (or the CPU), as Intel's Media Transport Library's receive
//! sessions do.
//!
//! A session ([`RxSession`]) owns frame buffers in the EAL's memory on its socket, with their
//! device addresses known. Each received packet (a whole packet in one segment: the 62-byte
//! header, then the payload) is parsed, checked, and its payload copied to its row and
//! offset in the frame of its RTP timestamp; a bitmap records which packets arrived. A frame
//! is handed to the application ([`RxFrame`], read-only) only when every packet arrived *and*
//! every copy into it is reported; a buffer is reused only when no copy into it is in flight
//! and the application no longer holds it. Packets copied by the device are held by the
//! borrowing layer until their copies are reported, then released, so receive pools never
//! run dry on packets the session keeps: it keeps none.
//!
//! - `session.rs`: the session, its settings, and how it shares the copy engine;
//! - `receive.rs`: the per-packet path and frame delivery;
//! - `placement.rs`: where a payload goes, or why nowhere; `stream_filter.rs`: whether a
//!   packet is the session's stream;
//! - `arrivals.rs`, `recent_frames.rs`, `copy_tickets.rs`: what the session remembers of
//!   packets, ended frames and device copies;
//! - `frame_buffers.rs`, `frame_states.rs`, `frame.rs`: the buffers, their states (with the
//!   loom model of the cycle) and the application's handle;
//! - `stats.rs`: the counts; `prefetch.rs`: the cache hint for the packets of a burst.

mod arrivals;
mod copy_tickets;
mod frame;
mod frame_buffers;
mod frame_states;
mod placement;
mod prefetch;
mod receive;
mod recent_frames;
mod session;
mod stats;
mod stream_filter;

pub use frame::RxFrame;
pub use frame_states::RxFrameState;
pub use session::{RxSession, RxSessionBuilder};
pub use stats::{RxCopies, RxDrops, RxStats};
