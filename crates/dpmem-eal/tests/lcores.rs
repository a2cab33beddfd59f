//! Lcores and threads: the lcore table (on a fake machine with the CPUs of DPDK's documented
//! `--lcores` example), real pinning on CPUs 0 and 1, launch and wait, thread registration,
//! thread affinity, control threads, huge worker stacks, several EALs in one thread, TSC.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::mpsc;

use common::{args, unique_prefix};
use dpmem_eal::lcore::{self, tsc, LcoreError, LcoreRole, MainLcore, LCORE_ID_ANY};
use dpmem_eal::options::EalOptions;
use dpmem_eal::{Eal, EalError, EalSettings, ErrorKind, Socket};
use dpmem_sys::root::SysRoot;

fn set(ids: &[u32]) -> BTreeSet<u32> {
    ids.iter().copied().collect()
}

fn write(root: &Path, path: &str, text: &str) {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

/// A fake machine with CPUs 0-8 on two nodes: even CPUs on node 0, odd CPUs on node 1.
fn nine_cpu_machine(root: &Path) {
    write(root, "/sys/devices/system/cpu/present", "0-8\n");
    for cpu in 0..9 {
        let node = cpu % 2;
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}");
        write(
            root,
            &format!("{dir}/topology/core_id"),
            &format!("{}\n", cpu / 2),
        );
        write(
            root,
            &format!("{dir}/topology/physical_package_id"),
            &format!("{node}\n"),
        );
        write(root, &format!("{dir}/node{node}/.keep"), "");
    }
    write(
        root,
        "/proc/meminfo",
        "MemTotal: 1000 kB\nHugepagesize: 2048 kB\n",
    );
    write(root, "/proc/mounts", "proc /proc proc rw 0 0\n");
}

fn init_fake(root: &Path, extra: &[&str]) -> Result<Eal, EalError> {
    let prefix = unique_prefix("lcore_fake");
    let mut all = vec!["--no-huge", "-m", "4", "--file-prefix", &prefix];
    all.extend_from_slice(extra);
    let (options, _) = EalOptions::parse(args(&all))?;
    Eal::init_with(
        options,
        EalSettings {
            sys_root: SysRoot::at(root),
            ..EalSettings::default()
        },
    )
}

fn init_host(extra: &[&str]) -> Result<Eal, EalError> {
    let prefix = unique_prefix("lcore_host");
    let mut all = vec!["--no-huge", "-m", "4", "--file-prefix", &prefix];
    all.extend_from_slice(extra);
    Eal::init(args(&all))
}

/// CPUs 0 and 1, when this process may use both; tests that pin for real need them.
fn two_cpus(test: &str) -> bool {
    let allowed = dpmem_sys::thread::current_affinity().unwrap();
    let ok = allowed.contains(&0) && allowed.contains(&1);
    if !ok {
        eprintln!("skipped {test}: CPUs 0 and 1 are not both usable (affinity {allowed:?})");
    }
    ok
}

