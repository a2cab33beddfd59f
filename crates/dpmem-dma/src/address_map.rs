//! Where device addresses lead: a snapshot of dpmem's memory as runs that are contiguous in
//! both virtual address and IOVA, looked up by either.
//!
//! A hardware DMA engine reaches memory through the IOMMU (or physical addresses); the
//! software engine reaches it through this table, built from the memseg lists' contiguous
//! runs ([`Memory::walk_contig`], internal and external memory alike). An IOVA outside every
//! run is not dpmem memory, or memory whose IOVA is unknown: the operation fails with a
//! status, as an IOMMU fault would. The table is a copy, so a lookup takes no lock; whoever
//! owns it rebuilds it when memory changes or when a lookup misses (memory registered since).
//!
//! Lookups start with a hint, the run the caller's last lookup found (one hint per end of a
//! copy): a stream of copies tends to stay in one buffer at each end.

use std::ops::ControlFlow;

use dpmem_eal::{Iova, Memory};

/// A stretch of memory contiguous in both address spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    va: usize,
    iova: u64,
    len: usize,
}

impl Run {
    fn iova_end(&self) -> u64 {
        self.iova + self.len as u64
    }

    fn va_end(&self) -> usize {
        self.va + self.len
    }
}

/// Where an IOVA range leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IovaRange {
    /// All of it is one virtual range starting here.
    Contiguous(usize),
    /// All of it is dpmem memory, in pieces that are not adjacent in virtual memory (walk
    /// them with [`AddressMap::iova_piece`]).
    Pieces,
    /// Its start is not dpmem memory with a known IOVA.
    Outside,
    /// It starts in dpmem memory and runs past the end of it.
    PastEnd,
}

/// Where a virtual range leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VaRange {
    /// One IOVA range starting here.
    Contiguous(Iova),
    /// dpmem memory whose IOVA jumps inside the range (a page boundary between pages that are
    /// not adjacent in IOVA), or that runs past the end of dpmem memory.
    Discontiguous,
    /// Its start is not dpmem memory with a known IOVA.
    Outside,
}

/// The snapshot: runs by IOVA and by virtual address.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressMap {
    by_iova: Vec<Run>,
    by_va: Vec<Run>,
}

/// Where a lookup tries first: the run the previous lookup of the same caller found.
pub(crate) type Hint = usize;

impl AddressMap {
    /// The runs of `memory` now.
    pub(crate) fn build(memory: &Memory) -> AddressMap {
        let mut runs = Vec::new();
        memory.walk_contig(|_, first, len| {
            if let Some(iova) = first.iova() {
                runs.push(Run {
                    va: first.va(),
                    iova: iova.get(),
                    len,
                });
            }
            ControlFlow::<()>::Continue(())
        });
        runs.sort_unstable_by_key(|r| r.va);
        // Neighbours that continue each other in both spaces are one run (lists whose windows
        // touch, in IOVA-as-VA mode).
        let mut by_va: Vec<Run> = Vec::with_capacity(runs.len());
        for run in runs {
            match by_va.last_mut() {
                Some(prev) if prev.va_end() == run.va && prev.iova_end() == run.iova => {
                    prev.len += run.len;
                }
                _ => by_va.push(run),
            }
        }
        let mut by_iova = by_va.clone();
        by_iova.sort_unstable_by_key(|r| r.iova);
        AddressMap { by_iova, by_va }
    }

    /// The virtual address of `iova` and how many bytes from there on its run holds.
    #[inline]
    pub(crate) fn iova_piece(&self, iova: u64, hint: &mut Hint) -> Option<(usize, usize)> {
        let hit = |r: &Run| iova >= r.iova && iova < r.iova_end();
        let run = match self.by_iova.get(*hint) {
            Some(r) if hit(r) => *r,
            _ => {
                let i = self
                    .by_iova
                    .partition_point(|r| r.iova <= iova)
                    .checked_sub(1)?;
                let r = self.by_iova[i];
                if !hit(&r) {
                    return None;
                }
                *hint = i;
                r
            }
        };
        let offset = (iova - run.iova) as usize;
        Some((run.va + offset, run.len - offset))
    }

