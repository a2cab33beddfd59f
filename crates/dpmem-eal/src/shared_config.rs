//! The shared configuration: the memseg lists' metadata in one mapping that every process of a
//! file prefix maps at the same address.
//!
//! Layout: a fixed [`ConfigHeader`] (which holds the list headers), then for each internal list
//! its occupancy array and its segment array, each 64-byte aligned, then the memzone slots, then
//! the *external arena*: page-aligned room for the occupancy and segment arrays of external
//! lists, which come and go at run time (see [`crate::memory`]'s external memory). The arena is
//! mapped without pre-faulting, so its pages cost nothing until external memory is registered.
//!
//! The primary writes the configuration into `<runtime dir>/config` (anonymous memory with
//! `--in-memory`) and holds an exclusive `flock` on that file for as long as it lives: that lock
//! is how a secondary, or `--proc-type=auto`, knows a primary is running.

use dpmem_sys::sync::{AtomicU32, AtomicU64, Ordering};
use std::path::{Path, PathBuf};

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::mapping;
use dpmem_sys::process_token::ProcessToken;

use crate::error::EalError;
use crate::fbarray::FbArray;
use crate::heap::directory::SharedHeapDirectory;
use crate::heap::state::{SharedHeap, MAX_HEAPS};
use crate::list_table_repair::{repair_after, ListTable};
use crate::memseg::Memseg;
use crate::memseg_list::{ListSlot, MemsegListHeader, MemsegListView, MAX_ATTACHED_PROCESSES};
use crate::memzone::table::{MemzoneTable, SLOT_SIZE};
use crate::runtime_dir::RuntimeDir;
use crate::shared_name::{decode_str, encode_str};
use crate::sync::{lock_recovery, LockRetired, SharedLocked, SharedMutex, SharedMutexGuard};

pub const CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"dpmemcfg");
/// Bumped whenever the layout changes, so a secondary built from other sources refuses to attach.
pub const LAYOUT_VERSION: u32 = 9;
/// Lists the header can describe (DPDK's `RTE_MAX_MEMSEG_LISTS`).
pub const MAX_MEMSEG_LISTS: usize = 128;
/// Sockets whose allocated totals are tracked for validators.
pub const MAX_SOCKETS: usize = 32;
pub const MAX_PAGE_SIZES: usize = 4;
const PATH_CAPACITY: usize = 256;
const PREFIX_CAPACITY: usize = 64;
const ALIGN: usize = 64;

/// Mode bits recorded by the primary so secondaries know how to attach.
pub mod mode_flags {
    pub const LEGACY: u32 = 1 << 0;
    pub const SINGLE_FILE_SEGMENTS: u32 = 1 << 1;
    pub const IN_MEMORY: u32 = 1 << 2;
    pub const NO_HUGE: u32 = 1 << 3;
    pub const MATCH_ALLOCATIONS: u32 = 1 << 4;
    /// Page files are unlinked right after mapping (`--huge-unlink=always`).
    pub const FILES_UNLINKED: u32 = 1 << 5;
}

/// Where the page files of one page size live.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HugeDirEntry {
    pub page_size: u64,
    pub path: [u8; PATH_CAPACITY],
}

#[repr(C)]
#[derive(Debug)]
pub struct ConfigHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub n_lists: u32,
    /// Address the primary mapped this configuration at; secondaries map it there too.
    pub config_addr: u64,
    pub config_len: u64,
    /// 0 = PA, 1 = VA.
    pub iova_mode: u32,
    pub mode_flags: u32,
    pub primary_pid: u32,
    /// The primary's process token (its id and start tag, see
    /// [`dpmem_sys::process_token`]): a secondary checks that it sees the primary under it.
    pub primary_token: u32,
    /// Set (Release) once the primary finished initialising; secondaries wait for it.
    pub init_complete: AtomicU32,
    /// Serialises every change to the memseg lists, across processes (DPDK's memory hotplug lock).
    pub hotplug_lock: HotplugLock,
    pub file_prefix: [u8; PREFIX_CAPACITY],
    pub huge_dirs: [HugeDirEntry; MAX_PAGE_SIZES],
    /// Bytes of hugepage memory mapped per socket, for allocation validators.
    pub socket_bytes: [AtomicU64; MAX_SOCKETS],
    /// The list table: internal lists in `0..n_lists`, external lists in spare slots above.
    pub lists: [ListSlot; MAX_MEMSEG_LISTS],
    /// The malloc heaps: socket heaps in the slot of their socket id, external heaps in any
    /// other (unused ones all zero).
    pub heaps: [SharedHeap; MAX_HEAPS],
    /// The memzone table's header; its slots lie at `slots_offset` in the mapping.
    pub memzones: SharedLocked<MemzoneTable>,
    /// Which heap slots are in use, by which name and socket id.
    pub heap_directory: SharedHeapDirectory,
    /// Where the external arena lies in the mapping (page aligned) and how long it is.
    pub external_arena_offset: u64,
    pub external_arena_len: u64,
    /// Segments all external lists together may hold (the arena is sized for them).
    pub external_segments_max: u64,
    /// Counts the primary's page maps and unmaps (bumped with Release under the hotplug
    /// lock): a secondary that last caught up at the same count has nothing to map or unmap.
    pub hotplug_generation: AtomicU64,
    /// Counts every change of what address lookups answer, in any process: pages mapped or
    /// unmapped, external memory registered or forgotten (bumped with Release under the hotplug
    /// lock). Copies of the memory map ([`crate::Memory::layout_generation`]) compare it.
    pub layout_generation: AtomicU64,
}

