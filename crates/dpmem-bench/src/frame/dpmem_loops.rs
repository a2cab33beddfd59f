//! dpmem's side of the `frame` workload: the loops of `dpdk/csrc/dpdk_frame_shim.c` written
//! as a media application on dpmem writes them — a [`TxSession`] packetising its frame into
//! a sink and the packets freed as TX completion frees them, and received packets handed to
//! the copy engine's borrowing layer ([`DmaBorrower`]) — timed the same way: the monotonic
//! clock and the TSC read around the loop.

use std::cell::Cell;

use dpmem::eal::{Eal, Memzone};
use dpmem_dma::borrow::{BorrowStats, DmaBorrower, Lender};
use dpmem_dma::{DmaConf, DmaDevice, DmaError, VchanConf};
use dpmem_frame::{FrameError, TxSession, HEADER_LEN};
use dpmem_mbuf::{Mbuf, MbufError, PktmbufPool};

use super::rows::{rx_packets, tx_buffers, FrameRow, BURST, FORMAT, MAX_REAP, NB_DESC, RX_BUFFERS};
use crate::clocks::{between, Elapsed, Stamp};

/// Bytes of the stamp each received packet carries at the start of its payload.
const STAMP_LEN: usize = 8;

fn mbuf_failed(what: &'static str) -> impl FnOnce(MbufError) -> String {
    move |e| format!("dpmem: {what}: {e}")
}

fn frame_failed(what: &'static str) -> impl FnOnce(FrameError) -> String {
    move |e| format!("dpmem: {what}: {e}")
}

fn dma_failed(what: &'static str) -> impl FnOnce(DmaError) -> String {
    move |e| format!("dpmem: {what}: {e}")
}

/// The stamp of packet `i` of received frame `frame`: unique over a row, so a copy that did
/// not happen (or landed elsewhere) leaves a wrong one behind.
fn stamp_of(frame: u64, i: u32) -> u64 {
    frame * u64::from(rx_packets()) + u64::from(i)
}

/// dpmem's session, receive pool, destination frame and copy device for the rows, made once
/// per child.
pub(crate) struct DpmemFrameBench<'eal> {
    eal: &'eal Eal,
    session: TxSession<'eal>,
    rx_pool: PktmbufPool<'eal>,
    /// Where received payloads are copied: a frame in a memzone.
    rx_frame: Memzone,
    device: DmaDevice<'eal>,
    /// The number of the next frame received, over every row and run: what the stamps are
    /// made of.
    next_rx_frame: Cell<u64>,
}

impl std::fmt::Debug for DpmemFrameBench<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpmemFrameBench")
            .field("session", &self.session)
            .field("rx_pool", &self.rx_pool)
            .finish_non_exhaustive()
    }
}

impl<'eal> DpmemFrameBench<'eal> {
    /// A session of one frame buffer with pools of the shape's sizes, the receive pool (a
    /// port's, `dpmem_frame::rx_pool`), the destination frame and the copy device, started.
    pub(crate) fn new(eal: &'eal Eal) -> Result<Self, String> {
        let session = TxSession::builder("bench_frame")
            .format(FORMAT)
            .frames(1)
            .burst(BURST)
            .header_pool(tx_buffers())
            .payload_pool(tx_buffers())
            .create(eal)
            .map_err(frame_failed("creating the transmit session"))?;
        let rx_pool = dpmem_frame::rx_pool(eal, "bench_frame_rx", RX_BUFFERS)
            .map_err(|e| format!("dpmem: creating the receive pool: {e}"))?;
        let rx_frame = eal
            .memzones()
            .request("bench_frame_rx_frame", FORMAT.frame_size())
            .align(4096)
            .reserve()
            .map_err(|e| format!("dpmem: the destination frame: {e}"))?;
        // SAFETY: the memzone was just reserved for this child; nothing else uses it. Written
        // once so its pages are in place before any clock starts.
        unsafe { std::ptr::write_bytes(rx_frame.as_ptr(), 0, rx_frame.len) };
        let mut device = DmaDevice::create(eal, "bench_frame_dma")
            .map_err(dma_failed("creating the copy device"))?;
        device
            .configure(DmaConf::new(1))
            .and_then(|()| device.vchan_setup(0, VchanConf::mem_to_mem(NB_DESC)))
            .and_then(|()| device.start())
            .map_err(dma_failed("setting up the copy device"))?;
        Ok(DpmemFrameBench {
            eal,
            session,
            rx_pool,
            rx_frame,
            device,
            next_rx_frame: Cell::new(0),
        })
    }

