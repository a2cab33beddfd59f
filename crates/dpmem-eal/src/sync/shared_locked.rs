//! A value guarded by a [`SharedMutex`], both inside shared memory: the process-shared
//! counterpart of `std::sync::Mutex<T>`. Heap headers and the memzone table use it, so every
//! process that maps the configuration serialises on the same futex word.
//!
//! Where `std`'s mutex is poisoned by a thread that panicked holding it, this one is taken over
//! from a process that died holding it: the locker that takes it over runs the value's repair
//! ([`SharedLocked::lock`]'s `recover`) before anyone else may touch the value. A repaired value
//! goes back to ordinary use; one that cannot be repaired retires the lock, and every locker from
//! then on gets [`OwnerDied`] naming the dead process.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use super::{lock_recovery, SharedMutex, SharedMutexGuard};

/// `T` must be plain data (`repr(C)`, no pointers to process-local memory): it is read by other
/// processes through their own mapping of the same bytes. All-zero bytes are a valid unlocked
/// value whenever all-zero bytes are a valid `T`, which is how a fresh configuration starts.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SharedLocked<T> {
    mutex: SharedMutex,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, which exists while the mutex is held, so
// at most one thread (of any process) touches it at a time.
unsafe impl<T: Send> Sync for SharedLocked<T> {}

/// What a repair after a takeover found: which structure it was (for the message), and what it
/// repaired (`Ok`) or why the structure cannot be used any more (`Err`).
#[derive(Debug)]
pub struct Repair {
    pub what: String,
    pub outcome: Result<String, String>,
}

/// A process died holding the lock of a value, which could not be repaired: the value is
/// unusable for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerDied {
    pub dead_pid: u32,
    /// Why the value could not be repaired, when this call found out (later calls only learn
    /// that the lock was retired; the process that tried the repair printed why). Boxed: the
    /// error shares its `Result` with the guard on the path every allocation takes.
    pub reason: Option<Box<str>>,
}

impl<T> SharedLocked<T> {
    /// Takes the lock. When its holder died, `recover` gets the value and the dead process's
    /// id first: an outcome `Ok` with what it found and repaired (the value is consistent again)
    /// hands the guard out as usual; `Err` with the damage it could not repair retires the lock.
    ///
    /// Values behind a `SharedLocked` are never locked re-entrantly, so the owning thread is not
    /// recorded ([`SharedMutex::lock_untracked`]).
    #[inline(always)]
    pub fn lock(
        &self,
        recover: impl FnOnce(&mut T, u32) -> Repair,
    ) -> Result<SharedLockedGuard<'_, T>, OwnerDied> {
        // The uncontended path alone is inlined: a compare-and-swap and the guard, nothing to
        // look at afterwards (a takeover can only come out of the wait).
        match self.mutex.try_lock_untracked() {
            Some(guard) => Ok(self.guarding(guard)),
            None => self.lock_contended(recover),
        }
    }

    #[inline(always)]
    fn guarding<'a>(&'a self, guard: SharedMutexGuard<'a>) -> SharedLockedGuard<'a, T> {
        SharedLockedGuard {
            guard,
            value: self.value.get(),
            _owner: std::marker::PhantomData,
        }
    }

    /// [`SharedLocked::lock`] once the lock was found held: wait, and repair after a takeover.
    #[cold]
    #[inline(never)]
    fn lock_contended(
        &self,
        recover: impl FnOnce(&mut T, u32) -> Repair,
    ) -> Result<SharedLockedGuard<'_, T>, OwnerDied> {
        let guard = self.mutex.lock_untracked().map_err(|retired| OwnerDied {
            dead_pid: retired.dead_pid,
            reason: None,
        })?;
        let guard = self.guarding(guard);
        match guard.guard.taken_over_from() {
            Some(dead_pid) => Self::recover_value(guard, dead_pid, recover),
            None => Ok(guard),
        }
    }

    #[cold]
    fn recover_value(
        mut guard: SharedLockedGuard<'_, T>,
        dead_pid: u32,
        recover: impl FnOnce(&mut T, u32) -> Repair,
    ) -> Result<SharedLockedGuard<'_, T>, OwnerDied> {
        // A panic in the repair drops the guard unvouched, which retires the lock: nobody
        // uses a value whose repair did not finish.
        let repair = recover(&mut guard, dead_pid);
        match repair.outcome {
            Ok(repairs) => {
                lock_recovery::record_takeover(&repair.what, dead_pid, Ok(&repairs));
                guard.guard.mark_consistent();
                Ok(guard)
            }
            Err(reason) => {
                lock_recovery::record_takeover(&repair.what, dead_pid, Err(&reason));
                drop(guard);
                Err(OwnerDied {
                    dead_pid,
                    reason: Some(reason.into_boxed_str()),
                })
            }
        }
    }

    /// The value, reached through exclusive access to the whole (the primary's initialisation
    /// of a configuration no other process maps yet): no lock needed.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The lock (unit tests hand it to a dead process).
    #[cfg(test)]
    pub(crate) fn mutex(&self) -> &SharedMutex {
        &self.mutex
    }

    /// Resets the lock of a value no process can be using yet (the primary's initialisation,
    /// over a configuration a dead primary may have left locked). Crate-private: a guard taken
    /// before would then coexist with the next one.
    pub(crate) fn force_unlock(&self) {
        self.mutex.force_reset();
    }
}

/// Access to the value while the lock is held.
#[derive(Debug)]
pub struct SharedLockedGuard<'a, T> {
    guard: SharedMutexGuard<'a>,
    value: *mut T,
    _owner: std::marker::PhantomData<&'a mut T>,
}

impl<T> Deref for SharedLockedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex, so no other guard for this value exists anywhere.
        unsafe { &*self.value }
    }
}

impl<T> DerefMut for SharedLockedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through this guard.
        unsafe { &mut *self.value }
    }
}
