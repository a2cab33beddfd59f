//! `dpmem hugepages clean [--file-prefix P]`: removes the page files no live process holds,
//! and the runtime directories of primaries that are gone.
//!
//! Each file is opened (only a regular file of this user: another user's memory is theirs to
//! clean) and locked exclusively without waiting; it is removed only when that lock is had,
//! and while it is held (see [`super::page_files`]). A runtime directory goes only when its
//! configuration's lock can be had the same way and no page file of its prefix is left held:
//! a secondary still at work after its primary died keeps its directory. A dry run takes no
//! lock at all: it goes by the kernel's table of locks, as `show` does.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::root::SysRoot;

use super::page_files::{self, PageFile};
use crate::byte_size::approximate;

/// What one clean did, for the report.
#[derive(Debug, Default)]
struct Outcome {
    removed_files: usize,
    removed_bytes: u64,
    /// Held files, by prefix: kept.
    held: BTreeSet<String>,
    kept_files: usize,
    removed_dirs: Vec<String>,
    /// Files or directories left for a reason other than a live holder.
    problems: Vec<String>,
}

pub fn run(root: &SysRoot, prefix: Option<&str>, dry_run: bool) -> Result<(), String> {
    if let Some(prefix) = prefix {
        check_prefix(prefix)?;
    }
    let mounts = super::show::mounts(root)?;
    let (files, unreadable) = page_files::scan(root, &mounts, prefix);
    let mut outcome = Outcome::default();
    outcome.problems.extend(unreadable);
    for file in &files {
        match remove_if_unheld(file, dry_run) {
            Ok(true) => {
                outcome.removed_files += 1;
                outcome.removed_bytes += file.bytes;
            }
            Ok(false) => {
                outcome.kept_files += 1;
                outcome.held.insert(file.prefix.clone());
            }
            Err(e) => {
                outcome.held.insert(file.prefix.clone());
                outcome.problems.push(e);
            }
        }
    }
    for dir in page_files::runtime_dirs(root, prefix) {
        if outcome.held.contains(&dir.prefix) {
            continue;
        }
        let verdict = if dry_run {
            Ok(dir.primary.is_none())
        } else {
            remove_dir_if_dead(&dir.path)
        };
        match verdict {
            Ok(true) => outcome.removed_dirs.push(dir.path.display().to_string()),
            Ok(false) => {}
            Err(e) => outcome.problems.push(e),
        }
    }
    print!("{}", report(&outcome, dry_run));
    Ok(())
}

/// A prefix the EAL would refuse names no files of dpmem's: refuse it the same way, with the
/// EAL's reason, rather than report that nothing matched.
fn check_prefix(prefix: &str) -> Result<(), String> {
    dpmem::eal::EalOptions::parse(["dpmem", "--file-prefix", prefix])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn report(outcome: &Outcome, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{verb} {} page file{} ({})",
        outcome.removed_files,
        if outcome.removed_files == 1 { "" } else { "s" },
        approximate(outcome.removed_bytes)
    );
    for dir in &outcome.removed_dirs {
        let _ = writeln!(out, "{verb} runtime directory {dir}");
    }
    if outcome.kept_files > 0 {
        let prefixes: Vec<&str> = outcome.held.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "kept {} page file{} a live process holds (prefix {})",
            outcome.kept_files,
            if outcome.kept_files == 1 { "" } else { "s" },
            prefixes.join(", ")
        );
    }
    for problem in &outcome.problems {
        let _ = writeln!(out, "left alone: {problem}");
    }
    out
}

/// Removes `file` when no process holds it: `Ok(false)` when one does. A dry run only reads
/// what the kernel's table of locks said.
fn remove_if_unheld(file: &PageFile, dry_run: bool) -> Result<bool, String> {
    if dry_run {
        return Ok(file.held_by.is_empty());
    }
    let path = &file.path;
    let opened =
        BackingFile::open_existing(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let free = opened
        .try_lock_exclusive()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if free {
        // Removed while the lock is held; the pages go back to the kernel when `opened`
        // closes, for no mapping holds them.
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(free)
}

/// Removes a runtime directory whose configuration no process holds (a dead primary's), with
/// the configuration in it. A directory holding anything else is left, and named.
fn remove_dir_if_dead(dir: &Path) -> Result<bool, String> {
    let config = dir.join(dpmem::eal::runtime_dir::CONFIG_FILE);
    let lock = match BackingFile::open_existing(&config) {
        Ok(file) => {
            let free = file
                .try_lock_exclusive()
                .map_err(|e| format!("{}: {e}", config.display()))?;
            if !free {
                return Ok(false);
            }
            Some(file)
        }
        Err(e) if e.errno == dpmem_sys::error::Errno::NOENT => None,
        Err(e) => return Err(format!("{}: {e}", config.display())),
    };
    // The inter-process channel's sockets of the dead processes go with them.
    dpmem::eal::ipc::remove_dead_sockets(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let others: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != dpmem::eal::runtime_dir::CONFIG_FILE)
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "{}: holds {} besides the configuration",
            dir.display(),
            others.join(", ")
        ));
    }
    if lock.is_some() {
        std::fs::remove_file(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    }
    std::fs::remove_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    drop(lock);
    Ok(true)
}
