//! Memory hotplug over the EAL's channel: the primary's round (every live secondary catches
//! up now and answers) and a secondary's requests for pages, which the primary serves (see
//! `memory/cross_process.rs` for the protocol and why).
//!
//! Three actions: `dpmem_mp_mem_sync` in every secondary (catch up, answer ok or the reason),
//! `dpmem_mp_mem_map` and `dpmem_mp_mem_unmap` in the primary. The primary's two cannot do
//! their work on the channel's control thread, since the round they run waits for replies that
//! come to that thread: they hand the request and its answer to a worker thread of their own
//! (a control thread too, never a data-plane lcore), which serves requests one at a time.

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::{EalError, ErrorKind};
use crate::ipc::{Incoming, Ipc, IpcError, IpcMessage, LaterReply, Replies};
use crate::lcore::{ControlThread, LcoreThreads};
use crate::memory::{HotplugPeers, Memory, MemoryMode, PageRequest, PageRun, ProcessRole};
use crate::socket::Socket;

/// In every secondary: catch up with the primary's lists now.
pub const SYNC_ACTION: &str = "dpmem_mp_mem_sync";
/// In the primary: map pages for a secondary.
pub const MAP_ACTION: &str = "dpmem_mp_mem_map";
/// In the primary: unmap pages for a secondary.
pub const UNMAP_ACTION: &str = "dpmem_mp_mem_unmap";

/// How long the primary waits for every secondary to catch up (DPDK's 5 s).
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a secondary waits for the primary: mapping (and zeroing) many pages, then a round
/// and perhaps the round that undoes it. A primary that dies is noticed at once anyway.
const PRIMARY_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts hotplug over `ipc` for `memory`: the round and requests go through the channel from
/// now on. The primary's worker thread comes back, to be dropped after the channel stops.
pub(crate) fn start(
    threads: &LcoreThreads,
    memory: &Arc<Memory>,
    ipc: &Arc<Ipc>,
) -> Result<Option<HotplugWorker>, EalError> {
    let role = memory.role();
    let worker = match role {
        ProcessRole::Secondary => {
            let weak = Arc::downgrade(memory);
            ipc.register_action(SYNC_ACTION, move |incoming: &mut Incoming<'_>| {
                let outcome = weak
                    .upgrade()
                    .map_or(Ok(()), |memory| memory.sync_with_primary());
                let reply = outcome_message(SYNC_ACTION, outcome.map(|()| Vec::new()));
                if let Err(e) = incoming.reply(reply) {
                    eprintln!("dpmem: answering the primary's hotplug round: {e}");
                }
            })?;
            None
        }
        // Only dynamic memory grows: otherwise no worker, no actions (a secondary refuses
        // to ask, and says why).
        ProcessRole::Primary if memory.mode() != MemoryMode::Dynamic => None,
        ProcessRole::Primary => Some(HotplugWorker::start(threads, memory, ipc)?),
    };
    memory.set_hotplug_peers(Box::new(ChannelPeers {
        ipc: Arc::downgrade(ipc),
    }));
    if role == ProcessRole::Secondary {
        // A round that found this process without its action (it was starting) left it
        // behind; from here on every round reaches it.
        memory.sync_with_primary()?;
    }
    Ok(worker)
}

/// The primary's worker: serves secondaries' page requests off the channel's thread.
#[derive(Debug)]
pub(crate) struct HotplugWorker {
    thread: Option<ControlThread<()>>,
}

enum Job {
    Map(PageRequest, LaterReply),
    Unmap(usize, usize, LaterReply),
}

