//! [`DmaMapping`]: memory the application mapped itself, made usable for I/O (MTL's
//! `mtl_dma_map` / `mtl_dma_unmap`): registered with the EAL as external memory, so address
//! lookups know it, with the device address of each page recorded the way the EAL records
//! its own pages' — the virtual address in IOVA-as-VA mode, the physical address from
//! `/proc/self/pagemap` in physical-address mode. Frames lent to a transmit session
//! ([`TxSession::transmit_external`](crate::TxSession::transmit_external)) must lie inside
//! one, and borrow it, so it cannot be unmapped while a packet may read them.
//!
//! dpmem never frees, writes or unmaps the memory: dropping the mapping (or
//! [`dma_unmap`]) only unregisters it.

use dpmem_eal::{Eal, Iova, IovaMode};
use dpmem_sys::pagemap::Pagemap;

use crate::error::FrameError;
use crate::external_frame::ExternalFrame;
use crate::format::St20Format;
use crate::memory::FrameMemory;

/// Memory of the application's, registered for I/O (see the module notes). Unregistered
/// when dropped.
#[derive(Debug)]
pub struct DmaMapping<'eal> {
    eal: &'eal Eal,
    va: usize,
    len: usize,
    page_size: usize,
    /// The device address of each page, as registered with the EAL.
    page_iova: Box<[Iova]>,
}

/// Maps `len` bytes at `va` for I/O in pages of the system's page size
/// ([`DmaMapping::map`]).
///
/// # Safety
/// As [`DmaMapping::map`].
pub unsafe fn dma_map(eal: &Eal, va: usize, len: usize) -> Result<DmaMapping<'_>, FrameError> {
    // SAFETY: the caller keeps `DmaMapping::map`'s contract.
    unsafe { DmaMapping::map(eal, va, len) }
}

/// Unmaps memory mapped for I/O ([`DmaMapping::unmap`]).
pub fn dma_unmap(mapping: DmaMapping<'_>) -> Result<(), FrameError> {
    mapping.unmap()
}

impl<'eal> DmaMapping<'eal> {
    /// Maps `len` bytes at `va` for I/O, in pages of the system's page size (4 KiB here),
    /// which suits any memory, hugepages included. Refused, with nothing registered: a null
    /// or empty range, an address or length that is not a multiple of the page size, a range
    /// overlapping memory the EAL knows already, and — in physical-address mode — a page that
    /// is not resident (write the memory first: a device needs it in place).
    ///
    /// # Safety
    /// `va..va+len` is memory of this process, readable, that stays mapped at `va` until the
    /// mapping is dropped or unmapped; its physical pages do not move meanwhile in
    /// physical-address mode (hugepages, or locked memory); and the bytes of a frame lent
    /// from it to a session are not written from the lend until "done" returns the frame
    /// (the session's packets, and the port sending them, read them meanwhile).
    pub unsafe fn map(eal: &'eal Eal, va: usize, len: usize) -> Result<Self, FrameError> {
        // SAFETY: the caller keeps this contract.
        unsafe { Self::map_in_pages(eal, va, len, dpmem_sys::mapping::system_page_size()) }
    }

