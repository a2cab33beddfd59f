//! Times RX reassembly of 1080p59.94 frames (4,115 packets, 1,260-byte payloads): per frame,
//! the packets a transmit session sent are gathered into single buffers of a receive pool (not
//! timed), then handed to a receive session in bursts until the frame is delivered (timed:
//! parsing, placing, copying, and waiting for the copy device's last reports). Prints
//! nanoseconds per packet with CPU copies only and through the software copy device, and,
//! for scale, the same payload copies done by a bare loop into a frame buffer of the EAL's.
//!
//! `cargo run --release -p dpmem-frame --example reassemble [frames] [burst]` (uses
//! `--no-huge`).

use std::time::{Duration, Instant};

use dpmem_dma::borrow::DmaBorrower;
use dpmem_dma::{DmaConf, DmaDevice, VchanConf};
use dpmem_eal::Eal;
use dpmem_frame::{RxSession, TxSession};
use dpmem_mbuf::{Mbuf, PktmbufPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let frames: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let burst: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(32);
    let prefix = format!("rx-timing-{}", std::process::id());
    let eal = Eal::init([
        "reassemble",
        "--no-huge",
        "-m",
        "256",
        "-l",
        "0",
        "--file-prefix",
        &prefix,
    ])?;
    let tx = TxSession::builder("timing-tx").frames(1).create(&eal)?;
    let per_frame = tx.format().packets_per_frame() as usize;
    let rx = PktmbufPool::builder("timing-rx", per_frame as u32 + 64)
        .cache_size(256)
        .create(&eal)?;
    let mut dev = DmaDevice::create(&eal, "timing-dma")?;
    dev.configure(DmaConf::new(1))?;
    dev.vchan_setup(0, VchanConf::mem_to_mem(1024))?;
    dev.start()?;
    bare_copies(&eal, &tx, &rx, frames)?;
    for with_device in [false, true] {
        let vchan = if with_device {
            Some(dev.vchan(0)?)
        } else {
            None
        };
        let mut borrower = DmaBorrower::new(&eal, vchan)?;
        let mut session = RxSession::builder("timing").create(&eal, &mut borrower)?;
        let mut timed = Duration::ZERO;
        for n in 0..=frames {
            let mut frame = tx.get_frame().ok_or("the TX frame is still in flight")?;
            frame.as_mut_slice()[n as usize] = n as u8;
            let mut chains: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame);
            tx.transmit(frame, &mut chains)?;
            let mut packets: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame);
            for chain in chains.drain(..) {
                let mut packet = rx.alloc()?;
                for segment in chain.segments() {
                    packet.extend_from_slice(segment)?;
                }
                packets.push(packet);
            }
            let mut arriving = Vec::with_capacity(burst);
            let mut all = packets.into_iter().peekable();
            let start = Instant::now();
            while all.peek().is_some() {
                arriving.extend(all.by_ref().take(burst));
                session.receive(&mut borrower, &mut arriving);
            }
            let delivered = loop {
                if let Some(frame) = session.next_frame() {
                    break frame;
                }
                session.poll(&mut borrower);
            };
            // Frame 0 warms the pools, the frame buffers' pages and the device.
            if n > 0 {
                timed += start.elapsed();
            }
            assert_eq!(delivered.as_slice()[n as usize], n as u8);
        }
        let stats = session.stats();
        let packets = f64::from(frames) * per_frame as f64;
        println!(
            "{:>6}: {frames} frames of {per_frame} packets in bursts of {burst}: {:.1} ns/packet \
             ({:.2} ms/frame); copies: {} device, {} CPU ({} small, {} ring full, {} no device)",
            if with_device { "device" } else { "CPU" },
            timed.as_nanos() as f64 / packets,
            timed.as_secs_f64() * 1e3 / f64::from(frames),
            stats.copies.dma,
            stats.copies.cpu(),
            stats.copies.cpu_small,
            stats.copies.cpu_device_full,
            stats.copies.cpu_no_device,
        );
        session.close(&mut borrower).map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// The floor: each packet's payload copied to its place by `copy_from_slice`, nothing else.
fn bare_copies(
    eal: &Eal,
    tx: &TxSession<'_>,
    rx: &PktmbufPool<'_>,
    frames: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let format = *tx.format();
    let zone = eal
        .memzones()
        .request("timing-bare", format.frame_size())
        .reserve()?;
    // SAFETY: the memzone was just reserved for this loop alone, and is freed after it.
    let dst = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), zone.len) };
    let per_frame = format.packets_per_frame() as usize;
    let mut timed = Duration::ZERO;
    for n in 0..=frames {
        let frame = tx.get_frame().ok_or("the TX frame is still in flight")?;
        let mut chains: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame);
        tx.transmit(frame, &mut chains)?;
        let mut packets: Vec<Mbuf<'_>> = Vec::with_capacity(per_frame);
        for chain in chains.drain(..) {
            let mut packet = rx.alloc()?;
            for segment in chain.segments() {
                packet.extend_from_slice(segment)?;
            }
            packets.push(packet);
        }
        let start = Instant::now();
        for (i, packet) in packets.drain(..).enumerate() {
            let (offset, len) = format.payload_range(i as u32);
            let payload = &packet.data()[dpmem_frame::HEADER_LEN..][..usize::from(len)];
            dst[offset..offset + payload.len()].copy_from_slice(payload);
        }
        if n > 0 {
            timed += start.elapsed();
        }
    }
    println!(
        "  bare: {frames} frames of {per_frame} packets: {:.1} ns/packet (copy and free only)",
        timed.as_nanos() as f64 / (f64::from(frames) * per_frame as f64)
    );
    // SAFETY: the slice over it is not used again.
    unsafe { eal.memzones().free(&zone) }?;
    Ok(())
}
