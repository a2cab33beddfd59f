//! Nothing is left in the runtime directory: not by a secondary that found no primary, not by a
//! primary whose `Eal` is never dropped (held in a static, or leaked to lend it to lcores).

mod common;

use common::*;
use dpmem_eal::{Eal, EalError};

const ENV_PREFIX: &str = "DPMEM_TEST_LEFTOVERS_PREFIX";

#[test]
fn a_secondary_without_a_primary_leaves_nothing() {
    let prefix = unique_prefix("noprimary");
    let dir = dpmem_eal::runtime_dir::location(&prefix);
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix])).unwrap_err();
    assert!(matches!(err, EalError::Secondary(_)), "{err}");
    assert!(err.to_string().contains("no primary"), "{err}");
    assert!(!dir.exists(), "{} was left behind", dir.display());

    // With the directory of a primary that is gone (its configuration unlocked), the same.
    let primary = no_huge_eal("gone", 4);
    let prefix = primary.options().file_prefix.clone();
    let dir = primary.runtime_dir().unwrap().to_path_buf();
    let config = dir.join("config");
    // A second name keeps the file (and so the directory) when the primary removes its own.
    std::fs::hard_link(&config, dir.join("config.kept")).unwrap();
    drop(primary);
    std::fs::rename(dir.join("config.kept"), &config).unwrap();
    let before = std::fs::read_dir(&dir).unwrap().count();
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix])).unwrap_err();
    assert!(err.to_string().contains("no primary"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before);
    std::fs::remove_file(&config).unwrap();
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn a_primary_that_is_never_dropped_leaves_nothing_at_exit() {
    let prefix = unique_prefix("leaked");
    let dir = dpmem_eal::runtime_dir::location(&prefix);
    let printed = run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "child_leaks_its_primary",
        |command| {
            command.env(ENV_PREFIX, &prefix);
        },
    );
    assert!(printed.contains("leaked a primary in"), "{printed}");
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
#[ignore = "run by a_primary_that_is_never_dropped_leaves_nothing_at_exit"]
fn child_leaks_its_primary() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a leftovers test");
    let eal = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", &prefix])).unwrap();
    let dir = eal.runtime_dir().unwrap().to_path_buf();
    assert!(dir.join("config").exists());
    // As a program does that lends its EAL to lcores for 'static.
    let eal: &'static Eal = Box::leak(Box::new(eal));
    println!("leaked a primary in {}", dir.display());
    assert!(eal.runtime_dir().is_some());
}
