//! [`RxPort`]: the receive side of a port, polled in bursts as a NIC's RX queue is
//! (`rte_eth_rx_burst`), so a pipeline can run over any port. The transmit side of every
//! port is a [`PacketSink`](crate::PacketSink).

use dpmem_mbuf::Mbuf;

use crate::port::stats::PortStats;

/// A port's receive side: packets in buffers of the port's RX pool (`'rx`).
pub trait RxPort<'rx> {
    /// Moves up to `max` received packets, oldest first, to the end of `out`, without
    /// waiting; how many it moved.
    fn rx_burst(&mut self, out: &mut Vec<Mbuf<'rx>>, max: usize) -> usize;

    /// The port's counters so far.
    fn stats(&self) -> PortStats;
}