#[test]
fn documented_lcores_example_gives_nine_lcores_with_their_cpu_sets_and_sockets() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let eal = init_fake(tmp.path(), &["--lcores", "1,2@(5-7),(3-5)@(0,2),(0,6),7-8"]).unwrap();
    let threads = eal.lcore_threads();
    let expected: Vec<(u32, BTreeSet<u32>, Socket)> = vec![
        (0, set(&[0, 6]), Socket::Node(0)),
        (1, set(&[1]), Socket::Node(1)),
        (2, set(&[5, 6, 7]), Socket::Any),
        (3, set(&[0, 2]), Socket::Node(0)),
        (4, set(&[0, 2]), Socket::Node(0)),
        (5, set(&[0, 2]), Socket::Node(0)),
        (6, set(&[0, 6]), Socket::Node(0)),
        (7, set(&[7]), Socket::Node(1)),
        (8, set(&[8]), Socket::Node(0)),
    ];
    let table = threads.table();
    assert_eq!(table.len(), 9);
    for (info, (lcore, cpus, socket)) in table.iter().zip(&expected) {
        assert_eq!(info.lcore_id, *lcore);
        assert_eq!(&info.cpus, cpus, "lcore {lcore}");
        assert_eq!(info.socket, *socket, "lcore {lcore}");
        assert_eq!(info.cpu_id, *cpus.iter().next().unwrap());
        let role = if *lcore == 0 {
            LcoreRole::Main
        } else {
            LcoreRole::Worker
        };
        assert_eq!(info.role, role);
        assert_eq!(threads.role(*lcore), role);
        assert_eq!(threads.lcore_socket(*lcore), Some(*socket));
    }
    assert_eq!(threads.lcore_count(), 9);
    assert_eq!(threads.main_lcore(), 0);
    assert_eq!(threads.role(9), LcoreRole::Off);
    assert_eq!(threads.lcore_socket(9), None);
    assert_eq!(
        threads.worker_ids().collect::<Vec<_>>(),
        (1..9).collect::<Vec<_>>()
    );
    // Each worker thread runs and knows its lcore and socket (not pinned: the CPUs are fake).
    for (lcore, _, socket) in &expected[1..] {
        let seen = threads
            .remote_launch(*lcore, || {
                (
                    lcore::lcore_id(),
                    lcore::socket_id(),
                    lcore::thread_affinity(),
                )
            })
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(seen.0, *lcore);
        assert_eq!(seen.1, *socket);
        assert_eq!(seen.2, expected[*lcore as usize].1);
    }
}

#[test]
fn next_lcore_skips_main_and_wraps() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let eal = init_fake(tmp.path(), &["-l", "1,3,6", "--main-lcore", "3"]).unwrap();
    let t = eal.lcore_threads();
    assert_eq!(t.next_lcore(None, false, false), Some(1));
    assert_eq!(t.next_lcore(Some(1), false, false), Some(3));
    assert_eq!(t.next_lcore(Some(1), true, false), Some(6));
    assert_eq!(t.next_lcore(Some(6), false, false), None);
    assert_eq!(t.next_lcore(Some(6), false, true), Some(1));
    assert_eq!(t.next_lcore(Some(6), true, true), Some(1));
    assert_eq!(t.next_lcore(Some(1), true, true), Some(6));
    let mut walked = Vec::new();
    let mut at = None;
    while let Some(l) = t.next_lcore(at, true, false) {
        walked.push(l);
        at = Some(l);
    }
    assert_eq!(walked, vec![1, 6]);
    // Only the main lcore and skip_main: nothing, even when wrapping (DPDK loops forever).
    let only_main = init_fake(tmp.path(), &["-l", "2"]).unwrap();
    assert_eq!(only_main.lcore_threads().next_lcore(None, true, true), None);
    assert_eq!(
        only_main.lcore_threads().next_lcore(None, false, true),
        Some(2)
    );
}

#[test]
fn socket_ids_go_by_index() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let topology = dpmem_sys::cpu_topology::discover(&SysRoot::at(tmp.path())).unwrap();
    assert_eq!(topology.socket_count(), 2);
    assert_eq!(topology.socket_id_by_index(0), Some(0));
    assert_eq!(topology.socket_id_by_index(1), Some(1));
    assert_eq!(topology.socket_id_by_index(2), None);
    assert_eq!(topology.cpu(5).unwrap().node, 1);
}

#[test]
fn bad_lcore_input_is_refused_before_any_thread_starts() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    // DPDK's rejected forms are refused by the parser (options tests cover each); here the
    // EAL refuses sets naming CPUs the machine lacks, and a main lcore outside the set.
    for bad in [
        &["--lcores", "0@9"][..],
        &["--lcores", "0,1@(2,12)"],
        &["-l", "0-9"],
        &["-l", "0-2", "--main-lcore", "5"],
    ] {
        let err = init_fake(tmp.path(), bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Inval, "{bad:?}: {err}");
    }
    for bad in ["1,2@(5-7),(0-2)", "0-", "(1,2", "1@", "@1", "1,,2"] {
        assert!(
            EalOptions::parse(args(&["--lcores", bad])).is_err(),
            "--lcores {bad} accepted"
        );
    }
}

