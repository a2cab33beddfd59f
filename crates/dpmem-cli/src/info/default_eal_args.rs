//! The EAL options `dpmem info` uses when it is given none: a small configuration that
//! initialises on any Linux machine, with hugepages when the machine can give them.

use std::path::Path;

use dpmem::sys::hugepage_info;
use dpmem::sys::root::SysRoot;

use crate::byte_size::ByteSize;

/// Memory the default configuration asks for, in MiB.
const MEMORY_MB: &str = "16";

/// Free pages of one size needed before hugepages are tried: 16 MiB of 2 MiB pages.
const MIN_FREE_PAGES: u64 = 8;

/// The chosen options, and why hugepages were not used when they were not.
#[derive(Debug)]
pub struct DefaultEal {
    pub args: Vec<String>,
    pub fallback_reason: Option<String>,
}

/// Hugepages when some size has a hugetlbfs mount we can create files in and at least
/// [`MIN_FREE_PAGES`] pages nobody has claimed; `--no-huge` otherwise. The pid in the file
/// prefix keeps concurrent runs, and any running application, apart.
pub fn choose(root: &SysRoot, pid: u32) -> DefaultEal {
    let mut args = vec!["-m".to_owned(), MEMORY_MB.to_owned()];
    let fallback_reason = hugepages_unusable(root, pid);
    if fallback_reason.is_some() {
        args.insert(0, "--no-huge".to_owned());
    }
    args.extend(["--file-prefix".to_owned(), format!("dpmem-info-{pid}")]);
    DefaultEal {
        args,
        fallback_reason,
    }
}

/// Why hugepages cannot back the default configuration, or `None` when they can.
fn hugepages_unusable(root: &SysRoot, pid: u32) -> Option<String> {
    let info = match hugepage_info::discover(root) {
        Ok(info) => info,
        Err(e) => return Some(format!("cannot read the hugepage pools: {e}")),
    };
    if info.sizes.is_empty() {
        return Some("the kernel has no hugepage support".to_owned());
    }
    let mut reasons = Vec::new();
    for s in &info.sizes {
        let size = ByteSize(s.page_size);
        // Reserved pages are promised to mappings already; only the rest can be had.
        let available = s.free.saturating_sub(s.reserved);
        let Some(mount) = s.mounts.first() else {
            reasons.push(format!("{size}: no hugetlbfs mount"));
            continue;
        };
        if available < MIN_FREE_PAGES {
            reasons.push(format!(
                "{size}: {available} free pages, {MIN_FREE_PAGES} needed"
            ));
            continue;
        }
        match can_create_files(mount, pid) {
            Ok(()) => return None,
            Err(e) => reasons.push(format!(
                "{size}: cannot create files in {}: {e}",
                mount.display()
            )),
        }
    }
    Some(reasons.join("; "))
}

/// Whether files can be created in `dir`, found by creating one: permission bits, ACLs,
/// read-only mounts and group membership all count, and an empty hugetlbfs file holds no
/// page.
fn can_create_files(dir: &Path, pid: u32) -> std::io::Result<()> {
    let probe = dir.join(format!(".dpmem-info-probe-{pid}"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
