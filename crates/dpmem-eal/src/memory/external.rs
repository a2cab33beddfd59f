//! External memory: memory the user mapped, described by memseg lists so that address lookups
//! (VA → memseg, VA → IOVA, walks) cover it (DPDK's `rte_extmem_*` and the memory of named
//! heaps, see [`crate::heap::Heaps::heap_create`]).
//!
//! An external list takes a spare slot of the configuration's list table (above the internal
//! lists) and keeps its occupancy and segment arrays in the configuration's *external arena*,
//! so every process sees it through the mapping it already has: "attaching" in another process
//! maps nothing. The user maps the memory at the same address there (a shared file, say) and
//! attaching records that the process now uses it. Removal waits until no other live process
//! does; a process that ends without detaching stops counting once it is gone.
//!
//! Everything here runs under the hotplug lock: external headers and arena bytes change only
//! under it, and views of external lists are made, used and dropped under it. Because no view
//! outlives the lock, the arena can be compacted when it is too fragmented for a new list.

use std::ops::{ControlFlow, Deref};

use super::Memory;
use crate::error::EalError;
use crate::fbarray::FbArray;
use crate::iova::{Iova, BAD_IOVA};
use crate::memseg::{flags, Memseg};
use crate::memseg_list::{
    list_flags, MemsegListHeader, MemsegListInfo, MemsegListView, MAX_ATTACHED_PROCESSES,
};
use crate::shared_config::{external_list_bytes, MAX_MEMSEG_LISTS};
use crate::socket::SOCKET_ID_ANY;

/// Segments all external lists of one configuration may hold together, unless the EAL settings
/// say otherwise: 4 GiB of 4 KiB pages, or 2 TiB of 2 MiB pages. Their metadata (57 bytes a
/// segment) is address space of the configuration mapping, faulted in only when used.
pub const DEFAULT_EXTERNAL_SEGMENTS: u64 = 1 << 20;

/// A list found by address or index: an internal list borrowed from [`Memory`], or a view of an
/// external one made for the caller, who holds the hotplug lock for as long as it uses it.
#[derive(Debug)]
pub(crate) enum ListRef<'a> {
    Internal(&'a MemsegListView),
    External(MemsegListView),
}

impl Deref for ListRef<'_> {
    type Target = MemsegListView;
    fn deref(&self) -> &MemsegListView {
        match self {
            ListRef::Internal(l) => l,
            ListRef::External(l) => l,
        }
    }
}

/// A range of user memory to describe with an external list, checked as DPDK checks it: the
/// address and length multiples of the page size, the page size a power of two, and an IOVA
/// table, if any, with one entry per page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExternalArea<'a> {
    pub va: u64,
    pub len: u64,
    pub page_size: u64,
    pub n_pages: u32,
    pub iovas: Option<&'a [Iova]>,
}

fn bad(msg: String) -> EalError {
    EalError::InvalidArgument(msg)
}

/// Checks an address range named by the user: non-null, non-empty, not wrapping around.
pub(crate) fn check_range(va: usize, len: usize) -> Result<(), EalError> {
    if va == 0 {
        return Err(bad("external memory at address 0".into()));
    }
    if len == 0 {
        return Err(bad(format!("external memory at {va:#x} of length 0")));
    }
    if va.checked_add(len).is_none() {
        return Err(bad(format!(
            "external memory {va:#x}+{len:#x} runs past the end of the address space"
        )));
    }
    Ok(())
}

impl<'a> ExternalArea<'a> {
    pub(crate) fn new(
        va: usize,
        len: usize,
        iovas: Option<&'a [Iova]>,
        page_size: usize,
    ) -> Result<Self, EalError> {
        check_range(va, len)?;
        if !page_size.is_power_of_two() {
            return Err(bad(format!(
                "page size {page_size} of external memory is not a power of two"
            )));
        }
        if !va.is_multiple_of(page_size) || !len.is_multiple_of(page_size) {
            return Err(bad(format!(
                "external memory {va:#x}+{len:#x} is not aligned to its page size {page_size:#x}"
            )));
        }
        let n_pages = u32::try_from(len / page_size).map_err(|_| {
            bad(format!(
                "external memory of {len:#x} bytes has more than {} pages of {page_size} bytes",
                u32::MAX
            ))
        })?;
        if let Some(table) = iovas {
            if table.len() != n_pages as usize {
                return Err(bad(format!(
                    "IOVA table has {} entries for {n_pages} pages of external memory",
                    table.len()
                )));
            }
        }
        Ok(Self {
            va: va as u64,
            len: len as u64,
            page_size: page_size as u64,
            n_pages,
            iovas,
        })
    }
}

