//! [`LoopbackPort`]: a NIC whose TX is wired to its own RX. For each chain handed to it, it
//! does what a NIC's DMA does — reads the chain's segments where they lie (gather), writes
//! the packet into one buffer of the RX pool (scatter) and queues it on the RX queue — and
//! only then releases the chain, so a frame completes once its packets' bytes are out.
//!
//! The RX queue is bounded like a NIC's ring: a packet that finds it full, or finds the RX
//! pool dry, is dropped and counted (the chain is released all the same), never waited for.

use std::collections::VecDeque;

use dpmem_eal::Socket;
use dpmem_mbuf::{Mbuf, PktmbufPool};

use crate::numa::PortSocket;
use crate::packetise::PacketSink;
use crate::port::error::PortError;
use crate::port::rx_pool::packet_room;
use crate::port::rx_port::RxPort;
use crate::port::stats::PortStats;

/// RX queue entries unless set: two 1080p ST 2110-20 frames (4,115 packets each) fit, so a
/// pipeline that transmits a frame and then polls loses nothing to the queue.
pub const DEFAULT_RX_QUEUE: usize = 8192;

/// A port looped back on itself: what is sent on its TX side ([`PacketSink`]) is received on
/// its RX side ([`RxPort`]), copied into buffers of the RX pool it borrows.
pub struct LoopbackPort<'rx> {
    rx_pool: &'rx PktmbufPool<'rx>,
    /// Bytes of packet an RX buffer holds (its data room less the headroom).
    room: u16,
    /// Received packets, oldest first; never longer than `queue_size`.
    queue: VecDeque<Mbuf<'rx>>,
    queue_size: usize,
    stats: PortStats,
    /// The socket of the thread that opened the port.
    socket: Socket,
}

impl std::fmt::Debug for LoopbackPort<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackPort")
            .field("rx_pool", &self.rx_pool.name())
            .field("queued", &self.queue.len())
            .field("queue_size", &self.queue_size)
            .field("stats", &self.stats)
            .field("socket", &self.socket)
            .finish()
    }
}

impl<'rx> LoopbackPort<'rx> {
    /// A port receiving into buffers of `rx_pool`, with an RX queue of `queue_size` packets
    /// ([`DEFAULT_RX_QUEUE`] is a fair choice), on the socket of the calling lcore or
    /// thread ([`PortSocket`]). Refused: a queue of 0, a pool whose buffers cannot hold a
    /// packet header.
    pub fn new(rx_pool: &'rx PktmbufPool<'_>, queue_size: usize) -> Result<Self, PortError> {
        if queue_size == 0 {
            return Err(PortError::InvalidSetting(
                "a loopback port's RX queue needs at least one entry".into(),
            ));
        }
        let room = packet_room(rx_pool)?;
        Ok(LoopbackPort {
            rx_pool,
            room,
            queue: VecDeque::with_capacity(queue_size),
            queue_size,
            stats: PortStats::default(),
            socket: dpmem_eal::lcore::socket_id(),
        })
    }

    /// The pool received packets are written into.
    pub fn rx_pool(&self) -> &'rx PktmbufPool<'rx> {
        self.rx_pool
    }

    /// Packets waiting on the RX queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn queue_size(&self) -> usize {
        self.queue_size
    }

    /// Receives one transmitted packet: queued, or dropped and counted.
    #[inline]
    fn receive(&mut self, packet: &Mbuf<'_>) {
        let len = packet.pkt_len();
        let drops = &mut self.stats.drops;
        if self.queue.len() >= self.queue_size {
            drops.rx_queue_full += 1;
            return;
        }
        if len > self.room as u32 {
            drops.rx_too_long += 1;
            return;
        }
        let Ok(mut received) = self.rx_pool.alloc() else {
            drops.rx_no_buffer += 1;
            return;
        };
        let into = received
            .append(len as u16)
            .expect("a fresh buffer has the room checked above");
        packet
            .copy_to_slice(0, into)
            .expect("a packet holds its own length");
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += len as u64;
        self.queue.push_back(received);
    }
}

impl<'p> PacketSink<'p> for LoopbackPort<'_> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        for packet in packets.iter() {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += packet.pkt_len() as u64;
            self.receive(packet);
        }
        // Every packet's bytes are in the RX queue (or dropped): the chains may go now, and
        // with their last references, their frames.
        Mbuf::free_all(packets.drain(..));
    }
}

impl<'rx> RxPort<'rx> for LoopbackPort<'rx> {
    fn rx_burst(&mut self, out: &mut Vec<Mbuf<'rx>>, max: usize) -> usize {
        let n = max.min(self.queue.len());
        out.extend(self.queue.drain(..n));
        n
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}

impl PortSocket for LoopbackPort<'_> {
    fn socket(&self) -> Socket {
        self.socket
    }
}
