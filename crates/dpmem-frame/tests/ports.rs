//! Ports moving packet chains: frames through the loopback port and over UDP sockets on
//! 127.0.0.1, byte for byte, each frame done exactly once and only after its packets' bytes
//! were moved; a dry RX pool and a full RX queue; ports that cannot open.

mod common;
use common::SMALL;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dpmem_eal::Eal;
use dpmem_frame::{
    header, rx_pool, LoopbackPort, PacketSink, PortError, RxPort, St20Format, TxReport, TxSession,
    UdpPort, DATAGRAM_AT, DEFAULT_RX_QUEUE, HEADER_LEN,
};
use dpmem_mbuf::{Mbuf, PktmbufPool, HEADROOM};

fn no_huge_eal(tag: &str) -> Eal {
    common::eal("port", tag, &["--no-huge", "-m", "160", "-l", "0-1"])
}

/// An EAL on 2 MiB hugepages, or `None` (with the reason printed) when they cannot be had.
fn huge_eal(test: &str, tag: &str) -> Option<Eal> {
    if !dpmem_testkit::hugepages_available(test, 80) {
        return None;
    }
    Some(
        Eal::init([
            "port-test",
            "-m",
            "160",
            "-l",
            "0-1",
            "--file-prefix",
            &common::prefix("port", tag),
        ])
        .unwrap(),
    )
}

/// What the done callback writes over a frame: a byte [`fill`] never writes.
const SCRIBBLE: u8 = 0xff;

fn fill(bytes: &mut [u8], n: u32) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = ((i as u32).wrapping_mul(7).wrapping_add(n) % 251) as u8;
    }
}

/// A session whose done callback overwrites the frame with [`SCRIBBLE`]: received packets
/// that still pointed into the frame, rather than holding its bytes, would show it (and a
/// port that kept the frame's packets would keep it from being done at all).
fn scribbling_session<'e>(eal: &'e Eal, name: &str, format: St20Format) -> TxSession<'e> {
    let frames: Arc<OnceLock<Vec<usize>>> = Arc::new(OnceLock::new());
    let known = Arc::clone(&frames);
    let size = format.frame_size();
    let session = TxSession::builder(name)
        .format(format)
        .frames(2)
        .on_done(move |id| {
            let va = known.get().expect("known before any transmit")[id as usize];
            // SAFETY: the frame is done: no packet references it any more and the
            // application holds no handle on it (it is in flight until this returns); its
            // memory lives as long as the session, which is transmitting.
            unsafe { core::ptr::write_bytes(va as *mut u8, SCRIBBLE, size) };
        })
        .create(eal)
        .unwrap();
    let vas = (0..session.frame_count())
        .map(|id| session.location(id).unwrap().va)
        .collect();
    frames.set(vas).unwrap();
    session
}

fn assert_pools_whole(pools: &[&PktmbufPool<'_>]) {
    for pool in pools {
        pool.audit().unwrap();
        assert_eq!(pool.avail_count(), pool.size(), "pool {}", pool.name());
    }
}

fn assert_session_pools_whole(session: &TxSession<'_>) {
    assert_pools_whole(&[
        session.header_pool(),
        session.payload_pool(),
        session.copy_pool(),
    ]);
}

/// A port's TX side that pulls what its RX side received after each burst (as a pipeline
/// polling both would), so a whole frame never waits in a socket buffer.
struct Through<'a, 'rx, P> {
    port: &'a mut P,
    received: Vec<Mbuf<'rx>>,
}

impl<'p, 'rx, P: PacketSink<'p> + RxPort<'rx>> PacketSink<'p> for Through<'_, 'rx, P> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        self.port.send_burst(packets);
        while self.port.rx_burst(&mut self.received, 64) > 0 {}
    }
}

/// Polls `port` until `n` packets were received in all, for at most 5 seconds.
fn receive_until<'rx>(port: &mut dyn RxPort<'rx>, received: &mut Vec<Mbuf<'rx>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.len() < n && Instant::now() < deadline {
        if port.rx_burst(received, 64) == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Checks that `received` are the packets of the frame `report` describes, whose bytes were