#[test]
fn cpus_outside_the_callers_affinity_are_refused() {
    if !two_cpus("cpus_outside_the_callers_affinity_are_refused") {
        return;
    }
    std::thread::spawn(|| {
        lcore::set_thread_affinity(&set(&[0])).unwrap();
        let err = init_host(&["-l", "0-1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
        assert!(err.to_string().contains("cpu 1"), "{err}");
        // The default lcore set is the caller's CPUs: just lcore 0, no worker.
        let eal = init_host(&[]).unwrap();
        assert_eq!(eal.lcore_threads().lcore_ids().collect::<Vec<_>>(), vec![0]);
    })
    .join()
    .unwrap();
}

#[test]
fn workers_are_pinned_to_their_cpu_sets() {
    if !two_cpus("workers_are_pinned_to_their_cpu_sets") {
        return;
    }
    std::thread::spawn(|| {
        let eal = init_host(&["-l", "0-1"]).unwrap();
        let t = eal.lcore_threads();
        let (affinity, cpu, lcore_id, socket) = t
            .remote_launch(1, || {
                (
                    dpmem_sys::thread::current_affinity().unwrap(),
                    dpmem_sys::thread::current_cpu(),
                    lcore::lcore_id(),
                    lcore::socket_id(),
                )
            })
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(affinity, set(&[1]));
        assert_eq!(cpu, 1);
        assert_eq!(lcore_id, 1);
        assert_eq!(socket, t.lcore_socket(1).unwrap());
        // The calling thread became the main lcore, pinned to CPU 0.
        assert_eq!(lcore::lcore_id(), 0);
        assert_eq!(t.current_lcore_id(), 0);
        assert_eq!(dpmem_sys::thread::current_affinity().unwrap(), set(&[0]));
        assert_eq!(dpmem_sys::thread::current_cpu(), 0);
        assert_eq!(lcore::thread_affinity(), set(&[0]));
        drop(eal);
        // Dropped on this thread: the original affinity comes back.
        assert_eq!(lcore::lcore_id(), LCORE_ID_ANY);
        assert!(dpmem_sys::thread::current_affinity()
            .unwrap()
            .is_superset(&set(&[0, 1])));
    })
    .join()
    .unwrap();
}

#[test]
fn launch_wait_results_busy_and_panics() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let eal = init_fake(tmp.path(), &["-l", "0-3"]).unwrap();
    let t = eal.lcore_threads();
    assert_eq!(t.remote_launch(2, || 6 * 7).unwrap().wait().unwrap(), 42);

    // Busy while running, and while the result waits to be collected.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let running = t
        .remote_launch(1, move || {
            release_rx.recv().unwrap();
            String::from("done")
        })
        .unwrap();
    let err = t.remote_launch(1, || ()).unwrap_err();
    assert!(matches!(err, LcoreError::Busy { lcore: 1, .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Busy);
    // All-worker launches refuse as a whole, leaving the idle workers idle.
    let err = t.mp_remote_launch(|l| l, MainLcore::Skip).unwrap_err();
    assert!(matches!(err, LcoreError::Busy { lcore: 1, .. }), "{err}");
    assert!(t.wait_lcore(2).unwrap().is_none(), "lcore 2 was launched");
    release_tx.send(()).unwrap();
    assert_eq!(running.wait().unwrap(), "done");
    assert!(t.wait_lcore(1).unwrap().is_none(), "collected already");

    // wait_lcore collects a result the launcher did not wait for.
    drop(t.remote_launch(3, || 7u64).unwrap());
    assert!(matches!(
        t.remote_launch(3, || 0u64),
        Err(LcoreError::Busy { .. })
    ));
    let value = t.wait_lcore(3).unwrap().unwrap();
    assert_eq!(*value.downcast::<u64>().unwrap(), 7);

    // Panics come back through wait, and the worker keeps serving.
    let err = t
        .remote_launch(2, || -> u32 { panic!("worker exploded") })
        .unwrap()
        .wait()
        .unwrap_err();
    match err {
        LcoreError::Panicked { lcore, message } => {
            assert_eq!(lcore, 2);
            assert_eq!(message, "worker exploded");
        }
        other => panic!("{other}"),
    }
    drop(t.remote_launch(2, || panic!("again")).unwrap());
    assert!(matches!(
        t.wait_lcore(2),
        Err(LcoreError::Panicked { lcore: 2, .. })
    ));
    assert_eq!(t.remote_launch(2, || 1).unwrap().wait().unwrap(), 1);

    // Bad targets.
    assert!(matches!(
        t.remote_launch(0, || ()),
        Err(LcoreError::MainLcore { lcore: 0 })
    ));
    assert!(matches!(
        t.remote_launch(4, || ()),
        Err(LcoreError::UnknownLcore { lcore: 4 })
    ));
    assert!(matches!(
        t.remote_launch(500, || ()),
        Err(LcoreError::UnknownLcore { .. })
    ));
    assert!(matches!(t.wait_lcore(0), Err(LcoreError::MainLcore { .. })));

    // All workers, with and without the main lcore.
    let results = t
        .mp_remote_launch(|l| l * 10, MainLcore::Call)
        .unwrap()
        .wait();
    let values: Vec<(u32, u32)> = results.into_iter().map(|(l, r)| (l, r.unwrap())).collect();
    assert_eq!(values, vec![(0, 0), (1, 10), (2, 20), (3, 30)]);
    drop(t.mp_remote_launch(|l| l + 1, MainLcore::Skip).unwrap());
    let waited = t.mp_wait_lcore();
    assert_eq!(waited.len(), 3);
    for (lcore, result) in waited {
        assert_eq!(
            *result.unwrap().unwrap().downcast::<u32>().unwrap(),
            lcore + 1
        );
    }
}

/// An EAL on the nine-CPU machine with workers 1 to 3, for the scoped-launch tests.
fn scope_eal(root: &Path) -> Eal {
    nine_cpu_machine(root);
    init_fake(root, &["-l", "0-3"]).unwrap()
}

/// Every worker of `t` takes a plain launch and runs it: none is left busy.
fn assert_every_worker_idle(t: &lcore::LcoreThreads) {
    for worker in t.worker_ids().collect::<Vec<_>>() {
        let got = t
            .remote_launch(worker, move || worker * 100)
            .unwrap_or_else(|e| panic!("lcore {worker} still busy: {e}"))
            .wait()
            .unwrap();
        assert_eq!(got, worker * 100);
    }
}

#[test]
fn scoped_work_borrows_locals_and_the_eal_and_join_returns_its_value() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    // Locals of this function, neither 'static nor leaked.
    let words: Vec<String> = ["alpha", "beta", "gamma"].map(String::from).to_vec();
    let mut appended = Vec::new();
    let (total, (lcore_seen, block_socket)) = t.scope(|s| {
        let counted = s
            .launch(1, || words.iter().map(String::len).sum::<usize>())
            .unwrap();
        assert_eq!(counted.lcore(), 1);
        // The EAL itself is borrowed: the worker allocates from its heap.
        let on_heap = s
            .launch(2, || {
                let heaps = eal.heaps();
                let block = heaps.malloc(64, 0).unwrap();
                // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
                let socket = unsafe { heaps.socket_of(block.as_ptr()) }.unwrap();
                // SAFETY: the block was allocated just above and is not used after this.
                unsafe { heaps.free(block) }.unwrap();
                (lcore::lcore_id(), socket)
            })
            .unwrap();
        // A mutable borrow, given back when the work is joined.
        s.launch(3, || appended.push(lcore::lcore_id()))
            .unwrap()
            .join()
            .unwrap();
        (counted.join().unwrap(), on_heap.join().unwrap())
    });
    assert_eq!(total, "alphabetagamma".len());
    assert_eq!(
        lcore_seen, 2,
        "the work ran on the lcore it was launched on"
    );
    assert_eq!(block_socket, Socket::Node(0));
    assert_eq!(appended, vec![3]);
    assert_eq!(words.len(), 3, "the borrowed local is still the caller's");
    assert_every_worker_idle(t);
}

#[test]
fn a_panic_in_scoped_work_comes_back_through_join() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    let (err, after) = t.scope(|s| {
        let err = s
            .launch(2, || -> u32 { panic!("scoped work exploded") })
            .unwrap()
            .join()
            .unwrap_err();
        // Joined: the lcore is free for more work within the same scope.
        let after = s.launch(2, || 9).unwrap().join().unwrap();
        (err, after)
    });
    assert_eq!(err.kind(), ErrorKind::Io);
    match err {
        LcoreError::Panicked { lcore, message } => {
            assert_eq!(lcore, 2);
            assert_eq!(message, "scoped work exploded");
        }
        other => panic!("expected a panic, got {other}"),
    }
    assert_eq!(after, 9);
    assert_every_worker_idle(t);
}

#[test]
fn the_scope_waits_for_work_nobody_joined() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    let finished = std::sync::atomic::AtomicBool::new(false);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let returned = t.scope(|s| {
        let finished = &finished;
        // Not joined: the handle is dropped at once.
        drop(
            s.launch(1, move || {
                go_rx.recv().unwrap();
                // Long enough that a scope which did not wait would be gone by now.
                std::thread::sleep(std::time::Duration::from_millis(200));
                finished.store(true, std::sync::atomic::Ordering::Release);
            })
            .unwrap(),
        );
        // The work starts only now, as the scope's closure ends.
        go_tx.send(()).unwrap();
        "closure's value"
    });
    assert!(
        finished.load(std::sync::atomic::Ordering::Acquire),
        "scope returned before the work it launched finished"
    );
    assert_eq!(returned, "closure's value");
    assert_every_worker_idle(t);
}

