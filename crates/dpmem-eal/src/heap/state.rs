//! The shared state of one malloc heap, as it sits in the shared configuration: its lock, its
//! counters, its free lists and its quick lists. The elements themselves live in the memory
//! they describe ([`super::elem`]); [`super::malloc_heap`] holds what a locked heap does.

use super::chain_journal::ChainJournal;
use super::free_index::FreeIndex;
use super::quick_lists::QuickLists;
use crate::sync::SharedLocked;

/// Heaps the configuration holds: one per socket id below this (DPDK's `RTE_MAX_HEAPS`).
pub const MAX_HEAPS: usize = 32;
pub const HEAP_NAME_LEN: usize = 32;

/// The shared state of one heap. All-zero bytes are an unused, empty heap.
#[repr(C)]
#[derive(Debug)]
pub struct HeapState {
    pub name: [u8; HEAP_NAME_LEN],
    pub socket_id: i32,
    /// Non-zero once the primary set the heap up.
    pub in_use: u32,
    /// First and last element in address order (0 when the heap has no memory).
    pub first: u64,
    pub last: u64,
    /// Bytes of memory the heap owns (headers included).
    pub total_bytes: u64,
    /// At least the bytes of that memory on pages that may go back to the system (memory
    /// added as releasable, less what went back): 0 only when there are none, which spares
    /// frees on pinned memory the look at their neighbours (`HeapOps::may_park`).
    pub releasable_bytes: u64,
    /// Busy elements.
    pub alloc_count: u64,
    /// Allocations asked for "any socket" that this heap served after the caller's own socket
    /// could not.
    pub fallback_alloc_count: u64,
    pub free: FreeIndex,
    /// Small blocks freed and not merged yet (socket heaps only).
    pub quick: QuickLists,
    /// The element headers a change to the chain under way saved, so that the change can be
    /// undone if its process dies.
    pub journal: ChainJournal,
}

/// A heap as it sits in the shared configuration: its lock and its state.
pub type SharedHeap = SharedLocked<HeapState>;

/// The address of heap `shared` in the shared configuration: what its element headers record
/// as their heap (the same in every process).
#[inline]
pub fn heap_addr(shared: &SharedHeap) -> u64 {
    shared as *const SharedHeap as u64
}
