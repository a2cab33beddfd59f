//! Putting a heap back in order after a process died holding its lock (the `recover` of
//! [`SharedLocked::lock`](crate::sync::SharedLocked::lock) for heaps).
//!
//! What a holder killed at any instruction can leave, and what becomes of it:
//!
//! - *A change to the element chain half done* (a split, a merge, an unlink, memory being added,
//!   a block being carved or resized, a padded block being freed): undone from the chain journal
//!   ([`super::chain_journal`]), which puts every header the change had touched back as it was.
//! - *The heap's derived state half updated* — free lists and their bitmaps, quick lists and
//!   their counts, the element and byte counters, the last element: all rebuilt from the chain.
//!   Parked blocks become free and merge with their free neighbours, as a consolidation would
//!   have merged them; free neighbours that were not merged yet merge.
//! - *A freed block's bytes half cleared*: every free element is marked dirty, so a zeroing
//!   allocation clears what it hands out from there (memory that was clean costs a clear once).
//! - *Blocks the dead process had allocated*: they stay allocated. Nobody else knows their
//!   addresses, so they are leaked, as a dead DPDK secondary's are.
//! - *Pages mapped for a growth not yet added to the heap, or taken out of it and not yet
//!   unmapped*: they stay mapped outside the heap (only the primary changes pages; the next
//!   primary on the prefix starts from nothing).
//!
//! The repaired heap must then pass the whole consistency check ([`super::check`]); a chain that
//! is broken in a way no half-done step explains (a header overwritten, a size that runs into the
//! next element) fails it, and the heap is given up: its lock is retired and every later
//! operation on it fails naming the dead process.

use std::fmt;

use super::check::check_heap;
use super::elem::{elem_flags, Elem, ElemHeader, ElemState, CACHE_LINE, HEADER_LEN};
use super::malloc_heap::HeapOps;
use super::state::{heap_addr, HeapState, SharedHeap};
use crate::error::EalError;
use crate::memory::Memory;
use crate::shared_name::decode_str;
use crate::socket::EXTERNAL_SOCKET_BASE;
use crate::sync::{Repair, SharedLockedGuard};

/// Locks heap `shared`, putting it back in order first when a process died holding the lock;
/// the error of a heap given up names the dead process.
#[inline]
pub(crate) fn lock_heap<'h>(
    memory: &Memory,
    shared: &'h SharedHeap,
) -> Result<SharedLockedGuard<'h, HeapState>, EalError> {
    shared
        .lock(|st, dead_pid| recover_heap(st, heap_addr(shared), memory, dead_pid))
        .map_err(|died| {
            let heaps = &memory.shared().heaps;
            let slot = heaps
                .iter()
                .position(|h| std::ptr::eq(h, shared))
                .unwrap_or(0);
            EalError::owner_died(format!("malloc heap {slot}"), died)
        })
}

/// What a recovery found and did, for the message it prints.
#[derive(Debug, Default)]
struct Findings {
    /// Headers written back from the journal.
    undone: usize,
    /// Parked blocks turned free.
    unparked: u64,
    /// Free elements merged into the one before them.
    merged: u64,
    /// Elements left, and of them busy (the dead process's among them).
    elements: u64,
    busy: u64,
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.undone > 0 {
            write!(
                f,
                "a half-done change to {} element headers undone; ",
                self.undone
            )?;
        } else {
            write!(f, "no change to the element chain was under way; ")?;
        }
        write!(
            f,
            "{} parked blocks freed, {} free elements merged, free lists, quick lists and counts rebuilt from {} elements ({} busy); check passed",
            self.unparked, self.merged, self.elements, self.busy
        )
    }
}

/// Repairs heap `st` (whose shared slot is at `addr`) after its lock was taken over from dead
/// process `dead_pid`.
fn recover_heap(st: &mut HeapState, addr: u64, memory: &Memory, dead_pid: u32) -> Repair {
    let what = if st.in_use == 0 {
        "an unused malloc heap slot".to_owned()
    } else {
        format!("malloc heap {:?}", decode_str(&st.name))
    };
    let outcome = repair(st, addr, memory)
        .map(|findings| findings.to_string())
        .map_err(|reason| format!("{reason} (after process {dead_pid} died changing it)"));
    Repair { what, outcome }
}

