//! The `frame` workload: media frames on dpmem (`dpmem-frame`, `dpmem-dma`) and the same
//! loops on DPDK 22.11 as Intel's Media Transport Library writes them, in nanoseconds per
//! packet (and TSC cycles).
//!
//! | row | one packet |
//! | --- | ---------- |
//! | `packetise 1080p59.94` | one of a frame's 4,115 ST 2110-20 packets: a 62-byte header buffer written from a template, a zero-room buffer attached to the frame's bytes, chained; freed in bulk after the frame, as TX completion frees them |
//! | `packetise ... ST 2022-7` | the same on two paths, a second header over the same payload bytes; per packet per path |
//! | `reassembly copy 1260 B, CPU` | a received packet's payload copied to its place in a frame with the CPU, the buffer freed |
//! | `reassembly copy 1260 B, copy engine` | the same copy through a software DMA device, the buffer held until its copy is reported |
//!
//! Both sides have the same pools ([`rows::shape`]: a header pool and a zero-room payload
//! pool of a one-frame session's size, a port's receive pool), the frame in the EAL's memory
//! (hugepages when enough are free), IOVA as VA (DPDK's `dma_skeleton` needs it; so no
//! payload crosses a break in device addresses and none is copied on transmit), and one
//! memory-to-memory channel of [`rows::NB_DESC`] descriptors on a device that copies on a
//! control thread of the EAL (`-l 0`: the CPUs other than lcore 0's). Each side runs in its
//! own child process with its own EAL: DPDK's loops in C (`dpdk/csrc/dpdk_frame_shim.c`, in a
//! `dpmem-bench-dpdk` child), dpmem's in Rust ([`dpmem_loops`], in a `dpmem` child). Each row
//! runs a warm-up of [`WARM_FRAMES`] frames, then [`FRAMES`] timed as one loop between reads
//! of the monotonic clock and the TSC; one child per side per repetition, the sides taking
//! turns at going first. Every pool must be full (and dpmem's audit clean) before and after
//! every row, so a row that lost a buffer fails instead of reporting.

mod dpmem_loops;
mod rows;

use dpmem::eal::Eal;
use dpmem_frame::{HeaderTemplate, PacketFields, StreamAddress, HEADER_LEN};

use self::dpmem_loops::DpmemFrameBench;
use self::rows::{FrameRow, NB_DESC, RX_BUFFERS};
use crate::child::{exit_code, ChildArgs, ChildKind};
use crate::clocks::Elapsed;
use crate::dpdk_loops::DpdkLoops;

use crate::hugepage_host;
use crate::per_op::{self, Children, PerOp};
use crate::report::Report;
use crate::row_selection::RowSelection;
use crate::side_setup::SideSetup;
use crate::BenchOptions;

/// Frames of every row's timed loop.
const FRAMES: u64 = 256;
/// Frames of every row's warm-up.
const WARM_FRAMES: u64 = 16;

/// The DPDK copy device: the skeleton PMD, created by the EAL option below.
const DPDK_DEVICE: &str = "dma_skeleton";
/// Memory each side's EAL gets (`-m`): pools, two frames and the receive pool take about
/// 40 MiB.
const MEMORY_MB: u64 = 128;
/// EAL options both sides get, besides the memory ones and the file prefix.
const SHARED_ARGS: &[&str] = &["-l", "0", "--iova-mode=va"];
/// Options only DPDK has (dpmem's parser rejects them, as DPDK's rejects unknown ones).
const DPDK_ONLY_ARGS: &[&str] = &[
    "--no-pci",
    "--no-telemetry",
    "--log-level=error",
    "--vdev=dma_skeleton",
];

/// Marker of the children's result lines ([`per_op`]'s form).
const RESULT_MARKER: &str = "DPMEM_BENCH_FRAME";

/// The family's children.
const CHILDREN: Children = Children {
    marker: RESULT_MARKER,
    rows: FrameRow::ALL.len(),
    dpmem: ChildKind::DpmemFrame,
    dpdk: ChildKind::DpdkFrame,
};

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    FrameRow::ALL.iter().map(|r| r.name()).collect()
}

/// A row's warm-up, then its timed loop through `run` (one row, so many frames).
fn warm_then_time(
    row: FrameRow,
    run: impl Fn(u64) -> Result<Elapsed, String>,
) -> Result<PerOp, String> {
    run(WARM_FRAMES)?;
    run(FRAMES).map(|elapsed| PerOp::of(elapsed, FRAMES * row.packets_per_frame()))
}

fn print_row(i: usize, result: Result<PerOp, String>) {
    per_op::print_row(RESULT_MARKER, i, result);
}

/// The header every packet starts from on DPDK's side: dpmem's template for the default
/// stream, written for a packet of nothing (the C side clears the fields it computes).
fn header_template() -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    HeaderTemplate::new(&StreamAddress::default()).write(
        &mut bytes,
        &PacketFields {
            seq: 0,
            timestamp: 0,
            marker: false,
            row: 0,
            pixel: 0,
            payload_len: 0,
        },
    );
    bytes
}

// ---- the children ---------------------------------------------------------------------

/// dpmem's child: EAL, session, pools, device, every selected row once; one result line per
/// row.
fn dpmem_rows(eal_args: &[String], selection: &RowSelection) -> Result<(), String> {
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let bench = DpmemFrameBench::new(&eal)?;
    for &i in selection.indices() {
        let row = FrameRow::ALL[i];
        print_row(i, warm_then_time(row, |frames| bench.run(row, frames)));
    }
    Ok(())
}