    /// One row over `frames` frames, timed as one loop; every pool must be full, and audit
    /// whole, before and after it.
    pub(crate) fn run(&self, row: FrameRow, frames: u64) -> Result<Elapsed, String> {
        if frames == 0 {
            return Err("a row of no frames".to_owned());
        }
        self.check_pools("before")?;
        let elapsed = match row {
            FrameRow::Packetise => self.packetise(frames, false),
            FrameRow::PacketiseRedundant => self.packetise(frames, true),
            FrameRow::ReassemblyCpu => self.reassemble(frames, false),
            FrameRow::ReassemblyDevice => self.reassemble(frames, true),
        }?;
        self.check_pools("after")?;
        Ok(elapsed)
    }

    /// Every buffer back in its pool (lcore caches count as in it), and each pool's audit
    /// clean.
    fn check_pools(&self, when: &str) -> Result<(), String> {
        let s = &self.session;
        for pool in [
            s.header_pool(),
            s.payload_pool(),
            s.copy_pool(),
            &self.rx_pool,
        ] {
            if pool.avail_count() != pool.size() {
                return Err(format!(
                    "dpmem: pool {} holds {} of {} buffers {when} the row",
                    pool.name(),
                    pool.avail_count(),
                    pool.size()
                ));
            }
            pool.audit()
                .map_err(|e| format!("dpmem: pool {} {when} the row: {e}", pool.name()))?;
        }
        Ok(())
    }

