//! [`Burst`]: packets kept in place, filled by one bulk allocation, freed by one bulk free.
//!
//! A conformance test of its edges (all or nothing, a refused fill changes nothing, packets
//! of several pools freed together, a drain) and a model test: random sequences of fills,
//! pushes, pops, truncations, drains and clears on a burst, checked after every step against
//! a list of the packets it should hold (by pool and by a byte each carries), with the
//! pools' counts of buffers out following the model's.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;

use common::{assert_pool_whole, no_huge_eal};
use dpmem_eal::ErrorKind;
use dpmem_mbuf::{Burst, Mbuf, MbufError, PktmbufPool, HEADROOM};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

#[test]
fn a_burst_is_filled_all_or_nothing_and_freed_in_one_call() {
    let eal = no_huge_eal("burst");
    let pool = PktmbufPool::builder("burst-a", 40)
        .cache_size(8)
        .create(&eal)
        .unwrap();
    let other = PktmbufPool::builder("burst-b", 40).create(&eal).unwrap();

    let mut burst = Burst::<32>::new();
    assert!(burst.is_empty());
    assert_eq!((burst.capacity(), burst.spare()), (32, 32));
    pool.alloc_burst(&mut burst, 30).unwrap();
    assert_eq!((burst.len(), burst.spare()), (30, 2));
    assert_eq!(pool.in_use_count(), 30);
    for packet in &burst {
        assert_eq!((packet.pkt_len(), packet.nb_segs()), (0, 1));
    }

    // More than its free slots: EINVAL, nothing taken, the burst as it was.
    let before: Vec<_> = burst.iter().map(Mbuf::as_raw).collect();
    let e = pool.alloc_burst(&mut burst, 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    assert_eq!(pool.in_use_count(), 30);
    assert_eq!(burst.iter().map(Mbuf::as_raw).collect::<Vec<_>>(), before);

    // More than the pool has: ENOENT, nothing taken, the burst as it was.
    let mut small = Burst::<16>::new();
    let e = pool.alloc_burst(&mut small, 11).unwrap_err();
    assert!(matches!(e, MbufError::Exhausted { wanted: 11, .. }), "{e}");
    assert!(small.is_empty());
    assert_eq!(pool.in_use_count(), 30);

    // Packets of another pool pushed in; a full burst gives the packet back.
    burst.push(other.alloc().unwrap()).unwrap();
    burst.push(other.alloc().unwrap()).unwrap();
    let refused = burst.push(other.alloc().unwrap()).unwrap_err();
    assert_eq!(other.in_use_count(), 3);
    drop(refused);
    burst[31].extend_from_slice(b"last").unwrap();
    assert_eq!(burst.pop().unwrap().to_vec(), b"last");
    assert_eq!(other.in_use_count(), 1);

    // Truncate frees the tail only; clear frees the rest of both pools' packets.
    burst.truncate(40);
    assert_eq!(burst.len(), 31);
    burst.truncate(10);
    assert_eq!(burst.len(), 10);
    assert_eq!((pool.in_use_count(), other.in_use_count()), (10, 0));
    burst.clear();
    assert!(burst.is_empty());
    assert_eq!(pool.in_use_count(), 0);

    // Drained first to last; what the iterator did not give goes back when it drops, and
    // the burst is empty and ready for the next fill.
    pool.alloc_burst(&mut burst, 6).unwrap();
    for (i, packet) in (&mut burst).into_iter().enumerate() {
        packet.extend_from_slice(&[i as u8]).unwrap();
    }
    let mut drain = burst.drain();
    assert_eq!(drain.len(), 6);
    assert_eq!(drain.next().unwrap().to_vec(), [0]);
    assert_eq!(drain.next_back().unwrap().to_vec(), [5]);
    let kept = drain.next().unwrap();
    drop(drain);
    assert_eq!(kept.to_vec(), [1]);
    assert!(burst.is_empty());
    assert_eq!(pool.in_use_count(), 1);
    drop(kept);

    // Refilled after a clear, then freed by its drop.
    pool.alloc_burst(&mut burst, 32).unwrap();
    assert_eq!(pool.in_use_count(), 32);
    drop(burst);
    assert_pool_whole(&pool);
    assert_pool_whole(&other);
}

/// A burst goes to another thread with its packets, and is freed there.
#[test]
fn a_burst_is_freed_on_the_thread_it_was_sent_to() {
    let eal = no_huge_eal("burst-send");
    let pool = PktmbufPool::builder("burst-send", 63)
        .cache_size(8)
        .create(&eal)
        .unwrap();
    let mut burst = Burst::<32>::new();
    pool.alloc_burst(&mut burst, 32).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || drop(burst));
    });
    assert_pool_whole(&pool);
}

