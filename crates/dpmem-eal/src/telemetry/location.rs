//! Where the socket goes: where DPDK puts its own, so that DPDK's tools find it.
//!
//! DPDK keeps a file prefix's runtime files in `<base>/dpdk/<prefix>`, the base being
//! `$RUNTIME_DIRECTORY` when set (systemd's), else `/var/run` for root, else
//! `$XDG_RUNTIME_DIR`, else `/tmp`. Its telemetry socket there is `dpdk_telemetry.v2`; a
//! further process on the same prefix (`--in-memory` ones, or here a secondary) takes the first
//! free `dpdk_telemetry.v2:<n>`, n = 1, 2, ... `dpdk-telemetry.py -f <prefix> [-i <n>]` looks in
//! exactly that place, so serving there lets it connect unchanged. (dpmem's own runtime
//! directory, `/var/run/dpmem/<prefix>`, is not one it can be pointed at by prefix.)
//!
//! The steps are checked as dpmem's runtime directory is ([`DirHandle`]): the base must be
//! root's or this user's (and sticky if others may write to it); `dpdk` in it is made 0700
//! when missing, and an existing one is used when it passes the base's rule (DPDK, or a
//! package, may have made it); the prefix directory must be a private directory of this
//! user (0700), made so when missing. A name already taken by a live server is passed over,
//! a stale socket (its server died) is replaced, as DPDK does; anything else there is
//! refused.

use std::path::{Path, PathBuf};

use dpmem_sys::dir_handle::{DirError, DirHandle};
use dpmem_sys::error::Errno;
use dpmem_sys::seqpacket::{probe_in, SeqpacketListener, SocketEntry, MAX_SOCKET_PATH};

use super::error::TelemetryError;

/// The socket's name in its directory (before any `:<n>`), as DPDK's tools expect it.
pub const SOCKET_NAME: &str = "dpdk_telemetry.v2";

/// Connections waiting to be accepted.
const BACKLOG: i32 = 16;

/// The highest `:<n>` tried (DPDK counts in a `short`).
const MAX_INSTANCE: u32 = i16::MAX as u32;

/// The base DPDK's runtime directories are in, by DPDK's rule (and its client's: an empty
/// variable counts as unset).
fn base() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("RUNTIME_DIRECTORY") {
        return PathBuf::from(dir);
    }
    if dpmem_sys::process::is_root() {
        return PathBuf::from("/var/run");
    }
    set("XDG_RUNTIME_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// DPDK's runtime directory for `prefix`, where the telemetry socket of an EAL with that file
/// prefix is (whether or not it exists).
pub fn dpdk_runtime_dir(prefix: &str) -> PathBuf {
    base().join("dpdk").join(prefix)
}

fn refusal(err: DirError) -> TelemetryError {
    match err {
        DirError::Refused { path, reason } => TelemetryError::Directory { path, reason },
        DirError::Sys(e) => TelemetryError::Sys(e),
    }
}

/// The listening socket, and what to remove when it goes.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    pub listener: SeqpacketListener,
    pub path: PathBuf,
    name: String,
    dir: DirHandle,
    dpdk_dir: DirHandle,
    prefix: String,
}

impl BoundSocket {
    /// Removes the socket, and the sockets of this prefix's servers that died without
    /// removing theirs (a secondary killed by a signal), then the prefix directory if that
    /// leaves it empty (a DPDK program or another process of the prefix may still have files
    /// there).
    pub fn remove(&self) {
        let _ = self.dir.remove_file(&self.name);
        // Under the directory's lock, as binding is: a socket being bound is not taken for a
        // dead one.
        if let Ok(lock) = self.dir.lock_exclusive() {
            // The names are listed by path; each is checked and removed through the handle.
            let names: Vec<String> = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.starts_with(SOCKET_NAME))
                .collect();
            for name in names {
                if matches!(probe_in(&self.dir, &name), Ok(SocketEntry::Stale)) {
                    let _ = self.dir.remove_file(&name);
                }
            }
            drop(lock);
        }
        let _ = self.dpdk_dir.remove_empty_subdir(&self.prefix);
    }
}

