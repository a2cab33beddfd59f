//! Benchmark child processes.
//!
//! DPDK allows `rte_eal_init` once per process, and a fair comparison gives dpmem the same
//! fresh process, so every EAL a workload times runs in a child: dpmem's children are the
//! `dpmem` program itself, DPDK's are the `dpmem-bench-dpdk` program (the only one that
//! links DPDK, see [`crate::dpdk_runner`]). A child's argv is
//!
//! ```text
//! PROGRAM __dpmem-bench-child KIND ROWS EAL-OPTIONS...
//! ```
//!
//! where ROWS is a [`RowSelection`] (ignored by the init kinds). The child prints its
//! results as lines starting with a marker and the parent parses them; everything else it
//! prints (DPDK logs go to stdout in 22.11) is kept only to explain a failure. A third kind
//! of child, `run`, is a whole workload run in a fresh process for `--repeat` (see
//! [`crate::repeat`]).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::row_selection::RowSelection;

/// First argument that turns a program into a benchmark child.
pub const CHILD_FLAG: &str = "__dpmem-bench-child";

/// Exit code of a child given arguments it cannot run.
pub(crate) const EXIT_MISUSE: i32 = 2;

/// Marker of the one line of an init child's output the parent reads.
const RESULT_MARKER: &str = "DPMEM_BENCH_RESULT";

/// Marker of the line a DPDK child's `dpdk-version` kind prints.
pub(crate) const VERSION_MARKER: &str = "DPMEM_BENCH_DPDK_VERSION";

/// What a child measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// Prints the DPDK version (no EAL): how the parent finds out the DPDK side works.
    DpdkVersion,
    /// `rte_eal_init` + `rte_eal_cleanup`.
    DpdkInit,
    /// `dpmem::eal::Eal::init` + drop.
    DpmemInit,
    /// DPDK's ring loops (see [`crate::ring`]); prints one result line per row.
    DpdkRing,
    /// DPDK's mempool loops (see [`crate::mempool`]); one result line per row.
    DpdkMempool,
    /// dpmem's mempool loops, the same rows and lines.
    DpmemMempool,
    /// DPDK's malloc loops (see [`crate::malloc`]); one result line.
    DpdkMalloc,
    /// DPDK's packet buffer loops (see [`crate::mbuf`]); one result line per row.
    DpdkMbuf,
    /// dpmem's packet buffer loops, the same rows and lines.
    DpmemMbuf,
    /// DPDK's copy-engine loops (see [`crate::dma`]); one result line per row.
    DpdkDma,
    /// dpmem's copy-engine loops, the same rows and lines.
    DpmemDma,
    /// DPDK's media frame loops (see [`crate::frame`]); one result line per row.
    DpdkFrame,
    /// dpmem's media frame loops, the same rows and lines.
    DpmemFrame,
    /// A DPDK primary of the channel rows (see [`crate::mp`]); it starts its secondaries
    /// ([`ChildKind::DpdkMpSecondary`]) and prints one result line per row.
    DpdkMp,
    /// dpmem's primary of the channel rows, the same rows and lines.
    DpmemMp,
    /// A DPDK secondary of a [`ChildKind::DpdkMp`] primary: serves until its stdin ends.
    DpdkMpSecondary,
    /// A dpmem secondary of a [`ChildKind::DpmemMp`] primary, as the DPDK one.
    DpmemMpSecondary,
}

const ALL_KINDS: [ChildKind; 17] = [
    ChildKind::DpdkVersion,
    ChildKind::DpdkInit,
    ChildKind::DpmemInit,
    ChildKind::DpdkRing,
    ChildKind::DpdkMempool,
    ChildKind::DpmemMempool,
    ChildKind::DpdkMalloc,
    ChildKind::DpdkMbuf,
    ChildKind::DpmemMbuf,
    ChildKind::DpdkDma,
    ChildKind::DpmemDma,
    ChildKind::DpdkFrame,
    ChildKind::DpmemFrame,
    ChildKind::DpdkMp,
    ChildKind::DpmemMp,
    ChildKind::DpdkMpSecondary,
    ChildKind::DpmemMpSecondary,
];

