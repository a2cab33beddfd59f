//! Parsing: option forms, the lcore grammars, values, and the application's arguments.

use std::collections::BTreeSet;
use std::path::PathBuf;

use dpmem_eal::options::{
    EalOptions, HugeUnlink, IovaModeRequest, LcoreMap, OptionsError, ProcType, MAX_LCORE,
};

fn parse(args: &[&str]) -> Result<EalOptions, OptionsError> {
    let argv = std::iter::once("prog").chain(args.iter().copied());
    EalOptions::parse(argv).map(|(opts, app)| {
        assert!(app.is_empty(), "unexpected app args {app:?}");
        opts
    })
}

/// Parsing must fail, and the message must name `option`.
fn rejected(args: &[&str], option: &str) -> OptionsError {
    let err = parse(args).expect_err(&format!("{args:?} should be refused"));
    let msg = err.to_string();
    assert!(
        msg.contains(option),
        "message {msg:?} does not name {option}"
    );
    err
}

fn set(ids: &[u32]) -> BTreeSet<u32> {
    ids.iter().copied().collect()
}

fn identity(ids: &[u32]) -> Option<LcoreMap> {
    Some(LcoreMap::identity(ids.iter().copied()).unwrap())
}

#[test]
fn empty_command_line_gives_defaults() {
    let opts = parse(&[]).unwrap();
    assert_eq!(opts, EalOptions::default());
    assert_eq!(opts.file_prefix, "dpmem");
    assert_eq!(opts.huge_unlink, HugeUnlink::Existing);
    assert!(!opts.huge_unlink_given);
    assert_eq!(opts.proc_type, ProcType::Primary);
    assert_eq!(opts.lcores, None);
}

#[test]
fn program_name_alone_or_missing() {
    assert_eq!(
        EalOptions::parse(Vec::<String>::new()).unwrap().0,
        EalOptions::default()
    );
}

#[test]
fn corelist_in_all_forms() {
    for args in [
        &["-l", "0-3"][..],
        &["-l0-3"],
        &["-l", "0,1,2,3"],
        &["-l", "0-1,2-3"],
    ] {
        assert_eq!(
            parse(args).unwrap().lcores,
            identity(&[0, 1, 2, 3]),
            "{args:?}"
        );
    }
    assert_eq!(
        parse(&["-l", "0-3,5"]).unwrap().lcores,
        identity(&[0, 1, 2, 3, 5])
    );
    assert_eq!(
        parse(&["-l", "0,2-4"]).unwrap().lcores,
        identity(&[0, 2, 3, 4])
    );
}

#[test]
fn lcores_long_forms() {
    let a = parse(&["--lcores=0-3"]).unwrap();
    let b = parse(&["--lcores", "0-3"]).unwrap();
    assert_eq!(a, b);
    // A bare range maps each lcore to its own cpu, exactly like -l.
    assert_eq!(a.lcores, identity(&[0, 1, 2, 3]));
}

#[test]
fn lcores_documented_example() {
    let opts = parse(&["--lcores=1,2@(5-7),(3-5)@(0,2),(0,6),7-8"]).unwrap();
    let map = opts.lcores.unwrap();
    assert_eq!(map.len(), 9);
    assert_eq!(
        map.lcore_ids().collect::<Vec<_>>(),
        (0..=8).collect::<Vec<_>>()
    );
    assert_eq!(map.get(1), Some(&set(&[1])));
    assert_eq!(map.get(2), Some(&set(&[5, 6, 7])));
    assert_eq!(map.get(3), Some(&set(&[0, 2])));
    assert_eq!(map.get(4), Some(&set(&[0, 2])));
    assert_eq!(map.get(5), Some(&set(&[0, 2])));
    assert_eq!(map.get(0), Some(&set(&[0, 6])));
    assert_eq!(map.get(6), Some(&set(&[0, 6])));
    assert_eq!(map.get(7), Some(&set(&[7])));
    assert_eq!(map.get(8), Some(&set(&[8])));
    let pairs: Vec<(u32, BTreeSet<u32>)> = map.iter().map(|(l, c)| (l, c.clone())).collect();
    assert_eq!(pairs[0], (0, set(&[0, 6])));
}

