//! How an idle worker thread sleeps without missing a doorbell, and how a doorbell wakes it
//! only when it sleeps.
//!
//! One 32-bit word carries both facts: bit 0 says the worker is asleep (or about to be), the
//! bits above count doorbells. Keeping them in one word is what makes the protocol easy to
//! trust — every step is a read-modify-write or a futex check of that word, so there is no
//! pair of locations whose stores two threads could see in different orders:
//!
//! - **A doorbell** ([`Doorbell::ring`]) adds 2 with release order, after the channel's
//!   `submitted` store, and calls the futex wake only if the word it replaced had the sleep bit.
//!   A busy worker costs the owner one atomic add per submit and no system call.
//! - **The worker**, idle, reads the word ([`Doorbell::observe`], acquire), looks at every
//!   ring once more, and only then tries to set the sleep bit on *the value it read*
//!   ([`Doorbell::sleep`]). A doorbell in between changed the word, so the bit is not set and
//!   the worker looks again; a doorbell after it sees the bit and wakes it. The futex wait
//!   itself sleeps only while the word still holds what the worker set, so a wake-up sent
//!   between the bit and the wait is not lost either.
//!
//! The loom model of the engine runs this with the futex modelled (a wait really blocks
//! until a wake): a lost wake-up would deadlock there.

use crate::cache_padded::CachePadded;
use crate::sync::{wait_while, wake, AtomicU32, Ordering};

/// The worker is asleep, or committed to sleeping.
const ASLEEP: u32 = 1;
/// One doorbell.
const RING: u32 = 2;

/// The word a worker sleeps on and channels ring.
#[derive(Debug)]
pub(crate) struct Doorbell {
    word: CachePadded<AtomicU32>,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            word: CachePadded(AtomicU32::new(0)),
        }
    }

    /// Tells the worker there is work: after a release store of a ring's `submitted` (or of
    /// the stop request). Wakes the worker if it sleeps.
    #[inline(always)]
    pub(crate) fn ring(&self) {
        // Release: whoever acquires this doorbell's value also sees what was published
        // before it (the `submitted` index, the stop request).
        let before = self.word.fetch_add(RING, Ordering::Release);
        if before & ASLEEP != 0 {
            self.wake_worker();
        }
    }

    #[cold]
    fn wake_worker(&self) {
        wake(&self.word, 1);
    }

    /// The doorbell's value, read before the worker's last look at the rings; hand it to
    /// [`Doorbell::sleep`].
    #[inline(always)]
    pub(crate) fn observe(&self) -> u32 {
        self.word.load(Ordering::Acquire) & !ASLEEP
    }

    /// Sleeps until a doorbell rings, unless one rang since `seen` was observed (then it
    /// returns at once, and the worker looks at the rings again).
    pub(crate) fn sleep(&self, seen: u32) {
        // Acquire on both outcomes: a doorbell that beat us here published work to see.
        if self
            .word
            .compare_exchange(seen, seen | ASLEEP, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Sleeps only while the word is still what we set: a doorbell that rang since
        // changed it, and its wake may even have come before this wait.
        wait_while(&self.word, seen | ASLEEP);
        // Awake (or woken early: the caller looks at the rings either way). Clearing the bit
        // spares later doorbells a system call; acquire sees what the waking doorbell
        // published.
        self.word.fetch_and(!ASLEEP, Ordering::AcqRel);
    }
}
