//! A value in heap memory, freed when dropped: `Box` for dpmem heaps.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::Heaps;

/// Owns a `T` in a dpmem heap block; dropping it drops the value and frees the block.
pub struct HeapBox<'a, T> {
    ptr: NonNull<T>,
    heaps: Heaps<'a>,
}

// SAFETY: the box owns its value exclusively, like `Box<T>`; the heap it returns the block to
// is shared and locked.
unsafe impl<T: Send> Send for HeapBox<'_, T> {}
// SAFETY: shared access only hands out `&T`, like `Box<T>`.
unsafe impl<T: Sync> Sync for HeapBox<'_, T> {}

impl<'a, T> HeapBox<'a, T> {
    pub(super) fn from_raw_parts(ptr: NonNull<T>, heaps: Heaps<'a>) -> Self {
        Self { ptr, heaps }
    }

    /// The value's address (in shared hugepage memory: the same in every process).
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T> Deref for HeapBox<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the pointer holds an initialised T owned by this box until drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for HeapBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` is the only access.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: fmt::Debug> fmt::Debug for HeapBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T> Drop for HeapBox<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value is initialised and dropped exactly once, here.
        unsafe { self.ptr.as_ptr().drop_in_place() };
        // SAFETY: the block was allocated for this box and nothing refers to it any more.
        let freed = unsafe { self.heaps.free(self.ptr.cast()) };
        debug_assert!(freed.is_ok(), "freeing a HeapBox block: {freed:?}");
    }
}
