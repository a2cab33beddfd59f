//! One stream of the pipeline: a TX session packetising generated frames, the port it sends
//! them over (two with ST 2022-7 redundancy), and the RX session reassembling what the port
//! received, on one lcore. Frames are checked byte for byte as they come out.
//!
//! The stream runs inline, as one lcore of a media transport polls its sessions: the sink the
//! packetiser hands its bursts to sends each burst through the port and at once feeds what
//! the port received to the RX session. So the RX queue holds a burst at a time, the packets
//! a copy device holds are bounded by its ring, and the TX frame completes when its last
//! chain has been gathered.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use dpmem::dma::borrow::DmaBorrower;
use dpmem::frame::{ExternalFrame, FrameMut, PacketSink, RxSession, TxSession};
use dpmem::mbuf::Mbuf;

use super::app_frames::AppFrames;
use super::high_water::HighWater;
use super::pattern;
use super::port_choice::PipelinePort;
use super::stage_clock::{Stage, StageClock};

/// Packets taken from a port per receive call.
const RX_BURST: usize = 64;

/// A frame received with bytes that differ from what was sent: the first such byte.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Mismatch {
    pub stream: u32,
    pub frame: u64,
    pub offset: usize,
}

/// What one stream did.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamCounts {
    pub frames_sent: u64,
    pub frames_verified: u64,
    pub frames_mismatched: u64,
    /// Delivered frames whose timestamp matched no frame sent (never expected).
    pub frames_unknown: u64,
    pub packets_sent: u64,
    /// Payloads the TX side copied because they crossed a break in device addresses.
    pub tx_copied_payloads: u64,
    /// Transmits that failed (a pool ran dry part-way): the frame came back through "done".
    pub tx_errors: u64,
}

/// A frame on its way out: the session's own, or one of the application's lent to it.
enum Outgoing<'s> {
    Own(FrameMut<'s>),
    Lent(ExternalFrame),
}

pub struct Stream<'eal, 'rx> {
    index: u32,
    tx: TxSession<'eal>,
    port: PipelinePort<'rx>,
    redundant: Option<RefCell<PipelinePort<'rx>>>,
    rx: RxSession<'eal>,
    /// Frames sent and not yet delivered: (RTP timestamp, frame number), oldest first.
    sent: VecDeque<(u32, u64)>,
    pub counts: StreamCounts,
    pub first_mismatch: Option<Mismatch>,
    /// Lent frames the session handed back (emptied at each step).
    returned: Vec<ExternalFrame>,
    /// The application's frames, with `--external`; last, so it goes after the session.
    app: Option<AppFrames<'eal>>,
}

impl<'eal, 'rx> Stream<'eal, 'rx> {
    pub fn new(
        index: u32,
        tx: TxSession<'eal>,
        port: PipelinePort<'rx>,
        redundant: Option<PipelinePort<'rx>>,
        rx: RxSession<'eal>,
        app: Option<AppFrames<'eal>>,
    ) -> Self {
        Stream {
            index,
            tx,
            port,
            redundant: redundant.map(RefCell::new),
            rx,
            sent: VecDeque::new(),
            counts: StreamCounts::default(),
            first_mismatch: None,
            returned: Vec::new(),
            app,
        }
    }

