//! Option-combination rules: one test per rule, each with the refused combination (error
//! variant and both options named) and neighbouring combinations that are accepted.

use dpmem_eal::options::{EalOptions, HugeUnlink, OptionsError};

fn parse(args: &[&str]) -> Result<EalOptions, OptionsError> {
    EalOptions::parse(std::iter::once("prog").chain(args.iter().copied())).map(|(o, _)| o)
}

/// `args` must be refused as a conflict between exactly `first` and `second`, and the
/// message must name both.
fn conflict(args: &[&str], first: &str, second: &str) {
    match parse(args) {
        Err(err @ OptionsError::Conflict { .. }) => {
            let OptionsError::Conflict {
                first: f,
                second: s,
                ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!((*f, *s), (first, second), "{args:?}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(first) && msg.contains(second), "{msg}");
        }
        other => panic!("{args:?}: expected a conflict, got {other:?}"),
    }
}

fn accepted(args: &[&str]) {
    if let Err(err) = parse(args) {
        panic!("{args:?} should be accepted: {err}");
    }
}

#[test]
fn memory_with_socket_mem() {
    conflict(&["-m", "512", "--socket-mem=512"], "-m", "--socket-mem");
    conflict(&["--socket-mem=512", "-m512"], "-m", "--socket-mem");
    accepted(&["-m", "512"]);
    accepted(&["--socket-mem=512,512"]);
}

#[test]
fn socket_mem_with_no_huge() {
    conflict(
        &["--no-huge", "--socket-mem=64"],
        "--socket-mem",
        "--no-huge",
    );
    accepted(&["--no-huge", "-m", "64"]);
}

#[test]
fn socket_limit_with_no_huge() {
    // DPDK logs "only supported in non-legacy memory mode" and then ignores the limit;
    // dpmem refuses instead of dropping it silently.
    conflict(
        &["--no-huge", "--socket-limit=64"],
        "--socket-limit",
        "--no-huge",
    );
    accepted(&["--socket-limit=64"]);
    accepted(&["--socket-limit=64", "--socket-mem=32"]);
}

#[test]
fn legacy_mem_with_socket_limit() {
    conflict(
        &["--legacy-mem", "--socket-limit=64,0"],
        "--socket-limit",
        "--legacy-mem",
    );
    accepted(&["--legacy-mem", "--socket-mem=64,0"]);
}

#[test]
fn legacy_mem_with_in_memory() {
    conflict(
        &["--legacy-mem", "--in-memory"],
        "--legacy-mem",
        "--in-memory",
    );
    accepted(&["--legacy-mem"]);
    accepted(&["--in-memory"]);
}

#[test]
fn no_huge_with_in_memory() {
    // DPDK 22.11 refuses this too (--no-huge implies legacy memory).
    conflict(&["--no-huge", "--in-memory"], "--no-huge", "--in-memory");
}

#[test]
fn legacy_mem_with_match_allocations() {
    conflict(
        &["--legacy-mem", "--match-allocations"],
        "--legacy-mem",
        "--match-allocations",
    );
    accepted(&["--match-allocations"]);
}

#[test]
fn match_allocations_with_no_huge() {
    conflict(
        &["--match-allocations", "--no-huge"],
        "--no-huge",
        "--match-allocations",
    );
}

#[test]
fn in_memory_with_huge_unlink_never() {
    conflict(
        &["--in-memory", "--huge-unlink=never"],
        "--in-memory",
        "--huge-unlink=never",
    );
    // In-memory already unlinks; saying so again is fine.
    accepted(&["--in-memory", "--huge-unlink"]);
    accepted(&["--in-memory", "--huge-unlink=always"]);
    accepted(&["--in-memory", "--huge-unlink=existing"]);
}

#[test]
fn single_file_segments_with_huge_unlink_always() {
    for unlink in ["--huge-unlink", "--huge-unlink=always"] {
        conflict(
            &["--single-file-segments", unlink],
            "--single-file-segments",
            "--huge-unlink=always",
        );
        accepted(&["--single-file-segments", unlink, "--in-memory"]);
    }
    accepted(&["--single-file-segments", "--huge-unlink=existing"]);
    accepted(&["--single-file-segments", "--huge-unlink=never"]);
}

#[test]
fn huge_unlink_with_no_huge() {
    // As in DPDK 22.11: only unlinking before mapping (bare or =always) is refused.
    conflict(
        &["--no-huge", "--huge-unlink"],
        "--huge-unlink",
        "--no-huge",
    );
    conflict(
        &["--no-huge", "--huge-unlink=always"],
        "--huge-unlink",
        "--no-huge",
    );
    accepted(&["--no-huge", "--huge-unlink=existing"]);
    accepted(&["--no-huge", "--huge-unlink=never"]);
    // The "unless --in-memory" exemption is moot: --no-huge with --in-memory is refused.
    let err = parse(&["--no-huge", "--in-memory", "--huge-unlink"]).unwrap_err();
    assert!(matches!(err, OptionsError::Conflict { .. }), "{err}");
}

#[test]
fn huge_worker_stack_with_no_huge() {
    conflict(
        &["--no-huge", "--huge-worker-stack"],
        "--huge-worker-stack",
        "--no-huge",
    );
    conflict(
        &["--huge-worker-stack=256", "--no-huge"],
        "--huge-worker-stack",
        "--no-huge",
    );
    accepted(&["--huge-worker-stack=256"]);
}

#[test]
fn secondary_with_in_memory() {
    conflict(
        &["--in-memory", "--proc-type=secondary"],
        "--proc-type=secondary",
        "--in-memory",
    );
    accepted(&["--in-memory", "--proc-type=primary"]);
    accepted(&["--in-memory", "--proc-type=auto"]);
    accepted(&["--proc-type=secondary"]);
}

#[test]
fn in_memory_implies_unlink_without_error() {
    let o = parse(&["--in-memory", "--single-file-segments"]).unwrap();
    assert_eq!(o.effective_huge_unlink(), HugeUnlink::Always);
    assert!(!o.huge_unlink_given);
}

#[test]
fn file_prefix_rules() {
    for (bad, reason) in [("", "empty"), ("a%s", "'%'"), ("x/y", "'/'")] {
        let err = parse(&[&format!("--file-prefix={bad}")]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(
            err,
            OptionsError::InvalidValue {
                option: "--file-prefix",
                ..
            }
        ));
        assert!(
            msg.contains("--file-prefix") && msg.contains(reason),
            "{msg}"
        );
    }
    accepted(&["--file-prefix=app-1.b_c"]);
}

#[test]
fn main_lcore_outside_the_set() {
    for (args, source) in [
        (&["-l", "1-2", "--main-lcore=0"][..], "-l"),
        (&["-c", "0x6", "--main-lcore=0"], "-c"),
        (&["--lcores", "1@0", "--main-lcore=0"], "--lcores"),
    ] {
        let err = parse(args).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, OptionsError::MainLcoreNotInSet { lcore: 0, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("--main-lcore") && msg.contains(source),
            "{msg}"
        );
    }
    // Order does not matter: the check runs after all options are read.
    accepted(&["--main-lcore=2", "-l", "1-2"]);
}
