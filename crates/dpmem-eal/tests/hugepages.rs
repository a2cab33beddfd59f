//! Every mapping backend on real 2 MiB hugepages. Skips with a printed reason where hugepages
//! are not available, and fails instead when `DPMEM_REQUIRE_HUGEPAGES=1` (as in CI).

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use common::*;
use dpmem_eal::{
    Eal, EalError, ErrorKind, Iova, IovaMode, MemEvent, MemoryMode, Memseg, MemzoneFlags,
    PageRequest, Socket,
};

/// A 2 MiB page's length, as addresses count.
const PAGE: usize = PAGE_2M as usize;

/// Socket 0.
const S0: Socket = Socket::Node(0);

fn fill(va: usize, len: usize, byte: u8) {
    // SAFETY: callers pass ranges of mapped dpmem memory they own for the test's duration.
    unsafe { std::ptr::write_bytes(va as *mut u8, byte, len) }
}

/// The device address of a segment whose device address is known.
fn iova(seg: &Memseg) -> u64 {
    seg.iova().expect("the segment's IOVA is known").get()
}

fn read(va: usize) -> u8 {
    // SAFETY: as in `fill`.
    unsafe { std::ptr::read_volatile(va as *const u8) }
}

#[test]
fn dynamic_memory_grows_and_gives_pages_back() {
    let _serial = hugepage_lock();
    if !hugepages_available("dynamic_memory_grows_and_gives_pages_back", 16) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("dyn");
    let free_before = free_2m();
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let mem = eal.memory();
    assert_eq!(mem.mode(), MemoryMode::Dynamic);
    assert_eq!(
        free_2m(),
        free_before,
        "dynamic mode without -m maps nothing at start"
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    mem.register_event_callback("record", move |ev, va, len| {
        sink.lock().unwrap().push((ev, va, len))
    })
    .unwrap();

    let run = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 8)).unwrap();
    assert_eq!(run.len(), 8 * PAGE);
    assert_eq!(free_2m(), free_before - 8);
    assert_eq!(
        files_with_prefix(&dir, &prefix).len(),
        8,
        "one file per page while in use"
    );
    fill(run.va(), run.len(), 0x3C);
    assert_eq!(read(run.va() + run.len() - 1), 0x3C);
    for i in 0..8 {
        let seg = mem.virt_to_memseg(run.va() + i * PAGE).unwrap();
        assert_eq!(seg.page_size(), PAGE_2M);
        assert_eq!(seg.socket(), S0);
        assert!(!seg.is_pinned());
        if dpmem_sys::numa::policy_supported() {
            assert_eq!(
                Socket::Node(dpmem_sys::numa::node_of_address(seg.va()).unwrap()),
                seg.socket()
            );
        }
        // The IOVA of an address is its page's IOVA plus the offset: a 2 MiB page is
        // contiguous in IOVA space, which pagemap confirms 4 KiB by 4 KiB in PA mode.
        let mid = seg.va() + PAGE / 2 + 4096 * 3 + 17;
        assert!(seg.iova().is_some());
        assert_eq!(
            mem.virt_to_iova(mid),
            Iova::new(iova(&seg) + (mid - seg.va()) as u64)
        );
        if mem.iova_mode() == IovaMode::Pa {
            let pagemap = dpmem_sys::pagemap::Pagemap::open().unwrap();
            for off in (0..PAGE).step_by(4096 * 64) {
                assert_eq!(
                    pagemap.physical_address(seg.va() + off).unwrap(),
                    Some(iova(&seg) + off as u64)
                );
            }
            assert_eq!(
                mem.iova_to_virt(Iova::new(iova(&seg) + 5).unwrap()),
                Some(seg.va() + 5)
            );
        } else {
            assert_eq!(seg.iova(), Iova::new(seg.va() as u64));
        }
    }
    assert_eq!(mem.socket_bytes(S0), 8 * PAGE_2M);

    let (run_va, run_len) = (run.va(), run.len());
    run.free().unwrap();
    assert_eq!(free_2m(), free_before, "freed pages go back to the system");
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    assert_eq!(mem.virt_to_memseg(run_va), None);
    assert_eq!(mem.socket_bytes(S0), 0);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            (MemEvent::Alloc, run_va, run_len),
            (MemEvent::Free, run_va, run_len)
        ]
    );

    // Bad frees change nothing. The pages are given up by their handle, as raw frees need;
    // they stay mapped until the EAL goes.
    let again = mem
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 2))
        .unwrap()
        .into_run();
    // SAFETY: a range inside this test's pages, which nothing uses; it does not start on a
    // page, so it is refused before anything is unmapped (what this checks).
    let err = unsafe { mem.free_pages(again.va + 4096, PAGE) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    // SAFETY: as above; the range runs past the run's two pages, so it is refused.
    let err = unsafe { mem.free_pages(again.va, 3 * PAGE) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    // SAFETY: 0x1000 is no dpmem memory: refused, nothing unmapped.
    let err = unsafe { mem.free_pages(0x1000, 4096) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    assert_eq!(mem.lists()[again.list_index as usize].n_used, 2);
    assert_eq!(
        mem.alloc_pages(PageRequest::new(4096, S0, 1))
            .unwrap_err()
            .kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 0))
            .unwrap_err()
            .kind(),
        ErrorKind::Inval
    );
    drop(eal);
    assert_eq!(free_2m(), free_before, "cleanup returns every page");
    assert!(
        files_with_prefix(&dir, &prefix).is_empty(),
        "default mode leaves no file after exit"
    );
}

