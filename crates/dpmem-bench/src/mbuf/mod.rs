//! The `mbuf` workload: packet buffers on dpmem (`dpmem-mbuf`) and on DPDK 22.11's
//! `rte_mbuf`, in nanoseconds per operation (and TSC cycles).
//!
//! | row | one operation |
//! | --- | ------------- |
//! | `alloc+free` | one buffer allocated and freed |
//! | `bulk 32 alloc+free, per buffer` | a 32nd of a bulk allocation and bulk free of 32 |
//! | `append+prepend+adj+trim` | the four data operations on one buffer |
//! | `clone+free, 1 segment` | a clone of a 1200-byte packet, then its free |
//! | `copy 1200 B+free` | a deep copy of the packet, then its free |
//! | `alloc+attach extbuf+free` | a buffer attached to 1260 bytes of external memory, with the reference on its shared info, then freed |
//! | `tx packet ...` | one packet of a media transmitter (MTL's ST 2110-20 path): a 62-byte header buffer chained to a 1260-byte external segment, made in bursts of 32 and freed in bulk |
//! | `free_bulk 32 over 2 pools, per buffer` | a 32nd of 16 + 16 buffers of two pools freed in one bulk call, alternating |
//! | `2c clone, free on the other lcore` | a clone made on lcore 0, passed through a ring, freed on lcore 1 |
//!
//! Both sides have the same pools ([`rows::SHAPE`]: 8191 buffers, a cache of 256, no private
//! area, DPDK's default room), atomic reference counts (DPDK 22.11's default build) and no
//! sanity checks (DPDK without `RTE_LIBRTE_MBUF_DEBUG`, dpmem-mbuf without its `debug`
//! feature). Each side runs in its own child process with its own EAL (`-l 0-1`, the main
//! thread pinned to CPU 0, one worker lcore on CPU 1): DPDK's loops in C
//! (`dpdk/csrc/dpdk_mbuf_shim.c`, in a `dpmem-bench-dpdk` child), dpmem's in Rust
//! ([`dpmem_loops`], in a `dpmem` child). Each row runs a warm-up of a 16th of its operations,
//! then its timed loop, between a read of the monotonic clock and the TSC on each side; one
//! child per side per repetition, the sides taking turns at going first. Every pool must be
//! full before and after every row, so a row that lost a buffer fails instead of reporting.

mod dpmem_loops;
mod rows;

use dpmem::eal::Eal;

use self::dpmem_loops::DpmemMbufBench;
use self::rows::{MbufRow, SHAPE};
use crate::child::{exit_code, ChildArgs, ChildKind};
use crate::clocks::Elapsed;
use crate::dpdk_loops::DpdkLoops;

use crate::hugepage_host;
use crate::per_op::{self, Children, PerOp};
use crate::report::Report;
use crate::row_selection::RowSelection;
use crate::side_setup::SideSetup;
use crate::BenchOptions;

/// Operations of every row's timed loop (a multiple of the burst); the warm-up runs a 16th.
const OPS: u64 = 1 << 20;

/// Memory each side's EAL gets (`-m`): the four pools take about 45 MiB.
const MEMORY_MB: u64 = 128;
/// EAL options both sides get, besides the memory ones and the file prefix.
const SHARED_ARGS: &[&str] = &["-l", "0-1"];
/// Options only DPDK has (dpmem's parser rejects them, as DPDK's rejects unknown ones).
const DPDK_ONLY_ARGS: &[&str] = &["--no-pci", "--no-telemetry", "--log-level=error"];

/// Marker of the children's result lines ([`per_op`]'s form).
const RESULT_MARKER: &str = "DPMEM_BENCH_MBUF";

/// The family's children.
const CHILDREN: Children = Children {
    marker: RESULT_MARKER,
    rows: MbufRow::ALL.len(),
    dpmem: ChildKind::DpmemMbuf,
    dpdk: ChildKind::DpdkMbuf,
};

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    MbufRow::ALL.iter().map(|r| r.name()).collect()
}

/// A row's warm-up, then its timed loop through `run` (one row, `ops` operations).
fn warm_then_time(run: impl Fn(u64) -> Result<Elapsed, String>) -> Result<PerOp, String> {
    run(OPS / 16)?;
    run(OPS).map(|elapsed| PerOp::of(elapsed, OPS))
}

fn print_row(i: usize, result: Result<PerOp, String>) {
    per_op::print_row(RESULT_MARKER, i, result);
}

// ---- the children ---------------------------------------------------------------------

/// dpmem's child: EAL, pools, every selected row once; one result line per row.
fn dpmem_rows(eal_args: &[String], selection: &RowSelection) -> Result<(), String> {
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let bench = DpmemMbufBench::new(&eal, &SHAPE)?;
    for &i in selection.indices() {
        let row = MbufRow::ALL[i];
        print_row(i, warm_then_time(|ops| bench.run(row, ops)));
    }
    Ok(())
}

