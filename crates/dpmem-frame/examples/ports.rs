//! Times the ports moving 1080p59.94 frames (4,115 packets each): the loopback port
//! (gather each chain into an RX buffer, queue it, release the chain) and the UDP port
//! over 127.0.0.1 (`sendmmsg` with a gather entry per segment, `recvmmsg` into RX buffers).
//! Each burst the packetiser hands over is sent, then everything received so far is taken;
//! received packets are freed after the frame. Prints nanoseconds per packet for the port's
//! TX (including the release of the chains, and so the frame's done), its RX, the free of
//! received packets, and the packetiser's own time for comparison.
//!
//! `cargo run --release -p dpmem-frame --example ports [frames]` (uses `--no-huge`).

use std::time::{Duration, Instant};

use dpmem_eal::Eal;
use dpmem_frame::{
    rx_pool, LoopbackPort, PacketSink, RxPort, TxSession, UdpPort, DEFAULT_RX_QUEUE,
};
use dpmem_mbuf::Mbuf;

/// A port's TX and RX, each timed.
struct Timed<'a, 'rx, P> {
    port: &'a mut P,
    received: Vec<Mbuf<'rx>>,
    tx: Duration,
    rx: Duration,
}

impl<'p, 'rx, P: PacketSink<'p> + RxPort<'rx>> PacketSink<'p> for Timed<'_, 'rx, P> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        let start = Instant::now();
        self.port.send_burst(packets);
        let sent = Instant::now();
        while self.port.rx_burst(&mut self.received, 64) > 0 {}
        self.tx += sent - start;
        self.rx += sent.elapsed();
    }
}

/// Moves `frames` frames through `port` (after one to warm up) and prints the figures.
fn run<'s, 'rx, P>(name: &str, session: &'s TxSession<'_>, port: &mut P, frames: u32)
where
    P: PacketSink<'s> + RxPort<'rx>,
{
    let per_frame = session.format().packets_per_frame();
    let mut timed = Timed {
        port,
        received: Vec::with_capacity(per_frame as usize),
        tx: Duration::ZERO,
        rx: Duration::ZERO,
    };
    let (mut total, mut free) = (Duration::ZERO, Duration::ZERO);
    let mut lost = 0;
    for n in 0..=frames {
        if n == 1 {
            (timed.tx, timed.rx) = (Duration::ZERO, Duration::ZERO);
            (total, free) = (Duration::ZERO, Duration::ZERO);
        }
        let mut frame = session
            .get_frame()
            .expect("the frames are done after each transmit");
        frame.as_mut_slice()[0] = n as u8;
        let start = Instant::now();
        session
            .transmit(frame, &mut timed)
            .expect("the pools hold a frame");
        total += start.elapsed();
        lost += per_frame as usize - timed.received.len();
        let start = Instant::now();
        Mbuf::free_all(timed.received.drain(..));
        free += start.elapsed();
    }
    let packets = frames as f64 * per_frame as f64;
    let ns = |d: Duration| d.as_nanos() as f64 / packets;
    let stats = timed.port.stats();
    println!(
        "{name}: {frames} frames of {per_frame} packets: port tx {:.1} ns/packet, rx {:.1}, \
         free rx {:.1}; packetising {:.1}; all {:.1} ns/packet ({:.2} Gbit/s of frame); \
         {lost} lost, drops {:?}",
        ns(timed.tx),
        ns(timed.rx),
        ns(free),
        ns(total - timed.tx - timed.rx),
        ns(total + free),
        frames as f64 * session.format().frame_size() as f64 * 8.0
            / (total + free).as_secs_f64()
            / 1e9,
        stats.drops
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50);
    let prefix = format!("port-timing-{}", std::process::id());
    let eal = Eal::init(["ports", "--no-huge", "-m", "160", "--file-prefix", &prefix])?;
    let session = TxSession::builder("timing").frames(1).create(&eal)?;
    let pool = rx_pool(
        &eal,
        "timing.rx",
        session.format().packets_per_frame() + 256,
    )?;

    let mut loopback = LoopbackPort::new(&pool, DEFAULT_RX_QUEUE)?;
    run("loopback", &session, &mut loopback, frames);
    drop(loopback);

    let mut udp = UdpPort::builder().open(&pool)?;
    println!(
        "udp port on {}, socket buffers granted {:?}",
        udp.local_addr(),
        udp.socket_buffers()
    );
    run("udp", &session, &mut udp, frames);
    Ok(())
}
