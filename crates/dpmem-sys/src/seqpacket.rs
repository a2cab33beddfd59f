//! Unix seqpacket sockets: a listener bound in a private directory, and its connections.
//!
//! `SOCK_SEQPACKET` keeps each message whole (one `send`, one `recv`), which is how DPDK's
//! telemetry protocol frames a request and its answer.
//!
//! The listener is bound through the directory's descriptor (`/proc/self/fd/<dir>/<name>`), so
//! the socket lands in the directory that was opened and checked ([`DirHandle`]) whatever
//! happens to the path meanwhile. Its file is then set to mode 0600: only this user may
//! connect, even if the directory were opened up later. Every descriptor is non-blocking, so a
//! server waiting in `poll` never sleeps in a call that a peer could stall.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

use crate::dir_handle::{DirHandle, PRIVATE_FILE_MODE};
use crate::error::{SysError, SysResult};

/// The longest path a client can connect to: `sun_path` holds 108 bytes, its NUL included.
pub const MAX_SOCKET_PATH: usize = 107;

/// The address of `name` in `dir`, reached through the directory's descriptor.
fn address_in(dir: &DirHandle, name: &str) -> SysResult<SocketAddrUnix> {
    let via_fd = format!("/proc/self/fd/{}/{name}", dir.fd().as_raw_fd());
    SocketAddrUnix::new(via_fd.as_str())
        .map_err(|e| SysError::with_path("socket address", &dir.path().join(name), e))
}

fn new_socket(shown: &Path) -> SysResult<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| SysError::with_path("socket", shown, e))
}

/// A listening seqpacket socket.
#[derive(Debug)]
pub struct SeqpacketListener {
    fd: OwnedFd,
}

impl SeqpacketListener {
    /// Binds `name` in `dir`, makes the socket file mode 0600 and listens. When `name` exists
    /// the error's errno is `EADDRINUSE` and nothing is changed: see [`probe_in`].
    pub fn bind_in(dir: &DirHandle, name: &str, backlog: i32) -> SysResult<SeqpacketListener> {
        let shown = dir.path().join(name);
        let fd = new_socket(&shown)?;
        rustix::net::bind(&fd, &address_in(dir, name)?)
            .map_err(|e| SysError::with_path("bind", &shown, e))?;
        // The file is ours and brand new; `bind` gave it 0777 less the umask.
        let listening = rustix::fs::chmodat(
            dir.fd(),
            name,
            Mode::from_raw_mode(PRIVATE_FILE_MODE),
            AtFlags::empty(),
        )
        .map_err(|e| SysError::with_path("set mode of", &shown, e))
        .and_then(|()| {
            rustix::net::listen(&fd, backlog).map_err(|e| SysError::with_path("listen", &shown, e))
        });
        if let Err(e) = listening {
            let _ = rustix::fs::unlinkat(dir.fd(), name, AtFlags::empty());
            return Err(e);
        }
        Ok(SeqpacketListener { fd })
    }

    /// The next waiting connection; `None` when there is none.
    pub fn accept(&self) -> SysResult<Option<SeqpacketConn>> {
        match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => Ok(Some(SeqpacketConn { fd })),
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(SysError::new("accept", "seqpacket listener", e)),
        }
    }
}

impl AsFd for SeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What is at a socket's name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEntry {
    /// Nothing.
    Missing,
    /// A socket of this user that a process listens on.
    Live,
    /// A socket of this user that nobody listens on any more (its server died).
    Stale,
    /// Something else, described for a person: not a socket, or another user's.
    Foreign(String),
}

/// Looks at `name` in `dir`: missing, a live or a stale socket of ours, or something else.
/// A live socket is told from a stale one by connecting to it, as DPDK's telemetry does (the
/// server sees a client come and go).
pub fn probe_in(dir: &DirHandle, name: &str) -> SysResult<SocketEntry> {
    let shown = dir.path().join(name);
    let stat = match rustix::fs::statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(SocketEntry::Missing),
        Err(e) => return Err(SysError::with_path("stat", &shown, e)),
    };
    #[allow(clippy::unnecessary_cast)]
    let kind = FileType::from_raw_mode(stat.st_mode as _);
    if kind != FileType::Socket {
        return Ok(SocketEntry::Foreign(format!("a {kind:?}, not a socket")));
    }
    if stat.st_uid != crate::process::effective_uid() {
        return Ok(SocketEntry::Foreign(format!(
            "a socket of uid {}, not of this user",
            stat.st_uid
        )));
    }
    let fd = new_socket(&shown)?;
    match rustix::net::connect(&fd, &address_in(dir, name)?) {
        // A full backlog (`EAGAIN`) is a listener too, and so is a socket of another type
        // (`EPROTOTYPE`): only a socket nobody is bound to refuses the connection.
        Ok(()) | Err(Errno::AGAIN | Errno::INPROGRESS | Errno::PROTOTYPE) => Ok(SocketEntry::Live),
        Err(Errno::CONNREFUSED) => Ok(SocketEntry::Stale),
        Err(Errno::NOENT) => Ok(SocketEntry::Missing),
        Err(e) => Err(SysError::with_path("connect", &shown, e)),
    }
}

