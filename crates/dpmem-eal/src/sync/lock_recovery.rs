//! What this process did about process-shared locks whose holder died: each takeover is told on
//! stderr (which lock, which process died, what was found and repaired, or why the structure had
//! to be given up) and counted, for diagnostics and for the tests that kill lock holders.

use std::sync::atomic::{AtomicU64, Ordering};

static TAKEN_OVER: AtomicU64 = AtomicU64::new(0);
static RETIRED: AtomicU64 = AtomicU64::new(0);

/// Counts of this process's takeovers of locks left held by dead processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockRecoveryStats {
    /// Locks this process took over from a holder that had died.
    pub taken_over: u64,
    /// Of those, the ones whose structure could not be repaired, so that the lock was retired
    /// and every later operation on the structure fails naming the dead process.
    pub retired: u64,
}

/// This process's counts so far (all EAL instances and pools together).
pub fn stats() -> LockRecoveryStats {
    LockRecoveryStats {
        taken_over: TAKEN_OVER.load(Ordering::Relaxed),
        retired: RETIRED.load(Ordering::Relaxed),
    }
}

/// Records (counts and tells) a takeover of the lock of `what` from dead process `dead_pid`:
/// `Ok` with what was checked and repaired, or `Err` with why the structure is given up. For
/// the process-shared locks of the crates above the EAL too (the mempool's stack).
pub fn record_takeover(what: &str, dead_pid: u32, outcome: Result<&str, &str>) {
    TAKEN_OVER.fetch_add(1, Ordering::Relaxed);
    match outcome {
        Ok(repairs) => eprintln!(
            "dpmem: process {dead_pid} died holding the lock of {what}; taken over: {repairs}"
        ),
        Err(reason) => {
            RETIRED.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "dpmem: process {dead_pid} died holding the lock of {what}, which cannot be repaired ({reason}); every later use of it fails"
            );
        }
    }
}
