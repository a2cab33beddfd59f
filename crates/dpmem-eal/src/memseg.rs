//! One memory segment: one page of a memseg list, as every process sees it.

use serde::Serialize;

/// The IOVA of memory whose device address is unknown (DPDK's `RTE_BAD_IOVA`).
pub const BAD_IOVA: u64 = u64::MAX;

/// "Any socket": let dpmem pick (DPDK's `SOCKET_ID_ANY`).
pub const SOCKET_ID_ANY: i32 = -1;

/// Segment flags.
pub mod flags {
    /// The page may hold old data: it came back from a kept file (`--huge-unlink=never`), so
    /// zeroing requests must clear it.
    pub const DIRTY: u32 = 1 << 0;
    /// The page is pinned for the life of the EAL: preallocated (`-m`, `--socket-mem`),
    /// legacy or `--no-huge` memory.
    pub const DO_NOT_FREE: u32 = 1 << 1;
}

/// One page mapped into a memseg list. Lives in the shared configuration, so it is `repr(C)`
/// and holds addresses as integers, identical in every process.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memseg {
    /// Virtual address of the page (the same in every process).
    pub va: u64,
    /// Device address: physical in PA mode, equal to `va` in VA mode, [`BAD_IOVA`] if unknown.
    pub iova: u64,
    /// Length of the segment (one page).
    pub len: u64,
    pub page_size: u64,
    /// The NUMA node the kernel really placed the page on.
    pub socket_id: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Where the page lives in its backing file (single-file segments, memfd, legacy remaps).
    pub file_offset: u64,
    /// On the first segment of an allocation, how many pages that allocation took (0 on the
    /// others); `--match-allocations` frees only whole allocations.
    pub alloc_pages: u32,
    /// Which of the primary's page maps put this page here: its hotplug count once the map is
    /// done, low 32 bits (0 for pages mapped at start-up). A secondary that mapped the slot at
    /// another count holds a page the primary has since replaced.
    #[serde(skip)]
    pub map_seq: u32,
}

impl Memseg {
    pub fn is_dirty(&self) -> bool {
        self.flags & flags::DIRTY != 0
    }

    pub fn is_pinned(&self) -> bool {
        self.flags & flags::DO_NOT_FREE != 0
    }

    pub fn end(&self) -> u64 {
        self.va + self.len
    }

    pub fn contains(&self, va: u64) -> bool {
        va >= self.va && va < self.end()
    }
}
