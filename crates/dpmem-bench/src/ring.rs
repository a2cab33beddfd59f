//! The `ring` workload: `ring_perf_autotest`'s rows on dpmem's ring, DPDK 22.11's
//! `rte_ring`, and the Rust queues users would otherwise pick.
//!
//! | rows | what one iteration does |
//! | ---- | ----------------------- |
//! | `1c single` | enqueue one element, dequeue one |
//! | `1c burst N` / `1c bulk N` | enqueue N, dequeue N (burst: as many as fit; bulk: all or none) |
//! | `2c bulk N` | one thread pinned to CPU 0 enqueues bulks of N, one pinned to CPU 1 dequeues them |
//!
//! each for pointer-sized and 16-byte elements, SP/SC and MP/MC, on a 4096-slot ring. The
//! unit is TSC cycles per element (for two cores, the mean of the two threads' loops, as the
//! autotest reports). Every loop has the shape of the C one: one-core loops run pinned to
//! CPU 0 (DPDK's main lcore) after the same warm-up, the element a single dequeue returns is
//! stored into the destination array as the C dequeue stores it, and the same `rdtsc` reads
//! bracket the loop. DPDK's loops run in C (`dpdk/csrc/dpdk_shim.c`) in a
//! `dpmem-bench-dpdk` child with its own EAL (`--no-huge`: the rings fit in L1, so page size
//! does not matter), one child per repetition, interleaved with dpmem's and the peers' runs
//! so that load from other processes hits every column alike.
//!
//! Peers: crossbeam-queue's `ArrayQueue` (MPMC, one element per call, so bulk and burst
//! are loops) and rtrb's `RingBuffer` (SPSC only; bulk and burst through its chunk API).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

use dpmem::ring::{Ring, RingFlags};

use crate::child::{ChildArgs, ChildKind};
use crate::dpdk_loops::DpdkLoops;
use crate::dpdk_runner::{self, DpdkRunner};
use crate::report::{Measurement, Report, Row};
use crate::row_selection::RowSelection;
use crate::stats::median;
use crate::tsc::tsc;
use crate::BenchOptions;

/// Slots of every ring and queue (the autotest's `RING_SIZE`).
const RING_SIZE: u32 = 4096;

/// Elements moved per measurement; iterations are this over the batch size.
const ELEMS_PER_RUN: u64 = 1 << 20;

/// Largest batch of any row, and so the length of every loop's source and destination
/// buffer (the shim's `RING_BENCH_MAX_BATCH`).
const MAX_BATCH: usize = 32;

/// A loop's source or destination buffer, on a cache line of its own.
///
/// Each side states its buffers' alignment rather than take the compiler's: C puts a local
/// array of 16 bytes or more on a 16-byte boundary, Rust gives `[[u64; 2]; 32]` its
/// element's 8 (the profile of the 16-byte rows found it 8 bytes off a 16-byte boundary,
/// where every fourth 16-byte move of a batch straddles two cache lines). The C shim's
/// buffers are cache-aligned the same way, so both sides copy between the same addresses
/// modulo a line.
#[repr(C, align(64))]
struct Batch<T>([T; MAX_BATCH]);

impl<T: Copy + Default> Default for Batch<T> {
    fn default() -> Batch<T> {
        Batch([T::default(); MAX_BATCH])
    }
}

/// Marker of the DPDK child's result lines: `DPMEM_BENCH_RING <row> <cycles per elem>`.
const RESULT_MARKER: &str = "DPMEM_BENCH_RING";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Single,
    Burst,
    Bulk,
}

