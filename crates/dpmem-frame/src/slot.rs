//! The frame reference protocol: one [`FrameSlot`] per frame buffer, holding the frame's
//! state and the external-buffer shared info that every packet pointing into the frame
//! references.
//!
//! States: free → owned by the application → being transmitted → free.
//! - Claiming a frame is a compare-and-swap from free (acquire): it succeeds only once the
//!   previous transmission's "done" has finished, which published free last (release).
//! - Transmitting sets the count to the builder's reference plus a credit for every packet
//!   it may attach, in one store while the frame is still the application's alone; attaching
//!   a packet spends credit (no atomic instruction per packet). The builder gives back the
//!   unspent credit and then its own reference when packetising ends, so packets released
//!   (on any thread) while it works can never bring the count to zero early.
//! - The release that brings the count to zero runs the shared info's callback,
//!   [`frame_done`], exactly once: it tells the session's done queue, and only then stores
//!   free with release order — the last thing the library does with the frame.

use core::ffi::c_void;
use core::ptr::NonNull;
use std::sync::Arc;

use dpmem_mbuf::ExtSharedInfo;

use crate::done::DoneQueue;
pub use crate::frame_id::FrameId;
use crate::sync::{AtomicU32, Ordering};

const FREE: u32 = 0;
const OWNED: u32 = 1;
const IN_FLIGHT: u32 = 2;

/// Where a frame is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameState {
    Free,
    /// The application holds it (a `FrameMut`).
    Owned,
    /// Packets (or the packetiser) reference it.
    InFlight,
}

/// One frame's state and shared info. `repr(C)` with the shared info first: the callback's
/// opaque value is the slot's address.
#[repr(C)]
pub(crate) struct FrameSlot {
    shinfo: ExtSharedInfo,
    state: AtomicU32,
    id: FrameId,
    done: Arc<DoneQueue>,
}

// SAFETY: the shared info's count and the state are atomic; the callback and its opaque value
// are set once, before the slot is shared, and only read after.
unsafe impl Sync for FrameSlot {}
// SAFETY: as above.
unsafe impl Send for FrameSlot {}

impl std::fmt::Debug for FrameSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSlot")
            .field("id", &self.id)
            .field("state", &self.state())
            .field("refs", &self.shinfo.refcnt())
            .finish()
    }
}

/// Builds `n` slots at fixed addresses (each shared info's opaque value is its slot).
pub(crate) fn new_slots(n: u16, done: &Arc<DoneQueue>) -> Box<[FrameSlot]> {
    let mut slots: Vec<FrameSlot> = Vec::with_capacity(n as usize);
    for (id, place) in slots.spare_capacity_mut().iter_mut().enumerate() {
        let opaque = place.as_mut_ptr().cast::<c_void>();
        place.write(FrameSlot {
            shinfo: ExtSharedInfo::new(frame_done, opaque),
            state: AtomicU32::new(FREE),
            id: id as FrameId,
            done: done.clone(),
        });
    }
    // SAFETY: every slot up to `n` was written above; the vector does not grow again, so
    // the addresses stay (the boxed slice keeps the allocation).
    unsafe { slots.set_len(n as usize) };
    slots.into_boxed_slice()
}

impl FrameSlot {
    pub(crate) fn id(&self) -> FrameId {
        self.id
    }

    pub(crate) fn state(&self) -> FrameState {
        match self.state.load(Ordering::Acquire) {
            FREE => FrameState::Free,
            OWNED => FrameState::Owned,
            _ => FrameState::InFlight,
        }
    }

    /// Takes a free frame for the application; the state it was in otherwise. Acquire pairs
    /// with the release of [`frame_done`]: everything the last transmission did to the frame
    /// happened before.
    pub(crate) fn try_claim(&self) -> Result<(), FrameState> {
        match self
            .state
            .compare_exchange(FREE, OWNED, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(()),
            Err(OWNED) => Err(FrameState::Owned),
            Err(_) => Err(FrameState::InFlight),
        }
    }

    /// The application gives back a frame it did not transmit.
    pub(crate) fn unclaim(&self) {
        self.state.store(FREE, Ordering::Release);
    }

    /// Starts a transmission of an owned frame: the builder's reference and `credit` more,
    /// for the packets it will attach. The caller owns the frame (nothing references it), so
    /// a plain store sets the count; the packets reach other threads only through the sink,
    /// which orders them after it.
    pub(crate) fn begin_transmit(&self, credit: u16) -> PacketiseRef<'_> {
        debug_assert!(credit < u16::MAX);
        self.state.store(IN_FLIGHT, Ordering::Relaxed);
        self.shinfo.refcnt_set(1 + credit);
        PacketiseRef { slot: self, credit }
    }
}

