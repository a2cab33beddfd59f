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
