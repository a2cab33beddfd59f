//! The embedded default's memory choice (`DefaultMemory`), on fake machines: hugepages only
//! when a mount can take files and enough pages are free, `--no-huge` with the reason
//! otherwise — the rule the `dpmem` program and the examples share.

use std::path::Path;

use dpmem_eal::DefaultMemory;
use dpmem_sys::root::SysRoot;

/// A fake `/` with one 2 MiB page size: `free` free pages, `reserved` of them promised, and a
/// hugetlbfs mount at `mount` when given.
fn machine(free: u64, reserved: u64, mount: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = |path: &str, text: &str| {
        let p = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    file(
        "/proc/meminfo",
        "MemTotal: 16303856 kB\nHugePages_Total: 0\nHugepagesize: 2048 kB\n",
    );
    let mounts = mount.map_or(String::new(), |m| {
        format!(
            "nodev {} hugetlbfs rw,relatime,pagesize=2M 0 0\n",
            m.display()
        )
    });
    file("/proc/mounts", &mounts);
    file("/sys/devices/system/node/online", "0\n");
    std::fs::create_dir_all(dir.path().join("sys/devices/system/node/node0")).unwrap();
    let size = "/sys/kernel/mm/hugepages/hugepages-2048kB";
    for (name, value) in [
        ("nr_hugepages", 64),
        ("free_hugepages", free),
        ("resv_hugepages", reserved),
        ("surplus_hugepages", 0),
        ("nr_overcommit_hugepages", 0),
    ] {
        file(&format!("{size}/{name}"), &format!("{value}\n"));
    }
    let node = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB";
    for (name, value) in [
        ("nr_hugepages", 64),
        ("free_hugepages", free),
        ("surplus_hugepages", 0),
    ] {
        file(&format!("{node}/{name}"), &format!("{value}\n"));
    }
    dir
}

#[test]
fn hugepages_when_a_mount_takes_files_and_enough_pages_are_free() {
    let mount = tempfile::tempdir().unwrap();
    let fake = machine(16, 0, Some(mount.path()));
    let choice = DefaultMemory::detect_in(&SysRoot::at(fake.path()), 16);
    assert!(choice.hugepages(), "{:?}", choice.fallback_reason());
    assert_eq!(choice.eal_args(), ["-m", "16"]);
    assert_eq!(choice.eal_args_in_memory(), ["-m", "16", "--in-memory"]);
    assert_eq!(choice.note(), None);
    assert_eq!(
        std::fs::read_dir(mount.path()).unwrap().count(),
        0,
        "the probe file is removed"
    );
}

#[test]
fn no_huge_with_the_reason_otherwise() {
    let mount = tempfile::tempdir().unwrap();
    // 16 MiB is 8 pages: 7 free, or 8 free with 2 promised, is not enough.
    for (free, reserved, mount, why) in [
        (7, 0, Some(mount.path()), "7 free, 8 needed"),
        (8, 2, Some(mount.path()), "6 free, 8 needed"),
        (64, 0, None, "no hugetlbfs mount"),
        (
            64,
            0,
            Some(Path::new("/nonexistent-dpmem-mount")),
            "/nonexistent-dpmem-mount failed: No such file or directory",
        ),
    ] {
        let fake = machine(free, reserved, mount);
        let choice = DefaultMemory::detect_in(&SysRoot::at(fake.path()), 16);
        assert!(!choice.hugepages());
        let reason = choice.fallback_reason().unwrap();
        assert!(reason.contains(why), "{reason:?} should say {why:?}");
        assert_eq!(choice.eal_args(), ["--no-huge", "-m", "16"]);
        assert_eq!(choice.eal_args_in_memory(), choice.eal_args());
        assert!(choice.note().unwrap().contains("--no-huge"));
    }
}

#[test]
fn a_mount_others_may_write_to_without_the_sticky_bit_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let mount = tempfile::tempdir().unwrap();
    std::fs::set_permissions(mount.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = machine(64, 0, Some(mount.path()));
    let choice = DefaultMemory::detect_in(&SysRoot::at(fake.path()), 16);
    assert!(!choice.hugepages());
    let reason = choice.fallback_reason().unwrap();
    assert!(reason.contains("sticky"), "{reason}");
}

#[test]
fn a_size_past_64_bit_memory_is_no_hugepage_request() {
    // 2^44 MiB is 2^64 bytes: it must not wrap to nothing and pass as a fit.
    let mount = tempfile::tempdir().unwrap();
    let fake = machine(64, 0, Some(mount.path()));
    let choice = DefaultMemory::detect_in(&SysRoot::at(fake.path()), 1 << 44);
    assert!(!choice.hugepages());
    let reason = choice.fallback_reason().unwrap();
    assert!(reason.contains("more than 64-bit memory holds"), "{reason}");
    let mut args = vec!["default".to_owned(), "--file-prefix".into(), "vast".into()];
    args.extend(choice.eal_args());
    let err = dpmem_eal::Eal::init(args).unwrap_err();
    assert!(err.to_string().contains("17592186044416"), "{err}");
}

#[test]
fn no_huge_on_a_kernel_without_hugepages() {
    let fake = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fake.path().join("proc")).unwrap();
    std::fs::write(fake.path().join("proc/meminfo"), "MemTotal: 1000 kB\n").unwrap();
    std::fs::write(fake.path().join("proc/mounts"), "").unwrap();
    let choice = DefaultMemory::detect_in(&SysRoot::at(fake.path()), 8);
    assert!(!choice.hugepages());
    assert_eq!(choice.eal_args(), ["--no-huge", "-m", "8"]);
}

#[test]
fn the_choice_starts_an_eal_on_this_machine() {
    let choice = DefaultMemory::detect(8);
    let prefix = format!("defmem{}", std::process::id());
    let mut args = vec!["t".to_owned()];
    args.extend(choice.eal_args());
    args.extend(["--file-prefix".to_owned(), prefix]);
    let eal = dpmem_eal::Eal::init(args).unwrap();
    assert_eq!(
        eal.memory().mode() == dpmem_eal::MemoryMode::NoHuge,
        !choice.hugepages()
    );
}
