//! Where an object's bytes go: the header before it, the element, the trailer after it
//! (DPDK's `rte_mempool_calc_obj_size`), and how much memory a number of objects needs.

use crate::flags::MempoolFlags;

/// What object headers and chunk records say of an unknown IOVA (DPDK's `RTE_BAD_IOVA`); the
/// public API says `None`.
pub(crate) const BAD_IOVA: u64 = dpmem_eal::Iova::to_raw(None);

/// Cache line: objects start on one unless [`MempoolFlags::NO_CACHE_ALIGN`].
pub const CACHE_LINE: usize = 64;

/// Header word that says "this object is in its pool" (debug feature).
pub(crate) const COOKIE_IN_POOL: u64 = 0xbadb_bbad_badb_bbad;
/// Header word that says "this object is out, with a user" (debug feature).
pub(crate) const COOKIE_OUT: u64 = 0xf2ee_efee_f2ee_efee;
/// Trailer word after every element (debug feature); a changed value is a write past the end.
pub(crate) const COOKIE_TRAILER: u64 = 0xadd2_e3da_add2_e3da;

/// The header just before each object. It lives in shared memory; its pointers are
/// addresses every process maps at the same place.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ObjHeader {
    /// Next object in the pool's list of all objects (0: last), for `obj_iter`.
    pub next: u64,
    /// Address of the owning pool's header.
    pub pool: u64,
    /// IOVA of the object (not of the header), or [`BAD_IOVA`].
    pub iova: u64,
    /// [`COOKIE_IN_POOL`] or [`COOKIE_OUT`]; only checked with the debug feature, always
    /// present so that the layout does not depend on a feature.
    pub cookie: u64,
}

/// The sizes of one object slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjSize {
    /// Bytes before the element (the `ObjHeader`, padded to a cache line when aligned).
    pub header_size: u32,
    /// The element, rounded up to 8 bytes.
    pub elt_size: u32,
    /// Bytes after it: the debug trailer cookie and the padding to the next cache line.
    pub trailer_size: u32,
    /// The whole slot.
    pub total_size: u32,
}

/// The slot sizes for elements of `elt_size` bytes, or `None` when the slot would be 4 GiB or
/// more (its sizes are `u32`, as DPDK's are; such elements cannot make a pool).
pub fn calc_obj_size(elt_size: u32, flags: MempoolFlags) -> Option<ObjSize> {
    let aligned = !flags.contains(MempoolFlags::NO_CACHE_ALIGN);
    let mut header = core::mem::size_of::<ObjHeader>();
    if aligned {
        header = header.next_multiple_of(CACHE_LINE);
    }
    let elt = (elt_size as usize).next_multiple_of(8);
    let mut trailer = if cfg!(feature = "debug") { 8 } else { 0 };
    if aligned {
        let total = header + elt + trailer;
        trailer += total.next_multiple_of(CACHE_LINE) - total;
    }
    Some(ObjSize {
        header_size: u32::try_from(header).ok()?,
        elt_size: u32::try_from(elt).ok()?,
        trailer_size: u32::try_from(trailer).ok()?,
        total_size: u32::try_from(header + elt + trailer).ok()?,
    })
}

/// Alignment of a slot's start.
pub(crate) fn slot_align(flags: MempoolFlags) -> usize {
    if flags.contains(MempoolFlags::NO_CACHE_ALIGN) {
        8
    } else {
        CACHE_LINE
    }
}

/// Whether a slot `[start, start + total)` crosses a multiple of `page` (0: no pages to
/// respect). Slots larger than a page cannot avoid it and are let through.
pub(crate) fn crosses_page(start: usize, total: usize, page: usize) -> bool {
    page != 0 && total <= page && start / page != (start + total - 1) / page
}

/// Bytes of memory that hold `objs` slots of `total` bytes laid out from a `page`-aligned
/// start with no slot crossing a page (`page` 0: back to back), plus room to align the start.
pub(crate) fn mem_size(objs: usize, total: usize, page: usize, align: usize) -> usize {
    if page == 0 || total > page {
        return objs * total + align;
    }
    let per_page = page / total;
    objs.div_ceil(per_page) * page
}

