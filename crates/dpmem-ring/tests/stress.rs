//! Many threads (more than this machine's cores) through one ring, in every
//! multi-thread mode: nothing lost, nothing duplicated, each producer's elements seen in
//! order by every consumer.

use std::sync::atomic::{AtomicBool, Ordering};

use dpmem_ring::{Ring, RingFlags};

const PER_PRODUCER: u64 = 20_000;

/// `producers` threads enqueue `(id << 32) | seq` in bursts of 1..=7, `consumers` threads
/// dequeue in bursts; then every value is checked.
fn stress(flags: RingFlags, producers: u64, consumers: usize) {
    let ring = Ring::<u64>::new("stress", 64, flags).unwrap();
    let done = AtomicBool::new(false);
    let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
        let takers: Vec<_> = (0..consumers)
            .map(|_| {
                let (ring, done) = (&ring, &done);
                s.spawn(move || {
                    let mut c = ring.consumer().unwrap();
                    let mut got = Vec::new();
                    let mut buf = [0u64; 5];
                    loop {
                        let n = c.dequeue_burst(&mut buf).count as usize;
                        got.extend_from_slice(&buf[..n]);
                        if n == 0 {
                            if done.load(Ordering::Acquire) && ring.is_empty() {
                                break;
                            }
                            std::thread::yield_now();
                        }
                    }
                    got
                })
            })
            .collect();
        let putters: Vec<_> = (0..producers)
            .map(|id| {
                let ring = &ring;
                s.spawn(move || {
                    let mut p = ring.producer().unwrap();
                    let mut seq = 0;
                    while seq < PER_PRODUCER {
                        let k = (1 + seq % 7).min(PER_PRODUCER - seq);
                        let batch: Vec<u64> = (seq..seq + k).map(|i| (id << 32) | i).collect();
                        let mut sent = 0;
                        while sent < batch.len() {
                            let m = p.enqueue_burst(&batch[sent..]).count as usize;
                            sent += m;
                            if m == 0 {
                                std::thread::yield_now();
                            }
                        }
                        seq += k;
                    }
                })
            })
            .collect();
        for t in putters {
            t.join().unwrap();
        }
        done.store(true, Ordering::Release);
        takers.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let mut all: Vec<u64> = Vec::new();
    for got in &seen {
        // Per producer, one consumer sees increasing sequence numbers.
        let mut last = vec![None::<u64>; producers as usize];
        for v in got {
            let (id, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
            if let Some(prev) = last[id] {
                assert!(
                    seq > prev,
                    "{flags:?}: producer {id} reordered: {prev} then {seq}"
                );
            }
            last[id] = Some(seq);
        }
        all.extend_from_slice(got);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..producers)
        .flat_map(|id| (0..PER_PRODUCER).map(move |i| (id << 32) | i))
        .collect();
    assert_eq!(
        all.len(),
        expected.len(),
        "{flags:?}: lost or duplicated elements"
    );
    assert!(all == expected, "{flags:?}: lost or duplicated elements");
}

#[test]
fn mp_mc_more_threads_than_cores() {
    stress(RingFlags::NONE, 3, 3);
}

#[test]
fn rts_more_threads_than_cores() {
    stress(RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ, 3, 3);
}

#[test]
fn hts_more_threads_than_cores() {
    stress(RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ, 3, 3);
}

#[test]
fn sp_sc_two_threads() {
    stress(RingFlags::SP_ENQ | RingFlags::SC_DEQ, 1, 1);
}

#[test]
fn mixed_modes_mp_rts_with_mc_hts() {
    stress(RingFlags::MP_RTS_ENQ | RingFlags::MC_HTS_DEQ, 2, 2);
}

#[test]
fn rts_heads_beside_tails_more_threads_than_cores() {
    stress(
        RingFlags::MP_RTS_ENQ
            | RingFlags::MC_RTS_DEQ
            | RingFlags::HEAD_TAIL_TOGETHER
            | RingFlags::CACHED_OTHER_TAIL,
        3,
        3,
    );
}

#[test]
fn mp_mc_other_tail_cached_more_threads_than_cores() {
    stress(RingFlags::CACHED_OTHER_TAIL, 3, 3);
}

#[test]
fn sp_sc_other_tail_cached_two_threads() {
    stress(
        RingFlags::SP_ENQ | RingFlags::SC_DEQ | RingFlags::CACHED_OTHER_TAIL,
        1,
        1,
    );
}

/// The layout of a mempool's ring.
#[test]
fn mp_mc_as_on_a_mempool_ring_more_threads_than_cores() {
    stress(
        RingFlags::HEAD_TAIL_TOGETHER | RingFlags::CACHED_OTHER_TAIL,
        3,
        3,
    );
}
