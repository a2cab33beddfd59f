//! The copy engine's view of dpmem's one source of atomics, `dpmem_sys::sync`: the
//! hardware's, or loom's under `RUSTFLAGS="--cfg loom"`, so that the ring's index protocol
//! ([`crate::ring`]) and the worker's sleep and wake-up ([`crate::doorbell`]) run inside
//! loom's model checker unchanged.
//!
//! [`SlotCell`] is the one interior-mutable cell of the protocol (a descriptor or a status in
//! a ring slot): a plain `UnsafeCell` on the hardware, loom's checked cell under the model,
//! where every read and write is tested against the orderings that should make it safe.

pub(crate) use dpmem_sys::sync::{spin_wait, wait_while, wake, AtomicBool, AtomicU16, AtomicU32};
pub(crate) use dpmem_sys::sync::{AtomicU64, Ordering};

/// A `Copy` value that one side of the ring writes and the other reads, never at once: who may
/// touch it when is the protocol's business, which is why both accessors are `unsafe`.
#[derive(Debug)]
pub(crate) struct SlotCell<T> {
    #[cfg(not(loom))]
    value: core::cell::UnsafeCell<T>,
    #[cfg(loom)]
    value: dpmem_sys::sync::ModelCell<T>,
}

impl<T: Copy> SlotCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            value: core::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            value: dpmem_sys::sync::ModelCell::new(value),
        }
    }

    /// The value.
    ///
    /// # Safety
    /// No write to this cell may run concurrently: the caller's side owns the slot now, or
    /// the other side's last write happened before (an acquire of the index it released).
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> T {
        #[cfg(not(loom))]
        {
            // SAFETY: no concurrent write (the caller's contract).
            unsafe { *self.value.get() }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom checks it.
            self.value.with(|p| unsafe { *p })
        }
    }

    /// Stores `value`.
    ///
    /// # Safety
    /// No other access to this cell may run concurrently: the caller's side owns the slot
    /// until it releases the index that hands the slot over.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, value: T) {
        #[cfg(not(loom))]
        {
            // SAFETY: exclusive access (the caller's contract).
            unsafe { *self.value.get() = value }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom checks it.
            self.value.with_mut(|p| unsafe { *p = value })
        }
    }
}
