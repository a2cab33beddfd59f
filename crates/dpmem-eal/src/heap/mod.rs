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
//! free pages back, except pinned ones. External heaps are [`Socket::External`] (DPDK's socket
//! ids from 256 up); they never grow and "any socket" never falls back to them: they serve only
//! allocations that name their socket.
//!
//! Small blocks freed on a socket heap wait unmerged on quick lists for the next request of
//! their size (quick lists); whatever looks at the heap's free space merges them first, so
//! statistics and dumps read as if every free had merged at once.

mod allocator;
mod chain_journal;
mod check;
pub(crate) mod directory;
mod directory_repair;
pub(crate) mod elem;
mod elements;
mod external;
mod free_index;
mod global_alloc;
mod heap_box;
pub(crate) mod malloc_heap;
mod parking;
mod quick_lists;
pub(crate) mod recovery;
pub(crate) mod state;

use std::fmt::Write as _;
use std::ptr::NonNull;

use crate::byte_count::Bytes;
use crate::error::EalError;
use crate::memory::{Memory, MemoryMode};
use crate::memzone_flags::MemzoneFlags;
use crate::shared_name::{decode_str, encode_str};
use crate::socket::{Socket, EXTERNAL_SOCKET_BASE, SOCKET_ID_ANY};
pub use allocator::HeapAllocator;
use directory::{HeapEntry, HeapKind};
use directory_repair::lock_directory;
use elem::{elem_flags, Elem, ElemState, CACHE_LINE, HEADER_LEN};
pub use elements::{HeapElement, HeapElementState};
pub use global_alloc::DpmemGlobalAlloc;
pub use heap_box::HeapBox;
use malloc_heap::{AllocRequest, HeapOps};
use recovery::lock_heap;
pub(crate) use state::heap_addr;
use state::{HeapState, SharedHeap, MAX_HEAPS};

/// The largest request size: rounded up to a cache line it stays at most `isize::MAX / 2`.
const MAX_REQUEST: usize = (isize::MAX as usize / 2) & !(CACHE_LINE - 1);

/// Statistics of one heap (DPDK's `rte_malloc_socket_stats`, plus the any-socket fallbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HeapStats {
    pub name: String,
    /// The node whose heap this is, or the external heap.
    #[cfg_attr(feature = "serde", serde(rename = "socket_id"))]
    pub socket: Socket,
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
    /// A named heap of user memory ([`Socket::External`]).
    pub external: bool,
    /// Whether this process can read the heap's elements: always for socket heaps; for an
    /// external heap, once this process attached all of its memory. When `false` only
    /// `total_bytes`, `alloc_count` and `fallback_alloc_count` are known, and the free-space
    /// fields and `alloc_bytes` are 0.
    pub attached: bool,
}

/// A heap allocation to make (see [`Heaps::request`]): the arguments of DPDK's
/// `rte_malloc_socket` / `rte_zmalloc_socket`, each with its default.
#[derive(Debug, Clone, Copy)]
#[must_use = "nothing is allocated until `alloc` is called"]
pub struct HeapRequest<'a> {
    heaps: Heaps<'a>,
    size: usize,
    align: usize,
    socket: Socket,
    zeroed: bool,
}

