//! What the integration tests of the dpmem crates share.
//!
//! - **The hugepage gate** ([`hugepages_available`]): a hugepage test runs when the machine
//!   can give it 2 MiB pages (root, a hugetlbfs mount, enough free pages) and otherwise skips
//!   with a printed reason — unless `DPMEM_REQUIRE_HUGEPAGES=1` (CI), which makes a missing
//!   prerequisite a failure, so that hugepage tests cannot silently skip there.
//! - **Child-process tests** ([`ignored_test_command`], [`run_ignored_test_in_child`],
//!   [`ChildTest`]): a test re-runs its own binary to run one `#[ignore]`d test as a real
//!   second process (a secondary, another user). Every wait on a child has a time limit: a
//!   child that hangs (a deadlock in a secondary is what these tests look for) fails its test
//!   with what it printed, rather than the whole run. A parent test still running
//!   [`PARENT_WATCHDOG`] after it started a child — blocked, say, on a lock the child died
//!   holding, which no time limit of a wait on the child covers, often while dropping its EAL
//!   after the child's test failed — is aborted with a message naming the child, every child
//!   it still has killed first: the test binary fails instead of hanging the whole run.
//! - **Seeded choices** ([`seeded`]): the xorshift generator and environment settings of the
//!   tests that kill processes at random moments.
//! - **Telemetry clients** ([`telemetry_client`]): one of the tests' own on a telemetry
//!   socket, and DPDK's `dpdk-telemetry.py`, which `DPMEM_REQUIRE_TELEMETRY_CLIENT=1` (CI)
//!   requires instead of skipping without it.

pub mod seeded;
pub mod telemetry_client;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dpmem_sys::process::ProcessHandle;

/// How long a test may go on once it has started a [`ChildTest`] (until its thread ends, so
/// the drop of what it shared with the child counts), unless `DPMEM_CHILD_TEST_WATCHDOG_SECS`
/// says otherwise: far more than any of these tests takes, far less than a CI run's limit.
pub const PARENT_WATCHDOG: Duration = Duration::from_secs(300);

/// Bytes of the hugepages the tests use.
pub const PAGE_2M: u64 = 2 << 20;

/// Free 2 MiB hugepages right now.
pub fn free_2m() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The hugetlbfs mount for 2 MiB pages.
pub fn mount_2m() -> Option<PathBuf> {
    let mounts = dpmem_sys::mounts::hugetlbfs_mounts(&dpmem_sys::root::SysRoot::host()).ok()?;
    mounts
        .into_iter()
        .find(|m| m.page_size == PAGE_2M)
        .map(|m| m.mount_point)
}

/// Whether the machine can run hugepage test `test`, which needs `pages` free 2 MiB pages
/// and a mount. Prints why not and returns false, unless `DPMEM_REQUIRE_HUGEPAGES=1`, which
/// makes a missing prerequisite a failure.
pub fn hugepages_available(test: &str, pages: u64) -> bool {
    let reason = if !dpmem_sys::process::is_root() {
        Some("not root (hugetlbfs files need write access to the mount)".to_string())
    } else if mount_2m().is_none() {
        Some("no hugetlbfs mount for 2 MiB pages".to_string())
    } else if free_2m() < pages {
        Some(format!(
            "only {} free 2 MiB hugepages, {pages} needed",
            free_2m()
        ))
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) => {
            if std::env::var("DPMEM_REQUIRE_HUGEPAGES").as_deref() == Ok("1") {
                panic!("{test}: hugepages required (DPMEM_REQUIRE_HUGEPAGES=1) but {reason}");
            }
            eprintln!("skipped {test}: {reason}");
            false
        }
    }
}

