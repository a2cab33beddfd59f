//! Futex wait and wake on a word in shared memory. The calls leave out `FUTEX_PRIVATE_FLAG`, so
//! they work between processes that map the same file.

use std::sync::atomic::AtomicU32;

use rustix::thread::futex;

/// Sleeps while `*word == expected` (returns at once otherwise, or on a spurious wake).
pub fn wait(word: &AtomicU32, expected: u32) {
    // EAGAIN (value already changed) and EINTR both mean "look again", which callers do.
    let _ = futex::wait(word, futex::Flags::empty(), expected, None);
}

/// Wakes up to `count` sleepers on `word`, in any process.
pub fn wake(word: &AtomicU32, count: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), count);
}

/// The calling thread's kernel thread id.
pub fn thread_id() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}