/// Bytes of memory that hold `objs` slots of `total` bytes with no slot crossing a page
/// (`page` 0: back to back) wherever in a page the memory starts (slot-aligned): what a chunk
/// of memory that is not page-aligned needs (DPDK's default `calc_mem_size`).
///
/// Laid out from a page boundary, the slots fill whole pages and then `last` slots of the
/// last one. Starting `x` bytes into a page instead, the first `a` slots fit before the
/// boundary, leaving `w < total` bytes unused there, and the rest go from the boundary on
/// as before: `a * total + w` bytes more than those `a` slots would take from a boundary,
/// which is never less, so `total - 1` bytes of margin cover every start.
pub(crate) fn mem_size_from_any_start(objs: usize, total: usize, page: usize) -> usize {
    if objs == 0 {
        return 0;
    }
    if page == 0 || total > page {
        return objs * total;
    }
    let per_page = page / total;
    let last = (objs - 1) % per_page + 1;
    (objs - last) / per_page * page + last * total + total - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_slots_are_whole_cache_lines() {
        for elt in [1, 8, 63, 64, 65, 2048, 2049] {
            let s = calc_obj_size(elt, MempoolFlags::empty()).unwrap();
            assert_eq!(s.header_size as usize % CACHE_LINE, 0);
            assert_eq!(s.total_size as usize % CACHE_LINE, 0, "elt {elt}");
            assert!(s.elt_size >= elt && s.elt_size.is_multiple_of(8));
            assert_eq!(s.total_size, s.header_size + s.elt_size + s.trailer_size);
        }
    }

    #[test]
    fn slots_of_4_gib_or_more_have_no_size() {
        // 64 header + elt + up to 63 of padding (and the debug trailer) must stay below 2^32.
        assert!(calc_obj_size(u32::MAX, MempoolFlags::empty()).is_none());
        assert!(calc_obj_size(u32::MAX - 64, MempoolFlags::empty()).is_none());
        assert!(calc_obj_size(u32::MAX - 16, MempoolFlags::NO_CACHE_ALIGN).is_none());
        // A line of header, the element, a line of trailer (debug) at most: fits.
        let fitting = u32::MAX - 255;
        let s = calc_obj_size(fitting, MempoolFlags::empty()).unwrap();
        assert_eq!(s.total_size, s.header_size + s.elt_size + s.trailer_size);
        assert!(s.elt_size >= fitting);
    }

    #[test]
    fn unaligned_slots_are_packed() {
        let s = calc_obj_size(20, MempoolFlags::NO_CACHE_ALIGN).unwrap();
        assert_eq!(s.header_size as usize, core::mem::size_of::<ObjHeader>());
        assert_eq!(s.elt_size, 24);
        assert_eq!(s.total_size, s.header_size + 24 + s.trailer_size);
    }

    #[test]
    fn page_crossing() {
        assert!(!crosses_page(0, 64, 4096));
        assert!(crosses_page(4090, 64, 4096));
        assert!(!crosses_page(4090, 64, 0));
        assert!(
            !crosses_page(4090, 8192, 4096),
            "bigger than a page: allowed"
        );
        assert_eq!(mem_size(10, 1000, 4096, 64), 3 * 4096);
        assert_eq!(mem_size(10, 1000, 0, 64), 10_064);
    }

    /// Lays `objs` slots out from `start` as a populate does (skipping to the next page
    /// rather than crossing one) and returns the bytes they span.
    fn span_from(start: usize, objs: usize, total: usize, page: usize) -> usize {
        let mut at = start;
        for _ in 0..objs {
            if crosses_page(at, total, page) {
                at = at.next_multiple_of(page);
            }
            at += total;
        }
        at - start
    }

    #[test]
    fn any_start_size_holds_the_objects_from_every_start() {
        for (total, page) in [
            (1088, 4096),
            (2112, 4096),
            (1000, 4096),
            (4096, 4096),
            (64, 4096),
        ] {
            for objs in [1, 2, 3, 4, 5, 7, 8, 13] {
                let size = mem_size_from_any_start(objs, total, page);
                let worst = (0..page)
                    .step_by(8)
                    .map(|x| span_from(page + x, objs, total, page))
                    .max()
                    .unwrap();
                assert!(size >= worst, "{objs} x {total}: {size} < {worst}");
                // Never more than one slot beyond what the worst start needs.
                assert!(size < worst + total, "{objs} x {total}: {size} vs {worst}");
            }
        }
        assert_eq!(mem_size_from_any_start(3, 8192, 4096), 3 * 8192);
        assert_eq!(mem_size_from_any_start(3, 1000, 0), 3000);
        assert_eq!(mem_size_from_any_start(0, 1000, 4096), 0);
    }
}
