//! Two lcores pass frames without copying them: a worker lcore takes frame buffers from a
//! pool, writes each one (a sequence number, a payload and its checksum), and moves the
//! frame's handle through a ring; the main lcore takes the handle, checks the frame in place,
//! and drops the handle, which puts the buffer back in its pool. No `unsafe`, no `'static`,
//! no pointers passed as integers: the worker borrows the pool and the ring through a scoped launch, and
//! frames travel as owning handles.
//!
//! ```sh
//! cargo run --release -p dpmem --example frame_pipeline            # 2 million frames
//! cargo run --release -p dpmem --example frame_pipeline -- 10000   # fewer
//! ```
//!
//! It runs on hugepages when this machine can give them and on ordinary memory otherwise
//! (saying so in one line), and leaves nothing behind: no hugepage file, no runtime directory.

use std::time::Instant;

use dpmem::prelude::*;

/// Bytes of payload per frame.
const PAYLOAD: usize = 2032;
/// Frames in the pool.
const FRAMES: u32 = 4095;
/// Frames moved per enqueue or dequeue.
const BURST: usize = 32;

/// A frame buffer: a 2 KiB object of the pool.
#[derive(Clone, Copy)]
#[repr(C)]
struct Frame {
    seq: u64,
    /// Sum of the payload bytes, checked by the receiver.
    checksum: u64,
    payload: [u8; PAYLOAD],
}

impl Frame {
    /// Writes frame `seq`.
    fn fill(&mut self, seq: u64) {
        let mut sum = 0u64;
        for (i, b) in self.payload.iter_mut().enumerate().step_by(61) {
            *b = (seq as usize ^ i) as u8;
            sum += u64::from(*b);
        }
        self.seq = seq;
        self.checksum = sum;
    }

    /// Checks the frame in place: it is frame `expect`, intact.
    fn check(&self, expect: u64) {
        assert_eq!(self.seq, expect, "frames arrive in order");
        let sum: u64 = self.payload.iter().step_by(61).map(|&b| u64::from(b)).sum();
        assert_eq!(sum, self.checksum, "frame {expect} arrived intact");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let send: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|e| format!("frame count {n:?}: {e}"))?,
        None => 2_000_000,
    };
    let memory = DefaultMemory::detect(64);
    if let Some(note) = memory.note() {
        eprintln!("frame_pipeline: {note}");
    }
    let mut args = vec!["frame_pipeline".to_owned(), "-l".into(), "0-1".into()];
    args.extend(memory.eal_args());
    args.extend([
        "--file-prefix".into(),
        format!("frame-pipeline-{}", std::process::id()),
    ]);
    let eal = Eal::init(args)?;

    let frames = TypedMempool::builder("frames", FRAMES)
        .cache_size(256)
        .create(&eal, |_| Frame {
            seq: 0,
            checksum: 0,
            payload: [0; PAYLOAD],
        })?;
    // One producer, one consumer: the ring's single-thread modes.
    let ring = HandleRing::new("frames_rx", 1024, RingFlags::SP_ENQ | RingFlags::SC_DEQ)?;

    let threads = eal.lcore_threads();
    let worker = threads
        .worker_ids()
        .next()
        .ok_or("frame_pipeline needs a worker lcore (-l 0-1)")?;
    let start = Instant::now();
    let sent = threads.scope(|scope| -> Result<u64, Box<dyn std::error::Error>> {
        let sender = scope.launch(worker, || {
            let mut tx = ring.producer().expect("the one producer");
            let mut batch = Vec::with_capacity(BURST);
            let mut seq = 0u64;
            while seq < send {
                let Ok(burst) = frames.get_array::<BURST>() else {
                    // Every frame is in flight: wait for the receiver to give some back.
                    std::hint::spin_loop();
                    continue;
                };
                for mut frame in burst {
                    if seq < send {
                        frame.fill(seq);
                        seq += 1;
                        batch.push(frame);
                    } // the frames of the last burst not needed go straight back
                }
                while !batch.is_empty() {
                    tx.enqueue_burst(&mut batch);
                }
            }
            seq
        })?;
        let mut rx = ring.consumer()?;
        let mut batch = Vec::with_capacity(BURST);
        let mut expect = 0u64;
        while expect < send {
            rx.dequeue_burst(&mut batch, BURST);
            for frame in batch.drain(..) {
                frame.check(expect);
                expect += 1;
            } // each handle dropped here puts its frame back in the pool
        }
        Ok(sender.join()?)
    })?;
    let elapsed = start.elapsed();
    assert_eq!(sent, send);
    let rate = send as f64 / elapsed.as_secs_f64() / 1e6;
    println!(
        "{send} frames of {} B from lcore {worker} to lcore {} in {:.1} ms: {rate:.1} M frames/s, \
         every frame checked in place, none copied",
        std::mem::size_of::<Frame>(),
        threads.main_lcore(),
        elapsed.as_secs_f64() * 1e3
    );
    // Every buffer is back: in the pool's store or in the lcores' caches.
    assert_eq!(
        frames.raw().avail_count(),
        FRAMES,
        "{}",
        frames.raw().dump()
    );
    frames.raw().audit()?;
    println!(
        "pool {:?}: {} of {FRAMES} buffers back, audit clean",
        frames.raw().name(),
        frames.raw().avail_count()
    );
    Ok(())
}
