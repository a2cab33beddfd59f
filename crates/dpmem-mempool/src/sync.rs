//! The one place the mempool takes its atomics from, so that the cache and stack protocols
//! run under loom (`RUSTFLAGS="--cfg loom"`) exactly as on the hardware.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One turn of a wait loop: the CPU's pause hint, or a yield to loom's scheduler.
#[inline(always)]
pub(crate) fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
