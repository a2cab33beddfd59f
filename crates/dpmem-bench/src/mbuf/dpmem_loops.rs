//! dpmem's side of the `mbuf` workload: the loops of `dpdk/csrc/dpdk_mbuf_shim.c`, written as
//! a Rust program would write them — the safe [`Mbuf`] handle wherever it has the operation,
//! the DPDK-named raw functions where a ported C loop would use them (a bulk free of packets
//! interleaved from two pools) — and timed the same way: the
//! monotonic clock and the TSC read around the loop.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use dpmem::eal::Eal;
use dpmem::ring::{HandleRing, RingFlags};
use dpmem_mbuf::free::free_bulk;
use dpmem_mbuf::{Burst, ExternalBuffer, Mbuf, MbufError, PktmbufPool};

use super::rows::{
    MbufRow, APPEND_LEN, BURST, COPY_LEN, EXT_LEN, HDR_LEN, PREPEND_LEN, RING_SIZE, SEQ_OFFSET,
};
use crate::clocks::{between, Elapsed, Stamp};
use crate::dpdk_loops::MbufShape;

/// Half a burst: what the mixed-pool row takes from each pool.
const HALF: usize = BURST / 2;

/// Turns a failed call into a row's error.
fn failed(what: &'static str) -> impl FnOnce(MbufError) -> String {
    move |e| format!("dpmem: {what}: {e}")
}

/// Waits until both lcores of the cross-core row are at the start line.
fn start_line(ready: &AtomicU32) {
    ready.fetch_add(1, Ordering::AcqRel);
    while ready.load(Ordering::Acquire) < 2 {
        core::hint::spin_loop();
    }
}

/// dpmem's pools and frame for the rows, made once per child.
pub(crate) struct DpmemMbufBench<'eal> {
    eal: &'eal Eal,
    main: PktmbufPool<'eal>,
    /// The mixed-pool row's second pool, with the main pool's geometry.
    other: PktmbufPool<'eal>,
    hdr: PktmbufPool<'eal>,
    /// Buffers with no room of their own, for external segments.
    chain: PktmbufPool<'eal>,
    /// The external frame the transmit rows attach pieces of (one burst's payloads); the
    /// handle holds its owner's reference for the child's life.
    frame: ExternalBuffer<'static>,
    template: [u8; HDR_LEN as usize],
}

impl std::fmt::Debug for DpmemMbufBench<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpmemMbufBench")
            .field("main", &self.main)
            .field("other", &self.other)
            .field("hdr", &self.hdr)
            .field("chain", &self.chain)
            .finish()
    }
}

impl<'eal> DpmemMbufBench<'eal> {
    /// The four pools of `shape` and the frame.
    pub(crate) fn new(eal: &'eal Eal, shape: &MbufShape) -> Result<Self, String> {
        let pool = |name: &str, room: u16| {
            PktmbufPool::builder(name, shape.buffers)
                .cache_size(shape.cache)
                .data_room(room)
                .create(eal)
                .map_err(|e| format!("dpmem: creating packet buffer pool {name}: {e}"))
        };
        Ok(DpmemMbufBench {
            eal,
            main: pool("bench_mbuf_main", shape.data_room)?,
            other: pool("bench_mbuf_other", shape.data_room)?,
            hdr: pool("bench_mbuf_hdr", shape.hdr_room)?,
            chain: pool("bench_mbuf_chain", 0)?,
            frame: ExternalBuffer::from_owner(vec![0u8; BURST * EXT_LEN as usize]),
            template: core::array::from_fn(|i| 0x40 + i as u8),
        })
    }

    /// One row, `ops` operations (a multiple of the burst) timed as one loop; every pool
    /// must be full before and after it.
    pub(crate) fn run(&self, row: MbufRow, ops: u64) -> Result<Elapsed, String> {
        if !ops.is_multiple_of(BURST as u64) {
            return Err(format!("{ops} operations: not a multiple of {BURST}"));
        }
        self.check_full("before")?;
        let elapsed = match row {
            MbufRow::AllocFree => self.alloc_free(ops),
            MbufRow::Bulk => self.bulk(ops),
            MbufRow::DataOps => self.data_ops(ops),
            MbufRow::Clone => self.clone_free(ops),
            MbufRow::Copy => self.copy_free(ops),
            MbufRow::Extbuf => self.extbuf(ops),
            MbufRow::TxPacket => self.tx_packet(ops),
            MbufRow::MixedPools => self.mixed_pools(ops),
            MbufRow::CrossCore => self.cross_core(ops),
        }?;
        self.check_full("after")?;
        Ok(elapsed)
    }

