//! The `mp` workload's own tests: the lines a primary child prints, the secondaries'
//! options, and dpmem's side end to end with real secondary processes (this test binary
//! re-executed, running [`mp_secondary_body`]).

use std::process::Command;

use dpmem::eal::Eal;

use super::*;

/// The secondary's EAL options (program name first), one per line, for
/// [`mp_secondary_body`].
const ENV_SECONDARY_ARGS: &str = "DPMEM_BENCH_MP_TEST_SECONDARY_ARGS";

#[test]
fn child_lines_round_trip_figures_and_errors() {
    let lines: Vec<String> = [
        "DPMEM_BENCH_MP row 0 mean 21000.5 p50 20000 p99 41000",
        "DPMEM_BENCH_MP row 2 error a secondary exited before it was ready",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cells = parse_child_lines(&lines, 3).unwrap();
    assert_eq!(
        cells[0],
        Ok(Latency {
            mean: 21000.5,
            p50: 20000.0,
            p99: 41000.0
        })
    );
    assert!(cells[1].is_err(), "not reported");
    assert_eq!(
        cells[2],
        Err("a secondary exited before it was ready".to_owned())
    );
    for bad in [
        "DPMEM_BENCH_MP row 3 mean 1 p50 1 p99 1",
        "DPMEM_BENCH_MP row 0 mean x p50 1 p99 1",
        "DPMEM_BENCH_MP row 0 mean 1 p99 1 p50 1",
        "DPMEM_BENCH_MP row 0 mean 1 p50 1",
        "DPMEM_BENCH_MP row 0 median 1",
        "DPMEM_BENCH_MP pool 7",
    ] {
        assert!(parse_child_lines(&[bad.to_owned()], 3).is_err(), "{bad}");
    }
}

#[test]
fn secondaries_get_the_primarys_prefix_and_their_own_options() {
    let primary: Vec<String> = ["prog", "-l", "0", "-m", "32", "--file-prefix", "p1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        secondary_eal_args(&primary, false).unwrap(),
        [
            "prog",
            "-l",
            "1",
            "--proc-type",
            "secondary",
            "--file-prefix",
            "p1"
        ]
    );
    let dpdk = secondary_eal_args(&primary, true).unwrap();
    assert!(dpdk.starts_with(&["prog".to_owned(), "--no-pci".to_owned()]));
    assert!(dpdk.ends_with(&["--file-prefix".to_owned(), "p1".to_owned()]));
    let no_prefix: Vec<String> = vec!["prog".into(), "-l".into(), "0".into()];
    assert!(secondary_eal_args(&no_prefix, false).is_err());
}

/// How the tests start a secondary: [`mp_secondary_body`] in a child with `eal_args`.
fn test_secondary(eal_args: &[String]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut command = dpmem_testkit::ignored_test_command(&exe, "mp::tests::mp_secondary_body");
    command.env(ENV_SECONDARY_ARGS, eal_args.join("\n"));
    command
}

/// A secondary whose primary is not there fails to start, says why, and is gone: any user,
/// any machine.
#[test]
fn a_secondary_without_its_primary_fails_to_start_and_says_why() {
    let prefix = format!("mp_bench_none_{}", std::process::id());
    let args: Vec<String> = ["bench", "--file-prefix", &prefix, "-l", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let secondary = secondary_eal_args(&args, false).unwrap();
    let cpus = unpinned_cpus().unwrap();
    let err = Secondary::start(test_secondary(&secondary), &cpus).unwrap_err();
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(err.contains("Eal::init (secondary) failed"), "{err}");
    crate::init::remove_leftovers(None, &prefix);
}

/// dpmem's side end to end: a primary here, secondaries in child processes; every row's
/// rounds run and are checked (each growth round must have needed a new page), a request or ping that reaches the wrong number of secondaries
/// fails its row, and nothing is left behind.
#[test]
fn dpmem_side_runs_every_row_with_real_secondaries() {
    if !dpmem_testkit::hugepages_available(
        "dpmem_side_runs_every_row_with_real_secondaries",
        MEMORY_MB / 2,
    ) {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: the secondaries run on lcore 1, which needs two CPUs");
        return;
    }
    let prefix = format!("mp_bench_test_{}", std::process::id());
    // As the workload runs it: dynamic memory, nothing preallocated, so that every growth
    // round needs a new page.
    let args: Vec<String> = ["bench", "-l", "0", "--file-prefix", &prefix]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let secondary_args = secondary_eal_args(&args, false).unwrap();
    let cpus = unpinned_cpus().unwrap();
    let eal = Eal::init(&args).unwrap();
    let runtime_dir = eal.runtime_dir().unwrap().to_path_buf();
    let primary = DpmemPrimary::new(&eal).unwrap();
    let mut rounds = [0u64; 64];

    let mut first = Secondary::start(test_secondary(&secondary_args), &cpus).unwrap();
    primary.request_rounds(1, &mut rounds).unwrap();
    assert!(rounds.iter().all(|&ns| ns > 0), "{rounds:?}");
    rounds = [0; 64];
    primary.message_rounds(&mut rounds).unwrap();
    assert!(rounds.iter().all(|&ns| ns > 0), "{rounds:?}");
    assert!(Latency::of(&rounds, 2).unwrap().mean > 0.0);
    let mut grown = [0u64; 8];
    first.grow_rounds(&mut grown).unwrap();
    assert!(grown.iter().all(|&ns| ns > 0), "{grown:?}");

    let second = Secondary::start(test_secondary(&secondary_args), &cpus).unwrap();
    primary.request_rounds(2, &mut rounds).unwrap();
    let miscounted = primary.request_rounds(1, &mut rounds).unwrap_err();
    assert!(
        miscounted.contains("reached 2 secondaries, not 1"),
        "{miscounted}"
    );
    let two_pongs = primary.message_rounds(&mut rounds).unwrap_err();
    assert!(two_pongs.contains("reached 2 secondaries"), "{two_pongs}");

    first.stop().unwrap();
    second.stop().unwrap();
    // Both are gone from the channel: a request reaches nobody.
    let mut none = [0u64; 1];
    let err = primary.request_rounds(1, &mut none).unwrap_err();
    assert!(err.contains("reached 0 secondaries"), "{err}");
    drop(primary);
    drop(eal);
    assert!(
        !runtime_dir.exists(),
        "{} left behind",
        runtime_dir.display()
    );
    let mount = dpmem_testkit::mount_2m().unwrap();
    let left: Vec<_> = std::fs::read_dir(&mount)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "hugepage files left: {left:?}");
}

/// A secondary of [`dpmem_side_runs_every_row_with_real_secondaries`]: serves until its
/// stdin ends.
#[test]
#[ignore = "run by the mp tests as a secondary process"]
fn mp_secondary_body() {
    let args = std::env::var(ENV_SECONDARY_ARGS).expect("run by an mp test");
    let args: Vec<String> = args.lines().map(str::to_owned).collect();
    // As a secondary child does: the reason last on stderr, a failed exit.
    if let Err(e) = dpmem_side::serve_as_secondary(&args) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
