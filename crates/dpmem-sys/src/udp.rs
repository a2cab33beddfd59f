//! IPv4 UDP sockets that move datagrams in batches: `sendmmsg` with a gather list per
//! datagram, so the kernel reads each datagram's pieces where they lie (a header in one
//! buffer, a payload in another), and `recvmmsg` straight into the caller's buffers — one
//! system call for a burst either way.
//!
//! Every socket is non-blocking: a full send buffer or an empty receive queue is reported,
//! never waited on. rustix wraps `sendmmsg` but not `recvmmsg`, so both go through `libc`
//! here, side by side; std's `IoSlice` and `IoSliceMut` are documented to have the layout of
//! `struct iovec`, so the caller's slices are handed to the kernel as they are.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{SysError, SysResult};

/// Datagrams handed to one `sendmmsg` or `recvmmsg` call at most, and pieces of one datagram
/// at most: the kernel's `UIO_MAXIOV`.
pub const MAX_BATCH: usize = 1024;

/// `SO_MEMINFO` (Linux 3.19), whose value libc does not export for Linux: the asm-generic
/// number, which x86, Arm and RISC-V use.
const SO_MEMINFO: libc::c_int = 55;

/// A bound, non-blocking IPv4 UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    local: SocketAddrV4,
}

/// The socket buffer sizes the kernel reports (`SO_RCVBUF`, `SO_SNDBUF`): what it granted,
/// doubled by the kernel for its bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    pub recv: usize,
    pub send: usize,
}

/// How far a [`UdpSocket::send_batch`] got.
#[derive(Debug, Clone)]
pub struct SentBatch {
    /// Datagrams the kernel took, from the front.
    pub sent: usize,
    /// Why datagram `sent` did not go, when `sent` is short of the batch: `EAGAIN` when the
    /// send buffer is full, else what the kernel said of that datagram.
    pub stopped: Option<SysError>,
}

