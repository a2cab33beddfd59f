//! Several lcores on one pool: nothing lost, nothing handed to two threads at once, every
//! object back at the end (audit); and a single-producer/single-consumer pool used by one
//! putting lcore and one getting lcore.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use dpmem_eal::Socket;
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};

mod common;

use common::no_huge_eal as eal;

/// A small deterministic generator (xorshift), seeded per thread.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn churn(pool: &Mempool<'_>, tag: u64, rounds: usize) {
    let mut rng = tag * 0x9e37_79b9 + 1;
    let mut held: Vec<*mut u8> = Vec::new();
    for _ in 0..rounds {
        if held.len() < 200 && next(&mut rng).is_multiple_of(2) {
            let n = 1 + (next(&mut rng) % 40) as usize;
            let mut objs = vec![core::ptr::null_mut(); n];
            if pool.get_bulk(&mut objs).is_ok() {
                for &obj in &objs {
                    // SAFETY: the object is ours until we put it back; it has 64 bytes.
                    unsafe { obj.cast::<u64>().write(tag) };
                }
                held.extend(objs);
            }
        } else if !held.is_empty() {
            let n = 1 + (next(&mut rng) as usize % held.len());
            let back: Vec<*mut u8> = held.drain(..n).collect();
            for &obj in &back {
                // SAFETY: as above.
                let owner = unsafe { obj.cast::<u64>().read() };
                assert_eq!(
                    owner, tag,
                    "object {obj:p} was handed to another thread meanwhile"
                );
            }
            // SAFETY: the objects came from this pool and go back once.
            unsafe { pool.put_bulk(&back) };
        }
    }
    // SAFETY: as above.
    unsafe { pool.put_bulk(&held) };
    pool.flush_lcore_cache();
}

fn stress(handler: &str, cache: u32) {
    let eal = eal(&format!("stress_{handler}_{cache}"));
    let config = MempoolConfig {
        name: "stress",
        n: 2000,
        elt_size: 64,
        cache_size: cache,
        private_data_size: 0,
        socket: Socket::Any,
        flags: MempoolFlags::empty(),
    };
    let mut pool = Mempool::create_empty(&eal, &config).unwrap();
    pool.set_handler(handler).unwrap();
    pool.populate_default().unwrap();
    // Four threads on two CPUs: the main lcore and three registered ones (more threads than
    // cores, so they are preempted in the middle of operations).
    std::thread::scope(|s| {
        for t in 1..=3u64 {
            let (pool, eal) = (&pool, &eal);
            s.spawn(move || {
                let lcore = eal.lcore_threads().register_thread().unwrap();
                assert_eq!(eal.lcore_threads().current_lcore_id(), lcore);
                churn(pool, t, 4_000);
                eal.lcore_threads().unregister_thread().unwrap();
            });
        }
        churn(&pool, 99, 4_000);
    });
    pool.audit().unwrap();
    assert!(pool.is_full(), "{}", pool.dump());
    // Every object comes out exactly once.
    let mut all = vec![core::ptr::null_mut(); 2000];
    pool.get_bulk(&mut all).unwrap();
    let got: HashSet<usize> = all.iter().map(|p| *p as usize).collect();
    let mut listed = HashSet::new();
    pool.obj_iter(|_, obj, _| {
        listed.insert(obj as usize);
    });
    assert_eq!(got.len(), 2000, "no object twice");
    assert_eq!(got, listed, "exactly the pool's objects");
    assert!(pool.get().is_err());
    // SAFETY: the objects came from this pool.
    unsafe { pool.put_bulk(&all) };
    pool.free().unwrap();
}

#[test]
fn ring_mp_mc_with_caches_under_churn() {
    stress("ring_mp_mc", 64);
}

#[test]
fn ring_mp_mc_without_caches_under_churn() {
    stress("ring_mp_mc", 0);
}

#[test]
fn rts_and_hts_rings_under_churn() {
    stress("ring_mt_rts", 32);
    stress("ring_mt_hts", 0);
}

#[test]
fn stacks_under_churn() {
    stress("lf_stack", 0);
    stress("lf_stack", 16);
    stress("stack", 0);
}

#[test]
fn sp_put_sc_get_with_one_producer_and_one_consumer_lcore() {
    let eal = eal("spsc");
    let pool = Mempool::create(
        &eal,
        "spsc",
        512,
        64,
        0,
        0,
        Socket::Any,
        MempoolFlags::SP_PUT | MempoolFlags::SC_GET,
    )
    .unwrap();
    assert_eq!(pool.handler_name(), "ring_sp_sc");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<usize>>(8);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (pool, eal, done) = (&pool, &eal, &done);
        // The one putter.
        s.spawn(move || {
            eal.lcore_threads().register_thread().unwrap();
            for batch in rx {
                let objs: Vec<*mut u8> = batch.into_iter().map(|a| a as *mut u8).collect();
                // SAFETY: the getter took these from the pool and passed them here.
                unsafe { pool.put_bulk(&objs) };
            }
            done.store(true, Ordering::Release);
        });
        // The one getter (the main lcore).
        let mut moved = 0;
        while moved < 100_000 {
            let mut objs = vec![core::ptr::null_mut(); 16];
            if pool.get_bulk(&mut objs).is_ok() {
                moved += 16;
                tx.send(objs.into_iter().map(|p| p as usize).collect())
                    .unwrap();
            } else {
                std::thread::yield_now();
            }
        }
        drop(tx);
    });
    assert!(done.load(Ordering::Acquire));
    assert!(pool.is_full());
    pool.audit().unwrap();
    pool.free().unwrap();
}
