//! Malloc heaps: one per socket, carved from the memseg lists' memory (DPDK's `rte_malloc`),
//! and named heaps of memory the user brings (external heaps, see [`Heaps::heap_create`]).
//!
//! A heap's state (free lists, bitmaps, counters, lock) lives in the shared configuration and
//! its element headers in the hugepage memory they describe, so every process sees one heap.
//! [`Heaps`] is this process's handle: the byte/pointer API DPDK users know (`malloc`,
//! `zmalloc`, `calloc`, `realloc`, `free` and their `_socket` forms), typed boxes
//! ([`HeapBox`]), statistics, pointer validation, a whole-heap consistency check and a dump.
//!
//! Rules kept from DPDK 22.11: sizes round up to a cache line and alignments to at least one;
//! a zero size or an alignment that is not a power of two is refused; "any socket" tries the
//! caller's socket first, then the others; zeroing allocations clear only memory that may hold
//! old data; heaps grow by mapping pages (memory events and validators apply) and give whole
//! free pages back, except pinned ones. External heaps have socket ids from
//! [`EXTERNAL_SOCKET_BASE`] up; they never grow and "any socket" never falls back to them: they
//! serve only allocations that name their socket.
//!
//! Small blocks freed on a socket heap wait unmerged on quick lists for the next request of
//! their size ([`quick_lists`]); whatever looks at the heap's free space merges them first, so
//! statistics and dumps read as if every free had merged at once.

mod allocator;
pub mod directory;
pub mod elem;
mod external;
pub mod free_index;
mod global_alloc;
mod heap_box;
pub mod malloc_heap;
pub mod quick_lists;

use std::fmt::Write as _;
use std::ptr::NonNull;

use serde::Serialize;

use crate::error::EalError;
use crate::memory::Memory;
use crate::memseg::SOCKET_ID_ANY;
use crate::shared_config::{decode_str, encode_str};
pub use allocator::HeapAllocator;
pub use directory::EXTERNAL_SOCKET_BASE;
use directory::{HeapEntry, HeapKind};
use elem::{elem_flags, Elem, ElemState, CACHE_LINE, HEADER_LEN};
use free_index::class_of;
pub use global_alloc::DpmemGlobalAlloc;
pub use heap_box::HeapBox;
pub use malloc_heap::MAX_HEAPS;
use malloc_heap::{AllocRequest, HeapOps, HeapState, SharedHeap};

/// The largest request size: rounded up to a cache line it stays at most `isize::MAX / 2`.
const MAX_REQUEST: usize = (isize::MAX as usize / 2) & !(CACHE_LINE - 1);

/// The memzone page-size flag of `page_size` (0 for sizes DPDK has no flag for).
pub(crate) fn page_size_flag(page_size: u64) -> u32 {
    use crate::memzone::flags;
    match page_size {
        0x4_0000 => flags::PAGE_256KB,
        0x20_0000 => flags::PAGE_2MB,
        0x100_0000 => flags::PAGE_16MB,
        0x1000_0000 => flags::PAGE_256MB,
        0x2000_0000 => flags::PAGE_512MB,
        0x4000_0000 => flags::PAGE_1GB,
        0x1_0000_0000 => flags::PAGE_4GB,
        0x4_0000_0000 => flags::PAGE_16GB,
        _ => 0,
    }
}

/// Statistics of one heap (DPDK's `rte_malloc_socket_stats`, plus the any-socket fallbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeapStats {
    pub name: String,
    pub socket_id: i32,
    /// Memory the heap owns, element headers included.
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub alloc_bytes: u64,
    /// Size of the biggest free element (header included, as DPDK counts it).
    pub greatest_free_bytes: u64,
    pub free_count: u64,
    pub alloc_count: u64,
    /// Any-socket allocations this heap served because the caller's socket could not.
    pub fallback_alloc_count: u64,
    /// A named heap of user memory (socket id from [`EXTERNAL_SOCKET_BASE`] up).
    pub external: bool,
    /// Whether this process can read the heap's elements: always for socket heaps; for an
    /// external heap, once this process attached all of its memory. When `false` only
    /// `total_bytes`, `alloc_count` and `fallback_alloc_count` are known, and the free-space
    /// fields and `alloc_bytes` are 0.
    pub attached: bool,
}

/// The heaps of one EAL instance, as this process reaches them.
#[derive(Debug, Clone, Copy)]
pub struct Heaps<'a> {
    memory: &'a Memory,
}

/// Sets up a heap per socket that has memseg lists and hands it the memory mapped at start-up
/// (preallocated, legacy or `--no-huge`), one element per virtually contiguous run of pages.
/// The primary calls this before publishing the configuration.
pub(crate) fn init_primary(memory: &Memory) -> Result<(), EalError> {
    let heaps = Heaps { memory };
    let mut directory = memory.shared().heap_directory.lock();
    for socket in memory.sockets() {
        let shared = heaps.shared_heap(socket).ok_or_else(|| {
            EalError::Limit(format!(
                "socket {socket} has no heap slot (at most {MAX_HEAPS})"
            ))
        })?;
        shared.force_unlock();
        let mut st = shared.lock();
        st.name = encode_str(&format!("socket_{socket}"))?;
        st.socket_id = socket;
        st.in_use = 1;
        directory.entries[socket as usize] = HeapEntry {
            name: st.name,
            socket_id: socket,
            kind: HeapKind::Socket as u32,
        };
    }
    drop(directory);
    for list in memory.lists().into_iter().filter(|l| !l.external) {
        for seg_run in contiguous_runs(memory, list.index) {
            let (va, len, dirty, releasable) = seg_run;
            let shared = heaps
                .shared_heap(list.socket_id)
                .expect("heap created for every socket with lists");
            let mut st = shared.lock();
            let mut ops = HeapOps {
                st: &mut st,
                addr: heap_addr(shared),
                memory,
            };
            let mut flags = 0;
            if dirty {
                flags |= elem_flags::DIRTY;
            }
            if releasable {
                flags |= elem_flags::RELEASABLE;
            }
            ops.add_memory(va, len, list.index, flags);
        }
    }
    Ok(())
}

