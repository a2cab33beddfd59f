//! Helpers shared by the EAL integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

#[allow(unused_imports)] // each test binary uses some of them
pub use dpmem_testkit::{
    free_2m, hugepages_available, mount_2m, run_ignored_test_in_child, PAGE_2M,
};

/// A file prefix no other test (or test run) uses.
pub fn unique_prefix(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Hugepage tests change the machine-wide free count, and several assert on it; they run one
/// at a time within a test binary.
pub fn hugepage_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Page files of `prefix` in `dir`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Removes leftovers of `prefix` (tests that leave files on purpose clean up with this).
pub fn remove_files_with_prefix(dir: &Path, prefix: &str) {
    for name in files_with_prefix(dir, prefix) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

pub fn args(extra: &[&str]) -> Vec<String> {
    std::iter::once("dpmem-test")
        .chain(extra.iter().copied())
        .map(String::from)
        .collect()
}

/// Attaches to the primary that runs under `prefix`, as a secondary (the child side of the
/// multi-process tests).
pub fn attach_secondary(prefix: &str) -> dpmem_eal::Eal {
    let eal = dpmem_eal::Eal::init(args(&["--proc-type", "secondary", "--file-prefix", prefix]))
        .expect("a secondary attaches to the test's primary");
    assert_eq!(eal.process_role(), dpmem_eal::ProcessRole::Secondary);
    eal
}

/// A `--no-huge` EAL of `mb` MiB under a fresh file prefix tagged `tag` (any user, any machine).
pub fn no_huge_eal(tag: &str, mb: u32) -> dpmem_eal::Eal {
    let prefix = unique_prefix(tag);
    dpmem_eal::Eal::init(args(&[
        "--no-huge",
        "-m",
        &mb.to_string(),
        "--file-prefix",
        &prefix,
    ]))
    .unwrap()
}

/// The two address slots of a test's mailbox memzone `name`, in whichever process: how
/// multi-process tests hand an address from one process to another with no dpmem call.
pub fn mailbox(eal: &dpmem_eal::Eal, name: &str) -> &'static [std::sync::atomic::AtomicU64; 2] {
    let zone = eal.memzones().lookup(name).expect("the mailbox");
    // SAFETY: the zone is 16 bytes or more, cache-line aligned, lives as long as the test's
    // EALs (never freed), and is only ever accessed through these atomics.
    unsafe { &*(zone.as_ptr() as *const [std::sync::atomic::AtomicU64; 2]) }
}

/// The address a mailbox slot holds, waiting up to `limit` for another process to put one.
pub fn wait_for_slot(slot: &std::sync::atomic::AtomicU64, limit: std::time::Duration) -> usize {
    let start = std::time::Instant::now();
    loop {
        let v = slot.load(std::sync::atomic::Ordering::Acquire);
        if v != 0 {
            return v as usize;
        }
        assert!(start.elapsed() < limit, "no address in the mailbox");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The next line the parent test wrote to this child's stdin, trimmed.
pub fn stdin_line() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    line.trim().to_owned()
}
