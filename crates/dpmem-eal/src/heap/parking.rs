//! The quick-list policy: when a freed small block parks whole instead of merging, when a
//! request takes a parked block back, and when parked blocks merge ("consolidate"), with the
//! rule's check. The lists themselves are [`super::quick_lists`]; why parking exists and what
//! it must keep true is told there.

use std::num::NonZeroUsize;

use super::elem::{elem_flags, Elem, ElemHeader, ElemState, CACHE_LINE, HEADER_LEN, TRAILER_LEN};
use super::free_index::class_of;
use super::malloc_heap::{align_floor, annotate, AllocRequest, HeapOps};
use super::quick_lists::{list_of, PARKED_MAX_BYTES, QUICK_LIST_COUNT};
use super::state::HeapState;
use crate::memory::Memory;
use crate::socket::EXTERNAL_SOCKET_BASE;

impl HeapOps<'_> {
    /// The parked block that serves `req` as it is, if one waits: taken off its list, busy
    /// again. Returns the data address and whether the block may hold old data.
    #[inline]
    pub(super) fn unpark_for(&mut self, req: &AllocRequest) -> Option<(NonZeroUsize, bool)> {
        let list = quick_list_for(req)?;
        let elem = self.st.quick.head(list)?;
        Some(self.unpark(elem, list))
    }

    /// Whether parked blocks must merge before a request is cut from `found` (the free element
    /// the search found, if any). Parked blocks are free memory too: merged, they may hold a
    /// request nothing else can, or leave a hole that spares the biggest free element (cutting
    /// into it would spread the heap). Merged once: consolidation empties the quick lists.
    #[inline]
    pub(super) fn consolidate_first(&self, found: Option<Elem>) -> bool {
        if self.st.quick.is_empty() {
            return false;
        }
        match found {
            None => true,
            Some(elem) => self.st.free.last_nonempty() == Some(class_of(elem.load().size)),
        }
    }

    /// Parks busy element `elem` (header `h`, its pad header erased and its count taken off)
    /// whole, for the next allocation of its size, when the policy allows: a small block of a
    /// socket heap that [`HeapOps::may_park`]. `false`, having changed nothing, otherwise (the
    /// caller merges it). External heaps merge at once: their memory may be attached in only
    /// some processes, and merging later could happen in one that cannot reach it.
    #[inline(always)]
    pub(super) fn try_park(&mut self, elem: Elem, h: &ElemHeader) -> bool {
        match list_of(h.size) {
            Some(list) if self.st.socket_id < EXTERNAL_SOCKET_BASE && self.may_park(elem, h) => {
                self.park(elem, *h, list);
                true
            }
            _ => false,
        }
    }

    /// Parks `elem` (header `h`) on quick list `list`; consolidates when more than
    /// [`PARKED_MAX_BYTES`] wait.
    #[inline(always)]
    fn park(&mut self, elem: Elem, mut h: ElemHeader, list: usize) {
        h.state = ElemState::Parked as u8;
        h.pad = 0;
        // What the owner wrote is still there.
        h.flags |= elem_flags::DIRTY;
        h.free_prev = 0;
        h.free_next = self.st.quick.push(list, h.size, elem);
        elem.store(h);
        if self.st.quick.parked_bytes > PARKED_MAX_BYTES {
            self.consolidate();
        }
    }

    /// Hands out parked element `elem`, the head of quick list `list`: it becomes busy again,
    /// whole. Returns the data address and whether the block may hold old data.
    #[inline]
    fn unpark(&mut self, elem: Elem, list: usize) -> (NonZeroUsize, bool) {
        // Only the fields that change: copying the whole header in and out costs more.
        let (next, size, flags) = elem.quick_fields();
        self.st.quick.pop_head(list, next, size);
        // The trailer first: a parked element does not need one, a busy one does, and a
        // process stopped between the two must leave a whole element (no journal on this path).
        elem.seal(size);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        elem.set_busy_from_parked();
        self.st.alloc_count += 1;
        let data = elem.data();
        if cfg!(feature = "memcheck") {
            annotate::malloclike(
                data as *const u8,
                size as usize - HEADER_LEN - TRAILER_LEN,
                0,
                false,
            );
        }
        (
            NonZeroUsize::new(data).expect("heap memory is never at address 0"),
            flags & elem_flags::DIRTY != 0,
        )
    }

    /// Whether busy element `elem` (header `h`) may be parked rather than merged: when parking
    /// it can keep no page from going back to the system. That is so when its pages are all
    /// pinned, when this process gives no pages back, or when busy neighbours overlap every
    /// page it lies on (those pages stay in use whatever happens to this block). Otherwise the
    /// free merges it at once, with every free and parked element around it, so a page whose
    /// last busy block goes is given back by that free, as without quick lists.
    ///
    /// One more case merges at once, whether this block's own pages are pinned or not: a free
    /// neighbour holding a whole page that may go back (it may lie on grown pages next to
    /// pinned ones). That page stayed
    /// mapped only because giving it back would have left less than an element's worth of the
    /// neighbour on one side; merged with this block, the leftover may be big enough. (Parked
    /// elements never touch such a neighbour: one that grows into it merges them.) The rule
    /// depends on the memory mode, not on the process, so the consistency check agrees with
    /// what any process parked.
    #[inline]
    fn may_park(&self, elem: Elem, h: &ElemHeader) -> bool {
        let pinned = h.flags & elem_flags::RELEASABLE == 0;
        if !self.memory.pages_may_go_back() || (pinned && self.st.releasable_bytes == 0) {
            return true;
        }
        let page = self.memory.list_page_size(u32::from(h.list_index)) as usize;
        let below = Elem::from_addr(h.prev)
            .map(|prev| (prev, prev.load()))
            .filter(|(prev, ph)| Self::adjacent_headers(*prev, ph, elem, h));
        let above = Elem::from_addr(h.next)
            .map(|next| (next, next.load()))
            .filter(|(next, nh)| Self::adjacent_headers(elem, h, *next, nh));
        // Also for a block on pinned pages: its free neighbour may lie on grown ones.
        for (n, nh) in below.iter().chain(above.iter()) {
            if holds_releasable_page(*n, nh, page) {
                return false;
            }
        }
        if pinned {
            return true;
        }
        let (start, end) = (elem.0, elem.0 + h.size as usize);
        let first_page = align_floor(start, page);
        let pages_end = end.next_multiple_of(page);
        let busy = |n: &Option<(Elem, ElemHeader)>| {
            n.as_ref()
                .is_some_and(|(_, nh)| nh.state() == Some(ElemState::Busy))
        };
        // A busy neighbour below reaches into the first page, one above into the last.
        let busy_below = start > first_page && busy(&below);
        let busy_above = end < pages_end && busy(&above);
        match (pages_end - first_page) / page {
            1 => busy_below || busy_above,
            2 => busy_below && busy_above,
            _ => false,
        }
    }

    /// Merges every parked element into the free space around it, as freeing each would have.
    pub fn consolidate(&mut self) {
        if self.st.quick.is_empty() {
            return;
        }
        for list in 0..QUICK_LIST_COUNT {
            while let Some(elem) = self.st.quick.head(list) {
                let h = elem.load();
                self.st.quick.pop_head(list, h.free_next, h.size);
                self.merge_freed(elem, &h);
            }
        }
    }
}

