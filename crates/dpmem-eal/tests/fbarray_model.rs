//! The occupancy array against a `Vec<bool>` model, plus sharing between views and threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use dpmem_eal::fbarray::{FbArray, FbArrayError};
use proptest::prelude::*;

/// Heap memory standing in for the shared mapping: 8-aligned because it is made of `u64`s,
/// and filled with ones so that `init` is seen to clear it.
fn buffer(len: u32) -> Vec<u64> {
    vec![u64::MAX; FbArray::bytes_needed(len) / 8]
}

fn init(buf: &mut [u64], len: u32) -> FbArray {
    assert!(buf.len() * 8 >= FbArray::bytes_needed(len));
    // SAFETY: `buf` is 8-aligned, large enough (asserted), outlives the view in every test,
    // and nothing else touches it during init.
    unsafe { FbArray::init(buf.as_mut_ptr().cast(), len) }
}

/// The simplest possible occupancy array: `true` = used.
struct Model(Vec<bool>);

impl Model {
    fn len(&self) -> u32 {
        self.0.len() as u32
    }

    fn is(&self, i: u32, used: bool) -> bool {
        self.0[i as usize] == used
    }

    fn next(&self, start: u32, used: bool) -> Option<u32> {
        (start..self.len()).find(|&i| self.is(i, used))
    }

    fn prev(&self, start: u32, used: bool) -> Option<u32> {
        if start >= self.len() {
            return None;
        }
        (0..=start).rev().find(|&i| self.is(i, used))
    }

    fn contig(&self, start: u32, used: bool) -> u32 {
        (start..self.len())
            .take_while(|&i| self.is(i, used))
            .count() as u32
    }

    fn rev_contig(&self, start: u32, used: bool) -> u32 {
        if start >= self.len() {
            return 0;
        }
        (0..=start).rev().take_while(|&i| self.is(i, used)).count() as u32
    }

    fn next_n(&self, start: u32, n: u32, used: bool) -> Option<u32> {
        if start >= self.len() || n == 0 || n > self.len() {
            return None;
        }
        (start..self.len())
            .filter(|&i| i + n <= self.len())
            .find(|&i| (i..i + n).all(|j| self.is(j, used)))
    }

    fn prev_n(&self, start: u32, n: u32, used: bool) -> Option<u32> {
        if start >= self.len() || n == 0 || n > self.len() || n > start + 1 {
            return None;
        }
        (0..=start + 1 - n)
            .rev()
            .find(|&i| (i..i + n).all(|j| self.is(j, used)))
    }

    /// DPDK's rule: runs within `start..len`, the first one clipped at `start`; ties go to
    /// the lowest.
    fn biggest(&self, start: u32, used: bool) -> Option<(u32, u32)> {
        let mut best = None;
        let mut best_len = 0;
        let mut i = start;
        while i < self.len() {
            let run = self.contig(i, used);
            if run > best_len {
                best = Some((i, run));
                best_len = run;
            }
            i += run.max(1);
        }
        best
    }

    /// Runs within `0..=start`, the first one clipped at `start`; ties go to the highest.
    fn rev_biggest(&self, start: u32, used: bool) -> Option<(u32, u32)> {
        if start >= self.len() {
            return None;
        }
        let mut best = None;
        let mut best_len = 0;
        let mut i = start as i64;
        while i >= 0 {
            let run = self.rev_contig(i as u32, used);
            if run > best_len {
                best = Some((i as u32 + 1 - run, run));
                best_len = run;
            }
            i -= run.max(1) as i64;
        }
        best
    }

    fn runs_used(&self) -> Vec<(u32, u32)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while let Some(first) = self.next(i, true) {
            let run = self.contig(first, true);
            runs.push((first, run));
            i = first + run;
        }
        runs
    }
}

