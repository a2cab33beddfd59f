//! The whole-heap consistency check ([`Heaps::check`](super::Heaps::check)): a walk of one
//! heap's elements in address order against its counters, its free lists and its quick lists.
//! It merges nothing and changes nothing.

use super::elem::{self, elem_flags, Elem, ElemState, CACHE_LINE, HEADER_LEN};
use super::free_index::class_of;
use super::parking::{check_parked_pages_in_use, check_quick_lists, holds_releasable_page};
use super::state::HeapState;
use crate::memory::Memory;

/// Checks heap `st` (whose [`SharedHeap`](super::state::SharedHeap) is at `addr`): every element
/// is marked as this heap's, links agree both ways, sizes add up, no two adjacent elements are
/// free, busy elements' pad headers and trailers are intact, the free lists and their bitmaps
/// agree with the walk, and the quick lists and the parking rule hold. `Err` names the first
/// element that breaks a rule.
pub(super) fn check_heap(st: &HeapState, addr: u64, memory: &Memory) -> Result<(), String> {
    // Pages (start addresses) under parked elements that could go back to the system, and the
    // busy elements (start, end), for the parking rule checked at the end.
    let releasing = memory.pages_may_go_back();
    let mut parked_pages: Vec<usize> = Vec::new();
    let mut busy_spans: Vec<(usize, usize)> = Vec::new();
    let mut cur = Elem::from_addr(st.first);
    let mut prev: Option<(Elem, elem::ElemHeader)> = None;
    let (mut total, mut busy, mut free) = (0u64, 0u64, 0u64);
    let (mut parked, mut parked_bytes) = (0u64, 0u64);
    while let Some(e) = cur {
        let h = e.load();
        if h.magic != e.expected_magic() || h.heap != addr {
            return Err(format!(
                "element {:#x}: header not marked as this heap's",
                e.0
            ));
        }
        if h.prev != prev.map_or(0, |(p, _)| p.addr()) {
            return Err(format!(
                "element {:#x}: prev link {:#x} is wrong",
                e.0, h.prev
            ));
        }
        if h.size < HEADER_LEN as u64 || h.size % CACHE_LINE as u64 != 0 {
            return Err(format!("element {:#x}: bad size {}", e.0, h.size));
        }
        if let Some((p, ph)) = prev {
            if p.0 + ph.size as usize > e.0 {
                return Err(format!("element {:#x} overlaps the one before", e.0));
            }
            let adjacent = p.0 + ph.size as usize == e.0 && ph.list_index == h.list_index;
            if adjacent && ph.is_free() && h.is_free() {
                return Err(format!(
                    "adjacent free elements at {:#x} and {:#x}",
                    p.0, e.0
                ));
            }
            // The other half of the parking rule: no parked element touches a free one holding
            // a whole page that may go back.
            let parked_by_page = |a: &elem::ElemHeader, b: Elem, bh: &elem::ElemHeader| {
                let page = memory.list_page_size(u32::from(bh.list_index)) as usize;
                a.state() == Some(ElemState::Parked) && holds_releasable_page(b, bh, page)
            };
            if releasing && adjacent && (parked_by_page(&ph, e, &h) || parked_by_page(&h, p, &ph)) {
                return Err(format!(
                    "parked element next to a free one holding a whole page, at {:#x} and {:#x}",
                    p.0, e.0
                ));
            }
        }
        match h.state() {
            Some(ElemState::Free) => {
                free += 1;
                if h.pad != 0 {
                    return Err(format!("free element {:#x} has padding", e.0));
                }
            }
            Some(ElemState::Parked) => {
                parked += 1;
                parked_bytes += h.size;
                if h.pad != 0 {
                    return Err(format!("parked element {:#x} has padding", e.0));
                }
                if releasing && h.flags & elem_flags::RELEASABLE != 0 {
                    let page = memory.list_page_size(u32::from(h.list_index)) as usize;
                    let mut p = e.0 & !(page - 1);
                    while p < e.0 + h.size as usize {
                        parked_pages.push(p);
                        p += page;
                    }
                }
            }
            Some(ElemState::Busy) => {
                busy += 1;
                busy_spans.push((e.0, e.0 + h.size as usize));
                if h.pad > 0 {
                    let pad = Elem(e.0 + h.pad as usize);
                    let ph = pad.load();
                    if ph.magic != pad.expected_magic()
                        || ph.state() != Some(ElemState::Pad)
                        || ph.pad != h.pad
                        || ph.size != h.size - u64::from(h.pad)
                    {
                        return Err(format!("busy element {:#x}: bad pad header", e.0));
                    }
                }
                if !e.seal_intact(h.size) {
                    return Err(format!(
                        "busy element {:#x} ({} usable bytes) was written past its end",
                        e.0,
                        h.usable_len()
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "element {:#x}: state {} in the element links",
                    e.0, h.state
                ))
            }
        }
        total += h.size;
        prev = Some((e, h));
        cur = Elem::from_addr(h.next);
    }
    if st.last != prev.map_or(0, |(p, _)| p.addr()) {
        return Err("last element pointer is wrong".into());
    }
    if st.releasable_bytes > st.total_bytes {
        return Err(format!(
            "{} releasable bytes of {} in all",
            st.releasable_bytes, st.total_bytes
        ));
    }
    if total != st.total_bytes {
        return Err(format!(
            "elements add up to {total} bytes, heap says {}",
            st.total_bytes
        ));
    }
    if busy != st.alloc_count {
        return Err(format!(
            "{busy} busy elements, heap counts {}",
            st.alloc_count
        ));
    }
    let mut listed = 0u64;
    let mut bad = None;
    st.free.for_each(|class, e, h| {
        listed += 1;
        if bad.is_none()
            && (!h.is_free() || class_of(h.size) != class || h.magic != e.expected_magic())
        {
            bad = Some(format!("free list entry {:#x} is wrong for its list", e.0));
        }
        if bad.is_none() {
            if let Some(next) = Elem::from_addr(h.free_next) {
                if next.load().free_prev != e.addr() {
                    bad = Some(format!("free list links at {:#x} disagree", e.0));
                }
            }
        }
    });
    if let Some(bad) = bad {
        return Err(bad);
    }
    if listed != free {
        return Err(format!(
            "{free} free elements but {listed} on the free lists"
        ));
    }
    if !st.free.bitmaps_consistent() {
        return Err("free-list bitmaps disagree with the lists".into());
    }
    check_quick_lists(st, addr, parked, parked_bytes)?;
    check_parked_pages_in_use(&mut parked_pages, &busy_spans, memory)
}
