//! A secondary catching up with the primary's memory hotplug.
//!
//! A secondary maps every page the primary had when it attached. In dynamic mode the primary
//! goes on mapping pages (a heap grows, a memzone needs room) and unmapping them (a heap gives
//! whole free pages back). DPDK has the primary ask every secondary over its IPC channel to do
//! the same before the allocation returns. dpmem's secondaries catch up instead: the primary
//! counts its changes in the shared configuration (`hotplug_generation`, bumped under the
//! hotplug lock), and [`Memory::sync_with_primary`] — called by the heap and memzone entry
//! points of a secondary, or by the application — compares the count it last saw and, when it
//! moved, re-reads every list under the hotplug lock:
//!
//! - a slot the primary uses that this process has not mapped is mapped from its file;
//! - a slot this process maps that the primary no longer uses is unmapped;
//! - with one file per page, a slot whose file was replaced (the primary freed the page,
//!   unlinked its file, and later made a new one under the same name) is mapped again from the
//!   new file. With one file per list the mapping needs nothing: freeing punches the page out
//!   of the file, which unmaps it everywhere, and the next access finds the new one.
//!
//! Memory event callbacks registered in the secondary hear of it as of the primary's own
//! changes: `Free` for each page about to be unmapped (or replaced), `Alloc` for each page
//! mapped.
//!
//! What a secondary must not do is touch memory the primary mapped since the last catch-up
//! before calling any of those entry points: a pointer handed over through a ring to a heap
//! block the primary just mapped is such a case. Calling [`Memory::sync_with_primary`] after
//! receiving it (one atomic load when nothing changed) makes it safe.

use std::sync::atomic::Ordering;

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::mapping;

use super::backing::{page_file_path, ListBacking};
use super::{MemEvent, Memory, ProcessRole};
use crate::error::EalError;

/// What a secondary has mapped of the primary's lists, and as of which hotplug count.
#[derive(Debug, Default)]
pub(crate) struct SecondaryView {
    /// The primary's `hotplug_generation` when this process last matched its lists.
    pub generation: u64,
    /// Per internal list, per slot: mapped in this process.
    pub mapped: Vec<Vec<bool>>,
}

impl Memory {
    /// For a secondary process: maps the pages the primary mapped since this process last
    /// looked and unmaps those it gave back (see the [module documentation](self)); one
    /// atomic load when nothing changed. Nothing for a primary.
    #[inline]
    pub fn sync_with_primary(&self) -> Result<(), EalError> {
        if self.settings.role != ProcessRole::Secondary {
            return Ok(());
        }
        let now = self
            .config
            .header()
            .hotplug_generation
            .load(Ordering::Acquire);
        if now == self.synced_generation.load(Ordering::Acquire) {
            return Ok(());
        }
        self.catch_up_with_primary()
    }

