//! Crash-restart cycles on real 2 MiB hugepages: a primary (this test binary re-executed) is
//! killed with SIGKILL at a random moment of its page growth, shrink, heap and memzone work —
//! or of its start — and a new primary starts on the same file prefix, 50 times per memory mode.
//!
//! Every start must succeed; each new primary must have removed the killed one's page files
//! and so hold no more hugepages than a first start does; and after the last primary exits
//! cleanly no hugepage is held and nothing is left in the runtime directory or the hugetlbfs
//! mount. Legacy memory keeps its page files at a clean exit, as DPDK's does; the test checks
//! that the next primary removes them. `--in-memory` shares nothing with the next primary: its
//! pages go back to the kernel with the killed process.
//!
//! The kill moments come from a seeded generator (`DPMEM_CRASH_SEED` chooses another run), and
//! `DPMEM_CRASH_CYCLES` another number of cycles.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::{Eal, Memzone, PageRequest, Socket};
use dpmem_testkit::seeded::{env_number, XorShift};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_CRASH_PREFIX";
const ENV_FLAGS: &str = "DPMEM_TEST_CRASH_FLAGS";
const ENV_SEED: &str = "DPMEM_TEST_CRASH_SEED";

/// Cycles per mode unless `DPMEM_CRASH_CYCLES` says otherwise.
const CYCLES: u64 = 50;
/// How long a primary may take to start.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Free 2 MiB pages the children may use at once (their work holds at most about 40).
const PAGES_NEEDED: u64 = 64;

/// Page files of `prefix` in `dir`, each with its inode: a file removed and created again under
/// the same name is a different file.
fn page_files(dir: &Path, prefix: &str) -> BTreeSet<(String, u64)> {
    files_with_prefix(dir, prefix)
        .into_iter()
        .filter_map(|name| {
            let ino = std::fs::metadata(dir.join(&name)).ok()?.ino();
            Some((name, ino))
        })
        .collect()
}

/// Waits up to 2 s for the free hugepage count to reach `want` (a page another process on the
/// machine holds for a moment is not ours), and returns the count seen last.
fn free_pages_settle(want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let free = free_2m();
        if free == want || Instant::now() > deadline {
            return free;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// On a failure part way, removes what the killed primaries of the prefix may have left
/// (page files, the runtime directory, the telemetry socket), so that a failing run does not
/// leave them for the next test or CI's leftover check. A passing run leaves nothing, which it
/// checks; declared before the children, so it runs after they are killed.
struct CleanUpOnFailure<'a> {
    mount: &'a Path,
    prefix: &'a str,
}

impl Drop for CleanUpOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            remove_files_with_prefix(self.mount, self.prefix);
            let _ = std::fs::remove_dir_all(dpmem_eal::runtime_dir::location(self.prefix));
            let _ = std::fs::remove_dir_all(dpmem_eal::telemetry::dpdk_runtime_dir(self.prefix));
        }
    }
}

/// What one mode's run saw, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    starts: u64,
    kills_at_work: u64,
    kills_while_starting: u64,
    /// Page files the killed primaries left, all removed by the primaries after them.
    stale_files_removed: usize,
}

