//! Process tokens: 31 bits that name one process for as long as it lives, and whether the
//! process a token names is still alive. Process-shared locks store the token of their holder in
//! their lock word, so that a waiter can tell a holder that is slow from one that is dead.
//!
//! A token is the process id (22 bits: Linux never hands out ids at or above 2^22) and a
//! *start tag* (9 bits): the process's start time in clock ticks since boot, modulo 511. The tag
//! is what defeats the reuse of process ids: once a process has died and its id has gone to
//! another one, the id alone would make the newcomer look like the holder, but the newcomer
//! started at another time, and its tag differs unless the two start times happen to agree
//! modulo 511 (a chance of 1 in 511, on top of an id being reused while a lock waits). Tag 511
//! is never computed, which gives lock words a value ([`ProcessToken::retired`]) that names a
//! process without being anyone's token.
//!
//! Whether a token's process lives is asked of the kernel in three steps: a pidfd is opened on
//! the id (refused: nobody has the id, so the holder is gone); its start time is read from
//! `/proc/<pid>/stat` (another tag: the id was reused); and the pidfd is polled, which reports
//! the whole thread group gone, even while its parent has not yet reaped it (a zombie still has
//! its `/proc` entry and its id). Without pidfds (kernels before 5.3) the state letter of
//! `/proc/<pid>/stat` stands in for the poll; where `/proc` hides other users' processes the
//! start tag goes unchecked. When neither the pidfd nor `/proc` can be read the answer is
//! "alive": a lock is never taken from a holder that might still run.
//!
//! Tokens assume that every process of an EAL sees the others' ids, that is, they share a pid
//! namespace (a secondary checks this when it attaches).
//!
//! A process computes its own token once. A child made by `fork` gets a new id, so the cached
//! token is cleared in the child (`pthread_atfork`).

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

/// Bits of a token; the bit above is left to the user (a lock word's waiter flag).
pub const TOKEN_BITS: u32 = 31;
const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;
/// Tags computed from start times are below this; this one marks retired tokens.
const RETIRED_TAG: u32 = 511;

/// A process as process-shared locks record it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessToken(u32);

/// The calling process's token, once computed (0: not yet, or cleared in a child after fork).
static OWN_TOKEN: AtomicU32 = AtomicU32::new(0);

extern "C" fn forget_own_token_in_child() {
    OWN_TOKEN.store(0, Ordering::Relaxed);
}

impl ProcessToken {
    /// The token of the calling process.
    #[inline(always)]
    pub fn own() -> ProcessToken {
        match OWN_TOKEN.load(Ordering::Relaxed) {
            0 => Self::compute_own(),
            raw => ProcessToken(raw),
        }
    }

    #[cold]
    fn compute_own() -> ProcessToken {
        static AT_FORK: std::sync::Once = std::sync::Once::new();
        AT_FORK.call_once(|| {
            // SAFETY: pthread_atfork only records the function pointers; the child handler is a
            // plain `extern "C" fn` that stores to an atomic, which is async-signal-safe.
            unsafe { libc::pthread_atfork(None, None, Some(forget_own_token_in_child)) };
        });
        let pid = crate::process::pid();
        // Our own /proc entry is always there; a start time of 0 (an unreadable /proc) still
        // gives a valid token, whose liveness is then judged by the pidfd alone.
        let start = start_time(pid).ok().flatten().map_or(0, |s| s.start_ticks);
        let token = Self::from_parts(pid, start);
        OWN_TOKEN.store(token.0, Ordering::Relaxed);
        token
    }

    /// The token of process `pid` that started `start_ticks` clock ticks after boot.
    pub fn from_parts(pid: u32, start_ticks: u64) -> ProcessToken {
        let tag = (start_ticks % u64::from(RETIRED_TAG)) as u32;
        ProcessToken((tag << PID_BITS) | (pid & PID_MASK))
    }

    /// The token of process `pid` now, if it exists.
    pub fn of_pid(pid: u32) -> Option<ProcessToken> {
        let stat = start_time(pid).ok().flatten()?;
        Some(Self::from_parts(pid, stat.start_ticks))
    }

    /// A value that names `pid` but is nobody's token: a lock records with it that its holder
    /// `pid` died and what the lock guards could not be repaired.
    pub fn retired(pid: u32) -> ProcessToken {
        ProcessToken((RETIRED_TAG << PID_BITS) | (pid & PID_MASK))
    }

    /// A token as stored (the low [`TOKEN_BITS`] bits of a word; the rest is ignored).
    #[inline]
    pub fn from_raw(raw: u32) -> ProcessToken {
        ProcessToken(raw & ((1 << TOKEN_BITS) - 1))
    }

