//! The telemetry socket, from the outside: the tests' own client (dpmem-testkit's, seqpacket
//! calls through rustix) checks the greeting, every command of the EAL against the EAL's own
//! view, refusals (unknown commands, parameters out of range, requests too long), the client
//! limit, where the socket is and what is left after the EAL goes, or after a process that
//! never dropped its EAL exits; and DPDK's own `dpdk-telemetry.py` reads the heaps and
//! memzones of a live EAL of this process.
//!
//! Every EAL here is `--no-huge`, so the tests run as root and as an ordinary user alike, but
//! the primary of the secondary's test: a secondary maps hugepages, and that test skips
//! without them.

mod common;

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::telemetry::{self, TelemetryDict, TelemetryError, TelemetryValue};
use dpmem_eal::{Eal, MemzoneFlags, Socket};
use dpmem_testkit::telemetry_client::{
    dpdk_telemetry_py_available, run_dpdk_telemetry_py, TelemetryClient, ANSWER_LIMIT, MAX_ANSWER,
};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
use serde_json::{json, Value};

/// A `--no-huge` EAL whose telemetry socket the tests talk to.
fn eal_with(tag: &str, extra: &[&str]) -> (Eal, String) {
    let prefix = unique_prefix(tag);
    let mut argv = vec!["--no-huge", "-m", "16", "--file-prefix", &prefix];
    argv.extend_from_slice(extra);
    let eal = Eal::init(args(&argv)).unwrap();
    (eal, prefix)
}

fn socket_of(eal: &Eal) -> PathBuf {
    eal.telemetry_socket()
        .expect("telemetry is on by default")
        .to_path_buf()
}

fn strings(values: &Value) -> Vec<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn numbers(values: &Value) -> Vec<u64> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn hex(text: &Value) -> u64 {
    let text = text.as_str().unwrap();
    u64::from_str_radix(text.strip_prefix("0x").unwrap(), 16).unwrap()
}

#[test]
fn the_greeting_and_the_server_commands() {
    let (eal, prefix) = eal_with("greeting", &["--", "app-arg", "--flag=1"]);
    let path = socket_of(&eal);
    assert_eq!(
        path,
        telemetry::dpdk_runtime_dir(&prefix).join("dpdk_telemetry.v2")
    );
    let (client, greeting) = TelemetryClient::connect(&path);
    assert_eq!(greeting["pid"], json!(std::process::id()));
    assert_eq!(greeting["max_output_len"], json!(16384));
    assert_eq!(telemetry::MAX_OUTPUT_LEN, MAX_ANSWER);
    assert!(greeting["version"].as_str().unwrap().starts_with("dpmem "));
    assert_eq!(greeting.as_object().unwrap().len(), 3, "{greeting}");
    assert_eq!(client.ask("/info"), greeting);

    let listed = strings(&client.ask("/"));
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "listed in order");
    for command in [
        "/",
        "/help",
        "/info",
        "/eal/params",
        "/eal/app_params",
        "/eal/heap_list",
        "/eal/heap_info",
        "/eal/memzone_list",
        "/eal/memzone_info",
        "/dpmem/lcores",
        "/dpmem/lcore_info",
        "/dpmem/memseg_lists",
        "/dpmem/memseg_list_info",
    ] {
        assert!(
            listed.iter().any(|c| c == command),
            "{command} in {listed:?}"
        );
        // Every listed command has help, and `/help,<command>` gives it.
        let help = telemetry::help(command).unwrap();
        assert!(!help.is_empty() && help.len() < 128, "{command}: {help:?}");
        assert_eq!(
            client.ask(&format!("/help,{command}")),
            json!({ command: help })
        );
    }
    assert_eq!(
        client.ask("/help"),
        json!(telemetry::help("/help").unwrap())
    );
    assert_eq!(client.ask("/help,/no/such/command"), Value::Null);

    assert_eq!(
        strings(&client.ask("/eal/params")),
        [
            "dpmem-test",
            "--no-huge",
            "-m",
            "16",
            "--file-prefix",
            prefix.as_str()
        ]
    );
    assert_eq!(
        strings(&client.ask("/eal/app_params")),
        ["app-arg", "--flag=1"]
    );
    assert_eq!(client.ask("/no/such/command"), Value::Null);
    assert_eq!(client.ask("/no/such/command,1"), Value::Null);
    drop(client);
    drop(eal);
}

