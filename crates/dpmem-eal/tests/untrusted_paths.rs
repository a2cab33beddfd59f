//! Places another user can write to do not steer dpmem: a symbolic link or a directory planted
//! where the runtime directory goes, or another user's file where a hugepage file goes, is
//! refused with a clear error, and nothing is changed — no mode set, no file written, no file
//! sized or mapped. (hugetlbfs itself refuses to create symbolic links, `EINVAL`, so a link
//! where a page file goes cannot be planted on a real mount; `dpmem-sys`'s backing-file tests
//! check that refusal on an ordinary file system.)
//!
//! The runtime-directory attack matters for an ordinary user without `XDG_RUNTIME_DIR`, whose
//! directory lies under the shared `/tmp`; run as root, the test plays the attacker and runs the
//! victim in a child process as an unprivileged user of its own (a uid no account has, so its
//! `/tmp/dpmem-<uid>` is free to plant in), and skips, saying why, otherwise.

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::*;
use dpmem_eal::{Eal, EalError};

/// The uid of the owner of a planted hugepage file (`nobody`).
const NOBODY: u32 = 65534;

/// The unprivileged victim's uid and gid: one no account has, different for each run, so no
/// other test's (or run's) `/tmp/dpmem-<uid>` is in the way.
fn victim_uid() -> u32 {
    3_000_000 + std::process::id() % 1_000_000
}
/// Tells the child test its file prefix and the refusal it must get.
const ENV_PREFIX: &str = "DPMEM_TEST_UNTRUSTED_PREFIX";
const ENV_EXPECT: &str = "DPMEM_TEST_UNTRUSTED_EXPECT";

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs [`victim_starts_an_eal`] as the victim with no `XDG_RUNTIME_DIR`, from a copy of this
/// test binary the victim can reach (the checkout may lie under /root), expecting a refusal
/// that mentions `expect`.
fn run_victim(prefix: &str, expect: &str) {
    let dir = tempfile::Builder::new()
        .prefix("dpmem-victim")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("untrusted_paths_test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let printed = run_ignored_test_in_child(&exe, "victim_starts_an_eal", |command| {
        command
            .current_dir(dir.path())
            .uid(victim_uid())
            .gid(victim_uid())
            .env_remove("XDG_RUNTIME_DIR")
            .env(ENV_PREFIX, prefix)
            .env(ENV_EXPECT, expect);
    });
    assert!(printed.contains("refused as expected"), "{printed}");
}

#[test]
#[ignore = "run as another user by a_planted_runtime_base_is_refused_for_an_unprivileged_user"]
fn victim_starts_an_eal() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by an untrusted-paths test");
    let expect = std::env::var(ENV_EXPECT).unwrap();
    assert!(
        !dpmem_sys::process::is_root(),
        "the victim runs unprivileged"
    );
    let err = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", &prefix]))
        .expect_err("the victim's EAL must not start in a planted directory");
    assert!(matches!(err, EalError::RuntimeDir { .. }), "{err}");
    assert!(err.to_string().contains(&expect), "{err}");
    println!("refused as expected: {err}");
}

#[test]
fn a_planted_runtime_base_is_refused_for_an_unprivileged_user() {
    if !dpmem_sys::process::is_root() {
        eprintln!(
            "skipped a_planted_runtime_base_is_refused_for_an_unprivileged_user: needs root to \
             play another user (the attacker) and run the victim as an unprivileged user"
        );
        return;
    }
    let victim = victim_uid();
    let base = PathBuf::from(format!("/tmp/dpmem-{victim}"));
    let per_user = PathBuf::from(format!("/run/user/{victim}"));
    if std::fs::symlink_metadata(&base).is_ok() || per_user.exists() {
        eprintln!(
            "skipped a_planted_runtime_base_is_refused_for_an_unprivileged_user: {} or {} \
             already exists and is not this test's to replace",
            base.display(),
            per_user.display()
        );
        return;
    }
    let prefix = unique_prefix("victim");

    // A link to a directory of the attacker's, which the victim could write to.
    let target = tempfile::tempdir().unwrap();
    std::fs::set_permissions(target.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    symlink(target.path(), &base).unwrap();
    let result = std::panic::catch_unwind(|| run_victim(&prefix, "symbolic link"));
    std::fs::remove_file(&base).unwrap();
    result.unwrap();
    assert_eq!(
        mode(target.path()),
        0o777,
        "the link's target keeps its mode"
    );
    assert!(
        entries(target.path()).is_empty(),
        "nothing written through the link"
    );

    // A real directory, but the attacker's, open to everyone.
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let result = std::panic::catch_unwind(|| run_victim(&prefix, "owned by uid 0"));
    let after = (mode(&base), entries(&base));
    std::fs::remove_dir(&base).unwrap();
    result.unwrap();
    assert_eq!(
        after,
        (0o777, Vec::new()),
        "the attacker's directory is untouched"
    );

    // The victim's own directory with a loose mode: refused, and its mode left as it is.
    std::fs::create_dir(&base).unwrap();
    std::os::unix::fs::chown(&base, Some(victim), Some(victim)).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let result = std::panic::catch_unwind(|| run_victim(&prefix, "mode 0755"));
    let after = (mode(&base), entries(&base));
    std::fs::remove_dir(&base).unwrap();
    result.unwrap();
    assert_eq!(after, (0o755, Vec::new()));
}

#[test]
fn a_symlink_in_place_of_the_prefix_directory_is_refused() {
    // The base exists once an EAL of this user ran.
    drop(no_huge_eal("base", 4));
    let prefix = unique_prefix("linked");
    let link = dpmem_eal::runtime_dir::location(&prefix);
    let target = tempfile::tempdir().unwrap();
    std::fs::set_permissions(target.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink(target.path(), &link).unwrap();
    let result = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", &prefix]));
    let (target_mode, written) = (mode(target.path()), entries(target.path()));
    std::fs::remove_file(&link).unwrap();
    let err = result.expect_err("a link where the prefix directory goes");
    assert!(matches!(err, EalError::RuntimeDir { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(target_mode, 0o755, "no mode set through the link");
    assert!(
        written.is_empty(),
        "no configuration written through the link"
    );
    // A secondary looking for a primary there is refused the same way, and creates nothing.
    symlink(target.path(), &link).unwrap();
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix]));
    std::fs::remove_file(&link).unwrap();
    assert!(err.unwrap_err().to_string().contains("symbolic link"));
    assert!(entries(target.path()).is_empty());
}

/// Starts a primary on hugepages that would put its first page in `<mount>/<prefix>map_0_0`,
/// with `--huge-unlink=never` so that file is reused as it is, not cleaned up first.
fn start_over(prefix: &str) -> Result<Eal, EalError> {
    Eal::init(args(&[
        "-m",
        "2",
        "--huge-unlink=never",
        "--file-prefix",
        prefix,
    ]))
}

#[test]
fn another_users_file_where_a_hugepage_file_goes_is_refused() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "another_users_file_where_a_hugepage_file_goes_is_refused",
        4,
    ) {
        return;
    }
    let mount = mount_2m().unwrap();
    let prefix = unique_prefix("pageowner");
    let planted = mount.join(format!("{prefix}map_0_0"));
    std::fs::write(&planted, b"").unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let result = start_over(&prefix);
    let meta = std::fs::metadata(&planted).unwrap();
    std::fs::remove_file(&planted).unwrap();
    let err = result.expect_err("another user's file where a page file goes");
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    assert_eq!(
        (meta.uid(), meta.len()),
        (NOBODY, 0),
        "the file is left as it was"
    );
    assert!(files_with_prefix(&mount, &prefix).is_empty());
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
}
