//! The `mempool` workload: `mempool_perf_autotest`'s rows on dpmem's mempool and on DPDK
//! 22.11's `rte_mempool`, in objects per second.
//!
//! | row | what every lcore of the row does, over and over |
//! | --- | ----------------------------------------------- |
//! | `cache C Nc bulk B keep K` | take `K` objects in gets of `B`, then put them back in puts of `B` |
//!
//! for a cache of 0 and of 512 objects per lcore, bulk 1, 4, 8 (a cache line of pointers)
//! and 32, keep 32, 128 and 512, on 1 lcore and on 2 lcores sharing the pool: 48 rows. The
//! pool holds `lcores × (512 + 512) − 1` objects of 2048 bytes, the size DPDK 22.11's autotest
//! gives it (2047 with `-l 0-1`), so every row starts from a full pool and 2 lcores keeping
//! 512 each can still fill their caches.
//!
//! The autotest runs each row for 5 seconds; here each lcore runs it for [`ROW_DURATION`],
//! checking the monotonic clock (`CLOCK_MONOTONIC` on both sides) after every chunk of
//! [`CHUNK`] objects, so a full `--reps 5` run stays near a minute. A row's rate is the sum
//! over its lcores of objects moved over that lcore's own elapsed time (the autotest divides
//! by the nominal 5 s). Before the clock starts each lcore runs one untimed chunk, and on 2
//! lcores both wait at a start line, so the timed loops overlap.
//!
//! Each side runs in its own child process with its own EAL (`-l 0-1`, one worker lcore):
//! DPDK's loops in C (`dpdk/csrc/dpdk_mempool_shim.c`, in a `dpmem-bench-dpdk` child) under
//! `rte_eal_remote_launch`, dpmem's (a `dpmem` child) under
//! [`LcoreThreads::remote_launch`](dpmem::eal::lcore::LcoreThreads::remote_launch).
//! One child per side per repetition, the two sides taking turns at going first, so that
//! load from other processes hits both columns alike. The bulk size is a compile-time
//! constant in both loops (the autotest's `constant_n=1` form, DPDK's fastest). Both loops
//! look the lcore's cache up once and pass it to every call, as the autotest does
//! (`rte_mempool_default_cache` then `rte_mempool_generic_get/put`; dpmem's
//! `Mempool::lcore_cache` once per chunk).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpmem::eal::{Eal, Socket};
use dpmem::mempool::{Mempool, MempoolConfig, MempoolFlags};

use crate::child::{self, exit_code, ChildArgs, ChildKind};
use crate::dpdk_loops::{DpdkLoops, LcoreCount};

use crate::hugepage_host;
use crate::report::{Measurement, Report, Row};
use crate::row_selection::RowSelection;
use crate::samples::Samples;
use crate::side_setup::SideSetup;
use crate::BenchOptions;

/// Bytes per object (the autotest's `MEMPOOL_ELT_SIZE`).
const ELT_SIZE: u32 = 2048;
/// The largest `keep` of any row (the autotest's `MAX_KEEP`).
const MAX_KEEP: u32 = 512;
/// The largest per-lcore cache, DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`.
const CACHE_MAX: u32 = 512;
/// Objects one lcore moves between two looks at the clock (the autotest's `N`).
const CHUNK: u64 = 65536;
/// How long every lcore of a row runs its loop.
const ROW_DURATION: Duration = Duration::from_millis(100);

const CACHES: [u32; 2] = [0, CACHE_MAX];
const CORES: [u32; 2] = [1, 2];
const BULKS: [u32; 4] = [1, 4, 8, 32];
const KEEPS: [u32; 3] = [32, 128, 512];

/// Memory each side's EAL gets (`-m`): both pools take about 12 MiB.
const MEMORY_MB: u64 = 64;
/// EAL options both sides get, besides the memory ones and the file prefix.
const SHARED_ARGS: &[&str] = &["-l", "0-1"];
/// Options only DPDK has (dpmem's parser rejects them, as DPDK's rejects unknown ones).
const DPDK_ONLY_ARGS: &[&str] = &["--no-pci", "--no-telemetry", "--log-level=error"];

