//! [`TxSession`]: a transmit session's frames, pools and done queue, and
//! [`TxSessionBuilder`], which checks a session's settings against its format and makes it
//! (leaving nothing behind when it cannot).
//!
//! The session owns a fixed set of frame buffers in the EAL's memory on its socket, a pool
//! of header buffers, a pool of zero-room buffers for payloads attached to frames, and a
//! pool of data buffers for payloads that must be copied; and, when built to take frames the
//! application lends, a slot per lent frame that may be in flight at once (`lend.rs`).
//! Packets borrow the session, so it cannot go while any is alive; a frame whose packets
//! were leaked stays in flight, and the session then leaks its memory rather than free what
//! a packet may still point into.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use dpmem_eal::{Eal, Socket};
use dpmem_mbuf::{PktmbufPool, HEADROOM};

use crate::done::{DoneCallback, DoneQueue};
use crate::error::FrameError;
use crate::external_frame::ExternalFrame;
use crate::format::St20Format;
use crate::frame::FrameMut;
use crate::frame_id::FrameId;
use crate::header::{HeaderTemplate, StreamAddress, HEADER_LEN};
use crate::lent_frames::{ExternalDoneCallback, LentFrames};
use crate::memory::{free_frame, FrameMemory};
use crate::numa::{pool_socket, NumaPlacement, Placer, PortSocket};
use crate::slot::{new_slots, FrameSlot, FrameState};

/// Packets handed to a sink at once unless set.
pub const DEFAULT_BURST: usize = 32;

/// The settings of a [`TxSession`], each with its default.
#[must_use = "nothing is made until `create` is called"]
pub struct TxSessionBuilder<'n> {
    name: &'n str,
    format: St20Format,
    frames: u16,
    frame_len: Option<usize>,
    socket: Socket,
    port_socket: Socket,
    numa_fallback: bool,
    address: StreamAddress,
    burst: usize,
    header_pool: Option<u32>,
    payload_pool: Option<u32>,
    copy_pool: Option<u32>,
    on_done: Option<DoneCallback>,
    external_frames: u16,
    on_external_done: Option<ExternalDoneCallback>,
}

impl std::fmt::Debug for TxSessionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSessionBuilder")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("frames", &self.frames)
            .field("external_frames", &self.external_frames)
            .finish_non_exhaustive()
    }
}

impl<'n> TxSessionBuilder<'n> {
    /// The stream's shape (1080p59.94 4:2:2 10-bit unless set).
    pub fn format(mut self, format: St20Format) -> Self {
        self.format = format;
        self
    }

    /// Frame buffers (3 unless set; 0 is allowed when the session takes external frames).
    pub fn frames(mut self, frames: u16) -> Self {
        self.frames = frames;
        self
    }

    /// Bytes of each frame buffer (one frame of the format unless set).
    pub fn frame_len(mut self, len: usize) -> Self {
        self.frame_len = Some(len);
        self
    }

    /// Where the frames and pools come from when the port does not say
    /// ([`Socket::Any`] unless set).
    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    /// The port the session sends on: its socket (that of the lcore that opened it), when
    /// known, is where the frames and pools come from, before [`socket`](Self::socket).
    pub fn port(mut self, port: &impl PortSocket) -> Self {
        self.port_socket = port.socket();
        self
    }

    /// Whether memory may come from another socket when the session's has none (true unless
    /// set; each time it does is counted in [`TxSession::numa`]). Forbidden, such a session
    /// is refused with [`FrameError::NoMemoryOnSocket`].
    pub fn numa_fallback(mut self, allowed: bool) -> Self {
        self.numa_fallback = allowed;
        self
    }

    /// Slots for frames the application lends ([`TxSession::transmit_external`]): how many
    /// may be in flight at once (0 unless set). Their payloads that cross a break in device
    /// addresses are copied from the copy pool too, whose default counts only the session's
    /// own frames: set [`copy_pool`](Self::copy_pool) for lent memory of small pages in
    /// physical-address mode.
    pub fn external_frames(mut self, slots: u16) -> Self {
        self.external_frames = slots;
        self
    }

