//! Memory: the memseg lists of one EAL instance, how pages enter and leave them, and the
//! lookups and walks over them.
//!
//! Shared state (list headers, segments, occupancy) lives in the `ConfigMapping`; what only
//! this process has (file descriptors, callbacks, validators) lives here. Every change to the
//! lists happens under the configuration's hotplug lock, which serialises all processes.
//!
//! Besides the internal lists planned at start-up, lookups and walks cover *external* lists:
//! memory the user mapped and registered ([`Memory::extmem_register`]) or added to a named heap
//! (see `external.rs`).

mod attach;
pub(crate) mod backing;
mod cross_process;
mod dynamic;
mod external;
mod layout_watch;
mod legacy_staging;
mod memfd_stripes;
mod pages;
mod secondary_sync;
mod startup;

use std::ops::ControlFlow;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use dpmem_sys::mapping;
use dpmem_sys::pagemap::Pagemap;

use crate::error::EalError;
use crate::iova::{Iova, IovaMode, BAD_IOVA};
use crate::memseg::Memseg;
use crate::memseg_list::{MemsegListInfo, MemsegListView};
use crate::options::HugeUnlink;
use crate::shared_config::{ConfigMapping, MAX_SOCKETS};
use crate::socket::Socket;
use backing::ListBacking;

pub(crate) use cross_process::HotplugPeers;
pub use dynamic::{PageRequest, PageRun};
pub use external::DEFAULT_EXTERNAL_SEGMENTS;
pub(crate) use external::{check_range, ExternalArea};
pub use layout_watch::LayoutWatch;
pub use pages::Pages;
pub(crate) use startup::PrimarySetup;

/// How memory is obtained, as chosen by the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum MemoryMode {
    /// Pages mapped on demand and released when freed (DPDK's default since 18.05).
    Dynamic,
    /// Everything mapped at start-up, sorted into IOVA-contiguous runs, never released.
    Legacy,
    /// Anonymous 4 KiB pages, IOVA = VA, mapped at start-up.
    NoHuge,
}

/// Whether this process created the configuration or attached to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ProcessRole {
    Primary,
    Secondary,
}

/// A memory event delivered to registered callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemEvent {
    /// Pages were mapped: the range is usable from now on.
    Alloc,
    /// Pages are about to be unmapped: the range is still mapped during the callback.
    Free,
}

/// A memory event callback: `(event, va, len)`. It runs with the hotplug lock held, so it may
/// read the lists (walks and lookups re-enter the lock) but must not allocate or free pages.
pub type EventCallback = dyn Fn(MemEvent, usize, usize) + Send + Sync;

/// An allocation validator: `(socket, limit, new_total_bytes) -> allow`. It is asked when an
/// allocation would take a socket's hugepage memory past `limit`.
pub type ValidatorCallback = dyn Fn(Socket, u64, u64) -> bool + Send + Sync;

struct Validator {
    name: String,
    socket: i32,
    limit: u64,
    callback: Arc<ValidatorCallback>,
}

/// Settings fixed at initialisation.
#[derive(Debug, Clone)]
pub(crate) struct MemorySettings {
    pub mode: MemoryMode,
    pub in_memory: bool,
    pub single_file_segments: bool,
    pub huge_unlink: HugeUnlink,
    pub match_allocations: bool,
    pub iova_mode: IovaMode,
    pub file_prefix: String,
    pub huge_dirs: Vec<(u64, PathBuf)>,
    pub numa_policy: bool,
    pub role: ProcessRole,
}

