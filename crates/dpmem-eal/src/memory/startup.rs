//! Start-up of the primary: reserving every list's window, creating the configuration, and
//! mapping the memory the mode asks for at start (no-huge, legacy, preallocation).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::error::Errno;
use dpmem_sys::mapping;
use dpmem_sys::numa;
use dpmem_sys::pagemap::Pagemap;

use super::backing::{list_file_path, page_file_path, ListBacking};
use super::legacy_staging::StagingWindow;
use super::memfd_stripes::MemfdStripes;
use super::{Memory, MemoryMode, MemorySettings, PageRequest};
use crate::error::EalError;
use crate::iova::IovaMode;
use crate::iova::BAD_IOVA;
use crate::limits::{plan_lists, MemsegLimits, PlannedList};
use crate::memseg::{flags, Memseg};
use crate::options::HugeUnlink;
use crate::shared_config::{mode_flags, ConfigMapping, ListSpec, PrimaryRecord};
use crate::socket::Socket;

/// Everything the primary decided before touching memory.
#[derive(Debug)]
pub(crate) struct PrimarySetup {
    pub settings: MemorySettings,
    pub limits: MemsegLimits,
    /// Page sizes to create lists for (each with a directory in `settings.huge_dirs` unless
    /// in-memory), ascending. Ignored for no-huge.
    pub page_sizes: Vec<u64>,
    pub sockets: Vec<i32>,
    pub base_virtaddr: Option<u64>,
    /// The runtime directory's configuration file, exclusively locked; `None` for in-memory.
    pub config_file: Option<(BackingFile, PathBuf)>,
    /// Memory to map at start: bytes per socket (preallocation in dynamic mode, the whole
    /// amount in legacy mode); `None` in legacy mode means every free hugepage.
    pub startup_bytes: Option<Vec<(i32, u64)>>,
    /// Size of the no-huge area.
    pub no_huge_bytes: u64,
    /// `--socket-limit`: (socket, bytes) for the default validator, installed before any
    /// memory is mapped so that preallocation honours it too.
    pub socket_limits: Vec<(i32, u64)>,
    /// Slots of the memzone table.
    pub max_memzones: u32,
    /// Segments all external lists together may hold.
    pub external_segments: u64,
}

const SMALL_PAGE: u64 = 4096;