impl HotplugWorker {
    fn start(
        threads: &LcoreThreads,
        memory: &Arc<Memory>,
        ipc: &Arc<Ipc>,
    ) -> Result<HotplugWorker, EalError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (memory_of_worker, ipc_of_worker) = (Arc::downgrade(memory), Arc::downgrade(ipc));
        let thread = threads
            .create_control_thread("dpmem-mp-mem", move || {
                serve(&queue, &memory_of_worker, &ipc_of_worker);
            })
            .map_err(|e| EalError::Unsupported(format!("memory hotplug worker thread: {e}")))?;
        let map_jobs = jobs.clone();
        let registered = ipc
            .register_action(MAP_ACTION, move |incoming: &mut Incoming<'_>| {
                match decode_page_request(incoming.message().params()) {
                    Ok(req) => hand_on(incoming, &map_jobs, |later| Job::Map(req, later)),
                    Err(e) => answer_now(incoming, MAP_ACTION, Err(e)),
                }
            })
            .and_then(|()| {
                ipc.register_action(UNMAP_ACTION, move |incoming: &mut Incoming<'_>| {
                    match decode_range(incoming.message().params()) {
                        Ok((va, len)) => {
                            hand_on(incoming, &jobs, |later| Job::Unmap(va, len, later));
                        }
                        Err(e) => answer_now(incoming, UNMAP_ACTION, Err(e)),
                    }
                })
            });
        let worker = HotplugWorker {
            thread: Some(thread),
        };
        match registered {
            Ok(()) => Ok(worker),
            Err(e) => {
                // The senders die with the actions: the worker sees its queue closed and ends.
                let _ = ipc.unregister_action(MAP_ACTION);
                let _ = ipc.unregister_action(UNMAP_ACTION);
                Err(e.into())
            }
        }
    }
}

impl Drop for HotplugWorker {
    /// Joins the worker: its queue's senders live in the channel's actions, dropped when the
    /// channel stops (before this), so it ends after the request it is serving.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Takes over the answer to `incoming` and queues the job made with it for the worker.
fn hand_on(
    incoming: &mut Incoming<'_>,
    jobs: &mpsc::Sender<Job>,
    job: impl FnOnce(LaterReply) -> Job,
) {
    match incoming.reply_later() {
        Ok(later) => {
            if jobs.send(job(later)).is_err() {
                // The worker is gone (the EAL is stopping): the requester times out or
                // sees the primary go.
                eprintln!("dpmem: memory hotplug request dropped: the worker has stopped");
            }
        }
        Err(e) => eprintln!("dpmem: memory hotplug request: {e}"),
    }
}

fn answer_now(incoming: &mut Incoming<'_>, name: &str, outcome: Result<Vec<u8>, EalError>) {
    if let Err(e) = incoming.reply(outcome_message(name, outcome)) {
        eprintln!("dpmem: answering {name:?}: {e}");
    }
}

fn serve(queue: &mpsc::Receiver<Job>, memory: &Weak<Memory>, ipc: &Weak<Ipc>) {
    while let Ok(job) = queue.recv() {
        let (Some(memory), Some(ipc)) = (memory.upgrade(), ipc.upgrade()) else {
            return;
        };
        let (name, outcome, later) = match job {
            Job::Map(req, later) => (
                MAP_ACTION,
                memory.map_pages(req).map(|run| encode_run(&run)),
                later,
            ),
            Job::Unmap(va, len, later) => (
                UNMAP_ACTION,
                memory.unmap_pages(va, len).map(|()| Vec::new()),
                later,
            ),
        };
        let peer = later.peer().to_owned();
        if let Err(e) = later.send(&ipc, outcome_message(name, outcome)) {
            eprintln!("dpmem: answering {name:?} to {peer}: {e}");
        }
    }
}

/// The channel as [`HotplugPeers`].
struct ChannelPeers {
    ipc: Weak<Ipc>,
}

impl ChannelPeers {
    /// Asks the primary `name` with `params` and gives back its answer's payload.
    fn ask_primary(&self, name: &str, params: &[u8]) -> Result<Vec<u8>, EalError> {
        let unreachable = |reason: String| EalError::Hotplug {
            kind: ErrorKind::NoEnt,
            reason: format!("the primary could not be asked to {name}: {reason}"),
        };
        let ipc = self
            .ipc
            .upgrade()
            .ok_or_else(|| unreachable("the channel has stopped".into()))?;
        let request = IpcMessage::new(name, params)?;
        let replies = ipc.request_sync(&request, PRIMARY_TIMEOUT)?;
        match replies.replies.first() {
            Some(reply) => decode_outcome(reply.message.params()),
            None if replies.sent == 0 => Err(unreachable("it is not running".into())),
            None => Err(unreachable(replies.unanswered().join(", "))),
        }
    }
}

impl HotplugPeers for ChannelPeers {
    fn sync_secondaries(&self) -> Result<(), String> {
        let Some(ipc) = self.ipc.upgrade() else {
            // The channel has stopped: the EAL is going down.
            return Ok(());
        };
        let request = IpcMessage::new(SYNC_ACTION, &[]).map_err(|e| e.to_string())?;
        let replies = match ipc.request_sync(&request, ROUND_TIMEOUT) {
            Ok(replies) => replies,
            // From one of the application's actions, or while stopping: the secondaries catch
            // up at their next call, as the module documentation says.
            Err(IpcError::SyncFromAction | IpcError::Stopped) => return Ok(()),
            Err(e) => return Err(format!("the secondaries could not be asked: {e}")),
        };
        round_failures(&replies)
    }

