//! The heap's undo journal for its element chain: what lets a heap be put back in order when a
//! process dies in the middle of changing it.
//!
//! A heap's truth is its element chain — the headers in address order, each with its size,
//! state, padding and links — and everything else in [`HeapState`](super::state::HeapState) (free
//! lists and their bitmaps, quick lists, counters, the last element) can be rebuilt from the
//! chain (see [`super::recovery`]). The chain itself cannot: a split, a merge or an unlink
//! rewrites two or three headers, and a process killed between those writes (or inside one: a
//! 64-byte header is several machine stores) leaves headers that contradict each other.
//!
//! So every change to the chain is a *step* that first copies each header it will write into
//! the journal, then writes. A step opened inside another joins it (an allocation's split and
//! the trailer written after it are one step). The count of saved headers is the commit
//! record: written after the copy it covers and before the header it guards is touched, and
//! cleared once the step's writes are done, each with a compiler fence so that neither the
//! compiler nor the order of the stores can reorder them (a process is stopped at an
//! instruction boundary, and its earlier stores reach memory). A process that takes the heap's
//! lock over from a dead holder and finds a non-zero count writes the saved headers back: the
//! chain is exactly as it was before the step began.
//!
//! Changes that leave the chain consistent whichever of their stores landed are not journaled:
//! a busy element parked or unparked (one state byte; a parked element's trailer is written
//! before it turns busy), a busy or parked element turned free before it merges, and every
//! change to the free and quick lists' links, which the recovery rebuilds.

use std::sync::atomic::{compiler_fence, AtomicU32, Ordering};

use super::elem::{Elem, ElemHeader};

/// Headers one step saves at most: the resizing of a padded block in place (the block, its pad
/// header, the free neighbour it absorbs, that one's successor, and the tail split off).
pub const JOURNAL_CAPACITY: usize = 6;

/// The journal as it sits in the heap's shared state. All zero: no step under way.
///
/// Plain `std` atomics, not the loom shim's: what they order is a thread's own stores against
/// its death, not one thread against another (the heap's lock does that).
#[repr(C)]
#[derive(Debug, Default)]
pub struct ChainJournal {
    /// Headers saved by the step under way: `images[..saved]` hold the headers at
    /// `addrs[..saved]` as they were before it began. 0 when no step is under way, so the chain
    /// is whole.
    saved: AtomicU32,
    /// Steps opened and not yet closed, counting nested ones (meaningful only to the holder of
    /// the heap's lock).
    depth: u32,
    /// The heap's first element when the step began (a step may move it).
    first: u64,
    addrs: [u64; JOURNAL_CAPACITY],
    images: [ElemHeader; JOURNAL_CAPACITY],
}

impl ChainJournal {
    /// Opens a step (the heap's first element is `first`), or joins the step under way;
    /// returns whether it opened one (the caller then closes it with [`ChainJournal::end`]).
    #[inline(always)]
    pub fn begin(&mut self, first: u64) -> bool {
        self.depth += 1;
        if self.depth > 1 {
            return false;
        }
        self.first = first;
        true
    }

    /// Saves the header at `elem` into the step under way before it is written (once per step:
    /// a second save of the same header keeps the first image, the one from before the step).
    #[inline(always)]
    pub fn save(&mut self, elem: Elem) {
        let saved = self.saved.load(Ordering::Relaxed) as usize;
        if self.addrs[..saved].contains(&elem.addr()) {
            return;
        }
        assert!(
            saved < JOURNAL_CAPACITY,
            "a heap step saves at most {JOURNAL_CAPACITY} headers"
        );
        self.images[saved] = elem.load();
        self.addrs[saved] = elem.addr();
        // The image is complete before the count covers it, and the count covers it before
        // the header is written.
        compiler_fence(Ordering::SeqCst);
        self.saved.store(saved as u32 + 1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Closes the step opened by the [`ChainJournal::begin`] that returned `opened`: the chain
    /// is whole again, and the journal empty.
    #[inline(always)]
    pub fn end(&mut self, opened: bool) {
        self.depth -= 1;
        if opened {
            compiler_fence(Ordering::SeqCst);
            self.saved.store(0, Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// Writes back the headers a step of a dead process had saved and returns how many, with
    /// what the heap's first element was; `None` when no step was under way. The depth is
    /// reset either way: it was the dead process's.
    pub fn undo(&mut self) -> Option<(usize, u64)> {
        self.depth = 0;
        let saved = (self.saved.load(Ordering::Relaxed) as usize).min(JOURNAL_CAPACITY);
        if saved == 0 {
            return None;
        }
        // Newest first, though a step saves each header once: the order does not matter.
        for i in (0..saved).rev() {
            if let Some(elem) = Elem::from_addr(self.addrs[i]) {
                elem.store(self.images[i]);
            }
        }
        compiler_fence(Ordering::SeqCst);
        self.saved.store(0, Ordering::Relaxed);
        Some((saved, self.first))
    }
}
