//! The most buffers each kind of pool had out at once: sampled where they peak, as a burst
//! is handed to the port (TX: the burst's headers and payload segments) and as received
//! packets are handed to reassembly (RX: those, and the packets the copy engine holds).
//!
//! A pool's count sums every lcore's cache (a cache line each), which is too dear for every
//! burst of the loop it measures: one burst in [`SAMPLE_EVERY`] is looked at, so a mark is
//! the highest seen at those moments, not a proof that no burst went higher.

use dpmem::frame::TxSession;
use dpmem::mbuf::PktmbufPool;
use serde::Serialize;

/// Bursts per sample.
pub const SAMPLE_EVERY: u32 = 16;

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct HighWater {
    /// Bursts until the next sample of each side.
    #[serde(skip)]
    tx_countdown: u32,
    #[serde(skip)]
    rx_countdown: u32,
    pub rx_pool: u32,
    pub header_pool: u32,
    pub payload_pool: u32,
    pub copy_pool: u32,
}

impl HighWater {
    pub fn sample_tx(&mut self, tx: &TxSession<'_>) {
        if !due(&mut self.tx_countdown) {
            return;
        }
        self.header_pool = self.header_pool.max(tx.header_pool().in_use_count());
        self.payload_pool = self.payload_pool.max(tx.payload_pool().in_use_count());
        self.copy_pool = self.copy_pool.max(tx.copy_pool().in_use_count());
    }

    /// The higher mark of each kind, of two lanes.
    pub fn max(self, other: HighWater) -> HighWater {
        HighWater {
            tx_countdown: self.tx_countdown,
            rx_countdown: self.rx_countdown,
            rx_pool: self.rx_pool.max(other.rx_pool),
            header_pool: self.header_pool.max(other.header_pool),
            payload_pool: self.payload_pool.max(other.payload_pool),
            copy_pool: self.copy_pool.max(other.copy_pool),
        }
    }

    pub fn sample_rx(&mut self, rx_pool: &PktmbufPool<'_>) {
        if !due(&mut self.rx_countdown) {
            return;
        }
        self.rx_pool = self.rx_pool.max(rx_pool.in_use_count());
    }
}

/// Whether this burst is one to sample, counting down to the next.
fn due(countdown: &mut u32) -> bool {
    if *countdown == 0 {
        *countdown = SAMPLE_EVERY - 1;
        true
    } else {
        *countdown -= 1;
        false
    }
}
