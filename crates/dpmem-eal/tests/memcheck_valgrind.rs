//! Feature `memcheck`: under valgrind, memcheck reports a program's misuse of dpmem heap blocks
//! in hugepage (and `--no-huge`) memory — a read of a freed block, a write one byte past a
//! block, a branch on bytes `malloc` handed out unwritten — and nothing for correct use of
//! malloc, zmalloc, calloc, realloc and free.
//!
//! This binary has no test harness: run plainly, it re-executes itself under
//! `valgrind --tool=memcheck` once per scenario and memory mode, and asserts on valgrind's exit
//! code and on the report lines naming the block's address. Without valgrind it prints why and
//! passes, unless `DPMEM_REQUIRE_VALGRIND=1` (CI), which makes that a failure.
//! `cargo test -p dpmem-eal --features memcheck --test memcheck_valgrind` (or `--features debug`).

mod common;

use std::process::Command;
use std::ptr::NonNull;
use std::time::Instant;

use common::{args, hugepages_available, unique_prefix};
use dpmem_eal::{memcheck, Eal, MemzoneFlags, Socket};

/// Set in the re-executed child: which misuse to commit.
const SCENARIO_ENV: &str = "DPMEM_MEMCHECK_SCENARIO";
/// Set in the re-executed child: `huge` or `no-huge`.
const MEMORY_ENV: &str = "DPMEM_MEMCHECK_MEMORY";
/// What valgrind exits with when it reported any error.
const ERROR_EXIT: i32 = 97;
/// The block size every scenario misuses.
const BLOCK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Correct use of every allocation call: no error may be reported.
    Clean,
    ReadAfterFree,
    WritePastEnd,
    BranchOnUnwritten,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::Clean,
    Scenario::ReadAfterFree,
    Scenario::WritePastEnd,
    Scenario::BranchOnUnwritten,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Clean => "clean",
            Scenario::ReadAfterFree => "read-after-free",
            Scenario::WritePastEnd => "write-past-end",
            Scenario::BranchOnUnwritten => "branch-on-unwritten",
        }
    }

    fn from_name(name: &str) -> Option<Scenario> {
        SCENARIOS.into_iter().find(|s| s.name() == name)
    }
}

fn main() {
    match std::env::var(SCENARIO_ENV) {
        Ok(name) => {
            let scenario = Scenario::from_name(&name).expect("a known scenario");
            let memory = std::env::var(MEMORY_ENV).expect("memory mode set with the scenario");
            child(scenario, &memory);
        }
        Err(_) => driver(),
    }
}

// ---- the child, running under valgrind ----

fn child(scenario: Scenario, memory: &str) {
    println!("running_on_valgrind={}", memcheck::running_on_valgrind());
    let prefix = unique_prefix("memcheck");
    let mut eal_args = vec!["-m", "16", "--file-prefix", &prefix];
    if memory == "no-huge" {
        eal_args.insert(0, "--no-huge");
    }
    let eal = Eal::init(args(&eal_args)).expect("EAL init under valgrind");
    let heaps = eal.heaps();
    // The page size under heap memory, so the driver knows the mode really ran on hugepages.
    let probe = eal
        .memzones()
        .reserve("memcheck_probe", 64, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    println!("page_size={:#x}", probe.page_size);
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&probe) }.unwrap();
    match scenario {
        Scenario::Clean => clean_use(&eal),
        Scenario::ReadAfterFree => {
            let p = heaps.malloc(BLOCK, 0).unwrap();
            // SAFETY: the block's own bytes.
            unsafe { p.as_ptr().write_bytes(0x5a, BLOCK) };
            // SAFETY: ours, and (apart from the deliberate misuse below) unused afterwards.
            unsafe { heaps.free(p) }.unwrap();
            let addr = p.as_ptr() as usize + 8;
            println!("block={:#x} access={addr:#x}", p.as_ptr() as usize);
            // SAFETY: the freed block still lies in mapped heap memory, so natively this reads a
            // byte of free heap memory; the read itself is the misuse memcheck must report.
            let byte = unsafe { (addr as *const u8).read_volatile() };
            println!("read {byte}");
        }
        Scenario::WritePastEnd => {
            // Blocks are carved from the top of free memory: the one allocated first lies
            // above, so the byte after `p` is heap memory (the debug trailer, or the header of
            // `above`) rather than the unmapped end of the heap.
            let above = heaps.malloc(BLOCK, 0).unwrap();
            let p = heaps.malloc(BLOCK, 0).unwrap();
            assert!(p < above, "the second block lies below the first");
            let addr = p.as_ptr() as usize + BLOCK;
            println!("block={:#x} access={addr:#x}", p.as_ptr() as usize);
            // SAFETY: the byte after the block is mapped heap memory (see above); natively the
            // write lands there, and it is the misuse memcheck must report.
            unsafe { (addr as *mut u8).write_volatile(0xee) };
        }
        Scenario::BranchOnUnwritten => {
            let p = heaps.malloc(BLOCK, 0).unwrap();
            println!("block={:#x}", p.as_ptr() as usize);
            // SAFETY: the block's first byte, allocated but never written: a valid read of an
            // arbitrary value; deciding on it is the misuse memcheck must report.
            let byte = unsafe { p.as_ptr().read_volatile() };
            if std::hint::black_box(byte) == 0x77 {
                println!("the unwritten byte was 0x77");
            }
        }
    }
}

