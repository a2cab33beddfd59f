//! What `dpmem pipeline` reports: the figures the issue asks for, as text or JSON, and
//! whether the run failed (a frame that differs from what was sent, nothing verified, or a
//! pool that did not come back whole).

use std::time::Duration;

use dpmem::dma::borrow::BorrowStats;
use dpmem::dma::DmaStats;
use serde::Serialize;

use super::high_water::HighWater;
use super::lane::LaneResult;
use super::port_choice::PortKind;
use super::stage_clock::{StageClock, StageTime};
use super::stream::{Closed, Mismatch};

/// Frames per second of one 1080p59.94 stream.
const FPS_5994: f64 = 60_000.0 / 1001.0;

/// How the run was set up.
#[derive(Debug, Serialize)]
pub struct Setup {
    pub sessions: u32,
    /// Lcores the streams are spread over (each with its own channel of the copy device).
    pub lcores: u32,
    pub format: String,
    pub frame_bytes: usize,
    pub packets_per_frame: u32,
    pub port: PortKind,
    pub redundant: bool,
    /// Frames lent by the application (`--external`).
    pub external: bool,
    pub dma: bool,
    /// RX sessions whose copies go to the device (at most 16 share one).
    pub sessions_on_device: u32,
    pub hugepages: bool,
    pub eal_args: String,
}

#[derive(Debug, Serialize)]
pub struct Frames {
    pub sent: u64,
    pub verified: u64,
    pub mismatched: u64,
    pub incomplete: u64,
    pub without_buffer: u64,
    pub not_delivered: u64,
    /// Delivered frames whose timestamp matches no frame sent (a failure: never expected).
    pub unknown: u64,
    pub tx_errors: u64,
    /// Frames the application lent that the TX sessions handed back (`--external`): every
    /// one sent, exactly once.
    pub lent_returned: u64,
}

#[derive(Debug, Serialize)]
pub struct Rates {
    pub frames_per_second: f64,
    pub packets_per_second: f64,
    /// Bits of received packets (headers and payloads) per second.
    pub gigabits_per_second: f64,
    /// Verified frames per second over 59.94.
    pub streams_1080p5994: f64,
}

