//! The one place dpmem takes the atomics of its shared-memory protocols from: the hardware's,
//! or, under `RUSTFLAGS="--cfg loom"`, loom's model-checked ones (as tokio's `loom` module
//! does). Every crate of dpmem reaches them through here — the EAL's process-shared mutex,
//! occupancy arrays and shared configuration, the ring's heads and tails, the mempool's caches
//! — so one switch puts them all under the model checker. Process-local statistics and flags
//! that no protocol depends on may use `std` directly.
//!
//! Under loom the futex is modelled too ([`wait_while`], [`wake`]): a waiter really sleeps
//! until a wake, so a protocol that can lose a wake-up deadlocks in the model and loom
//! reports it.

#[cfg(loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(not(loom))]
pub use core::sync::atomic::{
    fence, AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// Under loom only: a cell whose reads and writes loom checks for ordering (the ring's slots
/// report their copies to one of these per slot).
#[cfg(loom)]
pub use loom::cell::UnsafeCell as ModelCell;

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

/// Sleeps while `*word == expected`, in any process that maps the word (a futex wait without
/// `FUTEX_PRIVATE_FLAG`); may return early, so callers look again.
#[inline]
pub fn wait_while(word: &AtomicU32, expected: u32) {
    #[cfg(loom)]
    futex_model::wait(word, expected);
    #[cfg(not(loom))]
    crate::futex::wait(word, expected);
}

/// [`wait_while`] for at most `limit`: `true` when it gave up because the time ran out, which is
/// when a lock's waiter looks whether the holder is still alive.
///
/// Under loom time does not pass on its own: a timed wait ends like an untimed one, by a wake,
/// or by `time_passes` (loom only), which a model calls when it makes a holder die. Each call of
/// `time_passes` lets every thread's wait time out once (the next one it makes, or the one it is
/// in), which is what a real waiter sees: sooner or later, a wait on a dead holder times out.
#[inline]
pub fn wait_while_for(word: &AtomicU32, expected: u32, limit: std::time::Duration) -> bool {
    #[cfg(loom)]
    {
        let _ = limit;
        futex_model::wait_timed(word, expected)
    }
    #[cfg(not(loom))]
    crate::futex::wait_for(word, expected, limit)
}

/// Under loom only: the time of every timed wait runs out (see [`wait_while_for`]).
#[cfg(loom)]
pub fn time_passes() {
    futex_model::time_passes();
}

/// Wakes up to `count` sleepers of [`wait_while`] on `word`, in any process.
#[inline]
pub fn wake(word: &AtomicU32, count: u32) {
    #[cfg(loom)]
    futex_model::wake(word, count);
    #[cfg(not(loom))]
    crate::futex::wake(word, count);
}

/// The kernel's futex as loom sees it: one wait queue for every word (a wake may wake a
/// waiter of another word, which a futex caller must tolerate anyway: it looks again). The
/// check of the word and the sleep are one step under the queue's lock, as in the kernel's
/// hash bucket, so a wake that follows a change of the word is never missed.
#[cfg(loom)]
mod futex_model {
    use std::cell::Cell;

    use loom::sync::{Condvar, Mutex};

    use super::{AtomicU32, AtomicUsize, Ordering};

    loom::lazy_static! {
        static ref QUEUE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
        /// How many times [`time_passes`] was called in this execution.
        static ref EPOCH: AtomicUsize = AtomicUsize::new(0);
    }

    loom::thread_local! {
        /// The epoch whose time-out this thread has had already.
        static SEEN_EPOCH: Cell<usize> = Cell::new(0);
    }

    /// Whether time passed since this thread's last time-out (and takes it if so).
    fn timed_out() -> bool {
        let epoch = EPOCH.load(Ordering::SeqCst);
        SEEN_EPOCH.with(|seen| {
            let out = seen.get() < epoch;
            seen.set(epoch);
            out
        })
    }

    pub(super) fn wait_timed(word: &AtomicU32, expected: u32) -> bool {
        let (lock, sleepers) = &*QUEUE;
        let guard = lock.lock().unwrap();
        if timed_out() {
            return true;
        }
        if word.load(Ordering::SeqCst) == expected {
            drop(sleepers.wait(guard).unwrap());
            return timed_out();
        }
        false
    }

    pub(super) fn time_passes() {
        let (lock, sleepers) = &*QUEUE;
        let _guard = lock.lock().unwrap();
        EPOCH.fetch_add(1, Ordering::SeqCst);
        sleepers.notify_all();
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        let (lock, sleepers) = &*QUEUE;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(sleepers.wait(guard).unwrap());
        }
    }

    pub(super) fn wake(_word: &AtomicU32, _count: u32) {
        let (lock, sleepers) = &*QUEUE;
        let _guard = lock.lock().unwrap();
        sleepers.notify_all();
    }
}
