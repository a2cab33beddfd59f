//! The heap's undo journal for its element chain: what lets a heap be put back in order when a
//! process dies in the middle of changing it.
//!
//! A heap's truth is its element chain — the headers in address order, each with its size,
//! state, padding and links — and everything else in [`HeapState`](super::state::HeapState) (free
//! lists and their bitmaps, quick lists, counters, the last element) can be rebuilt from the
//! chain (see [`super::recovery`]). The chain itself cannot: a split, a merge or an unlink
//! rewrites words of two or three headers, and a process killed between those writes (or inside
//! one: a 64-byte header is several machine stores) leaves headers that contradict each other.
//!
//! So every change to the chain is a *step* that first notes each 8-byte word of a header it
//! will write, with the value the word holds, then writes. A header the step creates in free
//! memory is noted as *fresh*: undone, it is erased, since what the free memory held before
//! matters to nobody (and copying it would read memory the step is often the first to touch).
//! A step opened inside another joins it (an allocation's split and the trailer written after
//! it are one step). The count of noted words is the commit record: raised after the note it
//! covers and before the word is written, and cleared once the step's writes are done, each
//! behind a compiler fence so that neither the compiler nor the order of the stores can move
//! them (a process is stopped at an instruction boundary, and its earlier stores reach memory).
//! A process that takes the heap's lock over from a dead holder and finds a non-zero count
//! writes the noted words back, newest first: the chain is exactly as it was before the step.
//!
//! Words, not whole headers: a step notes values it has just read anyway, so the journal costs
//! a few stores per step rather than copies of every header touched.
//!
//! Changes that leave the chain consistent whichever of their stores landed are not journaled:
//! a busy element parked or unparked (one state byte; a parked element's trailer is written
//! before it turns busy), a busy or parked element turned free before it merges, the erasing of
//! a header nothing links to any more, and every change to the free and quick lists' links,
//! which the recovery rebuilds.

use std::sync::atomic::{compiler_fence, AtomicU32, Ordering};

use super::elem::{Elem, HEADER_LEN};
use crate::crash_point::crash_point;

/// Marks an entry of `addrs` as a header the step creates (headers are 64-byte aligned, words
/// 8-byte aligned).
const FRESH: u64 = 1;

/// Words one step notes at most: the resizing of a padded block in place, which absorbs a free
/// neighbour (its header's words noted whole, as it is erased inside the step) and splits a tail
/// off its own memory (the new header's words noted whole, as they held the block's data).
pub const JOURNAL_WORDS: usize = 32;

/// The journal as it sits in the heap's shared state. All zero: no step under way.
///
/// Plain `std` atomics, not the loom shim's: what they order is a thread's own stores against
/// its death, not one thread against another (the heap's lock does that).
#[repr(C)]
#[derive(Debug)]
pub struct ChainJournal {
    /// Words noted by the step under way: `olds[i]` is what the word at `addrs[i]` held
    /// before it began (or `addrs[i]` is a fresh header, marked [`FRESH`]). 0 when no step is
    /// under way, so the chain is whole.
    saved: AtomicU32,
    /// Steps opened and not yet closed, counting nested ones (meaningful only to the holder of
    /// the heap's lock).
    depth: u32,
    /// The heap's first element when the step began (a step may move it).
    first: u64,
    addrs: [u64; JOURNAL_WORDS],
    olds: [u64; JOURNAL_WORDS],
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

    /// Whether a step is open (a caller deciding what to note for work it may do after).
    #[inline(always)]
    pub fn nested(&self) -> bool {
        self.depth > 0
    }

    /// Notes the word at `addr` (8-byte aligned, in a header or trailer of the heap) before the
    /// step writes it.
    #[inline(always)]
    pub fn save_word(&mut self, addr: usize) {
        self.save_words(&[addr]);
    }

    /// Notes the words at `addrs` (as [`ChainJournal::save_word`]) under one raise of the count.
    #[inline(always)]
    pub fn save_words(&mut self, addrs: &[usize]) {
        let saved = self.saved.load(Ordering::Relaxed) as usize;
        assert!(
            saved + addrs.len() <= JOURNAL_WORDS,
            "a heap step notes at most {JOURNAL_WORDS} words"
        );
        for (i, &addr) in addrs.iter().enumerate() {
            // SAFETY: the caller's word lies in heap memory it is about to write under the
            // heap's lock (a header or trailer reached through the chain): mapped and aligned.
            let old = super::elem::bookkeeping(|| unsafe { (addr as *const u64).read() });
            crash_point();
            self.addrs[saved + i] = addr as u64;
            self.olds[saved + i] = old;
        }
        self.commit_notes(saved + addrs.len());
    }

    /// Notes all eight words of the header at `elem` (one the step erases, or writes over
    /// memory that held a block's data).
    #[inline]
    pub fn save_header(&mut self, elem: Elem) {
        let words: [usize; HEADER_LEN / 8] = std::array::from_fn(|i| elem.0 + 8 * i);
        self.save_words(&words);
    }

    /// Notes that the step writes a new header at `elem`, inside free memory that the elements
    /// before the step cover: undone, it is erased.
    #[inline(always)]
    pub fn save_fresh(&mut self, elem: Elem) {
        self.note(elem.addr() | FRESH, 0);
    }

    #[inline(always)]
    fn note(&mut self, addr: u64, old: u64) {
        let saved = self.saved.load(Ordering::Relaxed) as usize;
        assert!(
            saved < JOURNAL_WORDS,
            "a heap step notes at most {JOURNAL_WORDS} words"
        );
        crash_point();
        self.addrs[saved] = addr;
        self.olds[saved] = old;
        self.commit_notes(saved + 1);
    }

    /// Raises the count over notes written up to `saved`.
    #[inline(always)]
    fn commit_notes(&mut self, saved: usize) {
        crash_point();
        // The notes are complete before the count covers them, and covered before the words
        // are written.
        compiler_fence(Ordering::SeqCst);
        self.saved.store(saved as u32, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Closes the step opened by the [`ChainJournal::begin`] that returned `opened`: the chain
    /// is whole again, and the journal empty.
    #[inline(always)]
    pub fn end(&mut self, opened: bool) {
        self.depth -= 1;
        if opened {
            crash_point();
            compiler_fence(Ordering::SeqCst);
            self.saved.store(0, Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// Writes back the words a step of a dead process had noted, newest first (so a word noted
    /// twice ends with its oldest value), erasing the headers it created; returns how many
    /// notes, with what the heap's first element was, or `None` when no step was under way.
    /// The depth is reset either way: it was the dead process's.
    pub fn undo(&mut self) -> Option<(usize, u64)> {
        self.depth = 0;
        let saved = (self.saved.load(Ordering::Relaxed) as usize).min(JOURNAL_WORDS);
        if saved == 0 {
            return None;
        }
        for i in (0..saved).rev() {
            let addr = self.addrs[i];
            if addr & FRESH != 0 {
                Elem::zero_range((addr & !FRESH) as usize, HEADER_LEN);
            } else if addr != 0 {
                let old = self.olds[i];
                // SAFETY: the dead holder noted this word of a header or trailer of this heap
                // before writing it; the memory is still the heap's (steps never unmap) and this
                // process holds the heap's lock.
                super::elem::bookkeeping(|| unsafe { (addr as *mut u64).write(old) });
            }
        }
        compiler_fence(Ordering::SeqCst);
        self.saved.store(0, Ordering::Relaxed);
        Some((saved, self.first))
    }
}