#[test]
fn the_scope_waits_for_work_that_scoped_work_launched_after_the_closure_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    let borrowed = String::from("borrowed by the inner launch");
    let inner_done = std::sync::atomic::AtomicBool::new(false);
    t.scope(|s| {
        let (borrowed, inner_done) = (&borrowed, &inner_done);
        drop(
            s.launch(1, move || {
                // Long enough that the scope's closure has returned and its first pass over
                // the launches has begun before this launches more.
                std::thread::sleep(std::time::Duration::from_millis(100));
                drop(
                    s.launch(2, move || {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        assert!(!borrowed.is_empty());
                        inner_done.store(true, std::sync::atomic::Ordering::Release);
                    })
                    .unwrap(),
                );
            })
            .unwrap(),
        );
    });
    assert!(
        inner_done.load(std::sync::atomic::Ordering::Acquire),
        "scope returned while work launched from scoped work still ran with its borrows"
    );
    assert_every_worker_idle(t);
}

#[test]
fn join_gives_the_value_even_when_a_plain_wait_collected_the_launch_first() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    let got = t.scope(|s| {
        let launch = s.launch(1, || 41 + 1).unwrap();
        // DPDK's wait on the lcore collects the outcome first (an untyped `()` here).
        assert!(t.wait_lcore(1).unwrap().is_some());
        launch.join()
    });
    assert_eq!(got.unwrap(), 42);
    assert_every_worker_idle(t);
}

