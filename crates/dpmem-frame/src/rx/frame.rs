//! [`RxFrame`]: a received frame the application holds — complete, every copy into it
//! reported, and read-only. Dropping it gives the buffer back to the session; until then the
//! session neither writes nor reuses it. The handle keeps the session's frame buffers alive
//! by itself, so it may be sent to another thread and outlive the session.

use std::sync::Arc;

use crate::frame_id::FrameId;
use crate::rx::frame_buffers::FrameBuffers;

/// A complete received frame (see the module notes).
pub struct RxFrame<'eal> {
    pub(crate) buffers: Arc<FrameBuffers<'eal>>,
    pub(crate) id: FrameId,
    pub(crate) timestamp: u32,
}

impl std::fmt::Debug for RxFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxFrame")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("len", &self.len())
            .finish()
    }
}

impl RxFrame<'_> {
    /// The buffer the frame is in (0 to the session's frame count - 1).
    pub fn id(&self) -> FrameId {
        self.id
    }

    /// The RTP timestamp its packets carried.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Bytes of the frame (one frame of the session's format).
    pub fn len(&self) -> usize {
        self.buffers.frame_size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the buffer is held (this handle's state): the session wrote it only before
        // it was ready, and every device copy into it was reported (acquire on the session's
        // copy count) before it was; it writes no held buffer. The memzone lives while the
        // handle's share of the buffers does.
        unsafe { core::slice::from_raw_parts(self.buffers.base(self.id), self.len()) }
    }
}

impl Drop for RxFrame<'_> {
    fn drop(&mut self) {
        self.buffers.states().release(self.id);
    }
}
