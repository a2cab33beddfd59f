//! A mutex that lives in shared memory: a 32-bit futex word used *without* `FUTEX_PRIVATE_FLAG`,
//! so waiters in different processes that map the same file wake each other.
//!
//! The protocol is the three-state futex mutex from Drepper's "Futexes Are Tricky": 0 unlocked,
//! 1 locked, 2 locked with possible waiters. [`SharedMutex::lock`] records the owner's thread
//! id so that the memory-event callbacks (run while the hotplug lock is held) can walk memory
//! without deadlocking on their own thread's lock ([`SharedMutex::lock_reentrant`]); locks
//! never taken that way skip recording it (`lock_untracked`).

use dpmem_sys::futex;
use dpmem_sys::sync::{self as shim, AtomicU32, Ordering};

use super::LockDepthScope;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// A process-shared mutex guarding no data of its own (it guards shared structures next to it).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SharedMutex {
    state: AtomicU32,
    /// Kernel thread id of the holder, 0 when unlocked. Only compared with the caller's own
    /// id, so a stale read can never make another thread believe it owns the lock.
    owner_tid: AtomicU32,
}

fn current_tid() -> u32 {
    futex::thread_id()
}

impl SharedMutex {
    /// A lock nobody holds (shared memory starts so when zeroed; tests and models make
    /// their own).
    #[cfg(test)]
    pub fn new() -> Self {
        Self {
            state: AtomicU32::new(UNLOCKED),
            owner_tid: AtomicU32::new(0),
        }
    }

    /// Takes the lock, sleeping in the kernel while another thread or process holds it.
    #[inline]
    pub fn lock(&self) -> SharedMutexGuard<'_> {
        let guard = self.lock_untracked();
        self.owner_tid.store(current_tid(), Ordering::Relaxed);
        guard
    }

    /// [`SharedMutex::lock`] without recording the owner: for locks that are never taken
    /// with [`SharedMutex::lock_reentrant`] (the heaps, the heap directory and the memzone table,
    /// all behind [`SharedLocked`](super::SharedLocked)), which then skip
    /// a thread-local read and a store on the path every allocation takes.
    #[inline]
    pub(crate) fn lock_untracked(&self) -> SharedMutexGuard<'_> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SharedMutexGuard {
            mutex: Some(self),
            _depth: Some(LockDepthScope::enter()),
        }
    }

    #[cold]
    fn lock_contended(&self) {
        // Announce a waiter (state 2) before sleeping so the unlocker knows to wake someone.
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            shim::wait_while(&self.state, CONTENDED);
        }
    }

    /// Takes the lock unless this very thread already holds it (then the guard is a no-op).
    /// For code that may run inside a memory-event callback.
    pub fn lock_reentrant(&self) -> SharedMutexGuard<'_> {
        if self.owner_tid.load(Ordering::Relaxed) == current_tid() {
            return SharedMutexGuard {
                mutex: None,
                _depth: None,
            };
        }
        self.lock()
    }

    /// Whether some thread of some process holds the lock right now (a hint for diagnostics).
    #[cfg(test)]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != UNLOCKED
    }

    #[inline]
    fn unlock(&self) {
        self.owner_tid.store(0, Ordering::Relaxed);
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        shim::wake(&self.state, 1);
    }

    /// Resets a lock left held by a process that died. Only the primary calls this, while it
    /// initialises a configuration no other process can be using yet.
    pub fn force_reset(&self) {
        self.owner_tid.store(0, Ordering::Relaxed);
        self.state.store(UNLOCKED, Ordering::Release);
    }
}

/// Releases the [`SharedMutex`] on drop (unless it was a re-entrant no-op guard).
#[derive(Debug)]
pub struct SharedMutexGuard<'a> {
    mutex: Option<&'a SharedMutex>,
    /// Declared after `mutex`, so the thread counts the lock as held until it is released.
    _depth: Option<LockDepthScope>,
}

impl Drop for SharedMutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(mutex) = self.mutex {
            mutex.unlock();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn excludes_threads_and_counts_exactly() {
        let mutex = Arc::new(SharedMutex::new());
        let counter = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (mutex, counter) = (mutex.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let _guard = mutex.lock();
                        // A non-atomic read-modify-write: loses updates unless excluded.
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 80_000);
        assert!(!mutex.is_locked());
    }

    #[test]
    fn reentrant_lock_on_owning_thread_does_not_deadlock() {
        let mutex = SharedMutex::new();
        let outer = mutex.lock();
        {
            let _inner = mutex.lock_reentrant();
            assert!(mutex.is_locked());
        }
        assert!(mutex.is_locked(), "inner no-op guard must not unlock");
        drop(outer);
        assert!(!mutex.is_locked());
    }
}

/// The lock's protocol under loom, with the futex modelled (`dpmem_sys::sync`): mutual
/// exclusion (the counter is a loom cell, so two holders at once are a reported race), and no
/// lost wake-up (a waiter sleeps until woken, so an unlock that forgot a sleeper would leave it
/// asleep and loom would report the deadlock).
///
/// `RUSTFLAGS="--cfg loom" cargo test -p dpmem-eal --release --lib loom`
#[cfg(all(test, loom))]
mod loom_model {
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    use super::*;

    fn add_one(mutex: &SharedMutex, counter: &UnsafeCell<u32>) {
        let _guard = mutex.lock_untracked();
        // SAFETY: the lock is held, so no other thread touches the counter (loom checks it).
        counter.with_mut(|c| unsafe { *c += 1 });
    }

    #[test]
    fn loom_three_lockers_exclude_each_other_and_none_sleeps_forever() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let mutex = Arc::new(SharedMutex::new());
            let counter = Arc::new(UnsafeCell::new(0u32));
            let lockers: Vec<_> = (0..2)
                .map(|_| {
                    let (mutex, counter) = (mutex.clone(), counter.clone());
                    loom::thread::spawn(move || add_one(&mutex, &counter))
                })
                .collect();
            add_one(&mutex, &counter);
            for locker in lockers {
                locker.join().unwrap();
            }
            // SAFETY: every other thread has ended.
            assert_eq!(counter.with(|c| unsafe { *c }), 3);
            assert!(!mutex.is_locked());
        });
    }

    #[test]
    fn loom_tracked_lock_records_and_clears_its_owner() {
        loom::model(|| {
            let mutex = Arc::new(SharedMutex::new());
            let other = {
                let mutex = mutex.clone();
                loom::thread::spawn(move || drop(mutex.lock()))
            };
            drop(mutex.lock());
            other.join().unwrap();
            assert_eq!(mutex.owner_tid.load(Ordering::Relaxed), 0);
            assert!(!mutex.is_locked());
        });
    }
}
