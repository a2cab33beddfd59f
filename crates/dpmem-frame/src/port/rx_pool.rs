//! A packet buffer pool for a port's received packets: [`rx_pool`], and the check both
//! ports make of the pool they are given.
//!
//! A port borrows its RX pool rather than owning it: the packets it hands out borrow the
//! pool, and must be able to outlive a port that is dropped first.

use dpmem_eal::Eal;
use dpmem_mbuf::{PktmbufPool, DEFAULT_BUF_SIZE, HEADROOM};

use crate::header::HEADER_LEN;
use crate::port::error::PortError;

/// The data room of an [`rx_pool`] buffer: 2,048 bytes after the headroom, enough for any
/// packet of an Ethernet MTU and for an ST 2110-20 packet's 62-byte header and 1,260-byte
/// payload.
pub const RX_DATA_ROOM: u16 = DEFAULT_BUF_SIZE;

/// A pool of `n` buffers of [`RX_DATA_ROOM`] for a port to receive into, with a per-lcore
/// cache (a quarter of the pool, at most 256 buffers).
pub fn rx_pool<'eal>(eal: &'eal Eal, name: &str, n: u32) -> Result<PktmbufPool<'eal>, PortError> {
    Ok(PktmbufPool::builder(name, n)
        .cache_size((n / 4).min(256))
        .data_room(RX_DATA_ROOM)
        .create(eal)?)
}

/// Bytes of packet a buffer of `pool` holds after its headroom; refused when that is less
/// than a packet header, or when the headroom is short of DPDK's (the UDP port writes the
/// Ethernet/IPv4/UDP header of a received datagram there).
pub(crate) fn packet_room(pool: &PktmbufPool<'_>) -> Result<u16, PortError> {
    let room = pool.data_room().saturating_sub(HEADROOM);
    if room < HEADER_LEN as u16 {
        return Err(PortError::RxPool {
            pool: pool.name().to_owned(),
            detail: format!(
                "a data room of {} bytes leaves {room} after the {HEADROOM}-byte headroom, \
                 less than a {HEADER_LEN}-byte packet header",
                pool.data_room()
            ),
        });
    }
    Ok(room)
}
