//! `ChildTest` against real child processes: lines both ways, and time limits that fail a
//! hanging child's test with what it printed, the child killed.

use std::time::{Duration, Instant};

use dpmem_testkit::ChildTest;

/// Runs `f`, which must panic (`why` says why it should), and returns the panic's message.
fn panic_message_of<R>(why: &str, f: impl FnOnce() -> R) -> String {
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map(|_| ())
        .expect_err(why);
    failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

fn spawn(body: &str) -> ChildTest {
    ChildTest::spawn(&std::env::current_exe().unwrap(), body, |_| {})
}

#[test]
fn lines_go_both_ways_and_a_passing_child_passes() {
    let mut child = spawn("echo_body");
    child.wait_for_line("ready", Duration::from_secs(30));
    child.send("hello");
    child.wait_for_line("got hello", Duration::from_secs(30));
    let text = child.assert_passed(Duration::from_secs(30));
    assert!(text.contains("got hello"), "{text}");
}

#[test]
#[ignore = "run by lines_go_both_ways_and_a_passing_child_passes"]
fn echo_body() {
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("got {}", line.trim());
}

#[test]
fn a_hanging_child_fails_within_the_limit_and_is_killed() {
    let start = Instant::now();
    let message = panic_message_of("the wait gave up", || {
        let mut child = spawn("hanging_body");
        // Started first (a loaded machine may take a while), then the wait that gives up.
        child.wait_for_line("started, now waiting", Duration::from_secs(30));
        child.wait_for_line("never printed", Duration::from_secs(1));
    });
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(message.contains("within"), "{message}");
    assert!(
        message.contains("started, now waiting"),
        "the transcript: {message}"
    );

    let mut child = spawn("hanging_body");
    child.wait_for_line("started, now waiting", Duration::from_secs(30));
    assert_eq!(child.wait(Duration::from_millis(300)), None, "killed");
}

/// What the parent shares with a child that hangs is leaked, not dropped, when the test
/// fails (dropping an EAL would wait for locks the killed child may hold); with a child that
/// passes it comes back.
#[test]
fn shared_state_is_leaked_when_the_child_hangs_and_returned_when_it_passes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DROPPED: AtomicBool = AtomicBool::new(false);
    #[derive(Debug)]
    struct Shared;
    impl Drop for Shared {
        fn drop(&mut self) {
            DROPPED.store(true, Ordering::Relaxed);
        }
    }
    let message = panic_message_of("the child ran over", || {
        let mut child = spawn("hanging_body");
        child.wait_for_line("started, now waiting", Duration::from_secs(30));
        child.assert_passed_keeping(Duration::from_millis(300), Shared)
    });
    assert!(message.contains("ran over"), "{message}");
    assert!(!DROPPED.load(Ordering::Relaxed), "leaked, not dropped");

    let mut child = spawn("echo_body");
    child.wait_for_line("ready", Duration::from_secs(30));
    child.send("x");
    let (shared, text) = child.assert_passed_keeping(Duration::from_secs(30), Shared);
    assert!(text.contains("got x"), "{text}");
    drop(shared);
    assert!(DROPPED.load(Ordering::Relaxed), "handed back");
}

#[test]
#[ignore = "run by a_hanging_child_fails_within_the_limit_and_is_killed"]
fn hanging_body() {
    println!("started, now waiting");
    std::thread::sleep(Duration::from_secs(600));
}

/// A test still running past the watchdog's limit (here 3 s, as a test blocked on a lock its
/// killed child held would be for ever) is aborted with a message naming its child, on the real
/// stderr, and the child is killed first.
#[test]
fn a_parent_stuck_past_the_watchdog_is_aborted_and_its_child_killed() {
    use std::os::unix::process::ExitStatusExt;
    let mut parent = ChildTest::spawn(
        &std::env::current_exe().unwrap(),
        "stuck_parent_body",
        |c| {
            c.env("DPMEM_CHILD_TEST_WATCHDOG_SECS", "3");
        },
    );
    let status = parent
        .wait(Duration::from_secs(60))
        .expect("aborted well within a minute");
    assert_eq!(status.signal(), Some(6), "SIGABRT: {status:?}");
    let text = parent.transcript().to_owned();
    assert!(
        text.contains("watchdog: the test that started child test hanging_body"),
        "{text}"
    );
    let pid = text
        .lines()
        .find_map(|l| l.split("child pid ").nth(1))
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the parent printed its child's pid:\n{text}"));
    // Killed, then reaped by whoever inherited it: gone, or at most a zombie for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let running = state
            .as_deref()
            .and_then(|s| s.rsplit(')').next())
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'));
        if !running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "child {pid} still running: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "run by a_parent_stuck_past_the_watchdog_is_aborted_and_its_child_killed"]
fn stuck_parent_body() {
    // A second child, its `ChildTest` kept: the watchdog kills every live child, not only the
    // one whose test is stuck.
    let kept = spawn("hanging_body");
    println!("child pid {}", kept.pid());
    let dropped = spawn("hanging_body");
    // Dropped, as after a failed wait, then blocked for ever, as in the drop of an EAL whose
    // lock the child held: the watchdog still runs until this test's thread ends.
    drop(dropped);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_failing_child_is_reported_with_its_output() {
    let message = panic_message_of("the child failed", || {
        dpmem_testkit::run_ignored_test_in_child(
            &std::env::current_exe().unwrap(),
            "failing_body",
            |_| {},
        )
    });
    assert!(message.contains("failed"), "{message}");
    assert!(message.contains("the reason it gives"), "{message}");
}

#[test]
#[ignore = "run by a_failing_child_is_reported_with_its_output"]
fn failing_body() {
    panic!("the reason it gives");
}
