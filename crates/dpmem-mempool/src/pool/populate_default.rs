//! Populating a pool with the EAL's memory (`rte_mempool_populate_default`): memzones the pool
//! reserves, named `MP_<name>_<n>`, and frees with itself.
//!
//! The first choice is the whole rest of the pool in one page-aligned block, IOVA-contiguous
//! when memory allows (every object's IOVA then follows from the chunk's, and a device sees
//! one region), else split where its IOVA breaks. Memory in pieces smaller than that — legacy
//! memory on a machine whose hugepages are physically scattered, where every IOVA run is a
//! heap block of its own, or a heap cut up by other memzones — gives the pool its objects
//! chunk by chunk, as DPDK's does: blocks aligned only to a slot, whose objects skip page
//! boundaries where they must (`mem_size_from_any_start` sizes them), asked for at the size
//! the rest of the pool needs and, when no block that big is free, at half of it, down to a
//! block that holds one object. The pool then has as many chunks as it took, each recorded
//! as any other (`mem_iter`); when not even one object's block is free, the error names what
//! was.

use dpmem_eal::memzone::Memzone;
use dpmem_eal::{ErrorKind, HeapStats, Iova, IovaMode, MemzoneFlags, Socket};

use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::header::MEMZONE_PREFIX;
use crate::layout::{mem_size, mem_size_from_any_start, slot_align};
use crate::pool::{eal_error, Mempool};

/// Why a default populate stopped.
enum Stop {
    /// No free block held `smallest` bytes, the smallest request made.
    NoBlock {
        smallest: usize,
    },
    Failed(MempoolError),
}

impl From<MempoolError> for Stop {
    fn from(e: MempoolError) -> Stop {
        Stop::Failed(e)
    }
}

impl<'eal> Mempool<'eal> {
    /// Populates the whole pool with memory from the EAL (`rte_mempool_populate_default`):
    /// one IOVA-contiguous memzone when it can get one, else page-aligned memory split where
    /// its IOVA breaks, else as many smaller memzones as it takes (halving the request while
    /// no block that big is free, down to one that holds one object); objects never straddle
    /// a page unless `NO_IOVA_CONTIG`. `EEXIST` when the pool already has memory;
    /// [`MempoolError::NoMemory`] (`ENOMEM`), naming what was free, when even one object's
    /// block cannot be had — the pool is then empty again.
    pub fn populate_default(&mut self) -> Result<u32, MempoolError> {
        self.populate_from_memzones(false)
    }

    /// Populates the whole pool in one memzone, so its objects form one region of memory
    /// (IOVA-contiguous unless `NO_IOVA_CONTIG`) — what a device that registers one memory
    /// area for all buffers needs (AF_XDP's UMEM). [`MempoolError::NoMemory`] (`ENOMEM`) when
    /// no such region is free: it never falls back to pieces.
    pub fn populate_single_region(&mut self) -> Result<u32, MempoolError> {
        self.populate_from_memzones(true)
    }

