//! What the host offers in 2 MiB hugepages, read the way an operator would check it:
//! `/proc/mounts` for a hugetlbfs mount and sysfs for the free-page count.
//!
//! The benchmark only needs these two facts to decide whether a hugepage run is possible
//! and, if not, to say why; dpmem-sys does the real discovery for the EAL itself.

use std::fs;
use std::path::{Path, PathBuf};

use dpmem_sys::root::SysRoot;
use dpmem_sys::{hugepage_info, mounts};

/// Size of the pages every `init` configuration uses.
pub const PAGE_2M: u64 = 2 << 20;

/// The first hugetlbfs mount whose page size is 2 MiB.
pub fn hugetlbfs_2m_mount() -> Result<PathBuf, String> {
    let mounts = mounts::hugetlbfs_mounts(&SysRoot::host()).map_err(|e| e.to_string())?;
    mounts
        .into_iter()
        .find(|m| m.page_size == PAGE_2M)
        .map(|m| m.mount_point)
        .ok_or_else(|| "no hugetlbfs mount with 2 MiB pages in /proc/mounts".to_owned())
}

/// Free 2 MiB hugepages right now (system-wide, all NUMA nodes).
pub fn free_2m_hugepages() -> Result<u64, String> {
    let info = hugepage_info::discover(&SysRoot::host()).map_err(|e| e.to_string())?;
    Ok(info.size(PAGE_2M).map_or(0, |s| s.free))
}

/// Remove files under `dir` whose names start with `prefix`.
///
/// A DPDK primary in legacy mode leaves its hugepage files behind on exit, still holding
/// their pages; with a bench-private prefix, deleting them between repetitions gives every
/// run the same number of free pages without touching anyone else's files.
pub fn remove_files_with_prefix(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The memory options of a benchmark child's EAL, both sides alike: `memory_mb` MiB of 2 MiB
/// hugepages when enough are free (in-memory, so no hugepage file is left behind), else
/// `--no-huge`, with the reason.
pub fn child_memory_args(memory_mb: u64) -> (Vec<String>, Result<(), String>) {
    let needed = (memory_mb << 20) / PAGE_2M;
    let hugepages = hugetlbfs_2m_mount().and_then(|_| {
        let free = free_2m_hugepages()?;
        if free < needed {
            return Err(format!("only {free} free 2 MiB hugepages, {needed} needed"));
        }
        Ok(())
    });
    let mode = if hugepages.is_ok() {
        "--in-memory"
    } else {
        "--no-huge"
    };
    let args = [mode, "-m", &memory_mb.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    (args, hugepages)
}
