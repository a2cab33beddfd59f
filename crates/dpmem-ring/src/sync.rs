//! The one place the ring (and the mempool, which uses this module too) takes its atomics
//! from.
//!
//! Every head, tail and counter of the ring is one of these types, so that the same
//! algorithm runs on the hardware and, under `RUSTFLAGS="--cfg loom"`, inside loom's model
//! checker, which explores the interleavings and weak-memory outcomes the orderings allow.
//! Nothing else in the crate names `core::sync::atomic` or `loom` directly. Public but hidden:
//! `dpmem-mempool`'s caches and stacks run under the same switch.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One turn of a wait loop for another thread's progress.
///
/// On the hardware this is the CPU's spin-loop hint (`pause` on x86), which frees pipeline
/// resources for a sibling hyper-thread and avoids the memory-order machine clear when the
/// awaited line changes. Under loom a spinning thread must yield, or the model checker
/// would explore the same loop forever.
#[inline(always)]
pub fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// A barrier for the compiler only: it emits no instruction, but memory accesses are not
/// moved across it at compile time. The slot copies put one in their block loop, which
/// the compiler would otherwise recognise as a copy idiom and replace with a call to
/// `memcpy` (see `slots::copy_bytes`). Not a synchronisation point, so the same under loom.
#[inline(always)]
pub(crate) fn compiler_barrier() {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::Release);
}
