//! One malloc heap: the elements carved out of the memory of one socket, their address-ordered
//! links and their free lists (DPDK's `malloc_heap.c` and `malloc_elem.c`).
//!
//! Every operation here runs with the heap's lock held; `HeapOps` is what a locked heap can
//! do. The state lives in the shared configuration and the elements in hugepage memory, so a
//! secondary process works on the same heap through its own mapping at the same addresses.
//!
//! With feature `memcheck` the heap keeps valgrind's memcheck told what a program may touch:
//! memory given to the heap is no-access, a block handed out is announced as a heap block of
//! its usable size (undefined; zeroing allocations then make it defined), a block resized in
//! place keeps its old bytes' state, and a freed block is no-access again. Headers, pad headers
//! and trailers stay no-access throughout. These are the annotations of the process that makes
//! the change; another process attached to the heap keeps its own view.

use std::num::NonZeroUsize;

use super::elem::{
    elem_flags, field, Elem, ElemHeader, ElemState, CACHE_LINE, HEADER_LEN, MIN_SPLIT_LEN,
    TRAILER_LEN,
};
use super::free_index::{class_at_least, class_of};
use super::state::HeapState;
use crate::memory::{Memory, PageRequest};
use crate::memzone_flags::MemzoneFlags;
use crate::socket::Socket;

/// What an allocation needs, already normalised (sizes and alignments multiples of a cache
/// line, alignment a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AllocRequest {
    pub size: usize,
    pub align: usize,
    /// 0, or a power of two the block must not cross.
    pub bound: usize,
    /// The data must be IOVA-contiguous.
    pub contig: bool,
    /// Page sizes allowed (memzone page-size flags); 0 = any.
    pub page_flags: MemzoneFlags,
}

/// A locked heap and the memory it draws pages from.
pub(crate) struct HeapOps<'a> {
    pub st: &'a mut HeapState,
    /// Address of the heap's [`SharedHeap`]: what element headers record as their heap.
    pub addr: u64,
    pub memory: &'a Memory,
}

/// Memcheck's view of the heap (feature `memcheck`; nothing without it).
pub(super) mod annotate {
    #[cfg(feature = "memcheck")]
    pub use crate::memcheck::{freelike, make_noaccess, malloclike, resize_in_place};

    #[cfg(not(feature = "memcheck"))]
    pub fn make_noaccess(_: *const u8, _: usize) {}
    #[cfg(not(feature = "memcheck"))]
    pub fn malloclike(_: *const u8, _: usize, _: usize, _: bool) {}
    #[cfg(not(feature = "memcheck"))]
    pub fn freelike(_: *const u8, _: usize) {}
    #[cfg(not(feature = "memcheck"))]
    pub fn resize_in_place(_: *const u8, _: usize, _: usize, _: usize) {}
}

/// Where the owner's bytes of busy element `elem` (header `h`) start.
#[inline]
fn data_of(elem: Elem, h: &ElemHeader) -> usize {
    elem.0 + h.pad as usize + HEADER_LEN
}

/// A freed block whose bytes (padding, data, trailer) are at most this long is cleared at
/// once when it merges into clean memory, keeping that memory clean for zeroing allocations (a
/// bounded cost: well under a microsecond per block; parked blocks, all shorter, are cleared as
/// they merge, so a consolidation clears at most `PARKED_MAX_BYTES`); a longer one marks the
/// merged element dirty
/// instead. DPDK clears every freed block, so its `rte_free` of a 1 MiB block writes 1 MiB; here
/// freeing a long block costs what freeing a short one does, and a zeroing allocation clears
/// what it hands out when the memory is dirty — each byte is written at most once per zmalloc
/// and free either way, and a `malloc` + `free` of a long block never writes its data.
const CLEAR_ON_FREE_MAX: usize = 16 << 10;

/// Elements of the request's own size class looked at before a bigger class is used.
const EXACT_CLASS_PROBES: usize = 4;

#[inline]
pub(super) fn align_floor(v: usize, align: usize) -> usize {
    v & !(align - 1)
}

