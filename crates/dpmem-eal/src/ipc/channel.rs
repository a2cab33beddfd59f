//! One EAL's end of the channel: its socket, its actions, its waiting requests, and the calls
//! an application makes (DPDK's `rte_mp_sendmsg`, `rte_mp_request_sync`,
//! `rte_mp_request_async`, `rte_mp_action_register` / `unregister`); and what an action is
//! handed ([`Incoming`]), here because replying goes through the channel.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use dpmem_sys::datagram::{DatagramSocket, Delivery};
use dpmem_sys::dir_handle::DirHandle;
use dpmem_sys::readiness::Wakeup;

use super::action::ActionTable;
use super::error::IpcError;
use super::links::PeerLinks;
use super::message::IpcMessage;
use super::peers::{self, PRIMARY_SOCKET};
use super::pending::{Completion, PendingRequest, PendingTable, SyncSlot};
use super::replies::Replies;
use super::wire::{Frame, Kind};
use crate::memory::ProcessRole;

/// The channel of one EAL (see the [module documentation](super)).
pub struct Ipc {
    pub(crate) dir: DirHandle,
    pub(crate) socket: DatagramSocket,
    /// How datagrams leave: a connected socket per peer, the primary's list of secondaries.
    links: PeerLinks,
    /// This process's socket name in `dir`.
    pub(crate) own: String,
    pub(crate) role: ProcessRole,
    pub(crate) actions: ActionTable<Action>,
    /// Requests waiting for replies; `None` once the channel has stopped (nothing may wait
    /// then, since nobody would finish it).
    pub(crate) pending: Mutex<Option<PendingTable>>,
    next_id: AtomicU64,
    /// Raised when a request is added (the thread's next deadline changes) and to stop.
    pub(crate) wakeup: Wakeup,
    /// The control thread, once it runs: a synchronous request from it would wait forever.
    pub(crate) thread: OnceLock<ThreadId>,
}

