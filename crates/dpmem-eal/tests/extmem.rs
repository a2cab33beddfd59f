//! External memory, conformance with DPDK 22.11's documented behaviour of
//! `rte_malloc_heap_create` / `_memory_add` / `_memory_remove` / `_memory_attach` /
//! `_memory_detach` / `_destroy` / `_get_socket` / `_socket_is_external` and
//! `rte_extmem_register` / `unregister` / `attach` / `detach`, with their error kinds.
//!
//! The user's memory is real: anonymous mappings made here, and (multi-process) a memfd mapped
//! at the same address by a real secondary process. External memory needs no hugepages, so
//! everything but the secondary runs on a `--no-huge` EAL, for any user.

mod common;

use std::ops::ControlFlow;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use allocator_api2::vec::Vec as ApiVec;
use common::*;
use dpmem_eal::limits::{MAX_HEAPS, MAX_MEMSEG_LISTS};
use dpmem_eal::memseg_list::MemsegListInfo;
use dpmem_eal::{Eal, EalError, EalSettings, ErrorKind, Iova, MemEvent, MemzoneFlags, Socket};
use dpmem_sys::mapping;

const PAGE: usize = 4096;

/// Memory the test maps itself, as a user bringing their own buffers would.
struct UserMemory {
    addr: usize,
    len: usize,
}

impl UserMemory {
    /// Anonymous read-write memory of `len` bytes aligned to `align`.
    fn anonymous(len: usize, align: usize) -> Self {
        let addr = mapping::reserve(len, align, None).unwrap();
        // SAFETY: the reservation made just above, of `len` bytes, holds nothing yet.
        unsafe { mapping::map_anonymous_fixed(addr, len, None, false) }.unwrap();
        Self { addr, len }
    }

    fn ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }

    fn at(&self, offset: usize) -> *mut u8 {
        (self.addr + offset) as *mut u8
    }

    fn fill(&self, byte: u8) {
        // SAFETY: the whole mapping is this value's, read-write.
        unsafe { std::ptr::write_bytes(self.ptr(), byte, self.len) }
    }

    fn contains(&self, p: *const u8) -> bool {
        (p as usize) >= self.addr && (p as usize) < self.addr + self.len
    }
}

impl Drop for UserMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's and tests drop it only after dpmem forgot it (or
        // the EAL is gone).
        let _ = unsafe { mapping::release(self.addr, self.len) };
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, EalError>) -> ErrorKind {
    r.expect_err("the call must fail").kind()
}

fn eal(tag: &str) -> Eal {
    no_huge_eal(tag, 16)
}

/// Adds `mem` to heap `name` with 4 KiB pages and no IOVAs.
fn add(eal: &Eal, name: &str, mem: &UserMemory) {
    // SAFETY: `mem` is mapped read-write, used by nothing else, and outlives its time in the heap
    // (every test removes it or drops the EAL first).
    unsafe {
        eal.heaps()
            .heap_memory_add(name, mem.ptr(), mem.len, None, PAGE)
    }
    .unwrap();
}

fn free(eal: &Eal, p: NonNull<u8>) {
    // SAFETY: tests free only blocks they own and no longer use.
    unsafe { eal.heaps().free(p) }.unwrap();
}

/// The socket `n` ids after `socket` in DPDK's numbering.
fn after(socket: Socket, n: i32) -> Socket {
    Socket::from_raw(socket.to_raw() + n).unwrap()
}

fn external_lists(eal: &Eal) -> Vec<MemsegListInfo> {
    eal.memory()
        .lists()
        .into_iter()
        .filter(|l| l.external)
        .collect()
}

#[test]
fn heaps_are_created_named_and_destroyed_as_dpdk_documents() {
    let eal = eal("xheap");
    let heaps = eal.heaps();
    let a = heaps.heap_create("ext_a").unwrap();
    assert!(
        a.is_external() && a.to_raw() >= 256,
        "external socket ids lie above every NUMA node: {a}"
    );
    let b = heaps.heap_create("ext_b").unwrap();
    assert_eq!(b, after(a, 1));
    assert_eq!(heaps.heap_get_socket("ext_a").unwrap(), a);
    assert_eq!(heaps.heap_get_socket("socket_0").unwrap(), Socket::Node(0));
    assert_eq!(kind(heaps.heap_get_socket("nope")), ErrorKind::NoEnt);
    assert_eq!(kind(heaps.heap_get_socket("")), ErrorKind::Inval);

    assert_eq!(kind(heaps.heap_create("ext_a")), ErrorKind::Exist);
    assert_eq!(
        kind(heaps.heap_create("socket_0")),
        ErrorKind::Exist,
        "socket heaps' names are taken"
    );
    assert_eq!(kind(heaps.heap_create("")), ErrorKind::Inval);
    assert_eq!(kind(heaps.heap_create(&"n".repeat(32))), ErrorKind::Inval);
    let long = heaps.heap_create(&"n".repeat(31)).unwrap();
    assert_eq!(long, after(b, 1));

    assert!(heaps.heap_socket_is_external(a).unwrap());
    assert!(!heaps.heap_socket_is_external(Socket::Node(0)).unwrap());
    assert!(!heaps.heap_socket_is_external(Socket::Any).unwrap());
    assert_eq!(
        kind(heaps.heap_socket_is_external(Socket::from_raw(999).unwrap())),
        ErrorKind::Inval
    );
    assert_eq!(
        kind(heaps.heap_socket_is_external(Socket::Node(100))),
        ErrorKind::Inval
    );

    // An empty heap is listed, has nothing to give and never grows.
    let stats = heaps.stats(a).unwrap();
    assert_eq!((stats.name.as_str(), stats.socket), ("ext_a", a));
    assert!(stats.external);
    assert_eq!(stats.total_bytes, 0);
    assert!(!heaps.stats(Socket::Node(0)).unwrap().external);
    let all = heaps.all_stats();
    assert_eq!(all[0].name, "socket_0");
    assert!(all.iter().any(|s| s.name == "ext_b" && s.socket == b));
    assert_eq!(heaps.heap_sockets(), vec![Socket::Node(0), a, b, long]);
    assert_eq!(kind(heaps.malloc_socket(64, 0, a)), ErrorKind::NoMem);
    assert_eq!(heaps.stats(a).unwrap().total_bytes, 0);

    assert_eq!(kind(heaps.heap_destroy("socket_0")), ErrorKind::Perm);
    assert_eq!(kind(heaps.heap_destroy("zzz")), ErrorKind::NoEnt);
    assert_eq!(kind(heaps.heap_destroy("")), ErrorKind::Inval);
    heaps.heap_destroy("ext_b").unwrap();
    assert_eq!(kind(heaps.heap_get_socket("ext_b")), ErrorKind::NoEnt);
    assert_eq!(kind(heaps.stats(b)), ErrorKind::Inval);
    assert_eq!(kind(heaps.malloc_socket(64, 0, b)), ErrorKind::Inval);
    assert_eq!(kind(heaps.heap_socket_is_external(b)), ErrorKind::Inval);
    // Socket ids are not reused: a stale id never reaches a newer heap.
    let c = heaps.heap_create("ext_b").unwrap();
    assert_eq!(c, after(long, 1));
    heaps.check().unwrap();
}

