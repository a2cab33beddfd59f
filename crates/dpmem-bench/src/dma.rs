//! The `dma` workload: dpmem's copy engine (`dpmem-dma`, its software backend) against DPDK
//! 22.11's software DMA device (the `dma_skeleton` vdev), in copies per second.
//!
//! | row | what the main lcore does, over and over |
//! | --- | --------------------------------------- |
//! | `copy N B burst 32` | queue up to 32 copies of N bytes (fewer when the ring is short), ring the doorbell, take up to 64 completions; pause once when it could do neither |
//!
//! for copies of 64 bytes, 1 KiB and 4 KiB: the enqueue + submit + completed loop of a
//! dmadev user such as MTL's RX. Each copy goes from the next of [`SLOTS`] source slots to
//! the destination slot of the same number (4 KiB apart): 128 KiB in all, which stays in a
//! core's L2 cache, so the rows measure the engines rather than memory. (At 4 KiB a software
//! engine is bound by the CPU's copy speed anyway: a plain `memcpy` loop over the same slots
//! is the ceiling of that row.) Both devices copy on a control thread of their EAL (`-l 0`:
//! the CPUs other than lcore 0's); the main lcore only queues and reaps.
//! A row's rate is the copies reported complete while the clock ran over that time; the
//! clock is read every 64 bursts, after a warm-up of 64 bursts.
//!
//! Each side runs in its own child process with its own EAL, the two sides taking turns at
//! going first: DPDK's loop in C (`dpdk/csrc/dpdk_dma_shim.c`, in a `dpmem-bench-dpdk`
//! child, `--vdev=dma_skeleton`), dpmem's in a `dpmem` child. Both use IOVA as VA (the
//! skeleton needs it), one channel of [`NB_DESC`] descriptors.

use std::time::{Duration, Instant};

use dpmem::eal::Eal;
use dpmem_dma::{DmaConf, DmaDevice, OpFlags, Vchan, VchanConf};

use crate::child::{self, ChildArgs, ChildKind};
use crate::dpdk_dma_loops::CopyCount;
use crate::dpdk_loops::DpdkLoops;

use crate::hugepage_host::{self, PAGE_2M};
use crate::report::{Measurement, Report, Row};
use crate::row_selection::RowSelection;
use crate::side_setup::SideSetup;
use crate::stats::median;
use crate::BenchOptions;

/// Bytes per copy, one row each.
const SIZES: [u32; 3] = [64, 1024, 4096];
/// Copies queued per doorbell, at most.
const BURST: u32 = 32;
/// Completions taken per look, at most.
const MAX_REAP: u32 = 64;
/// Descriptors of the channel's ring.
const NB_DESC: u32 = 1024;
/// Source and destination slots the copies cycle through.
const SLOTS: u32 = 16;
/// Bytes between two slots: the largest copy.
const SLOT_LEN: u32 = 4096;
/// Bursts between two looks at the clock (and of the warm-up).
const BURSTS_PER_CHECK: u32 = 64;
/// How long each row's loop runs.
const ROW_DURATION: Duration = Duration::from_millis(200);

/// The DPDK device: the skeleton PMD, created by the EAL option below.
const DPDK_DEVICE: &str = "dma_skeleton";
/// Memory each side's EAL gets (`-m`).
const MEMORY_MB: u64 = 64;
/// EAL options both sides get, besides the memory ones and the file prefix.
const SHARED_ARGS: &[&str] = &["-l", "0", "--iova-mode=va"];
/// Options only DPDK has.
const DPDK_ONLY_ARGS: &[&str] = &[
    "--no-pci",
    "--no-telemetry",
    "--log-level=error",
    "--vdev=dma_skeleton",
];

/// Marker of the children's result lines: `DPMEM_BENCH_DMA row <i> rate <M/s>` or
/// `DPMEM_BENCH_DMA row <i> error <why>`.
const RESULT_MARKER: &str = "DPMEM_BENCH_DMA";

fn row_name(len: u32) -> String {
    let size = if len >= 1024 {
        format!("{} KiB", len / 1024)
    } else {
        format!("{len} B")
    };
    format!("copy {size} burst {BURST}")
}

