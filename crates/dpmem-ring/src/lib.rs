//! dpmem's lock-free ring: DPDK 22.11's `rte_ring`, in Rust.
//!
//! A ring is a fixed-size FIFO of fixed-size elements with one producer side and one
//! consumer side, each with a head (where the next claim starts) and a tail (what the
//! other side may use). It is one `#[repr(C)]` block of memory — header, then the slot
//! array — with no pointers inside, so a ring in shared memory works from every process
//! that maps it. [`RingMemory`] is what the ring needs from that block: a heap block
//! ([`HeapRegion`]) holds a ring of one process, a memzone ([`named::MemzoneMemory`]) a
//! named ring that other processes find by its name ([`named::lookup`]).
//!
//! - **Sizes**: `count` slots, a power of two, holding `count - 1` elements; or with
//!   [`RingFlags::EXACT_SZ`] exactly `count` elements in the next power of two of slots.
//!   Elements are any non-zero multiple of 4 bytes ([`POINTER_ESIZE`] by default in DPDK).
//! - **Modes** (one per side, from the flags): single-thread (SP/SC); multi-thread (MP/MC:
//!   CAS on the head, tails published in claim order); relaxed tail sync (RTS: the tail
//!   follows the head once the last overlapping operation finishes, with a bounded
//!   head-tail distance); head/tail sync (HTS: one operation in flight per side).
//! - **Layout**: each side's head and tail sit on 128-byte blocks of their own, which suits
//!   pipelines (some threads only enqueue, others only dequeue). Two flags of dpmem's own
//!   change that. With [`RingFlags::CACHED_OTHER_TAIL`] a claim keeps, in the high half of
//!   its head word, the room the other side's tail showed beyond what it took, and the
//!   next claim that fits in it does not read the other side's cache line at all; the
//!   counts operations report are then lower bounds. With it, [`RingFlags::HEAD_TAIL_TOGETHER`]
//!   also puts each multi-thread side's head on its tail's line, as DPDK does, which suits
//!   rings every thread both enqueues to and dequeues from: a mempool's. Operations move the
//!   same elements every way.
//! - **Calls**: single, bulk (all or nothing) and burst (as many as possible), each
//!   reporting the free space or remaining elements; peek (start/finish) and zero-copy
//!   (start, fill or read one or two regions in place, finish) on SP/SC and HTS sides;
//!   bulk calls without a handle on multi-thread sides ([`Ring::mp_enqueue_bulk`]).
//!
//! [`RawRing`] is DPDK's element API (`unsafe`, bytes); [`Ring<T>`] is the safe typed API,
//! whose [`Producer`]/[`Consumer`] handles make the single-thread modes sound: an SP side
//! has one producer handle at a time.
//!
//! # Preemption
//!
//! MP/MC rings are not lock-free in the strict sense: a thread that has moved the head
//! but not yet the tail blocks every later thread of its side, which spins until the
//! earlier ones publish in order. If that thread is preempted, the others burn their time
//! slice; with `SCHED_FIFO` threads on one core, a spinner of higher or equal priority may
//! never let the preempted one run again, and the ring livelocks. Run MP/MC ring users on
//! dedicated cores that are not shared with other ring users (DPDK's lcore model). RTS
//! (later claims finish without waiting; a bounded head-tail distance limits how far they
//! get ahead of a stalled one) and HTS (only one operation in flight, so a stalled thread
//! holds up only the next claim, not a chain of them) degrade far more gently when threads
//! can be preempted. SP/SC never wait on another thread.
//!
//! # Concurrency proof
//!
//! Every atomic goes through `sync` so that `RUSTFLAGS="--cfg loom" cargo test -p
//! dpmem-ring --release --test loom_ring` model-checks the head/tail protocols.

mod cache_padded;
mod config;
mod error;
mod handle_ring;
mod header;
mod headtail;
mod held;
mod memory;
mod memzone_memory;
mod mode;
pub mod named;
mod peek;
mod raw;
mod side;
mod slots;
#[doc(hidden)]
pub mod sync;
mod telemetry;
mod typed;
mod view;

pub use cache_padded::CACHE_PAD;
pub use config::{Behavior, RingFlags};
pub use error::RingError;
pub use handle_ring::{Handle, HandleConsumer, HandleProducer, HandleRing};
pub use header::RING_NAME_MAX;
pub use memory::{HeapRegion, RingMemory};
pub use mode::{ConsumerMode, ProducerMode};
pub use peek::ZeroCopyRegions;
pub use raw::{init_in, memory_size, RawRing, POINTER_ESIZE, RING_SIZE_MAX};
pub use typed::{
    Consumer, DequeuePeek, EnqueueReservation, Moved, Producer, Ring, ZeroCopyDequeue,
    ZeroCopyEnqueue,
};

#[cfg(not(target_has_atomic = "64"))]
compile_error!("dpmem-ring needs 64-bit atomics (head and tail words are 64 bits)");
