//! Random get/put/flush sequences against a model (a count of objects out and the set of
//! addresses held): the pool's counts match the model after every step and no object is
//! handed out twice.

use std::collections::HashSet;

use dpmem_eal::Socket;

mod common;
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags, UserCache};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Get(usize),
    GetUser(usize),
    Put(usize),
    PutUser(usize),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..80).prop_map(Op::Get),
        (1usize..80).prop_map(Op::GetUser),
        (1usize..80).prop_map(Op::Put),
        (1usize..80).prop_map(Op::PutUser),
        Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn pool_matches_model(cache in prop_oneof![Just(0u32), Just(8), Just(64)],
                          handler in prop_oneof![Just("ring_mp_mc"), Just("lf_stack"), Just("stack")],
                          ops in proptest::collection::vec(op(), 1..120)) {
        let eal = common::no_huge_eal("model");
        let n = 300u32;
        let config = MempoolConfig { name: "model", n, elt_size: 32, cache_size: cache,
            private_data_size: 0, socket: Socket::Any, flags: MempoolFlags::empty() };
        let mut pool = Mempool::create_empty(&eal, &config).unwrap();
        pool.set_handler(handler).unwrap();
        pool.populate_default().unwrap();
        let mut user = UserCache::new(16).unwrap();
        let mut held: Vec<*mut u8> = Vec::new();
        let mut in_user_cache = 0u32;
        for op in ops {
            match op {
                Op::Get(k) | Op::GetUser(k) => {
                    let mut objs = vec![core::ptr::null_mut(); k];
                    // The lcore cache's objects count as available but a get through the
                    // user cache reaches only the handler's and its own.
                    let available = pool.avail_count() as usize;
                    let in_handler = available - pool.lcore_cache_len() as usize;
                    let with_user = matches!(op, Op::GetUser(_));
                    let r = if with_user {
                        pool.generic_get(&mut objs, Some(&mut user))
                    } else {
                        pool.get_bulk(&mut objs)
                    };
                    let reachable = if with_user { in_handler + in_user_cache as usize } else { available };
                    prop_assert_eq!(r.is_ok(), k <= reachable, "get {} of {}", k, reachable);
                    if r.is_ok() {
                        held.extend(objs);
                    }
                }
                Op::Put(k) | Op::PutUser(k) => {
                    let k = k.min(held.len());
                    let back: Vec<*mut u8> = held.drain(..k).collect();
                    if matches!(op, Op::PutUser(_)) {
                        // SAFETY: the objects came from this pool.
                        unsafe { pool.generic_put(&back, Some(&mut user)) }.unwrap();
                    } else {
                        // SAFETY: as above.
                        unsafe { pool.put_bulk(&back) };
                    }
                }
                Op::Flush => {
                    pool.flush_lcore_cache();
                    user.flush(&pool).unwrap();
                }
            }
            in_user_cache = user.len();
            let unique: HashSet<_> = held.iter().collect();
            prop_assert_eq!(unique.len(), held.len(), "an object handed out twice");
            prop_assert_eq!(pool.avail_count() + in_user_cache + held.len() as u32, n);
            prop_assert_eq!(pool.in_use_count(), n - pool.avail_count());
        }
        user.flush(&pool).unwrap();
        // SAFETY: the objects came from this pool.
        unsafe { pool.put_bulk(&held) };
        prop_assert!(pool.is_full());
        pool.audit().unwrap();
        pool.free().unwrap();
    }
}