/// The memory hotplug lock: a [`SharedMutex`] that, taken over from a process that died
/// holding it, checks and repairs the list table before anyone uses it
/// ([`crate::list_table_repair`]). That repair always leaves the table consistent, so the lock
/// is never given up and taking it cannot fail.
///
/// It exists only as the `hotplug_lock` field of a [`ConfigHeader`], which is how a takeover
/// finds the table it protects.
#[repr(transparent)]
#[derive(Debug, Default)]
pub struct HotplugLock(SharedMutex);

impl HotplugLock {
    /// Takes the lock (see [`SharedMutex::lock`]).
    #[inline]
    pub fn lock(&self) -> SharedMutexGuard<'_> {
        self.settle(self.0.lock())
    }

    /// Takes the lock unless this thread holds it (see [`SharedMutex::lock_reentrant`]).
    #[inline]
    pub fn lock_reentrant(&self) -> SharedMutexGuard<'_> {
        self.settle(self.0.lock_reentrant())
    }

    pub(crate) fn force_reset(&self) {
        self.0.force_reset();
    }

    /// The lock itself (unit tests hand it to a dead process).
    #[cfg(test)]
    pub(crate) fn mutex(&self) -> &SharedMutex {
        &self.0
    }

    #[inline]
    fn settle<'a>(
        &'a self,
        got: Result<SharedMutexGuard<'a>, LockRetired>,
    ) -> SharedMutexGuard<'a> {
        match got {
            Ok(mut guard) => {
                if let Some(dead_pid) = guard.taken_over_from() {
                    self.repair(dead_pid);
                    guard.mark_consistent();
                }
                guard
            }
            // Only a panic inside the repair below can retire this lock.
            Err(retired) => panic!(
                "the memory hotplug lock was given up after process {} died holding it and its repair failed",
                retired.dead_pid
            ),
        }
    }

    #[cold]
    fn repair(&self, dead_pid: u32) {
        let offset = std::mem::offset_of!(ConfigHeader, hotplug_lock);
        // SAFETY: a `HotplugLock` exists only as the `hotplug_lock` field of a `ConfigHeader`
        // (the type's contract: nothing else constructs one but the configuration's zeroed
        // memory), so the header starts `offset` bytes before it, in the same mapping, for as
        // long as this reference lives.
        let header = unsafe { &*((self as *const Self as usize - offset) as *const ConfigHeader) };
        let report = repair_after(
            ListTable {
                slots: &header.lists,
                first_external: header.n_lists as usize,
                mapping: header.config_addr as usize,
                arena: (header.external_arena_offset, header.external_arena_len),
                list_bytes: external_list_bytes,
            },
            dead_pid,
        );
        lock_recovery::record_takeover("the memseg list table", dead_pid, Ok(&report));
    }
}

/// Arena bytes that hold the metadata of external lists with `segments` segments in all, however
/// they are cut into lists: each list costs its segments, one occupancy bit per segment, an
/// occupancy header and at most two alignment gaps.
fn external_arena_bytes(segments: u64) -> usize {
    let per_list = (8 + 8 + 2 * ALIGN) as u64;
    let per_seg = std::mem::size_of::<Memseg>() as u64 + 1;
    (segments * per_seg + MAX_MEMSEG_LISTS as u64 * per_list) as usize
}

