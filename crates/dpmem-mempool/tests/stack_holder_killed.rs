//! No process can hang the others by dying, for pools: a secondary (this test binary
//! re-executed) loops over gets and puts on a pool kept in a spinlocked stack and on one kept in
//! a lock-free stack, with no cache (every get and put reaches the stack), and is killed with
//! SIGKILL at a random moment. After each kill the primary's next get and put on each pool must
//! complete within a second (taking over the stack's lock from the dead secondary when it held
//! it), the pools must pass their audit, and every object the dead secondary did not hold must
//! still be gettable.
//!
//! `DPMEM_KILL_RUNS` sets the number of kills (default 40; the proof runs 100),
//! `DPMEM_KILL_SEED` another sequence of moments.

use std::time::{Duration, Instant};

use dpmem_eal::{lock_recovery, Eal, Socket};
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};
use dpmem_sys::process::ProcessHandle;
use dpmem_testkit::seeded::{env_number, XorShift};
use dpmem_testkit::ChildTest;

mod common;

const ENV_PREFIX: &str = "DPMEM_TEST_STACK_KILL_PREFIX";
const ENV_SEED: &str = "DPMEM_TEST_STACK_KILL_SEED";
const HANDLERS: [&str; 2] = ["stack", "lf_stack"];
const OBJECTS: u32 = 32768;
/// Objects a secondary holds at most, and moves in one get or put at most (bulks long enough
/// that a kill often lands inside the stack's section).
const HELD_MAX: usize = 128;
const BULK_MAX: u64 = 32;
const RUNS: u64 = 40;
const NEXT_OP_LIMIT: Duration = Duration::from_secs(1);

fn pool_name(handler: &str) -> String {
    format!("killed_{handler}")
}

#[test]
fn secondaries_killed_in_a_stack_hang_nobody() {
    if !common::hugepages_usable(40) {
        return;
    }
    let runs = env_number("DPMEM_KILL_RUNS", RUNS).max(1);
    let mut rng = XorShift::new(env_number("DPMEM_KILL_SEED", 0x2545_f491_4f6c_dd1d));
    let prefix = format!("stackkill{}_", std::process::id());
    let eal = Eal::init([
        "primary",
        "-l",
        "0",
        "-m",
        "32",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ])
    .unwrap();
    let pools: Vec<Mempool<'_>> = HANDLERS
        .iter()
        .map(|handler| {
            let config = MempoolConfig {
                name: &pool_name(handler),
                n: OBJECTS,
                elt_size: 64,
                cache_size: 0,
                private_data_size: 0,
                socket: Socket::Any,
                flags: MempoolFlags::empty(),
            };
            let mut pool = Mempool::create_empty(&eal, &config).unwrap();
            pool.set_handler(handler).unwrap();
            pool.populate_default().unwrap();
            pool
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    let before = lock_recovery::stats();
    for run in 0..runs {
        let mut child = ChildTest::spawn(&exe, "looping_secondary", |c| {
            c.env(ENV_PREFIX, &prefix)
                .env(ENV_SEED, rng.next_u64().to_string());
        });
        child.wait_for_line("looping", Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        ProcessHandle::open(child.pid())
            .and_then(|p| p.kill())
            .unwrap_or_else(|e| panic!("run {run}: killing the secondary: {e}"));
        for pool in &pools {
            let started = Instant::now();
            let obj = pool
                .get()
                .unwrap_or_else(|e| panic!("run {run}: {}: {e}", pool.name()));
            // SAFETY: the object was taken from this pool just above.
            unsafe { pool.put(obj) };
            let took = started.elapsed();
            assert!(
                took < NEXT_OP_LIMIT,
                "run {run}: the primary's get and put on {} took {took:?}",
                pool.name()
            );
            pool.audit()
                .unwrap_or_else(|e| panic!("run {run}: {}: {e}", pool.name()));
        }
        drop(child);
    }
    // What the dead secondaries held (and the objects a killed put or get was moving) is
    // lost with them; everything else comes out of each pool.
    for pool in &pools {
        let avail = pool.avail_count();
        assert!(
            avail as u64 + runs * (HELD_MAX as u64 + BULK_MAX) >= u64::from(OBJECTS),
            "{}: only {avail} objects left",
            pool.name()
        );
        let mut all = vec![core::ptr::null_mut(); avail as usize];
        pool.get_bulk(&mut all).unwrap();
        // SAFETY: taken from this pool just above.
        unsafe { pool.put_bulk(&all) };
    }
    let after = lock_recovery::stats();
    println!(
        "{runs} secondaries killed in get/put loops on a spinlocked and a lock-free stack: the primary took {} locks over, {} given up",
        after.taken_over - before.taken_over,
        after.retired - before.retired
    );
    assert_eq!(after.retired, before.retired);
    eal.heaps().check().unwrap();
    // The killed secondaries' channel sockets go with housekeeping (a starting primary would
    // remove them too), so the runtime directory goes with the primary.
    let runtime_dir = eal.runtime_dir().unwrap().to_path_buf();
    dpmem_eal::ipc::remove_dead_sockets(&runtime_dir).unwrap();
    drop(pools);
    drop(eal);
    assert!(
        !runtime_dir.exists(),
        "the runtime directory is left behind"
    );
}

#[test]
#[ignore = "run by secondaries_killed_in_a_stack_hang_nobody in a child process"]
fn looping_secondary() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the kill test");
    let mut rng = XorShift::new(std::env::var(ENV_SEED).unwrap().parse::<u64>().unwrap());
    let eal = Eal::init([
        "secondary",
        "--proc-type=secondary",
        "--lcores",
        "1@0",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
    ])
    .unwrap();
    let pools: Vec<Mempool<'_>> = HANDLERS
        .iter()
        .map(|h| Mempool::lookup(&eal, &pool_name(h)).unwrap())
        .collect();
    let mut held: Vec<Vec<*mut u8>> = vec![Vec::new(); pools.len()];
    println!("looping");
    loop {
        let p = rng.below(pools.len() as u64) as usize;
        let n = 1 + rng.below(BULK_MAX) as usize;
        if held[p].len() + n <= HELD_MAX && rng.below(2) == 0 {
            let mut objs = vec![core::ptr::null_mut(); n];
            if pools[p].get_bulk(&mut objs).is_ok() {
                held[p].extend(objs);
            }
        } else if held[p].len() >= n {
            let at = held[p].len() - n;
            let objs = held[p].split_off(at);
            // SAFETY: the objects were taken from this pool by this loop.
            unsafe { pools[p].put_bulk(&objs) };
        }
    }
}