    /// Runs on the thread that releases a lent frame's last reference, with the frame as it
    /// was lent, before its slot is free.
    pub fn on_external_done(
        mut self,
        callback: impl Fn(ExternalFrame) + Send + Sync + 'static,
    ) -> Self {
        self.on_external_done = Some(Box::new(callback));
        self
    }

    pub fn address(mut self, address: StreamAddress) -> Self {
        self.address = address;
        self
    }

    /// Packets handed to the sink at once.
    pub fn burst(mut self, burst: usize) -> Self {
        self.burst = burst;
        self
    }

    /// Header buffers (two frames' worth per frame buffer, up to four frames, unless set).
    pub fn header_pool(mut self, n: u32) -> Self {
        self.header_pool = Some(n);
        self
    }

    /// Zero-room buffers for attached payloads (as many as headers unless set).
    pub fn payload_pool(mut self, n: u32) -> Self {
        self.payload_pool = Some(n);
        self
    }

    /// Data buffers for copied payloads (twice the frames' crossing payloads, and two bursts,
    /// unless set).
    pub fn copy_pool(mut self, n: u32) -> Self {
        self.copy_pool = Some(n);
        self
    }

    /// Runs on the thread that releases a frame's last reference, before the frame is free.
    pub fn on_done(mut self, callback: impl Fn(FrameId) + Send + Sync + 'static) -> Self {
        self.on_done = Some(Box::new(callback));
        self
    }

    /// Makes the session. Refused, with nothing made: a format that cannot be sent, no frame
    /// buffers (own or external), buffers shorter than a frame, a burst of 0 or a pool
    /// smaller than one burst of what it holds, a socket without memory when fallback is
    /// forbidden; and whatever the EAL refuses (names, memory).
    pub fn create<'eal>(self, eal: &'eal Eal) -> Result<TxSession<'eal>, FrameError> {
        let format = self.format;
        format.validate()?;
        let needed = format.frame_size();
        let frame_len = self.frame_len.unwrap_or(needed);
        if frame_len < needed {
            return Err(FrameError::FrameTooSmall {
                len: frame_len,
                needed,
            });
        }
        let no_frames = self.frames == 0 && self.external_frames == 0;
        if no_frames || self.frames == u16::MAX || self.external_frames == u16::MAX {
            return Err(FrameError::InvalidFormat(format!(
                "{} frame buffers and {} external frame slots (1 to {} of either can be had)",
                self.frames,
                self.external_frames,
                u16::MAX - 1
            )));
        }
        if self.burst == 0 || self.burst > 1024 {
            return Err(FrameError::InvalidFormat(format!(
                "a burst of {} packets (1 to 1024)",
                self.burst
            )));
        }
        let per_frame = format.packets_per_frame();
        let all_frames = (u32::from(self.frames) + u32::from(self.external_frames)).min(4);
        let headers = self
            .header_pool
            .unwrap_or(2 * per_frame * all_frames + self.burst as u32);
        let payloads = self.payload_pool.unwrap_or(headers);
        for (pool, n) in [("header", headers), ("payload", payloads)] {
            check_pool(pool, n, self.burst)?;
        }
        if let Some(n) = self.copy_pool {
            check_pool("copy", n, self.burst)?;
        }
        let mut placer = Placer::new(eal, self.port_socket, self.socket, self.numa_fallback);
        let mut memory = Vec::with_capacity(self.frames as usize);
        let made = (|| {
            for i in 0..self.frames {
                let name = format!("{}.f{i}", self.name);
                memory.push(reserve_frame(eal, &mut placer, &name, frame_len, &format)?);
            }
            let crossings: u32 = memory.iter().map(FrameMemory::crossings).sum();
            let copies = self
                .copy_pool
                .unwrap_or(2 * crossings + 2 * self.burst as u32);
            let pools = make_pools(
                eal,
                &mut placer,
                &self,
                headers,
                payloads,
                copies,
                format.payload_len,
            )?;
            Ok::<_, FrameError>(pools)
        })();
        let pools = match made {
            Ok(pools) => pools,
            Err(e) => {
                for m in &memory {
                    // SAFETY: just reserved, nothing points into it.
                    unsafe { free_frame(eal, m) };
                }
                return Err(e);
            }
        };
        let [header_pool, payload_pool, copy_pool] = pools;
        let done = Arc::new(DoneQueue::new(self.on_done));
        let external_done = Arc::new(DoneQueue::Lent(LentFrames::new(
            self.external_frames,
            self.on_external_done,
        )));
        Ok(TxSession {
            eal,
            format,
            template: HeaderTemplate::new(&self.address),
            burst: self.burst,
            header_pool: ManuallyDrop::new(header_pool),
            payload_pool: ManuallyDrop::new(payload_pool),
            copy_pool: ManuallyDrop::new(copy_pool),
            slots: new_slots(self.frames, &done),
            memory,
            done,
            external_slots: new_slots(self.external_frames, &external_done),
            external_done,
            numa: placer.placement(),
            next_claim: AtomicU32::new(0),
            next_seq: AtomicU32::new(0),
            frames_sent: AtomicU64::new(0),
            copied: AtomicU64::new(0),
        })
    }
}

