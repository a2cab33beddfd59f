//! Where dynamic fields and flags can go — the 36 bytes at the end of the header and the 18
//! offload-flag bits no static flag holds — which of them registered entries take, and where
//! a new field is put.
//!
//! Placement prefers the smallest free run a field fits in, at its lowest aligned offset, so
//! small fields fill the gaps that bigger ones left and long runs stay whole for the fields
//! that need them. DPDK scores every free byte by the largest aligned block around it; the aim
//! is the same, the offsets may differ once several fields are registered, which is why
//! processes must take offsets from the registry, never assume them.

use core::ops::{Range, RangeInclusive};

use crate::header::{DYNFIELD_LEN, DYNFIELD_OFFSET};

/// Bytes a name may have, its terminating NUL included (DPDK's `RTE_MBUF_DYN_NAMESIZE`): at
/// most 63 of them are the name.
pub const NAME_SIZE: usize = 64;

/// The header offsets dynamic fields may occupy (`dynfield1` of `struct rte_mbuf`).
///
/// DPDK adds `dynfield2` (the 8 bytes of `buf_iova`) only when built without physical
/// addresses; dpmem's header always keeps `buf_iova`, so this is all there is.
pub const FIELD_SPACE: Range<usize> = DYNFIELD_OFFSET..DYNFIELD_OFFSET + DYNFIELD_LEN;

/// The `ol_flags` bits dynamic flags may take (DPDK's `RTE_MBUF_F_FIRST_FREE` to
/// `RTE_MBUF_F_LAST_FREE`).
///
/// In DPDK 22.11's `rte_mbuf_core.h` the receive flags are defined up to bit 22 (the outer L4
/// checksum pair, 21 and 22) and the transmit flags from bit 41 (outer UDP checksum) to 60,
/// then `EXTERNAL` (61) and `INDIRECT` (62). Bits 11, 12, 17 and 63 are undefined but lie
/// among the static flags, where new static flags are added; DPDK never hands them out, and
/// neither does dpmem, so a buffer means the same to both.
pub const FLAG_BITS: RangeInclusive<u32> = 23..=40;

/// A registered dynamic field (what DPDK's lookup fills in `struct rte_mbuf_dynfield`, and the
/// offset it returns).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldInfo {
    pub name: String,
    /// Offset in the header (as DPDK's are offsets into `struct rte_mbuf`), inside
    /// [`FIELD_SPACE`] with all `size` bytes.
    pub offset: usize,
    pub size: usize,
    /// The alignment asked for: a power of two dividing `offset`.
    pub align: usize,
}

/// A registered dynamic flag: its bit of `ol_flags`, inside [`FLAG_BITS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlagInfo {
    pub name: String,
    pub bit: u32,
}

impl FlagInfo {
    /// The flag as a mask of `ol_flags` (what DPDK code computes as `1ULL << bitnum`).
    pub fn mask(&self) -> u64 {
        1 << self.bit
    }
}

/// Which bytes of [`FIELD_SPACE`] are taken: bit `i` stands for header offset
/// `FIELD_SPACE.start + i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Occupancy(u64);

/// The bits of a `len`-byte range starting `i` bytes into the space (`i + len` at most 36).
fn span_bits(i: usize, len: usize) -> u64 {
    ((1u64 << len) - 1) << i
}

impl Occupancy {
    /// The bytes `fields` hold. Each must lie in the space (the registry only records such).
    pub(crate) fn of(fields: &[FieldInfo]) -> Self {
        let taken = fields
            .iter()
            .filter(|f| Self::within_space(f.offset, f.size))
            .fold(0, |acc, f| {
                acc | span_bits(f.offset - FIELD_SPACE.start, f.size)
            });
        Occupancy(taken)
    }

    /// Whether `[offset, offset + size)` is a non-empty range inside the space.
    pub(crate) fn within_space(offset: usize, size: usize) -> bool {
        size > 0
            && offset >= FIELD_SPACE.start
            && offset
                .checked_add(size)
                .is_some_and(|end| end <= FIELD_SPACE.end)
    }

