//! No leaked threads (workers, the telemetry server, the inter-process channel): many EALs started and stopped one after
//! another and side by side, and failed starts (bad CPU sets, a huge worker stack that does not fit after the first worker
//! started) leave the thread count where it was.
//!
//! One test alone in its binary, so nothing else starts threads while it counts them.

mod common;

use common::{args, unique_prefix};
use dpmem_eal::{Eal, ErrorKind};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn init(extra: &[&str]) -> Result<Eal, dpmem_eal::EalError> {
    let prefix = unique_prefix("lifecycle");
    let mut all = vec!["--file-prefix", &prefix];
    all.extend_from_slice(extra);
    Eal::init(args(&all))
}

#[test]
fn eal_threads_never_outlive_their_eal() {
    let before = thread_count();
    for _ in 0..20 {
        let eal = init(&["--no-huge", "-m", "4"]).unwrap();
        let workers = eal.lcore_threads().worker_ids().count();
        // And the control threads: the telemetry server's and the inter-process channel's.
        let server = usize::from(eal.telemetry_socket().is_some());
        let channel = usize::from(eal.ipc().is_ok());
        assert_eq!((server, channel), (1, 1));
        assert_eq!(thread_count(), before + workers + server + channel);
    }
    assert_eq!(thread_count(), before);

    // Joined explicitly: the end of a scope only waits for the closures to return, not for
    // the threads to be gone from /proc/self/task.
    std::thread::scope(|scope| {
        let side_by_side: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..5 {
                        let eal = init(&["--no-huge", "-m", "4"]).unwrap();
                        let t = eal.lcore_threads();
                        for lcore in t.worker_ids().collect::<Vec<_>>() {
                            assert_eq!(
                                t.remote_launch(lcore, move || lcore)
                                    .unwrap()
                                    .wait()
                                    .unwrap(),
                                lcore
                            );
                        }
                    }
                })
            })
            .collect();
        for thread in side_by_side {
            thread.join().unwrap();
        }
    });
    assert_eq!(thread_count(), before);

    let err = init(&["--no-huge", "-m", "4", "--lcores", "0@1000"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert_eq!(thread_count(), before);

    // Two workers on CPU 1; the second one's stack cannot be had once the first has taken
    // more than half of the free hugepages: start-up fails after one worker started.
    let allowed = dpmem_sys::thread::current_affinity().unwrap();
    if !allowed.contains(&0) || !allowed.contains(&1) {
        eprintln!("skipped the huge-stack failure: CPUs 0 and 1 are not both usable");
        return;
    }
    if !common::hugepages_available("eal_threads_never_outlive_their_eal", 8) {
        return;
    }
    let _serial = common::hugepage_lock();
    let free = common::free_2m();
    let stack_pages = free / 2 + 1;
    let stack_kb = format!("--huge-worker-stack={}", stack_pages * 2048);
    let err = init(&["--lcores", "0@0,1@1,2@1", &stack_kb]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert!(err.to_string().contains("worker lcore 2"), "{err}");
    assert_eq!(thread_count(), before);
    assert_eq!(
        common::free_2m(),
        free,
        "the first worker's stack went back"
    );
}