impl Memory {
    pub(crate) fn create_primary(setup: PrimarySetup) -> Result<Memory, EalError> {
        let settings = setup.settings.clone();
        if settings.mode != MemoryMode::NoHuge
            && !settings.in_memory
            && settings.huge_unlink != HugeUnlink::Never
        {
            for (_, dir) in &settings.huge_dirs {
                remove_stale_files(dir, &settings.file_prefix)?;
            }
        }
        let plan: Vec<PlannedList> = if settings.mode == MemoryMode::NoHuge {
            let n_segs = setup.no_huge_bytes.div_ceil(SMALL_PAGE);
            let n_segs = u32::try_from(n_segs)
                .map_err(|_| EalError::Limit("--no-huge memory too large".into()))?;
            vec![PlannedList {
                page_size: SMALL_PAGE,
                socket_id: 0,
                n_segs,
            }]
        } else {
            plan_lists(&setup.limits, &setup.page_sizes, &setup.sockets)
        };
        if plan.is_empty() {
            return Err(EalError::NoHugepages {
                reason: "no page size and socket to create memseg lists for".into(),
            });
        }
        let specs = reserve_windows(&plan, setup.base_virtaddr)?;
        let release_windows = |specs: &[ListSpec]| {
            for s in specs {
                // SAFETY: windows reserved above by this function, nothing mapped yet.
                let _ = unsafe {
                    mapping::release(
                        s.base_va as usize,
                        (u64::from(s.n_segs) * s.page_size) as usize,
                    )
                };
            }
        };
        let mut flags_word = 0;
        if settings.mode == MemoryMode::Legacy {
            flags_word |= mode_flags::LEGACY;
        }
        if settings.mode == MemoryMode::NoHuge {
            flags_word |= mode_flags::NO_HUGE;
        }
        if settings.single_file_segments {
            flags_word |= mode_flags::SINGLE_FILE_SEGMENTS;
        }
        if settings.in_memory {
            flags_word |= mode_flags::IN_MEMORY;
        }
        if settings.match_allocations {
            flags_word |= mode_flags::MATCH_ALLOCATIONS;
        }
        if settings.huge_unlink == HugeUnlink::Always {
            flags_word |= mode_flags::FILES_UNLINKED;
        }
        let record = PrimaryRecord {
            iova_va: settings.iova_mode == IovaMode::Va,
            mode_flags: flags_word,
            file_prefix: &settings.file_prefix,
            huge_dirs: &settings.huge_dirs,
            max_memzones: setup.max_memzones,
            external_segments: setup.external_segments,
        };
        let config_hint = specs
            .iter()
            .map(|s| s.base_va + u64::from(s.n_segs) * s.page_size)
            .max()
            .unwrap_or(DEFAULT_BASE_HINT);
        let config =
            match ConfigMapping::create(setup.config_file, &specs, &record, config_hint as usize) {
                Ok(c) => c,
                Err(e) => {
                    release_windows(&specs);
                    return Err(e);
                }
            };
        let backings = match make_backings(&settings, &specs) {
            Ok(b) => b,
            Err(e) => {
                release_windows(&specs);
                return Err(e);
            }
        };
        // From here on, `Memory`'s drop releases the windows and whatever got mapped.
        let memory = Memory::new(config, backings, settings);
        for &(socket, limit) in &setup.socket_limits {
            memory.register_validator(
                "socket-limit",
                Socket::from_recorded(socket),
                limit,
                |_, _, _| false,
            )?;
        }
        match memory.settings.mode {
            MemoryMode::NoHuge => memory.map_no_huge()?,
            MemoryMode::Legacy => memory.map_legacy(setup.startup_bytes.as_deref())?,
            MemoryMode::Dynamic => {
                if let Some(amounts) = &setup.startup_bytes {
                    memory.preallocate(amounts)?;
                }
            }
        }
        Ok(memory)
    }

    /// `--no-huge`: one list of 4 KiB anonymous pages, all mapped now, IOVA = VA.
    fn map_no_huge(&self) -> Result<(), EalError> {
        let list = &self.lists[0];
        let h = *list.header();
        // SAFETY: the window was reserved for this list and nothing is mapped in it yet.
        unsafe { mapping::map_anonymous_fixed(h.base_va as usize, h.len as usize, None, false) }
            .map_err(|e| EalError::sys("map --no-huge memory", e))?;
        let _lock = self.config.header().hotplug_lock.lock();
        for idx in 0..h.n_segs {
            let va = list.slot_va(idx);
            list.set_segment(
                idx,
                Memseg {
                    va,
                    iova: va,
                    len: h.page_size,
                    page_size: h.page_size,
                    socket_id: 0,
                    flags: flags::DO_NOT_FREE,
                    file_offset: 0,
                    alloc_pages: if idx == 0 { h.n_segs } else { 0 },
                    map_seq: 0,
                },
            );
            list.occupancy.set_used(idx).expect("fresh list");
        }
        self.account(0, h.len, true);
        Ok(())
    }