#[test]
fn an_unjoined_panic_makes_the_scope_panic_once_all_work_is_done() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    let slow_done = std::sync::atomic::AtomicBool::new(false);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.scope(|s| {
            drop(s.launch(3, || panic!("nobody joined me")).unwrap());
            // Other work still running when the panic is found is waited for too.
            drop(
                s.launch(1, || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    slow_done.store(true, std::sync::atomic::Ordering::Release);
                })
                .unwrap(),
            );
        })
    }));
    let payload = caught.expect_err("an unjoined launch panicked: the scope must panic");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("nobody joined me"), "{message}");
    assert!(message.contains("lcore 3"), "{message}");
    assert!(slow_done.load(std::sync::atomic::Ordering::Acquire));
    assert_every_worker_idle(t);
}

#[test]
fn scoped_launches_on_busy_main_or_unknown_lcores_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let eal = scope_eal(tmp.path());
    let t = eal.lcore_threads();
    // Busy with a plain launch from outside the scope.
    let (outside_tx, outside_rx) = mpsc::channel::<()>();
    let outside = t
        .remote_launch(2, move || outside_rx.recv().unwrap())
        .unwrap();
    t.scope(|s| {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let running = s.launch(1, move || release_rx.recv().unwrap()).unwrap();
        for (busy, other) in [(1, "scoped"), (2, "plain")] {
            let err = s.launch(busy, || ()).unwrap_err();
            assert!(
                matches!(err, LcoreError::Busy { lcore, .. } if lcore == busy),
                "{other} work: {err}"
            );
            assert_eq!(err.kind(), ErrorKind::Busy);
        }
        // A scoped launch keeps its lcore from plain launches as well.
        let err = t.remote_launch(1, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
        let err = s.launch(0, || ()).unwrap_err();
        assert!(matches!(err, LcoreError::MainLcore { lcore: 0 }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Inval);
        for unknown in [4, 500] {
            let err = s.launch(unknown, || ()).unwrap_err();
            assert!(
                matches!(err, LcoreError::UnknownLcore { lcore } if lcore == unknown),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::Inval);
        }
        // The refusals launched nothing: lcore 3 is idle and takes work.
        assert_eq!(s.launch(3, || 3).unwrap().join().unwrap(), 3);
        release_tx.send(()).unwrap();
        running.join().unwrap();
    });
    outside_tx.send(()).unwrap();
    outside.wait().unwrap();
    assert_every_worker_idle(t);
}

#[test]
fn non_eal_threads_register_and_unregister() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let eal = init_fake(tmp.path(), &["-l", "0,2"]).unwrap();
    let t = eal.lcore_threads();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                assert_eq!(lcore::lcore_id(), LCORE_ID_ANY);
                assert_eq!(t.current_lcore_id(), LCORE_ID_ANY);
                assert!(matches!(
                    t.unregister_thread(),
                    Err(LcoreError::NotRegistered)
                ));
                for _ in 0..100 {
                    let id = t.register_thread().unwrap();
                    assert_eq!(id, 1, "the lowest id no lcore uses");
                    assert_eq!(lcore::lcore_id(), 1);
                    assert_eq!(t.current_lcore_id(), 1);
                    assert_eq!(t.role(1), LcoreRole::NonEal);
                    assert!(matches!(
                        t.register_thread(),
                        Err(LcoreError::AlreadyRegistered { lcore: 1 })
                    ));
                    assert!(t
                        .table()
                        .iter()
                        .any(|i| i.lcore_id == 1 && i.role == LcoreRole::NonEal));
                    assert_eq!(t.unregister_thread().unwrap(), 1);
                    assert_eq!(lcore::lcore_id(), LCORE_ID_ANY);
                    assert_eq!(t.role(1), LcoreRole::Off);
                }
                // Registered threads are not lcores launch can target, nor counted.
                t.register_thread().unwrap();
                assert_eq!(t.lcore_count(), 2);
            })
            .join()
            .unwrap();
    });
    // The thread ended registered: its id came back.
    assert_eq!(t.role(1), LcoreRole::Off);
}