    fn populate_from_memzones(&mut self, single: bool) -> Result<u32, MempoolError> {
        if self.nb_mem_chunks() != 0 {
            return Err(MempoolError::AlreadyExists(format!(
                "{} (already populated)",
                self.name
            )));
        }
        self.ensure_store()?;
        let result = self.populate_memzones_inner(single);
        if result.is_err() {
            self.unpopulate();
        }
        match result {
            Ok(added) => Ok(added),
            // Described once the pool's own chunks are back: what the pool had to work with.
            Err(Stop::NoBlock { smallest }) => Err(self.no_memory(smallest)),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    fn populate_memzones_inner(&mut self, single: bool) -> Result<u32, Stop> {
        let page = self.hdr().page_bound as usize;
        let total = self.obj_size().total_size as usize;
        let slot = slot_align(self.flags());
        // The smallest block worth asking for: one object, wherever in a page it starts.
        let smallest = mem_size_from_any_start(1, total, page);
        // `None` while whole page-aligned blocks are asked for (the layout pools have always
        // had: each page starts with a slot); then the most a request may ask, halved each
        // time a block of that size cannot be had, as DPDK does.
        let mut piece_cap: Option<usize> = None;
        let mut added = 0;
        while self.populated_size() < self.size() {
            let remaining = (self.size() - self.populated_size()) as usize;
            let (bytes, align) = match piece_cap {
                None => (mem_size(remaining, total, page, slot), slot.max(page)),
                Some(cap) => (
                    mem_size_from_any_start(remaining, total, page).min(cap),
                    slot,
                ),
            };
            if let Some(n) = self.populate_one_memzone(bytes, align, single)? {
                added += n;
                continue;
            }
            piece_cap = match piece_cap {
                _ if single => return Err(Stop::NoBlock { smallest: bytes }),
                // No whole block: the same size again, in any slot-aligned block.
                None => Some(usize::MAX),
                Some(_) if bytes <= smallest => return Err(Stop::NoBlock { smallest }),
                Some(_) => Some((bytes / 2).next_multiple_of(slot).max(smallest)),
            };
        }
        Ok(added)
    }

    /// Reserves a memzone of `bytes` aligned to `align` and adds the objects that fit in it:
    /// IOVA-contiguous memory when there is some (only that for `single`), else any (only any
    /// for a pool whose objects need not be IOVA-contiguous). `None` when no such block is
    /// free, or no object fitted in it and it was given back.
    fn populate_one_memzone(
        &mut self,
        bytes: usize,
        align: usize,
        single: bool,
    ) -> Result<Option<u32>, Stop> {
        let need_contig = !self.flags().contains(MempoolFlags::NO_IOVA_CONTIG);
        let attempts: &[MemzoneFlags] = match (need_contig, single) {
            (false, _) => &[MemzoneFlags::empty()],
            (true, true) => &[MemzoneFlags::IOVA_CONTIG],
            (true, false) => &[MemzoneFlags::IOVA_CONTIG, MemzoneFlags::empty()],
        };
        let zone_name = format!("{MEMZONE_PREFIX}{}_{}", self.name, self.hdr().next_zone_id);
        let memzones = self.eal.memzones();
        let mut zone = None;
        for &flags in attempts {
            match memzones.reserve_aligned(&zone_name, bytes, self.socket(), flags, align) {
                Ok(z) => {
                    zone = Some(z);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::NoMem => {}
                Err(e) => return Err(eal_error(&self.name)(e).into()),
            }
        }
        let Some(zone) = zone else {
            return Ok(None);
        };
        let chunks_before = self.nb_mem_chunks();
        match self.add_memzone(&zone, single) {
            Ok(n) => {
                self.hdr_mut().next_zone_id += 1;
                Ok(Some(n))
            }
            Err(e) if self.nb_mem_chunks() != chunks_before => {
                // The zone's first IOVA runs are in the pool, a later one failed: the zone is
                // the pool's now, given back with its chunks when the pool is freed.
                self.hdr_mut().next_zone_id += 1;
                Err(e.into())
            }
            Err(e) => {
                // SAFETY: the memzone was reserved just above and no chunk of the pool holds
                // any of it (adding a chunk succeeds whole or leaves nothing), so nothing
                // uses it.
                let _ = unsafe { memzones.free(&zone) };
                match e {
                    MempoolError::RegionTooSmall { .. } => Ok(None),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// Adds the objects that fit in `zone`: one chunk when its IOVA is contiguous (or one
    /// region was asked for), else a chunk per IOVA run.
    fn add_memzone(&mut self, zone: &Memzone, single: bool) -> Result<u32, MempoolError> {
        let contiguous = zone.iova.is_some()
            && (zone.flags.contains(MemzoneFlags::IOVA_CONTIG)
                || self.eal.iova_mode() == IovaMode::Va);
        let (va, len) = (zone.va, zone.len);
        if contiguous || single {
            self.add_chunk(va, Iova::to_raw(zone.iova), len, &zone.name, false)
        } else {
            self.add_iova_runs(va, len, zone.page_size as usize, &zone.name, None)
        }
    }

    /// The error of a pool that found no block of `smallest` bytes, with what is free in the
    /// heaps its memzones come from.
    fn no_memory(&self, smallest: usize) -> MempoolError {
        let obj = self.obj_size();
        let needed = mem_size(
            self.size() as usize,
            obj.total_size as usize,
            self.hdr().page_bound as usize,
            slot_align(self.flags()),
        );
        let heaps = self.free_heaps();
        MempoolError::NoMemory {
            pool: self.name.clone(),
            objects: self.size(),
            needed,
            smallest,
            socket: self.socket(),
            free_bytes: heaps.iter().map(|s| s.free_bytes).sum(),
            free_blocks: heaps.iter().map(|s| s.free_count).sum(),
            largest_free: heaps
                .iter()
                .map(|s| s.greatest_free_bytes)
                .max()
                .unwrap_or(0),
        }
    }

    /// Statistics of the heaps the pool's memzones come from: its socket's, or every
    /// socket's (not external heaps, which only a named socket id reaches) for
    /// [`Socket::Any`] or a socket without a heap.
    fn free_heaps(&self) -> Vec<HeapStats> {
        let heaps = self.eal.heaps();
        if self.socket() != Socket::Any {
            if let Ok(stats) = heaps.stats(self.socket()) {
                return vec![stats];
            }
        }
        heaps
            .all_stats()
            .into_iter()
            .filter(|s| !s.external)
            .collect()
    }
}