#[test]
fn heaps_and_memzones_are_what_the_eal_sees() {
    let (eal, _prefix) = eal_with("memory", &[]);
    let (client, _) = TelemetryClient::connect(&socket_of(&eal));
    let zones = eal.memzones();
    let names = ["tel_a", "tel_b", "tel_c"];
    let reserved: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            zones
                .reserve(name, 1000 + 4096 * i, Socket::Any, MemzoneFlags::empty())
                .unwrap()
        })
        .collect();
    // A hole in the table: the indices are the table's, not a count.
    // SAFETY: nothing uses tel_b's memory.
    unsafe { zones.free(&reserved[1]) }.unwrap();
    let heaps = eal.heaps();
    let block = heaps.malloc(300_000, 64).unwrap();

    let heap_ids = numbers(&client.ask("/eal/heap_list"));
    let stats = heaps.all_stats();
    let expected: Vec<u64> = stats
        .iter()
        .filter(|s| s.total_bytes != 0)
        .map(|s| u64::from(s.socket.node().unwrap()))
        .collect();
    assert_eq!(heap_ids, expected);
    for (id, stats) in heap_ids.iter().zip(&stats) {
        let info = client.ask(&format!("/eal/heap_info,{id}"));
        let now = heaps.stats(stats.socket).unwrap();
        assert_eq!(
            info,
            json!({
                "Heap_id": id,
                "Name": now.name,
                "Heap_size": now.total_bytes,
                "Free_size": now.free_bytes,
                "Alloc_size": now.alloc_bytes,
                "Greatest_free_size": now.greatest_free_bytes,
                "Alloc_count": now.alloc_count,
                "Free_count": now.free_count,
            })
        );
        assert!(now.alloc_bytes >= 300_000 + 1000 + 4096 * 2);
    }

    let indices = numbers(&client.ask("/eal/memzone_list"));
    let listed = zones.list();
    assert_eq!(indices.len(), listed.len());
    assert_eq!(indices.len(), 2, "{indices:?}");
    assert!(
        indices[1] > indices[0] + 1,
        "tel_b's slot is free: {indices:?}"
    );
    for (idx, mz) in indices.iter().zip(&listed) {
        let info = client.ask(&format!("/eal/memzone_info,{idx}"));
        assert_eq!(info["Zone"], json!(idx));
        assert_eq!(info["Name"], json!(mz.name));
        assert_eq!(info["Length"], json!(mz.len));
        assert_eq!(hex(&info["Address"]), mz.va as u64);
        assert_eq!(info["Socket"], json!(mz.socket.to_raw()));
        assert_eq!(info["Flags"], json!(mz.flags.bits()));
        assert_eq!(info["Hugepage_size"], json!(mz.page_size));
        let base = hex(&info["Hugepage_base"]);
        assert_eq!(base, mz.va as u64 / mz.page_size * mz.page_size);
        let end = mz.va as u64 + mz.len as u64;
        assert_eq!(
            info["Hugepage_used"],
            json!(end.div_ceil(mz.page_size) - base / mz.page_size)
        );
    }
    // SAFETY: the block came from these heaps and is freed once.
    unsafe { heaps.free(block) }.unwrap();
    for zone in [&reserved[0], &reserved[2]] {
        // SAFETY: nothing uses the memzones' memory.
        unsafe { zones.free(zone) }.unwrap();
    }
    assert_eq!(client.ask("/eal/memzone_list"), json!([]));
}

