//! What backs the pages of one memseg list in this process, and how a page is brought in and
//! given back.
//!
//! A page is allocated with `fallocate` on its file while the worker thread's memory policy is
//! bound to the list's node, then mapped at its slot with `MAP_POPULATE`. Where the kernel put
//! it is read back (`get_mempolicy`), and so is its physical address in PA mode.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::error::Errno;
use dpmem_sys::mapping;
use dpmem_sys::numa;
use dpmem_sys::pagemap::Pagemap;

use crate::error::EalError;
use crate::iova::IovaMode;
use crate::iova::BAD_IOVA;
use crate::options::HugeUnlink;

use super::memfd_stripes::MemfdStripes;

/// The backing of one list.
#[derive(Debug)]
pub(crate) enum ListBacking {
    /// One hugetlbfs file per page: `<dir>/<prefix>map_<list>_<seg>`.
    FilePerPage {
        dir: PathBuf,
        files: Vec<Option<BackingFile>>,
    },
    /// One hugetlbfs file for the whole list (`--single-file-segments`), page `i` at offset
    /// `i * page_size`. `initial_len` is the size the file had when opened: with
    /// `--huge-unlink=never`, pages below it may hold an earlier run's data.
    SingleFile { file: BackingFile, initial_len: u64 },
    /// Hugetlb memfds for the whole list (`--in-memory`), one per CPU so that workers
    /// allocating pages do not take turns on one file's lock (see [`MemfdStripes`]).
    Memfd { stripes: MemfdStripes },
    /// Anonymous memory: 4 KiB pages for `--no-huge`, or `MAP_HUGETLB` when hugetlb memfds are
    /// unavailable in `--in-memory`.
    Anonymous { huge_page_size: Option<u64> },
}

/// The facts a worker needs to bring pages of one list in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PopulateContext<'a> {
    pub list_index: u32,
    pub page_size: u64,
    pub socket_id: i32,
    pub file_prefix: &'a str,
    pub huge_unlink: HugeUnlink,
    pub iova_mode: IovaMode,
    pub pagemap: Option<&'a Pagemap>,
    /// Whether the kernel lets us set memory policies (containers may forbid it).
    pub numa_policy: bool,
}

/// A page allocated in its backing file but not yet mapped.
#[derive(Debug)]
pub(crate) struct AllocatedPage {
    pub seg: u32,
    pub va: u64,
    pub file: Option<BackingFile>,
    pub file_offset: u64,
    pub dirty: bool,
}

/// A page that is now mapped at its slot.
#[derive(Debug)]
pub(crate) struct PopulatedPage {
    pub seg: u32,
    pub va: u64,
    pub file: Option<BackingFile>,
    pub file_offset: u64,
    pub dirty: bool,
    pub iova: u64,
    pub node: i32,
}

/// Why a page could not be brought in.
#[derive(Debug)]
pub(crate) enum PopulateError {
    /// The pool, or the node, has no free page of this size.
    NoPages,
    /// The kernel put the page on another node than the list's.
    WrongNode {
        got: i32,
    },
    Other(EalError),
}

pub(crate) fn page_file_path(dir: &Path, prefix: &str, list: u32, seg: u32) -> PathBuf {
    dir.join(format!("{prefix}map_{list}_{seg}"))
}

pub(crate) fn list_file_path(dir: &Path, prefix: &str, list: u32) -> PathBuf {
    dir.join(format!("{prefix}map_{list}"))
}

fn no_pages_or(e: dpmem_sys::SysError, context: &str) -> PopulateError {
    if matches!(e.errno, Errno::NOSPC | Errno::NOMEM) {
        PopulateError::NoPages
    } else {
        PopulateError::Other(EalError::sys(context.to_string(), e))
    }
}