/// Whether process `pid` still exists.
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn own_pid() -> u32 {
    dpmem_sys::process::pid()
}

fn describe(va: u64, len: u64) -> String {
    format!("{va:#x}+{len:#x}")
}

impl Memory {
    /// Slots of the list table that can hold external lists.
    fn external_slots(&self) -> std::ops::Range<usize> {
        self.lists.len()..MAX_MEMSEG_LISTS
    }

    /// The header of external slot `slot` if a list uses it. Hotplug lock held.
    fn external_header(&self, slot: usize) -> Option<MemsegListHeader> {
        let h = self.config.header().lists[slot].read();
        h.is_external().then_some(h)
    }

    /// The internal list whose window holds `va`, and the slot. No lock needed: internal list
    /// windows never change.
    #[inline]
    pub(crate) fn locate_internal(&self, va: u64) -> Option<(&MemsegListView, u32)> {
        self.lists
            .iter()
            .find_map(|l| l.slot_of(va).map(|slot| (l, slot)))
    }

    /// The list (internal or external) whose window holds `va`, and the slot. Hotplug lock held.
    pub(crate) fn locate(&self, va: u64) -> Option<(ListRef<'_>, u32)> {
        if let Some((l, slot)) = self.locate_internal(va) {
            return Some((ListRef::Internal(l), slot));
        }
        self.external_slots().find_map(|slot| {
            let h = self.external_header(slot)?;
            (va >= h.base_va && va - h.base_va < h.len).then(|| {
                let view = self.config.view_of_slot(slot);
                (
                    ListRef::External(view),
                    ((va - h.base_va) / h.page_size) as u32,
                )
            })
        })
    }

