//! A real secondary process (this test binary re-executed) maps the primary's memory at the
//! same virtual addresses and reads and writes the same bytes.

mod common;

use common::*;
use dpmem_eal::{Eal, MemoryMode, PageRequest, ProcessRole, Socket};

const ENV_PREFIX: &str = "DPMEM_TEST_SECONDARY_PREFIX";
const ENV_VA: &str = "DPMEM_TEST_SECONDARY_VA";
const ENV_LISTS: &str = "DPMEM_TEST_SECONDARY_LISTS";
/// One page is shared: legacy lists may have a hole after any page (physical discontiguity).
const SPAN: usize = PAGE_2M as usize;
const REPLY_AT: usize = SPAN - 4096 + 1;

fn run_secondary(proc_type: &str, prefix: &str, va: usize, lists: &str) -> String {
    run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_body",
        |child| {
            child
                .env(ENV_PREFIX, prefix)
                .env(ENV_VA, va.to_string())
                .env(ENV_LISTS, lists)
                .env("DPMEM_TEST_PROC_TYPE", proc_type);
        },
    )
}

fn describe_lists(eal: &Eal) -> String {
    eal.memory()
        .lists()
        .iter()
        .map(|l| format!("{}:{:#x}:{}:{}", l.index, l.base_va, l.page_size, l.n_used))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn secondary_reads_and_writes_the_primarys_bytes_at_the_same_address() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "secondary_reads_and_writes_the_primarys_bytes_at_the_same_address",
        8,
    ) {
        return;
    }
    for flags in [
        &[][..],
        &["--single-file-segments"][..],
        &["--legacy-mem"][..],
    ] {
        let prefix = unique_prefix("mp");
        let mut all = vec!["-m", "4", "--file-prefix", &prefix];
        all.extend_from_slice(flags);
        let eal = Eal::init(args(&all)).unwrap();
        // Pages mapped on demand stay mapped while their handle lives.
        let mut pages = None;
        let va = if flags.contains(&"--legacy-mem") {
            eal.memory().segments(0)[1].va()
        } else {
            pages
                .insert(
                    eal.memory()
                        .alloc_pages(PageRequest::new(PAGE_2M, Socket::Node(0), 2))
                        .unwrap(),
                )
                .va()
        };
        // SAFETY: `va` starts a mapped 2 MiB page owned by `eal`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(va as *mut u8, SPAN) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let lists = describe_lists(&eal);
        for proc_type in ["secondary", "auto"] {
            bytes[REPLY_AT] = 0;
            run_secondary(proc_type, &prefix, va, &lists);
            // The secondary wrote its answer into the same physical memory.
            assert_eq!(
                bytes[REPLY_AT], 0xEE,
                "{flags:?} {proc_type}: no reply from the secondary"
            );
        }
        // The secondaries are gone; the primary's memory and lists are untouched.
        assert_eq!(describe_lists(&eal), lists);
        assert_eq!(bytes[7], 7);
        drop(pages);
        drop(eal);
        // Legacy memory keeps its page files when the primary exits, as DPDK's does (the next
        // primary with the prefix removes them): remove them here, or each run of this test
        // would hold two hugepages until then.
        if let Some(dir) = mount_2m() {
            remove_files_with_prefix(&dir, &prefix);
        }
    }
}

#[test]
#[ignore = "run by secondary_reads_and_writes_the_primarys_bytes_at_the_same_address in a child process"]
fn secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the multi-process test");
    let va: usize = std::env::var(ENV_VA).unwrap().parse().unwrap();
    let proc_type = std::env::var("DPMEM_TEST_PROC_TYPE").unwrap();
    let eal = Eal::init(args(&["--proc-type", &proc_type, "--file-prefix", &prefix])).unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    assert_eq!(
        describe_lists(&eal),
        std::env::var(ENV_LISTS).unwrap(),
        "same lists at the same addresses"
    );
    let seg = eal
        .memory()
        .virt_to_memseg(va)
        .expect("the primary's page is a memseg here too");
    assert_eq!(seg.va(), va);
    // SAFETY: the secondary mapped the primary's page at `va`.
    let bytes = unsafe { std::slice::from_raw_parts_mut(va as *mut u8, SPAN) };
    for (i, b) in bytes.iter().enumerate() {
        if i != REPLY_AT {
            assert_eq!(*b, (i % 251) as u8, "byte {i}");
        }
    }
    bytes[REPLY_AT] = 0xEE;
    // Pages a secondary asks for are mapped by the primary (dynamic memory only), usable here
    // at once, and given back through the primary when dropped.
    let asked = eal
        .memory()
        .alloc_pages(PageRequest::new(PAGE_2M, Socket::Node(0), 1));
    if eal.memory().mode() == MemoryMode::Legacy {
        let err = asked.expect_err("legacy memory does not grow");
        assert_eq!(err.kind(), dpmem_eal::ErrorKind::NotSup, "{err}");
    } else {
        let pages = asked.expect("the primary maps the page for this secondary");
        // SAFETY: a mapped 2 MiB page this process owns.
        unsafe { std::ptr::write_bytes(pages.as_ptr().as_ptr(), 0x5A, SPAN) };
        assert!(eal.memory().virt_to_memseg(pages.va()).is_some());
        pages.free().expect("given back through the primary");
    }
}
