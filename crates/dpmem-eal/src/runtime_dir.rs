//! The runtime directory: where the shared configuration of one file prefix lives.
//!
//! It is `<base>/<prefix>`, the base being `/var/run/dpmem` for root; for other users
//! `$XDG_RUNTIME_DIR/dpmem` when that variable names a directory of this user (an absolute
//! path, as the XDG rules ask), else `/run/user/<uid>/dpmem` when that is a directory of this
//! user, else `/tmp/dpmem-<uid>`.
//!
//! Whoever can open the files there can map all of the primary's memory, and whoever can choose
//! where the directory lies can make dpmem write there. `/tmp` is shared with every other user,
//! who may plant a symbolic link or a directory of their own under the name dpmem is about to
//! use. So each step goes through [`dpmem_sys::dir_handle`]: the place the base lies in must be
//! owned by root or by us (and sticky if others may write to it); the base and the prefix
//! directory are opened relative to their parents without following symbolic links, created
//! with mode 0700 when missing, and used only when they are real directories of ours with mode
//! 0700 (no mode is ever changed on a directory dpmem did not just create); the configuration
//! file is created with `O_EXCL` or opened without following a link, and only when it is a
//! regular file of ours.
//!
//! A primary's configuration file and directory go when its [`Eal`](crate::Eal) is dropped;
//! a cleanup registered at start-up also removes them when the process exits without dropping it (an EAL held in a
//! static, or leaked to lend it to lcores for `'static`), which would otherwise leave them
//! behind on every run.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, TryLockError};

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::dir_handle::{DirError, DirHandle};

use crate::error::EalError;

/// The name of the shared configuration file in a runtime directory.
pub const CONFIG_FILE: &str = "config";

/// The open runtime directory of one file prefix.
#[derive(Debug)]
pub(crate) struct RuntimeDir {
    dir: DirHandle,
}

impl RuntimeDir {
    /// Where the directory is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the configuration file is (whether or not it exists).
    pub fn config_path(&self) -> PathBuf {
        self.path().join(CONFIG_FILE)
    }

    /// The open directory itself (the inter-process channel's sockets are made in it).
    pub(crate) fn into_handle(self) -> DirHandle {
        self.dir
    }

    /// Opens the configuration file, creating it (empty, mode 0600) when missing.
    pub(crate) fn open_or_create_config(&self) -> Result<BackingFile, EalError> {
        BackingFile::open_or_create_in(&self.dir, CONFIG_FILE)
            .map(|(file, _created)| file)
            .map_err(refusal)
    }

    /// Opens the existing configuration file; `None` when there is none.
    pub(crate) fn open_config(&self) -> Result<Option<BackingFile>, EalError> {
        BackingFile::open_existing_in(&self.dir, CONFIG_FILE).map_err(refusal)
    }
}

/// A refusal keeps its reason; a failed system call keeps its errno (and with it the error's
/// kind: `EACCES` is not `ENOENT`).
fn refusal(err: DirError) -> EalError {
    match err {
        DirError::Refused { .. } => EalError::RuntimeDir {
            path: err.path(),
            reason: match err {
                DirError::Refused { reason, .. } => reason,
                DirError::Sys(_) => unreachable!("matched Refused"),
            },
        },
        DirError::Sys(e) => EalError::sys("runtime directory", e),
    }
}

/// The directory that holds the base, and the base's name in it.
fn base_parts() -> (PathBuf, String) {
    let uid = dpmem_sys::process::effective_uid();
    if dpmem_sys::process::is_root() {
        return (PathBuf::from("/var/run"), "dpmem".to_owned());
    }
    // The XDG rules: a relative path is not a runtime directory and is ignored; one that is
    // not this user's (left behind by `su`, say) cannot be written and is passed over too.
    let ours = |dir: &Path| {
        use std::os::unix::fs::MetadataExt;
        dir.is_absolute() && std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid)
    };
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let dir = PathBuf::from(dir);
        if ours(&dir) {
            return (dir, "dpmem".to_owned());
        }
    }
    let per_user = PathBuf::from(format!("/run/user/{uid}"));
    if ours(&per_user) {
        return (per_user, "dpmem".to_owned());
    }
    (PathBuf::from("/tmp"), format!("dpmem-{uid}"))
}

fn open_anchor() -> Result<(DirHandle, String), EalError> {
    let (anchor, name) = base_parts();
    Ok((DirHandle::open_anchor(&anchor).map_err(refusal)?, name))
}