    /// Pages per (socket, page size) to map at start: the requested bytes per socket filled
    /// with the biggest pages first, as far as each node has free pages; `None` means every
    /// free page (legacy without `-m`).
    fn startup_plan(
        &self,
        amounts: Option<&[(i32, u64)]>,
    ) -> Result<Vec<(i32, u64, usize)>, EalError> {
        let info = dpmem_sys::hugepage_info::discover(&dpmem_sys::root::SysRoot::host())
            .map_err(|e| EalError::sys("read hugepage counts", e))?;
        let mut sizes = self.page_sizes();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let mut plan = Vec::new();
        match amounts {
            None => {
                for &socket in self.socket_ids() {
                    for &ps in &sizes {
                        let free = info.free_on_node(ps, socket as u32) as usize;
                        if free > 0 {
                            plan.push((socket, ps, free));
                        }
                    }
                }
                if plan.is_empty() {
                    return Err(EalError::NoHugepages {
                        reason: "legacy mode found no free hugepage on any node".into(),
                    });
                }
            }
            Some(amounts) => {
                let smallest = *sizes.last().expect("lists exist");
                for &(socket, bytes) in amounts.iter().filter(|(_, b)| *b > 0) {
                    if !self.socket_ids().contains(&socket) {
                        return Err(EalError::InvalidArgument(format!(
                            "socket {socket} has no memseg lists (no such NUMA node)"
                        )));
                    }
                    let mut remaining = bytes.div_ceil(smallest) * smallest;
                    let mut available_total = 0;
                    for &ps in &sizes {
                        let free = info.free_on_node(ps, socket as u32);
                        available_total += free * ps;
                        let n = (remaining / ps).min(free);
                        if n > 0 {
                            plan.push((socket, ps, n as usize));
                            remaining -= n * ps;
                        }
                    }
                    if remaining > 0 {
                        return Err(EalError::NodeShortfall {
                            socket: Socket::from_recorded(socket),
                            requested_mb: bytes >> 20,
                            available_mb: available_total >> 20,
                            shortfall_mb: remaining.div_ceil(1 << 20),
                        });
                    }
                }
            }
        }
        Ok(plan)
    }

    /// Dynamic mode's `-m`/`--socket-mem`: map the memory now and pin it.
    fn preallocate(&self, amounts: &[(i32, u64)]) -> Result<(), EalError> {
        for (socket, ps, mut n) in self.startup_plan(Some(amounts))? {
            while n > 0 {
                let room = self
                    .lists
                    .iter()
                    .filter(|l| l.header().page_size == ps && l.header().socket_id == socket)
                    .filter_map(|l| {
                        l.occupancy
                            .find_biggest_free(0)
                            .map(|(_, len)| len as usize)
                    })
                    .max()
                    .unwrap_or(0);
                if room == 0 {
                    return Err(EalError::Limit(format!(
                        "memseg lists of {ps} byte pages on socket {socket} are full; raise the list limits"
                    )));
                }
                let chunk = n.min(room);
                let mut req = PageRequest::new(ps, Socket::from_recorded(socket), chunk);
                req.pinned = true;
                self.map_pages(req)?;
                n -= chunk;
            }
        }
        Ok(())
    }

    /// Legacy mode: bring every page in, learn its physical address, then map the pages into
    /// their lists in physical order, leaving an empty slot wherever physical contiguity breaks
    /// so that no later walk or heap sees a discontiguous run as one.
    fn map_legacy(&self, amounts: Option<&[(i32, u64)]>) -> Result<(), EalError> {
        let plan = self.startup_plan(amounts)?;
        if self.settings.single_file_segments {
            // Pages of one file cannot be reordered by renaming; keep file order.
            for (socket, ps, n) in plan {
                let mut req = PageRequest::new(ps, Socket::from_recorded(socket), n);
                req.pinned = true;
                self.map_pages(req)?;
            }
            return Ok(());
        }
        for (socket, ps, n) in plan {
            let dir = self.dir_for(ps)?.to_path_buf();
            let (mut window, mut pages) = self.legacy_bring_in(&dir, socket, ps, n)?;
            if self.settings.iova_mode == IovaMode::Pa {
                pages.sort_by_key(|p| p.pa);
            }
            self.legacy_place(&dir, socket, ps, &mut window, pages)?;
        }
        Ok(())
    }

    fn dir_for(&self, page_size: u64) -> Result<&Path, EalError> {
        self.settings
            .huge_dirs
            .iter()
            .find(|(ps, _)| *ps == page_size)
            .map(|(_, d)| d.as_path())
            .ok_or_else(|| EalError::NoHugepages {
                reason: format!("no hugetlbfs mount for {page_size} byte pages"),
            })
    }

