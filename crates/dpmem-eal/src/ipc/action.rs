//! Named actions: what a process runs when a message or request of that name arrives (DPDK's
//! `rte_mp_action_register`), and what an action is handed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::channel::Ipc;
use super::error::IpcError;
use super::message::{check_name, IpcMessage};
use super::wire::{Frame, Kind};

/// An action: runs on the channel's control thread, one message at a time.
pub type Action = dyn Fn(&mut Incoming<'_>) + Send + Sync;

/// The actions of one channel, by name.
#[derive(Default)]
pub(crate) struct ActionTable {
    actions: Mutex<BTreeMap<String, Arc<Action>>>,
}

impl ActionTable {
    pub(crate) fn register(&self, name: &str, action: Arc<Action>) -> Result<(), IpcError> {
        check_name(name)?;
        let mut actions = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        if actions.contains_key(name) {
            return Err(IpcError::ActionExists(name.to_owned()));
        }
        actions.insert(name.to_owned(), action);
        Ok(())
    }

    pub(crate) fn unregister(&self, name: &str) -> Result<(), IpcError> {
        check_name(name)?;
        let mut actions = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        actions
            .remove(name)
            .map(drop)
            .ok_or_else(|| IpcError::NoAction(name.to_owned()))
    }

    /// The action for `name`, held past the table's lock so that an action may register or
    /// unregister others (itself included) while it runs.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Action>> {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Drops every action (the channel is stopping: what they hold goes with them).
    pub(crate) fn clear(&self) {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// A message or request as an action sees it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub(crate) message: IpcMessage,
    pub(crate) peer: &'a str,
    /// The request's id; `None` for a one-way message.
    pub(crate) request: Option<u64>,
    pub(crate) replied: bool,
    pub(crate) channel: &'a Ipc,
}

impl Incoming<'_> {
    pub fn message(&self) -> &IpcMessage {
        &self.message
    }

    /// The message, to take its descriptors.
    pub fn message_mut(&mut self) -> &mut IpcMessage {
        &mut self.message
    }

    /// The sender's socket name.
    pub fn peer(&self) -> &str {
        self.peer
    }

    /// Whether the sender waits for a reply.
    pub fn is_request(&self) -> bool {
        self.request.is_some()
    }

    /// The channel the message came on: an action may send messages and make asynchronous
    /// requests (a synchronous one is refused, since its replies come to this very thread).
    pub fn channel(&self) -> &Ipc {
        self.channel
    }

    /// Answers the request (DPDK's `rte_mp_reply`), once. A reply to a one-way message, or a
    /// second one, is refused; a requester that died meanwhile is not an error.
    pub fn reply(&mut self, reply: IpcMessage) -> Result<(), IpcError> {
        let refuse = |reason| {
            Err(IpcError::CannotReply {
                name: self.message.name().to_owned(),
                reason,
            })
        };
        let Some(id) = self.request else {
            return refuse("it is a one-way message, not a request");
        };
        if self.replied {
            return refuse("it was answered already");
        }
        let frame = Frame {
            kind: Kind::Reply,
            id,
            sender: self.channel.socket_name(),
            name: reply.name(),
            params: reply.params(),
        };
        self.channel.send_frame(self.peer, &frame, &reply.fds())?;
        self.replied = true;
        Ok(())
    }
}