    fn ask_primary_to_map(&self, req: PageRequest) -> Result<PageRun, EalError> {
        let answer = self.ask_primary(MAP_ACTION, &encode_page_request(&req))?;
        decode_run(&answer).map_err(|reason| EalError::Hotplug {
            kind: ErrorKind::Fault,
            reason: format!("the primary's answer to a map request: {reason}"),
        })
    }

    fn ask_primary_to_unmap(&self, va: usize, len: usize) -> Result<(), EalError> {
        let mut params = Vec::with_capacity(16);
        params.extend_from_slice(&(va as u64).to_le_bytes());
        params.extend_from_slice(&(len as u64).to_le_bytes());
        self.ask_primary(UNMAP_ACTION, &params).map(drop)
    }
}

/// What went wrong in a round, per process; dead processes and those without the action
/// (still starting) are not failures.
fn round_failures(replies: &Replies) -> Result<(), String> {
    let mut failed: Vec<String> = replies
        .replies
        .iter()
        .filter_map(|reply| {
            decode_outcome(reply.message.params())
                .err()
                .map(|e| match e {
                    EalError::Hotplug { reason, .. } => format!("{} ({reason})", reply.peer),
                    e => format!("{} ({e})", reply.peer),
                })
        })
        .collect();
    failed.extend(
        replies
            .declined
            .iter()
            .map(|p| format!("{p} (did not answer)")),
    );
    failed.extend(
        replies
            .timed_out
            .iter()
            .map(|p| format!("{p} (no answer in {} s)", ROUND_TIMEOUT.as_secs())),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}

/// An answer: `0` then the payload, or `1`, the error's kind and its text (cut to fit).
fn outcome_message(name: &str, outcome: Result<Vec<u8>, EalError>) -> IpcMessage {
    let params = match outcome {
        Ok(payload) => {
            let mut params = vec![0u8];
            params.extend_from_slice(&payload);
            params
        }
        Err(e) => {
            let kind = ErrorKind::ALL
                .iter()
                .position(|k| *k == e.kind())
                .unwrap_or(0) as u8;
            let mut params = vec![1u8, kind];
            // A hotplug error crossing again (a round's failure reported to the requester)
            // keeps its reason, not a second prefix.
            let text = match e {
                EalError::Hotplug { reason, .. } => reason,
                e => e.to_string(),
            };
            let room = crate::ipc::MAX_PARAM_LEN - params.len();
            let mut end = text.len().min(room);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            params.extend_from_slice(&text.as_bytes()[..end]);
            params
        }
    };
    IpcMessage::new(name, &params).expect("a known name and parameters cut to the limit")
}

fn decode_outcome(params: &[u8]) -> Result<Vec<u8>, EalError> {
    match params.split_first() {
        Some((0, payload)) => Ok(payload.to_vec()),
        Some((1, rest)) => {
            let (kind, text) = rest.split_first().unwrap_or((&0, &[]));
            Err(EalError::Hotplug {
                kind: ErrorKind::ALL
                    .get(usize::from(*kind))
                    .copied()
                    .unwrap_or(ErrorKind::Io),
                reason: String::from_utf8_lossy(text).into_owned(),
            })
        }
        _ => Err(EalError::Hotplug {
            kind: ErrorKind::Fault,
            reason: "an answer that is neither success nor failure".into(),
        }),
    }
}

/// Reads little-endian fields off the front of a message's parameters.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.0.len() < N {
            return Err("parameters too short".into());
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("split at N"))
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.take::<4>().map(i32::from_le_bytes)
    }

    fn flag(&mut self) -> Result<bool, String> {
        self.take::<1>().map(|[b]| b != 0)
    }

    fn done(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("parameters too long".into())
        }
    }
}

fn socket_of(raw: i32) -> Result<Socket, String> {
    Socket::from_raw(raw).ok_or_else(|| format!("socket {raw} is no socket"))
}

