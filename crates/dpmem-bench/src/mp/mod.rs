//! The `mp` workload: the EAL's inter-process channel between real processes, on dpmem
//! (`Eal::ipc`) and on DPDK 22.11 (`rte_mp_*`), in microseconds per round trip or message.
//!
//! | row | one round |
//! | --- | --------- |
//! | `request_sync round trip, 1 secondary` | the primary's synchronous request to every secondary, each replying from its action, until the caller holds the replies |
//! | `message one way (ping-pong / 2), 1 secondary` | half a ping-pong of one-way messages between the primary's and the secondary's actions: the time until the receiver's action ran |
//! | `secondary's allocation that needs a new page, 1 secondary` | a memzone reservation in the secondary that needs a new 2 MiB page, which goes through the primary and is mapped in every process before the call returns |
//! | `request_sync round trip, 2 secondaries` | the first row with two secondaries |
//!
//! Each side runs in its own processes: the parent starts a primary child per side and
//! repetition (`dpmem` for dpmem's, `dpmem-bench-dpdk` for DPDK's), and that primary starts its
//! secondaries as children of its own, the same program as a secondary child kind
//! ([`secondary`]), one before the one-secondary rows, the second before the last row. The
//! primary stops them (closing their stdin) before its EAL goes; a secondary also stops when
//! its primary dies, and is killed when it does not stop; the parent removes what a crashed
//! child left in the runtime directories and the hugepage mount.
//!
//! Secondaries attach to the primary's memory, so both sides need file-backed hugepages: the
//! primary maps 2 MiB pages in files under the mount as it needs them (dynamic memory: no
//! `-m`, so no page is preallocated and pinned, and the growth row's every reservation needs a
//! new page; no `--in-memory`, and `--no-huge` memory is private to a process on both sides);
//! with fewer than [`MEMORY_MB`] of them free the table says why.
//! Every process has one lcore, the primary lcore 0 and each secondary lcore 1, so each one's
//! channel thread runs on the CPUs of no lcore of its own (as DPDK's `rte_mp_handle`).
//!
//! Each row runs [`WARMUP_ROUNDS`] rounds, then [`ROUNDS`] timed ones (the growth row fewer:
//! [`rows::GROW_WARMUP_ROUNDS`], [`rows::GROW_ROUNDS`]), each round timed on its own (the
//! request rows by the caller, the message row by the primary's pong action, the growth row
//! by the secondary, which the primary asks for its rounds on its stdin);
//! the table shows the mean and, beside it, the median and 99th percentile round. Every reply
//! and pong is checked: it carries its round's number, and a request reached and was
//! answered by every secondary; every growth round grew the heap by a page.

mod dpmem_side;
mod latency;
mod rows;
pub(crate) mod secondary;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use dpmem::eal::Eal;

use self::dpmem_side::DpmemPrimary;
use self::latency::Latency;
use self::rows::MpRow;
use self::secondary::Secondary;
use crate::child::{self, exit_code, ChildArgs, ChildKind, CHILD_FLAG};
use crate::dpdk_loops::DpdkLoops;

use crate::hugepage_host::{self, PAGE_2M};
use crate::report::{Measurement, Report, Row};
use crate::row_selection::RowSelection;
use crate::samples::Samples;
use crate::side_setup::SideSetup;
use crate::BenchOptions;

/// Timed rounds of every row.
const ROUNDS: usize = 4096;
/// Rounds before them, not timed.
const WARMUP_ROUNDS: usize = 256;

/// Free 2 MiB hugepages the workload wants, in megabytes: the primary maps what it needs of
/// them (a few pages), as files its secondaries map.
pub(crate) const MEMORY_MB: u64 = 32;
/// EAL options of every primary, besides the memory and the file prefix.
const PRIMARY_ARGS: &[&str] = &["-l", "0"];
/// EAL options of every secondary, besides the file prefix.
const SECONDARY_ARGS: &[&str] = &["-l", "1", "--proc-type", "secondary"];
/// Options only DPDK has (dpmem's parser rejects them, as DPDK's rejects unknown ones).
const DPDK_ONLY_ARGS: &[&str] = &["--no-pci", "--no-telemetry", "--log-level=error"];

/// Marker of the primary children's result lines: per row
/// `DPMEM_BENCH_MP row <i> mean <ns> p50 <ns> p99 <ns>` or `DPMEM_BENCH_MP row <i> error <why>`.
const RESULT_MARKER: &str = "DPMEM_BENCH_MP";

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    MpRow::ALL.iter().map(|r| r.name().to_owned()).collect()
}

/// What a primary does in the rows, on either side's channel.
pub(crate) trait MpPrimary {
    /// `round_ns.len()` synchronous requests to every secondary, which must be `secondaries`,
    /// each answered by all of them with its round's number; each round's nanoseconds.
    fn request_rounds(&self, secondaries: usize, round_ns: &mut [u64]) -> Result<(), String>;