    /// Allocates `n` pages on `socket` in temporary files, in parallel, then (when IOVAs are
    /// physical addresses or nodes are checked) maps each in a staging window to learn its
    /// physical address and node (see [`legacy_locate`]).
    ///
    /// The mapping is done on the calling thread once the workers are done: a worker that maps
    /// its pages itself waits on the address-space lock and on the kernel's per-file fault lock
    /// (which the other worker holds while it clears a page), 6-7 ms per worker on its way
    /// against 4-5 ms for all 512 pages on one thread afterwards.
    fn legacy_bring_in(
        &self,
        dir: &Path,
        socket: i32,
        ps: u64,
        n: usize,
    ) -> Result<(StagingWindow, Vec<StagedPage>), EalError> {
        let mut window = StagingWindow::reserve(ps, n)?;
        let workers = std::thread::available_parallelism()
            .map_or(1, |w| w.get())
            .min(n.div_ceil(4))
            .max(1);
        // One descriptor per page stays open: grow the table once, before the workers start
        // (see `dpmem_sys::fd_table`).
        dpmem_sys::fd_table::reserve(n);
        let prefix = &self.settings.file_prefix;
        let numa_policy = self.settings.numa_policy;
        let bring_one = |i: usize| -> Result<StagedPage, EalError> {
            let path = dir.join(format!("{prefix}map_tmp_{socket}_{ps}_{i}"));
            let mut file = BackingFile::open_or_create(&path)
                .map_err(|e| EalError::sys("create page file", e))?;
            // `fallocate` without KEEP_SIZE also sizes the file: no `ftruncate`.
            let result = file
                .lock_shared()
                .and_then(|()| file.allocate(0, ps))
                .map_err(|e| EalError::sys(format!("allocate a page on socket {socket}"), e));
            match result {
                Ok(()) => Ok(StagedPage {
                    file,
                    pa: BAD_IOVA,
                    slot: i,
                }),
                Err(e) => {
                    let _ = file.unlink();
                    Err(e)
                }
            }
        };
        // Each worker takes the next page still to bring until none is left, rather than a
        // fixed share: a page takes one worker twice as long as another when the kernel makes
        // it wait for the other's clearing (a fault lock both hash to), and with fixed shares
        // the one that waited more finished up to 4 ms after the other, which sat idle.
        let next = AtomicUsize::new(0);
        let bring = || -> Vec<Result<StagedPage, EalError>> {
            let _binding = if numa_policy {
                numa::ThreadNodeBinding::bind(socket as u32).ok()
            } else {
                None
            };
            std::iter::from_fn(|| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                (i < n).then(|| bring_one(i))
            })
            .collect()
        };
        let results: Vec<_> = if workers == 1 {
            bring()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (1..workers).map(|_| scope.spawn(bring)).collect();
                // The calling thread is a worker too: one thread fewer to start.
                let mut all = bring();
                for h in handles {
                    all.extend(h.join().expect("legacy worker panicked"));
                }
                all
            })
        };
        let mut pages = Vec::with_capacity(n);
        let mut failure = None;
        for r in results {
            match r {
                Ok(p) => pages.push(p),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        // Back in the order they were asked for, whichever worker brought each: without
        // physical addresses to sort by, that is the order the pages are placed in.
        pages.sort_unstable_by_key(|p| p.slot);
        let pagemap = if self.settings.iova_mode == IovaMode::Pa {
            Pagemap::open().ok()
        } else {
            None
        };
        // Nothing to learn: the pages are mapped once, straight at their slots.
        let learn = pagemap.is_some() || numa_policy;
        if failure.is_none() && learn {
            let staged: Result<Vec<usize>, EalError> = pages
                .iter()
                .map(|page| {
                    window
                        .stage(page.slot, &page.file)
                        .map_err(|e| EalError::sys("map page", e))
                })
                .collect();
            failure = staged
                .and_then(|vas| {
                    legacy_locate(&mut pages, &vas, socket, ps, pagemap.as_ref(), numa_policy)
                })
                .err();
        }
        if let Some(e) = failure {
            // The window, dropped here, releases whatever was staged.
            for mut page in pages {
                let _ = page.file.unlink();
            }
            return Err(e);
        }
        Ok((window, pages))
    }

    fn legacy_place(
        &self,
        dir: &Path,
        socket: i32,
        ps: u64,
        window: &mut StagingWindow,
        pages: Vec<StagedPage>,
    ) -> Result<(), EalError> {
        let _lock = self.config.header().hotplug_lock.lock();
        let mut backings = self.backings.lock().expect("backing table poisoned");
        let lists: Vec<_> = self
            .lists
            .iter()
            .filter(|l| l.header().page_size == ps && l.header().socket_id == socket)
            .collect();
        let (mut list_pos, mut slot) = (0usize, 0u32);
        let mut prev_pa: Option<u64> = None;
        let mut pages = pages.into_iter();
        let mut leftovers = Vec::new();
        for StagedPage {
            mut file,
            pa,
            slot: staged,
        } in pages.by_ref()
        {
            let breaks = self.settings.iova_mode == IovaMode::Pa
                && prev_pa
                    .is_some_and(|prev| pa == BAD_IOVA || prev == BAD_IOVA || pa != prev + ps);
            if breaks && slot > 0 {
                slot += 1;
            }
            while list_pos < lists.len() && slot >= lists[list_pos].header().n_segs {
                list_pos += 1;
                slot = 0;
            }
            let Some(list) = lists.get(list_pos) else {
                // Still staged: the window releases its mapping when dropped.
                leftovers.push(file);
                continue;
            };
            let h = *list.header();
            let va = list.slot_va(slot);
            let final_path = page_file_path(dir, &self.settings.file_prefix, h.index, slot);
            // The descriptor keeps the shared lock taken when the page was allocated.
            let placed = file
                .rename(&final_path)
                .map_err(|e| EalError::sys("rename page file", e))
                .and_then(|()| {
                    // SAFETY: `va` is a free slot of this list's own reservation, and the
                    // page's staged address was only used to learn where the page lies.
                    unsafe { window.place(staged, &file, va as usize) }
                        .map_err(|e| EalError::sys("map page", e))
                })
                .and_then(|()| {
                    if self.settings.huge_unlink == HugeUnlink::Always {
                        file.unlink()
                            .map_err(|e| EalError::sys("unlink page file", e))?;
                    }
                    Ok(())
                });
            if let Err(e) = placed {
                // This page and those not yet placed are in no list: their files go (under
                // whichever name each has now), and the window releases their mappings.
                let _ = file.unlink();
                for mut rest in pages.by_ref().map(|p| p.file).chain(leftovers) {
                    let _ = rest.unlink();
                }
                return Err(e);
            }
            let iova = match self.settings.iova_mode {
                IovaMode::Pa => pa,
                IovaMode::Va => va,
            };
            list.set_segment(
                slot,
                Memseg {
                    va,
                    iova,
                    len: ps,
                    page_size: ps,
                    socket_id: socket,
                    flags: flags::DO_NOT_FREE,
                    file_offset: 0,
                    alloc_pages: 1,
                    map_seq: 0,
                },
            );
            list.occupancy
                .set_used(slot)
                .expect("legacy slots are placed once");
            backings[h.index as usize].adopt(slot, Some(file));
            self.account(socket, ps, true);
            prev_pa = Some(pa);
            slot += 1;
        }
        if !leftovers.is_empty() {
            let count = leftovers.len();
            for mut file in leftovers {
                let _ = file.unlink();
            }
            return Err(EalError::Limit(format!(
                "{count} pages of {ps} bytes on socket {socket} do not fit in the memseg lists; raise the list limits"
            )));
        }
        Ok(())
    }
}

