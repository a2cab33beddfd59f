//! The `malloc` workload: heap and memzone operations, dpmem against DPDK 22.11's
//! `rte_malloc`/`rte_free`/`rte_memzone_reserve` and the system allocator (the loops of
//! DPDK's `malloc_perf_autotest`).
//!
//! | row                    | what one operation is                                       |
//! | ---------------------- | ----------------------------------------------------------- |
//! | `malloc+free <size>`   | one of N allocations of `size` bytes, then one of N frees   |
//! | `zmalloc+free <size>`  | the same with zeroed allocations                            |
//! | `memzone 64 KiB`       | one of N memzone reserves, then one of N frees               |
//! | `churn`                | one random allocation (64 B..64 KiB) or free over 512 slots |
//!
//! Both sides start from a fresh EAL with the same options, 512 MiB reserved at start (`-m`:
//! pinned, never given back), so the loops time the allocators rather than the kernel mapping
//! and clearing pages (every batch fits). DPDK runs in a `dpmem-bench-dpdk` child (one
//! `rte_eal_init` per process), dpmem in this one with a fresh EAL per repetition.
//! The churn row also reports the greatest free block of socket 0 after the churn, before its
//! blocks are freed: the fragmentation each heap is left with.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::time::Instant;

use dpmem::eal::{Eal, MemzoneFlags, Socket};

use crate::child::{ChildArgs, ChildKind};
use crate::dpdk_loops::{DpdkLoops, MallocPlan, MallocTimes};
use crate::dpdk_runner::{self, DpdkRunner};
use crate::report::{Measurement, Report, Row};
use crate::row_selection::RowSelection;
use crate::stats::median;
use crate::BenchOptions;

const RESULT_MARKER: &str = "DPMEM_BENCH_MALLOC";

const SIZES: [u64; 5] = [64, 1 << 10, 64 << 10, 1 << 20, 16 << 20];
/// Bytes one size's batch may hold at once: N = min(1000, this / size).
const BATCH_BYTES: u64 = 256 << 20;
const MEMZONE_LEN: u64 = 64 << 10;
const MEMZONE_COUNT: u32 = 1000;
const CHURN_SLOTS: u32 = 512;
const CHURN_OPS: u32 = 20_000;
/// Seed of the churn's xorshift sequence, the same on both sides.
const CHURN_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// EAL options both sides get (DPDK also gets the DPDK-only ones of [`DPDK_ONLY_ARGS`]).
const SHARED_ARGS: &[&str] = &["-l", "0", "--in-memory", "-m", "512"];
const DPDK_ONLY_ARGS: &[&str] = &["--no-pci", "--no-telemetry", "--log-level=error"];

fn count_for(size: u64) -> u64 {
    (BATCH_BYTES / size).min(1000)
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MallocRow {
    /// A batch of allocations of `SIZES[size]` bytes, then their frees.
    Batch {
        size: usize,
        zeroed: bool,
    },
    Memzone,
    Churn,
}

impl MallocRow {
    fn name(self) -> String {
        match self {
            MallocRow::Batch { size, zeroed } => format!(
                "{}+free {} x{}",
                if zeroed { "zmalloc" } else { "malloc" },
                size_name(SIZES[size]),
                count_for(SIZES[size])
            ),
            MallocRow::Memzone => format!(
                "memzone reserve+free {} x{MEMZONE_COUNT}",
                size_name(MEMZONE_LEN)
            ),
            MallocRow::Churn => format!("churn {CHURN_OPS} ops over {CHURN_SLOTS} slots"),
        }
    }

    /// This row's figure among a run's.
    fn pick(self, f: &Figures) -> f64 {
        match self {
            MallocRow::Batch {
                size,
                zeroed: false,
            } => f.malloc_ns[size],
            MallocRow::Batch { size, zeroed: true } => f.zmalloc_ns[size],
            MallocRow::Memzone => f.memzone_ns,
            MallocRow::Churn => f.churn_ns,
        }
    }
}

/// Every row, in table order: malloc and zmalloc per size, the memzones, the churn.
fn rows() -> Vec<MallocRow> {
    let mut rows: Vec<MallocRow> = (0..SIZES.len())
        .flat_map(|size| [false, true].map(|zeroed| MallocRow::Batch { size, zeroed }))
        .collect();
    rows.extend([MallocRow::Memzone, MallocRow::Churn]);
    rows
}

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    rows().into_iter().map(MallocRow::name).collect()
}

