//! What `dpmem pipeline` sets up and runs: the EAL (on the embedded default unless EAL
//! options are given), the copy device and its borrowing layer, one RX pool the ports
//! receive into, and the streams; then the loop over the streams on the main lcore for the
//! duration asked, a settling pass that lets the last frames come in, and the audit of every
//! pool.

use std::time::{Duration, Instant};

use dpmem::dma::borrow::DmaBorrower;
use dpmem::dma::{DmaConf, DmaDevice, VchanConf};
use dpmem::eal::{DefaultMemory, Eal, Socket};
use dpmem::frame::{rx_pool, RxSession, TxSession};
use dpmem::mbuf::Mbuf;

use super::args::PipelineArgs;
use super::bandwidth;
use super::high_water::HighWater;
use super::port_choice::PipelinePort;
use super::report::{Report, Setup};
use super::stage_clock::StageClock;
use super::stream::{Closed, Stream};

/// Buffers in each TX session's header and payload pools: the loop releases every burst
/// before the next is built, so a few bursts' worth is plenty (the high-water marks show it).
const TX_POOL: u32 = 2048;
/// Buffers the ports receive into: a burst in the port, and the packets the copy device
/// holds (at most its ring).
const RX_POOL: u32 = 8191;
/// Descriptors in the copy device's ring.
const DMA_RING: u16 = 4096;
/// How long the last frames have to come in after the run.
const SETTLE: Duration = Duration::from_secs(2);