#[test]
fn heap_slots_run_out_with_enospc() {
    let eal = eal("xslots");
    let heaps = eal.heaps();
    let socket_heaps = heaps.sockets().len();
    let free = MAX_HEAPS - socket_heaps;
    for i in 0..free {
        heaps.heap_create(&format!("h{i}")).unwrap();
    }
    assert_eq!(heaps.external_sockets().len(), free);
    assert_eq!(kind(heaps.heap_create("one_too_many")), ErrorKind::NoSpc);
    heaps.heap_destroy("h7").unwrap();
    heaps.heap_create("one_too_many").unwrap();
    assert_eq!(kind(heaps.heap_create("h7")), ErrorKind::NoSpc);
}

#[test]
fn added_memory_serves_allocations_that_name_the_heaps_socket() {
    let eal = eal("xalloc");
    let heaps = eal.heaps();
    let mem = UserMemory::anonymous(4 << 20, PAGE);
    mem.fill(0xAA);
    let s = heaps.heap_create("frames").unwrap();
    add(&eal, "frames", &mem);

    let stats = heaps.stats(s).unwrap();
    assert_eq!(stats.total_bytes, mem.len as u64);
    assert_eq!(stats.free_bytes, mem.len as u64);
    assert_eq!((stats.free_count, stats.alloc_count), (1, 0));
    let lists = external_lists(&eal);
    assert_eq!(lists.len(), 1);
    let list = lists[0];
    assert!(list.heap);
    assert_eq!((list.base_va, list.len), (mem.addr, mem.len));
    assert_eq!((list.socket, list.page_size), (s, PAGE as u64));
    assert_eq!((list.n_segs, list.n_used), (1024, 1024));

    let p = heaps.malloc_socket(1000, 0, s).unwrap();
    assert!(mem.contains(p.as_ptr()));
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert_eq!(unsafe { heaps.socket_of(p.as_ptr()) }.unwrap(), s);
    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
    assert!(unsafe { heaps.validate(p.as_ptr()) }.unwrap() >= 1000);
    let seg = eal.memory().virt_to_memseg(p.as_ptr() as usize).unwrap();
    assert_eq!((seg.socket(), seg.iova(), seg.len()), (s, None, PAGE));
    assert!(seg.contains(p.as_ptr() as usize));
    assert_eq!(eal.memory().virt_to_iova(p.as_ptr() as usize), None);
    // SAFETY: a live block of at least 1000 bytes.
    unsafe { std::ptr::write_bytes(p.as_ptr(), 0x11, 1000) };

    // The user's bytes were garbage to the heap: zeroing allocations clear them.
    let z = heaps.zmalloc_socket(3 * PAGE, PAGE, s).unwrap();
    assert!(mem.contains(z.as_ptr()));
    assert_eq!(z.as_ptr() as usize % PAGE, 0);
    // SAFETY: a live block of 3 pages.
    let zeroed = unsafe { std::slice::from_raw_parts(z.as_ptr(), 3 * PAGE) };
    assert!(zeroed.iter().all(|&b| b == 0));

    // Rust collections live there too, through the heap's allocator.
    let mut v: ApiVec<u64, _> = ApiVec::new_in(heaps.allocator(s).unwrap());
    v.extend(0..50_000u64);
    assert!(mem.contains(v.as_ptr().cast()));
    assert!(v.iter().copied().eq(0..50_000));

    let during = heaps.stats(s).unwrap();
    assert_eq!(during.alloc_count, 3);
    assert_eq!(
        during.total_bytes, mem.len as u64,
        "external heaps never grow"
    );
    assert_eq!(kind(heaps.malloc_socket(8 << 20, 0, s)), ErrorKind::NoMem);
    heaps.check().unwrap();
    drop(v);
    free(&eal, z);
    free(&eal, p);
    let after = heaps.stats(s).unwrap();
    assert_eq!((after.free_count, after.alloc_count), (1, 0));
    assert_eq!(after.free_bytes, mem.len as u64);
    // The dump names the heap and its socket (an external heap's index and socket id).
    let dump = heaps.dump();
    assert!(dump.contains(&format!("heap frames ({s})")), "{dump}");
    heaps.check().unwrap();
}