#[test]
fn lcores_group_without_at_shares_the_group() {
    let map = parse(&["--lcores", "(0,6)"]).unwrap().lcores.unwrap();
    assert_eq!(map.get(0), Some(&set(&[0, 6])));
    assert_eq!(map.get(6), Some(&set(&[0, 6])));
}

#[test]
fn coremask_forms() {
    assert_eq!(
        parse(&["-c", "0xf"]).unwrap().lcores,
        identity(&[0, 1, 2, 3])
    );
    assert_eq!(parse(&["-c0xf"]).unwrap().lcores, identity(&[0, 1, 2, 3]));
    assert_eq!(parse(&["-c", "F"]).unwrap().lcores, identity(&[0, 1, 2, 3]));
    assert_eq!(parse(&["-c", "0x5"]).unwrap().lcores, identity(&[0, 2]));
    assert_eq!(parse(&["-c", "0X10"]).unwrap().lcores, identity(&[4]));
}

#[test]
fn coremask_rejections() {
    for bad in ["0", "0x0", "0x", "", "xyz", "0xg", "-1"] {
        let err = rejected(&["-c", bad], "-c");
        assert!(
            matches!(err, OptionsError::InvalidValue { option: "-c", .. }),
            "{bad}: {err}"
        );
    }
    // Bit 128 is beyond MAX_LCORE.
    rejected(&["-c", &format!("1{}", "0".repeat(32))], "-c");
}

