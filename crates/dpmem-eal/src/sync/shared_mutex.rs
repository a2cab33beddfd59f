//! A mutex that lives in shared memory and survives the death of its holder: a 32-bit futex
//! word used *without* `FUTEX_PRIVATE_FLAG` (so waiters in different processes that map the same
//! file wake each other), holding the [`ProcessToken`] of the process that holds it.
//!
//! # The word
//!
//! 0 is unlocked. Otherwise the low 31 bits are the holder's process token and bit 31 says that
//! waiters may sleep on the word (Drepper's "Futexes Are Tricky" three states, with the holder
//! in the "locked" value): taking a free lock is one compare-and-swap of 0 for the caller's
//! token, giving it back one swap to 0, with a futex wake only when the waiter bit was set.
//!
//! # A holder that dies
//!
//! A waiter sleeps at most [`LIVENESS_CHECK_AFTER`] at a time. When a sleep times out it asks
//! the kernel whether the holder its word names is still alive ([`ProcessToken::is_alive`]:
//! pidfd, start time, exit status). If not, it takes the lock over with a compare-and-swap of
//! exactly the word it saw (dead holder, waiter bit) for its own token: a dead process never
//! writes the word again, so only one waiter's swap can succeed. The guard it gets says the
//! lock was taken over ([`SharedMutexGuard::taken_over_from`]); its owner checks what the lock
//! guards and either declares it consistent ([`SharedMutexGuard::mark_consistent`]) or drops the
//! guard as it is, which *retires* the lock: the word then names the dead process with a tag no
//! live process has ([`ProcessToken::retired`]), every sleeper is woken, and every later locker
//! gets [`LockRetired`] naming that process, at once and for good. As with POSIX robust
//! mutexes, a takeover whose taker does not vouch for the data (it panicked, or found damage it
//! could not repair) never lets anyone use that data again.
//!
//! # Why this way
//!
//! - *The kernel's robust futex list* (`set_robust_list`, `FUTEX_OWNER_DIED`) releases a dead
//!   thread's futexes at its exit, but each thread has only one list head, and glibc registers
//!   its own at every thread's start for its robust pthread mutexes. Registering ours instead
//!   would silently break those; joining glibc's list would tie the lock's layout to glibc's
//!   private `struct pthread` and its `futex_offset`. It would also put the caller's thread id in
//!   the word and a list insertion and removal (with the `list_op_pending` protocol) on every
//!   lock and unlock.
//! - *POSIX robust process-shared mutexes* carry the same per-lock list work, lay glibc's private
//!   40-byte structure out in memory other programs map, and cannot run under loom.
//! - *The holder's token in the word, checked when a wait times out*, costs the uncontended path
//!   nothing over the mutex this replaced (the same compare-and-swap, storing a token read from
//!   a static instead of the constant 1) and the contended path one system call per
//!   [`LIVENESS_CHECK_AFTER`] of waiting on a live holder. The price is time: a dead holder is
//!   noticed within that bound, not at its exit; and the holder is a process, not a thread, which
//!   is enough because a dpmem guard cannot outlive its thread short of the process dying.
//!
//! [`SharedMutex::lock`] also records the holding thread's id, so that the memory-event
//! callbacks (run while the hotplug lock is held) can walk memory without deadlocking on their
//! own thread's lock ([`SharedMutex::lock_reentrant`]); locks never taken that way skip
//! recording it (`lock_untracked`).

use std::time::Duration;

use dpmem_sys::futex;
use dpmem_sys::process_token::ProcessToken;
use dpmem_sys::sync::{self as shim, AtomicU32, Ordering};

use super::lock_depth;

const UNLOCKED: u32 = 0;
/// Set while waiters may sleep on the word: the unlocker must wake one.
const WAITERS: u32 = 1 << 31;

/// How long a waiter sleeps before it looks whether the holder is still alive.
pub const LIVENESS_CHECK_AFTER: Duration = Duration::from_millis(10);
/// A waiter still waiting on a live holder after this long says so on stderr, once per wait.
#[cfg(not(loom))]
const LONG_WAIT_WARNING: Duration = Duration::from_secs(10);

