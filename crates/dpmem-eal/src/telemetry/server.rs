//! The server: one control thread per EAL that accepts clients on the socket and answers
//! their requests, one at a time, in the order they come.
//!
//! A client is greeted with `{"version":...,"pid":...,"max_output_len":16384}`, then each
//! message it sends is one request, `/command` or `/command,parameter`, answered by one
//! message `{"/command":<answer>}`; `null` is the answer to an unknown command, a refused
//! parameter, a failed or panicking handler, and a request longer than 1023 bytes (what DPDK
//! reads of one). At most [`MAX_CLIENTS`] are served at once; a further one is accepted and
//! closed at once, before the greeting, as DPDK does.
//!
//! The thread waits in `poll` on the listener, the clients and a wake-up; dropping the server
//! raises the wake-up, joins the thread and removes the socket. Nothing blocks it otherwise:
//! sockets are non-blocking, and a client that leaves its answers unread until its socket's
//! buffer is full is disconnected rather than waited for.

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpmem_sys::readiness::{wait_readable, Wakeup};
use dpmem_sys::seqpacket::{Received, SeqpacketConn, SeqpacketListener};

use super::answer::answer;
use super::builtin_commands::info;
use super::error::TelemetryError;
use super::location::{self, BoundSocket};
use super::registry;
use super::value::TelemetryValue;
use crate::lcore::{ControlThread, LcoreThreads};
use crate::runtime_dir::RemoveAtExit;
use crate::Eal;

/// Clients served at once (DPDK's `MAX_CONNECTIONS`).
pub const MAX_CLIENTS: usize = 10;

/// The longest request, in bytes (DPDK reads a request into 1024 bytes with its NUL).
pub const MAX_REQUEST_LEN: usize = 1023;

/// A running server. Dropping it stops the thread and removes the socket.
#[derive(Debug)]
pub(crate) struct TelemetryServer {
    socket: Arc<BoundSocket>,
    stop: Arc<AtomicBool>,
    wakeup: Arc<Wakeup>,
    thread: Option<ControlThread<()>>,
    _at_exit: RemoveAtExit,
}

impl TelemetryServer {
    /// Binds the socket of `prefix` and starts serving `eal` (the handle lent to handlers) on a
    /// control thread of `threads`.
    pub(crate) fn start(
        threads: &LcoreThreads,
        eal: Eal,
        prefix: &str,
    ) -> Result<TelemetryServer, TelemetryError> {
        let socket = Arc::new(location::bind(prefix)?);
        let at_exit = RemoveAtExit::register(
            socket.path.clone(),
            socket
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let wakeup = match Wakeup::new() {
            Ok(w) => Arc::new(w),
            Err(e) => {
                socket.remove();
                return Err(e.into());
            }
        };
        let serve = Serve {
            socket: Arc::clone(&socket),
            stop: Arc::clone(&stop),
            wakeup: Arc::clone(&wakeup),
            eal,
        };
        let thread = threads
            .create_control_thread("dpmem-telemetry", move || serve.run())
            .map_err(|e| {
                socket.remove();
                TelemetryError::from(crate::EalError::from(e))
            })?;
        Ok(TelemetryServer {
            socket,
            stop,
            wakeup,
            thread: Some(thread),
            _at_exit: at_exit,
        })
    }

    /// Where the socket is.
    pub(crate) fn path(&self) -> &Path {
        &self.socket.path
    }
}

impl Drop for TelemetryServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.wakeup.raise();
        if let Some(thread) = self.thread.take() {
            // A panic there was reported when it happened; the socket goes either way.
            let _ = thread.join();
        }
        self.socket.remove();
    }
}

/// What the server thread owns.
struct Serve {
    socket: Arc<BoundSocket>,
    stop: Arc<AtomicBool>,
    wakeup: Arc<Wakeup>,
    eal: Eal,
}

impl Serve {
    fn run(self) {
        let listener: &SeqpacketListener = &self.socket.listener;
        let greeting = TelemetryValue::from(info()).to_json();
        let mut clients: Vec<SeqpacketConn> = Vec::new();
        // One byte more than a request may have, to tell a request that fits from one cut.
        let mut request = vec![0u8; MAX_REQUEST_LEN + 1];
        loop {
            let ready = {
                let mut fds: Vec<BorrowedFd<'_>> = vec![self.wakeup.as_fd(), listener.as_fd()];
                fds.extend(clients.iter().map(AsFd::as_fd));
                match wait_readable(&fds) {
                    Ok(ready) => ready,
                    Err(e) => {
                        eprintln!("dpmem: telemetry server stopped: {e}");
                        return;
                    }
                }
            };
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let mut waiting = ready[2..].iter();
            clients.retain(|client| {
                !waiting.next().copied().unwrap_or(false) || self.serve_one(client, &mut request)
            });
            if ready[1] {
                if let Err(e) = accept_all(listener, &mut clients, greeting.as_bytes()) {
                    // DPDK's listener ends the same way (descriptors exhausted, say): better
                    // than spinning on a listener that stays readable.
                    eprintln!("dpmem: telemetry server stopped: {e}");
                    return;
                }
            }
        }
    }

    /// Answers the request waiting on `client`; `false` when the client is gone or must go.
    fn serve_one(&self, client: &SeqpacketConn, request: &mut [u8]) -> bool {
        match client.recv(request) {
            Ok(Received::Nothing) => true,
            Ok(Received::Closed) | Err(_) => false,
            Ok(Received::Message(len)) => {
                let text = respond(&self.eal, &request[..len.min(request.len())], len);
                client.send(text.as_bytes()).is_ok()
            }
        }
    }
}

/// Accepts every waiting client: greeted, or closed at once past [`MAX_CLIENTS`].
fn accept_all(
    listener: &SeqpacketListener,
    clients: &mut Vec<SeqpacketConn>,
    greeting: &[u8],
) -> Result<(), TelemetryError> {
    while let Some(client) = listener.accept()? {
        if clients.len() < MAX_CLIENTS && client.send(greeting).is_ok() {
            clients.push(client);
        }
    }
    Ok(())
}

/// The answer to one request of `len` bytes, of which `bytes` were read.
fn respond(eal: &Eal, bytes: &[u8], len: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let (command, param) = match text.split_once(',') {
        Some((command, param)) => (command, Some(param).filter(|p| !p.is_empty())),
        None => (&*text, None),
    };
    // Cut short, not UTF-8, or with a NUL (which ends DPDK's reading of it): refused.
    let malformed = matches!(text, Cow::Owned(_)) || text.contains('\0');
    if len > MAX_REQUEST_LEN || malformed {
        return answer(command, None);
    }
    let value = registry::handler(command).and_then(|handler| {
        // A handler that panics answers null and leaves the server serving (the panic has
        // been printed by the hook).
        std::panic::catch_unwind(AssertUnwindSafe(|| handler(eal, param)))
            .ok()
            .and_then(Result::ok)
    });
    answer(command, value.as_ref())
}
