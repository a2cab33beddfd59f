//! A memseg list: one window of virtual address space for one memory type (page size × socket),
//! cut into page-sized slots, with an occupancy array saying which slots hold a mapped page.
//!
//! Lists come in two kinds. *Internal* lists are planned and reserved by the primary at start-up
//! and never change shape. *External* lists describe memory the user mapped (DPDK's external
//! memory): they are created and destroyed at run time in the spare slots of the configuration's
//! list table, by any process, under the hotplug lock.

use std::cell::UnsafeCell;

use crate::fbarray::FbArray;
use crate::memseg::Memseg;
use crate::socket::Socket;

/// List flags.
pub(crate) mod list_flags {
    /// Memory registered by the user (external memory), not allocated by dpmem. On a slot of the
    /// external range this flag is also what says the slot is in use.
    pub const EXTERNAL: u32 = 1 << 0;
    /// External memory that belongs to a named malloc heap (its socket is the heap's); without
    /// it, external memory was only registered for address lookups.
    pub const HEAP: u32 = 1 << 1;
}

/// Processes that can have one external list attached at the same time.
pub(crate) const MAX_ATTACHED_PROCESSES: usize = 16;

/// The shared description of one list. Lives in the shared configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MemsegListHeader {
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
    /// External lists: ids of the processes using the memory (the one that registered it and
    /// those that attached), 0 for a free entry. Removal waits until no other live process is
    /// in this set.
    pub attached_pids: [u32; MAX_ATTACHED_PROCESSES],
}

impl MemsegListHeader {
    pub fn is_external(&self) -> bool {
        self.flags & list_flags::EXTERNAL != 0
    }

    pub fn is_heap(&self) -> bool {
        self.flags & list_flags::HEAP != 0
    }
}

/// One entry of the configuration's list table. Internal entries are written once, before the
/// configuration is published; external entries change at run time, always under the hotplug
/// lock, which is why the header sits in an `UnsafeCell`.
#[repr(transparent)]
#[derive(Debug, Default)]
pub(crate) struct ListSlot(UnsafeCell<MemsegListHeader>);

// SAFETY: the header is plain data; writers hold the hotplug lock (external slots) or run before
// the configuration is shared (internal slots), and readers of external slots hold the lock too.
unsafe impl Sync for ListSlot {}

impl ListSlot {
    pub(crate) fn as_ptr(&self) -> *mut MemsegListHeader {
        self.0.get()
    }

    /// A copy of the header. Callers hold the hotplug lock, or the slot is internal (never
    /// written after publication).
    pub(crate) fn read(&self) -> MemsegListHeader {
        // SAFETY: per the caller contract no writer runs concurrently; the slot is aligned and
        // lies in the configuration mapping for as long as `self` is borrowed.
        unsafe { self.as_ptr().read() }
    }

    /// Replaces the header. Callers hold the hotplug lock (or own the configuration exclusively
    /// during the primary's initialisation) and hold no reference into the header.
    pub(crate) fn write(&self, header: MemsegListHeader) {
        // SAFETY: the hotplug lock (or exclusive initialisation) makes this the only access to
        // the slot right now; the slot is aligned and mapped.
        unsafe { self.as_ptr().write(header) }
    }
}

/// A copy of a list's description, for callers outside the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MemsegListInfo {
    pub index: u32,
    pub base_va: usize,
    pub len: usize,
    pub page_size: u64,
    #[cfg_attr(feature = "serde", serde(rename = "socket_id"))]
    pub socket: Socket,
    pub n_segs: u32,
    pub n_used: u32,
    /// User memory (external memory), not mapped by dpmem.
    pub external: bool,
    /// External memory owned by a named heap (`socket` is the heap's).
    pub heap: bool,
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
        // SAFETY: the header lies inside the configuration mapping that outlives this view. An
        // internal list's header is written only before any view exists; an external list's
        // views are made and used under the hotplug lock, which every writer of it holds.
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
    #[inline]
    pub(crate) fn slot_of(&self, va: u64) -> Option<u32> {
        let h = self.header();
        if va < h.base_va || va >= h.base_va + h.len {
            return None;
        }
        let offset = va - h.base_va;
        // Page sizes are powers of two, and a shift costs a cycle where a 64-bit division
        // costs dozens (every heap free asks); the division stays for any other size.
        let slot = if h.page_size.is_power_of_two() {
            offset >> h.page_size.trailing_zeros()
        } else {
            offset / h.page_size
        };
        Some(slot as u32)
    }

    pub(crate) fn info(&self) -> MemsegListInfo {
        let h = self.header();
        MemsegListInfo {
            index: h.index,
            base_va: h.base_va as usize,
            len: h.len as usize,
            page_size: h.page_size,
            socket: Socket::from_recorded(h.socket_id),
            n_segs: h.n_segs,
            n_used: self.occupancy.count_used(),
            external: h.is_external(),
            heap: h.is_heap(),
        }
    }
}
