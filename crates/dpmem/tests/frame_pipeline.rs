//! The data-path example runs (on hugepages when this machine can give them, on ordinary
//! memory otherwise) and leaves nothing of itself behind: no hugepage file, no runtime
//! directory.

use std::path::PathBuf;
use std::process::Command;

/// The example binary `cargo test` built next to this test's.
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let target = deps.parent().unwrap().parent().unwrap();
    target.join("examples").join("frame_pipeline")
}

/// Entries of `dir` whose names hold `needle`.
fn entries_with(dir: &str, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn frame_pipeline_moves_every_frame_and_leaves_nothing_behind() {
    let child = Command::new(example())
        .arg("20000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the frame_pipeline example (cargo test builds it)");
    // Its file prefix names its pid.
    let prefix = format!("frame-pipeline-{}", child.id());
    let child = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("20000 frames"), "{stdout}");
    assert!(stdout.contains("audit clean"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for dir in ["/dev/hugepages", "/var/run/dpmem"] {
        assert_eq!(entries_with(dir, &prefix), Vec::<String>::new(), "{dir}");
    }
    if let Ok(base) = std::env::var("XDG_RUNTIME_DIR") {
        let dir = format!("{base}/dpmem");
        assert_eq!(entries_with(&dir, &prefix), Vec::<String>::new(), "{dir}");
    }
}
