//! The channel's control thread: it reads every datagram, runs actions, records answers,
//! notices peers that died, and finishes requests whose answers are in or whose time is up.
//!
//! It waits in `poll` on the socket and a wake-up, with a time limit only while requests
//! wait: the nearest deadline, and at most [`PROBE_INTERVAL`] so that a peer that died
//! without answering is noticed soon (DPDK waits out the whole timeout for it). Dropping the
//! service raises the wake-up, joins the thread, finishes every waiting request with what it
//! has and removes the socket.

use std::os::fd::AsFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpmem_sys::datagram::{self, DatagramSocket};
use dpmem_sys::dir_handle::DirHandle;
use dpmem_sys::readiness::{wait_readable_for, Wakeup};

use super::channel::Incoming;
use super::channel::Ipc;
use super::error::IpcError;
use super::message::{IpcMessage, MAX_FDS};
use super::peers::{self, PRIMARY_SOCKET};
use super::pending::Answer;
use super::wire::{self, Frame, Kind, MAX_DATAGRAM};
use crate::lcore::{ControlThread, LcoreThreads};
use crate::memory::ProcessRole;
use crate::runtime_dir::RemoveAtExit;

/// How often the peers a request waits for are checked for life.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// A running channel. Dropping it stops the thread and removes the socket.
#[derive(Debug)]
pub(crate) struct IpcService {
    ipc: Arc<Ipc>,
    thread: Option<ControlThread<()>>,
    _at_exit: RemoveAtExit,
}

impl IpcService {
    /// Binds this process's socket in the runtime directory `dir` and starts serving it on a
    /// control thread of `threads`.
    pub(crate) fn start(
        threads: &LcoreThreads,
        dir: DirHandle,
        role: ProcessRole,
    ) -> Result<IpcService, IpcError> {
        let own = match role {
            ProcessRole::Primary => {
                // This process holds the primary's lock: an `mp_socket` there, and any
                // secondary socket nobody is bound to, were left by processes that died.
                peers::remove_dead(&dir, PRIMARY_SOCKET);
                peers::remove_dead_secondaries(&dir);
                PRIMARY_SOCKET.to_owned()
            }
            ProcessRole::Secondary => peers::next_secondary_socket(),
        };
        // Everything that can fail before the socket exists comes first: nothing to undo.
        let wakeup = Wakeup::new().map_err(|e| IpcError::sys("channel wake-up", e))?;
        let socket = DatagramSocket::bind_in(&dir, &own)
            .map_err(|e| IpcError::sys("bind the channel's socket", e))?;
        let at_exit = RemoveAtExit::register(dir.path().join(&own), dir.path().to_path_buf());
        let ipc = Arc::new(Ipc::new(dir, socket, own, role, wakeup));
        let served = Arc::clone(&ipc);
        let thread = threads
            .create_control_thread("dpmem-mp", move || serve(&served))
            .map_err(|e| {
                let _ = ipc.dir.remove_file(&ipc.own);
                IpcError::Disabled(format!("control thread: {e}"))
            })?;
        let _ = ipc.thread.set(thread.thread().id());
        Ok(IpcService {
            ipc,
            thread: Some(thread),
            _at_exit: at_exit,
        })
    }

    pub(crate) fn ipc(&self) -> &Ipc {
        &self.ipc
    }

    /// The channel, for a holder that may outlive this borrow (it stops working, not
    /// existing, when the service stops).
    pub(crate) fn shared(&self) -> &Arc<Ipc> {
        &self.ipc
    }
}

impl Drop for IpcService {
    fn drop(&mut self) {
        // The table goes first, under its lock: no request can start after this, and the
        // thread finishes those waiting on its way out.
        let waiting = self
            .ipc
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.ipc.wakeup.raise();
        if let Some(thread) = self.thread.take() {
            // A panic there was reported when it happened; the socket goes either way.
            let _ = thread.join();
        }
        if let Some(mut table) = waiting {
            for request in table.take_all() {
                request.finish();
            }
        }
        // What actions hold (captured handles, descriptors) goes with the channel.
        self.ipc.actions.clear();
        let _ = self.ipc.dir.remove_file(&self.ipc.own);
    }
}

/// The control thread: serves until the pending table is taken away (the service is being
/// dropped) or the socket fails. Then it takes the table itself, if still there, and finishes
/// what waits in it, so that no caller is left waiting on a thread that is gone.
fn serve(ipc: &Ipc) {
    serve_until_stopped(ipc);
    let left = ipc.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut table) = left {
        for request in table.take_all() {
            request.finish();
        }
    }
}