const CAPACITY: usize = 8;
/// Fewer than a burst holds, so a fill can find a pool short.
const POOL_SIZE: u32 = 6;

#[derive(Debug, Clone)]
enum Op {
    /// Fill `n` packets from pool `0` or `1`.
    Alloc(usize, usize),
    /// Push one packet of pool `0` or `1`.
    Push(usize),
    Pop,
    Truncate(usize),
    Clear,
    /// Drain, keeping the first `n` packets given (dropped after the iterator).
    Drain(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..=CAPACITY + 2).prop_map(|(p, n)| Op::Alloc(p, n)),
        2 => (0..2usize).prop_map(Op::Push),
        2 => Just(Op::Pop),
        1 => (0..=CAPACITY + 1).prop_map(Op::Truncate),
        1 => Just(Op::Clear),
        1 => (0..=CAPACITY + 1).prop_map(Op::Drain),
    ]
}

/// What the burst should hold: each packet's pool and the byte it carries.
#[derive(Debug, Default)]
struct Model {
    packets: Vec<(usize, u8)>,
    out: [u32; 2],
}

#[test]
fn burst_operations_follow_the_model() {
    let eal = no_huge_eal("burst-model");
    let pools = [
        // No lcore caches: a cache could hold buffers back from a bulk get, and the model
        // counts what the pool has.
        PktmbufPool::builder("burst-model-0", POOL_SIZE)
            .create(&eal)
            .unwrap(),
        PktmbufPool::builder("burst-model-1", POOL_SIZE)
            .data_room(HEADROOM + 64)
            .create(&eal)
            .unwrap(),
    ];
    // Which pool a packet came from, by the length of its buffer (the pools' rooms differ).
    let index: HashMap<u16, usize> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.alloc().unwrap().header().buf_len(), i))
        .collect();
    assert_eq!(index.len(), 2);
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let outcomes: RefCell<HashMap<&'static str, u32>> = RefCell::default();
    runner
        .run(&prop::collection::vec(op(), 1..40), |ops| {
            let mut burst = Burst::<CAPACITY>::new();
            let mut model = Model::default();
            let mut stamp = 0u8;
            for (i, op) in ops.iter().enumerate() {
                let outcome = step(&pools, &mut burst, &mut model, &mut stamp, op)
                    .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
                *outcomes.borrow_mut().entry(outcome).or_default() += 1;
                check(&pools, &index, &burst, &model)
                    .map_err(|e| TestCaseError::fail(format!("after step {i} {op:?}: {e}")))?;
            }
            drop(burst);
            for pool in &pools {
                prop_assert_eq!(pool.avail_count(), POOL_SIZE);
            }
            Ok(())
        })
        .unwrap();
    let outcomes = outcomes.into_inner();
    for (outcome, times) in &outcomes {
        eprintln!("{outcome:<16} {times}");
    }
    for outcome in [
        "filled",
        "too small",
        "pool short",
        "pushed",
        "full",
        "popped",
    ] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "no step was {outcome:?}"
        );
    }
    for pool in &pools {
        assert_pool_whole(pool);
    }
}

