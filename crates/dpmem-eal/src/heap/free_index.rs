//! The heap's free lists: two-level segregated fits, as in TLSF (Masmano et al., "TLSF: a new
//! dynamic memory allocator for real-time systems", 2004).
//!
//! Sizes are split first by their highest set bit (the first level), then into 16 equal
//! sub-ranges (the second level); one bitmap word says which first-level rows have any free
//! element and one word per row says which of its lists are non-empty. Finding a list that holds
//! only elements at least as big as a request is then two bit scans, whatever the number of free
//! elements — where DPDK walks its size-class lists element by element.
//!
//! Sizes below 1 KiB fall into row 0, cut into exact 64-byte classes (every element size is a
//! multiple of a cache line).

use super::elem::{Elem, ElemHeader};

const SL_LOG2: u32 = 4;
pub const SL_COUNT: usize = 1 << SL_LOG2;
/// log2 of the smallest size handled by rows 1 and up (1 KiB).
const FL_SHIFT: u32 = SL_LOG2 + 6;
pub const FL_COUNT: usize = 64 - FL_SHIFT as usize + 1;

/// The list (row, column) a free element of `size` bytes belongs to.
#[inline]
pub fn class_of(size: u64) -> (usize, usize) {
    if size < (1 << FL_SHIFT) {
        (0, (size >> 6) as usize)
    } else {
        let msb = 63 - size.leading_zeros();
        let fl = (msb - FL_SHIFT + 1) as usize;
        let sl = ((size >> (msb - SL_LOG2)) as usize) ^ SL_COUNT;
        (fl, sl)
    }
}

/// The first list whose every element is at least `size` bytes: `size` rounded up to the next
/// class boundary, then classified.
#[inline]
pub fn class_at_least(size: u64) -> Option<(usize, usize)> {
    if size < (1 << FL_SHIFT) {
        return Some(class_of(size.next_multiple_of(64)));
    }
    let msb = 63 - size.leading_zeros();
    let round = (1u64 << (msb - SL_LOG2)) - 1;
    size.checked_add(round).map(|s| class_of(s & !round))
}

#[repr(C)]
#[derive(Debug)]
pub struct FreeIndex {
    /// Bit `fl` set: row `fl` has a non-empty list.
    row_bitmap: u64,
    /// Bit `sl` of word `fl` set: list (fl, sl) is non-empty.
    list_bitmaps: [u32; FL_COUNT],
    /// Heads of the lists (element header addresses, 0 when empty).
    heads: [[u64; SL_COUNT]; FL_COUNT],
}

impl FreeIndex {
    /// Empties every list (without touching the elements), for a rebuild.
    pub fn clear(&mut self) {
        self.row_bitmap = 0;
        self.list_bitmaps = [0; FL_COUNT];
        self.heads = [[0; SL_COUNT]; FL_COUNT];
    }

    pub fn is_empty(&self) -> bool {
        self.row_bitmap == 0
    }

    #[inline]
    pub fn head(&self, class: (usize, usize)) -> Option<Elem> {
        Elem::from_addr(self.heads[class.0][class.1])
    }

    /// Puts a free element at the head of its list.
    #[inline]
    pub fn insert(&mut self, elem: Elem) {
        let mut h = elem.load();
        let (fl, sl) = class_of(h.size);
        let old = self.heads[fl][sl];
        h.free_prev = 0;
        h.free_next = old;
        elem.store(h);
        if let Some(old) = Elem::from_addr(old) {
            old.update(|o| o.free_prev = elem.addr());
        }
        self.heads[fl][sl] = elem.addr();
        self.list_bitmaps[fl] |= 1 << sl;
        self.row_bitmap |= 1 << fl;
    }

    /// Takes a free element off its list; `size` must be the size it was inserted with.
    #[inline]
    pub fn remove(&mut self, elem: Elem, h: &ElemHeader) {
        let (fl, sl) = class_of(h.size);
        if let Some(prev) = Elem::from_addr(h.free_prev) {
            prev.update(|p| p.free_next = h.free_next);
        } else {
            self.heads[fl][sl] = h.free_next;
            if h.free_next == 0 {
                self.list_bitmaps[fl] &= !(1 << sl);
                if self.list_bitmaps[fl] == 0 {
                    self.row_bitmap &= !(1 << fl);
                }
            }
        }
        if let Some(next) = Elem::from_addr(h.free_next) {
            next.update(|n| n.free_prev = h.free_prev);
        }
        elem.update(|e| {
            e.free_prev = 0;
            e.free_next = 0;
        });
    }

