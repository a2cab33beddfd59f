//! `dpmem proc-info` against a real primary: this test binary re-run as a child process that
//! brings up an EAL on hugepages with memzones, a named ring, a mempool and a packet-buffer
//! pool, prints what it sees of itself, and waits. The program's JSON must say the same, the
//! primary's heaps must be untouched by the visit, and the primary must keep working and
//! exit cleanly afterwards.

use std::process::Command;
use std::time::Duration;

use dpmem::eal::Eal;
use dpmem::mbuf::PktmbufPool;
use dpmem::mempool::{Mempool, MempoolFlags};
use dpmem::ring::{named, RingFlags};
use dpmem::Socket;
use dpmem_testkit::ChildTest;
use serde_json::{json, Value};

const ZONE: &str = "pi_zone";
const RING: &str = "pi_ring";
const POOL: &str = "pi_pool";
const PACKETS: &str = "pi_pkts";
const LIMIT: Duration = Duration::from_secs(60);

fn dpmem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(args)
        .output()
        .expect("run dpmem")
}

/// The JSON after `marker` on a line of the child's transcript.
fn reported(transcript: &str, marker: &str) -> Value {
    let line = transcript
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {marker:?} line in:\n{transcript}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn proc_info_reports_what_the_primary_sees_and_leaves_it_working() {
    if !dpmem_testkit::hugepages_available("proc_info_reports_what_the_primary_sees", 24) {
        return;
    }
    let prefix = format!("dpmem-cli-proc-info-{}", std::process::id());
    let mut primary = ChildTest::spawn(&std::env::current_exe().unwrap(), "primary_body", |c| {
        c.env("DPMEM_PROC_INFO_TEST_PREFIX", &prefix);
    });
    primary.wait_for_line("primary ready", LIMIT);
    let own = reported(primary.transcript(), "self: ");

    let out = dpmem(&["proc-info", "--json", "--file-prefix", &prefix]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "proc-info failed: {stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("proc-info prints JSON");

    assert_eq!(seen["process_type"], "secondary");
    assert_eq!(seen["file_prefix"], prefix.as_str());
    assert!(
        seen.get("lcores").is_none(),
        "this process's lcores are not the primary's"
    );
    assert_eq!(seen["memzones"], own["memzones"]);
    assert_eq!(seen["heaps"], own["heaps"]);
    let ring = by_name(&seen["rings"], RING);
    assert_eq!(ring["count"], own["ring"]["count"]);
    assert_eq!(ring["capacity"], own["ring"]["capacity"]);
    assert_eq!(ring["elt_size"], 8);
    assert_eq!(ring["producer_mode"], "SP");
    assert_eq!(ring["consumer_mode"], "MC");
    for name in [POOL, PACKETS] {
        let pool = by_name(&seen["mempools"], name);
        let mine = &own["mempools"][name];
        for field in ["avail", "in_use", "size", "cache_size"] {
            assert_eq!(pool[field], mine[field], "{name} {field}");
        }
        assert_eq!(pool["lcore_caches"], mine["lcore_caches"], "{name}");
    }
    // The main lcore's cache holds what the gets left in it, and shows.
    assert_ne!(own["mempools"][POOL]["lcore_caches"], json!([]));
    assert!(by_name(&seen["mempools"], POOL)["packet_buffers"].is_null());
    assert_eq!(
        by_name(&seen["mempools"], PACKETS)["packet_buffers"]["priv_size"],
        16
    );

    let text = dpmem(&["proc-info", "--file-prefix", &prefix]);
    let text_out = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    // The pools' own rings show too, as in dpdk-proc-info.
    for expected in [
        "process type: secondary",
        "pi_ring: count 5 capacity 255 elt 8 SP/MC",
        "RG_pi_ring",
        POOL,
        PACKETS,
        ZONE,
    ] {
        assert!(
            text_out.contains(expected),
            "{expected} missing:\n{text_out}"
        );
    }

    // The primary carries on: it checks its ring, pools and heaps, frees all, exits cleanly.
    primary.send("check");
    primary.wait_for_line("primary unharmed", LIMIT);
    let after = reported(primary.transcript(), "after: ");
    assert_eq!(
        after["heaps"], own["heaps"],
        "the visit changed the primary's heaps"
    );
    primary.assert_passed(LIMIT);

    // With the primary gone there is nothing to attach to, and proc-info says so.
    let gone = dpmem(&["proc-info", "--file-prefix", &prefix]);
    assert!(!gone.status.success());
    let message = String::from_utf8_lossy(&gone.stderr);
    assert!(
        message.contains("cannot attach") && message.contains("no primary"),
        "{message}"
    );
}

#[test]
fn proc_info_without_a_primary_refuses_clearly() {
    let out = dpmem(&["proc-info", "--file-prefix", "dpmem-cli-nobody-runs-this"]);
    assert_eq!(out.status.code(), Some(1));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message
            .contains("cannot attach to a primary with file prefix \"dpmem-cli-nobody-runs-this\""),
        "{message}"
    );
    assert!(
        message.contains("no primary process is running"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

/// What a pool reports about itself, in the fields proc-info prints.
fn pool_view(pool: &Mempool<'_>) -> Value {
    let caches: Vec<Value> = pool
        .lcore_cache_counts()
        .into_iter()
        .map(|(lcore, count)| json!({"lcore": lcore, "count": count}))
        .collect();
    json!({
        "avail": pool.avail_count(),
        "in_use": pool.in_use_count(),
        "size": pool.size(),
        "cache_size": pool.cache_size(),
        "lcore_caches": caches,
    })
}

#[test]
#[ignore = "run by proc_info_reports_what_the_primary_sees_and_leaves_it_working in a child"]
fn primary_body() {
    let prefix = std::env::var("DPMEM_PROC_INFO_TEST_PREFIX").expect("run by the parent test");
    let eal = Eal::init([
        "primary",
        "-l",
        "0",
        "-m",
        "32",
        "--no-telemetry",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    let zone = eal
        .memzones()
        .reserve(ZONE, 64 << 10, Socket::Any, dpmem::MemzoneFlags::empty())
        .unwrap();
    let ring = named::create::<u64>(&eal, RING, 256, Socket::Any, RingFlags::SP_ENQ).unwrap();
    let mut producer = ring.producer().unwrap();
    for v in 0..5u64 {
        producer.enqueue(v * 11).unwrap();
    }
    drop(producer);
    let pool = Mempool::create(
        &eal,
        POOL,
        255,
        64,
        16,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let taken: Vec<_> = (0..10).map(|_| pool.get().unwrap()).collect();
    let packets = PktmbufPool::builder(PACKETS, 127)
        .priv_size(16)
        .create(&eal)
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| packets.alloc().unwrap()).collect();
    let own = json!({
        "memzones": eal.memzones().list(),
        "heaps": eal.heaps().all_stats(),
        "ring": {"count": ring.raw().count(), "capacity": ring.raw().capacity()},
        "mempools": {POOL: pool_view(&pool), PACKETS: pool_view(packets.mempool())},
    });
    println!("self: {own}");
    println!("primary ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "check");

    // Everything still works as before the visit.
    println!("after: {}", json!({"heaps": eal.heaps().all_stats()}));
    let mut consumer = ring.consumer().unwrap();
    let values: Vec<u64> = std::iter::from_fn(|| consumer.dequeue()).collect();
    assert_eq!(values, vec![0, 11, 22, 33, 44]);
    drop(consumer);
    for obj in taken {
        // SAFETY: each object came from this pool and is given back once.
        unsafe { pool.put(obj) };
    }
    drop(held);
    assert_eq!(pool.avail_count(), pool.size());
    assert_eq!(packets.mempool().avail_count(), packets.mempool().size());
    pool.audit().unwrap();
    packets.mempool().audit().unwrap();
    named::free(&eal, ring).unwrap();
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    packets.free().unwrap();
    pool.free().unwrap();
    println!("primary unharmed");
    drop(eal);
}
