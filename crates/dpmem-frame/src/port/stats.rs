//! [`PortStats`]: what a port moved and what it dropped, by reason — the counters a NIC
//! keeps (`rte_eth_stats`: packets and bytes each way, `imissed`, `rx_nombuf`, errors).
//!
//! Bytes are whole packets as the pipeline sees them (headers included) on both ports, so a
//! run that lost nothing shows equal byte counts each way.

/// Packets a port dropped, by reason. A reason that cannot happen on a port stays 0 there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortDrops {
    /// The RX queue was full (loopback; a NIC's `imissed`).
    pub rx_queue_full: u64,
    /// The RX pool had no buffer (a NIC's `rx_nombuf`). The UDP port takes such datagrams
    /// off the socket and drops them, as a NIC drops what it has no descriptor for.
    pub rx_no_buffer: u64,
    /// The packet was longer than an RX buffer's room (the UDP port: a datagram cut short).
    pub rx_too_long: u64,
    /// Datagrams the kernel dropped on the RX socket, its buffer full (UDP).
    pub rx_kernel: u64,
    /// Not an Ethernet/IPv4/UDP packet as long as its headers say, so not sendable as a
    /// datagram (UDP).
    pub tx_malformed: u64,
    /// The socket's send buffer was full (UDP): the rest of the burst was dropped.
    pub tx_busy: u64,
    /// The kernel refused the datagram (UDP), e.g. longer than a datagram can be.
    pub tx_refused: u64,
}

impl PortDrops {
    /// Every drop, whatever its reason.
    pub fn total(&self) -> u64 {
        self.rx_queue_full
            + self.rx_no_buffer
            + self.rx_too_long
            + self.rx_kernel
            + self.tx_malformed
            + self.tx_busy
            + self.tx_refused
    }
}

/// A port's counters.
///
/// The loopback port counts every chain it is handed as transmitted, and each one is then
/// either received or dropped: `tx_packets == rx_packets + drops.total()`. The UDP port
/// counts as transmitted what the kernel took; TX drops are the rest of what it was handed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets written into RX buffers (queued, for the loopback port; handed out, for UDP).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub drops: PortDrops,
    /// Receive calls that failed for another reason than an empty queue (UDP).
    pub rx_errors: u64,
}
