//! Giving a pool its objects, chunk by chunk: each chunk's slots are laid out (none crossing a
//! page when the pool keeps objects IOVA-contiguous), their headers written and linked into
//! the pool's object list, the objects handed to the handler's store, and the chunk recorded
//! (its address, IOVA and length) so that the pool can give the memory back when it is freed.
//! The memory comes from the caller (by IOVA or by pages), from anonymous memory of the
//! populating process, or from the EAL (`populate_default`, which builds on this).

use core::ptr::NonNull;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use dpmem_eal::{EalError, Iova, IovaMode};

use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::handler::Store;
use crate::header::{decode, encode, ChunkRecord};
use crate::layout::{
    crosses_page, mem_size, slot_align, ObjHeader, BAD_IOVA, COOKIE_IN_POOL, COOKIE_TRAILER,
};
use crate::pool::events::{self, MempoolEvent};
use crate::pool::{eal_error, Mempool};
use crate::sync::Ordering;

/// What frees caller memory given to [`Mempool::populate_iova`] or
/// [`Mempool::populate_virt`] when the pool is freed: called with the region's address and
/// length, in the process that frees the pool.
pub type ChunkFreeFn = Box<dyn FnOnce(*mut u8, usize) + Send>;

/// A free callback and the caller region it frees (which may span several chunks).
struct RegionFree {
    addr: usize,
    len: usize,
    free: ChunkFreeFn,
}

/// Free callbacks of this process, by the record address of the first chunk of their region.
fn chunk_free_callbacks() -> &'static Mutex<HashMap<u64, RegionFree>> {
    static CALLBACKS: OnceLock<Mutex<HashMap<u64, RegionFree>>> = OnceLock::new();
    CALLBACKS.get_or_init(Default::default)
}

/// Frees caller memory `[addr, addr + len)` with `free` when the pool goes; tied to the chunk
/// record `record` (the first chunk made in that memory).
fn register_region_free(record: u64, addr: usize, len: usize, free: ChunkFreeFn) {
    chunk_free_callbacks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(record, RegionFree { addr, len, free });
}

impl<'eal> Mempool<'eal> {
    /// Builds the handler's store at the first populate and fixes the page rule.
    pub(super) fn ensure_store(&mut self) -> Result<(), MempoolError> {
        if self.store.is_some() {
            return Ok(());
        }
        let built = Store::alloc(&self.handler, self.eal, &self.context());
        let (data, store) = built.map_err(|reason| self.handler_error(reason))?;
        let need_contig = !self.flags().contains(MempoolFlags::NO_IOVA_CONTIG);
        let page_bound = if need_contig {
            self.eal
                .memory()
                .page_sizes()
                .first()
                .copied()
                .unwrap_or(dpmem_sys::mapping::system_page_size() as u64)
        } else {
            0
        };
        let h = self.hdr_mut();
        h.pool_data = data;
        h.page_bound = page_bound;
        h.set_flags(MempoolFlags::POOL_CREATED.bits(), 0);
        self.store = Some(store);
        Ok(())
    }

