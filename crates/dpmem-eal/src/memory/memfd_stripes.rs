//! The hugetlb memfds behind one memseg list in `--in-memory` mode.
//!
//! hugetlbfs holds a file's inode lock for the whole of an `fallocate`, clearing included, so
//! threads allocating pages of one memfd take turns, each spinning while the other clears
//! (1 GiB of 2 MiB pages on two threads: 120–130 ms and twice the CPU time on one memfd,
//! 65–78 ms on one memfd per thread, as fast as two hugetlbfs files). A list therefore has one
//! memfd per CPU, its *stripes*: page `seg` lives in stripe `seg % stripes` at offset
//! `seg * page_size`, so offsets stay what they were with a single memfd and a page's file is
//! found from its slot alone. Each stripe is sized for the whole list (a size costs nothing
//! until pages are allocated) and is created when its first page is, so that a list never
//! used holds one descriptor.

use std::sync::OnceLock;

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::SysResult;

/// Upper bound on stripes per list, whatever the CPU count: beyond it workers share stripes.
const MAX_STRIPES: usize = 32;

#[derive(Debug)]
pub(crate) struct MemfdStripes {
    name: String,
    page_size: u64,
    len: u64,
    stripes: Vec<OnceLock<BackingFile>>,
}

impl MemfdStripes {
    /// Creates the first stripe now (so that a kernel without hugetlb memfds says so at
    /// once, with `EINVAL` or `ENOSYS`) and leaves room for `stripes - 1` more.
    pub(crate) fn create(name: &str, page_size: u64, len: u64, stripes: usize) -> SysResult<Self> {
        let first = Self::make(name, 0, page_size, len)?;
        let stripes = stripes.clamp(1, MAX_STRIPES);
        let cells: Vec<OnceLock<BackingFile>> = (0..stripes).map(|_| OnceLock::new()).collect();
        cells[0].set(first).expect("fresh cell");
        Ok(Self {
            name: name.to_owned(),
            page_size,
            len,
            stripes: cells,
        })
    }

    fn make(name: &str, stripe: usize, page_size: u64, len: u64) -> SysResult<BackingFile> {
        let file = BackingFile::memfd(&format!("{name}_{stripe}"), page_size)?;
        file.set_len(len)?;
        Ok(file)
    }

    /// The stripe that holds page `seg`.
    pub(crate) fn stripe_of(&self, seg: u32) -> usize {
        seg as usize % self.stripes.len()
    }

    /// The memfd that holds page `seg`, created if no page of its stripe was allocated yet.
    pub(crate) fn file_for(&self, seg: u32) -> SysResult<&BackingFile> {
        let cell = &self.stripes[self.stripe_of(seg)];
        if let Some(file) = cell.get() {
            return Ok(file);
        }
        let file = Self::make(&self.name, self.stripe_of(seg), self.page_size, self.len)?;
        // Two threads creating the same stripe at once: one memfd wins, the other (which no
        // page was allocated in) is closed.
        let _ = cell.set(file);
        Ok(cell.get().expect("set just above"))
    }

    /// The memfd of page `seg` if its stripe exists (it does for every allocated page).
    pub(crate) fn existing_for(&self, seg: u32) -> Option<&BackingFile> {
        self.stripes[self.stripe_of(seg)].get()
    }

    /// The memfd holding the page at `file_offset` (pages sit at `seg * page_size`).
    pub(crate) fn existing_at(&self, file_offset: u64) -> Option<&BackingFile> {
        u32::try_from(file_offset / self.page_size)
            .ok()
            .and_then(|seg| self.existing_for(seg))
    }
}
