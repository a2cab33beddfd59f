//! # dpmem: DPDK's data-plane memory, in Rust
//!
//! dpmem gives a Rust program what DPDK's environment abstraction layer gives a C one:
//! hugepage memory placed on the right NUMA node with known device addresses (IOVAs), named
//! memzones, per-socket malloc heaps, lock-free rings, fixed-size object pools with per-lcore
//! caches, and worker threads pinned to their cores ("lcores") — shared between a primary
//! process and its secondaries at the same virtual addresses, with DPDK 22.11's command line
//! and documented behaviour. It runs without hugepages and without root too (`--no-huge`).
//!
//! ## Quick start
//!
//! Bring the EAL up on two lcores, reserve a memzone, make a pool of frames and a ring, and
//! pass frames from a worker lcore to the main one: no `unsafe`, no `'static`, nothing left
//! behind when the [`Eal`] is dropped.
//!
//! ```
//! use dpmem::prelude::*;
//!
//! // Hugepages when this machine can give them, ordinary memory otherwise.
//! let memory = DefaultMemory::detect(32);
//! let mut args = vec!["quickstart".to_owned(), "-l".into(), "0-1".into()];
//! args.extend(memory.eal_args());
//! args.extend(["--file-prefix".into(), format!("quickstart-{}", std::process::id())]);
//! let eal = Eal::init(args)?;
//!
//! // A named block every process of this EAL finds by name.
//! let stats = eal.memzones().request("stats", 4096).reserve()?;
//! assert!(eal.memzones().lookup("stats").is_some());
//!
//! // A pool of frames, and a single-producer single-consumer ring to hand them over.
//! #[derive(Clone, Copy)]
//! struct Frame {
//!     seq: u64,
//!     payload: [u8; 1000],
//! }
//! let frames = TypedMempool::builder("frames", 255)
//!     .cache_size(32)
//!     .create(&eal, |_| Frame { seq: 0, payload: [0; 1000] })?;
//! let handoff = HandleRing::new("handoff", 64, RingFlags::SP_ENQ | RingFlags::SC_DEQ)?;
//!
//! let threads = eal.lcore_threads();
//! let worker = threads.worker_ids().next().expect("-l 0-1 has a worker");
//! let received = threads.scope(|scope| -> Result<u64, Box<dyn std::error::Error>> {
//!     // The worker borrows the pool and the ring: the scope outlives neither.
//!     let sender = scope.launch(worker, || {
//!         let mut tx = handoff.producer().expect("the one producer");
//!         for seq in 0..1000 {
//!             let mut frame = loop {
//!                 match frames.get() {
//!                     Ok(frame) => break frame,
//!                     Err(_) => std::hint::spin_loop(), // all in flight: wait for returns
//!                 }
//!             };
//!             frame.seq = seq;
//!             frame.payload[0] = seq as u8;
//!             while let Err(back) = tx.enqueue(frame) {
//!                 frame = back; // the ring is full: try again
//!             }
//!         }
//!     })?;
//!     let mut rx = handoff.consumer()?;
//!     let mut next = 0;
//!     while next < 1000 {
//!         if let Some(frame) = rx.dequeue() {
//!             assert_eq!((frame.seq, frame.payload[0]), (next, next as u8));
//!             next += 1;
//!         } // the frame goes back to its pool here
//!     }
//!     sender.join()?;
//!     Ok(next)
//! })?;
//! assert_eq!(received, 1000);
//! assert_eq!(frames.raw().avail_count(), 255); // every frame is home
//! frames.raw().audit()?;
//! # let _ = stats;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where things are
//!
//! - [`eal`]: [`Eal::init`] with DPDK's command line (or [`EalOptions::builder`]); memory
//!   ([`Memory`]: memseg lists, pages, IOVAs, external memory), [`Heaps`] (`rte_malloc`),
//!   [`Memzones`], lcores ([`LcoreThreads`](eal::lcore::LcoreThreads): launch, scope,
//!   registration), the typed vocabulary ([`Socket`], [`Iova`], [`MemzoneFlags`]).
//! - [`ring`]: [`Ring`] of `Copy` values, [`HandleRing`] of owning handles, named rings in
//!   memzones, every DPDK sync mode, peek and zero-copy, and the raw byte API.
//! - [`mempool`]: [`Mempool`] (the raw object API and per-lcore caches), [`TypedMempool`]
//!   with [`PoolObj`] handles that travel through rings.
//! - [`dma`]: a copy engine shaped like DPDK's dmadev ([`DmaDevice`], one [`Vchan`] owner at
//!   a time), with MTL's borrowing layer for received packets.
//! - [`frame`]: media frames as MTL moves them: [`TxSession`] hands out frames and
//!   packetises them for SMPTE ST 2110-20 without copying, "done" once per frame, after its
//!   last packet; frames the application lends from memory it mapped for I/O
//!   ([`DmaMapping`], [`ExternalFrame`]) go out the same way and come back the same way;
//!   sessions report when their memory had to come from another NUMA socket
//!   ([`NumaPlacement`]).
//! - [`mbuf`]: packet buffers — [`PktmbufPool`] (plain and pinned external memory) and the
//!   owning [`Mbuf`] handle: chains, clones, copies, external buffers, a zero-copy `Bytes`,
//!   [`Burst`]s filled and freed in place.
//!
//! Each DPDK function has a counterpart named after it (`malloc_socket`, `reserve_bounded`,
//! `remote_launch`, `get_bulk`, ...), typed, for porting C code; builders and handles are the
//! Rust way in.