#[derive(Debug, Serialize)]
pub struct Copies {
    /// Payloads the copy engine placed into RX frames.
    pub engine: u64,
    /// Payloads the CPU placed, and why.
    pub cpu: u64,
    pub cpu_small: u64,
    pub cpu_device_full: u64,
    pub cpu_cross_page: u64,
    pub cpu_no_device: u64,
    pub cpu_after_error: u64,
    /// TX payloads copied into a data buffer because they crossed a break in the frame's
    /// device addresses.
    pub tx_cross_page: u64,
    /// Operations the copy engine reported done, and failed (its own statistics).
    pub engine_completed: Option<u64>,
    pub engine_errors: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Packets {
    pub sent: u64,
    pub port_tx: u64,
    pub port_rx: u64,
    pub port_drops: u64,
    pub rx_dropped: u64,
    pub duplicates: u64,
}

#[derive(Debug, Serialize)]
pub struct Memory {
    /// `memcpy` between two 128 MiB buffers, best of a few passes, before the run.
    pub copy_bandwidth_gbytes_per_second: f64,
    /// Bytes the pipeline copied per second: each packet gathered by the port (or, over UDP,
    /// into and out of the kernel) and each payload placed into its RX frame.
    pub copied_gbytes_per_second: f64,
    /// The two above, as a fraction.
    pub of_bandwidth: f64,
}

#[derive(Debug, Serialize)]
pub struct Audit {
    /// TX header, payload and copy buffers still out after the run (0 when whole).
    pub tx_pools_in_use: u32,
    /// RX buffers still out after the run.
    pub rx_pool_in_use: u32,
    /// Errors closing RX sessions.
    pub close_errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub setup: Setup,
    /// Session allocations placed on another socket than their port's, which had no memory
    /// for them (MTL notes such a mismatch is silent and halves throughput).
    pub numa_fallbacks: u64,
    pub seconds: f64,
    pub frames: Frames,
    pub rates: Rates,
    pub packets: Packets,
    pub stages_ns_per_packet: Vec<StageTime>,
    pub copies: Copies,
    pub pool_high_water: HighWater,
    pub memory: Memory,
    pub audit: Audit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mismatch: Option<Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Report {
    pub fn build(
        setup: Setup,
        elapsed: Duration,
        lanes: &[LaneResult],
        device: Option<DmaStats>,
        rx_pool_in_use: u32,
        copy_bandwidth: f64,
        note: Option<String>,
    ) -> Report {
        let seconds = elapsed.as_secs_f64();
        let closed: Vec<&Closed> = lanes.iter().flat_map(|l| &l.closed).collect();
        let mut clock = StageClock::default();
        let mut borrow = BorrowStats::default();
        let mut pool_high_water = HighWater::default();
        for lane in lanes {
            clock.merge(&lane.clock);
            borrow = plus(borrow, lane.borrow);
            pool_high_water = pool_high_water.max(lane.high);
        }
        let tx_pools_in_use = lanes.iter().map(|l| l.tx_pools_in_use).sum();
        let sum = |f: &dyn Fn(&Closed) -> u64| closed.iter().map(|c| f(c)).sum::<u64>();
        let verified = sum(&|c| c.counts.frames_verified);
        let sent = sum(&|c| c.counts.frames_sent);
        let incomplete = sum(&|c| c.rx.frames_incomplete);
        let without_buffer = sum(&|c| c.rx.frames_without_buffer);
        let mismatched = sum(&|c| c.counts.frames_mismatched);
        let port_sum = |f: &dyn Fn(&dpmem::frame::PortStats) -> u64| {
            closed
                .iter()
                .flat_map(|c| c.ports.iter())
                .map(f)
                .sum::<u64>()
        };
        let port_rx_bytes = port_sum(&|p| p.rx_bytes);
        let port_tx_bytes = port_sum(&|p| p.tx_bytes);
        let packets_sent = sum(&|c| c.counts.packets_sent);
        let bytes_placed = sum(&|c| c.rx.bytes_placed);
        // The loopback port reads each packet once and writes it once (one copy); over UDP
        // the kernel copies it in on send and out on receive (two).
        let port_copies = match setup.port {
            PortKind::Loopback => port_tx_bytes,
            PortKind::Udp => port_tx_bytes + port_rx_bytes,
        };
        let copied_per_second = (port_copies + bytes_placed) as f64 / seconds;
        Report {
            frames: Frames {
                sent,
                verified,
                mismatched,
                incomplete,
                without_buffer,
                not_delivered: sent.saturating_sub(verified + mismatched),
                unknown: sum(&|c| c.counts.frames_unknown),
                tx_errors: sum(&|c| c.counts.tx_errors),
                lent_returned: sum(&|c| c.lent_returned),
            },
            rates: Rates {
                frames_per_second: verified as f64 / seconds,
                packets_per_second: packets_sent as f64 / seconds,
                gigabits_per_second: port_rx_bytes as f64 * 8.0 / seconds / 1e9,
                streams_1080p5994: verified as f64 / seconds / FPS_5994,
            },
            packets: Packets {
                sent: packets_sent,
                port_tx: port_sum(&|p| p.tx_packets),
                port_rx: port_sum(&|p| p.rx_packets),
                port_drops: port_sum(&|p| p.drops.total()),
                rx_dropped: sum(&|c| c.rx.dropped.total()),
                duplicates: sum(&|c| c.rx.duplicates),
            },
            stages_ns_per_packet: clock.per_packet(packets_sent),
            copies: Copies {
                engine: borrow.dma_copies,
                cpu: borrow.cpu_copies(),
                cpu_small: borrow.cpu_small,
                cpu_device_full: borrow.cpu_device_full,
                cpu_cross_page: borrow.cpu_cross_page,
                cpu_no_device: borrow.cpu_no_device,
                cpu_after_error: borrow.cpu_after_error,
                tx_cross_page: sum(&|c| c.counts.tx_copied_payloads),
                engine_completed: device.map(|d| d.completed),
                engine_errors: device.map(|d| d.errors),
            },
            pool_high_water,
            memory: Memory {
                copy_bandwidth_gbytes_per_second: copy_bandwidth / 1e9,
                copied_gbytes_per_second: copied_per_second / 1e9,
                of_bandwidth: copied_per_second / copy_bandwidth,
            },
            audit: Audit {
                tx_pools_in_use,
                rx_pool_in_use,
                close_errors: closed
                    .iter()
                    .filter_map(|c| c.close_error.clone())
                    .collect(),
            },
            first_mismatch: closed.iter().find_map(|c| c.first_mismatch),
            numa_fallbacks: sum(&|c| u64::from(c.numa_fallbacks)),
            setup,
            seconds,
            note,
        }
    }

    /// Why the run failed, if it did.
    pub fn failure(&self) -> Option<String> {
        if let Some(m) = self.first_mismatch {
            return Some(format!(
                "{} frame(s) received differ from what was sent; the first: stream {}, frame {}, \
                 byte {}",
                self.frames.mismatched, m.stream, m.frame, m.offset
            ));
        }
        if self.frames.unknown != 0 {
            return Some(format!(
                "{} frame(s) delivered with a timestamp no frame was sent with",
                self.frames.unknown
            ));
        }
        if self.frames.verified == 0 {
            return Some("no frame came through whole in the time given".to_owned());
        }
        if self.setup.external && self.frames.lent_returned != self.frames.sent {
            return Some(format!(
                "{} frames lent, {} handed back",
                self.frames.sent, self.frames.lent_returned
            ));
        }
        let audit = &self.audit;
        if audit.tx_pools_in_use != 0 || audit.rx_pool_in_use != 0 {
            return Some(format!(
                "pools did not come back whole: {} TX and {} RX buffers still out",
                audit.tx_pools_in_use, audit.rx_pool_in_use
            ));
        }
        if let Some(e) = audit.close_errors.first() {
            return Some(format!("closing an RX session: {e}"));
        }
        None
    }

    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string())
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let s = &self.setup;
        let f = &self.frames;
        let r = &self.rates;
        let c = &self.copies;
        let p = &self.packets;
        let h = &self.pool_high_water;
        let m = &self.memory;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "dpmem pipeline: {} stream(s) of {} ({} bytes, {} packets per frame) on {} lcore(s) \
             over the {} port{}, copies by {}; {}",
            s.sessions,
            s.format,
            s.frame_bytes,
            s.packets_per_frame,
            s.lcores,
            s.port.name(),
            match (s.redundant, s.external) {
                (false, false) => "",
                (true, false) => " pair (ST 2022-7)",
                (false, true) => ", frames lent by the application",
                (true, true) => " pair (ST 2022-7), frames lent by the application",
            },
            if s.dma {
                format!(
                    "the DMA engine ({} of {} sessions on it)",
                    s.sessions_on_device, s.sessions
                )
            } else {
                "the CPU".to_owned()
            },
            if s.hugepages {
                "hugepages"
            } else {
                "ordinary memory (--no-huge)"
            },
        );
        let _ = writeln!(out, "EAL options: {}", s.eal_args);
        let _ = writeln!(
            out,
            "{:.2} s: {} frames verified byte for byte of {} sent ({} differ, {} incomplete, \
             {} without a buffer, {} not delivered)",
            self.seconds,
            f.verified,
            f.sent,
            f.mismatched,
            f.incomplete,
            f.without_buffer,
            f.not_delivered
        );
        let _ = writeln!(
            out,
            "{:.1} frames/s, {:.0} packets/s, {:.2} Gbit/s: {:.1} streams of 1080p59.94 sustained",
            r.frames_per_second, r.packets_per_second, r.gigabits_per_second, r.streams_1080p5994
        );
        let stages: Vec<String> = self
            .stages_ns_per_packet
            .iter()
            .map(|t| format!("{} {:.1}", t.stage, t.ns_per_packet))
            .collect();
        let total: f64 = self
            .stages_ns_per_packet
            .iter()
            .map(|t| t.ns_per_packet)
            .sum();
        let _ = writeln!(
            out,
            "ns per packet: {} (total {total:.1})",
            stages.join(", ")
        );
        let _ =
            writeln!(
            out,
            "copies: {} by the engine, {} by the CPU ({} small, {} engine full, {} cross-page, \
             {} without the engine, {} after an engine error); TX cross-page copies {}",
            c.engine, c.cpu, c.cpu_small, c.cpu_device_full, c.cpu_cross_page, c.cpu_no_device,
            c.cpu_after_error, c.tx_cross_page
        );
        let _ = writeln!(
            out,
            "packets: {} sent, {} through the port(s), {} received, {} dropped by the port, {} \
             by RX, {} duplicates",
            p.sent, p.port_tx, p.port_rx, p.port_drops, p.rx_dropped, p.duplicates
        );
        let _ = writeln!(
            out,
            "pool high-water: RX {}, TX headers {}, TX payloads {}, TX copies {}; NUMA \
             fallbacks {}",
            h.rx_pool, h.header_pool, h.payload_pool, h.copy_pool, self.numa_fallbacks
        );
        let _ = writeln!(
            out,
            "memory: {:.2} GB/s copied, {:.0}% of the {:.2} GB/s memcpy bandwidth measured \
             before the run",
            m.copied_gbytes_per_second,
            m.of_bandwidth * 100.0,
            m.copy_bandwidth_gbytes_per_second
        );
        let a = &self.audit;
        let _ = writeln!(
            out,
            "audit: {}",
            if a.tx_pools_in_use == 0 && a.rx_pool_in_use == 0 {
                "every pool whole".to_owned()
            } else {
                format!(
                    "{} TX and {} RX buffers still out",
                    a.tx_pools_in_use, a.rx_pool_in_use
                )
            }
        );
        out
    }
}

/// Two lanes' borrowing statistics together.
fn plus(a: BorrowStats, b: BorrowStats) -> BorrowStats {
    BorrowStats {
        dma_copies: a.dma_copies + b.dma_copies,
        cpu_small: a.cpu_small + b.cpu_small,
        cpu_device_full: a.cpu_device_full + b.cpu_device_full,
        cpu_cross_page: a.cpu_cross_page + b.cpu_cross_page,
        cpu_no_device: a.cpu_no_device + b.cpu_no_device,
        cpu_after_error: a.cpu_after_error + b.cpu_after_error,
        released: a.released + b.released,
        lenders_on_cpu: a.lenders_on_cpu + b.lenders_on_cpu,
    }
}
