//! Requests waiting for their replies, keyed by request id, and how each one ends: a waiting
//! caller woken (synchronous) or a callback run on the channel's thread (asynchronous).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::message::IpcMessage;
use super::replies::{Replies, Reply};

/// Where a synchronous request's replies are handed to the caller waiting for them.
#[derive(Debug, Default)]
pub(crate) struct SyncSlot {
    done: Mutex<Option<Replies>>,
    ready: Condvar,
}

impl SyncSlot {
    fn fill(&self, replies: Replies) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(replies);
        self.ready.notify_all();
    }

    /// Waits until the channel's thread has finished the request. It always does: at the
    /// request's deadline at the latest, or when the channel stops.
    pub(crate) fn wait(&self) -> Replies {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(replies) = done.take() {
                return replies;
            }
            done = self.ready.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A callback given an asynchronous request's replies.
pub(crate) type AsyncCallback = Box<dyn FnOnce(Replies) + Send>;

pub(crate) enum Completion {
    Sync(Arc<SyncSlot>),
    Async(AsyncCallback),
}

/// How a peer answered.
#[derive(Debug)]
pub(crate) enum Answer {
    Reply(IpcMessage),
    NoAction,
    NoReply,
}

pub(crate) struct PendingRequest {
    /// Peers the request reached that have not answered; the request is finished when empty.
    waiting: BTreeSet<String>,
    replies: Replies,
    deadline: Instant,
    completion: Completion,
}

impl PendingRequest {
    pub(crate) fn new(deadline: Instant, completion: Completion) -> PendingRequest {
        PendingRequest {
            waiting: BTreeSet::new(),
            replies: Replies::default(),
            deadline,
            completion,
        }
    }

    /// The request reached `peer`.
    pub(crate) fn sent_to(&mut self, peer: String) {
        self.replies.sent += 1;
        self.waiting.insert(peer);
    }

    /// `peer` was found dead before the request went out.
    pub(crate) fn skipped(&mut self, peer: String) {
        self.replies.skipped.push(peer);
    }

    /// Hands the replies over: wakes the caller, or runs the callback (on this thread).
    pub(crate) fn finish(mut self) {
        self.replies
            .timed_out
            .extend(std::mem::take(&mut self.waiting));
        match self.completion {
            Completion::Sync(slot) => slot.fill(self.replies),
            Completion::Async(callback) => {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    callback(self.replies)
                }));
                if caught.is_err() {
                    eprintln!("dpmem: an asynchronous request's callback panicked");
                }
            }
        }
    }
}

/// Every request of one channel still waiting.
#[derive(Default)]
pub(crate) struct PendingTable {
    requests: BTreeMap<u64, PendingRequest>,
}

impl PendingTable {
    pub(crate) fn insert(&mut self, id: u64, request: PendingRequest) {
        self.requests.insert(id, request);
    }

    /// Records `peer`'s answer to request `id`; an answer nobody waits for (late, after the
    /// deadline, or repeated) is dropped.
    pub(crate) fn answer(&mut self, id: u64, peer: &str, answer: Answer) {
        let Some(request) = self.requests.get_mut(&id) else {
            return;
        };
        if !request.waiting.remove(peer) {
            return;
        }
        let replies = &mut request.replies;
        match answer {
            Answer::Reply(message) => replies.replies.push(Reply {
                peer: peer.to_owned(),
                message,
            }),
            Answer::NoAction => replies.no_action.push(peer.to_owned()),
            Answer::NoReply => replies.declined.push(peer.to_owned()),
        }
    }

    /// `peer` died: no request waits for it any more.
    pub(crate) fn peer_died(&mut self, peer: &str) {
        for request in self.requests.values_mut() {
            if request.waiting.remove(peer) {
                request.replies.died.push(peer.to_owned());
            }
        }
    }

    /// Peers some request still waits for.
    pub(crate) fn awaited_peers(&self) -> BTreeSet<String> {
        self.requests
            .values()
            .flat_map(|r| r.waiting.iter().cloned())
            .collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// The earliest deadline of a waiting request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.requests.values().map(|r| r.deadline).min()
    }

    /// Takes out every request that has all its answers or whose time ran out at `now`.
    pub(crate) fn take_finished(&mut self, now: Instant) -> Vec<PendingRequest> {
        let done: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.waiting.is_empty() || r.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        done.iter()
            .filter_map(|id| self.requests.remove(id))
            .collect()
    }

    /// Takes out every request (the channel is stopping).
    pub(crate) fn take_all(&mut self) -> Vec<PendingRequest> {
        std::mem::take(&mut self.requests).into_values().collect()
    }
}
