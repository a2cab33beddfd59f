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
}