/// One datagram that [`UdpSocket::recv_batch`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedDatagram {
    /// Bytes written into its buffer.
    pub len: usize,
    /// The datagram was longer than its buffer; the rest is gone.
    pub truncated: bool,
    /// The sender.
    pub from: SocketAddrV4,
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: one the kernel picks). The error names the address
    /// and carries the kernel's reason (`EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`).
    pub fn bind(addr: SocketAddrV4) -> SysResult<UdpSocket> {
        let shown = format!("udp {addr}");
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(|e| SysError::new("socket", shown.clone(), e))?;
        rustix::net::bind(&fd, &addr).map_err(|e| SysError::new("bind", shown.clone(), e))?;
        let local = rustix::net::getsockname(&fd)
            .map_err(|e| SysError::new("getsockname", shown.clone(), e))?;
        let local = SocketAddrV4::try_from(local)
            .map_err(|_| SysError::new("getsockname", shown, Errno::AFNOSUPPORT))?;
        Ok(UdpSocket { fd, local })
    }

    /// The address the socket is bound to (with the port the kernel picked).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Asks for socket buffers of `recv` and `send` bytes, best effort: beyond the system's
    /// `rmem_max`/`wmem_max` only a process with `CAP_NET_ADMIN` gets them (the `FORCE`
    /// options), others get the maximum. Returns what the kernel then reports.
    pub fn request_buffers(&self, recv: usize, send: usize) -> SysResult<SocketBuffers> {
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.fd, recv).is_err() {
            // Unprivileged: the kernel caps the plain option at `rmem_max` rather than fail.
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&self.fd, recv);
        }
        if rustix::net::sockopt::set_socket_send_buffer_size_force(&self.fd, send).is_err() {
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&self.fd, send);
        }
        self.buffers()
    }

    /// The socket buffer sizes as the kernel reports them.
    pub fn buffers(&self) -> SysResult<SocketBuffers> {
        let shown = || format!("udp {}", self.local);
        Ok(SocketBuffers {
            recv: rustix::net::sockopt::socket_recv_buffer_size(&self.fd)
                .map_err(|e| SysError::new("get SO_RCVBUF", shown(), e))?,
            send: rustix::net::sockopt::socket_send_buffer_size(&self.fd)
                .map_err(|e| SysError::new("get SO_SNDBUF", shown(), e))?,
        })
    }

    /// Datagrams the kernel dropped on this socket since it was made (its receive buffer was
    /// full, or memory ran short): the `drops` column of `/proc/net/udp`.
    pub fn kernel_drops(&self) -> SysResult<u32> {
        let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
        let mut len = core::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: the descriptor is open (owned); `info` is writable for `len` bytes, which
        // the kernel reads and updates.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(SysError::new(
                "get SO_MEMINFO",
                format!("udp {}", self.local),
                Errno::from_raw_os_error(last_errno()),
            ));
        }
        // A kernel older than the drops counter writes less.
        if (len as usize) < core::mem::size_of_val(&info) {
            return Err(SysError::new(
                "get SO_MEMINFO drops",
                format!("udp {}", self.local),
                Errno::NOPROTOOPT,
            ));
        }
        Ok(info[libc::SK_MEMINFO_DROPS as usize])
    }

    /// Sends each entry of `datagrams` — the pieces of one datagram, gathered in order — to
    /// `to`, in `sendmmsg` calls of up to [`MAX_BATCH`]. Stops at the first datagram the
    /// kernel does not take, and says why ([`SentBatch::stopped`]). A datagram of more than
    /// [`MAX_BATCH`] pieces stops the batch with `EMSGSIZE`.
    pub fn send_batch(&self, to: SocketAddrV4, datagrams: &[&[IoSlice<'_>]]) -> SentBatch {
        let address = sockaddr_of(to);
        let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(datagrams.len().min(MAX_BATCH));
        let mut sent = 0;
        while sent < datagrams.len() {
            headers.clear();
            for pieces in datagrams[sent..].iter().take(MAX_BATCH) {
                if pieces.len() > MAX_BATCH {
                    break;
                }
                // SAFETY: every field of `msghdr` is an integer or a pointer, for which zero
                // is a valid value (no name, no pieces, no control data).
                let mut header: libc::mmsghdr = unsafe { core::mem::zeroed() };
                header.msg_hdr.msg_name = core::ptr::from_ref(&address).cast_mut().cast();
                header.msg_hdr.msg_namelen = core::mem::size_of_val(&address) as libc::socklen_t;
                // The kernel only reads a sent message's pieces; `IoSlice` is an `iovec`.
                header.msg_hdr.msg_iov = pieces.as_ptr().cast_mut().cast();
                header.msg_hdr.msg_iovlen = pieces.len() as _;
                headers.push(header);
            }
            if headers.is_empty() {
                return SentBatch {
                    sent,
                    stopped: Some(SysError::new(
                        "sendmmsg",
                        format!(
                            "udp {} to {to}: a datagram of more than {MAX_BATCH} pieces",
                            self.local
                        ),
                        Errno::MSGSIZE,
                    )),
                };
            }
            // SAFETY: `headers` holds `headers.len()` initialised messages; each names
            // `address` and a list of pieces borrowed from `datagrams`, all alive for the call;
            // the kernel writes only each message's `msg_len`.
            let rc = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    headers.as_mut_ptr(),
                    headers.len() as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if rc < 0 {
                let errno = last_errno();
                if errno == libc::EINTR {
                    continue;
                }
                return SentBatch {
                    sent,
                    stopped: Some(SysError::new(
                        "sendmmsg",
                        format!("udp {} to {to}", self.local),
                        Errno::from_raw_os_error(errno),
                    )),
                };
            }
            // A short count: the next call meets what stopped this one (or sends on).
            sent += rc as usize;
        }
        SentBatch {
            sent,
            stopped: None,
        }
    }

    /// Takes waiting datagrams, one into each of `buffers` (at most [`MAX_BATCH`]), in one
    /// `recvmmsg`; describes datagram `i` in `received[i]`. Returns how many came: 0 when none
    /// is waiting. Only as many buffers as `received` has room for are used.
    pub fn recv_batch(
        &self,
        buffers: &mut [IoSliceMut<'_>],
        received: &mut [ReceivedDatagram],
    ) -> SysResult<usize> {
        let n = buffers.len().min(received.len()).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: an all-zero `sockaddr_in` is a valid value (integers and a byte array).
        let mut senders: Vec<libc::sockaddr_in> = vec![unsafe { core::mem::zeroed() }; n];
        let mut headers: Vec<libc::mmsghdr> = buffers[..n]
            .iter_mut()
            .zip(senders.iter_mut())
            .map(|(buffer, sender)| {
                // SAFETY: every field of `mmsghdr` is an integer or a pointer, for which zero
                // is a valid value.
                let mut header: libc::mmsghdr = unsafe { core::mem::zeroed() };
                header.msg_hdr.msg_name = core::ptr::from_mut(sender).cast();
                header.msg_hdr.msg_namelen = core::mem::size_of_val(sender) as libc::socklen_t;
                // One piece: the buffer (`IoSliceMut` is an `iovec`).
                header.msg_hdr.msg_iov = core::ptr::from_mut(buffer).cast();
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        let count = loop {
            // SAFETY: `headers` holds `n` initialised messages; each points at one writable
            // buffer borrowed mutably from `buffers` and at its own `sockaddr_in` in
            // `senders`, all alive for the call, which writes at most their lengths.
            let rc = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    headers.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    core::ptr::null_mut(),
                )
            };
            if rc >= 0 {
                break rc as usize;
            }
            match last_errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(0),
                errno => {
                    return Err(SysError::new(
                        "recvmmsg",
                        format!("udp {}", self.local),
                        Errno::from_raw_os_error(errno),
                    ))
                }
            }
        };
        for ((header, sender), out) in headers
            .iter()
            .zip(&senders)
            .zip(received.iter_mut())
            .take(count)
        {
            *out = ReceivedDatagram {
                len: header.msg_len as usize,
                truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                from: SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sender.sin_addr.s_addr)),
                    u16::from_be(sender.sin_port),
                ),
            };
        }
        Ok(count)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Default for ReceivedDatagram {
    fn default() -> Self {
        ReceivedDatagram {
            len: 0,
            truncated: false,
            from: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        }
    }
}