/// A lock whose holder died leaving what it guards damaged beyond repair: every operation on
/// that structure is refused from then on. Names the process that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRetired {
    pub dead_pid: u32,
}

/// A process-shared mutex guarding no data of its own (it guards shared structures next to it).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SharedMutex {
    /// 0, or the holder's process token with [`WAITERS`] (see the module docs).
    word: AtomicU32,
    /// Kernel thread id of the holder when taken with [`SharedMutex::lock`], 0 otherwise. Only
    /// compared with the caller's own id, so a stale read can never make another thread believe
    /// it owns the lock.
    owner_tid: AtomicU32,
}

fn current_tid() -> u32 {
    futex::thread_id()
}

/// Whether a process is alive, as the lock asks it: the kernel's answer, or a model's.
type Liveness<'a> = &'a dyn Fn(ProcessToken) -> bool;

fn kernel_liveness(token: ProcessToken) -> bool {
    token.is_alive()
}

impl SharedMutex {
    /// A lock nobody holds (shared memory starts so when zeroed; tests and models make
    /// their own).
    #[cfg(test)]
    pub fn new() -> Self {
        Self {
            word: AtomicU32::new(UNLOCKED),
            owner_tid: AtomicU32::new(0),
        }
    }

    /// Takes the lock, sleeping in the kernel while another thread or process holds it, and
    /// taking it over from a holder that died (the guard says so). `Err` when the lock was
    /// retired.
    #[inline]
    pub fn lock(&self) -> Result<SharedMutexGuard<'_>, LockRetired> {
        let guard = self.lock_untracked()?;
        self.owner_tid.store(current_tid(), Ordering::Relaxed);
        Ok(guard)
    }

    /// [`SharedMutex::lock`] without recording the owning thread: for locks that are never
    /// taken with [`SharedMutex::lock_reentrant`] (the heaps, the heap directory and the memzone
    /// table, all behind [`SharedLocked`](super::SharedLocked)), which then skip a thread-local
    /// read and a store on the path every allocation takes.
    #[inline(always)]
    pub(crate) fn lock_untracked(&self) -> Result<SharedMutexGuard<'_>, LockRetired> {
        self.lock_as(ProcessToken::own(), &kernel_liveness)
    }

    /// The lock if nobody holds it: one compare-and-swap, the whole of the uncontended path.
    /// `None` when it is held (or retired); [`SharedMutex::lock_untracked`] then waits.
    #[inline(always)]
    pub(crate) fn try_lock_untracked(&self) -> Option<SharedMutexGuard<'_>> {
        self.word
            .compare_exchange(
                UNLOCKED,
                ProcessToken::own().raw(),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
            .then(|| SharedMutexGuard::holding(self, None))
    }

    /// The lock taken by process `me`, holders' liveness judged by `alive`.
    #[inline(always)]
    fn lock_as(
        &self,
        me: ProcessToken,
        alive: Liveness<'_>,
    ) -> Result<SharedMutexGuard<'_>, LockRetired> {
        if self
            .word
            .compare_exchange(UNLOCKED, me.raw(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(SharedMutexGuard::holding(self, None));
        }
        self.lock_contended(me, alive)
    }

    #[cold]
    fn lock_contended(
        &self,
        me: ProcessToken,
        alive: Liveness<'_>,
    ) -> Result<SharedMutexGuard<'_>, LockRetired> {
        #[cfg(not(loom))]
        let mut waiting = LongWait::start();
        loop {
            let seen = self.word.load(Ordering::Relaxed);
            if seen == UNLOCKED {
                // Taken with the waiter bit: others may sleep, and this holder's unlock must
                // wake one of them.
                if self
                    .word
                    .compare_exchange(
                        UNLOCKED,
                        me.raw() | WAITERS,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return Ok(SharedMutexGuard::holding(self, None));
                }
                continue;
            }
            let holder = ProcessToken::from_raw(seen);
            if holder.is_retired() {
                return Err(LockRetired {
                    dead_pid: holder.pid(),
                });
            }
            let asleep = seen | WAITERS;
            if seen & WAITERS == 0
                && self
                    .word
                    .compare_exchange(seen, asleep, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            if !shim::wait_while_for(&self.word, asleep, LIVENESS_CHECK_AFTER) {
                continue;
            }
            if alive(holder) {
                #[cfg(not(loom))]
                waiting.still_waiting_on(holder);
                continue;
            }
            // The word still naming the dead holder is the proof that nobody took over
            // before: a dead process never writes it again, so only one swap succeeds.
            if self
                .word
                .compare_exchange(
                    asleep,
                    me.raw() | WAITERS,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Ok(SharedMutexGuard::holding(self, Some(holder.pid())));
            }
        }
    }

    /// Takes the lock unless this very thread already holds it (then the guard is a no-op).
    /// For code that may run inside a memory-event callback.
    pub fn lock_reentrant(&self) -> Result<SharedMutexGuard<'_>, LockRetired> {
        if self.owner_tid.load(Ordering::Relaxed) == current_tid() {
            return Ok(SharedMutexGuard::nothing(self));
        }
        self.lock()
    }

    /// Whether some thread of some process holds the lock right now (a hint for diagnostics).
    #[cfg(test)]
    pub fn is_locked(&self) -> bool {
        let word = self.word.load(Ordering::Relaxed);
        word != UNLOCKED && !ProcessToken::from_raw(word).is_retired()
    }

    /// Makes the lock look held by process `holder` (unit tests hand it to a dead process).
    #[cfg(test)]
    pub(crate) fn hold_for(&self, holder: ProcessToken) {
        self.owner_tid.store(0, Ordering::Relaxed);
        self.word.store(holder.raw(), Ordering::Release);
    }

    /// The process whose death retired this lock, if it was retired.
    #[cfg(test)]
    pub fn retired_by(&self) -> Option<u32> {
        let holder = ProcessToken::from_raw(self.word.load(Ordering::Acquire));
        holder.is_retired().then_some(holder.pid())
    }

    #[inline(always)]
    fn unlock(&self) {
        self.owner_tid.store(0, Ordering::Relaxed);
        if self.word.swap(UNLOCKED, Ordering::Release) & WAITERS != 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        shim::wake(&self.word, 1);
    }

    /// Gives the lock up for good, recording that `dead_pid` died holding it and left what it
    /// guards unusable; every sleeper wakes to that news.
    #[cold]
    fn retire(&self, dead_pid: u32) {
        self.owner_tid.store(0, Ordering::Relaxed);
        self.word
            .store(ProcessToken::retired(dead_pid).raw(), Ordering::Release);
        // The kernel reads the count as an `int`: its largest value wakes them all.
        shim::wake(&self.word, i32::MAX as u32);
    }

    /// Resets a lock left held (or retired) by a process that died. Only the primary calls
    /// this, while it initialises a configuration no other process can be using yet.
    pub fn force_reset(&self) {
        self.owner_tid.store(0, Ordering::Relaxed);
        self.word.store(UNLOCKED, Ordering::Release);
    }
}