fn crash_cycles(test: &str, tag: &str, flags: &[&str]) {
    let _serial = hugepage_lock();
    if !hugepages_available(test, PAGES_NEEDED) {
        return;
    }
    let mount = mount_2m().expect("the gate found a mount");
    let prefix = unique_prefix(tag);
    let runtime_dir = dpmem_eal::runtime_dir::location(&prefix);
    let _clean_up = CleanUpOnFailure {
        mount: &mount,
        prefix: &prefix,
    };
    let exe = std::env::current_exe().unwrap();
    let legacy = flags.contains(&"--legacy-mem");
    let cycles = env_number("DPMEM_CRASH_CYCLES", CYCLES).max(1);
    let mut rng =
        XorShift::new(env_number("DPMEM_CRASH_SEED", 0x9e37_79b9_7f4a_7c15) ^ tag.len() as u64);
    let free_before = free_2m();
    // Pages a primary holds right after it started: measured on the first, a fresh start.
    let mut held_at_start = None;
    // Page files the last killed primary left behind.
    let mut stale = BTreeSet::new();
    let mut tally = Tally::default();

    for cycle in 0..cycles {
        let last = cycle + 1 == cycles;
        let seed = rng.next_u64();
        let mut child = ChildTest::spawn(&exe, "primary_at_work", |command| {
            command
                .env(ENV_PREFIX, &prefix)
                .env(ENV_FLAGS, flags.join(" "))
                .env(ENV_SEED, seed.to_string());
        });
        // One cycle in eight kills the primary while it starts (from exec to its first pages).
        if !last && cycle % 8 == 5 {
            std::thread::sleep(Duration::from_millis(rng.below(60)));
            assert!(
                child.try_wait().is_none(),
                "{test} cycle {cycle}: the primary exited by itself while starting:\n{}",
                child.transcript()
            );
            drop(child);
            tally.kills_while_starting += 1;
            stale = page_files(&mount, &prefix);
            continue;
        }
        child.wait_for_line("started", START_LIMIT);
        tally.starts += 1;

        // The killed primary's page files are gone, and with them its hugepages.
        let now = page_files(&mount, &prefix);
        let kept: Vec<_> = stale.intersection(&now).collect();
        assert!(
            kept.is_empty(),
            "{test} cycle {cycle}: the new primary kept page files of the killed one: {kept:?}"
        );
        tally.stale_files_removed += stale.len();
        let free = match held_at_start {
            None => free_2m(),
            Some(first) => free_pages_settle(free_before - first),
        };
        let held = free_before.saturating_sub(free);
        match held_at_start {
            None => held_at_start = Some(held),
            Some(first) => assert_eq!(
                held, first,
                "{test} cycle {cycle}: a new primary holds {held} hugepages, a first start {first}"
            ),
        }

        child.send("go");
        if last {
            std::thread::sleep(Duration::from_millis(50));
            // Closing its stdin (in assert_passed) tells the child to stop and exit cleanly.
            child.assert_passed(START_LIMIT);
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        assert!(
            child.try_wait().is_none(),
            "{test} cycle {cycle}: the primary exited by itself at work:\n{}",
            child.transcript()
        );
        // SIGKILL, then waited for: its locks and mappings are gone with it.
        drop(child);
        tally.kills_at_work += 1;
        stale = page_files(&mount, &prefix);
        if flags.contains(&"--in-memory") {
            assert!(
                stale.is_empty(),
                "{test}: --in-memory left page files {stale:?}"
            );
            let free = free_pages_settle(free_before);
            assert_eq!(
                free, free_before,
                "{test} cycle {cycle}: a killed --in-memory primary's hugepages did not go back"
            );
        }
    }

    let left = page_files(&mount, &prefix);
    if legacy {
        // Legacy memory keeps its page files at exit (DPDK's behaviour); the next primary
        // removes them before it maps its own.
        assert!(!left.is_empty(), "{test}: legacy memory kept no page files");
        let next = Eal::init(args(&[
            "--file-prefix",
            &prefix,
            "-m",
            "64",
            "--legacy-mem",
        ]))
        .unwrap_or_else(|e| panic!("{test}: a primary after the last clean exit: {e}"));
        let now = page_files(&mount, &prefix);
        let kept: Vec<_> = left.intersection(&now).collect();
        assert!(kept.is_empty(), "{test}: the next primary kept {kept:?}");
        drop(next);
        remove_files_with_prefix(&mount, &prefix);
    } else {
        assert!(
            left.is_empty(),
            "{test}: page files left after a clean exit: {left:?}"
        );
    }
    assert!(
        !runtime_dir.exists(),
        "{test}: {} left after a clean exit: {:?}",
        runtime_dir.display(),
        std::fs::read_dir(&runtime_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    assert_eq!(
        free_pages_settle(free_before),
        free_before,
        "{test}: hugepages held after the last clean exit"
    );
    eprintln!(
        "{test}: {cycles} cycles, {} starts, {} kills at work, {} kills while starting, \
         {} stale page files removed by the next primary, nothing left",
        tally.starts, tally.kills_at_work, tally.kills_while_starting, tally.stale_files_removed
    );
}

#[test]
fn dynamic_memory_survives_primaries_killed_at_random() {
    crash_cycles(
        "dynamic_memory_survives_primaries_killed_at_random",
        "crdyn",
        &[],
    );
}

#[test]
fn single_file_segments_survive_primaries_killed_at_random() {
    crash_cycles(
        "single_file_segments_survive_primaries_killed_at_random",
        "crsfs",
        &["--single-file-segments"],
    );
}

#[test]
fn legacy_memory_survives_primaries_killed_at_random() {
    crash_cycles(
        "legacy_memory_survives_primaries_killed_at_random",
        "crlegacy",
        &["--legacy-mem"],
    );
}

#[test]
fn in_memory_primaries_killed_at_random_leave_nothing() {
    crash_cycles(
        "in_memory_primaries_killed_at_random_leave_nothing",
        "crinmem",
        &["--in-memory"],
    );
}

/// The primary the cycles kill: starts, says so, waits for "go", then grows and shrinks its
/// pages, heap and memzones at random until its stdin closes (or it is killed).
#[test]
#[ignore = "run by the crash-cycle tests in a child process"]
fn primary_at_work() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a crash-cycle test");
    let flags = std::env::var(ENV_FLAGS).unwrap();
    let mut rng = XorShift::new(std::env::var(ENV_SEED).unwrap().parse().unwrap());
    let legacy = flags.contains("--legacy-mem");
    let memory = if legacy { "64" } else { "4" };
    let mut all = vec!["--file-prefix", &prefix, "-m", memory];
    all.extend(flags.split_whitespace());
    let eal = Eal::init(args(&all)).expect("a new primary starts on the prefix");
    println!("started");

    let (lines, from_parent) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                return;
            }
        }
        let _ = lines.send("eof".to_owned());
    });
    if from_parent.recv().as_deref() != Ok("go") {
        return;
    }

    let (mem, heaps, zones) = (eal.memory(), eal.heaps(), eal.memzones());
    let mut runs = Vec::new();
    let mut blocks: Vec<NonNull<u8>> = Vec::new();
    let mut reserved: Vec<Memzone> = Vec::new();
    let mut next_zone = 0u64;
    let mut ops = 0u64;
    while from_parent.try_recv().is_err() {
        ops += 1;
        match rng.below(6) {
            // Page growth and shrink (legacy memory has neither: the calls are refused).
            0 if runs.len() < 4 => {
                let count = 1 + rng.below(3) as usize;
                if let Ok(run) = mem.alloc_pages(PageRequest::new(PAGE_2M, Socket::Node(0), count))
                {
                    // SAFETY: the pages were just mapped for this run and are its own.
                    unsafe { std::ptr::write_bytes(run.va() as *mut u8, 0x5A, run.len()) };
                    runs.push(run);
                }
            }
            1 if !runs.is_empty() => {
                let i = rng.below(runs.len() as u64) as usize;
                drop(runs.swap_remove(i));
            }
            // The heap grows by pages and gives whole free pages back.
            2 if blocks.len() < 4 => {
                let len = (1 + rng.below(5) as usize) << 20;
                if let Ok(block) = heaps.malloc(len, 0) {
                    // SAFETY: a live block of `len` bytes.
                    unsafe { std::ptr::write_bytes(block.as_ptr(), 0xA5, len) };
                    blocks.push(block);
                }
            }
            3 if !blocks.is_empty() => {
                let i = rng.below(blocks.len() as u64) as usize;
                // SAFETY: the block is this loop's and is not used again.
                unsafe { heaps.free(blocks.swap_remove(i)) }.unwrap();
            }
            4 if reserved.len() < 4 => {
                next_zone += 1;
                let len = (1 + rng.below(3) as usize) << 20;
                if let Ok(zone) = zones.reserve(
                    &format!("crash{next_zone}"),
                    len,
                    Socket::Any,
                    Default::default(),
                ) {
                    reserved.push(zone);
                }
            }
            5 if !reserved.is_empty() => {
                let i = rng.below(reserved.len() as u64) as usize;
                // SAFETY: nothing uses the memzone's memory.
                unsafe { zones.free(&reserved.swap_remove(i)) }.unwrap();
            }
            _ => {}
        }
    }
    drop(runs);
    for block in blocks {
        // SAFETY: as above.
        unsafe { heaps.free(block) }.unwrap();
    }
    for zone in reserved {
        // SAFETY: as above.
        unsafe { zones.free(&zone) }.unwrap();
    }
    heaps.check().unwrap();
    drop(eal);
    println!("clean exit after {ops} operations");
}
