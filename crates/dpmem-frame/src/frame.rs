//! [`FrameMut`]: a frame the application owns — the only way to write a frame's bytes. It is
//! handed out only when no packet references the frame, and it is consumed by
//! `TxSession::transmit`; dropped instead, the frame goes back free, untransmitted.

use crate::frame_id::FrameId;
use crate::memory::FrameMemory;
use crate::slot::FrameSlot;

/// Exclusive access to one of a session's frames (see the module notes).
pub struct FrameMut<'s> {
    pub(crate) slot: &'s FrameSlot,
    pub(crate) memory: &'s FrameMemory,
    /// The address of the session it belongs to (checked when it is transmitted).
    pub(crate) owner: usize,
}

impl std::fmt::Debug for FrameMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMut")
            .field("id", &self.id())
            .field("len", &self.len())
            .finish()
    }
}

impl<'s> FrameMut<'s> {
    pub fn id(&self) -> FrameId {
        self.slot.id()
    }

    /// Bytes of the frame buffer (at least one frame of the format).
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the frame is this handle's alone (claimed, no packet references it), and
        // its memzone lives as long as the session.
        unsafe { core::slice::from_raw_parts(self.memory.as_ptr(), self.memory.len()) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and the handle is borrowed uniquely.
        unsafe { core::slice::from_raw_parts_mut(self.memory.as_ptr(), self.memory.len()) }
    }

    /// Gives the handle up without freeing the frame (the transmit path takes it over).
    pub(crate) fn into_id(self) -> FrameId {
        let id = self.id();
        core::mem::forget(self);
        id
    }
}

impl Drop for FrameMut<'_> {
    fn drop(&mut self) {
        self.slot.unclaim();
    }
}