impl Op {
    /// The shim's code for it.
    fn code(self) -> i32 {
        match self {
            Op::Single => 0,
            Op::Burst => 1,
            Op::Bulk => 2,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct RowSpec {
    /// 8 (pointers) or 16 bytes.
    esize: u32,
    single_thread: bool,
    op: Op,
    n: u32,
    two_cores: bool,
}

impl RowSpec {
    fn name(&self) -> String {
        let elem = if self.esize == 8 { "ptr" } else { "16B" };
        let sync = if self.single_thread { "SP/SC" } else { "MP/MC" };
        let cores = if self.two_cores { "2c" } else { "1c" };
        let what = match self.op {
            Op::Single => "single".to_owned(),
            Op::Burst => format!("burst {}", self.n),
            Op::Bulk => format!("bulk {}", self.n),
        };
        format!("{elem} {sync} {cores} {what}")
    }

    fn iterations(&self) -> u64 {
        ELEMS_PER_RUN / u64::from(self.n)
    }

    fn elements(&self) -> f64 {
        (self.iterations() * u64::from(self.n)) as f64
    }
}

fn rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for esize in [8, 16] {
        for single_thread in [true, false] {
            let row = |op, n, two_cores| RowSpec {
                esize,
                single_thread,
                op,
                n,
                two_cores,
            };
            rows.push(row(Op::Single, 1, false));
            for n in [8, 32] {
                rows.push(row(Op::Burst, n, false));
            }
            for n in [8, 32] {
                rows.push(row(Op::Bulk, n, false));
            }
            for n in [8, 32] {
                rows.push(row(Op::Bulk, n, true));
            }
        }
    }
    rows
}

/// The rows' names, in the order [`RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    rows().iter().map(RowSpec::name).collect()
}

/// Pin the calling thread to `cpu` (best effort: a cpuset without it leaves it unpinned).
fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// The enqueue half of a queue under test.
trait Put<T>: Send {
    fn single(&mut self, v: T) -> bool;
    fn bulk(&mut self, items: &[T]) -> bool;
    fn burst(&mut self, items: &[T]) -> usize;
}

/// The dequeue half of a queue under test.
trait Take<T>: Send {
    fn single(&mut self) -> Option<T>;
    fn bulk(&mut self, out: &mut [T]) -> bool;
    fn burst(&mut self, out: &mut [T]) -> usize;
}

impl<T: Copy + Send + Sync> Put<T> for dpmem::ring::Producer<'_, T> {
    #[inline(always)]
    fn single(&mut self, v: T) -> bool {
        self.enqueue(v).is_ok()
    }
    #[inline(always)]
    fn bulk(&mut self, items: &[T]) -> bool {
        self.enqueue_bulk(items).count != 0
    }
    #[inline(always)]
    fn burst(&mut self, items: &[T]) -> usize {
        self.enqueue_burst(items).count as usize
    }
}

impl<T: Copy + Send + Sync> Take<T> for dpmem::ring::Consumer<'_, T> {
    #[inline(always)]
    fn single(&mut self) -> Option<T> {
        self.dequeue()
    }
    #[inline(always)]
    fn bulk(&mut self, out: &mut [T]) -> bool {
        self.dequeue_bulk(out).count != 0
    }
    #[inline(always)]
    fn burst(&mut self, out: &mut [T]) -> usize {
        self.dequeue_burst(out).count as usize
    }
}

/// crossbeam's ArrayQueue has no batch calls: a batch is a loop of single ones.
struct ArrayQueueSide<'q, T>(&'q crossbeam_queue::ArrayQueue<T>);

impl<T: Copy + Send> Put<T> for ArrayQueueSide<'_, T> {
    #[inline(always)]
    fn single(&mut self, v: T) -> bool {
        self.0.push(v).is_ok()
    }
    #[inline(always)]
    fn bulk(&mut self, items: &[T]) -> bool {
        // Not all-or-nothing (ArrayQueue cannot do that); the rows never hit a full queue
        // mid-batch on one core, and on two cores a full queue is retried element-wise.
        for v in items {
            while self.0.push(*v).is_err() {
                core::hint::spin_loop();
            }
        }
        true
    }
    #[inline(always)]
    fn burst(&mut self, items: &[T]) -> usize {
        items
            .iter()
            .take_while(|v| self.0.push(**v).is_ok())
            .count()
    }
}