    pub fn tx(&self) -> &TxSession<'eal> {
        &self.tx
    }

    pub fn rx(&self) -> &RxSession<'eal> {
        &self.rx
    }

    pub fn ports(&self) -> impl Iterator<Item = dpmem::frame::PortStats> + '_ {
        std::iter::once(self.port.stats())
            .chain(self.redundant.as_ref().map(|port| port.borrow().stats()))
    }

    /// Sends the stream's next frame, if a TX frame is free, and takes in whatever arrived;
    /// checks every frame that came out complete.
    pub fn step(
        &mut self,
        borrower: &mut DmaBorrower<'_, 'rx>,
        arrived: &mut Vec<Mbuf<'rx>>,
        clock: &mut StageClock,
        high: &mut HighWater,
    ) {
        self.send(borrower, arrived, clock, high);
        self.take_in(borrower, arrived, clock);
        self.check_delivered(clock);
    }

    /// Writes and sends the next frame, if the application has one free.
    fn send(
        &mut self,
        borrower: &mut DmaBorrower<'_, 'rx>,
        arrived: &mut Vec<Mbuf<'rx>>,
        clock: &mut StageClock,
        high: &mut HighWater,
    ) {
        let number = self.counts.frames_sent;
        let seed = pattern::seed(self.index, number);
        // The application's frame: one of the session's, or one of its own lent to it.
        let outgoing = match &mut self.app {
            Some(app) => {
                self.tx.take_external_done(&mut self.returned);
                self.returned.clear();
                app.next_free(&self.tx, |bytes| {
                    clock.time(Stage::Generate, || pattern::fill(bytes, seed))
                })
                .map(Outgoing::Lent)
            }
            None => self.tx.get_frame().map(|mut frame| {
                clock.time(Stage::Generate, || {
                    pattern::fill(frame.as_mut_slice(), seed)
                });
                Outgoing::Own(frame)
            }),
        };
        if let Some(outgoing) = outgoing {
            let started = Instant::now();
            let mut inline = InlineReceive {
                port: &mut self.port,
                redundant: self.redundant.as_ref(),
                rx: &mut self.rx,
                borrower: &mut *borrower,
                arrived: &mut *arrived,
                port_nanos: 0,
                reassemble_nanos: 0,
                high: Some((&self.tx, &mut *high)),
            };
            let mut second = self
                .redundant
                .as_ref()
                .map(|port| SharedPort { port, nanos: 0 });
            let tx = &self.tx;
            let sent = match (outgoing, &mut second) {
                (Outgoing::Own(frame), Some(second)) => {
                    tx.transmit_redundant(frame, &mut inline, second)
                }
                (Outgoing::Own(frame), None) => tx.transmit(frame, &mut inline),
                (Outgoing::Lent(frame), Some(second)) => {
                    let mapping = self.app.as_ref().expect("lent from it").mapping();
                    tx.transmit_external_redundant(mapping, frame, &mut inline, second)
                }
                (Outgoing::Lent(frame), None) => {
                    let mapping = self.app.as_ref().expect("lent from it").mapping();
                    tx.transmit_external(mapping, frame, &mut inline)
                }
            };
            inline.port_nanos += second.map_or(0, |s| s.nanos);
            let (port_nanos, reassemble_nanos) = (inline.port_nanos, inline.reassemble_nanos);
            let total = started.elapsed().as_nanos() as u64;
            clock.add(Stage::Port, port_nanos);
            clock.add(Stage::Reassemble, reassemble_nanos);
            clock.add(
                Stage::Packetise,
                total.saturating_sub(port_nanos + reassemble_nanos),
            );
            match sent {
                Ok(report) => {
                    self.sent.push_back((report.timestamp, number));
                    self.counts.frames_sent += 1;
                    self.counts.packets_sent += u64::from(report.packets);
                    self.counts.tx_copied_payloads += u64::from(report.copied);
                }
                Err(_) => self.counts.tx_errors += 1,
            }
        }
    }

    /// Receives what the ports hold and reaps the copy device, without sending.
    pub fn take_in(
        &mut self,
        borrower: &mut DmaBorrower<'_, 'rx>,
        arrived: &mut Vec<Mbuf<'rx>>,
        clock: &mut StageClock,
    ) {
        let mut inline = InlineReceive {
            port: &mut self.port,
            redundant: self.redundant.as_ref(),
            rx: &mut self.rx,
            borrower,
            arrived,
            port_nanos: 0,
            reassemble_nanos: 0,
            high: None,
        };
        inline.drain();
        inline.rx.poll(inline.borrower);
        clock.add(Stage::Port, inline.port_nanos);
        clock.add(Stage::Reassemble, inline.reassemble_nanos);
    }

    /// Checks each frame the RX session completed against the pattern of the frame sent with
    /// its timestamp; frames sent before it that never came are dropped from the books.
    pub fn check_delivered(&mut self, clock: &mut StageClock) {
        while let Some(frame) = self.rx.next_frame() {
            let timestamp = frame.timestamp();
            while self.sent.front().is_some_and(|&(t, _)| t != timestamp) {
                self.sent.pop_front();
            }
            let Some((_, number)) = self.sent.pop_front() else {
                self.counts.frames_unknown += 1;
                continue;
            };
            let seed = pattern::seed(self.index, number);
            match clock.time(Stage::Verify, || {
                pattern::first_mismatch(frame.as_slice(), seed)
            }) {
                None => self.counts.frames_verified += 1,
                Some(offset) => {
                    self.counts.frames_mismatched += 1;
                    self.first_mismatch.get_or_insert(Mismatch {
                        stream: self.index,
                        frame: number,
                        offset,
                    });
                }
            }
        }
    }

    /// Whether every frame sent is done on the TX side and nothing is left to come in.
    pub fn settled(&self) -> bool {
        let rx = self.rx.stats();
        (0..self.tx.frame_count()).all(|id| matches!(self.tx.in_flight(id), Ok(false)))
            && self.tx.lent_frames().is_empty()
            && rx.copies_in_flight == 0
            && rx.frames_ready == 0
    }

    /// Ends the stream: the frame being assembled is given up (a last frame whose packets
    /// all came in was delivered already), and the RX session leaves the copy device.
    pub fn close(mut self, borrower: &mut DmaBorrower<'_, 'rx>, clock: &mut StageClock) -> Closed {
        self.rx.poll(borrower);
        self.check_delivered(clock);
        self.rx.abandon();
        let rx = self.rx.stats();
        let numa_fallbacks = self.tx.numa().fallbacks + self.rx.numa().fallbacks;
        let lent_returned = self.tx.external_frames_done();
        let ports: Vec<_> = self.ports().collect();
        let result = self.rx.close(borrower).map_err(|(e, _)| e.to_string());
        Closed {
            counts: self.counts,
            first_mismatch: self.first_mismatch,
            rx,
            numa_fallbacks,
            lent_returned,
            ports,
            close_error: result.err(),
        }
    }
}