/// Every search, for both kinds, at `start` with run length `n`.
fn check_searches(a: &FbArray, m: &Model, start: u32, n: u32) {
    for used in [false, true] {
        let what = if used { "used" } else { "free" };
        let ctx = format!("{what} start={start} n={n}");
        let (next, prev, next_n, prev_n) = if used {
            (
                a.find_next_used(start),
                a.find_prev_used(start),
                a.find_next_n_used(start, n),
                a.find_prev_n_used(start, n),
            )
        } else {
            (
                a.find_next_free(start),
                a.find_prev_free(start),
                a.find_next_n_free(start, n),
                a.find_prev_n_free(start, n),
            )
        };
        assert_eq!(next, m.next(start, used), "next {ctx}");
        assert_eq!(prev, m.prev(start, used), "prev {ctx}");
        assert_eq!(next_n, m.next_n(start, n, used), "next_n {ctx}");
        assert_eq!(prev_n, m.prev_n(start, n, used), "prev_n {ctx}");
        let (contig, rev_contig, biggest, rev_biggest) = if used {
            (
                a.find_contig_used(start),
                a.find_rev_contig_used(start),
                a.find_biggest_used(start),
                a.find_rev_biggest_used(start),
            )
        } else {
            (
                a.find_contig_free(start),
                a.find_rev_contig_free(start),
                a.find_biggest_free(start),
                a.find_rev_biggest_free(start),
            )
        };
        assert_eq!(contig, m.contig(start, used), "contig {ctx}");
        assert_eq!(rev_contig, m.rev_contig(start, used), "rev_contig {ctx}");
        assert_eq!(biggest, m.biggest(start, used), "biggest {ctx}");
        assert_eq!(rev_biggest, m.rev_biggest(start, used), "rev_biggest {ctx}");
    }
}

fn check_state(a: &FbArray, m: &Model) {
    assert_eq!(a.len(), m.len());
    assert_eq!(a.count_used(), m.0.iter().filter(|&&u| u).count() as u32);
    let used: Vec<u32> = (0..m.len()).filter(|&i| m.0[i as usize]).collect();
    assert_eq!(a.iter_used().collect::<Vec<_>>(), used);
    assert_eq!(a.runs_used().collect::<Vec<_>>(), m.runs_used());
}

#[derive(Debug, Clone)]
enum Op {
    Set(u32),
    Free(u32),
    SetRange(u32, u32),
    FreeRange(u32, u32),
    Query(u32, u32),
}

/// Indices are raw numbers reduced modulo `len + 2`, so some fall out of range.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u32>().prop_map(Op::Set),
        2 => any::<u32>().prop_map(Op::Free),
        1 => (any::<u32>(), 0u32..150).prop_map(|(s, l)| Op::SetRange(s, l)),
        1 => (any::<u32>(), 0u32..150).prop_map(|(s, l)| Op::FreeRange(s, l)),
        3 => (any::<u32>(), 0u32..140).prop_map(|(s, n)| Op::Query(s, n)),
    ]
}

fn apply_one(a: &FbArray, m: &mut Model, idx: u32, used: bool) {
    let got = if used {
        a.set_used(idx)
    } else {
        a.set_free(idx)
    };
    let want = if idx >= m.len() {
        Err(FbArrayError::OutOfRange { idx, len: m.len() })
    } else if m.0[idx as usize] == used {
        Err(if used {
            FbArrayError::AlreadyUsed(idx)
        } else {
            FbArrayError::AlreadyFree(idx)
        })
    } else {
        m.0[idx as usize] = used;
        Ok(())
    };
    assert_eq!(got, want, "set {idx} used={used}");
    if idx < m.len() {
        assert_eq!(a.is_used(idx), Ok(m.0[idx as usize]));
    } else {
        assert!(a.is_used(idx).is_err());
    }
}

