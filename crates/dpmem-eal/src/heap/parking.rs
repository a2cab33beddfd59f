//! The quick-list policy: when a freed small block parks whole instead of merging, when a
//! request takes a parked block back, and when parked blocks merge ("consolidate"), with the
//! rule's check. The lists themselves are [`super::quick_lists`]; why parking exists and what
//! it must keep true is told there.

use std::num::NonZeroUsize;
use std::ops::Range;

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
        let busy = |n: &Option<(Elem, ElemHeader)>| {
            n.as_ref()
                .is_some_and(|(_, nh)| nh.state() == Some(ElemState::Busy))
        };
        busy_neighbours_cover_every_page(
            elem.0..elem.0 + h.size as usize,
            page,
            busy(&below),
            busy(&above),
        )
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

/// Whether every `page`-byte page that block `span` lies on also holds bytes of a busy
/// neighbour, given whether the element right below it (`busy_below`) and the one right above
/// it (`busy_above`) are busy: then those pages stay in use whatever happens to the block. The
/// neighbour below reaches into the block's first page unless the block starts that page, the
/// one above into its last page unless the block ends it; no neighbour reaches a page in
/// between.
#[inline]
fn busy_neighbours_cover_every_page(
    span: Range<usize>,
    page: usize,
    busy_below: bool,
    busy_above: bool,
) -> bool {
    let first_page = align_floor(span.start, page);
    let pages_end = span.end.next_multiple_of(page);
    let below_covers_first = busy_below && span.start > first_page;
    let above_covers_last = busy_above && span.end < pages_end;
    match (pages_end - first_page) / page {
        1 => below_covers_first || above_covers_last,
        2 => below_covers_first && above_covers_last,
        _ => false,
    }
}

/// Whether `n` (header `nh`, on a list of `page`-byte pages) is a free element holding a whole
/// page that may go back to the system. Such a page stayed mapped only because giving it back
/// would leave less than an element's worth of `n` beside it, so no block parks next to it
/// (`HeapOps::may_park`; `check_heap` verifies the same rule).
#[inline]
pub(super) fn holds_releasable_page(n: Elem, nh: &ElemHeader, page: usize) -> bool {
    nh.is_free()
        && nh.flags & elem_flags::RELEASABLE != 0
        && holds_whole_page(n.0..n.0 + nh.size as usize, page)
}

