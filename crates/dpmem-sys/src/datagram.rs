//! Unix datagram sockets named in a private directory, whose messages may carry open file
//! descriptors (`SCM_RIGHTS`): the transport of the EAL's inter-process channel.
//!
//! Datagrams keep each message whole and need no connection, so one socket per process hears
//! every peer, and a peer that dies leaves nothing half-read behind. Sockets are bound and
//! addressed through the directory's descriptor (`/proc/self/fd/<dir>/<name>`), as the
//! seqpacket listener is, so they land in the directory that was opened and checked whatever
//! happens to its path; a bound socket's file is set to mode 0600 (only this user may send to
//! it). A sender that talks to one peer often keeps a [`DatagramLink`], connected once, so
//! that a datagram costs no lookup of that path (a walk through `/proc` on every send). Every call is non-blocking: a receiver waits in `poll`, and a sender never sleeps on a
//! peer that stopped reading.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::dir_handle::{DirHandle, PRIVATE_FILE_MODE};
use crate::error::{SysError, SysResult};

/// The most descriptors one datagram carries (DPDK's `RTE_MP_MAX_FD_NUM`); the receive
/// buffer has room for exactly these.
pub const MAX_DATAGRAM_FDS: usize = 8;

/// The address of `name` in `dir`, reached through the directory's descriptor.
fn address_in(dir: &DirHandle, name: &str) -> SysResult<SocketAddrUnix> {
    let via_fd = format!("/proc/self/fd/{}/{name}", dir.fd().as_raw_fd());
    SocketAddrUnix::new(via_fd.as_str())
        .map_err(|e| SysError::with_path("socket address", &dir.path().join(name), e))
}

fn new_socket(dir: &DirHandle, name: &str) -> SysResult<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| SysError::with_path("socket", &dir.path().join(name), e))
}

/// A bound datagram socket.
#[derive(Debug)]
pub struct DatagramSocket {
    fd: OwnedFd,
}

/// One datagram taken off a socket.
#[derive(Debug)]
pub struct Datagram {
    /// The datagram's whole length: more than the buffer when it was cut short.
    pub len: usize,
    /// The descriptors it carried, open in this process now (close-on-exec).
    pub fds: Vec<OwnedFd>,
    /// Descriptors were dropped by the kernel: more than [`MAX_DATAGRAM_FDS`] were sent.
    pub fds_truncated: bool,
}

/// What sending to a named socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The datagram is queued on the peer's socket.
    Sent,
    /// Nobody is bound to the name any more (its process died), or the name is gone.
    PeerGone,
}

impl DatagramSocket {
    /// Binds `name` in `dir` and makes its file mode 0600. When `name` exists the error's
    /// errno is `EADDRINUSE` and nothing is changed.
    pub fn bind_in(dir: &DirHandle, name: &str) -> SysResult<DatagramSocket> {
        let shown = dir.path().join(name);
        let fd = new_socket(dir, name)?;
        rustix::net::bind(&fd, &address_in(dir, name)?)
            .map_err(|e| SysError::with_path("bind", &shown, e))?;
        // The file is ours and brand new; `bind` gave it 0777 less the umask.
        if let Err(e) = rustix::fs::chmodat(
            dir.fd(),
            name,
            Mode::from_raw_mode(PRIVATE_FILE_MODE),
            AtFlags::empty(),
        ) {
            let _ = rustix::fs::unlinkat(dir.fd(), name, AtFlags::empty());
            return Err(SysError::with_path("set mode of", &shown, e));
        }
        Ok(DatagramSocket { fd })
    }

    /// Sends `bytes` and `fds` as one datagram to the socket `name` in `dir`, reached through
    /// the directory's descriptor on every call; a sender that talks to the same peer often
    /// keeps a [`DatagramLink`] to it instead.
    ///
    /// A peer whose queue is full is given a moment (up to about 100 ms) to read before the
    /// send fails with `EAGAIN`: the channel's peers read on a thread of their own, so a full
    /// queue means a burst, not a peer that stopped.
    pub fn send_to(
        &self,
        dir: &DirHandle,
        name: &str,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> SysResult<Delivery> {
        check_fd_count(fds)?;
        let address = address_in(dir, name)?;
        send_datagram(&self.fd, Some(&address), bytes, fds)
            .map_err(|e| SysError::with_path("send", &dir.path().join(name), e))
    }

    /// Takes the next datagram into `buf`; `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> SysResult<Option<Datagram>> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_DATAGRAM_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::DONTWAIT | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(received) => break received,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(SysError::new("recv", "datagram socket", e)),
            }
        };
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(passed) = message {
                fds.extend(passed);
            }
        }
        Ok(Some(Datagram {
            len: received.bytes,
            fds,
            fds_truncated: received.flags.contains(ReturnFlags::CTRUNC),
        }))
    }
}