/// The loops the selected rows need; the others get a count of 0.
fn plan(selection: &RowSelection) -> MallocPlan {
    let specs = rows();
    let selected = |row: MallocRow| {
        specs
            .iter()
            .position(|r| *r == row)
            .is_some_and(|i| selection.contains(i))
    };
    let batch = |zeroed| -> Vec<u64> {
        (0..SIZES.len())
            .map(|size| {
                if selected(MallocRow::Batch { size, zeroed }) {
                    count_for(SIZES[size])
                } else {
                    0
                }
            })
            .collect()
    };
    MallocPlan {
        sizes: SIZES.to_vec(),
        malloc_counts: batch(false),
        zmalloc_counts: batch(true),
        memzone_len: MEMZONE_LEN,
        memzone_count: if selected(MallocRow::Memzone) {
            MEMZONE_COUNT
        } else {
            0
        },
        churn_slots: CHURN_SLOTS,
        churn_ops: if selected(MallocRow::Churn) {
            CHURN_OPS
        } else {
            0
        },
    }
}

/// One repetition's figures, in ns per operation.
#[derive(Debug, Clone, Default, PartialEq)]
struct Figures {
    malloc_ns: Vec<f64>,
    zmalloc_ns: Vec<f64>,
    memzone_ns: f64,
    churn_ns: f64,
    greatest_free_after_churn: u64,
}

impl Figures {
    fn to_line(&self) -> String {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{RESULT_MARKER} malloc={} zmalloc={} memzone={} churn={} greatest={}",
            list(&self.malloc_ns),
            list(&self.zmalloc_ns),
            self.memzone_ns,
            self.churn_ns,
            self.greatest_free_after_churn
        )
    }

    fn from_times(t: MallocTimes) -> Figures {
        Figures {
            malloc_ns: t.malloc_ns.into_iter().map(|v| v as f64).collect(),
            zmalloc_ns: t.zmalloc_ns.into_iter().map(|v| v as f64).collect(),
            memzone_ns: t.memzone_ns as f64,
            churn_ns: t.churn_ns as f64,
            greatest_free_after_churn: t.greatest_free_after_churn,
        }
    }

    fn from_line(line: &str) -> Result<Figures, String> {
        let bad = || format!("malformed child result line {line:?}");
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .ok_or_else(bad)
        };
        let list = |key: &str| -> Result<Vec<f64>, String> {
            field(key)?
                .split(',')
                .map(|x| x.parse().map_err(|_| bad()))
                .collect()
        };
        Ok(Figures {
            malloc_ns: list("malloc=")?,
            zmalloc_ns: list("zmalloc=")?,
            memzone_ns: field("memzone=")?.parse().map_err(|_| bad())?,
            churn_ns: field("churn=")?.parse().map_err(|_| bad())?,
            greatest_free_after_churn: field("greatest=")?.parse().map_err(|_| bad())?,
        })
    }
}