#[test]
fn memzones_can_be_reserved_on_an_external_heap() {
    let eal = eal("xmz");
    let heaps = eal.heaps();
    let mem = UserMemory::anonymous(2 << 20, PAGE);
    let s = heaps.heap_create("zones").unwrap();
    add(&eal, "zones", &mem);
    let zones = eal.memzones();
    let none = MemzoneFlags::empty();
    let mz = zones.reserve("ext_zone", 64 << 10, s, none).unwrap();
    assert!(mem.contains(mz.va as *const u8));
    assert_eq!(mz.socket, s);
    assert_eq!(mz.len, 64 << 10);
    assert_eq!(zones.lookup("ext_zone").unwrap().va, mz.va);
    // Length 0: the biggest free block of that heap, inside the user's memory.
    let biggest = zones.reserve("ext_biggest", 0, s, none).unwrap();
    assert!(mem.contains(biggest.va as *const u8));
    assert!(mem.contains((biggest.va + biggest.len - 1) as *const u8));
    assert_eq!(
        kind(zones.reserve("ext_more", 4096, s, none)),
        ErrorKind::NoMem
    );
    // The memory is busy while the zones hold it.
    let busy = heaps.heap_memory_remove("zones", mem.ptr(), mem.len);
    assert_eq!(kind(busy), ErrorKind::Busy);
    // SAFETY: nothing uses the memzone any more.
    unsafe { zones.free(&biggest) }.unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { zones.free(&mz) }.unwrap();
    // A socket id between the socket heaps and the external ones, or an external id that
    // names no heap, is refused.
    assert_eq!(
        kind(zones.reserve("ext_bad", 4096, Socket::Node(100), none)),
        ErrorKind::Inval
    );
    assert!(zones.reserve("ext_gone", 4096, after(s, 1), none).is_err());
    assert!(zones.lookup("ext_gone").is_none());
    heaps.check().unwrap();
    heaps
        .heap_memory_remove("zones", mem.ptr(), mem.len)
        .unwrap();
    heaps.heap_destroy("zones").unwrap();
}

#[test]
fn any_socket_never_falls_back_to_an_external_heap() {
    let eal = no_huge_eal("xany", 4);
    let heaps = eal.heaps();
    let mem = UserMemory::anonymous(16 << 20, PAGE);
    let s = heaps.heap_create("spare").unwrap();
    add(&eal, "spare", &mem);
    let mut blocks = Vec::new();
    let err = loop {
        match heaps.malloc(256 << 10, 0) {
            Ok(p) => {
                assert!(
                    !mem.contains(p.as_ptr()),
                    "any-socket block in external memory"
                );
                blocks.push(p);
            }
            Err(e) => break e,
        }
        assert!(
            blocks.len() < 64,
            "4 MiB of socket memory cannot hold this many"
        );
    };
    assert_eq!(err.kind(), ErrorKind::NoMem);
    assert!(!blocks.is_empty());
    assert_eq!(heaps.stats(s).unwrap().alloc_count, 0);
    assert_eq!(heaps.stats(s).unwrap().fallback_alloc_count, 0);
    // The same request naming the heap's socket is served.
    let p = heaps.malloc_socket(256 << 10, 0, s).unwrap();
    assert!(mem.contains(p.as_ptr()));
    free(&eal, p);
    for b in blocks {
        free(&eal, b);
    }
}

#[test]
fn memory_add_refuses_bad_input_and_changes_nothing() {
    let eal = eal("xaddbad");
    let heaps = eal.heaps();
    let s = heaps.heap_create("h").unwrap();
    let mem = UserMemory::anonymous(1 << 20, 64 << 10);
    let snapshot = |eal: &Eal| (eal.memory().lists(), eal.heaps().stats(s).unwrap());
    let before = snapshot(&eal);
    let table3 = iova_table(&[0x1000, 0x2000, 0x3000]);
    type Case<'a> = (
        &'a str,
        *mut u8,
        usize,
        Option<&'a [Iova]>,
        usize,
        ErrorKind,
    );
    let cases: [Case<'_>; 12] = [
        ("h", mem.at(100), PAGE, None, PAGE, ErrorKind::Inval),
        ("h", mem.ptr(), 3 * PAGE + 1, None, PAGE, ErrorKind::Inval),
        ("h", mem.ptr(), 3 * PAGE, None, 3000, ErrorKind::Inval),
        ("h", mem.ptr(), 3 * PAGE, None, 0, ErrorKind::Inval),
        ("h", mem.ptr(), 3 * PAGE, None, 32, ErrorKind::Inval),
        (
            "h",
            mem.ptr(),
            4 * PAGE,
            Some(&table3[..]),
            PAGE,
            ErrorKind::Inval,
        ),
        (
            "h",
            std::ptr::null_mut(),
            PAGE,
            None,
            PAGE,
            ErrorKind::Inval,
        ),
        ("h", mem.ptr(), 0, None, PAGE, ErrorKind::Inval),
        ("", mem.ptr(), PAGE, None, PAGE, ErrorKind::Inval),
        ("nope", mem.ptr(), PAGE, None, PAGE, ErrorKind::NoEnt),
        ("socket_0", mem.ptr(), PAGE, None, PAGE, ErrorKind::Perm),
        (
            "h",
            mem.at(PAGE),
            3 * PAGE,
            Some(&table3[..]),
            2 * PAGE,
            ErrorKind::Inval,
        ),
    ];
    for (i, (name, va, len, iovas, ps, want)) in cases.into_iter().enumerate() {
        // SAFETY: every case is refused before any byte is written (checked below).
        let got = unsafe { heaps.heap_memory_add(name, va, len, iovas, ps) };
        assert_eq!(kind(got), want, "case {i}");
        assert_eq!(snapshot(&eal), before, "case {i} changed something");
    }

    let half = mem.len / 2;
    // SAFETY: the first half of `mem`, mapped and unused.
    unsafe { heaps.heap_memory_add("h", mem.ptr(), half, None, PAGE) }.unwrap();
    let after_first = snapshot(&eal);
    // SAFETY: refused (overlap) before anything is written.
    let overlap = unsafe { heaps.heap_memory_add("h", mem.at(PAGE), half, None, PAGE) };
    assert_eq!(kind(overlap), ErrorKind::Exist);
    assert_eq!(
        kind(eal.memory().extmem_register(mem.addr, PAGE, None, PAGE)),
        ErrorKind::Exist
    );
    assert_eq!(snapshot(&eal), after_first);
    // The adjacent half is a chunk of its own: never merged with the first.
    // SAFETY: the second half of `mem`, mapped and unused.
    unsafe { heaps.heap_memory_add("h", mem.at(half), half, None, PAGE) }.unwrap();
    let stats = heaps.stats(s).unwrap();
    assert_eq!((stats.total_bytes, stats.free_count), (mem.len as u64, 2));
    assert_eq!(stats.greatest_free_bytes, half as u64);

    // dpmem's own memory cannot be added again as external memory.
    let internal = heaps
        .malloc_socket(2 * PAGE, PAGE, Socket::Node(0))
        .unwrap();
    // SAFETY: refused (it lies in dpmem's own memseg list) before anything is written.
    let own = unsafe { heaps.heap_memory_add("h", internal.as_ptr(), PAGE, None, PAGE) };
    assert_eq!(kind(own), ErrorKind::Exist);
    assert_eq!(
        kind(
            eal.memory()
                .extmem_register(internal.as_ptr() as usize, PAGE, None, PAGE)
        ),
        ErrorKind::Exist
    );
    free(&eal, internal);
    heaps.check().unwrap();
}

