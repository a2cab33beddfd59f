//! Quick lists: small blocks freed on a socket heap wait here, whole and unmerged, for the next
//! allocation of their exact size (the idea of glibc's fastbins, kept under the heap's lock).
//!
//! Freeing a small block in DPDK's element model costs a merge with both neighbours, free-list
//! moves and a clear; allocating one costs a split. A program that frees and allocates blocks
//! of the same few sizes — the usual pattern — pays both each time. A block on a quick list is
//! an element in state [`ElemState::Parked`](super::elem::ElemState::Parked): still linked to
//! its neighbours in address order, with its size, on a doubly linked list per size (the
//! `free_next`/`free_prev` links of its header). Taking it back is a pop.
//!
//! Parked blocks are free memory that has not been merged yet. The heap merges every one of
//! them ("consolidates") before anything looks at merged free space: statistics, dumps, the
//! biggest-block search of `len 0` memzones, an allocation that finds no free element or would
//! cut into the biggest one, and before more than [`PARKED_MAX_BYTES`] wait. A free that is not
//! parked merges the free and parked elements around it. So the figures a program can see (free
//! bytes, greatest free block, free count, "frees in any order merge back to one block") are
//! those of a heap that merged every free at once, though where later blocks land may differ;
//! a freed or parked block is still refused by `validate` and `free` (its header says it is not
//! busy). Where pages can go back to the system, a block is parked only when that cannot keep a
//! page mapped that merging at once would give back (see `HeapOps::may_park`).

use super::elem::{Elem, ElemHeader, CACHE_LINE, HEADER_LEN};

/// The biggest block data a quick list takes, in bytes: blocks up to a page of 4 KiB, the
/// sizes programs free and allocate again and again (descriptors, small tables, messages).
pub const MAX_QUICK_DATA: usize = 4 << 10;

/// Elements of at most this many bytes are parked: the biggest block's data with its header,
/// a trailer (feature `debug`) and the little slack an allocation may leave in its element.
/// The same with and without the trailer, so the shared layout does not depend on features.
pub const MAX_QUICK_ELEM: usize = MAX_QUICK_DATA + HEADER_LEN + 3 * CACHE_LINE;

/// One list per element size in cache lines, 0 up to [`MAX_QUICK_ELEM`] (the smallest ones stay
/// empty: an element is at least a header and a line of data).
pub const QUICK_LIST_COUNT: usize = MAX_QUICK_ELEM / CACHE_LINE + 1;

/// Bytes of parked elements above which the heap consolidates at once: one 2 MiB page. It
/// bounds the free memory parked blocks keep fragmented, and the work (merging, and clearing
/// what their owners wrote) one consolidation does under the heap lock.
pub const PARKED_MAX_BYTES: u64 = 2 << 20;

/// The quick lists of one heap, in its shared state. All-zero bytes are empty lists.
///
/// Each list is doubly linked through its elements' `free_next`/`free_prev`, so a parked element
/// can be taken off in place when a neighbour's free merges it. The head's `free_prev` is left as
/// it was (a pop does not write the next element's header): whether an element is a head is
/// told by the head array, and only a non-head's `free_prev` is ever read.
#[repr(C)]
#[derive(Debug)]
pub struct QuickLists {
    /// Head of each list (an element header address, 0 when empty), by element size / 64.
    heads: [u64; QUICK_LIST_COUNT],
    /// Parked elements and their bytes (headers included), on all lists.
    pub parked_count: u64,
    pub parked_bytes: u64,
}

/// The list of an element of `size` bytes, if elements that size are parked.
#[inline]
pub fn list_of(size: u64) -> Option<usize> {
    (size <= MAX_QUICK_ELEM as u64).then_some(size as usize / CACHE_LINE)
}

impl QuickLists {
    /// Empties every list (without touching the elements: a heap's recovery turns them free).
    pub fn clear(&mut self) {
        self.heads = [0; QUICK_LIST_COUNT];
        self.parked_count = 0;
        self.parked_bytes = 0;
    }

