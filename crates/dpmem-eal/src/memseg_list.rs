//! A memseg list: one window of virtual address space for one memory type (page size × socket),
//! cut into page-sized slots, with an occupancy array saying which slots hold a mapped page.

use serde::Serialize;

use crate::fbarray::FbArray;
use crate::memseg::Memseg;

/// List flags.
pub mod list_flags {
    /// Memory registered by the user (external memory), not allocated by dpmem.
    pub const EXTERNAL: u32 = 1 << 0;
}

/// The shared description of one list. Lives in the shared configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MemsegListHeader {
    /// Start of the reserved window (identical in every process).
    pub base_va: u64,
    /// Length of the window: `n_segs * page_size`.
    pub len: u64,
    pub page_size: u64,
    pub socket_id: i32,
    pub n_segs: u32,
    /// Offset in the configuration mapping of the list's occupancy array.
    pub fbarray_offset: u64,
    /// Offset in the configuration mapping of the list's `[Memseg; n_segs]`.
    pub segs_offset: u64,
    pub flags: u32,
    pub index: u32,
}

/// A copy of a list's description, for callers outside the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemsegListInfo {
    pub index: u32,
    pub base_va: u64,
    pub len: u64,
    pub page_size: u64,
    pub socket_id: i32,
    pub n_segs: u32,
    pub n_used: u32,
    pub external: bool,
}

/// This process's view of one list: pointers into the shared configuration mapping.
#[derive(Debug)]
pub(crate) struct MemsegListView {
    pub(crate) header: *const MemsegListHeader,
    pub(crate) segs: *mut Memseg,
    pub(crate) occupancy: FbArray,
}

// SAFETY: the pointers refer to the shared configuration mapping, which outlives every view
// (both are owned by `Memory`); mutation of segments happens only under the hotplug lock.
unsafe impl Send for MemsegListView {}
// SAFETY: as above; shared reads of segments are taken under the hotplug lock too.
unsafe impl Sync for MemsegListView {}

impl MemsegListView {
    pub(crate) fn header(&self) -> &MemsegListHeader {
        // SAFETY: the header lies inside the configuration mapping that outlives this view and
        // is written only before any view exists.
        unsafe { &*self.header }
    }

    pub(crate) fn segment(&self, idx: u32) -> Memseg {
        assert!(idx < self.header().n_segs);
        let slot = self.segs.wrapping_add(idx as usize);
        // SAFETY: idx < n_segs, and the array of n_segs segments lies in the mapping.
        unsafe { slot.read() }
    }

    /// Writes segment `idx`. Callers hold the hotplug lock.
    pub(crate) fn set_segment(&self, idx: u32, seg: Memseg) {
        assert!(idx < self.header().n_segs);
        let slot = self.segs.wrapping_add(idx as usize);
        // SAFETY: idx < n_segs so `slot` is inside the mapped array; writers are serialised by
        // the hotplug lock held by the caller.
        unsafe { slot.write(seg) }
    }

    pub(crate) fn slot_va(&self, idx: u32) -> u64 {
        let h = self.header();
        h.base_va + u64::from(idx) * h.page_size
    }

    /// The slot holding `va`, if `va` is inside this list's window.
    pub(crate) fn slot_of(&self, va: u64) -> Option<u32> {
        let h = self.header();
        (va >= h.base_va && va < h.base_va + h.len).then(|| ((va - h.base_va) / h.page_size) as u32)
    }

    pub(crate) fn info(&self) -> MemsegListInfo {
        let h = self.header();
        MemsegListInfo {
            index: h.index,
            base_va: h.base_va,
            len: h.len,
            page_size: h.page_size,
            socket_id: h.socket_id,
            n_segs: h.n_segs,
            n_used: self.occupancy.count_used(),
            external: h.flags & list_flags::EXTERNAL != 0,
        }
    }
}