    /// The first non-empty list at or after `class` in size order.
    #[inline]
    pub fn first_nonempty_from(&self, class: (usize, usize)) -> Option<(usize, usize)> {
        let (mut fl, sl) = class;
        if fl >= FL_COUNT {
            return None;
        }
        let mut lists = self.list_bitmaps[fl] & (u32::MAX.checked_shl(sl as u32).unwrap_or(0));
        if lists == 0 {
            let rows = self.row_bitmap & (u64::MAX.checked_shl(fl as u32 + 1).unwrap_or(0));
            if rows == 0 {
                return None;
            }
            fl = rows.trailing_zeros() as usize;
            lists = self.list_bitmaps[fl];
        }
        Some((fl, lists.trailing_zeros() as usize))
    }

    /// The non-empty list after `class` in size order.
    pub fn next_nonempty_after(&self, class: (usize, usize)) -> Option<(usize, usize)> {
        let (fl, sl) = class;
        if sl + 1 < SL_COUNT {
            self.first_nonempty_from((fl, sl + 1))
        } else {
            self.first_nonempty_from((fl + 1, 0))
        }
    }

    /// The highest non-empty list (it holds the biggest free element).
    pub fn last_nonempty(&self) -> Option<(usize, usize)> {
        if self.row_bitmap == 0 {
            return None;
        }
        let fl = 63 - self.row_bitmap.leading_zeros() as usize;
        let sl = 31 - self.list_bitmaps[fl].leading_zeros() as usize;
        Some((fl, sl))
    }

    /// Every free element, list by list in size order.
    pub fn for_each(&self, mut f: impl FnMut((usize, usize), Elem, &ElemHeader)) {
        let mut class = self.first_nonempty_from((0, 0));
        while let Some(c) = class {
            let mut cur = self.head(c);
            while let Some(e) = cur {
                let h = e.load();
                f(c, e, &h);
                cur = Elem::from_addr(h.free_next);
            }
            class = self.next_nonempty_after(c);
        }
    }

