//! [`FrameMemory`]: one frame buffer, a memzone in the EAL's memory, with the device address
//! of each of its pages, so the packetiser knows where a payload may be sent straight from
//! the frame and where it crosses into a page whose device address does not follow on.
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
    zone: Memzone,
    /// Start of the page holding the memzone's first byte.
    first_page: usize,
    page_size: usize,
    /// Device address of each page the memzone touches.
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
        let first_page = zone.va & !(page_size - 1);
        let pages = (zone.va + len - first_page).div_ceil(page_size);
        let page_iova: Vec<Option<Iova>> = (0..pages)
            .map(|k| eal.memory().virt_to_iova(first_page + k * page_size))
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
        Ok(memory)
    }

    pub(crate) fn zone(&self) -> &Memzone {
        &self.zone
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.zone.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.zone.len
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
        let at = self.zone.va + offset - self.first_page;
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
        let start = self.zone.va + offset - self.first_page;
        let first = start / self.page_size;
        let last = (start + len as usize - 1) / self.page_size;
        self.breaks[first..last].iter().any(|&b| b)
    }
}
