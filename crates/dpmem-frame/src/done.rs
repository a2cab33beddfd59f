//! [`DoneQueue`]: where a session's finished frames are reported — an optional callback, run
//! on the thread that released the frame's last reference, and a queue of frame ids the
//! application drains when it likes.

use std::sync::Mutex;

use crate::frame_id::FrameId;

/// The application's "done" callback.
pub type DoneCallback = Box<dyn Fn(FrameId) + Send + Sync>;

pub(crate) struct DoneQueue {
    callback: Option<DoneCallback>,
    ids: Mutex<Vec<FrameId>>,
    /// Frames done since the session began (statistics; the protocol does not read it).
    count: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for DoneQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoneQueue")
            .field("callback", &self.callback.is_some())
            .field("done", &self.done_count())
            .finish()
    }
}

impl DoneQueue {
    pub(crate) fn new(callback: Option<DoneCallback>) -> DoneQueue {
        DoneQueue {
            callback,
            ids: Mutex::new(Vec::new()),
            count: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Frame `id` is done: the callback runs, then the id is queued.
    pub(crate) fn frame_done(&self, id: FrameId) {
        if let Some(callback) = &self.callback {
            callback(id);
        }
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(id);
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves the queued ids into `out`, oldest first.
    pub(crate) fn drain_into(&self, out: &mut Vec<FrameId>) {
        out.append(&mut self.ids.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub(crate) fn done_count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}