#[test]
fn registering_fails_when_every_lcore_id_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    let eal = init_fake(tmp.path(), &["-l", "0-1"]).unwrap();
    let t = eal.lcore_threads();
    let free = dpmem_eal::options::MAX_LCORE as usize - 2;
    let barrier = std::sync::Barrier::new(free + 1);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_rx = std::sync::Mutex::new(done_rx);
    std::thread::scope(|scope| {
        for _ in 0..free {
            scope.spawn(|| {
                let id = t.register_thread().unwrap();
                assert!(id >= 2);
                barrier.wait();
                // Stay registered until the main test has seen the table full.
                let _ = done_rx.lock().unwrap().recv();
            });
        }
        barrier.wait();
        let err = scope
            .spawn(|| t.register_thread().unwrap_err())
            .join()
            .unwrap();
        assert!(matches!(err, LcoreError::NoFreeLcore { max: 128 }), "{err}");
        assert_eq!(err.kind(), ErrorKind::NoMem);
        drop(done_tx);
    });
    // Every thread ended without unregistering; their ids come back as each thread's
    // thread-locals are destroyed, which may finish just after the scope has joined them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lowest_free = loop {
        let id = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let id = t.register_thread().unwrap();
                    t.unregister_thread().unwrap();
                    id
                })
                .join()
                .unwrap()
        });
        if id == 2 || std::time::Instant::now() > deadline {
            break id;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(lowest_free, 2);
}