#[doc(inline)]
pub use dpmem_dma as dma;
#[doc(inline)]
pub use dpmem_eal as eal;
#[doc(inline)]
pub use dpmem_frame as frame;
#[doc(inline)]
pub use dpmem_mbuf as mbuf;
#[doc(inline)]
pub use dpmem_mempool as mempool;
#[doc(inline)]
pub use dpmem_ring as ring;

#[doc(inline)]
pub use dpmem_dma::{DmaDevice, DmaError, Vchan};
#[doc(inline)]
pub use dpmem_eal::{
    DefaultMemory, Eal, EalError, EalOptions, ErrorKind, Heaps, Iova, Memory, Memzone,
    MemzoneFlags, Memzones, Socket,
};
#[doc(inline)]
pub use dpmem_frame::{
    DmaMapping, ExternalFrame, FrameError, FrameMut, NumaPlacement, PacketSink, St20Format,
    TxSession,
};
#[doc(inline)]
pub use dpmem_mbuf::{Burst, ExternalBuffer, Mbuf, MbufError, PktmbufPool};
#[doc(inline)]
pub use dpmem_mempool::{
    Mempool, MempoolConfig, MempoolError, MempoolFlags, PoolObj, TypedMempool,
};
#[doc(inline)]
pub use dpmem_ring::{HandleRing, Ring, RingError, RingFlags};

/// What most programs use: `use dpmem::prelude::*;`.
pub mod prelude {
    #[doc(no_inline)]
    pub use dpmem_eal::{DefaultMemory, Eal, Iova, MemzoneFlags, Socket};
    #[doc(no_inline)]
    pub use dpmem_mbuf::{Burst, ExternalBuffer, Mbuf, PktmbufPool};
    #[doc(no_inline)]
    pub use dpmem_mempool::{MempoolConfig, MempoolFlags, PoolObj, TypedMempool};
    #[doc(no_inline)]
    pub use dpmem_ring::{Handle, HandleRing, Ring, RingFlags};
}

/// The README's example, run as a test so that it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

/// Misuse that must not compile: each block below is a compile-fail test, with the error it
/// must fail with, so that a block failing for some other reason does not pass for it.
///
/// Heap internals are not reachable: an element header's address could read or write any
/// memory through safe calls.
///
/// ```compile_fail,E0603
/// use dpmem::eal::heap::elem::Elem;
/// ```
///
/// A single-producer handle cannot be used from two threads at once: every operation takes
/// it by `&mut`.
///
/// ```compile_fail,E0499
/// use dpmem::prelude::*;
/// let ring = Ring::<u64>::new("sp", 64, RingFlags::SP_ENQ).unwrap();
/// let mut tx = ring.producer().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| tx.enqueue(1));
///     s.spawn(|| tx.enqueue(2));
/// });
/// ```
///
/// A pool object cannot outlive its pool.
///
/// ```compile_fail,E0597
/// use dpmem::prelude::*;
/// let eal = Eal::init(["app", "--no-huge", "-m", "16"]).unwrap();
/// let obj = {
///     let pool = TypedMempool::<u64>::builder("short", 63).create(&eal, |_| 0).unwrap();
///     pool.get().unwrap()
/// };
/// drop(obj);
/// ```
///
/// Work launched in a scope cannot borrow what ends before the scope does...
///
/// ```compile_fail,E0373
/// use dpmem::prelude::*;
/// let eal = Eal::init(["app", "-l", "0-1", "--no-huge", "-m", "16"]).unwrap();
/// eal.lcore_threads().scope(|s| {
///     let local = 7u64;
///     s.launch(1, || local + 1).unwrap().join().unwrap()
/// });
/// ```
///
/// ...and a launch cannot leave its scope.
///
/// ```compile_fail,E0521
/// use dpmem::prelude::*;
/// let eal = Eal::init(["app", "-l", "0-1", "--no-huge", "-m", "16"]).unwrap();
/// let launch = eal.lcore_threads().scope(|s| s.launch(1, || 7).unwrap());
/// launch.join().unwrap();
/// ```
///
/// A memzone cannot be freed by safe code (a ring or pool may live in it).
///
/// ```compile_fail,E0133
/// use dpmem::prelude::*;
/// let eal = Eal::init(["app", "--no-huge", "-m", "16"]).unwrap();
/// let zone = eal.memzones().request("z", 64).reserve().unwrap();
/// eal.memzones().free(&zone).unwrap();
/// ```
#[cfg(doctest)]
mod misuse {}
