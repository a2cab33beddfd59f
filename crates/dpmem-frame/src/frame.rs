//! [`FrameMut`]: a frame the application owns — the only way to write a frame's bytes. It is
//! handed out only when no packet references the frame, and it is consumed by
//! [`TxSession::transmit`]; dropped instead, the frame goes back free, untransmitted.

use crate::session::TxSession;
use crate::slot::FrameId;

/// Exclusive access to one of a session's frames (see the module notes).
pub struct FrameMut<'s, 'eal> {
    pub(crate) session: &'s TxSession<'eal>,
    pub(crate) index: usize,
}

impl std::fmt::Debug for FrameMut<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMut")
            .field("id", &self.id())
            .field("len", &self.len())
            .finish()
    }
}

impl<'s, 'eal> FrameMut<'s, 'eal> {
    pub(crate) fn new(session: &'s TxSession<'eal>, index: usize) -> Self {
        FrameMut { session, index }
    }

    pub fn id(&self) -> FrameId {
        self.index as FrameId
    }

    /// Bytes of the frame buffer (at least one frame of the format).
    pub fn len(&self) -> usize {
        self.session.memory[self.index].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        let m = &self.session.memory[self.index];
        // SAFETY: the frame is this handle's alone (claimed, no packet references it), and
        // its memzone lives as long as the session.
        unsafe { core::slice::from_raw_parts(m.as_ptr(), m.len()) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let m = &self.session.memory[self.index];
        // SAFETY: as `as_slice`, and the handle is borrowed uniquely.
        unsafe { core::slice::from_raw_parts_mut(m.as_ptr(), m.len()) }
    }

    /// Gives the handle up without freeing the frame (the transmit path takes it over).
    pub(crate) fn into_index(self) -> usize {
        let index = self.index;
        core::mem::forget(self);
        index
    }
}

impl Drop for FrameMut<'_, '_> {
    fn drop(&mut self) {
        self.session.slots[self.index].unclaim();
    }
}
