//! [`EalOptions`] back to command-line arguments.
//!
//! The output is canonical (long options with `=`, defaults left out) rather than a copy of
//! what was typed: the guarantee is only that [`EalOptions::parse`] gives an equal value.

use super::{EalOptions, HugeUnlink, DEFAULT_FILE_PREFIX};

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// [`EalOptions::to_args`].
pub(crate) fn to_args(o: &EalOptions) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(map) = &o.lcores {
        // `-l` when it says the same thing: shorter and familiar.
        if map.is_identity() {
            args.push(format!("-l{}", map.to_corelist_arg()));
        } else {
            args.push(format!("--lcores={}", map.to_lcores_arg()));
        }
    }
    if let Some(main) = o.main_lcore {
        args.push(format!("--main-lcore={main}"));
    }
    if let Some(mb) = o.memory_mb {
        args.push(format!("-m{mb}"));
    }
    if let Some(list) = &o.socket_mem_mb {
        args.push(format!("--socket-mem={}", join(list)));
    }
    if let Some(list) = &o.socket_limit_mb {
        args.push(format!("--socket-limit={}", join(list)));
    }
    for (on, flag) in [
        (o.legacy_mem, "--legacy-mem"),
        (o.in_memory, "--in-memory"),
        (o.single_file_segments, "--single-file-segments"),
        (o.no_huge, "--no-huge"),
        (o.match_allocations, "--match-allocations"),
        (o.no_telemetry, "--no-telemetry"),
    ] {
        if on {
            args.push(flag.to_owned());
        }
    }
    if let Some(dir) = &o.huge_dir {
        args.push(format!("--huge-dir={}", dir.to_string_lossy()));
    }
    if o.file_prefix != DEFAULT_FILE_PREFIX {
        args.push(format!("--file-prefix={}", o.file_prefix));
    }
    if o.huge_unlink_given || o.huge_unlink != HugeUnlink::Existing {
        args.push(format!("--huge-unlink={}", o.huge_unlink.as_str()));
    }
    if let Some(mode) = o.iova_mode {
        args.push(format!("--iova-mode={}", mode.as_str()));
    }
    if o.proc_type != Default::default() {
        args.push(format!("--proc-type={}", o.proc_type.as_str()));
    }
    if let Some(addr) = o.base_virtaddr {
        args.push(format!("--base-virtaddr={addr:#x}"));
    }
    match o.huge_worker_stack_kb {
        None => {}
        Some(None) => args.push("--huge-worker-stack".to_owned()),
        Some(Some(kib)) => args.push(format!("--huge-worker-stack={kib}")),
    }
    // Last and in their order, so the list parses back equal.
    for ignored in &o.ignored {
        args.extend(ignored.to_args());
    }
    args
}
