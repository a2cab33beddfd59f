//! Who is on the channel: the sockets in the runtime directory, named as DPDK names them.
//!
//! The primary's socket is `mp_socket`; a secondary's is `mp_socket_<pid>_<n>`, `n` counting
//! the EALs this process started (DPDK takes a TSC reading there; a counter cannot repeat).
//! The primary's peers are every secondary socket in the directory, a secondary's peer is the
//! primary's socket: secondaries do not talk to each other, as in DPDK.
//!
//! A socket whose process died stays in the directory, unbound. A send to it is refused, and
//! a primary removes it then; a primary starting removes every one left by earlier runs.

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_sys::datagram;
use dpmem_sys::dir_handle::DirHandle;

use super::error::IpcError;
use crate::memory::ProcessRole;

/// The primary's socket.
pub const PRIMARY_SOCKET: &str = "mp_socket";
const SECONDARY_PREFIX: &str = "mp_socket_";

/// The socket name of this process's next secondary EAL.
pub(crate) fn next_secondary_socket() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{SECONDARY_PREFIX}{}_{}",
        dpmem_sys::process::pid(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` is a channel socket's name: the primary's, or `mp_socket_` and then digits
/// and underscores only (so a name read off the wire can never leave the directory).
pub(crate) fn check_socket_name(name: &str) -> Result<(), String> {
    let valid = name == PRIMARY_SOCKET
        || name.strip_prefix(SECONDARY_PREFIX).is_some_and(|tail| {
            !tail.is_empty()
                && tail.len() <= 40
                && tail.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a channel socket name"))
    }
}

/// The sockets a process of `role` whose own socket is `own` sends to, in byte order.
pub(crate) fn peers_of(
    dir: &DirHandle,
    role: ProcessRole,
    own: &str,
) -> Result<Vec<String>, IpcError> {
    let listed = match role {
        ProcessRole::Primary => SECONDARY_PREFIX,
        ProcessRole::Secondary => PRIMARY_SOCKET,
    };
    let names = datagram::socket_names_in(dir, listed)
        .map_err(|e| IpcError::sys("list the channel's peers", e))?;
    Ok(names
        .into_iter()
        .filter(|name| name != own && check_socket_name(name).is_ok())
        .filter(|name| role == ProcessRole::Primary || name == PRIMARY_SOCKET)
        .collect())
}

/// Removes the socket of a peer found dead, unless something is bound to the name again.
pub(crate) fn remove_dead(dir: &DirHandle, name: &str) {
    if datagram::is_bound(dir, name).is_ok_and(|bound| !bound) {
        let _ = dir.remove_file(name);
    }
}

/// Removes every secondary socket nobody is bound to (a primary starting: left by processes
/// that died without removing theirs).
pub(crate) fn remove_dead_secondaries(dir: &DirHandle) {
    if let Ok(names) = datagram::socket_names_in(dir, SECONDARY_PREFIX) {
        for name in names.iter().filter(|n| check_socket_name(n).is_ok()) {
            remove_dead(dir, name);
        }
    }
}

/// Removes every channel socket in the runtime directory `dir` that no process is bound to,
/// the primary's included, and returns their names: for housekeeping of a prefix whose
/// processes died (`dpmem hugepages clean`), which would otherwise find the directory not
/// empty. A live process's socket is left alone.
pub fn remove_dead_sockets(dir: &std::path::Path) -> Result<Vec<String>, IpcError> {
    let dir = DirHandle::open_anchor(dir).map_err(|e| match e {
        dpmem_sys::dir_handle::DirError::Sys(source) => IpcError::sys("runtime directory", source),
        refused => IpcError::Disabled(refused.to_string()),
    })?;
    let names = datagram::socket_names_in(&dir, PRIMARY_SOCKET)
        .map_err(|e| IpcError::sys("list the channel's sockets", e))?;
    let mut removed = Vec::new();
    for name in names.into_iter().filter(|n| check_socket_name(n).is_ok()) {
        if datagram::is_bound(&dir, &name).is_ok_and(|bound| !bound)
            && dir.remove_file(&name).is_ok()
        {
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_channel_names_pass() {
        assert!(check_socket_name("mp_socket").is_ok());
        assert!(check_socket_name(&next_secondary_socket()).is_ok());
        for bad in [
            "mp_socket_",
            "mp_socket_1/..",
            "config",
            "mp_socket_x",
            "../mp_socket",
        ] {
            assert!(check_socket_name(bad).is_err(), "{bad}");
        }
    }
}