/// One connection of a [`SeqpacketListener`].
#[derive(Debug)]
pub struct SeqpacketConn {
    fd: OwnedFd,
}

/// What [`SeqpacketConn::recv`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// No message is waiting.
    Nothing,
    /// The peer closed the connection (or sent an empty message, which reads the same).
    Closed,
    /// A message of this many bytes; more than the buffer holds when it was cut short (the
    /// rest is gone).
    Message(usize),
}

impl SeqpacketConn {
    /// Reads the next message into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> SysResult<Received> {
        match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::TRUNC | RecvFlags::DONTWAIT) {
            Ok((_, 0)) => Ok(Received::Closed),
            Ok((_, whole)) => Ok(Received::Message(whole)),
            Err(Errno::AGAIN | Errno::INTR) => Ok(Received::Nothing),
            Err(Errno::CONNRESET) => Ok(Received::Closed),
            Err(e) => Err(SysError::new("recv", "seqpacket connection", e)),
        }
    }

    /// Sends `msg` as one message, without waiting: a peer that does not read its answers
    /// fills the socket's buffer and gets `EAGAIN` here instead of stalling the sender.
    pub fn send(&self, msg: &[u8]) -> SysResult<()> {
        match rustix::net::send(&self.fd, msg, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(n) if n == msg.len() => Ok(()),
            Ok(_) => Err(SysError::new(
                "send",
                "seqpacket connection",
                Errno::MSGSIZE,
            )),
            Err(e) => Err(SysError::new("send", "seqpacket connection", e)),
        }
    }
}

impl AsFd for SeqpacketConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    use super::*;

    fn private_dir() -> (tempfile::TempDir, DirHandle) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = DirHandle::open_anchor(tmp.path()).unwrap();
        (tmp, dir)
    }

    fn client(path: &Path) -> OwnedFd {
        let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        rustix::net::connect(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
        fd
    }

    #[test]
    fn a_bound_socket_is_private_and_keeps_message_boundaries() {
        let (tmp, dir) = private_dir();
        let listener = SeqpacketListener::bind_in(&dir, "s", 4).unwrap();
        let path = tmp.path().join("s");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let accept = || loop {
            if let Some(conn) = listener.accept().unwrap() {
                break conn;
            }
        };
        // The probe connects, and goes: its server sees a client that closed at once.
        assert_eq!(probe_in(&dir, "s").unwrap(), SocketEntry::Live);
        assert_eq!(accept().recv(&mut [0u8; 8]).unwrap(), Received::Closed);

        let peer = client(&path);
        let conn = accept();
        rustix::net::send(&peer, b"/first", SendFlags::empty()).unwrap();
        rustix::net::send(&peer, b"/second,with a parameter", SendFlags::empty()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(conn.recv(&mut buf).unwrap(), Received::Message(6));
        assert_eq!(&buf[..6], b"/first");
        // Longer than the buffer: the whole length is reported, the rest is dropped.
        assert_eq!(conn.recv(&mut buf).unwrap(), Received::Message(24));
        assert_eq!(conn.recv(&mut buf).unwrap(), Received::Nothing);
        conn.send(b"answer").unwrap();
        let mut back = [0u8; 16];
        let (_, n) = rustix::net::recv(&peer, &mut back[..], RecvFlags::empty()).unwrap();
        assert_eq!(&back[..n], b"answer");
        drop(peer);
        assert_eq!(conn.recv(&mut buf).unwrap(), Received::Closed);
    }

    #[test]
    fn a_socket_nobody_listens_on_is_stale_and_a_taken_name_is_refused() {
        let (tmp, dir) = private_dir();
        let listener = SeqpacketListener::bind_in(&dir, "s", 4).unwrap();
        let err = SeqpacketListener::bind_in(&dir, "s", 4).unwrap_err();
        assert_eq!(err.errno, Errno::ADDRINUSE);
        drop(listener);
        assert_eq!(probe_in(&dir, "s").unwrap(), SocketEntry::Stale);
        std::fs::remove_file(tmp.path().join("s")).unwrap();
        assert_eq!(probe_in(&dir, "s").unwrap(), SocketEntry::Missing);
        std::fs::write(tmp.path().join("s"), b"").unwrap();
        assert!(matches!(
            probe_in(&dir, "s").unwrap(),
            SocketEntry::Foreign(_)
        ));
    }
}