    /// `round_ns.len()` rounds of ping-pong with the one secondary, between the actions; the
    /// nanoseconds between two pongs' arrivals.
    fn message_rounds(&self, round_ns: &mut [u64]) -> Result<(), String>;
}

/// DPDK's primary, through the C shim.
struct DpdkPrimary<'a>(&'a dyn DpdkLoops);

impl MpPrimary for DpdkPrimary<'_> {
    fn request_rounds(&self, secondaries: usize, round_ns: &mut [u64]) -> Result<(), String> {
        let secondaries = u32::try_from(secondaries).map_err(|_| "too many secondaries")?;
        self.0.mp_request_rounds(secondaries, round_ns)
    }

    fn message_rounds(&self, round_ns: &mut [u64]) -> Result<(), String> {
        self.0.mp_message_rounds(round_ns)
    }
}

/// One row: the warm-up, then the timed rounds; `secondaries` are those running.
fn time_row(
    primary: &dyn MpPrimary,
    secondaries: &mut [Secondary],
    row: MpRow,
) -> Result<Latency, String> {
    let mut round = |rounds: usize| -> Result<Vec<u64>, String> {
        let mut round_ns = vec![0; rounds];
        match row {
            MpRow::RequestOne | MpRow::RequestTwo => {
                primary.request_rounds(row.secondaries(), &mut round_ns)?
            }
            MpRow::MessageOne => primary.message_rounds(&mut round_ns)?,
            MpRow::GrowOne => secondaries
                .first_mut()
                .ok_or("no secondary runs")?
                .grow_rounds(&mut round_ns)?,
        }
        Ok(round_ns)
    };
    let (rounds, warmup) = row.rounds();
    round(warmup)?;
    let round_ns = round(rounds)?;
    Latency::of(&round_ns, row.messages_per_round()).ok_or_else(|| "no rounds".to_owned())
}

