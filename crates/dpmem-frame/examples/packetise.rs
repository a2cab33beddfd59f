//! Times the packetiser on 1080p59.94 frames: per frame, 4,115 packets of a header buffer
//! and a payload buffer attached to the frame, chained, then freed in bulk as a NIC's TX
//! completion would. Prints nanoseconds per packet for building and for freeing.
//!
//! `cargo run --release -p dpmem-frame --example packetise [frames]` (uses `--no-huge`).

use std::time::Instant;

use dpmem_eal::Eal;
use dpmem_frame::TxSession;
use dpmem_mbuf::Mbuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let prefix = format!("frame-timing-{}", std::process::id());
    let eal = Eal::init([
        "packetise",
        "--no-huge",
        "-m",
        "128",
        "--file-prefix",
        &prefix,
    ])?;
    let session = TxSession::builder("timing").frames(1).create(&eal)?;
    let per_frame = session.format().packets_per_frame();
    let mut sent: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame as usize);
    let (mut build_ns, mut free_ns) = (0u128, 0u128);
    for n in 0..=frames {
        let mut frame = session.get_frame().ok_or("the frame is still in flight")?;
        frame.as_mut_slice()[0] = n as u8;
        let start = Instant::now();
        session.transmit(frame, &mut sent)?;
        let built = Instant::now();
        Mbuf::free_all(sent.drain(..));
        let freed = Instant::now();
        // Frame 0 warms the pools and the frame's pages.
        if n > 0 {
            build_ns += (built - start).as_nanos();
            free_ns += (freed - built).as_nanos();
        }
    }
    let packets = frames as f64 * per_frame as f64;
    println!(
        "{frames} frames of {per_frame} packets: build {:.1} ns/packet, free {:.1} ns/packet, \
         total {:.1} ns/packet ({} copied payloads)",
        build_ns as f64 / packets,
        free_ns as f64 / packets,
        (build_ns + free_ns) as f64 / packets,
        session.copied_payloads()
    );
    Ok(())
}
