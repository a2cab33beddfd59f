//! The checks every [`EalOptions`] passes before anyone sees it, and the host checks.
//!
//! `check_options` is shared by the parser and the builder, so a typed builder cannot
//! produce what the command line would refuse. The combination rules follow DPDK 22.11's
//! `eal_check_common_options` (and the Linux `eal.c` check for `--huge-worker-stack`);
//! where dpmem refuses more, the rule says why.

use std::path::{Component, Path, PathBuf};

use super::error::OptionsError;
use super::ignored;
use super::lcores::{ranges_text, MAX_LCORE};
use super::{
    EalOptions, HostFacts, HugeUnlink, ProcType, BASE_VIRTADDR_ALIGN, MAX_FILE_PREFIX_LEN,
    MAX_NUMA_NODES,
};

/// Bytes per megabyte, for the overflow checks of `-m`, `--socket-mem`, `--socket-limit`.
const MB: u64 = 1 << 20;

/// Value and combination checks; `lcore_option` names where the lcore set came from
/// (`-l`, `-c` or `--lcores`) for the `--main-lcore` message.
pub(crate) fn check_options(opts: &EalOptions, lcore_option: &str) -> Result<(), OptionsError> {
    check_values(opts)?;
    ignored::check(&opts.ignored)?;
    check_combinations(opts, lcore_option)
}

fn check_values(opts: &EalOptions) -> Result<(), OptionsError> {
    if let Some(map) = &opts.lcores {
        if map.is_empty() {
            return Err(OptionsError::invalid("--lcores", "", "empty lcore set"));
        }
    }
    if let Some(main) = opts.main_lcore {
        if main >= MAX_LCORE {
            return Err(OptionsError::invalid(
                "--main-lcore",
                &main.to_string(),
                format!("lcore id must be below MAX_LCORE ({MAX_LCORE})"),
            ));
        }
    }
    if let Some(mb) = opts.memory_mb {
        megabytes_fit("-m", mb, &mb.to_string())?;
    }
    for (option, list) in [
        ("--socket-mem", &opts.socket_mem_mb),
        ("--socket-limit", &opts.socket_limit_mb),
    ] {
        if let Some(list) = list {
            check_socket_list(option, list)?;
        }
    }
    check_file_prefix(&opts.file_prefix)?;
    if let Some(dir) = &opts.huge_dir {
        if dir.as_os_str().is_empty() {
            return Err(OptionsError::invalid("--huge-dir", "", "must not be empty"));
        }
    }
    if let Some(addr) = opts.base_virtaddr {
        if addr.checked_next_multiple_of(BASE_VIRTADDR_ALIGN).is_none() {
            return Err(OptionsError::invalid(
                "--base-virtaddr",
                &format!("{addr:#x}"),
                "rounding up to a 16 MiB boundary overflows 64 bits",
            ));
        }
    }
    if let Some(Some(kib)) = opts.huge_worker_stack_kb {
        if kib == 0 {
            return Err(OptionsError::invalid(
                "--huge-worker-stack",
                "0",
                "stack size must be at least 1 KiB",
            ));
        }
        if kib >= u64::MAX / 1024 {
            return Err(OptionsError::invalid(
                "--huge-worker-stack",
                &kib.to_string(),
                "stack size in bytes does not fit 64 bits",
            ));
        }
    }
    Ok(())
}

/// The prefix names the runtime directory (`<base>/<prefix>`) and starts every hugepage file
/// name, so it must be one plain file name that cannot climb out of either place: DPDK refuses
/// only an empty prefix and '%', so that `--file-prefix ..` as root made `/run` mode 0700 and
/// wrote the configuration there. dpmem takes letters, digits, '-', '_' and '.', not `.` or
/// `..` alone, at most [`MAX_FILE_PREFIX_LEN`] bytes.
fn check_file_prefix(prefix: &str) -> Result<(), OptionsError> {
    let reason = if prefix.is_empty() {
        Some("must not be empty".to_owned())
    } else if prefix == "." || prefix == ".." {
        Some(format!("'{prefix}' names a directory, not a prefix"))
    } else if prefix.len() > MAX_FILE_PREFIX_LEN {
        Some(format!("{} bytes long", prefix.len()))
    } else {
        prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .map(|c| format!("'{}' is not allowed", c.escape_default()))
    };
    match reason {
        Some(reason) => Err(OptionsError::invalid(
            "--file-prefix",
            prefix,
            format!(
                "{reason}: a file prefix is 1 to {MAX_FILE_PREFIX_LEN} letters, digits, '-', '_' \
                 or '.', and not '.' or '..'"
            ),
        )),
        None => Ok(()),
    }
}

