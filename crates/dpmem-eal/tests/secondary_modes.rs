//! Multi-process in every file-backed memory mode: one page file per page (the default),
//! `--single-file-segments` and `--legacy-mem`. Two secondaries attach with `--proc-type=auto`
//! (this test binary re-executed); requests cross the channel both ways; a zone the primary
//! reserves after they attached is read in both with no further call; one secondary reserves a
//! zone the others read at once, and gives it back.
//!
//! In the dynamic modes the secondary's zone needs pages the primary maps for it, and freeing
//! it unmaps them in every process. Legacy memory is all mapped at start-up and never grows:
//! the secondary's zone comes out of it, and a request for more than was preallocated fails
//! with `NoMem` saying so, changing nothing.
//!
//! A primary started `--in-memory` has no runtime directory, so no secondary can find it: the
//! secondary is told so, not attached to something else.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use dpmem_eal::ipc::IpcMessage;
use dpmem_eal::{Eal, ErrorKind, MemoryMode, MemzoneFlags, ProcessRole, Socket};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_MODES_PREFIX";
const ENV_MODE: &str = "DPMEM_TEST_MODES_MODE";
const CHILD_LIMIT: Duration = Duration::from_secs(30);
/// The mailbox (a memzone reserved before anyone attached): slot 0 the primary's zone, slot 1
/// the reserving secondary's.
const MAILBOX: &str = "modes_mailbox";
/// Megabytes a legacy primary maps at start-up (all it will ever have).
const LEGACY_MB: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    FilePerPage,
    SingleFile,
    Legacy,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::FilePerPage => "file-per-page",
            Mode::SingleFile => "single-file",
            Mode::Legacy => "legacy",
        }
    }

    fn from_env() -> Mode {
        let name = std::env::var(ENV_MODE).expect("run by a memory-mode test");
        [Mode::FilePerPage, Mode::SingleFile, Mode::Legacy]
            .into_iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("unknown mode {name:?}"))
    }

    fn primary_flags(self) -> Vec<String> {
        let flags: &[&str] = match self {
            Mode::FilePerPage => &[],
            Mode::SingleFile => &["--single-file-segments"],
            Mode::Legacy => &["--legacy-mem", "-m"],
        };
        let mut flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        if self == Mode::Legacy {
            flags.push(LEGACY_MB.to_string());
        }
        flags
    }

    /// Bytes of each zone: in the dynamic modes three 2 MiB pages' worth, so new pages are
    /// needed; in legacy mode within one page (a legacy list may have a hole after any page,
    /// where the physical addresses break).
    fn zone_len(self) -> usize {
        match self {
            Mode::Legacy => 1 << 20,
            _ => 5 << 20,
        }
    }

    fn memory_mode(self) -> MemoryMode {
        match self {
            Mode::Legacy => MemoryMode::Legacy,
            _ => MemoryMode::Dynamic,
        }
    }
}

fn spawn_body(body: &str, prefix: &str, mode: Mode) -> ChildTest {
    ChildTest::spawn(&std::env::current_exe().unwrap(), body, |command| {
        command.env(ENV_PREFIX, prefix).env(ENV_MODE, mode.name());
    })
}

/// Attaches with `--proc-type=auto`: a primary runs on the prefix, so this is a secondary.
fn auto_secondary() -> &'static Eal {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a memory-mode test");
    let eal = Eal::init(args(&["--proc-type", "auto", "--file-prefix", &prefix]))
        .expect("--proc-type=auto attaches to the running primary");
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    assert_eq!(eal.memory().mode(), Mode::from_env().memory_mode());
    let eal: &'static Eal = Box::leak(Box::new(eal));
    // Each secondary answers the primary's requests with its own name.
    let me = std::process::id();
    eal.ipc()
        .unwrap()
        .register_action("modes_echo", move |incoming| {
            let text = format!(
                "{me}:{}",
                String::from_utf8_lossy(incoming.message().params())
            );
            incoming
                .reply(IpcMessage::new("modes_echo", text.as_bytes()).unwrap())
                .unwrap();
        })
        .unwrap();
    eal
}

/// Whether every byte of the `len` bytes at `va` is `byte`.
///
/// # Safety
/// `[va, va+len)` is a zone of this test, written before its address was published.
unsafe fn all_bytes_are(va: usize, len: usize, byte: u8) -> bool {
    // SAFETY: the caller's contract; read only.
    let bytes = unsafe { std::slice::from_raw_parts(va as *const u8, len) };
    bytes.iter().all(|&b| b == byte)
}

/// Whether this process maps a hugepage file of the test at `va` (`/proc/self/maps`): a page
/// file in the dynamic mode, the list's file with `--single-file-segments`.
fn file_mapped_at(va: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|line| {
            let range = line.split_whitespace().next().unwrap_or_default();
            let (lo, hi) = range.split_once('-').unwrap_or_default();
            let lo = usize::from_str_radix(lo, 16).unwrap_or(0);
            let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
            lo <= va && va < hi && line.contains("map_")
        })
}