    /// Whether the bitmaps agree with the lists (for the consistency check).
    pub fn bitmaps_consistent(&self) -> bool {
        (0..FL_COUNT).all(|fl| {
            let row_set = self.row_bitmap & (1 << fl) != 0;
            let lists_ok = (0..SL_COUNT)
                .all(|sl| (self.list_bitmaps[fl] & (1 << sl) != 0) == (self.heads[fl][sl] != 0));
            lists_ok && row_set == (self.list_bitmaps[fl] != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_monotonic_and_rounding_never_undershoots() {
        let mut last = (0, 0);
        for size in (64..1 << 22).step_by(64) {
            let c = class_of(size);
            assert!(c >= last, "class of {size} went backwards");
            last = c;
            let at_least = class_at_least(size).unwrap();
            assert!(at_least >= c);
            // Every size in the rounded-up class is at least `size`: the class's smallest
            // member maps to it and is >= size.
            let mut probe = size;
            while class_of(probe) < at_least {
                probe += 64;
            }
            assert!(probe >= size);
        }
        assert_eq!(class_of(64), (0, 1));
        assert_eq!(class_of(1024), (1, 0));
        assert_eq!(class_of(2047 & !63), (1, 15));
        assert!(class_of(u64::MAX).0 < FL_COUNT);
    }

    /// The smallest element size list `class` holds.
    fn smallest_in((fl, sl): (usize, usize)) -> u64 {
        if fl == 0 {
            sl as u64 * 64
        } else {
            ((SL_COUNT + sl) as u64) << (fl as u32 + FL_SHIFT - 1 - SL_LOG2)
        }
    }

    /// `class_at_least(size)` is the first list whose every element is at least `size` bytes:
    /// its smallest member is no smaller than `size`, and the list before it holds a smaller
    /// one (rounding up no further than needed), for any size, a multiple of a cache line or
    /// not; a size no class can round up to is `None`.
    #[test]
    fn class_at_least_is_the_first_list_whose_every_element_is_big_enough() {
        let sizes = (1..4096u64)
            .chain((4096..1 << 22).step_by(64))
            .chain((23..64).flat_map(|bit| {
                let p = 1u64 << bit;
                [p - 1, p, p + 1, p + (p >> 4) - 1, p + (p >> 4) + 1]
            }));
        for size in sizes {
            let Some(c) = class_at_least(size) else {
                panic!("{size} has a class")
            };
            assert!(c.0 < FL_COUNT && c.1 < SL_COUNT, "{size}: {c:?}");
            assert!(smallest_in(c) >= size, "{size}: {c:?} holds smaller");
            let before = match c {
                (0, 0) => None,
                (fl, 0) => Some((fl - 1, SL_COUNT - 1)),
                (fl, sl) => Some((fl, sl - 1)),
            };
            if let Some(before) = before {
                assert!(
                    smallest_in(before) < size,
                    "{size}: {c:?} rounds past {before:?}"
                );
            }
        }
        assert_eq!(class_at_least(u64::MAX), None);
    }

    /// Element headers in ordinary memory, as they would be in heap memory: 64-byte aligned.
    #[repr(C, align(64))]
    struct Headers([ElemHeader; 4]);

    /// Free elements inserted and removed again: the index says it is empty exactly when no
    /// list holds one, finds each by its class and in size order, and its bitmaps agree with
    /// its lists after every step.
    #[test]
    fn the_index_is_empty_exactly_when_no_list_holds_an_element() {
        let mut mem = Box::new(Headers([ElemHeader::default(); 4]));
        let sizes = [128u64, 128, 4096, 1 << 20];
        let elems: Vec<Elem> = (0..4)
            .map(|i| {
                let elem = Elem(&raw mut mem.0[i] as usize);
                elem.store(ElemHeader {
                    size: sizes[i],
                    ..ElemHeader::default()
                });
                elem
            })
            .collect();
        let mut index = FreeIndex {
            row_bitmap: 0,
            list_bitmaps: [0; FL_COUNT],
            heads: [[0; SL_COUNT]; FL_COUNT],
        };
        assert!(index.is_empty());
        assert_eq!(index.first_nonempty_from((0, 0)), None);
        for &elem in &elems {
            index.insert(elem);
            assert!(!index.is_empty());
            assert!(index.bitmaps_consistent());
        }
        let classes: Vec<_> = sizes.iter().map(|&s| class_of(s)).collect();
        assert_eq!(index.head(classes[0]), Some(elems[1]), "newest first");
        assert_eq!(index.first_nonempty_from((0, 0)), Some(classes[0]));
        assert_eq!(index.next_nonempty_after(classes[0]), Some(classes[2]));
        assert_eq!(index.next_nonempty_after(classes[2]), Some(classes[3]));
        assert_eq!(index.next_nonempty_after(classes[3]), None);
        assert_eq!(index.last_nonempty(), Some(classes[3]));
        // The consistency check notices a bitmap that disagrees with the lists: a list
        // marked non-empty that is empty, or a row marked empty that holds one.
        let (fl, sl) = classes[0];
        let empty_sl = (0..SL_COUNT).find(|&x| x != sl).unwrap();
        index.list_bitmaps[fl] |= 1 << empty_sl;
        assert!(
            !index.bitmaps_consistent(),
            "an empty list marked non-empty"
        );
        index.list_bitmaps[fl] &= !(1 << empty_sl);
        index.row_bitmap &= !(1 << fl);
        assert!(!index.bitmaps_consistent(), "a non-empty row marked empty");
        index.row_bitmap |= 1 << fl;
        assert!(index.bitmaps_consistent());
        let mut seen = Vec::new();
        index.for_each(|c, e, h| seen.push((c, e, h.size)));
        assert_eq!(
            seen,
            [(classes[0], elems[1], 128), (classes[0], elems[0], 128)]
                .into_iter()
                .chain([
                    (classes[2], elems[2], 4096),
                    (classes[3], elems[3], 1 << 20)
                ])
                .collect::<Vec<_>>()
        );
        // Removed in an order that takes a lone element, one behind a list's head, then the head.
        for i in [3, 0, 1, 2] {
            let h = elems[i].load();
            index.remove(elems[i], &h);
            let h = elems[i].load();
            assert_eq!((h.free_prev, h.free_next), (0, 0), "links cleared");
            assert!(index.bitmaps_consistent());
            assert_eq!(index.is_empty(), i == 2, "after removing {i}");
        }
        assert_eq!(index.last_nonempty(), None);
    }
}
