//! Dynamic memory: pages mapped on demand into free slots of a memseg list and released when
//! freed (DPDK's default memory mode).

use std::collections::BTreeMap;

use super::backing::{populate_parallel, PopulateContext, PopulateError};
use super::{MemEvent, Memory, MemoryMode};
use crate::error::EalError;
use crate::iova::{Iova, IovaMode, BAD_IOVA};
use crate::memseg::{flags, Memseg};
use crate::memseg_list::MemsegListView;
use crate::socket::Socket;

/// A request for pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size; must be one of [`Memory::page_sizes`].
    pub page_size: u64,
    /// Where to place the pages: a NUMA node, or [`Socket::Any`] for the first that can.
    pub socket: Socket,
    /// Number of pages; they are always virtually contiguous.
    pub count: usize,
    /// Also require contiguous IOVAs (only differs from VA contiguity in PA mode).
    pub iova_contiguous: bool,
    /// Pin the pages for the life of the EAL (preallocated memory).
    pub pinned: bool,
}

impl PageRequest {
    /// `count` pages of `page_size` bytes on `socket`, not pinned, IOVA contiguity not asked.
    pub fn new(page_size: u64, socket: Socket, count: usize) -> Self {
        Self {
            page_size,
            socket,
            count,
            iova_contiguous: false,
            pinned: false,
        }
    }
}

/// Where the pages of one allocation were mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PageRun {
    /// The first page (the same address in every process).
    pub va: usize,
    pub len: usize,
    pub page_size: u64,
    /// The node of the list the pages were mapped into.
    pub socket: Socket,
    pub list_index: u32,
    pub first_seg: u32,
    pub n_pages: u32,
    /// Device address of the first page, when known.
    pub iova: Option<Iova>,
}

impl Memory {
    /// Maps `req.count` pages into one list of the requested type in this process (the
    /// primary), fires the `Alloc` event and returns where they are. Fails without changing
    /// anything when no list has room, the node is out of pages, a validator refuses, or
    /// contiguous IOVAs cannot be had. Secondaries learn of the pages from the round that
    /// [`Memory::map_pages`] runs after this (see `cross_process.rs`).
    pub(super) fn map_pages_here(&self, req: PageRequest) -> Result<PageRun, EalError> {
        if req.count == 0 {
            return Err(EalError::InvalidArgument(
                "page allocation of 0 pages".into(),
            ));
        }
        if self.settings.role == super::ProcessRole::Secondary {
            return Err(EalError::Unsupported(
                "secondary processes cannot map or unmap pages yet; the primary owns memory hotplug".into(),
            ));
        }
        if self.settings.mode != MemoryMode::Dynamic && !req.pinned {
            return Err(EalError::Unsupported(format!(
                "memory cannot grow in {:?} mode: all of it was mapped at start-up",
                self.settings.mode
            )));
        }
        if !self.page_sizes().contains(&req.page_size) {
            return Err(EalError::InvalidArgument(format!(
                "no memseg list has {} byte pages",
                req.page_size
            )));
        }
        let sockets: Vec<i32> = match req.socket {
            Socket::Any => self.socket_ids().to_vec(),
            socket => vec![socket.to_raw()],
        };
        let mut last_err = None;
        for socket in sockets {
            match self.alloc_on_socket(&req, socket) {
                Ok(run) => return Ok(run),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| EalError::OutOfMemory {
            pages: req.count,
            page_size: req.page_size,
            socket: req.socket,
            reason: "no memseg list of this type".into(),
        }))
    }

    fn alloc_on_socket(&self, req: &PageRequest, socket: i32) -> Result<PageRun, EalError> {
        let bytes = req.count as u64 * req.page_size;
        let header = self.config.header();
        let _lock = header.hotplug_lock.lock();
        self.check_validators(socket, bytes)?;
        let candidates = self
            .lists
            .iter()
            .filter(|l| l.header().page_size == req.page_size && l.header().socket_id == socket);
        let mut had_list = false;
        for list in candidates {
            had_list = true;
            if let Some(first) = list.occupancy.find_next_n_free(0, req.count as u32) {
                return self.map_run(list, first, req);
            }
        }
        Err(EalError::OutOfMemory {
            pages: req.count,
            page_size: req.page_size,
            socket: Socket::from_recorded(socket),
            reason: if had_list {
                "no memseg list has that many free contiguous slots".into()
            } else {
                "no memseg list for this socket and page size".into()
            },
        })
    }

