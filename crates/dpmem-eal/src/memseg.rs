//! One memory segment: one page of a memseg list, as every process sees it.

use crate::iova::Iova;
use crate::socket::Socket;

/// Segment flags.
pub(crate) mod flags {
    /// The page may hold old data: it came back from a kept file (`--huge-unlink=never`), so
    /// zeroing requests must clear it.
    pub const DIRTY: u32 = 1 << 0;
    /// The page is pinned for the life of the EAL: preallocated (`-m`, `--socket-mem`),
    /// legacy or `--no-huge` memory.
    pub const DO_NOT_FREE: u32 = 1 << 1;
}

/// One page mapped into a memseg list (DPDK's `rte_memseg`). Lives in the shared
/// configuration, so it is `repr(C)` and holds addresses as integers, identical in every
/// process; the methods give them typed.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memseg {
    /// Virtual address of the page (the same in every process).
    pub(crate) va: u64,
    /// Device address: physical in PA mode, equal to `va` in VA mode, [`BAD_IOVA`] if unknown.
    pub(crate) iova: u64,
    /// Length of the segment (one page).
    pub(crate) len: u64,
    pub(crate) page_size: u64,
    /// The NUMA node the kernel really placed the page on.
    pub(crate) socket_id: i32,
    /// [`flags`] bits.
    pub(crate) flags: u32,
    /// Where the page lives in its backing file (single-file segments, memfd, legacy remaps).
    pub(crate) file_offset: u64,
    /// On the first segment of an allocation, how many pages that allocation took (0 on the
    /// others); `--match-allocations` frees only whole allocations.
    pub(crate) alloc_pages: u32,
    /// Which of the primary's page maps put this page here: its hotplug count once the map is
    /// done, low 32 bits (0 for pages mapped at start-up). A secondary that mapped the slot at
    /// another count holds a page the primary has since replaced.
    pub(crate) map_seq: u32,
}

impl Memseg {
    /// Virtual address of the page (the same in every process).
    pub fn va(&self) -> usize {
        self.va as usize
    }

    /// Device address of the page, when known.
    pub fn iova(&self) -> Option<Iova> {
        Iova::new(self.iova)
    }

    /// Length of the segment (one page).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the segment is empty (never, for a mapped page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The NUMA node the kernel really placed the page on (an external heap's socket for its
    /// memory).
    pub fn socket(&self) -> Socket {
        Socket::from_recorded(self.socket_id)
    }

    /// Where the page lives in its backing file (single-file segments, memfd, legacy remaps).
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// The page may hold old data (it came back from a kept file, `--huge-unlink=never`), so
    /// zeroing requests must clear it.
    pub fn is_dirty(&self) -> bool {
        self.flags & flags::DIRTY != 0
    }

    /// The page stays mapped for the life of the EAL: preallocated (`-m`, `--socket-mem`),
    /// legacy or `--no-huge` memory.
    pub fn is_pinned(&self) -> bool {
        self.flags & flags::DO_NOT_FREE != 0
    }

    /// The first address past the page.
    pub fn end(&self) -> usize {
        (self.va + self.len) as usize
    }

    pub fn contains(&self, va: usize) -> bool {
        va >= self.va() && va < self.end()
    }
}

/// As DPDK's tools print a segment: integers, `iova` null when unknown.
#[cfg(feature = "serde")]
impl serde::Serialize for Memseg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Memseg", 8)?;
        out.serialize_field("va", &self.va)?;
        out.serialize_field("iova", &self.iova())?;
        out.serialize_field("len", &self.len)?;
        out.serialize_field("page_size", &self.page_size)?;
        out.serialize_field("socket_id", &self.socket_id)?;
        out.serialize_field("flags", &self.flags)?;
        out.serialize_field("file_offset", &self.file_offset)?;
        out.serialize_field("alloc_pages", &self.alloc_pages)?;
        out.end()
    }
}
