//! Named rings in memzones: created, found and freed by name, in this process and from a real
//! secondary process (this test binary re-executed).

use dpmem_eal::{Eal, ErrorKind, ProcessRole, Socket};
use dpmem_ring::named::{self, NamedRingError};
use dpmem_ring::{RingError, RingFlags};

fn prefix(tag: &str) -> String {
    format!("ring{}_{tag}_", std::process::id())
}

fn eal(extra: &[&str]) -> Eal {
    let args: Vec<&str> = std::iter::once("ring-test")
        .chain(extra.iter().copied())
        .collect();
    Eal::init(args).unwrap()
}

#[test]
fn a_named_ring_is_found_by_name_and_freed() {
    let eal = eal(&["--no-huge", "-m", "16", "--file-prefix", &prefix("named")]);
    let ring =
        named::create::<u64>(&eal, "rx_queue_0", 1024, Socket::Node(0), RingFlags::NONE).unwrap();
    assert_eq!(ring.capacity(), 1023);
    let zone = ring.raw().memory().memzone().clone();
    assert_eq!(zone.name, "RG_rx_queue_0");
    assert_eq!(zone.va % 128, 0);
    let mut producer = ring.producer().unwrap();
    for v in 0..100u64 {
        producer.enqueue(v).unwrap();
    }
    drop(producer);

    // SAFETY: the ring was created for u64 just above.
    let found = unsafe { named::lookup::<u64>(&eal, "rx_queue_0") }.unwrap();
    assert_eq!(
        found.raw().memory().memzone().va,
        zone.va,
        "the same memory, not a copy"
    );
    assert_eq!(found.count(), 100);
    let mut consumer = found.consumer().unwrap();
    assert_eq!(consumer.dequeue(), Some(0));
    assert_eq!(ring.count(), 99, "both handles see one ring");
    drop(consumer);

    // A taken name, a name too long for RG_ + 28 bytes, an element size that does not match.
    let taken =
        named::create::<u64>(&eal, "rx_queue_0", 64, Socket::Node(0), RingFlags::NONE).unwrap_err();
    assert_eq!(taken.memzone_kind(), Some(ErrorKind::Exist), "{taken}");
    let long = "n".repeat(29);
    let err = named::create::<u64>(&eal, &long, 64, Socket::Node(0), RingFlags::NONE).unwrap_err();
    assert!(
        matches!(err, NamedRingError::Ring(RingError::NameTooLong { .. })),
        "{err}"
    );
    // SAFETY: the lookup must fail on the element size before any element is read.
    let err = unsafe { named::lookup::<[u64; 2]>(&eal, "rx_queue_0") }.unwrap_err();
    assert!(
        matches!(
            err,
            NamedRingError::Ring(RingError::InvalidElementSize { .. })
        ),
        "{err}"
    );
    // A bad ring (count 0) leaves no memzone behind.
    let before = eal.memzones().count();
    assert!(named::create::<u64>(&eal, "bad", 0, Socket::Node(0), RingFlags::NONE).is_err());
    assert_eq!(eal.memzones().count(), before);

    drop(found);
    named::free(&eal, ring).unwrap();
    // SAFETY: nothing is read; the name no longer exists.
    let gone = unsafe { named::lookup::<u64>(&eal, "rx_queue_0") };
    assert!(matches!(gone, Err(NamedRingError::NotFound(_))));
    // The name can be used again.
    let again =
        named::create::<u64>(&eal, "rx_queue_0", 64, Socket::Node(0), RingFlags::NONE).unwrap();
    named::free(&eal, again).unwrap();
}

fn hugepages_usable() -> bool {
    dpmem_testkit::hugepages_available("named ring hugepage test", 8)
}

#[test]
fn a_secondary_process_dequeues_what_the_primary_enqueued() {
    if !hugepages_usable() {
        return;
    }
    let prefix = prefix("mp");
    let eal = eal(&["-m", "8", "--file-prefix", &prefix]);
    let ring = named::create::<u64>(
        &eal,
        "to_secondary",
        256,
        Socket::Node(0),
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
    )
    .unwrap();
    let mut producer = ring.producer().unwrap();
    for v in 1000..1100u64 {
        producer.enqueue(v).unwrap();
    }
    drop(producer);
    dpmem_testkit::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_ring_body",
        |c| {
            c.env("DPMEM_RING_TEST_PREFIX", &prefix);
        },
    );
    // The secondary took 60 elements and put back one reply.
    assert_eq!(ring.count(), 41);
    let mut consumer = ring.consumer().unwrap();
    let rest: Vec<u64> = std::iter::from_fn(|| consumer.dequeue()).collect();
    assert_eq!(rest[..40], (1060..1100).collect::<Vec<u64>>()[..]);
    assert_eq!(rest[40], 0xEE);
    drop(consumer);
    named::free(&eal, ring).unwrap();
}

#[test]
#[ignore = "run by a_secondary_process_dequeues_what_the_primary_enqueued in a child process"]
fn secondary_ring_body() {
    let prefix = std::env::var("DPMEM_RING_TEST_PREFIX").expect("run by the multi-process test");
    let eal = eal(&["--proc-type=secondary", "--file-prefix", &prefix]);
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    // SAFETY: the primary created this ring for u64.
    let ring = unsafe { named::lookup::<u64>(&eal, "to_secondary") }.unwrap();
    let mut consumer = ring.consumer().unwrap();
    let got: Vec<u64> = (0..60).map(|_| consumer.dequeue().unwrap()).collect();
    assert_eq!(got, (1000..1060).collect::<Vec<u64>>());
    drop(consumer);
    ring.producer().unwrap().enqueue(0xEE).unwrap();
}