/// One operation on the burst and the model; what happened, for the tally.
fn step<'p>(
    pools: &'p [PktmbufPool<'_>; 2],
    burst: &mut Burst<'p, CAPACITY>,
    model: &mut Model,
    stamp: &mut u8,
    op: &Op,
) -> Result<&'static str, String> {
    let mut mark = |packet: &mut Mbuf<'_>, pool: usize, model_at: &mut Vec<(usize, u8)>| {
        *stamp = stamp.wrapping_add(1);
        packet.extend_from_slice(&[*stamp]).unwrap();
        model_at.push((pool, *stamp));
    };
    Ok(match *op {
        Op::Alloc(p, n) => {
            let was = burst.len();
            match pools[p].alloc_burst(burst, n) {
                Ok(()) => {
                    if n > CAPACITY - was || n > (POOL_SIZE - model.out[p]) as usize {
                        return Err(format!("{n} packets given, the model refuses them"));
                    }
                    model.out[p] += n as u32;
                    for packet in &mut burst[was..] {
                        mark(packet, p, &mut model.packets);
                    }
                    "filled"
                }
                Err(e) if n > CAPACITY - was => {
                    expect_kind(&e, ErrorKind::Inval)?;
                    "too small"
                }
                Err(e) => {
                    expect_kind(&e, ErrorKind::NoEnt)?;
                    if n <= (POOL_SIZE - model.out[p]) as usize {
                        return Err(format!("{e}: the model has {n} in the pool"));
                    }
                    "pool short"
                }
            }
        }
        Op::Push(p) => {
            if model.out[p] == POOL_SIZE {
                return Ok("push: pool empty");
            }
            let mut packet = pools[p].alloc().map_err(|e| e.to_string())?;
            let mut one = Vec::new();
            mark(&mut packet, p, &mut one);
            match burst.push(packet) {
                Ok(()) if model.packets.len() < CAPACITY => {
                    model.out[p] += 1;
                    model.packets.extend(one);
                    "pushed"
                }
                Err(back) if model.packets.len() == CAPACITY => {
                    if back.to_vec() != [one[0].1] {
                        return Err("the refused packet came back changed".into());
                    }
                    "full"
                }
                _ => return Err("push disagrees with the model".into()),
            }
        }
        Op::Pop => match (burst.pop(), model.packets.pop()) {
            (None, None) => "pop: empty",
            (Some(packet), Some((p, byte))) => {
                if packet.to_vec() != [byte] {
                    return Err(format!("popped {:?}, the model {byte}", packet.to_vec()));
                }
                drop(packet);
                model.out[p] -= 1;
                "popped"
            }
            (got, want) => return Err(format!("popped {got:?}, the model {want:?}")),
        },
        Op::Truncate(len) => {
            burst.truncate(len);
            while model.packets.len() > len {
                let (p, _) = model.packets.pop().unwrap();
                model.out[p] -= 1;
            }
            "truncated"
        }
        Op::Drain(n) => {
            let mut drain = burst.drain();
            let given: Vec<Mbuf<'_>> = drain.by_ref().take(n).collect();
            drop(drain);
            let given: Vec<u8> = given.iter().map(|p| p.to_vec()[0]).collect();
            let want: Vec<u8> = model.packets.iter().take(n).map(|&(_, b)| b).collect();
            if given != want {
                return Err(format!("drain gave {given:?}, the model {want:?}"));
            }
            if !burst.is_empty() {
                return Err("a drained burst is not empty".into());
            }
            for (p, _) in model.packets.drain(..) {
                model.out[p] -= 1;
            }
            "drained"
        }
        Op::Clear => {
            burst.clear();
            for (p, _) in model.packets.drain(..) {
                model.out[p] -= 1;
            }
            "cleared"
        }
    })
}

fn expect_kind(e: &MbufError, kind: ErrorKind) -> Result<(), String> {
    if e.kind() == kind {
        Ok(())
    } else {
        Err(format!("{e}: kind {:?}, {kind:?} expected", e.kind()))
    }
}

/// The burst holds the model's packets in order, and the pools have the model's counts out.
fn check(
    pools: &[PktmbufPool<'_>; 2],
    index: &HashMap<u16, usize>,
    burst: &Burst<'_, CAPACITY>,
    model: &Model,
) -> Result<(), String> {
    let held: Vec<(usize, u8)> = burst
        .iter()
        .map(|packet| {
            let pool = index[&packet.header().buf_len()];
            (pool, packet.to_vec()[0])
        })
        .collect();
    if held != model.packets {
        return Err(format!("holds {held:?}, the model {:?}", model.packets));
    }
    for (p, pool) in pools.iter().enumerate() {
        if pool.in_use_count() != model.out[p] {
            return Err(format!(
                "pool {p}: {} out, the model {}",
                pool.in_use_count(),
                model.out[p]
            ));
        }
    }
    Ok(())
}
