//! With the `debug` feature, object headers and trailers catch misuse before the pool is
//! touched: an object of another pool, an object put twice, a write past an object's end.

#![cfg(feature = "debug")]

use std::panic::{catch_unwind, AssertUnwindSafe};

use dpmem_eal::Socket;
use dpmem_mempool::{Mempool, MempoolFlags};

mod common;

fn expect_refusal(what: &str, f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err(what);
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn misuse_is_reported_and_the_pool_stays_intact() {
    let eal = common::no_huge_eal("debug");
    let a = Mempool::create(
        &eal,
        "dbg_a",
        64,
        100,
        8,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let b = Mempool::create(
        &eal,
        "dbg_b",
        64,
        100,
        8,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let from_a = a.get().unwrap();
    // SAFETY: deliberately wrong: the object is a's; the debug check refuses it first.
    let msg = expect_refusal("foreign object", || unsafe { b.put(from_a) });
    assert!(msg.contains("not an object of this pool"), "{msg}");
    assert!(b.is_full(), "b untouched");
    b.audit().unwrap();

    // SAFETY: the object came from a.
    unsafe { a.put(from_a) };
    // SAFETY: deliberately wrong: already put back.
    let msg = expect_refusal("double put", || unsafe { a.put(from_a) });
    assert!(msg.contains("put twice"), "{msg}");
    assert!(a.is_full());
    a.audit().unwrap();

    let obj = a.get().unwrap();
    // Write one byte past the 100-byte element (rounded to 104): into the trailer cookie.
    let trailer = obj.as_ptr().wrapping_add(104);
    // SAFETY: the slot extends past the element, so the write stays in the pool's memory.
    unsafe { trailer.write(0x55) };
    // SAFETY: the object came from a (its trailer is what is wrong).
    let msg = expect_refusal("overrun", || unsafe { a.put(obj) });
    assert!(msg.contains("past its end"), "{msg}");
    let e = a.audit().unwrap_err();
    assert!(e.to_string().contains("past its end"), "{e}");
    // Repair, give back: the pool is whole again.
    // SAFETY: as above.
    unsafe { trailer.write(0xda) };
    a.audit().unwrap();
    // SAFETY: the object came from a.
    unsafe { a.put(obj) };
    assert!(a.is_full());
    a.free().unwrap();
    b.free().unwrap();
}
