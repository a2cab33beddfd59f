//! The page files in the hugetlbfs mounts: whose they are (their file prefix), whether a live
//! process holds them, and how much memory they keep.
//!
//! dpmem names a page file `<prefix>map_<list>_<seg>` (one file per page: dynamic and legacy
//! memory) or `<prefix>map_<list>` (`--single-file-segments`); DPDK names its own
//! `<prefix>map_<n>`, with `rte` as its default prefix. Both are read the same way: the prefix
//! is what comes before the last `map_` that is followed by numbers only.
//!
//! Every process that maps a page file, primary or secondary, holds a shared `flock` on it
//! for as long as it lives, as DPDK does; the kernel drops the lock with the process, however
//! it ends. So a file with no lock on it is a dead run's. Looking (`show`) takes nothing: the
//! kernel's table of locks, `/proc/locks`, names the locked files by device and inode and the
//! process that took each lock, and is only read. Deciding (`clean`) takes an exclusive lock
//! without waiting, which only succeeds when no process holds any, and keeps it while the
//! file is removed: a process that starts in between cannot take the file over, and a live
//! one's lock makes the attempt fail without disturbing it.
//!
//! A primary's runtime directory (`/var/run/dpmem/<prefix>` for root) holds its shared
//! configuration, on which the primary holds an exclusive lock for its whole life: the same
//! test tells a dead primary's directory from a live one's.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use dpmem_sys::root::SysRoot;
use serde::Serialize;

/// One page file.
#[derive(Debug, Clone, Serialize)]
pub struct PageFile {
    pub path: PathBuf,
    pub prefix: String,
    pub page_size: u64,
    /// Bytes of hugepages the file holds (pages allocated in it, not its length).
    pub bytes: u64,
    /// Processes holding a lock on it, by the ids `/proc/locks` gives (a lock inherited
    /// across `fork` keeps the id of the process that took it).
    pub held_by: Vec<i64>,
}

/// A runtime directory of one prefix.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeDirState {
    pub prefix: String,
    pub path: PathBuf,
    /// The process holding its configuration's lock: the live primary; `None` when there is
    /// no configuration or nobody holds it.
    pub primary: Option<i64>,
}

/// The prefix of a page file called `name`, or `None` when it is no page file.
pub fn prefix_of(name: &str) -> Option<&str> {
    let at = name.rfind("map_")?;
    let rest = &name[at + "map_".len()..];
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let numbered = match rest.split_once('_') {
        Some((list, seg)) => number(list) && number(seg),
        None => number(rest),
    };
    numbered.then(|| &name[..at])
}

/// Locked files by (device, inode), with the processes holding them, from `/proc/locks`.
/// Waiters (`->` lines) hold nothing and are left out.
pub fn lock_holders(root: &SysRoot) -> BTreeMap<(u64, u64), Vec<i64>> {
    let mut held: BTreeMap<(u64, u64), Vec<i64>> = BTreeMap::new();
    let Ok(text) = root.read_string("/proc/locks") else {
        return held;
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  READ 28028 fe:00:10133507 0 EOF`
        if fields.len() < 6 || fields[1] == "->" {
            continue;
        }
        let Ok(pid) = fields[4].parse::<i64>() else {
            continue;
        };
        let mut id = fields[5].split(':');
        let (Some(major), Some(minor), Some(inode)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(inode)) = (
            u32::from_str_radix(major, 16),
            u32::from_str_radix(minor, 16),
            inode.parse::<u64>(),
        ) else {
            continue;
        };
        let dev = libc::makedev(major, minor);
        held.entry((dev, inode)).or_default().push(pid);
    }
    for pids in held.values_mut() {
        pids.sort_unstable();
        pids.dedup();
    }
    held
}

/// The page files of every hugetlbfs mount in `mounts` (page size, mount point), sorted by
/// path; `prefix` keeps one prefix's only. A mount that cannot be listed (another user's) is
/// named in the second list with why.
pub fn scan(
    root: &SysRoot,
    mounts: &[(u64, PathBuf)],
    prefix: Option<&str>,
) -> (Vec<PageFile>, Vec<String>) {
    let holders = lock_holders(root);
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for (page_size, mount) in mounts {
        let dir = root.path(&mount.to_string_lossy());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                unreadable.push(format!("{}: {e}", mount.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(file_prefix) = prefix_of(&name) else {
                continue;
            };
            if prefix.is_some_and(|p| p != file_prefix) {
                continue;
            }
            // Not following a link: only the mount's own files count.
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            files.push(PageFile {
                path: entry.path(),
                prefix: file_prefix.to_owned(),
                page_size: *page_size,
                bytes: allocated_bytes(&meta),
                held_by: holders
                    .get(&(meta.dev(), meta.ino()))
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, unreadable)
}

/// Bytes of pages allocated to a file: hugetlbfs counts a file's blocks as its pages are
/// allocated (a punched hole gives them back), where its length may be larger.
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.blocks() * 512
}

/// Where this user's runtime directories are (`/var/run/dpmem` for root).
pub fn runtime_base() -> PathBuf {
    let some_dir = dpmem::eal::runtime_dir::location("any");
    some_dir
        .parent()
        .map_or_else(|| PathBuf::from("/var/run/dpmem"), Path::to_path_buf)
}

/// This user's runtime directories (only on the real machine: a fake root has none), sorted
/// by prefix; `prefix` keeps that one only.
pub fn runtime_dirs(root: &SysRoot, prefix: Option<&str>) -> Vec<RuntimeDirState> {
    if !root.is_host() {
        return Vec::new();
    }
    let holders = lock_holders(root);
    let base = runtime_base();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut dirs: Vec<RuntimeDirState> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if prefix.is_some_and(|p| p != name) {
                return None;
            }
            let config = e.path().join(dpmem::eal::runtime_dir::CONFIG_FILE);
            let primary = std::fs::symlink_metadata(&config).ok().and_then(|meta| {
                holders
                    .get(&(meta.dev(), meta.ino()))
                    .and_then(|pids| pids.first().copied())
            });
            Some(RuntimeDirState {
                prefix: name,
                path: e.path(),
                primary,
            })
        })
        .collect();
    dirs.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_what_comes_before_the_last_numbered_map() {
        assert_eq!(prefix_of("dpmemmap_0_12"), Some("dpmem"));
        assert_eq!(prefix_of("rtemap_3"), Some("rte"));
        assert_eq!(prefix_of("amap_1map_0_0"), Some("amap_1"));
        assert_eq!(prefix_of("map_0"), Some(""));
        assert_eq!(prefix_of("dpmemmap_"), None);
        assert_eq!(prefix_of("dpmemmap_1_"), None);
        assert_eq!(prefix_of("dpmemmap_x"), None);
        assert_eq!(prefix_of("notes.txt"), None);
    }

    #[test]
    fn locks_are_read_from_the_kernels_table() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/locks"),
            "1: FLOCK  ADVISORY  READ 42 fe:01:77 0 EOF\n\
             1: -> FLOCK  ADVISORY  WRITE 43 fe:01:77 0 EOF\n\
             2: FLOCK  ADVISORY  READ 44 fe:01:77 0 EOF\n\
             3: OFDLCK ADVISORY  WRITE -1 00:2d:5 0 EOF\n\
             garbage\n",
        )
        .unwrap();
        let held = lock_holders(&SysRoot::at(dir.path()));
        assert_eq!(held.get(&(libc::makedev(0xfe, 1), 77)), Some(&vec![42, 44]));
        assert_eq!(held.get(&(libc::makedev(0, 0x2d), 5)), Some(&vec![-1]));
        assert_eq!(held.len(), 2);
    }
}
