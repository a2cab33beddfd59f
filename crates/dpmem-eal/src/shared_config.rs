//! The shared configuration: the memseg lists' metadata in one mapping that every process of a
//! file prefix maps at the same address.
//!
//! Layout: a fixed [`ConfigHeader`] (which holds the list headers), then for each list its
//! occupancy array and its segment array, each 64-byte aligned. The primary writes it into
//! `<runtime dir>/config` (anonymous memory with `--in-memory`) and holds an exclusive `flock`
//! on that file for as long as it lives: that lock is how a secondary, or `--proc-type=auto`,
//! knows a primary is running.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::mapping;

use crate::error::EalError;
use crate::fbarray::FbArray;
use crate::heap::malloc_heap::{SharedHeap, MAX_HEAPS};
use crate::memseg::Memseg;
use crate::memseg_list::{MemsegListHeader, MemsegListView};
use crate::memzone::{MemzoneTable, SLOT_SIZE};
use crate::sync::{SharedLocked, SharedMutex};

pub const CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"dpmemcfg");
/// Bumped whenever the layout changes, so a secondary built from other sources refuses to attach.
pub const LAYOUT_VERSION: u32 = 2;
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
    /// Set (Release) once the primary finished initialising; secondaries wait for it.
    pub init_complete: AtomicU32,
    /// Serialises every change to the memseg lists, across processes (DPDK's memory hotplug lock).
    pub hotplug_lock: SharedMutex,
    pub file_prefix: [u8; PREFIX_CAPACITY],
    pub huge_dirs: [HugeDirEntry; MAX_PAGE_SIZES],
    /// Bytes of hugepage memory mapped per socket, for allocation validators.
    pub socket_bytes: [AtomicU64; MAX_SOCKETS],
    pub lists: [MemsegListHeader; MAX_MEMSEG_LISTS],
    /// The malloc heaps, one per socket id (unused ones all zero).
    pub heaps: [SharedHeap; MAX_HEAPS],
    /// The memzone table's header; its slots lie at `slots_offset` in the mapping.
    pub memzones: SharedLocked<MemzoneTable>,
}

fn align_up(v: usize) -> usize {
    (v + ALIGN - 1) & !(ALIGN - 1)
}

pub(crate) fn encode_str<const N: usize>(s: &str) -> Result<[u8; N], EalError> {
    let bytes = s.as_bytes();
    if bytes.len() >= N {
        return Err(EalError::InvalidArgument(format!(
            "{s:?} is longer than {} bytes",
            N - 1
        )));
    }
    let mut out = [0u8; N];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

pub(crate) fn decode_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A list to lay out: its type, size and reserved window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListSpec {
    pub page_size: u64,
    pub socket_id: i32,
    pub n_segs: u32,
    pub base_va: u64,
}

/// Bytes the configuration needs for these lists and memzones, each list's (fbarray, segs)
/// offsets and the memzone slots' offset.
fn layout(specs: &[ListSpec], max_memzones: u32) -> (usize, Vec<(usize, usize)>, usize) {
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
    (offset.div_ceil(page) * page, offsets, memzones)
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
}

impl ConfigMapping {
    /// Locks (or fails to lock) the configuration file of a runtime directory, telling whether a
    /// primary is alive. Returns the file holding the exclusive lock when none is.
    pub(crate) fn try_become_primary(runtime_dir: &Path) -> Result<Option<BackingFile>, EalError> {
        let path = runtime_dir.join("config");
        let file = BackingFile::open_or_create(&path)
            .map_err(|e| EalError::sys("open shared configuration", e))?;
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
        let (len, offsets, memzones_offset) = layout(specs, max_memzones);
        // Like the lists, the configuration goes where secondaries will find the range free.
        let page = mapping::system_page_size();
        let hint = hint.div_ceil(2 << 20) * (2 << 20);
        let addr = mapping::reserve(len, page, Some(hint))
            .or_else(|_| mapping::reserve(len, page, None))
            .map_err(|e| EalError::sys("reserve configuration", e))?;
        let (addr, file, path) = match file {
            Some((file, path)) => {
                // A stale file of a crashed primary may be longer; start from zeroes.
                file.set_len(0)
                    .and_then(|()| file.set_len(len as u64))
                    .map_err(|e| EalError::sys("size shared configuration", e))?;
                // SAFETY: [addr, addr+len) was reserved just above by this process.
                unsafe { mapping::map_file_fixed(file.fd(), 0, addr, len, true) }
                    .map_err(|e| EalError::sys("map shared configuration", e))?;
                (addr, Some(file), Some(path))
            }
            None => {
                // SAFETY: [addr, addr+len) is the reservation made just above, unused.
                unsafe { mapping::map_anonymous_fixed(addr, len, None, true) }
                    .map_err(|e| EalError::sys("map configuration", e))?;
                (addr, None, None)
            }
        };
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
        header.hotplug_lock.force_reset();
        header.memzones.force_unlock();
        {
            let mut table = header.memzones.lock();
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
            header.lists[index] = MemsegListHeader {
                base_va: spec.base_va,
                len: u64::from(spec.n_segs) * spec.page_size,
                page_size: spec.page_size,
                socket_id: spec.socket_id,
                n_segs: spec.n_segs,
                fbarray_offset: *fb as u64,
                segs_offset: *segs as u64,
                flags: 0,
                index: index as u32,
            };
            // SAFETY: the fbarray region [fb, fb + bytes_needed) lies inside the mapping, is
            // 64-byte aligned, and lives as long as the mapping.
            unsafe { FbArray::init((addr + fb) as *mut u8, spec.n_segs) };
        }
        Ok(this)
    }

    /// Maps an existing configuration as a secondary, at the primary's address.
    pub(crate) fn attach(runtime_dir: &Path) -> Result<Self, EalError> {
        let path = runtime_dir.join("config");
        let file = BackingFile::open_existing(&path).map_err(|e| {
            EalError::Secondary(format!(
                "no shared configuration at {}: {e}",
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
                runtime_dir.display()
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
        mapping::reserve(len, mapping::system_page_size(), Some(addr)).map_err(|e| {
            EalError::Secondary(format!(
                "cannot map the configuration at the primary's address {addr:#x}: {e}"
            ))
        })?;
        // SAFETY: [addr, addr+len) was reserved just above by this process.
        unsafe { mapping::map_file_fixed(file.fd(), 0, addr, len, true) }
            .map_err(|e| EalError::sys("map shared configuration", e))?;
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
        Ok(this)
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

    /// Views of every list.
    pub(crate) fn list_views(&self) -> Vec<MemsegListView> {
        let header = self.header();
        (0..header.n_lists as usize)
            .map(|i| {
                let lh = &header.lists[i];
                MemsegListView {
                    header: lh as *const MemsegListHeader,
                    segs: (self.addr + lh.segs_offset as usize) as *mut Memseg,
                    // SAFETY: the offset was laid out by the primary for this list's array,
                    // initialised before publication, inside the mapping.
                    occupancy: unsafe {
                        FbArray::attach((self.addr + lh.fbarray_offset as usize) as *mut u8)
                    },
                }
            })
            .collect()
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