#[test]
fn preallocated_memory_is_pinned_and_released_at_exit() {
    let _serial = hugepage_lock();
    if !hugepages_available("preallocated_memory_is_pinned_and_released_at_exit", 32) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("prealloc");
    let free_before = free_2m();
    let eal = Eal::init(args(&["-m", "64", "--file-prefix", &prefix])).unwrap();
    let mem = eal.memory();
    assert_eq!(free_2m(), free_before - 32);
    let segs: Vec<_> = mem
        .lists()
        .iter()
        .flat_map(|l| mem.segments(l.index))
        .collect();
    assert_eq!(segs.len(), 32);
    assert!(segs.iter().all(|s| s.is_pinned()));
    // SAFETY: a pinned page, which `free_pages` refuses before unmapping anything (what this
    // checks); nothing loses its memory.
    let err = unsafe { mem.free_pages(segs[0].va(), PAGE) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert_eq!(free_2m(), free_before - 32);
    // Growth still works on top of the pinned memory.
    let run = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 4)).unwrap();
    run.free().unwrap();
    drop(eal);
    assert_eq!(free_2m(), free_before);
    assert!(files_with_prefix(&dir, &prefix).is_empty());
}

#[test]
fn legacy_memory_is_sorted_into_iova_contiguous_runs_and_files_stay() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "legacy_memory_is_sorted_into_iova_contiguous_runs_and_files_stay",
        32,
    ) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("legacy");
    let free_before = free_2m();
    let eal = Eal::init(args(&[
        "--legacy-mem",
        "-m",
        "64",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap();
    let mem = eal.memory();
    assert_eq!(mem.mode(), MemoryMode::Legacy);
    assert_eq!(free_2m(), free_before - 32);
    let mut total = 0;
    let mut runs = 0;
    mem.walk_contig(|_, first, len| {
        runs += 1;
        total += len;
        // Inside a run, IOVA follows VA page by page.
        let mut va = first.va();
        while va < first.va() + len {
            let seg = mem.virt_to_memseg(va).unwrap();
            assert_eq!(iova(&seg) - iova(first), (va - first.va()) as u64);
            assert!(seg.is_pinned());
            va += PAGE;
        }
        ControlFlow::<()>::Continue(())
    });
    assert_eq!(total, 64 << 20);
    if mem.iova_mode() == IovaMode::Pa {
        // Slots are in physical order: IOVAs ascend with VA across the whole list.
        let segs = mem.segments(0);
        assert!(segs.windows(2).all(|w| iova(&w[0]) < iova(&w[1])));
        // Every break in physical contiguity is a break in the list too (an empty slot).
        let breaks = segs
            .windows(2)
            .filter(|w| iova(&w[1]) != iova(&w[0]) + PAGE_2M)
            .count();
        assert_eq!(runs, breaks + 1);
        assert!(segs
            .windows(2)
            .all(|w| (iova(&w[1]) == iova(&w[0]) + PAGE_2M) == (w[1].va() == w[0].va() + PAGE)));
    }
    let err = mem
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSup);
    drop(eal);
    assert_eq!(
        files_with_prefix(&dir, &prefix).len(),
        32,
        "legacy mode leaves its page files"
    );
    // The next primary with the default --huge-unlink=existing removes them as stale.
    let next = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    drop(next);
    assert_eq!(free_2m(), free_before);
}

#[test]
fn single_file_segments_use_one_file_per_list() {
    let _serial = hugepage_lock();
    if !hugepages_available("single_file_segments_use_one_file_per_list", 8) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("single");
    let free_before = free_2m();
    let eal = Eal::init(args(&[
        "--single-file-segments",
        "-m",
        "8",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap();
    let mem = eal.memory();
    let files = files_with_prefix(&dir, &prefix);
    let expected: Vec<String> = mem
        .lists()
        .iter()
        .map(|l| format!("{prefix}map_{}", l.index))
        .collect();
    assert_eq!(files, expected, "exactly one file per list, none per page");
    let segs = mem.segments(0);
    assert_eq!(segs.len(), 4);
    let ino = |fd: &std::os::fd::OwnedFd| {
        std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap()
    };
    // SAFETY: the descriptor is only inspected, never written through nor truncated.
    let (fd0, off0) = unsafe { mem.segment_fd(segs[0].va()) }.unwrap().unwrap();
    // SAFETY: the descriptor is only inspected, never written through nor truncated.
    let (fd3, off3) = unsafe { mem.segment_fd(segs[3].va()) }.unwrap().unwrap();
    assert_eq!(ino(&fd0), ino(&fd3));
    assert_eq!(off3 - off0, 3 * PAGE_2M);
    let run = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 2)).unwrap();
    assert_eq!(free_2m(), free_before - 6);
    run.free().unwrap();
    assert_eq!(
        free_2m(),
        free_before - 4,
        "a freed page is punched out of the list file"
    );
    drop((fd0, fd3));
    drop(eal);
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    assert_eq!(free_2m(), free_before);
}

#[test]
fn in_memory_uses_memfds_and_no_files() {
    let _serial = hugepage_lock();
    if !hugepages_available("in_memory_uses_memfds_and_no_files", 8) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("inmem");
    let free_before = free_2m();
    let eal = Eal::init(args(&["--in-memory", "-m", "8", "--file-prefix", &prefix])).unwrap();
    let mem = eal.memory();
    assert!(eal.runtime_dir().is_none());
    assert!(mem.config_path().is_none());
    assert!(
        !dpmem_eal::runtime_dir::location(&prefix).exists(),
        "in-memory creates no runtime directory"
    );
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    assert_eq!(free_2m(), free_before - 4);
    let seg = mem.segments(0)[1];
    // SAFETY: the descriptor is only inspected, never written through nor truncated.
    let (fd, offset) = unsafe { mem.segment_fd(seg.va()) }.unwrap().unwrap();
    assert_eq!(offset, seg.file_offset());
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert!(
        link.to_string_lossy().contains("memfd:"),
        "{}",
        link.display()
    );
    fill(seg.va(), seg.len(), 0x77);
    // The fd really is the page's backing: read the byte through it.
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::from(fd), &mut byte, offset + 100)
        .unwrap();
    assert_eq!(byte[0], 0x77);
    // Pages are spread over several memfds (one per CPU): each segment's fd and offset still
    // lead to that segment's own bytes.
    let segs = mem.segments(0);
    for (n, seg) in segs.iter().enumerate() {
        fill(seg.va(), seg.len(), 0x10 + n as u8);
    }
    for (n, seg) in segs.iter().enumerate() {
        // SAFETY: the descriptor is only read through, never written nor truncated.
        let (fd, offset) = unsafe { mem.segment_fd(seg.va()) }.unwrap().unwrap();
        let mut byte = [0u8; 1];
        let file = std::fs::File::from(fd);
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, offset + 4095).unwrap();
        assert_eq!(byte[0], 0x10 + n as u8, "segment {n}");
    }
    // A page freed and allocated again comes back from its stripe.
    let run = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 3)).unwrap();
    assert_eq!(free_2m(), free_before - 7);
    run.free().unwrap();
    assert_eq!(free_2m(), free_before - 4, "freed pages are punched out");
    drop(eal);
    assert_eq!(free_2m(), free_before);
}