fn check_fd_count(fds: &[BorrowedFd<'_>]) -> SysResult<()> {
    if fds.len() > MAX_DATAGRAM_FDS {
        return Err(SysError::new(
            "send",
            format!("{} descriptors", fds.len()),
            Errno::INVAL,
        ));
    }
    Ok(())
}

/// Sends one datagram on `fd`, to `address` or, when `None`, to the peer `fd` is connected
/// to; a full peer queue is retried for about 100 ms (see [`DatagramSocket::send_to`]).
fn send_datagram(
    fd: &OwnedFd,
    address: Option<&SocketAddrUnix>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<Delivery, Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_DATAGRAM_FDS))];
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let mut attempts = 0;
    loop {
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(Errno::NOBUFS);
        }
        let iov = [IoSlice::new(bytes)];
        let sent = match address {
            Some(address) => rustix::net::sendmsg_addr(fd, address, &iov, &mut control, flags),
            None => rustix::net::sendmsg(fd, &iov, &mut control, flags),
        };
        match sent {
            Ok(n) if n == bytes.len() => return Ok(Delivery::Sent),
            Ok(_) => return Err(Errno::MSGSIZE),
            Err(Errno::CONNREFUSED | Errno::NOENT) => return Ok(Delivery::PeerGone),
            // A link another thread found dead a moment ago is no longer connected.
            Err(Errno::NOTCONN) if address.is_none() => return Ok(Delivery::PeerGone),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// An unbound datagram socket connected to one named socket: what a sender keeps per peer so
/// that a datagram costs no path lookup. The name is resolved once, when connecting, through
/// the directory's descriptor (as every address here is); afterwards the link reaches that
/// very socket whatever happens to the name, and reports the peer gone once its process
/// closed it. A new process bound to the same name later is reached by connecting anew.
///
/// Datagrams sent on a link carry no sender address: a receiver that answers must learn
/// where from the datagram itself (the channel's frames name their sender).
#[derive(Debug)]
pub struct DatagramLink {
    fd: OwnedFd,
}

impl DatagramLink {
    /// Connects to the socket `name` in `dir`; `None` when nobody is bound to it (its process
    /// died) or there is no such name.
    pub fn connect_in(dir: &DirHandle, name: &str) -> SysResult<Option<DatagramLink>> {
        let fd = new_socket(dir, name)?;
        let address = address_in(dir, name)?;
        loop {
            match rustix::net::connect(&fd, &address) {
                Ok(()) => return Ok(Some(DatagramLink { fd })),
                Err(Errno::INTR) => continue,
                Err(Errno::CONNREFUSED | Errno::NOENT) => return Ok(None),
                Err(e) => return Err(SysError::with_path("connect", &dir.path().join(name), e)),
            }
        }
    }

    /// Sends `bytes` and `fds` as one datagram to the connected peer; `PeerGone` once its
    /// process closed the socket (the link is of no further use then). A full peer queue is
    /// waited for as [`DatagramSocket::send_to`] does.
    pub fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> SysResult<Delivery> {
        check_fd_count(fds)?;
        send_datagram(&self.fd, None, bytes, fds)
            .map_err(|e| SysError::new("send", "connected datagram socket", e))
    }
}

impl AsFd for DatagramSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether a process is bound to the datagram socket `name` in `dir`: connecting tells, and
/// sends nothing (a socket whose process died refuses the connection).
pub fn is_bound(dir: &DirHandle, name: &str) -> SysResult<bool> {
    let fd = new_socket(dir, name)?;
    match rustix::net::connect(&fd, &address_in(dir, name)?) {
        Ok(()) | Err(Errno::AGAIN) => Ok(true),
        Err(Errno::CONNREFUSED | Errno::NOENT) => Ok(false),
        Err(e) => Err(SysError::with_path("connect", &dir.path().join(name), e)),
    }
}

/// The names in `dir` that start with `prefix` and are sockets of this user, in byte order.
/// The directory is read through its own descriptor (`getdents`), never through a path.
pub fn socket_names_in(dir: &DirHandle, prefix: &str) -> SysResult<Vec<String>> {
    let mut entries = rustix::fs::Dir::read_from(dir.fd())
        .map_err(|e| SysError::with_path("list", dir.path(), e))?;
    let uid = crate::process::effective_uid();
    let mut names = Vec::new();
    while let Some(entry) = entries.read() {
        let entry = entry.map_err(|e| SysError::with_path("list", dir.path(), e))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        // A name that went meanwhile is simply not listed.
        let Ok(stat) = rustix::fs::statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        #[allow(clippy::unnecessary_cast)]
        let kind = FileType::from_raw_mode(stat.st_mode as _);
        if kind == FileType::Socket && stat.st_uid == uid {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn private_dir() -> (tempfile::TempDir, DirHandle) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = DirHandle::open_anchor(tmp.path()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn a_datagram_carries_its_bytes_and_descriptors_whole() {
        let (tmp, dir) = private_dir();
        let a = DatagramSocket::bind_in(&dir, "a").unwrap();
        let b = DatagramSocket::bind_in(&dir, "b").unwrap();
        let mode = std::fs::metadata(tmp.path().join("b"))
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
        let mut buf = [0u8; 16];
        assert!(b.recv(&mut buf).unwrap().is_none());

        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"passed along").unwrap();
        let sent = a.send_to(&dir, "b", b"hello", &[file.as_fd()]).unwrap();
        assert_eq!(sent, Delivery::Sent);
        a.send_to(&dir, "b", b"a longer second datagram", &[])
            .unwrap();

        let first = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!((first.len, &buf[..5]), (5, &b"hello"[..]));
        assert_eq!(first.fds.len(), 1);
        let mut received = std::fs::File::from(first.fds.into_iter().next().unwrap());
        received.rewind().unwrap();
        let mut text = String::new();
        received.read_to_string(&mut text).unwrap();
        assert_eq!(text, "passed along");
        // Longer than the buffer: the whole length is reported.
        let second = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!(second.len, 24);
        assert!(second.fds.is_empty());
    }

    #[test]
    fn a_socket_whose_owner_closed_it_is_gone_and_is_told_apart_from_a_bound_one() {
        let (_tmp, dir) = private_dir();
        let a = DatagramSocket::bind_in(&dir, "mp_a").unwrap();
        let b = DatagramSocket::bind_in(&dir, "mp_b").unwrap();
        assert_eq!(
            DatagramSocket::bind_in(&dir, "mp_b").unwrap_err().errno,
            Errno::ADDRINUSE
        );
        assert_eq!(socket_names_in(&dir, "mp_").unwrap(), ["mp_a", "mp_b"]);
        assert!(is_bound(&dir, "mp_b").unwrap());
        drop(b);
        assert!(!is_bound(&dir, "mp_b").unwrap());
        assert_eq!(
            a.send_to(&dir, "mp_b", b"x", &[]).unwrap(),
            Delivery::PeerGone
        );
        assert_eq!(
            a.send_to(&dir, "missing", b"x", &[]).unwrap(),
            Delivery::PeerGone
        );
        let too_many: Vec<_> = (0..9).map(|_| a.as_fd()).collect();
        assert_eq!(
            DatagramLink::connect_in(&dir, "mp_a")
                .unwrap()
                .unwrap()
                .send(b"x", &too_many)
                .unwrap_err()
                .errno,
            Errno::INVAL
        );
        assert_eq!(
            a.send_to(&dir, "mp_a", b"x", &too_many).unwrap_err().errno,
            Errno::INVAL
        );
    }

    #[test]
    fn a_link_reaches_its_peer_until_it_closes_and_then_whoever_binds_the_name_anew() {
        let (_tmp, dir) = private_dir();
        assert!(DatagramLink::connect_in(&dir, "mp_b").unwrap().is_none());
        let b = DatagramSocket::bind_in(&dir, "mp_b").unwrap();
        let link = DatagramLink::connect_in(&dir, "mp_b").unwrap().unwrap();
        let file = tempfile::tempfile().unwrap();
        assert_eq!(link.send(b"one", &[file.as_fd()]).unwrap(), Delivery::Sent);
        let mut buf = [0u8; 16];
        let got = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!((&buf[..got.len], got.fds.len()), (&b"one"[..], 1));
        drop(b);
        assert_eq!(link.send(b"two", &[]).unwrap(), Delivery::PeerGone);
        assert_eq!(link.send(b"two", &[]).unwrap(), Delivery::PeerGone);
        // The name is still there, unbound: nobody to connect to.
        assert!(DatagramLink::connect_in(&dir, "mp_b").unwrap().is_none());
        dir.remove_file("mp_b").unwrap();
        let again = DatagramSocket::bind_in(&dir, "mp_b").unwrap();
        let link = DatagramLink::connect_in(&dir, "mp_b").unwrap().unwrap();
        assert_eq!(link.send(b"three", &[]).unwrap(), Delivery::Sent);
        let got = again.recv(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..got.len], b"three");
    }
}
