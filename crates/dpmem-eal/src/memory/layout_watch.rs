//! Noticing that the memory's layout changed: a copy of the memory map (runs of
//! [`Memory::walk_contig`] kept to translate addresses without a lock) is current while the
//! shared layout count ([`Memory::layout_generation`]) has not moved since it was built.
//!
//! The count lives in the shared configuration; reaching it through the EAL costs a chain of
//! dependent loads (EAL, core, mapping, header), which a copy path that looks once per packet
//! pays every time. A watch holds the counter's address, so looking is one load.

use dpmem_sys::sync::{AtomicU64, Ordering};

use super::Memory;

/// Watches [`Memory::layout_generation`] for one copy of the memory map. Made with
/// [`Memory::layout_watch`].
#[derive(Debug, Clone)]
pub struct LayoutWatch<'m> {
    counter: &'m AtomicU64,
    seen: u64,
}

impl<'m> LayoutWatch<'m> {
    pub(crate) fn new(counter: &'m AtomicU64) -> LayoutWatch<'m> {
        LayoutWatch {
            seen: counter.load(Ordering::Acquire),
            counter,
        }
    }

    /// Whether the layout changed since this watch was made or last said so. A `true` counts
    /// as seen: build the copy again right after it (a change during that build moves the
    /// count again, and the next look says so).
    #[inline]
    pub fn changed(&mut self) -> bool {
        let now = self.counter.load(Ordering::Acquire);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

impl Memory {
    /// A watch on [`Memory::layout_generation`] from now: make it before building a copy of
    /// the memory map, and build the copy again whenever [`LayoutWatch::changed`] says so.
    pub fn layout_watch(&self) -> LayoutWatch<'_> {
        LayoutWatch::new(&self.config.header().layout_generation)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_told_once() {
        let counter = AtomicU64::new(7);
        let mut watch = LayoutWatch::new(&counter);
        assert!(!watch.changed());
        counter.fetch_add(1, Ordering::Release);
        assert!(watch.changed());
        assert!(!watch.changed());
        counter.fetch_add(2, Ordering::Release);
        assert!(watch.changed());
    }
}
