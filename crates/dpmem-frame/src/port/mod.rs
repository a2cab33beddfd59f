//! Ports that move packet chains, as a NIC does: the TX side takes the packetiser's chains
//! (a header segment and a payload segment attached to the frame), reads their segments
//! where they lie (gather) and releases them only once their bytes are out, which is what
//! lets their frames complete; the RX side hands out packets in buffers of its own pool.
//!
//! - `rx_port`: [`RxPort`], the receive side a pipeline polls, whichever port it is;
//! - `stats`: the counters every port keeps, drops by reason;
//! - `rx_pool`: a packet buffer pool sized for received packets;
//! - `loopback`: [`LoopbackPort`], a NIC looped back on itself, with a bounded RX queue;
//! - `udp`: [`UdpPort`], over a kernel UDP socket (`sendmmsg`/`recvmmsg`);
//! - `udp_header`: the Ethernet/IPv4/UDP header in front of the datagram a UDP port sends
//!   and the one it writes in front of a datagram it receives.

mod error;
mod loopback;
mod rx_pool;
mod rx_port;
mod stats;
mod udp;
mod udp_header;

pub use dpmem_sys::udp::SocketBuffers;
pub use error::PortError;
pub use loopback::{LoopbackPort, DEFAULT_RX_QUEUE};
pub use rx_pool::{rx_pool, RX_DATA_ROOM};
pub use rx_port::RxPort;
pub use stats::{PortDrops, PortStats};
pub use udp::{UdpPort, UdpPortBuilder};
pub use udp_header::DATAGRAM_AT;