/// Marker of the children's result lines:
/// `DPMEM_BENCH_MEMPOOL pool <objects>`, then per row `DPMEM_BENCH_MEMPOOL row <i> rate <M/s>`
/// or `DPMEM_BENCH_MEMPOOL row <i> error <why>`.
const RESULT_MARKER: &str = "DPMEM_BENCH_MEMPOOL";

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowSpec {
    /// Objects per lcore cache: 0 (none) or 512.
    cache: u32,
    /// Lcores running the loop on the pool at once.
    cores: u32,
    /// Objects per get and per put.
    bulk: u32,
    /// Objects taken before they are put back.
    keep: u32,
}

impl RowSpec {
    fn name(&self) -> String {
        format!(
            "cache {} {}c bulk {} keep {}",
            self.cache, self.cores, self.bulk, self.keep
        )
    }
}

/// The rows, in the autotest's order: cache, cores, bulk, keep.
fn rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for cache in CACHES {
        for cores in CORES {
            for bulk in BULKS {
                for keep in KEEPS {
                    rows.push(RowSpec {
                        cache,
                        cores,
                        bulk,
                        keep,
                    });
                }
            }
        }
    }
    rows
}

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    rows().iter().map(RowSpec::name).collect()
}

/// Objects in each pool for `lcores` lcores (the autotest's `MEMPOOL_SIZE`).
fn pool_size(lcores: u32) -> u32 {
    lcores * (MAX_KEEP + CACHE_MAX) - 1
}

/// Millions of objects per second of a row: each lcore's objects over its own time, summed.
fn rate_mops(counts: &[LcoreCount]) -> f64 {
    counts
        .iter()
        .filter(|c| c.elapsed_ns > 0)
        .map(|c| c.objects as f64 * 1e3 / c.elapsed_ns as f64)
        .sum()
}

// ---- the dpmem side ------------------------------------------------------------------

/// The objects an lcore holds between its gets and its puts, one cache line aligned as the
/// autotest's table is.
#[repr(C, align(64))]
struct ObjTable([*mut u8; MAX_KEEP as usize]);

/// One chunk on dpmem: `CHUNK / keep` rounds of `keep` objects got in bulks of `BULK` and
/// put back in bulks of `BULK`. `BULK` is a constant so each bulk size gets its own loop,
/// as the C side's does.
///
/// Like the C side (and the autotest), the loop finds the lcore's cache once
/// ([`Mempool::lcore_cache`], `rte_mempool_default_cache`) rather than on every call; the
/// handle is a local of this function, so its cache length stays in a register. A pool
/// without caches has no default cache: the C side then passes a null cache to
/// `rte_mempool_generic_get/put`, and this side calls [`Mempool::generic_get`] and
/// [`Mempool::generic_put`] with none.
#[inline(always)]
fn dpmem_chunk<const BULK: usize>(
    pool: &Mempool<'_>,
    table: &mut ObjTable,
    keep: usize,
) -> Result<(), String> {
    let mut cache = pool
        .lcore_cache()
        .map_err(|e| format!("dpmem: lcore cache: {e}"))?;
    let held = &mut table.0[..keep];
    if !cache.is_cached() {
        drop(cache);
        return dpmem_chunk_uncached::<BULK>(pool, held);
    }
    for _ in 0..CHUNK as usize / keep {
        for bulk in held.chunks_exact_mut(BULK) {
            cache
                .get_bulk(bulk)
                .map_err(|e| format!("dpmem: get_bulk of {BULK} failed: {e}"))?;
        }
        for bulk in held.chunks_exact(BULK) {
            // SAFETY: the objects of `bulk` were got from `pool` in this round, by this
            // lcore, and have not been put back since: they are the pool's and not in it.
            unsafe { cache.put_bulk(bulk) };
        }
    }
    Ok(())
}

/// [`dpmem_chunk`] on a pool without caches: every get and put goes to the handler.
#[inline(always)]
fn dpmem_chunk_uncached<const BULK: usize>(
    pool: &Mempool<'_>,
    held: &mut [*mut u8],
) -> Result<(), String> {
    for _ in 0..CHUNK as usize / held.len() {
        for bulk in held.chunks_exact_mut(BULK) {
            pool.generic_get(bulk, None)
                .map_err(|e| format!("dpmem: get_bulk of {BULK} failed: {e}"))?;
        }
        for bulk in held.chunks_exact(BULK) {
            // SAFETY: as in `dpmem_chunk`.
            unsafe { pool.generic_put(bulk, None) }
                .map_err(|e| format!("dpmem: put_bulk of {BULK} failed: {e}"))?;
        }
    }
    Ok(())
}

