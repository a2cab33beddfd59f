//! Where legacy start-up keeps its pages mapped while it learns their physical addresses.
//!
//! Legacy mode places pages in physical order, known only once every page is allocated and
//! mapped somewhere. Once the page workers are done, each page is mapped at its own slot of a
//! staging window and its address read there; placement then moves it, page tables and all, to
//! its list slot (`mremap`). Each page is thus mapped once and never unmapped, where mapping it
//! briefly to learn its address, unmapping it and mapping it again at its slot took three
//! address-space changes. A moved page leaves a hole in the window that is no longer this
//! window's to release: dropping the window releases only the slots that still hold a staged
//! page or the reservation. A page that was never staged (nothing to learn: IOVA as VA, no NUMA
//! check) is mapped straight at its slot.

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::error::Errno;
use dpmem_sys::mapping;
use dpmem_sys::SysResult;

use crate::error::EalError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Still the inaccessible reservation.
    Reserved,
    /// Holds a page mapped by [`StagingWindow::stage`].
    Staged,
    /// Its page moved out: a hole, not this window's any more.
    Moved,
}

#[derive(Debug)]
pub(crate) struct StagingWindow {
    base: usize,
    page_size: usize,
    slots: Vec<Slot>,
}

impl StagingWindow {
    /// Reserves room for `slots` pages of `page_size` bytes, aligned to the page size.
    pub(crate) fn reserve(page_size: u64, slots: usize) -> Result<Self, EalError> {
        let page_size = page_size as usize;
        let base = mapping::reserve(slots.max(1) * page_size, page_size, None)
            .map_err(|e| EalError::sys("reserve address space for legacy pages", e))?;
        Ok(Self {
            base,
            page_size,
            slots: vec![Slot::Reserved; slots.max(1)],
        })
    }

    /// Maps `file`'s page (at offset 0) at slot `slot`, populated, and returns its address.
    pub(crate) fn stage(&mut self, slot: usize, file: &BackingFile) -> SysResult<usize> {
        assert_eq!(
            self.slots[slot],
            Slot::Reserved,
            "staging slot {slot} reused"
        );
        let va = self.base + slot * self.page_size;
        // SAFETY: `va` is a slot of this window's own reservation still reserved (checked
        // above), so it holds nothing in use.
        unsafe { mapping::map_file_fixed(file.fd(), 0, va, self.page_size, true) }?;
        self.slots[slot] = Slot::Staged;
        Ok(va)
    }

    /// Puts the page of `slot` at `to`: moves it there when staged, else maps `file` there. A
    /// kernel that cannot move hugetlb mappings (before 5.16) gets `file` mapped at `to` too,
    /// and the staged mapping is released with the window.
    ///
    /// # Safety
    /// `to..to+page_size` must be a free slot of a reservation the caller owns, and nothing may
    /// use the staged address of this page afterwards.
    pub(crate) unsafe fn place(
        &mut self,
        slot: usize,
        file: &BackingFile,
        to: usize,
    ) -> SysResult<()> {
        if self.slots[slot] == Slot::Staged {
            let from = self.base + slot * self.page_size;
            // SAFETY: `from` holds this window's staged page, `to` is the caller's free slot.
            match unsafe { mapping::move_fixed(from, to, self.page_size) } {
                Ok(()) => {
                    self.slots[slot] = Slot::Moved;
                    return Ok(());
                }
                Err(e) if e.errno != Errno::INVAL => return Err(e),
                Err(_) => {}
            }
        }
        assert_ne!(
            self.slots[slot],
            Slot::Moved,
            "staged page {slot} placed twice"
        );
        // SAFETY: `to` is the caller's free slot (see above).
        unsafe { mapping::map_file_fixed(file.fd(), 0, to, self.page_size, true) }
    }
}

impl Drop for StagingWindow {
    fn drop(&mut self) {
        // Release each run of slots not moved out, as one range.
        let mut slot = 0;
        while slot < self.slots.len() {
            if self.slots[slot] == Slot::Moved {
                slot += 1;
                continue;
            }
            let start = slot;
            while slot < self.slots.len() && self.slots[slot] != Slot::Moved {
                slot += 1;
            }
            // SAFETY: slots `start..slot` are still this window's (reserved or staged), and each
            // staged page in them was either mapped again at its list slot or is being given
            // up: nothing uses these addresses.
            let _ = unsafe {
                mapping::release(
                    self.base + start * self.page_size,
                    (slot - start) * self.page_size,
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn page_file(name: &str, byte: u8) -> BackingFile {
        let file = BackingFile::memfd_small_pages(name).unwrap();
        file.set_len(PAGE).unwrap();
        let mut content = vec![0u8; PAGE as usize];
        content[0] = byte;
        rustix::io::pwrite(file.fd(), &content, 0).unwrap();
        file
    }

    /// Lines of this process's maps that show a mapping of the memfd named `name`.
    fn mappings_of(name: &str) -> Vec<String> {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!("/memfd:{name} ")))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn placed_pages_keep_their_contents_and_the_window_keeps_nothing() {
        let names = ["dpmem-staging-a", "dpmem-staging-b", "dpmem-staging-c"];
        let files: Vec<_> = names
            .iter()
            .zip([0xA1, 0xB2, 0xC3])
            .map(|(n, b)| page_file(n, b))
            .collect();
        let dest = mapping::reserve(3 * PAGE as usize, PAGE as usize, None).unwrap();
        let mut window = StagingWindow::reserve(PAGE, 3).unwrap();
        let staged_a = window.stage(0, &files[0]).unwrap();
        window.stage(1, &files[1]).unwrap();
        // SAFETY: `staged_a` was mapped read-write just above.
        assert_eq!(unsafe { *(staged_a as *const u8) }, 0xA1);
        // Page a moves to the last destination slot; page c was never staged.
        let (slot_a, slot_c) = (dest + 2 * PAGE as usize, dest);
        // SAFETY: `slot_a` is a free slot of this test's own reservation.
        unsafe { window.place(0, &files[0], slot_a) }.unwrap();
        // SAFETY: `slot_c` is another free slot of it.
        unsafe { window.place(2, &files[2], slot_c) }.unwrap();
        assert!(mappings_of(names[0])
            .iter()
            .all(|l| l.starts_with(&format!("{:x}-", dest + 2 * PAGE as usize))));
        drop(window);
        assert!(mappings_of(names[1]).is_empty(), "page b stayed staged");
        assert_eq!(mappings_of(names[0]).len(), 1);
        // SAFETY: `place` mapped page a read-write at `slot_a`.
        assert_eq!(unsafe { *(slot_a as *const u8) }, 0xA1);
        // SAFETY: and page c at `slot_c`.
        assert_eq!(unsafe { *(slot_c as *const u8) }, 0xC3);
        // SAFETY: the destination reservation and what is mapped in it are this test's own.
        unsafe { mapping::release(dest, 3 * PAGE as usize).unwrap() };
    }
}
