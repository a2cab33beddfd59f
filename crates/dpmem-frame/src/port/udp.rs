//! [`UdpPort`]: a port over a kernel UDP socket on IPv4, usable by any user on 127.0.0.1.
//!
//! TX sends each chain as one datagram with `sendmmsg`, one gather entry per segment, so
//! the kernel copies the header buffer and the frame's bytes straight from where they lie
//! (hugepage memory) — no copy in user space. What it sends is the packet after its
//! Ethernet/IPv4/UDP headers (RTP, the ST 2110-20 payload header and the payload); the
//! kernel writes headers of its own. The chains are released when the kernel has taken
//! their bytes, which is when the send call returns.
//!
//! RX takes datagrams with `recvmmsg` straight into the data rooms of RX pool buffers (no
//! copy in user space) and writes a 42-byte Ethernet/IPv4/UDP header in front of each, in
//! the buffer's headroom, from the datagram's sender and the socket's address, so received
//! packets have the layout the loopback port delivers.
//!
//! Nothing waits: a full send buffer drops the rest of a burst, an empty queue returns
//! nothing; both are counted. Datagrams the kernel drops on a full receive buffer are read
//! from the socket's own counter ([`PortDrops::rx_kernel`](crate::PortDrops)).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};

use dpmem_eal::Socket;
use dpmem_mbuf::{Mbuf, PktmbufPool};
use dpmem_sys::error::Errno;
use dpmem_sys::udp::{ReceivedDatagram, SocketBuffers, UdpSocket, MAX_BATCH};

use crate::numa::PortSocket;
use crate::packetise::PacketSink;
use crate::port::error::PortError;
use crate::port::rx_pool::packet_room;
use crate::port::rx_port::RxPort;
use crate::port::stats::PortStats;
use crate::port::udp_header::{self, DATAGRAM_AT};

/// Socket buffers asked for unless set: 64 MiB each way, room for several 1080p frames
/// (each about 5.3 MB of datagrams, more in the kernel's accounting). Unprivileged
/// processes get the system's `rmem_max`/`wmem_max` instead.
const DEFAULT_SOCKET_BUFFER: usize = 64 << 20;

/// The settings of a [`UdpPort`].
#[derive(Debug, Clone)]
#[must_use = "nothing is opened until `open` is called"]
pub struct UdpPortBuilder {
    bind: SocketAddrV4,
    send_to: Option<SocketAddrV4>,
    recv_buffer: usize,
    send_buffer: usize,
}

impl UdpPortBuilder {
    /// The address to receive on (127.0.0.1 and a port the kernel picks unless set).
    pub fn bind(mut self, addr: SocketAddrV4) -> Self {
        self.bind = addr;
        self
    }

    /// Where transmitted packets go (the port's own address unless set: a port looped back
    /// through the kernel).
    pub fn send_to(mut self, addr: SocketAddrV4) -> Self {
        self.send_to = Some(addr);
        self
    }

    /// Socket buffer sizes to ask for, best effort (see [`UdpPort::socket_buffers`]).
    pub fn socket_buffers(mut self, recv: usize, send: usize) -> Self {
        self.recv_buffer = recv;
        self.send_buffer = send;
        self
    }

    /// Opens the port, receiving into buffers of `rx_pool`, on the socket of the calling
    /// lcore or thread ([`PortSocket`]). Refused, with nothing left open:
    /// an address that cannot be bound (in use, not this machine's, privileged), a pool whose
    /// buffers cannot hold a packet header.
    pub fn open<'rx>(self, rx_pool: &'rx PktmbufPool<'_>) -> Result<UdpPort<'rx>, PortError> {
        let room = packet_room(rx_pool)?;
        let socket = UdpSocket::bind(self.bind).map_err(|e| PortError::open(self.bind, e))?;
        let buffers = socket
            .request_buffers(self.recv_buffer, self.send_buffer)
            .map_err(|e| PortError::open(self.bind, e))?;
        let local = socket.local_addr();
        Ok(UdpPort {
            peer: self.send_to.unwrap_or(local),
            socket,
            rx_pool,
            room,
            buffers,
            stats: PortStats::default(),
            received: Vec::new(),
            posted: Vec::new(),
            scratch: Vec::new(),
            numa_socket: dpmem_eal::lcore::socket_id(),
        })
    }
}