    /// Where `len` bytes at `iova` lead.
    #[inline]
    pub(crate) fn resolve_iova(&self, iova: u64, len: u64, hint: &mut Hint) -> IovaRange {
        let Some((va, room)) = self.iova_piece(iova, hint) else {
            return IovaRange::Outside;
        };
        if room as u64 >= len {
            return IovaRange::Contiguous(va);
        }
        let mut covered = room as u64;
        while covered < len {
            let Some(next) = iova.checked_add(covered) else {
                return IovaRange::PastEnd;
            };
            // The pieces after the first do not move the hint: the next copy most likely
            // starts where this one did.
            match self.iova_piece(next, &mut hint.clone()) {
                Some((_, room)) => covered += room as u64,
                None => return IovaRange::PastEnd,
            }
        }
        IovaRange::Pieces
    }

    /// Where `len` bytes at virtual address `va` lead.
    #[inline]
    pub(crate) fn resolve_va(&self, va: usize, len: usize, hint: &mut Hint) -> VaRange {
        let hit = |r: &Run| va >= r.va && va < r.va_end();
        let run = match self.by_va.get(*hint) {
            Some(r) if hit(r) => *r,
            _ => {
                let found = self
                    .by_va
                    .partition_point(|r| r.va <= va)
                    .checked_sub(1)
                    .filter(|&i| hit(&self.by_va[i]));
                let Some(i) = found else {
                    return VaRange::Outside;
                };
                *hint = i;
                self.by_va[i]
            }
        };
        let offset = va - run.va;
        if run.len - offset < len {
            return VaRange::Discontiguous;
        }
        match Iova::new(run.iova + offset as u64) {
            Some(iova) => VaRange::Contiguous(iova),
            None => VaRange::Outside,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn map(runs: &[(usize, u64, usize)]) -> AddressMap {
        let by_va: Vec<Run> = runs
            .iter()
            .map(|&(va, iova, len)| Run { va, iova, len })
            .collect();
        let mut by_iova = by_va.clone();
        by_iova.sort_unstable_by_key(|r| r.iova);
        AddressMap { by_iova, by_va }
    }

    #[test]
    fn iova_ranges_resolve_whole_in_pieces_or_not_at_all() {
        // Two pages whose IOVAs follow each other but whose addresses do not, and a third.
        let m = map(&[
            (0x10000, 0x5000, 0x1000),
            (0x30000, 0x6000, 0x1000),
            (0x50000, 0x9000, 0x1000),
        ]);
        assert_eq!(
            m.resolve_iova(0x5100, 0x100, &mut 0),
            IovaRange::Contiguous(0x10100)
        );
        assert_eq!(m.resolve_iova(0x5f00, 0x200, &mut 0), IovaRange::Pieces);
        assert_eq!(m.iova_piece(0x6000, &mut 0), Some((0x30000, 0x1000)));
        assert_eq!(m.resolve_iova(0x6f00, 0x200, &mut 0), IovaRange::PastEnd);
        assert_eq!(m.resolve_iova(0x8000, 1, &mut 0), IovaRange::Outside);
        assert_eq!(m.resolve_iova(0, 1, &mut 0), IovaRange::Outside);
        assert_eq!(
            m.resolve_iova(0x9fff, 1, &mut 0),
            IovaRange::Contiguous(0x50fff)
        );
    }

    #[test]
    fn virtual_ranges_that_cross_an_iova_jump_are_discontiguous() {
        let m = map(&[(0x10000, 0x5000, 0x1000), (0x11000, 0x9000, 0x1000)]);
        assert_eq!(
            m.resolve_va(0x10800, 0x800, &mut 0),
            VaRange::Contiguous(Iova::new(0x5800).unwrap())
        );
        assert_eq!(m.resolve_va(0x10800, 0x801, &mut 0), VaRange::Discontiguous);
        assert_eq!(m.resolve_va(0x11fff, 2, &mut 0), VaRange::Discontiguous);
        assert_eq!(m.resolve_va(0x12000, 1, &mut 0), VaRange::Outside);
        assert_eq!(m.resolve_va(0xffff, 1, &mut 0), VaRange::Outside);
    }
}