    /// Adds the objects that fit in `[addr, addr + len)` (whose IOVA is `iova`) and records
    /// the chunk. Returns the number added.
    pub(super) fn add_chunk(
        &mut self,
        addr: usize,
        iova: u64,
        len: usize,
        memzone: &str,
        anonymous: bool,
    ) -> Result<u32, MempoolError> {
        let size = self.size();
        let mut populated = self.populated_size();
        if populated >= size {
            return Err(MempoolError::Full(self.name.clone()));
        }
        self.ensure_store()?;
        let obj = self.obj_size();
        let total = obj.total_size as usize;
        let page = self.hdr().page_bound as usize;
        let align = slot_align(self.flags());
        // Where the slots go, before anything is written.
        let mut slots = Vec::new();
        let mut off = addr.next_multiple_of(align) - addr;
        while populated + (slots.len() as u32) < size && off + total <= len {
            if crosses_page(addr + off, total, page) {
                off = (addr + off).next_multiple_of(page) - addr;
                continue;
            }
            slots.push(addr + off);
            off += total;
        }
        if slots.is_empty() {
            return Err(MempoolError::RegionTooSmall {
                pool: self.name.clone(),
                addr,
                len,
                total,
            });
        }
        let record = self
            .eal
            .heaps()
            .zmalloc_socket(core::mem::size_of::<ChunkRecord>(), 0, self.socket())
            .or_else(|_| {
                self.eal
                    .heaps()
                    .zmalloc(core::mem::size_of::<ChunkRecord>(), 0)
            })
            .map_err(eal_error(&self.name))?
            .cast::<ChunkRecord>();
        // SAFETY: a fresh heap block sized and aligned for a record.
        unsafe {
            record.as_ptr().write(ChunkRecord {
                next: 0,
                addr: addr as u64,
                iova,
                len: len as u64,
                memzone: encode(memzone),
                anonymous: u32::from(anonymous),
                objects: slots.len() as u32,
            })
        };
        let record_addr = record.as_ptr() as u64;
        let pool_addr = self.header.as_ptr() as u64;
        let header_size = obj.header_size as usize;
        let first_tail = self.hdr().obj_tail;
        let mut prev_tail = first_tail;
        let mut objects = Vec::with_capacity(slots.len());
        for &slot in &slots {
            let obj_addr = slot + header_size;
            // The header ends where the object starts (the rest of the header area pads).
            let hdr_addr = obj_addr - core::mem::size_of::<ObjHeader>();
            let obj_hdr = ObjHeader {
                next: 0,
                pool: pool_addr,
                iova: if iova == BAD_IOVA {
                    BAD_IOVA
                } else {
                    iova + (obj_addr - addr) as u64
                },
                cookie: COOKIE_IN_POOL,
            };
            // SAFETY: the slot lies inside the caller's region (computed above), which the
            // pool now owns; the header sits in its first bytes.
            unsafe { (hdr_addr as *mut ObjHeader).write(obj_hdr) };
            if cfg!(feature = "debug") {
                // SAFETY: the trailer's cookie sits right after the element, inside the slot.
                unsafe {
                    ((obj_addr + obj.elt_size as usize) as *mut u64).write_unaligned(COOKIE_TRAILER)
                };
            }
            if prev_tail == 0 {
                self.hdr_mut().obj_head = hdr_addr as u64;
            } else {
                // SAFETY: prev_tail is the header of this pool's previous last object.
                unsafe { (*(prev_tail as *mut ObjHeader)).next = hdr_addr as u64 };
            }
            prev_tail = hdr_addr as u64;
            objects.push(obj_addr);
        }
        // All the chunk's objects go into the store in one step, which takes all or none: a
        // store that refuses leaves the pool as it was, with no object of a region the
        // caller may take back.
        if let Err(e) = self.store_objects(&objects) {
            if first_tail == 0 {
                self.hdr_mut().obj_head = 0;
            } else {
                // SAFETY: first_tail is still the header of this pool's last object.
                unsafe { (*(first_tail as *mut ObjHeader)).next = 0 };
            }
            // SAFETY: the record was allocated above from this EAL's heap and never linked.
            let _ = unsafe { self.eal.heaps().free(record.cast()) };
            return Err(e);
        }
        if cfg!(feature = "debug") {
            for &obj_addr in &objects {
                dpmem_eal::memcheck::make_noaccess(obj_addr as *const u8, obj.elt_size as usize);
            }
        }
        let count = slots.len() as u32;
        populated += count;
        let h = self.hdr_mut();
        h.obj_tail = prev_tail;
        if h.chunk_tail == 0 {
            h.chunk_head = record_addr;
        } else {
            // SAFETY: chunk_tail is this pool's last record.
            unsafe { (*(h.chunk_tail as *mut ChunkRecord)).next = record_addr };
        }
        h.chunk_tail = record_addr;
        if iova != BAD_IOVA {
            h.set_flags(0, MempoolFlags::NON_IO.bits());
        }
        h.nb_mem_chunks.fetch_add(1, Ordering::Release);
        // Last: once it reaches the size, other handles may open the pool (see `open`).
        h.populated_size.store(populated, Ordering::Release);
        if populated == size {
            events::invoke(MempoolEvent::Ready, self);
        }
        Ok(count)
    }

