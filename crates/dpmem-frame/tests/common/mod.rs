//! What the frame tests share: an EAL per test under a file prefix of its own, and the small
//! format most of them send.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use dpmem_eal::Eal;
use dpmem_frame::St20Format;

/// 640x48 4:2:2 10-bit: 76,800-byte frames in 61 packets of 1,260 bytes (the last 1,200),
/// above the copy borrower's CPU threshold, so RX sends them to the device.
#[allow(dead_code)] // not every test file sends it
pub const SMALL: St20Format = St20Format {
    width: 640,
    height: 48,
    ..St20Format::FHD_5994_422_10
};

/// A file prefix no other test of any run uses: the test file's `file` tag, the process,
/// a counter and the test's `tag`.
pub fn prefix(file: &str, tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{file}{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An EAL started with `options` under a prefix of its own (see [`prefix`]).
pub fn eal(file: &str, tag: &str, options: &[&str]) -> Eal {
    let prefix = prefix(file, tag);
    let program = format!("{file}-test");
    let args = std::iter::once(program.as_str())
        .chain(options.iter().copied())
        .chain(["--file-prefix", prefix.as_str()]);
    Eal::init(args).unwrap()
}

/// What a NIC does with transmitted packets, at random moments: holds the bursts that come
/// through `bursts` and hands `release` the oldest `n` of them (`release` drops them), a
/// random `n` after one burst in three, all of them when a millisecond passes with no burst,
/// and all that are left once the sender hangs up. `seed` picks the moments (xorshift).
#[allow(dead_code)] // used by the files whose sessions race a NIC
pub fn release_at_random<P>(
    bursts: mpsc::Receiver<Vec<P>>,
    seed: u64,
    mut release: impl FnMut(&mut VecDeque<P>, usize),
) {
    let mut held = VecDeque::new();
    let mut rng = seed;
    loop {
        let burst = match bursts.recv_timeout(Duration::from_millis(1)) {
            Ok(burst) => burst,
            // Nothing new: the packetiser waits for a frame; the "NIC" finishes.
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let n = held.len();
                release(&mut held, n);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        held.extend(burst);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if rng.is_multiple_of(3) {
            let n = (rng >> 8) as usize % (held.len() + 1);
            release(&mut held, n);
        }
    }
    let n = held.len();
    release(&mut held, n);
}