/// Branches on every byte of `[p, p+len)` (memcheck reports a branch on undefined bytes) and
/// returns their sum.
fn use_bytes(p: NonNull<u8>, len: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..len {
        // SAFETY: callers pass the usable bytes of a live block; `i < len`.
        let b = unsafe { p.as_ptr().wrapping_add(i).read() };
        if b != 0 {
            sum += u64::from(b);
        }
    }
    sum
}

/// Every allocation call used correctly, each result's bytes used in branches.
fn clean_use(eal: &Eal) {
    let heaps = eal.heaps();
    // malloc: written, then used.
    let a = heaps.malloc(BLOCK, 0).unwrap();
    // SAFETY: the block's own bytes.
    unsafe { a.as_ptr().write_bytes(1, BLOCK) };
    assert_eq!(use_bytes(a, BLOCK), BLOCK as u64);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.validate(a.as_ptr()) }.unwrap(), BLOCK);
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(a) }.unwrap();

    // zmalloc and calloc on memory never used, and on memory just freed dirty.
    for _ in 0..2 {
        let z = heaps.zmalloc(4096, 0).unwrap();
        assert_eq!(use_bytes(z, 4096), 0);
        let c = heaps.calloc(16, 100, 0).unwrap();
        assert_eq!(use_bytes(c, 1600), 0);
        // SAFETY: the blocks' own bytes; dirtying them for the next round.
        unsafe { z.as_ptr().write_bytes(0xff, 4096) };
        // SAFETY: as above.
        unsafe { c.as_ptr().write_bytes(0xff, 1600) };
        // SAFETY: ours, unused afterwards.
        unsafe { heaps.free(c) }.unwrap();
        // SAFETY: ours, unused afterwards.
        unsafe { heaps.free(z) }.unwrap();
    }

    // realloc in place: the block above is freed, so the block grows into it; the old bytes
    // stay defined, the new ones are written before use.
    let upper = heaps.malloc(8 * BLOCK, 0).unwrap();
    let lower = heaps.malloc(BLOCK, 0).unwrap();
    // SAFETY: the block's own bytes.
    unsafe { lower.as_ptr().write_bytes(2, BLOCK) };
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(upper) }.unwrap();
    // SAFETY: `lower` is ours and not used again unless the call fails.
    let grown = unsafe { heaps.realloc(Some(lower), 4 * BLOCK, 0) }.unwrap();
    assert_eq!(grown, lower, "grew in place into the freed block above");
    assert_eq!(use_bytes(grown, BLOCK), 2 * BLOCK as u64);
    // SAFETY: the grown block's new bytes.
    unsafe { grown.as_ptr().wrapping_add(BLOCK).write_bytes(3, 3 * BLOCK) };
    assert_eq!(use_bytes(grown, 4 * BLOCK), (2 + 9) * BLOCK as u64);

    // realloc that moves: a busy block above leaves no room in place.
    let blocker = heaps.malloc(BLOCK, 0).unwrap();
    let below = heaps.malloc(BLOCK, 0).unwrap();
    // SAFETY: the block's own bytes.
    unsafe { below.as_ptr().write_bytes(4, BLOCK) };
    // SAFETY: `below` is ours and not used again unless the call fails.
    let moved = unsafe { heaps.realloc(Some(below), 64 * BLOCK, 0) }.unwrap();
    assert_ne!(moved, below, "the busy block above forces a move");
    assert_eq!(use_bytes(moved, BLOCK), 4 * BLOCK as u64);

    // realloc that shrinks in place: the kept bytes stay defined.
    // SAFETY: `grown` is ours and not used again unless the call fails.
    let shrunk = unsafe { heaps.realloc(Some(grown), BLOCK / 2, 0) }.unwrap();
    assert_eq!(use_bytes(shrunk, BLOCK / 2), BLOCK as u64);

    for p in [shrunk, moved, blocker] {
        // SAFETY: ours, unused afterwards.
        unsafe { heaps.free(p) }.unwrap();
    }
    // The heap's own walks over headers and free lists report nothing.
    heaps.check().unwrap();
    let _ = heaps.dump();
    // Foreign pointers are refused by reading "headers" inside a live block, which must not be
    // reported as the use of its unwritten bytes.
    let live = heaps.malloc(4 * BLOCK, 0).unwrap();
    // SAFETY: a pointer into the middle of the live block, never dereferenced by the test.
    let inside = unsafe { live.as_ptr().add(2 * BLOCK) };
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { heaps.validate(inside) }.is_err());
    // SAFETY: ours, unused afterwards.
    unsafe { heaps.free(live) }.unwrap();

    let zones = eal.memzones();
    let mz = zones
        .reserve("memcheck_mz", 8192, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    // SAFETY: the memzone's own bytes.
    unsafe { mz.as_ptr().write_bytes(5, 8192) };
    // SAFETY: nothing uses the memzone any more.
    unsafe { zones.free(&mz) }.unwrap();
    println!("clean use done");
}