/// Runs of virtually contiguous mapped pages of list `index`: (va, len, any dirty, any not
/// pinned).
fn contiguous_runs(memory: &Memory, index: u32) -> Vec<(usize, usize, bool, bool)> {
    let mut runs: Vec<(usize, usize, bool, bool)> = Vec::new();
    for seg in memory.segments(index) {
        match runs.last_mut() {
            Some(run) if run.0 + run.1 == seg.va as usize => {
                run.1 += seg.len as usize;
                run.2 |= seg.is_dirty();
                run.3 |= !seg.is_pinned();
            }
            _ => runs.push((
                seg.va as usize,
                seg.len as usize,
                seg.is_dirty(),
                !seg.is_pinned(),
            )),
        }
    }
    runs
}

#[inline]
fn heap_addr(shared: &SharedHeap) -> u64 {
    shared as *const SharedHeap as u64
}

fn bad_arg(msg: String) -> EalError {
    EalError::InvalidArgument(msg)
}

impl<'a> Heaps<'a> {
    pub(crate) fn new(memory: &'a Memory) -> Self {
        Self { memory }
    }

    /// The slot of socket heap `socket` (socket heaps sit in the slot of their socket id).
    #[inline]
    fn shared_heap(&self, socket: i32) -> Option<&'a SharedHeap> {
        usize::try_from(socket)
            .ok()
            .and_then(|s| self.memory.shared().heaps.get(s))
    }

    /// The heap of socket id `socket`, socket heap or external heap. Whoever locks it checks
    /// that it still is that socket's heap (an external heap may be destroyed meanwhile).
    #[inline(always)]
    fn heap_of(&self, socket: i32) -> Option<&'a SharedHeap> {
        if socket >= EXTERNAL_SOCKET_BASE {
            return self.external_heap_of(socket);
        }
        self.heap_in_use(socket)
    }

    /// [`Heaps::heap_of`] for an external heap's socket id: a look in the directory.
    fn external_heap_of(&self, socket: i32) -> Option<&'a SharedHeap> {
        let slot = self
            .memory
            .shared()
            .heap_directory
            .lock()
            .find_socket(socket)?;
        self.memory.shared().heaps.get(slot)
    }

    /// Every socket id that has a heap: the sockets', then the external heaps', ascending.
    pub fn heap_sockets(&self) -> Vec<i32> {
        let mut sockets = self.sockets();
        sockets.extend(self.external_sockets());
        sockets
    }

    /// The heap of `socket`, if it has one: heaps are set up at start-up for exactly the
    /// sockets that have memseg lists, which never change, so no heap lock is needed to know.
    #[inline(always)]
    fn heap_in_use(&self, socket: i32) -> Option<&'a SharedHeap> {
        self.memory
            .socket_ids()
            .contains(&socket)
            .then(|| self.shared_heap(socket))
            .flatten()
    }

    /// Sockets that have a socket heap, ascending (external heaps: [`Heaps::external_sockets`]).
    pub fn sockets(&self) -> Vec<i32> {
        self.socket_heaps().collect()
    }

    /// [`Heaps::sockets`] without collecting them: the allocation paths walk it.
    fn socket_heaps(&self) -> impl Iterator<Item = i32> + 'a {
        let heaps = *self;
        self.memory
            .socket_ids()
            .iter()
            .copied()
            .filter(move |&s| heaps.shared_heap(s).is_some())
    }

    /// The socket "any socket" tries first: the calling thread's, when it has a heap.
    pub fn preferred_socket(&self) -> i32 {
        self.preferred_socket_given(crate::lcore::socket_id())
    }

    /// [`Heaps::preferred_socket`] for a thread whose own socket is `own`.
    fn preferred_socket_given(&self, own: i32) -> i32 {
        // The calling thread's socket (its lcore's, or the one its affinity pins it to), as
        // DPDK's `malloc_get_numa_socket`; threads that span sockets start at the lowest one.
        let mut first = None;
        let mut has_zero = false;
        for s in self.socket_heaps() {
            if s == own {
                return own;
            }
            first.get_or_insert(s);
            has_zero |= s == 0;
        }
        if has_zero {
            0
        } else {
            first.unwrap_or(0)
        }
    }

    /// Normalises a request as DPDK does, refusing what it refuses.
    #[inline]
    fn request(&self, size: usize, align: usize) -> Result<AllocRequest, EalError> {
        // Every sensible request passes these, so the refusals (and their messages) stay out of
        // line, out of the allocation path.
        if size != 0 && size <= MAX_REQUEST && align.is_power_of_two() | (align == 0) {
            return Ok(AllocRequest {
                size: size.next_multiple_of(CACHE_LINE),
                align: align.max(CACHE_LINE),
                bound: 0,
                contig: false,
                page_flags: 0,
            });
        }
        self.refused_request(size, align)
    }

    /// The whole check of a request [`Heaps::request`] did not accept at once: it is refused,
    /// with the reason.
    #[cold]
    fn refused_request(&self, size: usize, align: usize) -> Result<AllocRequest, EalError> {
        if size == 0 {
            return Err(bad_arg("allocation of 0 bytes".into()));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(bad_arg(format!("alignment {align} is not a power of two")));
        }
        let size = size
            .checked_next_multiple_of(CACHE_LINE)
            .filter(|s| *s <= isize::MAX as usize / 2)
            .ok_or_else(|| bad_arg(format!("allocation of {size} bytes is too large")))?;
        Ok(AllocRequest {
            size,
            align: align.max(CACHE_LINE),
            bound: 0,
            contig: false,
            page_flags: 0,
        })
    }

    /// Sockets to try, in order, for `socket` (which may be [`SOCKET_ID_ANY`]).
    fn socket_order(&self, socket: i32) -> Result<Vec<i32>, EalError> {
        if socket == SOCKET_ID_ANY {
            let first = self.preferred_socket();
            let mut order = vec![first];
            order.extend(self.socket_heaps().filter(|&s| s != first));
            return Ok(order);
        }
        if self.heap_of(socket).is_none() {
            return Err(bad_arg(format!("socket {socket} has no heap")));
        }
        Ok(vec![socket])
    }

    /// Refuses allocation from external heap `st` in a process that has not attached all of its
    /// memory: the heap would hand out, and write headers into, memory this process may not
    /// have mapped. Heap lock held, so the heap's memory cannot change meanwhile.
    #[inline]
    fn check_attached(&self, st: &HeapState) -> Result<(), EalError> {
        if st.socket_id < EXTERNAL_SOCKET_BASE {
            return Ok(());
        }
        self.check_external_attached(st)
    }

    /// [`Heaps::check_attached`] for an external heap.
    fn check_external_attached(&self, st: &HeapState) -> Result<(), EalError> {
        let _lock = self.memory.shared().hotplug_lock.lock_reentrant();
        match self.memory.unattached_heap_memory(st.socket_id) {
            None => Ok(()),
            Some((va, len)) => Err(EalError::NotPermitted(format!(
                "memory {va:#x}+{len:#x} of heap {:?} is not attached in this process (map it at the same address, then heap_memory_attach)",
                decode_str(&st.name)
            ))),
        }
    }

    /// Allocates `req` on `socket`'s heap: existing memory first, then new pages. With
    /// `hint_only` the page-size flags are a preference. Returns the data address and whether
    /// the block may hold old data.
    #[inline]
    fn alloc_on(
        &self,
        socket: i32,
        req: &AllocRequest,
        hint_only: bool,
        fallback: bool,
    ) -> Result<Option<(usize, bool)>, EalError> {
        match self.heap_of(socket) {
            Some(shared) => self.alloc_in(shared, socket, req, hint_only, fallback),
            None => Ok(None),
        }
    }

    /// [`Heaps::alloc_on`] with the heap of `socket` already found.
    #[inline]
    fn alloc_in(
        &self,
        shared: &SharedHeap,
        socket: i32,
        req: &AllocRequest,
        hint_only: bool,
        fallback: bool,
    ) -> Result<Option<(usize, bool)>, EalError> {
        let mut st = shared.lock();
        if st.in_use == 0 || st.socket_id != socket {
            return Ok(None);
        }
        self.check_attached(&st)?;
        // A secondary maps what the primary changed first, under the heap lock: the primary
        // grows and shrinks this heap only under it, so what is mapped here now stays right
        // while the block is carved.
        self.memory.sync_with_primary()?;
        // External heaps have only the memory the user added.
        let may_grow = socket < EXTERNAL_SOCKET_BASE;
        let mut ops = HeapOps {
            st: &mut st,
            addr: heap_addr(shared),
            memory: self.memory,
        };
        let got = ops.alloc(req, may_grow).or_else(|| {
            (hint_only && req.page_flags != 0).then(|| {
                let any_page = AllocRequest {
                    page_flags: 0,
                    ..*req
                };
                ops.alloc(&any_page, may_grow)
            })?
        });
        let Some((data, dirty)) = got else {
            return Ok(None);
        };
        if fallback {
            st.fallback_alloc_count += 1;
        }
        Ok(Some((data.get(), dirty)))
    }

    /// The allocation path shared by the heap API and memzones. Builds no socket list: it runs
    /// on every allocation.
    #[inline]
    pub(crate) fn alloc_request(
        &self,
        req: &AllocRequest,
        socket: i32,
        hint_only: bool,
    ) -> Result<(usize, bool), EalError> {
        let exhausted = || EalError::HeapExhausted {
            size: req.size,
            align: req.align,
            socket,
        };
        if socket != SOCKET_ID_ANY {
            let shared = self
                .heap_of(socket)
                .ok_or_else(|| bad_arg(format!("socket {socket} has no heap")))?;
            return self
                .alloc_in(shared, socket, req, hint_only, false)?
                .ok_or_else(exhausted);
        }
        // The calling thread's own socket first; when it has a heap it is also the preferred
        // socket, so trying it first changes no order.
        let own = crate::lcore::socket_id();
        if own >= 0 {
            if let Some(got) = self.alloc_on(own, req, hint_only, false)? {
                return Ok(got);
            }
        }
        self.alloc_any_socket_after(own, req, hint_only)
            .and_then(|got| got.ok_or_else(exhausted))
    }

    /// The rest of an "any socket" allocation once the calling thread's own socket `own` (when
    /// not negative) could not serve it: the preferred socket (not a fallback), then every other
    /// one (fallbacks).
    fn alloc_any_socket_after(
        &self,
        own: i32,
        req: &AllocRequest,
        hint_only: bool,
    ) -> Result<Option<(usize, bool)>, EalError> {
        let own_tried = own >= 0;
        let first = self.preferred_socket_given(own);
        if !(own_tried && first == own) {
            if let Some(got) = self.alloc_on(first, req, hint_only, false)? {
                return Ok(Some(got));
            }
        }
        for s in self.socket_heaps() {
            if s == first || (own_tried && s == own) {
                continue;
            }
            if let Some(got) = self.alloc_on(s, req, hint_only, true)? {
                return Ok(Some(got));
            }
        }
        Ok(None)
    }

    /// Allocates the biggest block any allowed free element holds (for memzones of length 0):
    /// existing memory only, as DPDK does. Returns the data address and its length.
    pub(crate) fn alloc_biggest(
        &self,
        socket: i32,
        align: usize,
        page_flags: u32,
        contig: bool,
    ) -> Result<(usize, usize), EalError> {
        let order = self.socket_order(socket)?;
        for &s in &order {
            let Some(shared) = self.heap_of(s) else {
                continue;
            };
            let mut st = shared.lock();
            if st.in_use == 0 || st.socket_id != s {
                continue;
            }
            self.check_attached(&st)?;
            // As in `alloc_in`: catch up under the heap lock.
            self.memory.sync_with_primary()?;
            let mut ops = HeapOps {
                st: &mut st,
                addr: heap_addr(shared),
                memory: self.memory,
            };
            ops.consolidate();
            let len = ops.biggest_free(align, page_flags, contig);
            if len == 0 {
                continue;
            }
            let req = AllocRequest {
                size: len,
                align,
                bound: 0,
                contig,
                page_flags,
            };
            if let Some((data, _)) = ops.alloc(&req, false) {
                return Ok((data.get(), len));
            }
        }
        Err(EalError::HeapExhausted {
            size: 0,
            align,
            socket,
        })
    }

    /// Finds the live block whose data starts at `ptr` and runs `f` on it with its heap
    /// locked. Foreign pointers, pointers into the middle of a block and freed blocks are
    /// refused by what their headers say, before anything changes.
    #[inline]
    fn with_block<R>(
        &self,
        ptr: usize,
        f: impl FnOnce(&mut HeapOps<'_>, Elem, &elem::ElemHeader) -> R,
    ) -> Result<R, EalError> {
        let bad = |reason: &'static str| EalError::BadPointer { addr: ptr, reason };
        if !ptr.is_multiple_of(CACHE_LINE) || ptr < HEADER_LEN {
            return Err(bad(
                "not cache-line aligned, so no block of a dpmem heap starts there",
            ));
        }
        let header = Elem(ptr - HEADER_LEN);
        let not_mapped = || bad("not in memory mapped by this EAL");
        let (shared, mut st) = match self.memory.locate_internal(header.addr()) {
            // dpmem's own memory, the case of every block of a socket heap: the lists' windows
            // and sockets are fixed at start-up, so the heap is known without the hotplug lock.
            Some((list, slot)) => {
                let mapped = || list.occupancy.is_used(slot).unwrap_or(false);
                // An internal list's socket is one of `Memory::sockets`, all of which have a heap
                // in the slot of their id (see `heap_in_use`).
                let Some(shared) = self.shared_heap(list.header().socket_id) else {
                    return Err(if mapped() {
                        bad("no heap for its socket")
                    } else {
                        not_mapped()
                    });
                };
                let st = shared.lock();
                // The heap's pages are unmapped only by the heap, under this lock, so a page
                // seen mapped now stays mapped while its header is read; a secondary first
                // maps here what the primary changed (under this lock, so it stays right).
                if !mapped() {
                    return Err(not_mapped());
                }
                self.memory.sync_with_primary()?;
                (shared, st)
            }
            None => {
                let (_, socket, _) = self.memory.page_at(header.0).ok_or_else(not_mapped)?;
                if !self.memory.attached_here(header.0) {
                    return Err(bad(
                        "in external memory this process has not attached (it may not be mapped here)",
                    ));
                }
                let shared = self
                    .heap_of(socket)
                    .ok_or_else(|| bad("no heap for its socket"))?;
                // Pages of this heap are unmapped only by this heap under this lock, so the
                // header checked mapped above stays mapped while it is read.
                (shared, shared.lock())
            }
        };
        let addr = heap_addr(shared);
        let h = header.load();
        if h.magic != header.expected_magic() || h.heap != addr {
            return Err(bad(
                "no live block starts here (never handed out, or freed and merged since)",
            ));
        }
        let real = match h.state() {
            Some(ElemState::Busy) if h.pad == 0 => header,
            Some(ElemState::Busy) => {
                return Err(bad("inside a padded block, not at its start"));
            }
            Some(ElemState::Free | ElemState::Parked) => {
                return Err(EalError::DoubleFree { addr: ptr })
            }
            Some(ElemState::Pad) => {
                let real = Elem(header.0.wrapping_sub(h.pad as usize));
                if h.pad == 0 || self.memory.page_at(real.0).is_none() {
                    return Err(bad("a pad header leads outside the heap"));
                }
                let rh = real.load();
                if rh.magic != real.expected_magic() || rh.heap != addr || rh.pad != h.pad {
                    return Err(bad("a pad header leads to no block"));
                }
                match rh.state() {
                    Some(ElemState::Busy) => real,
                    Some(ElemState::Free | ElemState::Parked) => {
                        return Err(EalError::DoubleFree { addr: ptr })
                    }
                    _ => return Err(bad("a pad header leads to no block")),
                }
            }
            None => return Err(bad("no live block starts here")),
        };
        // A write past the end is reported, never merged into a neighbour (feature `debug`).
        let rh = real.load();
        if !real.seal_intact(rh.size) {
            return Err(EalError::BlockOverrun {
                addr: ptr,
                size: rh.usable_len(),
            });
        }
        let mut ops = HeapOps {
            st: &mut st,
            addr,
            memory: self.memory,
        };
        Ok(f(&mut ops, real, &rh))
    }

    /// Allocates `size` bytes aligned to `align` (0: a cache line) on the preferred socket,
    /// falling back to the others (DPDK's `rte_malloc`).
    pub fn malloc(&self, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.malloc_socket(size, align, SOCKET_ID_ANY)
    }

    /// Allocates on `socket`, or any socket for [`SOCKET_ID_ANY`] (DPDK's `rte_malloc_socket`).
    pub fn malloc_socket(
        &self,
        size: usize,
        align: usize,
        socket: i32,
    ) -> Result<NonNull<u8>, EalError> {
        let req = self.request(size, align)?;
        let (data, _) = self.alloc_request(&req, socket, false)?;
        Ok(NonNull::new(data as *mut u8).expect("heap memory is never at address 0"))
    }

    /// Like [`Heaps::malloc`], with the memory cleared.
    pub fn zmalloc(&self, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.zmalloc_socket(size, align, SOCKET_ID_ANY)
    }

    /// Like [`Heaps::malloc_socket`], with the memory cleared. Memory that is known to be zero
    /// (fresh pages, or freed next to clean memory and cleared then) is not written again.
    pub fn zmalloc_socket(
        &self,
        size: usize,
        align: usize,
        socket: i32,
    ) -> Result<NonNull<u8>, EalError> {
        let req = self.request(size, align)?;
        let (data, dirty) = self.alloc_request(&req, socket, false)?;
        Elem::clear_block(data, size, dirty);
        Ok(NonNull::new(data as *mut u8).expect("heap memory is never at address 0"))
    }

    /// Cleared memory for `count` objects of `size` bytes.
    pub fn calloc(&self, count: usize, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.calloc_socket(count, size, align, SOCKET_ID_ANY)
    }

    pub fn calloc_socket(
        &self,
        count: usize,
        size: usize,
        align: usize,
        socket: i32,
    ) -> Result<NonNull<u8>, EalError> {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| bad_arg(format!("{count} x {size} bytes overflows")))?;
        self.zmalloc_socket(total, align, socket)
    }

    /// Frees a block (DPDK's `rte_free`). A pointer the heap did not hand out, or one already
    /// freed, is refused with the heap untouched.
    ///
    /// # Safety
    /// Nothing may use the block after it is freed (no live references into it).
    pub unsafe fn free(&self, ptr: NonNull<u8>) -> Result<(), EalError> {
        self.with_block(ptr.as_ptr() as usize, |ops, elem, h| ops.free(elem, h))
    }

    /// Resizes a block to `size` bytes aligned to `align` (DPDK's `rte_realloc`): in place when
    /// the block or its free neighbour has room and the alignment holds, otherwise by moving
    /// the data to a new block. On failure the old block is untouched and still owned by the
    /// caller. `None` allocates.
    ///
    /// # Safety
    /// `ptr`, if any, must not be used after a successful call (it may have moved).
    pub unsafe fn realloc(
        &self,
        ptr: Option<NonNull<u8>>,
        size: usize,
        align: usize,
    ) -> Result<NonNull<u8>, EalError> {
        // SAFETY: the caller's promise is forwarded unchanged.
        unsafe { self.realloc_socket(ptr, size, align, SOCKET_ID_ANY) }
    }

    /// [`Heaps::realloc`] on `socket`: a block on another socket moves there.
    ///
    /// # Safety
    /// As for [`Heaps::realloc`].
    pub unsafe fn realloc_socket(
        &self,
        ptr: Option<NonNull<u8>>,
        size: usize,
        align: usize,
        socket: i32,
    ) -> Result<NonNull<u8>, EalError> {
        let Some(ptr) = ptr else {
            return self.malloc_socket(size, align, socket);
        };
        let req = self.request(size, align)?;
        let old = ptr.as_ptr() as usize;
        let in_place = self.with_block(old, |ops, elem, _| {
            let same_socket = socket == SOCKET_ID_ANY || socket == ops.st.socket_id;
            if same_socket && old.is_multiple_of(req.align) && ops.resize(elem, req.size) {
                return Ok(());
            }
            Err(elem.load().usable_len())
        })?;
        let Err(old_len) = in_place else {
            return Ok(ptr);
        };
        let new = self.malloc_socket(size, align, socket)?;
        // SAFETY: both blocks are live (the old one is the caller's, the new one just made) and
        // distinct, and the copy stays inside both.
        unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old_len.min(size)) };
        self.with_block(old, |ops, elem, h| ops.free(elem, h))?;
        Ok(new)
    }

    /// The usable size of a live block (DPDK's `rte_malloc_validate`): an error for pointers the
    /// heap did not hand out or already freed.
    pub fn validate(&self, ptr: *const u8) -> Result<usize, EalError> {
        self.with_block(ptr as usize, |_, _, h| h.usable_len())
    }

    /// The socket of a live block's heap.
    pub fn socket_of(&self, ptr: *const u8) -> Result<i32, EalError> {
        self.with_block(ptr as usize, |ops, _, _| ops.st.socket_id)
    }

    /// Statistics of `socket`'s heap (a socket heap or an external heap). Small blocks parked
    /// on the quick lists are merged first (as freeing them at once would have: in the primary
    /// of a dynamic-mode EAL that may give pages back, with the memory events that go with it),
    /// so the figures are those of a heap that merges every free.
    pub fn stats(&self, socket: i32) -> Result<HeapStats, EalError> {
        let no_heap = || bad_arg(format!("socket {socket} has no heap"));
        let shared = self.heap_of(socket).ok_or_else(no_heap)?;
        let mut st = shared.lock();
        if st.in_use == 0 || st.socket_id != socket {
            return Err(no_heap());
        }
        // The free headers walked below may sit on pages the primary mapped since this
        // process last caught up: map them first, under the heap lock as everywhere else.
        self.memory.sync_with_primary()?;
        let mut stats = HeapStats {
            name: decode_str(&st.name),
            socket_id: st.socket_id,
            total_bytes: st.total_bytes,
            free_bytes: 0,
            alloc_bytes: 0,
            greatest_free_bytes: 0,
            free_count: 0,
            alloc_count: st.alloc_count,
            fallback_alloc_count: st.fallback_alloc_count,
            external: socket >= EXTERNAL_SOCKET_BASE,
            attached: true,
        };
        if self.check_attached(&st).is_err() {
            // The free elements' headers lie in memory that may not be mapped here.
            stats.attached = false;
            return Ok(stats);
        }
        // Figures as if every free had merged at once.
        HeapOps {
            st: &mut st,
            addr: heap_addr(shared),
            memory: self.memory,
        }
        .consolidate();
        st.free.for_each(|_, _, h| {
            stats.free_count += 1;
            stats.free_bytes += h.size;
            stats.greatest_free_bytes = stats.greatest_free_bytes.max(h.size);
        });
        stats.alloc_bytes = stats.total_bytes - stats.free_bytes;
        Ok(stats)
    }

    /// Statistics of every heap, socket heaps first, then external heaps.
    pub fn all_stats(&self) -> Vec<HeapStats> {
        self.heap_sockets()
            .into_iter()
            .filter_map(|s| self.stats(s).ok())
            .collect()
    }

    /// Checks every heap's invariants: links agree both ways and follow address order, headers
    /// carry their marks, sizes add up, no two adjacent elements are free, every free element is
    /// on the list its size selects and the bitmaps agree with the lists, every parked element
    /// is on its quick list once and the counts agree, and where pages may go back no parked
    /// element keeps one mapped (a page under a parked element holds a busy one, and no parked
    /// element touches a free one holding a whole page). It merges nothing.
    pub fn check(&self) -> Result<(), EalError> {
        for socket in self.heap_sockets() {
            let Some(shared) = self.heap_of(socket) else {
                continue;
            };
            let st = shared.lock();
            // An external heap whose memory this process has not attached cannot be walked here.
            if st.in_use == 0 || st.socket_id != socket || self.check_attached(&st).is_err() {
                continue;
            }
            // A secondary walks the primary's current pages.
            self.memory.sync_with_primary()?;
            check_heap(&st, heap_addr(shared), self.memory)
                .map_err(|reason| EalError::HeapCorrupt { socket, reason })?;
        }
        Ok(())
    }

    /// Every heap and its elements, as text.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for socket in self.heap_sockets() {
            let Ok(stats) = self.stats(socket) else {
                continue;
            };
            let _ = writeln!(
                out,
                "heap {} (socket {}): total {} free {} allocated {} greatest free {} free elements {} busy elements {} fallbacks {}",
                stats.name,
                stats.socket_id,
                stats.total_bytes,
                stats.free_bytes,
                stats.alloc_bytes,
                stats.greatest_free_bytes,
                stats.free_count,
                stats.alloc_count,
                stats.fallback_alloc_count
            );
            let Some(shared) = self.heap_of(socket) else {
                continue;
            };
            let st = shared.lock();
            if st.in_use == 0 || st.socket_id != socket {
                continue;
            }
            if self.check_attached(&st).is_err() {
                let _ = writeln!(out, "  (memory not attached in this process)");
                continue;
            }
            if let Err(e) = self.memory.sync_with_primary() {
                let _ = writeln!(out, "  (cannot map the primary's pages here: {e})");
                continue;
            }
            let mut cur = Elem::from_addr(st.first);
            while let Some(e) = cur {
                let h = e.load();
                let state = match h.state() {
                    Some(ElemState::Free) => "free",
                    Some(ElemState::Busy) => "busy",
                    Some(ElemState::Pad) => "pad",
                    Some(ElemState::Parked) => "parked",
                    None => "?",
                };
                let _ = writeln!(
                    out,
                    "  {:#x} {:>12} {state:<4} pad {:<6} list {}{}{}",
                    e.0,
                    h.size,
                    h.pad,
                    h.list_index,
                    if h.is_dirty() { " dirty" } else { "" },
                    if h.flags & elem_flags::RELEASABLE != 0 {
                        " releasable"
                    } else {
                        ""
                    },
                );
                cur = Elem::from_addr(h.next);
            }
        }
        out
    }

    /// An `allocator-api2` allocator over `socket`'s heap ([`SOCKET_ID_ANY`]: the caller's
    /// socket first, then the others), for `allocator_api2::vec::Vec<T, _>` and `Box<T, _>`.
    pub fn allocator(&self, socket: i32) -> Result<HeapAllocator<'a>, EalError> {
        self.socket_order(socket)?;
        Ok(HeapAllocator::new(*self, socket))
    }

    /// Puts `value` in heap memory on the preferred socket.
    pub fn boxed<T>(&self, value: T) -> Result<HeapBox<'a, T>, EalError> {
        self.boxed_socket(value, SOCKET_ID_ANY)
    }

    /// Puts `value` in heap memory on `socket`.
    pub fn boxed_socket<T>(&self, value: T, socket: i32) -> Result<HeapBox<'a, T>, EalError> {
        let ptr = self.malloc_socket(
            std::mem::size_of::<T>().max(1),
            std::mem::align_of::<T>(),
            socket,
        )?;
        let ptr = ptr.cast::<T>();
        // SAFETY: a fresh block of at least size_of::<T>() bytes aligned for T, owned by us.
        unsafe { ptr.as_ptr().write(value) };
        Ok(HeapBox::from_raw_parts(ptr, *self))
    }
}