/// A command that runs only the `#[ignore]`d test `name` of the test binary `exe`, with its
/// output uncaptured (so a child can talk to its parent over stdout).
pub fn ignored_test_command(exe: &Path, name: &str) -> Command {
    let mut command = Command::new(exe);
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// How long [`run_ignored_test_in_child`] lets a child run.
pub const CHILD_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs the `#[ignore]`d test `name` of the test binary `exe` in a child process, after
/// `configure` has set its environment. Asserts that it ran and passed within
/// [`CHILD_TIME_LIMIT`], and returns what it printed.
pub fn run_ignored_test_in_child(
    exe: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> String {
    let mut child = ChildTest::spawn(exe, name, configure);
    child.assert_passed(CHILD_TIME_LIMIT)
}

/// An `#[ignore]`d test of this binary running as a child process that the parent talks to:
/// lines to its stdin, and its stdout and stderr read line by line, with time limits.
#[derive(Debug)]
pub struct ChildTest {
    name: String,
    child: Child,
    to_child: Option<ChildStdin>,
    /// Lines from the child's stdout and stderr, read by a thread each so that a wait for
    /// a line can give up.
    lines: Receiver<String>,
    /// Every line received so far, for failure messages.
    transcript: String,
    /// This child's entry in [`LIVE_CHILDREN`], taken out when the `ChildTest` drops.
    live_id: u64,
}

/// Children of [`ChildTest`]s not dropped yet, by id: a watchdog kills them all before it aborts
/// the process, so no test's child outlives the binary holding hugepages or shared memory.
static LIVE_CHILDREN: Mutex<BTreeMap<u64, ProcessHandle>> = Mutex::new(BTreeMap::new());

thread_local! {
    /// The cancel ends of the watchdogs of the child tests this thread started: dropped when
    /// the thread ends (libtest runs each test on a thread of its own), after every local of
    /// the test, so a test blocked in a drop is still watched.
    static WATCHDOGS: RefCell<Vec<mpsc::Sender<()>>> = const { RefCell::new(Vec::new()) };
}

impl ChildTest {
    /// Starts the `#[ignore]`d test `name` of test binary `exe`, after `configure` has set its
    /// environment.
    pub fn spawn(exe: &Path, name: &str, configure: impl FnOnce(&mut Command)) -> ChildTest {
        let mut command = ignored_test_command(exe, name);
        configure(&mut command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting child test {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        forward_lines(child.stdout.take().expect("piped"), tx.clone());
        forward_lines(child.stderr.take().expect("piped"), tx);
        let live_id = watch(name, &child);
        ChildTest {
            name: name.to_owned(),
            to_child: child.stdin.take(),
            live_id,
            child,
            lines,
            transcript: String::new(),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `line` to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let to_child = self.to_child.as_mut().expect("stdin is open");
        writeln!(to_child, "{line}")
            .unwrap_or_else(|e| panic!("writing to child test {}: {e}", self.name));
    }

    /// Waits until the child prints a line ending with `marker` (the harness prints `test
    /// <name> ... ` without a newline before the body's first line). Panics with what it
    /// printed when it ends first or takes longer than `limit`; a child still running is
    /// killed first.
    pub fn wait_for_line(&mut self, marker: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.ends_with(marker);
                    self.transcript.push_str(&line);
                    self.transcript.push('\n');
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    panic!(
                        "child test {} printed no {marker:?} within {limit:?}:\n{}",
                        self.name, self.transcript
                    );
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "child test {} ended before {marker:?}:\n{}",
                    self.name, self.transcript
                ),
            }
        }
    }

    /// The child's exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for child test {}: {e}", self.name))
    }

    /// Closes the child's stdin and waits for it to exit: its status, or `None` after
    /// killing it when it outlives `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        drop(self.to_child.take());
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the child printed so far (all of it once it has exited).
    pub fn transcript(&mut self) -> &str {
        // After an exit the reader threads reach the end of both pipes soon; a line still on
        // its way is waited for briefly, a child still running is not.
        let settle = if self.try_wait().is_some() {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        while let Ok(line) = self.lines.recv_timeout(settle) {
            self.transcript.push_str(&line);
            self.transcript.push('\n');
        }
        &self.transcript
    }

    /// Waits up to `limit` for the child, asserts that its test ran and passed, and returns
    /// what it printed.
    pub fn assert_passed(&mut self, limit: Duration) -> String {
        self.assert_passed_keeping(limit, ()).1
    }

    /// [`ChildTest::assert_passed`] for a parent that shares state with the child (its EAL,
    /// whose locks live in shared memory): `shared` comes back with what the child printed,
    /// unless the child ran over `limit`. Then it is leaked, not dropped, before the test
    /// fails: the killed child may have died holding locks that dropping it would wait for.
    pub fn assert_passed_keeping<T>(&mut self, limit: Duration, shared: T) -> (T, String) {
        let status = self.wait(limit);
        let name = self.name.clone();
        let text = self.transcript().to_owned();
        // On every failure the shared value is leaked: a child that hung, crashed or failed
        // may have died holding locks that dropping the value would wait for.
        let failure = match status {
            None => Some(format!(
                "child test {name} ran over {limit:?}, killed:\n{text}"
            )),
            Some(status) if !status.success() => Some(format!("child test {name} failed:\n{text}")),
            Some(_) if !text.contains("1 passed") => {
                Some(format!("child test {name} did not run:\n{text}"))
            }
            Some(_) => None,
        };
        if let Some(failure) = failure {
            std::mem::forget(shared);
            panic!("{failure}");
        }
        (shared, text)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildTest {
    /// A child left running by a failed test is killed, not left behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        live_children().remove(&self.live_id);
    }
}

fn live_children() -> std::sync::MutexGuard<'static, BTreeMap<u64, ProcessHandle>> {
    // A test that panicked while holding the lock left the map whole (inserts and removes
    // only), so its poison is ignored.
    LIVE_CHILDREN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers `child` (of child test `name`) in [`LIVE_CHILDREN`] and starts the watchdog of
/// the calling test: unless the thread ends within [`PARENT_WATCHDOG`] (or
/// `DPMEM_CHILD_TEST_WATCHDOG_SECS`), it kills every live child and aborts the process, saying
/// why on the real stderr (a test's `eprintln!` is captured, and lost with an abort). Returns
/// the child's id in the map.
fn watch(name: &str, child: &Child) -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let limit = match std::env::var("DPMEM_CHILD_TEST_WATCHDOG_SECS") {
        Err(_) => PARENT_WATCHDOG,
        Ok(v) => match v.parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => panic!(
                "DPMEM_CHILD_TEST_WATCHDOG_SECS={v:?}: want a whole number of seconds above 0"
            ),
        },
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let handle = ProcessHandle::open(child.id())
        .unwrap_or_else(|e| panic!("a handle on child test {name}: {e}"));
    live_children().insert(id, handle);
    let (cancel, cancelled) = mpsc::channel::<()>();
    WATCHDOGS.with(|w| w.borrow_mut().push(cancel));
    let name = name.to_owned();
    std::thread::spawn(move || {
        // Nothing is ever sent: the wait ends when the test's thread drops the sender, or
        // times out.
        if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: the test that started child test {name} is still running {limit:?} later \
                 (blocked on a lock the child died holding?); killing every child and aborting"
            );
            for child in live_children().values() {
                let _ = child.kill();
            }
            std::process::abort();
        }
    });
    id
}

/// Sends each line `from` gives to `to`, on a thread of its own, until the pipe ends.
fn forward_lines(from: impl Read + Send + 'static, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if to.send(line).is_err() {
                break;
            }
        }
    });
}