impl HeapOps<'_> {
    /// Opens a step of changes to the element chain, or joins the one under way (see
    /// [`super::chain_journal`]); returns whether it opened one, for [`HeapOps::step_end`].
    #[inline(always)]
    pub(super) fn step_begin(&mut self) -> bool {
        self.st.journal.begin(self.st.first)
    }

    /// Notes in the step under way the word of `elem`'s header at byte `field` (one of
    /// [`elem::field`](super::elem::field)) before it is written.
    #[inline(always)]
    pub(super) fn step_save(&mut self, elem: Elem, field: usize) {
        self.st.journal.save_word(elem.0 + field);
    }

    /// Notes in the step under way a header it creates in free memory the chain covers.
    #[inline(always)]
    pub(super) fn step_save_fresh(&mut self, elem: Elem) {
        self.st.journal.save_fresh(elem);
    }

    /// Closes the step that the [`HeapOps::step_begin`] returning `opened` opened.
    #[inline(always)]
    pub(super) fn step_end(&mut self, opened: bool) {
        self.st.journal.end(opened);
    }

    /// Runs `change` as one step (or as part of the step under way).
    #[inline(always)]
    pub(super) fn step<R>(&mut self, change: impl FnOnce(&mut Self) -> R) -> R {
        let opened = self.step_begin();
        let r = change(self);
        self.step_end(opened);
        r
    }

    #[inline]
    fn adjacent(a: Elem, ah: &ElemHeader, b: Elem) -> bool {
        Self::adjacent_headers(a, ah, b, &b.load())
    }

    /// [`HeapOps::adjacent`] with both headers at hand.
    #[inline]
    pub(super) fn adjacent_headers(a: Elem, ah: &ElemHeader, b: Elem, bh: &ElemHeader) -> bool {
        a.0 + ah.size as usize == b.0 && ah.list_index == bh.list_index
    }

    /// Cuts `elem` at `at`: the part from `at` becomes a new element with the same flags, state
    /// free; `elem` keeps its state. Neither is put on a free list.
    #[inline]
    fn split(&mut self, elem: Elem, at: usize) -> Elem {
        self.split_as(elem, at, ElemState::Free)
    }

    /// [`HeapOps::split`] with the new element in `state`. One journaled step (see
    /// [`super::chain_journal`]), or part of the caller's.
    #[inline]
    fn split_as(&mut self, elem: Elem, at: usize, state: ElemState) -> Elem {
        let h = elem.load();
        let tail = Elem(at);
        let opened = self.step_begin();
        match Elem::from_addr(h.next) {
            Some(next) => self.st.journal.save_words(&[
                elem.0 + field::NEXT,
                elem.0 + field::SIZE,
                next.0 + field::PREV,
            ]),
            None => self
                .st
                .journal
                .save_words(&[elem.0 + field::NEXT, elem.0 + field::SIZE]),
        }
        // Cut out of free memory, the new header's old bytes are nobody's; cut out of a block
        // being resized, they are its owner's data and go back as they were.
        if h.is_free() {
            self.step_save_fresh(tail);
        } else {
            self.st.journal.save_header(tail);
        }
        tail.store(ElemHeader {
            magic: tail.expected_magic(),
            heap: self.addr,
            prev: elem.addr(),
            next: h.next,
            free_prev: 0,
            free_next: 0,
            size: (elem.0 + h.size as usize - at) as u64,
            pad: 0,
            list_index: h.list_index,
            state: state as u8,
            flags: h.flags,
        });
        match Elem::from_addr(h.next) {
            Some(next) => next.update(|n| n.prev = tail.addr()),
            None => self.st.last = tail.addr(),
        }
        elem.update(|e| {
            e.next = tail.addr();
            e.size = (at - elem.0) as u64;
        });
        self.step_end(opened);
        tail
    }

    /// Absorbs `b` (adjacent, off any free list) into `a`; erases `b`'s header so stale bytes
    /// never pass for a header and clean memory stays zero. One journaled step, or part of the
    /// caller's.
    #[inline]
    pub(super) fn join(&mut self, a: Elem, b: Elem) {
        let bh = b.load();
        let nested = self.st.journal.nested();
        let opened = self.step_begin();
        match Elem::from_addr(bh.next) {
            Some(next) => self.st.journal.save_words(&[
                a.0 + field::SIZE,
                a.0 + field::NEXT,
                a.0 + field::TAIL,
                next.0 + field::PREV,
            ]),
            None => self.st.journal.save_words(&[
                a.0 + field::SIZE,
                a.0 + field::NEXT,
                a.0 + field::TAIL,
            ]),
        }
        if nested {
            // Erased inside a larger step, which may still be undone: `b` must come back.
            self.st.journal.save_header(b);
        }
        match Elem::from_addr(bh.next) {
            Some(next) => next.update(|n| n.prev = a.addr()),
            None => self.st.last = a.addr(),
        }
        a.update(|h| {
            h.size += bh.size;
            h.next = bh.next;
            h.flags |= bh.flags;
        });
        if nested {
            Elem::zero_range(b.0, HEADER_LEN);
        }
        self.step_end(opened);
        if !nested {
            // After the step: nothing links to `b` any more, so a process stopped before this
            // leaves only a stale header inside free memory (which a recovery marks dirty).
            Elem::zero_range(b.0, HEADER_LEN);
        }
    }

    /// Merges a free element (on no free list) with the free and parked elements around it;
    /// returns the result, also on no free list. Afterwards no two adjacent elements are free,
    /// and none next to it is parked.
    #[inline]
    fn join_free_neighbours(&mut self, mut elem: Elem) -> Elem {
        loop {
            let h = elem.load();
            let Some(next) = Elem::from_addr(h.next) else {
                break;
            };
            let nh = next.load();
            if !Self::adjacent_headers(elem, &h, next, &nh) || !self.take_unmerged(next, &nh) {
                break;
            }
            self.join(elem, next);
        }
        loop {
            let h = elem.load();
            let Some(prev) = Elem::from_addr(h.prev) else {
                break;
            };
            let ph = prev.load();
            if !Self::adjacent_headers(prev, &ph, elem, &h) || !self.take_unmerged(prev, &ph) {
                break;
            }
            self.join(prev, elem);
            elem = prev;
        }
        elem
    }

    /// Takes a neighbour that is about to be merged off its list: `true` for a free element
    /// (off its free list) or a parked one (off its quick list, its bytes cleared if its owner
    /// may have written them, so merging it keeps clean memory clean; then free); `false`,
    /// changing nothing, for a busy one.
    #[inline]
    fn take_unmerged(&mut self, elem: Elem, h: &ElemHeader) -> bool {
        match h.state() {
            Some(ElemState::Free) => self.st.free.remove(elem, h),
            Some(ElemState::Parked) => {
                self.st.quick.remove(elem, h);
                if h.is_dirty() {
                    Elem::zero_range(elem.data(), h.size as usize - HEADER_LEN);
                    // Cleared before the header says so (a recovery marks every free element
                    // dirty anyway, but the order keeps the header's word true).
                    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
                }
                elem.update(|e| {
                    e.state = ElemState::Free as u8;
                    e.flags &= !elem_flags::DIRTY;
                    e.free_prev = 0;
                    e.free_next = 0;
                });
            }
            _ => return false,
        }
        true
    }

    /// Takes `elem` out of the address-ordered links. One journaled step, or part of the
    /// caller's.
    pub(super) fn unlink(&mut self, elem: Elem) {
        let h = elem.load();
        let (prev, next) = (Elem::from_addr(h.prev), Elem::from_addr(h.next));
        self.step(|ops| {
            if let Some(prev) = prev {
                ops.step_save(prev, field::NEXT);
            }
            if let Some(next) = next {
                ops.step_save(next, field::PREV);
            }
            match prev {
                Some(prev) => prev.update(|p| p.next = h.next),
                None => ops.st.first = h.next,
            }
            match next {
                Some(next) => next.update(|n| n.prev = h.prev),
                None => ops.st.last = h.prev,
            }
        });
    }

    /// Hands `[va, va+len)` to the heap as one free element, merged with free neighbours.
    pub fn add_memory(&mut self, va: usize, len: usize, list_index: u32, flags: u8) -> Elem {
        annotate::make_noaccess(va as *const u8, len);
        let elem = Elem(va);
        // Memory usually arrives above what the heap has, so look for the neighbour from the end.
        let mut prev = Elem::from_addr(self.st.last);
        while let Some(p) = prev {
            if p.0 < va {
                break;
            }
            prev = Elem::from_addr(p.load().prev);
        }
        let next = match prev {
            Some(p) => p.load().next,
            None => self.st.first,
        };
        let opened = self.step_begin();
        // The memory being added is the heap's from now on: its first bytes need not come back.
        self.step_save_fresh(elem);
        if let Some(prev) = prev {
            self.step_save(prev, field::NEXT);
        }
        if let Some(next) = Elem::from_addr(next) {
            self.step_save(next, field::PREV);
        }
        elem.store(ElemHeader {
            magic: elem.expected_magic(),
            heap: self.addr,
            prev: prev.map_or(0, Elem::addr),
            next,
            free_prev: 0,
            free_next: 0,
            size: len as u64,
            pad: 0,
            list_index: list_index as u16,
            state: ElemState::Free as u8,
            flags,
        });
        match prev {
            Some(p) => p.update(|h| h.next = elem.addr()),
            None => self.st.first = elem.addr(),
        }
        match Elem::from_addr(next) {
            Some(n) => n.update(|h| h.prev = elem.addr()),
            None => self.st.last = elem.addr(),
        }
        self.step_end(opened);
        self.st.total_bytes += len as u64;
        if flags & elem_flags::RELEASABLE != 0 {
            self.st.releasable_bytes += len as u64;
        }
        let joined = self.join_free_neighbours(elem);
        self.st.free.insert(joined);
        joined
    }

    #[inline]
    fn page_size_allowed(&self, list_index: u16, page_flags: MemzoneFlags) -> bool {
        page_flags.is_empty()
            || page_flags.allows_page_size(self.memory.list_page_size(u32::from(list_index)))
    }

    /// Where in free element `elem` a block for `req` would start (its header), or `None` if it
    /// does not fit. The block goes at the *end* of the element: the front stays one free
    /// element, so a run of allocations leaves no holes between them (DPDK's `elem_start_pt`).
    #[inline(always)]
    pub fn start_point(&self, elem: Elem, h: &ElemHeader, req: &AllocRequest) -> Option<usize> {
        if !self.page_size_allowed(h.list_index, req.page_flags) {
            return None;
        }
        let start = elem.0;
        let mut end_pt = start + h.size as usize;
        let bmask = !(req.bound.wrapping_sub(1));
        // A busy element ends with its trailer (feature `debug`), after the data.
        let span = req.size + TRAILER_LEN;
        loop {
            let mut data = align_floor(end_pt.checked_sub(span)?, req.align);
            if req.bound != 0 && data & bmask != (data + req.size - 1) & bmask {
                // Move the block down so its data ends at the boundary it would have crossed
                // (the bound is about the data; a trailer may lie past it).
                end_pt = align_floor(end_pt, req.bound);
                data = align_floor(end_pt.checked_sub(req.size)?, req.align);
                if data + span > start + h.size as usize {
                    // The element ends at that boundary (a fresh heap's does), so the trailer
                    // has no room after it: the window below, whose end leaves room.
                    end_pt = end_pt.checked_sub(req.bound)?;
                    data = align_floor(end_pt.checked_sub(req.size)?, req.align);
                }
                if data & bmask != (data + req.size - 1) & bmask {
                    return None;
                }
            }
            let header = data.checked_sub(HEADER_LEN)?;
            if header < start {
                return None;
            }
            if !req.contig {
                return Some(header);
            }
            match self.memory.iova_break_in(data, req.size) {
                None => return Some(header),
                // Retry below the last discontinuity.
                Some(break_at) => end_pt = break_at,
            }
        }
    }

    /// A free element that can hold `req`, and where the block would start in it (never at
    /// address 0: non-zero, the pair comes back in two registers rather than through memory).
    #[inline]
    fn find_suitable(&self, req: &AllocRequest) -> Option<(Elem, NonZeroUsize)> {
        let need = (req.size + HEADER_LEN + TRAILER_LEN + req.align - CACHE_LINE) as u64;
        let unconstrained = req.bound == 0 && !req.contig && req.page_flags.is_empty();
        if unconstrained {
            // A few elements of the request's own class may fit exactly; DPDK would take one
            // of them before any bigger element, which keeps big blocks whole.
            let mut cur = self.st.free.head(class_of(need));
            for _ in 0..EXACT_CLASS_PROBES {
                let Some(elem) = cur else { break };
                let h = elem.load();
                if let Some(at) = self.start_point(elem, &h, req) {
                    return Some((elem, NonZeroUsize::new(at)?));
                }
                cur = Elem::from_addr(h.free_next);
            }
            // Every element of this class or above fits: two bit scans, no walking.
            if let Some(class) =
                class_at_least(need).and_then(|c| self.st.free.first_nonempty_from(c))
            {
                let elem = self.st.free.head(class).expect("non-empty list");
                let h = elem.load();
                if let Some(at) = self.start_point(elem, &h, req) {
                    return Some((elem, NonZeroUsize::new(at)?));
                }
            }
        }
        // Elements smaller than the worst case may still fit (alignment may cost nothing),
        // and constrained requests need each candidate checked: walk the lists in size order.
        let mut class = self
            .st
            .free
            .first_nonempty_from(class_of((req.size + HEADER_LEN + TRAILER_LEN) as u64));
        while let Some(c) = class {
            let mut cur = self.st.free.head(c);
            while let Some(elem) = cur {
                let h = elem.load();
                if let Some(at) = self.start_point(elem, &h, req) {
                    return Some((elem, NonZeroUsize::new(at)?));
                }
                cur = Elem::from_addr(h.free_next);
            }
            class = self.st.free.next_nonempty_after(c);
        }
        None
    }

    /// Makes a busy block for `req` at `block` inside free element `elem` (DPDK's
    /// `malloc_elem_alloc`); returns the data address.
    #[inline]
    fn alloc_at(&mut self, elem: Elem, block: usize, req: &AllocRequest) -> usize {
        let h = elem.load();
        let front = block - elem.0;
        let data_end = block + HEADER_LEN + req.size + TRAILER_LEN;
        let leftover = elem.0 + h.size as usize - data_end;
        // The usual case: the block is cut off the end of `elem`, whose front stays free. When
        // the front stays the head of the same list, taking `elem` off its list and putting it
        // back would leave every list (order, links, bitmaps) as it is, so both are skipped.
        let stays_listed = front >= MIN_SPLIT_LEN
            && leftover <= MIN_SPLIT_LEN
            && h.free_prev == 0
            && class_of(h.size) == class_of(front as u64);
        if !stays_listed {
            self.st.free.remove(elem, &h);
        }
        if leftover > MIN_SPLIT_LEN {
            let tail = self.split(elem, data_end);
            self.st.free.insert(tail);
        }
        self.st.alloc_count += 1;
        if front < MIN_SPLIT_LEN {
            // Too little in front for a free element: it becomes padding of this block, and a
            // pad header just before the data leads back to the real header. One step: a busy
            // element with padding but no pad header (or no trailer) is no element.
            let size = elem.load().size;
            let pad = (front > 0).then_some(Elem(block));
            self.step(|ops| {
                ops.step_save(elem, field::TAIL);
                if let Some(pad) = pad {
                    // In the free element's memory: nothing of it needs to come back.
                    ops.step_save_fresh(pad);
                }
                elem.update(|e| {
                    e.state = ElemState::Busy as u8;
                    e.pad = front as u32;
                });
                if let Some(pad) = pad {
                    pad.store(ElemHeader {
                        magic: pad.expected_magic(),
                        heap: ops.addr,
                        size: size - front as u64,
                        pad: front as u32,
                        list_index: h.list_index,
                        state: ElemState::Pad as u8,
                        flags: h.flags,
                        ..ElemHeader::default()
                    });
                }
                elem.seal(size);
            });
            return block + HEADER_LEN;
        }
        // The split and the trailer are one step: a busy element without its trailer is no
        // element either.
        self.step(|ops| {
            let busy = ops.split_as(elem, block, ElemState::Busy);
            busy.seal(busy.load().size);
        });
        if !stays_listed {
            self.st.free.insert(elem);
        }
        block + HEADER_LEN
    }

    /// Allocates from memory the heap has, growing it when allowed and needed. Returns the data
    /// address and whether the block may hold old data.
    #[inline]
    pub fn alloc(&mut self, req: &AllocRequest, may_grow: bool) -> Option<(NonZeroUsize, bool)> {
        if let Some(got) = self.unpark_for(req) {
            return Some(got);
        }
        let mut found = self.find_suitable(req);
        if self.consolidate_first(found.map(|(elem, _)| elem)) {
            self.consolidate();
            found = self.find_suitable(req);
        }
        let (elem, block) = match found {
            Some(found) => found,
            None if may_grow && self.grow(req) => self.find_suitable(req)?,
            None => return None,
        };
        let block = block.get();
        let data = self.alloc_at(elem, block, req);
        let real = elem_of_new_block(elem, block).load();
        // Announced with the usable size the block reports (`validate`), which is the request
        // rounded to a cache line except where alignment left a little slack at the end.
        if cfg!(feature = "memcheck") {
            annotate::malloclike(data as *const u8, real.usable_len(), 0, false);
        }
        Some((NonZeroUsize::new(data)?, real.is_dirty()))
    }

    /// Maps enough pages for `req` on this heap's socket and adds them (DPDK's
    /// `alloc_more_mem_on_socket`): allowed page sizes, biggest first.
    fn grow(&mut self, req: &AllocRequest) -> bool {
        if !self.memory.can_change_pages() {
            return false;
        }
        let mut sizes = self.memory.page_sizes();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        for page_size in sizes {
            if !req.page_flags.allows_page_size(page_size) {
                continue;
            }
            let bytes = (req.align + req.size + HEADER_LEN) as u64;
            let mut page_req = PageRequest::new(
                page_size,
                Socket::from_recorded(self.st.socket_id),
                bytes.div_ceil(page_size) as usize,
            );
            page_req.iova_contiguous = req.contig;
            let Ok(run) = self.memory.map_pages(page_req) else {
                continue;
            };
            let dirty = self.memory.any_page_dirty(run.va, run.len);
            let flags = elem_flags::RELEASABLE | if dirty { elem_flags::DIRTY } else { 0 };
            let elem = self.add_memory(run.va, run.len, run.list_index, flags);
            let h = elem.load();
            if self.start_point(elem, &h, req).is_some() {
                return true;
            }
            // The new pages did not help (an IOVA break in the merged element): give them back.
            self.release_pages(elem);
        }
        false
    }

    /// Frees busy element `elem` (DPDK's `malloc_elem_free` + `malloc_heap_free`): a small
    /// block of a socket heap is parked on its quick list, anything else merged at once.
    #[inline(always)]
    pub fn free(&mut self, elem: Elem, h: &ElemHeader) {
        let mut h = *h;
        let data = data_of(elem, &h);
        if h.pad > 0 {
            // The pad header sits in the block's own data: unmark it so it can never be taken
            // for a live header again, and the block loses its padding with it (one step: a
            // padded block without its pad header is no element).
            let pad = Elem(elem.0 + h.pad as usize);
            self.step(|ops| {
                ops.step_save(elem, field::TAIL);
                elem.update(|e| e.pad = 0);
            });
            // No longer anyone's pad header: a stale one inside a block being freed.
            Elem::zero_range(pad.0, HEADER_LEN);
            h.pad = 0;
        }
        self.st.alloc_count -= 1;
        annotate::freelike(data as *const u8, 0);
        if !self.try_park(elem, &h) {
            self.merge_freed(elem, &h);
        }
    }

    /// Makes element `elem` (header `h`, busy or parked, its pad header already erased, its
    /// count already taken off and off any list) free: merged with the free and parked
    /// elements around it, its bytes (which its owner may have written) cleared or the merged
    /// element marked dirty, on its free list, and whole free pages under it given back.
    #[inline(always)]
    pub(super) fn merge_freed(&mut self, elem: Elem, h: &ElemHeader) {
        let end = elem.0 + h.size as usize;
        elem.update(|e| {
            e.state = ElemState::Free as u8;
            e.pad = 0;
            e.free_prev = 0;
            e.free_next = 0;
            // Treated as clean while joining: if every neighbour is clean too, clearing a short
            // block keeps the whole merged element clean (see `CLEAR_ON_FREE_MAX`).
            e.flags &= !elem_flags::DIRTY;
        });
        let joined = self.join_free_neighbours(elem);
        let clear_len = end - elem.data();
        // Read before the free list rewrites the header: reading it back right after would
        // wait on those writes.
        let joined_flags = joined.load().flags;
        if joined_flags & elem_flags::DIRTY != 0 {
            // Nothing to clear: the merged element must be cleared on a zeroing allocation anyway.
        } else if clear_len <= CLEAR_ON_FREE_MAX {
            Elem::zero_range(elem.data(), clear_len);
        } else {
            joined.update(|j| j.flags |= elem_flags::DIRTY);
        }
        self.st.free.insert(joined);
        if joined_flags & elem_flags::RELEASABLE != 0 {
            self.release_pages(joined);
        }
    }

    /// Gives whole pages inside free element `elem` (on its free list) back to the system,
    /// except pinned ones; what is left of the element stays free.
    #[inline]
    fn release_pages(&mut self, elem: Elem) {
        let h = elem.load();
        if h.flags & elem_flags::RELEASABLE == 0 || !self.memory.can_change_pages() {
            return;
        }
        self.release_pages_of(elem, &h);
    }

    /// [`HeapOps::release_pages`] for a releasable element of header `h`.
    fn release_pages_of(&mut self, elem: Elem, h: &ElemHeader) {
        let page_size = self.memory.list_page_size(u32::from(h.list_index)) as usize;
        let (start, end) = (elem.0, elem.0 + h.size as usize);
        if end - start < page_size {
            return;
        }
        let first_page = start.next_multiple_of(page_size);
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut page = first_page;
        while page + page_size <= end {
            if self.memory.page_is_releasable(page) {
                match runs.last_mut() {
                    Some(run) if run.1 == page => run.1 += page_size,
                    _ => runs.push((page, page + page_size)),
                }
            }
            page += page_size;
        }
        let mut cur = Some(elem);
        for (mut run_start, mut run_end) in runs {
            let Some(c) = cur else { break };
            let ch = c.load();
            let c_end = c.0 + ch.size as usize;
            // What stays on either side must be nothing or a whole free element.
            let before = run_start - c.0;
            if before > 0 && before < MIN_SPLIT_LEN {
                run_start += page_size;
            }
            let after = c_end - run_end;
            if after > 0 && after < MIN_SPLIT_LEN {
                run_end -= page_size;
            }
            if run_start >= run_end {
                continue;
            }
            self.st.free.remove(c, &ch);
            let run_elem = if run_start > c.0 {
                let r = self.split(c, run_start);
                self.st.free.insert(c);
                r
            } else {
                c
            };
            cur = if run_end < c_end {
                let tail = self.split(run_elem, run_end);
                self.st.free.insert(tail);
                Some(tail)
            } else {
                None
            };
            self.unlink(run_elem);
            self.st.total_bytes -= (run_end - run_start) as u64;
            self.st.releasable_bytes -= (run_end - run_start) as u64;
            if self
                .memory
                .unmap_pages(run_start, run_end - run_start)
                .is_err()
            {
                // Still mapped (`--match-allocations` refuses partial runs): keep it as free
                // memory of the heap, merged back with what was split off, and stop here.
                self.add_memory(
                    run_start,
                    run_end - run_start,
                    u32::from(ch.list_index),
                    ch.flags,
                );
                break;
            }
        }
    }

    /// Grows or shrinks busy element `elem` in place so its data holds `size` bytes (multiple
    /// of a cache line). Fails when the next element cannot give the room, the block untouched
    /// (a parked neighbour may have been merged meanwhile, as freeing it at once would have).
    pub fn resize(&mut self, elem: Elem, size: usize) -> bool {
        let h = elem.load();
        let old_usable = h.usable_len();
        let needed = HEADER_LEN + h.pad as usize + size + TRAILER_LEN;
        let grow_into = if (h.size as usize) < needed {
            let Some(next) = Elem::from_addr(h.next) else {
                return false;
            };
            let nh = next.load();
            if nh.state() == Some(ElemState::Parked) && Self::adjacent_headers(elem, &h, next, &nh)
            {
                // Merged with what lies around it (as freeing it at once would have), the
                // parked neighbour may give the room.
                self.st.quick.remove(next, &nh);
                self.merge_freed(next, &nh);
                return self.resize(elem, size);
            }
            if !nh.is_free()
                || !Self::adjacent(elem, &h, next)
                || ((h.size + nh.size) as usize) < needed
            {
                return false;
            }
            self.st.free.remove(next, &nh);
            Some(next)
        } else {
            None
        };
        // One step from the first header written to the trailer: the block's size, its pad
        // header's copy of it and its trailer must agree.
        let pad = (h.pad > 0).then_some(Elem(elem.0 + h.pad as usize));
        let tail = self.step(|ops| {
            if let Some(pad) = pad {
                ops.step_save(pad, field::SIZE);
            }
            if let Some(next) = grow_into {
                ops.join(elem, next);
            }
            let spare = elem.load().size as usize - needed;
            let tail = (spare > MIN_SPLIT_LEN).then(|| {
                let tail = ops.split(elem, elem.0 + needed);
                // The tail held this block's data (or free memory of unknown state): dirty.
                tail.update(|t| t.flags |= elem_flags::DIRTY);
                tail
            });
            let new_size = elem.load().size;
            if let Some(pad) = pad {
                pad.update(|p| p.size = new_size - u64::from(h.pad));
            }
            if cfg!(feature = "debug") {
                // The new trailer may land in the block's own data.
                ops.st
                    .journal
                    .save_word(elem.0 + new_size as usize - TRAILER_LEN);
            }
            elem.seal(new_size);
            tail
        });
        if let Some(tail) = tail {
            let tail = self.join_free_neighbours(tail);
            self.st.free.insert(tail);
            self.release_pages(tail);
        }
        let new = elem.load();
        if new.usable_len() != old_usable {
            annotate::resize_in_place(
                data_of(elem, &h) as *const u8,
                old_usable,
                new.usable_len(),
                0,
            );
        }
        true
    }

    /// The biggest block of data `free` element could give with `align`, and where it starts.
    pub fn biggest_block_in(&self, elem: Elem, h: &ElemHeader, align: usize) -> usize {
        let data = (elem.0 + HEADER_LEN).next_multiple_of(align);
        let end = elem.0 + h.size as usize - TRAILER_LEN;
        end.saturating_sub(data) & !(CACHE_LINE - 1)
    }

    /// The free element offering the biggest block for `align` and `page_flags`.
    pub fn biggest_free(&self, align: usize, page_flags: MemzoneFlags, contig: bool) -> usize {
        let mut best = 0;
        self.st.free.for_each(|_, elem, h| {
            if !self.page_size_allowed(h.list_index, page_flags) {
                return;
            }
            let mut len = self.biggest_block_in(elem, h, align);
            if contig && len > 0 {
                let data = (elem.0 + HEADER_LEN).next_multiple_of(align);
                if let Some(brk) = self.memory.iova_break_in(data, len) {
                    // Only the part above the last break is contiguous to the end.
                    len = (data + len).saturating_sub(brk.max(data));
                }
            }
            best = best.max(len);
        });
        best
    }
}

/// The real header of the block placed at `block` in free element `elem`: the element itself
/// when the front became padding, otherwise the new element split off at `block`.
#[inline]
fn elem_of_new_block(elem: Elem, block: usize) -> Elem {
    if block - elem.0 < MIN_SPLIT_LEN {
        elem
    } else {
        Elem(block)
    }
}
