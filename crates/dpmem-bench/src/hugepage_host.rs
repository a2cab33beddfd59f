//! What the host offers in 2 MiB hugepages, read the way an operator would check it:
//! `/proc/mounts` for a hugetlbfs mount and sysfs for the free-page count.
//!
//! The benchmark only needs these two facts to decide whether a hugepage run is possible
//! and, if not, to say why; dpmem-sys does the real discovery for the EAL itself.

use std::fs;
use std::path::{Path, PathBuf};

/// Size of the pages every `init` configuration uses.
pub const PAGE_2M: u64 = 2 << 20;

const FREE_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

/// The first hugetlbfs mount whose page size is 2 MiB.
pub fn hugetlbfs_2m_mount() -> Result<PathBuf, String> {
    let mounts =
        fs::read_to_string("/proc/mounts").map_err(|e| format!("reading /proc/mounts: {e}"))?;
    let default_is_2m = default_hugepage_kib() == Some(2048);
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, fstype, options, ..] = fields[..] else {
            continue;
        };
        if fstype != "hugetlbfs" {
            continue;
        }
        // A mount without pagesize= uses the default hugepage size.
        let pagesize = options.split(',').find_map(|o| o.strip_prefix("pagesize="));
        let is_2m = match pagesize {
            Some(p) => p == "2M" || p == "2048k" || p == "2048K",
            None => default_is_2m,
        };
        if is_2m {
            return Ok(PathBuf::from(unescape_mount_path(dir)));
        }
    }
    Err("no hugetlbfs mount with 2 MiB pages in /proc/mounts".to_owned())
}

/// Free 2 MiB hugepages right now (system-wide, all NUMA nodes).
pub fn free_2m_hugepages() -> Result<u64, String> {
    let text = fs::read_to_string(FREE_2M).map_err(|e| format!("reading {FREE_2M}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|e| format!("parsing {FREE_2M} ({:?}): {e}", text.trim()))
}

/// `Hugepagesize:` from /proc/meminfo, in KiB.
fn default_hugepage_kib() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// /proc/mounts escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove files under `dir` whose names start with `prefix`.
///
/// A DPDK primary in legacy mode leaves its hugepage files behind on exit, still holding
/// their pages; with a bench-private prefix, deleting them between repetitions gives every
/// run the same number of free pages without touching anyone else's files.
pub fn remove_files_with_prefix(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/dev/hugepages"), "/dev/hugepages");
        assert_eq!(
            unescape_mount_path("/mnt/huge\\040pages"),
            "/mnt/huge pages"
        );
        assert_eq!(unescape_mount_path("/x\\"), "/x\\");
    }
}