impl ListBacking {
    /// Allocates the page for slot `seg` in its file, without mapping it. Runs on worker
    /// threads: `fallocate` does not take the process's `mmap_lock`, so workers clear pages in
    /// parallel; mapping is left to [`map`](Self::map), which does.
    pub(crate) fn allocate(
        &self,
        ctx: &PopulateContext<'_>,
        seg: u32,
        va: u64,
    ) -> Result<AllocatedPage, PopulateError> {
        let ps = ctx.page_size;
        let offset = u64::from(seg) * ps;
        let other = |what: &'static str| move |e| PopulateError::Other(EalError::sys(what, e));
        match self {
            ListBacking::FilePerPage { dir, .. } => {
                let path = page_file_path(dir, ctx.file_prefix, ctx.list_index, seg);
                let (mut file, created) = BackingFile::open_or_create_reporting(&path)
                    .map_err(other("create page file"))?;
                // With --huge-unlink=never a file from an earlier run keeps its page and data.
                let dirty = !created && file.size().map_err(other("stat page file"))? >= ps;
                // `fallocate` without KEEP_SIZE also sizes the file: no `ftruncate` first.
                let allocated = file
                    .lock_shared()
                    .map_err(other("lock page file"))
                    .and_then(|()| {
                        file.allocate(0, ps)
                            .map_err(|e| no_pages_or(e, "allocate page"))
                    });
                if let Err(e) = allocated {
                    if !dirty {
                        let _ = file.unlink();
                    }
                    return Err(e);
                }
                Ok(AllocatedPage {
                    seg,
                    va,
                    file: Some(file),
                    file_offset: 0,
                    dirty,
                })
            }
            ListBacking::SingleFile { file, initial_len } => {
                file.allocate(offset, ps)
                    .map_err(|e| no_pages_or(e, "allocate page"))?;
                let dirty = ctx.huge_unlink == HugeUnlink::Never && offset < *initial_len;
                Ok(AllocatedPage {
                    seg,
                    va,
                    file: None,
                    file_offset: offset,
                    dirty,
                })
            }
            ListBacking::Memfd { stripes } => {
                stripes
                    .file_for(seg)
                    .map_err(other("create hugetlb memfd"))?
                    .allocate(offset, ps)
                    .map_err(|e| no_pages_or(e, "allocate page"))?;
                Ok(AllocatedPage {
                    seg,
                    va,
                    file: None,
                    file_offset: offset,
                    dirty: false,
                })
            }
            // Anonymous hugepages are allocated by the mapping itself.
            ListBacking::Anonymous { .. } => Ok(AllocatedPage {
                seg,
                va,
                file: None,
                file_offset: 0,
                dirty: false,
            }),
        }
    }

    /// Maps an allocated page at its slot (its node and IOVA are learnt afterwards, for all
    /// pages at once, by [`finish_batch`]). On failure the page is given back.
    pub(crate) fn map(
        &self,
        ctx: &PopulateContext<'_>,
        page: AllocatedPage,
    ) -> Result<PopulatedPage, PopulateError> {
        let ps = ctx.page_size as usize;
        let va = page.va as usize;
        let mapped = match self {
            // Every arm maps over slot `seg` of this list's own reservation, which the occupancy
            // array says is free while the caller holds the hotplug lock: MAP_FIXED replaces
            // only dpmem's inaccessible placeholder there.
            ListBacking::FilePerPage { .. } => match &page.file {
                // SAFETY: `va..va+ps` is a free slot of this list's reservation (see above).
                Some(file) => unsafe { mapping::map_file_fixed(file.fd(), 0, va, ps, true) },
                None => unreachable!("file-per-page pages carry their file"),
            },
            ListBacking::SingleFile { file, .. } => {
                // SAFETY: `va..va+ps` is a free slot of this list's reservation (see above).
                unsafe { mapping::map_file_fixed(file.fd(), page.file_offset, va, ps, true) }
            }
            ListBacking::Memfd { stripes } => {
                let file = stripes
                    .existing_for(page.seg)
                    .expect("the page was allocated in its stripe");
                // SAFETY: `va..va+ps` is a free slot of this list's reservation (see above).
                unsafe { mapping::map_file_fixed(file.fd(), page.file_offset, va, ps, true) }
            }
            ListBacking::Anonymous { huge_page_size } => {
                // SAFETY: `va..va+ps` is a free slot of this list's reservation (see above).
                unsafe { mapping::map_anonymous_fixed(va, ps, *huge_page_size, true) }
            }
        };
        if let Err(e) = mapped {
            self.give_back(ctx.page_size, page.file, page.file_offset, page.dirty);
            return Err(no_pages_or(e, "map page"));
        }
        Ok(PopulatedPage {
            seg: page.seg,
            va: page.va,
            file: page.file,
            file_offset: page.file_offset,
            dirty: page.dirty,
            iova: BAD_IOVA,
            node: ctx.socket_id,
        })
    }