    /// Every buffer back in its pool (lcore caches count as in it).
    fn check_full(&self, when: &str) -> Result<(), String> {
        for pool in [&self.main, &self.other, &self.hdr, &self.chain] {
            if pool.avail_count() != pool.size() {
                return Err(format!(
                    "dpmem: pool {} holds {} of {} buffers {when} the row",
                    pool.name(),
                    pool.avail_count(),
                    pool.size()
                ));
            }
        }
        Ok(())
    }

    /// The packet the clone, copy and cross-core rows start from.
    fn source(&self) -> Result<Mbuf<'_>, String> {
        self.main
            .alloc_from_slice(&[0x5a; COPY_LEN as usize])
            .map_err(failed("source packet"))
    }

    fn alloc_free(&self, ops: u64) -> Result<Elapsed, String> {
        let start = Stamp::start();
        for _ in 0..ops {
            let packet = self.main.alloc().map_err(failed("alloc"))?;
            drop(packet);
        }
        Ok(between(start, Stamp::end()))
    }

    fn bulk(&self, ops: u64) -> Result<Elapsed, String> {
        let mut packets = Burst::<BURST>::new();
        let start = Stamp::start();
        for _ in 0..ops / BURST as u64 {
            self.main
                .alloc_burst(&mut packets, BURST)
                .map_err(failed("alloc_burst"))?;
            packets.clear();
        }
        Ok(between(start, Stamp::end()))
    }

    fn data_ops(&self, ops: u64) -> Result<Elapsed, String> {
        let mut packet = self.main.alloc().map_err(failed("alloc"))?;
        let start = Stamp::start();
        for i in 0..ops {
            packet.append(APPEND_LEN).map_err(failed("append"))?[0] = i as u8;
            packet.prepend(PREPEND_LEN).map_err(failed("prepend"))?[0] = i as u8;
            packet.adj(PREPEND_LEN).map_err(failed("adj"))?;
            packet.trim(APPEND_LEN).map_err(failed("trim"))?;
        }
        Ok(between(start, Stamp::end()))
    }

    fn clone_free(&self, ops: u64) -> Result<Elapsed, String> {
        let source = self.source()?;
        let start = Stamp::start();
        for _ in 0..ops {
            let clone = source.clone_in(&self.main).map_err(failed("clone_in"))?;
            drop(clone);
        }
        Ok(between(start, Stamp::end()))
    }

    fn copy_free(&self, ops: u64) -> Result<Elapsed, String> {
        let source = self.source()?;
        let start = Stamp::start();
        for _ in 0..ops {
            let copy = source
                .copy_in(&self.main, 0, u32::from(COPY_LEN))
                .map_err(failed("copy_in"))?;
            drop(copy);
        }
        Ok(between(start, Stamp::end()))
    }

    fn extbuf(&self, ops: u64) -> Result<Elapsed, String> {
        let start = Stamp::start();
        for i in 0..ops {
            let at = (i as usize % BURST) * EXT_LEN as usize;
            let packet = self
                .frame
                .attach(&self.chain, at, EXT_LEN)
                .map_err(failed("attach"))?;
            drop(packet);
        }
        Ok(between(start, Stamp::end()))
    }

    fn tx_packet(&self, ops: u64) -> Result<Elapsed, String> {
        let mut seq = 0u16;
        let mut headers = Burst::<BURST>::new();
        let start = Stamp::start();
        for _ in 0..ops / BURST as u64 {
            self.hdr
                .alloc_burst(&mut headers, BURST)
                .map_err(failed("alloc_burst"))?;
            for (i, header) in headers.iter_mut().enumerate() {
                let bytes = header.append(HDR_LEN).map_err(failed("append"))?;
                bytes.copy_from_slice(&self.template);
                bytes[SEQ_OFFSET..SEQ_OFFSET + 2].copy_from_slice(&seq.to_be_bytes());
                seq = seq.wrapping_add(1);
                let payload = self
                    .frame
                    .attach(&self.chain, i * EXT_LEN as usize, EXT_LEN)
                    .map_err(failed("attach"))?;
                header.chain(payload).map_err(|(e, _)| failed("chain")(e))?;
            }
            headers.clear();
        }
        Ok(between(start, Stamp::end()))
    }

    fn mixed_pools(&self, ops: u64) -> Result<Elapsed, String> {
        let mut firsts = Burst::<HALF>::new();
        let mut seconds = Burst::<HALF>::new();
        let start = Stamp::start();
        for _ in 0..ops / BURST as u64 {
            self.main
                .alloc_burst(&mut firsts, HALF)
                .map_err(failed("alloc_burst"))?;
            self.other
                .alloc_burst(&mut seconds, HALF)
                .map_err(failed("alloc_burst"))?;
            let mut raw = [core::ptr::null_mut(); BURST];
            for pair in raw.chunks_exact_mut(2) {
                let (Some(a), Some(b)) = (firsts.pop(), seconds.pop()) else {
                    unreachable!("both bursts hold {HALF}")
                };
                pair[0] = a.into_raw().as_ptr();
                pair[1] = b.into_raw().as_ptr();
            }
            // SAFETY: each pointer carries the reference its handle gave up and is freed once,
            // here; both pools are open (`self`).
            unsafe { free_bulk(&raw) };
        }
        Ok(between(start, Stamp::end()))
    }

    /// Clones made on the main lcore go through an SP/SC ring to the next lcore, which frees
    /// them; the time runs from the earlier start to the later end of the two loops.
    fn cross_core(&self, ops: u64) -> Result<Elapsed, String> {
        let threads = self.eal.lcore_threads();
        let worker = threads
            .next_lcore(Some(threads.main_lcore()), true, false)
            .ok_or("dpmem: the cross-core row needs a worker lcore (-l 0-1)")?;
        let source = self.source()?;
        let ring = HandleRing::<Mbuf<'_>>::new(
            "bench_mbuf_xcore",
            RING_SIZE,
            RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        )
        .map_err(|e| format!("dpmem: cross-core ring: {e}"))?;
        let ready = AtomicU32::new(0);
        // Set by either side when it stops early, so the other does not wait for it forever.
        let abort = AtomicBool::new(false);
        let (produced, consumed) = threads.scope(|s| {
            let consumer = s.launch(worker, || consume(&ring, ops, &ready, &abort));
            let Ok(consumer) = consumer else {
                return (
                    Err("dpmem: launching the consumer failed".to_owned()),
                    Ok(None),
                );
            };
            let produced = self.produce(&source, &ring, ops, &ready, &abort);
            if produced.is_err() {
                abort.store(true, Ordering::Release);
            }
            let consumed = consumer
                .join()
                .map_err(|e| format!("dpmem: consumer lcore: {e}"))
                .and_then(|r| r.map(Some));
            (produced, consumed)
        });
        let (main_start, main_end) = produced?;
        let Some((worker_start, worker_end)) = consumed? else {
            return Err("dpmem: the consumer did not run".to_owned());
        };
        let start = if worker_start.at < main_start.at {
            worker_start
        } else {
            main_start
        };
        let end = if worker_end.at > main_end.at {
            worker_end
        } else {
            main_end
        };
        Ok(between(start, end))
    }

    /// The main lcore's loop of the cross-core row: clone bursts of `BURST` and enqueue them.
    fn produce<'p>(
        &'p self,
        source: &Mbuf<'p>,
        ring: &HandleRing<Mbuf<'p>>,
        ops: u64,
        ready: &AtomicU32,
        abort: &AtomicBool,
    ) -> Result<(Stamp, Stamp), String> {
        let producer = ring.producer();
        start_line(ready);
        let mut producer = producer.map_err(|e| format!("dpmem: ring producer: {e}"))?;
        let mut batch = Vec::with_capacity(BURST);
        let start = Stamp::start();
        for _ in 0..ops / BURST as u64 {
            for _ in 0..BURST {
                batch.push(source.clone_in(&self.main).map_err(failed("clone_in"))?);
            }
            while !batch.is_empty() {
                if producer.enqueue_burst(&mut batch) == 0 {
                    if abort.load(Ordering::Acquire) {
                        return Err("dpmem: the consumer stopped early".to_owned());
                    }
                    core::hint::spin_loop();
                }
            }
        }
        Ok((start, Stamp::end()))
    }
}

/// The worker lcore's loop of the cross-core row: dequeue up to `BURST` packets at a time and
/// free each (by dropping it), until `ops` are freed.
fn consume(
    ring: &HandleRing<Mbuf<'_>>,
    ops: u64,
    ready: &AtomicU32,
    abort: &AtomicBool,
) -> Result<(Stamp, Stamp), String> {
    let consumer = ring.consumer();
    if consumer.is_err() {
        abort.store(true, Ordering::Release);
    }
    start_line(ready);
    let mut consumer = consumer.map_err(|e| format!("dpmem: ring consumer: {e}"))?;
    let mut got = Vec::with_capacity(BURST);
    let mut freed = 0u64;
    let start = Stamp::start();
    while freed < ops {
        let n = consumer.dequeue_burst(&mut got, BURST);
        if n == 0 {
            if abort.load(Ordering::Acquire) {
                return Err("dpmem: the producer stopped early".to_owned());
            }
            core::hint::spin_loop();
            continue;
        }
        freed += u64::from(n);
        got.clear();
    }
    Ok((start, Stamp::end()))
}