/// `frame` and whose first packet had sequence number `seq0`: each once, header fields and
/// payload bytes as sent.
fn check_frame(
    received: &[Mbuf<'_>],
    format: &St20Format,
    frame: &[u8],
    report: &TxReport,
    seq0: u32,
) {
    let total = format.packets_per_frame();
    assert_eq!(received.len(), total as usize);
    let mut seen = vec![false; total as usize];
    for packet in received {
        let bytes = packet.to_vec();
        let fields = header::parse(&bytes).expect("a received packet's header parses");
        let i = fields.seq.wrapping_sub(seq0);
        assert!(i < total && !seen[i as usize], "packet {i} once");
        seen[i as usize] = true;
        let (offset, len) = format.payload_range(i);
        let (row, pixel) = format.row_and_pixel(offset);
        assert_eq!(
            (fields.row, fields.pixel, fields.payload_len),
            (row, pixel, len)
        );
        assert_eq!(fields.timestamp, report.timestamp);
        assert_eq!(fields.marker, i + 1 == total);
        assert_eq!(bytes.len(), HEADER_LEN + len as usize);
        assert!(
            bytes[HEADER_LEN..] == frame[offset..offset + len as usize],
            "payload of packet {i}"
        );
    }
}

/// Sends `frames` frames of `session` through `port`, receiving after every burst, and
/// checks each: received whole and as sent, done exactly once, scribbled only after.
fn frames_through<'s, 'rx, P>(session: &'s TxSession<'_>, port: &mut P, frames: u32)
where
    P: PacketSink<'s> + RxPort<'rx>,
{
    let format = *session.format();
    let (size, total) = (format.frame_size(), format.packets_per_frame());
    let mut done = Vec::new();
    for n in 0..frames {
        let mut frame = session.get_frame().unwrap();
        let id = frame.id();
        fill(&mut frame.as_mut_slice()[..size], n);
        let sent = frame.as_slice()[..size].to_vec();
        let done_before = session.frames_done();
        let mut through = Through {
            port: &mut *port,
            received: Vec::new(),
        };
        let report = session.transmit(frame, &mut through).unwrap();
        let mut received = through.received;
        receive_until(port, &mut received, total as usize);
        // Done once, the port having released every packet of the frame (the packetiser's
        // own reference went last, as `transmit` returned).
        assert_eq!(session.frames_done(), done_before + 1);
        session.take_done(&mut done);
        assert_eq!(done, [id]);
        done.clear();
        assert!(!session.in_flight(id).unwrap());
        check_frame(&received, &format, &sent, &report, n * total);
        // The callback did scribble over the frame, so the bytes checked above were the
        // port's own copies.
        let again = session.claim(id).unwrap();
        assert!(again.as_slice()[..size].iter().all(|&b| b == SCRIBBLE));
        drop(again);
        Mbuf::free_all(received);
    }
    assert_eq!(session.frames_done(), frames as u64);
    let stats = port.stats();
    let packets = (frames * total) as u64;
    assert_eq!((stats.tx_packets, stats.rx_packets), (packets, packets));
    assert_eq!(stats.tx_bytes, stats.rx_bytes);
    assert_eq!(
        stats.tx_bytes,
        frames as u64 * (size as u64 + packets / frames as u64 * HEADER_LEN as u64)
    );
    assert_eq!(stats.drops.total(), 0, "{stats:?}");
    assert_eq!(stats.rx_errors, 0);
}

fn loopback_moves_frames(eal: &Eal, format: St20Format, frames: u32) {
    let session = scribbling_session(eal, "lb", format);
    let pool = rx_pool(eal, "lb.rx", format.packets_per_frame() + 64).unwrap();
    let mut port = LoopbackPort::new(&pool, DEFAULT_RX_QUEUE).unwrap();
    frames_through(&session, &mut port, frames);
    assert_eq!(port.queued(), 0);
    drop(port);
    assert_pools_whole(&[&pool]);
    assert_session_pools_whole(&session);
}

#[test]
fn loopback_moves_every_packet_byte_for_byte_and_frames_complete_after() {
    let eal = no_huge_eal("lb");
    loopback_moves_frames(&eal, SMALL, 6);
}

#[test]
fn loopback_moves_a_1080p_frame() {
    let eal = no_huge_eal("lbfhd");
    loopback_moves_frames(&eal, St20Format::default(), 2);
}

#[test]
fn loopback_moves_1080p_frames_from_hugepages() {
    let Some(eal) = huge_eal("loopback port hugepage test", "lbhuge") else {
        return;
    };
    loopback_moves_frames(&eal, St20Format::default(), 2);
}

#[test]
fn loopback_drops_what_a_dry_pool_or_full_queue_cannot_take_and_frames_still_complete() {
    let eal = no_huge_eal("lbdry");
    let session = scribbling_session(&eal, "dry", SMALL);
    // A pool of 20 buffers: the rest of the frame's 61 packets find it dry.
    let small_pool = rx_pool(&eal, "dry.rx", 20).unwrap();
    let mut port = LoopbackPort::new(&small_pool, DEFAULT_RX_QUEUE).unwrap();
    let frame = session.get_frame().unwrap();
    session.transmit(frame, &mut port).unwrap();
    assert_eq!(session.frames_done(), 1);
    let stats = port.stats();
    assert_eq!((stats.tx_packets, stats.rx_packets), (61, 20));
    assert_eq!(stats.drops.rx_no_buffer, 41);
    assert_eq!(stats.drops.total(), 41);
    let mut received = Vec::new();
    assert_eq!(port.rx_burst(&mut received, 100), 20);
    assert_eq!(port.rx_burst(&mut received, 100), 0);
    // What did arrive is whole: the frame's first 20 packets.
    for (i, packet) in received.iter().enumerate() {
        assert_eq!(header::parse(packet.data()).unwrap().seq, i as u32);
    }
    drop(received);
    drop(port);
    assert_pools_whole(&[&small_pool]);

    // A queue of 16 entries and a pool that could take it all.
    let pool = rx_pool(&eal, "full.rx", 255).unwrap();
    let mut port = LoopbackPort::new(&pool, 16).unwrap();
    let frame = session.get_frame().unwrap();
    session.transmit(frame, &mut port).unwrap();
    assert_eq!(session.frames_done(), 2);
    let stats = port.stats();
    assert_eq!((stats.rx_packets, stats.drops.rx_queue_full), (16, 45));
    assert_eq!(stats.tx_packets, stats.rx_packets + stats.drops.total());
    assert_eq!(port.queued(), 16);
    // Packets still queued go back to the pool with the port.
    drop(port);
    assert_pools_whole(&[&pool]);
    assert_session_pools_whole(&session);
}

#[test]
fn loopback_drops_packets_longer_than_an_rx_buffer_and_refuses_unusable_settings() {
    let eal = no_huge_eal("lblong");
    let session = scribbling_session(&eal, "long", SMALL);
    // Room for 1,000 bytes of packet: every 1,322-byte packet is too long.
    let short = PktmbufPool::builder("long.rx", 63)
        .data_room(HEADROOM + 1000)
        .create(&eal)
        .unwrap();
    let mut port = LoopbackPort::new(&short, 64).unwrap();
    let frame = session.get_frame().unwrap();
    session.transmit(frame, &mut port).unwrap();
    assert_eq!(session.frames_done(), 1);
    let stats = port.stats();
    assert_eq!((stats.rx_packets, stats.drops.rx_too_long), (0, 61));
    assert_pools_whole(&[&short]);

    let tiny = PktmbufPool::builder("tiny.rx", 63)
        .data_room(HEADROOM + 10)
        .create(&eal)
        .unwrap();
    let err = LoopbackPort::new(&tiny, 64).unwrap_err();
    assert!(
        matches!(&err, PortError::RxPool { pool, .. } if pool == "tiny.rx"),
        "{err}"
    );
    assert!(matches!(
        LoopbackPort::new(&short, 0),
        Err(PortError::InvalidSetting(_))
    ));
    assert!(matches!(
        UdpPort::builder().open(&tiny),
        Err(PortError::RxPool { .. })
    ));
    assert_session_pools_whole(&session);
}

fn udp_moves_frames(eal: &Eal, format: St20Format, frames: u32) {
    let session = scribbling_session(eal, "udp", format);
    let pool = rx_pool(eal, "udp.rx", format.packets_per_frame() + 64).unwrap();
    let mut port = UdpPort::builder().open(&pool).unwrap();
    let buffers = port.socket_buffers();
    eprintln!(
        "udp port on {}: socket buffers {buffers:?}",
        port.local_addr()
    );
    assert!(buffers.recv > 0 && buffers.send > 0);
    frames_through(&session, &mut port, frames);
    drop(port);
    assert_pools_whole(&[&pool]);
    assert_session_pools_whole(&session);
}

#[test]
fn udp_moves_a_frame_over_127_0_0_1_byte_for_byte() {
    let eal = no_huge_eal("udp");
    udp_moves_frames(&eal, SMALL, 4);
}

#[test]
fn udp_moves_a_1080p_frame() {
    let eal = no_huge_eal("udpfhd");
    udp_moves_frames(&eal, St20Format::default(), 2);
}

#[test]
fn udp_moves_1080p_frames_from_hugepages() {
    let Some(eal) = huge_eal("udp port hugepage test", "udphuge") else {
        return;
    };
    udp_moves_frames(&eal, St20Format::default(), 2);
}

#[test]
fn udp_received_packets_carry_an_ethernet_ipv4_udp_header_of_the_datagram() {
    let eal = no_huge_eal("udphdr");
    let session = scribbling_session(&eal, "hdr", SMALL);
    let pool = rx_pool(&eal, "hdr.rx", 255).unwrap();
    let mut b = UdpPort::builder().open(&pool).unwrap();
    let mut a = UdpPort::builder()
        .send_to(b.local_addr())
        .open(&pool)
        .unwrap();
    assert_eq!(a.peer(), b.local_addr());
    let frame = session.get_frame().unwrap();
    session.transmit(frame, &mut a).unwrap();
    assert_eq!(session.frames_done(), 1);
    let mut received = Vec::new();
    receive_until(&mut b, &mut received, 61);
    assert_eq!(received.len(), 61);
    // Nothing came back to the sender.
    assert_eq!(a.rx_burst(&mut received, 64), 0);
    let (from, to) = (a.local_addr(), b.local_addr());
    for packet in &received {
        let bytes = packet.to_vec();
        assert_eq!(&bytes[12..14], &[0x08, 0x00]);
        let ip = &bytes[14..34];
        assert_eq!((ip[0], ip[9]), (0x45, 17));
        assert_eq!(
            u16::from_be_bytes([ip[2], ip[3]]) as usize,
            bytes.len() - 14
        );
        assert_eq!(&ip[12..16], &from.ip().octets());
        assert_eq!(&ip[16..20], &to.ip().octets());
        let sum: u32 = ip
            .chunks_exact(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "IPv4 checksum");
        let udp = &bytes[34..DATAGRAM_AT];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), from.port());
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), to.port());
        assert_eq!(
            u16::from_be_bytes([udp[4], udp[5]]) as usize,
            bytes.len() - 34
        );
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.tx_packets, sa.rx_packets), (61, 0));
    assert_eq!((sb.tx_packets, sb.rx_packets), (0, 61));
    assert_eq!(sa.tx_bytes, sb.rx_bytes);
    drop(received);
    drop((a, b));
    assert_pools_whole(&[&pool]);
    assert_session_pools_whole(&session);
}