    fn store_objects(&self, objs: &[usize]) -> Result<(), MempoolError> {
        let store = self.store.as_ref().expect("store built before objects");
        if store.enqueue(objs) {
            Ok(())
        } else {
            Err(self.handler_error(format!("refused {} new objects", objs.len())))
        }
    }

    /// Adds objects in caller memory `[addr, addr + len)` whose device address is `iova`
    /// (`None`: unknown) (`rte_mempool_populate_iova`). Returns the objects added; `ENOSPC`
    /// when the pool is full, `EINVAL` when not one object fits.
    ///
    /// # Safety
    /// The region is valid for reads and writes, used by nothing else, and stays mapped (at
    /// the same address in every process that uses the pool) until the pool is freed, when
    /// `free_fn` (if any) is called with it.
    pub unsafe fn populate_iova(
        &mut self,
        addr: *mut u8,
        iova: Option<Iova>,
        len: usize,
        free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        let added = self.add_chunk(addr as usize, Iova::to_raw(iova), len, "", false)?;
        if let Some(free) = free_fn {
            register_region_free(self.hdr().chunk_tail, addr as usize, len, free);
        }
        Ok(added)
    }

    /// Adds objects in caller memory of pages of `page_size`, splitting it where its IOVA is
    /// not contiguous so that no object spans a discontinuity (`rte_mempool_populate_virt`).
    /// `addr` and `len` must be multiples of `page_size` (`EINVAL`).
    ///
    /// # Safety
    /// As [`Mempool::populate_iova`].
    pub unsafe fn populate_virt(
        &mut self,
        addr: *mut u8,
        len: usize,
        page_size: usize,
        free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        self.populate_region(addr as usize, len, page_size, "", free_fn)
    }