#[test]
fn ids_that_name_nothing_and_bad_parameters_answer_null() {
    let (eal, _prefix) = eal_with("refusals", &[]);
    let (client, _) = TelemetryClient::connect(&socket_of(&eal));
    let mz = eal
        .memzones()
        .reserve("tel_only", 64, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    let idx = numbers(&client.ask("/eal/memzone_list"))[0];
    assert_eq!(
        client.ask(&format!("/eal/memzone_info,{idx}"))["Name"],
        "tel_only"
    );
    for request in [
        "/eal/memzone_info".to_owned(),
        "/eal/memzone_info,".to_owned(),
        format!("/eal/memzone_info,{}", idx + 1),
        "/eal/memzone_info,2559".to_owned(),
        "/eal/memzone_info,4294967295".to_owned(),
        "/eal/memzone_info,99999999999999999999".to_owned(),
        "/eal/memzone_info,-1".to_owned(),
        format!("/eal/memzone_info,{idx}x"),
        "/eal/heap_info".to_owned(),
        "/eal/heap_info,1".to_owned(),
        "/eal/heap_info,31".to_owned(),
        "/eal/heap_info,32".to_owned(),
        "/eal/heap_info,abc".to_owned(),
        "/dpmem/lcore_info,1024".to_owned(),
        "/dpmem/memseg_list_info,4096".to_owned(),
    ] {
        assert_eq!(client.ask(&request), Value::Null, "{request}");
    }
    // SAFETY: nothing uses the memzone's memory.
    unsafe { eal.memzones().free(&mz) }.unwrap();
    assert_eq!(client.ask(&format!("/eal/memzone_info,{idx}")), Value::Null);
    // The server still serves after all that.
    assert_eq!(client.ask("/eal/heap_list"), json!([0]));
}

#[test]
fn lcores_and_memseg_lists_are_what_the_eal_sees() {
    let (eal, _prefix) = eal_with("lcores", &["-l", "0"]);
    let (client, _) = TelemetryClient::connect(&socket_of(&eal));
    let table = eal.lcore_threads().table();
    let ids = numbers(&client.ask("/dpmem/lcores"));
    assert_eq!(
        ids,
        table
            .iter()
            .map(|l| u64::from(l.lcore_id))
            .collect::<Vec<_>>()
    );
    for lcore in &table {
        let info = client.ask(&format!("/dpmem/lcore_info,{}", lcore.lcore_id));
        assert_eq!(
            info,
            json!({
                "lcore_id": lcore.lcore_id,
                "role": lcore.role.as_str(),
                "cpus": lcore.cpus.iter().collect::<Vec<_>>(),
                "cpu_id": lcore.cpu_id,
                "socket": lcore.socket.to_raw(),
            })
        );
    }
    assert_eq!(client.ask("/dpmem/lcore_info,0")["role"], "main");

    let lists = eal.memory().lists();
    let indices = numbers(&client.ask("/dpmem/memseg_lists"));
    assert_eq!(
        indices,
        lists.iter().map(|l| u64::from(l.index)).collect::<Vec<_>>()
    );
    for list in &lists {
        let info = client.ask(&format!("/dpmem/memseg_list_info,{}", list.index));
        assert_eq!(hex(&info["base_va"]), list.base_va as u64);
        assert_eq!(info["len"], json!(list.len));
        assert_eq!(info["page_size"], json!(list.page_size));
        assert_eq!(info["socket"], json!(list.socket.to_raw()));
        assert_eq!(info["n_segs"], json!(list.n_segs));
        assert_eq!(info["n_used"], json!(list.n_used));
        assert_eq!(info["external"], json!(u32::from(list.external)));
    }
}

/// An application's command: registered once for the process, answered by every EAL's server
/// with that EAL (here its file prefix and its parameter back).
fn register_echo() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        telemetry::register_command("/test/echo", "Echoes the parameter.", |eal, param| {
            let mut answer = TelemetryDict::new();
            answer.insert("prefix", eal.options().file_prefix.as_str())?;
            answer.insert("param", param.unwrap_or(""))?;
            Ok(answer.into())
        })
        .unwrap();
        telemetry::register_command("/test/panics", "Panics.", |_, _| {
            panic!("a handler that panics (expected by the test)")
        })
        .unwrap();
        telemetry::register_command("/test/fails", "Refuses.", |_, _| {
            Err(TelemetryError::InvalidParameter("always".into()))
        })
        .unwrap();
        telemetry::register_command("/test/big", "More than fits.", |_, _| {
            Ok(TelemetryValue::from(
                (0..5000u32)
                    .map(|i| format!("entry_{i:05}"))
                    .collect::<Vec<_>>(),
            ))
        })
        .unwrap();
    });
}