    /// The list of index `index`, internal or external. Hotplug lock held.
    pub(crate) fn list_by_index(&self, index: u32) -> Option<ListRef<'_>> {
        let index = index as usize;
        if let Some(l) = self.lists.get(index) {
            return Some(ListRef::Internal(l));
        }
        (index < MAX_MEMSEG_LISTS && self.external_header(index).is_some())
            .then(|| ListRef::External(self.config.view_of_slot(index)))
    }

    /// Runs `f` on every list, internal ones first, then external ones by index. Hotplug lock
    /// held.
    pub(crate) fn for_each_list<B>(
        &self,
        mut f: impl FnMut(&MemsegListView) -> ControlFlow<B>,
    ) -> Option<B> {
        for list in &self.lists {
            if let ControlFlow::Break(b) = f(list) {
                return Some(b);
            }
        }
        for slot in self.external_slots() {
            if self.external_header(slot).is_some() {
                if let ControlFlow::Break(b) = f(&self.config.view_of_slot(slot)) {
                    return Some(b);
                }
            }
        }
        None
    }

    /// The external list covering exactly `[va, va+len)`. Hotplug lock held.
    pub(crate) fn find_external(&self, va: u64, len: u64) -> Option<MemsegListHeader> {
        self.external_slots()
            .filter_map(|slot| self.external_header(slot))
            .find(|h| h.base_va == va && h.len == len)
    }

    /// Live processes other than this one that use external list `h`.
    pub(crate) fn other_users(&self, h: &MemsegListHeader) -> Vec<u32> {
        let me = own_pid();
        h.attached_pids
            .iter()
            .copied()
            .filter(|&pid| pid != 0 && pid != me && process_alive(pid))
            .collect()
    }

    /// Whether this process uses external list `h` (registered or attached it).
    pub(crate) fn is_attached_here(h: &MemsegListHeader) -> bool {
        h.attached_pids.contains(&own_pid())
    }

    /// Whether this process may read the memory at `va`: dpmem's own memory always, external
    /// memory once this process registered or attached it.
    pub(crate) fn attached_here(&self, va: usize) -> bool {
        if self.locate_internal(va as u64).is_some() {
            return true;
        }
        let _lock = self.config.header().hotplug_lock.lock_reentrant();
        match self.locate(va as u64) {
            Some((list, _)) if list.header().is_external() => Self::is_attached_here(list.header()),
            _ => true,
        }
    }

    /// The first memory of the heap of socket `socket` that this process has not attached.
    /// Hotplug lock held.
    pub(crate) fn unattached_heap_memory(&self, socket: i32) -> Option<(u64, u64)> {
        self.external_slots()
            .filter_map(|slot| self.external_header(slot))
            .find(|h| h.is_heap() && h.socket_id == socket && !Self::is_attached_here(h))
            .map(|h| (h.base_va, h.len))
    }

    /// Makes an external list for `area` with segments of socket `socket`, this process its only
    /// user. Fails, changing nothing, when the area overlaps memory dpmem already knows
    /// (`EEXIST`) or no list slot or arena room is left (`ENOSPC`). Hotplug lock held.
    pub(crate) fn create_external_list(
        &self,
        area: &ExternalArea<'_>,
        socket: i32,
        heap: bool,
    ) -> Result<MemsegListInfo, EalError> {
        let end = area.va + area.len;
        let overlapping = |base: u64, len: u64| area.va < base + len && base < end;
        if let Some(l) = self
            .lists
            .iter()
            .find(|l| overlapping(l.header().base_va, l.header().len))
        {
            let h = l.header();
            return Err(EalError::AlreadyExists {
                what: "memory (inside the window of dpmem's memseg list)",
                name: format!(
                    "{} in list {} {}",
                    describe(area.va, area.len),
                    h.index,
                    describe(h.base_va, h.len)
                ),
            });
        }
        let mut free_slot = None;
        let mut used_segs = 0u64;
        for slot in self.external_slots() {
            match self.external_header(slot) {
                Some(h) if overlapping(h.base_va, h.len) => {
                    return Err(EalError::AlreadyExists {
                        what: "external memory",
                        name: format!(
                            "{} overlapping {} (list {})",
                            describe(area.va, area.len),
                            describe(h.base_va, h.len),
                            h.index
                        ),
                    });
                }
                Some(h) => used_segs += u64::from(h.n_segs),
                None => {
                    free_slot.get_or_insert(slot);
                }
            }
        }
        let slot = free_slot.ok_or_else(|| {
            EalError::Limit(format!(
                "all {MAX_MEMSEG_LISTS} memseg lists are in use; no list is left for external memory {}",
                describe(area.va, area.len)
            ))
        })?;
        let max = self.config.header().external_segments_max;
        if used_segs + u64::from(area.n_pages) > max {
            return Err(EalError::Limit(format!(
                "external memory {} needs {} segments; {used_segs} of the {max} external segments are in use",
                describe(area.va, area.len),
                area.n_pages
            )));
        }
        let (fb_bytes, segs_bytes) = external_list_bytes(area.n_pages);
        let start = self.arena_place(fb_bytes + segs_bytes)?;
        let addr = self.config.addr();
        // SAFETY: [start, start + fb_bytes) is arena room no list uses (found free under the
        // hotplug lock, which every user of the arena holds), inside the mapping and 64-byte
        // aligned; no view of it exists.
        let occupancy = unsafe { FbArray::init((addr + start as usize) as *mut u8, area.n_pages) };
        let segs = (addr + (start + fb_bytes) as usize) as *mut Memseg;
        for i in 0..area.n_pages {
            let va = area.va + u64::from(i) * area.page_size;
            let seg = Memseg {
                va,
                iova: area.iovas.map_or(BAD_IOVA, |t| t[i as usize].get()),
                len: area.page_size,
                page_size: area.page_size,
                socket_id: socket,
                // The contents are the user's (unknown to dpmem), and dpmem never unmaps them.
                flags: flags::DIRTY | flags::DO_NOT_FREE,
                file_offset: 0,
                alloc_pages: if i == 0 { area.n_pages } else { 0 },
                map_seq: 0,
            };
            // SAFETY: i < n_pages and the segment array of n_pages entries lies in the arena room
            // just claimed (after the occupancy array), which nothing else uses.
            unsafe { segs.wrapping_add(i as usize).write(seg) };
            occupancy.set_used(i).expect("fresh occupancy array");
        }
        let mut attached_pids = [0; MAX_ATTACHED_PROCESSES];
        attached_pids[0] = own_pid();
        let header = MemsegListHeader {
            base_va: area.va,
            len: area.len,
            page_size: area.page_size,
            socket_id: socket,
            n_segs: area.n_pages,
            fbarray_offset: start,
            segs_offset: start + fb_bytes,
            flags: list_flags::EXTERNAL | if heap { list_flags::HEAP } else { 0 },
            index: slot as u32,
            attached_pids,
        };
        // Published last: until the header says EXTERNAL, no lookup looks at the arrays.
        self.config.header().lists[slot].write(header);
        self.note_layout_change();
        Ok(self.config.view_of_slot(slot).info())
    }

    /// Where in the arena `bytes` of metadata for a new list go: the first gap between the
    /// lists there, or, when fragmentation leaves no gap big enough, the end after compacting.
    /// Hotplug lock held.
    fn arena_place(&self, bytes: u64) -> Result<u64, EalError> {
        let header = self.config.header();
        let arena_start = header.external_arena_offset;
        let arena_end = arena_start + header.external_arena_len;
        let mut extents: Vec<(usize, u64, u64)> = self
            .external_slots()
            .filter_map(|slot| self.external_header(slot).map(|h| (slot, h)))
            .map(|(slot, h)| {
                let (fb, segs) = external_list_bytes(h.n_segs);
                (slot, h.fbarray_offset, h.fbarray_offset + fb + segs)
            })
            .collect();
        extents.sort_unstable_by_key(|e| e.1);
        let mut cursor = arena_start;
        for &(_, start, end) in &extents {
            if start - cursor >= bytes {
                return Ok(cursor);
            }
            cursor = end;
        }
        if arena_end - cursor >= bytes {
            return Ok(cursor);
        }
        // Slide every list down to close the gaps. Nothing holds a view of an external list
        // outside the hotplug lock, so moving the bytes and rewriting the offsets is invisible.
        let addr = self.config.addr();
        let mut cursor = arena_start;
        for (slot, start, end) in extents {
            let len = end - start;
            if start != cursor {
                // SAFETY: both ranges lie in the arena of the mapping; `copy` allows the overlap
                // of sliding down, and no reference into either range exists (hotplug lock).
                unsafe {
                    std::ptr::copy(
                        (addr + start as usize) as *const u8,
                        (addr + cursor as usize) as *mut u8,
                        len as usize,
                    )
                };
                let cell = &header.lists[slot];
                let mut h = cell.read();
                h.segs_offset = cursor + (h.segs_offset - h.fbarray_offset);
                h.fbarray_offset = cursor;
                cell.write(h);
            }
            cursor += len;
        }
        if arena_end - cursor >= bytes {
            Ok(cursor)
        } else {
            Err(EalError::Limit(format!(
                "the external arena has no room for {bytes} more bytes of list metadata"
            )))
        }
    }

    /// Forgets external list `index`. Hotplug lock held; the caller checked it may go.
    pub(crate) fn destroy_external_list(&self, index: u32) {
        let cell = &self.config.header().lists[index as usize];
        debug_assert!(cell.read().is_external());
        cell.write(MemsegListHeader::default());
        self.note_layout_change();
    }

    /// Records this process as a user of external list `index` (nothing to do if it is one).
    /// Hotplug lock held.
    pub(crate) fn attach_external(&self, index: u32) -> Result<(), EalError> {
        let cell = &self.config.header().lists[index as usize];
        let mut h = cell.read();
        let me = own_pid();
        if h.attached_pids.contains(&me) {
            return Ok(());
        }
        // Entries of processes that ended without detaching are free again.
        for pid in h.attached_pids.iter_mut() {
            if *pid != 0 && !process_alive(*pid) {
                *pid = 0;
            }
        }
        let free = h
            .attached_pids
            .iter_mut()
            .find(|p| **p == 0)
            .ok_or_else(|| {
                EalError::Limit(format!(
                    "external memory {} is attached in {MAX_ATTACHED_PROCESSES} processes already",
                    describe(h.base_va, h.len)
                ))
            })?;
        *free = me;
        cell.write(h);
        Ok(())
    }

    /// Removes this process from the users of external list `index`. Hotplug lock held.
    pub(crate) fn detach_external(&self, index: u32) -> Result<(), EalError> {
        let cell = &self.config.header().lists[index as usize];
        let mut h = cell.read();
        let me = own_pid();
        let entry = h
            .attached_pids
            .iter_mut()
            .find(|p| **p == me)
            .ok_or_else(|| EalError::NotFound {
                what: "attachment of this process to external memory",
                name: describe(h.base_va, h.len),
            })?;
        *entry = 0;
        cell.write(h);
        Ok(())
    }

    /// Removes this process from the users of every external list (the EAL is going away).
    /// Hotplug lock held.
    pub(crate) fn detach_all_external(&self) {
        for slot in self.external_slots() {
            if self.external_header(slot).is_some() {
                let _ = self.detach_external(slot as u32);
            }
        }
    }

    /// The registered (non-heap) external list covering exactly `[va, va+len)`.
    fn find_registered(&self, va: usize, len: usize) -> Result<MemsegListHeader, EalError> {
        check_range(va, len)?;
        match self.find_external(va as u64, len as u64) {
            Some(h) if !h.is_heap() => Ok(h),
            Some(h) => Err(EalError::NotFound {
                what: "registered external memory (this area is memory of a heap: use the heap_memory_* calls)",
                name: format!("{} (heap socket {})", describe(h.base_va, h.len), h.socket_id),
            }),
            None => Err(EalError::NotFound {
                what: "registered external memory",
                name: describe(va as u64, len as u64),
            }),
        }
    }

    /// Registers memory the user mapped so that address lookups know it (DPDK's
    /// `rte_extmem_register`): [`Memory::virt_to_memseg`], [`Memory::virt_to_iova`] and the
    /// walks see it as one external list of `len / page_size` segments of socket
    /// [`Socket::Any`](crate::Socket::Any), with the IOVAs of `iovas` (one per page) or none
    /// known. No heap uses
    /// it and dpmem never reads or writes it.
    ///
    /// Errors: `EINVAL` for a null or empty range, a page size that is not a power of two, an
    /// address or length not a multiple of it, or an IOVA table of the wrong length; `EEXIST`
    /// when the range overlaps memory dpmem already knows; `ENOSPC` when no memseg list (or
    /// external segment, see [`crate::EalSettings::external_segments`]) is left.
    pub fn extmem_register(
        &self,
        va: usize,
        len: usize,
        iovas: Option<&[Iova]>,
        page_size: usize,
    ) -> Result<MemsegListInfo, EalError> {
        let area = ExternalArea::new(va, len, iovas, page_size)?;
        let _lock = self.config.header().hotplug_lock.lock();
        self.create_external_list(&area, SOCKET_ID_ANY, false)
    }

    /// Forgets memory registered with [`Memory::extmem_register`] (DPDK's
    /// `rte_extmem_unregister`); `va` and `len` must be exactly the registered range (`ENOENT`
    /// otherwise). Refused with `EBUSY` while another live process is still attached.
    pub fn extmem_unregister(&self, va: usize, len: usize) -> Result<(), EalError> {
        let _lock = self.config.header().hotplug_lock.lock();
        let h = self.find_registered(va, len)?;
        let others = self.other_users(&h);
        if !others.is_empty() {
            return Err(EalError::Busy(format!(
                "external memory {} is still attached in processes {others:?}; they must detach first",
                describe(h.base_va, h.len)
            )));
        }
        self.destroy_external_list(h.index);
        Ok(())
    }

    /// Records that this process uses memory another process registered (DPDK's
    /// `rte_extmem_attach`). Nothing is mapped: the user maps the memory at the same address
    /// first. `ENOENT` when no registered memory is exactly `[va, va+len)`.
    pub fn extmem_attach(&self, va: usize, len: usize) -> Result<(), EalError> {
        let _lock = self.config.header().hotplug_lock.lock();
        let h = self.find_registered(va, len)?;
        self.attach_external(h.index)
    }

    /// Records that this process no longer uses registered memory (DPDK's `rte_extmem_detach`).
    /// `ENOENT` when no registered memory is exactly `[va, va+len)` or this process is not
    /// attached to it.
    pub fn extmem_detach(&self, va: usize, len: usize) -> Result<(), EalError> {
        let _lock = self.config.header().hotplug_lock.lock();
        let h = self.find_registered(va, len)?;
        self.detach_external(h.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_checked_as_dpdk_checks_them() {
        let ok = ExternalArea::new(0x10_0000, 0x4000, None, 0x1000).unwrap();
        assert_eq!(ok.n_pages, 4);
        let table = [1u64, 2, 3, 4].map(|i| Iova::new(i).unwrap());
        assert!(ExternalArea::new(0x10_0000, 0x4000, Some(&table), 0x1000).is_ok());
        for (va, len, ps, iovas) in [
            (0, 0x4000, 0x1000, None),
            (0x10_0000, 0, 0x1000, None),
            (0x10_0800, 0x4000, 0x1000, None),
            (0x10_0000, 0x4800, 0x1000, None),
            (0x10_0000, 0x6000, 0x3000, None),
            (0x10_0000, 0x4000, 0, None),
            (0x10_0000, 0x4000, 0x1000, Some(&table[..3])),
            (usize::MAX - 0xfff, 0x2000, 0x1000, None),
        ] {
            let err = ExternalArea::new(va, len, iovas, ps).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::ErrorKind::Inval,
                "{va:#x}+{len:#x}/{ps}: {err}"
            );
        }
    }
}