/// The memory of one EAL instance.
pub struct Memory {
    lists: Vec<MemsegListView>,
    /// The sockets of `lists`, ascending and unique: fixed with the lists at start-up, and
    /// asked on every heap allocation and free, so worked out once.
    sockets: Vec<i32>,
    backings: Mutex<Vec<ListBacking>>,
    events: RwLock<Vec<(String, Arc<EventCallback>)>>,
    validators: RwLock<Vec<Validator>>,
    pagemap: Option<Pagemap>,
    settings: MemorySettings,
    config: ConfigMapping,
    /// Secondaries: the primary's hotplug count this process last caught up with, for the
    /// one-load check of [`Memory::sync_with_primary`], and what it has mapped.
    synced_generation: std::sync::atomic::AtomicU64,
    secondary_view: Mutex<secondary_sync::SecondaryView>,
    /// The channel to the other processes, for hotplug rounds and a secondary's requests.
    peers: std::sync::OnceLock<Box<dyn HotplugPeers>>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("settings", &self.settings)
            .field("lists", &self.lists.len())
            .finish()
    }
}

impl Memory {
    pub(crate) fn new(
        config: ConfigMapping,
        backings: Vec<ListBacking>,
        settings: MemorySettings,
    ) -> Self {
        let lists = config.list_views();
        let mut sockets: Vec<i32> = lists.iter().map(|l| l.header().socket_id).collect();
        sockets.sort_unstable();
        sockets.dedup();
        let pagemap = (settings.iova_mode == IovaMode::Pa)
            .then(|| Pagemap::open().ok())
            .flatten();
        Self {
            lists,
            sockets,
            backings: Mutex::new(backings),
            events: RwLock::new(Vec::new()),
            validators: RwLock::new(Vec::new()),
            pagemap,
            settings,
            config,
            synced_generation: std::sync::atomic::AtomicU64::new(0),
            secondary_view: Mutex::new(secondary_sync::SecondaryView::default()),
            peers: std::sync::OnceLock::new(),
        }
    }

    pub fn iova_mode(&self) -> IovaMode {
        self.settings.iova_mode
    }

    pub fn mode(&self) -> MemoryMode {
        self.settings.mode
    }

    pub fn role(&self) -> ProcessRole {
        self.settings.role
    }

    pub fn is_in_memory(&self) -> bool {
        self.settings.in_memory
    }

    /// The page sizes that have internal memseg lists (those dpmem maps pages into), ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.lists.iter().map(|l| l.header().page_size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// The NUMA nodes that have internal memseg lists, ascending (external memory is not
    /// counted here: it belongs to the heaps named after it).
    pub fn sockets(&self) -> Vec<Socket> {
        self.sockets
            .iter()
            .map(|&s| Socket::from_recorded(s))
            .collect()
    }

    /// [`Memory::sockets`] without the copy, for the heaps' fast paths.
    #[inline]
    pub(crate) fn socket_ids(&self) -> &[i32] {
        &self.sockets
    }