/// The rows' names, in the order a [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    SIZES.iter().map(|&len| row_name(len)).collect()
}

/// Millions of copies per second.
fn rate_mops(count: CopyCount) -> f64 {
    if count.elapsed_ns == 0 {
        return 0.0;
    }
    count.copies as f64 * 1e3 / count.elapsed_ns as f64
}

// ---- the dpmem side ------------------------------------------------------------------

/// The memory the copies cycle through: both memzones, by IOVA and by address.
struct Slots {
    src: dpmem::eal::Iova,
    dst: dpmem::eal::Iova,
    src_va: *const u8,
    dst_va: *const u8,
}

impl Slots {
    /// Whether every destination slot holds its source slot's first `len` bytes.
    fn all_copied(&self, len: u32) -> bool {
        (0..SLOTS).all(|k| {
            let off = (k * SLOT_LEN) as usize;
            let len = len as usize;
            // SAFETY: both memzones hold SLOTS * SLOT_LEN bytes, and no copy is in flight
            // (the row drained its channel).
            let src = unsafe { std::slice::from_raw_parts(self.src_va.wrapping_add(off), len) };
            // SAFETY: as above.
            let dst = unsafe { std::slice::from_raw_parts(self.dst_va.wrapping_add(off), len) };
            src == dst
        })
    }
}

/// Where the loop is.
#[derive(Default)]
struct LoopState {
    slot: u32,
    in_flight: u64,
    completed: u64,
}

/// One burst on dpmem's engine, as `dma_burst` in the C shim.
#[inline(always)]
fn dpmem_burst(
    vchan: &mut Vchan<'_>,
    slots: &Slots,
    state: &mut LoopState,
    len: u32,
) -> Result<(), String> {
    let n = BURST.min(u32::from(vchan.burst_capacity()));
    for _ in 0..n {
        let off = u64::from(state.slot * SLOT_LEN);
        let (src, dst) = (
            slots
                .src
                .checked_add(off)
                .ok_or("slot past the IOVA space")?,
            slots
                .dst
                .checked_add(off)
                .ok_or("slot past the IOVA space")?,
        );
        // SAFETY: both slots are this child's memzones, read and written by nothing but the
        // device (the loop never looks at them).
        unsafe { vchan.copy(src, dst, len, OpFlags::empty()) }
            .map_err(|e| format!("dpmem: copy: {e}"))?;
        state.slot = if state.slot + 1 == SLOTS {
            0
        } else {
            state.slot + 1
        };
    }
    if n != 0 {
        vchan.submit();
    }
    state.in_flight += u64::from(n);
    let done = vchan.completed(MAX_REAP as u16);
    if done.has_error {
        return Err("dpmem: a copy failed".to_owned());
    }
    state.in_flight -= u64::from(done.count);
    state.completed += u64::from(done.count);
    if n == 0 && done.count == 0 {
        // Nothing to do until the device catches up: leave the core's resources to it.
        std::hint::spin_loop();
    }
    Ok(())
}

fn dpmem_drain(vchan: &mut Vchan<'_>, state: &mut LoopState) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(1);
    while state.in_flight != 0 {
        let done = vchan.completed(MAX_REAP as u16);
        if done.has_error {
            return Err("dpmem: a copy failed".to_owned());
        }
        state.in_flight -= u64::from(done.count);
        if done.count == 0 {
            if Instant::now() > end {
                return Err("dpmem: copies never completed".to_owned());
            }
            std::hint::spin_loop();
        }
    }
    Ok(())
}