/// Says, once, that a wait on a live holder is taking long: a silent wait is what a user
/// cannot tell from a hang.
#[cfg(not(loom))]
struct LongWait {
    since: std::time::Instant,
    told: bool,
}

#[cfg(not(loom))]
impl LongWait {
    fn start() -> Self {
        LongWait {
            since: std::time::Instant::now(),
            told: false,
        }
    }

    fn still_waiting_on(&mut self, holder: ProcessToken) {
        if !self.told && self.since.elapsed() >= LONG_WAIT_WARNING {
            self.told = true;
            eprintln!(
                "dpmem: warning: waiting {} s for a process-shared lock held by process {}, which is alive",
                LONG_WAIT_WARNING.as_secs(),
                holder.pid()
            );
        }
    }
}

/// Releases the [`SharedMutex`] on drop (unless it was a re-entrant no-op guard). A guard of a
/// lock taken over from a dead holder retires the lock instead, unless
/// [`SharedMutexGuard::mark_consistent`] was called.
///
/// Two words, a reference and a state, so that the guard of the path every allocation takes
/// stays in registers (an `Option` of each made it bounce through the stack).
#[derive(Debug)]
pub struct SharedMutexGuard<'a> {
    mutex: &'a SharedMutex,
    /// [`HELD`], [`HOLDS_NOTHING`], or the process id of the dead holder this guard took the
    /// lock from, while what it guards is not yet known to be consistent.
    state: u32,
}