/// Picks the loop compiled for `bulk`.
fn dpmem_chunk_for(
    pool: &Mempool<'_>,
    table: &mut ObjTable,
    bulk: u32,
    keep: u32,
) -> Result<(), String> {
    let keep = keep as usize;
    match bulk {
        1 => dpmem_chunk::<1>(pool, table, keep),
        4 => dpmem_chunk::<4>(pool, table, keep),
        8 => dpmem_chunk::<8>(pool, table, keep),
        32 => dpmem_chunk::<32>(pool, table, keep),
        other => Err(format!("no loop for bulk {other}")),
    }
}

/// One lcore's part of a row: a warm-up chunk, the start line (all `row.cores` lcores must
/// reach it), then chunks until `duration` has passed.
fn dpmem_lcore_loop(
    pool: &Mempool<'_>,
    row: RowSpec,
    duration: Duration,
    ready: &AtomicU32,
) -> Result<LcoreCount, String> {
    let mut table = ObjTable([std::ptr::null_mut(); MAX_KEEP as usize]);
    let warm = dpmem_chunk_for(pool, &mut table, row.bulk, row.keep);
    // Reach the start line even after a failure, or the other lcore would wait forever.
    ready.fetch_add(1, Ordering::AcqRel);
    while ready.load(Ordering::Acquire) < row.cores {
        std::hint::spin_loop();
    }
    warm?;
    let mut objects = 0;
    let start = Instant::now();
    let mut elapsed = Duration::ZERO;
    while elapsed < duration {
        dpmem_chunk_for(pool, &mut table, row.bulk, row.keep)?;
        objects += CHUNK;
        elapsed = start.elapsed();
    }
    Ok(LcoreCount {
        objects,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// One row on dpmem: the main lcore runs the loop and, for 2 cores, the next lcore too.
fn dpmem_row(
    eal: &'static Eal,
    pool: &'static Mempool<'static>,
    row: RowSpec,
    duration: Duration,
) -> Result<Vec<LcoreCount>, String> {
    // As the autotest: every row starts from a full pool (lcore caches count as in it).
    if !pool.is_full() {
        return Err(format!(
            "dpmem: pool {} holds {} of {} objects at the start of the row",
            pool.name(),
            pool.avail_count(),
            pool.size()
        ));
    }
    let ready = Arc::new(AtomicU32::new(0));
    let threads = eal.lcore_threads();
    let worker = match row.cores {
        1 => None,
        2 => {
            let lcore = threads
                .next_lcore(Some(threads.main_lcore()), true, false)
                .ok_or("dpmem: 2-core row needs a worker lcore (-l 0-1)")?;
            let ready = Arc::clone(&ready);
            let launch = threads
                .remote_launch(lcore, move || dpmem_lcore_loop(pool, row, duration, &ready))
                .map_err(|e| format!("dpmem: remote_launch on lcore {lcore}: {e}"))?;
            Some(launch)
        }
        n => return Err(format!("{n} cores: rows run on 1 or 2")),
    };
    let main = dpmem_lcore_loop(pool, row, duration, &ready);
    let mut counts = vec![main];
    if let Some(launch) = worker {
        counts.push(
            launch
                .wait()
                .map_err(|e| format!("dpmem: worker lcore: {e}"))
                .and_then(|r| r),
        );
    }
    counts.into_iter().collect()
}

/// A pool of the workload on dpmem, its objects written as the autotest's `obj_init` writes
/// them: the object's index in the first four bytes, zeros after.
fn dpmem_pool<'eal>(
    eal: &'eal Eal,
    name: &str,
    size: u32,
    cache: u32,
) -> Result<Mempool<'eal>, String> {
    let config = MempoolConfig {
        name,
        n: size,
        elt_size: ELT_SIZE,
        cache_size: cache,
        private_data_size: 0,
        socket: Socket::Any,
        flags: MempoolFlags::empty(),
    };
    Mempool::create_with(
        eal,
        &config,
        |_| {},
        |_, obj, index| {
            // SAFETY: obj_init is handed each object of the new pool once, before anyone
            // can get it; an object is ELT_SIZE writable bytes.
            unsafe { std::ptr::write_bytes(obj, 0, ELT_SIZE as usize) };
            // SAFETY: as above; objects start on a cache line, so the u32 is aligned.
            unsafe { obj.cast::<u32>().write(index) };
        },
    )
    .map_err(|e| format!("dpmem: creating mempool {name}: {e}"))
}

/// dpmem's child: EAL, two pools, every selected row once; one result line per row.
fn dpmem_rows(
    eal_args: &[String],
    selection: &RowSelection,
    duration: Duration,
) -> Result<(), String> {
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init failed: {e}"))?;
    // remote_launch needs 'static work, so the EAL and the pools live until the process
    // exits, right after the rows.
    let eal: &'static Eal = Box::leak(Box::new(eal));
    let lcores = eal.lcore_threads().lcore_count() as u32;
    let size = pool_size(lcores);
    let mut pools = Vec::new();
    for cache in CACHES {
        let pool = dpmem_pool(eal, &format!("bench_mp_cache{cache}"), size, cache)?;
        let pool: &'static Mempool<'static> = Box::leak(Box::new(pool));
        pools.push((cache, pool));
    }
    println!("{RESULT_MARKER} pool {size}");
    let specs = rows();
    for &i in selection.indices() {
        let row = specs[i];
        let pool = pools
            .iter()
            .find(|(cache, _)| *cache == row.cache)
            .map(|(_, pool)| *pool)
            .ok_or("no pool for the row's cache size")?;
        print_row(i, dpmem_row(eal, pool, row, duration));
    }
    Ok(())
}

// ---- the DPDK side -------------------------------------------------------------------

fn dpdk_rows(
    dpdk: &dyn DpdkLoops,
    eal_args: &[String],
    selection: &RowSelection,
    duration: Duration,
) -> Result<(), String> {
    let size = dpdk.mempool_eal_init(eal_args, ELT_SIZE)?;
    println!("{RESULT_MARKER} pool {size}");
    let duration_ns = duration.as_nanos() as u64;
    let specs = rows();
    for &i in selection.indices() {
        let row = specs[i];
        print_row(
            i,
            dpdk.mempool_run(row.cache, row.cores, row.bulk, row.keep, duration_ns),
        );
    }
    Ok(())
}

// ---- both children, and the parent -----------------------------------------------------

fn print_row(i: usize, result: Result<Vec<LcoreCount>, String>) {
    match result {
        Ok(counts) => println!("{RESULT_MARKER} row {i} rate {}", rate_mops(&counts)),
        // One line: the parent reads results line by line.
        Err(e) => println!(
            "{RESULT_MARKER} row {i} error {}",
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// Entry of dpmem's mempool child. Returns the exit code; a failed row is a result line,
/// not a failure.
pub(crate) fn dpmem_child(child: &ChildArgs) -> i32 {
    exit_code(
        child
            .rows(rows().len())
            .and_then(|selection| dpmem_rows(&child.eal_args, &selection, ROW_DURATION)),
    )
}

/// Entry of DPDK's mempool child, as [`dpmem_child`].
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code(
        child
            .rows(rows().len())
            .and_then(|selection| dpdk_rows(dpdk, &child.eal_args, &selection, ROW_DURATION)),
    )
}

/// What one child reported: the pool size and, per row, a rate or why there is none.
#[derive(Debug, Clone, PartialEq)]
struct ChildReport {
    pool_size: Option<u32>,
    rows: Vec<Result<f64, String>>,
}

fn parse_child_lines(lines: &[String], rows: usize) -> Result<ChildReport, String> {
    let mut report = ChildReport {
        pool_size: None,
        rows: vec![Err("the child reported nothing for this row".to_owned()); rows],
    };
    for line in lines {
        let bad = || format!("malformed child line {line:?}");
        let mut words = line.split_whitespace().skip(1);
        match words.next() {
            Some("pool") => {
                let n = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                report.pool_size = Some(n);
            }
            Some("row") => {
                let i: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                let cell = report.rows.get_mut(i).ok_or_else(bad)?;
                *cell = match words.next() {
                    Some("rate") => {
                        Ok(words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?)
                    }
                    Some("error") => Err(words.collect::<Vec<_>>().join(" ")),
                    _ => return Err(bad()),
                };
            }
            _ => return Err(bad()),
        }
    }
    Ok(report)
}

/// One repetition of one side: a child process (`program`) running every selected row.
fn run_side(
    program: &Result<std::path::PathBuf, String>,
    kind: ChildKind,
    args: &[String],
    prefix: &str,
    selection: &RowSelection,
    rows: usize,
) -> Result<ChildReport, String> {
    let lines = program
        .clone()
        .and_then(|program| child::run_lines(&program, kind, selection, args, RESULT_MARKER));
    crate::init::remove_leftovers(None, prefix);
    parse_child_lines(&lines?, rows)
}

/// Run the `mempool` workload.
pub fn run_mempool(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let specs = rows();
    let (memory, hugepages) = hugepage_host::child_memory_args(MEMORY_MB);
    let setup = SideSetup::prepare("mempool", SHARED_ARGS, &memory, DPDK_ONLY_ARGS);
    let prefix = setup.prefix.as_str();
    let dpdk_missing = setup.dpdk_missing();
    let selection = opts.selection(&row_names());

    let mut dpmem: Vec<Samples> = specs.iter().map(|_| Samples::default()).collect();
    let mut dpdk: Vec<Samples> = specs.iter().map(|_| Samples::default()).collect();
    let (mut dpmem_pool, mut dpdk_pool) = (None, None);
    for rep in 0..reps {
        // Take turns at going first, so neither side always runs on the warmer machine.
        let mut sides = vec![ChildKind::DpmemMempool];
        if dpdk_missing.is_none() {
            sides.push(ChildKind::DpdkMempool);
        }
        if rep % 2 == 1 {
            sides.reverse();
        }
        for kind in sides {
            let (program, args, cells, pool) = match kind {
                ChildKind::DpmemMempool => {
                    (&setup.own, &setup.dpmem_args, &mut dpmem, &mut dpmem_pool)
                }
                _ => (&setup.dpdk, &setup.dpdk_args, &mut dpdk, &mut dpdk_pool),
            };
            match run_side(program, kind, args, prefix, &selection, specs.len()) {
                Ok(report) => {
                    *pool = pool.or(report.pool_size);
                    for &i in selection.indices() {
                        cells[i].push(report.rows[i].clone());
                    }
                }
                Err(e) => {
                    for &i in selection.indices() {
                        cells[i].push(Err(e.clone()));
                    }
                }
            }
        }
    }

    let rows = specs
        .iter()
        .zip(dpmem.into_iter().zip(dpdk))
        .enumerate()
        .filter(|(i, _)| selection.contains(*i))
        .map(|(_, (spec, (ours, theirs)))| Row {
            name: spec.name(),
            dpmem: ours.into_measurement(reps),
            dpdk: match dpdk_missing {
                Some(why) => Measurement::Missing(why.clone()),
                None => theirs.into_measurement(reps),
            },
            extra: vec![],
            note: None,
        })
        .collect();

    let pool_text = |p: Option<u32>| p.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let mut notes = vec![
        format!(
            "each row: every lcore gets `keep` objects in bulks of `bulk`, then puts them back \
             in bulks of `bulk`, in chunks of {CHUNK} objects for {} ms (clock read between \
             chunks); rate = sum over lcores of objects / that lcore's time; bulk is a \
             compile-time constant on both sides (the autotest's constant_n=1); the lcore's \
             cache is looked up once and passed to every call (DPDK: rte_mempool_default_cache \
             per row; dpmem: Mempool::lcore_cache per chunk)",
            ROW_DURATION.as_millis()
        ),
        format!(
            "pools: lcores x (512 + 512) - 1 objects of {ELT_SIZE} B (dpmem {}, DPDK {}), \
             cache 0 or 512 per lcore, ring MP/MC handler; 2c: both lcores on one pool at once",
            pool_text(dpmem_pool),
            pool_text(dpdk_pool)
        ),
        format!(
            "{}; each rep a fresh child \
             process per side, sides alternating which runs first",
            setup.args_note()
        ),
    ];
    if let Err(why) = hugepages {
        notes.push(format!("ran with --no-huge on both sides: {why}"));
    }

    Report {
        family: "mempool".to_owned(),
        title: "mempool_perf_autotest rows, 2048-byte objects".to_owned(),
        unit: "million objects per second".to_owned(),
        reps,
        dpdk_build: setup.dpdk_build(),
        extra_columns: vec![],
        rows,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cover_the_autotest_grid_once_each() {
        let specs = rows();
        // 2 caches x 2 core counts x 4 bulks x 3 keeps.
        assert_eq!(specs.len(), 48);
        let mut names: Vec<String> = specs.iter().map(RowSpec::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 48);
        assert_eq!(specs[0].name(), "cache 0 1c bulk 1 keep 32");
        assert_eq!(specs[47].name(), "cache 512 2c bulk 32 keep 512");
        // Every bulk divides every keep, as the autotest requires.
        assert!(specs
            .iter()
            .all(|r| r.keep % r.bulk == 0 && r.keep <= MAX_KEEP));
        // The C side runs rows on 1 or 2 lcores.
        assert!(specs.iter().all(|r| (1..=2).contains(&r.cores)));
    }

    #[test]
    fn pool_is_the_autotests_size() {
        // What DPDK 22.11's dpdk-test creates with -l 0-1.
        assert_eq!(pool_size(2), 2047);
    }

    #[test]
    fn rate_sums_lcores_each_over_its_own_time() {
        let counts = [
            LcoreCount {
                objects: 1_000_000,
                elapsed_ns: 10_000_000,
            },
            LcoreCount {
                objects: 3_000_000,
                elapsed_ns: 20_000_000,
            },
        ];
        // 100 M/s + 150 M/s.
        assert!((rate_mops(&counts) - 250.0).abs() < 1e-9);
    }

    #[test]
    fn child_lines_round_trip_rates_and_errors() {
        let lines: Vec<String> = [
            "DPMEM_BENCH_MEMPOOL pool 2047",
            "DPMEM_BENCH_MEMPOOL row 0 rate 123.5",
            "DPMEM_BENCH_MEMPOOL row 2 error a get found the pool empty",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_child_lines(&lines, 3).unwrap();
        assert_eq!(r.pool_size, Some(2047));
        assert_eq!(r.rows[0], Ok(123.5));
        assert!(r.rows[1].is_err());
        assert_eq!(r.rows[2], Err("a get found the pool empty".to_owned()));
        assert!(parse_child_lines(&["DPMEM_BENCH_MEMPOOL row 9 rate 1".to_owned()], 3).is_err());
        assert!(parse_child_lines(&["DPMEM_BENCH_MEMPOOL row 0 rate x".to_owned()], 3).is_err());
    }

    /// The smallest form of the dpmem side end to end: a no-huge EAL with two lcores, both
    /// pools, one short row per cache size and core count; every pool full afterwards.
    #[test]
    fn dpmem_side_runs_rows_on_two_lcores() {
        let prefix = format!("mempool_test_{}", std::process::id());
        let args: Vec<String> = [
            "bench",
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "64",
            "--file-prefix",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([prefix.clone()])
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
        let eal: &'static Eal = Box::leak(Box::new(eal));
        let size = pool_size(2);
        for cache in CACHES {
            let pool = dpmem_pool(eal, &format!("t_mp_{cache}"), size, cache).unwrap();
            let mut first = [std::ptr::null_mut(); 1];
            pool.get_bulk(&mut first).unwrap();
            // SAFETY: the object was just got from the pool and is not in it.
            let index = unsafe { first[0].cast::<u32>().read() };
            assert!(index < size);
            // SAFETY: as above; put back once.
            unsafe { pool.put_bulk(&first) };
            let pool: &'static Mempool<'static> = Box::leak(Box::new(pool));
            for cores in CORES {
                let row = RowSpec {
                    cache,
                    cores,
                    bulk: 32,
                    keep: 512,
                };
                let counts = dpmem_row(eal, pool, row, Duration::from_millis(5)).unwrap();
                assert_eq!(counts.len(), cores as usize);
                assert!(counts
                    .iter()
                    .all(|c| c.objects >= CHUNK && c.elapsed_ns > 0));
                assert!(rate_mops(&counts) > 0.0);
                assert!(pool.is_full(), "a row loses no object");
            }
        }
        // The EAL stays (remote_launch needs it 'static), but its runtime directory goes:
        // a test leaves nothing behind.
        crate::init::remove_leftovers(None, &prefix);
    }
}