#[test]
fn registered_commands_long_requests_and_failing_handlers() {
    register_echo();
    let (eal, prefix) = eal_with("registered", &[]);
    let (client, _) = TelemetryClient::connect(&socket_of(&eal));
    assert!(strings(&client.ask("/")).contains(&"/test/echo".to_owned()));
    // A name taken, the EAL's own included, is refused and the command left as it was.
    for taken in ["/eal/heap_list", "/test/echo", "/"] {
        let err = telemetry::register_command(taken, "mine", |_, _| Ok(0u32.into())).unwrap_err();
        assert_eq!(err.kind(), dpmem_eal::ErrorKind::Exist, "{taken}");
    }
    assert!(telemetry::register_command("no/slash", "", |_, _| Ok(0u32.into())).is_err());
    assert_eq!(
        client.ask("/test/echo,a,b c"),
        json!({"prefix": prefix, "param": "a,b c"}),
        "the parameter is all after the first comma"
    );
    // The longest request a server reads whole is 1023 bytes; one byte more is refused.
    let fits = format!("/test/echo,{}", "x".repeat(1023 - "/test/echo,".len()));
    assert_eq!(fits.len(), telemetry::MAX_REQUEST_LEN);
    assert_eq!(client.ask(&fits)["param"].as_str().unwrap().len(), 1012);
    assert_eq!(client.ask(&format!("{fits}y")), Value::Null);
    assert_eq!(
        client.ask(&format!("/eal/params,{}", "p".repeat(5000))),
        Value::Null
    );
    // An unknown command of any length is answered under its first 56 bytes.
    let long = format!("/{}", "c".repeat(3000));
    assert_eq!(
        client.ask_bytes(long.as_bytes()),
        json!({ &long[..telemetry::MAX_COMMAND_LEN]: null })
    );
    assert_eq!(
        client.ask_bytes(b"/eal/params\xff"),
        json!({"/eal/params\u{fffd}": null})
    );
    assert_eq!(
        client.ask_bytes(b"/eal/params\0"),
        json!({"/eal/params\u{0}": null})
    );
    assert_eq!(client.ask("/test/fails"), Value::Null);
    assert_eq!(client.ask("/test/panics"), Value::Null);
    // An answer longer than the limit keeps what fits, and is whole JSON.
    let big = strings(&client.ask("/test/big"));
    assert!(big.len() > 1000 && big.len() < 5000, "{}", big.len());
    assert_eq!(big[0], "entry_00000");
    assert_eq!(client.ask("/eal/heap_list"), json!([0]), "still serving");
}

#[test]
fn ten_clients_at_a_time() {
    let (eal, _prefix) = eal_with("clients", &[]);
    let path = socket_of(&eal);
    let mut clients: Vec<TelemetryClient> = (0..telemetry::MAX_CLIENTS)
        .map(|_| TelemetryClient::connect(&path).0)
        .collect();
    // One more is accepted and closed at once, without a greeting.
    let refused = TelemetryClient::connect_raw(&path);
    assert_eq!(refused.recv(), None);
    for client in &clients {
        assert_eq!(client.ask("/eal/heap_list"), json!([0]));
    }
    // Once one goes, a new one is served.
    clients.pop();
    let deadline = Instant::now() + ANSWER_LIMIT;
    let newcomer = loop {
        let candidate = TelemetryClient::connect_raw(&path);
        if let Some(greeting) = candidate.recv() {
            let greeting: Value = serde_json::from_slice(&greeting).unwrap();
            assert_eq!(greeting["max_output_len"], json!(16384));
            break candidate;
        }
        assert!(
            Instant::now() < deadline,
            "no room made by the client that left"
        );
    };
    assert_eq!(newcomer.ask("/eal/memzone_list"), json!([]));
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_socket_is_private_and_nothing_is_left_after_the_eal() {
    let (eal, prefix) = eal_with("leftovers", &[]);
    let path = socket_of(&eal);
    let dir = telemetry::dpdk_runtime_dir(&prefix);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let runtime = eal.runtime_dir().unwrap().to_path_buf();
    let (client, _) = TelemetryClient::connect(&path);
    drop(eal);
    // The server is gone: the connection is closed, the socket and its directory removed.
    assert_eq!(client.recv(), None);
    assert!(!path.exists(), "{} left", path.display());
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!runtime.exists(), "{} left", runtime.display());
}

/// Tells [`leaked_eal_body`] its file prefix.
const ENV_LEAK_PREFIX: &str = "DPMEM_TEST_TELEMETRY_LEAK_PREFIX";

