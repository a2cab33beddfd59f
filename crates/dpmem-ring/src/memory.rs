//! Where a ring's block of memory comes from.
//!
//! A ring is one block: header then slots, no pointers inside. [`RingMemory`] is all the
//! ring needs from the block's owner, so a heap block ([`HeapRegion`]) and a memzone
//! ([`MemzoneMemory`](crate::named::MemzoneMemory), shared between processes and looked up
//! by name) are the same to the ring.

use core::ptr::NonNull;
use std::alloc::{self, Layout};

use crate::cache_padded::CACHE_PAD;

/// A block of memory that holds one ring.
///
/// # Safety
/// `base()` is the same pointer for the life of the value, valid for reads and writes of
/// `len()` bytes until the value is dropped, and the bytes are changed by nothing but ring
/// operations (of this process or of others mapping the same block).
pub unsafe trait RingMemory {
    /// First byte of the block; the ring wants it aligned to 128 bytes.
    fn base(&self) -> NonNull<u8>;
    /// Size of the block in bytes.
    fn len(&self) -> usize;
    /// Whether the block is empty (it then cannot hold a ring).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A zeroed, 128-byte aligned block from the global allocator, freed on drop: the storage
/// of rings that live in one process only.
#[derive(Debug)]
pub struct HeapRegion {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: HeapRegion owns its block outright, like a Box<[u8]>; the ring synchronises
// every access to the bytes through its head/tail protocol.
unsafe impl Send for HeapRegion {}
// SAFETY: as above; &HeapRegion only hands out the address.
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// A zeroed block of `len` bytes aligned to 128, or `None` when the allocator refuses.
    pub fn zeroed(len: usize) -> Option<HeapRegion> {
        let layout = Layout::from_size_align(len.max(1), CACHE_PAD).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        Some(HeapRegion {
            base: NonNull::new(ptr)?,
            layout,
        })
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: base came from alloc_zeroed with this layout and is freed once, here.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

// SAFETY: the block is owned by the value, fixed, and valid for layout.size() bytes
// until drop.
unsafe impl RingMemory for HeapRegion {
    fn base(&self) -> NonNull<u8> {
        self.base
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}
