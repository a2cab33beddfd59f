//! [`RxSession`]: a receive session's frame buffers, what it knows of the frame being
//! assembled and of the frames settling or ready, its place with the copy engine, and its
//! statistics; and [`RxSessionBuilder`], which checks the settings and makes it (leaving
//! nothing behind when it cannot).
//!
//! The per-packet path is in `receive.rs`.

use std::collections::VecDeque;
use std::sync::Arc;

use dpmem_dma::borrow::{DmaBorrower, Lender};
use dpmem_eal::{Eal, Socket};

use crate::error::FrameError;
use crate::format::St20Format;
use crate::frame_id::FrameId;
use crate::header::StreamAddress;
use crate::numa::{NumaPlacement, Placer, PortSocket};
use crate::rx::arrivals::Arrivals;
use crate::rx::copy_tickets::CopyTickets;
use crate::rx::frame_buffers::FrameBuffers;
use crate::rx::frame_states::RxFrameState;
use crate::rx::placement::Placement;
use crate::rx::recent_frames::RecentFrames;
use crate::rx::stats::RxStats;
use crate::rx::stream_filter::StreamFilter;

/// The settings of an [`RxSession`], each with its default.
#[must_use = "nothing is made until `create` is called"]
#[derive(Debug)]
pub struct RxSessionBuilder<'n> {
    name: &'n str,
    format: St20Format,
    frames: u16,
    socket: Socket,
    port_socket: Socket,
    numa_fallback: bool,
    stream: Option<StreamAddress>,
}

impl RxSessionBuilder<'_> {
    /// The stream's shape (1080p59.94 4:2:2 10-bit unless set).
    pub fn format(mut self, format: St20Format) -> Self {
        self.format = format;
        self
    }

    /// Frame buffers (3 unless set): one being assembled, one settling or waiting for the
    /// application, one the application holds.
    pub fn frames(mut self, frames: u16) -> Self {
        self.frames = frames;
        self
    }

    /// Where the frame buffers come from when the port does not say ([`Socket::Any`] unless
    /// set).
    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    /// The port the session receives from: its socket (that of the lcore that opened it),
    /// when known, is where the frame buffers come from, before [`socket`](Self::socket).
    pub fn port(mut self, port: &impl PortSocket) -> Self {
        self.port_socket = port.socket();
        self
    }

    /// Whether frame buffers may come from another socket when the session's has no memory
    /// (true unless set; each time it does is counted in [`RxSession::numa`]). Forbidden,
    /// such a session is refused with [`FrameError::NoMemoryOnSocket`].
    pub fn numa_fallback(mut self, allowed: bool) -> Self {
        self.numa_fallback = allowed;
        self
    }

    /// Takes only packets of this stream (its IPv4 addresses, UDP ports, RTP payload type and
    /// SSRC); others are dropped and counted. Unset, every packet is taken.
    pub fn stream(mut self, address: StreamAddress) -> Self {
        self.stream = Some(address);
        self
    }

    /// Makes the session and registers it with `borrower` (which copies its payloads: with
    /// its device, when it has one and fewer than 16 sessions hold a place on it, else with
    /// the CPU). Refused, with nothing made or registered: a format that cannot be received,
    /// no frame buffers, a socket without memory when fallback is forbidden, and whatever the
    /// EAL refuses (names, memory).
    pub fn create<'eal>(
        self,
        eal: &'eal Eal,
        borrower: &mut DmaBorrower<'_, '_>,
    ) -> Result<RxSession<'eal>, FrameError> {
        let format = self.format;
        format.validate()?;
        if self.frames == 0 || self.frames == u16::MAX {
            return Err(FrameError::InvalidFormat(format!(
                "{} frame buffers (1 to {} can be had)",
                self.frames,
                u16::MAX - 1
            )));
        }
        let mut placer = Placer::new(eal, self.port_socket, self.socket, self.numa_fallback);
        let buffers = FrameBuffers::reserve(eal, &mut placer, self.name, self.frames, &format)?;
        let placement = Placement::new(format);
        let tickets = CopyTickets::new();
        let lender = borrower.register(tickets.on_copied());
        let books = (0..self.frames)
            .map(|_| FrameBook {
                timestamp: 0,
                arrivals: Arrivals::new(placement.packets()),
                last_ticket: 0,
            })
            .collect();
        Ok(RxSession {
            format,
            placement,
            filter: self.stream.as_ref().map(StreamFilter::new),
            buffers: Arc::new(buffers),
            books,
            current: Current::Idle,
            recent: RecentFrames::default(),
            settling: VecDeque::new(),
            ready: VecDeque::with_capacity(usize::from(self.frames)),
            next_free: 0,
            tickets,
            lender: Some(lender),
            stats: RxStats::default(),
            numa: placer.placement(),
        })
    }
}

/// What the session knows of the frame in one buffer.
#[derive(Debug)]
pub(crate) struct FrameBook {
    pub(crate) timestamp: u32,
    pub(crate) arrivals: Arrivals,
    /// The ticket of the last device copy into the buffer (0: none since it was taken).
    pub(crate) last_ticket: u64,
}

