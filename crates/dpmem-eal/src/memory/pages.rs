//! Pages a program maps for its own use ([`Memory::alloc_pages`]): an owning handle that gives
//! them back when dropped, so pages cannot be unmapped under something still using them.

use std::ptr::NonNull;

use super::{Memory, PageRequest, PageRun};
use crate::error::EalError;
use crate::iova::Iova;
use crate::socket::Socket;

impl Memory {
    /// Maps `req.count` virtually contiguous pages for the caller, fires the `Alloc` memory
    /// event, and returns them as [`Pages`], which unmaps them when dropped (or
    /// [`Pages::free`], which reports a failure). Fails, changing nothing, when no list has
    /// room, the node is out of pages, a validator refuses, contiguous IOVAs cannot be had,
    /// or the memory mode maps nothing after start-up (legacy and `--no-huge` memory grow only
    /// by pinned pages, which stay until the EAL goes).
    pub fn alloc_pages(&self, req: PageRequest) -> Result<Pages<'_>, EalError> {
        let run = self.map_pages(req)?;
        Ok(Pages { memory: self, run })
    }

    /// Unmaps `[va, va+len)`: whole pages of one memseg list that [`Pages::into_run`] gave up
    /// (DPDK has no public form; this is dpmem's raw one). Pinned pages refuse (`EBUSY`), and
    /// with `--match-allocations` the range must be exactly one allocation.
    ///
    /// # Safety
    /// The pages are the caller's, from [`Memory::alloc_pages`]: not the heap's, not under a
    /// memzone, ring or pool, and nothing (in any process) uses them any more — they are
    /// unmapped and their memory may be mapped again for someone else. (A range this call
    /// refuses — pinned, external, not whole pages, not mapped — is left as it was, whoever
    /// owns it.)
    pub unsafe fn free_pages(&self, va: usize, len: usize) -> Result<(), EalError> {
        self.unmap_pages(va, len)
    }
}

/// Pages mapped for the caller by [`Memory::alloc_pages`]; unmapped when dropped (pinned
/// pages stay until the EAL goes).
#[derive(Debug)]
#[must_use = "dropping the pages unmaps them"]
pub struct Pages<'m> {
    memory: &'m Memory,
    run: PageRun,
}

impl Pages<'_> {
    /// Where the pages are.
    pub fn run(&self) -> &PageRun {
        &self.run
    }

    /// The first page (the same address in every process of the EAL).
    pub fn va(&self) -> usize {
        self.run.va
    }

    pub fn as_ptr(&self) -> NonNull<u8> {
        NonNull::new(self.run.va as *mut u8).expect("pages are never at address 0")
    }

    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.run.len
    }

    /// Whether there are no pages (never: an allocation maps at least one).
    pub fn is_empty(&self) -> bool {
        self.run.len == 0
    }

    /// Device address of the first page, when known.
    pub fn iova(&self) -> Option<Iova> {
        self.run.iova
    }

    pub fn socket(&self) -> Socket {
        self.run.socket
    }

    /// Unmaps the pages now, reporting why when they cannot go (pinned pages: `EBUSY`).
    pub fn free(self) -> Result<(), EalError> {
        let (memory, run) = (self.memory, self.run);
        std::mem::forget(self);
        memory.unmap_pages(run.va, run.len)
    }

    /// Gives up ownership: the pages stay mapped until the EAL goes, or until
    /// [`Memory::free_pages`] (unsafe: the caller then vouches nothing uses them).
    pub fn into_run(self) -> PageRun {
        let run = self.run;
        std::mem::forget(self);
        run
    }
}

impl Drop for Pages<'_> {
    fn drop(&mut self) {
        // Pinned pages refuse; they go with the EAL.
        let _ = self.memory.unmap_pages(self.run.va, self.run.len);
    }
}