/// DPDK's child, as [`dpmem_rows`].
fn dpdk_rows(
    dpdk: &dyn DpdkLoops,
    eal_args: &[String],
    selection: &RowSelection,
) -> Result<(), String> {
    dpdk.mbuf_eal_init(eal_args, &SHAPE)?;
    for &i in selection.indices() {
        let code = MbufRow::ALL[i].code();
        print_row(i, warm_then_time(|ops| dpdk.mbuf_run(code, ops)));
    }
    Ok(())
}

/// Entry of dpmem's mbuf child. Returns the exit code; a failed row is a result line, not a
/// failure.
pub(crate) fn dpmem_child(child: &ChildArgs) -> i32 {
    exit_code(
        child
            .rows(MbufRow::ALL.len())
            .and_then(|selection| dpmem_rows(&child.eal_args, &selection)),
    )
}

/// Entry of DPDK's mbuf child, as [`dpmem_child`].
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code(
        child
            .rows(MbufRow::ALL.len())
            .and_then(|selection| dpdk_rows(dpdk, &child.eal_args, &selection)),
    )
}

// ---- the parent -------------------------------------------------------------------------

/// Run the `mbuf` workload.
pub fn run_mbuf(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let (memory, hugepages) = hugepage_host::child_memory_args(MEMORY_MB);
    let setup = SideSetup::prepare("mbuf", SHARED_ARGS, &memory, DPDK_ONLY_ARGS);
    let dpdk_missing = setup.dpdk_missing();
    let selection = opts.selection(&row_names());

    let programs = setup.programs();
    let table = per_op::run_reps(CHILDREN, &programs, reps, &selection).into_rows(
        MbufRow::ALL.iter().map(|r| (r.name(), r.note())).collect(),
        reps,
        &selection,
        dpdk_missing,
    );

    let mut notes = vec![
        format!(
            "each row: a warm-up of {} operations, then {OPS} timed as one loop (monotonic \
             clock and TSC read around it), in a fresh child process per side and rep, the \
             sides alternating which runs first; every pool full before and after every row",
            OPS / 16
        ),
        format!(
            "pools, both sides: {} buffers, cache {}, priv 0; main and second pool room {} B, \
             header pool {} B, chain pool 0 B; reference counts atomic, no sanity checks",
            SHAPE.buffers, SHAPE.cache, SHAPE.data_room, SHAPE.hdr_room
        ),
        format!(
            "{}; 1-core rows on the main \
             lcore (CPU 0), the 2-core row also on lcore 1 (CPU 1)",
            setup.args_note()
        ),
    ];
    if let Err(why) = hugepages {
        notes.push(format!("ran with --no-huge on both sides: {why}"));
    }

    Report {
        family: "mbuf".to_owned(),
        title: "packet buffers: pools of 8191, cache 256, room 2176 B".to_owned(),
        unit: "ns per op".to_owned(),
        reps,
        dpdk_build: setup.dpdk_build(),
        extra_columns: vec!["dpmem cycles".to_owned(), "dpdk cycles".to_owned()],
        rows: table,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::rows::BURST;
    use super::*;

    #[test]
    fn rows_are_the_issues_nine_with_distinct_names() {
        let names = row_names();
        assert_eq!(names.len(), 9);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        // The C side numbers the rows by their place in the table.
        for (i, row) in MbufRow::ALL.iter().enumerate() {
            assert_eq!(row.code() as usize, i);
        }
        assert!(OPS.is_multiple_of(BURST as u64) && (OPS / 16).is_multiple_of(BURST as u64));
    }

    /// The dpmem side end to end on a no-huge EAL with two lcores: every row, a few bursts
    /// each, returns every buffer to its pool (which `run` checks after each row).
    #[test]
    fn dpmem_side_runs_every_row_and_loses_no_buffer() {
        let prefix = format!("mbuf_bench_test_{}", std::process::id());
        let args: Vec<String> = ["bench", "-l", "0-1", "--no-huge", "-m", "128"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--file-prefix".to_owned(), prefix.clone()])
            .collect();
        let eal = match Eal::init(&args) {
            Ok(eal) => eal,
            // A one-CPU machine (or cpuset) has no lcore 1.
            Err(e) if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 => {
                eprintln!("skipped: needs two CPUs ({e})");
                return;
            }
            Err(e) => panic!("Eal::init: {e}"),
        };
        let bench = DpmemMbufBench::new(&eal, &SHAPE).unwrap();
        for row in MbufRow::ALL {
            let elapsed = bench
                .run(row, 4 * BURST as u64)
                .unwrap_or_else(|e| panic!("{}: {e}", row.name()));
            assert!(elapsed.ns > 0, "{}", row.name());
        }
        assert!(
            bench.run(MbufRow::Bulk, 5).is_err(),
            "not a multiple of the burst"
        );
        drop(bench);
        drop(eal);
        crate::init::remove_leftovers(None, &prefix);
    }
}
