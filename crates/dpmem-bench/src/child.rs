//! Benchmark child processes.
//!
//! DPDK allows `rte_eal_init` once per process, and a fair comparison gives dpmem the same
//! fresh process, so every timed EAL init runs in a child: the harness re-executes its own
//! executable with a hidden first argument, the child does one init + cleanup and prints
//! one result line, and the parent parses it. Everything else the child prints (DPDK logs
//! go to stdout in 22.11) is kept only to explain a failure.

use std::process::Command;
use std::time::Duration;

/// First argument that turns the executable into a benchmark child.
pub const CHILD_FLAG: &str = "__dpmem-bench-child";

/// Marker of the one line of child output the parent reads.
const RESULT_MARKER: &str = "DPMEM_BENCH_RESULT";

/// What a child measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// `rte_eal_init` + `rte_eal_cleanup` through the C shim.
    DpdkInit,
    /// `dpmem::eal::Eal::init` + drop.
    DpmemInit,
    /// DPDK's ring loops (see [`crate::ring`]); prints one result line per measurement.
    DpdkRing,
    /// DPDK's mempool loops (see [`crate::mempool`]); one result line per row.
    DpdkMempool,
    /// dpmem's mempool loops, the same rows and lines.
    DpmemMempool,
}

impl ChildKind {
    fn name(self) -> &'static str {
        match self {
            ChildKind::DpdkInit => "dpdk-init",
            ChildKind::DpmemInit => "dpmem-init",
            ChildKind::DpdkRing => "dpdk-ring",
            ChildKind::DpdkMempool => "dpdk-mempool",
            ChildKind::DpmemMempool => "dpmem-mempool",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            ChildKind::DpdkInit,
            ChildKind::DpmemInit,
            ChildKind::DpdkRing,
            ChildKind::DpdkMempool,
            ChildKind::DpmemMempool,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// Init and cleanup time of one child run.
#[derive(Debug, Clone, Copy)]
pub struct InitCleanup {
    /// Time in the EAL's init.
    pub init: Duration,
    /// Time in its cleanup.
    pub cleanup: Duration,
}

/// The argv a child's EAL sees: the program name, then the options the parent chose (what
/// follows the child flag and the child kind in `args`).
pub(crate) fn eal_argv(args: &[String]) -> Vec<String> {
    args.iter()
        .take(1)
        .chain(args.iter().skip(3))
        .cloned()
        .collect()
}

/// Run as a benchmark child if `args` (as from `std::env::args()`, program name first)
/// asks for it, returning the process exit code; `None` for an ordinary invocation.
///
/// The `dpmem` binary calls this first thing in `main`, so that the child does nothing
/// else that could allocate or spawn before the EAL under test starts.
pub fn child_main(args: &[String]) -> Option<i32> {
    if args.get(1).map(String::as_str) != Some(CHILD_FLAG) {
        return None;
    }
    if args.get(2).map(String::as_str) == Some(crate::malloc::DPDK_CHILD) {
        return Some(crate::malloc::dpdk_child(args));
    }
    let Some(kind) = args.get(2).and_then(|k| ChildKind::from_name(k)) else {
        eprintln!(
            "{CHILD_FLAG}: unknown child kind {:?} (known: dpdk-init, dpmem-init)",
            args.get(2)
        );
        return Some(2);
    };
    if kind == ChildKind::DpdkRing {
        return Some(crate::ring::dpdk_child(args));
    }
    if matches!(kind, ChildKind::DpdkMempool | ChildKind::DpmemMempool) {
        return Some(crate::mempool::child(kind, args));
    }
    let eal_args = eal_argv(args);
    let result = match kind {
        ChildKind::DpdkInit => {
            crate::dpdk_shim::eal_init_and_cleanup(&eal_args).map(|t| InitCleanup {
                init: Duration::from_nanos(t.init_ns),
                cleanup: Duration::from_nanos(t.cleanup_ns),
            })
        }
        ChildKind::DpmemInit => crate::init::dpmem_eal_init_and_cleanup(&eal_args),
        ChildKind::DpdkRing | ChildKind::DpdkMempool | ChildKind::DpmemMempool => {
            unreachable!("handled above")
        }
    };
    Some(match result {
        Ok(t) => {
            println!(
                "{RESULT_MARKER} init_ns={} cleanup_ns={}",
                t.init.as_nanos(),
                t.cleanup.as_nanos()
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    })
}

/// Run one child of `kind` with arguments `args` and return every line of its standard
/// output that starts with `marker`, or why it failed.
pub fn run_lines(kind: ChildKind, args: &[String], marker: &str) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding own executable: {e}"))?;
    let out = Command::new(&exe)
        .arg(CHILD_FLAG)
        .arg(kind.name())
        .args(args)
        .output()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        return Ok(stdout
            .lines()
            .filter(|l| l.starts_with(marker))
            .map(str::to_owned)
            .collect());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{} child {}: {}",
        kind.name(),
        out.status,
        failure_text(&stdout, &stderr)
    ))
}

/// Run one child of `kind` with EAL options `eal_args` (program name excluded).
pub fn run(kind: ChildKind, eal_args: &[String]) -> Result<InitCleanup, String> {
    let lines = run_lines(kind, eal_args, RESULT_MARKER)?;
    match lines.first() {
        Some(line) => parse_result(line),
        None => Err(format!(
            "{} child printed no {RESULT_MARKER} line",
            kind.name()
        )),
    }
}

/// The last things a failed child said, on one line.
///
/// DPDK 22.11 logs to stdout, where a usage text may follow its errors, so only its
/// `EAL: ` lines count there; the child's own error is on stderr.
fn failure_text(stdout: &str, stderr: &str) -> String {
    let said: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("EAL: "))
        .chain(stderr.lines().map(str::trim))
        .filter(|l| !l.is_empty())
        .collect();
    if said.is_empty() {
        return "no output".to_owned();
    }
    said[said.len().saturating_sub(4)..].join(" | ")
}

fn parse_result(line: &str) -> Result<InitCleanup, String> {
    let field = |key: &str| -> Result<Duration, String> {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("malformed child result line {line:?}"))
    };
    Ok(InitCleanup {
        init: field("init_ns=")?,
        cleanup: field("cleanup_ns=")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_invocations_are_not_children() {
        assert_eq!(child_main(&["dpmem".into(), "bench".into()]), None);
        assert_eq!(child_main(&["dpmem".into()]), None);
        assert_eq!(
            child_main(&["dpmem".into(), CHILD_FLAG.into(), "nonsense".into()]),
            Some(2)
        );
    }

    #[test]
    fn failure_text_keeps_eal_errors_not_usage() {
        let stdout = "EAL: Option --legacy-mem is not compatible with --in-memory\n\n\
                      Usage: bench [options]\n  -l CORELIST  List of cores\n";
        let stderr = "rte_eal_init/cleanup failed: Invalid argument (rte_errno 22)\n";
        assert_eq!(
            failure_text(stdout, stderr),
            "EAL: Option --legacy-mem is not compatible with --in-memory | \
             rte_eal_init/cleanup failed: Invalid argument (rte_errno 22)"
        );
        assert_eq!(failure_text("", ""), "no output");
    }

    #[test]
    fn result_line_round_trips() {
        let t = parse_result("DPMEM_BENCH_RESULT init_ns=1500000 cleanup_ns=20").unwrap();
        assert_eq!(t.init, Duration::from_micros(1500));
        assert_eq!(t.cleanup, Duration::from_nanos(20));
        assert!(parse_result("DPMEM_BENCH_RESULT init_ns=x").is_err());
    }
}
