//! [`DoneQueue`]: where a session's finished frames are reported. For the session's own
//! frames: an optional callback, run on the thread that released the frame's last
//! reference, and a queue of frame ids the application drains when it likes. For frames the
//! application lent: the same, with the frame lent handed back ([`LentFrames`]).

use std::sync::Mutex;

use crate::frame_id::FrameId;
use crate::lent_frames::LentFrames;

/// The application's "done" callback.
pub type DoneCallback = Box<dyn Fn(FrameId) + Send + Sync>;

/// Where "done" goes for one set of slots.
pub(crate) enum DoneQueue {
    /// The session's own frames, reported by id.
    Own {
        callback: Option<DoneCallback>,
        ids: Mutex<Vec<FrameId>>,
        /// Frames done since the session began (statistics; the protocol does not read it).
        count: std::sync::atomic::AtomicU64,
    },
    /// Frames the application lent, reported as lent.
    Lent(LentFrames),
}

impl std::fmt::Debug for DoneQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DoneQueue::Own { callback, .. } => f
                .debug_struct("DoneQueue")
                .field("callback", &callback.is_some())
                .field("done", &self.done_count())
                .finish(),
            DoneQueue::Lent(lent) => f.debug_tuple("DoneQueue").field(lent).finish(),
        }
    }
}

impl DoneQueue {
    /// The queue of a session's own frames.
    pub(crate) fn new(callback: Option<DoneCallback>) -> DoneQueue {
        DoneQueue::Own {
            callback,
            ids: Mutex::new(Vec::new()),
            count: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Frame `id` is done: the callback runs, then it is queued.
    pub(crate) fn frame_done(&self, id: FrameId) {
        match self {
            DoneQueue::Own {
                callback,
                ids,
                count,
            } => {
                if let Some(callback) = callback {
                    callback(id);
                }
                ids.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(id);
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            DoneQueue::Lent(lent) => lent.frame_done(id),
        }
    }

    /// Moves the queued ids of own frames into `out`, oldest first.
    pub(crate) fn drain_into(&self, out: &mut Vec<FrameId>) {
        if let DoneQueue::Own { ids, .. } = self {
            out.append(&mut ids.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The lent frames, for a queue of lent frames.
    pub(crate) fn lent(&self) -> Option<&LentFrames> {
        match self {
            DoneQueue::Lent(lent) => Some(lent),
            DoneQueue::Own { .. } => None,
        }
    }

    pub(crate) fn done_count(&self) -> u64 {
        match self {
            DoneQueue::Own { count, .. } => count.load(std::sync::atomic::Ordering::Relaxed),
            DoneQueue::Lent(lent) => lent.returned_count(),
        }
    }
}
