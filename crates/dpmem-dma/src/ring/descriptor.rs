//! One queued operation as the ring holds it: what the user wrote at enqueue and the worker
//! reads after the doorbell.

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Copy `len` bytes from `src` to `dst`.
    Copy,
    /// Write `len` bytes at `dst`, repeating the 8 bytes of `src` (the pattern) in memory
    /// order.
    Fill,
}

/// The flags the worker acts on.
pub(crate) mod desc_flags {
    /// Run only after the earlier operations; skipped if one of them failed in this batch.
    pub const FENCE: u8 = 1 << 0;
    /// The last operation of a batch: the doorbell was rung right after it.
    pub const BATCH_END: u8 = 1 << 1;
}

/// One operation in a ring slot: 32 bytes, so two share a cache line and none straddles
/// two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub(crate) struct Descriptor {
    /// Source IOVA (copy) or the pattern (fill).
    pub src: u64,
    /// Destination IOVA.
    pub dst: u64,
    /// Bytes.
    pub len: u32,
    pub kind: OpKind,
    /// [`desc_flags`] bits.
    pub flags: u8,
}

impl Descriptor {
    /// A slot that has not held an operation yet.
    pub const EMPTY: Descriptor = Descriptor {
        src: 0,
        dst: 0,
        len: 0,
        kind: OpKind::Copy,
        flags: 0,
    };

    #[inline(always)]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}