    /// Unmaps a page brought in by [`populate_parallel`] that will not be kept, and
    /// gives its memory back. `keep_file` leaves a per-page file on disk (legacy, `never`).
    pub(crate) fn discard(&self, ctx: &PopulateContext<'_>, page: PopulatedPage, keep_file: bool) {
        // SAFETY: the page was mapped at its slot by this process and was never published, so
        // nothing refers to it.
        let _ = unsafe { mapping::unmap_to_reserved(page.va as usize, ctx.page_size as usize) };
        self.give_back(
            ctx.page_size,
            page.file,
            page.file_offset,
            keep_file || page.dirty,
        );
    }

    /// Returns the memory of an unmapped page: unlinks its file (unless `keep`), or punches the
    /// page out of the list's file.
    pub(crate) fn give_back(
        &self,
        page_size: u64,
        file: Option<BackingFile>,
        file_offset: u64,
        keep: bool,
    ) {
        match self {
            ListBacking::FilePerPage { .. } => {
                if let Some(mut file) = file {
                    if !keep {
                        let _ = file.unlink();
                    }
                }
            }
            ListBacking::SingleFile { file, .. } => {
                if !keep {
                    let _ = file.punch_hole(file_offset, page_size);
                }
            }
            ListBacking::Memfd { stripes } => {
                if let Some(file) = stripes.existing_at(file_offset) {
                    let _ = file.punch_hole(file_offset, page_size);
                }
            }
            ListBacking::Anonymous { .. } => {}
        }
    }

    /// Stores the per-page file of a page that is now in use.
    pub(crate) fn adopt(&mut self, seg: u32, file: Option<BackingFile>) {
        if let (ListBacking::FilePerPage { files, .. }, Some(file)) = (self, file) {
            files[seg as usize] = Some(file);
        }
    }

    /// Takes back the per-page file of a page being freed.
    pub(crate) fn take_file(&mut self, seg: u32) -> Option<BackingFile> {
        match self {
            ListBacking::FilePerPage { files, .. } => files[seg as usize].take(),
            _ => None,
        }
    }

    /// A descriptor for the page at `seg` and its offset in that file.
    pub(crate) fn segment_fd(
        &self,
        seg: u32,
        file_offset: u64,
    ) -> Option<Result<(OwnedFd, u64), EalError>> {
        let file = match self {
            ListBacking::FilePerPage { files, .. } => files.get(seg as usize)?.as_ref()?,
            ListBacking::SingleFile { file, .. } => file,
            ListBacking::Memfd { stripes } => stripes.existing_for(seg)?,
            ListBacking::Anonymous { .. } => return None,
        };
        Some(
            file.duplicate_fd()
                .map(|fd| (fd, file_offset))
                .map_err(|e| EalError::sys("duplicate segment fd", e)),
        )
    }
}

/// Learns where the kernel put freshly mapped pages (one `move_pages` call for all of them),
/// checks that each is on the list's node, reads their IOVAs, and unlinks their files when
/// `--huge-unlink=always` says so.
fn finish_batch(
    ctx: &PopulateContext<'_>,
    pages: &mut [PopulatedPage],
) -> Result<(), PopulateError> {
    if ctx.numa_policy && !pages.is_empty() {
        let addrs: Vec<usize> = pages.iter().map(|p| p.va as usize).collect();
        let nodes = numa::nodes_of_addresses(&addrs)
            .map_err(|e| PopulateError::Other(EalError::sys("locate pages", e)))?;
        for (page, node) in pages.iter_mut().zip(nodes) {
            page.node = node as i32;
            if page.node != ctx.socket_id {
                return Err(PopulateError::WrongNode { got: page.node });
            }
        }
    }
    for page in pages.iter_mut() {
        page.iova = match ctx.iova_mode {
            IovaMode::Va => page.va,
            IovaMode::Pa => match ctx.pagemap.map(|m| m.physical_address(page.va as usize)) {
                Some(Ok(Some(pa))) => pa,
                Some(Err(e)) => return Err(PopulateError::Other(EalError::sys("read pagemap", e))),
                _ => BAD_IOVA,
            },
        };
        if ctx.huge_unlink == HugeUnlink::Always {
            if let Some(file) = page.file.as_mut() {
                file.unlink()
                    .map_err(|e| PopulateError::Other(EalError::sys("unlink page file", e)))?;
            }
        }
    }
    Ok(())
}