    /// Per frame: the session's frame packetised into a Vec (two for the redundant row),
    /// then every packet freed, as a NIC's TX completion would; the frame's "done" must have
    /// run once per frame by the end.
    fn packetise(&self, frames: u64, redundant: bool) -> Result<Elapsed, String> {
        let s = &self.session;
        let per_frame = FORMAT.packets_per_frame();
        let mut sent: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame as usize);
        let mut sent_twin: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame as usize);
        let done_before = s.frames_done();
        let start = Stamp::start();
        for _ in 0..frames {
            let frame = s
                .get_frame()
                .ok_or("dpmem: the frame is still in flight after its packets were freed")?;
            let report = if redundant {
                s.transmit_redundant(frame, &mut sent, &mut sent_twin)
            } else {
                s.transmit(frame, &mut sent)
            }
            .map_err(frame_failed("transmit"))?;
            Mbuf::free_all(sent.drain(..));
            Mbuf::free_all(sent_twin.drain(..));
            if report.packets != per_frame || report.copied != 0 {
                return Err(format!(
                    "dpmem: a frame went out in {} packets, {} copied (expected {per_frame}, \
                     none copied)",
                    report.packets, report.copied
                ));
            }
        }
        let end = Stamp::end();
        let done = s.frames_done() - done_before;
        if done != frames {
            return Err(format!(
                "dpmem: {done} frames done after {frames} were sent and freed"
            ));
        }
        Ok(between(start, end))
    }

    /// Per frame: every full payload received in a buffer of the receive pool and copied to
    /// its place in the destination frame, by the CPU (no device) or by the copy engine;
    /// then every stamp of the last frame checked.
    fn reassemble(&self, frames: u64, on_device: bool) -> Result<Elapsed, String> {
        let vchan = if on_device {
            Some(
                self.device
                    .vchan(0)
                    .map_err(dma_failed("taking the channel"))?,
            )
        } else {
            None
        };
        let mut borrower =
            DmaBorrower::new(self.eal, vchan).map_err(dma_failed("the borrowing layer"))?;
        let lender = borrower.register(|_| {});
        let mut burst: Vec<Mbuf<'_>> = Vec::with_capacity(BURST);
        let first = self.next_rx_frame.get();
        self.next_rx_frame.set(first + frames);
        let start = Stamp::start();
        for frame in first..first + frames {
            self.receive_frame(&mut borrower, &lender, &mut burst, frame, on_device)?;
        }
        let end = Stamp::end();
        let stats = borrower.stats();
        drop(borrower);
        self.check_copies(stats, frames, on_device)?;
        self.check_stamps(first + frames - 1)?;
        Ok(between(start, end))
    }

    /// One frame's packets, in bursts, through the borrower; returns once none is in flight
    /// (MTL delivers a frame only when its copies are done).
    fn receive_frame<'p>(
        &'p self,
        borrower: &mut DmaBorrower<'_, 'p>,
        lender: &Lender,
        burst: &mut Vec<Mbuf<'p>>,
        frame: u64,
        on_device: bool,
    ) -> Result<(), String> {
        let payload = FORMAT.payload_len;
        let total = rx_packets();
        let dst = self.rx_frame.as_ptr();
        let mut i = 0u32;
        while i < total {
            let n = (total - i).min(BURST as u32) as usize;
            if on_device {
                // Room on the channel for the whole burst, as DPDK's loop waits for it.
                while usize::from(NB_DESC) - 1 - borrower.in_flight() < n {
                    if borrower.completed(usize::from(MAX_REAP)) == 0 {
                        std::hint::spin_loop();
                    }
                }
            }
            if n == BURST {
                let full = self.rx_pool.alloc_array::<BURST>();
                burst.extend(full.map_err(mbuf_failed("alloc_array"))?);
            } else {
                self.rx_pool
                    .alloc_into(burst, n)
                    .map_err(mbuf_failed("alloc_into"))?;
            }
            for mut packet in burst.drain(..) {
                let bytes = packet
                    .append(HEADER_LEN as u16 + payload)
                    .map_err(mbuf_failed("append"))?;
                bytes[HEADER_LEN..HEADER_LEN + STAMP_LEN]
                    .copy_from_slice(&stamp_of(frame, i).to_ne_bytes());
                let at = i as usize * payload as usize;
                // SAFETY: the destination frame is this child's memzone, `at + payload` is
                // inside it, and nothing reads or writes it while copies are in flight (the
                // stamps are read after the row, once every copy is reported).
                let copied = unsafe {
                    borrower.copy(
                        lender,
                        packet,
                        HEADER_LEN as u32,
                        dst.wrapping_add(at),
                        u32::from(payload),
                    )
                };
                copied.map_err(|(e, _packet)| format!("dpmem: DmaBorrower::copy: {e}"))?;
                i += 1;
            }
            if on_device {
                borrower.submit();
                borrower.completed(usize::from(MAX_REAP));
            }
        }
        while borrower.in_flight() != 0 {
            if borrower.completed(usize::from(MAX_REAP)) == 0 {
                std::hint::spin_loop();
            }
        }
        Ok(())
    }

    /// Every copy of the row went the way the row says.
    fn check_copies(&self, stats: BorrowStats, frames: u64, on_device: bool) -> Result<(), String> {
        let packets = frames * u64::from(rx_packets());
        let (way, done) = if on_device {
            ("by the copy engine", stats.dma_copies)
        } else {
            ("by the CPU", stats.cpu_no_device)
        };
        if done != packets || (on_device && stats.released != packets) {
            return Err(format!(
                "dpmem: {done} of {packets} copies {way} ({stats:?})"
            ));
        }
        Ok(())
    }

    /// The destination frame holds the stamp of frame `frame` at every payload.
    fn check_stamps(&self, frame: u64) -> Result<(), String> {
        // SAFETY: no copy is in flight (the borrower is gone), and the memzone is this
        // child's, `frame_size` bytes long.
        let bytes =
            unsafe { std::slice::from_raw_parts(self.rx_frame.as_ptr(), FORMAT.frame_size()) };
        let payload = FORMAT.payload_len as usize;
        for i in 0..rx_packets() {
            let at = i as usize * payload;
            if bytes[at..at + STAMP_LEN] != stamp_of(frame, i).to_ne_bytes() {
                return Err(format!(
                    "dpmem: payload {i} of the last frame is not where it was copied to"
                ));
            }
        }
        Ok(())
    }
}
