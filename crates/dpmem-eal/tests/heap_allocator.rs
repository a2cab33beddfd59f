//! `allocator-api2` collections in heap memory: a `Vec` on socket 0 lives in memseg memory,
//! grows through the heap's realloc and gives its block back when dropped.

mod common;

use allocator_api2::boxed::Box as ApiBox;
use allocator_api2::vec::Vec as ApiVec;
use common::*;
use dpmem_eal::{Eal, ErrorKind, Socket};

fn hugepage_eal(tag: &str) -> Option<Eal> {
    if !hugepages_available(tag, 32) {
        return None;
    }
    let prefix = unique_prefix(tag);
    Some(Eal::init(args(&["--in-memory", "-m", "32", "--file-prefix", &prefix])).unwrap())
}

fn no_huge_eal(tag: &str) -> Eal {
    let prefix = unique_prefix(tag);
    Eal::init(args(&["--no-huge", "-m", "32", "--file-prefix", &prefix])).unwrap()
}

/// Pushes until the vector has moved at least once and grown past `len` elements, checking
/// every buffer it used maps to a memseg of socket 0.
fn vec_grows_in_memseg_memory(eal: &Eal) {
    let _guard = hugepage_lock();
    let heaps = eal.heaps();
    let before = heaps.stats(Socket::Node(0)).unwrap();
    let alloc = heaps.allocator(Socket::Node(0)).unwrap();
    assert_eq!(alloc.socket(), Socket::Node(0));
    let mut v: ApiVec<u64, _> = ApiVec::new_in(alloc);
    let mut buffers = std::collections::BTreeSet::new();
    for i in 0..200_000u64 {
        v.push(i);
        let addr = v.as_ptr() as usize;
        if buffers.insert(addr) {
            let seg = eal
                .memory()
                .virt_to_memseg(addr)
                .expect("a Vec buffer from the heap allocator is memseg memory");
            assert_eq!(seg.socket(), Socket::Node(0));
            assert_eq!(
                // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
                unsafe { heaps.socket_of(v.as_ptr().cast()) }.unwrap(),
                Socket::Node(0)
            );
            // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
            assert!(unsafe { heaps.validate(v.as_ptr().cast()) }.unwrap() >= v.capacity() * 8);
        }
    }
    assert!(
        v.iter().copied().eq(0..200_000u64),
        "contents survived every grow"
    );
    let during = heaps.stats(Socket::Node(0)).unwrap();
    assert_eq!(during.alloc_count, before.alloc_count + 1, "one live block");
    assert!(during.alloc_bytes >= before.alloc_bytes + 200_000 * 8);
    v.shrink_to_fit();
    assert_eq!(v.len(), 200_000);
    assert_eq!(v[199_999], 199_999);
    drop(v);
    let after = heaps.stats(Socket::Node(0)).unwrap();
    assert_eq!(after.alloc_count, before.alloc_count);
    assert_eq!(after.alloc_bytes, before.alloc_bytes);
    heaps.check().unwrap();
}

#[test]
fn a_vec_on_socket_0_lives_in_hugepages_and_grows() {
    if let Some(eal) = hugepage_eal("alloc_vec") {
        vec_grows_in_memseg_memory(&eal);
    }
}

#[test]
fn a_vec_on_socket_0_lives_in_no_huge_memory_and_grows() {
    vec_grows_in_memseg_memory(&no_huge_eal("alloc_vec_nohuge"));
}

#[test]
fn a_realloc_into_a_freed_neighbour_keeps_the_address() {
    let eal = no_huge_eal("alloc_inplace");
    let alloc = eal.heaps().allocator(Socket::Node(0)).unwrap();
    // Heaps carve blocks from the end of a free element, so a block allocated after another
    // sits just below it: freeing the upper one leaves room above `v` to grow into.
    let upper: ApiVec<u8, _> = ApiVec::with_capacity_in(8192, alloc);
    let mut v: ApiVec<u8, _> = ApiVec::with_capacity_in(4096, alloc);
    v.extend(std::iter::repeat_n(7u8, 4096));
    let first = v.as_ptr();
    assert!((first as usize) < upper.as_ptr() as usize);
    drop(upper);
    v.reserve_exact(8192);
    assert_eq!(v.as_ptr(), first, "grew in place");
    assert!(v.iter().all(|&b| b == 7));
}

#[test]
fn boxes_zeroed_slices_and_zero_sized_values() {
    let eal = no_huge_eal("alloc_box");
    let heaps = eal.heaps();
    let before = heaps.stats(Socket::Node(0)).unwrap();
    let alloc = heaps.allocator(Socket::Any).unwrap();
    let b = ApiBox::new_in([3u32; 1000], alloc);
    assert!(eal.memory().virt_to_memseg(b.as_ptr() as usize).is_some());
    assert_eq!(b.iter().sum::<u32>(), 3000);
    // A unit value and an empty Vec take nothing from the heap.
    let unit = ApiBox::new_in((), alloc);
    let empty: ApiVec<u64, _> = ApiVec::new_in(alloc);
    assert_eq!(
        heaps.stats(Socket::Node(0)).unwrap().alloc_count,
        before.alloc_count + 1
    );
    drop((unit, empty));
    let mut z: ApiVec<u8, _> = ApiVec::new_in(alloc);
    z.resize(100_000, 0);
    assert!(z.iter().all(|&b| b == 0));
    // Over-aligned values keep their alignment.
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let page = ApiBox::new_in(Page([1; 4096]), alloc);
    assert_eq!(&*page as *const Page as usize % 4096, 0);
    assert_eq!(page.0[4095], 1);
    drop((b, z, page));
    assert_eq!(
        heaps.stats(Socket::Node(0)).unwrap().alloc_count,
        before.alloc_count
    );
}

#[test]
fn an_allocator_for_a_socket_without_a_heap_is_refused() {
    // Without hugepages every node is the same memory: node 5's requests go to any node.
    let eal = no_huge_eal("alloc_badsock");
    let alloc = eal.heaps().allocator(Socket::Node(5)).unwrap();
    let v: ApiVec<u64, _> = ApiVec::with_capacity_in(16, alloc);
    assert!(eal.memory().virt_to_memseg(v.as_ptr() as usize).is_some());
    drop(v);
    // An external heap nobody created is refused all the same.
    let err = eal.heaps().allocator(Socket::External(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Inval);
    // On hugepages node 5 has no heap of its own, and none stands in for it.
    if let Some(eal) = hugepage_eal("alloc_badsock_huge") {
        let err = eal.heaps().allocator(Socket::Node(5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Inval);
    }
}

#[test]
fn exhaustion_is_an_alloc_error_not_a_panic() {
    let eal = no_huge_eal("alloc_full");
    let alloc = eal.heaps().allocator(Socket::Node(0)).unwrap();
    let mut v: ApiVec<u8, _> = ApiVec::new_in(alloc);
    assert!(
        v.try_reserve(64 << 20).is_err(),
        "more than the 32 MiB heap"
    );
    v.push(1);
    assert_eq!(v[0], 1);
}