fn repair(st: &mut HeapState, addr: u64, memory: &Memory) -> Result<Findings, String> {
    let mut findings = Findings::default();
    // The element headers lie in memory the primary may have mapped since this process last
    // caught up (a secondary), or in an external heap's memory, which this process must have
    // attached to read.
    memory
        .sync_with_primary()
        .map_err(|e| format!("its pages cannot be mapped here to walk it: {e}"))?;
    if st.in_use != 0 && st.socket_id >= EXTERNAL_SOCKET_BASE && {
        let _hotplug = memory.shared().hotplug_lock.lock_reentrant();
        memory.unattached_heap_memory(st.socket_id).is_some()
    } {
        return Err(
            "its memory is not all attached in the process that took the lock over".to_owned(),
        );
    }
    if let Some((undone, first)) = st.journal.undo() {
        findings.undone = undone;
        st.first = first;
    }
    let chain = walk_chain(st, addr, memory)?;
    let mut ops = HeapOps { st, addr, memory };
    // Parked and free elements alike become free and dirty, off every list.
    for (elem, h) in &chain {
        match h.state() {
            Some(ElemState::Parked) | Some(ElemState::Free) => {
                findings.unparked += u64::from(h.state() == Some(ElemState::Parked));
                elem.update(|e| {
                    e.state = ElemState::Free as u8;
                    e.flags |= elem_flags::DIRTY;
                    e.free_prev = 0;
                    e.free_next = 0;
                });
            }
            _ => {}
        }
    }
    // Adjacent free elements merge, each into the run's first.
    let mut run: Option<Elem> = None;
    for (elem, _) in &chain {
        let h = elem.load();
        if !h.is_free() {
            run = None;
            continue;
        }
        match run {
            Some(r) if HeapOps::adjacent_headers(r, &r.load(), *elem, &h) => {
                ops.join(r, *elem);
                findings.merged += 1;
            }
            _ => run = Some(*elem),
        }
    }
    rebuild_derived(ops.st, &mut findings);
    check_heap(ops.st, addr, memory).map_err(|reason| format!("still inconsistent: {reason}"))?;
    Ok(findings)
}

/// The chain from the heap's first element, each header checked as far as a walk needs before
/// it can trust the next link: mapped, marked as this heap's, linked back to the one before,
/// after the end of the one before (so the walk ends), a size and state an element can have,
/// and a busy element's pad header in place (its copy of the size is rewritten: a resize may
/// have stopped between the two).
fn walk_chain(
    st: &HeapState,
    addr: u64,
    memory: &Memory,
) -> Result<Vec<(Elem, ElemHeader)>, String> {
    let mut chain: Vec<(Elem, ElemHeader)> = Vec::new();
    let mut cur = Elem::from_addr(st.first);
    while let Some(e) = cur {
        let before = chain.last().map(|(p, ph)| (*p, *ph));
        if !e.0.is_multiple_of(CACHE_LINE) || memory.page_at(e.0).is_none() {
            return Err(format!("element link {:#x} leads outside its memory", e.0));
        }
        if let Some((p, ph)) = before {
            if p.0 + ph.size as usize > e.0 {
                return Err(format!("element {:#x} overlaps the one before", e.0));
            }
        }
        let h = e.load();
        if h.magic != e.expected_magic() || h.heap != addr {
            return Err(format!(
                "element {:#x}: header not marked as this heap's",
                e.0
            ));
        }
        if h.prev != before.map_or(0, |(p, _)| p.addr()) {
            return Err(format!(
                "element {:#x}: prev link {:#x} is wrong",
                e.0, h.prev
            ));
        }
        if h.size < (HEADER_LEN + CACHE_LINE) as u64 || !h.size.is_multiple_of(CACHE_LINE as u64) {
            return Err(format!("element {:#x}: bad size {}", e.0, h.size));
        }
        match h.state() {
            Some(ElemState::Free | ElemState::Parked) => {}
            Some(ElemState::Busy) if h.pad == 0 => {}
            Some(ElemState::Busy) => {
                let pad = Elem(e.0 + h.pad as usize);
                let ph = pad.load();
                if h.pad as u64 >= h.size
                    || !(h.pad as usize).is_multiple_of(CACHE_LINE)
                    || ph.magic != pad.expected_magic()
                    || ph.state() != Some(ElemState::Pad)
                    || ph.pad != h.pad
                {
                    return Err(format!("busy element {:#x}: bad pad header", e.0));
                }
                pad.update(|p| p.size = h.size - u64::from(h.pad));
            }
            _ => {
                return Err(format!(
                    "element {:#x}: state {} in the element links",
                    e.0, h.state
                ))
            }
        }
        chain.push((e, h));
        cur = Elem::from_addr(h.next);
    }
    Ok(chain)
}

/// Rebuilds everything in the heap's state that the chain determines: the free lists (every free
/// element on the list of its size), the quick lists (empty: nothing is parked any more), the
/// counters and the last element.
fn rebuild_derived(st: &mut HeapState, findings: &mut Findings) {
    st.free.clear();
    st.quick.clear();
    let (mut total, mut releasable, mut busy, mut elements) = (0u64, 0u64, 0u64, 0u64);
    let mut last = 0;
    let mut cur = Elem::from_addr(st.first);
    while let Some(e) = cur {
        let h = e.load();
        elements += 1;
        total += h.size;
        if h.flags & elem_flags::RELEASABLE != 0 {
            releasable += h.size;
        }
        if h.state() == Some(ElemState::Busy) {
            busy += 1;
        } else {
            st.free.insert(e);
        }
        last = e.addr();
        cur = Elem::from_addr(h.next);
    }
    st.last = last;
    st.total_bytes = total;
    st.releasable_bytes = releasable;
    st.alloc_count = busy;
    findings.elements = elements;
    findings.busy = busy;
}
