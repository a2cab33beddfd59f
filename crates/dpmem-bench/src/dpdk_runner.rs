//! The `dpmem-bench-dpdk` program, seen from the parent: where it is, whether it works,
//! and running it.
//!
//! Only that program links DPDK, so `dpmem` starts (and runs every other command) on a
//! machine without DPDK; `dpmem bench` runs DPDK's side of a workload by starting the
//! program as a child, as it already had to start one child per `rte_eal_init`. The program
//! is built with `dpmem` (`cargo build --release -p dpmem-cli` makes both) and found next
//! to it; [`RUNNER_ENV`] names another path. When it is missing, or was built without
//! DPDK, the DPDK column of every table says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::child::{self, ChildKind, InitCleanup, CHILD_FLAG, VERSION_MARKER};
use crate::row_selection::RowSelection;

/// The program's file name.
pub const RUNNER_NAME: &str = "dpmem-bench-dpdk";

/// Environment variable with the program's path, for a runner kept elsewhere than next
/// to `dpmem`.
pub const RUNNER_ENV: &str = "DPMEM_BENCH_DPDK";

/// The program's exit code when it was built without DPDK; its stderr says why.
pub const EXIT_NO_DPDK: i32 = 3;

/// A `dpmem-bench-dpdk` program that answered with its DPDK version.
#[derive(Debug, Clone)]
pub struct DpdkRunner {
    path: PathBuf,
    version: String,
}

impl DpdkRunner {
    /// Find the program and ask it for its DPDK version; the error says why the DPDK side
    /// cannot run, in words for a table's footnote.
    pub fn find() -> Result<DpdkRunner, String> {
        let path = match std::env::var_os(RUNNER_ENV) {
            Some(path) => PathBuf::from(path),
            None => {
                let own = child::own_program()?;
                own.with_file_name(RUNNER_NAME)
            }
        };
        if !path.is_file() {
            return Err(format!(
                "{} not found (it is built with dpmem: cargo build --release -p dpmem-cli; \
                 or set {RUNNER_ENV})",
                path.display()
            ));
        }
        let out = Command::new(&path)
            .arg(CHILD_FLAG)
            .arg(ChildKind::DpdkVersion.name())
            .output()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let version = stdout
            .lines()
            .find_map(|l| l.strip_prefix(VERSION_MARKER))
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        match version {
            Some(version) if out.status.success() => Ok(DpdkRunner {
                version: version.to_owned(),
                path,
            }),
            _ if out.status.code() == Some(EXIT_NO_DPDK) => Err(stderr.trim().to_owned()),
            _ => Err(format!(
                "{} {}: {}",
                path.display(),
                out.status,
                child::failure_text(&stdout, &stderr)
            )),
        }
    }

    /// The DPDK build, e.g. `DPDK 22.11.4`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Run a DPDK child of `kind` for `rows`; the lines of its output that start with
    /// `marker`.
    pub fn run_lines(
        &self,
        kind: ChildKind,
        rows: &RowSelection,
        eal_args: &[String],
        marker: &str,
    ) -> Result<Vec<String>, String> {
        child::run_lines(&self.path, kind, rows, eal_args, marker)
    }

    /// Where the program is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run one DPDK init child with EAL options `eal_args`.
    pub fn run_init(&self, eal_args: &[String]) -> Result<InitCleanup, String> {
        child::run_init(&self.path, ChildKind::DpdkInit, eal_args)
    }
}

/// What a report's header says it compared against: the DPDK version, or why there is none.
pub fn build_text(runner: &Result<DpdkRunner, String>) -> String {
    match runner {
        Ok(r) => r.version().to_owned(),
        Err(why) => format!("no DPDK ({why})"),
    }
}