fn megabytes_fit(option: &'static str, mb: u64, shown: &str) -> Result<(), OptionsError> {
    if mb.checked_mul(MB).is_none() {
        return Err(OptionsError::invalid(
            option,
            shown,
            format!("{mb} MiB does not fit in 64 bits of bytes"),
        ));
    }
    Ok(())
}

fn check_socket_list(option: &'static str, list: &[u64]) -> Result<(), OptionsError> {
    let shown = list
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if list.is_empty() {
        return Err(OptionsError::invalid(
            option,
            &shown,
            "needs at least one value",
        ));
    }
    if list.len() > MAX_NUMA_NODES {
        return Err(OptionsError::invalid(
            option,
            &shown,
            format!(
                "{} values given, at most {MAX_NUMA_NODES} sockets exist",
                list.len()
            ),
        ));
    }
    for &mb in list {
        megabytes_fit(option, mb, &shown)?;
    }
    Ok(())
}

fn conflict(first: &'static str, second: &'static str, reason: &'static str) -> OptionsError {
    OptionsError::Conflict {
        first,
        second,
        reason,
    }
}

fn check_combinations(opts: &EalOptions, lcore_option: &str) -> Result<(), OptionsError> {
    if let (Some(main), Some(map)) = (opts.main_lcore, &opts.lcores) {
        if !map.contains(main) {
            return Err(OptionsError::MainLcoreNotInSet {
                lcore: main,
                lcore_option: format!("{lcore_option} ({})", ranges_text(map.lcore_ids())),
            });
        }
    }
    if opts.memory_mb.is_some() && opts.socket_mem_mb.is_some() {
        return Err(conflict(
            "-m",
            "--socket-mem",
            "both say how much memory to preallocate; give one",
        ));
    }
    if opts.no_huge && opts.socket_mem_mb.is_some() {
        return Err(conflict(
            "--socket-mem",
            "--no-huge",
            "4 KiB anonymous memory has no NUMA placement; use -m",
        ));
    }
    // DPDK refuses only unlinking before mapping here (bare `--huge-unlink` or `=always`):
    // `existing` and `never` are accepted and have nothing to act on.
    if opts.no_huge && opts.huge_unlink == HugeUnlink::Always && !opts.in_memory {
        return Err(conflict(
            "--huge-unlink",
            "--no-huge",
            "without hugetlbfs there are no files to unlink",
        ));
    }
    // DPDK logs this as an error yet carries on and ignores the limit; dpmem refuses
    // rather than silently drop a limit the user asked for. `--no-huge` is legacy mode.
    if opts.socket_limit_mb.is_some() {
        if opts.legacy_mem {
            return Err(conflict(
                "--socket-limit",
                "--legacy-mem",
                "limits apply only to dynamic memory, legacy memory is fixed at start",
            ));
        }
        if opts.no_huge {
            return Err(conflict(
                "--socket-limit",
                "--no-huge",
                "--no-huge runs in legacy memory mode, where limits do not apply",
            ));
        }
    }
    if opts.single_file_segments && opts.huge_unlink == HugeUnlink::Always && !opts.in_memory {
        return Err(conflict(
            "--single-file-segments",
            "--huge-unlink=always",
            "a segment file is reused for many pages and must stay in place",
        ));
    }
    if opts.in_memory && opts.huge_unlink == HugeUnlink::Never {
        return Err(conflict(
            "--in-memory",
            "--huge-unlink=never",
            "in-memory mode keeps no files, so it cannot keep them",
        ));
    }
    if opts.in_memory {
        if opts.legacy_mem {
            return Err(conflict(
                "--legacy-mem",
                "--in-memory",
                "legacy memory needs hugepage files to sort pages by physical address",
            ));
        }
        // DPDK refuses this too, through --no-huge implying legacy memory; dpmem names
        // the options the user actually typed.
        if opts.no_huge {
            return Err(conflict(
                "--no-huge",
                "--in-memory",
                "--no-huge runs in legacy memory mode, which --in-memory does not support",
            ));
        }
    }
    if opts.match_allocations {
        if opts.legacy_mem {
            return Err(conflict(
                "--legacy-mem",
                "--match-allocations",
                "legacy memory never frees hugepages, so there is nothing to match",
            ));
        }
        if opts.no_huge {
            return Err(conflict(
                "--no-huge",
                "--match-allocations",
                "matching applies to hugepage allocations only",
            ));
        }
    }
    if opts.no_huge && opts.huge_worker_stack_kb.is_some() {
        return Err(conflict(
            "--huge-worker-stack",
            "--no-huge",
            "worker stacks from hugepage memory need hugepages",
        ));
    }
    // DPDK has no explicit check: an in-memory secondary finds no shared configuration
    // and fails later, far from the cause.
    if opts.in_memory && opts.proc_type == ProcType::Secondary {
        return Err(conflict(
            "--proc-type=secondary",
            "--in-memory",
            "in-memory mode has no shared configuration for a secondary to attach to",
        ));
    }
    Ok(())
}