/// A stream's figures after [`Stream::close`].
pub struct Closed {
    pub counts: StreamCounts,
    pub first_mismatch: Option<Mismatch>,
    pub rx: dpmem::frame::RxStats,
    /// The TX and RX sessions' allocations placed off their port's socket (none had memory).
    pub numa_fallbacks: u32,
    /// Lent frames the TX session handed back (`--external`).
    pub lent_returned: u64,
    pub ports: Vec<dpmem::frame::PortStats>,
    pub close_error: Option<String>,
}

/// The packetiser's sink for the primary path: sends the burst, then hands what the port(s)
/// received to the RX session.
struct InlineReceive<'x, 'eal, 'rx, 'a> {
    port: &'x mut PipelinePort<'rx>,
    redundant: Option<&'x RefCell<PipelinePort<'rx>>>,
    rx: &'x mut RxSession<'eal>,
    borrower: &'x mut DmaBorrower<'a, 'rx>,
    arrived: &'x mut Vec<Mbuf<'rx>>,
    port_nanos: u64,
    reassemble_nanos: u64,
    /// Where the pools' high-water marks are kept, while a frame is sent.
    high: Option<(&'x TxSession<'eal>, &'x mut HighWater)>,
}

impl InlineReceive<'_, '_, '_, '_> {
    fn drain(&mut self) {
        loop {
            let started = Instant::now();
            self.port.rx_burst(self.arrived, RX_BURST);
            if let Some(second) = self.redundant {
                second.borrow_mut().rx_burst(self.arrived, RX_BURST);
            }
            let received = Instant::now();
            self.port_nanos += (received - started).as_nanos() as u64;
            if self.arrived.is_empty() {
                return;
            }
            if let Some((_, high)) = &mut self.high {
                high.sample_rx(self.port.rx_pool());
            }
            self.rx.receive(self.borrower, self.arrived);
            self.reassemble_nanos += received.elapsed().as_nanos() as u64;
        }
    }
}

impl<'p> PacketSink<'p> for InlineReceive<'_, '_, '_, '_> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        if let Some((tx, high)) = &mut self.high {
            high.sample_tx(tx);
        }
        let started = Instant::now();
        self.port.send_burst(packets);
        self.port_nanos += started.elapsed().as_nanos() as u64;
        self.drain();
    }
}

/// The redundant path's sink: the second port, whose received packets the primary path's
/// sink takes in.
struct SharedPort<'x, 'rx> {
    port: &'x RefCell<PipelinePort<'rx>>,
    nanos: u64,
}

impl<'p> PacketSink<'p> for SharedPort<'_, '_> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        let started = Instant::now();
        self.port.borrow_mut().send_burst(packets);
        self.nanos += started.elapsed().as_nanos() as u64;
    }
}
