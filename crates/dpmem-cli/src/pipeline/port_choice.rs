//! The port a stream runs over: the loopback port (a NIC looped back on itself: gather on
//! TX, scatter into RX buffers) or the UDP port (kernel sockets on 127.0.0.1, the kernel
//! gathering each chain's segments straight from hugepage memory).

use dpmem::eal::Socket;
use dpmem::frame::{
    LoopbackPort, PacketSink, PortSocket, PortStats, RxPort, UdpPort, DEFAULT_RX_QUEUE,
};
use dpmem::mbuf::{Mbuf, PktmbufPool};

/// Which port, as `--port` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    Loopback,
    Udp,
}

impl PortKind {
    pub fn name(self) -> &'static str {
        match self {
            PortKind::Loopback => "loopback",
            PortKind::Udp => "udp",
        }
    }
}

/// One open port of either kind.
pub enum PipelinePort<'rx> {
    Loopback(LoopbackPort<'rx>),
    Udp(UdpPort<'rx>),
}

impl<'rx> PipelinePort<'rx> {
    /// Opens a port of `kind` whose received packets come from `rx_pool`.
    pub fn open(kind: PortKind, rx_pool: &'rx PktmbufPool<'_>) -> Result<Self, String> {
        match kind {
            PortKind::Loopback => LoopbackPort::new(rx_pool, DEFAULT_RX_QUEUE)
                .map(PipelinePort::Loopback)
                .map_err(|e| format!("opening a loopback port: {e}")),
            // An ephemeral port on 127.0.0.1, sending to itself.
            PortKind::Udp => UdpPort::builder()
                .open(rx_pool)
                .map(PipelinePort::Udp)
                .map_err(|e| format!("opening a UDP port on 127.0.0.1: {e}")),
        }
    }

    pub fn stats(&self) -> PortStats {
        match self {
            PipelinePort::Loopback(port) => port.stats(),
            PipelinePort::Udp(port) => port.stats(),
        }
    }

    pub fn rx_pool(&self) -> &'rx PktmbufPool<'rx> {
        match self {
            PipelinePort::Loopback(port) => port.rx_pool(),
            PipelinePort::Udp(port) => port.rx_pool(),
        }
    }

    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf<'rx>>, max: usize) -> usize {
        match self {
            PipelinePort::Loopback(port) => port.rx_burst(out, max),
            PipelinePort::Udp(port) => port.rx_burst(out, max),
        }
    }
}

impl PortSocket for PipelinePort<'_> {
    fn socket(&self) -> Socket {
        match self {
            PipelinePort::Loopback(port) => port.socket(),
            PipelinePort::Udp(port) => port.socket(),
        }
    }
}

impl<'p> PacketSink<'p> for PipelinePort<'_> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        match self {
            PipelinePort::Loopback(port) => port.send_burst(packets),
            PipelinePort::Udp(port) => port.send_burst(packets),
        }
    }
}
