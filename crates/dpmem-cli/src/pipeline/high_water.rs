//! The most buffers each kind of pool had out at once: sampled where they peak, as a burst
//! is handed to the port (TX: the burst's headers and payload segments) and as received
//! packets are handed to reassembly (RX: those, and the packets the copy engine holds).

use dpmem::frame::TxSession;
use dpmem::mbuf::PktmbufPool;
use serde::Serialize;

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct HighWater {
    pub rx_pool: u32,
    pub header_pool: u32,
    pub payload_pool: u32,
    pub copy_pool: u32,
}

impl HighWater {
    pub fn sample_tx(&mut self, tx: &TxSession<'_>) {
        self.header_pool = self.header_pool.max(tx.header_pool().in_use_count());
        self.payload_pool = self.payload_pool.max(tx.payload_pool().in_use_count());
        self.copy_pool = self.copy_pool.max(tx.copy_pool().in_use_count());
    }

    /// The higher mark of each kind, of two lanes.
    pub fn max(self, other: HighWater) -> HighWater {
        HighWater {
            rx_pool: self.rx_pool.max(other.rx_pool),
            header_pool: self.header_pool.max(other.header_pool),
            payload_pool: self.payload_pool.max(other.payload_pool),
            copy_pool: self.copy_pool.max(other.copy_pool),
        }
    }

    pub fn sample_rx(&mut self, rx_pool: &PktmbufPool<'_>) {
        self.rx_pool = self.rx_pool.max(rx_pool.in_use_count());
    }
}