/// A legacy page allocated and mapped in the staging window, not yet in its list.
#[derive(Debug)]
struct StagedPage {
    file: BackingFile,
    /// Physical address, or [`BAD_IOVA`] when unknown.
    pa: u64,
    /// Slot of the staging window the page is mapped at.
    slot: usize,
}

/// Where the kernel put the legacy pages staged at `vas` (one address per page of `pages`):
/// with `numa_policy`, a check that every page is on `socket`, and from `pagemap` each page's
/// physical address ([`BAD_IOVA`] when unknown).
///
/// The nodes come from one `move_pages` call for all the pages (0.1 ms for 512) rather than a
/// `get_mempolicy` per page: with the staging, this step took 3.4–3.6 ms for 1 GiB of 2 MiB
/// pages in the runs that timed it, 3.6–5.6 ms before. (One read of the page map for the whole
/// run was tried too: it took 2 ms, its 2 MiB buffer faulting in, against about 0.5 ms for the
/// 512 small reads.)
fn legacy_locate(
    pages: &mut [StagedPage],
    vas: &[usize],
    socket: i32,
    ps: u64,
    pagemap: Option<&Pagemap>,
    numa_policy: bool,
) -> Result<(), EalError> {
    if numa_policy {
        // A page the kernel cannot locate is not taken for one it misplaced: only a page
        // reported on another node fails start-up.
        let nodes: Vec<Option<u32>> = match numa::node_of_each(vas) {
            Ok(each) => each.into_iter().map(Result::ok).collect(),
            // The call refused (a sandbox may forbid `move_pages`): ask page by page.
            Err(_) => vas
                .iter()
                .map(|&va| numa::node_of_address(va).ok())
                .collect(),
        };
        if let Some(node) = nodes
            .into_iter()
            .flatten()
            .map(|n| n as i32)
            .find(|&n| n != socket)
        {
            return Err(EalError::OutOfMemory {
                pages: 1,
                page_size: ps,
                socket: Socket::from_recorded(socket),
                reason: format!("the kernel placed a page on node {node}"),
            });
        }
    }
    let Some(map) = pagemap else {
        return Ok(());
    };
    let addresses = vas
        .iter()
        .map(|&va| map.physical_address(va).ok().flatten());
    for (page, pa) in pages.iter_mut().zip(addresses) {
        page.pa = pa.unwrap_or(BAD_IOVA);
    }
    Ok(())
}