/// The quick list whose elements serve `req` as they are, if any: requests with no constraint
/// beyond the default alignment, whose block and header make an element a quick list takes.
#[inline]
pub(super) fn quick_list_for(req: &AllocRequest) -> Option<usize> {
    let plain =
        req.align == CACHE_LINE && req.bound == 0 && !req.contig && req.page_flags.is_empty();
    if !plain {
        return None;
    }
    list_of((req.size + HEADER_LEN + TRAILER_LEN) as u64)
}

/// Whether `n` (header `nh`, on a list of `page`-byte pages) is a free element holding a whole
/// page that may go back to the system. Such a page stayed mapped only because giving it back
/// would leave less than an element's worth of `n` beside it, so no block parks next to it
/// (`HeapOps::may_park`; `check_heap` verifies the same rule).
#[inline]
pub(super) fn holds_releasable_page(n: Elem, nh: &ElemHeader, page: usize) -> bool {
    nh.is_free()
        && nh.flags & elem_flags::RELEASABLE != 0
        && n.0.next_multiple_of(page) + page <= n.0 + nh.size as usize
}

/// The parking rule (see `HeapOps::may_park`): a page that may go back to the system and holds
/// a parked element also holds a busy one, so parking never kept a page mapped that freeing
/// at once would have given back. `parked_pages` are the pages under such parked elements,
/// `busy_spans` the busy elements in address order.
pub(super) fn check_parked_pages_in_use(
    parked_pages: &mut Vec<usize>,
    busy_spans: &[(usize, usize)],
    memory: &Memory,
) -> Result<(), String> {
    parked_pages.sort_unstable();
    parked_pages.dedup();
    for &page in parked_pages.iter() {
        let Some((list, _, _)) = memory.page_at(page) else {
            return Err(format!("parked element on unmapped page {page:#x}"));
        };
        let page_end = page + memory.list_page_size(list) as usize;
        // The busy spans are sorted and disjoint: the first one ending after the page start is
        // the only candidate that can overlap it from below or within.
        let i = busy_spans.partition_point(|&(_, end)| end <= page);
        let in_use = busy_spans
            .get(i)
            .is_some_and(|&(start, _)| start < page_end);
        if !in_use {
            return Err(format!(
                "page {page:#x} holds parked blocks but no busy one: freeing them at once would have given it back"
            ));
        }
    }
    Ok(())
}