// ---- the driver, running natively ----

/// What one valgrind run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_under_valgrind(scenario: Scenario, memory: &str) -> Run {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("valgrind")
        .arg("--tool=memcheck")
        .arg(format!("--error-exitcode={ERROR_EXIT}"))
        // Only the errors under test matter; a leak summary would only slow the run.
        .arg("--leak-check=no")
        .arg(&exe)
        .env(SCENARIO_ENV, scenario.name())
        .env(MEMORY_ENV, memory)
        .output()
        .expect("valgrind starts");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The address the child printed as `key=0x...`.
fn printed_addr(stdout: &str, key: &str) -> usize {
    let value = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("child printed no {key}: {stdout}"));
    usize::from_str_radix(value.trim_start_matches("0x"), 16).expect("hex address")
}

fn check(scenario: Scenario, memory: &str, run: &Run) {
    let context = || {
        format!(
            "scenario {} ({memory}), exit {:?}\n--- stdout\n{}\n--- valgrind\n{}",
            scenario.name(),
            run.code,
            run.stdout,
            run.stderr
        )
    };
    assert!(
        run.stdout.contains("running_on_valgrind=true"),
        "running_on_valgrind() was not true under valgrind: {}",
        context()
    );
    let page_size = printed_addr(&run.stdout, "page_size=");
    let expected_page = if memory == "huge" { 2 << 20 } else { 4096 };
    assert_eq!(
        page_size,
        expected_page,
        "heap memory page size: {}",
        context()
    );
    let expect_line = |line: &str| {
        assert!(
            run.stderr.contains(line),
            "memcheck did not report {line:?}: {}",
            context()
        );
        println!("    memcheck: {line}");
    };
    match scenario {
        Scenario::Clean => {
            assert_eq!(run.code, Some(0), "errors reported: {}", context());
            assert!(run.stdout.contains("clean use done"), "{}", context());
            expect_line("ERROR SUMMARY: 0 errors");
        }
        Scenario::ReadAfterFree => {
            assert_eq!(run.code, Some(ERROR_EXIT), "{}", context());
            let access = printed_addr(&run.stdout, "access=");
            expect_line("Invalid read of size 1");
            expect_line(&format!(
                "Address {access:#x} is 8 bytes inside a block of size {BLOCK} free'd"
            ));
        }
        Scenario::WritePastEnd => {
            assert_eq!(run.code, Some(ERROR_EXIT), "{}", context());
            let access = printed_addr(&run.stdout, "access=");
            expect_line("Invalid write of size 1");
            expect_line(&format!(
                "Address {access:#x} is 0 bytes after a block of size {BLOCK} alloc'd"
            ));
        }
        Scenario::BranchOnUnwritten => {
            assert_eq!(run.code, Some(ERROR_EXIT), "{}", context());
            expect_line("Conditional jump or move depends on uninitialised value(s)");
        }
    }
}

fn valgrind_missing() -> Option<String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`valgrind --version` failed: {:?}", out.status)),
        Err(e) => Some(format!("valgrind is not installed ({e})")),
    }
}

fn driver() {
    if let Some(reason) = valgrind_missing() {
        if std::env::var("DPMEM_REQUIRE_VALGRIND").as_deref() == Ok("1") {
            panic!("valgrind required (DPMEM_REQUIRE_VALGRIND=1) but {reason}");
        }
        println!("skipped memcheck_valgrind: {reason}");
        return;
    }
    let mut memories = vec!["no-huge"];
    if hugepages_available("memcheck_valgrind (hugepage memory)", 8) {
        memories.insert(0, "huge");
    }
    let all = Instant::now();
    for memory in memories {
        for scenario in SCENARIOS {
            let start = Instant::now();
            let run = run_under_valgrind(scenario, memory);
            println!(
                "memcheck_valgrind: {} ({memory}) {:.1} s",
                scenario.name(),
                start.elapsed().as_secs_f64()
            );
            check(scenario, memory, &run);
        }
    }
    println!(
        "memcheck_valgrind: all runs passed in {:.1} s",
        all.elapsed().as_secs_f64()
    );
}
