//! The rings' telemetry commands from the outside: `/ring/info,<name>` on the EAL's socket
//! answers what the process sees of the ring itself, through the tests' own client and through
//! DPDK's `dpdk-telemetry.py`, and asking does not disturb the ring.

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_eal::{Eal, MemzoneFlags, Socket};
use dpmem_ring::named::{self, MemzoneMemory};
use dpmem_ring::{RawRing, RingFlags, RING_NAME_MAX};
use dpmem_testkit::telemetry_client::{
    dpdk_telemetry_py_available, run_dpdk_telemetry_py, TelemetryClient,
};
use serde_json::{json, Value};

/// An EAL on ordinary pages (any user, any machine), under a file prefix no other test uses.
fn no_huge_eal(tag: &str) -> Eal {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = format!(
        "ringtel{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Eal::init([
        "ring-test",
        "--no-huge",
        "-m",
        "16",
        "--file-prefix",
        &prefix,
    ])
    .unwrap()
}

/// What `/ring/info` must say of `ring`, read from the ring and its memzone.
fn expected_info(ring: &RawRing<MemzoneMemory<'_>>) -> Value {
    let zone = ring.memory().memzone();
    json!({
        "name": ring.name(),
        "socket": zone.socket.to_raw(),
        "flags": ring.flags().bits(),
        "producer_type": ring.producer_mode().name(),
        "consumer_type": ring.consumer_mode().name(),
        "size": ring.size(),
        "mask": format!("{:#x}", ring.size() - 1),
        "capacity": ring.capacity(),
        "used_count": ring.count(),
        "mz_name": zone.name,
        "mz_len": zone.len,
        "mz_hugepage_sz": zone.page_size,
        "mz_socket_id": zone.socket.to_raw(),
        "mz_flags": format!("{:#x}", zone.flags.bits()),
        "esize": ring.esize(),
    })
}

