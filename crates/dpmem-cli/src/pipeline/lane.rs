//! One lcore's share of the pipeline: its streams (stream `i` goes to lane `i mod lanes`),
//! its own borrowing layer over its own channel of the copy device (a channel has one owner,
//! as dmadev's do), the loop over its streams until the deadline, then the settling pass
//! and the closing of its streams.

use std::time::{Duration, Instant};

use dpmem::dma::borrow::{BorrowStats, DmaBorrower};
use dpmem::dma::Vchan;
use dpmem::eal::Eal;
use dpmem::frame::{RxSession, St20Format, TxSession};
use dpmem::mbuf::{Mbuf, PktmbufPool};

use super::app_frames::{AppFrames, APP_FRAMES};
use super::high_water::HighWater;
use super::live_figures::LiveFigures;
use super::port_choice::{PipelinePort, PortKind};
use super::stage_clock::StageClock;
use super::stream::{Closed, Stream};

/// Buffers in each TX session's header and payload pools: the loop releases every burst
/// before the next is built, so a few bursts' worth is plenty (the high-water marks show it).
const TX_POOL: u32 = 2048;
/// How long the last frames have to come in after the run.
const SETTLE: Duration = Duration::from_secs(2);

/// What a lane is given.
pub struct LanePlan<'a, 'eal> {
    pub eal: &'eal Eal,
    pub format: St20Format,
    pub port: PortKind,
    pub redundant: bool,
    /// Frames the application maps and lends (`--external`).
    pub external: bool,
    pub rx_frames: u16,
    /// The stream numbers this lane runs.
    pub streams: Vec<u32>,
    pub rx_pool: &'a PktmbufPool<'eal>,
    pub deadline: Instant,
    /// Every lane's figures so far, for the progress line and telemetry.
    pub live: &'a LiveFigures,
}

/// What a lane did.
pub struct LaneResult {
    pub closed: Vec<Closed>,
    pub clock: StageClock,
    pub borrow: BorrowStats,
    pub high: HighWater,
    /// TX buffers still out after the lane's streams settled.
    pub tx_pools_in_use: u32,
    pub sessions_on_device: u32,
    /// When the lane's loop saw the deadline pass (it finishes the round it is in).
    pub loop_ended: Instant,
}

/// Runs a lane; `progress` is called after each round over its streams.
pub fn run_lane(
    plan: &LanePlan<'_, '_>,
    vchan: Option<Vchan<'_>>,
    mut progress: impl FnMut(),
) -> Result<LaneResult, String> {
    let eal = plan.eal;
    let mut borrower = DmaBorrower::new(eal, vchan).map_err(|e| e.to_string())?;
    let mut streams = Vec::with_capacity(plan.streams.len());
    for &index in &plan.streams {
        // The port first: the sessions take their socket from it (that of this lcore), and
        // fall back to any socket, counted, when it has no memory.
        let port = PipelinePort::open(plan.port, plan.rx_pool)?;
        let redundant = if plan.redundant {
            Some(PipelinePort::open(plan.port, plan.rx_pool)?)
        } else {
            None
        };
        let app = if plan.external {
            Some(AppFrames::new(eal, plan.format.frame_size())?)
        } else {
            None
        };
        let own_frames = if plan.external { 0 } else { 2 };
        let tx = TxSession::builder(&format!("pl-tx{index}"))
            .format(plan.format)
            .frames(own_frames)
            .external_frames(if plan.external { APP_FRAMES as u16 } else { 0 })
            .port(&port)
            .header_pool(TX_POOL)
            .payload_pool(TX_POOL)
            .create(eal)
            .map_err(|e| format!("TX session {index}: {e}"))?;
        let rx = RxSession::builder(&format!("pl-rx{index}"))
            .format(plan.format)
            .frames(plan.rx_frames)
            .port(&port)
            .create(eal, &mut borrower)
            .map_err(|e| format!("RX session {index}: {e}"))?;
        streams.push(Stream::new(index, tx, port, redundant, rx, app));
    }
    let sessions_on_device = streams.iter().filter(|s| s.rx().on_device()).count() as u32;

    let mut clock = StageClock::default();
    let mut arrived: Vec<Mbuf<'_>> = Vec::with_capacity(256);
    let mut high = HighWater::default();
    while Instant::now() < plan.deadline {
        for stream in &mut streams {
            let before = stream.counts;
            stream.step(&mut borrower, &mut arrived, &mut clock, &mut high);
            let (after, live) = (stream.counts, plan.live);
            live.add(&live.frames_sent, after.frames_sent - before.frames_sent);
            live.add(
                &live.frames_verified,
                after.frames_verified - before.frames_verified,
            );
            live.add(
                &live.frames_mismatched,
                after.frames_mismatched - before.frames_mismatched,
            );
            live.add(&live.packets_sent, after.packets_sent - before.packets_sent);
        }
        progress();
    }
    let loop_ended = Instant::now();

    // The frames on their way when time ran out come in; nothing more is sent.
    let settling = Instant::now();
    while settling.elapsed() < SETTLE && !streams.iter().all(Stream::settled) {
        for stream in &mut streams {
            stream.take_in(&mut borrower, &mut arrived, &mut clock);
            stream.check_delivered(&mut clock);
        }
    }
    let tx_pools_in_use = streams
        .iter()
        .map(|s| {
            let tx = s.tx();
            tx.header_pool().in_use_count()
                + tx.payload_pool().in_use_count()
                + tx.copy_pool().in_use_count()
        })
        .sum();
    let closed = streams
        .into_iter()
        .map(|stream| stream.close(&mut borrower, &mut clock))
        .collect();
    Ok(LaneResult {
        closed,
        clock,
        borrow: borrower.stats(),
        high,
        tx_pools_in_use,
        sessions_on_device,
        loop_ended,
    })
}
