//! Thread primitives on the real machine: affinity round trip, getcpu, a thread on a stack
//! the caller owns.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dpmem_sys::thread;

#[test]
fn affinity_round_trips_and_getcpu_follows_it() {
    std::thread::spawn(|| {
        let allowed = thread::current_affinity().unwrap();
        let first = *allowed.iter().next().expect("some CPU is allowed");
        thread::set_current_affinity(&BTreeSet::from([first])).unwrap();
        assert_eq!(thread::current_affinity().unwrap(), BTreeSet::from([first]));
        assert_eq!(thread::current_cpu(), first);
        let err =
            thread::set_current_affinity(&BTreeSet::from([thread::MAX_AFFINITY_CPU])).unwrap_err();
        assert_eq!(err.errno, dpmem_sys::error::Errno::INVAL);
    })
    .join()
    .unwrap();
}

#[test]
fn native_thread_runs_on_the_given_stack() {
    let len = 1 << 20;
    let mut stack = vec![0u128; len / 16];
    let base = stack.as_mut_ptr() as usize;
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_in_thread = seen.clone();
    // SAFETY: `stack` is 16-byte aligned, exclusively lent to the thread, and outlives the join.
    let t = unsafe {
        thread::NativeThread::spawn_on_stack(
            stack.as_mut_ptr().cast(),
            len,
            Box::new(move || {
                let local = 0u8;
                seen_in_thread.store(
                    std::hint::black_box(&local) as *const u8 as usize,
                    Ordering::SeqCst,
                );
            }),
        )
    }
    .unwrap();
    t.join();
    let addr = seen.load(Ordering::SeqCst);
    assert!(
        addr >= base && addr < base + len,
        "{addr:#x} outside {base:#x}+{len:#x}"
    );
    assert!(thread::default_stack_size() >= 16 << 10);
    drop(stack);
}
