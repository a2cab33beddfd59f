//! Creation flags, which select each side's sync mode ([`crate::mode`]), and what a call
//! asks for when not all of it fits ([`Behavior`]).

use crate::error::RingError;
use crate::mode::{ConsumerMode, ProducerMode};

bitflags::bitflags! {
    /// Creation flags, with DPDK 22.11's `RING_F_*` values so that a flag word reads the same
    /// in both.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RingFlags: u32 {
        /// Default producer is single-thread (`RING_F_SP_ENQ`).
        const SP_ENQ = 0x0001;
        /// Default consumer is single-thread (`RING_F_SC_DEQ`).
        const SC_DEQ = 0x0002;
        /// Capacity is exactly the count asked for (`RING_F_EXACT_SZ`); the slot array is the
        /// next power of two above it.
        const EXACT_SZ = 0x0004;
        /// Default producer is multi-thread, relaxed tail sync (`RING_F_MP_RTS_ENQ`).
        const MP_RTS_ENQ = 0x0008;
        /// Default consumer is multi-thread, relaxed tail sync (`RING_F_MC_RTS_DEQ`).
        const MC_RTS_DEQ = 0x0010;
        /// Default producer is multi-thread, head/tail sync (`RING_F_MP_HTS_ENQ`).
        const MP_HTS_ENQ = 0x0020;
        /// Default consumer is multi-thread, head/tail sync (`RING_F_MC_HTS_DEQ`).
        const MC_HTS_DEQ = 0x0040;
        /// dpmem's own, in a bit DPDK does not use: keep the head of each multi-thread side on
        /// the same cache line as its tail, as DPDK does, instead of on a 128-byte block of its
        /// own. Better when every thread both enqueues and dequeues (a mempool's ring: dpmem's
        /// mempool handlers set it); worse for a pipeline where some threads only produce and
        /// others only consume, where the consumers' polling of the tail would keep taking the
        /// producers' head away from them. A single-thread side keeps its head apart (its one
        /// thread contends with nobody for it; a per-call single-thread operation on a side whose
        /// head is beside its tail runs the multi-thread protocol, correct for one thread too).
        /// Only with [`RingFlags::CACHED_OTHER_TAIL`], the one combination it pays with. It
        /// changes where positions live, not which elements any operation moves.
        const HEAD_TAIL_TOGETHER = 0x1000_0000;

        /// dpmem's own, in a bit DPDK does not use: a single-thread or classic multi-thread
        /// claim that reads the other side's tail leaves, beside its head, how much room that tail
        /// showed beyond what it took; the next claim that fits in that room takes its slots
        /// without reading the other side's cache line at all. Only a claim that does not fit
        /// reads the tail, so no operation takes fewer elements than it would without the flag.
        ///
        /// What changes is the `remaining` count an operation reports (DPDK's `free_space` and
        /// `available`): when the room left sufficed, the true count is at least the one
        /// reported, rather than equal to it as of the claim. On two cores that share a ring
        /// this saves a cache-line transfer per operation whenever the ring is not nearly full or
        /// empty (dpmem's mempool handlers set it). RTS and HTS sides do not use it.
        const CACHED_OTHER_TAIL = 0x2000_0000;
    }
}

impl RingFlags {
    /// No flags: MP producers, MC consumers, power-of-two count.
    pub const NONE: RingFlags = RingFlags::empty();

    /// The producer and consumer modes these flags select, or why they conflict.
    pub fn modes(self) -> Result<(ProducerMode, ConsumerMode), RingError> {
        let bad = |reason| RingError::InvalidFlags {
            flags: self.bits(),
            reason,
        };
        if !Self::all().contains(self) {
            return Err(bad("unknown flag bits"));
        }
        if self.contains(Self::HEAD_TAIL_TOGETHER) && !self.contains(Self::CACHED_OTHER_TAIL) {
            return Err(bad("HEAD_TAIL_TOGETHER without CACHED_OTHER_TAIL"));
        }
        let producer = match (
            self.contains(Self::SP_ENQ),
            self.contains(Self::MP_RTS_ENQ),
            self.contains(Self::MP_HTS_ENQ),
        ) {
            (false, false, false) => ProducerMode::Mp,
            (true, false, false) => ProducerMode::Sp,
            (false, true, false) => ProducerMode::MpRts,
            (false, false, true) => ProducerMode::MpHts,
            _ => return Err(bad("more than one of SP_ENQ, MP_RTS_ENQ, MP_HTS_ENQ")),
        };
        let consumer = match (
            self.contains(Self::SC_DEQ),
            self.contains(Self::MC_RTS_DEQ),
            self.contains(Self::MC_HTS_DEQ),
        ) {
            (false, false, false) => ConsumerMode::Mc,
            (true, false, false) => ConsumerMode::Sc,
            (false, true, false) => ConsumerMode::McRts,
            (false, false, true) => ConsumerMode::McHts,
            _ => return Err(bad("more than one of SC_DEQ, MC_RTS_DEQ, MC_HTS_DEQ")),
        };
        Ok((producer, consumer))
    }
}

/// All-or-nothing or as-many-as-possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Bulk: move exactly `n` elements or none (`RTE_RING_QUEUE_FIXED`).
    Fixed,
    /// Burst: move as many as fit or are there, up to `n` (`RTE_RING_QUEUE_VARIABLE`).
    Variable,
}