#[test]
fn ring_info_is_what_the_process_sees_and_leaves_the_ring_alone() {
    let eal = no_huge_eal("info");
    let rx = named::create::<u64>(&eal, "tel_rx", 1024, Socket::Any, RingFlags::NONE).unwrap();
    let exact = named::create::<u32>(
        &eal,
        "tel_exact",
        100,
        Socket::Any,
        RingFlags::EXACT_SZ | RingFlags::SP_ENQ | RingFlags::SC_DEQ,
    )
    .unwrap();
    let relaxed = named::create::<[u64; 2]>(
        &eal,
        "tel_rts_hts",
        256,
        Socket::Any,
        RingFlags::MP_RTS_ENQ | RingFlags::MC_HTS_DEQ,
    )
    .unwrap();
    let values: Vec<u64> = (0..300).collect();
    assert_eq!(rx.producer().unwrap().enqueue_bulk(&values).count, 300);
    let full: Vec<u32> = (0..100).collect();
    assert_eq!(exact.producer().unwrap().enqueue_bulk(&full).count, 100);
    let pairs: Vec<[u64; 2]> = (0..17).map(|i| [i, i]).collect();
    assert_eq!(relaxed.producer().unwrap().enqueue_bulk(&pairs).count, 17);

    let (client, _) = TelemetryClient::connect(eal.telemetry_socket().unwrap());
    let commands = client.ask("/");
    for command in ["/ring/list", "/ring/info"] {
        assert!(
            commands.as_array().unwrap().contains(&json!(command)),
            "{command}"
        );
    }
    let heads_and_tails = rx.raw().dump();
    let info = client.ask("/ring/info,tel_rx");
    assert_eq!(info, expected_info(rx.raw()));
    assert_eq!(
        (
            &info["used_count"],
            &info["capacity"],
            &info["mask"],
            &info["producer_type"],
            &info["consumer_type"],
            &info["esize"],
            &info["mz_name"]
        ),
        (
            &json!(300),
            &json!(1023),
            &json!("0x3ff"),
            &json!("MP"),
            &json!("MC"),
            &json!(8),
            &json!("RG_tel_rx")
        )
    );
    let info = client.ask("/ring/info,tel_exact");
    assert_eq!(info, expected_info(exact.raw()));
    assert_eq!(
        (
            &info["used_count"],
            &info["capacity"],
            &info["size"],
            &info["producer_type"]
        ),
        (&json!(100), &json!(100), &json!(128), &json!("SP"))
    );
    let info = client.ask("/ring/info,tel_rts_hts");
    assert_eq!(info, expected_info(relaxed.raw()));
    assert_eq!(
        (
            &info["used_count"],
            &info["producer_type"],
            &info["consumer_type"]
        ),
        (&json!(17), &json!("MP_RTS"), &json!("MC_HTS"))
    );

    // Asking moved no head and no tail: the elements come out as they went in.
    assert_eq!(rx.raw().dump(), heads_and_tails);
    let mut out = vec![0u64; 300];
    assert_eq!(rx.consumer().unwrap().dequeue_bulk(&mut out).count, 300);
    assert_eq!(out, values);
    assert_eq!(client.ask("/ring/info,tel_rx")["used_count"], json!(0));
    let mut some = vec![0u32; 40];
    assert_eq!(exact.consumer().unwrap().dequeue_bulk(&mut some).count, 40);
    assert_eq!(client.ask("/ring/info,tel_exact")["used_count"], json!(60));

    // DPDK's answers: an empty dictionary for a name no ring has; null without a name, and
    // for a name longer than any ring's.
    assert_eq!(client.ask("/ring/info,no_such_ring"), json!({}));
    assert_eq!(
        client.ask(&format!("/ring/info,{}", "x".repeat(RING_NAME_MAX))),
        json!({})
    );
    assert_eq!(
        client.ask(&format!("/ring/info,{}", "x".repeat(RING_NAME_MAX + 1))),
        Value::Null
    );
    assert_eq!(client.ask("/ring/info"), Value::Null);
    assert_eq!(client.ask("/ring/info,"), Value::Null);

    // A memzone of the rings' prefix that holds no ring is listed (the list is the memzone
    // table's) but has no info.
    let not_a_ring = eal
        .memzones()
        .reserve("RG_not_a_ring", 4096, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    assert!(client
        .ask("/ring/list")
        .as_array()
        .unwrap()
        .contains(&json!("not_a_ring")));
    assert_eq!(client.ask("/ring/info,not_a_ring"), json!({}));
    // SAFETY: nothing else knows this memzone.
    unsafe { eal.memzones().free(&not_a_ring) }.unwrap();

    named::free(&eal, rx).unwrap();
    assert_eq!(client.ask("/ring/info,tel_rx"), json!({}));
    named::free(&eal, exact).unwrap();
    named::free(&eal, relaxed).unwrap();
}

#[test]
fn dpdk_telemetry_py_reads_ring_info() {
    if !dpdk_telemetry_py_available("dpdk_telemetry_py_reads_ring_info") {
        return;
    }
    let eal = no_huge_eal("dpdk_client");
    let ring = named::create::<u64>(
        &eal,
        "py_ring",
        64,
        Socket::Any,
        RingFlags::SP_ENQ | RingFlags::MC_RTS_DEQ,
    )
    .unwrap();
    let values: Vec<u64> = (0..21).collect();
    assert_eq!(ring.producer().unwrap().enqueue_bulk(&values).count, 21);
    let answers = run_dpdk_telemetry_py(
        &eal.options().file_prefix,
        &["/ring/info,py_ring", "/ring/info,nothing_here"],
    );
    assert_eq!(
        answers[0],
        json!({ "/ring/info": expected_info(ring.raw()) })
    );
    assert_eq!(answers[0]["/ring/info"]["used_count"], json!(21));
    assert_eq!(answers[0]["/ring/info"]["producer_type"], json!("SP"));
    assert_eq!(answers[0]["/ring/info"]["consumer_type"], json!("MC_RTS"));
    assert_eq!(answers[1], json!({ "/ring/info": {} }));
    named::free(&eal, ring).unwrap();
}