impl<T: Copy + Send> Take<T> for ArrayQueueSide<'_, T> {
    #[inline(always)]
    fn single(&mut self) -> Option<T> {
        self.0.pop()
    }
    #[inline(always)]
    fn bulk(&mut self, out: &mut [T]) -> bool {
        for slot in out.iter_mut() {
            loop {
                if let Some(v) = self.0.pop() {
                    *slot = v;
                    break;
                }
                core::hint::spin_loop();
            }
        }
        true
    }
    #[inline(always)]
    fn burst(&mut self, out: &mut [T]) -> usize {
        let mut n = 0;
        for slot in out.iter_mut() {
            match self.0.pop() {
                Some(v) => *slot = v,
                None => break,
            }
            n += 1;
        }
        n
    }
}

impl<T: Copy + Send> Put<T> for rtrb::Producer<T> {
    #[inline(always)]
    fn single(&mut self, v: T) -> bool {
        self.push(v).is_ok()
    }
    #[inline(always)]
    fn bulk(&mut self, items: &[T]) -> bool {
        match self.write_chunk_uninit(items.len()) {
            Ok(chunk) => {
                chunk.fill_from_iter(items.iter().copied());
                true
            }
            Err(_) => false,
        }
    }
    #[inline(always)]
    fn burst(&mut self, items: &[T]) -> usize {
        let n = items.len().min(self.slots());
        match self.write_chunk_uninit(n) {
            Ok(chunk) => chunk.fill_from_iter(items.iter().copied()),
            Err(_) => 0,
        }
    }
}

impl<T: Copy + Send> Take<T> for rtrb::Consumer<T> {
    #[inline(always)]
    fn single(&mut self) -> Option<T> {
        self.pop().ok()
    }
    #[inline(always)]
    fn bulk(&mut self, out: &mut [T]) -> bool {
        match self.read_chunk(out.len()) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                out[..a.len()].copy_from_slice(a);
                out[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
                true
            }
            Err(_) => false,
        }
    }
    #[inline(always)]
    fn burst(&mut self, out: &mut [T]) -> usize {
        let n = out.len().min(self.slots());
        match self.read_chunk(n) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                out[..a.len()].copy_from_slice(a);
                out[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
                n
            }
            Err(_) => 0,
        }
    }
}

/// One core: `iters` times put `n` then take `n`; TSC cycles of the loop.
#[inline(never)]
fn one_core<T: Copy + Default, P: Put<T>, C: Take<T>>(
    p: &mut P,
    c: &mut C,
    op: Op,
    n: u32,
    iters: u64,
) -> u64 {
    let src = Batch::<T>::default();
    let mut dst = Batch::<T>::default();
    let n = n as usize;
    let start = tsc();
    match op {
        Op::Single => {
            // The element goes to dst[0], as the C loop's dequeue writes it there: a
            // `black_box` per iteration instead would be a compiler barrier per element,
            // which the C loop does not have.
            for _ in 0..iters {
                p.single(src.0[0]);
                if let Some(v) = c.single() {
                    dst.0[0] = v;
                }
            }
        }
        Op::Burst => {
            for _ in 0..iters {
                p.burst(&src.0[..n]);
                c.burst(&mut dst.0[..n]);
            }
        }
        Op::Bulk => {
            for _ in 0..iters {
                p.bulk(&src.0[..n]);
                c.bulk(&mut dst.0[..n]);
            }
        }
    }
    let cycles = tsc() - start;
    black_box(&dst);
    cycles
}