    /// The path of the shared configuration file (none with `--in-memory`).
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config.path()
    }

    /// Every list's description, internal lists first, then external ones, by index.
    pub fn lists(&self) -> Vec<MemsegListInfo> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        let mut out = Vec::new();
        self.for_each_list(|l| {
            out.push(l.info());
            ControlFlow::<()>::Continue(())
        });
        out
    }

    /// The mapped segments of list `index`, in address order.
    pub fn segments(&self, index: u32) -> Vec<Memseg> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.list_by_index(index)
            .map(|l| l.occupancy.iter_used().map(|i| l.segment(i)).collect())
            .unwrap_or_default()
    }

    /// Bytes of memory currently mapped on node `socket` (all processes, all lists of the
    /// node; 0 for [`Socket::Any`] and external heaps).
    pub fn socket_bytes(&self, socket: Socket) -> u64 {
        self.socket_bytes_of(socket.to_raw())
    }

    fn socket_bytes_of(&self, socket: i32) -> u64 {
        usize::try_from(socket)
            .ok()
            .filter(|&s| s < MAX_SOCKETS)
            .map_or(0, |s| {
                self.config.header().socket_bytes[s].load(Ordering::Relaxed)
            })
    }

    /// Visits every mapped segment in list then address order. The walk stops at the first
    /// `Break`, whose value is returned (use `Result` values for errors).
    ///
    /// As DPDK's walks do, this also visits external memory (lists whose `external` is set);
    /// callers that only want dpmem's own memory skip those lists.
    ///
    /// The walk holds the memory-hotplug lock, so `f` may look at memory (translate, walk,
    /// `sync_with_primary`) but, as in DPDK, must not call heap or memzone functions: those take
    /// their own locks before the hotplug lock, and a reservation in another thread or process
    /// holding them would wait for this walk while it waits for them.
    pub fn walk_segments<B>(
        &self,
        mut f: impl FnMut(&MemsegListInfo, &Memseg) -> ControlFlow<B>,
    ) -> Option<B> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.for_each_list(|list| {
            let info = list.info();
            for idx in list.occupancy.iter_used() {
                f(&info, &list.segment(idx))?;
            }
            ControlFlow::Continue(())
        })
    }

    /// Visits every run of segments that is contiguous in both VA and IOVA, as
    /// `(list, first segment, run length in bytes)`. External memory is visited too. `f` may
    /// not call heap or memzone functions (see [`Memory::walk_segments`]).
    pub fn walk_contig<B>(
        &self,
        mut f: impl FnMut(&MemsegListInfo, &Memseg, usize) -> ControlFlow<B>,
    ) -> Option<B> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.for_each_list(|list| {
            let info = list.info();
            for (start, n) in list.occupancy.runs_used() {
                let mut first = list.segment(start);
                let mut len = first.len;
                for idx in start + 1..start + n {
                    let seg = list.segment(idx);
                    let iova_follows = first.iova != BAD_IOVA && seg.iova == first.iova + len;
                    if !iova_follows {
                        f(&info, &first, len as usize)?;
                        first = seg;
                        len = 0;
                    }
                    len += seg.len;
                }
                f(&info, &first, len as usize)?;
            }
            ControlFlow::Continue(())
        })
    }

    /// Visits every list, external ones included. `f` may not call heap or memzone functions
    /// (see [`Memory::walk_segments`]).
    pub fn walk_lists<B>(&self, mut f: impl FnMut(&MemsegListInfo) -> ControlFlow<B>) -> Option<B> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.for_each_list(|list| f(&list.info()))
    }

    /// Whether `va` lies in one of the windows of this EAL's internal lists (mapped or not).
    /// Those windows are fixed at start-up, so this needs no lock (the global allocator asks it
    /// on every free); external memory is the user's and never answers yes.
    pub(crate) fn owns_va(&self, va: usize) -> bool {
        self.locate_internal(va as u64).is_some()
    }

    /// The list whose window contains `va` (mapped or not).
    pub fn virt_to_list(&self, va: usize) -> Option<MemsegListInfo> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.locate(va as u64).map(|(l, _)| l.info())
    }

    /// The mapped segment containing `va`.
    pub fn virt_to_memseg(&self, va: usize) -> Option<Memseg> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        let (list, slot) = self.locate(va as u64)?;
        list.occupancy
            .is_used(slot)
            .ok()?
            .then(|| list.segment(slot))
    }

    /// A count that moves whenever address lookups may answer differently, in this process or
    /// any other sharing the memory: pages mapped or unmapped, external memory registered,
    /// unregistered, added to a heap or removed from it. A copy of the memory map (a table of
    /// [`Memory::walk_contig`]'s runs, say, kept to translate addresses without a lock) that
    /// read this count before it was built is current while the count has not moved since
    /// ([`Memory::layout_watch`] looks with one load). DPDK has no counterpart: its memory
    /// event callbacks do not hear of `rte_extmem_*`.
    #[inline]
    pub fn layout_generation(&self) -> u64 {
        self.config
            .header()
            .layout_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Bumps [`Memory::layout_generation`]. Hotplug lock held: a rebuild that read the count
    /// walks the lists under the same lock, so it sees the whole change wherever in it the
    /// count moved.
    pub(crate) fn note_layout_change(&self) {
        self.config
            .header()
            .layout_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The IOVA of `va`, if it is mapped dpmem memory with a known IOVA (DPDK's
    /// `rte_mem_virt2iova`).
    pub fn virt_to_iova(&self, va: usize) -> Option<Iova> {
        let seg = self.virt_to_memseg(va)?;
        seg.iova()?.checked_add(va as u64 - seg.va)
    }

    /// The virtual address of `iova` in dpmem memory (DPDK's `rte_mem_iova2virt`).
    pub fn iova_to_virt(&self, iova: Iova) -> Option<usize> {
        let iova = iova.get();
        self.walk_segments(|_, seg| {
            if seg.iova != BAD_IOVA && iova >= seg.iova && iova < seg.iova + seg.len {
                ControlFlow::Break((seg.va + (iova - seg.iova)) as usize)
            } else {
                ControlFlow::Continue(())
            }
        })
    }

    /// A descriptor of the file backing the segment at `va` and the segment's offset in it
    /// (DPDK's `rte_memseg_get_fd` + `_offset`). `None` for anonymous memory.
    ///
    /// # Safety
    /// The descriptor reaches memory that blocks, memzones, rings and pools of every process
    /// use: the caller neither writes through it nor changes the file's size (truncating it
    /// makes every access to those pages fault), and mapping it again is the caller's
    /// responsibility as any `mmap` of shared memory is.
    pub unsafe fn segment_fd(&self, va: usize) -> Option<Result<(OwnedFd, u64), EalError>> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        let (list, slot) = self.locate(va as u64)?;
        if !list.occupancy.is_used(slot).ok()? {
            return None;
        }
        if list.header().is_external() {
            return Some(Err(EalError::Unsupported(format!(
                "{va:#x} is external memory: its file, if any, is the user's, not dpmem's"
            ))));
        }
        let seg = list.segment(slot);
        let backings = self.backings.lock().expect("backing table poisoned");
        backings[list.header().index as usize].segment_fd(slot, seg.file_offset)
    }

    /// Registers a callback for memory events. Names are unique.
    pub fn register_event_callback(
        &self,
        name: &str,
        callback: impl Fn(MemEvent, usize, usize) + Send + Sync + 'static,
    ) -> Result<(), EalError> {
        // Counted as a dpmem lock: a heap growing on another thread reads this table while
        // holding its heap lock, so allocations made here must not wait for a heap.
        let _depth = crate::sync::LockDepthScope::enter();
        let mut events = self.events.write().expect("event table poisoned");
        if events.iter().any(|(n, _)| n == name) {
            return Err(EalError::AlreadyExists {
                what: "memory event callback",
                name: name.into(),
            });
        }
        events.push((name.to_string(), Arc::new(callback)));
        Ok(())
    }

    pub fn unregister_event_callback(&self, name: &str) -> Result<(), EalError> {
        // Counted as a dpmem lock: a heap growing on another thread reads this table while
        // holding its heap lock, so allocations made here must not wait for a heap.
        let _depth = crate::sync::LockDepthScope::enter();
        let mut events = self.events.write().expect("event table poisoned");
        let before = events.len();
        events.retain(|(n, _)| n != name);
        if events.len() == before {
            return Err(EalError::NotFound {
                what: "memory event callback",
                name: name.into(),
            });
        }
        Ok(())
    }

    /// Registers a validator asked whenever an allocation would take node `socket` past
    /// `limit` bytes (DPDK's `rte_mem_alloc_validator_register`): it gets the node, the limit
    /// and the new total, and refuses by returning `false`. One validator per (name, node).
    pub fn register_validator(
        &self,
        name: &str,
        socket: Socket,
        limit: u64,
        callback: impl Fn(Socket, u64, u64) -> bool + Send + Sync + 'static,
    ) -> Result<(), EalError> {
        let socket = match socket.node() {
            Some(node) if (node as usize) < MAX_SOCKETS => node as i32,
            _ => {
                return Err(EalError::InvalidArgument(format!(
                    "validator {name:?}: {socket} is not a NUMA node below {MAX_SOCKETS}"
                )))
            }
        };
        // Counted as a dpmem lock: a heap growing on another thread reads this table while
        // holding its heap lock, so allocations made here must not wait for a heap.
        let _depth = crate::sync::LockDepthScope::enter();
        let mut validators = self.validators.write().expect("validator table poisoned");
        if validators
            .iter()
            .any(|v| v.name == name && v.socket == socket)
        {
            return Err(EalError::AlreadyExists {
                what: "allocation validator",
                name: format!("{name} (socket {socket})"),
            });
        }
        validators.push(Validator {
            name: name.to_string(),
            socket,
            limit,
            callback: Arc::new(callback),
        });
        Ok(())
    }

    pub fn unregister_validator(&self, name: &str, socket: Socket) -> Result<(), EalError> {
        let socket = socket.to_raw();
        // Counted as a dpmem lock: a heap growing on another thread reads this table while
        // holding its heap lock, so allocations made here must not wait for a heap.
        let _depth = crate::sync::LockDepthScope::enter();
        let mut validators = self.validators.write().expect("validator table poisoned");
        let before = validators.len();
        validators.retain(|v| !(v.name == name && v.socket == socket));
        if validators.len() == before {
            return Err(EalError::NotFound {
                what: "allocation validator",
                name: format!("{name} (socket {socket})"),
            });
        }
        Ok(())
    }

    pub(crate) fn fire(&self, event: MemEvent, va: u64, len: u64) {
        let callbacks: Vec<_> = self
            .events
            .read()
            .expect("event table poisoned")
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for callback in callbacks {
            callback(event, va as usize, len as usize);
        }
    }

    fn check_validators(&self, socket: i32, adding: u64) -> Result<(), EalError> {
        let current = self.socket_bytes_of(socket);
        let new_total = current + adding;
        let validators = self.validators.read().expect("validator table poisoned");
        for v in validators
            .iter()
            .filter(|v| v.socket == socket && new_total > v.limit)
        {
            if !(v.callback)(Socket::from_recorded(socket), v.limit, new_total) {
                return Err(EalError::Vetoed {
                    validator: v.name.clone(),
                    socket: Socket::from_recorded(socket),
                    bytes: adding,
                    limit: v.limit,
                });
            }
        }
        Ok(())
    }

    fn account(&self, socket: i32, bytes: u64, add: bool) {
        if let Some(counter) = usize::try_from(socket)
            .ok()
            .and_then(|s| self.config.header().socket_bytes.get(s))
        {
            if add {
                counter.fetch_add(bytes, Ordering::Relaxed);
            } else {
                counter.fetch_sub(bytes, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn publish(&self) {
        self.config.publish();
    }

    /// The shared configuration's header (heaps and the memzone table live there).
    pub(crate) fn shared(&self) -> &crate::shared_config::ConfigHeader {
        self.config.header()
    }

    pub(crate) fn config_mapping(&self) -> &ConfigMapping {
        &self.config
    }

    /// Page size of list `index`. Internal list headers never change after initialisation; an
    /// external list is read under the hotplug lock.
    pub(crate) fn list_page_size(&self, index: u32) -> u64 {
        if let Some(l) = self.lists.get(index as usize) {
            return l.header().page_size;
        }
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        self.list_by_index(index)
            .map_or(0, |l| l.header().page_size)
    }

    /// Whether pages of this EAL's lists may go back to the system at run time (dynamic mode,
    /// whichever process asks: the primary gives them back, secondaries follow).
    #[inline]
    pub(crate) fn pages_may_go_back(&self) -> bool {
        self.settings.mode == MemoryMode::Dynamic
    }

    /// Whether this process may map and unmap pages at run time: dynamic mode, the primary
    /// itself or a secondary through it.
    #[inline]
    pub(crate) fn can_change_pages(&self) -> bool {
        self.settings.mode == MemoryMode::Dynamic
            && (self.settings.role == ProcessRole::Primary || self.secondary_can_change_pages())
    }

    /// The mapped segment holding `va` and its list's index and socket.
    pub(crate) fn page_at(&self, va: usize) -> Option<(u32, i32, Memseg)> {
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        let (list, slot) = self.locate(va as u64)?;
        if !list.occupancy.is_used(slot).ok()? {
            return None;
        }
        let h = list.header();
        Some((h.index, h.socket_id, list.segment(slot)))
    }

    /// Whether the mapped page at `va` could be given back (not pinned).
    pub(crate) fn page_is_releasable(&self, va: usize) -> bool {
        self.page_at(va).is_some_and(|(_, _, seg)| !seg.is_pinned())
    }

    /// Whether any page of `[va, va+len)` may hold old data.
    pub(crate) fn any_page_dirty(&self, va: usize, len: usize) -> bool {
        let mut page = va;
        while page < va + len {
            match self.page_at(page) {
                Some((_, _, seg)) if seg.is_dirty() => return true,
                Some((_, _, seg)) => page = (seg.va + seg.len) as usize,
                None => return true,
            }
        }
        false
    }

    /// The highest address in `(va, va+len)` where the IOVAs of `[va, va+len)` stop following
    /// each other, or `va` itself when a page's IOVA is unknown; `None` when the range is
    /// IOVA-contiguous.
    pub(crate) fn iova_break_in(&self, va: usize, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        // In VA mode dpmem's own memory is IOVA-contiguous wherever it is VA-contiguous; the IOVAs
        // of external memory are whatever the user gave (or unknown), so they are checked.
        if self.settings.iova_mode == IovaMode::Va && self.locate_internal(va as u64).is_some() {
            return None;
        }
        let mut breaks = None;
        let mut expected: Option<u64> = None;
        let mut page = va;
        while page < va + len {
            let Some((_, _, seg)) = self.page_at(page) else {
                return Some(va);
            };
            if seg.iova == BAD_IOVA {
                return Some(va);
            }
            if let Some(want) = expected {
                if seg.iova != want {
                    breaks = Some(seg.va as usize);
                }
            }
            expected = Some(seg.iova + seg.len);
            page = (seg.va + seg.len) as usize;
        }
        breaks
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let _lock = self.config.header().hotplug_lock.lock();
        // External memory is the user's: nothing of it is unmapped, but this process stops
        // counting as one of its users.
        self.detach_all_external();
        let mut backings = self.backings.lock().unwrap_or_else(|p| p.into_inner());
        let primary = self.settings.role == ProcessRole::Primary;
        // Page files stay on disk when the mode says so: `never` keeps them for reuse, and
        // legacy memory is kept as DPDK does (the next primary's `existing` clean-up removes it).
        let keep_files = !primary
            || self.settings.huge_unlink == HugeUnlink::Never
            || self.settings.mode == MemoryMode::Legacy;
        for list in &self.lists {
            let h = *list.header();
            // One munmap for the whole window drops every page mapping in it (16384 of them
            // with --no-huge) far faster than unmapping page by page.
            // SAFETY: the EAL is being torn down; dropping `Eal` ends every borrow of its
            // memory, and the window was reserved by this process for this list.
            let _ = unsafe { mapping::release(h.base_va as usize, h.len as usize) };
            let backing = &mut backings[h.index as usize];
            let used: Vec<u32> = list.occupancy.iter_used().collect();
            for idx in used {
                let file = backing.take_file(idx);
                if primary {
                    let seg = list.segment(idx);
                    backing.give_back(h.page_size, file, seg.file_offset, keep_files);
                    let _ = list.occupancy.set_free(idx);
                    self.account(seg.socket_id, seg.len, false);
                }
            }
        }
        if primary && self.settings.single_file_segments && !keep_files {
            for list in &self.lists {
                let h = list.header();
                if let Some((_, dir)) = self
                    .settings
                    .huge_dirs
                    .iter()
                    .find(|(ps, _)| *ps == h.page_size)
                {
                    let _ = std::fs::remove_file(backing::list_file_path(
                        dir,
                        &self.settings.file_prefix,
                        h.index,
                    ));
                }
            }
        }
        backings.clear();
    }
}
