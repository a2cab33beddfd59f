//! A DPDK command line runs unchanged: options for what dpmem does not have (devices, drivers,
//! logging, tracing) are accepted with a warning each, their values checked as DPDK
//! checks them; options whose meaning dpmem cannot honour are refused with the reason; and the
//! file prefix is one plain name.

mod common;

use common::{args, unique_prefix};
use dpmem_eal::options::{EalOptions, IgnoredOption, OptionsError};
use dpmem_eal::{Eal, EalError, ErrorKind};

fn parse(argv: &[&str]) -> Result<(EalOptions, Vec<String>), OptionsError> {
    EalOptions::parse(std::iter::once("app").chain(argv.iter().copied()))
}

fn two_cpus() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipped: the DPDK sample line runs on lcores 0-1, this process has {cpus} CPU");
    }
    cpus >= 2
}

/// DPDK's sample command line, with `--no-huge` so it runs anywhere.
fn sample_line(prefix: &str) -> Vec<String> {
    args(&[
        "-l",
        "0-1",
        "-n",
        "4",
        "-a",
        "0000:00:00.0",
        "--log-level=8",
        "--no-pci",
        "--no-huge",
        "-m",
        "16",
        "--file-prefix",
        prefix,
        "--",
        "-p",
        "0x3",
    ])
}

const SAMPLE_WARNINGS: [&str; 4] = [
    "EAL option -n 4 ignored",
    "EAL option -a 0000:00:00.0 ignored",
    "EAL option --log-level=8 ignored",
    "EAL option --no-pci ignored",
];

#[test]
fn the_dpdk_sample_line_runs_with_a_warning_per_ignored_option() {
    if !two_cpus() {
        return;
    }
    let prefix = unique_prefix("sample");
    let eal = Eal::init(sample_line(&prefix)).unwrap();
    assert_eq!(eal.app_args(), ["-p", "0x3"]);
    let warnings = eal.options().warnings();
    assert_eq!(warnings.len(), SAMPLE_WARNINGS.len(), "{warnings:#?}");
    for (warning, start) in warnings.iter().zip(SAMPLE_WARNINGS) {
        assert!(warning.starts_with(start), "{warning}");
        assert!(!warning.contains('\n'), "one line: {warning}");
    }
    assert!(warnings[0].contains("memory channels"), "{}", warnings[0]);
    assert_eq!(
        eal.options().ignored,
        [
            IgnoredOption {
                option: "-n".into(),
                value: Some("4".into())
            },
            IgnoredOption {
                option: "-a".into(),
                value: Some("0000:00:00.0".into())
            },
            IgnoredOption {
                option: "--log-level".into(),
                value: Some("8".into())
            },
            IgnoredOption {
                option: "--no-pci".into(),
                value: None
            },
        ]
    );
    // What dpmem does act on came through as usual.
    assert_eq!(eal.lcores().len(), 2);
    assert!(eal.options().no_huge);
}

#[test]
fn init_prints_each_warning_once_on_stderr() {
    if !two_cpus() {
        return;
    }
    let printed = common::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "child_runs_the_sample_line",
        |_| {},
    );
    for start in SAMPLE_WARNINGS {
        assert_eq!(
            printed.matches(start).count(),
            1,
            "{start:?} in:\n{printed}"
        );
    }
}

#[test]
#[ignore = "run by init_prints_each_warning_once_on_stderr"]
fn child_runs_the_sample_line() {
    let eal = Eal::init(sample_line(&unique_prefix("samplechild"))).unwrap();
    assert_eq!(eal.app_args(), ["-p", "0x3"]);
}

#[test]
fn the_sample_line_prints_back_and_parses_equal() {
    let (opts, app) = parse(&[
        "-l",
        "0-1",
        "-n",
        "4",
        "-a",
        "0000:00:00.0",
        "--log-level=8",
        "--no-pci",
        "--",
        "-p",
        "0x3",
    ])
    .unwrap();
    assert_eq!(app, ["-p", "0x3"]);
    let printed = opts.to_args();
    assert_eq!(
        printed,
        [
            "-l0-1",
            "-n4",
            "-a0000:00:00.0",
            "--log-level=8",
            "--no-pci"
        ]
    );
    let (back, _) = EalOptions::parse(std::iter::once("app".to_owned()).chain(printed)).unwrap();
    assert_eq!(back, opts);
}