/// Two cores: a thread on CPU 0 puts `iters` bulks of `n`, one on CPU 1 takes them;
/// TSC cycles of (putter, taker).
fn two_cores<T: Copy + Default + Send, P: Put<T>, C: Take<T>>(
    mut p: P,
    mut c: C,
    n: u32,
    iters: u64,
) -> (u64, u64) {
    let (ready, go) = (AtomicBool::new(false), AtomicBool::new(false));
    let n = n as usize;
    std::thread::scope(|s| {
        let (ready, go) = (&ready, &go);
        let taker = s.spawn(move || {
            pin_to(1);
            let mut dst = Batch::<T>::default();
            ready.store(true, Ordering::Release);
            while !go.load(Ordering::Acquire) {
                core::hint::spin_loop();
            }
            let start = tsc();
            for _ in 0..iters {
                while !c.bulk(&mut dst.0[..n]) {
                    core::hint::spin_loop();
                }
            }
            let cycles = tsc() - start;
            black_box(&dst);
            cycles
        });
        let putter = s.spawn(move || {
            pin_to(0);
            let src = Batch::<T>::default();
            // Both loops start together (the C harness waits for its worker the same way).
            while !ready.load(Ordering::Acquire) {
                core::hint::spin_loop();
            }
            go.store(true, Ordering::Release);
            let start = tsc();
            for _ in 0..iters {
                while !p.bulk(&src.0[..n]) {
                    core::hint::spin_loop();
                }
            }
            tsc() - start
        });
        (
            putter.join().expect("putter thread"),
            taker.join().expect("taker thread"),
        )
    })
}

/// Cycles per element of one measurement of `row` on any queue's halves.
fn measure<T: Copy + Default + Send, P: Put<T>, C: Take<T>>(
    row: &RowSpec,
    mut p: P,
    mut c: C,
) -> f64 {
    if row.two_cores {
        // The C side's rings have served the one-core rows before the two-core ones, so
        // their pages are mapped and their slots cached; one lap through every slot gives
        // this fresh queue the same start (no first-touch page faults inside the loop).
        one_core(
            &mut p,
            &mut c,
            Op::Bulk,
            row.n,
            u64::from(RING_SIZE / row.n),
        );
        let (a, b) = two_cores(p, c, row.n, row.iterations());
        (a + b) as f64 / 2.0 / row.elements()
    } else {
        // On CPU 0, where DPDK's main lcore runs the same loop: an unpinned thread may be
        // moved between CPUs mid-measurement, which the pinned C loop never is.
        std::thread::scope(|s| {
            s.spawn(|| {
                pin_to(0);
                // A short warm-up so the first run does not pay for cold caches and branch
                // predictors the others do not.
                one_core(&mut p, &mut c, row.op, row.n, row.iterations() / 16);
                one_core(&mut p, &mut c, row.op, row.n, row.iterations()) as f64 / row.elements()
            })
            .join()
            .expect("one-core thread")
        })
    }
}

fn dpmem_run<T: Copy + Default + Send + Sync>(row: &RowSpec) -> Result<f64, String> {
    let flags = if row.single_thread {
        RingFlags::SP_ENQ | RingFlags::SC_DEQ
    } else {
        RingFlags::NONE
    };
    let ring = Ring::<T>::new("bench", RING_SIZE, flags).map_err(|e| e.to_string())?;
    let p = ring.producer().map_err(|e| e.to_string())?;
    let c = ring.consumer().map_err(|e| e.to_string())?;
    Ok(measure(row, p, c))
}

fn array_queue_run<T: Copy + Default + Send>(row: &RowSpec) -> f64 {
    let q = crossbeam_queue::ArrayQueue::<T>::new(RING_SIZE as usize);
    measure(row, ArrayQueueSide(&q), ArrayQueueSide(&q))
}

fn rtrb_run<T: Copy + Default + Send>(row: &RowSpec) -> f64 {
    let (p, c) = rtrb::RingBuffer::<T>::new(RING_SIZE as usize);
    measure(row, p, c)
}

/// Element types: a pointer-sized integer (what `void *` costs to copy) and 16 bytes.
type PtrElem = usize;
type Elem16 = [u64; 2];

fn by_esize<R>(row: &RowSpec, ptr: impl FnOnce() -> R, e16: impl FnOnce() -> R) -> R {
    if row.esize == 8 {
        ptr()
    } else {
        e16()
    }
}

