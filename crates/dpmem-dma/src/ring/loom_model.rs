//! loom models of the ring's index protocol, run with the worker's real loop
//! ([`Engine::run_worker`]) and its real sleep and wake-up ([`crate::doorbell`]):
//!
//! ```text
//! CARGO_TARGET_DIR=target-loom RUSTFLAGS="--cfg loom" cargo test -p dpmem-dma --release --lib loom
//! ```
//!
//! The "memory" the operations copy into is a set of loom cells: the worker's executor
//! writes an operation's destination cell, and the owner reads it as soon as `completed`
//! reports the operation. loom fails the model if that read is not ordered after the write
//! (a copy reported before its bytes are visible), if a slot's descriptor or status is
//! touched by both sides without an order between them, or if every thread blocks (a lost
//! wake-up). Rings of 2 slots (1 usable) make every operation reuse a slot; indices start
//! just below 65,536, so they wrap during the model.

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use crate::engine::{Engine, Executor};
use crate::ring::descriptor::{Descriptor, OpKind};
use crate::ring::UserCursor;
use crate::status::Status;

/// Operations the owner queues.
const OPS: u64 = 3;
/// The first ring index: the second operation gets 65,535 + 1 = 0.
const FIRST: u16 = u16::MAX - 1;

/// The memory the model's operations write: one cell per operation's destination.
struct Cells(Vec<UnsafeCell<u64>>);

// SAFETY (test only): the cells are accessed under the protocol being checked; loom reports
// any access the protocol does not order.
unsafe impl Sync for Cells {}
// SAFETY (test only): as above.
unsafe impl Send for Cells {}

/// The executor of the model: "copies" an operation's source value into its destination
/// cell, or fails the operation whose source is the marker `FAIL`.
struct ModelCopier {
    cells: Arc<Cells>,
}

const FAIL: u64 = u64::MAX;

impl Executor for ModelCopier {
    fn execute(&mut self, op: &Descriptor) -> Status {
        if op.src == FAIL {
            return Status::InvalidSrcAddr;
        }
        let cell = &self.cells.0[op.dst as usize];
        // SAFETY: the destination belongs to this operation until it is reported.
        cell.with_mut(|p| unsafe { *p = op.src + 100 });
        Status::Successful
    }
}

/// A copy of value `k` into cell `k`; `FAIL` as the value makes it fail.
fn copy_op(value: u64, cell: u64) -> Descriptor {
    Descriptor {
        src: value,
        dst: cell,
        len: 8,
        kind: OpKind::Copy,
        flags: 0,
    }
}

/// The owner: queues `OPS` copies through a ring of `nb_desc` slots, each submitted on its
/// own, and reaps as it goes; checks indices, capacity, and every reported copy's bytes.
fn owner(engine: &Engine, cells: &Cells, nb_desc: u16, fail: Option<u64>) {
    let vchan = &engine.vchans[0];
    let ring = &vchan.ring;
    let mut user = UserCursor::at(FIRST);
    let capacity = nb_desc - 1;
    let mut reported = 0u64;
    let mut errors = 0u64;
    let reap = |user: &mut UserCursor, reported: &mut u64, errors: &mut u64| {
        let mut out = [Status::ErrorUnknown; 1];
        let r = ring.reap_status(user, &mut out);
        if r.count == 1 {
            let k = *reported;
            if Some(k) == fail {
                assert_eq!(out[0], Status::InvalidSrcAddr);
                *errors += 1;
            } else {
                assert_eq!(out[0], Status::Successful);
                // The copy is reported: its bytes must be visible here.
                // SAFETY: loom checks this read is ordered after the worker's write.
                let value = cells.0[k as usize].with(|p| unsafe { *p });
                assert_eq!(value, k + 100, "a reported copy's bytes are not there");
            }
            assert_eq!(user.last_idx(), FIRST.wrapping_add(k as u16));
            *reported += 1;
        } else {
            loom::thread::yield_now();
        }
    };
    for k in 0..OPS {
        let value = if Some(k) == fail { FAIL } else { k };
        loop {
            assert!(ring.capacity(&user) <= capacity);
            match ring.enqueue(&mut user, copy_op(value, k)) {
                Ok(idx) => {
                    // The ring index is a counter from the first, wrapping.
                    assert_eq!(idx, FIRST.wrapping_add(k as u16));
                    break;
                }
                Err(in_flight) => {
                    // Refused exactly when the usable capacity is taken.
                    assert_eq!(in_flight, capacity);
                    reap(&mut user, &mut reported, &mut errors);
                }
            }
        }
        assert_eq!(ring.submit(&mut user), 1);
        engine.doorbell.ring();
    }
    while reported < OPS {
        reap(&mut user, &mut reported, &mut errors);
    }
    assert_eq!(errors, u64::from(fail.is_some()));
    assert_eq!(ring.capacity(&user), capacity);
    assert!(ring.is_idle());
}

fn run(nb_desc: u16, fail: Option<u64>, preemptions: usize) {
    let mut builder = loom::model::Builder::new();
    // Bounded: the full search of three operations on two threads does not end in
    // reasonable time, and the orderings fail within a bound of 2 when weakened.
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        let engine = Arc::new(Engine::new(&[nb_desc], FIRST));
        let cells = Arc::new(Cells((0..OPS).map(|_| UnsafeCell::new(0)).collect()));
        let worker = {
            let engine = Arc::clone(&engine);
            let cells = Arc::clone(&cells);
            loom::thread::spawn(move || {
                let mut copier = ModelCopier { cells };
                engine.run_worker(&mut copier, FIRST);
            })
        };
        owner(&engine, &cells, nb_desc, fail);
        engine.request_stop();
        worker.join().unwrap();
    });
}

#[test]
fn loom_completed_reports_only_copies_whose_bytes_are_visible_across_the_wrap() {
    // One usable slot: every operation reuses the slot of the one before, the third the
    // slot whose failure the owner reset.
    run(2, Some(0), 3);
}

#[test]
fn loom_several_copies_in_flight_and_a_failed_one() {
    // Four slots, three usable: all three copies can be in flight; the second one fails.
    run(4, Some(1), 2);
}