    /// The token as stored: never 0 for a process (ids start at 1), below `1 << TOKEN_BITS`.
    #[inline]
    pub fn raw(self) -> u32 {
        self.0
    }

    /// The process id.
    #[inline]
    pub fn pid(self) -> u32 {
        self.0 & PID_MASK
    }

    /// Whether this is a [`ProcessToken::retired`] value.
    #[inline]
    pub fn is_retired(self) -> bool {
        self.0 >> PID_BITS == RETIRED_TAG
    }

    /// Whether the process this token names is still running (see the module docs). A retired
    /// token names nobody alive.
    pub fn is_alive(self) -> bool {
        if self.is_retired() || self.pid() == 0 {
            return false;
        }
        let pid = self.pid();
        let Some(raw_pid) = rustix::process::Pid::from_raw(pid as i32) else {
            return false;
        };
        // Opened before the start time is read, the pidfd pins the process the id names then:
        // if that is already a newcomer, its start time says so below.
        let pidfd = match rustix::process::pidfd_open(raw_pid, rustix::process::PidfdFlags::empty())
        {
            Ok(fd) => Some(fd),
            Err(Errno::SRCH) => return false,
            Err(_) => None,
        };
        let stat = start_time(pid);
        if let Ok(Some(facts)) = &stat {
            if Self::from_parts(pid, facts.start_ticks) != self {
                return false;
            }
        }
        match (pidfd, stat) {
            // The pidfd has the last word; a `/proc` that hides other users' processes
            // (`hidepid`) only means the start tag cannot be checked.
            (Some(fd), _) => !thread_group_exited(fd.as_fd()),
            (None, Ok(Some(facts))) => !matches!(facts.state, 'Z' | 'X' | 'x'),
            (None, Ok(None)) => false,
            // Nothing could be read: never declare a holder dead on no evidence.
            (None, Err(_)) => true,
        }
    }
}

/// What `/proc/<pid>/stat` says that tokens need.
#[derive(Debug, Clone, Copy)]
struct StatFacts {
    state: char,
    start_ticks: u64,
}

/// The state letter and start time of process `pid`: `Ok(None)` when it does not exist, `Err`
/// when `/proc` cannot say.
fn start_time(pid: u32) -> std::io::Result<Option<StatFacts>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    parse_stat(&text)
        .map(Some)
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/stat: unexpected format")))
}

/// Field 3 (state) and field 22 (start time) of a `stat` line. The command name (field 2) is
/// in parentheses and may itself hold spaces and parentheses, so the fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<StatFacts> {
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4..=21 lie between the state and the start time.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(StatFacts { state, start_ticks })
}

/// Whether the process of `pidfd` has ended, all its threads (a pidfd becomes readable then,
/// reaped or not).
fn thread_group_exited(pidfd: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    loop {
        match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())) {
            Ok(n) => return n > 0 && fds[0].revents().contains(PollFlags::IN),
            Err(Errno::INTR) => continue,
            // Cannot tell: not exited, the safe answer.
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_holds_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let facts = parse_stat(line).unwrap();
        assert_eq!(facts.state, 'S');
        assert_eq!(facts.start_ticks, 987654);
    }

    #[test]
    fn own_token_names_this_process_and_it_is_alive() {
        let me = ProcessToken::own();
        assert_eq!(me.pid(), crate::process::pid());
        assert!(!me.is_retired());
        assert!(me.is_alive());
        assert_eq!(ProcessToken::of_pid(me.pid()), Some(me));
    }

    #[test]
    fn a_token_with_another_start_tag_is_not_alive() {
        let me = ProcessToken::own();
        let start = start_time(me.pid()).unwrap().unwrap().start_ticks;
        let stranger = ProcessToken::from_parts(me.pid(), start + 1);
        assert_ne!(stranger, me);
        assert!(
            !stranger.is_alive(),
            "a reused id must not pass for the holder"
        );
    }

    #[test]
    fn retired_tokens_name_their_process_and_are_nobodys() {
        let r = ProcessToken::retired(1234);
        assert!(r.is_retired());
        assert_eq!(r.pid(), 1234);
        assert!(!r.is_alive());
        assert!(!ProcessToken::own().is_retired());
        assert_eq!(ProcessToken::from_raw(r.raw() | 1 << 31), r);
    }

    #[test]
    fn an_exited_unreaped_child_is_dead_and_a_running_one_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep(1) runs");
        let token = ProcessToken::of_pid(child.id()).expect("the child exists");
        assert!(token.is_alive());
        child.kill().unwrap();
        // Not reaped yet: a zombie, whose /proc entry and id still exist.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while token.is_alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "a killed child still counts as alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(std::path::Path::new(&format!("/proc/{}", child.id())).exists());
        child.wait().unwrap();
        assert!(!token.is_alive());
    }
}