/// Child side: init DPDK, run every selected row once, print one result line per row.
pub(crate) fn dpdk_child(child: &ChildArgs, dpdk: &dyn DpdkLoops) -> i32 {
    let specs = rows();
    let selection = match child.rows(specs.len()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if let Err(e) = dpdk.ring_eal_init(&child.eal_args) {
        eprintln!("{e}");
        return 1;
    }
    for &i in selection.indices() {
        let row = &specs[i];
        let result = if row.two_cores {
            dpdk.ring_two_cores(row.esize, row.single_thread, row.n, row.iterations())
                .map(|(a, b)| (a + b) as f64 / 2.0 / row.elements())
        } else {
            let run = |iters| {
                dpdk.ring_one_core(row.esize, row.single_thread, row.op.code(), row.n, iters)
            };
            run(row.iterations() / 16)
                .and_then(|_| run(row.iterations()).map(|c| c as f64 / row.elements()))
        };
        match result {
            Ok(v) => println!("{RESULT_MARKER} {i} {v}"),
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    }
    0
}

/// One rep of DPDK's side: cycles per element of every selected row, by row index.
fn dpdk_rep(
    runner: &DpdkRunner,
    prefix: &str,
    selection: &RowSelection,
    rows: usize,
) -> Result<Vec<f64>, String> {
    let args: Vec<String> = [
        "-l",
        "0-1",
        "--no-pci",
        "--no-telemetry",
        "--log-level=error",
        "--no-huge",
        "-m",
        "64",
        "--file-prefix",
        prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let lines = runner.run_lines(ChildKind::DpdkRing, selection, &args, RESULT_MARKER);
    crate::init::remove_leftovers(None, prefix);
    let mut values = vec![f64::NAN; rows];
    for line in lines? {
        let mut words = line.split_whitespace().skip(1);
        let (Some(i), Some(v)) = (words.next(), words.next()) else {
            return Err(format!("malformed child line {line:?}"));
        };
        let i: usize = i
            .parse()
            .map_err(|_| format!("malformed child line {line:?}"))?;
        let v: f64 = v
            .parse()
            .map_err(|_| format!("malformed child line {line:?}"))?;
        if i < rows {
            values[i] = v;
        }
    }
    if selection.indices().iter().any(|&i| values[i].is_nan()) {
        return Err("the DPDK child reported fewer rows than asked".to_owned());
    }
    Ok(values)
}

/// Run the `ring` workload.
pub fn run_ring(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    let specs = rows();
    let selection = opts.selection(&row_names());
    let prefix = format!("dpmem-bench-ring-{}", std::process::id());
    let runner = DpdkRunner::find();

    let mut dpmem = vec![Vec::new(); specs.len()];
    let mut dpdk = vec![Vec::new(); specs.len()];
    let mut array_queue = vec![Vec::new(); specs.len()];
    let mut rtrb = vec![Vec::new(); specs.len()];
    let mut dpmem_failure: Vec<Option<String>> = vec![None; specs.len()];
    let mut dpdk_failure: Option<String> = runner.as_ref().err().cloned();

    for _ in 0..reps {
        if let (None, Ok(runner)) = (&dpdk_failure, &runner) {
            match dpdk_rep(runner, &prefix, &selection, specs.len()) {
                Ok(values) => {
                    for &i in selection.indices() {
                        dpdk[i].push(values[i]);
                    }
                }
                Err(e) => dpdk_failure = Some(e),
            }
        }
        for &i in selection.indices() {
            let row = &specs[i];
            match by_esize(
                row,
                || dpmem_run::<PtrElem>(row),
                || dpmem_run::<Elem16>(row),
            ) {
                Ok(v) => dpmem[i].push(v),
                Err(e) => dpmem_failure[i] = Some(e),
            }
            array_queue[i].push(by_esize(
                row,
                || array_queue_run::<PtrElem>(row),
                || array_queue_run::<Elem16>(row),
            ));
            if row.single_thread {
                rtrb[i].push(by_esize(
                    row,
                    || rtrb_run::<PtrElem>(row),
                    || rtrb_run::<Elem16>(row),
                ));
            }
        }
    }

    let cell = |samples: &[f64], failure: Option<&String>| match (failure, median(samples)) {
        (Some(e), _) => Measurement::Missing(e.clone()),
        (None, Some(m)) => Measurement::Value(m),
        (None, None) => Measurement::Missing("not measured".to_owned()),
    };
    let rows = selection
        .indices()
        .iter()
        .map(|&i| {
            let spec = &specs[i];
            let ours = cell(&dpmem[i], dpmem_failure[i].as_ref());
            let aq = cell(&array_queue[i], None);
            let speedup = match (aq.value(), ours.value()) {
                (Some(a), Some(d)) if d > 0.0 => Measurement::Value(a / d),
                _ => Measurement::Missing("needs both".to_owned()),
            };
            Row {
                name: spec.name(),
                dpmem: ours,
                dpdk: cell(&dpdk[i], dpdk_failure.as_ref()),
                extra: vec![
                    aq,
                    speedup,
                    if spec.single_thread {
                        cell(&rtrb[i], None)
                    } else {
                        Measurement::Missing("rtrb is SPSC only".to_owned())
                    },
                ],
                note: None,
            }
        })
        .collect();

    Report {
        family: "ring".to_owned(),
        title: "ring_perf_autotest rows, 4096-slot rings".to_owned(),
        unit: "TSC cycles per element".to_owned(),
        reps,
        dpdk_build: dpdk_runner::build_text(&runner),
        extra_columns: vec![
            "ArrayQueue".to_owned(),
            "ArrayQueue/dpmem".to_owned(),
            "rtrb".to_owned(),
        ],
        rows,
        notes: vec![
            "1c: enqueue then dequeue on one thread; 2c: enqueuer pinned to CPU 0, dequeuer \
             to CPU 1, cycles of both loops averaged"
                .to_owned(),
            "DPDK: rte_ring_{sp,mp}_enqueue_*/{sc,mc}_dequeue_* (16B: the _elem calls with \
             esize 16) in C, in a child with -l 0-1 --no-huge -m 64; one child per rep"
                .to_owned(),
            "ArrayQueue (crossbeam-queue) has no batch calls: bulk/burst rows loop single \
             push/pop; rtrb bulk/burst use its chunk API"
                .to_owned(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cover_the_autotest_grid_once_each() {
        let specs = rows();
        // 2 element sizes x 2 sync modes x (single + burst 8/32 + bulk 8/32 + 2c bulk 8/32).
        assert_eq!(specs.len(), 28);
        let mut names: Vec<String> = specs.iter().map(RowSpec::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 28);
        assert!(names.contains(&"16B MP/MC 2c bulk 32".to_owned()));
        assert!(specs.iter().all(|r| r.elements() == ELEMS_PER_RUN as f64));
    }

    #[test]
    fn every_queue_moves_what_it_was_given() {
        // The adapters must really move elements, or the timings would flatter them.
        let ring =
            Ring::<usize>::new("adapter", 64, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        let aq = crossbeam_queue::ArrayQueue::<usize>::new(64);
        let (mut rp, mut rc) = rtrb::RingBuffer::<usize>::new(64);
        let items: Vec<usize> = (1..=8).collect();
        let mut out = [0usize; 8];
        assert!(Put::bulk(&mut p, &items) && Take::bulk(&mut c, &mut out));
        assert_eq!(out.to_vec(), items);
        assert!(Put::bulk(&mut ArrayQueueSide(&aq), &items));
        assert_eq!(Take::burst(&mut ArrayQueueSide(&aq), &mut out), 8);
        assert_eq!(out.to_vec(), items);
        assert_eq!(Put::burst(&mut rp, &items), 8);
        out = [0; 8];
        assert!(Take::bulk(&mut rc, &mut out));
        assert_eq!(out.to_vec(), items);
    }
}
