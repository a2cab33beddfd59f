//! A value guarded by a [`SharedMutex`], both inside shared memory: the process-shared
//! counterpart of `std::sync::Mutex<T>`. Heap headers and the memzone table use it, so every
//! process that maps the configuration serialises on the same futex word.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use super::{SharedMutex, SharedMutexGuard};

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

impl<T> SharedLocked<T> {
    /// Takes the lock. Values behind a `SharedLocked` are never locked re-entrantly, so the
    /// owner is not recorded ([`SharedMutex::lock_untracked`]).
    #[inline]
    pub fn lock(&self) -> SharedLockedGuard<'_, T> {
        let guard = self.mutex.lock_untracked();
        SharedLockedGuard {
            _guard: guard,
            value: self.value.get(),
            _owner: std::marker::PhantomData,
        }
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
    _guard: SharedMutexGuard<'a>,
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
