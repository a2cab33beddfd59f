//! The packet buffer pools' telemetry commands from the outside: `/dpmem/mbuf_pools` and
//! `/dpmem/mbuf_pool_info,<name>` on the EAL's socket answer what the process sees of its
//! pools, through the tests' own client and through DPDK's `dpdk-telemetry.py`.

mod common;

use common::no_huge_eal;
use dpmem_eal::{Eal, MemzoneFlags, Socket};
use dpmem_mbuf::dynamic::{self, DynField, DynFlag};
use dpmem_mbuf::{ExtMem, PktmbufPool, DEFAULT_BUF_SIZE};
use dpmem_mempool::{Mempool, MempoolConfig};
use dpmem_testkit::telemetry_client::{
    dpdk_telemetry_py_available, run_dpdk_telemetry_py, TelemetryClient,
};
use serde_json::{json, Map, Value};

/// The names of the mempools that hold packet buffers, as the process sees them.
fn packet_pool_names(eal: &Eal) -> Vec<String> {
    let mut names = Vec::new();
    Mempool::walk(eal, |pool| {
        if PktmbufPool::describe(pool).is_some() {
            names.push(pool.name().to_owned());
        }
    });
    names
}

/// What `/dpmem/mbuf_pool_info` must say of `pool`, read from the pool itself.
fn expected_info(eal: &Eal, pool: &PktmbufPool<'_>) -> Value {
    let mempool = pool.mempool();
    let caches = mempool.lcore_cache_counts();
    let lcore_caches: Map<String, Value> = caches
        .iter()
        .map(|&(lcore, count)| (lcore.to_string(), json!(count)))
        .collect();
    let registered = dynamic::registered(eal).unwrap();
    let fields: Vec<String> = registered.fields.into_iter().map(|f| f.name).collect();
    let flags: Vec<String> = registered.flags.into_iter().map(|f| f.name).collect();
    json!({
        "name": pool.name(),
        "socket_id": mempool.socket().to_raw(),
        "size": pool.size(),
        "elt_size": mempool.elt_size(),
        "data_room_size": pool.data_room(),
        "priv_size": pool.priv_size(),
        "flags": pool.flags(),
        "pinned_ext_buf": u32::from(pool.is_pinned()),
        "cache_size": mempool.cache_size(),
        "avail_count": pool.avail_count(),
        "in_use_count": pool.in_use_count(),
        "total_cache_count": caches.iter().map(|&(_, count)| count).sum::<u32>(),
        "lcore_cache_counts": lcore_caches,
        "dynamic_fields": fields,
        "dynamic_flags": flags,
    })
}

