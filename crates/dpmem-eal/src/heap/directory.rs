//! The heap directory: which of the configuration's heap slots are in use, by which heap (name
//! and socket id), and the socket id the next external heap gets.
//!
//! Socket heaps sit in the slot of their socket id and are entered once, by the primary, at
//! start-up. External heaps (DPDK's `rte_malloc_heap_create`) take any free slot and get socket
//! ids from [`EXTERNAL_SOCKET_BASE`] up, never reused, so a stale socket id can never reach a
//! heap created later in the same slot.
//!
//! The directory has its own lock rather than reading names out of the heaps: creating a heap
//! must look at every name, and taking every heap lock for that would wait on heaps busy
//! growing. Lock order: directory, then a heap, then the hotplug lock; nothing takes the
//! directory while it holds a heap.

use super::state::{HEAP_NAME_LEN, MAX_HEAPS};
use crate::error::EalError;
use crate::shared_name::encode_str;
use crate::socket::EXTERNAL_SOCKET_BASE;
use crate::sync::SharedLocked;

/// What occupies a heap slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum HeapKind {
    Unused = 0,
    /// The heap of a NUMA socket, made at start-up (`socket_<id>`); it cannot be destroyed and
    /// takes no external memory.
    Socket = 1,
    /// A named heap of user memory.
    External = 2,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapEntry {
    pub name: [u8; HEAP_NAME_LEN],
    pub socket_id: i32,
    /// A [`HeapKind`] value.
    pub kind: u32,
}

impl HeapEntry {
    pub fn kind(&self) -> HeapKind {
        match self.kind {
            1 => HeapKind::Socket,
            2 => HeapKind::External,
            _ => HeapKind::Unused,
        }
    }
}

/// The directory as it sits in the shared configuration. All zero is an empty directory whose
/// `next_socket_id` the primary sets at start-up.
#[repr(C)]
#[derive(Debug)]
pub struct HeapDirectory {
    /// The socket id the next external heap gets.
    pub next_socket_id: i32,
    pub reserved: u32,
    /// Slot `i` describes the configuration's heap `i`.
    pub entries: [HeapEntry; MAX_HEAPS],
}

pub type SharedHeapDirectory = SharedLocked<HeapDirectory>;

/// A heap name as the shared tables store it: non-empty, at most `HEAP_NAME_LEN - 1` bytes
/// (31) and without NUL bytes. Anything else is `EINVAL`, as DPDK reports it for heap names.
pub fn encode_heap_name(name: &str) -> Result<[u8; HEAP_NAME_LEN], EalError> {
    if name.is_empty() {
        return Err(EalError::InvalidArgument("heap name is empty".into()));
    }
    if name.as_bytes().contains(&0) {
        return Err(EalError::InvalidArgument(format!(
            "heap name {name:?} contains a NUL byte"
        )));
    }
    if name.len() >= HEAP_NAME_LEN {
        return Err(EalError::InvalidArgument(format!(
            "heap name {name:?} is {} bytes long; at most {} are allowed",
            name.len(),
            HEAP_NAME_LEN - 1
        )));
    }
    encode_str(name)
}

impl HeapDirectory {
    /// Starts the directory of a fresh configuration (primary, before publication).
    pub(crate) fn reset(&mut self) {
        self.next_socket_id = EXTERNAL_SOCKET_BASE;
        self.entries = [HeapEntry::default(); MAX_HEAPS];
    }

    /// The slot of the heap called `name`.
    pub fn find_name(&self, name: &[u8; HEAP_NAME_LEN]) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind() != HeapKind::Unused && e.name == *name)
    }

    /// The slot of the heap of socket id `socket`.
    pub fn find_socket(&self, socket: i32) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind() != HeapKind::Unused && e.socket_id == socket)
    }

    pub fn free_slot(&self) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind() == HeapKind::Unused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_names_follow_dpdk_limits() {
        assert!(encode_heap_name("").is_err());
        assert!(encode_heap_name("a\0b").is_err());
        assert!(encode_heap_name(&"x".repeat(31)).is_ok());
        let err = encode_heap_name(&"x".repeat(32)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Inval);
    }

    #[test]
    fn lookups_ignore_unused_slots() {
        let mut dir = HeapDirectory {
            next_socket_id: 0,
            reserved: 0,
            entries: [HeapEntry::default(); MAX_HEAPS],
        };
        dir.reset();
        let name = encode_heap_name("frames").unwrap();
        assert_eq!(dir.find_name(&name), None);
        assert_eq!(
            dir.find_socket(0),
            None,
            "an unused slot is no socket-0 heap"
        );
        dir.entries[3] = HeapEntry {
            name,
            socket_id: EXTERNAL_SOCKET_BASE,
            kind: HeapKind::External as u32,
        };
        assert_eq!(dir.find_name(&name), Some(3));
        assert_eq!(dir.find_socket(EXTERNAL_SOCKET_BASE), Some(3));
        assert_eq!(dir.free_slot(), Some(0));
    }
}