/// A guard's state: it holds the lock, which is in ordinary use.
const HELD: u32 = 0;
/// A guard's state: it holds nothing (ids of processes never reach this).
const HOLDS_NOTHING: u32 = u32::MAX;

impl<'a> SharedMutexGuard<'a> {
    #[inline(always)]
    fn holding(mutex: &'a SharedMutex, taken_over_from: Option<u32>) -> Self {
        lock_depth::enter();
        SharedMutexGuard {
            mutex,
            state: taken_over_from.unwrap_or(HELD),
        }
    }

    /// A guard that holds nothing and releases nothing: the inner guard of a re-entrant lock.
    #[inline(always)]
    fn nothing(mutex: &'a SharedMutex) -> Self {
        SharedMutexGuard {
            mutex,
            state: HOLDS_NOTHING,
        }
    }

    /// The process id of the holder that died with the lock, when this guard took it over and
    /// nothing has been declared consistent yet.
    #[inline(always)]
    pub fn taken_over_from(&self) -> Option<u32> {
        (self.state != HELD && self.state != HOLDS_NOTHING).then_some(self.state)
    }

    /// Declares what the lock guards consistent after a takeover (checked, or repaired): the
    /// lock goes back to ordinary use when this guard drops.
    pub fn mark_consistent(&mut self) {
        if self.state != HOLDS_NOTHING {
            self.state = HELD;
        }
    }
}