fn sockaddr_of(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost_any_port() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)
    }

    #[test]
    fn gathered_pieces_arrive_as_one_datagram_each_in_order() {
        let a = UdpSocket::bind(localhost_any_port()).unwrap();
        let b = UdpSocket::bind(localhost_any_port()).unwrap();
        assert_ne!(b.local_addr().port(), 0);
        let (head, tail) = (b"head:".as_slice(), b"tail".as_slice());
        let first = [IoSlice::new(head), IoSlice::new(tail)];
        let second = [IoSlice::new(b"second")];
        let batch = a.send_batch(b.local_addr(), &[&first, &second]);
        assert_eq!(batch.sent, 2);
        assert!(batch.stopped.is_none());

        let (mut x, mut y, mut z) = ([0u8; 16], [0u8; 4], [0u8; 16]);
        let mut buffers = [
            IoSliceMut::new(&mut x),
            IoSliceMut::new(&mut y),
            IoSliceMut::new(&mut z),
        ];
        let mut received = [ReceivedDatagram::default(); 3];
        assert_eq!(b.recv_batch(&mut buffers, &mut received).unwrap(), 2);
        assert_eq!(received[0].from, a.local_addr());
        assert_eq!((received[0].len, received[0].truncated), (9, false));
        // Longer than its buffer: cut, and said so.
        assert_eq!((received[1].len, received[1].truncated), (4, true));
        // Nothing waiting: none, at once.
        assert_eq!(b.recv_batch(&mut buffers, &mut received).unwrap(), 0);
        assert_eq!(&x[..9], b"head:tail");
        assert_eq!(&y, b"seco");
        assert_eq!(b.kernel_drops().unwrap(), 0);
    }

    #[test]
    fn an_address_in_use_or_not_local_is_refused_with_the_reason() {
        let a = UdpSocket::bind(localhost_any_port()).unwrap();
        let taken = UdpSocket::bind(a.local_addr()).unwrap_err();
        assert_eq!(taken.errno, Errno::ADDRINUSE);
        assert!(taken.to_string().contains(&a.local_addr().to_string()));
        // TEST-NET-1 (RFC 5737) is no address of this machine.
        let foreign = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 0));
        assert_eq!(foreign.unwrap_err().errno, Errno::ADDRNOTAVAIL);
    }

    #[test]
    fn buffers_grow_as_far_as_the_kernel_allows() {
        let a = UdpSocket::bind(localhost_any_port()).unwrap();
        let max = |name: &str| -> usize {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let before = a.buffers().unwrap();
        let after = a.request_buffers(1 << 20, 1 << 20).unwrap();
        // Granted up to the system's maximum (or all of it, with CAP_NET_ADMIN), and reported
        // doubled.
        assert!(
            after.recv >= 2 * max("rmem_max").min(1 << 20),
            "{before:?} {after:?}"
        );
        assert!(
            after.send >= 2 * max("wmem_max").min(1 << 20),
            "{before:?} {after:?}"
        );
    }
}
