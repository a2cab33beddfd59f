//! [`ExternalFrame`]: a frame in the application's own memory, lent to a transmit session
//! (MTL's external frame: address, device address, length and an opaque value), and handed
//! back by the session's "done" exactly as it was lent.

use dpmem_eal::Iova;

/// A frame the application lends to a [`TxSession`](crate::TxSession) from memory it mapped
/// for I/O ([`DmaMapping`](crate::DmaMapping)). The session reads it in place and returns
/// this same value through its external "done" once no packet references the bytes; it
/// never frees or writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExternalFrame {
    /// The frame's first byte.
    pub va: usize,
    /// The device address of the first byte, as the mapping records it
    /// ([`DmaMapping::iova_of`](crate::DmaMapping::iova_of)).
    pub iova: Iova,
    /// Bytes of the frame (at least one frame of the session's format).
    pub len: usize,
    /// The application's own value, handed back with the frame.
    pub opaque: u64,
}

impl ExternalFrame {
    /// One past the frame's last byte (`None` when the frame runs past the address space).
    pub fn end(&self) -> Option<usize> {
        self.va.checked_add(self.len)
    }

    /// Whether the two frames share a byte.
    pub fn overlaps(&self, other: &ExternalFrame) -> bool {
        let end = |f: &ExternalFrame| f.end().unwrap_or(usize::MAX);
        self.va < end(other) && other.va < end(self)
    }
}
