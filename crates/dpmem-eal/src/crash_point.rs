//! Where the unit tests stop the code that writes shared structures (heap element headers, the
//! memzone table's slots, their journals) as if the process had died there: every such write
//! first passes a crash point, and a test can arm a countdown so that the n-th point from then
//! on panics instead ([`arm`]). The panic unwinds out of the operation, which leaves the shared
//! memory exactly as a process killed before that write would have left it; the test then hands
//! the lock to a dead process and checks that the next locker repairs what it finds.
//!
//! Outside unit tests a crash point is nothing at all.

/// Passed before each write to a shared structure that a dead process could leave half done.
#[inline(always)]
pub(crate) fn crash_point() {
    #[cfg(test)]
    countdown::hit();
}

#[cfg(test)]
pub(crate) use countdown::{arm, disarm, Crash};

#[cfg(test)]
mod countdown {
    use std::cell::Cell;

    thread_local! {
        /// Crash points left before the one that panics (0: disarmed).
        static LEFT: Cell<u32> = const { Cell::new(0) };
    }

    /// The panic payload of a crash point.
    #[derive(Debug)]
    pub(crate) struct Crash;

    /// Makes the `n`-th crash point this thread passes from now on panic with [`Crash`].
    pub(crate) fn arm(n: u32) {
        quiet_crashes();
        LEFT.with(|left| left.set(n));
    }

    /// Disarms the countdown; returns whether it was still armed (no crash happened).
    pub(crate) fn disarm() -> bool {
        LEFT.with(|left| left.replace(0) != 0)
    }

    pub(super) fn hit() {
        LEFT.with(|left| match left.get() {
            0 => {}
            1 => {
                left.set(0);
                std::panic::panic_any(Crash);
            }
            n => left.set(n - 1),
        });
    }

    /// Keeps the panic hook from printing a message for every simulated death (other panics
    /// are printed as before).
    fn quiet_crashes() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if info.payload().downcast_ref::<Crash>().is_none() {
                    previous(info);
                }
            }));
        });
    }
}
