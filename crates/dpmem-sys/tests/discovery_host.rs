//! Discovery on the machine running the tests. The figures differ from machine to machine
//! (and other processes may be taking hugepages while these run), so only internal
//! consistency is checked; a machine without hugepages passes with nothing to check.

use std::path::Path;

use dpmem_sys::cpu_topology;
use dpmem_sys::error::Errno;
use dpmem_sys::hugepage_info::{self, HugepageInfo};
use dpmem_sys::hugepage_reserve::{mount_hugetlbfs, unmount};
use dpmem_sys::mounts::{hugetlbfs_mount_containing, hugetlbfs_mounts};
use dpmem_sys::root::SysRoot;

/// Whether every size's per-node totals add up to its global total. Pools can be resized
/// between the reads of one discovery, so a mismatch is only trusted if it persists.
fn per_node_totals_match(info: &HugepageInfo) -> bool {
    info.sizes.iter().all(|s| {
        s.per_node.is_empty() || s.per_node.iter().map(|n| n.total).sum::<u64>() == s.total
    })
}

#[test]
fn host_hugepage_figures_are_consistent() {
    let root = SysRoot::host();
    let mut info = hugepage_info::discover(&root).unwrap();
    for _ in 0..5 {
        if per_node_totals_match(&info) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        info = hugepage_info::discover(&root).unwrap();
    }
    assert!(
        per_node_totals_match(&info),
        "per-node totals disagree with global totals: {info:#?}"
    );

    if info.sizes.is_empty() {
        eprintln!("note: this kernel reports no hugepage sizes; only node discovery is checked");
    }
    assert!(!info.numa_nodes.is_empty());
    assert!(
        info.numa_nodes.windows(2).all(|w| w[0] < w[1]),
        "nodes ascending and distinct"
    );
    assert!(
        info.sizes
            .windows(2)
            .all(|w| w[0].page_size < w[1].page_size),
        "sizes ascending and distinct"
    );
    if let Some(default) = info.default_page_size {
        assert!(
            info.size(default).is_some(),
            "default size {default} is one of the listed sizes"
        );
    }
    for size in &info.sizes {
        assert!(
            size.page_size.is_power_of_two() && size.page_size >= 64 * 1024,
            "{size:?}"
        );
        // Free pages may include free surplus pages, so the bound is total + surplus.
        assert!(size.free <= size.total + size.surplus, "{size:?}");
        for node in &size.per_node {
            assert!(
                info.numa_nodes.contains(&node.node),
                "{node:?} is an online node"
            );
            assert!(node.free <= node.total + node.surplus, "{node:?}");
        }
        for mount in &size.mounts {
            assert!(mount.is_absolute(), "{mount:?}");
        }
    }
}

#[test]
fn host_mount_lookup_agrees_with_mount_list() {
    let root = SysRoot::host();
    let mounts = hugetlbfs_mounts(&root).unwrap();
    for mount in &mounts {
        if !mount.mount_point.exists() {
            continue;
        }
        let found = hugetlbfs_mount_containing(&root, &mount.mount_point).unwrap();
        let found = found.expect("a mount point lies on its own mount");
        assert_eq!(
            found.mount_point.canonicalize().unwrap(),
            mount.mount_point.canonicalize().unwrap()
        );
    }
    // A fresh temporary directory is on an ordinary filesystem.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(hugetlbfs_mount_containing(&root, dir.path()).unwrap(), None);
}

#[test]
fn host_cpu_topology_is_consistent() {
    let root = SysRoot::host();
    let topo = cpu_topology::discover(&root).unwrap();
    if !Path::new("/sys/devices/system/cpu").exists() {
        eprintln!("skipped: no /sys/devices/system/cpu");
        return;
    }
    assert!(!topo.cpus.is_empty(), "a Linux host with sysfs has CPUs");
    assert!(topo.cpus.windows(2).all(|w| w[0].cpu < w[1].cpu));
    let nodes = hugepage_info::numa_nodes(&root).unwrap();
    for id in topo.socket_ids() {
        assert!(
            nodes.contains(&id),
            "CPU node {id} is an online NUMA node ({nodes:?})"
        );
    }
    assert!(topo.socket_count() >= 1);
    // The CPU this thread runs on was detected.
    let current = rustix::thread::sched_getcpu() as u32;
    assert!(topo.contains(current), "running on cpu {current}");
}

/// Unmounts on drop so a failed assertion does not leave a mount behind.
struct MountGuard<'a>(&'a Path);

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.0);
    }
}

#[test]
fn mount_and_unmount_hugetlbfs_when_permitted() {
    let root = SysRoot::host();
    let Some(page_size) = hugepage_info::page_sizes(&root).unwrap().first().copied() else {
        eprintln!("skipped: no hugepage support on this kernel");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("huge");
    match mount_hugetlbfs(&mount_point, page_size) {
        Ok(()) => {}
        Err(e) if matches!(e.errno, Errno::PERM | Errno::ACCESS | Errno::NODEV) => {
            eprintln!("skipped: cannot mount hugetlbfs here ({e})");
            return;
        }
        Err(e) => panic!("mount failed: {e}"),
    }
    let guard = MountGuard(&mount_point);
    let found = hugetlbfs_mount_containing(&root, &mount_point.join("file"))
        .unwrap()
        .expect("new mount listed");
    assert_eq!(found.page_size, page_size);
    assert_eq!(
        found.mount_point.canonicalize().unwrap(),
        mount_point.canonicalize().unwrap()
    );
    drop(guard);
    assert_eq!(
        hugetlbfs_mount_containing(&root, &mount_point).unwrap(),
        None,
        "unmounted"
    );
    // Unmounting what is no longer a mount point is the kernel's EINVAL.
    assert_eq!(unmount(&mount_point).unwrap_err().errno, Errno::INVAL);
}

#[test]
fn a_symbolic_link_at_the_mount_point_is_refused_and_nothing_is_mounted() {
    let root = SysRoot::host();
    let Some(page_size) = hugepage_info::page_sizes(&root).unwrap().first().copied() else {
        eprintln!("skipped: no hugepage support on this kernel");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let mount_point = dir.path().join("huge");
    std::os::unix::fs::symlink(&elsewhere, &mount_point).unwrap();
    let err = mount_hugetlbfs(&mount_point, page_size).unwrap_err();
    assert_eq!(err.errno, Errno::LOOP, "{err}");
    assert_eq!(
        hugetlbfs_mount_containing(&root, &elsewhere.join("file")).unwrap(),
        None,
        "the link's target was not mounted on"
    );
}