#[test]
fn a_never_dropped_eal_leaves_no_socket_at_exit() {
    // An EAL leaked to lend it to lcores for `'static` is never dropped; its socket and
    // directory go when the process exits.
    let prefix = unique_prefix("leaked");
    let printed = run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "leaked_eal_body",
        |command| {
            command.env(ENV_LEAK_PREFIX, &prefix);
        },
    );
    let dir = telemetry::dpdk_runtime_dir(&prefix);
    assert!(
        printed.contains(&format!("serving {}", dir.display())),
        "{printed}"
    );
    assert!(!dir.exists(), "{} left at exit", dir.display());
}

#[test]
#[ignore = "run in a child process by a_never_dropped_eal_leaves_no_socket_at_exit"]
fn leaked_eal_body() {
    let prefix = std::env::var(ENV_LEAK_PREFIX).expect("run by a_never_dropped_eal_leaves_...");
    let eal: &'static Eal = Box::leak(Box::new(
        Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap(),
    ));
    let path = socket_of(eal);
    assert_eq!(
        TelemetryClient::connect(&path).0.ask("/eal/heap_list"),
        json!([0])
    );
    println!("serving {}", path.display());
}

#[test]
fn no_telemetry_opens_nothing() {
    let (eal, prefix) = eal_with("off", &["--no-telemetry"]);
    assert!(eal.options().no_telemetry);
    assert_eq!(eal.telemetry_socket(), None);
    assert!(!telemetry::dpdk_runtime_dir(&prefix).exists());
    drop(eal);
    // `--telemetry` is the default, and does not undo `--no-telemetry`.
    let (eal, prefix) = eal_with("both", &["--no-telemetry", "--telemetry"]);
    assert_eq!(eal.telemetry_socket(), None);
    assert!(!telemetry::dpdk_runtime_dir(&prefix).exists());
    let (eal, _) = eal_with("on", &["--telemetry"]);
    assert!(eal.telemetry_socket().is_some());
}

/// Tells the secondary of [`a_secondary_takes_the_first_free_name`] its file prefix.
const ENV_PREFIX: &str = "DPMEM_TEST_TELEMETRY_PREFIX";

#[test]
fn a_secondary_takes_the_first_free_name() {
    // A second process on the prefix serves too, under the first free `:<n>`, as DPDK numbers
    // the servers of processes sharing a runtime directory; once it is gone, the name is free
    // for the next. (A secondary maps the primary's hugepages: `--no-huge` memory cannot be
    // shared.)
    let _serial = hugepage_lock();
    if !hugepages_available("a_secondary_takes_the_first_free_name", 4) {
        return;
    }
    let prefix = unique_prefix("secondary");
    let eal = Eal::init(args(&["-m", "4", "--file-prefix", &prefix])).unwrap();
    let mz = eal
        .memzones()
        .reserve("tel_shared", 4096, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    let dir = telemetry::dpdk_runtime_dir(&prefix);
    assert_eq!(socket_of(&eal), dir.join("dpdk_telemetry.v2"));
    let limit = Duration::from_secs(60);
    let mut eal = eal;
    for _ in 0..2 {
        let mut child = dpmem_testkit::ChildTest::spawn(
            &std::env::current_exe().unwrap(),
            "telemetry_secondary_body",
            |command| {
                command.env(ENV_PREFIX, &prefix);
            },
        );
        child.wait_for_line("serving", limit);
        let path = dir.join("dpdk_telemetry.v2:1");
        let (client, greeting) = TelemetryClient::connect(&path);
        assert_eq!(greeting["pid"], json!(child.pid()));
        // The secondary answers with what it sees: the primary's memzone.
        assert_eq!(client.ask("/eal/memzone_list"), json!([0]));
        assert_eq!(client.ask("/eal/memzone_info,0")["Name"], "tel_shared");
        // Meanwhile the primary serves under the base name.
        let (primary, _) = TelemetryClient::connect(&socket_of(&eal));
        assert_eq!(primary.ask("/eal/memzone_list"), json!([0]));
        drop(client);
        eal = child.assert_passed_keeping(limit, eal).0;
        assert!(
            !path.exists(),
            "the secondary's socket is removed when it goes"
        );
    }
    // SAFETY: nothing uses the memzone's memory.
    unsafe { eal.memzones().free(&mz) }.unwrap();
    drop(eal);
    assert!(!dir.exists());
}

#[test]
#[ignore = "run as a secondary by a_secondary_takes_the_first_free_name"]
fn telemetry_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by a_secondary_takes_the_first_free_name");
    let eal = attach_secondary(&prefix);
    println!("{} serving", eal.telemetry_socket().unwrap().display());
    // Until the parent closes stdin.
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
}

