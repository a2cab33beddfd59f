//! The page row of a memseg list's band: each slot of the list mapped or not, how a mapped
//! page stays (pinned for the EAL's life, or given back when its memory is freed; external
//! memory is the user's), whether it may hold old data, and where the device addresses of two
//! neighbouring pages do not follow each other — a break a DMA across them cannot cross.

use dpmem::eal::memseg_list::MemsegListInfo;
use dpmem::eal::Memseg;

use super::runs::Piece;

/// How a slot of a memseg list is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageState {
    /// Mapped for the life of the EAL: preallocated (`-m`), legacy or `--no-huge` memory.
    Pinned,
    /// Mapped on demand; goes back to the system when the heap frees its memory.
    MayGoBack,
    /// User memory added to the EAL (an external heap's or registered memory).
    External,
    /// Address space the list reserves with no page behind it.
    NotMapped,
}

/// A page's state and whether it may hold old data (a page kept from a previous run:
/// zeroing allocations clear it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageKind {
    pub state: PageState,
    pub dirty: bool,
}

impl PageKind {
    fn of(info: &MemsegListInfo, page: &Page) -> PageKind {
        let state = if info.external {
            PageState::External
        } else if page.pinned {
            PageState::Pinned
        } else {
            PageState::MayGoBack
        };
        PageKind {
            state,
            dirty: page.dirty,
        }
    }
}

/// What the row needs of a mapped segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub va: usize,
    pub len: usize,
    pub iova: Option<u64>,
    pub pinned: bool,
    pub dirty: bool,
}

impl Page {
    pub fn of(seg: &Memseg) -> Page {
        Page {
            va: seg.va(),
            len: seg.len(),
            iova: seg.iova().map(|i| i.get()),
            pinned: seg.is_pinned(),
            dirty: seg.is_dirty(),
        }
    }

    fn end(&self) -> usize {
        self.va + self.len
    }
}

/// A place where the device addresses of two neighbouring mapped pages do not follow on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IovaBreak {
    /// Where the second page starts.
    pub va: usize,
    /// The device address just past the first page, and the second page's.
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// What the page row shows of one list.
#[derive(Debug, Clone)]
pub struct PageRow {
    /// The list's address space cut into mapped and unmapped stretches, `(va, len, mapped)`,
    /// for the band's axis.
    pub stretches: Vec<(usize, usize, bool)>,
    /// Every mapped page, and every unmapped stretch as one piece.
    pub pieces: Vec<Piece<PageKind>>,
    pub iova_breaks: Vec<IovaBreak>,
    /// Mapped pages whose device address is unknown (no physical addresses for this user).
    pub unknown_iova: usize,
}

