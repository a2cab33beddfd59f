//! A real secondary process (this test binary re-executed) finds the primary's pools by
//! name and takes and returns objects at the same addresses.

use dpmem_eal::{Eal, ProcessRole, Socket};
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};

mod common;

#[test]
fn a_secondary_uses_the_primarys_pools() {
    if !common::hugepages_usable(16) {
        return;
    }
    let prefix = format!("mpmp{}_", std::process::id());
    let eal = Eal::init(["primary", "-l", "0", "-m", "16", "--file-prefix", &prefix]).unwrap();
    let pools: Vec<Mempool<'_>> = ["ring_mp_mc", "lf_stack"]
        .iter()
        .map(|handler| {
            let config = MempoolConfig {
                name: &format!("shared_{handler}"),
                n: 1000,
                elt_size: 256,
                cache_size: 32,
                private_data_size: 64,
                socket: Socket::Any,
                flags: MempoolFlags::empty(),
            };
            let mut pool = Mempool::create_empty(&eal, &config).unwrap();
            pool.set_handler(handler).unwrap();
            pool.populate_default().unwrap();
            // SAFETY: the private area has 64 bytes; nothing else uses it.
            unsafe { pool.private_data().cast::<u64>().write(0x5eed) };
            pool
        })
        .collect();
    for pool in &pools {
        assert!(!pool.is_non_io());
        // Keep 10 objects out, marked, for the secondary to find in obj_iter.
        let mut out = vec![core::ptr::null_mut(); 10];
        pool.get_bulk(&mut out).unwrap();
        for &obj in &out {
            // SAFETY: the object is ours.
            unsafe { obj.cast::<u64>().write(0xabcd) };
        }
        std::mem::forget(out);
    }
    dpmem_testkit::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_body",
        |c| {
            c.env("DPMEM_MEMPOOL_TEST_PREFIX", &prefix);
        },
    );
    for pool in &pools {
        // The secondary kept 5 objects out and wrote its mark into them.
        assert_eq!(pool.in_use_count(), 15, "{}", pool.dump());
        let mut marked = 0;
        pool.obj_iter(|_, obj, _| {
            // SAFETY: every object has 256 bytes; reading them races with nobody now.
            if unsafe { obj.cast::<u64>().read() } == 0x5ec0 {
                marked += 1;
            }
        });
        assert_eq!(marked, 5);
        pool.audit().unwrap();
    }
}

#[test]
#[ignore = "run by a_secondary_uses_the_primarys_pools in a child process"]
fn secondary_body() {
    let prefix = std::env::var("DPMEM_MEMPOOL_TEST_PREFIX").expect("run by the primary test");
    let eal =
        // Lcore id 1 (the primary is lcore 0: per-lcore caches are per id), on the CPU the
        // primary's affinity left us.
        Eal::init(["secondary", "--proc-type=secondary", "--lcores", "1@0", "--file-prefix", &prefix])
            .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    for handler in ["ring_mp_mc", "lf_stack"] {
        let pool = Mempool::lookup(&eal, &format!("shared_{handler}")).unwrap();
        assert_eq!(pool.handler_name(), handler);
        assert_eq!(pool.size(), 1000);
        assert_eq!(pool.in_use_count(), 10);
        // SAFETY: the primary wrote a u64 there.
        assert_eq!(unsafe { pool.private_data().cast::<u64>().read() }, 0x5eed);
        let mut primary_marks = 0;
        pool.obj_iter(|_, obj, _| {
            // SAFETY: objects have 256 bytes.
            if unsafe { obj.cast::<u64>().read() } == 0xabcd {
                primary_marks += 1;
            }
        });
        assert_eq!(primary_marks, 10, "the same objects at the same addresses");
        // Take 100 (through lcore 1's cache), give 95 back, keep 5 marked.
        let mut objs = vec![core::ptr::null_mut(); 100];
        pool.get_bulk(&mut objs).unwrap();
        for &obj in &objs {
            // SAFETY: the objects are ours, 256 bytes each.
            unsafe { obj.cast::<u64>().write(0x5ec0) };
            // SAFETY: as above.
            assert!(unsafe { pool.owns(obj) });
        }
        // SAFETY: the objects came from this pool.
        unsafe { pool.put_bulk(&objs[5..]) };
        for &obj in &objs[5..] {
            // Unmark what goes back, so the primary counts only the 5 kept.
            // SAFETY: the object is back in the pool; nothing else runs on it now.
            unsafe { obj.cast::<u64>().write(0) };
        }
        pool.flush_lcore_cache();
        assert_eq!(pool.in_use_count(), 15);
    }
}