#[test]
fn the_iova_table_feeds_address_lookups_and_walks() {
    let eal = eal("xiova");
    let heaps = eal.heaps();
    let s = heaps.heap_create("dma").unwrap();
    let mem = UserMemory::anonymous(16 * PAGE, PAGE);
    // Pages out of order in IOVA space, as a device's IOMMU might map them.
    let iovas: Vec<u64> = (0..16u64)
        .map(|i| 0x7_0000_0000 + (15 - i) * 0x10_0000)
        .collect();
    // SAFETY: `mem` is mapped, unused, and removed before it is unmapped.
    unsafe { heaps.heap_memory_add("dma", mem.ptr(), mem.len, Some(&iova_table(&iovas)), PAGE) }
        .unwrap();
    let memory = eal.memory();
    for (i, &iova) in iovas.iter().enumerate() {
        let va = mem.addr + i * PAGE;
        assert_eq!(memory.virt_to_iova(va + 123), Iova::new(iova + 123));
        assert_eq!(
            memory.iova_to_virt(Iova::new(iova + 7).unwrap()),
            Some(va + 7)
        );
        let seg = memory.virt_to_memseg(va + 5).unwrap();
        assert_eq!(
            (seg.va(), seg.iova(), seg.socket()),
            (va, Iova::new(iova), s)
        );
    }
    let list = memory.virt_to_list(mem.addr + PAGE).unwrap();
    assert!(list.external && list.heap);
    let mut seen = 0;
    memory.walk_segments(|l, seg| {
        if l.external {
            assert_eq!(seg.socket(), s);
            seen += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    assert_eq!(seen, 16, "walks visit external memory, as DPDK's do");
    let found = memory.walk_lists(|l| {
        if l.external {
            ControlFlow::Break(l.index)
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(found, Some(list.index));
    // Every page stands alone in IOVA space: sixteen contiguous runs.
    let mut runs = 0;
    memory.walk_contig(|l, _, len| {
        if l.external {
            assert_eq!(len, PAGE);
            runs += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    assert_eq!(runs, 16);
    heaps.heap_memory_remove("dma", mem.ptr(), mem.len).unwrap();
    assert_eq!(memory.virt_to_iova(mem.addr), None);
    assert_eq!(memory.iova_to_virt(Iova::new(iovas[0]).unwrap()), None);
}

#[test]
fn removal_waits_for_blocks_and_destroy_waits_for_memory() {
    let eal = eal("xremove");
    let heaps = eal.heaps();
    let events: Arc<Mutex<Vec<(MemEvent, usize, usize)>>> = Arc::default();
    let sink = events.clone();
    eal.memory()
        .register_event_callback("extmem-test", move |e, va, len| {
            sink.lock().unwrap().push((e, va, len))
        })
        .unwrap();
    let s = heaps.heap_create("r").unwrap();
    heaps.heap_create("other").unwrap();
    let a = UserMemory::anonymous(1 << 20, PAGE);
    let b = UserMemory::anonymous(1 << 20, PAGE);
    add(&eal, "r", &a);
    add(&eal, "r", &b);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            (MemEvent::Alloc, a.addr, a.len),
            (MemEvent::Alloc, b.addr, b.len)
        ]
    );
    let p = heaps.malloc_socket(4096, 0, s).unwrap();
    let (busy, idle) = if a.contains(p.as_ptr()) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(busy.contains(p.as_ptr()));
    let before = (eal.memory().lists(), heaps.stats(s).unwrap());
    assert_eq!(
        kind(heaps.heap_memory_remove("r", busy.ptr(), busy.len)),
        ErrorKind::Busy
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("r", busy.ptr(), PAGE)),
        ErrorKind::NoEnt
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("other", busy.ptr(), busy.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("nope", busy.ptr(), busy.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("socket_0", busy.ptr(), busy.len)),
        ErrorKind::Perm
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("r", busy.ptr(), 0)),
        ErrorKind::Inval
    );
    assert_eq!(
        kind(heaps.heap_memory_remove("r", std::ptr::null_mut(), PAGE)),
        ErrorKind::Inval
    );
    assert_eq!((eal.memory().lists(), heaps.stats(s).unwrap()), before);
    assert_eq!(events.lock().unwrap().len(), 2, "refusals announce nothing");

    heaps.heap_memory_remove("r", idle.ptr(), idle.len).unwrap();
    assert_eq!(
        events.lock().unwrap()[2],
        (MemEvent::Free, idle.addr, idle.len)
    );
    assert_eq!(eal.memory().virt_to_memseg(idle.addr), None);
    assert_eq!(heaps.stats(s).unwrap().total_bytes, busy.len as u64);
    assert_eq!(kind(heaps.heap_destroy("r")), ErrorKind::Busy);
    // The removed chunk is the user's again: the heap keeps no header in it.
    idle.fill(0x5A);
    heaps.check().unwrap();

    free(&eal, p);
    heaps.heap_memory_remove("r", busy.ptr(), busy.len).unwrap();
    assert!(external_lists(&eal).is_empty());
    assert_eq!(heaps.stats(s).unwrap().total_bytes, 0);
    heaps.heap_destroy("r").unwrap();
    assert_eq!(kind(heaps.malloc_socket(64, 0, s)), ErrorKind::Inval);
    assert_eq!(events.lock().unwrap().len(), 4);
    eal.memory()
        .unregister_event_callback("extmem-test")
        .unwrap();
}

#[test]
fn registered_memory_is_known_to_lookups_but_to_no_heap() {
    let eal = eal("xreg");
    let memory = eal.memory();
    let mem = UserMemory::anonymous(8 * PAGE, PAGE);
    let iovas: Vec<u64> = (0..8u64).map(|i| 0x9_0000_0000 + i * PAGE as u64).collect();
    let before = memory.lists();
    let table7 = &iovas[..7];
    let table7 = iova_table(table7);
    let table7 = &table7[..];
    let bad: [(usize, usize, Option<&[Iova]>, usize); 6] = [
        (mem.addr + 8, mem.len, None, PAGE),
        (mem.addr, mem.len - 8, None, PAGE),
        (mem.addr, mem.len, None, 3 * 1024),
        (mem.addr, mem.len, Some(table7), PAGE),
        (0, mem.len, None, PAGE),
        (mem.addr, 0, None, PAGE),
    ];
    for (i, (va, len, table, ps)) in bad.into_iter().enumerate() {
        assert_eq!(
            kind(memory.extmem_register(va, len, table, ps)),
            ErrorKind::Inval,
            "case {i}"
        );
        assert_eq!(memory.lists(), before, "case {i} changed something");
    }

    let info = memory
        .extmem_register(mem.addr, mem.len, Some(&iova_table(&iovas)), PAGE)
        .unwrap();
    assert!(info.external && !info.heap);
    assert_eq!(info.socket, Socket::Any);
    assert_eq!((info.n_segs, info.n_used), (8, 8));
    let seg = memory.virt_to_memseg(mem.addr + PAGE + 5).unwrap();
    assert_eq!(
        (seg.va(), seg.iova()),
        (mem.addr + PAGE, Iova::new(iovas[1]))
    );
    assert_eq!(
        memory.virt_to_iova(mem.addr + 3 * PAGE + 9),
        Iova::new(iovas[3] + 9)
    );
    assert_eq!(memory.virt_to_list(mem.addr).unwrap().index, info.index);
    // Contiguous IOVAs: the walk sees one run of the whole area.
    let run = memory.walk_contig(|l, first, len| {
        if l.external {
            ControlFlow::Break((first.va(), len))
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(run, Some((mem.addr, mem.len)));
    // SAFETY: the descriptor is only inspected, never written through nor truncated.
    let fd = unsafe { memory.segment_fd(mem.addr) }.expect("a mapped segment");
    assert_eq!(kind(fd), ErrorKind::NotSup);
    // SAFETY: registered memory is the user's, not pages dpmem mapped: refused before anything
    // is unmapped (what this checks).
    let freed = unsafe { memory.free_pages(mem.addr, PAGE) };
    assert_eq!(kind(freed), ErrorKind::Inval);
    // No heap has it: nothing there passes for a heap block.
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        kind(unsafe { eal.heaps().validate(mem.at(64)) }),
        ErrorKind::Inval
    );

    assert_eq!(
        kind(memory.extmem_register(mem.addr, mem.len, None, PAGE)),
        ErrorKind::Exist
    );
    assert_eq!(
        kind(memory.extmem_register(mem.addr + 7 * PAGE, 2 * PAGE, None, PAGE)),
        ErrorKind::Exist
    );
    // Heap calls do not reach registered memory, nor the other way round.
    let s = eal.heaps().heap_create("x").unwrap();
    assert_eq!(
        kind(eal.heaps().heap_memory_remove("x", mem.ptr(), mem.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(eal.heaps().stats(s).unwrap().total_bytes, 0);

    // Attaching where it was registered is harmless; detaching twice is not found.
    memory.extmem_attach(mem.addr, mem.len).unwrap();
    memory.extmem_detach(mem.addr, mem.len).unwrap();
    assert_eq!(
        kind(memory.extmem_detach(mem.addr, mem.len)),
        ErrorKind::NoEnt
    );
    memory.extmem_attach(mem.addr, mem.len).unwrap();
    assert_eq!(kind(memory.extmem_attach(mem.addr, PAGE)), ErrorKind::NoEnt);
    assert_eq!(
        kind(memory.extmem_detach(mem.addr + PAGE, PAGE)),
        ErrorKind::NoEnt
    );

    assert_eq!(
        kind(memory.extmem_unregister(mem.addr, mem.len / 2)),
        ErrorKind::NoEnt
    );
    assert_eq!(kind(memory.extmem_unregister(0, mem.len)), ErrorKind::Inval);
    assert_eq!(
        kind(memory.extmem_unregister(mem.addr, 0)),
        ErrorKind::Inval
    );
    memory.extmem_unregister(mem.addr, mem.len).unwrap();
    assert_eq!(memory.virt_to_memseg(mem.addr), None);
    assert_eq!(memory.lists(), before);
    assert_eq!(
        kind(memory.extmem_unregister(mem.addr, mem.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(
        kind(memory.extmem_attach(mem.addr, mem.len)),
        ErrorKind::NoEnt
    );

    // Heap memory is not registered memory.
    let chunk = UserMemory::anonymous(4 * PAGE, PAGE);
    add(&eal, "x", &chunk);
    assert_eq!(
        kind(memory.extmem_unregister(chunk.addr, chunk.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(
        kind(memory.extmem_attach(chunk.addr, chunk.len)),
        ErrorKind::NoEnt
    );
    eal.heaps()
        .heap_memory_remove("x", chunk.ptr(), chunk.len)
        .unwrap();
}

#[test]
fn memseg_lists_run_out_with_enospc() {
    let eal = eal("xlists");
    let memory = eal.memory();
    let internal = memory.lists().len();
    let spare = MAX_MEMSEG_LISTS - internal;
    let mem = UserMemory::anonymous((spare + 1) * PAGE, PAGE);
    for i in 0..spare {
        memory
            .extmem_register(mem.addr + i * PAGE, PAGE, None, PAGE)
            .unwrap();
    }
    let last = mem.addr + spare * PAGE;
    assert_eq!(
        kind(memory.extmem_register(last, PAGE, None, PAGE)),
        ErrorKind::NoSpc
    );
    eal.heaps().heap_create("full").unwrap();
    // SAFETY: refused (no list left) before anything is written.
    let added = unsafe {
        eal.heaps()
            .heap_memory_add("full", last as *mut u8, PAGE, None, PAGE)
    };
    assert_eq!(kind(added), ErrorKind::NoSpc);
    memory.extmem_unregister(mem.addr + 5 * PAGE, PAGE).unwrap();
    memory.extmem_register(last, PAGE, None, PAGE).unwrap();
    assert_eq!(memory.lists().len(), MAX_MEMSEG_LISTS);
    assert_eq!(memory.virt_to_memseg(last).unwrap().va(), last);
}

#[test]
fn the_external_segment_budget_holds_and_lists_survive_compaction() {
    let (options, _) = dpmem_eal::EalOptions::parse(args(&[
        "--no-huge",
        "-m",
        "8",
        "--file-prefix",
        &unique_prefix("xbudget"),
    ]))
    .unwrap();
    let settings = EalSettings {
        external_segments: 4096,
        ..EalSettings::default()
    };
    let eal = Eal::init_with(options, settings).unwrap();
    let memory = eal.memory();
    let mem = UserMemory::anonymous(8192 * PAGE, PAGE);
    assert_eq!(
        kind(memory.extmem_register(mem.addr, 4097 * PAGE, None, PAGE)),
        ErrorKind::NoSpc
    );
    let iovas = |first: usize, n: usize| -> Vec<u64> {
        (first..first + n)
            .map(|i| 0x40_0000_0000 + (i * 3 * PAGE) as u64)
            .collect()
    };
    let (a, b) = (mem.addr, mem.addr + 2000 * PAGE);
    memory
        .extmem_register(a, 2000 * PAGE, Some(&iova_table(&iovas(0, 2000))), PAGE)
        .unwrap();
    memory
        .extmem_register(b, 2000 * PAGE, Some(&iova_table(&iovas(2000, 2000))), PAGE)
        .unwrap();
    assert_eq!(
        kind(memory.extmem_register(mem.addr + 4000 * PAGE, 97 * PAGE, None, PAGE)),
        ErrorKind::NoSpc
    );
    // Freeing the first list leaves a hole too small for the next, and the arena's end too:
    // the second list's metadata slides down to make room.
    memory.extmem_unregister(a, 2000 * PAGE).unwrap();
    let c = mem.addr + 4000 * PAGE;
    memory
        .extmem_register(c, 2096 * PAGE, Some(&iova_table(&iovas(4000, 2096))), PAGE)
        .unwrap();
    for (base, first, n) in [(b, 2000, 2000), (c, 4000, 2096)] {
        let want = iovas(first, n);
        for i in [0, 1, n / 2, n - 1] {
            let seg = memory.virt_to_memseg(base + i * PAGE).unwrap();
            assert_eq!(
                (seg.va(), seg.iova()),
                (base + i * PAGE, Iova::new(want[i]))
            );
        }
        let list = memory.virt_to_list(base).unwrap();
        assert_eq!((list.n_segs, list.n_used), (n as u32, n as u32));
    }
    let mut segs = 0;
    memory.walk_segments(|l, _| {
        segs += u32::from(l.external);
        ControlFlow::<()>::Continue(())
    });
    assert_eq!(segs, 4096);
    assert_eq!(
        kind(memory.extmem_register(a, PAGE, None, PAGE)),
        ErrorKind::NoSpc
    );
}

#[test]
fn a_process_allocates_only_from_memory_it_attached() {
    let eal = eal("xattach");
    let heaps = eal.heaps();
    let s = heaps.heap_create("att").unwrap();
    let mem = UserMemory::anonymous(1 << 20, PAGE);
    add(&eal, "att", &mem);
    heaps.heap_memory_detach("att", mem.ptr(), mem.len).unwrap();
    assert_eq!(
        kind(heaps.heap_memory_detach("att", mem.ptr(), mem.len)),
        ErrorKind::NoEnt
    );
    assert_eq!(kind(heaps.malloc_socket(64, 0, s)), ErrorKind::Perm);
    assert!(!heaps.stats(s).unwrap().attached);
    assert_eq!(
        kind(heaps.heap_memory_remove("att", mem.ptr(), mem.len)),
        ErrorKind::NoEnt
    );
    let attach = |name: &str, len: usize| {
        // SAFETY: `mem` is mapped here (the same memory the heap has) for the whole test.
        unsafe { heaps.heap_memory_attach(name, mem.ptr(), len) }
    };
    assert_eq!(kind(attach("socket_0", mem.len)), ErrorKind::Perm);
    assert_eq!(kind(attach("nope", mem.len)), ErrorKind::NoEnt);
    assert_eq!(kind(attach("att", PAGE)), ErrorKind::NoEnt);
    assert_eq!(kind(attach("", mem.len)), ErrorKind::Inval);
    attach("att", mem.len).unwrap();
    attach("att", mem.len).unwrap();
    let p = heaps.malloc_socket(64, 0, s).unwrap();
    assert!(heaps.stats(s).unwrap().attached);
    heaps.heap_memory_detach("att", mem.ptr(), mem.len).unwrap();
    // A block in memory this process detached is not read here, even to free it.
    // SAFETY: refused before the block is touched.
    assert_eq!(kind(unsafe { heaps.free(p) }), ErrorKind::Inval);
    attach("att", mem.len).unwrap();
    free(&eal, p);
    heaps.heap_memory_remove("att", mem.ptr(), mem.len).unwrap();
    heaps.heap_destroy("att").unwrap();
}

const ENV_PREFIX: &str = "DPMEM_TEST_EXTMEM_PREFIX";
const ENV_MEMFD: &str = "DPMEM_TEST_EXTMEM_MEMFD";
const ENV_VA: &str = "DPMEM_TEST_EXTMEM_VA";
const ENV_BLOCK: &str = "DPMEM_TEST_EXTMEM_BLOCK";
const SHARED_LEN: usize = 4 << 20;

/// Maps `len` bytes of `file` at exactly `va` (the same address as in the other process).
fn map_shared_at(file: &dpmem_sys::backing_file::BackingFile, va: usize, len: usize) {
    mapping::reserve(len, PAGE, Some(va)).unwrap();
    // SAFETY: the reservation made just above, holding nothing.
    unsafe { mapping::map_file_fixed(file.fd(), 0, va, len, false) }.unwrap();
}

#[test]
fn a_secondary_attaches_an_external_heap_and_allocates_from_it() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_attaches_an_external_heap_and_allocates_from_it",
        2,
    ) {
        return;
    }
    use std::os::fd::AsRawFd;
    let prefix = unique_prefix("xsec");
    let eal = Eal::init(args(&["--file-prefix", &prefix])).unwrap();
    let heaps = eal.heaps();
    let file = dpmem_sys::backing_file::BackingFile::memfd_small_pages("dpmem-extmem").unwrap();
    file.set_len(SHARED_LEN as u64).unwrap();
    let va = mapping::reserve(SHARED_LEN, 2 << 20, None).unwrap();
    // SAFETY: the reservation made just above, holding nothing.
    unsafe { mapping::map_file_fixed(file.fd(), 0, va, SHARED_LEN, false) }.unwrap();
    let s = heaps.heap_create("shared_frames").unwrap();
    // SAFETY: the memfd mapping is read-write, used by nothing else, and stays mapped until the
    // chunk is removed below.
    unsafe { heaps.heap_memory_add("shared_frames", va as *mut u8, SHARED_LEN, None, PAGE) }
        .unwrap();
    let mine = heaps.malloc_socket(PAGE, 0, s).unwrap();
    // SAFETY: a live block of one page.
    unsafe { std::ptr::write_bytes(mine.as_ptr(), 0xC3, PAGE) };

    let layout_before = eal.memory().layout_generation();
    let out = run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "extmem_secondary_body",
        |child| {
            child
                .env(ENV_PREFIX, &prefix)
                .env(
                    ENV_MEMFD,
                    format!("/proc/{}/fd/{}", std::process::id(), file.fd().as_raw_fd()),
                )
                .env(ENV_VA, va.to_string())
                .env(ENV_BLOCK, (mine.as_ptr() as usize).to_string());
        },
    );
    let theirs = reported(&out, "secondary block at ") as usize;
    // The layout count is shared: the secondary saw this process's, and its registration and
    // unregistration moved it here.
    assert_eq!(reported(&out, "layout count "), layout_before);
    assert_eq!(eal.memory().layout_generation(), layout_before + 2);
    // The secondary's block: in the shared memory, written by it, live in the shared heap.
    assert!(theirs >= va && theirs < va + SHARED_LEN);
    // SAFETY: the secondary allocated and filled 4096 bytes there and left the block live.
    let written = unsafe { std::slice::from_raw_parts(theirs as *const u8, PAGE) };
    assert!(written.iter().all(|&b| b == 0x3C));
    // SAFETY: still our block.
    let ours = unsafe { std::slice::from_raw_parts(mine.as_ptr(), PAGE) };
    assert!(
        ours.iter().all(|&b| b == 0xC3),
        "the secondary did not touch our block"
    );
    assert_eq!(heaps.stats(s).unwrap().alloc_count, 2);
    heaps.check().unwrap();
    // The secondary has ended: its attachment no longer counts, but its block still does.
    assert_eq!(
        kind(heaps.heap_memory_remove("shared_frames", va as *mut u8, SHARED_LEN)),
        ErrorKind::Busy
    );
    free(&eal, NonNull::new(theirs as *mut u8).unwrap());
    free(&eal, mine);
    heaps
        .heap_memory_remove("shared_frames", va as *mut u8, SHARED_LEN)
        .unwrap();
    heaps.heap_destroy("shared_frames").unwrap();
    // SAFETY: the chunk was removed from the heap; nothing uses the mapping any more.
    unsafe { mapping::release(va, SHARED_LEN) }.unwrap();
}

/// The number the child printed after `label`.
fn reported(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| l.split_once(label).map(|(_, n)| n))
        .unwrap_or_else(|| panic!("the secondary reports {label:?}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "run by a_secondary_attaches_an_external_heap_and_allocates_from_it in a child process"]
fn extmem_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the external memory multi-process test");
    let memfd = std::env::var(ENV_MEMFD).unwrap();
    let va: usize = std::env::var(ENV_VA).unwrap().parse().unwrap();
    let primary_block: usize = std::env::var(ENV_BLOCK).unwrap().parse().unwrap();
    let eal = attach_secondary(&prefix);
    println!("layout count {}", eal.memory().layout_generation());
    // Memory registered and unregistered here moves the count every process reads.
    let own = UserMemory::anonymous(PAGE, PAGE);
    let memory = eal.memory();
    memory.extmem_register(own.addr, PAGE, None, PAGE).unwrap();
    memory.extmem_unregister(own.addr, PAGE).unwrap();
    let heaps = eal.heaps();
    let s = heaps.heap_get_socket("shared_frames").unwrap();
    assert!(heaps.heap_socket_is_external(s).unwrap());
    // The heap's memory is known here already (the lists are shared) ...
    let seg = eal.memory().virt_to_memseg(va).unwrap();
    assert_eq!(seg.socket(), s);
    // ... but this process has not said it mapped it (it has not, yet): no allocation, and
    // nothing reads the heap's elements here, which would fault.
    assert_eq!(kind(heaps.malloc_socket(64, 0, s)), ErrorKind::Perm);
    let stats = heaps.stats(s).unwrap();
    assert!(!stats.attached);
    assert_eq!(
        (stats.total_bytes, stats.alloc_count),
        (SHARED_LEN as u64, 1)
    );
    assert_eq!(stats.free_count, 0, "unknown here");
    assert!(heaps
        .all_stats()
        .iter()
        .any(|h| h.socket == s && !h.attached));
    heaps.check().unwrap();
    assert!(heaps.dump().contains("not attached in this process"));
    assert_eq!(
        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
        kind(unsafe { heaps.validate(primary_block as *const u8) }),
        ErrorKind::Inval
    );
    // Map the same memory at the same address, then attach.
    let file =
        dpmem_sys::backing_file::BackingFile::open_existing(std::path::Path::new(&memfd)).unwrap();
    map_shared_at(&file, va, SHARED_LEN);
    // SAFETY: the primary's memfd is mapped at the primary's address just above.
    unsafe { heaps.heap_memory_attach("shared_frames", va as *mut u8, SHARED_LEN) }.unwrap();
    // SAFETY: the primary's live block of one page, in the memory mapped above.
    let primary = unsafe { std::slice::from_raw_parts(primary_block as *const u8, PAGE) };
    assert!(
        primary.iter().all(|&b| b == 0xC3),
        "the primary's bytes, same address"
    );
    let block = heaps.malloc_socket(PAGE, 0, s).unwrap();
    assert!((block.as_ptr() as usize) >= va && (block.as_ptr() as usize) < va + SHARED_LEN);
    // SAFETY: a live block of one page.
    unsafe { std::ptr::write_bytes(block.as_ptr(), 0x3C, PAGE) };
    let scratch = heaps.zmalloc_socket(3 * PAGE, 0, s).unwrap();
    free(&eal, scratch);
    heaps.check().unwrap();
    // The primary is alive and attached: the chunk cannot go from under it.
    let busy = heaps.heap_memory_remove("shared_frames", va as *mut u8, SHARED_LEN);
    let err = busy.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("attached in processes"), "{err}");
    assert_eq!(kind(heaps.heap_destroy("shared_frames")), ErrorKind::Busy);
    heaps
        .heap_memory_detach("shared_frames", va as *mut u8, SHARED_LEN)
        .unwrap();
    assert_eq!(kind(heaps.malloc_socket(64, 0, s)), ErrorKind::Perm);
    println!("secondary block at {}", block.as_ptr() as usize);
    drop(eal);
    // SAFETY: the EAL is gone and this process no longer uses the memory.
    unsafe { mapping::release(va, SHARED_LEN) }.unwrap();
}

/// A table of device addresses for `heap_memory_add` / `extmem_register`.
fn iova_table(raw: &[u64]) -> Vec<Iova> {
    raw.iter()
        .map(|&i| Iova::new(i).expect("a known IOVA"))
        .collect()
}

/// The layout count moves for every change address lookups see — memory registered,
/// unregistered, added to a heap, removed from it — and for nothing else: a refused
/// registration, a lookup, a heap created with no memory. A watch tells each change once.
#[test]
fn the_layout_count_moves_with_each_change_lookups_see() {
    let eal = eal("xlayout");
    let memory = eal.memory();
    let mut watch = memory.layout_watch();
    let mem = UserMemory::anonymous(4 * PAGE, PAGE);
    let start = memory.layout_generation();

    memory
        .extmem_register(mem.addr, mem.len, None, PAGE)
        .unwrap();
    let registered = memory.layout_generation();
    assert!(registered != start);
    assert!(watch.changed());
    assert!(!watch.changed());

    assert_eq!(
        kind(memory.extmem_register(mem.addr, PAGE, None, PAGE)),
        ErrorKind::Exist
    );
    assert!(memory.virt_to_memseg(mem.addr).is_some());
    assert_eq!(memory.layout_generation(), registered);
    assert!(!watch.changed());

    memory.extmem_unregister(mem.addr, mem.len).unwrap();
    assert!(watch.changed());

    eal.heaps().heap_create("layout").unwrap();
    assert!(!watch.changed());
    add(&eal, "layout", &mem);
    assert!(watch.changed());
    eal.heaps()
        .heap_memory_remove("layout", mem.ptr(), mem.len)
        .unwrap();
    assert!(watch.changed());
    eal.heaps().heap_destroy("layout").unwrap();
    assert!(!watch.changed());
}
