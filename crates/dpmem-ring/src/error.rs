//! What can go wrong creating, attaching to or using a ring.

use crate::mode::{ConsumerMode, ProducerMode};

/// A ring error: the errno DPDK would report, with what a person needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The requested element count is zero, too large, or not a power of two without
    /// `EXACT_SZ`.
    #[error("ring count {count} is invalid: {reason} (EINVAL)")]
    InvalidCount {
        /// The count asked for.
        count: u32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The element size is zero or not a multiple of 4 bytes.
    #[error("ring element size {esize} is not a non-zero multiple of 4 bytes (EINVAL)")]
    InvalidElementSize {
        /// The element size asked for.
        esize: u32,
    },
    /// The name does not fit in the header.
    #[error("ring name {name:?} is {len} bytes, the limit is {max} (ENAMETOOLONG)")]
    NameTooLong {
        /// The name asked for.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// [`crate::RING_NAME_MAX`].
        max: usize,
    },
    /// The name is empty or holds a NUL byte.
    #[error("ring name {name:?} is empty or contains NUL (EINVAL)")]
    InvalidName {
        /// The name asked for.
        name: String,
    },
    /// Two flags ask for different modes of the same side, or a flag is unknown.
    #[error("ring flags {flags:#x}: {reason} (EINVAL)")]
    InvalidFlags {
        /// The flags given.
        flags: u32,
        /// What conflicts.
        reason: &'static str,
    },
    /// The memory handed to the ring is too small or misaligned for it.
    #[error("ring memory of {len} bytes at {addr:#x}: {reason} (EINVAL)")]
    BadRegion {
        /// Start of the region.
        addr: usize,
        /// Its length.
        len: usize,
        /// What is wrong (too small: how much is needed; misaligned: the alignment).
        reason: String,
    },
    /// No memory for a heap-backed ring.
    #[error("no memory for ring {name:?} ({bytes} bytes) (ENOMEM)")]
    OutOfMemory {
        /// The ring's name.
        name: String,
        /// The block size requested.
        bytes: usize,
    },
    /// Attaching found no initialised ring header in the memory.
    #[error("no ring header in this memory (bad magic {magic:#x}) (EINVAL)")]
    NotARing {
        /// The value found where the header's magic should be.
        magic: u64,
    },
    /// The operation needs a producer mode the ring does not have (peek and zero-copy
    /// need SP or MP_HTS).
    #[error("ring {name:?}: {what} needs a single-thread or HTS producer, the ring's is {mode:?} (ENOTSUP)")]
    ProducerModeUnsupported {
        /// The ring's name.
        name: String,
        /// The operation refused.
        what: &'static str,
        /// The ring's producer mode.
        mode: ProducerMode,
    },
    /// The consumer counterpart of [`RingError::ProducerModeUnsupported`].
    #[error("ring {name:?}: {what} needs a single-thread or HTS consumer, the ring's is {mode:?} (ENOTSUP)")]
    ConsumerModeUnsupported {
        /// The ring's name.
        name: String,
        /// The operation refused.
        what: &'static str,
        /// The ring's consumer mode.
        mode: ConsumerMode,
    },
    /// A single-thread side already has its one handle.
    #[error("ring {name:?}: the single-thread {side} side already has a handle (EBUSY)")]
    Busy {
        /// The ring's name.
        name: String,
        /// `producer` or `consumer`.
        side: &'static str,
    },
    /// A head-tail distance was set on a side that is not RTS.
    #[error("ring {name:?}: the {side} side is not RTS, it has no head-tail distance (EINVAL)")]
    NotRts {
        /// The ring's name.
        name: String,
        /// `producer` or `consumer`.
        side: &'static str,
    },
}
