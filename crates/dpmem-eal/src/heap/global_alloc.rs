//! A `#[global_allocator]` that serves a program's allocations from a dpmem heap.
//!
//! A program installs [`DpmemGlobalAlloc`] before any EAL exists, so the allocator must work
//! without one: until [`DpmemGlobalAlloc::register`] hands it an EAL, every request goes to the
//! system allocator (the EAL's own start-up allocates that way). Afterwards requests go to the
//! registered socket's heap, and to the system allocator whenever the heap cannot serve them
//! (too large, heap exhausted, no pages left), so an allocation fails only when both fail.
//!
//! Who owns a pointer is decided by its address: heap blocks lie in the EAL's memseg-list
//! windows, which are reserved address space the system allocator can never return. So frees
//! and reallocations go to the right place, also for blocks allocated before registration or
//! after [`DpmemGlobalAlloc::pause`].
//!
//! dpmem's own code allocates too, some of it under locks the heap needs (the heap lock itself,
//! the hotplug lock, the event and validator tables): every such lock counts itself per thread
//! ([`crate::sync::lock_depth`]), and so does the allocator while it runs heap code. A request
//! from a thread holding any of them goes to the system allocator, so the allocator never waits
//! for a lock its own thread holds, never takes locks in an order that could deadlock with
//! another thread, and never recurses. The one request it cannot serve that way is freeing a
//! *heap* block under such a lock (a memory-event callback dropping a value that lives in the
//! heap): that block is leaked rather than risking a deadlock. The allocator never panics.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::{null_mut, NonNull};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};

use crate::eal::Eal;
use crate::error::EalError;
use crate::socket::{Socket, SOCKET_ID_ANY};
use crate::sync::{lock_depth, LockDepthScope};

/// The EAL whose heap serves allocations; set once, never cleared, because blocks it handed out
/// must be freed to it for as long as the program runs.
static REGISTERED: AtomicPtr<Eal> = AtomicPtr::new(null_mut());
/// Whether new allocations go to the heap (cleared by `pause`).
static ROUTING: AtomicBool = AtomicBool::new(false);
static SOCKET: AtomicI32 = AtomicI32::new(SOCKET_ID_ANY);

/// Marks this thread as inside the heap for the global allocator; `None` if it holds a dpmem
/// lock already (or is inside the heap), when the system allocator must serve it.
fn enter_heap() -> Option<LockDepthScope> {
    (!lock_depth::held()).then(LockDepthScope::enter)
}

/// The dpmem global allocator: install with
/// `#[global_allocator] static ALLOC: DpmemGlobalAlloc = DpmemGlobalAlloc::new();`, then call
/// [`DpmemGlobalAlloc::register`] once the EAL is up. See the module notes for what happens
/// before that and when the heap is full.
#[derive(Debug, Default, Clone, Copy)]
pub struct DpmemGlobalAlloc;

impl DpmemGlobalAlloc {
    pub const fn new() -> Self {
        DpmemGlobalAlloc
    }

    /// Routes allocations to `socket`'s heap of `eal` ([`Socket::Any`]: the registering
    /// thread's preferred socket, fixed now so the allocation path reads no thread state).
    /// The EAL is `'static` because blocks it serves may be freed at any later time: leak it
    /// (`Box::leak`). Registering the same EAL again changes the socket and resumes routing;
    /// another EAL is refused (`EEXIST`), as is a socket without a heap (`EINVAL`).
    pub fn register(eal: &'static Eal, socket: Socket) -> Result<(), EalError> {
        let heaps = eal.heaps();
        let socket = if socket == Socket::Any {
            heaps.preferred_socket()
        } else {
            socket
        };
        if !heaps.sockets().contains(&socket) {
            return Err(EalError::InvalidArgument(format!(
                "{socket} has no heap for the global allocator"
            )));
        }
        let eal_ptr = eal as *const Eal as *mut Eal;
        if let Err(other) =
            REGISTERED.compare_exchange(null_mut(), eal_ptr, Ordering::AcqRel, Ordering::Acquire)
        {
            if other != eal_ptr {
                return Err(EalError::AlreadyExists {
                    what: "global allocator registration (of another EAL)",
                    name: eal.options().file_prefix.clone(),
                });
            }
        }
        SOCKET.store(socket.to_raw(), Ordering::Release);
        ROUTING.store(true, Ordering::Release);
        Ok(())
    }