/// The frame packets are being placed in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Current {
    /// None: the next timestamp starts one.
    Idle,
    Assembling(FrameId),
    /// A frame that began with no buffer free: its packets are dropped.
    WithoutBuffer {
        timestamp: u32,
    },
}

/// A buffer whose frame ended, waiting for the device copies into it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settling {
    pub(crate) id: FrameId,
    pub(crate) last_ticket: u64,
    pub(crate) complete: bool,
}

/// A receive session: reassembles ST 2110-20 packets into frames (see the crate notes and
/// `receive`).
///
/// **Sharing the copy engine.** Up to 16 sessions share one device through one
/// [`DmaBorrower`], which one lcore polls, so the borrower is not a session's: each call that
/// copies or reaps takes it as `&mut`, and the session registered with it at `create` (its
/// [`Lender`] is the session's). Give every call the borrower the session was made with; any
/// other refuses the copies, which the session then does with the CPU and counts
/// ([`RxCopies::cpu_refused`](crate::RxCopies::cpu_refused)).
///
/// **Going away.** [`close`](Self::close) waits for the session's device copies and gives its
/// place on the device back. Dropped instead, a session with device copies still in flight
/// leaks its frame buffers rather than free memory the device may yet write, and its place
/// stays taken until the borrower goes. Frames the application holds keep their buffers alive
/// after the session in either case.
#[derive(Debug)]
pub struct RxSession<'eal> {
    pub(crate) format: St20Format,
    pub(crate) placement: Placement,
    pub(crate) filter: Option<StreamFilter>,
    pub(crate) buffers: Arc<FrameBuffers<'eal>>,
    /// One per buffer, indexed by its id.
    pub(crate) books: Box<[FrameBook]>,
    pub(crate) current: Current,
    pub(crate) recent: RecentFrames,
    /// Buffers whose frames ended, in the order they ended (so in the order of their last
    /// tickets).
    pub(crate) settling: VecDeque<Settling>,
    /// Complete, quiet frames for the application, oldest first.
    pub(crate) ready: VecDeque<FrameId>,
    /// Where the search for a free buffer starts.
    pub(crate) next_free: u16,
    pub(crate) tickets: CopyTickets,
    /// The session's registration with its borrower (taken only by `close`).
    pub(crate) lender: Option<Lender>,
    pub(crate) stats: RxStats,
    pub(crate) numa: NumaPlacement,
}

impl<'eal> RxSession<'eal> {
    /// A session called `name` (it names the session's memzones).
    pub fn builder(name: &str) -> RxSessionBuilder<'_> {
        RxSessionBuilder {
            name,
            format: St20Format::default(),
            frames: 3,
            socket: Socket::Any,
            port_socket: Socket::Any,
            numa_fallback: true,
            stream: None,
        }
    }

    pub fn format(&self) -> &St20Format {
        &self.format
    }

    pub fn frame_count(&self) -> u16 {
        self.buffers.count()
    }

    /// Whether the session's copies may go to the borrower's device (false: it has none, or
    /// 16 other sessions hold its places).
    pub fn on_device(&self) -> bool {
        self.lender.as_ref().is_some_and(Lender::on_device)
    }

    /// Where buffer `id` is in its cycle.
    pub fn frame_state(&self, id: FrameId) -> Result<RxFrameState, FrameError> {
        if id >= self.buffers.count() {
            return Err(FrameError::UnknownFrame(id));
        }
        Ok(self.buffers.states().get(id))
    }

    /// Where the session's frame buffers were asked for and how many had to come from
    /// another socket.
    pub fn numa(&self) -> NumaPlacement {
        self.numa
    }

    /// What the session did so far, and where its frames are now.
    pub fn stats(&self) -> RxStats {
        RxStats {
            copies_in_flight: self.tickets.in_flight(),
            frames_ready: self.ready.len() as u32,
            frames_held: self.buffers.states().count_in(RxFrameState::Held),
            ..self.stats
        }
    }

    /// Waits for the session's device copies (the borrower's whole queue), then ends its
    /// registration with `borrower`, so another session can have its place on the device.
    /// Frames the application holds stay valid. A borrower the session is not registered with
    /// is refused: the error and the session come back, unchanged but for the wait.
    #[allow(clippy::result_large_err)]
    pub fn close(
        mut self,
        borrower: &mut DmaBorrower<'_, '_>,
    ) -> Result<(), (FrameError, RxSession<'eal>)> {
        borrower.flush();
        let lender = self.lender.take().expect("only close takes the lender");
        match borrower.unregister(lender) {
            Ok(()) => Ok(()),
            Err((e, lender)) => {
                self.lender = Some(lender);
                Err((e.into(), self))
            }
        }
    }
}

impl Drop for RxSession<'_> {
    fn drop(&mut self) {
        if self.tickets.in_flight() != 0 {
            // The device may still write into the buffers: they must never be freed, so the
            // session's share is leaked (the count cannot reach zero).
            core::mem::forget(Arc::clone(&self.buffers));
        }
    }
}
