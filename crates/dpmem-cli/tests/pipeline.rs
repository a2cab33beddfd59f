//! `dpmem pipeline` as a user runs it: the built binary, end to end — TX sessions, a real
//! port (the loopback port, or kernel UDP sockets on 127.0.0.1), RX sessions reassembling
//! through the DMA copy engine or the CPU — with every frame checked byte for byte by the
//! program itself. These runs use `--no-huge` EALs of their own, so any user can run them;
//! the hugepage run (the embedded default) is CI's examples step.

use std::process::{Command, Output};

use serde_json::Value;

fn pipeline(test: &str, args: &[&str]) -> Output {
    pipeline_on(test, "0", args)
}

fn pipeline_on(test: &str, lcores: &str, args: &[&str]) -> Output {
    let prefix = format!("dpmem-cli-pipeline-{test}-{}", std::process::id());
    let mut command = Command::new(env!("CARGO_BIN_EXE_dpmem"));
    command.arg("pipeline").args(args).args([
        "--json",
        "--quiet",
        "--",
        "-l",
        lcores,
        "--no-huge",
        "-m",
        "160",
        "--file-prefix",
        &prefix,
    ]);
    command.output().expect("run dpmem pipeline")
}

/// The report of a run that must have succeeded.
fn report(test: &str, args: &[&str]) -> Value {
    report_on(test, "0", args)
}

