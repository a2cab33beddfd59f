//! The pipeline's figures while it runs, for the progress line and for the telemetry
//! command `/dpmem/pipeline` (DPDK's `dpdk-telemetry.py -f <prefix>` reads it from a running
//! `dpmem pipeline`): counters the lanes add to after each frame, read without stopping them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Instant;

use dpmem::eal::telemetry::{register_command, TelemetryDict, TelemetryValue};

/// Counters every lane adds to.
#[derive(Debug)]
pub struct LiveFigures {
    started: Instant,
    pub frames_sent: AtomicU64,
    pub frames_verified: AtomicU64,
    pub frames_mismatched: AtomicU64,
    pub packets_sent: AtomicU64,
}

impl LiveFigures {
    pub fn new() -> Arc<LiveFigures> {
        Arc::new(LiveFigures {
            started: Instant::now(),
            frames_sent: AtomicU64::new(0),
            frames_verified: AtomicU64::new(0),
            frames_mismatched: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
        })
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn answer(&self) -> Result<TelemetryValue, dpmem::eal::telemetry::TelemetryError> {
        let seconds = self.started.elapsed().as_secs_f64();
        let verified = self.frames_verified.load(Ordering::Relaxed);
        let mut dict = TelemetryDict::new();
        dict.insert("seconds", format!("{seconds:.3}"))?
            .insert("frames_sent", self.frames_sent.load(Ordering::Relaxed))?
            .insert("frames_verified", verified)?
            .insert(
                "frames_mismatched",
                self.frames_mismatched.load(Ordering::Relaxed),
            )?
            .insert("packets_sent", self.packets_sent.load(Ordering::Relaxed))?
            .insert(
                "streams_1080p5994",
                format!(
                    "{:.2}",
                    verified as f64 / seconds.max(1e-9) / (60_000.0 / 1001.0)
                ),
            )?;
        Ok(dict.into())
    }

    /// Makes `self` what `/dpmem/pipeline` answers (the last run's, in a process that runs
    /// the pipeline more than once).
    pub fn serve(self: &Arc<Self>) {
        static ONCE: Once = Once::new();
        static CURRENT: std::sync::Mutex<Option<Arc<LiveFigures>>> = std::sync::Mutex::new(None);
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
        ONCE.call_once(|| {
            // A name the application took first stays the application's.
            let _ = register_command(
                "/dpmem/pipeline",
                "The running dpmem pipeline's figures: frames sent, verified, mismatched, \
                 packets, streams of 1080p59.94 so far. No parameter.",
                |_, _| match CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    Some(live) => live.answer(),
                    None => Ok(TelemetryDict::new().into()),
                },
            );
        });
    }
}