/// The quick-list part of [`check_heap`](super::check::check_heap): every parked element (`parked` of them, `bytes` in
/// all, found in the address walk) is on the list of its size exactly once, and the counts agree.
pub(super) fn check_quick_lists(
    st: &HeapState,
    addr: u64,
    parked: u64,
    bytes: u64,
) -> Result<(), String> {
    if st.quick.parked_count != parked || st.quick.parked_bytes != bytes {
        return Err(format!(
            "{parked} parked elements of {bytes} bytes, quick lists count {} of {}",
            st.quick.parked_count, st.quick.parked_bytes
        ));
    }
    let (mut listed, mut listed_bytes) = (0u64, 0u64);
    st.quick.walk(|list, e| {
        let h = e.load();
        if h.magic != e.expected_magic()
            || h.heap != addr
            || h.state() != Some(ElemState::Parked)
            || list_of(h.size) != Some(list)
        {
            return Err(format!(
                "quick list {list} entry {:#x} is wrong for its list",
                e.0
            ));
        }
        listed += 1;
        listed_bytes += h.size;
        Ok(h)
    })?;
    // Every listed entry is a parked element, and no more are listed than exist: with the
    // counts equal, each parked element is listed exactly once.
    if listed != parked || listed_bytes != bytes {
        return Err(format!(
            "{listed} elements of {listed_bytes} bytes on the quick lists, {parked} of {bytes} parked"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::PARKED_MAX_BYTES;
    use crate::{Eal, Socket};

    /// Bytes parked on socket 0's heap right now.
    fn parked_bytes(eal: &Eal) -> u64 {
        crate::heap::recovery::lock_heap(eal.memory(), &eal.memory().shared().heaps[0])
            .unwrap()
            .quick
            .parked_bytes
    }

    #[test]
    fn parked_blocks_never_pass_their_bound_and_observing_merges_them() {
        let prefix = format!("quickbound{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "16", "--file-prefix", &prefix]).unwrap();
        let heaps = eal.heaps();
        // 3000 elements of 1088 bytes: half as much again as the bound.
        let blocks: Vec<_> = (0..3000).map(|_| heaps.malloc(1000, 0).unwrap()).collect();
        let mut most = 0;
        for block in blocks {
            // SAFETY: each block was allocated above, is unused and freed once.
            unsafe { heaps.free(block) }.unwrap();
            most = most.max(parked_bytes(&eal));
        }
        assert!(
            most > PARKED_MAX_BYTES / 2,
            "frees parked blocks ({most} bytes at most)"
        );
        assert!(most <= PARKED_MAX_BYTES, "{most} bytes parked at once");
        heaps.check().unwrap();
        assert_eq!(heaps.stats(Socket::Node(0)).unwrap().free_count, 1);
        assert_eq!(parked_bytes(&eal), 0, "statistics merge every parked block");
    }
}