fn serve_until_stopped(ipc: &Ipc) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut last_probe = Instant::now();
    loop {
        let limit = {
            let pending = ipc.pending.lock().unwrap_or_else(|p| p.into_inner());
            let Some(table) = pending.as_ref() else {
                return;
            };
            table.next_deadline().map(|deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(PROBE_INTERVAL)
            })
        };
        let ready = match wait_readable_for(&[ipc.wakeup.as_fd(), ipc.socket.as_fd()], limit) {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("dpmem: inter-process channel stopped: {e}");
                return;
            }
        };
        if ready[0] {
            ipc.wakeup.clear();
        }
        // One datagram per pass, and only when `poll` saw one: draining until the socket is
        // empty would cost every datagram a second `recvmsg` that finds nothing (datagrams
        // come one at a time here), while a burst only costs a `poll` that returns at once.
        if ready[1] {
            match ipc.socket.recv(&mut buf) {
                Ok(Some(datagram)) => handle(ipc, &buf, datagram),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("dpmem: inter-process channel stopped: {e}");
                    return;
                }
            }
        }
        let now = Instant::now();
        let finished = {
            let mut pending = ipc.pending.lock().unwrap_or_else(|p| p.into_inner());
            let Some(table) = pending.as_mut() else {
                return;
            };
            if now.duration_since(last_probe) >= PROBE_INTERVAL && !table.is_empty() {
                last_probe = now;
                for peer in table.awaited_peers() {
                    if datagram::is_bound(&ipc.dir, &peer).is_ok_and(|bound| !bound) {
                        ipc.forget_dead(&peer);
                        table.peer_died(&peer);
                    }
                }
            }
            table.take_finished(now)
        };
        // Outside the lock: a callback may start another request.
        for request in finished {
            request.finish();
        }
    }
}

/// One datagram of `datagram.len` bytes in `buf`.
fn handle(ipc: &Ipc, buf: &[u8], datagram: datagram::Datagram) {
    if datagram.len >= buf.len() || datagram.fds_truncated || datagram.fds.len() > MAX_FDS {
        eprintln!(
            "dpmem: channel datagram of {} bytes with {} descriptors dropped: over the limits",
            datagram.len,
            datagram.fds.len()
        );
        return;
    }
    let frame = match wire::decode(&buf[..datagram.len]) {
        Ok(frame) => frame,
        Err(reason) => {
            eprintln!("dpmem: channel datagram dropped: {reason}");
            return;
        }
    };
    let message = IpcMessage::received(frame.name.to_owned(), frame.params.to_vec(), datagram.fds);
    let answer = match frame.kind {
        Kind::Message | Kind::Request => return dispatch(ipc, &frame, message),
        Kind::Reply => Answer::Reply(message),
        Kind::NoAction => Answer::NoAction,
        Kind::NoReply => Answer::NoReply,
    };
    if let Some(table) = ipc
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        table.answer(frame.id, frame.sender, answer);
    }
}

/// Runs the action for a message or request; a request left without a reply is answered
/// with a notice, so its sender does not wait for it.
fn dispatch(ipc: &Ipc, frame: &Frame<'_>, message: IpcMessage) {
    let request = (frame.kind == Kind::Request).then_some(frame.id);
    let notice = match ipc.actions.get(frame.name) {
        None => {
            if request.is_none() {
                eprintln!(
                    "dpmem: no action for message {:?} from {}",
                    frame.name, frame.sender
                );
            }
            Kind::NoAction
        }
        Some(action) => {
            let mut incoming = Incoming {
                message,
                peer: frame.sender,
                request,
                replied: false,
                channel: ipc,
            };
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| action(&mut incoming)));
            if ran.is_err() {
                eprintln!("dpmem: the action for {:?} panicked", frame.name);
            }
            if incoming.replied {
                return;
            }
            Kind::NoReply
        }
    };
    if let Some(id) = request {
        let notice = Frame {
            kind: notice,
            id,
            sender: &ipc.own,
            name: frame.name,
            params: &[],
        };
        // A requester that died meanwhile is no error (the primary removes its socket).
        if let Err(e) = ipc.send_frame(frame.sender, &notice, &[]) {
            eprintln!(
                "dpmem: could not answer {:?} to {}: {e}",
                frame.name, frame.sender
            );
        }
    }
}
