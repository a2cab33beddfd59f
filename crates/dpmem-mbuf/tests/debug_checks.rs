//! Feature `debug`: a free runs the sanity check first and refuses a bad buffer (a panic that
//! names the reason) before the pool is touched.
#![cfg(feature = "debug")]

use std::panic::{catch_unwind, AssertUnwindSafe};

use dpmem_mbuf::{free, PktmbufPool};

mod common;

#[test]
fn a_free_refuses_a_bad_buffer_before_touching_the_pool() {
    let eal = common::no_huge_eal("debug");
    let pool = PktmbufPool::builder("debug", 63).create(&eal).unwrap();
    let m = pool.alloc_raw_reset().unwrap();
    assert_eq!(pool.in_use_count(), 1);
    // Corrupt the buffer address (header offset 0), as a stray write would.
    let buf_addr = m.as_ptr().cast::<*mut u8>();
    // SAFETY: the buffer is ours; the test restores the field before freeing it for real.
    let saved = unsafe { buf_addr.replace(core::ptr::null_mut()) };
    // SAFETY: deliberately a bad buffer, which the debug check refuses before the pool.
    let refused = catch_unwind(AssertUnwindSafe(|| unsafe { free::raw_free(m) }));
    let message = *refused.expect_err("refused").downcast::<String>().unwrap();
    assert!(message.contains("bad virt addr"), "{message}");
    assert_eq!(pool.in_use_count(), 1, "the pool was not touched");
    pool.audit().unwrap();
    // SAFETY: as above.
    unsafe { buf_addr.write(saved) };
    // SAFETY: the buffer is whole again and ours.
    unsafe { free::free(m) };
    assert_eq!(pool.avail_count(), 63);
    pool.audit().unwrap();
}