impl HeapRequest<'_> {
    /// Alignment of the block: a power of two, raised to a cache line.
    pub fn align(mut self, align: usize) -> Self {
        self.align = align;
        self
    }

    /// The heap to take it from; [`Socket::Any`] tries the calling thread's socket first.
    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    /// Hands the block out cleared (only memory that may hold old data is written).
    pub fn zeroed(mut self) -> Self {
        self.zeroed = true;
        self
    }

    /// Makes the allocation; free it with [`Heaps::free`].
    pub fn alloc(self) -> Result<NonNull<u8>, EalError> {
        if self.zeroed {
            self.heaps
                .zmalloc_socket(self.size, self.align, self.socket)
        } else {
            self.heaps.malloc_socket(self.size, self.align, self.socket)
        }
    }
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
    let mut directory = lock_directory(memory)?;
    for &socket in memory.socket_ids() {
        let shared = heaps.shared_heap(socket).ok_or_else(|| {
            EalError::Limit(format!(
                "socket {socket} has no heap slot (at most {MAX_HEAPS})"
            ))
        })?;
        shared.force_unlock();
        let mut st = lock_heap(memory, shared)?;
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
                .shared_heap(list.socket.to_raw())
                .expect("heap created for every socket with lists");
            let mut st = lock_heap(memory, shared)?;
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

/// DPDK's integer for a socket a caller named, refusing a node id or external index that no
/// heap can have (rather than letting it saturate into another kind of socket's id).
fn raw_socket(socket: Socket) -> Result<i32, EalError> {
    socket.to_raw_checked().ok_or_else(|| {
        bad_arg(match socket {
            Socket::Node(n) => {
                format!("socket {n} has no heap: NUMA node ids are below {EXTERNAL_SOCKET_BASE}")
            }
            _ => format!("{socket:?} has no heap: no external heap has that index"),
        })
    })
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
        // A directory given up (a process died changing it) knows no external heap any more.
        let slot = lock_directory(self.memory).ok()?.find_socket(socket)?;
        self.memory.shared().heaps.get(slot)
    }

    /// Every socket that has a heap: the NUMA nodes', then the external heaps', ascending.
    pub fn heap_sockets(&self) -> Vec<Socket> {
        self.heap_socket_ids()
            .into_iter()
            .map(Socket::from_recorded)
            .collect()
    }

    /// Every heap with its slot in the configuration's heap table, ascending by slot: DPDK's
    /// heap id, which telemetry reports. Socket heaps sit in the slot of their socket id,
    /// external heaps in the slot they took.
    pub(crate) fn heap_ids(&self) -> Vec<(u32, Socket)> {
        let mut ids: Vec<(u32, Socket)> = self
            .socket_heaps()
            .map(|s| (s as u32, Socket::from_recorded(s)))
            .collect();
        let Ok(dir) = lock_directory(self.memory) else {
            return ids;
        };
        ids.extend(
            dir.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.kind() == HeapKind::External)
                .map(|(slot, e)| (slot as u32, Socket::from_recorded(e.socket_id))),
        );
        drop(dir);
        ids.sort_unstable();
        ids
    }

    /// [`Heaps::heap_sockets`] as the shared tables record them.
    fn heap_socket_ids(&self) -> Vec<i32> {
        let mut sockets: Vec<i32> = self.socket_heaps().collect();
        sockets.extend(self.external_socket_ids());
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

    /// NUMA nodes that have a heap, ascending (external heaps: [`Heaps::external_sockets`]).
    pub fn sockets(&self) -> Vec<Socket> {
        self.socket_heaps().map(Socket::from_recorded).collect()
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
    pub fn preferred_socket(&self) -> Socket {
        Socket::from_recorded(
            self.preferred_socket_given(crate::lcore::thread_local::thread_socket_id()),
        )
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
    fn normalize(&self, size: usize, align: usize) -> Result<AllocRequest, EalError> {
        // Every sensible request passes these, so the refusals (and their messages) stay out of
        // line, out of the allocation path.
        if size != 0 && size <= MAX_REQUEST && align.is_power_of_two() | (align == 0) {
            return Ok(AllocRequest {
                size: size.next_multiple_of(CACHE_LINE),
                align: align.max(CACHE_LINE),
                bound: 0,
                contig: false,
                page_flags: MemzoneFlags::empty(),
            });
        }
        self.refused_request(size, align)
    }

    /// The whole check of a request [`Heaps::normalize`] did not accept at once: it is refused,
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
            page_flags: MemzoneFlags::empty(),
        })
    }

    /// Sockets to try, in order, for `socket` (which may be [`SOCKET_ID_ANY`]).
    fn socket_order(&self, socket: i32) -> Result<Vec<i32>, EalError> {
        let socket = self.effective_socket(socket);
        if socket == SOCKET_ID_ANY {
            let first = self.preferred_socket_given(crate::lcore::thread_local::thread_socket_id());
            let mut order = vec![first];
            order.extend(self.socket_heaps().filter(|&s| s != first));
            return Ok(order);
        }
        if self.heap_of(socket).is_none() {
            return Err(bad_arg(format!(
                "{} has no heap",
                Socket::from_recorded(socket)
            )));
        }
        Ok(vec![socket])
    }

    /// The socket a request for `socket` is served from. Without hugepages every node is the
    /// same ordinary memory, so a request for a node's heap may be served from any node's (as
    /// DPDK does for both `rte_malloc_socket` and memzones); an external heap is memory of its
    /// own either way.
    #[inline(always)]
    pub(crate) fn effective_socket(&self, socket: i32) -> i32 {
        if self.memory.mode() == MemoryMode::NoHuge && (0..EXTERNAL_SOCKET_BASE).contains(&socket) {
            SOCKET_ID_ANY
        } else {
            socket
        }
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
    #[inline(always)]
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
        let mut st = lock_heap(self.memory, shared)?;
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
            (hint_only && !req.page_flags.is_empty()).then(|| {
                let any_page = AllocRequest {
                    page_flags: MemzoneFlags::empty(),
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
        let asked = socket;
        let exhausted = || self.exhausted(req.size, req.align, asked);
        let socket = self.effective_socket(socket);
        if socket != SOCKET_ID_ANY {
            let shared = self
                .heap_of(socket)
                .ok_or_else(|| bad_arg(format!("{} has no heap", Socket::from_recorded(socket))))?;
            return self
                .alloc_in(shared, socket, req, hint_only, false)?
                .ok_or_else(exhausted);
        }
        // The calling thread's own socket first; when it has a heap it is also the preferred
        // socket, so trying it first changes no order.
        let own = crate::lcore::thread_local::thread_socket_id();
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
        page_flags: MemzoneFlags,
        contig: bool,
    ) -> Result<(usize, usize), EalError> {
        let order = self.socket_order(socket)?;
        for &s in &order {
            let Some(shared) = self.heap_of(s) else {
                continue;
            };
            let mut st = lock_heap(self.memory, shared)?;
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
        Err(self.exhausted(0, align, socket))
    }

    /// The error of a request for `size` bytes (0: the biggest block) aligned to `align` that
    /// no heap `socket` names could serve: what each of those heaps has free, and whether and
    /// why it could not grow (the node's free hugepages), so the reader can tell fragmented
    /// memory from exhausted hugepages.
    #[cold]
    #[inline(never)]
    fn exhausted(&self, size: usize, align: usize, socket: i32) -> EalError {
        let socket = self.effective_socket(socket);
        let heaps: Vec<i32> = if socket == SOCKET_ID_ANY {
            self.socket_heaps().collect()
        } else {
            vec![socket]
        };
        let hugepages = dpmem_sys::hugepage_info::discover(&dpmem_sys::root::SysRoot::host()).ok();
        let mut detail = Vec::new();
        for s in heaps {
            let Ok(stats) = self.stats_of(s) else {
                continue;
            };
            let mut line = format!(
                "{}: {} free in {} block{}, the largest {}",
                stats.socket,
                Bytes(stats.free_bytes),
                stats.free_count,
                if stats.free_count == 1 { "" } else { "s" },
                Bytes(stats.greatest_free_bytes)
            );
            if s >= EXTERNAL_SOCKET_BASE {
                line.push_str(" (an external heap has only the memory added to it)");
            } else if !self.memory.can_change_pages() {
                line.push_str(&format!(
                    " ({} memory was all mapped at start-up and does not grow)",
                    match self.memory.mode() {
                        MemoryMode::NoHuge => "--no-huge",
                        MemoryMode::Legacy => "legacy",
                        MemoryMode::Dynamic => "a secondary's",
                    }
                ));
            } else if let Some(info) = &hugepages {
                let free: Vec<String> = self
                    .memory
                    .page_sizes()
                    .into_iter()
                    .map(|ps| format!("{} of {}", info.free_on_node(ps, s as u32), Bytes(ps)))
                    .collect();
                line.push_str(&format!(
                    "; node {s} has {} hugepages free to grow it",
                    free.join(", ")
                ));
            }
            detail.push(line);
        }
        EalError::HeapExhausted {
            size,
            align,
            socket: Socket::from_recorded(socket),
            detail: detail.join("; "),
        }
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
                let st = lock_heap(self.memory, shared)?;
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
                (shared, lock_heap(self.memory, shared)?)
            }
        };
        let addr = heap_addr(shared);
        let (real, rh) = header.live_block(addr, ptr, |a| self.memory.page_at(a).is_some())?;
        let mut ops = HeapOps {
            st: &mut st,
            addr,
            memory: self.memory,
        };
        Ok(f(&mut ops, real, &rh))
    }

    /// An allocation of `size` bytes, to make once its alignment, socket and zeroing are set
    /// (each has a default: a cache line, [`Socket::Any`], not cleared).
    ///
    /// ```no_run
    /// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "16"])?;
    /// use dpmem_eal::Socket;
    /// let heaps = eal.heaps();
    /// let block = heaps.request(1500).align(256).socket(Socket::Node(0)).zeroed().alloc()?;
    /// // SAFETY: the block was allocated just above and is not used after this.
    /// unsafe { heaps.free(block) }?;
    /// # Ok::<(), dpmem_eal::EalError>(())
    /// ```
    pub fn request(&self, size: usize) -> HeapRequest<'a> {
        HeapRequest {
            heaps: *self,
            size,
            align: CACHE_LINE,
            socket: Socket::Any,
            zeroed: false,
        }
    }

    /// Allocates `size` bytes aligned to `align` (0: a cache line) on the preferred socket,
    /// falling back to the others (DPDK's `rte_malloc`).
    pub fn malloc(&self, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.malloc_socket(size, align, Socket::Any)
    }

    /// Allocates on `socket`, or any socket for [`Socket::Any`] (DPDK's `rte_malloc_socket`).
    /// Without hugepages (`--no-huge`) every node's memory is the same, so any node will do.
    pub fn malloc_socket(
        &self,
        size: usize,
        align: usize,
        socket: Socket,
    ) -> Result<NonNull<u8>, EalError> {
        let req = self.normalize(size, align)?;
        let (data, _) = self.alloc_request(&req, raw_socket(socket)?, false)?;
        Ok(NonNull::new(data as *mut u8).expect("heap memory is never at address 0"))
    }

    /// Like [`Heaps::malloc`], with the memory cleared.
    pub fn zmalloc(&self, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.zmalloc_socket(size, align, Socket::Any)
    }

    /// Like [`Heaps::malloc_socket`], with the memory cleared. Memory that is known to be zero
    /// (fresh pages, or freed next to clean memory and cleared then) is not written again.
    pub fn zmalloc_socket(
        &self,
        size: usize,
        align: usize,
        socket: Socket,
    ) -> Result<NonNull<u8>, EalError> {
        let req = self.normalize(size, align)?;
        let (data, dirty) = self.alloc_request(&req, raw_socket(socket)?, false)?;
        Elem::clear_block(data, size, dirty);
        Ok(NonNull::new(data as *mut u8).expect("heap memory is never at address 0"))
    }

    /// Cleared memory for `count` objects of `size` bytes.
    pub fn calloc(&self, count: usize, size: usize, align: usize) -> Result<NonNull<u8>, EalError> {
        self.calloc_socket(count, size, align, Socket::Any)
    }

    /// [`Heaps::calloc`] on `socket` (DPDK's `rte_calloc_socket`).
    pub fn calloc_socket(
        &self,
        count: usize,
        size: usize,
        align: usize,
        socket: Socket,
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
        unsafe { self.realloc_socket(ptr, size, align, Socket::Any) }
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
        socket: Socket,
    ) -> Result<NonNull<u8>, EalError> {
        let Some(ptr) = ptr else {
            return self.malloc_socket(size, align, socket);
        };
        let wanted = raw_socket(socket)?;
        let req = self.normalize(size, align)?;
        let old = ptr.as_ptr() as usize;
        let in_place = self.with_block(old, |ops, elem, _| {
            let same_socket = wanted == SOCKET_ID_ANY || wanted == ops.st.socket_id;
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
    ///
    /// # Safety
    /// The cache line before `ptr` (where a block's header would be) is written by no other
    /// thread or process during the call: `ptr` is a block of this heap the caller owns, a
    /// block freed since (and not handed out again), or memory nothing else uses. Any other
    /// pointer may make the check read bytes someone is writing.
    pub unsafe fn validate(&self, ptr: *const u8) -> Result<usize, EalError> {
        self.with_block(ptr as usize, |_, _, h| h.usable_len())
    }

    /// The socket of a live block's heap.
    ///
    /// # Safety
    /// As for [`Heaps::validate`].
    pub unsafe fn socket_of(&self, ptr: *const u8) -> Result<Socket, EalError> {
        self.with_block(ptr as usize, |ops, _, _| {
            Socket::from_recorded(ops.st.socket_id)
        })
    }

    /// Statistics of `socket`'s heap (a socket heap or an external heap). Small blocks parked
    /// on the quick lists are merged first (as freeing them at once would have: in the primary
    /// of a dynamic-mode EAL that may give pages back, with the memory events that go with it),
    /// so the figures are those of a heap that merges every free.
    pub fn stats(&self, socket: Socket) -> Result<HeapStats, EalError> {
        self.stats_of(raw_socket(socket)?)
    }

    /// [`Heaps::stats`] for a socket id as the shared tables record it.
    fn stats_of(&self, socket: i32) -> Result<HeapStats, EalError> {
        let no_heap = || bad_arg(format!("{} has no heap", Socket::from_recorded(socket)));
        let shared = self.heap_of(socket).ok_or_else(no_heap)?;
        let mut st = lock_heap(self.memory, shared)?;
        if st.in_use == 0 || st.socket_id != socket {
            return Err(no_heap());
        }
        // The free headers walked below may sit on pages the primary mapped since this
        // process last caught up: map them first, under the heap lock as everywhere else.
        self.memory.sync_with_primary()?;
        let mut stats = HeapStats {
            name: decode_str(&st.name),
            socket: Socket::from_recorded(st.socket_id),
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
        self.heap_socket_ids()
            .into_iter()
            .filter_map(|s| self.stats_of(s).ok())
            .collect()
    }

    /// Checks every heap's invariants: links agree both ways and follow address order, headers
    /// carry their marks, sizes add up, no two adjacent elements are free, every free element is
    /// on the list its size selects and the bitmaps agree with the lists, every parked element
    /// is on its quick list once and the counts agree, and where pages may go back no parked
    /// element keeps one mapped (a page under a parked element holds a busy one, and no parked
    /// element touches a free one holding a whole page). It merges nothing.
    pub fn check(&self) -> Result<(), EalError> {
        for socket in self.heap_socket_ids() {
            let Some(shared) = self.heap_of(socket) else {
                continue;
            };
            let st = lock_heap(self.memory, shared)?;
            // An external heap whose memory this process has not attached cannot be walked here.
            if st.in_use == 0 || st.socket_id != socket || self.check_attached(&st).is_err() {
                continue;
            }
            // A secondary walks the primary's current pages.
            self.memory.sync_with_primary()?;
            check::check_heap(&st, heap_addr(shared), self.memory).map_err(|reason| {
                EalError::HeapCorrupt {
                    socket: Socket::from_recorded(socket),
                    reason,
                }
            })?;
        }
        Ok(())
    }

    /// Every heap and its elements, as text.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for socket in self.heap_socket_ids() {
            let Ok(stats) = self.stats_of(socket) else {
                continue;
            };
            let _ = writeln!(
                out,
                "heap {} ({}): total {} free {} allocated {} greatest free {} free elements {} busy elements {} fallbacks {}",
                stats.name,
                stats.socket,
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
            let st = match lock_heap(self.memory, shared) {
                Ok(st) => st,
                Err(e) => {
                    let _ = writeln!(out, "  ({})", EalError::from(e));
                    continue;
                }
            };
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

    /// An `allocator-api2` allocator over `socket`'s heap ([`Socket::Any`]: the caller's
    /// socket first, then the others), for `allocator_api2::vec::Vec<T, _>` and `Box<T, _>`.
    pub fn allocator(&self, socket: Socket) -> Result<HeapAllocator<'a>, EalError> {
        self.socket_order(raw_socket(socket)?)?;
        Ok(HeapAllocator::new(*self, socket))
    }

    /// Puts `value` in heap memory on the preferred socket.
    pub fn boxed<T>(&self, value: T) -> Result<HeapBox<'a, T>, EalError> {
        self.boxed_socket(value, Socket::Any)
    }

    /// Puts `value` in heap memory on `socket`.
    pub fn boxed_socket<T>(&self, value: T, socket: Socket) -> Result<HeapBox<'a, T>, EalError> {
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