#[test]
fn thread_affinity_updates_cpu_set_and_socket() {
    if !two_cpus("thread_affinity_updates_cpu_set_and_socket") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    nine_cpu_machine(tmp.path());
    // A worker of the fake machine: CPUs 0 and 1 are on different nodes there.
    let eal = init_fake(tmp.path(), &["-l", "0-1"]).unwrap();
    let sockets = eal
        .lcore_threads()
        .remote_launch(1, || {
            let mut seen = Vec::new();
            for cpus in [set(&[0]), set(&[1]), set(&[0, 1])] {
                lcore::set_thread_affinity(&cpus).unwrap();
                assert_eq!(lcore::thread_affinity(), cpus);
                assert_eq!(dpmem_sys::thread::current_affinity().unwrap(), cpus);
                seen.push(lcore::socket_id());
            }
            assert!(matches!(
                lcore::set_thread_affinity(&BTreeSet::new()),
                Err(LcoreError::EmptyCpuSet)
            ));
            seen
        })
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(sockets, vec![Socket::Node(0), Socket::Node(1), Socket::Any]);
    // A plain thread uses the host's topology.
    std::thread::spawn(|| {
        assert_eq!(lcore::socket_id(), Socket::Any, "never restricted");
        lcore::set_thread_affinity(&set(&[1])).unwrap();
        assert_eq!(dpmem_sys::thread::current_cpu(), 1);
        let host = dpmem_sys::cpu_topology::discover(&SysRoot::host()).unwrap();
        assert_eq!(lcore::socket_id(), Socket::Node(host.cpu(1).unwrap().node));
        assert_eq!(lcore::lcore_id(), LCORE_ID_ANY);
    })
    .join()
    .unwrap();
}

