//! loom model checks of the head/tail protocols, with tiny rings and 2–3 threads.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p dpmem-ring --release --test loom_ring`
//!
//! Each test runs every interleaving loom can reach (with a preemption bound, as loom
//! recommends for spin loops) and asserts what the ring promises: every element comes out
//! once, and elements of one producer come out in the order they went in. loom checks the
//! atomics' orderings, and the slots too: under loom every slot copy reports its slots to a
//! model cell per slot (`slots::track`), so a read of a slot that does not happen after the
//! write it reads (or a write that does not happen after the last read) is a causality
//! violation, even where the values would come out right. Weakening the tail's Release, the
//! other tail's Acquire, or a multi-thread head's Acquire load or Release CAS each fails
//! models here (checked when this was added); before the slots were modelled, the first
//! of those passed every model. The peek and zero-copy models fail when a finish publishes
//! with Relaxed (SP/SC and HTS alike).
#![cfg(loom)]

use dpmem_ring::{Behavior, Ring, RingFlags};
use loom::sync::Arc;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    // Waiting loops (a full or empty ring, an earlier thread's tail) take many steps.
    builder.max_branches = 10_000;
    builder.check(f);
}

/// Try to dequeue once per element of `tries`, without waiting: a concurrent consumer
/// that may or may not find something (waiting loops would make the model too large).
fn dequeue_some(ring: &Ring<u32>, tries: usize) -> Vec<u32> {
    let mut c = ring.consumer().unwrap();
    (0..tries).filter_map(|_| c.dequeue()).collect()
}

/// Enqueue every value once; the ring is large enough that none fails.
fn enqueue_all(ring: &Ring<u32>, values: &[u32]) {
    let mut p = ring.producer().unwrap();
    for v in values {
        assert_eq!(p.enqueue(*v), Ok(()));
    }
}