/// Splits `slots` among `workers`: in contiguous runs, except that pages of one memfd stripe
/// all go to the same worker, so that no two workers allocate in one file (whose lock would
/// make them take turns).
fn worker_shares(
    backing: &ListBacking,
    slots: &[(u32, u64)],
    workers: usize,
) -> Vec<Vec<(u32, u64)>> {
    match backing {
        ListBacking::Memfd { stripes } if workers > 1 => {
            let mut shares = vec![Vec::with_capacity(slots.len().div_ceil(workers)); workers];
            for &slot in slots {
                shares[stripes.stripe_of(slot.0) % workers].push(slot);
            }
            shares.retain(|s| !s.is_empty());
            shares
        }
        _ => slots
            .chunks(slots.len().div_ceil(workers).max(1))
            .map(<[_]>::to_vec)
            .collect(),
    }
}

/// Brings in many pages of one list. The kernel zeroes each hugepage as it allocates it, and
/// that clearing is the bulk of start-up time, so allocation (`fallocate`, which does not take
/// the process's address-space lock) is spread over one thread per CPU, each bound to the
/// list's node. Mapping follows on the calling thread alone: `mmap` takes that lock for
/// writing, so mapping in parallel with allocation only made threads wait on each other (and
/// a third thread on two CPUs steals time from the zeroing). All or nothing: on failure every
/// page of the call is given back and the first error is returned.
pub(crate) fn populate_parallel(
    backing: &ListBacking,
    ctx: &PopulateContext<'_>,
    slots: &[(u32, u64)],
) -> Result<Vec<PopulatedPage>, PopulateError> {
    let bind = || {
        // A sandbox may forbid set_mempolicy even where get_mempolicy works; the page's node
        // is verified after mapping either way, so an unbound thread is still safe.
        (ctx.numa_policy && ctx.socket_id >= 0)
            .then(|| numa::ThreadNodeBinding::bind(ctx.socket_id as u32).ok())
            .flatten()
    };
    // A share of at least four pages per worker; a growth of a page or a few (the common case
    // after start-up) asks nothing of the system: finding the CPUs reads cgroup files.
    let most = slots.len().div_ceil(4);
    let workers = if most <= 1 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(most))
    };
    let allocate_chunk = |chunk: &[(u32, u64)]| -> Vec<Result<AllocatedPage, PopulateError>> {
        let _binding = bind();
        chunk
            .iter()
            .map(|&(seg, va)| backing.allocate(ctx, seg, va))
            .collect()
    };
    let chunks = worker_shares(backing, slots, workers);
    if workers > 1 && matches!(backing, ListBacking::FilePerPage { .. }) {
        // Each page keeps its file open: make room for them all now rather than have the
        // workers grow the descriptor table (and wait for RCU) four times over.
        dpmem_sys::fd_table::reserve(slots.len());
    }
    // The calling thread takes the first share itself: one thread fewer to start.
    let allocated: Vec<_> = std::thread::scope(|scope| {
        let mut shares = chunks.iter();
        let own = shares.next().map_or(&[][..], Vec::as_slice);
        let handles: Vec<_> = shares
            .map(|share| scope.spawn(move || allocate_chunk(share)))
            .collect();
        let mut all = allocate_chunk(own);
        for handle in handles {
            all.extend(handle.join().expect("page allocation worker panicked"));
        }
        all
    });
    let mut mapped = Vec::with_capacity(slots.len());
    let mut unmapped = Vec::new();
    let mut failure = None;
    // Anonymous hugepages are allocated while mapping, so the mapper binds too.
    let _binding = bind();
    for result in allocated {
        match result {
            Ok(page) if failure.is_none() => match backing.map(ctx, page) {
                Ok(p) => mapped.push(p),
                Err(e) => failure = Some(e),
            },
            Ok(page) => unmapped.push(page),
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    }
    if failure.is_none() {
        failure = finish_batch(ctx, &mut mapped).err();
    }
    if let Some(e) = failure {
        for p in mapped {
            backing.discard(ctx, p, false);
        }
        for page in unmapped {
            backing.give_back(ctx.page_size, page.file, page.file_offset, page.dirty);
        }
        return Err(e);
    }
    mapped.sort_by_key(|p| p.seg);
    Ok(mapped)
}