fn check_pool(pool: &'static str, n: u32, burst: usize) -> Result<(), FrameError> {
    if (n as usize) < burst {
        return Err(FrameError::PoolTooSmall {
            pool,
            detail: format!("{n} buffers cannot hold one burst of {burst} packets"),
        });
    }
    Ok(())
}

/// A frame buffer called `name` of `len` bytes, on the session's socket or as its placer
/// allows.
fn reserve_frame(
    eal: &Eal,
    placer: &mut Placer<'_>,
    name: &str,
    len: usize,
    format: &St20Format,
) -> Result<FrameMemory, FrameError> {
    placer.place(
        &format!("frame buffer {name:?} of {len} bytes"),
        |socket| FrameMemory::reserve(eal, name, len, socket, format),
        |m| m.zone().map_or(Socket::Any, |z| z.socket),
        // SAFETY: just reserved, nothing points into it.
        |m| unsafe { free_frame(eal, &m) },
    )
}

/// The header, payload and copy pools, or none of them.
fn make_pools<'eal>(
    eal: &'eal Eal,
    placer: &mut Placer<'_>,
    b: &TxSessionBuilder<'_>,
    headers: u32,
    payloads: u32,
    copies: u32,
    payload_len: u16,
) -> Result<[PktmbufPool<'eal>; 3], FrameError> {
    let specs = [
        ("h", headers, HEADROOM + HEADER_LEN as u16),
        ("p", payloads, 0),
        ("c", copies, HEADROOM + payload_len),
    ];
    let mut made: Vec<PktmbufPool<'eal>> = Vec::with_capacity(3);
    for (suffix, n, room) in specs {
        let name = format!("{}.{suffix}", b.name);
        let cache = if n >= 512 { 64 } else { 0 };
        let pool = placer.place(
            &format!("packet buffer pool {name:?} of {n} buffers"),
            |socket| {
                Ok(PktmbufPool::builder(&name, n)
                    .cache_size(cache)
                    .data_room(room)
                    .socket(socket)
                    .create(eal)?)
            },
            |pool| pool_socket(eal, pool),
            |pool| {
                let _ = pool.free();
            },
        );
        match pool {
            Ok(pool) => made.push(pool),
            Err(e) => {
                for pool in made {
                    let _ = pool.free();
                }
                return Err(e);
            }
        }
    }
    Ok(made.try_into().expect("three pools were made"))
}

