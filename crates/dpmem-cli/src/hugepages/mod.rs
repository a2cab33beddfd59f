//! `dpmem hugepages`: the hugepage pools and hugetlbfs mounts, as `dpdk-hugepages.py`
//! shows and changes them.

mod clean;
mod page_files;
mod reserve;
mod show;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use dpmem_sys::error::{Errno, SysError};
use dpmem_sys::root::SysRoot;

use crate::byte_size::ByteSize;

#[derive(Debug, Args)]
pub struct HugepagesArgs {
    /// Read and write sysfs/procfs under DIR instead of `/` (tests present fake machines
    /// this way); nothing is mounted then.
    #[arg(long, global = true, hide = true, value_name = "DIR")]
    sys_root: Option<PathBuf>,
    #[command(subcommand)]
    command: HugepagesCommand,
}

#[derive(Debug, Subcommand)]
enum HugepagesCommand {
    /// Pages per size and NUMA node: total, free, reserved, surplus; the mount points; the
    /// page files in them by file prefix, whether a live process holds them, and how much
    /// they keep; and the runtime directories with their primaries.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Size a hugepage pool to hold SIZE bytes (rounded up to whole pages).
    Reserve {
        /// Bytes, with a K, M or G suffix: 512M, 2G.
        #[arg(value_name = "SIZE")]
        size: ByteSize,
        /// Page size of the pool (default: the kernel's default hugepage size).
        #[arg(long, value_name = "2M|1G")]
        page_size: Option<ByteSize>,
        /// Reserve on this NUMA node only (default: let the kernel spread the pages).
        #[arg(long, value_name = "N")]
        node: Option<u32>,
        /// Also mount hugetlbfs for this page size, unless one is mounted already
        /// (default DIR: /dev/hugepages, /dev/hugepages1G for 1G pages). A DIR that is not
        /// empty, or is already a mount point of another kind, is refused (unless --force):
        /// mounting over it would hide what is there.
        #[arg(long, value_name = "DIR", num_args = 0..=1)]
        mount: Option<Option<PathBuf>>,
        /// With --mount: mount even over a directory that is not empty or is already a mount
        /// point of another kind.
        #[arg(long, requires = "mount")]
        force: bool,
    },
    /// Empty every hugepage pool; pages still mapped by a process stay until it unmaps them.
    Clear,
    /// Remove the page files no live process holds (a crashed or legacy-memory run's), and
    /// the runtime directories of primaries that are gone. A file a process holds is left.
    Clean {
        /// Only this file prefix's files and runtime directory.
        #[arg(long, value_name = "PREFIX")]
        file_prefix: Option<String>,
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: HugepagesArgs) -> Result<(), String> {
    let root = args.sys_root.map_or_else(SysRoot::host, SysRoot::at);
    match args.command {
        HugepagesCommand::Show { json } => show::run(&root, json),
        HugepagesCommand::Reserve {
            size,
            page_size,
            node,
            mount,
            force,
        } => reserve::reserve(&root, size, page_size, node, mount, force),
        HugepagesCommand::Clear => reserve::clear(&root),
        HugepagesCommand::Clean {
            file_prefix,
            dry_run,
        } => clean::run(&root, file_prefix.as_deref(), dry_run),
    }
}

/// Turns a failed privileged step (`doing`: "writing", "mounting hugetlbfs on") into the
/// message a person acts on: a permission error means "run as root", anything else is shown
/// as the kernel said it.
fn privileged_error(err: SysError, doing: &str) -> String {
    if err.errno == Errno::ACCESS || err.errno == Errno::PERM {
        format!(
            "needs root: {doing} {} failed: {}",
            err.target,
            errno_text(err.errno)
        )
    } else {
        err.to_string()
    }
}

/// The C library's wording for an errno, without std's " (os error N)" tail.
fn errno_text(errno: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