/// `<base>/dpdk`: made private when missing, else used when it passes the anchor's rule.
fn open_dpdk_dir(anchor: &DirHandle) -> Result<DirHandle, TelemetryError> {
    match anchor.create_private_subdir("dpdk") {
        Ok((dir, _)) => Ok(dir),
        Err(DirError::Refused { .. }) => {
            DirHandle::open_anchor(&anchor.path().join("dpdk")).map_err(refusal)
        }
        Err(e) => Err(refusal(e)),
    }
}

/// Binds the telemetry socket of `prefix`: `dpdk_telemetry.v2`, or the first free
/// `dpdk_telemetry.v2:<n>` when live servers hold the names before it.
pub(crate) fn bind(prefix: &str) -> Result<BoundSocket, TelemetryError> {
    match bind_once(prefix) {
        // The prefix directory was removed between opening it and binding in it: the last
        // server of another process on this prefix went. Once more, in a new directory.
        Err(TelemetryError::Sys(e)) if e.errno == Errno::NOENT => bind_once(prefix),
        bound => bound,
    }
}

fn bind_once(prefix: &str) -> Result<BoundSocket, TelemetryError> {
    let anchor = DirHandle::open_anchor(&base()).map_err(refusal)?;
    let dpdk_dir = open_dpdk_dir(&anchor)?;
    let (dir, _) = dpdk_dir.create_private_subdir(prefix).map_err(refusal)?;
    // Two dpmem processes replacing the same stale socket must not remove each other's new
    // one: the names are tried under the directory's lock.
    let lock = dir.lock_exclusive().map_err(refusal)?;
    for instance in 0..=MAX_INSTANCE {
        let name = if instance == 0 {
            SOCKET_NAME.to_owned()
        } else {
            format!("{SOCKET_NAME}:{instance}")
        };
        let path = dir.path().join(&name);
        check_length(&path)?;
        if let Some(listener) = bind_name(&dir, &name)? {
            drop(lock);
            return Ok(BoundSocket {
                listener,
                path,
                name,
                dir,
                dpdk_dir,
                prefix: prefix.to_owned(),
            });
        }
    }
    drop(lock);
    Err(TelemetryError::Directory {
        path: dir.path().to_path_buf(),
        reason: format!("every socket name up to {SOCKET_NAME}:{MAX_INSTANCE} is in use"),
    })
}

/// Clients connect by path, and a unix socket's address holds at most 107 bytes.
fn check_length(path: &Path) -> Result<(), TelemetryError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(TelemetryError::Directory {
            path: path.to_path_buf(),
            reason: format!(
                "{len} bytes long; a unix socket's path holds at most {MAX_SOCKET_PATH} (use a shorter --file-prefix or runtime directory)"
            ),
        });
    }
    Ok(())
}

/// Binds `name` in `dir`: `None` when a live server holds it.
fn bind_name(dir: &DirHandle, name: &str) -> Result<Option<SeqpacketListener>, TelemetryError> {
    // Twice at most: once, and once more after removing a stale socket (or after one that
    // was in the way went meanwhile).
    for _ in 0..2 {
        match SeqpacketListener::bind_in(dir, name, BACKLOG) {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) if e.errno == Errno::ADDRINUSE => {}
            Err(e) => return Err(e.into()),
        }
        match probe_in(dir, name)? {
            SocketEntry::Live => return Ok(None),
            SocketEntry::Missing => {}
            SocketEntry::Stale => dir.remove_file(name).map_err(refusal)?,
            SocketEntry::Foreign(what) => {
                return Err(TelemetryError::Directory {
                    path: dir.path().join(name),
                    reason: format!("{what}; remove it"),
                })
            }
        }
    }
    // Taken again between the removal and the bind: another process's now.
    Ok(None)
}