    /// Maps `req.count` pages at slots `first..` of `list`. Hotplug lock held by the caller.
    fn map_run(
        &self,
        list: &MemsegListView,
        first: u32,
        req: &PageRequest,
    ) -> Result<PageRun, EalError> {
        let h = *list.header();
        let slots: Vec<(u32, u64)> = (first..first + req.count as u32)
            .map(|i| (i, list.slot_va(i)))
            .collect();
        let mut backings = self.backings.lock().expect("backing table poisoned");
        let backing = &mut backings[h.index as usize];
        let ctx = PopulateContext {
            list_index: h.index,
            page_size: h.page_size,
            socket_id: h.socket_id,
            file_prefix: &self.settings.file_prefix,
            huge_unlink: self.settings.huge_unlink,
            iova_mode: self.settings.iova_mode,
            pagemap: self.pagemap.as_ref(),
            numa_policy: self.settings.numa_policy,
        };
        let failure = match populate_parallel(backing, &ctx, &slots) {
            Ok(pages) => {
                let contiguous = !req.iova_contiguous
                    || self.settings.iova_mode == IovaMode::Va
                    || pages
                        .windows(2)
                        .all(|w| w[0].iova != BAD_IOVA && w[1].iova == w[0].iova + h.page_size);
                if contiguous {
                    let run = self.commit_run(list, first, req, pages, backing);
                    // Callbacks may look segments up (which takes the backing table): release it.
                    drop(backings);
                    self.account(h.socket_id, run.len as u64, true);
                    self.fire(MemEvent::Alloc, run.va as u64, run.len as u64);
                    return Ok(run);
                }
                for page in pages {
                    backing.discard(&ctx, page, false);
                }
                None
            }
            Err(e) => Some(e),
        };
        Err(match failure {
            Some(PopulateError::NoPages) => self.shortfall(req, h.socket_id),
            Some(PopulateError::WrongNode { got }) => EalError::OutOfMemory {
                pages: req.count,
                page_size: req.page_size,
                socket: Socket::from_recorded(h.socket_id),
                reason: format!(
                    "the kernel placed a page on node {got}, not on node {}",
                    h.socket_id
                ),
            },
            Some(PopulateError::Other(e)) => e,
            None => EalError::OutOfMemory {
                pages: req.count,
                page_size: req.page_size,
                socket: Socket::from_recorded(h.socket_id),
                reason: "the pages obtained are not IOVA-contiguous".into(),
            },
        })
    }

    /// Records freshly mapped pages as segments and announces them. Hotplug lock held.
    fn commit_run(
        &self,
        list: &MemsegListView,
        first: u32,
        req: &PageRequest,
        pages: Vec<super::backing::PopulatedPage>,
        backing: &mut super::backing::ListBacking,
    ) -> PageRun {
        let h = *list.header();
        let run = PageRun {
            va: list.slot_va(first) as usize,
            len: req.count * h.page_size as usize,
            page_size: h.page_size,
            socket: Socket::from_recorded(h.socket_id),
            list_index: h.index,
            first_seg: first,
            n_pages: req.count as u32,
            iova: pages.first().and_then(|p| Iova::new(p.iova)),
        };
        // The count this map ends at (the hotplug lock is held, so nobody else moves it).
        let map_seq = self
            .config
            .header()
            .hotplug_generation
            .load(std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1) as u32;
        for (n, page) in pages.into_iter().enumerate() {
            let mut seg_flags = 0;
            if page.dirty {
                seg_flags |= flags::DIRTY;
            }
            if req.pinned {
                seg_flags |= flags::DO_NOT_FREE;
            }
            list.set_segment(
                page.seg,
                Memseg {
                    va: page.va,
                    iova: page.iova,
                    len: h.page_size,
                    page_size: h.page_size,
                    socket_id: page.node,
                    flags: seg_flags,
                    file_offset: page.file_offset,
                    alloc_pages: if n == 0 { req.count as u32 } else { 0 },
                    map_seq,
                },
            );
            backing.adopt(page.seg, page.file);
            list.occupancy
                .set_used(page.seg)
                .expect("slot found free under the hotplug lock");
        }
        self.note_hotplug();
        run
    }

    /// Tells secondaries that pages came or went (see [`Memory::sync_with_primary`]).
    /// Hotplug lock held.
    fn note_hotplug(&self) {
        self.config
            .header()
            .hotplug_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.note_layout_change();
    }

