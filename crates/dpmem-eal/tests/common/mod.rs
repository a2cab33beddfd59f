//! Helpers shared by the EAL integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub const PAGE_2M: u64 = 2 << 20;

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

/// Whether the machine can run a hugepage test needing `pages` free 2 MiB pages and a mount.
/// Prints why not and returns false, unless `DPMEM_REQUIRE_HUGEPAGES=1`, which makes a missing
/// prerequisite a failure (CI sets it so these tests cannot silently skip).
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

/// Runs the `#[ignore]`d test `name` of the test binary `exe` in a child process (a real
/// second process: secondaries, other users), after `configure` has set its environment.
/// Asserts that it ran and passed, and returns what it printed.
pub fn run_ignored_test_in_child(
    exe: &Path,
    name: &str,
    configure: impl FnOnce(&mut std::process::Command),
) -> String {
    let mut command = std::process::Command::new(exe);
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    configure(&mut command);
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child test {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child test {name} did not run:\n{text}"
    );
    text
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
