//! Handing a packet to the Rust ecosystem without a copy: [`Mbuf::into_bytes`] makes a
//! `bytes::Bytes` over the packet's data, and the buffer goes home when the last `Bytes`
//! (clones and slices included) is dropped.

use bytes::Bytes;

use crate::error::MbufError;
use crate::handle::Mbuf;

/// The owner `Bytes` keeps: the packet, read-only from here on.
struct PacketOwner(Mbuf<'static>);

impl AsRef<[u8]> for PacketOwner {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

impl Mbuf<'static> {
    /// The packet's data as `Bytes`, without a copy; the buffer is freed when the last
    /// `Bytes` sharing it is dropped. A packet of several segments is made one first
    /// ([`Mbuf::linearize`]); `ENOSPC` or `EBUSY` from that hands the packet back.
    ///
    /// Only a packet of pools open for the rest of the program can become `Bytes` (which
    /// may live anywhere for any time): the pool handle must be `'static`.
    pub fn into_bytes(mut self) -> Result<Bytes, (MbufError, Mbuf<'static>)> {
        if let Err(e) = self.linearize() {
            return Err((e, self));
        }
        Ok(Bytes::from_owner(PacketOwner(self)))
    }
}