#[test]
fn packet_pools_are_what_the_process_sees() {
    let eal = no_huge_eal("telemetry");
    let pkts = PktmbufPool::builder("tel_pkts", 1023)
        .cache_size(32)
        .priv_size(16)
        .create(&eal)
        .unwrap();
    let plain = MempoolConfig::new("tel_plain", 63, 256)
        .private_data_size(64)
        .create(&eal)
        .unwrap();
    let ext_zone = eal
        .memzones()
        .reserve("tel_ext", 64 * 1024, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    // SAFETY: the memzone is this pool's alone, at the same address in every process, and
    // outlives the pool (freed below, after it).
    let pinned = unsafe {
        PktmbufPool::builder("tel_pinned", 63)
            .data_room(1024)
            .create_pinned(&eal, &[ExtMem::from_memzone(&ext_zone, 1024)])
    }
    .unwrap();
    let timestamp = DynField::<u64>::register(&eal, "tel_rx_timestamp").unwrap();
    let stamped = DynFlag::register(&eal, "tel_rx_stamped").unwrap();
    // The test thread called Eal::init, so it is lcore 0 and allocates through its cache.
    let packets: Vec<_> = (0..10).map(|_| pkts.alloc().unwrap()).collect();
    timestamp.set(packets[0].header(), 7);
    stamped.set(packets[0].header());
    let pinned_packets: Vec<_> = (0..3).map(|_| pinned.alloc().unwrap()).collect();

    let (client, _) = TelemetryClient::connect(eal.telemetry_socket().unwrap());
    let commands = client.ask("/");
    for command in ["/dpmem/mbuf_pools", "/dpmem/mbuf_pool_info"] {
        assert!(
            commands.as_array().unwrap().contains(&json!(command)),
            "{command}"
        );
    }
    let names = packet_pool_names(&eal);
    assert!(
        names.contains(&"tel_pkts".to_owned()) && names.contains(&"tel_pinned".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"tel_plain".to_owned()));
    assert_eq!(client.ask("/dpmem/mbuf_pools"), json!(names));

    let info = client.ask("/dpmem/mbuf_pool_info,tel_pkts");
    assert_eq!(info, expected_info(&eal, &pkts));
    assert_eq!(info["in_use_count"], json!(10));
    assert_eq!(info["data_room_size"], json!(DEFAULT_BUF_SIZE));
    assert_eq!(info["priv_size"], json!(16));
    assert_eq!(info["pinned_ext_buf"], json!(0));
    let cached = pkts.mempool().lcore_cache_counts();
    assert!(!cached.is_empty(), "lcore 0's cache holds buffers");
    assert_eq!(
        info["lcore_cache_counts"]["0"],
        json!(pkts.mempool().lcore_cache_len())
    );
    assert_eq!(info["dynamic_fields"], json!(["tel_rx_timestamp"]));
    assert_eq!(info["dynamic_flags"], json!(["tel_rx_stamped"]));

    let info = client.ask("/dpmem/mbuf_pool_info,tel_pinned");
    assert_eq!(info, expected_info(&eal, &pinned));
    assert_eq!(
        (
            &info["pinned_ext_buf"],
            &info["data_room_size"],
            &info["in_use_count"],
            &info["lcore_cache_counts"]
        ),
        (&json!(1), &json!(1024), &json!(3), &json!({}))
    );

    // A mempool of other objects, a name no pool has: an empty dictionary; no name: null.
    assert_eq!(client.ask("/dpmem/mbuf_pool_info,tel_plain"), json!({}));
    assert_eq!(client.ask("/dpmem/mbuf_pool_info,no_such_pool"), json!({}));
    assert_eq!(client.ask("/dpmem/mbuf_pool_info"), Value::Null);
    assert_eq!(client.ask("/dpmem/mbuf_pool_info,"), Value::Null);

    drop(packets);
    assert_eq!(
        client.ask("/dpmem/mbuf_pool_info,tel_pkts")["in_use_count"],
        json!(0)
    );
    drop(pinned_packets);
    pinned.free().unwrap();
    // SAFETY: the pool on this memory is freed.
    unsafe { eal.memzones().free(&ext_zone) }.unwrap();
    assert_eq!(
        client.ask("/dpmem/mbuf_pools"),
        json!(packet_pool_names(&eal))
    );
    assert_eq!(client.ask("/dpmem/mbuf_pool_info,tel_pinned"), json!({}));
    plain.free().unwrap();
    pkts.free().unwrap();
}

#[test]
fn dpdk_telemetry_py_reads_packet_pools() {
    if !dpdk_telemetry_py_available("dpdk_telemetry_py_reads_packet_pools") {
        return;
    }
    let eal = no_huge_eal("dpdk_client");
    let pool = PktmbufPool::builder("py_pkts", 511)
        .cache_size(16)
        .create(&eal)
        .unwrap();
    let packets: Vec<_> = (0..7).map(|_| pool.alloc().unwrap()).collect();
    let answers = run_dpdk_telemetry_py(
        &eal.options().file_prefix,
        &["/dpmem/mbuf_pools", "/dpmem/mbuf_pool_info,py_pkts"],
    );
    assert_eq!(
        answers[0],
        json!({ "/dpmem/mbuf_pools": packet_pool_names(&eal) })
    );
    assert_eq!(
        answers[1],
        json!({ "/dpmem/mbuf_pool_info": expected_info(&eal, &pool) })
    );
    assert_eq!(
        answers[1]["/dpmem/mbuf_pool_info"]["in_use_count"],
        json!(7)
    );
    drop(packets);
    pool.free().unwrap();
}
