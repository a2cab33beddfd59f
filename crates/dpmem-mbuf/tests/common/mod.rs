//! Helpers shared by the packet buffer integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_eal::Eal;

/// An EAL on ordinary pages (any user, any machine) with lcores 0 and 1 and 128 MiB, under a
/// file prefix no other test or run uses.
pub fn no_huge_eal(tag: &str) -> Eal {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = format!(
        "mb{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Eal::init([
        "mbuf-test",
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

/// Whether 2 MiB hugepages can be used (see `dpmem_testkit::hugepages_available`).
pub fn hugepages_usable(pages: u64) -> bool {
    dpmem_testkit::hugepages_available("mbuf hugepage test", pages)
}

pub mod packet_ops;
mod packet_shape;
mod whole_pool;

pub use packet_shape::shape;
pub use whole_pool::assert_pool_whole;