/// A transmit session (see the module notes).
pub struct TxSession<'eal> {
    pub(crate) eal: &'eal Eal,
    pub(crate) format: St20Format,
    pub(crate) template: HeaderTemplate,
    pub(crate) burst: usize,
    pub(crate) header_pool: ManuallyDrop<PktmbufPool<'eal>>,
    pub(crate) payload_pool: ManuallyDrop<PktmbufPool<'eal>>,
    pub(crate) copy_pool: ManuallyDrop<PktmbufPool<'eal>>,
    pub(crate) slots: Box<[FrameSlot]>,
    pub(crate) memory: Vec<FrameMemory>,
    done: Arc<DoneQueue>,
    /// One slot per lent frame that may be in flight at once; their "done" hands the frame
    /// lent back (`external_done` is a queue of lent frames).
    pub(crate) external_slots: Box<[FrameSlot]>,
    external_done: Arc<DoneQueue>,
    numa: NumaPlacement,
    next_claim: AtomicU32,
    pub(crate) next_seq: AtomicU32,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) copied: AtomicU64,
}

impl std::fmt::Debug for TxSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSession")
            .field("format", &self.format)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// Where a frame buffer is, for code that inspects its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLocation {
    pub va: usize,
    pub len: usize,
    pub page_size: usize,
    /// Payloads of the format that cross a page boundary with discontiguous device
    /// addresses in this frame (sent by copy).
    pub crossing_payloads: u32,
}

impl<'eal> TxSession<'eal> {
    /// A session called `name` (it names the session's memzones and pools).
    pub fn builder(name: &str) -> TxSessionBuilder<'_> {
        TxSessionBuilder {
            name,
            format: St20Format::default(),
            frames: 3,
            frame_len: None,
            socket: Socket::Any,
            port_socket: Socket::Any,
            numa_fallback: true,
            address: StreamAddress::default(),
            burst: DEFAULT_BURST,
            header_pool: None,
            payload_pool: None,
            copy_pool: None,
            on_done: None,
            external_frames: 0,
            on_external_done: None,
        }
    }

    /// The handle on frame `index`, just claimed.
    fn frame_mut(&self, index: usize) -> FrameMut<'_> {
        FrameMut {
            slot: &self.slots[index],
            memory: &self.memory[index],
            owner: core::ptr::from_ref(self) as usize,
        }
    }

    pub fn format(&self) -> &St20Format {
        &self.format
    }

    pub fn frame_count(&self) -> u16 {
        self.slots.len() as u16
    }

    /// A free frame, to write, or `None` while every frame is owned or in flight. Frames are
    /// tried round-robin from the one after the last handed out.
    pub fn get_frame(&self) -> Option<FrameMut<'_>> {
        let n = self.slots.len() as u32;
        let start = self.next_claim.load(Ordering::Relaxed);
        (0..n).find_map(|k| {
            let i = (start + k) % n;
            self.slots[i as usize].try_claim().ok()?;
            self.next_claim.store(i + 1, Ordering::Relaxed);
            Some(self.frame_mut(i as usize))
        })
    }

    /// Frame `id`, to write: refused while it is in flight or already owned.
    pub fn claim(&self, id: FrameId) -> Result<FrameMut<'_>, FrameError> {
        let slot = self
            .slots
            .get(id as usize)
            .ok_or(FrameError::UnknownFrame(id))?;
        match slot.try_claim() {
            Ok(()) => Ok(self.frame_mut(id as usize)),
            Err(FrameState::Owned) => Err(FrameError::AlreadyOwned(id)),
            Err(_) => Err(FrameError::InFlight(id)),
        }
    }

    /// Where frame `id` is in its cycle.
    pub fn state(&self, id: FrameId) -> Result<FrameState, FrameError> {
        let slot = self
            .slots
            .get(id as usize)
            .ok_or(FrameError::UnknownFrame(id))?;
        Ok(slot.state())
    }

    /// Whether packets (or the packetiser) still reference frame `id`.
    pub fn in_flight(&self, id: FrameId) -> Result<bool, FrameError> {
        Ok(self.state(id)? == FrameState::InFlight)
    }

    /// Moves the ids of frames done since the last call into `out`, oldest first.
    pub fn take_done(&self, out: &mut Vec<FrameId>) {
        self.done.drain_into(out);
    }

    /// Frames done since the session began.
    pub fn frames_done(&self) -> u64 {
        self.done.done_count()
    }

    /// Frames transmitted (packetised) since the session began.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::Relaxed)
    }

    /// Payloads copied because they crossed a break in device addresses.
    pub fn copied_payloads(&self) -> u64 {
        self.copied.load(Ordering::Relaxed)
    }

    /// Where frame `id`'s buffer is.
    pub fn location(&self, id: FrameId) -> Result<FrameLocation, FrameError> {
        let m = self
            .memory
            .get(id as usize)
            .ok_or(FrameError::UnknownFrame(id))?;
        Ok(FrameLocation {
            va: m.as_ptr() as usize,
            len: m.len(),
            page_size: m.page_size(),
            crossing_payloads: m.crossings(),
        })
    }

    pub fn header_pool(&self) -> &PktmbufPool<'eal> {
        &self.header_pool
    }

    pub fn payload_pool(&self) -> &PktmbufPool<'eal> {
        &self.payload_pool
    }

    pub fn copy_pool(&self) -> &PktmbufPool<'eal> {
        &self.copy_pool
    }

    /// Where the session's memory was asked for and how much of it had to come from another
    /// socket.
    pub fn numa(&self) -> NumaPlacement {
        self.numa
    }

    /// The frames lent to the session ([`transmit_external`](Self::transmit_external)) and
    /// not yet returned.
    pub fn lent_frames(&self) -> Vec<ExternalFrame> {
        self.lent().held()
    }

    /// Whether lending `frame` now would be refused because its bytes are still in flight.
    pub fn is_lent(&self, frame: &ExternalFrame) -> bool {
        self.lent().overlapping_held(frame).is_some()
    }

    /// Moves the lent frames returned since the last call into `out`, oldest first.
    pub fn take_external_done(&self, out: &mut Vec<ExternalFrame>) {
        self.lent().drain_into(out);
    }

    /// Lent frames returned since the session began.
    pub fn external_frames_done(&self) -> u64 {
        self.external_done.done_count()
    }

    /// Slots for lent frames.
    pub fn external_slot_count(&self) -> u16 {
        self.external_slots.len() as u16
    }

    pub(crate) fn lent(&self) -> &LentFrames {
        self.external_done
            .lent()
            .expect("the external slots report to a queue of lent frames")
    }
}

