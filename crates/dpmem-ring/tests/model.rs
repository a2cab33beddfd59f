//! The ring against `VecDeque`: any sequence of bulk and burst calls, in any mode, moves
//! the same elements in the same order and reports the same counts — except that a side
//! which trusts the other side's tail as last seen (`CACHED_OTHER_TAIL`, single-thread and
//! classic sides) may report less room remaining, never more.

use std::collections::VecDeque;

use dpmem_ring::{Ring, RingFlags};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Call {
    EnqueueBulk(u32),
    EnqueueBurst(u32),
    DequeueBulk(u32),
    DequeueBurst(u32),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (0u32..20).prop_map(Call::EnqueueBulk),
        (0u32..20).prop_map(Call::EnqueueBurst),
        (0u32..20).prop_map(Call::DequeueBulk),
        (0u32..20).prop_map(Call::DequeueBurst),
    ]
}

fn flags() -> impl Strategy<Value = RingFlags> {
    let prod = prop_oneof![
        Just(RingFlags::NONE),
        Just(RingFlags::SP_ENQ),
        Just(RingFlags::MP_RTS_ENQ),
        Just(RingFlags::MP_HTS_ENQ)
    ];
    let cons = prop_oneof![
        Just(RingFlags::NONE),
        Just(RingFlags::SC_DEQ),
        Just(RingFlags::MC_RTS_DEQ),
        Just(RingFlags::MC_HTS_DEQ)
    ];
    (prod, cons, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(p, c, exact, together, cached)| {
            let size = if exact {
                RingFlags::EXACT_SZ
            } else {
                RingFlags::NONE
            };
            let layout = if together {
                RingFlags::HEAD_TAIL_TOGETHER
            } else {
                RingFlags::NONE
            };
            // Heads beside tails only come with the room left kept.
            let cache = if cached || together {
                RingFlags::CACHED_OTHER_TAIL
            } else {
                RingFlags::NONE
            };
            p | c | size | layout | cache
        },
    )
}

/// Whether a side in mode `relaxed_mode_flags` (its RTS and HTS bits) reports room from a
/// cached tail on a ring with `flags`.
fn reports_a_lower_bound(flags: RingFlags, relaxed_mode_flags: u32) -> bool {
    flags.contains(RingFlags::CACHED_OTHER_TAIL) && flags.bits() & relaxed_mode_flags == 0
}

proptest! {
    #[test]
    fn behaves_like_a_bounded_vecdeque(flags in flags(), calls in prop::collection::vec(call(), 1..200)) {
        let count = if flags.contains(RingFlags::EXACT_SZ) { 13 } else { 16 };
        let ring = Ring::<u32>::new("model", count, flags).unwrap();
        let capacity = ring.capacity() as usize;
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        let prod_bound = reports_a_lower_bound(flags, RingFlags::MP_RTS_ENQ.bits() | RingFlags::MP_HTS_ENQ.bits());
        let cons_bound = reports_a_lower_bound(flags, RingFlags::MC_RTS_DEQ.bits() | RingFlags::MC_HTS_DEQ.bits());
        let mut model = VecDeque::new();
        let mut next = 0u32;
        for call in calls {
            match call {
                Call::EnqueueBulk(n) | Call::EnqueueBurst(n) => {
                    let items: Vec<u32> = (next..next + n).collect();
                    let free = capacity - model.len();
                    let bulk = matches!(call, Call::EnqueueBulk(_));
                    let expect = if bulk { if n as usize <= free { n as usize } else { 0 } } else { free.min(n as usize) };
                    let m = if bulk { p.enqueue_bulk(&items) } else { p.enqueue_burst(&items) };
                    prop_assert_eq!(m.count as usize, expect);
                    model.extend(&items[..expect]);
                    next += expect as u32;
                    let free = capacity - model.len();
                    if prod_bound {
                        prop_assert!(m.remaining as usize <= free, "{} > {}", m.remaining, free);
                    } else {
                        prop_assert_eq!(m.remaining as usize, free);
                    }
                }
                Call::DequeueBulk(n) | Call::DequeueBurst(n) => {
                    let mut out = vec![0u32; n as usize];
                    let bulk = matches!(call, Call::DequeueBulk(_));
                    let expect = if bulk { if n as usize <= model.len() { n as usize } else { 0 } } else { model.len().min(n as usize) };
                    let m = if bulk { c.dequeue_bulk(&mut out) } else { c.dequeue_burst(&mut out) };
                    prop_assert_eq!(m.count as usize, expect);
                    let want: Vec<u32> = model.drain(..expect).collect();
                    prop_assert_eq!(&out[..expect], &want[..]);
                    if cons_bound {
                        prop_assert!(m.remaining as usize <= model.len(), "{} > {}", m.remaining, model.len());
                    } else {
                        prop_assert_eq!(m.remaining as usize, model.len());
                    }
                }
            }
            prop_assert_eq!(ring.count() as usize, model.len());
        }
    }
}