fn check_heap(st: &HeapState, addr: u64, memory: &Memory) -> Result<(), String> {
    // Pages (start addresses) under parked elements that could go back to the system, and the
    // busy elements (start, end), for the parking rule checked at the end.
    let releasing = memory.pages_may_go_back();
    let mut parked_pages: Vec<usize> = Vec::new();
    let mut busy_spans: Vec<(usize, usize)> = Vec::new();
    let mut cur = Elem::from_addr(st.first);
    let mut prev: Option<(Elem, elem::ElemHeader)> = None;
    let (mut total, mut busy, mut free) = (0u64, 0u64, 0u64);
    let (mut parked, mut parked_bytes) = (0u64, 0u64);
    while let Some(e) = cur {
        let h = e.load();
        if h.magic != e.expected_magic() || h.heap != addr {
            return Err(format!(
                "element {:#x}: header not marked as this heap's",
                e.0
            ));
        }
        if h.prev != prev.map_or(0, |(p, _)| p.addr()) {
            return Err(format!(
                "element {:#x}: prev link {:#x} is wrong",
                e.0, h.prev
            ));
        }
        if h.size < HEADER_LEN as u64 || h.size % CACHE_LINE as u64 != 0 {
            return Err(format!("element {:#x}: bad size {}", e.0, h.size));
        }
        if let Some((p, ph)) = prev {
            if p.0 + ph.size as usize > e.0 {
                return Err(format!("element {:#x} overlaps the one before", e.0));
            }
            let adjacent = p.0 + ph.size as usize == e.0 && ph.list_index == h.list_index;
            if adjacent && ph.is_free() && h.is_free() {
                return Err(format!(
                    "adjacent free elements at {:#x} and {:#x}",
                    p.0, e.0
                ));
            }
            // The other half of the parking rule: no parked element touches a free one holding
            // a whole page that may go back.
            let parked_by_page = |a: &elem::ElemHeader, b: Elem, bh: &elem::ElemHeader| {
                let page = memory.list_page_size(u32::from(bh.list_index)) as usize;
                a.state() == Some(ElemState::Parked)
                    && malloc_heap::holds_releasable_page(b, bh, page)
            };
            if releasing && adjacent && (parked_by_page(&ph, e, &h) || parked_by_page(&h, p, &ph)) {
                return Err(format!(
                    "parked element next to a free one holding a whole page, at {:#x} and {:#x}",
                    p.0, e.0
                ));
            }
        }
        match h.state() {
            Some(ElemState::Free) => {
                free += 1;
                if h.pad != 0 {
                    return Err(format!("free element {:#x} has padding", e.0));
                }
            }
            Some(ElemState::Parked) => {
                parked += 1;
                parked_bytes += h.size;
                if h.pad != 0 {
                    return Err(format!("parked element {:#x} has padding", e.0));
                }
                if releasing && h.flags & elem_flags::RELEASABLE != 0 {
                    let page = memory.list_page_size(u32::from(h.list_index)) as usize;
                    let mut p = e.0 & !(page - 1);
                    while p < e.0 + h.size as usize {
                        parked_pages.push(p);
                        p += page;
                    }
                }
            }
            Some(ElemState::Busy) => {
                busy += 1;
                busy_spans.push((e.0, e.0 + h.size as usize));
                if h.pad > 0 {
                    let pad = Elem(e.0 + h.pad as usize);
                    let ph = pad.load();
                    if ph.magic != pad.expected_magic()
                        || ph.state() != Some(ElemState::Pad)
                        || ph.pad != h.pad
                        || ph.size != h.size - u64::from(h.pad)
                    {
                        return Err(format!("busy element {:#x}: bad pad header", e.0));
                    }
                }
                if !e.seal_intact(h.size) {
                    return Err(format!(
                        "busy element {:#x} ({} usable bytes) was written past its end",
                        e.0,
                        h.usable_len()
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "element {:#x}: state {} in the element links",
                    e.0, h.state
                ))
            }
        }
        total += h.size;
        prev = Some((e, h));
        cur = Elem::from_addr(h.next);
    }
    if st.last != prev.map_or(0, |(p, _)| p.addr()) {
        return Err("last element pointer is wrong".into());
    }
    if st.releasable_bytes > st.total_bytes {
        return Err(format!(
            "{} releasable bytes of {} in all",
            st.releasable_bytes, st.total_bytes
        ));
    }
    if total != st.total_bytes {
        return Err(format!(
            "elements add up to {total} bytes, heap says {}",
            st.total_bytes
        ));
    }
    if busy != st.alloc_count {
        return Err(format!(
            "{busy} busy elements, heap counts {}",
            st.alloc_count
        ));
    }
    let mut listed = 0u64;
    let mut bad = None;
    st.free.for_each(|class, e, h| {
        listed += 1;
        if bad.is_none()
            && (!h.is_free() || class_of(h.size) != class || h.magic != e.expected_magic())
        {
            bad = Some(format!("free list entry {:#x} is wrong for its list", e.0));
        }
        if bad.is_none() {
            if let Some(next) = Elem::from_addr(h.free_next) {
                if next.load().free_prev != e.addr() {
                    bad = Some(format!("free list links at {:#x} disagree", e.0));
                }
            }
        }
    });
    if let Some(bad) = bad {
        return Err(bad);
    }
    if listed != free {
        return Err(format!(
            "{free} free elements but {listed} on the free lists"
        ));
    }
    if !st.free.bitmaps_consistent() {
        return Err("free-list bitmaps disagree with the lists".into());
    }
    check_quick_lists(st, addr, parked, parked_bytes)?;
    check_parked_pages_in_use(&mut parked_pages, &busy_spans, memory)
}

/// The parking rule (see `HeapOps::may_park`): a page that may go back to the system and holds
/// a parked element also holds a busy one, so parking never kept a page mapped that freeing
/// at once would have given back. `parked_pages` are the pages under such parked elements,
/// `busy_spans` the busy elements in address order.
fn check_parked_pages_in_use(
    parked_pages: &mut Vec<usize>,
    busy_spans: &[(usize, usize)],
    memory: &Memory,
) -> Result<(), String> {
    parked_pages.sort_unstable();
    parked_pages.dedup();
    for &page in parked_pages.iter() {
        let Some((list, _, _)) = memory.page_at(page) else {
            return Err(format!("parked element on unmapped page {page:#x}"));
        };
        let page_end = page + memory.list_page_size(list) as usize;
        // The busy spans are sorted and disjoint: the first one ending after the page start is
        // the only candidate that can overlap it from below or within.
        let i = busy_spans.partition_point(|&(_, end)| end <= page);
        let in_use = busy_spans
            .get(i)
            .is_some_and(|&(start, _)| start < page_end);
        if !in_use {
            return Err(format!(
                "page {page:#x} holds parked blocks but no busy one: freeing them at once would have given it back"
            ));
        }
    }
    Ok(())
}

/// The quick-list part of [`check_heap`]: every parked element (`parked` of them, `bytes` in
/// all, found in the address walk) is on the list of its size exactly once, and the counts agree.
fn check_quick_lists(st: &HeapState, addr: u64, parked: u64, bytes: u64) -> Result<(), String> {
    if st.quick.parked_count != parked || st.quick.parked_bytes != bytes {
        return Err(format!(
            "{parked} parked elements of {bytes} bytes, quick lists count {} of {}",
            st.quick.parked_count, st.quick.parked_bytes
        ));
    }
    let (mut listed, mut listed_bytes) = (0u64, 0u64);
    st.quick.walk(|list, e| {
        let h = e.load();
        if h.magic != e.expected_magic()
            || h.heap != addr
            || h.state() != Some(ElemState::Parked)
            || quick_lists::list_of(h.size) != Some(list)
        {
            return Err(format!(
                "quick list {list} entry {:#x} is wrong for its list",
                e.0
            ));
        }
        listed += 1;
        listed_bytes += h.size;
        Ok(h)
    })?;
    // Every listed entry is a parked element, and no more are listed than exist: with the
    // counts equal, each parked element is listed exactly once.
    if listed != parked || listed_bytes != bytes {
        return Err(format!(
            "{listed} elements of {listed_bytes} bytes on the quick lists, {parked} of {bytes} parked"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod quick_list_tests {
    use super::quick_lists::PARKED_MAX_BYTES;
    use crate::Eal;

    /// Bytes parked on socket 0's heap right now.
    fn parked_bytes(eal: &Eal) -> u64 {
        eal.memory().shared().heaps[0].lock().quick.parked_bytes
    }

    #[test]
    fn parked_blocks_never_pass_their_bound_and_observing_merges_them() {
        let prefix = format!("quickbound{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "16", "--file-prefix", &prefix]).unwrap();
        let heaps = eal.heaps();
        // 3000 elements of 1088 bytes: half as much again as the bound.
        let blocks: Vec<_> = (0..3000).map(|_| heaps.malloc(1000, 0).unwrap()).collect();
        let mut most = 0;
        for block in blocks {
            // SAFETY: each block was allocated above, is unused and freed once.
            unsafe { heaps.free(block) }.unwrap();
            most = most.max(parked_bytes(&eal));
        }
        assert!(
            most > PARKED_MAX_BYTES / 2,
            "frees parked blocks ({most} bytes at most)"
        );
        assert!(most <= PARKED_MAX_BYTES, "{most} bytes parked at once");
        heaps.check().unwrap();
        assert_eq!(heaps.stats(0).unwrap().free_count, 1);
        assert_eq!(parked_bytes(&eal), 0, "statistics merge every parked block");
    }
}