/// One row on dpmem, as `dpmem_bench_dpdk_dma_run`, with the same check of the slots at
/// the end.
fn dpmem_row(
    vchan: &mut Vchan<'_>,
    slots: &Slots,
    len: u32,
    duration: Duration,
) -> Result<CopyCount, String> {
    let mut state = LoopState::default();
    for _ in 0..BURSTS_PER_CHECK {
        dpmem_burst(vchan, slots, &mut state, len)?;
    }
    dpmem_drain(vchan, &mut state)?;
    state.completed = 0;
    let start = Instant::now();
    let elapsed = loop {
        for _ in 0..BURSTS_PER_CHECK {
            dpmem_burst(vchan, slots, &mut state, len)?;
        }
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break elapsed;
        }
    };
    let count = CopyCount {
        copies: state.completed,
        elapsed_ns: elapsed.as_nanos() as u64,
    };
    dpmem_drain(vchan, &mut state)?;
    if !slots.all_copied(len) {
        return Err("dpmem: a destination slot does not hold its source's bytes".to_owned());
    }
    Ok(count)
}

/// dpmem's child: EAL, device, slots, every selected row once; one result line per row.
fn dpmem_rows(
    eal_args: &[String],
    selection: &RowSelection,
    duration: Duration,
) -> Result<(), String> {
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let setup = |e: dpmem_dma::DmaError| format!("dpmem: device set-up: {e}");
    let mut dev = DmaDevice::create(&eal, "bench_dma").map_err(setup)?;
    dev.configure(DmaConf::new(1)).map_err(setup)?;
    dev.vchan_setup(0, VchanConf::mem_to_mem(NB_DESC as u16))
        .map_err(setup)?;
    dev.start().map_err(setup)?;
    let len = (SLOTS * SLOT_LEN) as usize;
    let zone = |name: &str, byte: u8| {
        let z = eal
            .memzones()
            .request(name, len)
            .align(4096)
            .reserve()
            .map_err(|e| format!("dpmem: memzone {name}: {e}"))?;
        // SAFETY: the memzone was just reserved for this child; nothing else uses it.
        unsafe { std::ptr::write_bytes(z.as_ptr(), byte, len) };
        let iova = z
            .iova
            .ok_or_else(|| format!("dpmem: memzone {name} has no IOVA"))?;
        Ok::<_, String>((iova, z.as_ptr() as *const u8))
    };
    let (src, src_va) = zone("bench_dma_src", 0x5a)?;
    let (dst, dst_va) = zone("bench_dma_dst", 0)?;
    let slots = Slots {
        src,
        dst,
        src_va,
        dst_va,
    };
    let mut vchan = dev.vchan(0).map_err(setup)?;
    for &i in selection.indices() {
        print_row(i, dpmem_row(&mut vchan, &slots, SIZES[i], duration));
    }
    drop(vchan);
    dev.close().map_err(setup)
}

// ---- the DPDK side -------------------------------------------------------------------

fn dpdk_rows(
    dpdk: &dyn DpdkLoops,
    eal_args: &[String],
    selection: &RowSelection,
    duration: Duration,
) -> Result<(), String> {
    dpdk.dma_eal_init(eal_args, DPDK_DEVICE, NB_DESC, SLOTS, SLOT_LEN)?;
    let duration_ns = duration.as_nanos() as u64;
    for &i in selection.indices() {
        print_row(i, dpdk.dma_run(SIZES[i], BURST, MAX_REAP, duration_ns));
    }
    Ok(())
}

// ---- both children, and the parent -----------------------------------------------------

