//! [`FrameStates`]: where each of a receive session's frame buffers is in its cycle, shared by
//! the session and the application's frame handles.
//!
//! A buffer cycles free → assembling → settling → ready → held → free:
//! - **assembling**: the session copies payloads into it (by the CPU and the device);
//! - **settling**: no more packets go into it, but device copies into it may still be in
//!   flight; it leaves this state only once every one is reported — to *ready* when every
//!   packet arrived, straight back to *free* when the frame was given up as incomplete;
//! - **ready**: complete and quiet, waiting for the application;
//! - **held**: the application reads it through an [`RxFrame`](crate::RxFrame) handle.
//!
//! Only the session moves a buffer between its own states, on its one thread; the only
//! transition made elsewhere is a handle's drop, from held to free, stored with release
//! order, and the session takes a buffer only after reading free with acquire order: so
//! whatever the application read happened before the buffer is written again. The device's
//! writes reach the application the other way round: reported through the session's copy
//! count (`copy_tickets.rs`, release then acquire) before the buffer is ready. The loom model
//! below checks both orders.

use crate::frame_id::FrameId;
use crate::sync::{AtomicU32, Ordering};

const FREE: u32 = 0;
const ASSEMBLING: u32 = 1;
const SETTLING: u32 = 2;
const READY: u32 = 3;
const HELD: u32 = 4;

/// Where a receive frame buffer is in its cycle (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxFrameState {
    Free,
    /// Packets of the current frame are being copied into it.
    Assembling,
    /// Its frame ended; device copies into it may still be in flight.
    Settling,
    /// Complete, waiting for the application.
    Ready,
    /// The application holds it.
    Held,
}

impl RxFrameState {
    fn from_word(word: u32) -> RxFrameState {
        match word {
            FREE => RxFrameState::Free,
            ASSEMBLING => RxFrameState::Assembling,
            SETTLING => RxFrameState::Settling,
            READY => RxFrameState::Ready,
            _ => RxFrameState::Held,
        }
    }

    fn word(self) -> u32 {
        match self {
            RxFrameState::Free => FREE,
            RxFrameState::Assembling => ASSEMBLING,
            RxFrameState::Settling => SETTLING,
            RxFrameState::Ready => READY,
            RxFrameState::Held => HELD,
        }
    }
}

/// One [`RxFrameState`] word per buffer.
#[derive(Debug)]
pub(crate) struct FrameStates {
    words: Box<[AtomicU32]>,
}

impl FrameStates {
    /// `n` buffers, all free.
    pub(crate) fn new(n: u16) -> FrameStates {
        FrameStates {
            words: (0..n).map(|_| AtomicU32::new(FREE)).collect(),
        }
    }

    pub(crate) fn count(&self) -> u16 {
        self.words.len() as u16
    }

    /// Buffer `id`'s state; acquire, so a free read here follows the handle's last read.
    #[inline]
    pub(crate) fn get(&self, id: FrameId) -> RxFrameState {
        RxFrameState::from_word(self.words[usize::from(id)].load(Ordering::Acquire))
    }

    /// The session moves buffer `id` to `state` (never to free from held: that is the
    /// handle's [`release`](Self::release)). Release, so that the handle made next sees
    /// what the session did.
    #[inline]
    pub(crate) fn set(&self, id: FrameId, state: RxFrameState) {
        self.words[usize::from(id)].store(state.word(), Ordering::Release);
    }

    /// The application's handle on buffer `id` is gone: it is free. Release: every read
    /// through the handle happens before the session's acquire of free.
    pub(crate) fn release(&self, id: FrameId) {
        self.words[usize::from(id)].store(FREE, Ordering::Release);
    }

    /// Buffers in `state` now.
    pub(crate) fn count_in(&self, state: RxFrameState) -> u32 {
        (0..self.count())
            .filter(|&id| self.get(id) == state)
            .count() as u32
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! One buffer through a whole cycle under loom: a device thread writes the frame and
    //! reports its copy through the session's copy count; the session waits for the count,
    //! makes the frame ready and hands it to an application thread, which reads it and drops
    //! its handle; the session waits for free and writes the buffer again (the next frame).
    //! Loom's cell reports any of those accesses the protocol leaves unordered.
    use super::*;
    use crate::rx::copy_tickets::CopyTickets;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Buffer(UnsafeCell<u32>);
    // SAFETY (test only): accessed under the protocol being checked; loom's cell reports
    // any access the protocol does not order.
    unsafe impl Sync for Buffer {}
    // SAFETY (test only): as above.
    unsafe impl Send for Buffer {}

    fn run(wait_for_the_copy: bool) {
        loom::model(move || {
            let buffer = Arc::new(Buffer(UnsafeCell::new(0)));
            let states = Arc::new(FrameStates::new(1));
            let mut tickets = CopyTickets::new();
            states.set(0, RxFrameState::Assembling);
            let ticket = tickets.issue();
            let reports = tickets.reports();
            let device_buffer = buffer.clone();
            let device = loom::thread::spawn(move || {
                // SAFETY (test only): the device writes the frame it was lent.
                device_buffer.0.with_mut(|b| unsafe { *b = 1 });
                // What the session's callback does once the borrower has seen the report.
                reports.copy_reported();
            });
            states.set(0, RxFrameState::Settling);
            if wait_for_the_copy {
                while tickets.done_up_to() < ticket {
                    loom::thread::yield_now();
                }
            }
            states.set(0, RxFrameState::Ready);
            states.set(0, RxFrameState::Held);
            let (app_states, app_buffer) = (states.clone(), buffer.clone());
            let application = loom::thread::spawn(move || {
                // SAFETY (test only): the application reads the frame it holds.
                let seen = app_buffer.0.with(|b| unsafe { *b });
                app_states.release(0);
                seen
            });
            while states.get(0) != RxFrameState::Free {
                loom::thread::yield_now();
            }
            states.set(0, RxFrameState::Assembling);
            // SAFETY (test only): the next frame's copy into the buffer, now free again.
            buffer.0.with_mut(|b| unsafe { *b = 2 });
            assert_eq!(application.join().unwrap(), 1);
            device.join().unwrap();
        });
    }

    #[test]
    fn reads_and_writes_of_a_buffer_follow_the_copy_report_and_the_handle_drop() {
        run(true);
    }

    /// Without waiting for the device's report, the application can read the frame while
    /// the device writes it: the model finds it.
    #[test]
    #[should_panic(expected = "Causality violation")]
    fn without_waiting_for_the_report_the_application_races_the_device() {
        run(false);
    }
}