/// One producer, one consumer, FIFO across the wrap.
fn sp_sc_fifo(flags: RingFlags) {
    model(move || {
        // 4 slots, capacity 3; two values already passed through, so the next wrap.
        let ring = Arc::new(Ring::<u32>::new("spsc", 4, flags).unwrap());
        enqueue_all(&ring, &[0, 0, 0]);
        assert_eq!(dequeue_some(&ring, 3), vec![0, 0, 0]);
        let producer = {
            let ring = ring.clone();
            loom::thread::spawn(move || enqueue_all(&ring, &[1, 2]))
        };
        let mut got = dequeue_some(&ring, 2);
        producer.join().unwrap();
        got.extend(dequeue_some(&ring, 2));
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn sp_sc_fifo_across_the_wrap() {
    sp_sc_fifo(RingFlags::SP_ENQ | RingFlags::SC_DEQ);
}

/// Two producers of one value each and a consumer, concurrently: both values come out,
/// once, whatever the interleaving.
fn two_producers(flags: RingFlags) {
    model(move || {
        let ring = Arc::new(Ring::<u32>::new("mp", 4, flags).unwrap());
        let threads: Vec<_> = [10, 20]
            .into_iter()
            .map(|v| {
                let ring = ring.clone();
                loom::thread::spawn(move || enqueue_all(&ring, &[v]))
            })
            .collect();
        let mut got = dequeue_some(&ring, 1);
        for t in threads {
            t.join().unwrap();
        }
        got.extend(dequeue_some(&ring, 2));
        got.sort_unstable();
        assert_eq!(got, vec![10, 20]);
        assert!(ring.is_empty());
    });
}

/// One producer of two values and two consumers, concurrently: each value comes out
/// once, and a consumer that gets both gets them in order.
fn two_consumers(flags: RingFlags) {
    model(move || {
        let ring = Arc::new(Ring::<u32>::new("mc", 4, flags).unwrap());
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                loom::thread::spawn(move || dequeue_some(&ring, 1))
            })
            .collect();
        enqueue_all(&ring, &[1, 2]);
        let mut got: Vec<u32> = consumers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        got.extend(dequeue_some(&ring, 2));
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn mp_two_producers() {
    two_producers(RingFlags::SC_DEQ);
}

#[test]
fn mc_two_consumers() {
    two_consumers(RingFlags::SP_ENQ);
}

#[test]
fn hts_two_producers() {
    two_producers(RingFlags::MP_HTS_ENQ | RingFlags::SC_DEQ);
}

#[test]
fn hts_two_consumers() {
    two_consumers(RingFlags::SP_ENQ | RingFlags::MC_HTS_DEQ);
}

#[test]
fn rts_two_producers() {
    two_producers(RingFlags::MP_RTS_ENQ | RingFlags::SC_DEQ);
}

#[test]
fn rts_two_consumers() {
    two_consumers(RingFlags::SP_ENQ | RingFlags::MC_RTS_DEQ);
}

/// RTS on a ring with heads beside tails (RTS finds its head word as it goes).
#[test]
fn rts_two_producers_heads_beside_tails() {
    two_producers(
        RingFlags::MP_RTS_ENQ
            | RingFlags::SC_DEQ
            | RingFlags::HEAD_TAIL_TOGETHER
            | RingFlags::CACHED_OTHER_TAIL,
    );
}

/// A pipeline whose sides trust the other side's tail as last seen.
#[test]
fn sp_sc_fifo_across_the_wrap_other_tail_cached() {
    sp_sc_fifo(RingFlags::SP_ENQ | RingFlags::SC_DEQ | RingFlags::CACHED_OTHER_TAIL);
}

#[test]
fn mp_two_producers_other_tail_cached() {
    two_producers(RingFlags::SC_DEQ | RingFlags::CACHED_OTHER_TAIL);
}

/// Two consumers sharing the room left in their head word: one that loses the race for the
/// head must go on from the room the winner left, never from the room it had loaded, or it
/// would claim slots the producer has not written.
#[test]
fn mc_two_consumers_other_tail_cached() {
    two_consumers(RingFlags::SP_ENQ | RingFlags::CACHED_OTHER_TAIL);
}

/// The layout of a mempool's ring: heads beside tails and the other side's tail cached.
#[test]
fn mp_two_producers_as_on_a_mempool_ring() {
    two_producers(RingFlags::SC_DEQ | RingFlags::HEAD_TAIL_TOGETHER | RingFlags::CACHED_OTHER_TAIL);
}

#[test]
fn mc_two_consumers_as_on_a_mempool_ring() {
    two_consumers(RingFlags::SP_ENQ | RingFlags::HEAD_TAIL_TOGETHER | RingFlags::CACHED_OTHER_TAIL);
}

/// A producer thread that publishes the values 1 and 2 with `produce`, while the main thread
/// takes what it finds with `take` once, then again after the producer is done; both values
/// come out once, in order. Panics unless some interleaving let the first take find values
/// (so the model did reach the order where the consumer's slot accesses follow the
/// producer's and loom checked them).
fn two_phase_model(flags: RingFlags, produce: fn(&Ring<u32>), take: fn(&Ring<u32>, &mut Vec<u32>)) {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Plain std, outside the model, so it outlives every execution; one per call, as tests
    // run in parallel.
    let found_early: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    model(move || {
        // Four slots, capacity 3; three values already passed through, so the next claim wraps.
        let ring = Arc::new(Ring::<u32>::new("twophase", 4, flags).unwrap());
        enqueue_all(&ring, &[0, 0, 0]);
        assert_eq!(dequeue_some(&ring, 3), vec![0, 0, 0]);
        let producer = {
            let ring = ring.clone();
            loom::thread::spawn(move || produce(&ring))
        };
        // A scheduling point before the first take, so the model also runs the producer to
        // its finish first: loom did not reach that order by preemption alone here.
        loom::thread::yield_now();
        let mut got = Vec::new();
        take(&ring, &mut got);
        if !got.is_empty() {
            found_early.store(true, Ordering::Relaxed);
        }
        producer.join().unwrap();
        take(&ring, &mut got);
        assert_eq!(got, vec![1, 2]);
    });
    assert!(
        found_early.load(Ordering::Relaxed),
        "no interleaving had the consumer find the producer's values"
    );
}

/// Zero-copy enqueue of 1 and 2: written in place through the claim's regions, then
/// published (loom sees the writes when the claim finishes).
fn zero_copy_produce(ring: &Ring<u32>) {
    let mut p = ring.producer().unwrap();
    let mut claim = p.enqueue_zc_start(2, Behavior::Fixed).unwrap();
    assert_eq!(claim.len(), 2);
    let (first, second) = claim.regions();
    for (slot, value) in first.iter_mut().chain(second.iter_mut()).zip([1, 2]) {
        slot.write(value);
    }
    // SAFETY: both claimed slots were written through the regions just above.
    unsafe { claim.finish(2) };
}

/// Zero-copy dequeue of whatever is there, read in place, then released.
fn zero_copy_take(ring: &Ring<u32>, got: &mut Vec<u32>) {
    let mut c = ring.consumer().unwrap();
    let claim = c.dequeue_zc_start(2, Behavior::Variable).unwrap();
    let (first, second) = claim.regions();
    got.extend(first.iter().chain(second.iter()).copied());
    let n = claim.len();
    claim.finish(n);
}

/// Peek enqueue: two slots reserved, filled at finish.
fn peek_produce(ring: &Ring<u32>) {
    let mut p = ring.producer().unwrap();
    let claim = p.enqueue_start(2, Behavior::Fixed).unwrap();
    assert_eq!(claim.len(), 2);
    claim.finish(&[1, 2]);
}

/// Peek dequeue: copy what is there, then take all of it.
fn peek_take(ring: &Ring<u32>, got: &mut Vec<u32>) {
    let mut c = ring.consumer().unwrap();
    let mut out = [0u32; 2];
    let peek = c.dequeue_start(&mut out, Behavior::Variable).unwrap();
    let n = peek.len();
    peek.finish(n);
    got.extend_from_slice(&out[..n as usize]);
}

#[test]
fn zero_copy_sp_sc() {
    two_phase_model(
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        zero_copy_produce,
        zero_copy_take,
    );
}

#[test]
fn zero_copy_hts() {
    two_phase_model(
        RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
        zero_copy_produce,
        zero_copy_take,
    );
}

#[test]
fn peek_sp_sc() {
    two_phase_model(
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        peek_produce,
        peek_take,
    );
}

#[test]
fn peek_hts() {
    two_phase_model(
        RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
        peek_produce,
        peek_take,
    );
}