#[test]
fn huge_unlink_never_keeps_files_and_a_restart_sees_old_bytes_as_dirty() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "huge_unlink_never_keeps_files_and_a_restart_sees_old_bytes_as_dirty",
        4,
    ) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("never");
    let free_before = free_2m();
    let first = Eal::init(args(&["--huge-unlink=never", "--file-prefix", &prefix])).unwrap();
    // Given up by its handle: the page stays mapped until the EAL goes.
    let run = first
        .memory()
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 1))
        .unwrap()
        .into_run();
    assert!(!first.memory().virt_to_memseg(run.va).unwrap().is_dirty());
    fill(run.va, run.len, 0xD1);
    drop(first);
    assert_eq!(
        files_with_prefix(&dir, &prefix),
        vec![format!("{prefix}map_0_0")]
    );
    assert_eq!(free_2m(), free_before - 1, "the kept file holds its page");

    let second = Eal::init(args(&["--huge-unlink=never", "--file-prefix", &prefix])).unwrap();
    let run = second
        .memory()
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 1))
        .unwrap()
        .into_run();
    let seg = second.memory().virt_to_memseg(run.va).unwrap();
    assert!(seg.is_dirty(), "a page from a kept file is marked dirty");
    assert_eq!(read(run.va), 0xD1);
    assert_eq!(read(run.va + run.len - 1), 0xD1);
    assert_eq!(free_2m(), free_before - 1);
    drop(second);
    // A default primary cleans the kept files up as stale.
    drop(Eal::init(args(&["--file-prefix", &prefix])).unwrap());
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    assert_eq!(free_2m(), free_before);
}