/// [`EalOptions::validate`].
pub(crate) fn check_host(opts: &EalOptions, host: &HostFacts) -> Result<(), OptionsError> {
    let available = || ranges_text(host.cpus.iter().copied());
    match &opts.lcores {
        Some(map) => {
            for (lcore, cpus) in map.iter() {
                if let Some(&cpu) = cpus.iter().find(|c| !host.cpus.contains(c)) {
                    return Err(OptionsError::CpuUnavailable {
                        lcore,
                        cpu,
                        available: available(),
                    });
                }
            }
        }
        None => {
            // Without an lcore option every usable CPU below MAX_LCORE becomes the lcore
            // with the same id, so that is the set the main lcore must belong to.
            if let Some(main) = opts.main_lcore {
                if !host.cpus.contains(&main) {
                    return Err(OptionsError::MainLcoreNotInSet {
                        lcore: main,
                        lcore_option: format!(
                            "the default lcore set (usable cpus: {})",
                            available()
                        ),
                    });
                }
            }
        }
    }
    if let (Some(main), Some(map)) = (opts.main_lcore, &opts.lcores) {
        if !map.contains(main) {
            return Err(OptionsError::MainLcoreNotInSet {
                lcore: main,
                lcore_option: format!("the lcore set ({})", ranges_text(map.lcore_ids())),
            });
        }
    }
    if let (Some(dir), false) = (&opts.huge_dir, opts.no_huge) {
        let wanted = lexical_normal(dir);
        let inside = host
            .hugetlbfs_mounts
            .iter()
            .any(|mount| wanted.starts_with(lexical_normal(mount)));
        if !inside {
            return Err(OptionsError::HugeDirNotHugetlbfs {
                path: dir.clone(),
                mounts: host.hugetlbfs_mounts.clone(),
            });
        }
    }
    Ok(())
}

/// `path` with `.` dropped and `..` folded into its parent, without touching the file
/// system: `/dev/hugepages/../hugepages/x/` becomes `/dev/hugepages/x`. A `..` that would
/// climb above the root or the start of a relative path is kept.
fn lexical_normal(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(part),
            },
            _ => out.push(part),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_normal_folds_dots() {
        assert_eq!(
            lexical_normal(Path::new("/dev/hugepages/../hugepages/./x/")),
            PathBuf::from("/dev/hugepages/x")
        );
        assert_eq!(lexical_normal(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(lexical_normal(Path::new("../a")), PathBuf::from("../a"));
    }

    #[test]
    fn sibling_with_common_prefix_is_not_inside() {
        // Component-wise, not string-wise: /dev/hugepages2 is not inside /dev/hugepages.
        assert!(!lexical_normal(Path::new("/dev/hugepages2"))
            .starts_with(lexical_normal(Path::new("/dev/hugepages"))));
    }
}