proptest! {
    // No regression file: this is an integration test, which proptest cannot place next
    // to a lib.rs; a failure prints the minimal case instead.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_model(len in 1u32..300, ops in prop::collection::vec(op(), 1..60), n in 1u32..80) {
        let mut buf = buffer(len);
        let a = init(&mut buf, len);
        let mut m = Model(vec![false; len as usize]);
        let modulo = len + 2;
        for op in ops {
            match op {
                Op::Set(i) => apply_one(&a, &mut m, i % modulo, true),
                Op::Free(i) => apply_one(&a, &mut m, i % modulo, false),
                Op::SetRange(s, l) | Op::FreeRange(s, l) => {
                    let used = matches!(op, Op::SetRange(..));
                    let s = s % modulo;
                    for i in s..(s + l).min(modulo) {
                        apply_one(&a, &mut m, i, used);
                    }
                }
                Op::Query(s, n) => check_searches(&a, &m, s % modulo, n),
            }
            check_state(&a, &m);
        }
        // Finally every start, including the first out-of-range one, with a short and a
        // random run length.
        for start in 0..=len {
            check_searches(&a, &m, start, 1);
            check_searches(&a, &m, start, n);
        }
    }
}

#[test]
fn init_and_attach_views_see_the_same_slots() {
    let len = 200;
    let mut buf = buffer(len);
    let first = init(&mut buf, len);
    // SAFETY: `buf` holds the array initialised just above and outlives both views.
    let second = unsafe { FbArray::attach(buf.as_mut_ptr().cast()) };
    assert_eq!(second.len(), len);
    for i in [0, 63, 64, 65, 127, 199] {
        first.set_used(i).unwrap();
    }
    second.set_used(100).unwrap();
    assert_eq!(first.count_used(), 7);
    assert_eq!(second.count_used(), 7);
    assert_eq!(
        second.iter_used().collect::<Vec<_>>(),
        first.iter_used().collect::<Vec<_>>()
    );
    assert_eq!(second.find_next_n_used(0, 3), Some(63));
    assert_eq!(second.set_used(63), Err(FbArrayError::AlreadyUsed(63)));
    second.set_free(64).unwrap();
    assert_eq!(first.is_used(64), Ok(false));
    assert_eq!(first.find_next_n_used(0, 2), None);
    assert_eq!(first.count_used(), 6);
}

#[test]
fn concurrent_reader_sees_counts_within_bounds() {
    const LEN: u32 = 1000;
    const ROUNDS: u32 = 50;
    let mut buf = buffer(LEN);
    let array = init(&mut buf, LEN);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                for i in 0..LEN {
                    array.set_used(i).unwrap();
                }
                for i in (0..LEN).rev() {
                    array.set_free(i).unwrap();
                }
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) || reads == 0 {
                let count = array.count_used();
                assert!(count <= LEN, "count {count} beyond {LEN}");
                let seen = array.iter_used().count() as u32;
                assert!(seen <= LEN);
                // Words are read one at a time, so a run is not a snapshot (a search may
                // see word 0 empty and word 1 refilled), but it always stays in range.
                if let Some((first, run)) = array.runs_used().next() {
                    assert!(first < LEN && run >= 1 && run <= LEN - first);
                }
                if let Some(free) = array.find_next_free(0) {
                    assert!(free < LEN);
                }
                reads += 1;
            }
        });
    });
    assert_eq!(array.count_used(), 0);
    assert_eq!(array.iter_used().count(), 0);
}

#[test]
fn a_slot_seen_used_shows_what_was_published_before_it() {
    const LEN: u32 = 512;
    let mut buf = buffer(LEN);
    let array = init(&mut buf, LEN);
    // Stands in for the memseg records that sit next to the mask in the real list.
    let records: Arc<Vec<AtomicU64>> = Arc::new((0..LEN).map(|_| AtomicU64::new(0)).collect());
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..LEN {
                records[i as usize].store(u64::from(i) + 1, Ordering::Relaxed);
                array.set_used(i).unwrap();
            }
        });
        s.spawn(|| {
            let mut seen = 0;
            while seen < LEN {
                if array.is_used(seen) == Ok(true) {
                    assert_eq!(
                        records[seen as usize].load(Ordering::Relaxed),
                        u64::from(seen) + 1
                    );
                    seen += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
    });
    assert_eq!(array.count_used(), LEN);
}
