//! The EAL command line: any argument list is parsed to options or refused with an error that
//! says something, never a panic; options that parse print back (`to_args`) to arguments that
//! parse to the same options; and the `--lcores` grammar agrees with itself three ways.
//!
//! Input: the arguments after the program name, separated by NUL bytes (bytes that are not
//! UTF-8 are replaced, as a shell would hand them over lossily). `tr '\0' ' ' < file` shows a
//! corpus file.

#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;

use dpmem_eal::options::{HostFacts, OptionsError};
use dpmem_eal::EalOptions;
use libfuzzer_sys::fuzz_target;

fn argv(data: &[u8]) -> Vec<String> {
    std::iter::once("app".to_owned())
        .chain(
            data.split(|b| *b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned()),
        )
        .collect()
}

/// The refusal is one a person can read: it names something.
fn check_error(err: &OptionsError, args: &[String]) {
    let text = err.to_string();
    assert!(!text.trim().is_empty(), "empty error {err:?} for {args:?}");
}

/// Parses `args` (after "app").
fn parse(args: &[String]) -> Result<(EalOptions, Vec<String>), OptionsError> {
    EalOptions::parse(std::iter::once("app").chain(args.iter().map(String::as_str)))
}

fn host() -> HostFacts {
    HostFacts {
        cpus: BTreeSet::from([0, 1, 2, 3, 8, 200]),
        hugetlbfs_mounts: vec![
            PathBuf::from("/dev/hugepages"),
            PathBuf::from("/mnt/huge1G"),
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    let args = argv(data);
    let (options, _app_args) = match EalOptions::parse(&args) {
        Ok(parsed) => parsed,
        Err(err) => {
            check_error(&err, &args);
            return;
        }
    };

    // What a caller does with parsed options next must not panic either.
    if let Err(err) = options.validate(&host()) {
        check_error(&err, &args);
    }
    for warning in options.warnings() {
        assert!(!warning.is_empty(), "empty warning for {args:?}");
    }
    let _ = (
        options.effective_huge_unlink(),
        options.effective_legacy_mem(),
        options.has_shared_config(),
    );

    // Printed back, the options parse to themselves, with no application arguments, and
    // print the same way again.
    let printed = options.to_args();
    match parse(&printed) {
        Ok((again, rest)) => {
            assert_eq!(again, options, "{args:?} printed as {printed:?}");
            assert!(rest.is_empty(), "{printed:?} left {rest:?}");
            assert_eq!(again.to_args(), printed, "printing is not stable");
        }
        Err(err) => panic!("{args:?} parsed, its print {printed:?} did not: {err}"),
    }

    // An lcore map reads the same through `--lcores` in its full spelling, through the
    // builder, and through `-l` when it is one lcore per CPU of the same id.
    if let Some(map) = &options.lcores {
        let spelled = map.to_lcores_arg();
        let via_option = parse(&["--lcores".to_owned(), spelled.clone()])
            .unwrap_or_else(|e| panic!("--lcores {spelled:?} (from {args:?}): {e}"));
        assert_eq!(
            via_option.0.lcores.as_ref(),
            Some(map),
            "--lcores {spelled:?}"
        );
        let via_builder = EalOptions::builder()
            .lcores(&spelled)
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("builder lcores {spelled:?}: {e}"));
        assert_eq!(
            via_builder.lcores.as_ref(),
            Some(map),
            "builder {spelled:?}"
        );
        if map.is_identity() {
            let list = map.to_corelist_arg();
            let via_list = parse(&["-l".to_owned(), list.clone()])
                .unwrap_or_else(|e| panic!("-l {list:?} (from {args:?}): {e}"));
            assert_eq!(via_list.0.lcores.as_ref(), Some(map), "-l {list:?}");
        }
    }
});
