//! An `allocator-api2` allocator over one heap, so Rust collections (`Vec<T, A>`, `Box<T, A>`)
//! keep their buffers in hugepage memory on a chosen socket.

use crate::socket::Socket;
use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use super::Heaps;

/// A handle that allocates from one socket's heap (or any heap, for
/// [`Socket::Any`]); made by [`Heaps::allocator`].
///
/// Zero-sized requests never reach the heap (DPDK refuses size 0): they get a dangling,
/// well-aligned pointer, as the standard allocators give. Growing and shrinking go through the
/// heap's `realloc`, so a vector that grows into a free neighbour does not move.
#[derive(Debug, Clone, Copy)]
pub struct HeapAllocator<'a> {
    heaps: Heaps<'a>,
    socket: Socket,
}

impl<'a> HeapAllocator<'a> {
    pub(super) fn new(heaps: Heaps<'a>, socket: Socket) -> Self {
        Self { heaps, socket }
    }

    /// The socket this allocator takes memory from.
    pub fn socket(&self) -> Socket {
        self.socket
    }

    /// A block for `layout` from this allocator's heap (`zeroed`: cleared), or a dangling
    /// one for a zero-sized layout.
    fn new_block(&self, layout: Layout, zeroed: bool) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(Self::dangling(layout));
        }
        let (size, align) = (layout.size(), layout.align());
        let ptr = if zeroed {
            self.heaps.zmalloc_socket(size, align, self.socket)
        } else {
            self.heaps.malloc_socket(size, align, self.socket)
        }
        .map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, size))
    }

    fn dangling(layout: Layout) -> NonNull<[u8]> {
        // An address equal to the alignment is non-null and aligned, and is never dereferenced
        // for a zero-sized block.
        let ptr = NonNull::new(layout.align() as *mut u8).expect("alignments are at least 1");
        NonNull::slice_from_raw_parts(ptr, 0)
    }

    /// Resizes a block the heap holds (both sizes non-zero), keeping its alignment.
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator; it must not be used after success.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller owns `ptr`, a block of this heap, and gives it up on success.
        let moved = unsafe {
            self.heaps.realloc_socket(
                Some(ptr),
                new_layout.size(),
                new_layout.align(),
                self.socket,
            )
        };
        let new = moved.map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(new, new_layout.size()))
    }
}

// SAFETY: blocks stay valid until deallocated through any copy of the handle (they live in the
// EAL's memory, which outlives `'a`); the heap never hands out a block twice; `grow`/`shrink`
// keep the contents (the heap's realloc copies when it moves) and the alignment (it is part of
// the request).
unsafe impl Allocator for HeapAllocator<'_> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.new_block(layout, false)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.new_block(layout, true)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        // SAFETY: the caller hands back a block this allocator gave and no longer uses it.
        let freed = unsafe { self.heaps.free(ptr) };
        debug_assert!(freed.is_ok(), "freeing an allocator block: {freed:?}");
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old_layout.size() == 0 {
            return self.allocate(new_layout);
        }
        // SAFETY: the caller owns `ptr` (a non-empty block of this allocator) and gives it up
        // on success, as `grow` requires.
        unsafe { self.resize(ptr, new_layout) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old_layout.size() == 0 {
            return self.allocate_zeroed(new_layout);
        }
        // SAFETY: as in `grow`.
        let new = unsafe { self.resize(ptr, new_layout) }?;
        let tail = new_layout.size() - old_layout.size();
        // SAFETY: the new block holds `new_layout.size()` bytes, so the old size is inside it.
        let tail_start = unsafe { new.cast::<u8>().add(old_layout.size()) };
        // SAFETY: `[tail_start, tail_start + tail)` is the end of the new block, owned by the
        // caller.
        unsafe { tail_start.write_bytes(0, tail) };
        Ok(new)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new_layout.size() == 0 {
            // SAFETY: the caller gives the block up; an empty block needs no memory.
            unsafe { self.deallocate(ptr, old_layout) };
            return Ok(Self::dangling(new_layout));
        }
        // SAFETY: as in `grow`.
        unsafe { self.resize(ptr, new_layout) }
    }
}
