//! Helpers shared by the mempool integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_eal::Eal;

/// An EAL on ordinary pages (any user, any machine) with lcores 0 and 1 and 128 MiB, under a
/// file prefix no other test or run uses.
pub fn no_huge_eal(tag: &str) -> Eal {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = format!(
        "mp{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Eal::init([
        "mempool-test",
        "--no-huge",
        "-m",
        "128",
        "-l",
        "0-1",
        "--file-prefix",
        &prefix,
    ])
    .unwrap()
}

/// Whether 2 MiB hugepages can be used (root, a mount, `pages` free). Prints why not and
/// returns false, unless `DPMEM_REQUIRE_HUGEPAGES=1` (CI), which makes that a failure.
pub fn hugepages_usable(pages: u64) -> bool {
    let mounted = dpmem_sys::mounts::hugetlbfs_mounts(&dpmem_sys::root::SysRoot::host())
        .map(|m| m.iter().any(|m| m.page_size == 2 << 20))
        .unwrap_or(false);
    let free: u64 =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    let root = dpmem_sys::process::is_root();
    let ok = root && mounted && free >= pages;
    if !ok {
        assert_ne!(
            std::env::var("DPMEM_REQUIRE_HUGEPAGES").as_deref(),
            Ok("1"),
            "hugepages required (DPMEM_REQUIRE_HUGEPAGES=1) but not usable: root {root}, mount \
             {mounted}, {free} free, {pages} needed"
        );
        eprintln!("skipped: hugepages not usable (root {root}, mount {mounted}, {free} free)");
    }
    ok
}