fn churn_next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// ns per operation of `ops` operations that took `start.elapsed()`.
fn per_op(start: Instant, ops: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

/// dpmem's side: the same loops as the C shim, on a fresh EAL.
fn run_dpmem(args: &[String], plan: &MallocPlan) -> Result<Figures, String> {
    let eal = Eal::init(args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let heaps = eal.heaps();
    let mut figures = Figures::default();
    let mut blocks: Vec<NonNull<u8>> = Vec::with_capacity(1000);
    for (i, &size) in plan.sizes.iter().enumerate() {
        for zeroed in [false, true] {
            let count = batch_count(plan, i, zeroed);
            let start = Instant::now();
            for _ in 0..count {
                let block = if zeroed {
                    heaps.zmalloc(size as usize, 0)
                } else {
                    heaps.malloc(size as usize, 0)
                };
                blocks.push(block.map_err(|e| format!("malloc of {size} bytes: {e}"))?);
            }
            for block in blocks.drain(..) {
                // SAFETY: each block was allocated just above and is freed once, unused.
                unsafe { heaps.free(block) }.map_err(|e| e.to_string())?;
            }
            let ns = per_op(start, count);
            if zeroed {
                figures.zmalloc_ns.push(ns);
            } else {
                figures.malloc_ns.push(ns);
            }
        }
    }

    let memzones = eal.memzones();
    let names: Vec<String> = (0..plan.memzone_count)
        .map(|n| format!("bench_mz_{n}"))
        .collect();
    let start = Instant::now();
    let zones = names
        .iter()
        .map(|name| {
            memzones.reserve(
                name,
                plan.memzone_len as usize,
                Socket::Any,
                MemzoneFlags::empty(),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("memzone reserve: {e}"))?;
    for zone in &zones {
        // SAFETY: the memzone was reserved just above and nothing uses its memory.
        unsafe { memzones.free(zone) }.map_err(|e| e.to_string())?;
    }
    figures.memzone_ns = per_op(start, u64::from(plan.memzone_count));

    let mut slots: Vec<Option<NonNull<u8>>> = vec![None; plan.churn_slots as usize];
    let mut rng = CHURN_SEED;
    let start = Instant::now();
    for _ in 0..plan.churn_ops {
        let r = churn_next(&mut rng);
        let slot = &mut slots[(r % u64::from(plan.churn_slots)) as usize];
        match slot.take() {
            // SAFETY: the slot's block is live, owned here, and freed once.
            Some(block) => unsafe { heaps.free(block) }.map_err(|e| e.to_string())?,
            None => {
                let size = 64usize << ((r >> 32) % 11);
                *slot = Some(heaps.malloc(size, 0).map_err(|e| e.to_string())?);
            }
        }
    }
    figures.churn_ns = per_op(start, u64::from(plan.churn_ops));
    figures.greatest_free_after_churn = heaps
        .stats(Socket::Node(0))
        .map_err(|e| e.to_string())?
        .greatest_free_bytes;
    for block in slots.into_iter().flatten() {
        // SAFETY: live blocks of the churn, freed once.
        unsafe { heaps.free(block) }.map_err(|e| e.to_string())?;
    }
    Ok(figures)
}

/// Allocations of size `i`'s batch in `plan`.
fn batch_count(plan: &MallocPlan, i: usize, zeroed: bool) -> u64 {
    if zeroed {
        plan.zmalloc_counts[i]
    } else {
        plan.malloc_counts[i]
    }
}

/// The system allocator on the malloc and zmalloc loops: ns per alloc+free pair per size.
fn run_system(plan: &MallocPlan) -> (Vec<f64>, Vec<f64>) {
    let mut malloc_ns = Vec::new();
    let mut zmalloc_ns = Vec::new();
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(1000);
    for (i, &size) in plan.sizes.iter().enumerate() {
        let layout = Layout::from_size_align(size as usize, 64).expect("valid layout");
        for zeroed in [false, true] {
            let count = batch_count(plan, i, zeroed);
            let start = Instant::now();
            for _ in 0..count {
                let block = if zeroed {
                    // SAFETY: a non-zero-sized layout.
                    unsafe { System.alloc_zeroed(layout) }
                } else {
                    // SAFETY: a non-zero-sized layout.
                    unsafe { System.alloc(layout) }
                };
                blocks.push(block);
            }
            for block in blocks.drain(..) {
                if !block.is_null() {
                    // SAFETY: allocated just above with `layout`, freed once.
                    unsafe { System.dealloc(block, layout) };
                }
            }
            let ns = per_op(start, count);
            if zeroed {
                zmalloc_ns.push(ns);
            } else {
                malloc_ns.push(ns);
            }
        }
    }
    (malloc_ns, zmalloc_ns)
}

/// Entry of the DPDK child: the selected rows' loops, one result line; the exit code.
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    let result = child
        .rows(rows().len())
        .and_then(|selection| dpdk.malloc(&child.eal_args, &plan(&selection)));
    match result {
        Ok(times) => {
            println!("{}", Figures::from_times(times).to_line());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn run_dpdk_child(
    runner: &DpdkRunner,
    selection: &RowSelection,
    eal_args: &[String],
) -> Result<Figures, String> {
    let lines = runner.run_lines(ChildKind::DpdkMalloc, selection, eal_args, RESULT_MARKER)?;
    match lines.first() {
        Some(line) => Figures::from_line(line),
        None => Err(format!("the DPDK child printed no {RESULT_MARKER} line")),
    }
}

fn size_name(size: u64) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Medians over the repetitions of one figure, or the first failure.
fn median_of(runs: &[Result<Figures, String>], pick: impl Fn(&Figures) -> f64) -> Measurement {
    let mut values = Vec::new();
    for run in runs {
        match run {
            Ok(f) => values.push(pick(f)),
            Err(e) => return Measurement::Missing(e.clone()),
        }
    }
    median(&values).map_or_else(
        || Measurement::Missing("no repetitions".to_owned()),
        Measurement::Value,
    )
}

/// Runs the workload `options.reps` times on each side and builds the table.
pub fn run_malloc(options: &BenchOptions) -> Report {
    let prefix = format!("dpmem_bench_malloc_{}", std::process::id());
    let mut common: Vec<String> = SHARED_ARGS.iter().map(|s| s.to_string()).collect();
    common.extend(["--file-prefix".to_owned(), prefix.clone()]);
    let mut dpdk_args: Vec<String> = DPDK_ONLY_ARGS.iter().map(|s| s.to_string()).collect();
    dpdk_args.extend(common.iter().cloned());
    let dpmem_args: Vec<String> = std::iter::once("dpmem-bench".to_owned())
        .chain(common.iter().cloned())
        .collect();
    let runner = DpdkRunner::find();
    let selection = options.selection(&row_names());
    let plan = plan(&selection);

    let (mut dpmem_runs, mut dpdk_runs, mut system_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.reps {
        dpmem_runs.push(run_dpmem(&dpmem_args, &plan));
        dpdk_runs.push(match &runner {
            Ok(runner) => run_dpdk_child(runner, &selection, &dpdk_args),
            Err(why) => Err(why.clone()),
        });
        system_runs.push(run_system(&plan));
        // DPDK's in-memory mode still makes its runtime directory, and leaves it.
        crate::init::remove_leftovers(None, &prefix);
    }

    let specs = rows();
    let mut rows = Vec::new();
    for &i in selection.indices() {
        let spec = specs[i];
        let extra = match spec {
            MallocRow::Batch { size, zeroed } => {
                let system: Vec<f64> = system_runs
                    .iter()
                    .map(|(m, z)| if zeroed { z[size] } else { m[size] })
                    .collect();
                median(&system).map_or_else(
                    || Measurement::Missing("no repetitions".to_owned()),
                    Measurement::Value,
                )
            }
            MallocRow::Memzone | MallocRow::Churn => {
                Measurement::Missing("no system-allocator counterpart".to_owned())
            }
        };
        let greatest = |runs: &[Result<Figures, String>]| match median_of(runs, |f| {
            f.greatest_free_after_churn as f64
        }) {
            Measurement::Value(v) => format!("{:.1} MiB", v / f64::from(1 << 20)),
            Measurement::Missing(_) => "—".to_owned(),
        };
        rows.push(Row {
            name: spec.name(),
            dpmem: median_of(&dpmem_runs, |f| spec.pick(f)),
            dpdk: median_of(&dpdk_runs, |f| spec.pick(f)),
            extra: vec![extra],
            note: (spec == MallocRow::Churn).then(|| {
                format!(
                    "greatest free block after the churn: dpmem {}, DPDK {}",
                    greatest(&dpmem_runs),
                    greatest(&dpdk_runs)
                )
            }),
        });
    }

    Report {
        family: "malloc".to_owned(),
        title: "heap and memzone operations (malloc_perf_autotest loops)".to_owned(),
        unit: "ns per op".to_owned(),
        reps: options.reps,
        dpdk_build: dpdk_runner::build_text(&runner),
        extra_columns: vec!["system allocator".to_owned()],
        rows,
        notes: vec![
            "one op = one allocation and its free (one memzone reserve and its free; one churn \
             step), timed as batches: N allocations, then N frees"
                .to_owned(),
            format!(
                "both sides: {} --file-prefix {prefix} (512 MiB mapped at start and pinned, \
                 so no batch maps pages); DPDK also: {}; DPDK in a child process, dpmem in-process \
                 with a fresh EAL per repetition",
                SHARED_ARGS.join(" "),
                DPDK_ONLY_ARGS.join(" ")
            ),
            "system allocator: std::alloc::System (glibc malloc) on the same loops, 64-byte \
             aligned"
                .to_owned(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_round_trips() {
        let f = Figures {
            malloc_ns: vec![1.5, 2.0],
            zmalloc_ns: vec![3.0, 4.25],
            memzone_ns: 7.0,
            churn_ns: 9.5,
            greatest_free_after_churn: 1 << 20,
        };
        assert_eq!(Figures::from_line(&f.to_line()), Ok(f));
        assert!(Figures::from_line("DPMEM_BENCH_MALLOC malloc=1").is_err());
    }

    #[test]
    fn dpmem_side_runs_on_no_huge_memory() {
        let args: Vec<String> = ["bench", "--no-huge", "-m", "512", "--file-prefix"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("malloc_test_{}", std::process::id())])
            .collect();
        let all = RowSelection::matching(&row_names(), None);
        let f = run_dpmem(&args, &plan(&all)).unwrap();
        assert_eq!(f.malloc_ns.len(), SIZES.len());
        assert_eq!(f.zmalloc_ns.len(), SIZES.len());
        assert!(f.greatest_free_after_churn > 0);
    }
}