fn encode_page_request(req: &PageRequest) -> Vec<u8> {
    let mut params = Vec::with_capacity(26);
    params.extend_from_slice(&req.page_size.to_le_bytes());
    params.extend_from_slice(&req.socket.to_raw().to_le_bytes());
    params.extend_from_slice(&(req.count as u64).to_le_bytes());
    params.push(u8::from(req.iova_contiguous));
    params.push(u8::from(req.pinned));
    params
}

fn decode_page_request(params: &[u8]) -> Result<PageRequest, EalError> {
    let mut f = Fields(params);
    let parsed = (|| {
        let page_size = f.u64()?;
        let socket = socket_of(f.i32()?)?;
        let count = usize::try_from(f.u64()?).map_err(|_| "page count too large".to_owned())?;
        let mut req = PageRequest::new(page_size, socket, count);
        req.iova_contiguous = f.flag()?;
        req.pinned = f.flag()?;
        Ok::<_, String>(req)
    })();
    parsed
        .and_then(|req| f.done().map(|()| req))
        .map_err(|reason| EalError::InvalidArgument(format!("a page request: {reason}")))
}

fn decode_range(params: &[u8]) -> Result<(usize, usize), EalError> {
    let mut f = Fields(params);
    let parsed = (|| {
        let va = usize::try_from(f.u64()?).map_err(|_| "address too large".to_owned())?;
        let len = usize::try_from(f.u64()?).map_err(|_| "length too large".to_owned())?;
        Ok::<_, String>((va, len))
    })();
    parsed
        .and_then(|range| f.done().map(|()| range))
        .map_err(|reason| EalError::InvalidArgument(format!("an unmap request: {reason}")))
}

fn encode_run(run: &PageRun) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&(run.va as u64).to_le_bytes());
    out.extend_from_slice(&(run.len as u64).to_le_bytes());
    out.extend_from_slice(&run.page_size.to_le_bytes());
    out.extend_from_slice(&run.socket.to_raw().to_le_bytes());
    out.extend_from_slice(&run.list_index.to_le_bytes());
    out.extend_from_slice(&run.first_seg.to_le_bytes());
    out.extend_from_slice(&run.n_pages.to_le_bytes());
    out.extend_from_slice(&run.iova.map_or(u64::MAX, |i| i.get()).to_le_bytes());
    out
}

fn decode_run(params: &[u8]) -> Result<PageRun, String> {
    let mut f = Fields(params);
    let run = PageRun {
        va: usize::try_from(f.u64()?).map_err(|_| "address too large")?,
        len: usize::try_from(f.u64()?).map_err(|_| "length too large")?,
        page_size: f.u64()?,
        socket: socket_of(f.i32()?)?,
        list_index: f.u32()?,
        first_seg: f.u32()?,
        n_pages: f.u32()?,
        iova: crate::iova::Iova::new(f.u64()?),
    };
    f.done()?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_runs_and_outcomes_survive_the_wire_and_bad_bytes_are_refused() {
        let mut req = PageRequest::new(2 << 20, Socket::Node(1), 3);
        req.iova_contiguous = true;
        assert_eq!(
            decode_page_request(&encode_page_request(&req)).unwrap(),
            req
        );
        assert!(decode_page_request(&[1, 2, 3]).is_err());
        let mut long = encode_page_request(&req);
        long.push(0);
        assert!(decode_page_request(&long).is_err());

        let run = PageRun {
            va: 0x1000_0000,
            len: 4 << 20,
            page_size: 2 << 20,
            socket: Socket::Node(0),
            list_index: 2,
            first_seg: 7,
            n_pages: 2,
            iova: None,
        };
        assert_eq!(decode_run(&encode_run(&run)).unwrap(), run);
        assert_eq!(
            decode_range(&{
                let mut p = 5u64.to_le_bytes().to_vec();
                p.extend_from_slice(&6u64.to_le_bytes());
                p
            })
            .unwrap(),
            (5, 6)
        );

        let refused = EalError::OutOfMemory {
            pages: 4096,
            page_size: 2 << 20,
            socket: Socket::Node(0),
            reason: "x".repeat(1000),
        };
        let message = outcome_message(MAP_ACTION, Err(refused));
        let back = decode_outcome(message.params()).unwrap_err();
        assert_eq!(back.kind(), ErrorKind::NoMem);
        assert!(back.to_string().contains("4096 pages"), "{back}");
        assert!(decode_outcome(&[]).is_err());
        assert_eq!(
            decode_outcome(outcome_message(SYNC_ACTION, Ok(vec![9])).params()).unwrap(),
            vec![9]
        );
    }
}
