//! dpmem's side of the `mp` workload on its inter-process channel ([`dpmem::eal::ipc`]): the
//! primary's rounds, and what a secondary serves. The same rounds as the C shim's, with the
//! same names, parameters and checks, through the calls a Rust program would make.

use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dpmem::eal::ipc::{Incoming, Ipc, IpcMessage};
use dpmem::eal::{Eal, MemzoneFlags, ProcessRole, Socket};

use super::rows::{FILLER_SLACK, GROW_ZONE, GROW_ZONE_LEN, MAX_FILLERS, PING, PONG, REQUEST};
use super::MpPrimary;

/// How long a request waits for its replies before the row fails (as the C shim's).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole ping-pong row may take (as the C shim's).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A message `name` whose parameters are the 8 bytes of `seq`.
fn numbered(name: &str, seq: u64) -> Result<IpcMessage, String> {
    IpcMessage::new(name, &seq.to_le_bytes()).map_err(|e| format!("dpmem: message: {e}"))
}

/// The number a message carries, if it carries one.
fn number_of(message: &IpcMessage) -> Option<u64> {
    message.params().try_into().ok().map(u64::from_le_bytes)
}

/// The message row's ping-pong, as the primary's pong action and the main thread share it.
#[derive(Debug, Default)]
struct PingPong {
    state: Mutex<PingPongState>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct PingPongState {
    /// Whether a row runs: pongs outside one are ignored.
    active: bool,
    /// `Some` once the row ended: `Ok` when every pong came, or why not.
    outcome: Option<Result<(), String>>,
    /// Per pong, the nanoseconds since the previous pong (or the first ping).
    round_ns: Vec<u64>,
    rounds: usize,
    last: Option<Instant>,
}

impl PingPong {
    fn lock(&self) -> MutexGuard<'_, PingPongState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The primary's action for a pong: record its time, send the next ping or end the row.
    fn on_pong(&self, incoming: &mut Incoming<'_>) {
        let now = Instant::now();
        let mut state = self.lock();
        if !state.active {
            return;
        }
        let expected = state.round_ns.len() as u64;
        if number_of(incoming.message()) != Some(expected) {
            return self.end(
                &mut state,
                Err("a pong did not carry its round's number".into()),
            );
        }
        let since = state
            .last
            .map_or(0, |last| now.duration_since(last).as_nanos() as u64);
        state.round_ns.push(since);
        state.last = Some(now);
        if state.round_ns.len() == state.rounds {
            return self.end(&mut state, Ok(()));
        }
        let sent = numbered(PING, expected + 1).and_then(|ping| {
            incoming
                .channel()
                .send(&ping)
                .map_err(|e| format!("dpmem: send: {e}"))
        });
        match sent {
            Ok(1) => {}
            Ok(n) => self.end(
                &mut state,
                Err(format!("a ping reached {n} secondaries, not 1")),
            ),
            Err(e) => self.end(&mut state, Err(e)),
        }
    }

    fn end(&self, state: &mut PingPongState, outcome: Result<(), String>) {
        state.active = false;
        state.outcome = Some(outcome);
        self.finished.notify_one();
    }
}

/// The primary's side: its channel and the ping-pong its pong action drives.
pub(crate) struct DpmemPrimary<'eal> {
    ipc: &'eal Ipc,
    pingpong: Arc<PingPong>,
}

impl<'eal> DpmemPrimary<'eal> {
    /// `eal`'s channel (it must be the primary's), with the pong action registered.
    pub(crate) fn new(eal: &'eal Eal) -> Result<DpmemPrimary<'eal>, String> {
        if eal.process_role() != ProcessRole::Primary {
            return Err("dpmem: the EAL did not start as the primary".into());
        }
        let ipc = eal.ipc().map_err(|e| format!("dpmem: channel: {e}"))?;
        let pingpong = Arc::new(PingPong::default());
        let action = Arc::clone(&pingpong);
        ipc.register_action(PONG, move |incoming| action.on_pong(incoming))
            .map_err(|e| format!("dpmem: register {PONG}: {e}"))?;
        Ok(DpmemPrimary { ipc, pingpong })
    }
}

impl MpPrimary for DpmemPrimary<'_> {
    fn request_rounds(&self, secondaries: usize, round_ns: &mut [u64]) -> Result<(), String> {
        for (k, slot) in round_ns.iter_mut().enumerate() {
            let start = Instant::now();
            let request = numbered(REQUEST, k as u64)?;
            let replies = self
                .ipc
                .request_sync(&request, REQUEST_TIMEOUT)
                .map_err(|e| format!("dpmem: request_sync: {e}"))?;
            if replies.sent != secondaries {
                return Err(format!(
                    "dpmem: a request reached {} secondaries, not {secondaries}",
                    replies.sent
                ));
            }
            if !replies.all_replied() {
                return Err(format!(
                    "dpmem: a request was not answered by {}",
                    replies.unanswered().join(", ")
                ));
            }
            if replies
                .replies
                .iter()
                .any(|r| number_of(&r.message) != Some(k as u64))
            {
                return Err("dpmem: an answer did not carry its round's number".into());
            }
            drop(replies);
            *slot = start.elapsed().as_nanos() as u64;
        }
        Ok(())
    }