#[test]
fn huge_unlink_always_leaves_no_name_while_memory_works() {
    let _serial = hugepage_lock();
    if !hugepages_available("huge_unlink_always_leaves_no_name_while_memory_works", 4) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("always");
    let free_before = free_2m();
    let eal = Eal::init(args(&[
        "--huge-unlink=always",
        "-m",
        "4",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap();
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    let seg = eal.memory().segments(0)[0];
    fill(seg.va(), seg.len(), 9);
    assert_eq!(read(seg.va() + 7), 9);
    assert_eq!(free_2m(), free_before - 2);
    let err = Eal::init(args(&["--proc-type=secondary", "--file-prefix", &prefix])).unwrap_err();
    assert!(err.to_string().contains("always"), "{err}");
    drop(eal);
    assert_eq!(free_2m(), free_before);
}

#[test]
fn match_allocations_frees_only_whole_allocations() {
    let _serial = hugepage_lock();
    if !hugepages_available("match_allocations_frees_only_whole_allocations", 8) {
        return;
    }
    let prefix = unique_prefix("match");
    let eal = Eal::init(args(&["--match-allocations", "--file-prefix", &prefix])).unwrap();
    let mem = eal.memory();
    let mut layout = mem.layout_watch();
    // Given up by their handles: this test frees the raw ranges itself.
    let a = mem
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 4))
        .unwrap()
        .into_run();
    assert!(layout.changed(), "pages mapped move the layout count");
    let b = mem
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 2))
        .unwrap()
        .into_run();
    assert!(layout.changed());
    assert_eq!(b.va, a.va + a.len, "allocations are adjacent");
    // SAFETY: this test's pages, which nothing uses; half an allocation is refused before
    // anything is unmapped (what this checks).
    let err = unsafe { mem.free_pages(a.va, 2 * PAGE) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    // SAFETY: as above; a range spanning two allocations is refused the same way.
    let err = unsafe { mem.free_pages(a.va, a.len + b.len) }.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Inval,
        "spanning two allocations: {err}"
    );
    assert_eq!(mem.lists()[0].n_used, 6, "refused frees change nothing");
    assert!(!layout.changed(), "refused frees leave the layout count");
    // SAFETY: whole allocations of this test's, which nothing uses.
    unsafe { mem.free_pages(b.va, b.len) }.unwrap();
    assert!(layout.changed(), "pages unmapped move the layout count");
    // SAFETY: as above.
    unsafe { mem.free_pages(a.va, a.len) }.unwrap();
    assert_eq!(mem.lists()[0].n_used, 0);
}

