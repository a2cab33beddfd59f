//! What the integration tests of the dpmem crates share.
//!
//! - **The hugepage gate** ([`hugepages_available`]): a hugepage test runs when the machine
//!   can give it 2 MiB pages (root, a hugetlbfs mount, enough free pages) and otherwise skips
//!   with a printed reason — unless `DPMEM_REQUIRE_HUGEPAGES=1` (CI), which makes a missing
//!   prerequisite a failure, so that hugepage tests cannot silently skip there.
//! - **Child-process tests** ([`ignored_test_command`], [`run_ignored_test_in_child`]): a
//!   test re-runs its own binary to run one `#[ignore]`d test as a real second process (a
//!   secondary, another user).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes of the hugepages the tests use.
pub const PAGE_2M: u64 = 2 << 20;

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

/// Whether the machine can run hugepage test `test`, which needs `pages` free 2 MiB pages
/// and a mount. Prints why not and returns false, unless `DPMEM_REQUIRE_HUGEPAGES=1`, which
/// makes a missing prerequisite a failure.
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

/// A command that runs only the `#[ignore]`d test `name` of the test binary `exe`, with its
/// output uncaptured (so a child can talk to its parent over stdout).
pub fn ignored_test_command(exe: &Path, name: &str) -> Command {
    let mut command = Command::new(exe);
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// Runs the `#[ignore]`d test `name` of the test binary `exe` in a child process, after
/// `configure` has set its environment. Asserts that it ran and passed, and returns what it
/// printed.
pub fn run_ignored_test_in_child(
    exe: &Path,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> String {
    let mut command = ignored_test_command(exe, name);
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
