//! Futex wait and wake on a word in shared memory. The calls leave out `FUTEX_PRIVATE_FLAG`, so
//! they work between processes that map the same file.

use std::sync::atomic::AtomicU32;

use rustix::thread::futex;

/// Sleeps while `*word == expected` (returns at once otherwise, or on a spurious wake).
pub fn wait(word: &AtomicU32, expected: u32) {
    // EAGAIN (value already changed) and EINTR both mean "look again", which callers do.
    let _ = futex::wait(word, futex::Flags::empty(), expected, None);
}

/// [`wait`] for at most `limit`: `true` when it returned because the time ran out (the word
/// may still have changed meanwhile; callers look again either way).
pub fn wait_for(word: &AtomicU32, expected: u32, limit: std::time::Duration) -> bool {
    let timeout = futex::Timespec {
        tv_sec: limit.as_secs() as _,
        tv_nsec: limit.subsec_nanos() as _,
    };
    matches!(
        futex::wait(word, futex::Flags::empty(), expected, Some(&timeout)),
        Err(rustix::io::Errno::TIMEDOUT)
    )
}

/// Wakes up to `count` sleepers on `word`, in any process.
pub fn wake(word: &AtomicU32, count: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), count);
}

thread_local! {
    /// This thread's id once asked for (0: not yet). Locks ask on every acquisition, and a
    /// `gettid` system call each time cost more than the heap operation they guard.
    static THREAD_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The calling thread's kernel thread id (cached per thread; a child made by `fork` without
/// `exec` from a thread that already asked would see its parent thread's id, so dpmem
/// processes are started with `exec`).
#[inline]
pub fn thread_id() -> u32 {
    let ask = || rustix::thread::gettid().as_raw_nonzero().get() as u32;
    THREAD_ID
        .try_with(|cached| {
            if cached.get() == 0 {
                cached.set(ask());
            }
            cached.get()
        })
        .unwrap_or_else(|_| ask())
}