    fn populate_region(
        &mut self,
        addr: usize,
        len: usize,
        page_size: usize,
        memzone: &str,
        free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        if !page_size.is_power_of_two()
            || !addr.is_multiple_of(page_size)
            || !len.is_multiple_of(page_size)
            || len == 0
        {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {:?}: region {addr:#x} + {len:#x} is not whole pages of {page_size:#x}",
                self.name
            )));
        }
        self.add_iova_runs(addr, len, page_size, memzone, free_fn)
    }

    /// Adds the objects that fit in `[addr, addr + len)`, a chunk per run of its pages of
    /// `page_size` whose IOVA is contiguous (a page whose IOVA is unknown is a run of its
    /// own), so that no object spans a discontinuity. The region's ends need not be on page
    /// boundaries: the first and last runs start or end inside a page. `free_fn` frees the
    /// whole region and goes with its first chunk. `EINVAL` when not one object fits.
    pub(super) fn add_iova_runs(
        &mut self,
        addr: usize,
        len: usize,
        page_size: usize,
        memzone: &str,
        mut free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        let eal = self.eal;
        let memory = eal.memory();
        let iova_of = |va: usize| -> u64 {
            if eal.iova_mode() == IovaMode::Va {
                va as u64
            } else {
                Iova::to_raw(memory.virt_to_iova(va))
            }
        };
        let end = addr + len;
        let mut added = 0;
        let mut start = addr;
        while start < end && self.populated_size() < self.size() {
            let iova = iova_of(start);
            // To the end of `start`'s page, then page by page while the IOVA follows on.
            let mut run_end = (start / page_size + 1).saturating_mul(page_size).min(end);
            while run_end < end
                && iova != BAD_IOVA
                && iova_of(run_end) == iova + (run_end - start) as u64
            {
                run_end = run_end.saturating_add(page_size).min(end);
            }
            match self.add_chunk(start, iova, run_end - start, memzone, false) {
                Ok(n) => {
                    added += n;
                    if let Some(free) = free_fn.take() {
                        register_region_free(self.hdr().chunk_tail, addr, len, free);
                    }
                }
                Err(MempoolError::RegionTooSmall { .. }) => {}
                Err(e) => return Err(e),
            }
            start = run_end;
        }
        if added == 0 {
            return Err(MempoolError::RegionTooSmall {
                pool: self.name.clone(),
                addr,
                len,
                total: self.obj_size().total_size as usize,
            });
        }
        Ok(added)
    }

    /// Populates with anonymous memory of this process (`rte_mempool_populate_anon`): no
    /// IOVA (the pool becomes non-IO) and not shared with other processes. Only on an empty
    /// pool; returns the objects added.
    pub fn populate_anon(&mut self) -> Result<u32, MempoolError> {
        if self.nb_mem_chunks() != 0 {
            return Err(MempoolError::AlreadyExists(format!(
                "{} (already populated)",
                self.name
            )));
        }
        self.ensure_store()?;
        let page = dpmem_sys::mapping::system_page_size();
        let bytes = mem_size(
            self.size() as usize,
            self.obj_size().total_size as usize,
            self.hdr().page_bound as usize,
            slot_align(self.flags()),
        )
        .next_multiple_of(page);
        let sys = |e| {
            eal_error(&self.name)(EalError::Sys {
                context: "mempool anonymous memory".to_owned(),
                source: e,
            })
        };
        let addr = dpmem_sys::mapping::reserve(bytes, page, None).map_err(sys)?;
        // SAFETY: [addr, addr + bytes) is the reservation just made, used by nothing.
        if let Err(e) = unsafe { dpmem_sys::mapping::map_anonymous_fixed(addr, bytes, None, false) }
        {
            // SAFETY: the reservation is ours and unused.
            let _ = unsafe { dpmem_sys::mapping::release(addr, bytes) };
            return Err(sys(e));
        }
        match self.add_chunk(addr, BAD_IOVA, bytes, "", true) {
            Ok(n) => Ok(n),
            Err(e) => {
                // SAFETY: the mapping is ours and no object in it was handed out.
                let _ = unsafe { dpmem_sys::mapping::release(addr, bytes) };
                Err(e)
            }
        }
    }

    /// Takes every object back out of the store and frees the chunks: the pool is empty
    /// again (after a failed populate).
    pub(super) fn unpopulate(&mut self) {
        let populated = self.populated_size() as usize;
        if let Some(store) = &self.store {
            let mut drained = vec![0usize; populated];
            if populated > 0 && !store.dequeue(&mut drained) {
                // Some objects are out (the pool was used meanwhile): keep the memory.
                return;
            }
        }
        self.free_chunks();
    }

    /// Gives back the memory of every chunk (runs the caller's free callbacks, unmaps
    /// anonymous memory, frees the pool's memzones and the records) and empties the object
    /// and chunk lists. The objects must be out of use: they die with the memory.
    pub(super) fn free_chunks(&mut self) {
        let mut zones = Vec::new();
        let mut at = self.hdr().chunk_head;
        while at != 0 {
            // SAFETY: chunk records are heap blocks this pool allocated and links to them
            // only through the header's list.
            let rec = unsafe { &*(at as *const ChunkRecord) };
            let next = rec.next;
            let callback = chunk_free_callbacks()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&at);
            if let Some(region) = callback {
                (region.free)(region.addr as *mut u8, region.len);
            }
            if rec.anonymous != 0 {
                // SAFETY: the chunk is an anonymous mapping this pool made; its objects die
                // with the pool.
                let _ = unsafe { dpmem_sys::mapping::release(rec.addr as usize, rec.len as usize) };
            }
            let zone = decode(&rec.memzone);
            if !zone.is_empty() && !zones.contains(&zone) {
                zones.push(zone);
            }
            // SAFETY: the record came from this EAL's heap and is unlinked with the others.
            let _ = unsafe {
                self.eal
                    .heaps()
                    .free(NonNull::new(at as *mut u8).expect("record at 0"))
            };
            at = next;
        }
        for name in zones {
            if let Some(zone) = self.eal.memzones().lookup(&name) {
                // SAFETY: the pool's own chunk memzone: its objects are all back (the pool
                // is being freed or unpopulated) and nothing else uses its memory.
                let _ = unsafe { self.eal.memzones().free(&zone) };
            }
        }
        let h = self.hdr_mut();
        h.chunk_head = 0;
        h.chunk_tail = 0;
        h.obj_head = 0;
        h.obj_tail = 0;
        h.nb_mem_chunks.store(0, Ordering::Relaxed);
        h.populated_size.store(0, Ordering::Relaxed);
    }
}
