//! How many dpmem locks the calling thread holds.
//!
//! The dpmem global allocator serves a program's allocations from a heap, and taking a heap
//! lock while this thread already holds that lock, or any lock the heap's growth needs
//! (hotplug, the event and validator tables), would deadlock. So every dpmem lock counts itself
//! here while held, and the global allocator sends the requests of a thread holding any of
//! them to the system allocator instead.

use std::cell::Cell;

thread_local! {
    /// A `const`-initialised `Cell` has no destructor, so it stays usable while a thread exits.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Counts as one held lock until dropped.
#[derive(Debug)]
pub struct LockDepthScope(());

impl LockDepthScope {
    #[inline]
    pub fn enter() -> Self {
        enter();
        LockDepthScope(())
    }
}

impl Drop for LockDepthScope {
    #[inline]
    fn drop(&mut self) {
        exit();
    }
}

/// Counts one more lock held by this thread (the lock guards call this and [`exit`] themselves,
/// which keeps them two words long).
#[inline(always)]
pub fn enter() {
    let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
}

/// Counts one lock fewer held by this thread.
#[inline(always)]
pub fn exit() {
    let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
}

/// Whether this thread holds a dpmem lock (or is inside the global allocator's heap path).
/// A thread whose thread-locals are gone counts as holding one, the safe answer.
#[inline]
pub fn held() -> bool {
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(true)
}
