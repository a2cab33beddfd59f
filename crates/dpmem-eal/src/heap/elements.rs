//! A read-only walk of one heap's elements in address order ([`Heaps::elements`]), for tools
//! that draw or print where the heap's blocks lie (`dpmem map`).
//!
//! Unlike [`Heaps::stats`] and [`Heaps::dump`], the walk merges nothing first: small blocks
//! waiting on the quick lists show as [`HeapElementState::Parked`], where they really are.
//! It changes nothing in the heap; in a secondary it maps the pages the primary mapped since
//! this process last caught up (the headers may lie there), as every heap walk does.

use super::elem::{Elem, ElemState, HEADER_LEN};
use super::recovery::lock_heap;
use super::{bad_arg, raw_socket, Heaps};
use crate::error::EalError;
use crate::socket::Socket;

/// What an element of a heap is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HeapElementState {
    /// Allocated: a block (a memzone's too) handed out and not freed.
    Busy,
    /// Free memory on one of the heap's free lists.
    Free,
    /// A freed small block waiting unmerged on a quick list for the next request of its size:
    /// free to everything but the merge.
    Parked,
}

/// One element of a heap: its header and the memory up to the next element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HeapElement {
    /// Address of the element's header (the element starts there).
    pub va: usize,
    /// Bytes from the header to the end of the element: header, padding, data and slack.
    pub len: usize,
    pub state: HeapElementState,
    /// The memseg list holding the element.
    pub list_index: u32,
    /// Its bytes may be non-zero (a zeroing allocation must clear them).
    pub dirty: bool,
    /// For a busy element, the bytes its owner may use; 0 for the others.
    pub usable_len: usize,
}

impl HeapElement {
    /// The first address past the element.
    pub fn end(&self) -> usize {
        self.va + self.len
    }

    /// Bytes the heap spends on the element's header (and, for an aligned block, padding).
    pub fn overhead(&self) -> usize {
        match self.state {
            HeapElementState::Busy => self.len - self.usable_len,
            HeapElementState::Free | HeapElementState::Parked => HEADER_LEN,
        }
    }
}

impl Heaps<'_> {
    /// Every element of `socket`'s heap (a socket heap or an external heap), in address order,
    /// as it is now: parked blocks stay parked. Refused when the heap does not exist, and for
    /// an external heap whose memory this process has not attached (its headers are not mapped
    /// here).
    pub fn elements(&self, socket: Socket) -> Result<Vec<HeapElement>, EalError> {
        let socket = raw_socket(socket)?;
        let no_heap = || bad_arg(format!("{} has no heap", Socket::from_recorded(socket)));
        let shared = self.heap_of(socket).ok_or_else(no_heap)?;
        let st = lock_heap(self.memory, shared)?;
        if st.in_use == 0 || st.socket_id != socket {
            return Err(no_heap());
        }
        self.check_attached(&st)?;
        // The headers walked below may sit on pages the primary mapped since this process last
        // caught up: map them first, under the heap lock as everywhere else.
        self.memory.sync_with_primary()?;
        let mut out = Vec::new();
        let mut cur = Elem::from_addr(st.first);
        while let Some(e) = cur {
            let h = e.load();
            let state = match h.state() {
                Some(ElemState::Busy) => HeapElementState::Busy,
                Some(ElemState::Free) => HeapElementState::Free,
                Some(ElemState::Parked) => HeapElementState::Parked,
                // Pad headers sit inside busy elements and are never on the address chain; a
                // header that reads otherwise is damage, which `check` names.
                Some(ElemState::Pad) | None => {
                    return Err(EalError::HeapCorrupt {
                        socket: Socket::from_recorded(socket),
                        reason: format!(
                            "element {:#x} on the address chain has state {}",
                            e.0, h.state
                        ),
                    })
                }
            };
            out.push(HeapElement {
                va: e.0,
                len: h.size as usize,
                state,
                list_index: u32::from(h.list_index),
                dirty: h.is_dirty(),
                usable_len: if state == HeapElementState::Busy {
                    h.usable_len()
                } else {
                    0
                },
            });
            cur = Elem::from_addr(h.next);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Eal;

    #[test]
    fn the_walk_tiles_the_heap_and_shows_parked_blocks_unmerged() {
        let prefix = format!("heap_elements_{}", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "16", "--file-prefix", &prefix]).unwrap();
        let heaps = eal.heaps();
        let socket = heaps.sockets()[0];
        let blocks: Vec<_> = (0..8).map(|_| heaps.malloc(200, 0).unwrap()).collect();
        let big = heaps.malloc(100_000, 4096).unwrap();
        // Every other small block freed: they park on the quick lists, unmerged.
        for b in blocks.iter().step_by(2) {
            // SAFETY: each block came from this heap and is freed once.
            unsafe { heaps.free(*b) }.unwrap();
        }
        let elements = heaps.elements(socket).unwrap();
        let parked = elements
            .iter()
            .filter(|e| e.state == HeapElementState::Parked)
            .count();
        assert_eq!(parked, 4, "{elements:#?}");
        let busy: Vec<_> = elements
            .iter()
            .filter(|e| e.state == HeapElementState::Busy)
            .collect();
        assert_eq!(busy.len(), 5);
        let big_elem = busy
            .iter()
            .find(|e| e.va < big.as_ptr() as usize && big.as_ptr() as usize <= e.end())
            .expect("the big block's element");
        assert!(big_elem.usable_len >= 100_000);
        assert!(big_elem.overhead() >= HEADER_LEN);
        // Address order, no overlap, and the sizes add up to what the heap owns.
        for pair in elements.windows(2) {
            assert!(pair[0].end() <= pair[1].va, "{pair:#?}");
        }
        let total: usize = elements.iter().map(|e| e.len).sum();
        // The walk changed nothing: the stats (which merge) still see every byte.
        let stats = heaps.stats(socket).unwrap();
        assert_eq!(total as u64, stats.total_bytes);
        // Merged now: nothing is parked any more.
        assert!(heaps
            .elements(socket)
            .unwrap()
            .iter()
            .all(|e| e.state != HeapElementState::Parked));
        for b in blocks.iter().skip(1).step_by(2).chain([&big]) {
            // SAFETY: each block came from this heap and is freed once.
            unsafe { heaps.free(*b) }.unwrap();
        }
        heaps.check().unwrap();
    }

    #[test]
    fn a_socket_without_a_heap_is_refused() {
        let prefix = format!("heap_elements_none_{}", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "16", "--file-prefix", &prefix]).unwrap();
        let err = eal.heaps().elements(Socket::Node(7)).unwrap_err();
        assert!(err.to_string().contains("socket 7 has no heap"), "{err}");
        let err = eal.heaps().elements(Socket::External(3)).unwrap_err();
        assert!(err.to_string().contains("no heap"), "{err}");
    }
}