#[test]
fn control_threads_avoid_data_plane_cpus() {
    if !two_cpus("control_threads_avoid_data_plane_cpus") {
        return;
    }
    std::thread::spawn(|| {
        let original = dpmem_sys::thread::current_affinity().unwrap();
        // Lcore 1 only: control threads get the rest of the original CPUs.
        let eal = init_host(&["-l", "1"]).unwrap();
        let expected: BTreeSet<u32> = original.iter().copied().filter(|&c| c != 1).collect();
        assert_eq!(eal.lcore_threads().control_cpus(), expected);
        let seen = eal
            .lcore_threads()
            .create_control_thread("dpmem-ctrl", || {
                (
                    dpmem_sys::thread::current_affinity().unwrap(),
                    lcore::lcore_id(),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(seen, (expected, LCORE_ID_ANY));
        drop(eal);
        if original != set(&[0, 1]) {
            return;
        }
        // Lcores cover every CPU: control threads share the main lcore's.
        let eal = init_host(&["-l", "0-1", "--main-lcore", "1"]).unwrap();
        assert_eq!(eal.lcore_threads().control_cpus(), set(&[1]));
        let seen = eal
            .lcore_threads()
            .create_control_thread("dpmem-ctrl", || {
                dpmem_sys::thread::current_affinity().unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(seen, set(&[1]));
    })
    .join()
    .unwrap();
}

#[test]
fn several_eals_on_one_thread_each_know_its_lcore() {
    if !two_cpus("several_eals_on_one_thread_each_know_its_lcore") {
        return;
    }
    std::thread::spawn(|| {
        let original = dpmem_sys::thread::current_affinity().unwrap();
        let a = init_host(&["-l", "0-1"]).unwrap();
        // The second EAL sees the CPUs the thread had before the first pinned it.
        let b = init_host(&["-l", "0-1", "--main-lcore", "1"]).unwrap();
        assert_eq!(lcore::lcore_id(), 1, "the newest EAL answers");
        assert_eq!(a.lcore_threads().current_lcore_id(), 0);
        assert_eq!(b.lcore_threads().current_lcore_id(), 1);
        assert_eq!(dpmem_sys::thread::current_affinity().unwrap(), set(&[1]));
        // Workers answer for their own EAL.
        let in_a = a
            .lcore_threads()
            .remote_launch(1, lcore::lcore_id)
            .unwrap()
            .wait()
            .unwrap();
        let in_b = b
            .lcore_threads()
            .remote_launch(0, lcore::lcore_id)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!((in_a, in_b), (1, 0));
        drop(b);
        assert_eq!(lcore::lcore_id(), 0);
        assert_eq!(dpmem_sys::thread::current_affinity().unwrap(), set(&[0]));
        // Dropped on another thread: this thread's binding dies with it all the same.
        std::thread::spawn(move || drop(a)).join().unwrap();
        assert_eq!(lcore::lcore_id(), LCORE_ID_ANY);
        let _ = original;
    })
    .join()
    .unwrap();
}

#[test]
fn huge_worker_stack_lives_in_a_memseg_on_the_workers_socket() {
    // Refused without hugepages (an option rule).
    let err = init_host(&["--huge-worker-stack"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    if !two_cpus("huge_worker_stack_lives_in_a_memseg") {
        return;
    }
    if !common::hugepages_available("huge_worker_stack_lives_in_a_memseg", 16) {
        return;
    }
    let _serial = common::hugepage_lock();
    std::thread::spawn(|| {
        for (flag, pages) in [
            ("--huge-worker-stack=100".to_string(), 1),
            (
                "--huge-worker-stack".to_string(),
                dpmem_sys::thread::default_stack_size().div_ceil(2 << 20),
            ),
        ] {
            let prefix = unique_prefix("huge_stack");
            let eal = Eal::init(args(&["-l", "0-1", "--file-prefix", &prefix, &flag])).unwrap();
            let t = eal.lcore_threads();
            let local_addr = t
                .remote_launch(1, || {
                    let local = 0u64;
                    std::hint::black_box(&local) as *const u64 as usize
                })
                .unwrap()
                .wait()
                .unwrap();
            let seg = eal
                .memory()
                .virt_to_memseg(local_addr)
                .expect("the worker's stack is hugepage memory");
            assert_eq!(seg.socket(), t.lcore_socket(1).unwrap());
            let stack = t.worker_stack(1).unwrap();
            let list = eal.memory().virt_to_list(stack).unwrap();
            let base_seg = eal.memory().virt_to_memseg(stack).unwrap();
            assert_eq!(base_seg.va(), stack);
            assert!(local_addr >= stack && local_addr < stack + pages * list.page_size as usize);
            drop(eal);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn tsc_advances_and_has_one_frequency() {
    let a = tsc::rdtsc_precise();
    let mut b = tsc::rdtsc();
    while b == a {
        tsc::pause();
        b = tsc::rdtsc();
    }
    assert!(tsc::rdtsc_precise() >= a);
    let f = tsc::tsc_frequency();
    assert!(f.hz > 0);
    assert_eq!(tsc::tsc_hz(), f.hz, "found once");
    assert!(tsc::calibrate(std::time::Duration::from_micros(200), 1) > 0);
}