#[test]
fn udp_drops_what_it_has_no_buffer_for_and_what_is_no_udp_packet() {
    let eal = no_huge_eal("udpdry");
    let session = scribbling_session(&eal, "udry", SMALL);
    let pool = rx_pool(&eal, "udry.rx", 64).unwrap();
    let mut port = UdpPort::builder().open(&pool).unwrap();
    let frame = session.get_frame().unwrap();
    session.transmit(frame, &mut port).unwrap();
    assert_eq!(session.frames_done(), 1);
    // Every RX buffer is held elsewhere: the port takes the datagrams and drops them.
    let mut held = Vec::new();
    pool.alloc_into(&mut held, 64).unwrap();
    let mut received = Vec::new();
    assert_eq!(port.rx_burst(&mut received, 64), 0);
    let stats = port.stats();
    assert_eq!((stats.rx_packets, stats.drops.rx_no_buffer), (0, 61));
    drop(held);
    // The port keeps the buffers it posts for a burst (as a NIC's receive ring does) until
    // they are filled or it closes: ask for few, so the pool has buffers for what follows.
    assert_eq!(
        port.rx_burst(&mut received, 8),
        0,
        "nothing is left waiting"
    );

    // Not Ethernet/IPv4/UDP, or shorter than its headers say: dropped, and freed.
    let mut not_ip = pool.alloc().unwrap();
    not_ip.extend_from_slice(&[0u8; 100]).unwrap();
    let mut short = pool.alloc().unwrap();
    let mut headers = [0u8; HEADER_LEN];
    headers.copy_from_slice(&received_header_bytes(&session));
    short.extend_from_slice(&headers).unwrap();
    let mut burst = vec![not_ip, short];
    port.send_burst(&mut burst);
    assert!(burst.is_empty());
    let stats = port.stats();
    assert_eq!((stats.tx_packets, stats.drops.tx_malformed), (61, 2));
    drop(port);
    assert_pools_whole(&[&pool]);
    assert_session_pools_whole(&session);
}