fn primary_and_two_secondaries(mode: Mode, tag: &str) {
    let _serial = hugepage_lock();
    let test = format!("secondaries_in_{}_mode", mode.name());
    if !hugepages_available(&test, 24) {
        return;
    }
    let prefix = unique_prefix(tag);
    let mut all = args(&["--file-prefix", &prefix]);
    all.extend(mode.primary_flags());
    let eal = Eal::init(all).unwrap();
    assert_eq!(eal.memory().mode(), mode.memory_mode());
    eal.memzones()
        .reserve(MAILBOX, 64, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    let ipc = eal.ipc().unwrap();
    ipc.register_action("modes_echo", |incoming| {
        let text = format!(
            "primary:{}",
            String::from_utf8_lossy(incoming.message().params())
        );
        incoming
            .reply(IpcMessage::new("modes_echo", text.as_bytes()).unwrap())
            .unwrap();
    })
    .unwrap();
    let mut grower = spawn_body("reserving_secondary_body", &prefix, mode);
    let mut reader = spawn_body("reading_secondary_body", &prefix, mode);
    grower.wait_for_line("attached", CHILD_LIMIT);
    reader.wait_for_line("attached", CHILD_LIMIT);

    // The channel: the primary's request reaches both secondaries, each answers.
    let hello = IpcMessage::new("modes_echo", b"hi").unwrap();
    let replies = ipc.request_sync(&hello, CHILD_LIMIT).unwrap();
    assert_eq!((replies.sent, replies.received()), (2, 2), "{replies:?}");
    let mut answers: Vec<String> = replies
        .replies
        .iter()
        .map(|r| String::from_utf8_lossy(r.message.params()).into_owned())
        .collect();
    answers.sort();
    let mut expected = vec![
        format!("{}:hi", grower.pid()),
        format!("{}:hi", reader.pid()),
    ];
    expected.sort();
    assert_eq!(answers, expected, "{}", mode.name());

    let slots = mailbox(&eal, MAILBOX);
    let (bytes_before, heap_before) = (
        eal.memory().socket_bytes(Socket::Node(0)),
        eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes,
    );
    let len = mode.zone_len();
    // The primary's zone, after both attached: in the dynamic modes its pages are new to both.
    let zone = eal
        .memzones()
        .reserve("modes_primary", len, Socket::Node(0), MemzoneFlags::empty())
        .unwrap();
    // SAFETY: the zone's bytes are this test's.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0x3C, len) };
    slots[0].store(zone.va as u64, Ordering::Release);
    grower.send("read and reserve");
    let theirs = wait_for_slot(&slots[1], CHILD_LIMIT);
    grower.wait_for_line("reserved", CHILD_LIMIT);
    let grown = eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes;
    if mode == Mode::Legacy {
        assert_eq!(grown, heap_before, "legacy memory never grows");
        assert_eq!(eal.memory().socket_bytes(Socket::Node(0)), bytes_before);
    } else {
        assert!(
            grown >= heap_before + 2 * len as u64,
            "{}: both zones came from new pages",
            mode.name()
        );
    }
    // Readable here at once, with no call.
    // SAFETY: the secondary's zone, written before it published the address; read only.
    let intact = unsafe { all_bytes_are(theirs, len, 0xA7) };
    assert!(intact, "{}", mode.name());
    assert!(eal.memzones().lookup("modes_secondary").is_some());
    reader.send("read");
    reader.wait_for_line("read both", CHILD_LIMIT);
    grower.send("free");
    grower.wait_for_line("freed", CHILD_LIMIT);
    reader.send("check");
    let (eal, _) = reader.assert_passed_keeping(CHILD_LIMIT, eal);
    let (eal, _) = grower.assert_passed_keeping(CHILD_LIMIT, eal);
    assert!(eal.memzones().lookup("modes_secondary").is_none());
    // SAFETY: nobody uses the zone any more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    eal.heaps().check().unwrap();
    // Everything mapped for the two zones went back (legacy memory had nothing to map).
    assert_eq!(
        eal.memory().socket_bytes(Socket::Node(0)),
        bytes_before,
        "{}: pages left mapped",
        mode.name()
    );
    drop(eal);
    if let Some(dir) = mount_2m() {
        // Legacy memory keeps its page files, as DPDK's does (the next primary on the prefix
        // removes them); the other modes remove theirs.
        if mode == Mode::Legacy {
            remove_files_with_prefix(&dir, &prefix);
        }
        assert!(
            files_with_prefix(&dir, &prefix).is_empty(),
            "page files left"
        );
    }
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
}

#[test]
fn secondaries_in_file_per_page_mode() {
    primary_and_two_secondaries(Mode::FilePerPage, "modes_fpp");
}

#[test]
fn secondaries_in_single_file_mode() {
    primary_and_two_secondaries(Mode::SingleFile, "modes_sf");
}

#[test]
fn secondaries_in_legacy_mode() {
    primary_and_two_secondaries(Mode::Legacy, "modes_legacy");
}

#[test]
#[ignore = "run by the secondaries_in_*_mode tests"]
fn reserving_secondary_body() {
    let eal = auto_secondary();
    let mode = Mode::from_env();
    let len = mode.zone_len();
    let slots = mailbox(eal, MAILBOX);
    println!("attached");
    assert_eq!(stdin_line(), "read and reserve");
    let primarys = wait_for_slot(&slots[0], CHILD_LIMIT);
    // SAFETY: the primary's zone, written before its address was published.
    let intact = unsafe { all_bytes_are(primarys, len, 0x3C) };
    assert!(intact, "the primary's bytes");
    // A request of this secondary's own reaches the primary.
    let replies = eal
        .ipc()
        .unwrap()
        .request_sync(&IpcMessage::new("modes_echo", b"up").unwrap(), CHILD_LIMIT)
        .unwrap();
    assert_eq!((replies.sent, replies.received()), (1, 1), "{replies:?}");
    assert_eq!(replies.replies[0].message.params(), b"primary:up");
    if mode == Mode::Legacy {
        more_than_legacy_memory_is_refused(eal);
    }
    let zone = eal
        .memzones()
        .reserve(
            "modes_secondary",
            len,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .expect("a secondary's zone");
    // SAFETY: the zone's bytes are this process's.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0xA7, len) };
    slots[1].store(zone.va as u64, Ordering::Release);
    println!("reserved");
    assert_eq!(stdin_line(), "free");
    // SAFETY: the others have read it and use it no more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    println!("freed");
}

/// Legacy memory is all the secondary gets: a zone or block bigger than what was preallocated
/// fails with `NoMem` saying that legacy memory does not grow, and nothing changes.
fn more_than_legacy_memory_is_refused(eal: &Eal) {
    let (zones, stats) = (
        eal.memzones().count(),
        eal.heaps().stats(Socket::Node(0)).unwrap(),
    );
    let too_big = (LEGACY_MB + 2) << 20;
    let err = eal
        .memzones()
        .reserve(
            "modes_too_big",
            too_big,
            Socket::Node(0),
            MemzoneFlags::empty(),
        )
        .expect_err("a zone bigger than legacy memory");
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert!(err.to_string().contains("legacy memory"), "{err}");
    assert!(err.to_string().contains("does not grow"), "{err}");
    let err = eal
        .heaps()
        .malloc_socket(too_big, 0, Socket::Node(0))
        .expect_err("a block bigger than legacy memory");
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert!(err.to_string().contains("does not grow"), "{err}");
    assert_eq!(eal.memzones().count(), zones);
    assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap(), stats);
    assert!(eal.memzones().lookup("modes_too_big").is_none());
}

#[test]
#[ignore = "run by the secondaries_in_*_mode tests"]
fn reading_secondary_body() {
    let eal = auto_secondary();
    let mode = Mode::from_env();
    let len = mode.zone_len();
    let slots = mailbox(eal, MAILBOX);
    println!("attached");
    assert_eq!(stdin_line(), "read");
    // No dpmem call between here and the reads.
    let (primarys, theirs) = (
        wait_for_slot(&slots[0], CHILD_LIMIT),
        wait_for_slot(&slots[1], CHILD_LIMIT),
    );
    for (va, byte) in [(primarys, 0x3C), (theirs, 0xA7)] {
        // SAFETY: a zone of another process, written before its address was published.
        let intact = unsafe { all_bytes_are(va, len, byte) };
        assert!(intact, "bytes at {va:#x}");
    }
    println!("read both");
    assert_eq!(stdin_line(), "check");
    let page = theirs & !((2 << 20) - 1);
    if mode == Mode::Legacy {
        // Freed into the heap; the page stays, as all legacy memory does.
        assert!(file_mapped_at(page), "legacy page {page:#x} unmapped here");
        assert!(eal.memory().virt_to_memseg(page).is_some());
    } else {
        // The secondary's zone needed pages of its own; freeing it gave them back through the
        // primary, and the round unmapped them here too.
        let first_new = theirs.next_multiple_of(2 << 20);
        assert!(
            !file_mapped_at(first_new),
            "page {first_new:#x} still mapped here"
        );
        assert!(eal.memory().virt_to_memseg(first_new).is_none());
    }
}

/// A primary started `--in-memory` keeps no runtime directory: a secondary on its prefix is
/// told that no primary runs there, and `--proc-type=auto` becomes a primary of its own.
#[test]
fn an_in_memory_primary_takes_no_secondaries() {
    let _serial = hugepage_lock();
    if !hugepages_available("an_in_memory_primary_takes_no_secondaries", 4) {
        return;
    }
    let prefix = unique_prefix("modes_inmem");
    let primary = Eal::init(args(&[
        "--in-memory",
        "-m",
        "8",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .unwrap();
    assert!(primary.runtime_dir().is_none());
    let err = Eal::init(args(&[
        "--proc-type",
        "secondary",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .expect_err("nothing to attach to");
    assert!(err.to_string().contains("no primary process"), "{err}");
    assert!(err.to_string().contains("--in-memory"), "{err}");
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
    // In-memory itself refuses to be a secondary, naming both options.
    let err = Eal::init(args(&[
        "--in-memory",
        "--proc-type",
        "secondary",
        "--file-prefix",
        &prefix,
    ]))
    .expect_err("--in-memory secondary");
    assert!(err.to_string().contains("--in-memory"), "{err}");
    drop(primary);
}
