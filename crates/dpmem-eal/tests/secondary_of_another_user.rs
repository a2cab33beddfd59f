//! A secondary of another user than the primary's is refused at attach, with the reason: the
//! primary's runtime directory and memory are private to its user, so the secondary cannot find
//! it, and it is told that a primary of another user runs with the prefix (its page files say
//! so) rather than that none runs. `--proc-type=auto` is refused the same way, rather than made
//! a primary whose page files would take the other primary's names. Run as root, playing
//! `nobody` for the secondary, against a primary on hugepages.

mod common;

use std::os::unix::process::CommandExt;

use common::*;
use dpmem_eal::{Eal, ErrorKind};

const ENV_PREFIX: &str = "DPMEM_TEST_OTHER_USER_PREFIX";
const ENV_PROC_TYPE: &str = "DPMEM_TEST_OTHER_USER_PROC_TYPE";
/// `nobody`.
const OTHER_UID: u32 = 65534;

#[test]
fn a_secondary_of_another_user_is_refused_with_the_reason() {
    let _serial = hugepage_lock();
    if !dpmem_sys::process::is_root() {
        eprintln!(
            "skipped a_secondary_of_another_user_is_refused_with_the_reason: needs root to run \
             the secondary as another user"
        );
        return;
    }
    if !hugepages_available("a_secondary_of_another_user_is_refused_with_the_reason", 8) {
        return;
    }
    let dir = mount_2m().expect("hugepages_available checked the mount");
    let prefix = unique_prefix("otheruser");
    let eal = Eal::init(args(&["-m", "4", "--file-prefix", &prefix])).unwrap();
    let files = files_with_prefix(&dir, &prefix);
    assert!(!files.is_empty(), "the primary's page files");
    // The test binary where the other user can run it.
    let exe_dir = tempfile::Builder::new()
        .prefix("dpmem-other-user")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(exe_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = exe_dir.path().join("secondary_of_another_user_test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    for proc_type in ["secondary", "auto"] {
        let printed = run_ignored_test_in_child(&exe, "other_users_secondary_body", |command| {
            command
                .current_dir(exe_dir.path())
                .uid(OTHER_UID)
                .gid(OTHER_UID)
                .env_remove("XDG_RUNTIME_DIR")
                .env(ENV_PREFIX, &prefix)
                .env(ENV_PROC_TYPE, proc_type);
        });
        assert!(printed.contains("refused:"), "{proc_type}: {printed}");
    }
    // Nothing of the primary's changed.
    assert_eq!(files_with_prefix(&dir, &prefix), files);
    eal.heaps().check().unwrap();
    drop(eal);
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
}

#[test]
#[ignore = "run as another user by a_secondary_of_another_user_is_refused_with_the_reason"]
fn other_users_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the other-user test");
    let proc_type = std::env::var(ENV_PROC_TYPE).unwrap();
    assert!(!dpmem_sys::process::is_root(), "runs as another user");
    let err = Eal::init(args(&[
        "--proc-type",
        &proc_type,
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ]))
    .expect_err("a secondary of another user");
    assert_eq!(err.kind(), ErrorKind::NoEnt, "{err}");
    let text = err.to_string();
    assert!(text.contains("belongs to user 0"), "{text}");
    assert!(text.contains("a primary of another"), "{text}");
    assert!(
        !dpmem_eal::runtime_dir::location(&prefix).exists(),
        "the refused secondary created its runtime directory"
    );
    println!("refused: {err}");
}
