//! [`FrameMemory`]: one frame buffer — a memzone in the EAL's memory, or a frame the
//! application lent from memory it mapped for I/O — with the device address of each of its
//! pages, so the packetiser knows where a payload may be sent straight from the frame and
//! where it crosses into a page whose device address does not follow on.
//!
//! The memzone is asked for IOVA-contiguous first; when that cannot be had, any memory does,
//! and the page table says where the breaks are. Memory with no device address at all
//! (`--no-huge` in physical-address mode) has no breaks: its packets are read through their
//! virtual addresses, by software ports, so every payload can be sent in place.

use dpmem_eal::{Eal, Iova, Memzone, MemzoneFlags, Socket};

use crate::error::FrameError;
use crate::format::St20Format;

#[derive(Debug)]
pub(crate) struct FrameMemory {
    /// The memzone of one of the session's own frames; none for a frame the application lent
    /// (which dpmem never frees).
    zone: Option<Memzone>,
    /// The frame's first byte and its length.
    va: usize,
    len: usize,
    /// Start of the page holding the frame's first byte.
    first_page: usize,
    page_size: usize,
    /// Device address of each page the frame touches.
    page_iova: Vec<Option<Iova>>,
    /// `breaks[k]`: the device address of page `k + 1` does not follow page `k`'s.
    breaks: Vec<bool>,
    /// Payloads of the session's format that cross a break (sent by copy).
    crossings: u32,
}

impl FrameMemory {
    /// Reserves `len` bytes on `socket` for frames of `format`.
    pub(crate) fn reserve(
        eal: &Eal,
        name: &str,
        len: usize,
        socket: Socket,
        format: &St20Format,
    ) -> Result<FrameMemory, FrameError> {
        let zones = eal.memzones();
        let request = |flags| {
            zones
                .request(name, len)
                .socket(socket)
                .flags(flags)
                .reserve()
        };
        let zone = match request(MemzoneFlags::IOVA_CONTIG) {
            Ok(zone) => zone,
            Err(_) => request(MemzoneFlags::empty())?,
        };
        let page_size = zone.page_size as usize;
        let (va, zone_len) = (zone.va, zone.len);
        let memory = eal.memory();
        Ok(FrameMemory::describe(
            Some(zone),
            va,
            zone_len,
            page_size,
            |page| memory.virt_to_iova(page),
            format,
        ))
    }

    /// A frame the application lent: `len` bytes at `va`, in pages of `page_size` whose
    /// device addresses `page_iova` gives (by the page's first byte).
    pub(crate) fn lent(
        va: usize,
        len: usize,
        page_size: usize,
        page_iova: impl Fn(usize) -> Option<Iova>,
        format: &St20Format,
    ) -> FrameMemory {
        FrameMemory::describe(None, va, len, page_size, page_iova, format)
    }

    fn describe(
        zone: Option<Memzone>,
        va: usize,
        len: usize,
        page_size: usize,
        page_iova: impl Fn(usize) -> Option<Iova>,
        format: &St20Format,
    ) -> FrameMemory {
        let first_page = va & !(page_size - 1);
        let pages = (va + len - first_page).div_ceil(page_size);
        let page_iova: Vec<Option<Iova>> = (0..pages)
            .map(|k| page_iova(first_page + k * page_size))
            .collect();
        let known = page_iova.iter().any(Option::is_some);
        let breaks = page_iova
            .windows(2)
            .map(|w| match (w[0], w[1]) {
                (Some(a), Some(b)) => a.checked_add(page_size as u64) != Some(b),
                _ => known,
            })
            .collect();
        let mut memory = FrameMemory {
            zone,
            va,
            len,
            first_page,
            page_size,
            page_iova,
            breaks,
            crossings: 0,
        };
        memory.crossings = (0..format.packets_per_frame())
            .filter(|&i| {
                let (offset, len) = format.payload_range(i);
                memory.crosses_break(offset, len)
            })
            .count() as u32;
        memory
    }

    /// The memzone of one of the session's own frames (none for a lent frame).
    pub(crate) fn zone(&self) -> Option<&Memzone> {
        self.zone.as_ref()
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.va as *mut u8
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    pub(crate) fn crossings(&self) -> u32 {
        self.crossings
    }

    /// Device address of byte `offset` of the frame.
    #[inline]
    pub(crate) fn iova_at(&self, offset: usize) -> Option<Iova> {
        let at = self.va + offset - self.first_page;
        let page = self.page_iova[at / self.page_size]?;
        page.checked_add((at % self.page_size) as u64)
    }

    /// Whether `offset..offset+len` runs over a page boundary whose device addresses are
    /// discontiguous.
    #[inline]
    pub(crate) fn crosses_break(&self, offset: usize, len: u16) -> bool {
        if len == 0 {
            return false;
        }
        let start = self.va + offset - self.first_page;
        let first = start / self.page_size;
        let last = (start + len as usize - 1) / self.page_size;
        self.breaks[first..last].iter().any(|&b| b)
    }
}

/// Frees the memzone of one of a session's own frame buffers (a lent frame has none, and is
/// left alone).
///
/// # Safety
/// Nothing points into the buffer: no packet, handle or copy, now or later.
pub(crate) unsafe fn free_frame(eal: &Eal, memory: &FrameMemory) {
    if let Some(zone) = memory.zone() {
        // SAFETY: the caller vouches that nothing points into the memzone.
        let _ = unsafe { eal.memzones().free(zone) };
    }
}