/// The packetiser's hold on a frame being transmitted: its own reference and the credit not
/// yet given to packets. Dropping it gives both back; when that was the last reference,
/// "done" runs here.
#[derive(Debug)]
pub(crate) struct PacketiseRef<'s> {
    slot: &'s FrameSlot,
    credit: u16,
}

impl PacketiseRef<'_> {
    /// The shared info a packet attached to the frame points at, with one reference of the
    /// credit now the packet's; `None` when the credit is spent.
    #[inline]
    pub(crate) fn take_reference(&mut self) -> Option<NonNull<ExtSharedInfo>> {
        self.credit = self.credit.checked_sub(1)?;
        Some(NonNull::from(&self.slot.shinfo))
    }

    /// Returns a reference [`take_reference`](Self::take_reference) gave that no packet
    /// ended up holding.
    #[inline]
    pub(crate) fn give_back_reference(&mut self) {
        self.credit += 1;
    }
}

impl Drop for PacketiseRef<'_> {
    fn drop(&mut self) {
        let mut unspent = self.credit;
        // The builder still holds its own reference, so giving back credit cannot reach zero.
        while unspent > 0 {
            let step = unspent.min(i16::MAX as u16);
            self.slot.shinfo.refcnt_update(-(step as i16));
            unspent -= step;
        }
        let shinfo = NonNull::from(&self.slot.shinfo);
        // SAFETY: the builder's own reference, which it holds; the callback is this
        // process's (`frame_done`), and may run now.
        unsafe { ExtSharedInfo::release(shinfo, core::ptr::null_mut()) };
    }
}

