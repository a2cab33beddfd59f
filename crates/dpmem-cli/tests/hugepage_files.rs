//! `dpmem hugepages show` and `clean` on real page files: primaries in legacy memory (whose
//! files stay after they end) run as child processes of this test binary; one is killed with
//! SIGKILL, the other kept alive. The dead one's files must show as held by nobody and go with
//! `clean`; the live one's must show as held by its process and stay.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dpmem::eal::Eal;
use dpmem_testkit::ChildTest;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn dpmem(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(args)
        .output()
        .expect("run dpmem");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Page files of `prefix` in the 2 MiB mount, and its runtime directory if it exists.
fn leftovers(prefix: &str) -> Vec<PathBuf> {
    let mount = dpmem_testkit::mount_2m().expect("a 2 MiB mount");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&mount)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_page_file_of(p, prefix))
        .collect();
    let dir = dpmem::eal::runtime_dir::location(prefix);
    if dir.exists() {
        found.push(dir);
    }
    found
}

fn is_page_file_of(path: &Path, prefix: &str) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("map_"))
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}

/// Cleans its prefixes when the test ends, passed or not (declared before the children, so
/// that a failed test's children are killed first and their files are no one's).
struct CleanAtEnd(Vec<String>);

impl Drop for CleanAtEnd {
    fn drop(&mut self) {
        for prefix in &self.0 {
            let _ = dpmem(&["hugepages", "clean", "--file-prefix", prefix]);
        }
    }
}

fn primary(prefix: &str) -> ChildTest {
    let mut child = ChildTest::spawn(
        &std::env::current_exe().unwrap(),
        "legacy_primary_body",
        |c| {
            c.env("DPMEM_HP_TEST_PREFIX", prefix);
        },
    );
    child.wait_for_line("primary ready", LIMIT);
    child
}

/// The entry of `hugepages show --json`'s `page_files` for `prefix`.
fn files_of<'a>(show: &'a Value, prefix: &str) -> &'a Value {
    show["page_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["prefix"] == prefix)
        .unwrap_or_else(|| panic!("no page files of {prefix} in {show:#}"))
}

fn runtime_dir_of<'a>(show: &'a Value, prefix: &str) -> &'a Value {
    show["runtime_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["prefix"] == prefix)
        .unwrap_or_else(|| panic!("no runtime directory of {prefix} in {show:#}"))
}

#[test]
fn clean_removes_a_killed_primarys_files_and_leaves_a_live_ones() {
    if !dpmem_testkit::hugepages_available("clean_removes_a_killed_primarys_files", 16) {
        return;
    }
    let dead = format!("dpmem-cli-hp-dead-{}", std::process::id());
    let live = format!("dpmem-cli-hp-live-{}", std::process::id());
    let _clean = CleanAtEnd(vec![dead.clone(), live.clone()]);
    let mut killed = primary(&dead);
    let mut alive = primary(&live);
    // SAFETY: kill(2) on our own child's id, which it keeps until we reap it below.
    assert_eq!(unsafe { libc::kill(killed.pid() as i32, libc::SIGKILL) }, 0);
    assert!(killed.wait(LIMIT).is_some(), "the killed primary ended");

    let out = dpmem(&["hugepages", "show", "--json"]);
    assert!(out.status.success());
    let show: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dead_files = files_of(&show, &dead);
    let count = dead_files["files"].as_array().unwrap().len();
    assert!(
        count >= 4,
        "legacy memory of 8 MiB is 4 pages or more: {dead_files:#}"
    );
    assert_eq!(dead_files["held_files"], 0);
    assert_eq!(dead_files["bytes"], count as u64 * dpmem_testkit::PAGE_2M);
    assert!(runtime_dir_of(&show, &dead)["primary"].is_null());
    let live_files = files_of(&show, &live);
    assert_eq!(
        live_files["held_files"],
        live_files["files"].as_array().unwrap().len()
    );
    assert_eq!(live_files["held_by"], serde_json::json!([alive.pid()]));
    assert_eq!(runtime_dir_of(&show, &live)["primary"], alive.pid());

    let text = stdout(&dpmem(&["hugepages", "show"]));
    assert!(
        text.contains(&format!("prefix {dead} in ")) && text.contains("not held"),
        "{text}"
    );
    assert!(
        text.contains(&format!("all held by pid {}", alive.pid())),
        "{text}"
    );

    // A dry run removes nothing.
    let dry = dpmem(&["hugepages", "clean", "--dry-run", "--file-prefix", &dead]);
    assert!(stdout(&dry).contains(&format!("would remove {count} page files")));
    assert_eq!(
        leftovers(&dead).len(),
        count + 1,
        "files and the runtime directory"
    );

    let cleaned = dpmem(&["hugepages", "clean", "--file-prefix", &dead]);
    assert!(cleaned.status.success());
    let report = stdout(&cleaned);
    assert!(
        report.contains(&format!("removed {count} page files")),
        "{report}"
    );
    assert!(report.contains("removed runtime directory"), "{report}");
    assert_eq!(leftovers(&dead), Vec::<PathBuf>::new());

    // The live primary's files stay, and so does its directory.
    let before = leftovers(&live);
    let kept = dpmem(&["hugepages", "clean", "--file-prefix", &live]);
    let report = stdout(&kept);
    assert!(report.contains("removed 0 page files"), "{report}");
    assert!(report.contains("kept"), "{report}");
    assert_eq!(leftovers(&live), before);

    // It still works, and ends cleanly; its legacy files stay after it, until cleaned.
    alive.send("stop");
    alive.assert_passed(LIMIT);
    assert!(
        !leftovers(&live).is_empty(),
        "legacy memory keeps its files"
    );
    let after = dpmem(&["hugepages", "clean", "--file-prefix", &live]);
    assert!(stdout(&after).contains(&format!("removed {} page files", before.len() - 1)));
    assert_eq!(leftovers(&live), Vec::<PathBuf>::new());
}