/// Bytes one external list of `n_segs` segments takes in the arena: its occupancy array, then its
/// segment array, each 64-byte aligned.
pub(crate) fn external_list_bytes(n_segs: u32) -> (u64, u64) {
    let fb = align_up(FbArray::bytes_needed(n_segs)) as u64;
    let segs = align_up(n_segs as usize * std::mem::size_of::<Memseg>()) as u64;
    (fb, segs)
}

fn align_up(v: usize) -> usize {
    (v + ALIGN - 1) & !(ALIGN - 1)
}

/// A list to lay out: its type, size and reserved window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListSpec {
    pub page_size: u64,
    pub socket_id: i32,
    pub n_segs: u32,
    pub base_va: u64,
}

/// Where the parts of the configuration lie.
struct Layout {
    /// Total bytes (whole pages).
    len: usize,
    /// Each internal list's (fbarray, segs) offsets.
    lists: Vec<(usize, usize)>,
    memzones: usize,
    /// The external arena: offset (page aligned) and length.
    arena: (usize, usize),
}

/// Lays out the configuration for these lists, memzones and external segments.
fn layout(specs: &[ListSpec], max_memzones: u32, external_segments: u64) -> Layout {
    let mut offset = align_up(std::mem::size_of::<ConfigHeader>());
    let mut offsets = Vec::with_capacity(specs.len());
    for spec in specs {
        let fb = offset;
        offset = align_up(offset + FbArray::bytes_needed(spec.n_segs));
        let segs = offset;
        offset = align_up(offset + spec.n_segs as usize * std::mem::size_of::<Memseg>());
        offsets.push((fb, segs));
    }
    let memzones = offset;
    offset = align_up(offset + max_memzones as usize * SLOT_SIZE);
    let page = mapping::system_page_size();
    let arena_offset = offset.div_ceil(page) * page;
    let arena_len = external_arena_bytes(external_segments).div_ceil(page) * page;
    Layout {
        len: arena_offset + arena_len,
        lists: offsets,
        memzones,
        arena: (arena_offset, arena_len),
    }
}

/// Maps `file` (or anonymous memory) over the reservation `[addr, addr+len)`: everything before
/// the external arena as one part, the arena (faulted in on demand) as another.
///
/// `prefault` fills the page tables of the first part now. A secondary does, since it maps
/// pages the primary already has. The primary does not: of the first part's megabytes (each
/// list's segment array is sized for its whole window) start-up touches a few dozen pages,
/// while prefaulting a file on a disk filesystem costs a write fault per page, 4-8 ms for
/// 2.3 MB on ext4. Its file's blocks are allocated instead (a full disk is then an error here,
/// not a `SIGBUS` at some later touch) and faults are told not to read ahead.
///
/// # Safety
/// `[addr, addr+len)` must be a reservation of the caller that holds nothing in use.
unsafe fn map_config(
    file: Option<&BackingFile>,
    addr: usize,
    len: usize,
    arena_offset: usize,
    prefault: bool,
) -> Result<(), EalError> {
    if let (Some(file), false, true) = (file, prefault, arena_offset > 0) {
        match file.allocate(0, arena_offset as u64) {
            // Filesystems without fallocate keep the old behaviour: blocks on first write.
            Err(e) if e.errno != dpmem_sys::error::Errno::OPNOTSUPP => {
                return Err(EalError::sys("allocate shared configuration", e))
            }
            _ => {}
        }
    }
    let parts = [
        (0, arena_offset, prefault),
        (arena_offset, len - arena_offset, false),
    ];
    for (offset, part_len, populate) in parts {
        if part_len == 0 {
            continue;
        }
        let result = match file {
            // SAFETY: the part lies inside the caller's reservation, which holds nothing in use.
            Some(file) => unsafe {
                mapping::map_file_fixed(file.fd(), offset as u64, addr + offset, part_len, populate)
            },
            // SAFETY: as above.
            None => unsafe {
                mapping::map_anonymous_fixed(addr + offset, part_len, None, populate)
            },
        };
        result.map_err(|e| EalError::sys("map shared configuration", e))?;
    }
    if file.is_some() {
        // A hint only: faults work the same without it, just slower.
        // SAFETY: `[addr, addr+len)` is the file mapping made just above, owned by the caller.
        let _ = unsafe { mapping::expect_random_access(addr, len) };
    }
    Ok(())
}