impl PageRow {
    /// `pages` are the list's mapped segments in address order, as the layout gives them.
    pub fn of(info: &MemsegListInfo, pages: &[Page]) -> PageRow {
        let end = info.base_va + info.len;
        let mut stretches: Vec<(usize, usize, bool)> = Vec::new();
        let mut pieces = Vec::with_capacity(pages.len() + 1);
        let mut iova_breaks = Vec::new();
        let mut at = info.base_va;
        let mut prev: Option<&Page> = None;
        let stretch =
            |stretches: &mut Vec<(usize, usize, bool)>, va: usize, len, mapped| match stretches
                .last_mut()
            {
                Some(last) if last.2 == mapped && last.0 + last.1 == va => last.1 += len,
                _ => stretches.push((va, len, mapped)),
            };
        for page in pages {
            // Segments come sorted and inside their list; anything else is not drawn.
            if page.va < at || page.end() > end {
                continue;
            }
            if page.va > at {
                stretch(&mut stretches, at, page.va - at, false);
                pieces.push(Piece {
                    va: at,
                    len: page.va - at,
                    kind: PageKind {
                        state: PageState::NotMapped,
                        dirty: false,
                    },
                });
            } else if let Some(p) = prev {
                let before = p.iova.map(|i| i.wrapping_add(p.len as u64));
                let after = page.iova;
                if before.is_none() || after.is_none() || before != after {
                    iova_breaks.push(IovaBreak {
                        va: page.va,
                        before,
                        after,
                    });
                }
            }
            stretch(&mut stretches, page.va, page.len, true);
            pieces.push(Piece {
                va: page.va,
                len: page.len,
                kind: PageKind::of(info, page),
            });
            at = page.end();
            prev = Some(page);
        }
        if at < end {
            stretch(&mut stretches, at, end - at, false);
            pieces.push(Piece {
                va: at,
                len: end - at,
                kind: PageKind {
                    state: PageState::NotMapped,
                    dirty: false,
                },
            });
        }
        let unknown_iova = pages.iter().filter(|p| p.iova.is_none()).count();
        // Where no page's device address is known, every neighbour would read as a break:
        // the band says "unknown" once instead.
        if unknown_iova > 0 {
            iova_breaks.retain(|b| b.before.is_some() && b.after.is_some());
        }
        PageRow {
            stretches,
            pieces,
            iova_breaks,
            unknown_iova,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpmem::Socket;

    const PAGE: usize = 2 << 20;

    fn list(n_segs: u32, external: bool) -> MemsegListInfo {
        MemsegListInfo {
            index: 0,
            base_va: 0x1000_0000,
            len: n_segs as usize * PAGE,
            page_size: PAGE as u64,
            socket: Socket::Node(0),
            n_segs,
            n_used: 0,
            external,
            heap: false,
        }
    }

    fn page(slot: usize, iova: Option<u64>, pinned: bool) -> Page {
        Page {
            va: 0x1000_0000 + slot * PAGE,
            len: PAGE,
            iova,
            pinned,
            dirty: slot == 1,
        }
    }

    #[test]
    fn holes_states_and_iova_breaks() {
        // Slots 0 and 1 physically adjacent, 2 elsewhere, 3 and 4 not mapped, 5 mapped, the
        // rest of the eight not mapped.
        let pages = [
            page(0, Some(0x4000_0000), true),
            page(1, Some(0x4020_0000), true),
            page(2, Some(0x9000_0000), false),
            page(5, Some(0x9020_0000), false),
        ];
        let row = PageRow::of(&list(8, false), &pages);
        let base = 0x1000_0000;
        assert_eq!(
            row.stretches,
            vec![
                (base, 3 * PAGE, true),
                (base + 3 * PAGE, 2 * PAGE, false),
                (base + 5 * PAGE, PAGE, true),
                (base + 6 * PAGE, 2 * PAGE, false),
            ]
        );
        let kinds: Vec<(PageState, bool)> = row
            .pieces
            .iter()
            .map(|p| (p.kind.state, p.kind.dirty))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (PageState::Pinned, false),
                (PageState::Pinned, true),
                (PageState::MayGoBack, false),
                (PageState::NotMapped, false),
                (PageState::MayGoBack, false),
                (PageState::NotMapped, false),
            ]
        );
        // Only between slots 1 and 2: slot 5 follows a hole, not a page.
        assert_eq!(
            row.iova_breaks,
            vec![IovaBreak {
                va: base + 2 * PAGE,
                before: Some(0x4040_0000),
                after: Some(0x9000_0000),
            }]
        );
        assert_eq!(row.unknown_iova, 0);
    }

    #[test]
    fn unknown_device_addresses_are_counted_not_drawn_as_breaks() {
        let pages = [page(0, None, true), page(1, None, true)];
        let row = PageRow::of(&list(2, true), &pages);
        assert_eq!(row.unknown_iova, 2);
        assert!(row.iova_breaks.is_empty());
        assert!(row
            .pieces
            .iter()
            .all(|p| p.kind.state == PageState::External));
        assert_eq!(row.stretches.len(), 1);
    }
}