/// A port over a UDP socket: TX ([`PacketSink`]) sends datagrams to its peer, RX
/// ([`RxPort`]) receives the datagrams sent to its address into buffers of the RX pool it
/// borrows. Like a NIC's receive ring, it keeps the buffers it posted for a burst and did not
/// fill (at most the largest `max` asked for, up to 1,024) for the next one, and gives them
/// back when it closes.
pub struct UdpPort<'rx> {
    socket: UdpSocket,
    peer: SocketAddrV4,
    rx_pool: &'rx PktmbufPool<'rx>,
    /// Bytes of packet an RX buffer holds after its headroom: at most the header and a
    /// datagram this long less the header.
    room: u16,
    buffers: SocketBuffers,
    stats: PortStats,
    /// What each buffer of the last receive call took (kept to spare an allocation a call).
    received: Vec<ReceivedDatagram>,
    /// Buffers ready for the next receive call, each already holding `room` bytes after its
    /// headroom: what a NIC's receive ring keeps posted. Those a call does not fill stay
    /// here, rather than going back to the pool and coming out again on the next call.
    posted: Vec<Mbuf<'rx>>,
    /// Where datagrams go that no RX buffer can be had for.
    scratch: Vec<u8>,
    /// The NUMA socket of the thread that opened the port.
    numa_socket: Socket,
}

impl std::fmt::Debug for UdpPort<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpPort")
            .field("local", &self.socket.local_addr())
            .field("peer", &self.peer)
            .field("rx_pool", &self.rx_pool.name())
            .field("buffers", &self.buffers)
            .field("stats", &self.stats)
            .field("numa_socket", &self.numa_socket)
            .finish()
    }
}

impl<'rx> UdpPort<'rx> {
    /// Settings for a port on 127.0.0.1, a port the kernel picks, sending to itself.
    pub fn builder() -> UdpPortBuilder {
        UdpPortBuilder {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            send_to: None,
            recv_buffer: DEFAULT_SOCKET_BUFFER,
            send_buffer: DEFAULT_SOCKET_BUFFER,
        }
    }

    /// The address the port receives on.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.socket.local_addr()
    }

    /// Where transmitted packets go.
    pub fn peer(&self) -> SocketAddrV4 {
        self.peer
    }

    /// The socket buffers the kernel granted, as it reports them (twice the bytes it lets
    /// the data use).
    pub fn socket_buffers(&self) -> SocketBuffers {
        self.buffers
    }

    pub fn rx_pool(&self) -> &'rx PktmbufPool<'rx> {
        self.rx_pool
    }

    /// Tops the posted buffers up to `want`, as many as the pool has, each holding the
    /// receive room (checked at open).
    fn post_buffers(&mut self, want: usize) {
        let have = self.posted.len();
        if have >= want {
            return;
        }
        let pool = self.rx_pool;
        if pool.alloc_into(&mut self.posted, want - have).is_err() {
            // Fewer than asked for are left: as many as there are.
            while self.posted.len() < want {
                let Ok(m) = pool.alloc() else { break };
                self.posted.push(m);
            }
        }
        let room = self.room;
        for m in &mut self.posted[have..] {
            m.append(room)
                .expect("a fresh buffer has the room checked at open");
        }
    }

    /// Takes up to `max` waiting datagrams off the socket and drops them, counted: what a NIC
    /// does with packets it has no buffer for.
    fn drop_waiting(&mut self, max: usize) {
        self.scratch.resize(u16::MAX as usize, 0);
        let mut what = [ReceivedDatagram::default()];
        for _ in 0..max {
            let mut buffer = [IoSliceMut::new(&mut self.scratch)];
            match self.socket.recv_batch(&mut buffer, &mut what) {
                Ok(0) => return,
                Ok(_) => self.stats.drops.rx_no_buffer += 1,
                Err(_) => {
                    self.stats.rx_errors += 1;
                    return;
                }
            }
        }
    }
}

