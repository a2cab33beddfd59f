//! `--no-huge`: anonymous 4 KiB memory that works for any user, on any machine.

mod common;

use std::ops::ControlFlow;

use common::{args, run_ignored_test_in_child, unique_prefix};
use dpmem_eal::{
    Eal, EalError, ErrorKind, Iova, IovaMode, MemoryMode, PageRequest, ProcessRole, Socket,
};

#[test]
fn no_huge_maps_64_mib_of_small_pages_with_iova_equal_va() {
    let prefix = unique_prefix("nohuge");
    let eal = Eal::init(args(&[
        "--no-huge",
        "--file-prefix",
        &prefix,
        "--",
        "app-arg",
    ]))
    .unwrap();
    assert_eq!(eal.app_args(), ["app-arg"]);
    let mem = eal.memory();
    assert_eq!(mem.mode(), MemoryMode::NoHuge);
    assert_eq!(mem.iova_mode(), IovaMode::Va);
    assert_eq!(eal.process_role(), ProcessRole::Primary);
    let lists = mem.lists();
    assert_eq!(lists.len(), 1);
    let list = lists[0];
    assert_eq!(list.page_size, 4096);
    assert_eq!(list.n_segs as u64 * 4096, 64 << 20);
    assert_eq!(list.n_used, list.n_segs);
    assert_eq!(mem.socket_bytes(Socket::Node(0)), 64 << 20);

    // The memory is real: write its last byte and first byte through the segment addresses.
    let segs = mem.segments(0);
    assert_eq!(segs.len(), list.n_segs as usize);
    let (first, last) = (segs[0], segs[segs.len() - 1]);
    assert!(segs
        .iter()
        .all(|s| s.iova() == Iova::new(s.va() as u64) && s.is_pinned()));
    let (head, tail) = (
        first.va() as *mut u8,
        (last.va() + last.len() - 1) as *mut u8,
    );
    // SAFETY: inside mapped, pinned no-huge memory owned by `eal`.
    unsafe { head.write(0x5A) };
    // SAFETY: the last byte of the last segment, mapped as above.
    unsafe { tail.write(0xA5) };
    // SAFETY: written just above.
    assert_eq!(unsafe { head.read() }, 0x5A);
    let probe = first.va() + 12345;
    assert_eq!(mem.virt_to_iova(probe), Iova::new(probe as u64));
    assert_eq!(
        mem.iova_to_virt(Iova::new(probe as u64).unwrap()),
        Some(probe)
    );
    assert_eq!(mem.virt_to_memseg(probe).unwrap().va(), first.va() + 12288);
    assert_eq!(mem.virt_to_list(probe).unwrap().index, 0);
    assert_eq!(mem.virt_to_memseg(0x1000), None);

    // One IOVA-contiguous run covers everything.
    let mut runs = Vec::new();
    mem.walk_contig(|_, seg, len| {
        runs.push((seg.va(), len));
        ControlFlow::<()>::Continue(())
    });
    assert_eq!(runs, vec![(first.va(), 64 << 20)]);

    // A walk stops at the first Break and hands its value back.
    let mut visited = 0;
    let found = mem.walk_segments(|_, seg| {
        visited += 1;
        if seg.va() == first.va() + 4 * 4096 {
            ControlFlow::Break(Err::<(), _>("stop here"))
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(found, Some(Err("stop here")));
    assert_eq!(visited, 5);

    // Memory cannot grow or shrink in this mode, and refusing changes nothing.
    let err = mem
        .alloc_pages(PageRequest::new(4096, Socket::Node(0), 1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSup, "{err}");
    // SAFETY: no-huge pages are pinned, which `free_pages` refuses before unmapping anything
    // (what this checks); nothing loses its memory.
    let err = unsafe { mem.free_pages(first.va(), 4096) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert_eq!(mem.lists()[0].n_used, list.n_segs);
}

#[test]
fn no_huge_honours_m_and_cleans_its_runtime_directory() {
    let prefix = unique_prefix("nohuge_m");
    let eal = Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap();
    assert_eq!(eal.memory().lists()[0].n_segs, 8 << 20 >> 12);
    let dir = eal.runtime_dir().unwrap().to_path_buf();
    assert!(dir.join("config").exists());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    drop(eal);
    assert!(
        !dir.exists(),
        "runtime directory {} left behind",
        dir.display()
    );
}

#[test]
fn second_primary_with_same_prefix_is_refused_and_secondary_of_no_huge_too() {
    let prefix = unique_prefix("twoprim");
    let first = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", &prefix])).unwrap();
    let err = Eal::init(args(&["--no-huge", "-m", "4", "--file-prefix", &prefix])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains(&prefix), "{err}");
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix])).unwrap_err();
    assert!(err.to_string().contains("--no-huge"), "{err}");
    // The refusals changed nothing for the primary.
    assert_eq!(first.memory().lists()[0].n_used, 4 << 20 >> 12);
}

#[test]
fn secondary_without_primary_fails_clearly() {
    let prefix = unique_prefix("noprim");
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix])).unwrap_err();
    assert!(matches!(err, EalError::Secondary(_)), "{err}");
    assert!(err.to_string().contains("no primary"), "{err}");
}

