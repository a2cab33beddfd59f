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
use crate::sync::{OwnerDied, Repair, SharedLockedGuard};

/// Locks heap `shared`, putting it back in order first when a process died holding the lock;
/// the error of a heap given up names the dead process ([`HeapUnusable`] becomes
/// [`EalError::OwnerDied`] through `?`). Inlined whole, with an error of three words: the guard
/// then stays in registers on the path every allocation takes.
#[inline(always)]
pub(crate) fn lock_heap<'h>(
    memory: &Memory,
    shared: &'h SharedHeap,
) -> Result<SharedLockedGuard<'h, HeapState>, HeapUnusable> {
    shared
        .lock(|st, dead_pid| recover_heap(st, heap_addr(shared), memory, dead_pid))
        .map_err(|died| HeapUnusable {
            addr: heap_addr(shared),
            died,
        })
}

/// A heap given up after a process died holding its lock.
#[derive(Debug)]
pub(crate) struct HeapUnusable {
    /// The heap's address in the shared configuration.
    addr: u64,
    died: OwnerDied,
}

impl From<HeapUnusable> for EalError {
    #[cold]
    fn from(e: HeapUnusable) -> EalError {
        EalError::owner_died(format!("the malloc heap at {:#x}", e.addr), e.died)
    }
}

/// What a recovery found and did, for the message it prints.
#[derive(Debug, Default)]
struct Findings {
    /// Header words written back from the journal (or fresh headers erased).
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
                "a half-done change to the element chain undone ({} header words written back); ",
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

#[cfg(test)]
pub(crate) mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::ptr::NonNull;

    use dpmem_sys::process_token::ProcessToken;

    use crate::crash_point;
    use crate::{lock_recovery, Eal, Socket};

    /// The token of a process that has ended and been reaped.
    pub(crate) fn dead_token() -> ProcessToken {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep(1) runs");
        let token = ProcessToken::of_pid(child.id()).expect("the child exists");
        child.kill().unwrap();
        child.wait().unwrap();
        token
    }

    /// A small xorshift generator: the operations and the crash points, reproducible.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Runs `op` with a crash armed at its `n`-th write: whether it crashed.
    pub(crate) fn crashed_at(n: u32, op: impl FnOnce()) -> bool {
        crash_point::arm(n);
        let result = catch_unwind(AssertUnwindSafe(op));
        crash_point::disarm();
        match result {
            Ok(()) => false,
            Err(payload) => {
                assert!(
                    payload.downcast_ref::<crash_point::Crash>().is_some(),
                    "the operation panicked by itself"
                );
                true
            }
        }
    }

    /// Allocations, aligned allocations (pad headers), zeroing ones, frees (parking and merging)
    /// and reallocations in place and moved, each stopped at a random write now and then as if
    /// its process had died there: every time, the next locker takes the lock over from the dead
    /// process, the heap is repaired and passes the whole check, and nothing is given up.
    #[test]
    fn a_heap_stopped_at_any_write_is_repaired_by_the_next_locker() {
        let prefix = format!("heapcrash{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
        let heaps = eal.heaps();
        let dead = dead_token();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut live: Vec<NonNull<u8>> = Vec::new();
        let before = lock_recovery::stats();
        let (mut crashes, mut ops) = (0u64, 0u64);
        const SIZES: [usize; 8] = [64, 100, 1000, 3000, 5000, 40_000, 300_000, 1 << 20];
        while crashes < 300 {
            ops += 1;
            let arm = if rng.below(2) == 0 {
                1 + rng.below(14) as u32
            } else {
                0
            };
            let size = SIZES[rng.below(SIZES.len() as u64) as usize];
            let choice = if live.len() > 40 { 3 } else { rng.below(6) };
            let pick = (!live.is_empty()).then(|| rng.below(live.len() as u64) as usize);
            let crashed = crashed_at(arm, || match (choice, pick) {
                (0, _) | (3..=5, None) => live.push(heaps.malloc(size, 0).unwrap()),
                (1, _) => live.push(heaps.malloc(size, 4096).unwrap()),
                (2, _) => live.push(heaps.zmalloc(size, 256).unwrap()),
                (3, Some(i)) => {
                    let block = live.swap_remove(i);
                    // SAFETY: the block is live, unused, and leaves the list first.
                    unsafe { heaps.free(block) }.unwrap();
                }
                (_, Some(i)) => {
                    let block = live.swap_remove(i);
                    // SAFETY: the block is live and unused; the list forgets the old pointer.
                    live.push(unsafe { heaps.realloc(Some(block), size, 0) }.unwrap());
                }
                _ => unreachable!(),
            });
            if !crashed {
                continue;
            }
            crashes += 1;
            // The operation's blocks are the dead process's now: leaked or freed, unknown.
            eal.memory().shared().heaps[0].mutex().hold_for(dead);
            heaps
                .check()
                .unwrap_or_else(|e| panic!("after crash {crashes} (op {ops}): {e}"));
        }
        let after = lock_recovery::stats();
        assert!(after.taken_over - before.taken_over >= crashes);
        assert_eq!(after.retired, before.retired, "no heap was given up");
        for block in live {
            // SAFETY: every block left in the list is live and unused.
            unsafe { heaps.free(block) }.unwrap();
        }
        heaps.check().unwrap();
        let stats = heaps.stats(Socket::Node(0)).unwrap();
        assert!(
            stats.alloc_count <= crashes,
            "only the dead operations' blocks stay"
        );
    }
}