#[test]
fn lcore_grammar_rejections() {
    for bad in [
        "1-", "1,", "1#2", "-5", "0-1,,2", "", " ", "a", "1-2-3", "3-1",
    ] {
        let err = rejected(&["-l", bad], "-l");
        assert!(
            matches!(err, OptionsError::InvalidValue { option: "-l", .. }),
            "{bad}: {err}"
        );
    }
    for bad in [
        "1-", "1,", "1#2", "-5", "0-1,,2", "(-1,2)", "3@((1,3)", "", "()", "(1,2", "1@", "@1",
        "1@2@3", "(1)(2)",
    ] {
        let err = rejected(&["--lcores", bad], "--lcores");
        assert!(
            matches!(
                err,
                OptionsError::InvalidValue {
                    option: "--lcores",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}

#[test]
fn lcore_ids_must_be_below_max_lcore() {
    assert_eq!(MAX_LCORE, 128);
    assert!(parse(&["-l", "127"]).is_ok());
    rejected(&["-l", "128"], "-l");
    rejected(&["-l", "100-200"], "-l");
    rejected(&["--lcores", "128"], "--lcores");
    rejected(&["--lcores", "128@0"], "--lcores");
    // A high cpu is fine when mapped to a low lcore id.
    let map = parse(&["--lcores", "0@200"]).unwrap().lcores.unwrap();
    assert_eq!(map.get(0), Some(&set(&[200])));
}

#[test]
fn lcore_given_twice_is_refused() {
    rejected(&["-l", "0,0"], "-l");
    rejected(&["-l", "0-3,2"], "-l");
    rejected(&["--lcores", "0,0@1"], "--lcores");
    rejected(&["--lcores", "(0,1)@0,1"], "--lcores");
    let err = rejected(&["--lcores", "1,2@(5-7),(0-2)"], "--lcores");
    assert!(err.to_string().contains("more than once"), "{err}");
}

#[test]
fn only_one_lcore_option_once() {
    for (args, first, second) in [
        (&["-l", "0", "-c", "1"][..], "-c", "-l"),
        (&["-c", "1", "-l", "0"], "-l", "-c"),
        (&["-l", "0", "--lcores", "0"], "--lcores", "-l"),
        (&["--lcores", "0", "-c", "1"], "-c", "--lcores"),
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(
            err,
            OptionsError::Conflict {
                first,
                second,
                reason: "-l, -c and --lcores each give the whole lcore set; use one"
            }
        );
        let msg = err.to_string();
        assert!(msg.contains(first) && msg.contains(second), "{msg}");
    }
    for (args, option) in [
        (&["-l", "0", "-l", "1"][..], "-l"),
        (&["-c", "1", "-c", "1"], "-c"),
        (&["--lcores=0", "--lcores=1"], "--lcores"),
    ] {
        let err = rejected(args, option);
        assert!(matches!(err, OptionsError::Repeated { .. }), "{err}");
    }
}

#[test]
fn main_lcore_forms_and_membership() {
    assert_eq!(
        parse(&["-l", "0-3", "--main-lcore", "2"])
            .unwrap()
            .main_lcore,
        Some(2)
    );
    assert_eq!(
        parse(&["-l", "0-3", "--main-lcore=0x3"])
            .unwrap()
            .main_lcore,
        Some(3)
    );
    // No lcore set given: membership is checked later against the machine.
    assert_eq!(parse(&["--main-lcore=7"]).unwrap().main_lcore, Some(7));
    // Repeats replace, as in DPDK.
    assert_eq!(
        parse(&["-l", "0-1", "--main-lcore=1", "--main-lcore=0"])
            .unwrap()
            .main_lcore,
        Some(0)
    );
    let err = rejected(&["-l", "0-3", "--main-lcore", "5"], "--main-lcore");
    assert!(matches!(
        err,
        OptionsError::MainLcoreNotInSet { lcore: 5, .. }
    ));
    assert!(err.to_string().contains("-l"), "{err}");
    let err = rejected(&["--lcores", "0@5", "--main-lcore", "5"], "--main-lcore");
    assert!(err.to_string().contains("--lcores"), "{err}");
    rejected(&["--main-lcore", "128"], "--main-lcore");
    rejected(&["--main-lcore", "x"], "--main-lcore");
    rejected(&["--main-lcore", "-1"], "--main-lcore");
    rejected(&["--main-lcore", "99999999999999"], "--main-lcore");
}

#[test]
fn memory_forms() {
    assert_eq!(parse(&["-m", "512"]).unwrap().memory_mb, Some(512));
    assert_eq!(parse(&["-m512"]).unwrap().memory_mb, Some(512));
    assert_eq!(
        parse(&["-m", "64", "-m", "32"]).unwrap().memory_mb,
        Some(32)
    );
    for bad in [
        "",
        "12abc",
        "-1",
        "0x10",
        "99999999999999999999",
        "17592186044416",
    ] {
        let err = rejected(&["-m", bad], "-m");
        assert!(
            matches!(err, OptionsError::InvalidValue { option: "-m", .. }),
            "{bad}: {err}"
        );
    }
    // The largest value whose byte count still fits 64 bits.
    assert!(parse(&["-m", "17592186044415"]).is_ok());
}

#[test]
fn socket_mem_and_limit_forms() {
    let o = parse(&["--socket-mem=1024,0,512"]).unwrap();
    assert_eq!(o.socket_mem_mb, Some(vec![1024, 0, 512]));
    let o = parse(&["--socket-mem", "512,0"]).unwrap();
    assert_eq!(o.socket_mem_mb, Some(vec![512, 0]));
    let o = parse(&["--socket-limit=0,2048"]).unwrap();
    assert_eq!(o.socket_limit_mb, Some(vec![0, 2048]));
    for option in ["--socket-mem", "--socket-limit"] {
        for bad in [
            "",
            "1,",
            ",1",
            "1,,2",
            "a",
            "1;2",
            "-1",
            "99999999999999999999",
        ] {
            let arg = format!("{option}={bad}");
            let err = rejected(&[&arg], option);
            assert!(
                matches!(err, OptionsError::InvalidValue { .. }),
                "{arg}: {err}"
            );
        }
        let too_many = vec!["1"; 33].join(",");
        rejected(&[&format!("{option}={too_many}")], option);
        let max = vec!["1"; 32].join(",");
        assert!(parse(&[&format!("{option}={max}")]).is_ok());
    }
}

#[test]
fn switches() {
    let o = parse(&[
        "--legacy-mem",
        "--single-file-segments",
        "--match-allocations",
        "--no-huge",
    ]);
    // legacy + match-allocations is a rule violation; check each switch alone instead.
    assert!(o.is_err());
    assert!(parse(&["--legacy-mem"]).unwrap().legacy_mem);
    assert!(parse(&["--in-memory"]).unwrap().in_memory);
    assert!(
        parse(&["--single-file-segments"])
            .unwrap()
            .single_file_segments
    );
    assert!(parse(&["--no-huge"]).unwrap().no_huge);
    assert!(parse(&["--match-allocations"]).unwrap().match_allocations);
    let err = rejected(&["--no-huge=yes"], "--no-huge");
    assert!(matches!(err, OptionsError::UnexpectedValue { .. }));
}

#[test]
fn huge_unlink_forms() {
    let o = parse(&["--huge-unlink"]).unwrap();
    // Bare --huge-unlink means "always", as DPDK 22.11's usage text and parser say.
    assert_eq!(
        (o.huge_unlink, o.huge_unlink_given),
        (HugeUnlink::Always, true)
    );
    let o = parse(&["--huge-unlink=always"]).unwrap();
    assert_eq!(
        (o.huge_unlink, o.huge_unlink_given),
        (HugeUnlink::Always, true)
    );
    let o = parse(&["--huge-unlink=existing"]).unwrap();
    assert_eq!(
        (o.huge_unlink, o.huge_unlink_given),
        (HugeUnlink::Existing, true)
    );
    let o = parse(&["--huge-unlink=never"]).unwrap();
    assert_eq!(
        (o.huge_unlink, o.huge_unlink_given),
        (HugeUnlink::Never, true)
    );
    rejected(&["--huge-unlink=sometimes"], "--huge-unlink");
    rejected(&["--huge-unlink="], "--huge-unlink");
    // The value must be attached with '='; a separate word is not taken.
    let err = rejected(&["--huge-unlink", "never"], "--huge-unlink");
    assert!(matches!(err, OptionsError::UnexpectedArgument { .. }));
}

#[test]
fn huge_worker_stack_forms() {
    assert_eq!(
        parse(&["--huge-worker-stack"])
            .unwrap()
            .huge_worker_stack_kb,
        Some(None)
    );
    assert_eq!(
        parse(&["--huge-worker-stack=512"])
            .unwrap()
            .huge_worker_stack_kb,
        Some(Some(512))
    );
    assert_eq!(parse(&[]).unwrap().huge_worker_stack_kb, None);
    for bad in ["0", "x", "-4", "18014398509481984"] {
        rejected(
            &[&format!("--huge-worker-stack={bad}")],
            "--huge-worker-stack",
        );
    }
    rejected(&["--huge-worker-stack", "512"], "--huge-worker-stack");
}

#[test]
fn iova_and_proc_type() {
    assert_eq!(
        parse(&["--iova-mode=pa"]).unwrap().iova_mode,
        Some(IovaModeRequest::Pa)
    );
    assert_eq!(
        parse(&["--iova-mode", "va"]).unwrap().iova_mode,
        Some(IovaModeRequest::Va)
    );
    rejected(&["--iova-mode=dc"], "--iova-mode");
    rejected(&["--iova-mode=PA"], "--iova-mode");
    for (text, want) in [
        ("primary", ProcType::Primary),
        ("secondary", ProcType::Secondary),
        ("auto", ProcType::Auto),
        ("SECONDARY", ProcType::Secondary),
    ] {
        assert_eq!(
            parse(&[&format!("--proc-type={text}")]).unwrap().proc_type,
            want
        );
    }
    assert_eq!(
        parse(&["--proc-type", "auto"]).unwrap().proc_type,
        ProcType::Auto
    );
    rejected(&["--proc-type=tertiary"], "--proc-type");
}

#[test]
fn base_virtaddr_forms() {
    for text in ["0x100000000", "100000000", "0X100000000"] {
        let o = parse(&[&format!("--base-virtaddr={text}")]).unwrap();
        assert_eq!(o.base_virtaddr, Some(0x1_0000_0000), "{text}");
    }
    // Rounded up to 16 MiB, as DPDK does.
    let o = parse(&["--base-virtaddr", "0x7f0000000001"]).unwrap();
    assert_eq!(o.base_virtaddr, Some(0x7f00_0100_0000));
    for bad in ["", "0x", "zz", "-1", "0x1_0000", "10000000000000000"] {
        rejected(&[&format!("--base-virtaddr={bad}")], "--base-virtaddr");
    }
}

#[test]
fn paths_and_prefix() {
    let o = parse(&["--huge-dir", "/dev/hugepages", "--file-prefix=app1"]).unwrap();
    assert_eq!(o.huge_dir, Some(PathBuf::from("/dev/hugepages")));
    assert_eq!(o.file_prefix, "app1");
    for bad in ["", "a%d", "a/b"] {
        let err = rejected(&[&format!("--file-prefix={bad}")], "--file-prefix");
        assert!(matches!(err, OptionsError::InvalidValue { .. }));
    }
    rejected(&["--huge-dir="], "--huge-dir");
}

#[test]
fn missing_values() {
    for (args, option) in [
        (&["-l"][..], "-l"),
        (&["-m"], "-m"),
        (&["--lcores"], "--lcores"),
        (&["--socket-mem"], "--socket-mem"),
        (&["--file-prefix", "--"], "--file-prefix"),
    ] {
        let err = rejected(args, option);
        assert!(matches!(err, OptionsError::MissingValue { .. }), "{err}");
    }
}

#[test]
fn unknown_options_and_stray_words() {
    for bad in ["--bogus", "-x", "-z5", "--lcore=0", "--no-hugepages", "---"] {
        let err = rejected(&[bad], bad);
        assert!(
            matches!(err, OptionsError::UnknownOption(_)),
            "{bad}: {err}"
        );
    }
    let err = rejected(&["stray"], "stray");
    assert!(err.to_string().contains("--"), "{err}");
}

#[test]
fn app_args_after_double_dash_are_preserved() {
    let argv = [
        "prog", "-l", "0-1", "--", "--lcores", "x", "-m", "--", "plain", "",
    ];
    let (opts, app) = EalOptions::parse(argv).unwrap();
    assert_eq!(opts.lcores, identity(&[0, 1]));
    assert_eq!(app, vec!["--lcores", "x", "-m", "--", "plain", ""]);

    let (_, app) = EalOptions::parse(["prog", "--"]).unwrap();
    assert!(app.is_empty());
    let (_, app) = EalOptions::parse(["prog", "-m", "64"]).unwrap();
    assert!(app.is_empty());
    // Owned strings work as well as &str.
    let owned: Vec<String> = vec!["prog".into(), "--".into(), "a".into()];
    assert_eq!(EalOptions::parse(&owned).unwrap().1, vec!["a".to_owned()]);
}

#[test]
fn effective_values() {
    let o = parse(&["--in-memory"]).unwrap();
    assert_eq!(o.huge_unlink, HugeUnlink::Existing);
    assert_eq!(o.effective_huge_unlink(), HugeUnlink::Always);
    assert!(!o.has_shared_config());
    assert!(parse(&["--no-huge"]).unwrap().effective_legacy_mem());
}