#[test]
fn socket_limit_and_validators_veto_growth() {
    let _serial = hugepage_lock();
    if !hugepages_available("socket_limit_and_validators_veto_growth", 8) {
        return;
    }
    let prefix = unique_prefix("limit");
    let eal = Eal::init(args(&["--socket-limit", "8", "--file-prefix", &prefix])).unwrap();
    let mem = eal.memory();
    let ok = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 4)).unwrap();
    let err = mem
        .alloc_pages(PageRequest::new(PAGE_2M, S0, 1))
        .unwrap_err();
    assert!(matches!(err, EalError::Vetoed { socket: S0, .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NoMem);
    assert_eq!(mem.lists()[0].n_used, 4);
    ok.free().unwrap();
    // A custom validator sees the figures and can allow growth past its limit.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    mem.register_validator("audit", S0, 2 * PAGE_2M, move |socket, limit, total| {
        sink.lock().unwrap().push((socket, limit, total));
        total <= 3 * PAGE_2M
    })
    .unwrap();
    let three = mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 3)).unwrap();
    assert!(mem.alloc_pages(PageRequest::new(PAGE_2M, S0, 1)).is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (S0, 2 * PAGE_2M, 3 * PAGE_2M),
            (S0, 2 * PAGE_2M, 4 * PAGE_2M)
        ]
    );
    three.free().unwrap();
}

#[test]
fn a_node_without_enough_pages_fails_naming_node_and_shortfall() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_node_without_enough_pages_fails_naming_node_and_shortfall",
        1,
    ) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("short");
    let free_before = free_2m();
    let want_mb = (free_before + 50) * 2;
    let err = Eal::init(args(&[
        "--socket-mem",
        &want_mb.to_string(),
        "--file-prefix",
        &prefix,
    ]))
    .unwrap_err();
    match &err {
        EalError::NodeShortfall {
            socket,
            requested_mb,
            shortfall_mb,
            ..
        } => {
            assert_eq!(*socket, S0);
            assert_eq!(*requested_mb, want_mb);
            assert_eq!(*shortfall_mb, 100);
        }
        other => panic!("expected a node shortfall, got {other}"),
    }
    assert!(err.to_string().contains("socket 0"), "{err}");
    assert_eq!(
        free_2m(),
        free_before,
        "a failed start leaves no page mapped"
    );
    assert!(files_with_prefix(&dir, &prefix).is_empty());
    // Growth that the node cannot supply fails the same way, changing nothing.
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let err = eal
        .memory()
        .alloc_pages(PageRequest::new(PAGE_2M, S0, (free_before + 5) as usize))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    assert_eq!(free_2m(), free_before);
    assert_eq!(eal.memory().lists()[0].n_used, 0);
    // A heap allocation or memzone the node's hugepages cannot grow the heap for says so:
    // which heap, what it has free, and how many pages the node has left.
    let too_big = ((free_before + 5) * PAGE_2M) as usize;
    let heap_err = eal.heaps().malloc_socket(too_big, 0, S0).unwrap_err();
    let zone_err = eal
        .memzones()
        .reserve("too_big", too_big, S0, MemzoneFlags::empty())
        .unwrap_err();
    for err in [heap_err, zone_err] {
        assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
        let text = err.to_string();
        let node_free = format!("node 0 has {} of 2 MiB hugepages free", free_2m());
        assert!(
            text.contains("socket 0:") && text.contains(&node_free),
            "{text}"
        );
    }
    assert_eq!(free_2m(), free_before);
}

