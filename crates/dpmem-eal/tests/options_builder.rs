//! The builder means what the command line means, and host validation.

use std::collections::BTreeSet;
use std::path::PathBuf;

use dpmem_eal::options::{
    EalOptions, HostFacts, HugeUnlink, IovaModeRequest, LcoreMap, OptionsError, ProcType,
};

fn parse(args: &[&str]) -> EalOptions {
    EalOptions::parse(std::iter::once("prog").chain(args.iter().copied()))
        .unwrap()
        .0
}

#[test]
fn builder_equals_parse_for_the_same_meaning() {
    let built = EalOptions::builder()
        .lcores("1,2@(5-7),(3-5)@(0,2),(0,6),7-8")
        .unwrap()
        .main_lcore(2)
        .socket_mem_mb(vec![1024, 0, 512])
        .socket_limit_mb(vec![2048, 0, 0])
        .single_file_segments(true)
        .huge_dir("/dev/hugepages")
        .file_prefix("app1")
        .huge_unlink(HugeUnlink::Existing)
        .iova_mode(IovaModeRequest::Va)
        .match_allocations(true)
        .proc_type(ProcType::Auto)
        .base_virtaddr(0x1_0000_0001)
        .huge_worker_stack_kb(Some(512))
        .build()
        .unwrap();
    let parsed = parse(&[
        "--lcores=1,2@(5-7),(3-5)@(0,2),(0,6),7-8",
        "--main-lcore",
        "2",
        "--socket-mem=1024,0,512",
        "--socket-limit",
        "2048,0,0",
        "--single-file-segments",
        "--huge-dir=/dev/hugepages",
        "--file-prefix",
        "app1",
        "--huge-unlink=existing",
        "--iova-mode=va",
        "--match-allocations",
        "--proc-type=auto",
        "--base-virtaddr=100000001",
        "--huge-worker-stack=512",
    ]);
    assert_eq!(built, parsed);
    assert_eq!(built.base_virtaddr, Some(0x1_0100_0000));
}

#[test]
fn builder_lcore_spellings_match_parse() {
    let by_list = EalOptions::builder()
        .corelist("0-3")
        .unwrap()
        .build()
        .unwrap();
    let by_mask = EalOptions::builder()
        .coremask("0xf")
        .unwrap()
        .build()
        .unwrap();
    let by_map = EalOptions::builder()
        .lcore_map(LcoreMap::identity(0..4).unwrap())
        .build()
        .unwrap();
    assert_eq!(by_list, parse(&["-l", "0-3"]));
    assert_eq!(by_mask, parse(&["-c", "0xf"]));
    assert_eq!(by_map, parse(&["--lcores=0-3"]));
    assert_eq!(by_list, by_mask);
}

#[test]
fn builder_other_flags_match_parse() {
    let built = EalOptions::builder()
        .no_huge(true)
        .memory_mb(64)
        .huge_unlink(HugeUnlink::Never)
        .build()
        .unwrap();
    assert_eq!(
        built,
        parse(&["--no-huge", "-m", "64", "--huge-unlink=never"])
    );
    let built = EalOptions::builder()
        .legacy_mem(true)
        .huge_worker_stack_kb(None)
        .build()
        .unwrap();
    assert_eq!(built, parse(&["--legacy-mem", "--huge-worker-stack"]));
    let built = EalOptions::builder().in_memory(true).build().unwrap();
    assert_eq!(built, parse(&["--in-memory"]));
    assert_eq!(
        EalOptions::builder().build().unwrap(),
        EalOptions::default()
    );
}

#[test]
fn builder_runs_the_same_checks() {
    let cases: Vec<(Result<EalOptions, OptionsError>, &[&str])> = vec![
        (
            EalOptions::builder()
                .memory_mb(1)
                .socket_mem_mb(vec![1])
                .build(),
            &["-m", "1", "--socket-mem=1"],
        ),
        (
            EalOptions::builder()
                .legacy_mem(true)
                .in_memory(true)
                .build(),
            &["--legacy-mem", "--in-memory"],
        ),
        (
            EalOptions::builder()
                .no_huge(true)
                .huge_unlink(HugeUnlink::Always)
                .build(),
            &["--no-huge", "--huge-unlink"],
        ),
        (
            EalOptions::builder()
                .in_memory(true)
                .proc_type(ProcType::Secondary)
                .build(),
            &["--in-memory", "--proc-type=secondary"],
        ),
        (
            EalOptions::builder()
                .corelist("0-1")
                .unwrap()
                .main_lcore(3)
                .build(),
            &["-l", "0-1", "--main-lcore=3"],
        ),
        (
            EalOptions::builder().file_prefix("a%b").build(),
            &["--file-prefix=a%b"],
        ),
        (
            EalOptions::builder().main_lcore(200).build(),
            &["--main-lcore=200"],
        ),
        (
            EalOptions::builder().huge_worker_stack_kb(Some(0)).build(),
            &["--huge-worker-stack=0"],
        ),
        (
            EalOptions::builder().memory_mb(u64::MAX).build(),
            &["-m", "18446744073709551615"],
        ),
    ];
    for (built, args) in cases {
        let parsed = EalOptions::parse(std::iter::once("prog").chain(args.iter().copied()));
        let built = built.expect_err(&format!("builder for {args:?} should fail"));
        let parsed = parsed.expect_err(&format!("{args:?} should fail"));
        assert_eq!(built, parsed, "{args:?}");
    }
}

