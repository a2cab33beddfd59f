//! The machine's memory copy bandwidth, measured in the same run as the pipeline: the bound
//! its bytes copied per second are held against. Copies between two buffers far larger than
//! the last-level cache, so the figure is memory's, not the cache's.

use std::time::{Duration, Instant};

/// Bytes per buffer: past any last-level cache of this class of machine.
const BUFFER_BYTES: usize = 128 << 20;

/// Best bytes per second of `memcpy` over a few passes within about `budget`.
pub fn copy_bytes_per_second(budget: Duration) -> f64 {
    let src = vec![0x5au8; BUFFER_BYTES];
    let mut dst = vec![0u8; BUFFER_BYTES];
    // First touch maps the pages: not part of any pass.
    dst.copy_from_slice(&src);
    let started = Instant::now();
    let mut best = 0f64;
    let mut passes = 0;
    while passes < 3 || (started.elapsed() < budget && passes < 20) {
        let pass = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        let secs = pass.elapsed().as_secs_f64();
        best = best.max(BUFFER_BYTES as f64 / secs);
        passes += 1;
    }
    best
}