#[test]
fn stale_files_are_removed_but_live_ones_refuse_the_prefix() {
    let _serial = hugepage_lock();
    if !hugepages_available("stale_files_are_removed_but_live_ones_refuse_the_prefix", 2) {
        return;
    }
    let dir = mount_2m().unwrap();
    let prefix = unique_prefix("stale");
    let stale = dir.join(format!("{prefix}map_0_5"));
    std::fs::write(&stale, b"").unwrap();
    drop(Eal::init(args(&["--file-prefix", &prefix])).unwrap());
    assert!(!stale.exists(), "an unlocked leftover is removed");

    let live =
        dpmem_sys::backing_file::BackingFile::open_or_create(&dir.join(format!("{prefix}map_1_0")))
            .unwrap();
    live.lock_shared().unwrap();
    // flock locks belong to the open file description, so a lock held through another
    // description, even in this process, looks exactly like another live run.
    let err = Eal::init(args(&["--file-prefix", &prefix])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    drop(live);
    remove_files_with_prefix(&dir, &prefix);
}

#[test]
fn iova_mode_pa_and_va_are_honoured() {
    let _serial = hugepage_lock();
    if !hugepages_available("iova_mode_pa_and_va_are_honoured", 4) {
        return;
    }
    let va = Eal::init(args(&[
        "--iova-mode=va",
        "-m",
        "2",
        "--file-prefix",
        &unique_prefix("va"),
    ]))
    .unwrap();
    let seg = va.memory().segments(0)[0];
    assert_eq!(
        (va.iova_mode(), seg.iova()),
        (IovaMode::Va, Iova::new(seg.va() as u64))
    );
    drop(va);
    let pa = Eal::init(args(&[
        "--iova-mode=pa",
        "-m",
        "2",
        "--file-prefix",
        &unique_prefix("pa"),
    ]));
    if dpmem_sys::pagemap::physical_addresses_available() {
        let pa = pa.unwrap();
        let seg = pa.memory().segments(0)[0];
        assert_eq!(pa.iova_mode(), IovaMode::Pa);
        assert_ne!(iova(&seg), seg.va() as u64);
        assert_eq!(
            iova(&seg) % PAGE_2M,
            0,
            "a 2 MiB hugepage is 2 MiB aligned physically"
        );
    } else {
        assert_eq!(pa.unwrap_err().kind(), ErrorKind::NotSup);
    }
}

#[test]
fn base_virtaddr_places_the_lists_there_or_fails_loudly() {
    let _serial = hugepage_lock();
    if !hugepages_available("base_virtaddr_places_the_lists_there_or_fails_loudly", 1) {
        return;
    }
    let base = 0x2000_0000_0000usize;
    let eal = Eal::init(args(&[
        "--base-virtaddr",
        &format!("{base:#x}"),
        "--file-prefix",
        &unique_prefix("base"),
    ]))
    .unwrap();
    assert_eq!(eal.memory().lists()[0].base_va, base);
    let err = Eal::init(args(&[
        "--base-virtaddr",
        &format!("{base:#x}"),
        "--file-prefix",
        &unique_prefix("base2"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("base-virtaddr"), "{err}");
}

#[test]
fn page_files_never_go_where_others_may_replace_them() {
    let _serial = hugepage_lock();
    if !hugepages_available("page_files_never_go_where_others_may_replace_them", 1) {
        return;
    }
    let dir = mount_2m().unwrap();
    // A directory of the hugetlbfs mount that anybody may write to, without the sticky bit:
    // another user could rename this process's page files away and put their own there.
    let open = dir.join(format!("open{}", std::process::id()));
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let prefix = unique_prefix("opendir");
    let free_before = free_2m();
    let err = Eal::init(args(&[
        "--huge-dir",
        open.to_str().unwrap(),
        "-m",
        "4",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval, "{err}");
    assert!(err.to_string().contains("sticky"), "{err}");
    assert_eq!(free_2m(), free_before, "nothing was mapped");
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "no file was made"
    );
    // With the sticky bit (as /tmp has) the directory is fine.
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let eal = Eal::init(args(&[
        "--huge-dir",
        open.to_str().unwrap(),
        "-m",
        "4",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap();
    drop(eal);
    remove_files_with_prefix(&open, &prefix);
    std::fs::remove_dir(&open).unwrap();
}