/// The directory for `prefix`, created (with the base) mode 0700 when missing; an existing one
/// is used only when it is a real directory of this user with mode 0700.
pub(crate) fn create(prefix: &str) -> Result<RuntimeDir, EalError> {
    let (anchor, name) = open_anchor()?;
    let (base, _created) = anchor.create_private_subdir(&name).map_err(refusal)?;
    let (dir, _created) = base.create_private_subdir(prefix).map_err(refusal)?;
    Ok(RuntimeDir { dir })
}

/// The existing directory for `prefix`, checked as [`create`] checks it; `None` when it (or the
/// base) does not exist. Creates nothing: a secondary looking for its primary uses this.
pub(crate) fn open_existing(prefix: &str) -> Result<Option<RuntimeDir>, EalError> {
    let (anchor, name) = open_anchor()?;
    let Some(base) = anchor.open_private_subdir(&name).map_err(refusal)? else {
        return Ok(None);
    };
    Ok(base
        .open_private_subdir(prefix)
        .map_err(refusal)?
        .map(|dir| RuntimeDir { dir }))
}

/// Where the directory for `prefix` is, without creating it.
pub fn location(prefix: &str) -> PathBuf {
    let (anchor, name) = base_parts();
    anchor.join(name).join(prefix)
}

/// Removes the directory if nothing is left in it (`rmdir` never follows a symbolic link).
pub(crate) fn remove_if_empty(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

/// What to remove if the process exits while its owner still lives.
#[derive(Debug)]
struct ExitEntry {
    id: u64,
    /// The process that registered it: a child made by `fork` inherits the list and the hook,
    /// and must not remove its parent's files when it exits.
    pid: u32,
    file: PathBuf,
    /// Removed after `file`, if then empty.
    dir: PathBuf,
}

static AT_EXIT: Mutex<Vec<ExitEntry>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

extern "C" fn remove_leftovers_at_exit() {
    // Never block or panic here: a thread that held the lock when `exit` was called will not
    // release it, and a panic cannot cross this `extern "C"` boundary.
    let entries = match AT_EXIT.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    let pid = dpmem_sys::process::pid();
    for entry in entries.iter().filter(|e| e.pid == pid) {
        let _ = std::fs::remove_file(&entry.file);
        remove_if_empty(&entry.dir);
    }
}

/// Has `file`, then `dir` if it is left empty, removed should the process exit while this is
/// alive: for what an EAL never dropped (held in a static, or leaked to lend it to lcores for
/// `'static`) would otherwise leave behind on every run. Dropping it cancels that.
#[derive(Debug)]
pub(crate) struct RemoveAtExit {
    id: u64,
}

impl RemoveAtExit {
    pub(crate) fn register(file: PathBuf, dir: PathBuf) -> RemoveAtExit {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        // Without the hook (the C library refused to record it) the files are left behind at
        // exit, as before; the EAL itself works the same.
        HOOK.call_once(|| {
            let _ = dpmem_sys::process::run_at_exit(remove_leftovers_at_exit);
        });
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AT_EXIT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ExitEntry {
                id,
                pid: dpmem_sys::process::pid(),
                file,
                dir,
            });
        RemoveAtExit { id }
    }
}

impl Drop for RemoveAtExit {
    fn drop(&mut self) {
        AT_EXIT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|e| e.id != self.id);
    }
}

/// Removes the runtime directory, if empty, when dropped (after the memory and its
/// configuration file are gone). For a primary it also has the configuration file and the
/// directory removed should the process exit with this still alive.
#[derive(Debug)]
pub(crate) struct Cleanup {
    dir: PathBuf,
    at_exit: Option<RemoveAtExit>,
}

impl Cleanup {
    /// For the runtime directory `dir` of a secondary: removed only if left empty.
    pub(crate) fn secondary(dir: PathBuf) -> Cleanup {
        Cleanup { dir, at_exit: None }
    }

    /// For the runtime directory `dir` of a primary, whose configuration file is `config`.
    pub(crate) fn primary(dir: PathBuf, config: PathBuf) -> Cleanup {
        let at_exit = Some(RemoveAtExit::register(config, dir.clone()));
        Cleanup { dir, at_exit }
    }

    /// The runtime directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        drop(self.at_exit.take());
        remove_if_empty(&self.dir);
    }
}