#[test]
fn every_ignored_option_is_accepted_in_both_forms() {
    let lines: &[&[&str]] = &[
        &["-n", "4"],
        &["-n4"],
        &["-r", "2"],
        &["-a", "0000:01:00.0"],
        &["--allow", "0000:01:00.0"],
        &["--allow=0000:01:00.0,arg=1"],
        &["-w", "0000:01:00.0"],
        &["-b", "0000:01:00.0"],
        &["--block=0000:01:00.0"],
        &["--vdev", "net_pcap0,iface=eth2"],
        &["--vdev=net_ring0"],
        &["-d", "/usr/lib/dpdk/pmds"],
        &["--log-level", "lib.eal:debug"],
        &["--log-level=pmd.net.*,7"],
        &["--log-level=err"],
        &["--syslog", "daemon"],
        &["--trace=.*"],
        &["--trace-dir", "/tmp/trace"],
        &["--trace-bufsz=2M"],
        &["--trace-mode=d"],
        &["--no-pci"],
        &["--no-hpet"],
        &["--vmware-tsc-map"],
        &["--create-uio-dev"],
        &["--vfio-intr", "msix"],
        &["--vfio-vf-token=14d63f20-8445-11ea-8900-1f9ce7d5650d"],
        &["-v"],
        &["--force-max-simd-bitwidth=512"],
        &["--mbuf-pool-ops-name", "ring_mp_mc"],
    ];
    for line in lines {
        let (opts, _) = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(opts.ignored.len(), 1, "{line:?}");
        let warnings = opts.warnings();
        assert!(
            warnings[0].contains(&opts.ignored[0].option) && warnings[0].contains("ignored: "),
            "{line:?}: {warnings:?}"
        );
        // Apart from the ignored list, the line means what an empty one means.
        assert_eq!(
            EalOptions {
                ignored: Vec::new(),
                ..opts.clone()
            },
            EalOptions::default()
        );
        let (back, _) =
            EalOptions::parse(std::iter::once("app".to_owned()).chain(opts.to_args())).unwrap();
        assert_eq!(back, opts, "{line:?}");
    }
}

#[test]
fn telemetry_options_mean_what_they_mean_in_dpdk() {
    // On by default; `--no-telemetry` turns it off wherever it stands, `--telemetry` asks for
    // the default. Neither is an ignored option, so neither warns.
    for (line, off) in [
        (&[][..], false),
        (&["--telemetry"], false),
        (&["--no-telemetry"], true),
        (&["--no-telemetry", "--telemetry"], true),
        (&["--telemetry", "--no-telemetry"], true),
    ] {
        let (opts, _) = parse(line).unwrap();
        assert_eq!(opts.no_telemetry, off, "{line:?}");
        assert!(opts.warnings().is_empty(), "{line:?}");
        let (back, _) =
            EalOptions::parse(std::iter::once("app".to_owned()).chain(opts.to_args())).unwrap();
        assert_eq!(back, opts, "{line:?}");
    }
    assert_eq!(
        EalOptions::builder()
            .no_telemetry(true)
            .build()
            .unwrap()
            .to_args(),
        ["--no-telemetry"]
    );
    assert!(matches!(
        parse(&["--no-telemetry=1"]),
        Err(OptionsError::UnexpectedValue {
            option: "--no-telemetry",
            ..
        })
    ));
    assert!(parse(&["--telemetry=yes"]).is_err());
}

#[test]
fn values_dpdk_refuses_are_refused() {
    for (line, option) in [
        (&["-n", "0"][..], "-n"),
        (&["-n", "four"], "-n"),
        (&["-r", "17"], "-r"),
        (&["--log-level=loud"], "--log-level"),
        (&["--log-level=9"], "--log-level"),
        (&["--log-level=:8"], "--log-level"),
        (&["--syslog", "local9"], "--syslog"),
        (&["--vfio-intr=msi-x"], "--vfio-intr"),
        (&["--vfio-vf-token=not-a-uuid"], "--vfio-vf-token"),
        (&["--trace-bufsz=0"], "--trace-bufsz"),
        (&["--trace-mode=keep"], "--trace-mode"),
        (
            &["--force-max-simd-bitwidth=100"],
            "--force-max-simd-bitwidth",
        ),
        (&["-a", ""], "-a"),
    ] {
        let err = parse(line).unwrap_err();
        assert!(
            matches!(&err, OptionsError::InvalidValue { option: o, .. } if *o == option),
            "{line:?}: {err}"
        );
    }
    // Arity as DPDK's getopt has it.
    assert!(matches!(
        parse(&["--syslog"]).unwrap_err(),
        OptionsError::MissingValue { option: "--syslog" }
    ));
    assert!(matches!(
        parse(&["-n"]).unwrap_err(),
        OptionsError::MissingValue { option: "-n" }
    ));
    assert!(matches!(
        parse(&["--no-pci=yes"]).unwrap_err(),
        OptionsError::UnexpectedValue { .. }
    ));
    assert!(matches!(
        parse(&["-vx"]).unwrap_err(),
        OptionsError::UnexpectedValue { option: "-v", .. }
    ));
}