fn print_row(i: usize, result: Result<CopyCount, String>) {
    match result {
        Ok(count) => println!("{RESULT_MARKER} row {i} rate {}", rate_mops(count)),
        Err(e) => println!(
            "{RESULT_MARKER} row {i} error {}",
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

fn exit_code(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Entry of dpmem's dma child. A failed row is a result line, not a failure.
pub(crate) fn dpmem_child(child: &ChildArgs) -> i32 {
    exit_code(
        child
            .rows(SIZES.len())
            .and_then(|selection| dpmem_rows(&child.eal_args, &selection, ROW_DURATION)),
    )
}

/// Entry of DPDK's dma child, as [`dpmem_child`].
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    exit_code(
        child
            .rows(SIZES.len())
            .and_then(|selection| dpdk_rows(dpdk, &child.eal_args, &selection, ROW_DURATION)),
    )
}

/// Per row, a rate or why there is none.
fn parse_child_lines(lines: &[String], rows: usize) -> Result<Vec<Result<f64, String>>, String> {
    let mut out = vec![Err("the child reported nothing for this row".to_owned()); rows];
    for line in lines {
        let bad = || format!("malformed child line {line:?}");
        let mut words = line.split_whitespace().skip(1);
        if words.next() != Some("row") {
            return Err(bad());
        }
        let i: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let cell = out.get_mut(i).ok_or_else(bad)?;
        *cell = match words.next() {
            Some("rate") => Ok(words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?),
            Some("error") => Err(words.collect::<Vec<_>>().join(" ")),
            _ => return Err(bad()),
        };
    }
    Ok(out)
}

/// The repetitions of one cell, and the first failure among them.
#[derive(Debug, Default)]
struct Cell {
    values: Vec<f64>,
    failure: Option<String>,
}

impl Cell {
    fn push(&mut self, r: Result<f64, String>) {
        match r {
            Ok(v) => self.values.push(v),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    fn into_measurement(self, reps: usize) -> Measurement {
        match (self.failure, median(&self.values)) {
            (Some(e), _) if self.values.is_empty() => Measurement::Missing(e),
            (Some(e), _) => Measurement::Missing(format!(
                "failed in {} of {reps} reps: {e}",
                reps - self.values.len()
            )),
            (None, Some(m)) => Measurement::Value(m),
            (None, None) => Measurement::Missing("not run".to_owned()),
        }
    }
}

/// The memory options both sides get: 2 MiB hugepages without files when enough are free,
/// else `--no-huge`, with the reason.
fn memory_args() -> (Vec<String>, Result<(), String>) {
    let needed = (MEMORY_MB << 20) / PAGE_2M;
    let hugepages = hugepage_host::hugetlbfs_2m_mount().and_then(|_| {
        let free = hugepage_host::free_2m_hugepages()?;
        if free < needed {
            return Err(format!("only {free} free 2 MiB hugepages, {needed} needed"));
        }
        Ok(())
    });
    let mode = if hugepages.is_ok() {
        "--in-memory"
    } else {
        "--no-huge"
    };
    let args = [mode, "-m", &MEMORY_MB.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    (args, hugepages)
}

/// Run the `dma` workload.
pub fn run_dma(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let (memory, hugepages) = memory_args();
    let setup = SideSetup::prepare("dma", SHARED_ARGS, &memory, DPDK_ONLY_ARGS);
    let prefix = setup.prefix.as_str();
    let dpdk_missing = setup.dpdk_missing();
    let selection = opts.selection(&row_names());

    let mut dpmem: Vec<Cell> = SIZES.iter().map(|_| Cell::default()).collect();
    let mut dpdk: Vec<Cell> = SIZES.iter().map(|_| Cell::default()).collect();
    for rep in 0..reps {
        let mut sides = vec![ChildKind::DpmemDma];
        if dpdk_missing.is_none() {
            sides.push(ChildKind::DpdkDma);
        }
        if rep % 2 == 1 {
            sides.reverse();
        }
        for kind in sides {
            let (program, args, cells) = match kind {
                ChildKind::DpmemDma => (&setup.own, &setup.dpmem_args, &mut dpmem),
                _ => (&setup.dpdk, &setup.dpdk_args, &mut dpdk),
            };
            let lines = program.clone().and_then(|program| {
                child::run_lines(&program, kind, &selection, args, RESULT_MARKER)
            });
            crate::init::remove_leftovers(None, prefix);
            match lines.and_then(|lines| parse_child_lines(&lines, SIZES.len())) {
                Ok(rows) => {
                    for &i in selection.indices() {
                        cells[i].push(rows[i].clone());
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

    let rows = SIZES
        .iter()
        .zip(dpmem.into_iter().zip(dpdk))
        .enumerate()
        .filter(|(i, _)| selection.contains(*i))
        .map(|(_, (&len, (ours, theirs)))| Row {
            name: row_name(len),
            dpmem: ours.into_measurement(reps),
            dpdk: match dpdk_missing {
                Some(why) => Measurement::Missing(why.clone()),
                None => theirs.into_measurement(reps),
            },
            extra: vec![],
            note: None,
        })
        .collect();

    let mut notes = vec![
        format!(
            "each row: the main lcore queues up to {BURST} copies (fewer when the ring is \
             short), rings the doorbell and takes up to {MAX_REAP} completions (one pause when \
             it could do neither), over and over for {} ms, the clock read every \
             {BURSTS_PER_CHECK} bursts after a warm-up of as many; copies cycle through {SLOTS} \
             source and destination slots {SLOT_LEN} B apart (L2-resident); rate = copies \
             reported complete / time; every destination slot checked against its source after \
             the row",
            ROW_DURATION.as_millis()
        ),
        format!(
            "devices: dpmem-dma's software engine vs DPDK's {DPDK_DEVICE} vdev, one \
             memory-to-memory channel of {NB_DESC} descriptors; both copy on a control thread \
             of their EAL (the CPUs other than lcore 0's), the main lcore only queues and reaps"
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
        family: "dma".to_owned(),
        title: "copy engine: dpmem-dma vs DPDK's dma_skeleton, enqueue + submit + completed"
            .to_owned(),
        unit: "million copies per second".to_owned(),
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
    fn rows_are_named_by_size() {
        assert_eq!(
            row_names(),
            [
                "copy 64 B burst 32",
                "copy 1 KiB burst 32",
                "copy 4 KiB burst 32"
            ]
        );
        assert!(SIZES.iter().all(|&s| s <= SLOT_LEN));
        assert!(NB_DESC.is_power_of_two() && BURST <= NB_DESC);
    }

    #[test]
    fn child_lines_round_trip_rates_and_errors() {
        let lines: Vec<String> = [
            "DPMEM_BENCH_DMA row 0 rate 12.5",
            "DPMEM_BENCH_DMA row 2 error no dmadev",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows = parse_child_lines(&lines, 3).unwrap();
        assert_eq!(rows[0], Ok(12.5));
        assert!(rows[1].is_err());
        assert_eq!(rows[2], Err("no dmadev".to_owned()));
        assert!(parse_child_lines(&["DPMEM_BENCH_DMA row 5 rate 1".to_owned()], 3).is_err());
        assert!(parse_child_lines(&["DPMEM_BENCH_DMA pool 1".to_owned()], 3).is_err());
    }

    /// dpmem's side end to end on ordinary pages: every row runs and moves copies.
    #[test]
    fn dpmem_side_runs_every_row() {
        let prefix = format!("dma_bench_test_{}", std::process::id());
        let args: Vec<String> = ["bench", "-l", "0", "--no-huge", "-m", "64", "--file-prefix"]
            .iter()
            .map(|s| s.to_string())
            .chain([prefix.clone()])
            .collect();
        let eal = Eal::init(&args).unwrap();
        let mut dev = DmaDevice::create(&eal, "bench_dma_test").unwrap();
        dev.configure(DmaConf::new(1)).unwrap();
        dev.vchan_setup(0, VchanConf::mem_to_mem(NB_DESC as u16))
            .unwrap();
        dev.start().unwrap();
        let len = (SLOTS * SLOT_LEN) as usize;
        let src = eal.memzones().request("t_dma_src", len).reserve().unwrap();
        let dst = eal.memzones().request("t_dma_dst", len).reserve().unwrap();
        // SAFETY: the memzones are this test's, SLOTS * SLOT_LEN bytes each.
        unsafe { std::ptr::write_bytes(src.as_ptr(), 0x5a, len) };
        let slots = Slots {
            src: src.iova.unwrap(),
            dst: dst.iova.unwrap(),
            src_va: src.as_ptr(),
            dst_va: dst.as_ptr(),
        };
        let mut vchan = dev.vchan(0).unwrap();
        for len in SIZES {
            let count = dpmem_row(&mut vchan, &slots, len, Duration::from_millis(5)).unwrap();
            assert!(count.copies > 0 && count.elapsed_ns > 0);
            assert!(rate_mops(count) > 0.0);
        }
        assert_eq!(vchan.in_flight(), 0);
    }
}
