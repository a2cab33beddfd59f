//! What `dpmem pipeline` sets up and runs: the EAL (on the embedded default unless EAL
//! options are given), the copy device with a channel per lcore, one RX pool the ports
//! receive into, and a lane per lcore running its share of the streams for the duration
//! asked; then the audit of every pool and the report.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dpmem::dma::{DmaConf, DmaDevice, VchanConf};
use dpmem::eal::{DefaultMemory, Eal};
use dpmem::frame::rx_pool;

use super::args::PipelineArgs;
use super::bandwidth;
use super::lane::{run_lane, LanePlan, LaneResult};
use super::live_figures::LiveFigures;
use super::report::{Report, Setup};

/// Buffers the ports receive into: a burst in each port, and the packets the copy device
/// holds (at most its rings).
const RX_POOL_PER_LANE: u32 = 8192;

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
    let workers: Vec<u32> = lcores.worker_ids().collect();
    let lanes = (1 + workers.len()).min(args.sessions as usize);

    // Before the borrowers, which hold packets of this pool until their copies are done.
    let rx_pool = rx_pool(&eal, "pipeline-rx", RX_POOL_PER_LANE * lanes as u32 - 1)
        .map_err(|e| e.to_string())?;
    let device = if args.no_dma {
        None
    } else {
        Some(
            copy_device(&eal, lanes as u16, args.dma_ring)
                .map_err(|e| format!("the DMA copy engine: {e}"))?,
        )
    };

    let live = LiveFigures::new();
    live.serve();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let plans: Vec<LanePlan<'_, '_>> = (0..lanes)
        .map(|lane| LanePlan {
            eal: &eal,
            format,
            port: args.port,
            redundant: args.redundant,
            external: args.external,
            rx_frames: args.rx_frames,
            streams: (0..args.sessions)
                .filter(|i| *i as usize % lanes == lane)
                .collect(),
            rx_pool: &rx_pool,
            deadline,
            live: &live,
        })
        .collect();
    let vchan = |lane: usize| match &device {
        Some(device) => device
            .vchan(lane as u16)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    };
    let mut progress = Progress::new(started, args.quiet, args.sessions);
    let results: Vec<Result<LaneResult, String>> = lcores.scope(|scope| {
        let mut launched = Vec::new();
        for (plan, &worker) in plans.iter().skip(1).zip(&workers) {
            let vchan = vchan(launched.len() + 1);
            let launch = scope.launch(worker, move || run_lane(plan, vchan?, || {}));
            launched.push(launch.map_err(|e| format!("launching lane on lcore {worker}: {e}")));
        }
        let mine = vchan(0).and_then(|v| run_lane(&plans[0], v, || progress.tick(&live)));
        let mut results = vec![mine];
        for launch in launched {
            results.push(launch.and_then(|l| {
                l.join()
                    .map_err(|e| format!("a lane failed: {e}"))
                    .and_then(|r| r)
            }));
        }
        results
    });
    progress.finish();
    let results: Vec<LaneResult> = results.into_iter().collect::<Result<_, _>>()?;
    let elapsed = results
        .iter()
        .map(|r| r.loop_ended.saturating_duration_since(started))
        .max()
        .unwrap_or_default();
    let rx_pool_in_use = rx_pool.in_use_count();
    let device_stats = device.as_ref().map(DmaDevice::stats_total);

    let setup = Setup {
        sessions: args.sessions,
        lcores: lanes as u32,
        format: args.format.name().to_owned(),
        frame_bytes: format.frame_size(),
        packets_per_frame: format.packets_per_frame(),
        port: args.port,
        redundant: args.redundant,
        external: args.external,
        dma: device.is_some(),
        sessions_on_device: results.iter().map(|r| r.sessions_on_device).sum(),
        hugepages: !eal.options().no_huge,
        eal_args: eal_args.join(" "),
    };
    Ok(Report::build(
        setup,
        elapsed,
        &results,
        device_stats,
        rx_pool_in_use,
        bandwidth,
        memory_note,
    ))
}

/// The copy device: a memory-to-memory channel per lane, its worker on the EAL's control
/// CPUs.
fn copy_device(eal: &Eal, channels: u16, ring: u16) -> Result<DmaDevice<'_>, dpmem::dma::DmaError> {
    let mut device = DmaDevice::create(eal, "pipeline-dma")?;
    device.configure(DmaConf::new(channels))?;
    for channel in 0..channels {
        device.vchan_setup(channel, VchanConf::mem_to_mem(ring))?;
    }
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
    let lcores = args
        .lcores
        .clone()
        .unwrap_or_else(|| default_lcores(!args.no_dma));
    let mut eal_args = vec!["-l".to_owned(), lcores];
    eal_args.extend(memory.eal_args_in_memory());
    eal_args.extend([
        "--file-prefix".to_owned(),
        format!("dpmem-pipeline-{}", std::process::id()),
    ]);
    (eal_args, note)
}

/// Every CPU this process may run on, but the last when the copy engine's worker needs one
/// of its own (it runs on the CPUs that are no lcore's); at least one.
fn default_lcores(leave_one_for_the_engine: bool) -> String {
    let cpus: Vec<u32> = dpmem_sys::thread::current_affinity()
        .map(|set| set.into_iter().collect())
        .unwrap_or_default();
    let keep = match cpus.len() {
        0 => return "0".to_owned(),
        1 => 1,
        n if leave_one_for_the_engine => n - 1,
        n => n,
    };
    cpus[..keep]
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The progress line on standard error, once a second, from the main lcore.
struct Progress {
    started: Instant,
    next: Duration,
    quiet: bool,
    sessions: u32,
}

impl Progress {
    fn new(started: Instant, quiet: bool, sessions: u32) -> Self {
        Progress {
            started,
            next: Duration::from_secs(1),
            quiet,
            sessions,
        }
    }

    fn tick(&mut self, live: &LiveFigures) {
        let elapsed = self.started.elapsed();
        if self.quiet || elapsed < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        let verified = live.frames_verified.load(Ordering::Relaxed);
        let fps = verified as f64 / elapsed.as_secs_f64();
        eprint!(
            "\r{:>5.1} s  {} streams  {verified} frames verified  {fps:.0} frames/s  \
             {:.1} streams of 1080p59.94   ",
            elapsed.as_secs_f64(),
            self.sessions,
            fps / (60_000.0 / 1001.0),
        );
    }

    fn finish(&self) {
        if !self.quiet && self.started.elapsed() >= Duration::from_secs(1) {
            eprintln!();
        }
    }
}