#[test]
fn combinations_dpdk_refuses_are_refused() {
    for line in [
        &["-a", "0000:01:00.0", "-b", "0000:02:00.0"][..],
        &["--block=0000:02:00.0", "--allow=0000:01:00.0"],
        &["-w", "0000:01:00.0", "-b", "0000:02:00.0"],
    ] {
        let err = parse(line).unwrap_err();
        assert!(
            matches!(err, OptionsError::Conflict { .. }),
            "{line:?}: {err}"
        );
    }
    let err = parse(&["--trace-dir=/a", "--trace-dir=/b"]).unwrap_err();
    assert!(
        matches!(
            err,
            OptionsError::Repeated {
                option: "--trace-dir",
                ..
            }
        ),
        "{err}"
    );
    // Allow-list entries may repeat, as in DPDK.
    let (opts, _) = parse(&["-a", "0000:01:00.0", "--allow", "0000:02:00.0"]).unwrap();
    assert_eq!(opts.ignored.len(), 2);
}

#[test]
fn options_dpmem_cannot_honour_are_refused_with_the_reason() {
    for (line, option, says) in [
        (&["-s", "0x4"][..], "-s", "service cores"),
        (&["-S", "2"], "-S", "service cores"),
        (&["--no-shconf"], "--no-shconf", "--in-memory"),
        (&["--help"], "--help", "usage"),
        (&["-h"], "-h", "usage"),
        (&["--master-lcore", "0"], "--master-lcore", "--main-lcore"),
    ] {
        let err = parse(line).unwrap_err();
        match &err {
            OptionsError::Unsupported { option: o, reason } => {
                assert_eq!(*o, option);
                assert!(reason.contains(says), "{err}");
            }
            other => panic!("{line:?}: {other}"),
        }
        assert!(err.to_string().contains("not supported by dpmem"), "{err}");
    }
    // Still unknown: what DPDK 22.11 does not know either.
    assert!(matches!(
        parse(&["--bogus"]).unwrap_err(),
        OptionsError::UnknownOption(_)
    ));
}

#[test]
fn the_builder_takes_ignored_options_with_the_same_checks() {
    let built = EalOptions::builder()
        .ignored_option("-n", Some("4"))
        .unwrap()
        .ignored_option("--no-pci", None)
        .unwrap()
        .build()
        .unwrap();
    let (parsed, _) = parse(&["-n", "4", "--no-pci"]).unwrap();
    assert_eq!(built, parsed);
    let refused = EalOptions::builder()
        .ignored_option("-n", Some("0"))
        .unwrap()
        .build();
    assert!(matches!(
        refused,
        Err(OptionsError::InvalidValue { option: "-n", .. })
    ));
    assert!(matches!(
        EalOptions::builder().ignored_option("-s", Some("1")),
        Err(OptionsError::Unsupported { option: "-s", .. })
    ));
    assert!(matches!(
        EalOptions::builder().ignored_option("--no-huge", None),
        Err(OptionsError::UnknownOption(_))
    ));
}

#[test]
fn file_prefixes_are_one_plain_name() {
    for good in ["rte", "app-1", "t_2.x", "A", &"p".repeat(63)] {
        let (opts, _) = parse(&["--file-prefix", good]).unwrap();
        assert_eq!(opts.file_prefix, good);
    }
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "a b",
        "a%d",
        "é",
        "a:b",
        "a\nb",
        &"p".repeat(64),
    ] {
        let err = parse(&["--file-prefix", bad]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                OptionsError::InvalidValue {
                    option: "--file-prefix",
                    ..
                }
            ),
            "{bad:?}: {text}"
        );
        assert!(
            text.contains("letters, digits, '-', '_' or '.'"),
            "the rule is stated: {text}"
        );
        assert!(EalOptions::builder().file_prefix(bad).build().is_err());
    }
}

#[test]
fn init_refuses_a_dotdot_prefix_and_changes_nothing() {
    // `<base>/..` is the directory the base lies in: /var/run for root.
    let probe = dpmem_eal::runtime_dir::location("probe");
    let above = probe.parent().and_then(|base| base.parent()).unwrap();
    let before = snapshot(above);
    let err = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", ".."])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert!(matches!(err, EalError::Options(_)), "{err}");
    assert!(err.to_string().contains("'..'"), "{err}");
    assert_eq!(snapshot(above), before, "{} changed", above.display());
}

/// The mode of a directory and whether a `config` file lies in it (what a `..` prefix changed
/// before it was refused); other entries may come and go with other programs.
fn snapshot(dir: &std::path::Path) -> (Option<u32>, bool) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).ok().map(|m| m.permissions().mode());
    (mode, dir.join("config").exists())
}
