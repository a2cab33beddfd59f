//! The EAL on machines presented through a fake sysfs/procfs root: what it decides from the
//! discovered facts (CPUs, nodes, mounts) and the configurable memseg limits.

mod common;

use std::path::Path;

use common::{args, unique_prefix};
use dpmem_eal::limits::MemsegLimits;
use dpmem_eal::options::EalOptions;
use dpmem_eal::{Eal, EalError, EalSettings, ErrorKind, PageRequest, Socket};
use dpmem_sys::root::SysRoot;

fn write(root: &Path, path: &str, text: &str) {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

/// A two-socket machine with CPUs 0-3 on node 0 and 4-7 on node 1, 2 MiB pages on both nodes,
/// and no hugetlbfs mount.
fn two_node_machine_without_mounts(root: &Path) {
    write(root, "/sys/devices/system/cpu/present", "0-7\n");
    for cpu in 0..8 {
        let node = cpu / 4;
        write(
            root,
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/core_id"),
            &format!("{}\n", cpu % 4),
        );
        write(
            root,
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"),
            &format!("{node}\n"),
        );
        write(
            root,
            &format!("/sys/devices/system/cpu/cpu{cpu}/node{node}/.keep"),
            "",
        );
    }
    write(root, "/sys/devices/system/node/online", "0-1\n");
    for node in 0..2 {
        let dir = format!("/sys/devices/system/node/node{node}/hugepages/hugepages-2048kB");
        write(root, &format!("{dir}/nr_hugepages"), "64\n");
        write(root, &format!("{dir}/free_hugepages"), "64\n");
        write(root, &format!("{dir}/surplus_hugepages"), "0\n");
    }
    let dir = "/sys/kernel/mm/hugepages/hugepages-2048kB";
    for (file, value) in [
        ("nr_hugepages", 128),
        ("free_hugepages", 128),
        ("resv_hugepages", 0),
        ("surplus_hugepages", 0),
    ] {
        write(root, &format!("{dir}/{file}"), &format!("{value}\n"));
    }
    write(
        root,
        "/proc/meminfo",
        "MemTotal: 1000 kB\nHugepagesize:       2048 kB\n",
    );
    write(root, "/proc/mounts", "proc /proc proc rw 0 0\n");
}

fn init_on(root: &Path, extra: &[&str]) -> Result<Eal, EalError> {
    let (options, _) = EalOptions::parse(args(extra)).unwrap();
    Eal::init_with(
        options,
        EalSettings {
            sys_root: SysRoot::at(root),
            ..EalSettings::default()
        },
    )
}

#[test]
fn cores_the_fake_machine_lacks_are_refused_and_its_cores_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    two_node_machine_without_mounts(tmp.path());
    let prefix = unique_prefix("fake_cpu");
    let err = init_on(
        tmp.path(),
        &["--no-huge", "-m", "4", "-l", "8", "--file-prefix", &prefix],
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert!(err.to_string().contains('8'), "{err}");
    let eal = init_on(
        tmp.path(),
        &[
            "--no-huge",
            "-m",
            "4",
            "--lcores",
            "0@7,1@(0-3)",
            "--file-prefix",
            &prefix,
        ],
    )
    .unwrap();
    assert_eq!(eal.lcores().len(), 2);
    assert_eq!(eal.main_lcore(), 0);
}

#[test]
fn without_a_hugetlbfs_mount_hugepage_modes_fail_and_say_how_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    two_node_machine_without_mounts(tmp.path());
    let prefix = unique_prefix("fake_mount");
    let err = init_on(tmp.path(), &["--file-prefix", &prefix]).unwrap_err();
    assert!(matches!(err, EalError::NoHugepages { .. }), "{err}");
    assert!(err.to_string().contains("--no-huge"), "{err}");
    assert!(
        !dpmem_eal::runtime_dir::location(&prefix).exists(),
        "a failed start leaves no runtime directory"
    );
}

#[test]
fn memseg_limits_are_configurable() {
    let (options, _) = EalOptions::parse(args(&[
        "--no-huge",
        "-m",
        "4",
        "--file-prefix",
        &unique_prefix("limits"),
    ]))
    .unwrap();
    // No-huge memory is one list of exactly the requested size whatever the limits.
    let eal = Eal::init_with(options, EalSettings::default()).unwrap();
    assert_eq!(eal.memory().lists()[0].n_segs, 1024);
    drop(eal);
    if !common::hugepages_available("memseg_limits_are_configurable", 8) {
        return;
    }
    let _serial = common::hugepage_lock();
    let limits = MemsegLimits {
        max_segs_per_list: 4,
        max_lists: 2,
        ..MemsegLimits::default()
    };
    let (options, _) =
        EalOptions::parse(args(&["--file-prefix", &unique_prefix("limits2")])).unwrap();
    let eal = Eal::init_with(
        options,
        EalSettings {
            limits,
            ..EalSettings::default()
        },
    )
    .unwrap();
    let lists = eal.memory().lists();
    assert_eq!(lists.len(), 2);
    assert!(lists.iter().all(|l| l.n_segs == 4));
    // Five pages cannot be virtually contiguous in lists of four slots.
    let err = eal
        .memory()
        .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), 5))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    let a = eal
        .memory()
        .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), 4))
        .unwrap();
    let b = eal
        .memory()
        .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), 4))
        .unwrap();
    assert_ne!(a.run().list_index, b.run().list_index);
    assert!(
        eal.memory()
            .alloc_pages(PageRequest::new(2 << 20, Socket::Node(0), 1))
            .is_err(),
        "both lists full"
    );
}