#[test]
fn info_in_legacy_memory_says_its_files_stay_and_how_to_clean_them() {
    if !dpmem_testkit::hugepages_available("info_in_legacy_memory_says_its_files_stay", 8) {
        return;
    }
    let prefix = format!("dpmem-cli-hp-info-{}", std::process::id());
    let _clean = CleanAtEnd(vec![prefix.clone()]);
    let args = [
        "info",
        "--",
        "--legacy-mem",
        "-m",
        "8",
        "--no-telemetry",
        "--file-prefix",
    ];
    let out = dpmem(&[&args[..], &[prefix.as_str()]].concat());
    assert!(out.status.success());
    let text = stdout(&out);
    let note = format!(
        "legacy memory keeps its hugepage files after the process exits (unless --huge-unlink); \
         remove them with `dpmem hugepages clean --file-prefix {prefix}`"
    );
    assert!(text.contains(&note), "{text}");
    assert!(!leftovers(&prefix).is_empty(), "the note is true");
    assert!(dpmem(&["hugepages", "clean", "--file-prefix", &prefix])
        .status
        .success());
    assert_eq!(leftovers(&prefix), Vec::<PathBuf>::new());

    // Unlinked files do not stay, and the note is not given.
    let unlinked = dpmem(&[&args[..], &[prefix.as_str(), "--huge-unlink"]].concat());
    assert!(unlinked.status.success());
    assert!(!stdout(&unlinked).contains("keeps its hugepage files"));
    assert_eq!(leftovers(&prefix), Vec::<PathBuf>::new());
}

#[test]
#[ignore = "run by clean_removes_a_killed_primarys_files_and_leaves_a_live_ones in a child"]
fn legacy_primary_body() {
    let prefix = std::env::var("DPMEM_HP_TEST_PREFIX").expect("run by the parent test");
    let eal = Eal::init([
        "primary",
        "--legacy-mem",
        "-m",
        "8",
        "--no-telemetry",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    let zone = eal
        .memzones()
        .reserve(
            "hp_zone",
            4096,
            dpmem::Socket::Any,
            dpmem::MemzoneFlags::empty(),
        )
        .unwrap();
    println!("primary ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "stop");
    // Its memory is still there and usable after the visits.
    // SAFETY: the zone is this process's and nothing else uses it.
    unsafe { std::ptr::write_bytes(zone.as_ptr(), 0x5a, 4096) };
    // SAFETY: nothing uses the memzone any more.
    unsafe { eal.memzones().free(&zone) }.unwrap();
    drop(eal);
}