    /// Sends new allocations to the system allocator again; blocks already in the heap are
    /// still freed there. [`DpmemGlobalAlloc::register`] resumes.
    pub fn pause() {
        ROUTING.store(false, Ordering::Release);
    }

    /// The registered EAL, if any.
    pub fn registered() -> Option<&'static Eal> {
        let eal = REGISTERED.load(Ordering::Acquire);
        // SAFETY: only `register` stores here, a pointer from a `&'static Eal`.
        (!eal.is_null()).then(|| unsafe { &*eal })
    }

    /// The EAL new allocations go to, when routing is on.
    fn routing_eal() -> Option<&'static Eal> {
        if ROUTING.load(Ordering::Acquire) {
            Self::registered()
        } else {
            None
        }
    }

    /// The registered EAL if `ptr` is one of its heap blocks (by address: see module notes).
    fn owner_of(ptr: *mut u8) -> Option<&'static Eal> {
        Self::registered().filter(|eal| eal.memory().owns_va(ptr as usize))
    }

    fn heap_alloc(layout: Layout, zeroed: bool) -> Option<*mut u8> {
        let eal = Self::routing_eal()?;
        let _entry = enter_heap()?;
        let heaps = eal.heaps();
        let socket = Socket::from_recorded(SOCKET.load(Ordering::Acquire));
        let got = if zeroed {
            heaps.zmalloc_socket(layout.size(), layout.align(), socket)
        } else {
            heaps.malloc_socket(layout.size(), layout.align(), socket)
        };
        got.ok().map(NonNull::as_ptr)
    }
}

// SAFETY: every block returned is either a fresh heap block of at least `layout.size()` bytes
// at `layout.align()` (the heap honours any power-of-two alignment) or the system allocator's
// answer for the same layout; `dealloc`/`realloc` send a block back to the allocator whose
// address range it lies in, which is the one that produced it.
unsafe impl GlobalAlloc for DpmemGlobalAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::heap_alloc(layout, false) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout has a non-zero size, as `GlobalAlloc::alloc` requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::heap_alloc(layout, true) {
            Some(ptr) => ptr,
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(eal) = Self::owner_of(ptr) else {
            // SAFETY: not in the EAL's windows, so the system allocator made this block.
            unsafe { System.dealloc(ptr, layout) };
            return;
        };
        // Under a dpmem lock (see module notes): leak rather than risk waiting on a lock.
        let Some(_entry) = enter_heap() else {
            return;
        };
        let Some(block) = NonNull::new(ptr) else {
            return;
        };
        // SAFETY: the caller gives up a block this allocator returned; it is a heap block.
        let _ = unsafe { eal.heaps().free(block) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(eal) = Self::owner_of(ptr) else {
            // SAFETY: a system block with its layout, and a non-zero new size, as required.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        if let (Some(_entry), Some(block)) = (enter_heap(), NonNull::new(ptr)) {
            let socket = Socket::from_recorded(SOCKET.load(Ordering::Acquire));
            // SAFETY: the caller owns the block and stops using `ptr` if this succeeds.
            let resized = unsafe {
                eal.heaps()
                    .realloc_socket(Some(block), new_size, layout.align(), socket)
            };
            if let Ok(new) = resized {
                return new.as_ptr();
            }
        }
        // The heap cannot hold the new size (it keeps the old block then): move the data to
        // wherever `alloc` finds room.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return null_mut();
        };
        // SAFETY: `new_layout` has the caller's non-zero new size.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct, the copy fits in both.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old block is given up now that its data moved.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}
