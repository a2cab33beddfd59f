//! Time spent per stage of the pipeline, for the nanoseconds-per-packet line: each stage's
//! calls are timed with the monotonic clock around a whole burst or frame, never per packet,
//! so the clock's own cost stays a small part of what it measures.

use std::time::Instant;

use serde::Serialize;

/// The stages of one lcore's loop, in the order a frame goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The application writes the picture into a TX frame.
    Generate,
    /// Headers written, payload segments attached and chained (the packetiser's own time).
    Packetise,
    /// The port moves the chains: gather on TX, scatter into RX buffers, TX chains released.
    Port,
    /// RX reassembly: headers parsed, payloads placed through the copy engine.
    Reassemble,
    /// Every byte of a received frame checked against what was sent.
    Verify,
}

const STAGES: [Stage; 5] = [
    Stage::Generate,
    Stage::Packetise,
    Stage::Port,
    Stage::Reassemble,
    Stage::Verify,
];

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Generate => "generate",
            Stage::Packetise => "packetise",
            Stage::Port => "port",
            Stage::Reassemble => "reassemble",
            Stage::Verify => "verify",
        }
    }
}

/// Nanoseconds spent per stage.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageClock {
    nanos: [u64; STAGES.len()],
}

impl StageClock {
    /// Runs `f` and adds its time to `stage`.
    #[inline]
    pub fn time<R>(&mut self, stage: Stage, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let result = f();
        self.add(stage, start.elapsed().as_nanos() as u64);
        result
    }

    pub fn add(&mut self, stage: Stage, nanos: u64) {
        self.nanos[stage as usize] += nanos;
    }

    pub fn merge(&mut self, other: &StageClock) {
        for (mine, theirs) in self.nanos.iter_mut().zip(other.nanos) {
            *mine += theirs;
        }
    }

    pub fn nanos(&self, stage: Stage) -> u64 {
        self.nanos[stage as usize]
    }

    /// Nanoseconds per packet per stage, over `packets`.
    pub fn per_packet(&self, packets: u64) -> Vec<StageTime> {
        STAGES
            .iter()
            .map(|&stage| StageTime {
                stage: stage.name(),
                ns_per_packet: self.nanos(stage) as f64 / packets.max(1) as f64,
            })
            .collect()
    }
}

/// One stage's share, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub ns_per_packet: f64,
}
