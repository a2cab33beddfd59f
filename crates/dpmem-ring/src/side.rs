//! The two sides of a ring: producers, who fill slots and publish them to consumers, and
//! consumers, who empty them and give them back.
//!
//! Everything done to one side is done to the other with the roles swapped: its own head
//! and tail, the other side's tail as the bound, and the room counted from the capacity
//! (free slots, for producers) or from nothing (filled slots, for consumers). [`Side`] names
//! a side as a value, for the paths that look it up as they go (peek, zero-copy, settings);
//! [`ProducerSide`] and [`ConsumerSide`] name it as a type, for the data path, which takes
//! the side as a type parameter ([`RingSide`]) so that each side compiles to code of its own,
//! the side a constant in it (the `match` on [`RingSide::SIDE`] folds away).

use crate::header::{RingHeader, RingMeta};
use crate::headtail::HeadTail;

/// One side of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The side that enqueues.
    Producer,
    /// The side that dequeues.
    Consumer,
}

impl Side {
    /// What the side is called in errors and dumps.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        }
    }

    /// The side whose tail bounds this side's claims.
    #[inline(always)]
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Producer => Side::Consumer,
            Side::Consumer => Side::Producer,
        }
    }

    /// This side's head and tail in `header`.
    #[inline(always)]
    pub(crate) fn of(self, header: &RingHeader) -> &HeadTail {
        match self {
            Side::Producer => &header.prod,
            Side::Consumer => &header.cons,
        }
    }

    /// What the other side's tail is counted from to give this side's room (see
    /// `headtail::room`): the capacity for producers, whose room is the free slots, and 0 for
    /// consumers, whose room is what producers published.
    #[inline(always)]
    pub(crate) fn room_base(self, meta: &RingMeta) -> u32 {
        match self {
            Side::Producer => meta.capacity,
            Side::Consumer => 0,
        }
    }

    /// Whether the side writes the slots it claims (producers) rather than reads them.
    #[inline(always)]
    pub(crate) fn writes_slots(self) -> bool {
        self == Side::Producer
    }
}

/// A side as a type (see the module docs).
pub(crate) trait RingSide {
    /// The side.
    const SIDE: Side;
}

/// The producers' side as a type: enqueues.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerSide;

impl RingSide for ProducerSide {
    const SIDE: Side = Side::Producer;
}

/// The consumers' side as a type: dequeues.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsumerSide;

impl RingSide for ConsumerSide {
    const SIDE: Side = Side::Consumer;
}