fn print_row(i: usize, result: Result<Latency, String>) {
    match result {
        Ok(l) => println!(
            "{RESULT_MARKER} row {i} mean {} p50 {} p99 {}",
            l.mean, l.p50, l.p99
        ),
        // One line: the parent reads results line by line.
        Err(e) => println!(
            "{RESULT_MARKER} row {i} error {}",
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// A primary's rows: each selected row once, starting secondaries (through `launch`, on
/// `cpus`) as the rows need them; one result line per row. A secondary that cannot start fails
/// its row and the rows after it; every secondary is stopped before this returns, and one that
/// does not stop cleanly fails the child.
fn primary_rows(
    primary: &dyn MpPrimary,
    selection: &RowSelection,
    launch: &dyn Fn() -> Command,
    cpus: &BTreeSet<u32>,
) -> Result<(), String> {
    let mut running: Vec<Secondary> = Vec::new();
    let mut cannot_start: Option<String> = None;
    for &i in selection.indices() {
        let row = MpRow::ALL[i];
        while cannot_start.is_none() && running.len() < row.secondaries() {
            match Secondary::start(launch(), cpus) {
                Ok(secondary) => running.push(secondary),
                Err(e) => cannot_start = Some(e),
            }
        }
        print_row(
            i,
            match &cannot_start {
                Some(e) => Err(e.clone()),
                None => time_row(primary, &mut running, row),
            },
        );
    }
    let stopped: Vec<String> = running.into_iter().filter_map(|s| s.stop().err()).collect();
    if stopped.is_empty() {
        Ok(())
    } else {
        Err(stopped.join("; "))
    }
}

/// The EAL options of a primary's secondaries (program name first): the shared ones and the
/// primary's file prefix (and DPDK's own options for a DPDK secondary).
fn secondary_eal_args(primary_args: &[String], dpdk: bool) -> Result<Vec<String>, String> {
    let prefix = primary_args
        .iter()
        .position(|a| a == "--file-prefix")
        .and_then(|at| primary_args.get(at + 1))
        .ok_or("the primary's options have no --file-prefix for its secondaries")?;
    let program = primary_args.first().cloned().unwrap_or_default();
    let dpdk_only = if dpdk { DPDK_ONLY_ARGS } else { &[] };
    Ok(std::iter::once(program)
        .chain(dpdk_only.iter().map(|s| s.to_string()))
        .chain(SECONDARY_ARGS.iter().map(|s| s.to_string()))
        .chain(["--file-prefix".to_owned(), prefix.clone()])
        .collect())
}

/// How a primary child starts a secondary: its own program again, as `kind`.
fn secondary_command(program: &Path, kind: ChildKind, eal_args: &[String]) -> Command {
    let mut command = Command::new(program);
    command
        .arg(CHILD_FLAG)
        .arg(kind.name())
        .arg(RowSelection::matching(&[], None).to_arg())
        .args(eal_args.iter().skip(1));
    command
}

// ---- the children ---------------------------------------------------------------------

/// The CPUs this thread may run on, read before an EAL pins it: what its secondaries get.
fn unpinned_cpus() -> Result<BTreeSet<u32>, String> {
    dpmem_sys::thread::current_affinity().map_err(|e| format!("this process's CPUs: {e}"))
}

/// dpmem's primary: EAL, the pong action, the rows with secondaries from `launch`.
fn dpmem_primary(
    eal_args: &[String],
    selection: &RowSelection,
    launch: &dyn Fn() -> Command,
) -> Result<(), String> {
    let cpus = unpinned_cpus()?;
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let primary = DpmemPrimary::new(&eal)?;
    // The secondaries are stopped inside; the EAL goes after them.
    primary_rows(&primary, selection, launch, &cpus)
}

/// DPDK's primary, as [`dpmem_primary`]; `rte_eal_cleanup` once the secondaries are gone.
fn dpdk_primary(
    dpdk: &dyn DpdkLoops,
    eal_args: &[String],
    selection: &RowSelection,
    launch: &dyn Fn() -> Command,
) -> Result<(), String> {
    let cpus = unpinned_cpus()?;
    dpdk.mp_primary_init(eal_args)?;
    let rows = primary_rows(&DpdkPrimary(dpdk), selection, launch, &cpus);
    let cleanup = dpdk.mp_cleanup();
    rows.and(cleanup)
}

/// Entry of dpmem's primary child. A failed row is a result line, not a failure.
pub(crate) fn dpmem_child(child: &ChildArgs) -> i32 {
    exit_code((|| {
        let selection = child.rows(MpRow::ALL.len())?;
        let program = child::own_program()?;
        let secondary = secondary_eal_args(&child.eal_args, false)?;
        let launch = || secondary_command(&program, ChildKind::DpmemMpSecondary, &secondary);
        dpmem_primary(&child.eal_args, &selection, &launch)
    })())
}

/// Entry of DPDK's primary child, as [`dpmem_child`].
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code((|| {
        let selection = child.rows(MpRow::ALL.len())?;
        let program = child::own_program()?;
        let secondary = secondary_eal_args(&child.eal_args, true)?;
        let launch = || secondary_command(&program, ChildKind::DpdkMpSecondary, &secondary);
        dpdk_primary(dpdk, &child.eal_args, &selection, &launch)
    })())
}

/// Entry of a dpmem secondary child: attach, serve until stdin ends, detach.
pub(crate) fn dpmem_secondary_child(child: &ChildArgs) -> i32 {
    exit_code(dpmem_side::serve_as_secondary(&child.eal_args))
}

/// Entry of a DPDK secondary child, as [`dpmem_secondary_child`].
pub(crate) fn dpdk_secondary_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code(dpdk.mp_secondary_init(&child.eal_args).and_then(|()| {
        secondary::announce_ready_and_serve(&|round_ns| {
            dpdk.mp_grow_rounds(rows::GROW_ZONE_LEN, round_ns)
        });
        dpdk.mp_cleanup()
    }))
}

// ---- the parent -------------------------------------------------------------------------

/// Per row, what one primary child reported: figures, or why there are none.
fn parse_child_lines(
    lines: &[String],
    rows: usize,
) -> Result<Vec<Result<Latency, String>>, String> {
    let mut cells = vec![Err("the child reported nothing for this row".to_owned()); rows];
    for line in lines {
        let bad = || format!("malformed child line {line:?}");
        let mut words = line.split_whitespace().skip(1);
        if words.next() != Some("row") {
            return Err(bad());
        }
        let i: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let cell = cells.get_mut(i).ok_or_else(bad)?;
        *cell = match words.next() {
            Some("mean") => {
                let mean = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                let mut labelled = |label: &str| -> Result<f64, String> {
                    if words.next() != Some(label) {
                        return Err(bad());
                    }
                    words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)
                };
                Ok(Latency {
                    mean,
                    p50: labelled("p50")?,
                    p99: labelled("p99")?,
                })
            }
            Some("error") => Err(words.collect::<Vec<_>>().join(" ")),
            _ => return Err(bad()),
        };
    }
    Ok(cells)
}

/// One side's repetitions of every row, in microseconds.
#[derive(Debug)]
struct SideSamples {
    mean: Vec<Samples>,
    p50: Vec<Samples>,
    p99: Vec<Samples>,
}

impl SideSamples {
    fn new(rows: usize) -> SideSamples {
        let column = || (0..rows).map(|_| Samples::default()).collect();
        SideSamples {
            mean: column(),
            p50: column(),
            p99: column(),
        }
    }