    /// Whether every byte of `[offset, offset + size)`, a range inside the space, is free.
    pub(crate) fn is_free(&self, offset: usize, size: usize) -> bool {
        Self::within_space(offset, size)
            && self.0 & span_bits(offset - FIELD_SPACE.start, size) == 0
    }

    /// Bytes nobody holds.
    pub(crate) fn free_bytes(&self) -> usize {
        DYNFIELD_LEN - self.0.count_ones() as usize
    }

    /// The free runs, as header offset ranges, lowest first.
    pub(crate) fn free_runs(&self) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        for offset in FIELD_SPACE.clone().filter(|&o| self.is_free(o, 1)) {
            match runs.last_mut() {
                Some(run) if run.end == offset => run.end += 1,
                _ => runs.push(offset..offset + 1),
            }
        }
        runs
    }

    /// Where a field of `size` bytes aligned to `align` (a power of two) goes: the lowest
    /// aligned offset of the smallest free run it fits in, or `None` when it fits nowhere.
    pub(crate) fn place(&self, size: usize, align: usize) -> Option<usize> {
        self.free_runs()
            .into_iter()
            .filter_map(|run| {
                let first = run.start.checked_next_multiple_of(align)?;
                let fits = first.checked_add(size).is_some_and(|end| end <= run.end);
                fits.then_some((run.len(), first))
            })
            .min()
            .map(|(_, offset)| offset)
    }
}

/// The dynamic flag bits not held by any of `flags`, as a mask of `ol_flags`.
pub(crate) fn free_flag_mask(flags: &[FlagInfo]) -> u64 {
    let all = FLAG_BITS.fold(0u64, |acc, bit| acc | 1 << bit);
    flags
        .iter()
        .filter(|f| FLAG_BITS.contains(&f.bit))
        .fold(all, |acc, f| acc & !f.mask())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(offset: usize, size: usize) -> FieldInfo {
        FieldInfo {
            name: format!("f{offset}"),
            offset,
            size,
            align: 1,
        }
    }

    #[test]
    fn an_empty_space_places_at_the_lowest_aligned_offset() {
        let empty = Occupancy::of(&[]);
        assert_eq!(empty.free_bytes(), 36);
        assert_eq!(empty.free_runs(), vec![92..128]);
        assert_eq!(empty.place(1, 1), Some(92));
        assert_eq!(empty.place(4, 4), Some(92));
        assert_eq!(empty.place(8, 8), Some(96));
        assert_eq!(empty.place(32, 32), Some(96));
        assert_eq!(empty.place(36, 4), Some(92));
        assert_eq!(empty.place(33, 32), None);
        assert_eq!(empty.place(1, 128), None);
        assert_eq!(empty.place(1, 1 << 62), None);
    }

    #[test]
    fn small_fields_go_to_the_smallest_gap() {
        // Taken: 92 and 96..104; free runs 93..96 (3 bytes) and 104..128 (24 bytes).
        let used = Occupancy::of(&[field(92, 1), field(96, 8)]);
        assert_eq!(used.free_runs(), vec![93..96, 104..128]);
        assert_eq!(used.place(2, 2), Some(94));
        assert_eq!(used.place(1, 1), Some(93));
        assert_eq!(
            used.place(4, 4),
            Some(104),
            "no aligned room in the small gap"
        );
        assert_eq!(used.free_bytes(), 27);
        assert!(used.is_free(93, 3));
        assert!(!used.is_free(93, 4));
        assert!(!used.is_free(91, 1), "outside the space is never free");
        assert!(!used.is_free(127, 2));
    }

    #[test]
    fn flag_bits_are_23_to_40() {
        assert_eq!(free_flag_mask(&[]), 0x0000_01ff_ff80_0000);
        let one = FlagInfo {
            name: "x".into(),
            bit: 23,
        };
        assert_eq!(free_flag_mask(&[one]).trailing_zeros(), 24);
    }
}