/// The mapped configuration. Owns the mapping (and the file with its lock).
#[derive(Debug)]
pub(crate) struct ConfigMapping {
    addr: usize,
    len: usize,
    file: Option<BackingFile>,
    path: Option<PathBuf>,
    owner: bool,
}

// SAFETY: the mapping is plain shared memory owned by this value; all shared mutation inside it
// goes through atomics or the hotplug lock.
unsafe impl Send for ConfigMapping {}
// SAFETY: as above.
unsafe impl Sync for ConfigMapping {}

/// What the primary records besides the lists.
#[derive(Debug, Clone)]
pub(crate) struct PrimaryRecord<'a> {
    pub iova_va: bool,
    pub mode_flags: u32,
    pub file_prefix: &'a str,
    pub huge_dirs: &'a [(u64, PathBuf)],
    /// Slots of the memzone table.
    pub max_memzones: u32,
    /// Segments all external lists together may hold.
    pub external_segments: u64,
}

impl ConfigMapping {
    /// Locks (or fails to lock) the configuration file of a runtime directory, telling whether a
    /// primary is alive. Returns the file holding the exclusive lock when none is.
    ///
    /// The file is created when missing (and opened without following a symbolic link, only
    /// when it is a regular file of this user: see [`crate::runtime_dir`]).
    pub(crate) fn try_become_primary(
        runtime_dir: &RuntimeDir,
    ) -> Result<Option<BackingFile>, EalError> {
        let file = runtime_dir.open_or_create_config()?;
        if file
            .try_lock_exclusive()
            .map_err(|e| EalError::sys("lock shared configuration", e))?
        {
            Ok(Some(file))
        } else {
            Ok(None)
        }
    }

    /// Creates the configuration as primary: in `file` (already exclusively locked) or, for
    /// `--in-memory`, in anonymous memory. Writes the header and every list header.
    pub(crate) fn create(
        file: Option<(BackingFile, PathBuf)>,
        specs: &[ListSpec],
        record: &PrimaryRecord<'_>,
        hint: usize,
    ) -> Result<Self, EalError> {
        let max_memzones = record.max_memzones;
        if specs.len() > MAX_MEMSEG_LISTS {
            return Err(EalError::Limit(format!(
                "{} memseg lists exceed the maximum of {MAX_MEMSEG_LISTS}",
                specs.len()
            )));
        }
        if record.huge_dirs.len() > MAX_PAGE_SIZES {
            return Err(EalError::Limit(format!(
                "more than {MAX_PAGE_SIZES} page sizes"
            )));
        }
        let Layout {
            len,
            lists: offsets,
            memzones: memzones_offset,
            arena,
        } = layout(specs, max_memzones, record.external_segments);
        // Like the lists, the configuration goes where secondaries will find the range free.
        let page = mapping::system_page_size();
        let hint = hint.div_ceil(2 << 20) * (2 << 20);
        let addr = mapping::reserve(len, page, Some(hint))
            .or_else(|_| mapping::reserve(len, page, None))
            .map_err(|e| EalError::sys("reserve configuration", e))?;
        let mapped = match &file {
            Some((file, _)) => {
                // A stale file of a crashed primary may be longer; start from zeroes.
                file.set_len(0)
                    .and_then(|()| file.set_len(len as u64))
                    .map_err(|e| EalError::sys("size shared configuration", e))
                    // SAFETY: [addr, addr+len) was reserved just above by this process.
                    .and_then(|()| unsafe { map_config(Some(file), addr, len, arena.0, false) })
            }
            // SAFETY: [addr, addr+len) is the reservation made just above, unused.
            None => unsafe { map_config(None, addr, len, arena.0, false) },
        };
        if let Err(e) = mapped {
            // SAFETY: the reservation made just above; nothing of it is in use.
            let _ = unsafe { mapping::release(addr, len) };
            return Err(e);
        }
        let (file, path) = file.unzip();
        let mut this = Self {
            addr,
            len,
            file,
            path,
            owner: true,
        };
        let header = this.header_mut_for_init();
        header.magic = CONFIG_MAGIC;
        header.layout_version = LAYOUT_VERSION;
        header.n_lists = specs.len() as u32;
        header.config_addr = addr as u64;
        header.config_len = len as u64;
        header.iova_mode = u32::from(record.iova_va);
        header.mode_flags = record.mode_flags;
        header.primary_pid = dpmem_sys::process::pid();
        header.primary_token = ProcessToken::own().raw();
        header.hotplug_lock.force_reset();
        header.memzones.force_unlock();
        header.heap_directory.force_unlock();
        header.heap_directory.get_mut().reset();
        header.external_arena_offset = arena.0 as u64;
        header.external_arena_len = arena.1 as u64;
        header.external_segments_max = record.external_segments;
        {
            let table = header.memzones.get_mut();
            table.count = 0;
            table.capacity = max_memzones;
            table.slots_offset = memzones_offset as u64;
        }
        header.file_prefix = encode_str(record.file_prefix)?;
        for (slot, (page_size, dir)) in record.huge_dirs.iter().enumerate() {
            header.huge_dirs[slot] = HugeDirEntry {
                page_size: *page_size,
                path: encode_str(&dir.to_string_lossy())?,
            };
        }
        for (index, (spec, (fb, segs))) in specs.iter().zip(&offsets).enumerate() {
            header.lists[index].write(MemsegListHeader {
                base_va: spec.base_va,
                len: u64::from(spec.n_segs) * spec.page_size,
                page_size: spec.page_size,
                socket_id: spec.socket_id,
                n_segs: spec.n_segs,
                fbarray_offset: *fb as u64,
                segs_offset: *segs as u64,
                flags: 0,
                index: index as u32,
                attached_pids: [0; MAX_ATTACHED_PROCESSES],
            });
            // SAFETY: the fbarray region [fb, fb + bytes_needed) lies inside the mapping, is
            // 64-byte aligned, and lives as long as the mapping.
            unsafe { FbArray::init((addr + fb) as *mut u8, spec.n_segs) };
        }
        Ok(this)
    }