    fn message_rounds(&self, round_ns: &mut [u64]) -> Result<(), String> {
        if round_ns.is_empty() {
            return Ok(());
        }
        let pingpong = &self.pingpong;
        let mut state = pingpong.lock();
        *state = PingPongState {
            active: true,
            outcome: None,
            round_ns: Vec::with_capacity(round_ns.len()),
            rounds: round_ns.len(),
            last: Some(Instant::now()),
        };
        // Sent under the lock: the first pong's action waits until this thread sleeps.
        match numbered(PING, 0).and_then(|ping| {
            self.ipc
                .send(&ping)
                .map_err(|e| format!("dpmem: send: {e}"))
        }) {
            Ok(1) => {}
            Ok(n) => pingpong.end(
                &mut state,
                Err(format!("a ping reached {n} secondaries, not 1")),
            ),
            Err(e) => pingpong.end(&mut state, Err(e)),
        }
        let end = Instant::now() + MESSAGE_TIMEOUT;
        while state.outcome.is_none() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let done = state.round_ns.len();
                pingpong.end(
                    &mut state,
                    Err(format!(
                        "dpmem: {done} of {} pongs in {} s",
                        round_ns.len(),
                        MESSAGE_TIMEOUT.as_secs()
                    )),
                );
                break;
            }
            state = pingpong
                .finished
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let outcome = state.outcome.take().unwrap_or(Ok(()));
        if outcome.is_ok() {
            round_ns.copy_from_slice(&state.round_ns);
        }
        outcome
    }
}

/// A secondary's side: attach, register the two actions, say so, serve until stdin ends.
pub(crate) fn serve_as_secondary(eal_args: &[String]) -> Result<(), String> {
    let eal = Eal::init(eal_args).map_err(|e| format!("Eal::init (secondary) failed: {e}"))?;
    if eal.process_role() != ProcessRole::Secondary {
        return Err("dpmem: the EAL did not attach as a secondary".into());
    }
    let ipc = eal.ipc().map_err(|e| format!("dpmem: channel: {e}"))?;
    ipc.register_action(REQUEST, |incoming| {
        let answered = IpcMessage::new(REQUEST, incoming.message().params())
            .and_then(|reply| incoming.reply(reply));
        if let Err(e) = answered {
            eprintln!("dpmem secondary: reply: {e}");
        }
    })
    .map_err(|e| format!("dpmem: register {REQUEST}: {e}"))?;
    ipc.register_action(PING, |incoming| {
        let sent = IpcMessage::new(PONG, incoming.message().params())
            .and_then(|pong| incoming.channel().send(&pong));
        if let Err(e) = sent {
            eprintln!("dpmem secondary: pong: {e}");
        }
    })
    .map_err(|e| format!("dpmem: register {PING}: {e}"))?;
    super::secondary::announce_ready_and_serve(&|round_ns| grow_rounds(&eal, round_ns));
    drop(eal);
    Ok(())
}

/// Bytes of memory the heaps of `eal` hold, every page they map.
fn heap_bytes(eal: &Eal) -> u64 {
    eal.heaps().all_stats().iter().map(|s| s.total_bytes).sum()
}

/// The growth row in a secondary: the free blocks taken (see [`GROW_ZONE`]), then per round a
/// memzone of [`GROW_ZONE_LEN`] bytes reserved (timed), checked to have grown the heap, and
/// freed again (not timed), which gives the page back in every process; the fillers freed.
fn grow_rounds(eal: &Eal, round_ns: &mut [u64]) -> Result<(), String> {
    let heaps = eal.heaps();
    let mut fillers = Vec::new();
    let rounds = take_free_blocks(eal, &mut fillers).and_then(|()| reserve_rounds(eal, round_ns));
    for filler in fillers {
        // SAFETY: allocated by take_free_blocks and never handed anywhere.
        unsafe { heaps.free(filler) }.map_err(|e| format!("dpmem: free a filler: {e}"))?;
    }
    rounds
}

/// Allocates (into `fillers`) every free block of the heaps a zone would fit in.
fn take_free_blocks(eal: &Eal, fillers: &mut Vec<NonNull<u8>>) -> Result<(), String> {
    let heaps = eal.heaps();
    while fillers.len() < MAX_FILLERS {
        let Some(roomy) = heaps
            .all_stats()
            .into_iter()
            .find(|s| s.greatest_free_bytes >= GROW_ZONE_LEN as u64)
        else {
            return Ok(());
        };
        let len = roomy.greatest_free_bytes as usize - FILLER_SLACK;
        let filler = heaps
            .malloc_socket(len, 64, roomy.socket)
            .map_err(|e| format!("dpmem: a filler of {len} bytes: {e}"))?;
        fillers.push(filler);
    }
    Err(format!(
        "dpmem: the heaps still have room for a zone after {MAX_FILLERS} fillers"
    ))
}

fn reserve_rounds(eal: &Eal, round_ns: &mut [u64]) -> Result<(), String> {
    let zones = eal.memzones();
    for slot in round_ns.iter_mut() {
        let before = heap_bytes(eal);
        let start = Instant::now();
        let zone = zones
            .reserve(GROW_ZONE, GROW_ZONE_LEN, Socket::Any, MemzoneFlags::empty())
            .map_err(|e| format!("dpmem: memzone reserve: {e}"))?;
        *slot = start.elapsed().as_nanos() as u64;
        let grown = heap_bytes(eal).saturating_sub(before);
        // SAFETY: the zone was reserved just above and nothing was given its address.
        unsafe { zones.free(&zone) }.map_err(|e| format!("dpmem: memzone free: {e}"))?;
        if grown < GROW_ZONE_LEN as u64 {
            return Err(format!(
                "dpmem: a reservation grew the heap by {grown} bytes: it did not need a new page"
            ));
        }
    }
    Ok(())
}
