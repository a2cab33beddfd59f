//! No process can hang the others by dying, in every file-backed memory mode (one file per page,
//! `--single-file-segments`, `--legacy-mem`): a secondary (this test binary re-executed, with
//! `--proc-type=auto`) loops over heap allocations and frees, or memzone reservations and
//! frees, and is killed with SIGKILL at a random moment — often while it holds a heap's lock,
//! the memzone table's or the hotplug lock. After each kill the primary's next operation of the
//! same kind must complete within a second (taking over whatever lock the dead secondary held
//! and repairing what it protects), the heaps must pass their whole check, and every memzone
//! must be found by its name with its block still allocated. No structure may be given up.
//!
//! And a secondary whose primary is killed learns it from `Eal::primary_alive`.
//!
//! `DPMEM_KILL_RUNS` sets the number of kills (default 40 with a file per page and 12 in each
//! other mode, half of each kind; the proof runs 100); `DPMEM_KILL_SEED` another sequence of moments. The test prints how many locks the
//! primary took over and how many structures it had to give up.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::{lock_recovery, Eal, MemzoneFlags, Socket};
use dpmem_sys::process::ProcessHandle;
use dpmem_testkit::seeded::{env_number, XorShift};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_KILL_PREFIX";
const ENV_WORK: &str = "DPMEM_TEST_KILL_WORK";
const ENV_SEED: &str = "DPMEM_TEST_KILL_SEED";

/// Kills unless `DPMEM_KILL_RUNS` says otherwise: a few seconds here.
const RUNS: u64 = 40;
/// Kills in `--single-file-segments` and legacy memory, which lock the same structures.
const OTHER_MODE_RUNS: u64 = 12;
/// How long the primary's first operation after a kill may take: a takeover waits one liveness
/// check (10 ms), then repairs.
const NEXT_OP_LIMIT: Duration = Duration::from_secs(1);
/// Megabytes the primary maps for its heap at start-up (the secondaries do not grow it).
const MEMORY_MB: &str = "64";

/// What a secondary loops over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Malloc,
    Memzone,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Malloc => "malloc",
            Work::Memzone => "memzone",
        }
    }
}

/// The primary's operation of the same kind: it must not wait on the dead secondary.
fn primary_op(eal: &Eal, work: Work, n: u64) {
    match work {
        Work::Malloc => {
            let heaps = eal.heaps();
            let block = heaps.malloc(1000, 0).expect("the primary allocates");
            // SAFETY: allocated just above, unused.
            unsafe { heaps.free(block) }.expect("and frees");
        }
        Work::Memzone => {
            let memzones = eal.memzones();
            let zone = memzones
                .reserve(
                    &format!("primary_{n}"),
                    5000,
                    Socket::Any,
                    MemzoneFlags::empty(),
                )
                .expect("the primary reserves a memzone");
            // SAFETY: reserved just above, unused.
            unsafe { memzones.free(&zone) }.expect("and frees it");
        }
    }
}

/// The heaps pass their check and every memzone is found by its name, its block allocated.
fn check_structures(eal: &Eal, run: u64) {
    eal.heaps()
        .check()
        .unwrap_or_else(|e| panic!("run {run}: heap check: {e}"));
    let memzones = eal.memzones();
    let listed = memzones.list();
    assert_eq!(listed.len() as u32, memzones.count(), "run {run}");
    for zone in listed {
        let found = memzones
            .lookup(&zone.name)
            .unwrap_or_else(|| panic!("run {run}: memzone {:?} not found by name", zone.name));
        assert_eq!(found, zone);
        // SAFETY: a memzone's block header is written only by its free, which nobody runs now.
        let usable = unsafe { eal.heaps().validate(zone.as_ptr()) }
            .unwrap_or_else(|e| panic!("run {run}: memzone {:?}: {e}", zone.name));
        assert!(usable >= zone.len);
    }
}

#[test]
fn secondaries_killed_holding_locks_hang_nobody() {
    kill_secondaries(
        "secondaries_killed_holding_locks_hang_nobody",
        &[],
        RUNS,
        "killed",
    );
}

