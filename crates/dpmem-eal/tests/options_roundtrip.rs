//! `to_args` round-trips through `parse` for any valid options (property test).

use std::collections::BTreeSet;

use dpmem_eal::options::{
    EalOptions, HugeUnlink, IovaModeRequest, LcoreMap, ProcType, MAX_CPU, MAX_LCORE,
};
use proptest::prelude::*;

fn lcore_map() -> impl Strategy<Value = LcoreMap> {
    // Mostly small ids (so ranges and groups form), sometimes anywhere in range.
    let lcore = prop_oneof![0u32..12, 0..MAX_LCORE];
    let cpu = prop_oneof![0u32..12, 0..MAX_CPU];
    let cpus = prop_oneof![
        Just(None), // identity: lcore i on cpu i
        prop::collection::btree_set(cpu, 1..5).prop_map(Some),
    ];
    prop::collection::btree_map(lcore, cpus, 1..10).prop_map(|m| {
        let mut map = LcoreMap::new();
        for (l, cpus) in m {
            let cpus = cpus.unwrap_or_else(|| BTreeSet::from([l]));
            map.insert(l, cpus).unwrap();
        }
        map
    })
}

fn socket_list() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(prop_oneof![0u64..5000, 0..(1u64 << 44)], 1..5)
}

/// DPDK options dpmem ignores, with values DPDK accepts (some that look like options or the end
/// of the EAL's arguments, to check they print back safely).
fn ignored_options() -> impl Strategy<Value = Vec<(&'static str, Option<&'static str>)>> {
    let one = prop::sample::select(vec![
        ("-n", Some("4")),
        ("-r", Some("2")),
        ("-a", Some("0000:00:00.0")),
        ("--allow", Some("0000:01:00.0,arg=1")),
        ("-b", Some("0000:02:00.0")),
        ("--block", Some("0000:03:00.0")),
        ("--vdev", Some("net_pcap0,iface=eth2")),
        ("-d", Some("-looks-like-an-option")),
        ("-d", Some("--")),
        ("--log-level", Some("lib.eal:debug")),
        ("--syslog", Some("local3")),
        ("--trace-dir", Some("/tmp/trace")),
        ("--no-pci", None),
        ("-v", None),
        ("--force-max-simd-bitwidth", Some("512")),
        ("--vfio-intr", Some("msix")),
    ]);
    prop::collection::vec(one, 0..4)
}

fn options() -> impl Strategy<Value = EalOptions> {
    let lcores = (
        prop::option::of(lcore_map()),
        prop::option::of(0u32..MAX_LCORE),
        any::<bool>(),
    );
    let memory = (
        prop::option::of(0u64..100_000),
        prop::option::of(socket_list()),
        prop::option::of(socket_list()),
    );
    let modes = (
        any::<[bool; 5]>(),
        prop::option::of(prop_oneof![
            Just(HugeUnlink::Existing),
            Just(HugeUnlink::Always),
            Just(HugeUnlink::Never)
        ]),
        prop::option::of(prop_oneof![
            Just(IovaModeRequest::Pa),
            Just(IovaModeRequest::Va)
        ]),
        prop_oneof![
            Just(ProcType::Primary),
            Just(ProcType::Secondary),
            Just(ProcType::Auto)
        ],
    );
    let misc = (
        any::<bool>(),
        prop::option::of("/[a-z]{1,8}(/[a-z0-9 ._-]{1,8}){0,2}"),
        prop::option::of("[A-Za-z0-9._-]{1,12}"),
        prop::option::of(any::<u64>().prop_map(|a| a >> 1)),
        prop::option::of(prop::option::of(1u64..1 << 30)),
    );
    (lcores, memory, modes, misc, ignored_options()).prop_filter_map(
        "combination refused by the rules",
        |(
            (lcores, main, main_in_set),
            (memory, socket_mem, socket_limit),
            ([legacy, in_memory, sfs, no_huge, matching], unlink, iova, proc_type),
            (no_telemetry, huge_dir, prefix, base, stack),
            ignored,
        )| {
            let mut b = EalOptions::builder()
                .legacy_mem(legacy)
                .in_memory(in_memory)
                .single_file_segments(sfs)
                .no_huge(no_huge)
                .match_allocations(matching)
                .no_telemetry(no_telemetry)
                .proc_type(proc_type);
            // Pick the main lcore from the set most of the time, so such cases survive.
            let main = match (&lcores, main_in_set) {
                (Some(map), true) => map.lcore_ids().next(),
                _ => main,
            };
            if let Some(map) = lcores {
                b = b.lcore_map(map);
            }
            if let Some(m) = main {
                b = b.main_lcore(m);
            }
            if let Some(m) = memory {
                b = b.memory_mb(m);
            }
            if let Some(s) = socket_mem {
                b = b.socket_mem_mb(s);
            }
            if let Some(s) = socket_limit {
                b = b.socket_limit_mb(s);
            }
            if let Some(u) = unlink {
                b = b.huge_unlink(u);
            }
            if let Some(i) = iova {
                b = b.iova_mode(i);
            }
            if let Some(d) = huge_dir {
                b = b.huge_dir(d);
            }
            if let Some(p) = prefix {
                b = b.file_prefix(p);
            }
            if let Some(a) = base {
                b = b.base_virtaddr(a);
            }
            if let Some(s) = stack {
                b = b.huge_worker_stack_kb(s);
            }
            for (option, value) in ignored {
                b = b.ignored_option(option, value).ok()?;
            }
            b.build().ok()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn to_args_round_trips(opts in options()) {
        let args = opts.to_args();
        let (back, app) = EalOptions::parse(std::iter::once("prog".to_owned()).chain(args.clone()))
            .map_err(|e| TestCaseError::fail(format!("{args:?}: {e}")))?;
        prop_assert!(app.is_empty());
        prop_assert_eq!(&back, &opts, "args {:?}", args);
        // And printing again gives the same arguments.
        prop_assert_eq!(back.to_args(), args);
    }

    #[test]
    fn app_args_survive_any_content(app in prop::collection::vec(".*", 0..6)) {
        let argv = ["prog", "-l", "0", "--"].iter().map(|s| s.to_string()).chain(app.clone());
        let (_, back) = EalOptions::parse(argv).unwrap();
        prop_assert_eq!(back, app);
    }

    #[test]
    fn lcores_text_round_trips(map in lcore_map()) {
        let text = map.to_lcores_arg();
        let back = EalOptions::builder().lcores(&text).unwrap().build().unwrap();
        prop_assert_eq!(back.lcores.as_ref(), Some(&map), "text {}", text);
    }
}

#[test]
fn defaults_print_nothing() {
    assert!(EalOptions::default().to_args().is_empty());
}

#[test]
fn documented_example_round_trips() {
    let (opts, _) =
        EalOptions::parse(["prog", "--lcores=1,2@(5-7),(3-5)@(0,2),(0,6),7-8"]).unwrap();
    let args = opts.to_args();
    assert_eq!(args, vec!["--lcores=(0,6)@(0,6),1,2@(5-7),(3-5)@(0,2),7,8"]);
    let (back, _) = EalOptions::parse(std::iter::once("prog".to_owned()).chain(args)).unwrap();
    assert_eq!(back, opts);
}