impl ChildKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ChildKind::DpdkVersion => "dpdk-version",
            ChildKind::DpdkInit => "dpdk-init",
            ChildKind::DpmemInit => "dpmem-init",
            ChildKind::DpdkRing => "dpdk-ring",
            ChildKind::DpdkMempool => "dpdk-mempool",
            ChildKind::DpmemMempool => "dpmem-mempool",
            ChildKind::DpdkMalloc => "dpdk-malloc",
            ChildKind::DpdkMbuf => "dpdk-mbuf",
            ChildKind::DpmemMbuf => "dpmem-mbuf",
            ChildKind::DpdkDma => "dpdk-dma",
            ChildKind::DpmemDma => "dpmem-dma",
            ChildKind::DpdkFrame => "dpdk-frame",
            ChildKind::DpmemFrame => "dpmem-frame",
            ChildKind::DpdkMp => "dpdk-mp",
            ChildKind::DpmemMp => "dpmem-mp",
            ChildKind::DpdkMpSecondary => "dpdk-mp-secondary",
            ChildKind::DpmemMpSecondary => "dpmem-mp-secondary",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        ALL_KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Whether the `dpmem-bench-dpdk` program runs it (else the `dpmem` program does).
    pub(crate) fn is_dpdk(self) -> bool {
        matches!(
            self,
            ChildKind::DpdkVersion
                | ChildKind::DpdkInit
                | ChildKind::DpdkRing
                | ChildKind::DpdkMempool
                | ChildKind::DpdkMalloc
                | ChildKind::DpdkMbuf
                | ChildKind::DpdkDma
                | ChildKind::DpdkFrame
                | ChildKind::DpdkMp
                | ChildKind::DpdkMpSecondary
        )
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

/// A child's arguments, parsed.
#[derive(Debug)]
pub(crate) struct ChildArgs {
    /// The rows the parent asked for, as given (parsed by the workload, which knows its
    /// row count).
    rows: String,
    /// What the child's EAL sees: the program name, then the options the parent chose.
    pub eal_args: Vec<String>,
}

impl ChildArgs {
    /// The rows to run of a workload with `rows` rows.
    pub fn rows(&self, rows: usize) -> Result<RowSelection, String> {
        RowSelection::from_arg(&self.rows, rows)
    }
}

/// The arguments as strings; a benchmark child is only ever started by its parent, with
/// UTF-8 arguments, so anything else is a misuse named in the error.
pub(crate) fn utf8_args(args: &[OsString]) -> Result<Vec<String>, String> {
    args.iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect()
}

/// `args` (program name first) if they start a benchmark child; `Err` for a child flag
/// followed by nonsense.
pub(crate) fn parse(args: &[OsString]) -> Option<Result<(ChildKind, Vec<String>), String>> {
    if args.get(1).map(OsString::as_os_str) != Some(CHILD_FLAG.as_ref()) {
        return None;
    }
    Some(utf8_args(args).and_then(|args| {
        let kind = args.get(2).and_then(|k| ChildKind::from_name(k));
        match kind {
            Some(kind) => Ok((kind, args)),
            None => Err(format!(
                "unknown child kind {:?} (known: {}, run)",
                args.get(2),
                ALL_KINDS.map(ChildKind::name).join(", ")
            )),
        }
    }))
}

pub(crate) fn child_args(args: &[String]) -> ChildArgs {
    ChildArgs {
        rows: args.get(3).cloned().unwrap_or_default(),
        eal_args: args
            .iter()
            .take(1)
            .chain(args.iter().skip(4))
            .cloned()
            .collect(),
    }
}

/// The exit code of a child that ran its rows (a failed row is a result line, not a
/// failure) or could not (the reason goes to stderr, which the parent reports).
pub(crate) fn exit_code(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// An init child's one result line, or its error; the exit code.
pub(crate) fn print_init_result(result: Result<InitCleanup, String>) -> i32 {
    match result {
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
    }
}

/// Run `program` as a child of `kind` for `rows` with EAL options `eal_args` and return
/// every line of its standard output that starts with `marker`, or why it failed.
pub fn run_lines(
    program: &Path,
    kind: ChildKind,
    rows: &RowSelection,
    eal_args: &[String],
    marker: &str,
) -> Result<Vec<String>, String> {
    let out = Command::new(program)
        .arg(CHILD_FLAG)
        .arg(kind.name())
        .arg(rows.to_arg())
        .args(eal_args)
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
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

/// The program running this code: dpmem's children are the `dpmem` program again.
pub(crate) fn own_program() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("finding own executable: {e}"))
}

/// Run one init child of `kind` in `program` with EAL options `eal_args` (program name
/// excluded).
pub fn run_init(
    program: &Path,
    kind: ChildKind,
    eal_args: &[String],
) -> Result<InitCleanup, String> {
    let none = RowSelection::matching(&[], None);
    let lines = run_lines(program, kind, &none, eal_args, RESULT_MARKER)?;
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
pub(crate) fn failure_text(stdout: &str, stderr: &str) -> String {
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
    fn child_arguments_split_rows_from_eal_options() {
        let args: Vec<String> = ["prog", CHILD_FLAG, "dpdk-ring", "0,2", "-l", "0-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let child = child_args(&args);
        assert_eq!(child.eal_args, ["prog", "-l", "0-1"]);
        assert_eq!(child.rows(3).unwrap().indices(), [0, 2]);
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
