//! A real secondary process (this test binary re-executed) allocates packet buffers from the
//! primary's pools, chains and clones them, and hands them over a named ring; the primary
//! checks and frees them, and both pools come back whole.

use dpmem_eal::{Eal, ProcessRole, Socket};
use dpmem_mbuf::{Mbuf, MbufHeader, PktmbufPool};
use dpmem_ring::{named, RingFlags};

mod common;

const PACKETS: &str = "mp_packets";
const CLONES: &str = "mp_clones";
const HANDOFF: &str = "mp_handoff";
/// Packets the secondary hands over: each a two-segment chain and a clone of it.
const PAIRS: usize = 20;

fn payload(i: usize) -> Vec<u8> {
    format!("packet {i} made by the secondary, ").into_bytes()
}

#[test]
fn a_secondary_allocates_chains_and_clones_and_the_primary_frees() {
    if !common::hugepages_usable(16) {
        return;
    }
    let prefix = format!("mbmp{}_", std::process::id());
    let eal = Eal::init(["primary", "-l", "0", "-m", "32", "--file-prefix", &prefix]).unwrap();
    let packets = PktmbufPool::builder(PACKETS, 511)
        .cache_size(32)
        .priv_size(16)
        .create(&eal)
        .unwrap();
    let clones = PktmbufPool::builder(CLONES, 255)
        .cache_size(16)
        .data_room(0)
        .create(&eal)
        .unwrap();
    // Buffer addresses go from the secondary to the primary over this ring.
    let ring = named::create::<usize>(&eal, HANDOFF, 128, Socket::Any, RingFlags::empty()).unwrap();
    dpmem_testkit::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_body",
        |c| {
            c.env("DPMEM_MBUF_TEST_PREFIX", &prefix);
        },
    );
    let mut consumer = ring.consumer().unwrap();
    let mut received = 0;
    while let Some(at) = consumer.dequeue() {
        let header = core::ptr::NonNull::new(at as *mut MbufHeader).expect("a buffer address");
        // SAFETY: the secondary gave up its reference on this packet when it enqueued the
        // address; its segments are of `packets` and `clones`, open here.
        let packet: Mbuf<'_> = unsafe { Mbuf::from_raw(header, &packets) };
        let i = received / 2;
        let mut expected = payload(i);
        expected.extend_from_slice(b"tail");
        assert_eq!(packet.to_vec(), expected, "packet {received}");
        assert_eq!(packet.nb_segs(), 2);
        assert_eq!(packet.check(), Ok(()));
        received += 1;
    }
    assert_eq!(received, 2 * PAIRS);
    // Every buffer came home exactly once: clones released the chains' segments they shared.
    assert_eq!(packets.avail_count(), packets.size());
    assert_eq!(clones.avail_count(), clones.size());
    packets.audit().unwrap();
    clones.audit().unwrap();
    drop(consumer);
    named::free(&eal, ring).unwrap();
}

#[test]
#[ignore = "run by a_secondary_allocates_chains_and_clones_and_the_primary_frees in a child process"]
fn secondary_body() {
    let prefix = std::env::var("DPMEM_MBUF_TEST_PREFIX").expect("run by the primary test");
    // Lcore id 1 (the primary is lcore 0: per-lcore caches are per id), on the CPU the
    // primary's affinity left us.
    let eal = Eal::init([
        "secondary",
        "--proc-type=secondary",
        "--lcores",
        "1@0",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    let packets = PktmbufPool::lookup(&eal, PACKETS).unwrap();
    let clones = PktmbufPool::lookup(&eal, CLONES).unwrap();
    assert_eq!(packets.priv_size(), 16);
    assert_eq!(clones.data_room(), 0);
    // SAFETY: the primary made the ring with elements of `usize`.
    let ring = unsafe { named::lookup::<usize>(&eal, HANDOFF) }.unwrap();
    let mut producer = ring.producer().unwrap();
    for i in 0..PAIRS {
        let mut packet = packets.alloc_from_slice(&payload(i)).unwrap();
        let mut tail = packets.alloc().unwrap();
        tail.extend_from_slice(b"tail").unwrap();
        packet.chain(tail).unwrap();
        let clone = packet.clone_in(&clones).unwrap();
        // Freed here, in the secondary: a clone of a clone, to show frees work here too.
        drop(clone.clone_in(&clones).unwrap());
        for handed in [packet, clone] {
            let at = handed.into_raw().as_ptr() as usize;
            producer.enqueue(at).expect("the ring has room");
        }
    }
    println!("secondary handed over {} packets", 2 * PAIRS);
}