impl Drop for SharedMutexGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        match self.state {
            HELD => self.mutex.unlock(),
            HOLDS_NOTHING => return,
            dead_pid => self.mutex.retire(dead_pid),
        }
        // Counted as held until released.
        lock_depth::exit();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn excludes_threads_and_counts_exactly() {
        let mutex = Arc::new(SharedMutex::new());
        let counter = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (mutex, counter) = (mutex.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let _guard = mutex.lock().unwrap();
                        // A non-atomic read-modify-write: loses updates unless excluded.
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 80_000);
        assert!(!mutex.is_locked());
    }

    #[test]
    fn reentrant_lock_on_owning_thread_does_not_deadlock() {
        let mutex = SharedMutex::new();
        let outer = mutex.lock().unwrap();
        {
            let _inner = mutex.lock_reentrant().unwrap();
            assert!(mutex.is_locked());
        }
        assert!(mutex.is_locked(), "inner no-op guard must not unlock");
        drop(outer);
        assert!(!mutex.is_locked());
    }

    #[test]
    fn the_word_names_the_holding_process() {
        let mutex = SharedMutex::new();
        let guard = mutex.lock().unwrap();
        let word = mutex.word.load(Ordering::Relaxed);
        assert_eq!(ProcessToken::from_raw(word), ProcessToken::own());
        drop(guard);
        assert_eq!(mutex.word.load(Ordering::Relaxed), UNLOCKED);
    }

    /// A lock left by a process that is gone: a child's token, the child killed and reaped.
    fn lock_of_a_dead_process() -> (SharedMutex, u32) {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep(1) runs");
        let pid = child.id();
        let token = ProcessToken::of_pid(pid).expect("the child exists");
        child.kill().unwrap();
        child.wait().unwrap();
        let mutex = SharedMutex::new();
        mutex.word.store(token.raw(), Ordering::Relaxed);
        (mutex, pid)
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over_and_reported() {
        let (mutex, pid) = lock_of_a_dead_process();
        let started = std::time::Instant::now();
        let mut guard = mutex.lock().unwrap();
        assert_eq!(guard.taken_over_from(), Some(pid));
        assert!(started.elapsed() < Duration::from_secs(1));
        guard.mark_consistent();
        drop(guard);
        assert!(!mutex.is_locked());
        let guard = mutex.lock().unwrap();
        assert_eq!(guard.taken_over_from(), None, "back to ordinary use");
    }

    #[test]
    fn a_takeover_not_vouched_for_retires_the_lock_for_everyone() {
        let (mutex, pid) = lock_of_a_dead_process();
        let mutex = Arc::new(mutex);
        // A second waiter asleep on the lock when it is retired must wake to the news.
        let waiter = {
            let mutex = mutex.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                mutex.lock().map(|g| g.taken_over_from())
            })
        };
        let guard = mutex.lock();
        match guard {
            Ok(guard) => {
                assert_eq!(guard.taken_over_from(), Some(pid));
                drop(guard);
                assert_eq!(waiter.join().unwrap(), Err(LockRetired { dead_pid: pid }));
            }
            // The other thread took over first and dropped its guard unvouched.
            Err(e) => {
                assert_eq!(e, LockRetired { dead_pid: pid });
                assert_eq!(waiter.join().unwrap(), Ok(Some(pid)));
            }
        }
        assert_eq!(mutex.retired_by(), Some(pid));
        assert_eq!(
            mutex.lock().unwrap_err(),
            LockRetired { dead_pid: pid },
            "refused at once, for good"
        );
        mutex.force_reset();
        assert!(mutex.lock().is_ok());
    }

    #[test]
    fn a_live_holder_is_waited_for_not_taken_over() {
        let mutex = Arc::new(SharedMutex::new());
        let guard = mutex.lock().unwrap();
        let waiter = {
            let mutex = mutex.clone();
            std::thread::spawn(move || mutex.lock().map(|g| g.taken_over_from()))
        };
        // Several liveness checks pass while the holder (this process) lives.
        std::thread::sleep(LIVENESS_CHECK_AFTER * 5);
        assert!(!waiter.is_finished());
        drop(guard);
        assert_eq!(waiter.join().unwrap(), Ok(None));
    }
}

/// The lock's protocol under loom, with the futex modelled (`dpmem_sys::sync`): mutual
/// exclusion (the counter is a loom cell, so two holders at once are a reported race), no lost
/// wake-up (a waiter sleeps until woken, so an unlock that forgot a sleeper would leave it
/// asleep and loom would report the deadlock), and the takeover of a dead holder's lock:
/// exactly one waiter takes it over, the others get it after that one unlocks (or the news that
/// it was retired), and nobody ever holds it alongside another.
///
/// `RUSTFLAGS="--cfg loom" cargo test -p dpmem-eal --release --lib loom`
#[cfg(all(test, loom))]
mod loom_model {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    use super::*;

    fn add_one(mutex: &SharedMutex, counter: &UnsafeCell<u32>) {
        let _guard = mutex.lock_untracked().unwrap();
        // SAFETY: the lock is held, so no other thread touches the counter (loom checks it).
        counter.with_mut(|c| unsafe { *c += 1 });
    }

