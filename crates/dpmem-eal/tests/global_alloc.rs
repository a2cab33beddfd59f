//! The dpmem global allocator installed for a whole test binary: a real workload (maps of
//! strings, vectors, threads) runs on heap memory, what the heap cannot hold goes to the system
//! allocator, and blocks are freed to whoever made them.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use dpmem_eal::{DpmemGlobalAlloc, Eal, ErrorKind, Socket};

#[global_allocator]
static ALLOC: DpmemGlobalAlloc = DpmemGlobalAlloc::new();

const _: () = {
    // Blocks are freed from any thread through a shared `&'static Eal`.
    const fn eal_is_shared_across_threads<T: Send + Sync>() {}
    eal_is_shared_across_threads::<Eal>();
};

/// An EAL whose heap tops out at 64 MiB: hugepages (in memory, so nothing is left on disk when
/// the leaked EAL never cleans up) where the machine has them, else `--no-huge`.
fn leaked_eal() -> &'static Eal {
    let prefix = unique_prefix("global");
    let args = if hugepages_available("global_alloc", 32) {
        args(&[
            "--in-memory",
            "--socket-limit",
            "64",
            "--file-prefix",
            &prefix,
        ])
    } else {
        args(&["--no-huge", "-m", "64", "--file-prefix", &prefix])
    };
    Box::leak(Box::new(Eal::init(args).unwrap()))
}

fn in_heap(eal: &Eal, ptr: *const u8) -> bool {
    eal.memory().virt_to_memseg(ptr as usize).is_some()
}

/// A workload of the kind real programs run: an index of strings, a hash map, and threads
/// building and exchanging their own data.
/// What the workload builds: an index of strings, a hash map and the threads' joined words.
struct Workload {
    index: BTreeMap<String, Vec<u32>>,
    by_hash: HashMap<u64, String>,
    joined: Vec<String>,
}

fn workload() -> Workload {
    let mut index = BTreeMap::new();
    for i in 0..20_000u32 {
        index.insert(format!("key-{i:08}"), (0..(i % 7)).collect());
    }
    let mut by_hash = HashMap::new();
    for i in 0..20_000u64 {
        by_hash.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i.to_string());
    }
    let workers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let words: Vec<String> = (0..5_000).map(|i| format!("t{t}-w{i}")).collect();
                words.join(",")
            })
        })
        .collect();
    let joined = workers.into_iter().map(|w| w.join().unwrap()).collect();
    Workload {
        index,
        by_hash,
        joined,
    }
}

#[test]
fn a_program_runs_on_heap_memory_with_the_global_allocator() {
    // Before registration everything goes to the system allocator.
    let mut early: Vec<u64> = (0..1000).collect();
    let eal = leaked_eal();
    assert!(!in_heap(eal, early.as_ptr().cast()));

    assert_eq!(
        DpmemGlobalAlloc::register(eal, Socket::Node(7))
            .unwrap_err()
            .kind(),
        ErrorKind::Inval,
        "no heap on socket 7"
    );
    DpmemGlobalAlloc::register(eal, Socket::Any).unwrap();
    let heaps = eal.heaps();
    let before = heaps.stats(Socket::Node(0)).unwrap();

    let Workload {
        index,
        by_hash,
        joined,
    } = workload();
    let during = heaps.stats(Socket::Node(0)).unwrap();
    assert!(
        during.alloc_count >= before.alloc_count + 40_000,
        "the workload's allocations are heap blocks: {before:?} -> {during:?}"
    );
    let (key, list) = index.iter().nth(12_345).unwrap();
    assert_eq!(key, "key-00012345");
    assert!(in_heap(eal, key.as_ptr()));
    assert!(in_heap(eal, list.as_ptr().cast()));
    assert!(in_heap(
        eal,
        by_hash[&7u64.wrapping_mul(0x9e37_79b9_7f4a_7c15)].as_ptr()
    ));
    assert!(joined.iter().all(|s| in_heap(eal, s.as_ptr())));
    assert_eq!(joined[3].split(',').nth(4_999), Some("t3-w4999"));
    heaps.check().unwrap();

    // A block from before registration still grows and is freed by the system allocator.
    early.extend(0..100_000);
    assert!(!in_heap(eal, early.as_ptr().cast()));
    assert_eq!(early[100_999], 99_999);
    drop(early);

    // More than the heap can ever hold is served by the system allocator.
    let big = vec![5u8; 128 << 20];
    assert!(!in_heap(eal, big.as_ptr()));
    assert_eq!(big[(128 << 20) - 1], 5);
    drop(big);

    drop((index, by_hash, joined));
    let after = heaps.stats(Socket::Node(0)).unwrap();
    assert!(
        after.alloc_count + 40_000 <= during.alloc_count,
        "the workload's blocks went back to the heap: {during:?} -> {after:?}"
    );

    // Paused: new blocks come from the system; heap blocks made earlier are still freed there.
    let kept = String::from("made while routing to the heap");
    assert!(in_heap(eal, kept.as_ptr()));
    DpmemGlobalAlloc::pause();
    let outside = String::from("made while paused");
    assert!(!in_heap(eal, outside.as_ptr()));
    let count = heaps.stats(Socket::Node(0)).unwrap().alloc_count;
    drop(kept);
    assert_eq!(heaps.stats(Socket::Node(0)).unwrap().alloc_count, count - 1);
    heaps.check().unwrap();
}