/// DPDK's child, as [`dpmem_rows`].
fn dpdk_rows(
    dpdk: &dyn DpdkLoops,
    eal_args: &[String],
    selection: &RowSelection,
) -> Result<(), String> {
    dpdk.frame_eal_init(eal_args, &rows::shape(), &header_template(), DPDK_DEVICE)?;
    for &i in selection.indices() {
        let row = FrameRow::ALL[i];
        print_row(
            i,
            warm_then_time(row, |frames| dpdk.frame_run(row.code(), frames)),
        );
    }
    Ok(())
}

/// Entry of dpmem's frame child. Returns the exit code; a failed row is a result line, not
/// a failure.
pub(crate) fn dpmem_child(child: &ChildArgs) -> i32 {
    exit_code(
        child
            .rows(FrameRow::ALL.len())
            .and_then(|selection| dpmem_rows(&child.eal_args, &selection)),
    )
}

/// Entry of DPDK's frame child, as [`dpmem_child`].
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code(
        child
            .rows(FrameRow::ALL.len())
            .and_then(|selection| dpdk_rows(dpdk, &child.eal_args, &selection)),
    )
}

// ---- the parent -------------------------------------------------------------------------

/// Run the `frame` workload.
pub fn run_frame(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let (memory, hugepages) = hugepage_host::child_memory_args(MEMORY_MB);
    let setup = SideSetup::prepare("frame", SHARED_ARGS, &memory, DPDK_ONLY_ARGS);
    let dpdk_missing = setup.dpdk_missing();
    let selection = opts.selection(&row_names());

    let programs = setup.programs();
    let table = per_op::run_reps(CHILDREN, &programs, reps, &selection).into_rows(
        FrameRow::ALL.iter().map(|r| (r.name(), r.note())).collect(),
        reps,
        &selection,
        dpdk_missing,
    );

    let shape = rows::shape();
    let mut notes = vec![
        format!(
            "each row: a warm-up of {WARM_FRAMES} frames, then {FRAMES} timed as one loop \
             (monotonic clock and TSC read around it), per packet; in a fresh child process \
             per side and rep, the sides alternating which runs first; every pool full (and \
             dpmem's audit clean) before and after every row"
        ),
        format!(
            "pools, both sides: header {} buffers of {} B room and payload {} of 0 B, cache \
             {} (a one-frame session's); receive {} of {} B, cache {}; dpmem's session also \
             has a copy pool for payloads crossing a break in device addresses (none here); \
             reference counts atomic, no sanity checks",
            shape.tx_buffers,
            shape.hdr_room,
            shape.tx_buffers,
            shape.tx_cache,
            RX_BUFFERS,
            shape.rx_room,
            shape.rx_cache
        ),
        format!(
            "copy devices: dpmem-dma's software engine vs DPDK's {DPDK_DEVICE} vdev, one \
             memory-to-memory channel of {NB_DESC} descriptors each, copying on a control \
             thread of its EAL (the CPUs other than lcore 0's); the main lcore makes, \
             receives, queues and reaps"
        ),
        setup.args_note(),
    ];
    if let Err(why) = hugepages {
        notes.push(format!("ran with --no-huge on both sides: {why}"));
    }

    Report {
        family: "frame".to_owned(),
        title: "media frames: ST 2110-20 packetiser and reassembly copies, 1080p59.94".to_owned(),
        unit: "ns per packet".to_owned(),
        reps,
        dpdk_build: setup.dpdk_build(),
        extra_columns: vec!["dpmem cycles".to_owned(), "dpdk cycles".to_owned()],
        rows: table,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_distinct_names_and_the_c_sides_codes() {
        let names = row_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), FrameRow::ALL.len());
        for (i, row) in FrameRow::ALL.iter().enumerate() {
            assert_eq!(row.code() as usize, i);
        }
        let shape = rows::shape();
        assert_eq!(shape.rx_packets, 4114);
        assert_eq!(shape.tx_buffers, 2 * 4115 + 32);
        assert_eq!(FrameRow::PacketiseRedundant.packets_per_frame(), 2 * 4115);
    }

    #[test]
    fn the_template_is_a_header_of_the_default_stream() {
        let t = header_template();
        let fields = dpmem_frame::header::parse(&t).expect("a header that parses");
        assert_eq!(fields.payload_len, 0);
        assert_eq!(&t[0..6], &StreamAddress::default().dst_mac);
    }

    /// The dpmem side end to end on a no-huge EAL: every row, a frame or two each, returns
    /// every buffer to its pool and has its copies where they belong (which `run` checks).
    #[test]
    fn dpmem_side_runs_every_row_and_loses_no_buffer() {
        let prefix = format!("frame_bench_test_{}", std::process::id());
        let args: Vec<String> = [
            "bench",
            "-l",
            "0",
            "--iova-mode=va",
            "--no-huge",
            "-m",
            "128",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--file-prefix".to_owned(), prefix.clone()])
        .collect();
        let eal = Eal::init(&args).unwrap();
        let bench = DpmemFrameBench::new(&eal).unwrap();
        for row in FrameRow::ALL {
            for frames in [1, 2] {
                let elapsed = bench
                    .run(row, frames)
                    .unwrap_or_else(|e| panic!("{}: {e}", row.name()));
                assert!(elapsed.ns > 0, "{}", row.name());
            }
        }
        assert!(bench.run(FrameRow::Packetise, 0).is_err());
        drop(bench);
        drop(eal);
        crate::init::remove_leftovers(None, &prefix);
    }
}