/// Where windows go when `--base-virtaddr` is not given: low in the address space, far from
/// where the kernel puts libraries, thread stacks and its own mmap choices, so that a
/// secondary (whose layout differs by ASLR) finds the same addresses free. DPDK uses the same
/// 4 GiB default on 64-bit machines.
pub(crate) const DEFAULT_BASE_HINT: u64 = 0x1_0000_0000;
/// How far to slide the hint when the range is taken (another EAL instance of this process).
const HINT_SLIDE: u64 = 1 << 40;
const HINT_TRIES: u64 = 32;

/// Reserves every planned list's window, one after another. With `--base-virtaddr` the
/// windows must land exactly there (failing loudly otherwise); without it they start at
/// [`DEFAULT_BASE_HINT`], sliding past ranges already taken, and finally anywhere.
fn reserve_windows(plan: &[PlannedList], base: Option<u64>) -> Result<Vec<ListSpec>, EalError> {
    let exact = base.is_some();
    let mut specs: Vec<ListSpec> = Vec::with_capacity(plan.len());
    let mut next = base.unwrap_or(DEFAULT_BASE_HINT);
    let undo = |specs: &[ListSpec]| {
        for s in specs {
            // SAFETY: reserved above by this function; nothing mapped yet.
            let _ = unsafe {
                mapping::release(
                    s.base_va as usize,
                    (u64::from(s.n_segs) * s.page_size) as usize,
                )
            };
        }
    };
    for p in plan {
        let len = u64::from(p.n_segs) * p.page_size;
        let mut result = Err(None);
        let mut at = next.div_ceil(p.page_size) * p.page_size;
        for _ in 0..if exact { 1 } else { HINT_TRIES } {
            match mapping::reserve(len as usize, p.page_size as usize, Some(at as usize)) {
                Ok(addr) => {
                    result = Ok(addr as u64);
                    break;
                }
                Err(e) if exact => {
                    result = Err(Some(e));
                    break;
                }
                Err(_) => at += HINT_SLIDE,
            }
        }
        if result.is_err() && !exact {
            result = mapping::reserve(len as usize, p.page_size as usize, None)
                .map(|a| a as u64)
                .map_err(Some);
        }
        match result {
            Ok(base_va) => {
                specs.push(ListSpec {
                    page_size: p.page_size,
                    socket_id: p.socket_id,
                    n_segs: p.n_segs,
                    base_va,
                });
                next = base_va + len;
            }
            Err(e) => {
                undo(&specs);
                let what = if exact {
                    format!("reserve {len:#x} bytes of address space at {at:#x} (--base-virtaddr)")
                } else {
                    format!("reserve {len:#x} bytes of address space")
                };
                return Err(match e {
                    Some(e) => EalError::sys(what, e),
                    None => EalError::Limit(what),
                });
            }
        }
    }
    Ok(specs)
}

