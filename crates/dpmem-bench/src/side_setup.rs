//! What a family's parent prepares before its children run: the file prefix both sides use,
//! each side's program, and each side's EAL arguments.

use std::path::PathBuf;

use crate::child;
use crate::dpdk_runner::{self, DpdkRunner};
use crate::per_op::SidePrograms;

/// Both sides' programs and arguments for one run of a family.
#[derive(Debug)]
pub(crate) struct SideSetup {
    /// `dpmem-bench-<family>-<pid>`: both sides' file prefix, whose leftovers go after every
    /// child.
    pub prefix: String,
    /// This program, which runs dpmem's children.
    pub own: Result<PathBuf, String>,
    pub dpmem_args: Vec<String>,
    /// `dpmem-bench-dpdk`, or why DPDK's side cannot run (then only dpmem's children run).
    pub dpdk: Result<PathBuf, String>,
    pub dpdk_args: Vec<String>,
    runner: Result<DpdkRunner, String>,
}

impl SideSetup {
    /// Both sides get `shared`, then `memory`, then the file prefix; DPDK's side gets
    /// `dpdk_only` before them.
    pub(crate) fn prepare(
        family: &str,
        shared: &[&str],
        memory: &[String],
        dpdk_only: &[&str],
    ) -> SideSetup {
        let prefix = format!("dpmem-bench-{family}-{}", std::process::id());
        let dpmem_args: Vec<String> = shared
            .iter()
            .map(|s| s.to_string())
            .chain(memory.iter().cloned())
            .chain(["--file-prefix".to_owned(), prefix.clone()])
            .collect();
        let dpdk_args = dpdk_only
            .iter()
            .map(|s| s.to_string())
            .chain(dpmem_args.iter().cloned())
            .collect();
        let runner = DpdkRunner::find();
        SideSetup {
            prefix,
            own: child::own_program(),
            dpmem_args,
            dpdk: runner
                .as_ref()
                .map(|r| r.path().to_path_buf())
                .map_err(Clone::clone),
            dpdk_args,
            runner,
        }
    }

    /// Why DPDK's side cannot run, when it cannot.
    pub(crate) fn dpdk_missing(&self) -> Option<&String> {
        self.dpdk.as_ref().err()
    }

    /// DPDK's version as the report prints it, or why there is none.
    pub(crate) fn dpdk_build(&self) -> String {
        dpdk_runner::build_text(&self.runner)
    }

    /// The report's note on the EAL options: what both sides get (the prefix among them),
    /// then what DPDK's side gets besides.
    pub(crate) fn args_note(&self) -> String {
        let dpdk_only = &self.dpdk_args[..self.dpdk_args.len() - self.dpmem_args.len()];
        format!(
            "both sides: {}; DPDK also: {}",
            self.dpmem_args.join(" "),
            dpdk_only.join(" ")
        )
    }

    /// The setup as the per-operation families' runner takes it.
    pub(crate) fn programs(&self) -> SidePrograms<'_> {
        SidePrograms {
            own: &self.own,
            dpmem_args: &self.dpmem_args,
            dpdk: &self.dpdk,
            dpdk_args: &self.dpdk_args,
            prefix: &self.prefix,
        }
    }
}