fn report_on(test: &str, lcores: &str, args: &[&str]) -> Value {
    let out = pipeline_on(test, lcores, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dpmem pipeline {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

/// What every good run shows: frames came through and every one was right, nothing lost
/// that was not counted, every pool back whole.
fn check_whole(r: &Value) {
    let frames = &r["frames"];
    let verified = frames["verified"].as_u64().unwrap();
    assert!(verified > 0, "{r:#}");
    assert_eq!(frames["mismatched"], 0, "{r:#}");
    assert_eq!(frames["tx_errors"], 0, "{r:#}");
    assert_eq!(frames["unknown"], 0, "{r:#}");
    assert_eq!(r["audit"]["tx_pools_in_use"], 0, "{r:#}");
    assert_eq!(r["audit"]["rx_pool_in_use"], 0, "{r:#}");
    assert_eq!(r["audit"]["close_errors"], serde_json::json!([]), "{r:#}");
    assert!(r.get("first_mismatch").is_none(), "{r:#}");
    // One node, and the sessions ask for the lcore's: nothing lands elsewhere.
    assert_eq!(r["numa_fallbacks"], 0, "{r:#}");
    let packets = &r["packets"];
    let per_frame = r["setup"]["packets_per_frame"].as_u64().unwrap();
    // Each verified frame's packets went through the port; the port lost none.
    assert!(
        packets["port_rx"].as_u64().unwrap() >= verified * per_frame,
        "{r:#}"
    );
    assert_eq!(packets["port_drops"], 0, "{r:#}");
    let copies = &r["copies"];
    assert!(
        copies["engine"].as_u64().unwrap() + copies["cpu"].as_u64().unwrap()
            >= verified * per_frame,
        "{r:#}"
    );
}

#[test]
fn loopback_with_the_copy_engine_delivers_every_frame_byte_for_byte() {
    let r = report(
        "loopback-dma",
        &["--sessions", "2", "--duration", "0.5", "--format", "720p59"],
    );
    check_whole(&r);
    assert_eq!(r["setup"]["dma"], true);
    assert_eq!(r["setup"]["sessions_on_device"], 2);
    assert_eq!(r["setup"]["hugepages"], false);
    // The engine did copies, and reported none failed.
    assert!(r["copies"]["engine"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["copies"]["engine_errors"], 0, "{r:#}");
    let stages = r["stages_ns_per_packet"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["generate", "packetise", "port", "reassemble", "verify"]
    );
}

#[test]
fn streams_spread_over_two_lcores_each_with_its_own_engine_channel() {
    let r = report_on(
        "two-lcores",
        "0-1",
        &["--sessions", "3", "--duration", "0.5", "--format", "720p59"],
    );
    check_whole(&r);
    assert_eq!(r["setup"]["lcores"], 2);
    assert_eq!(r["setup"]["sessions_on_device"], 3);
}

#[test]
fn without_the_engine_the_cpu_places_every_payload() {
    let r = report(
        "loopback-cpu",
        &["--sessions", "1", "--duration", "0.5", "--no-dma"],
    );
    check_whole(&r);
    assert_eq!(r["setup"]["dma"], false);
    assert_eq!(r["copies"]["engine"], 0);
    assert_eq!(r["copies"]["engine_completed"], Value::Null);
    let cpu = r["copies"]["cpu"].as_u64().unwrap();
    assert_eq!(
        cpu,
        r["copies"]["cpu_no_device"].as_u64().unwrap()
            + r["copies"]["cpu_small"].as_u64().unwrap()
            + r["copies"]["cpu_cross_page"].as_u64().unwrap()
    );
}

#[test]
fn over_kernel_udp_sockets_frames_arrive_whole() {
    let r = report(
        "udp",
        &[
            "--sessions",
            "1",
            "--duration",
            "0.5",
            "--port",
            "udp",
            "--format",
            "720p59",
        ],
    );
    check_whole(&r);
    assert_eq!(r["setup"]["port"], "udp");
}

#[test]
fn redundant_paths_send_every_packet_twice_and_the_second_copy_is_a_duplicate() {
    let r = report(
        "redundant",
        &[
            "--sessions",
            "1",
            "--duration",
            "0.5",
            "--redundant",
            "--format",
            "720p59",
        ],
    );
    check_whole(&r);
    let sent = r["packets"]["sent"].as_u64().unwrap();
    assert_eq!(r["packets"]["port_tx"].as_u64().unwrap(), 2 * sent, "{r:#}");
    // Every packet of a frame that was placed came again on the other path.
    let duplicates = r["packets"]["duplicates"].as_u64().unwrap();
    let per_frame = r["setup"]["packets_per_frame"].as_u64().unwrap();
    let verified = r["frames"]["verified"].as_u64().unwrap();
    assert!(duplicates >= verified * per_frame, "{r:#}");
}

#[test]
fn frames_the_application_lends_come_through_and_back() {
    let r = report(
        "external",
        &[
            "--sessions",
            "2",
            "--duration",
            "0.5",
            "--external",
            "--format",
            "720p59",
        ],
    );
    check_whole(&r);
    assert_eq!(r["setup"]["external"], true);
    // Each lent frame came back once, after its packets were gone.
    assert_eq!(r["frames"]["lent_returned"], r["frames"]["sent"], "{r:#}");
}

#[test]
fn settings_that_cannot_run_are_refused_with_the_rule() {
    for (args, says) in [
        (&["--duration", "0"][..], "--duration 0"),
        (&["--duration=-1"][..], "--duration -1"),
        (&["--duration", "nan"][..], "--duration NaN"),
        (&["--sessions", "0"][..], "--sessions"),
        (&["--sessions", "65"][..], "--sessions"),
        (&["--port", "eth0"][..], "--port"),
        (&["--rx-frames", "1"][..], "--rx-frames"),
    ] {
        let out = pipeline("refused", args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn memory_too_small_for_the_streams_is_an_error_saying_so() {
    // 16 MiB cannot hold the pools and frames of one 1080p stream.
    let prefix = format!("dpmem-cli-pipeline-small-{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(["pipeline", "--duration", "0.2", "--quiet", "--"])
        .args(["-l", "0", "--no-huge", "-m", "16", "--file-prefix", &prefix])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no memory"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_running_pipeline_answers_dpdk_telemetry_clients() {
    use dpmem::eal::telemetry::{dpdk_runtime_dir, SOCKET_NAME};
    use dpmem_testkit::telemetry_client::{
        dpdk_telemetry_py_available, run_dpdk_telemetry_py, TelemetryClient,
    };
    use std::time::{Duration, Instant};

    let prefix = format!("dpmem-cli-pipeline-telemetry-{}", std::process::id());
    let child = Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args([
            "pipeline",
            "--sessions",
            "1",
            "--format",
            "720p59",
            "--duration",
            "3",
        ])
        .args([
            "--json",
            "--quiet",
            "--",
            "-l",
            "0",
            "--no-huge",
            "-m",
            "160",
        ])
        .args(["--file-prefix", &prefix])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let socket = dpdk_runtime_dir(&prefix).join(SOCKET_NAME);
    let waited = Instant::now();
    while !socket.exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "no socket at {socket:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Some frames through first.
    std::thread::sleep(Duration::from_millis(800));
    let answer = if dpdk_telemetry_py_available("a_running_pipeline_answers_dpdk_telemetry") {
        run_dpdk_telemetry_py(&prefix, &["/dpmem/pipeline"]).remove(0)
    } else {
        let (client, _) = TelemetryClient::connect(&socket);
        client.ask("/dpmem/pipeline")
    };
    let live = &answer["/dpmem/pipeline"];
    let verified_then = live["frames_verified"].as_u64().expect("a count");
    assert!(verified_then > 0, "{answer}");
    assert_eq!(live["frames_mismatched"], 0, "{answer}");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_whole(&report);
    assert!(report["frames"]["verified"].as_u64().unwrap() >= verified_then);
    // The server went with the EAL: no socket left behind.
    assert!(!socket.exists(), "{socket:?} left behind");
}