    fn push(&mut self, i: usize, cell: Result<Latency, String>) {
        let us = |f: fn(&Latency) -> f64| cell.clone().map(|l| f(&l) / 1e3);
        self.mean[i].push(us(|l| l.mean));
        self.p50[i].push(us(|l| l.p50));
        self.p99[i].push(us(|l| l.p99));
    }
}

/// The 2 MiB hugepage mount both sides' files go to, when it has the pages a primary needs.
fn hugepage_mount() -> Result<PathBuf, String> {
    let mount = hugepage_host::hugetlbfs_2m_mount()?;
    let needed = (MEMORY_MB << 20) / PAGE_2M;
    let free = hugepage_host::free_2m_hugepages()?;
    if free < needed {
        return Err(format!("only {free} free 2 MiB hugepages, {needed} needed"));
    }
    Ok(mount)
}

/// Run the `mp` workload.
pub fn run_mp(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let rows = MpRow::ALL.len();
    let setup = SideSetup::prepare("mp", PRIMARY_ARGS, &[], DPDK_ONLY_ARGS);
    let prefix = setup.prefix.as_str();
    let mount = hugepage_mount().map_err(|why| {
        format!(
            "needs 2 MiB hugepages in files that secondaries map (no --in-memory; --no-huge \
             memory is private to a process): {why}"
        )
    });
    let dpdk_missing = setup.dpdk_missing();
    let selection = opts.selection(&row_names());

    let mut dpmem = SideSamples::new(rows);
    let mut dpdk = SideSamples::new(rows);
    for rep in 0..reps {
        // Take turns at going first, so neither side always runs on the warmer machine.
        let mut sides = vec![ChildKind::DpmemMp];
        if dpdk_missing.is_none() {
            sides.push(ChildKind::DpdkMp);
        }
        if rep % 2 == 1 {
            sides.reverse();
        }
        for kind in sides {
            let (program, args, samples) = match kind {
                ChildKind::DpmemMp => (&setup.own, &setup.dpmem_args, &mut dpmem),
                _ => (&setup.dpdk, &setup.dpdk_args, &mut dpdk),
            };
            let cells = mount.clone().and_then(|mount| {
                let lines = program.clone().and_then(|program| {
                    child::run_lines(&program, kind, &selection, args, RESULT_MARKER)
                });
                crate::init::remove_leftovers(Some(&mount), prefix);
                parse_child_lines(&lines?, rows)
            });
            for &i in selection.indices() {
                samples.push(
                    i,
                    cells
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|c| c[i].clone()),
                );
            }
        }
    }

    let theirs = |samples: Samples| match dpdk_missing {
        Some(why) => Measurement::Missing(why.clone()),
        None => samples.into_measurement(reps),
    };
    let mut columns = [
        dpmem.mean, dpdk.mean, dpmem.p50, dpdk.p50, dpmem.p99, dpdk.p99,
    ]
    .map(Vec::into_iter);
    let table = MpRow::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let [ours, their, ours_p50, their_p50, ours_p99, their_p99] =
                columns.each_mut().map(|c| c.next().unwrap_or_default());
            selection.contains(i).then(|| Row {
                name: row.name().to_owned(),
                dpmem: ours.into_measurement(reps),
                dpdk: theirs(their),
                extra: vec![
                    ours_p50.into_measurement(reps),
                    theirs(their_p50),
                    ours_p99.into_measurement(reps),
                    theirs(their_p99),
                ],
                note: Some(row.note()),
            })
        })
        .collect();

    let notes = vec![
        format!(
            "each row: {WARMUP_ROUNDS} rounds, then {ROUNDS} timed (the allocation row: {} \
             then {}), each on its own (monotonic clock); the table's figure is their mean, p50 and p99 the median and 99th \
             percentile round; a fresh primary child per side and rep, the sides alternating \
             which runs first",
            rows::GROW_WARMUP_ROUNDS,
            rows::GROW_ROUNDS
        ),
        format!(
            "processes: the primary child starts its secondaries as children of its own (one \
             before the 1-secondary rows, the second before the last row) and stops them by \
             closing their stdin; primary {} (dynamic memory, no -m: 2 MiB hugepage files mapped \
             as needed), each \
             secondary {}, all with --file-prefix {prefix}; DPDK also: {}",
            PRIMARY_ARGS.join(" "),
            SECONDARY_ARGS.join(" "),
            DPDK_ONLY_ARGS.join(" ")
        ),
    ];

    Report {
        family: "mp".to_owned(),
        title: "inter-process channel: requests and messages between real processes".to_owned(),
        unit: "µs per round trip or message".to_owned(),
        reps,
        dpdk_build: setup.dpdk_build(),
        extra_columns: vec![
            "dpmem p50".to_owned(),
            "dpdk p50".to_owned(),
            "dpmem p99".to_owned(),
            "dpdk p99".to_owned(),
        ],
        rows: table,
        notes,
    }
}

#[cfg(test)]
mod tests;
