//! Two lcores pass frames without copying them: a worker lcore takes frame buffers from a
//! mempool, writes each one (a sequence number and a payload), and enqueues only the frame's
//! address on a ring; the main lcore dequeues the address, checks the frame in place and puts
//! the buffer back in the pool. Both ends take their lcore's mempool cache once
//! (`Mempool::lcore_cache`), as a DPDK data path takes `rte_mempool_default_cache`.
//!
//! ```sh
//! cargo run --release -p dpmem --example frame_pipeline
//! ```
//!
//! It runs on hugepages when a hugetlbfs mount has free 2 MiB pages, on ordinary memory
//! (`--no-huge`) otherwise.

use std::time::Instant;

use dpmem::eal::{Eal, SOCKET_ID_ANY};
use dpmem::mempool::{Mempool, MempoolFlags};
use dpmem::ring::{named, RingFlags};

/// Bytes per frame buffer.
const FRAME_BYTES: u32 = 2048;
/// Frames in the pool.
const FRAMES: u32 = 4095;
/// Frames the worker sends.
const SEND: u64 = 2_000_000;
/// Frames moved per enqueue or dequeue.
const BURST: usize = 32;

/// What the worker writes at the start of each frame; the rest of the frame is payload.
#[repr(C)]
struct FrameHeader {
    seq: u64,
    /// Sum of the payload bytes, checked by the receiver.
    checksum: u64,
}

fn eal_args() -> Vec<String> {
    let free_2m: u64 =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    let mut args: Vec<String> = ["frame_pipeline", "-l", "0-1", "-m", "64", "--in-memory"]
        .map(String::from)
        .to_vec();
    if free_2m < 40 || !dpmem::sys::process::is_root() {
        args.push("--no-huge".into());
    }
    args
}

/// Writes frame `seq` into `frame` (FRAME_BYTES bytes).
fn fill(frame: *mut u8, seq: u64) {
    // SAFETY: a frame buffer of FRAME_BYTES bytes that this lcore took from the pool.
    let bytes = unsafe { std::slice::from_raw_parts_mut(frame, FRAME_BYTES as usize) };
    let (head, payload) = bytes.split_at_mut(core::mem::size_of::<FrameHeader>());
    let mut sum = 0u64;
    for (i, b) in payload.iter_mut().enumerate().step_by(61) {
        *b = (seq as usize ^ i) as u8;
        sum += u64::from(*b);
    }
    let header = FrameHeader { seq, checksum: sum };
    // SAFETY: `head` is size_of::<FrameHeader>() bytes; pool objects are cache-line aligned.
    unsafe { head.as_mut_ptr().cast::<FrameHeader>().write(header) };
}

/// Checks frame `frame` in place: its sequence number must be `expect`; returns it.
fn check(frame: *const u8, expect: u64) -> u64 {
    // SAFETY: a frame the worker filled and handed over through the ring.
    let bytes = unsafe { std::slice::from_raw_parts(frame, FRAME_BYTES as usize) };
    let (head, payload) = bytes.split_at(core::mem::size_of::<FrameHeader>());
    // SAFETY: the worker wrote a FrameHeader at the start of the frame.
    let header = unsafe { head.as_ptr().cast::<FrameHeader>().read() };
    assert_eq!(header.seq, expect, "frames arrive in order");
    let sum: u64 = payload.iter().step_by(61).map(|b| u64::from(*b)).sum();
    assert_eq!(sum, header.checksum, "frame {expect} arrived intact");
    header.seq
}

fn main() {
    let eal: &'static Eal = Box::leak(Box::new(Eal::init(eal_args()).expect("EAL init")));
    let pool: &'static Mempool<'static> = Box::leak(Box::new(
        Mempool::create(
            eal,
            "frames",
            FRAMES,
            FRAME_BYTES,
            256,
            0,
            SOCKET_ID_ANY,
            MempoolFlags::empty(),
        )
        .expect("frame pool"),
    ));
    // One producer, one consumer: the ring's single-thread modes.
    let ring = named::create::<usize>(
        eal,
        "frames_rx",
        1024,
        SOCKET_ID_ANY,
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
    )
    .expect("ring");
    let ring: &'static _ = Box::leak(Box::new(ring));

    let threads = eal.lcore_threads();
    let worker = threads
        .next_lcore(Some(threads.main_lcore()), true, false)
        .expect("a worker lcore (-l 0-1)");
    let start = Instant::now();
    let sender = threads
        .remote_launch(worker, move || {
            let mut cache = pool.lcore_cache().expect("the worker's cache");
            let mut producer = ring.producer().expect("the one producer");
            let mut burst = [core::ptr::null_mut(); BURST];
            let mut seq = 0u64;
            while seq < SEND {
                if cache.get_bulk(&mut burst).is_err() {
                    // Every frame is in flight: wait for the receiver to give some back.
                    std::hint::spin_loop();
                    continue;
                }
                for frame in burst {
                    fill(frame, seq);
                    seq += 1;
                }
                let addrs = burst.map(|f| f as usize);
                let mut sent = 0;
                while sent < BURST {
                    sent += producer.enqueue_burst(&addrs[sent..]).count as usize;
                }
            }
            seq
        })
        .expect("launch the worker");

    let mut cache = pool.lcore_cache().expect("the main lcore's cache");
    let mut consumer = ring.consumer().expect("the one consumer");
    let mut addrs = [0usize; BURST];
    let mut frames = [core::ptr::null_mut::<u8>(); BURST];
    let mut expect = 0u64;
    while expect < SEND {
        let got = consumer.dequeue_burst(&mut addrs).count as usize;
        for (frame, &addr) in frames.iter_mut().zip(&addrs[..got]) {
            *frame = addr as *mut u8;
            expect = check(*frame, expect) + 1;
        }
        // SAFETY: the frames came from this pool, and nothing uses them after this.
        unsafe { cache.put_bulk(&frames[..got]) };
    }
    let elapsed = start.elapsed();
    let sent = sender.wait().expect("the worker");
    drop(cache);
    assert_eq!(sent, SEND);
    let rate = SEND as f64 / elapsed.as_secs_f64() / 1e6;
    println!(
        "{SEND} frames of {FRAME_BYTES} B from lcore {worker} to lcore {} in {:.1} ms: \
         {rate:.1} M frames/s, every frame checked in place, none copied",
        threads.main_lcore(),
        elapsed.as_secs_f64() * 1e3
    );
    // Every buffer is back: in the pool's ring or in the lcores' caches.
    assert_eq!(pool.avail_count(), FRAMES, "{}", pool.dump());
    pool.audit().expect("pool audit");
    println!(
        "pool {:?}: {} of {FRAMES} buffers back, audit clean",
        pool.name(),
        pool.avail_count()
    );
}
