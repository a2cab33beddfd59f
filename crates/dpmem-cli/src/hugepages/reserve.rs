//! `dpmem hugepages reserve` and `dpmem hugepages clear`: sizing the kernel's pools.

use std::path::{Path, PathBuf};

use dpmem::sys::hugepage_info::{self, HugepageInfo};
use dpmem::sys::hugepage_reserve::{
    clear_hugepages, hugepages_count, mount_hugetlbfs, set_hugepages,
};
use dpmem::sys::root::SysRoot;

use super::privileged_error;
use crate::byte_size::{approximate, ByteSize};

/// Used when neither `--page-size` nor `/proc/meminfo` names a size: x86's and arm64's
/// usual default.
const FALLBACK_PAGE_SIZE: u64 = 2 << 20;

pub fn reserve(
    root: &SysRoot,
    size: ByteSize,
    page_size: Option<ByteSize>,
    node: Option<u32>,
    mount: Option<Option<PathBuf>>,
) -> Result<(), String> {
    let info = hugepage_info::discover(root).map_err(|e| e.to_string())?;
    let page_size = page_size
        .map(|p| p.0)
        .or(info.default_page_size)
        .unwrap_or(FALLBACK_PAGE_SIZE);
    let ps = ByteSize(page_size);
    if info.size(page_size).is_none() {
        return Err(format!(
            "the kernel has no {ps} hugepage pool (it has: {})",
            list_or_none(info.sizes.iter().map(|s| ByteSize(s.page_size).to_string()))
        ));
    }
    if let Some(n) = node {
        if !info.numa_nodes.contains(&n) {
            return Err(format!(
                "NUMA node {n} is not online (online: {})",
                list_or_none(info.numa_nodes.iter().map(u32::to_string))
            ));
        }
    }
    let pages = size.0.div_ceil(page_size);
    set_hugepages(root, page_size, node, pages).map_err(|e| privileged_error(e, "writing"))?;
    // The kernel takes what it can find without saying so; only the read-back tells.
    let granted = hugepages_count(root, page_size, node).map_err(|e| e.to_string())?;
    let place = node.map_or_else(String::new, |n| format!(" on node {n}"));
    println!(
        "{ps} pages{place}: {granted} reserved ({}), {pages} requested for {}",
        approximate(granted * page_size),
        size
    );
    if let Some(dir) = mount {
        mount_for(root, &info, page_size, dir)?;
    }
    if granted < pages {
        return Err(format!(
            "the kernel granted only {granted} of {pages} {ps} pages{place}: not enough free \
             contiguous memory (reserving at boot, or after dropping caches, may get more)"
        ));
    }
    Ok(())
}

/// Where `--mount` without a directory puts a page size: DPDK's conventional places.
fn default_mount_dir(page_size: u64) -> PathBuf {
    if page_size == FALLBACK_PAGE_SIZE {
        PathBuf::from("/dev/hugepages")
    } else {
        PathBuf::from(format!("/dev/hugepages{}", ByteSize(page_size)))
    }
}

/// Mounts hugetlbfs for `page_size` unless a usable mount exists: any mount of that size
/// when no directory was named, or the named directory itself.
fn mount_for(
    root: &SysRoot,
    info: &HugepageInfo,
    page_size: u64,
    dir: Option<PathBuf>,
) -> Result<(), String> {
    let ps = ByteSize(page_size);
    let existing = info.size(page_size).map_or(&[][..], |s| &s.mounts[..]);
    let mounted_here = |d: &Path| existing.iter().any(|m| m == d);
    match &dir {
        None if !existing.is_empty() => {
            println!(
                "{ps} hugetlbfs already mounted on {}",
                existing[0].display()
            );
            return Ok(());
        }
        Some(d) if mounted_here(d) => {
            println!("{ps} hugetlbfs already mounted on {}", d.display());
            return Ok(());
        }
        _ => {}
    }
    let dir = dir.unwrap_or_else(|| default_mount_dir(page_size));
    // Mounting over a mount of another size would hide its files from whoever uses them.
    if let Some(other) = info
        .sizes
        .iter()
        .find(|s| s.page_size != page_size && s.mounts.contains(&dir))
    {
        return Err(format!(
            "{} is already a hugetlbfs mount for {} pages; name another directory with --mount DIR",
            dir.display(),
            ByteSize(other.page_size)
        ));
    }
    if !root.is_host() {
        // A fake tree stands for another machine: its mounts are not ours to change.
        println!(
            "would mount hugetlbfs (pagesize={ps}) on {} (skipped: --sys-root is not this host)",
            dir.display()
        );
        return Ok(());
    }
    mount_hugetlbfs(&dir, page_size).map_err(|e| privileged_error(e, "mounting hugetlbfs on"))?;
    println!("mounted hugetlbfs (pagesize={ps}) on {}", dir.display());
    Ok(())
}

pub fn clear(root: &SysRoot) -> Result<(), String> {
    clear_hugepages(root).map_err(|e| privileged_error(e, "writing"))?;
    let info = hugepage_info::discover(root).map_err(|e| e.to_string())?;
    for s in &info.sizes {
        // Pages a process still maps cannot be taken back; the kernel turns them into
        // surplus pages and frees them when they are unmapped.
        let left = s.total + s.surplus;
        if left == 0 {
            println!("{} pages: cleared", ByteSize(s.page_size));
        } else {
            println!(
                "{} pages: {left} still in use ({}), freed when the processes mapping them exit",
                ByteSize(s.page_size),
                approximate(left * s.page_size)
            );
        }
    }
    Ok(())
}

fn list_or_none(items: impl Iterator<Item = String>) -> String {
    let list: Vec<String> = items.collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}
