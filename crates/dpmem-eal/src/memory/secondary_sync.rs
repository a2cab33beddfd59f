//! A secondary catching up with the primary's memory hotplug.
//!
//! A secondary maps every page the primary had when it attached. In dynamic mode the primary
//! goes on mapping pages (a heap grows, a memzone needs room) and unmapping them (a heap gives
//! whole free pages back). As in DPDK, the primary then asks every live secondary over the
//! channel to do the same before the call returns (`cross_process.rs`); what each secondary
//! runs for it is the catch-up here. The primary counts its changes in the shared
//! configuration (`hotplug_generation`, bumped under the hotplug lock), and
//! [`Memory::sync_with_primary`] compares the count it last saw and, when it moved, re-reads
//! every list under the hotplug lock. A secondary the round missed (still starting, out of
//! the round, or it failed to follow a free) catches up lazily: the heap calls it under the heap's lock
//! (the primary grows and shrinks a heap only under that lock, so what is mapped here stays
//! right while a block is carved or freed), memzone lookup after finding the zone (whose pages
//! were mapped before it entered the table), and the application may call it:
//!
//! - a slot the primary uses that this process has not mapped is mapped from its file;
//! - a slot this process maps that the primary no longer uses is unmapped;
//! - a slot whose page the primary replaced (freed it, then mapped a new one there: with one
//!   file per page, a new file under the old name) is mapped again. Each page records which
//!   of the primary's maps put it there (`Memseg::map_seq`), and the secondary which one it
//!   mapped, so finding them costs memory reads, not a system call per page, while the
//!   primary waits for the hotplug lock.
//!
//! Memory event callbacks registered in the secondary hear of it as of the primary's own
//! changes: `Free` for each page about to be unmapped (or replaced), `Alloc` for each page
//! mapped. They run with the hotplug lock held, and — as DPDK asks of its memory event
//! callbacks — must not allocate or free heap memory or reserve, free or look up memzones:
//! the catch-up may have been started by such a call, whose heap or memzone lock is still
//! held, and the pages mapped so far are not all the heap may use. Walking memory and
//! translating addresses are fine (nested catch-ups are skipped, through a thread-local).
//!
//! With the round, a pointer handed over through a ring to a heap block the primary just
//! mapped is valid here at once. Without it — a map made from within one of the primary's own
//! channel actions, where the round cannot run — calling [`Memory::sync_with_primary`] after
//! receiving such a pointer (one atomic load when nothing changed) makes it safe.

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
    /// Per internal list, per slot: the `map_seq` of the page this process maps there, or
    /// `None` when it maps nothing.
    pub mapped: Vec<Vec<Option<u32>>>,
}