    /// [`map`](Self::map) in pages of `page_size` (a power of two): the hugepage size for
    /// hugepage memory gives the EAL one segment per hugepage instead of 512.
    ///
    /// # Safety
    /// As [`map`](Self::map), and the memory's pages are at least `page_size` bytes.
    pub unsafe fn map_in_pages(
        eal: &'eal Eal,
        va: usize,
        len: usize,
        page_size: usize,
    ) -> Result<Self, FrameError> {
        let refuse = |detail: String| FrameError::DmaMap { va, len, detail };
        if va == 0 || len == 0 {
            return Err(refuse("a null or empty range".into()));
        }
        if !page_size.is_power_of_two() {
            return Err(refuse(format!(
                "a page size of {page_size} is not a power of two"
            )));
        }
        if !va.is_multiple_of(page_size) || !len.is_multiple_of(page_size) {
            return Err(refuse(format!(
                "address and length must be multiples of the {page_size}-byte page"
            )));
        }
        if va.checked_add(len).is_none() {
            return Err(refuse("the range runs past the address space".into()));
        }
        let pages = len / page_size;
        let page_iova: Box<[Iova]> = match eal.iova_mode() {
            IovaMode::Va => (0..pages)
                .map(|k| Iova::new((va + k * page_size) as u64))
                .collect::<Option<_>>()
                .ok_or_else(|| refuse("an address no device address can equal".into()))?,
            IovaMode::Pa => {
                let pagemap = Pagemap::open().map_err(|e| refuse(e.to_string()))?;
                let mut table = Vec::with_capacity(pages);
                for k in 0..pages {
                    let page = va + k * page_size;
                    let pa = pagemap
                        .physical_address(page)
                        .map_err(|e| refuse(e.to_string()))?
                        .and_then(Iova::new)
                        .ok_or_else(|| {
                            refuse(format!(
                                "the page at {page:#x} is not resident or its physical \
                                 address is hidden (write the memory before mapping it)"
                            ))
                        })?;
                    table.push(pa);
                }
                table.into_boxed_slice()
            }
        };
        eal.memory()
            .extmem_register(va, len, Some(&page_iova), page_size)?;
        Ok(DmaMapping {
            eal,
            va,
            len,
            page_size,
            page_iova,
        })
    }

    /// Unregisters the memory (dropping the mapping does the same, quietly). The EAL refuses
    /// while another process is attached to it: the error says so, and the memory stays
    /// known to the EAL (which never touches it).
    pub fn unmap(self) -> Result<(), FrameError> {
        self.eal.memory().extmem_unregister(self.va, self.len)?;
        // Unregistered: the drop must not try again (the range may be registered anew).
        core::mem::forget(self);
        Ok(())
    }

    /// The first byte.
    pub fn va(&self) -> usize {
        self.va
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The device address of the first byte (what `mtl_dma_map` returns).
    pub fn iova(&self) -> Iova {
        self.page_iova[0]
    }

    /// The device address of byte `va`, when it lies inside the mapping.
    pub fn iova_of(&self, va: usize) -> Option<Iova> {
        let offset = va.checked_sub(self.va).filter(|&o| o < self.len)?;
        self.page_iova[offset / self.page_size].checked_add((offset % self.page_size) as u64)
    }

    /// The frame of `len` bytes at `offset` into the mapping, with its device address filled
    /// in and `opaque` to come back with it: what an application lends, without computing an
    /// address or an IOVA itself. `None` when the frame does not lie wholly inside.
    pub fn frame(&self, offset: usize, len: usize, opaque: u64) -> Option<ExternalFrame> {
        let va = self.va.checked_add(offset)?;
        if len == 0 || !self.contains(va, len) {
            return None;
        }
        Some(ExternalFrame {
            va,
            iova: self.iova_of(va)?,
            len,
            opaque,
        })
    }

    /// Whether `len` bytes at `va` lie inside the mapping.
    pub fn contains(&self, va: usize, len: usize) -> bool {
        va >= self.va
            && va
                .checked_add(len)
                .is_some_and(|end| end <= self.va + self.len)
    }

    pub(crate) fn eal(&self) -> &'eal Eal {
        self.eal
    }

    /// Whether the EAL still knows the mapping's memory as the external memory this mapping
    /// registered (the EAL's own calls could have unregistered it meanwhile).
    pub(crate) fn still_registered(&self) -> bool {
        self.eal
            .memory()
            .virt_to_list(self.va)
            .is_some_and(|l| l.external && !l.heap && l.base_va == self.va && l.len == self.len)
    }

    /// The pages of `frame` (inside the mapping, at least one frame of `format` long) that
    /// the packetiser reads: those of its first frame of the format.
    pub(crate) fn frame_memory(&self, frame: &ExternalFrame, format: &St20Format) -> FrameMemory {
        FrameMemory::lent(
            frame.va,
            format.frame_size(),
            self.page_size,
            |page| self.iova_of(page),
            format,
        )
    }
}

impl Drop for DmaMapping<'_> {
    fn drop(&mut self) {
        // Nothing can reference the memory through dpmem now: lent frames' packets borrow the
        // mapping. An unregister the EAL refuses (another process attached) leaves it known.
        let _ = self.eal.memory().extmem_unregister(self.va, self.len);
    }
}