#[test]
fn a_name_another_server_holds_is_passed_over() {
    // Another program's live server on the base name (a DPDK process on the same prefix):
    // the EAL takes the next name, and leaves the other one alone.
    let prefix = unique_prefix("taken");
    let dir = telemetry::dpdk_runtime_dir(&prefix);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    let other = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
    let taken = dir.join("dpdk_telemetry.v2");
    rustix::net::bind(&other, &SocketAddrUnix::new(&taken).unwrap()).unwrap();
    rustix::net::listen(&other, 4).unwrap();
    let eal = Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap();
    assert_eq!(socket_of(&eal), dir.join("dpdk_telemetry.v2:1"));
    let (client, greeting) = TelemetryClient::connect(&socket_of(&eal));
    assert_eq!(greeting["pid"], json!(std::process::id()));
    assert_eq!(client.ask("/eal/heap_list"), json!([0]));
    drop(eal);
    assert!(taken.exists(), "the other server's socket is left alone");
    assert!(!dir.join("dpdk_telemetry.v2:1").exists());
    drop(other);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stale_socket_is_replaced_and_anything_else_refused() {
    let prefix = unique_prefix("stale");
    let dir = telemetry::dpdk_runtime_dir(&prefix);
    let private_dir = || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .unwrap()
    };
    // What a killed server leaves: a socket nobody listens on.
    private_dir();
    let stale = dir.join("dpdk_telemetry.v2");
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    let eal = Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap();
    assert_eq!(socket_of(&eal), stale);
    assert_eq!(
        TelemetryClient::connect(&stale).1["pid"],
        json!(std::process::id())
    );
    drop(eal);

    // A file that is not a socket is not ours to remove: refused, and left as it was.
    private_dir();
    std::fs::write(&stale, b"keep").unwrap();
    let err = Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not a socket") && text.contains("--no-telemetry"),
        "{text}"
    );
    assert_eq!(std::fs::read(&stale).unwrap(), b"keep");
    assert!(
        !dpmem_eal::runtime_dir::location(&prefix).exists(),
        "a failed start leaves nothing of its own"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dpdk_telemetry_py_reads_heaps_and_memzones() {
    if !dpdk_telemetry_py_available("dpdk_telemetry_py_reads_heaps_and_memzones") {
        return;
    }
    let (eal, prefix) = eal_with("dpdk_client", &[]);
    let zones = eal.memzones();
    let a = zones
        .reserve("py_zone_a", 4096, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    let b = zones
        .reserve("py_zone_b", 100_000, Socket::Any, MemzoneFlags::empty())
        .unwrap();
    let answers = run_dpdk_telemetry_py(
        &prefix,
        &[
            "/eal/heap_list",
            "/eal/memzone_list",
            "/eal/heap_info,0",
            "/eal/memzone_info,1",
        ],
    );
    let heaps: Vec<u64> = eal
        .heaps()
        .all_stats()
        .iter()
        .filter(|s| s.total_bytes != 0)
        .map(|s| u64::from(s.socket.node().unwrap()))
        .collect();
    assert_eq!(answers[0], json!({ "/eal/heap_list": heaps }));
    let indices: Vec<u64> = (0..zones.list().len() as u64).collect();
    assert_eq!(answers[1], json!({ "/eal/memzone_list": indices }));
    let stats = eal.heaps().stats(Socket::Node(0)).unwrap();
    let heap = &answers[2]["/eal/heap_info"];
    assert_eq!(heap["Name"], json!(stats.name));
    assert_eq!(heap["Heap_size"], json!(stats.total_bytes));
    assert_eq!(heap["Alloc_count"], json!(stats.alloc_count));
    let zone = &answers[3]["/eal/memzone_info"];
    assert_eq!(zone["Name"], "py_zone_b");
    assert_eq!(zone["Length"], json!(b.len));
    assert_eq!(hex(&zone["Address"]), b.va as u64);
    for mz in [&a, &b] {
        // SAFETY: nothing uses the memzones' memory.
        unsafe { zones.free(mz) }.unwrap();
    }
}