fn make_backings(
    settings: &MemorySettings,
    specs: &[ListSpec],
) -> Result<Vec<ListBacking>, EalError> {
    let mut backings = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let backing = if settings.mode == MemoryMode::NoHuge {
            ListBacking::Anonymous {
                huge_page_size: None,
            }
        } else if settings.in_memory {
            let name = format!("{}_{index}", settings.file_prefix);
            let len = u64::from(spec.n_segs) * spec.page_size;
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            match MemfdStripes::create(&name, spec.page_size, len, cpus) {
                Ok(stripes) => ListBacking::Memfd { stripes },
                // Kernels before 4.14 (or sandboxes) without hugetlb memfds: anonymous hugepages.
                Err(e) if matches!(e.errno, Errno::INVAL | Errno::NOSYS) => {
                    ListBacking::Anonymous {
                        huge_page_size: Some(spec.page_size),
                    }
                }
                Err(e) => return Err(EalError::sys("create hugetlb memfd", e)),
            }
        } else {
            let dir = settings
                .huge_dirs
                .iter()
                .find(|(ps, _)| *ps == spec.page_size)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| EalError::NoHugepages {
                    reason: format!("no hugetlbfs mount for {} byte pages", spec.page_size),
                })?;
            if settings.single_file_segments {
                let path = list_file_path(&dir, &settings.file_prefix, index as u32);
                let file = BackingFile::open_or_create(&path)
                    .map_err(|e| EalError::sys("create list file", e))?;
                file.lock_shared()
                    .map_err(|e| EalError::sys("lock list file", e))?;
                let initial_len = file
                    .size()
                    .map_err(|e| EalError::sys("stat list file", e))?;
                let len = u64::from(spec.n_segs) * spec.page_size;
                if initial_len < len {
                    file.set_len(len)
                        .map_err(|e| EalError::sys("size list file", e))?;
                }
                ListBacking::SingleFile { file, initial_len }
            } else {
                ListBacking::FilePerPage {
                    dir,
                    files: (0..spec.n_segs).map(|_| None).collect(),
                }
            }
        };
        backings.push(backing);
    }
    Ok(backings)
}

/// Removes page files of `prefix` left by a run that crashed (`--huge-unlink=existing`). A
/// file some live process still holds a lock on is another run's memory: refuse to start.
/// Whether `name` is a page file of `prefix`: `<prefix>map_<list>` or `<prefix>map_<list>_<seg>`
/// (see `backing::page_file_path`), and not a file of a longer prefix that starts the same way
/// (`a` must not take `amap_1map_0_0`, a file of prefix `amap_1`).
fn is_page_file_of(name: &str, prefix: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("map_"))
    else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('_') {
        Some((list, seg)) => number(list) && number(seg),
        None => number(rest),
    }
}

fn remove_stale_files(dir: &Path, prefix: &str) -> Result<(), EalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Err(EalError::sys(
                "list hugepage directory",
                dpmem_sys::SysError::from_io("read_dir", dir, &e),
            ))
        }
    };
    for entry in entries.flatten() {
        if !is_page_file_of(&entry.file_name().to_string_lossy(), prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = BackingFile::open_existing(&path) else {
            continue;
        };
        if file
            .try_lock_exclusive()
            .map_err(|e| EalError::sys("lock stale page file", e))?
        {
            let _ = std::fs::remove_file(&path);
        } else {
            return Err(EalError::Busy(format!(
                "{} is in use by another process: file prefix {prefix:?} is taken (use another --file-prefix)",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod page_file_name_tests {
    use super::is_page_file_of;

    #[test]
    fn only_a_prefixs_own_page_files_match() {
        assert!(is_page_file_of("amap_0_12", "a"));
        assert!(is_page_file_of("amap_3", "a"));
        // Another prefix's files, though they start with "amap_".
        assert!(!is_page_file_of("amap_1map_0_0", "a"));
        assert!(!is_page_file_of("amap_x", "a"));
        assert!(!is_page_file_of("amap_", "a"));
        assert!(!is_page_file_of("amap_1_", "a"));
        assert!(!is_page_file_of("bmap_0_0", "a"));
    }
}
