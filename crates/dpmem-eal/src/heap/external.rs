//! External heaps: named malloc heaps over memory the user brings (DPDK's
//! `rte_malloc_heap_create` family), how users hand dpmem their own buffers.
//!
//! A heap is created empty, with a socket id of its own from [`EXTERNAL_SOCKET_BASE`](super::EXTERNAL_SOCKET_BASE) up; chunks
//! of user memory are added to it, each described by an external memseg list (so VA → memseg
//! and VA → IOVA work for them) and handed to the heap as one free element. Allocations that
//! name the heap's socket id come from those chunks; "any socket" never does. A chunk leaves the
//! heap only whole and only when nothing is allocated in it; the heap is destroyed only when it
//! has no memory left.
//!
//! Other processes use a heap after mapping each chunk at the same address themselves and
//! attaching it ([`Heaps::heap_memory_attach`]); a process that has not attached every chunk of
//! a heap is refused allocations from it, and a chunk is not removed while another live process
//! is attached to it.
//!
//! Lock order, as everywhere in the heaps: the directory, then a heap, then the hotplug lock.

use super::directory::{encode_heap_name, HeapEntry, HeapKind};
use super::directory_repair::lock_directory;
use super::elem::{elem_flags, Elem, ElemState, CACHE_LINE, HEADER_LEN};
use super::malloc_heap::HeapOps;
use super::recovery::lock_heap;
use super::state::{HeapState, SharedHeap, HEAP_NAME_LEN};
use super::{heap_addr, Heaps};
use crate::error::EalError;
use crate::iova::Iova;
use crate::memory::{check_range, ExternalArea, MemEvent};
use crate::memseg_list::MemsegListHeader;
use crate::socket::{Socket, SOCKET_ID_ANY};

/// A heap found by name: its slot, socket id and shared state.
struct NamedHeap<'a> {
    name: [u8; HEAP_NAME_LEN],
    socket_id: i32,
    shared: &'a SharedHeap,
}

fn describe(va: u64, len: u64) -> String {
    format!("{va:#x}+{len:#x}")
}

impl<'a> Heaps<'a> {
    /// Socket ids of the external heaps, ascending.
    pub fn external_sockets(&self) -> Vec<Socket> {
        self.external_socket_ids()
            .into_iter()
            .map(Socket::from_recorded)
            .collect()
    }

    /// [`Heaps::external_sockets`] as the shared tables record them.
    pub(super) fn external_socket_ids(&self) -> Vec<i32> {
        let Ok(dir) = lock_directory(self.memory) else {
            return Vec::new();
        };
        let mut sockets: Vec<i32> = dir
            .entries
            .iter()
            .filter(|e| e.kind() == HeapKind::External)
            .map(|e| e.socket_id)
            .collect();
        sockets.sort_unstable();
        sockets
    }