/// The shared info's callback: the frame's last reference is gone.
///
/// # Safety
/// `opaque` is a live [`FrameSlot`] whose count just reached zero (the shared info's
/// contract: called once per transmission, after the last release).
unsafe extern "C" fn frame_done(_addr: *mut c_void, opaque: *mut c_void) {
    // SAFETY: the opaque value is the slot (`new_slots`), which outlives every packet: the
    // packets borrow the session that owns it.
    let slot = unsafe { &*opaque.cast::<FrameSlot>() };
    slot.done.frame_done(slot.id);
    // Last: once free is visible the frame may be claimed and rewritten at once.
    slot.state.store(FREE, Ordering::Release);
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The frame reference protocol under loom: a builder attaches two packets to a frame
    //! and hands them to a completion thread that reads the frame (as a NIC would) and
    //! releases them at any time; then the builder gives back its reference and, like an
    //! application, claims the frame again and rewrites it. "Done" must run exactly once,
    //! never before the builder has finished, and the rewrite must be ordered after the
    //! completion's reads. The same holds for a frame the application lent
    //! ([`LentFrames`]): its slot is taken by a lend, "done" hands back the frame lent, once,
    //! and lending it again succeeds only after that.
    use super::*;
    use crate::external_frame::ExternalFrame;
    use crate::lend::lend_slot;
    use crate::lent_frames::LentFrames;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc as LoomArc;

    struct Frame {
        bytes: UnsafeCell<u32>,
        /// Set by the builder when it has attached every packet (relaxed: the model checks
        /// the protocol, not this flag, orders "done" after it).
        packetised: AtomicBool,
        /// "Done" ran while `packetised` was still false.
        early: AtomicBool,
    }

    // SAFETY (test only): `bytes` is accessed under the protocol being checked; loom's cell
    // reports any access the protocol does not order.
    unsafe impl Sync for Frame {}
    // SAFETY (test only): as above.
    unsafe impl Send for Frame {}

    /// A packet: a reference on the frame's shared info.
    struct Packet(NonNull<ExtSharedInfo>);
    // SAFETY (test only): the shared info's count is atomic.
    unsafe impl Send for Packet {}

    fn run(with_builder_reference: bool) {
        loom::model(move || {
            let frame = LoomArc::new(Frame {
                bytes: UnsafeCell::new(0),
                packetised: AtomicBool::new(false),
                early: AtomicBool::new(false),
            });
            let seen = frame.clone();
            // The callback only records (a panic cannot unwind out of the shared info's
            // `extern "C"` callback); the model checks after the threads are done.
            let done = Arc::new(DoneQueue::new(Some(Box::new(move |_| {
                if !seen.packetised.load(Ordering::Relaxed) {
                    seen.early.store(true, Ordering::Relaxed);
                }
            }))));
            let slots = new_slots(1, &done);
            let slot = &slots[0];
            slot.try_claim().unwrap();
            // SAFETY: the application owns the frame: it writes it.
            frame.bytes.with_mut(|b| unsafe { *b = 1 });
            let (tx, rx) = loom::sync::mpsc::channel::<Packet>();
            let completion_frame = frame.clone();
            let completion = loom::thread::spawn(move || {
                for _ in 0..2 {
                    let packet = rx.recv().unwrap();
                    // SAFETY (test only): a packet reads the frame while it holds its reference.
                    completion_frame
                        .bytes
                        .with(|b| assert_eq!(unsafe { *b }, 1));
                    // SAFETY: the packet's reference; the callback is this process's.
                    unsafe { ExtSharedInfo::release(packet.0, core::ptr::null_mut()) };
                }
            });
            {
                let mut builder = slot.begin_transmit(2);
                for _ in 0..2 {
                    let reference = builder.take_reference().unwrap();
                    tx.send(Packet(reference)).unwrap();
                }
                if with_builder_reference {
                    frame.packetised.store(true, Ordering::Relaxed);
                    drop(builder);
                } else {
                    // Without its own reference the builder only passes credit on: the
                    // count it set is the packets' alone.
                    slot.shinfo.refcnt_update(-1);
                    core::mem::forget(builder);
                    frame.packetised.store(true, Ordering::Relaxed);
                }
            }
            // The application waits for the frame instead of sleeping, then rewrites it.
            while slot.try_claim().is_err() {
                loom::thread::yield_now();
            }
            // SAFETY (test only): claimed again: loom checks this write follows the reads.
            frame.bytes.with_mut(|b| unsafe { *b = 2 });
            completion.join().unwrap();
            assert!(
                !frame.early.load(Ordering::Relaxed),
                "done ran before the packetiser finished"
            );
            assert_eq!(done.done_count(), 1);
            assert_eq!(slot.state(), FrameState::Owned);
            drop(slots);
        });
    }

    #[test]
    fn done_runs_once_after_the_last_packet_and_the_packetiser() {
        run(true);
    }

    #[test]
    fn a_lent_frame_comes_back_once_after_its_last_packet_and_only_then_is_lent_again() {
        loom::model(|| {
            let frame = LoomArc::new(Frame {
                bytes: UnsafeCell::new(0),
                packetised: AtomicBool::new(false),
                early: AtomicBool::new(false),
            });
            let lent = ExternalFrame {
                va: 0x1000,
                iova: dpmem_eal::Iova::new(0x1000).unwrap(),
                len: 4,
                opaque: 7,
            };
            let seen = frame.clone();
            let done = Arc::new(DoneQueue::Lent(LentFrames::new(
                1,
                Some(Box::new(move |back: ExternalFrame| {
                    if back != lent || !seen.packetised.load(Ordering::Relaxed) {
                        seen.early.store(true, Ordering::Relaxed);
                    }
                })),
            )));
            let table = done.lent().unwrap();
            let slots = new_slots(1, &done);
            let index = lend_slot(table, &slots, lent).unwrap();
            // SAFETY: the application wrote its frame before lending it; nothing reads it yet.
            frame.bytes.with_mut(|b| unsafe { *b = 1 });
            let (tx, rx) = loom::sync::mpsc::channel::<Packet>();
            let completion_frame = frame.clone();
            let completion = loom::thread::spawn(move || {
                for _ in 0..2 {
                    let packet = rx.recv().unwrap();
                    // SAFETY (test only): a packet reads the frame while it holds its reference.
                    completion_frame
                        .bytes
                        .with(|b| assert_eq!(unsafe { *b }, 1));
                    // SAFETY: the packet's reference; the callback is this process's.
                    unsafe { ExtSharedInfo::release(packet.0, core::ptr::null_mut()) };
                }
            });
            {
                let mut builder = slots[index].begin_transmit(2);
                for _ in 0..2 {
                    tx.send(Packet(builder.take_reference().unwrap())).unwrap();
                }
                frame.packetised.store(true, Ordering::Relaxed);
            }
            // The same frame again: refused while in flight, taken once it came back.
            while lend_slot(table, &slots, lent).is_err() {
                loom::thread::yield_now();
            }
            // SAFETY (test only): lent again only after "done": loom checks this write follows
            // the completion's reads.
            frame.bytes.with_mut(|b| unsafe { *b = 2 });
            completion.join().unwrap();
            assert!(
                !frame.early.load(Ordering::Relaxed),
                "returned early or wrong"
            );
            assert_eq!(done.done_count(), 1);
            assert_eq!(table.held(), [lent]);
            drop(slots);
        });
    }

    /// Without the builder's reference the last completion can finish the frame while the
    /// packetiser is still at work: the model finds it.
    #[test]
    #[should_panic(expected = "done ran before the packetiser finished")]
    fn without_the_builder_reference_done_can_run_early() {
        run(false);
    }
}
