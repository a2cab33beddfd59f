//! Time on both clocks a benchmark reads, the monotonic clock and the TSC: a point in time
//! ([`Stamp`]), read around a timed loop in the order DPDK's C loops read them
//! (`clock_gettime` then `rte_rdtsc` before, the reverse after) so both sides' figures cover
//! the same span, and how long a loop ran ([`Elapsed`]), which either side reports.

use std::time::Instant;

use crate::tsc::tsc;

/// How long a timed loop ran, on the monotonic clock and on the TSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    /// Nanoseconds.
    pub ns: u64,
    /// TSC cycles.
    pub cycles: u64,
}

/// A point in time on both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub at: Instant,
    pub tsc: u64,
}

impl Stamp {
    /// Before a loop: the clock, then the TSC (the C side's order).
    #[inline(always)]
    pub(crate) fn start() -> Stamp {
        let at = Instant::now();
        Stamp { at, tsc: tsc() }
    }

    /// After a loop: the TSC, then the clock.
    #[inline(always)]
    pub(crate) fn end() -> Stamp {
        let tsc = tsc();
        Stamp {
            at: Instant::now(),
            tsc,
        }
    }
}

/// The time from `start` to `end`.
pub(crate) fn between(start: Stamp, end: Stamp) -> Elapsed {
    Elapsed {
        ns: end.at.duration_since(start.at).as_nanos() as u64,
        cycles: end.tsc.wrapping_sub(start.tsc),
    }
}
