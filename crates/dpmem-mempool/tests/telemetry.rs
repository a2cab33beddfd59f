//! The pools' and rings' telemetry commands, from the outside: `/mempool/list`,
//! `/mempool/info,<name>` and `/ring/list` on the EAL's socket answer what the process sees
//! itself, through the tests' own client and through DPDK's `dpdk-telemetry.py`.

mod common;

use std::ptr::null_mut;

use common::no_huge_eal;
use dpmem_eal::{Eal, Socket};
use dpmem_mempool::{Mempool, MempoolConfig};
use dpmem_ring::{named, RingFlags};
use dpmem_testkit::telemetry_client::{
    dpdk_telemetry_py_available, run_dpdk_telemetry_py, TelemetryClient,
};
use serde_json::{json, Value};

fn pool_names(eal: &Eal) -> Vec<String> {
    let mut names = Vec::new();
    Mempool::walk(eal, |pool| names.push(pool.name().to_owned()));
    names
}

fn ring_names(eal: &Eal) -> Vec<String> {
    eal.memzones()
        .list()
        .into_iter()
        .filter_map(|zone| {
            zone.name
                .strip_prefix(named::MEMZONE_PREFIX)
                .map(str::to_owned)
        })
        .collect()
}

/// What `/mempool/info` must say of `pool`, read from the pool itself.
fn expected_info(pool: &Mempool<'_>) -> Value {
    let obj = pool.obj_size();
    let zone = pool.memzone();
    let ops_index = dpmem_mempool::handler_names()
        .iter()
        .position(|h| *h == pool.handler_name())
        .unwrap();
    json!({
        "name": pool.name(),
        "flags": pool.flags().bits(),
        "socket_id": pool.socket().to_raw(),
        "size": pool.size(),
        "cache_size": pool.cache_size(),
        "elt_size": obj.elt_size,
        "header_size": obj.header_size,
        "trailer_size": obj.trailer_size,
        "private_data_size": pool.private_data_size(),
        "ops_index": ops_index,
        "populated_size": pool.populated_size(),
        "mz_name": zone.name,
        "mz_len": zone.len,
        "mz_hugepage_sz": zone.page_size,
        "mz_socket_id": zone.socket.to_raw(),
        "mz_flags": zone.flags.bits(),
        "handler": pool.handler_name(),
        "avail_count": pool.avail_count(),
        "in_use_count": pool.in_use_count(),
    })
}

#[test]
fn pools_and_rings_are_what_the_process_sees() {
    let eal = no_huge_eal("telemetry");
    let frames = MempoolConfig::new("tel_frames", 1023, 2048)
        .cache_size(32)
        .private_data_size(100)
        .create(&eal)
        .unwrap();
    let small = MempoolConfig::new("tel_small", 63, 60)
        .create(&eal)
        .unwrap();
    let ring = named::create::<u64>(&eal, "tel_ring", 64, Socket::Any, RingFlags::empty()).unwrap();
    let mut out = [null_mut(); 10];
    frames.get_bulk(&mut out).unwrap();

    let (client, _) = TelemetryClient::connect(eal.telemetry_socket().unwrap());
    let commands = client.ask("/");
    for command in ["/mempool/list", "/mempool/info", "/ring/list"] {
        assert!(
            commands.as_array().unwrap().contains(&json!(command)),
            "{command}"
        );
    }
    let names = pool_names(&eal);
    assert!(names.contains(&"tel_frames".to_owned()) && names.contains(&"tel_small".to_owned()));
    assert_eq!(client.ask("/mempool/list"), json!(names));
    let info = client.ask("/mempool/info,tel_frames");
    assert_eq!(info, expected_info(&frames));
    assert_eq!(info["in_use_count"], json!(10));
    assert_eq!(client.ask("/mempool/info,tel_small"), expected_info(&small));
    // DPDK's answers: an empty dictionary for a name no pool has, null without a name.
    assert_eq!(client.ask("/mempool/info,no_such_pool"), json!({}));
    assert_eq!(
        client.ask(&format!("/mempool/info,{}", "x".repeat(100))),
        json!({})
    );
    assert_eq!(client.ask("/mempool/info"), Value::Null);
    assert_eq!(client.ask("/mempool/info,"), Value::Null);

    let rings = ring_names(&eal);
    assert!(rings.contains(&"tel_ring".to_owned()), "{rings:?}");
    assert_eq!(client.ask("/ring/list"), json!(rings));

    // SAFETY: the objects came from this pool and go back once.
    unsafe { frames.put_bulk(&out) };
    assert_eq!(
        client.ask("/mempool/info,tel_frames")["in_use_count"],
        json!(0)
    );
    named::free(&eal, ring).unwrap();
    small.free().unwrap();
    assert!(!client
        .ask("/ring/list")
        .as_array()
        .unwrap()
        .contains(&json!("tel_ring")));
    assert_eq!(client.ask("/mempool/list"), json!(pool_names(&eal)));
    assert_eq!(client.ask("/mempool/info,tel_small"), json!({}));
}

#[test]
fn dpdk_telemetry_py_reads_pools_and_rings() {
    if !dpdk_telemetry_py_available("dpdk_telemetry_py_reads_pools_and_rings") {
        return;
    }
    let eal = no_huge_eal("dpdk_client");
    let pool = MempoolConfig::new("py_pool", 511, 256)
        .cache_size(16)
        .create(&eal)
        .unwrap();
    let ring = named::create::<u64>(&eal, "py_ring", 32, Socket::Any, RingFlags::empty()).unwrap();
    let mut out = [null_mut(); 7];
    pool.get_bulk(&mut out).unwrap();
    let answers = run_dpdk_telemetry_py(
        &eal.options().file_prefix,
        &["/mempool/list", "/mempool/info,py_pool", "/ring/list"],
    );
    assert_eq!(answers[0], json!({ "/mempool/list": pool_names(&eal) }));
    assert_eq!(answers[1], json!({ "/mempool/info": expected_info(&pool) }));
    assert_eq!(answers[1]["/mempool/info"]["in_use_count"], json!(7));
    assert_eq!(answers[2], json!({ "/ring/list": ring_names(&eal) }));
    // SAFETY: the objects came from this pool and go back once.
    unsafe { pool.put_bulk(&out) };
    named::free(&eal, ring).unwrap();
}