impl Drop for TxSession<'_> {
    fn drop(&mut self) {
        // Packets borrow the session, so none is alive now, unless one was leaked: then its
        // frame is still in flight and nothing it may point into is freed.
        let slots = self.slots.iter().chain(self.external_slots.iter());
        if slots.clone().any(|s| s.state() == FrameState::InFlight) {
            return;
        }
        // SAFETY: taken once, here, and never used again; no packet remains.
        let header_pool = unsafe { ManuallyDrop::take(&mut self.header_pool) };
        // SAFETY: as above.
        let payload_pool = unsafe { ManuallyDrop::take(&mut self.payload_pool) };
        // SAFETY: as above.
        let copy_pool = unsafe { ManuallyDrop::take(&mut self.copy_pool) };
        let pools = [header_pool, payload_pool, copy_pool];
        for pool in pools {
            let _ = pool.free();
        }
        // No frame is in flight or owned (a `FrameMut` borrows the session), so nothing points
        // into the frame buffers. Lent frames are the application's: never freed here.
        for m in &self.memory {
            // SAFETY: as above.
            unsafe { free_frame(self.eal, m) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session can be shared with the threads that release its packets, and a frame can be
    /// filled on another thread than the one that transmits it.
    #[test]
    fn sessions_and_frames_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<TxSession<'static>>();
        shareable::<FrameMut<'static>>();
    }
}