    /// Maps an existing configuration as a secondary, at the primary's address.
    pub(crate) fn attach(runtime_dir: &RuntimeDir) -> Result<Self, EalError> {
        let path = runtime_dir.config_path();
        let file = runtime_dir.open_config()?.ok_or_else(|| {
            EalError::Secondary(format!(
                "no primary process is running (no shared configuration at {})",
                path.display()
            ))
        })?;
        if file
            .try_lock_shared()
            .map_err(|e| EalError::sys("probe shared configuration lock", e))?
        {
            let _ = file.unlock();
            return Err(EalError::Secondary(format!(
                "no primary process is running for {} (its configuration is not locked)",
                runtime_dir.path().display()
            )));
        }
        // Read the fixed prefix of the header with pread first: which address to map at, and
        // whether the primary's mode can be shared at all.
        let mut head = [0u8; 40];
        file.read_at(&mut head, 0)
            .map_err(|e| EalError::sys("read shared configuration", e))?;
        let word = |i: usize| u64::from_ne_bytes(head[i..i + 8].try_into().expect("8 bytes"));
        let half = |i: usize| u32::from_ne_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        if word(0) != CONFIG_MAGIC || half(8) != LAYOUT_VERSION {
            return Err(EalError::Secondary(format!(
                "{} is not a dpmem configuration of layout {LAYOUT_VERSION}",
                path.display()
            )));
        }
        let flags = half(std::mem::offset_of!(ConfigHeader, mode_flags));
        if flags & mode_flags::NO_HUGE != 0 {
            return Err(EalError::Secondary(
                "the primary runs with --no-huge: its anonymous memory cannot be shared".into(),
            ));
        }
        if flags & mode_flags::FILES_UNLINKED != 0 {
            return Err(EalError::Secondary(
                "the primary runs with --huge-unlink=always: its page files are gone, so they cannot be mapped".into(),
            ));
        }
        let (addr, len) = (word(16) as usize, word(24) as usize);
        let mut arena = [0u8; 8];
        file.read_at(
            &mut arena,
            std::mem::offset_of!(ConfigHeader, external_arena_offset) as u64,
        )
        .map_err(|e| EalError::sys("read shared configuration", e))?;
        let arena_offset = u64::from_ne_bytes(arena) as usize;
        if arena_offset == 0 || arena_offset > len {
            return Err(EalError::Secondary(format!(
                "{} has no valid external arena offset ({arena_offset:#x})",
                path.display()
            )));
        }
        mapping::reserve(len, mapping::system_page_size(), Some(addr)).map_err(|e| {
            EalError::Secondary(format!(
                "cannot map the configuration at the primary's address {addr:#x}: {e}"
            ))
        })?;
        // SAFETY: [addr, addr+len) was reserved just above by this process.
        if let Err(e) = unsafe { map_config(Some(&file), addr, len, arena_offset, true) } {
            // SAFETY: the reservation made just above; nothing of it is in use.
            let _ = unsafe { mapping::release(addr, len) };
            return Err(e);
        }
        let this = Self {
            addr,
            len,
            file: Some(file),
            path: Some(path),
            owner: false,
        };
        // Wait for the primary to finish initialising (it may have just started).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while this.header().init_complete.load(Ordering::Acquire) == 0 {
            if std::time::Instant::now() > deadline {
                return Err(EalError::Secondary(
                    "the primary has not finished initialising after 10 s".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A lock's holder is recorded by its process token, which names the process only where
        // its process id means the same: a primary this process cannot see while it holds the
        // configuration's lock runs in another pid namespace, and a lock it left held could then
        // neither be waited for nor taken over safely.
        let primary = ProcessToken::from_raw(this.header().primary_token);
        if !primary.is_alive() && this.primary_alive_by_lock() {
            return Err(EalError::Secondary(format!(
                "the primary (process {} in its pid namespace) is running but not visible from this process: the processes of one EAL must share a pid namespace",
                primary.pid()
            )));
        }
        Ok(this)
    }

    /// Whether the primary still holds the configuration file's lock (a secondary asks; a
    /// moment's shared lock taken to find out is given back at once).
    fn primary_alive_by_lock(&self) -> bool {
        match self.file.as_ref().map(BackingFile::try_lock_shared) {
            Some(Ok(true)) => {
                let _ = self.file.as_ref().map(BackingFile::unlock);
                false
            }
            Some(Ok(false)) | Some(Err(_)) => true,
            // The primary's own mapping (or an in-memory one): the caller is the primary.
            None => true,
        }
    }

    /// Whether the primary process of this configuration is alive: always, asked by the primary
    /// itself; for a secondary, whether the process recorded as primary still runs (its id and
    /// start time, so a later process that got the same id does not count).
    pub(crate) fn primary_alive(&self) -> bool {
        self.owner || ProcessToken::from_raw(self.header().primary_token).is_alive()
    }

    pub(crate) fn header(&self) -> &ConfigHeader {
        // SAFETY: the mapping is at least size_of::<ConfigHeader>() long, page aligned, and
        // lives as long as `self`; fields other than atomics and the lock are written only
        // before any shared reference exists (primary initialisation).
        unsafe { &*(self.addr as *const ConfigHeader) }
    }

    fn header_mut_for_init(&mut self) -> &mut ConfigHeader {
        // SAFETY: called only by the primary before the configuration is published (no other
        // reference exists: secondaries wait for `init_complete`, and this process has handed
        // out none yet).
        unsafe { &mut *(self.addr as *mut ConfigHeader) }
    }

    /// Views of every internal list.
    pub(crate) fn list_views(&self) -> Vec<MemsegListView> {
        let n = self.header().n_lists as usize;
        (0..n).map(|i| self.view_of_slot(i)).collect()
    }

    /// A view of list slot `slot`, whose header describes a list in use: an internal list, or
    /// an external one while the caller holds the hotplug lock (and uses the view only under it).
    pub(crate) fn view_of_slot(&self, slot: usize) -> MemsegListView {
        let cell = &self.header().lists[slot];
        let lh = cell.read();
        MemsegListView {
            header: cell.as_ptr(),
            segs: (self.addr + lh.segs_offset as usize) as *mut Memseg,
            // SAFETY: the offset was laid out for this list's array and the array initialised
            // before the list was published (internal: before the configuration was; external:
            // before its header was written, under the hotplug lock the caller holds).
            occupancy: unsafe {
                FbArray::attach((self.addr + lh.fbarray_offset as usize) as *mut u8)
            },
        }
    }

    pub(crate) fn publish(&self) {
        self.header().init_complete.store(1, Ordering::Release);
    }

    pub(crate) fn huge_dirs(&self) -> Vec<(u64, PathBuf)> {
        self.header()
            .huge_dirs
            .iter()
            .filter(|d| d.page_size != 0)
            .map(|d| (d.page_size, PathBuf::from(decode_str(&d.path))))
            .collect()
    }

    /// Where the configuration is mapped (the same address in every process).
    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for ConfigMapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this value and every view into it (lists) is dropped
        // before it by `Memory`'s field order.
        let _ = unsafe { mapping::release(self.addr, self.len) };
        if self.owner {
            if let Some(path) = &self.path {
                let _ = std::fs::remove_file(path);
            }
        }
        drop(self.file.take());
    }
}