impl Memory {
    /// For a secondary process: maps the pages the primary mapped since this process last
    /// looked, unmaps those it gave back and remaps those it replaced, firing this process's
    /// memory event callbacks as the primary's own changes would; one atomic load when nothing
    /// changed. Nothing for a primary.
    ///
    /// The heap and memzone calls of a secondary do this themselves. Call it before touching
    /// memory learnt of by a raw pointer alone (an address passed through a ring, say) when
    /// the primary may have mapped it since this process's last such call.
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
        if now == self.synced_generation.load(Ordering::Acquire) || CatchingUp::active() {
            return Ok(());
        }
        self.catch_up_with_primary()
    }

    /// The work of [`Memory::sync_with_primary`] once the primary's count has moved.
    #[cold]
    #[inline(never)]
    fn catch_up_with_primary(&self) -> Result<(), EalError> {
        let header = self.config.header();
        // Re-entrant: a memory event callback or a walk, which run with this lock held, may ask
        // for a catch-up (it is then skipped: one is running or the view is current). The
        // catch-up changes only this process's own mappings and records, under its own
        // `secondary_view` lock.
        let _hotplug = header.hotplug_lock.lock_reentrant();
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
        // Callbacks fired below may call memzone or heap functions, which would catch up
        // again: they skip it instead of waiting for the locks held here.
        let _reentry = CatchingUp::enter();
        // A slot that fails does not hold the others back: every change that can be made is
        // made (a page whose file cannot be opened must not keep the secondary from mapping
        // the next one, nor keep a stale page mapped behind it), and the first failure is
        // returned. The generation then stays behind, so the next call retries what failed.
        let mut first_failure = None;
        for (list, slot, change) in self.plan_catch_up(&view) {
            if let Err(e) = self.apply(&mut view, list, slot, change) {
                first_failure.get_or_insert(e);
            }
        }
        if let Some(e) = first_failure {
            return Err(e);
        }
        view.generation = now;
        self.synced_generation.store(now, Ordering::Release);
        Ok(())
    }

    /// Brings one slot in line with the primary, announcing it as the primary's own changes
    /// are: `Free` just before a page goes (still mapped), `Alloc` once one is mapped. When a
    /// page cannot be mapped (or remapped) the slot is left unmapped and recorded so; when one
    /// cannot be unmapped it stays mapped and recorded (its `Free` announced again on the
    /// retry). Either way the next catch-up retries it.
    /// Hotplug lock held; the backing table is held only while the slot changes, never
    /// during a callback.
    fn apply(
        &self,
        view: &mut SecondaryView,
        list: usize,
        slot: u32,
        change: Change,
    ) -> Result<(), EalError> {
        let view_list = &self.lists[list];
        let h = *view_list.header();
        let index = h.index as usize;
        let va = view_list.slot_va(slot);
        let Some(mapped) = view.mapped.get_mut(index) else {
            return Ok(());
        };
        if change != Change::Map {
            self.fire(MemEvent::Free, va, h.page_size);
        }
        let mut backings = self.backings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(backing) = backings.get_mut(index) else {
            return Ok(());
        };
        if change == Change::Unmap {
            // SAFETY: the slot lies in this list's reservation, mapped by this process; the
            // primary no longer uses its page, so nothing may refer to it.
            unsafe { mapping::unmap_to_reserved(va as usize, h.page_size as usize) }
                .map_err(|e| EalError::sys("unmap page the primary freed", e))?;
            // Dropping the file releases this process's hold on the page.
            drop(backing.take_file(slot));
            mapped[slot as usize] = None;
            return Ok(());
        }
        let seg = view_list.segment(slot);
        let file = match backing {
            ListBacking::FilePerPage { dir, .. } => {
                let path = page_file_path(dir, &self.settings.file_prefix, h.index, slot);
                match open_page(&path) {
                    Ok(file) => Some(file),
                    Err(e) => {
                        if change == Change::Replace {
                            // Its Free is announced: the stale page must not stay mapped
                            // and recorded as current. Back to reserved, recorded unmapped,
                            // so the next catch-up maps the new page.
                            // SAFETY: the slot is in this list's reservation, mapped by this
                            // process; the primary replaced its page, so nothing may refer
                            // to the stale one.
                            unsafe {
                                mapping::unmap_to_reserved(va as usize, h.page_size as usize)
                            }
                            // Still mapped: keep it recorded current, so the next catch-up
                            // tries the replace again rather than mapping over a page it
                            // cannot open.
                            .map_err(|e| EalError::sys("unmap page the primary replaced", e))?;
                            drop(backing.take_file(slot));
                            mapped[slot as usize] = None;
                        }
                        return Err(e);
                    }
                }
            }
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
        // SAFETY: the slot is in this list's reservation; whatever this process has there
        // (nothing, reserved address space, or the stale page the primary replaced) is no
        // longer used and the fixed mapping takes its place in one step; the primary's page
        // is behind it in the file.
        if let Err(e) = unsafe { map_at(mapped_file, seg.file_offset, seg.va, seg.len) } {
            // A failed fixed mapping may have left anything there: back to reserved, and
            // recorded unmapped so that the next catch-up maps it.
            // SAFETY: as above; the primary's page is not reachable here either way.
            let _ = unsafe { mapping::unmap_to_reserved(va as usize, h.page_size as usize) };
            drop(backing.take_file(slot));
            mapped[slot as usize] = None;
            return Err(e);
        }
        // A replaced page's old file is dropped here, releasing the old page.
        if let ListBacking::FilePerPage { files, .. } = &mut *backing {
            files[slot as usize] = file;
        }
        mapped[slot as usize] = Some(seg.map_seq);
        drop(backings);
        self.fire(MemEvent::Alloc, seg.va, seg.len);
        Ok(())
    }

    /// What catching up must do: every slot whose state here differs from the primary's.
    /// Memory reads only (the lists and this process's record), no system calls: the hotplug
    /// lock is held, and the primary waits for it. Hotplug lock held.
    fn plan_catch_up(&self, view: &SecondaryView) -> Vec<(usize, u32, Change)> {
        let mut plan = Vec::new();
        for (pos, list) in self.lists.iter().enumerate() {
            let h = *list.header();
            let Some(mapped) = view.mapped.get(h.index as usize) else {
                continue;
            };
            let start = plan.len();
            // The primary's used slots a word of the occupancy array at a time, and this
            // process's mapped ones from its own record: a list has thousands of slots, a
            // handful of them in use, and a catch-up runs on every page mapped anywhere.
            for slot in list.occupancy.iter_used().filter(|&s| s < h.n_segs) {
                let change = match mapped[slot as usize] {
                    None => Some(Change::Map),
                    // Mapped here by another of the primary's maps: the page was replaced.
                    Some(seq) => (list.segment(slot).map_seq != seq).then_some(Change::Replace),
                };
                if let Some(change) = change {
                    plan.push((pos, slot, change));
                }
            }
            for (slot, _) in mapped.iter().enumerate().filter(|(_, seq)| seq.is_some()) {
                let slot = slot as u32;
                if slot < h.n_segs && !list.occupancy.is_used(slot).unwrap_or(false) {
                    plan.push((pos, slot, Change::Unmap));
                }
            }
            // In slot order, as the lists are walked.
            plan[start..].sort_by_key(|&(_, slot, _)| slot);
        }
        plan
    }
}

thread_local! {
    /// Set while this thread catches up (and runs the memory event callbacks it fires).
    static CATCHING_UP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as catching up for as long as it lives.
struct CatchingUp;

impl CatchingUp {
    fn enter() -> CatchingUp {
        CATCHING_UP.with(|c| c.set(true));
        CatchingUp
    }

    fn active() -> bool {
        CATCHING_UP.with(std::cell::Cell::get)
    }
}

impl Drop for CatchingUp {
    fn drop(&mut self) {
        CATCHING_UP.with(|c| c.set(false));
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
