//! Times get/put of one object through the main lcore's cache, with the plain calls (which
//! find the cache on every call) and through an `LcoreCache` handle (found once): a quick
//! look at the fast path's cost (`cargo run --release -p dpmem-mempool --example get_put_loop`).

use std::time::Instant;

use dpmem_eal::{DefaultMemory, Eal, Socket};
use dpmem_mempool::{Mempool, MempoolFlags};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let memory = DefaultMemory::detect(64);
    if let Some(note) = memory.note() {
        eprintln!("get_put_loop: {note}");
    }
    let mut args = vec!["loop".to_owned(), "-l".into(), "0".into()];
    args.extend(memory.eal_args_in_memory());
    args.extend([
        "--file-prefix".into(),
        format!("getput{}_", std::process::id()),
    ]);
    let eal = Eal::init(args)?;
    for cache in [0, 512] {
        let pool = Mempool::create(
            &eal,
            "loop",
            2047,
            2048,
            cache,
            0,
            Socket::Any,
            MempoolFlags::empty(),
        )?;
        let rounds = 2_000_000u64;
        let ns = plain_loop(&pool, rounds);
        println!(
            "cache {cache}, plain calls: {ns:.2} ns per object (get + put of 1), cached now {}",
            pool.lcore_cache_len()
        );
        let ns = handle_loop(&pool, rounds);
        println!(
            "cache {cache}, LcoreCache:  {ns:.2} ns per object (get + put of 1), cached now {}",
            pool.lcore_cache_len()
        );
        let ns = handle_bulk_loop::<4>(&pool, rounds / 4);
        println!("cache {cache}, LcoreCache:  {ns:.2} ns per object (get + put of 4)");
        let ns = handle_bulk_loop::<32>(&pool, rounds / 8);
        println!("cache {cache}, LcoreCache:  {ns:.2} ns per object (get + put of 32)");
        pool.free()?;
    }
    Ok(())
}

/// `rounds` of 32 single gets then 32 single puts through `Mempool::get_bulk`/`put_bulk`.
fn plain_loop(pool: &Mempool<'_>, rounds: u64) -> f64 {
    let mut objs = [core::ptr::null_mut(); 32];
    let start = Instant::now();
    for _ in 0..rounds {
        for slot in objs.iter_mut() {
            let mut one = [core::ptr::null_mut(); 1];
            pool.get_bulk(&mut one).unwrap();
            *slot = one[0];
        }
        for obj in objs.iter() {
            // SAFETY: the object came from this pool.
            unsafe { pool.put_bulk(core::slice::from_ref(obj)) };
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * 32) as f64
}

/// The same loop through one `LcoreCache` handle.
fn handle_loop(pool: &Mempool<'_>, rounds: u64) -> f64 {
    let mut cache = pool.lcore_cache().unwrap();
    let mut objs = [core::ptr::null_mut(); 32];
    let start = Instant::now();
    for _ in 0..rounds {
        for slot in objs.iter_mut() {
            let mut one = [core::ptr::null_mut(); 1];
            cache.get_bulk(&mut one).unwrap();
            *slot = one[0];
        }
        for obj in objs.iter() {
            // SAFETY: the object came from this pool.
            unsafe { cache.put_bulk(core::slice::from_ref(obj)) };
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * 32) as f64
}

/// `rounds` of 32 objects got in bulks of `BULK` then put back in bulks of `BULK`, through
/// one `LcoreCache` handle.
fn handle_bulk_loop<const BULK: usize>(pool: &Mempool<'_>, rounds: u64) -> f64 {
    let mut cache = pool.lcore_cache().unwrap();
    let mut objs = [core::ptr::null_mut(); 32];
    let start = Instant::now();
    for _ in 0..rounds {
        for bulk in objs.chunks_exact_mut(BULK) {
            cache.get_bulk(bulk).unwrap();
        }
        for bulk in objs.chunks_exact(BULK) {
            // SAFETY: the objects came from this pool.
            unsafe { cache.put_bulk(bulk) };
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * 32) as f64
}
