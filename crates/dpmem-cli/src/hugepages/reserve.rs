//! `dpmem hugepages reserve` and `dpmem hugepages clear`: sizing the kernel's pools.

use std::path::{Path, PathBuf};

use dpmem_sys::hugepage_info::{self, HugepageInfo};
use dpmem_sys::hugepage_reserve::{
    clear_hugepages, hugepages_count, mount_hugetlbfs, set_hugepages,
};
use dpmem_sys::mounts;
use dpmem_sys::root::SysRoot;

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
    force: bool,
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
    // Decided before the pool changes, so a refused directory changes nothing.
    let mount_plan = mount
        .map(|dir| plan_mount(root, &info, page_size, dir, force))
        .transpose()?;
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
    if let Some(plan) = mount_plan {
        carry_out(root, page_size, plan)?;
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

/// What `--mount` will do.
#[derive(Debug, PartialEq, Eq)]
enum MountPlan {
    /// A hugetlbfs of this page size is mounted here already: nothing to do.
    Already(PathBuf),
    /// Mount on this directory; `covers` says what the mount will hide (with `--force`).
    Mount {
        dir: PathBuf,
        covers: Option<String>,
    },
}

/// Decides what `--mount` does for `page_size`: nothing when a usable mount exists (any mount
/// of that size when no directory was named, or the named directory itself), else a mount on
/// the named or default directory — refused, unless `force`, when that directory is already a
/// mount point of another kind or holds files, which the new mount would hide.
fn plan_mount(
    root: &SysRoot,
    info: &HugepageInfo,
    page_size: u64,
    dir: Option<PathBuf>,
    force: bool,
) -> Result<MountPlan, String> {
    let existing = info.size(page_size).map_or(&[][..], |s| &s.mounts[..]);
    let mounted_here = |d: &Path| existing.iter().any(|m| m == d);
    // The kernel lists mount points resolved (no `..`, no links): compare the named directory
    // the same way, or `/dev/x/../hugepages` would pass for another place.
    let dir = dir.map(|d| resolved(root, &d)).transpose()?;
    match &dir {
        None if !existing.is_empty() => return Ok(MountPlan::Already(existing[0].clone())),
        Some(d) if mounted_here(d) => return Ok(MountPlan::Already(d.clone())),
        _ => {}
    }
    let dir = dir.unwrap_or_else(|| default_mount_dir(page_size));
    let shown = dir.display();
    let mut covers = Vec::new();
    let mounted = mounts::mount_at(root, &dir).map_err(|e| e.to_string())?;
    if let Some(m) = mounted {
        let kind = match info
            .sizes
            .iter()
            .find(|s| s.page_size != page_size && s.mounts.contains(&dir))
        {
            Some(other) => format!("hugetlbfs mount for {} pages", ByteSize(other.page_size)),
            None => format!("{} mount", m.fs_type),
        };
        covers.push(format!("{shown} is already a {kind}"));
    }
    // The directory as this process sees it: under a fake root, inside the tree.
    let on_disk = if root.is_host() {
        dir.clone()
    } else {
        root.path(&dir.to_string_lossy())
    };
    match std::fs::read_dir(&on_disk) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                covers.push(format!("{shown} is not empty"));
            }
        }
        // Created by the mount.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot use {shown} as a mount point: {e}")),
    }
    if covers.is_empty() {
        return Ok(MountPlan::Mount { dir, covers: None });
    }
    let covers = covers.join(" and ");
    if !force {
        return Err(format!(
            "{covers}: mounting hugetlbfs there would hide what it holds; name another \
             directory with --mount DIR, or add --force to mount over it anyway"
        ));
    }
    Ok(MountPlan::Mount {
        dir,
        covers: Some(covers),
    })
}