    #[test]
    fn loom_three_lockers_exclude_each_other_and_none_sleeps_forever() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let mutex = Arc::new(SharedMutex::new());
            let counter = Arc::new(UnsafeCell::new(0u32));
            let lockers: Vec<_> = (0..2)
                .map(|_| {
                    let (mutex, counter) = (mutex.clone(), counter.clone());
                    loom::thread::spawn(move || add_one(&mutex, &counter))
                })
                .collect();
            add_one(&mutex, &counter);
            for locker in lockers {
                locker.join().unwrap();
            }
            // SAFETY: every other thread has ended.
            assert_eq!(counter.with(|c| unsafe { *c }), 3);
            assert!(!mutex.is_locked());
        });
    }

    #[test]
    fn loom_tracked_lock_records_and_clears_its_owner() {
        loom::model(|| {
            let mutex = Arc::new(SharedMutex::new());
            let other = {
                let mutex = mutex.clone();
                loom::thread::spawn(move || drop(mutex.lock()))
            };
            drop(mutex.lock());
            other.join().unwrap();
            assert_eq!(mutex.owner_tid.load(Ordering::Relaxed), 0);
            assert!(!mutex.is_locked());
        });
    }

    /// The model's processes: tokens 1 (the one that dies), 2 and 3.
    const DYING: u32 = 1;

    /// What the two survivors saw, to check once both have ended.
    struct Outcome {
        /// Takeovers that succeeded.
        takeovers: AtomicUsize,
        /// Lockers told the lock was retired.
        refused: AtomicUsize,
        /// Critical sections run (inside the lock, as a loom cell: two at once is a race).
        entries: UnsafeCell<u32>,
    }

    /// Process `me` takes the lock as a survivor would: repairs nothing but vouches for the
    /// data when `vouch`, otherwise drops the taken-over guard as it is.
    fn survivor(mutex: &SharedMutex, me: u32, dead: &AtomicUsize, outcome: &Outcome, vouch: bool) {
        let alive =
            |token: ProcessToken| !(token.raw() == DYING && dead.load(Ordering::SeqCst) == 1);
        match mutex.lock_as(ProcessToken::from_raw(me), &alive) {
            Ok(mut guard) => {
                // SAFETY: the lock is held (loom reports a second holder as a race).
                outcome.entries.with_mut(|c| unsafe { *c += 1 });
                if let Some(pid) = guard.taken_over_from() {
                    assert_eq!(pid, DYING);
                    outcome.takeovers.fetch_add(1, Ordering::SeqCst);
                    if vouch {
                        guard.mark_consistent();
                    }
                }
            }
            Err(retired) => {
                assert_eq!(retired.dead_pid, DYING);
                outcome.refused.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// The dying process takes the lock and stops without unlocking while two others want
    /// it: exactly one of them takes it over, and the other then gets it (`vouch`) or is
    /// refused (the taker left it unvouched, so the lock is retired).
    fn owner_dies_holding_the_lock(vouch: bool) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(move || {
            let mutex = Arc::new(SharedMutex::new());
            let dead = Arc::new(AtomicUsize::new(0));
            let outcome = Arc::new(Outcome {
                takeovers: AtomicUsize::new(0),
                refused: AtomicUsize::new(0),
                entries: UnsafeCell::new(0),
            });
            let held = mutex
                .lock_as(ProcessToken::from_raw(DYING), &|_| true)
                .unwrap();
            let survivors: Vec<_> = [2, 3]
                .into_iter()
                .map(|me| {
                    let (mutex, dead, outcome) = (mutex.clone(), dead.clone(), outcome.clone());
                    loom::thread::spawn(move || survivor(&mutex, me, &dead, &outcome, vouch))
                })
                .collect();
            // The holder dies: its guard is never dropped (no unlock), the kernel would now
            // say it is gone, and the survivors' timed waits run out.
            std::mem::forget(held);
            dead.store(1, Ordering::SeqCst);
            shim::time_passes();
            for s in survivors {
                s.join().unwrap();
            }
            assert_eq!(
                outcome.takeovers.load(Ordering::SeqCst),
                1,
                "exactly one taker"
            );
            // SAFETY: every other thread has ended.
            let entries = outcome.entries.with(|c| unsafe { *c });
            if vouch {
                assert_eq!(
                    entries, 2,
                    "the other survivor got the lock after the taker"
                );
                assert!(!mutex.is_locked(), "no unlock was lost");
            } else {
                assert_eq!(entries, 1);
                assert_eq!(outcome.refused.load(Ordering::SeqCst), 1);
                assert_eq!(mutex.retired_by(), Some(DYING));
            }
        });
    }

    #[test]
    fn loom_dead_holder_is_taken_over_by_exactly_one_waiter() {
        owner_dies_holding_the_lock(true);
    }

    #[test]
    fn loom_unvouched_takeover_retires_the_lock_for_the_other_waiter() {
        owner_dies_holding_the_lock(false);
    }
}
