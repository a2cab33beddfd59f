//! `dpmem proc-info --file-prefix P`: what `dpdk-proc-info` shows of a running primary — its
//! memory layout, heaps, memzones, rings, mempools and packet-buffer pools — read by attaching
//! as a secondary process.
//!
//! Attaching is as quiet as a secondary can be: no telemetry server (a socket would appear
//! beside the primary's), no allocation in the shared heaps, no pool object taken or put, and
//! an lcore id of its own. Per-lcore mempool caches are indexed by lcore id, so the one
//! thread this process has takes the highest id there is (`MAX_LCORE - 1`), which a primary
//! only uses when told to by `--lcores`; and even that id's cache is only read, never used.
//! What attaching must do it does as any secondary: it maps the primary's pages and takes a
//! shared lock on each page file (as the primary does), and detaches when done.

use clap::Args;
use dpmem::eal::options::MAX_LCORE;
use dpmem::eal::Eal;

use crate::info::Snapshot;

#[derive(Debug, Args)]
pub struct ProcInfoArgs {
    /// The running primary's file prefix (its `--file-prefix`; dpmem's default is `dpmem`).
    #[arg(long, value_name = "PREFIX", default_value = "dpmem")]
    file_prefix: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// List every segment instead of collapsing contiguous runs.
    #[arg(long)]
    segments: bool,
}

/// Attaches, reads, detaches; the description is returned, to be printed once the secondary
/// is gone.
pub fn run(args: ProcInfoArgs) -> Result<String, String> {
    let eal = attach(&args.file_prefix)?;
    let snapshot = Snapshot::collect(&eal, false);
    drop(eal);
    if args.json {
        snapshot.to_json()
    } else {
        Ok(snapshot.to_text(args.segments))
    }
}

/// Attaches to the primary with file prefix `prefix` as the quiet secondary this module's
/// notes describe; the error says why not, and what a user can do about it.
pub fn attach(prefix: &str) -> Result<Eal, String> {
    let cpu = dpmem_sys::thread::current_affinity()
        .ok()
        .and_then(|cpus| cpus.first().copied())
        .unwrap_or(0);
    let argv = [
        "dpmem-proc-info".to_owned(),
        "--proc-type=secondary".to_owned(),
        "--file-prefix".to_owned(),
        prefix.to_owned(),
        "--no-telemetry".to_owned(),
        "--lcores".to_owned(),
        format!("{}@{cpu}", MAX_LCORE - 1),
    ];
    Eal::init(argv).map_err(|e| refusal(prefix, &e.to_string()))
}

/// Why attaching failed, with what a user can do about it. A primary of another user is
/// invisible rather than forbidden (each user's runtime directories are their own, and root's
/// are under a directory only root may enter): the EAL's reason names where it looked, and a
/// user other than root is told where root's primaries are.
fn refusal(prefix: &str, reason: &str) -> String {
    let who = if dpmem_sys::process::is_root() {
        String::new()
    } else {
        " (a primary run by root keeps its runtime directory under /var/run/dpmem, where only \
         root may attach)"
            .to_owned()
    };
    format!("cannot attach to a primary with file prefix {prefix:?}: {reason}{who}")
}