    /// The external heap called `name`: `ENOENT` when there is none, `EPERM` when the name is a
    /// socket heap's (those take no external memory).
    fn external_heap(&self, name: &str) -> Result<NamedHeap<'a>, EalError> {
        let encoded = encode_heap_name(name)?;
        let dir = lock_directory(self.memory)?;
        let slot = dir.find_name(&encoded).ok_or_else(|| EalError::NotFound {
            what: "heap",
            name: name.into(),
        })?;
        let entry = dir.entries[slot];
        if entry.kind() != HeapKind::External {
            return Err(EalError::NotPermitted(format!(
                "heap {name:?} is the heap of socket {}, not an external heap",
                entry.socket_id
            )));
        }
        Ok(NamedHeap {
            name: entry.name,
            socket_id: entry.socket_id,
            shared: &self.memory.shared().heaps[slot],
        })
    }

    /// Locks the heap found by [`Heaps::external_heap`], checking it was not destroyed (and its
    /// slot reused) since it was looked up.
    fn lock_named<'h>(
        &self,
        heap: &'h NamedHeap<'a>,
        name: &str,
    ) -> Result<crate::sync::SharedLockedGuard<'h, HeapState>, EalError> {
        let st = lock_heap(self.memory, heap.shared)?;
        if st.in_use == 0 || st.socket_id != heap.socket_id || st.name != heap.name {
            return Err(EalError::NotFound {
                what: "heap",
                name: name.into(),
            });
        }
        Ok(st)
    }

    /// Creates an empty heap called `name` (DPDK's `rte_malloc_heap_create`) and returns the
    /// [`Socket::External`] that allocates from it. Its number is DPDK's socket id less 256;
    /// numbers are never reused.
    ///
    /// Errors: `EINVAL` for an empty name or one longer than 31 bytes, `EEXIST` when a heap
    /// (socket heaps included: `socket_0`, ...) has that name, `ENOSPC` when all
    /// [`super::MAX_HEAPS`] heap slots are in use.
    pub fn heap_create(&self, name: &str) -> Result<Socket, EalError> {
        let encoded = encode_heap_name(name)?;
        let mut dir = lock_directory(self.memory)?;
        if dir.find_name(&encoded).is_some() {
            return Err(EalError::AlreadyExists {
                what: "heap",
                name: name.into(),
            });
        }
        let slot = dir.free_slot().ok_or_else(|| {
            EalError::Limit(format!(
                "no heap slot left for heap {name:?}: all {} are in use",
                super::MAX_HEAPS
            ))
        })?;
        let socket_id = dir.next_socket_id;
        let next = socket_id
            .checked_add(1)
            .ok_or_else(|| EalError::Limit("external heap socket ids are exhausted".into()))?;
        let shared = &self.memory.shared().heaps[slot];
        {
            let mut st = lock_heap(self.memory, shared)?;
            // A free slot never had a heap, or had one destroyed with no memory and no blocks:
            // its free lists are empty and only the identity and counters need setting.
            debug_assert!(st.free.is_empty() && st.first == 0 && st.total_bytes == 0);
            st.name = encoded;
            st.socket_id = socket_id;
            st.in_use = 1;
            st.first = 0;
            st.last = 0;
            st.total_bytes = 0;
            st.releasable_bytes = 0;
            st.alloc_count = 0;
            st.fallback_alloc_count = 0;
        }
        dir.entries[slot] = HeapEntry {
            name: encoded,
            socket_id,
            kind: HeapKind::External as u32,
        };
        dir.next_socket_id = next;
        Ok(Socket::from_recorded(socket_id))
    }

    /// Destroys the external heap `name` (DPDK's `rte_malloc_heap_destroy`). Its socket id is
    /// not given to any later heap.
    ///
    /// Errors: `EINVAL` for a bad name, `ENOENT` when there is no such heap, `EPERM` for a
    /// socket heap, `EBUSY` while the heap still has memory (remove it first) or blocks.
    pub fn heap_destroy(&self, name: &str) -> Result<(), EalError> {
        let encoded = encode_heap_name(name)?;
        let mut dir = lock_directory(self.memory)?;
        let slot = dir.find_name(&encoded).ok_or_else(|| EalError::NotFound {
            what: "heap",
            name: name.into(),
        })?;
        if dir.entries[slot].kind() != HeapKind::External {
            return Err(EalError::NotPermitted(format!(
                "heap {name:?} is the heap of socket {}; socket heaps cannot be destroyed",
                dir.entries[slot].socket_id
            )));
        }
        let mut st = lock_heap(self.memory, &self.memory.shared().heaps[slot])?;
        if st.alloc_count != 0 || st.total_bytes != 0 {
            return Err(EalError::Busy(format!(
                "heap {name:?} still has {} bytes of memory and {} blocks allocated; free the blocks and remove its memory first",
                st.total_bytes, st.alloc_count
            )));
        }
        st.name = [0; HEAP_NAME_LEN];
        st.socket_id = 0;
        st.in_use = 0;
        st.fallback_alloc_count = 0;
        dir.entries[slot] = HeapEntry::default();
        Ok(())
    }

    /// The socket id of the heap called `name` (DPDK's `rte_malloc_heap_get_socket`): a socket
    /// heap's (`socket_0` → 0) or an external heap's. `EINVAL` for a bad name, `ENOENT` for an
    /// unknown one.
    pub fn heap_get_socket(&self, name: &str) -> Result<Socket, EalError> {
        let encoded = encode_heap_name(name)?;
        let dir = lock_directory(self.memory)?;
        dir.find_name(&encoded)
            .map(|slot| Socket::from_recorded(dir.entries[slot].socket_id))
            .ok_or_else(|| EalError::NotFound {
                what: "heap",
                name: name.into(),
            })
    }

    /// Whether `socket` is the socket id of an external heap (DPDK's
    /// `rte_malloc_heap_socket_is_external`): `false` for socket heaps and for
    /// [`Socket::Any`], `EINVAL` for a socket no heap has.
    pub fn heap_socket_is_external(&self, socket: Socket) -> Result<bool, EalError> {
        let socket = super::raw_socket(socket)?;
        if socket == SOCKET_ID_ANY {
            return Ok(false);
        }
        let dir = lock_directory(self.memory)?;
        let slot = dir.find_socket(socket).ok_or_else(|| {
            EalError::InvalidArgument(format!("{} has no heap", Socket::from_recorded(socket)))
        })?;
        Ok(dir.entries[slot].kind() == HeapKind::External)
    }

    /// Adds `[va, va+len)`, memory of `page_size` pages the caller mapped, to the external heap
    /// `name` (DPDK's `rte_malloc_heap_memory_add`). The memory gets an external memseg list
    /// of socket `heap_get_socket(name)` whose pages have the IOVAs of `iovas` (one per page) or
    /// none known, becomes one free block of the heap, and a [`MemEvent::Alloc`] is
    /// announced for it. Its contents are treated as garbage: zeroing allocations clear it.
    ///
    /// Errors, with nothing changed: `EINVAL` for a null or empty range, a page size that is not
    /// a power of two or below 64 bytes (the heap's cache line), an address or length not a
    /// multiple of the page size, an IOVA table of the wrong length, or a bad name; `ENOENT`
    /// for an unknown heap; `EPERM` for a socket heap; `EEXIST` when the range overlaps memory
    /// dpmem already knows; `ENOSPC` when no memseg list (or external segment) is left.
    ///
    /// # Safety
    /// `[va, va+len)` must be memory mapped read-write in this process that nothing else uses,
    /// and it must stay mapped (in every process that attaches it) until it is removed with
    /// [`Heaps::heap_memory_remove`]: the heap writes its element headers there.
    pub unsafe fn heap_memory_add(
        &self,
        name: &str,
        va: *mut u8,
        len: usize,
        iovas: Option<&[Iova]>,
        page_size: usize,
    ) -> Result<(), EalError> {
        let area = ExternalArea::new(va as usize, len, iovas, page_size)?;
        if page_size < CACHE_LINE {
            return Err(EalError::InvalidArgument(format!(
                "page size {page_size} of heap memory is below the heap's {CACHE_LINE}-byte cache line"
            )));
        }
        let heap = self.external_heap(name)?;
        let mut st = self.lock_named(&heap, name)?;
        let lock = self.memory.shared().hotplug_lock.lock();
        let list = self
            .memory
            .create_external_list(&area, heap.socket_id, true)?;
        let mut ops = HeapOps {
            st: &mut st,
            addr: heap_addr(heap.shared),
            memory: self.memory,
        };
        // The chunk's first element starts at `va` and stays there: allocations are cut from
        // the ends of free elements and a chunk never merges with another (its own list), which
        // is how removal finds it.
        ops.add_memory(va as usize, len, list.index, elem_flags::DIRTY);
        self.memory.fire(MemEvent::Alloc, area.va, area.len);
        drop(lock);
        Ok(())
    }

    /// The heap chunk `[va, va+len)` of `heap`, checked as removal and attachment need it.
    /// Hotplug lock held.
    fn heap_chunk(
        &self,
        heap: &NamedHeap<'_>,
        name: &str,
        va: usize,
        len: usize,
    ) -> Result<MemsegListHeader, EalError> {
        match self.memory.find_external(va as u64, len as u64) {
            Some(h) if h.is_heap() && h.socket_id == heap.socket_id => Ok(h),
            _ => Err(EalError::NotFound {
                what: "memory chunk",
                name: format!("{} of heap {name:?}", describe(va as u64, len as u64)),
            }),
        }
    }

    /// Takes the chunk `[va, va+len)` out of the external heap `name` and forgets its memseg
    /// list (DPDK's `rte_malloc_heap_memory_remove`); a [`MemEvent::Free`] is announced first.
    /// The range must be exactly a chunk that was added.
    ///
    /// Errors, with nothing changed: `EINVAL` for a null or empty range or a bad name; `ENOENT`
    /// for an unknown heap, a range that is not one of its chunks, or a chunk this process has
    /// not attached (it may not even be mapped here); `EPERM` for a socket heap; `EBUSY` while
    /// blocks are allocated in the chunk or another live process is attached to it.
    pub fn heap_memory_remove(&self, name: &str, va: *mut u8, len: usize) -> Result<(), EalError> {
        check_range(va as usize, len)?;
        let heap = self.external_heap(name)?;
        let mut st = self.lock_named(&heap, name)?;
        let _lock = self.memory.shared().hotplug_lock.lock();
        let chunk = self.heap_chunk(&heap, name, va as usize, len)?;
        if !crate::memory::Memory::is_attached_here(&chunk) {
            return Err(EalError::NotFound {
                what: "attachment of this process to memory chunk",
                name: format!("{} of heap {name:?}", describe(chunk.base_va, chunk.len)),
            });
        }
        let others = self.memory.other_users(&chunk);
        if !others.is_empty() {
            return Err(EalError::Busy(format!(
                "memory {} of heap {name:?} is still attached in processes {others:?}; they must detach first",
                describe(chunk.base_va, chunk.len)
            )));
        }
        let addr = heap_addr(heap.shared);
        let elem = Elem(va as usize);
        let h = elem.load();
        let whole_and_free = h.magic == elem.expected_magic()
            && h.heap == addr
            && h.state() == Some(ElemState::Free)
            && h.size == len as u64;
        if !whole_and_free {
            return Err(EalError::Busy(format!(
                "memory {} of heap {name:?} still has blocks allocated in it",
                describe(chunk.base_va, chunk.len)
            )));
        }
        self.memory.fire(MemEvent::Free, chunk.base_va, chunk.len);
        take_out_whole_element(
            &mut HeapOps {
                st: &mut st,
                addr,
                memory: self.memory,
            },
            elem,
        );
        self.memory.destroy_external_list(chunk.index);
        Ok(())
    }

    /// Records that this process uses the chunk `[va, va+len)` of the external heap `name`,
    /// which another process added (DPDK's `rte_malloc_heap_memory_attach`). Nothing is mapped;
    /// a process must attach every chunk of a heap before it allocates from it. Attaching twice
    /// is harmless.
    ///
    /// Errors: `EINVAL` for a null or empty range or a bad name, `ENOENT` for an unknown heap or
    /// a range that is not one of its chunks, `EPERM` for a socket heap, `ENOSPC` when
    /// 16 live processes (the most the shared list records) are attached already.
    ///
    /// # Safety
    /// The chunk must be mapped read-write at `va` in this process (the same memory the process
    /// that added it mapped there) until this process detaches or ends: allocations and frees
    /// here read and write heap headers in it.
    pub unsafe fn heap_memory_attach(
        &self,
        name: &str,
        va: *mut u8,
        len: usize,
    ) -> Result<(), EalError> {
        check_range(va as usize, len)?;
        let heap = self.external_heap(name)?;
        let _lock = self.memory.shared().hotplug_lock.lock();
        let chunk = self.heap_chunk(&heap, name, va as usize, len)?;
        self.memory.attach_external(chunk.index)
    }

    /// Records that this process no longer uses the chunk `[va, va+len)` of the external heap
    /// `name` (DPDK's `rte_malloc_heap_memory_detach`); afterwards it cannot allocate from the
    /// heap until it attaches again. Errors as for [`Heaps::heap_memory_attach`], and `ENOENT`
    /// when this process is not attached.
    pub fn heap_memory_detach(&self, name: &str, va: *mut u8, len: usize) -> Result<(), EalError> {
        check_range(va as usize, len)?;
        let heap = self.external_heap(name)?;
        let _lock = self.memory.shared().hotplug_lock.lock();
        let chunk = self.heap_chunk(&heap, name, va as usize, len)?;
        self.memory.detach_external(chunk.index)
    }
}

/// Takes free element `elem`, a whole chunk, out of the heap: off its free list, out of the
/// address-ordered links, its bytes no longer counted, and its header erased so nothing mistakes
/// the user's memory for a heap element later.
fn take_out_whole_element(ops: &mut HeapOps<'_>, elem: Elem) {
    let h = elem.load();
    ops.st.free.remove(elem, &h);
    // Unlinked and erased in one step (an unlinked header left marked would be a stale
    // element in the user's memory).
    ops.step(|ops| {
        ops.st.journal.save_header(elem);
        ops.unlink(elem);
        Elem::zero_range(elem.0, HEADER_LEN);
    });
    ops.st.total_bytes -= h.size;
}