    fn shortfall(&self, req: &PageRequest, socket: i32) -> EalError {
        let available = dpmem_sys::hugepage_info::discover(&dpmem_sys::root::SysRoot::host())
            .map(|info| info.free_on_node(req.page_size, socket.max(0) as u32))
            .unwrap_or(0);
        let mb = |pages: u64| (pages * req.page_size) >> 20;
        let requested = req.count as u64;
        EalError::NodeShortfall {
            socket: Socket::from_recorded(socket),
            requested_mb: mb(requested),
            available_mb: mb(available),
            shortfall_mb: mb(requested.saturating_sub(available)),
        }
    }

    /// Unmaps the pages of `[va, va+len)` in this process (the primary) and gives them back to
    /// the system (subject to `--huge-unlink=never`, which keeps them in their files for
    /// reuse). The range must be whole mapped pages of one list; pinned pages refuse (`EBUSY`)
    /// unless `rolling_back` (the pages of a map that failed in a secondary, just mapped here),
    /// and with `--match-allocations` the range must be exactly one earlier allocation. The
    /// caller owns the pages: the heap for its own, [`super::Pages`] for the user's.
    pub(super) fn unmap_pages_here(
        &self,
        va: usize,
        len: usize,
        rolling_back: bool,
    ) -> Result<(), EalError> {
        let (va, len) = (va as u64, len as u64);
        if self.settings.role == super::ProcessRole::Secondary {
            return Err(EalError::Unsupported(
                "secondary processes cannot map or unmap pages yet; the primary owns memory hotplug".into(),
            ));
        }
        let _lock = self.config.header().hotplug_lock.lock();
        let (list, first) = self.locate(va).ok_or_else(|| {
            EalError::InvalidArgument(format!("{va:#x} is not inside any memseg list"))
        })?;
        let h = *list.header();
        if h.is_external() {
            return Err(EalError::InvalidArgument(format!(
                "{va:#x} is external memory: it is the user's to unmap, not dpmem's"
            )));
        }
        if va % h.page_size != 0
            || len == 0
            || len % h.page_size != 0
            || va + len > h.base_va + h.len
        {
            return Err(EalError::InvalidArgument(format!(
                "{va:#x}+{len:#x} is not a whole number of {} byte pages inside list {}",
                h.page_size, h.index
            )));
        }
        let count = (len / h.page_size) as u32;
        let mut segs = Vec::with_capacity(count as usize);
        for idx in first..first + count {
            if !list.occupancy.is_used(idx).unwrap_or(false) {
                return Err(EalError::InvalidArgument(format!(
                    "page at {:#x} is not mapped",
                    list.slot_va(idx)
                )));
            }
            let seg = list.segment(idx);
            if seg.is_pinned() && !rolling_back {
                return Err(EalError::Busy(format!(
                    "page at {:#x} is pinned (preallocated, legacy or no-huge memory)",
                    seg.va
                )));
            }
            segs.push((idx, seg));
        }
        if self.settings.match_allocations {
            let whole = segs[0].1.alloc_pages == count
                && (first + count == h.n_segs
                    || !list.occupancy.is_used(first + count).unwrap_or(false)
                    || list.segment(first + count).alloc_pages != 0);
            if !whole {
                return Err(EalError::InvalidArgument(format!(
                    "--match-allocations: {va:#x}+{len:#x} is not exactly one earlier allocation"
                )));
            }
        }
        self.fire(MemEvent::Free, va, len);
        let mut backings = self.backings.lock().expect("backing table poisoned");
        let backing = &mut backings[h.index as usize];
        let keep = self.settings.huge_unlink == crate::options::HugeUnlink::Never;
        let mut per_socket: BTreeMap<i32, u64> = BTreeMap::new();
        // Before the loop, so that even a failure half-way has secondaries look again (they
        // read the lists under the hotplug lock, held here throughout).
        self.note_hotplug();
        for (idx, seg) in segs {
            // SAFETY: the caller gives the range back; it lies in this list's reservation.
            unsafe { dpmem_sys::mapping::unmap_to_reserved(seg.va as usize, seg.len as usize) }
                .map_err(|e| EalError::sys("unmap page", e))?;
            let file = backing.take_file(idx);
            backing.give_back(h.page_size, file, seg.file_offset, keep);
            list.set_segment(idx, Memseg::default());
            list.occupancy
                .set_free(idx)
                .expect("slot checked used under the hotplug lock");
            *per_socket.entry(seg.socket_id).or_default() += seg.len;
        }
        drop(backings);
        for (socket, bytes) in per_socket {
            self.account(socket, bytes, false);
        }
        Ok(())
    }
}
