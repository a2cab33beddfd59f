//! [`LentFrames`]: the frames an application lent to a transmit session, one per slot of the
//! session's external slots, and their way back through "done".
//!
//! An external slot runs the same reference protocol as the session's own frames
//! ([`crate::slot`]): claimed free → owned, in flight while packets reference the frame, and
//! free again only after "done". What is added is which frame the slot holds: written after
//! the slot is claimed and before the packetiser begins, taken by "done" before the slot is
//! stored free, so the frame handed back is always the one lent, once.
//!
//! The table's lock is never held across the slot's atomics (under loom those are switch
//! points, and the lock is the standard library's): a lend (`lend.rs`) checks the table,
//! claims a slot outside the lock, then checks again and writes under it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::external_frame::ExternalFrame;
use crate::frame_id::FrameId;

/// The application's callback for frames it lent, run when one comes back.
pub type ExternalDoneCallback = Box<dyn Fn(ExternalFrame) + Send + Sync>;

pub(crate) struct LentFrames {
    /// The frame each external slot holds: `Some` from its lend until its "done" begins.
    held: Mutex<Box<[Option<ExternalFrame>]>>,
    callback: Option<ExternalDoneCallback>,
    /// Frames come back, oldest first, until the application drains them.
    returned: Mutex<Vec<ExternalFrame>>,
    /// Frames returned since the session began (statistics; the protocol does not read it).
    count: AtomicU64,
}

impl std::fmt::Debug for LentFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LentFrames")
            .field("held", &self.held())
            .field("returned", &self.returned_count())
            .finish()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking callback cannot leave the table half-written: every update is one store.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LentFrames {
    pub(crate) fn new(slots: u16, callback: Option<ExternalDoneCallback>) -> LentFrames {
        LentFrames {
            held: Mutex::new(vec![None; usize::from(slots)].into_boxed_slice()),
            callback,
            returned: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        }
    }

    /// A held frame sharing a byte with `frame`.
    fn overlapping(held: &[Option<ExternalFrame>], frame: &ExternalFrame) -> Option<ExternalFrame> {
        held.iter().flatten().find(|h| h.overlaps(frame)).copied()
    }

    /// A frame held that shares a byte with `frame`.
    pub(crate) fn overlapping_held(&self, frame: &ExternalFrame) -> Option<ExternalFrame> {
        Self::overlapping(&locked(&self.held), frame)
    }

    /// Records `frame` as the frame of slot `index`, which the caller just claimed for it;
    /// refused (the overlapping frame) when another thread lent one sharing its bytes since
    /// the caller looked.
    pub(crate) fn record(&self, index: usize, frame: ExternalFrame) -> Result<(), ExternalFrame> {
        let mut held = locked(&self.held);
        if let Some(lent) = Self::overlapping(&held, &frame) {
            return Err(lent);
        }
        held[index] = Some(frame);
        Ok(())
    }

    /// The frame of slot `id` is done: taken from the table (so it may be lent again at
    /// once, from the callback too), handed to the callback, then queued.
    pub(crate) fn frame_done(&self, id: FrameId) {
        let frame = locked(&self.held)[usize::from(id)].take();
        // A slot in flight always holds its frame (written before the packetiser began); this
        // runs inside the shared info's callback, where nothing may panic.
        let Some(frame) = frame else {
            return;
        };
        if let Some(callback) = &self.callback {
            callback(frame);
        }
        locked(&self.returned).push(frame);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves the frames returned since the last call into `out`, oldest first.
    pub(crate) fn drain_into(&self, out: &mut Vec<ExternalFrame>) {
        out.append(&mut locked(&self.returned));
    }

    /// The frames lent and not yet returned.
    pub(crate) fn held(&self) -> Vec<ExternalFrame> {
        locked(&self.held).iter().flatten().copied().collect()
    }

    pub(crate) fn returned_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
