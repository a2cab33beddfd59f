//! What `dpmem map` draws, read from one EAL: the [`Snapshot`] that `dpmem info` and
//! `dpmem proc-info` print (layout, heaps, memzones, rings, pools), and every heap's
//! elements as they lie.

use dpmem::eal::heap::HeapElement;
use dpmem::eal::Eal;

use crate::info::Snapshot;

#[derive(Debug)]
pub struct MapInput {
    pub snapshot: Snapshot,
    /// The elements of every heap this process can walk, heap by heap in address order.
    pub elements: Vec<HeapElement>,
    /// Heaps whose elements could not be walked here, and why (an external heap whose memory
    /// this process has not attached).
    pub unwalked: Vec<String>,
}

impl MapInput {
    /// Reads `eal`; only reads (no allocation, no pool object moved).
    pub fn collect(eal: &Eal) -> MapInput {
        let heaps = eal.heaps();
        let mut elements = Vec::new();
        let mut unwalked = Vec::new();
        // The elements first: the snapshot's heap statistics merge parked blocks, which the
        // picture shows where they are.
        for socket in heaps.heap_sockets() {
            match heaps.elements(socket) {
                Ok(found) => elements.extend(found),
                Err(e) => unwalked.push(format!("{socket}: {e}")),
            }
        }
        MapInput {
            snapshot: Snapshot::collect(eal, false),
            elements,
            unwalked,
        }
    }
}