/// Adds packet `packet`'s datagram — its bytes after the Ethernet/IPv4/UDP headers, as long
/// as its UDP header says — to `pieces`, one entry per segment; `false` (and nothing added)
/// when it is no such packet.
fn datagram_pieces<'a>(packet: &'a Mbuf<'_>, pieces: &mut Vec<IoSlice<'a>>) -> bool {
    let mut headers = [0u8; DATAGRAM_AT];
    if packet.copy_to_slice(0, &mut headers).is_err() {
        return false;
    }
    let Some(len) = udp_header::datagram_len(&headers) else {
        return false;
    };
    if DATAGRAM_AT + len > packet.pkt_len() as usize {
        return false;
    }
    let (mut skip, mut left) = (DATAGRAM_AT, len);
    for segment in packet.segments() {
        if skip >= segment.len() {
            skip -= segment.len();
            continue;
        }
        let take = (segment.len() - skip).min(left);
        pieces.push(IoSlice::new(&segment[skip..skip + take]));
        skip = 0;
        left -= take;
        if left == 0 {
            break;
        }
    }
    true
}

impl<'p> PacketSink<'p> for UdpPort<'_> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        let mut pieces: Vec<IoSlice<'_>> = Vec::with_capacity(2 * packets.len());
        // Per datagram: its pieces' end in `pieces`, and its packet's length.
        let mut ends: Vec<(usize, u32)> = Vec::with_capacity(packets.len());
        for packet in packets.iter() {
            if datagram_pieces(packet, &mut pieces) {
                ends.push((pieces.len(), packet.pkt_len()));
            } else {
                self.stats.drops.tx_malformed += 1;
            }
        }
        let mut datagrams: Vec<&[IoSlice<'_>]> = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &(end, _) in &ends {
            datagrams.push(&pieces[start..end]);
            start = end;
        }
        let mut at = 0;
        while at < datagrams.len() {
            let batch = self.socket.send_batch(self.peer, &datagrams[at..]);
            for &(_, len) in &ends[at..at + batch.sent] {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += len as u64;
            }
            at += batch.sent;
            match batch.stopped {
                None => break,
                Some(e) if e.errno == Errno::AGAIN => {
                    self.stats.drops.tx_busy += (datagrams.len() - at) as u64;
                    break;
                }
                // This datagram was refused; the rest may go.
                Some(_) => {
                    self.stats.drops.tx_refused += 1;
                    at += 1;
                }
            }
        }
        drop(datagrams);
        drop(pieces);
        // The kernel has copied every datagram it took: the chains may go, and with their
        // last references, their frames.
        Mbuf::free_all(packets.drain(..));
    }
}

impl<'rx> RxPort<'rx> for UdpPort<'rx> {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf<'rx>>, max: usize) -> usize {
        let want = max.min(MAX_BATCH);
        if want == 0 {
            return 0;
        }
        self.post_buffers(want);
        if self.posted.is_empty() {
            self.drop_waiting(want);
            return 0;
        }
        let posted = self.posted.len().min(want);
        let first = self.posted.len() - posted;
        let ready = &mut self.posted[first..];
        let mut buffers: Vec<IoSliceMut<'_>> = ready
            .iter_mut()
            .map(|m| IoSliceMut::new(m.data_mut().expect("a posted buffer is ours alone")))
            .collect();
        self.received
            .resize(buffers.len(), ReceivedDatagram::default());
        let count = match self.socket.recv_batch(&mut buffers, &mut self.received) {
            Ok(count) => count,
            Err(_) => {
                self.stats.rx_errors += 1;
                0
            }
        };
        drop(buffers);
        let room = self.room;
        let local = self.socket.local_addr();
        let before = out.len();
        // The filled buffers leave the posted ones; those beyond `count` stay posted.
        let filled = self.posted.drain(first..first + count);
        for (mut packet, datagram) in filled.zip(&self.received[..count]) {
            if datagram.truncated {
                self.stats.drops.rx_too_long += 1;
                continue;
            }
            let len = datagram.len as u16;
            packet
                .trim(room - len)
                .expect("the buffer holds the room appended");
            let headers: &mut [u8; DATAGRAM_AT] = packet
                .prepend(DATAGRAM_AT as u16)
                .expect("the headroom was checked at open")
                .try_into()
                .expect("prepend gives the length asked for");
            udp_header::write(headers, datagram.from, local, len);
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += packet.pkt_len() as u64;
            out.push(packet);
        }
        out.len() - before
    }

    /// The counters, with the socket's own drop count read from the kernel.
    fn stats(&self) -> PortStats {
        let mut stats = self.stats;
        stats.drops.rx_kernel = self.socket.kernel_drops().map_or(0, u64::from);
        stats
    }
}

impl PortSocket for UdpPort<'_> {
    /// The NUMA socket (not the UDP one) the port was opened on.
    fn socket(&self) -> Socket {
        self.numa_socket
    }
}