    /// Whether any element is parked.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.parked_count == 0
    }

    /// The head of list `list`, if any (not taken off).
    #[inline]
    pub fn head(&self, list: usize) -> Option<Elem> {
        Elem::from_addr(self.heads[list])
    }

    /// Puts `elem` (`size` bytes, list `list`) at the head of its list and returns what its
    /// header's `free_next` must say (the old head), for the caller to write with the rest of
    /// the header.
    #[inline]
    pub fn push(&mut self, list: usize, size: u64, elem: Elem) -> u64 {
        let old = self.heads[list];
        if let Some(old) = Elem::from_addr(old) {
            old.set_free_prev(elem.addr());
        }
        self.heads[list] = elem.addr();
        self.parked_count += 1;
        self.parked_bytes += size;
        old
    }

    /// Takes the head of list `list` off, whose header says `free_next` is `next` and `size`
    /// bytes.
    #[inline]
    pub fn pop_head(&mut self, list: usize, next: u64, size: u64) {
        self.heads[list] = next;
        self.parked_count -= 1;
        self.parked_bytes -= size;
    }

    /// Takes parked element `elem` (header `h`) off its list, wherever it is on it.
    #[inline]
    pub fn remove(&mut self, elem: Elem, h: &ElemHeader) {
        let list = list_of(h.size).expect("a parked element is on a quick list");
        if self.heads[list] == elem.addr() {
            self.pop_head(list, h.free_next, h.size);
            return;
        }
        if let Some(prev) = Elem::from_addr(h.free_prev) {
            prev.set_free_next(h.free_next);
        }
        if let Some(next) = Elem::from_addr(h.free_next) {
            next.set_free_prev(h.free_prev);
        }
        self.parked_count -= 1;
        self.parked_bytes -= h.size;
    }

    /// Walks every list for the consistency check: `f` gets each element with its list and
    /// returns the element's header; links must agree both ways and no list may be longer than
    /// the parked count.
    pub fn walk(
        &self,
        mut f: impl FnMut(usize, Elem) -> Result<ElemHeader, String>,
    ) -> Result<(), String> {
        for (list, &head) in self.heads.iter().enumerate() {
            let mut cur = Elem::from_addr(head);
            let mut before: Option<Elem> = None;
            let mut steps = 0u64;
            while let Some(e) = cur {
                steps += 1;
                if steps > self.parked_count {
                    return Err(format!(
                        "quick list {list} is longer than the parked count (a cycle?)"
                    ));
                }
                let h = f(list, e)?;
                if let Some(b) = before {
                    if h.free_prev != b.addr() {
                        return Err(format!(
                            "quick list {list}: {:#x} links back to {:#x}, not {:#x}",
                            e.0, h.free_prev, b.0
                        ));
                    }
                }
                before = Some(e);
                cur = Elem::from_addr(h.free_next);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` element headers in ordinary memory, each `size` bytes by its header: the lists only
    /// read and write the headers' links, so no heap is needed to check their bookkeeping.
    fn headers(n: usize, size: u64) -> Vec<ElemHeader> {
        vec![
            ElemHeader {
                size,
                ..ElemHeader::default()
            };
            n
        ]
    }

    fn elem(headers: &[ElemHeader], i: usize) -> Elem {
        Elem(&raw const headers[i] as usize)
    }

    fn empty() -> QuickLists {
        QuickLists {
            heads: [0; QUICK_LIST_COUNT],
            parked_count: 0,
            parked_bytes: 0,
        }
    }

    /// Pushes `e` as the parking code does: the returned old head becomes its `free_next`.
    fn park(q: &mut QuickLists, e: Elem) {
        let size = e.load().size;
        let list = list_of(size).unwrap();
        let next = q.push(list, size, e);
        e.update(|h| {
            h.free_prev = 0;
            h.free_next = next;
        });
    }

    /// The elements of list `list`, head first, as the walk sees them.
    fn walked(q: &QuickLists, list: usize) -> Result<Vec<Elem>, String> {
        let mut seen = Vec::new();
        q.walk(|l, e| {
            if l == list {
                seen.push(e);
            }
            Ok(e.load())
        })?;
        Ok(seen)
    }

    #[test]
    fn every_size_up_to_the_largest_quick_element_has_a_list_and_no_bigger_one_does() {
        assert_eq!(list_of(128), Some(2));
        assert_eq!(list_of(MAX_QUICK_ELEM as u64), Some(QUICK_LIST_COUNT - 1));
        assert_eq!(list_of(MAX_QUICK_ELEM as u64 + CACHE_LINE as u64), None);
        // A 4 KiB block, its header, a trailer and two lines of slack left by an allocation
        // still park (the list for it exists).
        let biggest = MAX_QUICK_DATA + HEADER_LEN + 3 * CACHE_LINE;
        assert!(MAX_QUICK_DATA >= 4096 && list_of(biggest as u64).is_some());
        // At most one 2 MiB page of parked blocks: big enough to hold many 4 KiB blocks.
        assert!(PARKED_MAX_BYTES >= 256 * MAX_QUICK_ELEM as u64);
    }

    #[test]
    fn a_list_is_last_in_first_out_and_a_removal_anywhere_relinks_both_ways() {
        let hs = headers(4, 256);
        let e: Vec<Elem> = (0..4).map(|i| elem(&hs, i)).collect();
        let mut q = empty();
        assert!(q.is_empty());
        for &x in &e {
            park(&mut q, x);
        }
        let list = list_of(256).unwrap();
        assert!(!q.is_empty());
        assert_eq!((q.parked_count, q.parked_bytes), (4, 1024));
        assert_eq!(q.head(list), Some(e[3]), "the last one parked is the head");
        assert_eq!(walked(&q, list).unwrap(), vec![e[3], e[2], e[1], e[0]]);
        // Out of the middle: its neighbours link to each other.
        q.remove(e[2], &e[2].load());
        assert_eq!(walked(&q, list).unwrap(), vec![e[3], e[1], e[0]]);
        assert_eq!(e[1].load().free_prev, e[3].addr());
        assert_eq!((q.parked_count, q.parked_bytes), (3, 768));
        // The head: the next one becomes the head.
        q.remove(e[3], &e[3].load());
        assert_eq!(q.head(list), Some(e[1]));
        assert_eq!(walked(&q, list).unwrap(), vec![e[1], e[0]]);
        assert_eq!((q.parked_count, q.parked_bytes), (2, 512));
        // The tail.
        q.remove(e[0], &e[0].load());
        assert_eq!(walked(&q, list).unwrap(), vec![e[1]]);
        let (next, size, _) = e[1].quick_fields();
        q.pop_head(list, next, size);
        assert_eq!(q.head(list), None);
        assert!(q.is_empty());
        assert_eq!(q.parked_bytes, 0);
        // Clearing forgets every list and count.
        park(&mut q, e[0]);
        q.clear();
        assert!(q.is_empty() && q.parked_bytes == 0 && q.head(list).is_none());
    }

    #[test]
    fn the_walk_refuses_a_wrong_back_link_and_a_list_longer_than_the_count() {
        let hs = headers(3, 192);
        let e: Vec<Elem> = (0..3).map(|i| elem(&hs, i)).collect();
        let mut q = empty();
        for &x in &e {
            park(&mut q, x);
        }
        let list = list_of(192).unwrap();
        // Exactly as long as the count: fine.
        assert_eq!(walked(&q, list).unwrap().len(), 3);
        // A back link that names the wrong element.
        e[1].set_free_prev(e[0].addr());
        let err = walked(&q, list).unwrap_err();
        assert!(err.contains("links back"), "{err}");
        e[1].set_free_prev(e[2].addr());
        assert!(walked(&q, list).is_ok());
        // A list longer than the count (as a cycle would make it).
        q.parked_count = 2;
        let err = walked(&q, list).unwrap_err();
        assert!(err.contains("longer than the parked count"), "{err}");
        q.parked_count = 3;
        // What the caller's check finds wrong with an element stops the walk.
        let err = q
            .walk(|_, x| {
                if x == e[0] {
                    Err("bad entry".to_string())
                } else {
                    Ok(x.load())
                }
            })
            .unwrap_err();
        assert_eq!(err, "bad entry");
    }
}