/// Whether `span` holds at least one whole `page`-byte page.
#[inline]
fn holds_whole_page(span: Range<usize>, page: usize) -> bool {
    span.start.next_multiple_of(page) + page <= span.end
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
    use std::ptr::NonNull;

    use super::super::elem::{Elem, ElemHeader, HEADER_LEN, TRAILER_LEN};
    use super::super::quick_lists::list_of;
    use super::super::state::MAX_HEAPS;
    use super::{
        busy_neighbours_cover_every_page, check_parked_pages_in_use, holds_whole_page,
        PARKED_MAX_BYTES,
    };
    use crate::heap::recovery::lock_heap;
    use crate::socket::EXTERNAL_SOCKET_BASE;
    use crate::{Eal, Socket};

    /// Bytes parked on socket 0's heap right now.
    fn parked_bytes(eal: &Eal) -> u64 {
        lock_heap(eal.memory(), &eal.memory().shared().heaps[0])
            .unwrap()
            .quick
            .parked_bytes
    }

    fn no_huge_eal(tag: &str) -> Eal {
        let prefix = format!("{tag}{}_", std::process::id());
        Eal::init(["t", "--no-huge", "-m", "16", "--file-prefix", &prefix]).unwrap()
    }

    fn free(eal: &Eal, block: NonNull<u8>) {
        // SAFETY: the tests free only blocks they allocated and no longer use, once each.
        unsafe { eal.heaps().free(block) }.unwrap();
    }

    /// Allocates `len` bytes on `socket` between two busy guards (left allocated), frees them
    /// and returns where they were: a socket heap parks such a block.
    fn freed_between_guards(eal: &Eal, len: usize, socket: Socket) -> NonNull<u8> {
        let heaps = eal.heaps();
        let _below = heaps.malloc_socket(100, 0, socket).unwrap();
        let block = heaps.malloc_socket(len, 0, socket).unwrap();
        let _above = heaps.malloc_socket(100, 0, socket).unwrap();
        free(eal, block);
        block
    }

    #[test]
    fn parked_blocks_up_to_the_bound_itself_stay_parked() {
        let eal = no_huge_eal("quickedge");
        let heaps = eal.heaps();
        // Elements of 1 KiB, header (and trailer, in a debug build) included: exactly
        // PARKED_MAX_BYTES / 1024 of them fill the bound.
        let data = 1024 - HEADER_LEN - TRAILER_LEN;
        let count = (PARKED_MAX_BYTES / 1024) as usize;
        let blocks: Vec<_> = (0..=count)
            .map(|_| heaps.malloc(data, 0).unwrap())
            .collect();
        free(&eal, blocks[0]);
        assert_eq!(parked_bytes(&eal), 1024, "a 1 KiB element parks whole");
        for &block in &blocks[1..count] {
            free(&eal, block);
        }
        assert_eq!(
            parked_bytes(&eal),
            PARKED_MAX_BYTES,
            "blocks reaching the bound exactly, not past it, stay parked"
        );
        free(&eal, blocks[count]);
        assert_eq!(
            parked_bytes(&eal),
            0,
            "one block past the bound merges them all"
        );
        heaps.check().unwrap();
    }

    #[test]
    fn a_request_cut_from_a_small_free_block_leaves_parked_blocks_parked() {
        let eal = no_huge_eal("quickkeep");
        let heaps = eal.heaps();
        // A block too big to park, between busy guards: freed, it is a free element of a
        // lower size class than the heap's big remainder. A small block parks between guards.
        let _guard_a = heaps.malloc(1000, 0).unwrap();
        let big = heaps.malloc(8192, 0).unwrap();
        let _guard_b = heaps.malloc(1000, 0).unwrap();
        let small = heaps.malloc(1000, 0).unwrap();
        let _guard_c = heaps.malloc(1000, 0).unwrap();
        free(&eal, big);
        assert_eq!(parked_bytes(&eal), 0, "an 8 KiB block is too big to park");
        free(&eal, small);
        let parked = parked_bytes(&eal);
        assert!(parked > 0, "the small block parks");
        // No quick list serves 2000 bytes; the search finds the 8 KiB hole, which is not in
        // the biggest class: the parked block has no reason to merge first.
        let cut = heaps.malloc(2000, 0).unwrap();
        let big_range = big.as_ptr() as usize..big.as_ptr() as usize + 8192;
        assert!(
            big_range.contains(&(cut.as_ptr() as usize)),
            "2000 bytes come from the freed 8 KiB block"
        );
        assert_eq!(parked_bytes(&eal), parked, "the parked block stays parked");
        heaps.check().unwrap();
    }

    #[test]
    fn a_parked_block_serves_only_requests_it_fits_as_it_is() {
        let eal = no_huge_eal("quickfit");
        let heaps = eal.heaps();
        // A block of 896 bytes, parked between busy guards: its element is on the list two
        // below the one 1024 bytes need (128 bytes smaller, header and trailer alike).
        let small = freed_between_guards(&eal, 896, Socket::Any);
        let small_elem = (896 + HEADER_LEN + TRAILER_LEN) as u64;
        assert_eq!(parked_bytes(&eal), small_elem);
        // 1024 bytes need a bigger element: not the parked one.
        let bigger = heaps.malloc(1024, 0).unwrap();
        assert_ne!(bigger, small, "a parked block too small for the request");
        // SAFETY: `bigger` holds 1024 bytes this test owns.
        unsafe { std::ptr::write_bytes(bigger.as_ptr(), 0xA5, 1024) };
        heaps.check().unwrap();
        free(&eal, bigger);

        // Its own size with an alignment it does not meet: not the parked block either.
        let small_again = heaps.malloc(896, 0).unwrap();
        assert_eq!(
            small_again, small,
            "a plain request of its size takes it back"
        );
        free(&eal, small_again);
        assert!(!small.as_ptr().addr().is_multiple_of(4096));
        let aligned = heaps.malloc(896, 4096).unwrap();
        assert!(aligned.as_ptr().addr().is_multiple_of(4096));
        heaps.check().unwrap();
    }

    #[test]
    fn blocks_of_external_heaps_merge_at_once_from_the_first_external_socket_on() {
        const LEN: usize = 1 << 20;
        let layout = std::alloc::Layout::from_size_align(LEN, 4096).unwrap();
        // SAFETY: a non-zero size.
        let memory = unsafe { std::alloc::alloc(layout) };
        assert!(!memory.is_null());
        {
            let eal = no_huge_eal("quickext");
            let heaps = eal.heaps();
            let socket = heaps.heap_create("ext").unwrap();
            assert_eq!(
                socket.to_raw(),
                EXTERNAL_SOCKET_BASE,
                "the first external heap"
            );
            // SAFETY: `memory` is read-write, used by nothing else, and freed only after the
            // EAL (which knows it) is dropped at the end of this block.
            unsafe { heaps.heap_memory_add("ext", memory, LEN, None, 4096) }.unwrap();
            freed_between_guards(&eal, 1000, socket);
            let external_parked: Vec<u64> = (0..MAX_HEAPS)
                .map(|slot| lock_heap(eal.memory(), &eal.memory().shared().heaps[slot]).unwrap())
                .filter(|st| st.in_use != 0 && st.socket_id == EXTERNAL_SOCKET_BASE)
                .map(|st| st.quick.parked_bytes)
                .collect();
            assert_eq!(external_parked, [0], "the external heap parked nothing");
            // The same free on a socket heap parks: the difference is the heap's kind.
            freed_between_guards(&eal, 1000, Socket::Any);
            assert!(parked_bytes(&eal) > 0);
            heaps.check().unwrap();
        }
        // SAFETY: allocated above with this layout; the EAL that used it is gone.
        unsafe { std::alloc::dealloc(memory, layout) };
    }

    /// Every block of 1 to 12 cache lines starting at any of the first 12 lines, on pages of
    /// 1, 2 and 4 lines: every way a block's ends can fall against page boundaries, with
    /// room on both sides of each.
    fn small_spans() -> impl Iterator<Item = (usize, usize, usize)> {
        [64usize, 128, 256].into_iter().flat_map(|page| {
            (0..12usize).flat_map(move |start_line| {
                (1..=12usize).map(move |len_lines| {
                    let start = 4096 + start_line * 64;
                    (page, start, start + len_lines * 64)
                })
            })
        })
    }

    /// The page rule against a page-by-page walk: every page the block touches must also be
    /// touched by a busy neighbour (the one below ends at the block's start, the one above
    /// starts at its end).
    #[test]
    fn busy_neighbours_cover_pages_as_a_page_by_page_walk_says() {
        for (page, start, end) in small_spans() {
            for (busy_below, busy_above) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let touched_by_below = |p: usize| busy_below && (start - 1) / page == p;
                let touched_by_above = |p: usize| busy_above && end / page == p;
                let walk = (start / page..=(end - 1) / page)
                    .all(|p| touched_by_below(p) || touched_by_above(p));
                assert_eq!(
                    busy_neighbours_cover_every_page(start..end, page, busy_below, busy_above),
                    walk,
                    "block {start:#x}..{end:#x}, page {page}, busy below {busy_below}, above {busy_above}"
                );
            }
        }
    }

    #[test]
    fn a_span_holds_a_whole_page_when_a_page_start_inside_it_has_the_page_inside_too() {
        for (page, start, end) in small_spans() {
            let walk = (start..end)
                .filter(|a| a % page == 0)
                .any(|page_start| page_start + page <= end);
            assert_eq!(
                holds_whole_page(start..end, page),
                walk,
                "{start:#x}..{end:#x}, page {page}"
            );
        }
    }

    #[test]
    fn the_rule_check_wants_a_busy_block_on_every_page_a_parked_one_keeps() {
        let eal = no_huge_eal("quickrule");
        let memory = eal.memory();
        let block = eal.heaps().malloc(100, 0).unwrap().as_ptr() as usize;
        let (list, _, _) = memory.page_at(block).unwrap();
        let size = memory.list_page_size(list) as usize;
        let page = block & !(size - 1);
        let check =
            |busy: &[(usize, usize)]| check_parked_pages_in_use(&mut vec![page], busy, memory);
        assert!(
            check(&[(page + 64, page + 128)]).is_ok(),
            "a busy block inside the page"
        );
        assert!(
            check(&[(page - 64, page + 64)]).is_ok(),
            "one reaching in from below"
        );
        assert!(
            check(&[(page + size - 64, page + size + 64)]).is_ok(),
            "one reaching out above"
        );
        assert!(check(&[]).is_err(), "no busy block at all");
        assert!(
            check(&[(page - 128, page)]).is_err(),
            "one ending where the page starts"
        );
        assert!(
            check(&[(page + size, page + size + 64)]).is_err(),
            "one starting past its end"
        );
        assert!(
            check(&[(page - 128, page), (page + size, page + size + 64)]).is_err(),
            "busy blocks on both sides, none on the page"
        );
        let unmapped = check_parked_pages_in_use(&mut vec![size], &[(0, usize::MAX)], memory);
        assert!(unmapped.unwrap_err().contains("unmapped"));
    }

    #[test]
    fn the_quick_list_check_finds_each_kind_of_wrong_entry() {
        let eal = no_huge_eal("quickcheck");
        let heaps = eal.heaps();
        let _guard = heaps.malloc(100, 0).unwrap();
        let parked = Elem(heaps.malloc(1000, 0).unwrap().as_ptr() as usize - HEADER_LEN);
        let _guard_between = heaps.malloc(100, 0).unwrap();
        let busy = Elem(heaps.malloc(1000, 0).unwrap().as_ptr() as usize - HEADER_LEN);
        let _guard_next = heaps.malloc(100, 0).unwrap();
        let second = Elem(heaps.malloc(1000, 0).unwrap().as_ptr() as usize - HEADER_LEN);
        let _guard_above = heaps.malloc(100, 0).unwrap();
        free(&eal, NonNull::new(parked.data() as *mut u8).unwrap());
        let h = parked.load();
        let list = list_of(h.size).unwrap();
        assert_eq!(
            busy.load().size,
            h.size,
            "both blocks are of one quick list"
        );
        assert_eq!(h.free_next, 0, "the only parked block");
        let heap = || lock_heap(eal.memory(), &eal.memory().shared().heaps[0]).unwrap();
        // Puts `entry` on list `on` in place of the parked element, runs the check, and puts
        // the parked element back.
        let check_with = |entry: Elem, on: usize| {
            {
                let mut st = heap();
                st.quick.pop_head(list, 0, h.size);
                st.quick.push(on, h.size, entry);
            }
            let result = heaps.check();
            let mut st = heap();
            st.quick.pop_head(on, 0, h.size);
            st.quick.push(list, h.size, parked);
            result
        };
        heaps.check().unwrap();
        let wrong_entry = |e: Result<(), crate::EalError>| e.unwrap_err().to_string();
        let wrong_list = wrong_entry(check_with(parked, list + 1));
        assert!(wrong_list.contains("wrong for its list"), "{wrong_list}");
        let busy_header = busy.load();
        busy.update(|b| b.free_next = 0);
        let busy_listed = wrong_entry(check_with(busy, list));
        assert!(busy_listed.contains("wrong for its list"), "{busy_listed}");
        busy.store(busy_header);
        // A copy of the parked header inside the busy block's data: right but for its magic,
        // which belongs to another address.
        let copy = Elem(busy.data());
        copy.store(ElemHeader { free_prev: 0, ..h });
        let elsewhere = wrong_entry(check_with(copy, list));
        assert!(elsewhere.contains("wrong for its list"), "{elsewhere}");
        heaps.check().unwrap();
        {
            let mut st = heap();
            st.quick.parked_count += 1;
        }
        let miscounted = heaps.check();
        heap().quick.parked_count -= 1;
        let miscounted = wrong_entry(miscounted);
        assert!(
            miscounted.contains("quick lists count 2 of"),
            "{miscounted}"
        );
        heaps.check().unwrap();

        // Two parked blocks, and in their place on the lists one well-formed parked header of
        // both their bytes, with the counts set to match the walk: one entry too few.
        free(&eal, NonNull::new(second.data() as *mut u8).unwrap());
        assert_eq!(second.load().free_next, parked.addr(), "both on one list");
        let double = ElemHeader {
            magic: copy.expected_magic(),
            size: 2 * h.size,
            free_next: 0,
            free_prev: 0,
            ..h
        };
        copy.store(double);
        let double_list = list_of(double.size).unwrap();
        {
            let mut st = heap();
            st.quick.pop_head(list, parked.addr(), h.size);
            st.quick.pop_head(list, 0, h.size);
            st.quick.push(double_list, double.size, copy);
            st.quick.parked_count += 1;
        }
        let one_too_few = wrong_entry(heaps.check());
        {
            let mut st = heap();
            st.quick.parked_count -= 1;
            st.quick.pop_head(double_list, 0, double.size);
            st.quick.push(list, h.size, parked);
            st.quick.push(list, h.size, second);
        }
        assert!(
            one_too_few.contains(&format!(
                "1 elements of {0} bytes on the quick lists, 2 of {0} parked",
                double.size
            )),
            "{one_too_few}"
        );
        heaps.check().unwrap();
    }

    #[test]
    fn parked_blocks_never_pass_their_bound_and_observing_merges_them() {
        let eal = no_huge_eal("quickbound");
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
