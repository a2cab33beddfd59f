//! The `dpmem` program as a user runs it: the built binary, its exit codes and output.
//!
//! `hugepages` commands run against fake sysfs/procfs trees (`--sys-root`), so they check
//! exactly what would be written to the kernel without touching the host's pools; `info`
//! runs the real EAL with `--no-huge`, which needs neither root nor hugepages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn dpmem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(args)
        .output()
        .expect("run dpmem")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A file prefix no other test (or run) uses, so concurrent EALs never meet.
fn unique_prefix(test: &str) -> String {
    format!("dpmem-cli-test-{test}-{}", std::process::id())
}

/// A directory laid out like `/` with the sysfs and procfs files hugepage discovery reads.
struct FakeMachine {
    dir: tempfile::TempDir,
}

impl FakeMachine {
    /// Two NUMA nodes; 2 MiB pages (default size, mounted on /dev/hugepages) with 6 pages on
    /// node 0 and 4 on node 1; 1 GiB pages with none, mounted on /mnt/huge1G.
    fn two_nodes() -> Self {
        let m = FakeMachine {
            dir: tempfile::tempdir().expect("create temp dir"),
        };
        m.file(
            "/proc/meminfo",
            "MemTotal:       16303856 kB\nHugePages_Total:      10\nHugepagesize:       2048 kB\n",
        );
        m.file(
            "/proc/mounts",
            "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n\
             nodev /dev/hugepages hugetlbfs rw,relatime 0 0\n\
             nodev /mnt/huge1G hugetlbfs rw,relatime,pagesize=1G 0 0\n",
        );
        m.file("/sys/devices/system/node/online", "0-1\n");
        m.global_size(2 * MIB, 10, 7, 2, 1);
        m.node_size(0, 2 * MIB, 6, 5, 1);
        m.node_size(1, 2 * MIB, 4, 2, 0);
        m.global_size(GIB, 0, 0, 0, 0);
        m.node_size(0, GIB, 0, 0, 0);
        m.node_size(1, GIB, 0, 0, 0);
        m
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn host_path(&self, absolute: &str) -> PathBuf {
        self.dir.path().join(absolute.trim_start_matches('/'))
    }

    fn file(&self, absolute: &str, content: &str) {
        let path = self.host_path(absolute);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn read_u64(&self, absolute: &str) -> u64 {
        std::fs::read_to_string(self.host_path(absolute))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn global_size(&self, page_size: u64, total: u64, free: u64, reserved: u64, surplus: u64) {
        let dir = format!("/sys/kernel/mm/hugepages/hugepages-{}kB", page_size / KIB);
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"));
        self.file(&format!("{dir}/free_hugepages"), &format!("{free}\n"));
        self.file(&format!("{dir}/resv_hugepages"), &format!("{reserved}\n"));
        self.file(&format!("{dir}/surplus_hugepages"), &format!("{surplus}\n"));
    }

    fn node_size(&self, node: u32, page_size: u64, total: u64, free: u64, surplus: u64) {
        let dir = node_dir(node, page_size);
        self.file(&format!("{dir}/nr_hugepages"), &format!("{total}\n"));
        self.file(&format!("{dir}/free_hugepages"), &format!("{free}\n"));
        self.file(&format!("{dir}/surplus_hugepages"), &format!("{surplus}\n"));
    }

    /// `dpmem hugepages <args> --sys-root <this tree>`.
    fn hugepages(&self, args: &[&str]) -> Output {
        let root = self.root().to_str().expect("temp dir path is UTF-8");
        let mut all = vec!["hugepages"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--sys-root", root]);
        dpmem(&all)
    }
}

fn node_dir(node: u32, page_size: u64) -> String {
    format!(
        "/sys/devices/system/node/node{node}/hugepages/hugepages-{}kB",
        page_size / KIB
    )
}

fn global_nr(page_size: u64) -> String {
    format!(
        "/sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages",
        page_size / KIB
    )
}

#[test]
fn info_json_describes_no_huge_memory() {
    let prefix = unique_prefix("json");
    let out = dpmem(&[
        "info",
        "--json",
        "--",
        "--no-huge",
        "-m",
        "8",
        "--file-prefix",
        &prefix,
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let layout: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(layout["iova_mode"], "va");
    let lists = layout["memseg_lists"].as_array().expect("memseg_lists");
    assert!(!lists.is_empty());
    let mut segments = 0;
    for list in lists {
        assert_eq!(list["page_size"], 4096);
        assert!(list["socket_id"].is_i64());
        assert!(list["base_va"].as_u64().unwrap() > 0);
        for seg in list["segments"].as_array().expect("segments") {
            assert_eq!(seg["len"], 4096);
            assert!(seg["socket_id"].is_i64());
            // --no-huge memory is IOVA-as-VA.
            assert_eq!(seg["va"], seg["iova"]);
            segments += 1;
        }
    }
    assert_eq!(segments, 2048, "8 MiB of 4 KiB pages");
    let lcores = layout["lcores"].as_array().expect("lcores");
    assert_eq!(lcores[0]["role"], "main");
    for lcore in lcores {
        assert!(lcore["lcore_id"].is_u64());
        assert!(!lcore["cpus"].as_array().expect("cpus").is_empty());
        assert!(lcore["socket_id"].is_i64());
    }
    let heaps = layout["heaps"].as_array().expect("heaps");
    assert_eq!(heaps.len(), 1);
    assert_eq!(heaps[0]["socket_id"], 0);
    assert_eq!(heaps[0]["total_bytes"], 8 << 20);
    assert_eq!(heaps[0]["free_count"], 1);
    assert_eq!(layout["memzones"].as_array().expect("memzones").len(), 0);
}

#[test]
fn info_prints_the_lcore_table() {
    let prefix = unique_prefix("lcores");
    let out = dpmem(&[
        "info",
        "--",
        "--no-huge",
        "-m",
        "4",
        "-l",
        "0",
        "--file-prefix",
        &prefix,
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let table: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| *l != "lcores:")
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(table.len(), 1, "{text}");
    assert_eq!(&table[0][..3], ["0", "main", "0"], "{text}");
}

#[test]
fn info_without_arguments_prints_a_memseg_list() {
    let out = dpmem(&["info"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("memseg list 0:"), "{text}");
    assert!(text.contains("IOVA mode:"), "{text}");
    assert!(text.contains("seg 0"), "{text}");
    assert!(text.contains("totals:"), "{text}");
    assert!(text.contains("heaps:\n  socket_"), "{text}");
    assert!(text.contains("memzones: 0"), "{text}");
}

#[test]
fn info_collapses_runs_unless_asked_for_every_segment() {
    let prefix = unique_prefix("runs");
    let eal = ["--", "--no-huge", "-m", "8", "--file-prefix", &prefix];
    let collapsed = dpmem(&[&["info"][..], &eal].concat());
    assert!(collapsed.status.success(), "stderr: {}", stderr(&collapsed));
    let seg_lines = |o: &Output| {
        stdout(o)
            .lines()
            .filter(|l| l.trim_start().starts_with("seg "))
            .count()
    };
    assert!(seg_lines(&collapsed) < 10, "{}", stdout(&collapsed));
    assert!(stdout(&collapsed).contains("(contiguous)"));

    let every = dpmem(&[&["info", "--segments"][..], &eal].concat());
    assert!(every.status.success(), "stderr: {}", stderr(&every));
    assert_eq!(seg_lines(&every), 2048);
}

#[test]
fn info_names_an_unknown_eal_option() {
    let out = dpmem(&["info", "--", "--bogus-option"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--bogus-option"), "{}", stderr(&out));
}

#[test]
fn hugepages_show_reports_a_fake_two_node_machine() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["show", "--json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["default_page_size"], 2 * MIB);
    assert_eq!(v["numa_nodes"], serde_json::json!([0, 1]));
    let sizes = v["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 2);

    let two_m = &sizes[0];
    assert_eq!(two_m["page_size"], 2 * MIB);
    assert_eq!(two_m["page_size_text"], "2M");
    assert_eq!(
        (
            &two_m["total"],
            &two_m["free"],
            &two_m["reserved"],
            &two_m["surplus"]
        ),
        (
            &Value::from(10),
            &Value::from(7),
            &Value::from(2),
            &Value::from(1)
        )
    );
    assert_eq!(two_m["mounts"], serde_json::json!(["/dev/hugepages"]));
    assert_eq!(
        two_m["nodes"],
        serde_json::json!([
            {"node": 0, "total": 6, "free": 5, "surplus": 1},
            {"node": 1, "total": 4, "free": 2, "surplus": 0},
        ])
    );

    let one_g = &sizes[1];
    assert_eq!(one_g["page_size_text"], "1G");
    assert_eq!(one_g["total"], 0);
    assert_eq!(one_g["mounts"], serde_json::json!(["/mnt/huge1G"]));

    let text = m.hugepages(&["show"]);
    assert!(text.status.success());
    let text = stdout(&text);
    assert!(
        text.contains("2M pages (default): mounted on /dev/hugepages"),
        "{text}"
    );
    assert!(text.contains("1G pages: mounted on /mnt/huge1G"), "{text}");
}

#[test]
fn hugepages_reserve_writes_the_node_pool() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["reserve", "8M", "--node", "1"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(
        m.read_u64(&format!("{}/nr_hugepages", node_dir(1, 2 * MIB))),
        4
    );
    // Node 0 and the global pool are left to the kernel.
    assert_eq!(
        m.read_u64(&format!("{}/nr_hugepages", node_dir(0, 2 * MIB))),
        6
    );
    assert!(stdout(&out).contains("4 reserved"), "{}", stdout(&out));
}

#[test]
fn hugepages_reserve_rounds_up_to_whole_pages_and_skips_mounting_a_fake_root() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["reserve", "3G", "--page-size", "1G"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(m.read_u64(&global_nr(GIB)), 3);

    let out = m.hugepages(&["reserve", "5M", "--mount", "/mnt/elsewhere"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(m.read_u64(&global_nr(2 * MIB)), 3, "5M is 3 pages of 2M");
    assert!(stdout(&out).contains("skipped"), "{}", stdout(&out));
    assert!(!Path::new("/mnt/elsewhere").exists());
}

#[test]
fn hugepages_reserve_names_a_pool_it_cannot_write() {
    let m = FakeMachine::two_nodes();
    // sysfs files are never created, so a node without the attribute is a failed write
    // that names the file (and exit code 1), not a new file in the tree.
    std::fs::remove_file(m.host_path(&format!("{}/nr_hugepages", node_dir(1, GIB)))).unwrap();
    let out = m.hugepages(&["reserve", "1G", "--page-size", "1G", "--node", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("node1"), "{}", stderr(&out));
}

#[test]
fn hugepages_reserve_rejects_unknown_sizes_and_nodes() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["reserve", "8M", "--page-size", "16M"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no 16M hugepage pool"),
        "{}",
        stderr(&out)
    );

    let out = m.hugepages(&["reserve", "8M", "--node", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("node 7"), "{}", stderr(&out));
}

#[test]
fn hugepages_clear_zeroes_every_pool() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["clear"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    for page_size in [2 * MIB, GIB] {
        assert_eq!(m.read_u64(&global_nr(page_size)), 0);
        for node in [0, 1] {
            assert_eq!(
                m.read_u64(&format!("{}/nr_hugepages", node_dir(node, page_size))),
                0
            );
        }
    }
    // The fake's surplus page stands for a page a process still maps.
    assert!(stdout(&out).contains("1 still in use"), "{}", stdout(&out));
}

#[test]
fn a_bad_size_is_named() {
    let m = FakeMachine::two_nodes();
    let out = m.hugepages(&["reserve", "12parsecs"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("12parsecs"), "{}", stderr(&out));
    assert_eq!(m.read_u64(&global_nr(2 * MIB)), 10, "nothing was written");
}

#[test]
fn bench_lists_its_workloads() {
    let out = dpmem(&["bench", "list"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("init")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bench_names_known_workloads_for_an_unknown_one() {
    let out = dpmem(&["bench", "nosuch"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("nosuch") && err.contains("init"), "{err}");
}

/// Runs `program args` with its stdout a pipe whose reader is already gone, as in
/// `dpmem ... | head -0`, and checks that it ended quietly: exit 0 or SIGPIPE's default end,
/// and nothing on stderr (no panic message).
fn assert_quiet_with_closed_stdout(program: &Path, args: &[&str]) {
    use std::os::unix::process::ExitStatusExt;

    let (reader, writer) = std::io::pipe().expect("pipe");
    // Closed before the program starts, so its first write finds no reader whatever its timing.
    drop(reader);
    let out = Command::new(program)
        .args(args)
        .stdout(writer)
        .output()
        .expect("run the program");
    let err = stderr(&out);
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{args:?}: {:?}, stderr: {err}",
        out.status
    );
    assert!(err.is_empty(), "{args:?}: {err}");
}

/// Runtime directories an EAL with `prefix` may create (root's, then a user's).
fn runtime_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/var/run/dpmem").join(prefix)];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(xdg).join("dpmem").join(prefix));
    }
    dirs
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let dpmem = Path::new(env!("CARGO_BIN_EXE_dpmem"));
    let m = FakeMachine::two_nodes();
    let root = m.root().to_str().expect("temp dir path is UTF-8");
    let prefix = unique_prefix("closed-pipe");
    let eal = ["--no-huge", "-m", "16", "--file-prefix", prefix.as_str()];
    let info_json: Vec<&str> = ["info", "--json", "--"].into_iter().chain(eal).collect();
    let info_text: Vec<&str> = ["info", "--"].into_iter().chain(eal).collect();
    for args in [
        &info_json[..],
        &info_text[..],
        &["hugepages", "show", "--sys-root", root],
        &["hugepages", "show", "--json", "--sys-root", root],
        &["bench", "list"],
        &["--help"],
        &["bench", "--help"],
    ] {
        assert_quiet_with_closed_stdout(dpmem, args);
    }
    // The EAL was gone before info wrote: nothing of it is left behind.
    for dir in runtime_dirs(&prefix) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn info_with_its_default_configuration_cleans_up_before_a_closed_pipe_ends_it() {
    // The default configuration uses hugepages when it can, with the file prefix
    // `dpmem-info-<pid>`: a write that ended the program with the EAL still up would leave
    // its hugepage files (holding their pages) and runtime directory behind.
    let dpmem = Path::new(env!("CARGO_BIN_EXE_dpmem"));
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = Command::new(dpmem)
        .args(["info", "--json"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dpmem");
    let prefix = format!("dpmem-info-{}", child.id());
    let out = child.wait_with_output().expect("wait for dpmem");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    for dir in runtime_dirs(&prefix) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for mount in mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
        .filter_map(|l| l.split_whitespace().nth(1))
    {
        let Ok(entries) = std::fs::read_dir(mount) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            assert!(
                !name.to_string_lossy().starts_with(&prefix),
                "{mount}/{} left behind",
                name.to_string_lossy()
            );
        }
    }
}

#[test]
fn a_non_utf8_argument_is_an_error_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let bad = OsStr::from_bytes(b"not-\xff-utf8");
    let cases: [(&str, Vec<&OsStr>); 6] = [
        ("dpmem", vec![bad]),
        ("dpmem", vec!["bench".as_ref(), bad]),
        (
            "dpmem",
            vec!["bench".as_ref(), "ring".as_ref(), "--filter".as_ref(), bad],
        ),
        (
            "dpmem",
            vec![
                "info".as_ref(),
                "--".as_ref(),
                "--file-prefix".as_ref(),
                bad,
            ],
        ),
        (
            "dpmem",
            vec![
                "__dpmem-bench-child".as_ref(),
                "dpmem-init".as_ref(),
                "".as_ref(),
                bad,
            ],
        ),
        (
            "dpmem-bench-dpdk",
            vec![
                "__dpmem-bench-child".as_ref(),
                "dpdk-init".as_ref(),
                "".as_ref(),
                bad,
            ],
        ),
    ];
    for (program, args) in cases {
        let path = match program {
            "dpmem" => env!("CARGO_BIN_EXE_dpmem"),
            _ => env!("CARGO_BIN_EXE_dpmem-bench-dpdk"),
        };
        let out = Command::new(path).args(&args).output().expect("run");
        let err = stderr(&out);
        assert!(
            out.status.code().is_some_and(|c| c != 0),
            "{program} {args:?}: {:?}",
            out.status
        );
        assert!(!err.contains("panicked"), "{program} {args:?}: {err}");
        // The answer names the problem, or the argument where it is no known word (a
        // runner built without DPDK says only that).
        assert!(
            err.contains("UTF-8")
                || err.contains("unrecognized subcommand 'not-\u{fffd}-utf8'")
                || err.contains("built without DPDK"),
            "{program} {args:?}: {err}"
        );
    }
}

/// Whether the DPDK side of the benchmarks can run here: the runner next to `dpmem`
/// answers with its DPDK version (it does not when DPDK was missing at build time).
fn dpdk_runner_works() -> bool {
    Command::new(env!("CARGO_BIN_EXE_dpmem-bench-dpdk"))
        .args(["__dpmem-bench-child", "dpdk-version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `dpmem bench <args> --json`, parsed.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = dpmem(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("bench --json prints JSON")
}

fn row_names(report: &Value) -> Vec<&str> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().expect("row name"))
        .collect()
}

#[test]
fn bench_filter_runs_only_the_matching_rows() {
    let dpdk = dpdk_runner_works();
    if !dpdk {
        eprintln!("DPDK side not built here: checking the dpmem column only");
    }
    // Ring: dpmem in this process, DPDK in a child that gets the selection.
    let ring = bench_json(&["ring", "--reps", "1", "--filter", "ptr SP/SC 1c bulk"]);
    assert_eq!(
        row_names(&ring),
        ["ptr SP/SC 1c bulk 8", "ptr SP/SC 1c bulk 32"]
    );
    // Mempool: both sides are children that get the selection.
    let mempool = bench_json(&[
        "mempool",
        "--reps",
        "1",
        "--filter",
        "cache 512 1c bulk 32 keep 512",
    ]);
    assert_eq!(row_names(&mempool), ["cache 512 1c bulk 32 keep 512"]);
    // Mbuf: both sides are children too; the two-lcore row exercises the worker lcore.
    let mbuf = bench_json(&["mbuf", "--reps", "1", "--filter", "2c clone"]);
    assert_eq!(row_names(&mbuf), ["2c clone, free on the other lcore"]);
    // Frame: both sides set up session pools, frames and a copy device; this row uses the
    // device (DPDK's dma_skeleton).
    let frame = bench_json(&["frame", "--reps", "1", "--filter", "copy engine"]);
    assert_eq!(
        row_names(&frame),
        ["reassembly copy 1260 B, copy engine, per packet"]
    );
    for report in [&ring, &mempool, &mbuf, &frame] {
        for row in report["rows"].as_array().unwrap() {
            assert!(row["dpmem"]["value"].as_f64().unwrap() > 0.0, "{row}");
            if dpdk {
                assert!(row["dpdk"]["value"].as_f64().unwrap() > 0.0, "{row}");
            } else {
                assert!(row["dpdk"]["missing"].is_string(), "{row}");
            }
        }
    }
    let out = dpmem(&["bench", "ring", "--filter", "no such row"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ptr SP/SC 1c single"),
        "{}",
        stderr(&out)
    );
}

/// `dpmem bench mp`: each side's primary starts real secondary processes, every row (the
/// secondary's allocation of a new page included) is measured on both sides, and nothing of
/// any process is left behind: no runtime directory (dpmem's or DPDK's, where DPDK keeps its
/// sockets) and no hugepage file of the run's prefix.
#[test]
fn bench_mp_runs_real_secondaries_and_leaves_nothing_behind() {
    if !dpmem_testkit::hugepages_available(
        "bench_mp_runs_real_secondaries_and_leaves_nothing_behind",
        16,
    ) {
        return;
    }
    let dpdk = dpdk_runner_works();
    let child = Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(["bench", "mp", "--reps", "1", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dpmem");
    // The run's file prefix names the bench process.
    let prefix = format!("dpmem-bench-mp-{}", child.id());
    let out = child.wait_with_output().expect("wait for dpmem");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("bench --json prints JSON");
    assert_eq!(
        row_names(&report),
        [
            "request_sync round trip, 1 secondary",
            "message one way (ping-pong / 2), 1 secondary",
            "secondary's allocation that needs a new page, 1 secondary",
            "request_sync round trip, 2 secondaries"
        ]
    );
    for row in report["rows"].as_array().unwrap() {
        assert!(row["dpmem"]["value"].as_f64().unwrap() > 0.0, "{row}");
        if dpdk {
            assert!(row["dpdk"]["value"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    let mut left: Vec<PathBuf> = runtime_dirs(&prefix)
        .into_iter()
        .chain([PathBuf::from("/var/run/dpdk").join(&prefix)])
        .filter(|dir| dir.exists())
        .collect();
    let mount = dpmem_testkit::mount_2m().expect("a 2 MiB mount");
    left.extend(
        std::fs::read_dir(&mount)
            .expect("list the mount")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path()),
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bench_repeat_reports_the_median_ratio_and_its_range() {
    let dpdk = dpdk_runner_works();
    let args = [
        "bench",
        "ring",
        "--reps",
        "1",
        "--repeat",
        "2",
        "--filter",
        "ptr SP/SC 1c single",
    ];
    let out = dpmem(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().contains("2 of 2 runs"), "{text}");
    let header = lines.next().unwrap();
    assert!(
        header.contains("dpmem/dpdk median") && header.contains("range"),
        "{text}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("ptr SP/SC 1c single"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("behind DPDK in the median (dpmem/dpdk above 1.0): ")),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("ratio dpmem/dpdk (time, lower is better): "),
        "{text}"
    );
    if dpdk {
        // `median X, range A–B over 2 runs`, and the row's own range.
        assert!(
            last.contains("range") && last.ends_with("over 2 runs"),
            "{text}"
        );
        assert!(row.contains('–'), "{text}");
    }

    let report = bench_json(&args[1..]);
    assert_eq!(report["repeats"], 2);
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    assert_eq!(row_names(&report), ["ptr SP/SC 1c single"]);
    if dpdk {
        let ratio = &report["rows"][0]["ratio"];
        let (min, median, max) = (
            ratio["min"].as_f64().unwrap(),
            ratio["median"].as_f64().unwrap(),
            ratio["max"].as_f64().unwrap(),
        );
        assert!(min <= median && median <= max, "{ratio}");
        assert_eq!(ratio["runs"], 2);
        assert!(report["ratio_dpmem_over_dpdk"]["median"].is_f64());
    }
}

/// Page files in a fake machine's mount: one this test holds a lock on (as a live EAL holds
/// its pages), one nobody holds, and a file that is no page file. The kernel's table of locks
/// is the fake root's `/proc/locks`, written with the held file's real device and inode.
#[test]
fn hugepages_clean_removes_only_files_nobody_holds() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    let m = FakeMachine::two_nodes();
    let mount = m.host_path("/dev/hugepages");
    std::fs::create_dir_all(&mount).unwrap();
    let held_path = mount.join("livemap_0_0");
    let stale_path = mount.join("deadmap_0_3");
    let other_path = mount.join("notes.txt");
    for path in [&held_path, &stale_path, &other_path] {
        std::fs::write(path, b"page").unwrap();
    }
    let held = std::fs::File::open(&held_path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_SH) }, 0);
    let meta = held.metadata().unwrap();
    m.file(
        "/proc/locks",
        &format!(
            "1: FLOCK  ADVISORY  READ {} {:02x}:{:02x}:{} 0 EOF\n",
            std::process::id(),
            libc::major(meta.dev()),
            libc::minor(meta.dev()),
            meta.ino()
        ),
    );

    let show = m.hugepages(&["show", "--json"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    let prefixes: Vec<(&str, u64)> = v["page_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["prefix"].as_str().unwrap(),
                p["held_files"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(prefixes, vec![("dead", 0), ("live", 1)]);
    let text = stdout(&m.hugepages(&["show"]));
    assert!(
        text.contains(&format!("prefix live in {}", mount.display()))
            && text.contains(&format!("all held by pid {}", std::process::id())),
        "{text}"
    );

    // A prefix no EAL would take is refused, and nothing is touched.
    let bad = m.hugepages(&["clean", "--file-prefix", "../dead"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--file-prefix"), "{}", stderr(&bad));
    assert!(stale_path.exists());

    // Another prefix's files are not this clean's business.
    let other = m.hugepages(&["clean", "--file-prefix", "nobody"]);
    assert!(
        stdout(&other).contains("removed 0 page files"),
        "{}",
        stdout(&other)
    );
    assert!(stale_path.exists());

    let out = m.hugepages(&["clean"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("removed 1 page file "), "{report}");
    assert!(
        report.contains("kept 1 page file a live process holds (prefix live)"),
        "{report}"
    );
    assert!(!stale_path.exists());
    assert!(held_path.exists() && other_path.exists());

    // Unlocked, it goes too.
    drop(held);
    assert!(stdout(&m.hugepages(&["clean"])).contains("removed 1 page file "));
    assert!(!held_path.exists() && other_path.exists());
}