pub fn run(args: &PipelineArgs) -> Result<Report, String> {
    args.check()?;
    let format = args.format.format();
    // Measured before the EAL takes its memory, with nothing else of ours running.
    let bandwidth = bandwidth::copy_bytes_per_second(Duration::from_millis(500));
    let (eal_args, memory_note) = eal_args(args, format.frame_size());
    if let Some(note) = &memory_note {
        eprintln!("dpmem pipeline: {note}");
    }
    let argv = std::iter::once("dpmem-pipeline".to_owned()).chain(eal_args.iter().cloned());
    let eal = Eal::init(argv).map_err(|e| format!("EAL init failed: {e}"))?;
    let lcores = eal.lcore_threads();
    let socket = lcores
        .lcore_socket(lcores.main_lcore())
        .unwrap_or(Socket::Any);

    // Before the borrower, which holds packets of this pool until their copies are done.
    let rx_pool = rx_pool(&eal, "pipeline-rx", RX_POOL).map_err(|e| e.to_string())?;
    let device = if args.no_dma {
        None
    } else {
        Some(copy_device(&eal).map_err(|e| format!("the DMA copy engine: {e}"))?)
    };
    let vchan = match &device {
        Some(device) => Some(device.vchan(0).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut borrower = DmaBorrower::new(&eal, vchan).map_err(|e| e.to_string())?;

    let mut streams = Vec::with_capacity(args.sessions as usize);
    for index in 0..args.sessions {
        let tx = TxSession::builder(&format!("pl-tx{index}"))
            .format(format)
            .frames(2)
            .socket(socket)
            .header_pool(TX_POOL)
            .payload_pool(TX_POOL)
            .create(&eal)
            .map_err(|e| format!("TX session {index}: {e}"))?;
        let rx = RxSession::builder(&format!("pl-rx{index}"))
            .format(format)
            .frames(args.rx_frames)
            .socket(socket)
            .create(&eal, &mut borrower)
            .map_err(|e| format!("RX session {index}: {e}"))?;
        let port = PipelinePort::open(args.port, &rx_pool)?;
        let redundant = if args.redundant {
            Some(PipelinePort::open(args.port, &rx_pool)?)
        } else {
            None
        };
        streams.push(Stream::new(index, tx, port, redundant, rx));
    }

    let setup = Setup {
        sessions: args.sessions,
        format: args.format.name().to_owned(),
        frame_bytes: format.frame_size(),
        packets_per_frame: format.packets_per_frame(),
        port: args.port,
        redundant: args.redundant,
        dma: device.is_some(),
        sessions_on_device: streams.iter().filter(|s| s.rx().on_device()).count() as u32,
        hugepages: !eal.options().no_huge,
        eal_args: eal_args.join(" "),
    };

    let mut clock = StageClock::default();
    let mut arrived: Vec<Mbuf<'_>> = Vec::with_capacity(256);
    let mut high = HighWater::default();
    let duration = Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let mut progress = Progress::new(started, args.quiet);
    while started.elapsed() < duration {
        for stream in &mut streams {
            stream.step(&mut borrower, &mut arrived, &mut clock, &mut high);
        }
        progress.tick(&streams, args.sessions);
    }
    let elapsed = started.elapsed();
    progress.finish();

    // The frames on their way when time ran out come in; nothing more is sent.
    let settling = Instant::now();
    while settling.elapsed() < SETTLE && !streams.iter().all(Stream::settled) {
        for stream in &mut streams {
            stream.take_in(&mut borrower, &mut arrived, &mut clock);
            stream.check_delivered(&mut clock);
        }
    }
    let borrow_stats = borrower.stats();
    let tx_pools_in_use: u32 = streams
        .iter()
        .map(|s| {
            let tx = s.tx();
            tx.header_pool().in_use_count()
                + tx.payload_pool().in_use_count()
                + tx.copy_pool().in_use_count()
        })
        .sum();
    let closed: Vec<Closed> = streams
        .into_iter()
        .map(|stream| stream.close(&mut borrower, &mut clock))
        .collect();
    drop(borrower);
    let rx_pool_in_use = rx_pool.in_use_count();
    let device_stats = device.as_ref().map(DmaDevice::stats_total);

    Ok(Report::build(
        setup,
        elapsed,
        &closed,
        &clock,
        borrow_stats,
        device_stats,
        high,
        tx_pools_in_use,
        rx_pool_in_use,
        bandwidth,
        memory_note,
    ))
}

/// The copy device: one memory-to-memory channel, its worker on the EAL's control CPUs.
fn copy_device(eal: &Eal) -> Result<DmaDevice<'_>, dpmem::dma::DmaError> {
    let mut device = DmaDevice::create(eal, "pipeline-dma")?;
    device.configure(DmaConf::new(1))?;
    device.vchan_setup(0, VchanConf::mem_to_mem(DMA_RING))?;
    device.start()?;
    Ok(device)
}

/// The EAL options: the user's, or the embedded default with memory for the streams (their
/// frames, pools and the RX pool, with room to spare) and a file prefix of this process's.
fn eal_args(args: &PipelineArgs, frame_bytes: usize) -> (Vec<String>, Option<String>) {
    if !args.eal_args.is_empty() {
        return (args.eal_args.clone(), None);
    }
    let frames_per_stream = 2 + u64::from(args.rx_frames);
    let per_stream_mb = (frames_per_stream * frame_bytes as u64).div_ceil(1 << 20) + 4;
    let memory_mb = 64 + u64::from(args.sessions) * per_stream_mb;
    let memory = DefaultMemory::detect(memory_mb);
    let note = memory.note();
    let mut eal_args = vec!["-l".to_owned(), "0".to_owned()];
    eal_args.extend(memory.eal_args_in_memory());
    eal_args.extend([
        "--file-prefix".to_owned(),
        format!("dpmem-pipeline-{}", std::process::id()),
    ]);
    (eal_args, note)
}

/// The progress line on standard error, once a second.
struct Progress {
    started: Instant,
    next: Duration,
    quiet: bool,
}

impl Progress {
    fn new(started: Instant, quiet: bool) -> Self {
        Progress {
            started,
            next: Duration::from_secs(1),
            quiet,
        }
    }

    fn tick(&mut self, streams: &[Stream<'_, '_>], sessions: u32) {
        let elapsed = self.started.elapsed();
        if self.quiet || elapsed < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        let verified: u64 = streams.iter().map(|s| s.counts.frames_verified).sum();
        let fps = verified as f64 / elapsed.as_secs_f64();
        eprint!(
            "\r{:>5.1} s  {sessions} streams  {verified} frames verified  {fps:.0} frames/s  \
             {:.1} streams of 1080p59.94   ",
            elapsed.as_secs_f64(),
            fps / (60_000.0 / 1001.0),
        );
    }

    fn finish(&self) {
        if !self.quiet && self.started.elapsed() >= Duration::from_secs(1) {
            eprintln!();
        }
    }
}