/// A packet header as the session writes it (its UDP length promises a 1,260-byte payload).
fn received_header_bytes(session: &TxSession<'_>) -> Vec<u8> {
    let frame = session.get_frame().unwrap();
    let mut sent: Vec<Mbuf<'_>> = Vec::new();
    session.transmit(frame, &mut sent).unwrap();
    let header = sent[0].segments().next().unwrap().to_vec();
    Mbuf::free_all(sent);
    header
}

#[test]
fn a_udp_port_that_cannot_bind_says_why_and_leaves_nothing_open() {
    let eal = no_huge_eal("udpbad");
    let pool = rx_pool(&eal, "bad.rx", 63).unwrap();
    let first = UdpPort::builder().open(&pool).unwrap();
    let taken = first.local_addr();
    let err = UdpPort::builder().bind(taken).open(&pool).unwrap_err();
    assert!(
        matches!(&err, PortError::Open { addr, .. } if *addr == taken),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("in use") && text.contains(&taken.to_string()),
        "{text}"
    );
    // TEST-NET-1 (RFC 5737) is no address of this machine.
    let foreign = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 20_000);
    let text = UdpPort::builder()
        .bind(foreign)
        .open(&pool)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("no interface") && text.contains("192.0.2.1:20000"),
        "{text}"
    );
    drop(first);
    // The address is free again once the port is gone.
    let again = UdpPort::builder().bind(taken).open(&pool).unwrap();
    assert_eq!(again.local_addr(), taken);
    drop(again);
    assert_pools_whole(&[&pool]);
}