    /// The work of [`Memory::sync_with_primary`] once the primary's count has moved.
    #[cold]
    #[inline(never)]
    fn catch_up_with_primary(&self) -> Result<(), EalError> {
        let header = self.config.header();
        let _hotplug = header.hotplug_lock.lock();
        let mut view = self
            .secondary_view
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Stable while the lock is held: the primary bumps it under the same lock.
        let now = header.hotplug_generation.load(Ordering::Acquire);
        if view.generation == now {
            self.synced_generation.store(now, Ordering::Release);
            return Ok(());
        }
        let plan = self.plan_catch_up(&view)?;
        // Pages about to go are announced while still mapped, as the primary's frees are.
        for &(list, slot, change) in &plan {
            if change != Change::Map {
                let h = *self.lists[list].header();
                self.fire(MemEvent::Free, self.lists[list].slot_va(slot), h.page_size);
            }
        }
        let mut arrived = Vec::new();
        {
            let mut backings = self.backings.lock().unwrap_or_else(|p| p.into_inner());
            for &(list, slot, change) in &plan {
                let view_list = &self.lists[list];
                let h = *view_list.header();
                let index = h.index as usize;
                let (Some(backing), Some(mapped)) =
                    (backings.get_mut(index), view.mapped.get_mut(index))
                else {
                    continue;
                };
                if change == Change::Unmap {
                    let va = view_list.slot_va(slot);
                    // SAFETY: the slot lies in this list's reservation, mapped by this
                    // process; the primary no longer uses it, so nothing may refer to it.
                    unsafe { mapping::unmap_to_reserved(va as usize, h.page_size as usize) }
                        .map_err(|e| EalError::sys("unmap page the primary freed", e))?;
                    // Dropping the file releases this process's hold on the page.
                    drop(backing.take_file(slot));
                    mapped[slot as usize] = false;
                    continue;
                }
                let seg = view_list.segment(slot);
                let file = match backing {
                    ListBacking::FilePerPage { dir, .. } => Some(open_page(&page_file_path(
                        dir,
                        &self.settings.file_prefix,
                        h.index,
                        slot,
                    ))?),
                    _ => None,
                };
                let mapped_file = match (&file, &*backing) {
                    (Some(file), _) => file,
                    (None, ListBacking::SingleFile { file, .. }) => file,
                    (None, _) => {
                        return Err(EalError::Secondary(format!(
                            "memseg list {} has no file a secondary can map",
                            h.index
                        )))
                    }
                };
                // SAFETY: the slot is in this list's reservation; this process either has
                // nothing there or a stale page the primary replaced, which this mapping
                // covers; the primary's page is behind it in the file.
                unsafe { map_at(mapped_file, seg.file_offset, seg.va, seg.len) }?;
                // A replaced page's old file is dropped here, releasing the old page.
                if let (ListBacking::FilePerPage { files, .. }, Some(file)) = (&mut *backing, file)
                {
                    files[slot as usize] = Some(file);
                }
                mapped[slot as usize] = true;
                arrived.push((seg.va, seg.len));
            }
        }
        for (va, len) in arrived {
            self.fire(MemEvent::Alloc, va, len);
        }
        view.generation = now;
        self.synced_generation.store(now, Ordering::Release);
        Ok(())
    }

    /// What catching up must do: every slot whose state here differs from the primary's.
    /// Hotplug lock held.
    fn plan_catch_up(&self, view: &SecondaryView) -> Result<Vec<(usize, u32, Change)>, EalError> {
        let backings = self.backings.lock().unwrap_or_else(|p| p.into_inner());
        let mut plan = Vec::new();
        for (pos, list) in self.lists.iter().enumerate() {
            let h = *list.header();
            let index = h.index as usize;
            let (Some(backing), Some(mapped)) = (backings.get(index), view.mapped.get(index))
            else {
                continue;
            };
            for slot in 0..h.n_segs {
                let used = list.occupancy.is_used(slot).unwrap_or(false);
                let change = match (used, mapped[slot as usize]) {
                    (false, false) => None,
                    (false, true) => Some(Change::Unmap),
                    (true, false) => Some(Change::Map),
                    (true, true) => match backing {
                        ListBacking::FilePerPage { dir, files } => {
                            let path =
                                page_file_path(dir, &self.settings.file_prefix, h.index, slot);
                            let current = match &files[slot as usize] {
                                Some(file) => file
                                    .is_at(&path)
                                    .map_err(|e| EalError::sys("check page file", e))?,
                                None => false,
                            };
                            (!current).then_some(Change::Replace)
                        }
                        _ => None,
                    },
                };
                if let Some(change) = change {
                    plan.push((pos, slot, change));
                }
            }
        }
        Ok(plan)
    }
}

/// What catching up does to one slot of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// The primary uses it, this process has not mapped it.
    Map,
    /// This process maps it, the primary freed it.
    Unmap,
    /// Both use it, but the primary's page file is a new one (one file per page).
    Replace,
}

/// Opens a page file of the primary and takes a shared lock on it, as attach does, so the
/// primary's clean-up of a dead run's files leaves it alone while this process maps it.
fn open_page(path: &std::path::Path) -> Result<BackingFile, EalError> {
    let file =
        BackingFile::open_existing(path).map_err(|e| EalError::sys("open primary page file", e))?;
    file.lock_shared()
        .map_err(|e| EalError::sys("lock page file", e))?;
    Ok(file)
}

/// Maps `len` bytes of `file` from `offset` at `va`, over whatever this process had there.
///
/// # Safety
/// `[va, va+len)` lies in a reservation of this process that nothing else of it uses.
unsafe fn map_at(file: &BackingFile, offset: u64, va: u64, len: u64) -> Result<(), EalError> {
    // SAFETY: the caller's contract.
    unsafe { mapping::map_file_fixed(file.fd(), offset, va as usize, len as usize, true) }
        .map_err(|e| EalError::sys("map primary page", e))
}