#[test]
fn secondaries_killed_holding_locks_hang_nobody_with_single_file_segments() {
    kill_secondaries(
        "secondaries_killed_holding_locks_hang_nobody_with_single_file_segments",
        &["--single-file-segments"],
        OTHER_MODE_RUNS,
        "killed_sf",
    );
}

#[test]
fn secondaries_killed_holding_locks_hang_nobody_in_legacy_memory() {
    kill_secondaries(
        "secondaries_killed_holding_locks_hang_nobody_in_legacy_memory",
        &["--legacy-mem"],
        OTHER_MODE_RUNS,
        "killed_legacy",
    );
}

/// Kills `default_runs` secondaries (`DPMEM_KILL_RUNS` when set) of a primary started with
/// `mode_flags` (see the file's documentation).
fn kill_secondaries(test: &str, mode_flags: &[&str], default_runs: u64, tag: &str) {
    let _serial = hugepage_lock();
    if !hugepages_available(test, 40) {
        return;
    }
    let runs = env_number("DPMEM_KILL_RUNS", default_runs).max(2);
    let mut rng = XorShift::new(env_number("DPMEM_KILL_SEED", 0x5851_f42d_4c95_7f2d));
    let prefix = unique_prefix(tag);
    let mut all = vec![
        "-l",
        "0",
        "-m",
        MEMORY_MB,
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ];
    all.extend_from_slice(mode_flags);
    let eal = Eal::init(args(&all)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let before = lock_recovery::stats();
    let mut takeovers_by_work = [0u64; 2];
    for run in 0..runs {
        let work = if run % 2 == 0 {
            Work::Malloc
        } else {
            Work::Memzone
        };
        let mut child = ChildTest::spawn(&exe, "looping_secondary", |c| {
            c.env(ENV_PREFIX, &prefix)
                .env(ENV_WORK, work.name())
                .env(ENV_SEED, rng.next_u64().to_string());
        });
        child.wait_for_line("looping", Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        ProcessHandle::open(child.pid())
            .and_then(|p| p.kill())
            .unwrap_or_else(|e| panic!("run {run}: killing the secondary: {e}"));
        let taken_before = lock_recovery::stats().taken_over;
        let started = Instant::now();
        primary_op(&eal, work, run);
        let took = started.elapsed();
        assert!(
            took < NEXT_OP_LIMIT,
            "run {run} ({}): the primary's next operation took {took:?}",
            work.name()
        );
        check_structures(&eal, run);
        takeovers_by_work[usize::from(work == Work::Memzone)] +=
            lock_recovery::stats().taken_over - taken_before;
        drop(child);
    }
    let after = lock_recovery::stats();
    let (taken, retired) = (
        after.taken_over - before.taken_over,
        after.retired - before.retired,
    );
    println!(
        "{mode_flags:?}: {runs} secondaries killed ({} in malloc/free loops, {} in memzone loops): the primary took {taken} locks over ({} after malloc kills, {} after memzone kills), {retired} structures given up",
        runs.div_ceil(2),
        runs / 2,
        takeovers_by_work[0],
        takeovers_by_work[1]
    );
    assert_eq!(retired, 0, "no structure may be given up");
    assert!(eal.primary_alive());
    // The killed secondaries' channel sockets stay until a primary starts on the prefix or
    // housekeeping removes them (see the IPC tests): housekeeping here.
    let runtime_dir = eal.runtime_dir().unwrap().to_path_buf();
    let removed = dpmem_eal::ipc::remove_dead_sockets(&runtime_dir).unwrap();
    assert_eq!(
        removed.len() as u64,
        runs,
        "one socket per killed secondary"
    );
    drop(eal);
    if let Some(dir) = mount_2m() {
        // Legacy memory keeps its page files, as DPDK's does (the next primary on the prefix
        // removes them).
        if mode_flags.contains(&"--legacy-mem") {
            remove_files_with_prefix(&dir, &prefix);
        }
        assert!(
            files_with_prefix(&dir, &prefix).is_empty(),
            "page files left behind"
        );
    }
    assert!(
        !dpmem_eal::runtime_dir::location(&prefix).exists(),
        "the runtime directory is left behind"
    );
}

#[test]
#[ignore = "run by secondaries_killed_holding_locks_hang_nobody in a child process"]
fn looping_secondary() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the kill test");
    let work = std::env::var(ENV_WORK).unwrap();
    let mut rng = XorShift::new(std::env::var(ENV_SEED).unwrap().parse::<u64>().unwrap());
    let eal = Eal::init(args(&[
        "--proc-type",
        "auto",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .unwrap();
    assert_eq!(eal.process_role(), dpmem_eal::ProcessRole::Secondary);
    assert!(eal.primary_alive());
    println!("looping");
    let heaps = eal.heaps();
    let memzones = eal.memzones();
    let me = std::process::id();
    let mut blocks = Vec::new();
    let mut zones = Vec::new();
    for n in 0u64.. {
        match work.as_str() {
            "malloc" => {
                if blocks.len() < 8 && rng.below(2) == 0 {
                    let size = 64 << rng.below(8);
                    let align = if rng.below(4) == 0 { 4096 } else { 0 };
                    blocks.push(heaps.malloc(size, align).unwrap());
                } else if !blocks.is_empty() {
                    let block = blocks.swap_remove(rng.below(blocks.len() as u64) as usize);
                    if rng.below(4) == 0 {
                        // SAFETY: the block is this loop's, unused; the old pointer is dropped.
                        let moved = unsafe { heaps.realloc(Some(block), 64 << rng.below(8), 0) };
                        blocks.push(moved.unwrap());
                    } else {
                        // SAFETY: the block is this loop's, unused, freed once.
                        unsafe { heaps.free(block) }.unwrap();
                    }
                }
            }
            _ => {
                if zones.len() < 4 && rng.below(2) == 0 {
                    let len = 64 << rng.below(8);
                    let zone = memzones
                        .reserve(
                            &format!("s{me}_{n}"),
                            len,
                            Socket::Any,
                            MemzoneFlags::empty(),
                        )
                        .unwrap();
                    zones.push(zone);
                } else if !zones.is_empty() {
                    let zone = zones.swap_remove(rng.below(zones.len() as u64) as usize);
                    // SAFETY: the memzone is this loop's and nothing uses its memory.
                    unsafe { memzones.free(&zone) }.unwrap();
                }
            }
        }
    }
}

/// A secondary asks whether its primary is alive: yes while it runs, no once it was killed,
/// even before anything reaps it.
#[test]
fn a_secondary_learns_that_its_primary_died() {
    let _serial = hugepage_lock();
    if !hugepages_available("a_secondary_learns_that_its_primary_died", 8) {
        return;
    }
    let prefix = unique_prefix("primarydied");
    let exe = std::env::current_exe().unwrap();
    let mut primary = ChildTest::spawn(&exe, "waiting_primary", |c| {
        c.env(ENV_PREFIX, &prefix);
    });
    primary.wait_for_line("started", Duration::from_secs(60));
    let secondary = Eal::init(args(&[
        "--proc-type",
        "secondary",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .unwrap();
    assert!(secondary.primary_alive());
    ProcessHandle::open(primary.pid())
        .and_then(|p| p.kill())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while secondary.primary_alive() {
        assert!(
            Instant::now() < deadline,
            "the killed primary still counts as alive"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(secondary);
    drop(primary);
    // A new primary on the prefix removes what the killed one left; gone, it leaves nothing.
    let next = Eal::init(args(&[
        "-m",
        "4",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .unwrap();
    drop(next);
    if let Some(dir) = mount_2m() {
        assert!(
            files_with_prefix(&dir, &prefix).is_empty(),
            "page files left"
        );
    }
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
}

#[test]
#[ignore = "run by a_secondary_learns_that_its_primary_died in a child process"]
fn waiting_primary() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the primary-death test");
    let _eal = Eal::init(args(&[
        "-m",
        "8",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .unwrap();
    println!("started");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
