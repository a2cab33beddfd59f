//! The DPDK 22.11 side of the `frame` workload: MTL's transmit loop (header buffer, payload
//! buffer attached to the frame, chain, bulk free) and the receive side's copies into a
//! frame, by `rte_memcpy` and through DPDK's software DMA device, in C. The
//! `dpmem-bench-dpdk` program implements it with the rest of [`crate::DpdkLoops`].

use crate::clocks::Elapsed;

/// The stream, pools and copy device of the frame workload, the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    /// Buffers of the header pool, and of the payload pool (zero room).
    pub tx_buffers: u32,
    /// Per-lcore cache of the header and payload pools.
    pub tx_cache: u32,
    /// Data room of a header buffer (headroom included).
    pub hdr_room: u16,
    /// Buffers of the receive pool.
    pub rx_buffers: u32,
    /// Per-lcore cache of the receive pool.
    pub rx_cache: u32,
    /// Data room of a receive buffer (headroom included).
    pub rx_room: u16,
    /// Packets made, freed or received at once.
    pub burst: u32,
    /// Bytes of a packet's header.
    pub hdr_len: u16,
    /// Bytes of a full payload.
    pub payload_len: u16,
    /// Bytes of a frame.
    pub frame_size: u32,
    /// Bytes of one line of the picture.
    pub line_bytes: u32,
    /// Bytes and pixels of one pixel group.
    pub pgroup_bytes: u32,
    pub pgroup_pixels: u32,
    /// Frame rate as a fraction, for the RTP timestamp.
    pub fps_num: u32,
    pub fps_den: u32,
    /// Packets of a reassembled frame (its full payloads).
    pub rx_packets: u32,
    /// Descriptors of the copy device's channel.
    pub nb_desc: u32,
    /// Completions taken per look, at most.
    pub max_reap: u32,
}

/// The frame workload's loops on DPDK's side.
pub trait DpdkFrameLoops {
    /// `rte_eal_init(args)` (whose arguments create the copy device `device`), then the
    /// pools of `shape`, a transmitted frame with its shared info, a destination frame, and
    /// the device with one channel, started. `template` is the 62-byte header every packet
    /// starts from.
    fn frame_eal_init(
        &self,
        args: &[String],
        shape: &FrameShape,
        template: &[u8],
        device: &str,
    ) -> Result<(), String>;

    /// One frame row (`row`: the workload's row code) over `frames` frames, timed as one
    /// loop; every pool must be full before and after it.
    fn frame_run(&self, row: u32, frames: u64) -> Result<Elapsed, String>;
}
