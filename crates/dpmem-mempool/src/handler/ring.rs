//! The ring handlers: the pool's free objects are the elements of a dpmem ring in a memzone
//! named `RG_MP_<pool name>`, sized to hold every object.

use dpmem_eal::Eal;
use dpmem_ring::named::{self, MemzoneMemory};
use dpmem_ring::{Ring, RingFlags};

use super::PoolContext;
use crate::sync::spin_wait;

/// Prefix of a pool's ring name (DPDK's `RTE_MEMPOOL_MZ_PREFIX`).
pub(crate) const RING_PREFIX: &str = "MP_";

/// The producer/consumer modes of the ring handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingKind {
    MpMc,
    SpSc,
    MpSc,
    SpMc,
    Rts,
    Hts,
}

impl RingKind {
    /// The ring's flags.
    ///
    /// Every kind but SP/SC keeps heads beside tails ([`RingFlags::HEAD_TAIL_TOGETHER`]): a
    /// pool's lcores both get and put, so on a multi-thread side they contend for the head
    /// and the tail alike, and one line moving between cores beats two. SP/SC is the
    /// pipeline case (one lcore puts, another gets), where apart is better.
    ///
    /// Every kind keeps the room left ([`RingFlags::CACHED_OTHER_TAIL`]; RTS and HTS sides
    /// do not use it): a get then reads the producers' line only when the objects it last
    /// saw there have run out, and a put the consumers' only when the room it saw has.
    /// Nothing here reads the counts a ring operation reports, the one thing the flag makes
    /// inexact.
    fn flags(self) -> RingFlags {
        let cached = RingFlags::CACHED_OTHER_TAIL;
        let modes = match self {
            RingKind::MpMc => RingFlags::NONE,
            RingKind::SpSc => return RingFlags::SP_ENQ | RingFlags::SC_DEQ | cached,
            RingKind::MpSc => RingFlags::SC_DEQ,
            RingKind::SpMc => RingFlags::SP_ENQ,
            RingKind::Rts => RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ,
            RingKind::Hts => RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
        };
        modes | RingFlags::HEAD_TAIL_TOGETHER | cached
    }
}

/// A process's handle on a pool's ring.
#[derive(Debug)]
pub(crate) struct RingStore<'eal> {
    ring: Ring<usize, MemzoneMemory<'eal>>,
}

impl<'eal> RingStore<'eal> {
    pub fn create(
        eal: &'eal Eal,
        pool: &PoolContext<'_>,
        kind: RingKind,
    ) -> Result<(u64, Self), String> {
        // Room for every object: capacity of a power-of-two ring is its size less one. An RTS
        // consumer tail moves only when the last overlapping dequeue finishes, so slots whose
        // objects were taken (and may already be coming back) can stay unreleased: up to one
        // more pool's worth. RTS rings get twice the room so a put never finds them full.
        //
        // The other kinds but HTS get at least half a pool of room beyond every object. A put
        // trusts the room it last saw (`CACHED_OTHER_TAIL`) and reads the consumers' line only
        // when that runs out; in a ring just big enough for the pool (DPDK's size) the room is
        // what the lcores hold, so with little held nearly every other put read it (two
        // cores, no cache, bulks of 32 and 32 held: median 0.93 of DPDK's rate in seven runs;
        // with the slack, 1.04 in eleven). The cost is 8 bytes per slot: a pool of 2^k - 1
        // objects (DPDK's usual sizes) gets 2^(k+1) slots instead of 2^k, twice the ring: the
        // whole ring is then about 1.5% of the pool's memory for objects of 1 KiB (the added
        // half under 0.8%), less for bigger objects; and the largest pool these kinds take
        // drops from 2^30 - 1 objects to about 715 million (RTS: 2^29 - 1).
        //
        // HTS sides never read the room kept (their head and tail move as one word), so the
        // slack would buy nothing: HTS rings are DPDK's size, for pools up to 2^30 - 1.
        let objects = match kind {
            RingKind::Rts => pool.size.saturating_mul(2),
            RingKind::Hts => pool.size,
            _ => pool.size.saturating_add(pool.size / 2),
        };
        let count = objects
            .saturating_add(1)
            .checked_next_power_of_two()
            .filter(|&slots| slots <= dpmem_ring::RING_SIZE_MAX)
            .ok_or_else(|| format!("a ring for {} objects would be too large", pool.size))?;
        let ring = named::create::<usize>(
            eal,
            &format!("{RING_PREFIX}{}", pool.name),
            count,
            pool.socket,
            kind.flags(),
        )
        .map_err(|e| e.to_string())?;
        let data = ring.raw().memory().memzone().va as u64;
        Ok((data, RingStore { ring }))
    }

    pub fn attach(eal: &'eal Eal, pool: &PoolContext<'_>) -> Result<Self, String> {
        // SAFETY: the ring was built by `create` for usize elements (object addresses).
        let ring = unsafe { named::lookup::<usize>(eal, &format!("{RING_PREFIX}{}", pool.name)) }
            .map_err(|e| e.to_string())?;
        if ring.raw().memory().memzone().va as u64 != pool.pool_data {
            return Err("the pool's ring is not the one its header names".to_owned());
        }
        Ok(RingStore { ring })
    }

    pub fn free(self, eal: &Eal) {
        // The pool's memzones are going away together; a failure here leaves a memzone
        // behind, which is reported by the memzone table rather than lost silently.
        let _ = named::free(eal, self.ring);
    }

    /// A multi-producer side needs no handle. On a single-producer ring the producer handle
    /// is exclusive: a second thread putting at the same time waits for it instead of
    /// corrupting the ring.
    #[inline(always)]
    pub fn enqueue(&self, objs: &[usize]) -> bool {
        if let Some(moved) = self.ring.mp_enqueue_bulk(objs) {
            return moved.count as usize == objs.len();
        }
        loop {
            if let Some(mut producer) = self.ring.try_producer() {
                return producer.enqueue_bulk(objs).count as usize == objs.len();
            }
            spin_wait();
        }
    }

    #[inline(always)]
    pub fn dequeue(&self, out: &mut [usize]) -> bool {
        if let Some(moved) = self.ring.mc_dequeue_bulk(out) {
            return moved.count as usize == out.len();
        }
        loop {
            if let Some(mut consumer) = self.ring.try_consumer() {
                return consumer.dequeue_bulk(out).count as usize == out.len();
            }
            spin_wait();
        }
    }

    pub fn count(&self) -> u32 {
        self.ring.count()
    }
}