#[test]
fn builder_refuses_two_lcore_sets() {
    let err = EalOptions::builder()
        .corelist("0")
        .unwrap()
        .coremask("1")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        OptionsError::Conflict {
            first: "-c",
            second: "-l",
            ..
        }
    ));
    let err = EalOptions::builder()
        .lcores("0")
        .unwrap()
        .lcores("1")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        OptionsError::Repeated {
            option: "--lcores",
            ..
        }
    ));
    let err = EalOptions::builder()
        .lcore_map(LcoreMap::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("--lcores"), "{err}");
}

#[test]
fn builder_string_setters_report_syntax_errors_at_once() {
    let err = EalOptions::builder().lcores("3@((1,3)").unwrap_err();
    assert!(matches!(
        err,
        OptionsError::InvalidValue {
            option: "--lcores",
            ..
        }
    ));
    assert!(EalOptions::builder().corelist("1-").is_err());
    assert!(EalOptions::builder().coremask("0").is_err());
}

#[test]
fn lcore_map_insert_keeps_its_invariants() {
    let mut map = LcoreMap::new();
    map.insert(0, BTreeSet::from([3, 4])).unwrap();
    assert!(map.insert(0, BTreeSet::from([1])).is_err());
    assert!(map.insert(128, BTreeSet::from([1])).is_err());
    assert!(map.insert(1, BTreeSet::new()).is_err());
    assert!(map.insert(1, BTreeSet::from([1024])).is_err());
    assert_eq!(map.len(), 1);
    assert!(!map.is_identity());
    assert_eq!(map.to_lcores_arg(), "0@(3-4)");
}

fn host(cpus: &[u32], mounts: &[&str]) -> HostFacts {
    HostFacts {
        cpus: cpus.iter().copied().collect(),
        hugetlbfs_mounts: mounts.iter().map(PathBuf::from).collect(),
    }
}

#[test]
fn validate_cpus_the_machine_lacks() {
    let h = host(&[0, 1, 2, 3], &["/dev/hugepages"]);
    assert!(parse(&["-l", "0-3"]).validate(&h).is_ok());
    let err = parse(&["-l", "0-4"]).validate(&h).unwrap_err();
    assert_eq!(
        err,
        OptionsError::CpuUnavailable {
            lcore: 4,
            cpu: 4,
            available: "0-3".into()
        }
    );
    assert!(err.to_string().contains("--lcores"), "{err}");
    // --lcores checks the cpus, not the lcore ids.
    assert!(parse(&["--lcores", "7@3"]).validate(&h).is_ok());
    let err = parse(&["--lcores", "0@(3-5)"]).validate(&h).unwrap_err();
    assert!(matches!(
        err,
        OptionsError::CpuUnavailable {
            lcore: 0,
            cpu: 4,
            ..
        }
    ));
}

#[test]
fn validate_main_lcore_against_default_set() {
    let h = host(&[0, 1], &[]);
    assert!(parse(&["--main-lcore=1"]).validate(&h).is_ok());
    let err = parse(&["--main-lcore=5"]).validate(&h).unwrap_err();
    assert!(matches!(
        err,
        OptionsError::MainLcoreNotInSet { lcore: 5, .. }
    ));
    assert!(err.to_string().contains("--main-lcore"), "{err}");
    // A struct built by hand is checked too.
    let mut o = parse(&["-l", "0-1"]);
    o.main_lcore = Some(3);
    assert!(matches!(
        o.validate(&host(&[0, 1, 2, 3], &[])),
        Err(OptionsError::MainLcoreNotInSet { lcore: 3, .. })
    ));
}

#[test]
fn validate_huge_dir() {
    let h = host(&[0], &["/dev/hugepages", "/mnt/huge1G/"]);
    for ok in [
        "/dev/hugepages",
        "/dev/hugepages/",
        "/dev/hugepages/app1",
        "/dev/./hugepages/x/../y",
        "/mnt/huge1G",
    ] {
        assert!(
            parse(&["--huge-dir", ok]).validate(&h).is_ok(),
            "{ok} should be inside a mount"
        );
    }
    for bad in [
        "/dev",
        "/dev/hugepages2",
        "/dev/hugepages/../shm",
        "/tmp",
        "dev/hugepages",
    ] {
        let err = parse(&["--huge-dir", bad]).validate(&h).unwrap_err();
        assert!(
            matches!(err, OptionsError::HugeDirNotHugetlbfs { .. }),
            "{bad}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("--huge-dir") && msg.contains("/dev/hugepages"),
            "{msg}"
        );
    }
    let err = parse(&["--huge-dir", "/dev/hugepages"])
        .validate(&host(&[0], &[]))
        .unwrap_err();
    assert!(err.to_string().contains("none"), "{err}");
    // --no-huge never touches hugetlbfs, so the directory is not checked.
    assert!(parse(&["--no-huge", "--huge-dir=/tmp"])
        .validate(&host(&[0], &[]))
        .is_ok());
}
