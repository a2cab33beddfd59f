//! `ChildTest` against real child processes: lines both ways, and time limits that fail a
//! hanging child's test with what it printed, the child killed.

use std::time::{Duration, Instant};

use dpmem_testkit::ChildTest;

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
    let failure = std::panic::catch_unwind(|| {
        let mut child = spawn("hanging_body");
        // Started first (a loaded machine may take a while), then the wait that gives up.
        child.wait_for_line("started, now waiting", Duration::from_secs(30));
        child.wait_for_line("never printed", Duration::from_secs(1));
    })
    .expect_err("the wait gave up");
    assert!(start.elapsed() < Duration::from_secs(20));
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
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
    let failure = std::panic::catch_unwind(|| {
        let mut child = spawn("hanging_body");
        child.wait_for_line("started, now waiting", Duration::from_secs(30));
        child.assert_passed_keeping(Duration::from_millis(300), Shared)
    })
    .expect_err("the child ran over");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
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

#[test]
fn a_failing_child_is_reported_with_its_output() {
    let failure = std::panic::catch_unwind(|| {
        dpmem_testkit::run_ignored_test_in_child(
            &std::env::current_exe().unwrap(),
            "failing_body",
            |_| {},
        )
    })
    .expect_err("the child failed");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("failed"), "{message}");
    assert!(message.contains("the reason it gives"), "{message}");
}

#[test]
#[ignore = "run by a_failing_child_is_reported_with_its_output"]
fn failing_body() {
    panic!("the reason it gives");
}