/// `dir` as the kernel would list it once mounted: absolute, `.` and `..` resolved, and, when
/// it exists on this host, its links resolved too — except the last component, which must not
/// be a link at all (the mount would land where it points). Under a fake root, only made
/// absolute and cleaned of `.` and `..` (its tree is not this host's).
fn resolved(root: &SysRoot, dir: &Path) -> Result<PathBuf, String> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("--mount {}: {e}", dir.display()))?
            .join(dir)
    };
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    if !root.is_host() {
        return Ok(clean);
    }
    if std::fs::symlink_metadata(&clean).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "--mount {}: a symbolic link; name the directory itself",
            dir.display()
        ));
    }
    // The parent resolved (it must exist: a mount point's parent is not created).
    let (Some(parent), Some(name)) = (clean.parent(), clean.file_name()) else {
        return Ok(clean);
    };
    let parent = std::fs::canonicalize(parent)
        .map_err(|e| format!("--mount {}: {}: {e}", dir.display(), parent.display()))?;
    Ok(parent.join(name))
}

fn carry_out(root: &SysRoot, page_size: u64, plan: MountPlan) -> Result<(), String> {
    let ps = ByteSize(page_size);
    let (dir, covers) = match plan {
        MountPlan::Already(dir) => {
            println!("{ps} hugetlbfs already mounted on {}", dir.display());
            return Ok(());
        }
        MountPlan::Mount { dir, covers } => (dir, covers),
    };
    if let Some(covers) = &covers {
        println!("--force: {covers}; mounting over it");
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// A fake machine: one node with 2M pages (mounted on /dev/hugepages) and 1G pages
    /// (mounted on /mnt/huge1G), a tmpfs on /mnt/tmp, a directory with a file in it and an
    /// empty one.
    fn machine() -> (tempfile::TempDir, SysRoot) {
        let dir = tempfile::tempdir().unwrap();
        let file = |absolute: &str, content: &str| {
            let path = dir.path().join(absolute.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        };
        file(
            "/proc/meminfo",
            "HugePages_Total:       4\nHugepagesize:       2048 kB\n",
        );
        file(
            "/proc/mounts",
            "nodev /dev/hugepages hugetlbfs rw 0 0\n\
             nodev /mnt/huge1G hugetlbfs rw,pagesize=1G 0 0\n\
             tmpfs /mnt/tmp tmpfs rw 0 0\n",
        );
        file("/sys/devices/system/node/online", "0\n");
        for (kb, total) in [(2048, 4), (1048576, 0)] {
            for attr in ["nr", "free", "resv", "surplus"] {
                file(
                    &format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB/{attr}_hugepages"),
                    &format!("{total}\n"),
                );
            }
        }
        file("/mnt/full/somebodys-file", "data");
        std::fs::create_dir_all(dir.path().join("mnt/empty")).unwrap();
        std::fs::create_dir_all(dir.path().join("mnt/tmp")).unwrap();
        let root = SysRoot::at(dir.path());
        (dir, root)
    }

    fn plan(
        root: &SysRoot,
        page_size: u64,
        dir: Option<&str>,
        force: bool,
    ) -> Result<MountPlan, String> {
        let info = hugepage_info::discover(root).unwrap();
        plan_mount(root, &info, page_size, dir.map(PathBuf::from), force)
    }

    fn mount(dir: &str) -> MountPlan {
        MountPlan::Mount {
            dir: PathBuf::from(dir),
            covers: None,
        }
    }

    #[test]
    fn an_empty_or_missing_directory_is_mounted_on() {
        let (_tree, root) = machine();
        assert_eq!(
            plan(&root, 2 * MIB, Some("/mnt/empty"), false),
            Ok(mount("/mnt/empty"))
        );
        assert_eq!(
            plan(&root, 2 * MIB, Some("/mnt/new"), false),
            Ok(mount("/mnt/new"))
        );
        assert_eq!(
            plan(&root, 2 * MIB, None, false),
            Ok(MountPlan::Already(PathBuf::from("/dev/hugepages")))
        );
        assert_eq!(
            plan(&root, 2 * MIB, Some("/dev/hugepages"), false),
            Ok(MountPlan::Already(PathBuf::from("/dev/hugepages")))
        );
    }

    #[test]
    fn a_directory_with_files_is_refused_unless_forced() {
        let (_tree, root) = machine();
        let err = plan(&root, 2 * MIB, Some("/mnt/full"), false).unwrap_err();
        assert!(
            err.contains("/mnt/full is not empty") && err.contains("--force"),
            "{err}"
        );
        match plan(&root, 2 * MIB, Some("/mnt/full"), true) {
            Ok(MountPlan::Mount {
                dir,
                covers: Some(covers),
            }) => {
                assert_eq!(dir, Path::new("/mnt/full"));
                assert!(covers.contains("not empty"), "{covers}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_mount_point_of_another_kind_is_refused_unless_forced() {
        let (_tree, root) = machine();
        let err = plan(&root, 2 * MIB, Some("/mnt/tmp"), false).unwrap_err();
        assert!(err.contains("/mnt/tmp is already a tmpfs mount"), "{err}");
        let err = plan(&root, 2 * MIB, Some("/mnt/huge1G"), false).unwrap_err();
        assert!(err.contains("hugetlbfs mount for 1G pages"), "{err}");
        assert!(plan(&root, 2 * MIB, Some("/mnt/tmp"), true).is_ok());
        // The 1G mount is the right one for 1G pages.
        assert_eq!(
            plan(&root, GIB, Some("/mnt/huge1G"), false),
            Ok(MountPlan::Already(PathBuf::from("/mnt/huge1G")))
        );
    }

    #[test]
    fn a_refused_mount_directory_leaves_the_pool_alone() {
        let (tree, root) = machine();
        let nr = tree
            .path()
            .join("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
        let size = ByteSize(64 * MIB);
        let err = reserve(
            &root,
            size,
            None,
            None,
            Some(Some("/mnt/full".into())),
            false,
        )
        .unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(std::fs::read_to_string(&nr).unwrap().trim(), "4");
        reserve(
            &root,
            size,
            None,
            None,
            Some(Some("/mnt/full".into())),
            true,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&nr).unwrap().trim(), "32");
    }

    #[test]
    fn on_this_host_a_temp_dir_and_a_real_mount_point_are_checked() {
        // Nothing is mounted here: the checks run against the real /proc/mounts and disk.
        let host = SysRoot::host();
        // No hugepage mounts, so only the directory itself is looked at.
        let info = HugepageInfo {
            default_page_size: Some(2 * MIB),
            sizes: Vec::new(),
            numa_nodes: vec![0],
        };
        let dir = tempfile::tempdir().unwrap();
        let check =
            |d: &Path, force| plan_mount(&host, &info, 2 * MIB, Some(d.to_path_buf()), force);
        assert_eq!(
            check(dir.path(), false),
            Ok(MountPlan::Mount {
                dir: dir.path().to_path_buf(),
                covers: None
            })
        );
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let err = check(dir.path(), false).unwrap_err();
        assert!(err.contains("is not empty"), "{err}");
        // /proc is a proc mount on any Linux host.
        let err = check(Path::new("/proc"), false).unwrap_err();
        assert!(err.contains("already a proc mount"), "{err}");
        // A path with `..` names the directory it resolves to, as the mount list does.
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let roundabout = inner.join("..").join("fresh");
        assert_eq!(
            check(&roundabout, false),
            Ok(MountPlan::Mount {
                dir: dir.path().canonicalize().unwrap().join("fresh"),
                covers: None
            })
        );
        // A link where the mount point goes is refused: the mount would land where it points.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&inner, &link).unwrap();
        let err = check(&link, true).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_hugetlbfs_mount_named_by_a_roundabout_path_is_recognised() {
        let host = SysRoot::host();
        let info = hugepage_info::discover(&host).unwrap();
        let Some(size) = info
            .sizes
            .iter()
            .find(|s| s.mounts.iter().any(|m| m == Path::new("/dev/hugepages")))
        else {
            eprintln!("skipped: no hugetlbfs mounted on /dev/hugepages here");
            return;
        };
        let roundabout = PathBuf::from("/dev/shm/../hugepages");
        assert_eq!(
            plan_mount(&host, &info, size.page_size, Some(roundabout), false),
            Ok(MountPlan::Already(PathBuf::from("/dev/hugepages")))
        );
    }
}