impl std::fmt::Debug for Ipc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipc")
            .field("dir", &self.dir.path())
            .field("socket", &self.own)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Ipc {
    pub(crate) fn new(
        dir: DirHandle,
        socket: DatagramSocket,
        own: String,
        role: ProcessRole,
        wakeup: Wakeup,
    ) -> Ipc {
        Ipc {
            links: PeerLinks::new(&dir, role),
            dir,
            socket,
            own,
            role,
            actions: ActionTable::default(),
            pending: Mutex::new(Some(PendingTable::default())),
            next_id: AtomicU64::new(1),
            wakeup,
            thread: OnceLock::new(),
        }
    }

    /// This process's socket name (`mp_socket` for the primary).
    pub fn socket_name(&self) -> &str {
        &self.own
    }

    /// This process's socket.
    pub fn socket_path(&self) -> std::path::PathBuf {
        self.dir.path().join(&self.own)
    }

    /// The sockets this process sends to now: every secondary's for the primary, the
    /// primary's for a secondary (none when it is gone).
    pub fn peers(&self) -> Result<Vec<String>, IpcError> {
        match self.role {
            ProcessRole::Primary => self.links.secondaries(&self.dir, &self.own),
            ProcessRole::Secondary => peers::peers_of(&self.dir, self.role, &self.own),
        }
    }

    /// Where a message or request goes: every secondary's socket for the primary, as listed
    /// when the directory's entries last changed; for a secondary the primary's, named
    /// without a look at the directory (its only possible peer), so that its every message
    /// does not cost a directory listing. A primary that is gone refuses the datagram, which
    /// counts it as skipped, as a listing would have found its socket dead or not found it.
    fn destinations(&self) -> Result<Vec<String>, IpcError> {
        match self.role {
            ProcessRole::Primary => self.peers(),
            ProcessRole::Secondary => Ok(vec![PRIMARY_SOCKET.to_owned()]),
        }
    }

    /// Runs `action` for every message and request named `name` that reaches this process,
    /// on the channel's control thread. A name already registered is refused (`EEXIST`).
    pub fn register_action<F>(&self, name: &str, action: F) -> Result<(), IpcError>
    where
        F: Fn(&mut Incoming<'_>) + Send + Sync + 'static,
    {
        self.actions.register(name, Arc::new(action))
    }

    /// Removes the action for `name` (`ENOENT` when there is none). Requests of that name
    /// are then answered "no action".
    pub fn unregister_action(&self, name: &str) -> Result<(), IpcError> {
        self.actions.unregister(name)
    }

    /// Sends `message` one way: from a secondary to the primary, from the primary to every
    /// secondary. Returns how many peers it reached; a dead peer is skipped (and its socket
    /// removed, by the primary).
    pub fn send(&self, message: &IpcMessage) -> Result<usize, IpcError> {
        let frame = Frame {
            kind: Kind::Message,
            id: 0,
            sender: &self.own,
            name: message.name(),
            params: message.params(),
        };
        let mut reached = 0;
        for peer in self.destinations()? {
            if self.send_frame(&peer, &frame, &message.fds())? == Delivery::Sent {
                reached += 1;
            }
        }
        Ok(reached)
    }

    /// Sends `message` as a request to every peer and waits, at most `timeout`, for their
    /// answers. A peer with no action for the name, or whose action returns without
    /// replying, says so at once; a peer that dies meanwhile is noticed within a few
    /// milliseconds; neither is waited for. Refused from within an action.
    pub fn request_sync(
        &self,
        message: &IpcMessage,
        timeout: Duration,
    ) -> Result<Replies, IpcError> {
        if self.thread.get() == Some(&std::thread::current().id()) {
            return Err(IpcError::SyncFromAction);
        }
        let slot = Arc::new(SyncSlot::default());
        self.start_request(message, timeout, Completion::Sync(Arc::clone(&slot)))?;
        Ok(slot.wait())
    }

    /// Sends `message` as a request to every peer and returns at once; `callback` gets the
    /// replies on the channel's control thread when every peer has answered (or died) or
    /// `timeout` has passed. With no peer, it gets an empty set at once.
    pub fn request_async<F>(
        &self,
        message: &IpcMessage,
        timeout: Duration,
        callback: F,
    ) -> Result<(), IpcError>
    where
        F: FnOnce(Replies) + Send + 'static,
    {
        self.start_request(message, timeout, Completion::Async(Box::new(callback)))
    }

    /// Sends the request and leaves it to the control thread to finish.
    fn start_request(
        &self,
        message: &IpcMessage,
        timeout: Duration,
        completion: Completion,
    ) -> Result<(), IpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = Frame {
            kind: Kind::Request,
            id,
            sender: &self.own,
            name: message.name(),
            params: message.params(),
        };
        let peers = self.destinations()?;
        // A timeout past what the clock can count waits as long as it can, not a panic.
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut request = PendingRequest::new(deadline, completion);
        // Held while sending: an answer is only recorded once its request is in the table.
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(table) = pending.as_mut() else {
            return Err(IpcError::Stopped);
        };
        for peer in peers {
            match self.send_frame(&peer, &frame, &message.fds())? {
                Delivery::Sent => request.sent_to(peer),
                Delivery::PeerGone => request.skipped(peer),
            }
        }
        table.insert(id, request);
        drop(pending);
        self.wakeup.raise();
        Ok(())
    }

    /// Sends one frame to `peer`; a dead peer's socket is removed.
    pub(crate) fn send_frame(
        &self,
        peer: &str,
        frame: &Frame<'_>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<Delivery, IpcError> {
        let delivery = self
            .links
            .send(&self.dir, &self.socket, peer, &frame.encode(), fds)
            .map_err(|e| IpcError::sys(format!("send {:?} to {peer}", frame.name), e))?;
        if delivery == Delivery::PeerGone {
            self.forget_dead(peer);
        }
        Ok(delivery)
    }

    /// Removes the socket of `peer`, found dead. Only the primary does: it alone may bind
    /// `mp_socket` anew, so a secondary removing a dead primary's socket could race with a new
    /// primary binding it (DPDK leaves the same to its primary).
    pub(crate) fn forget_dead(&self, peer: &str) {
        self.links.forget(peer);
        if self.role == ProcessRole::Primary {
            peers::remove_dead(&self.dir, peer);
        }
    }
}

/// An action: runs on the channel's control thread, one message at a time.
pub type Action = dyn Fn(&mut Incoming<'_>) + Send + Sync;

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

    /// Takes over the answer to this request, to send it later from another thread with
    /// [`LaterReply::send`]: for an action whose work must itself wait for other peers (a
    /// synchronous request is refused on the control thread). The request counts as answered
    /// here; its requester waits for the later reply (or its own timeout). Refused for a
    /// one-way message or a request already answered.
    pub fn reply_later(&mut self) -> Result<LaterReply, IpcError> {
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
        self.replied = true;
        Ok(LaterReply {
            peer: self.peer.to_owned(),
            id,
        })
    }
}

/// The answer owed to a request whose action handed it on ([`Incoming::reply_later`]).
/// Dropping it unsent leaves the requester to its timeout.
#[derive(Debug)]
pub struct LaterReply {
    peer: String,
    id: u64,
}

impl LaterReply {
    /// The requester's socket name.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends the answer on `channel` (the one the request came on). A requester that died
    /// meanwhile is not an error.
    pub fn send(self, channel: &Ipc, reply: IpcMessage) -> Result<(), IpcError> {
        let frame = Frame {
            kind: Kind::Reply,
            id: self.id,
            sender: channel.socket_name(),
            name: reply.name(),
            params: reply.params(),
        };
        channel.send_frame(&self.peer, &frame, &reply.fds())?;
        Ok(())
    }
}