#[test]
fn bad_options_fail_before_anything_is_created() {
    let prefix = unique_prefix("badopt");
    for bad in [
        vec!["-m", "64", "--socket-mem", "64"],
        vec!["--no-huge", "--socket-mem", "64"],
        vec!["--legacy-mem", "--in-memory"],
        vec!["-l", "1-"],
        vec!["--lcores", "3@((1,3)"],
        vec!["--huge-dir", "/tmp"],
        vec!["-l", "0", "--main-lcore", "1"],
        vec!["-l", "100000"],
    ] {
        let mut all = bad.clone();
        all.extend(["--file-prefix", &prefix]);
        let err = Eal::init(args(&all)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Inval, "{bad:?}: {err}");
    }
    assert!(!dpmem_eal::runtime_dir::location(&prefix).exists());
}

#[test]
fn iova_pa_with_no_huge_is_refused() {
    let err = Eal::init(args(&[
        "--no-huge",
        "--iova-mode=pa",
        "--file-prefix",
        &unique_prefix("pa"),
    ]))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSup, "{err}");
}

#[test]
fn event_callbacks_and_validators_register_once_by_name() {
    let eal = Eal::init(args(&["--no-huge", "-m", "4", "--in-memory"]));
    // --in-memory with --no-huge is refused as DPDK does; use the runtime-dir form.
    assert!(eal.is_err());
    let eal = Eal::init(args(&[
        "--no-huge",
        "-m",
        "4",
        "--file-prefix",
        &unique_prefix("cb"),
    ]))
    .unwrap();
    let mem = eal.memory();
    mem.register_event_callback("a", |_, _, _| {}).unwrap();
    assert_eq!(
        mem.register_event_callback("a", |_, _, _| {})
            .unwrap_err()
            .kind(),
        ErrorKind::Exist
    );
    mem.unregister_event_callback("a").unwrap();
    assert_eq!(
        mem.unregister_event_callback("a").unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    mem.register_validator("v", Socket::Node(0), 1 << 20, |_, _, _| true)
        .unwrap();
    assert_eq!(
        mem.register_validator("v", Socket::Node(0), 1, |_, _, _| true)
            .unwrap_err()
            .kind(),
        ErrorKind::Exist
    );
    mem.register_validator("v", Socket::Node(1), 1, |_, _, _| true)
        .unwrap();
    assert_eq!(
        mem.register_validator("v", Socket::Any, 1, |_, _, _| true)
            .unwrap_err()
            .kind(),
        ErrorKind::Inval
    );
    mem.unregister_validator("v", Socket::Node(0)).unwrap();
    assert_eq!(
        mem.unregister_validator("v", Socket::Node(0))
            .unwrap_err()
            .kind(),
        ErrorKind::NoEnt
    );
}

/// Runs the no-huge checks as an unprivileged user: re-executes this test binary as `nobody`
/// when running as root, so the property holds on CI machines (which run as root) too.
#[test]
fn no_huge_works_for_an_unprivileged_user() {
    if dpmem_sys::process::is_root() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // The checkout may sit where `nobody` cannot reach (under /root): run a copy of this
        // test binary from a world-readable directory instead.
        let dir = tempfile::Builder::new()
            .prefix("dpmem-nobody")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.path().join("no_huge_test");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        run_ignored_test_in_child(&exe, "unprivileged_no_huge_body", |child| {
            child
                .current_dir(dir.path())
                .env_remove("XDG_RUNTIME_DIR")
                .uid(65534)
                .gid(65534);
        });
    } else {
        unprivileged_no_huge_body();
    }
}

#[test]
#[ignore = "run by no_huge_works_for_an_unprivileged_user as user nobody"]
fn unprivileged_no_huge_body() {
    assert!(
        !dpmem_sys::process::is_root(),
        "this body must run without root"
    );
    let prefix = unique_prefix("nobody");
    let eal = Eal::init(args(&["--no-huge", "-m", "16", "--file-prefix", &prefix])).unwrap();
    assert_eq!(eal.iova_mode(), IovaMode::Va);
    let seg = eal.memory().segments(0)[100];
    // SAFETY: inside mapped no-huge memory owned by `eal`.
    unsafe { std::ptr::write_bytes(seg.va() as *mut u8, 0x11, seg.len()) };
    assert!(
        eal.runtime_dir().unwrap().starts_with("/tmp")
            || std::env::var_os("XDG_RUNTIME_DIR").is_some()
    );
    // Physical addresses cannot be had without root: asking for them fails clearly.
    let err = Eal::init(args(&[
        "--iova-mode=pa",
        "--file-prefix",
        &unique_prefix("nobody_pa"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().contains("physical") || err.to_string().contains("hugepage"),
        "{err}"
    );
}
