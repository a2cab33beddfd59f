//! RX reassembly: frames a transmit session sent, gathered into single-segment packets from
//! a receive pool as a NIC would, put back together byte for byte — with the copy device and
//! without, shuffled, duplicated, redundant, with packets missing or malformed — and every
//! buffer back in its pool at the end.

mod common;
use common::SMALL;

use dpmem_dma::borrow::{DmaBorrower, MAX_LENDERS};
use dpmem_dma::{DmaConf, DmaDevice, VchanConf};
use dpmem_eal::Eal;
use dpmem_frame::{
    FrameError, RxFrame, RxFrameState, RxSession, St20Format, StreamAddress, TxSession, HEADER_LEN,
};
use dpmem_mbuf::{Mbuf, PktmbufPool};

/// Ordinary pages, any user; main lcore 0, so the copy device's worker runs on another CPU
/// when there is one.
fn no_huge_eal(tag: &str) -> Eal {
    common::eal("rx", tag, &["--no-huge", "-m", "192", "-l", "0"])
}

/// A started copy device with one channel of `nb_desc` descriptors.
fn device(eal: &Eal, nb_desc: u16) -> DmaDevice<'_> {
    let mut dev = DmaDevice::create(eal, "rx_dma").unwrap();
    dev.configure(DmaConf::new(1)).unwrap();
    dev.vchan_setup(0, VchanConf::mem_to_mem(nb_desc)).unwrap();
    dev.start().unwrap();
    dev
}

fn rx_pool<'e>(eal: &'e Eal, name: &str, n: u32) -> PktmbufPool<'e> {
    PktmbufPool::builder(name, n).create(eal).unwrap()
}

/// Pseudo-random bytes (xorshift), different per `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What a NIC does with a TX chain: reads its segments into one buffer of the RX side's
/// pool, then lets the chain go (which is what completes the TX frame).
fn gather<'r>(rx: &'r PktmbufPool<'_>, chain: Mbuf<'_>) -> Mbuf<'r> {
    let mut packet = rx.alloc().unwrap();
    for segment in chain.segments() {
        packet.extend_from_slice(segment).unwrap();
    }
    packet
}

/// A frame sent and received: its bytes, and its packets as they arrive at the receiver.
struct Sent<'r> {
    bytes: Vec<u8>,
    packets: Vec<Mbuf<'r>>,
    timestamp: u32,
}

/// Fills a frame of `tx` with bytes of `seed`, transmits it and gathers its packets into `rx`.
fn send<'r>(tx: &TxSession<'_>, rx: &'r PktmbufPool<'_>, seed: u64) -> Sent<'r> {
    let mut frame = tx.get_frame().expect("the TX frame came back done");
    let size = tx.format().frame_size();
    let bytes = random_bytes(size, seed);
    frame.as_mut_slice()[..size].copy_from_slice(&bytes);
    let mut chains: Vec<Mbuf<'_>> = Vec::new();
    let report = tx.transmit(frame, &mut chains).unwrap();
    let packets = chains.into_iter().map(|c| gather(rx, c)).collect();
    Sent {
        bytes,
        packets,
        timestamp: report.timestamp,
    }
}

/// Polls until no copy of the session is in flight and returns every frame it delivers.
fn drain<'e>(session: &mut RxSession<'e>, borrower: &mut DmaBorrower<'_, '_>) -> Vec<RxFrame<'e>> {
    let mut frames = Vec::new();
    loop {
        session.poll(borrower);
        while let Some(frame) = session.next_frame() {
            frames.push(frame);
        }
        if session.stats().copies_in_flight == 0 {
            return frames;
        }
        std::thread::yield_now();
    }
}

fn assert_whole(pool: &PktmbufPool<'_>) {
    pool.audit().unwrap();
    assert_eq!(pool.avail_count(), pool.size(), "pool {}", pool.name());
}

fn assert_tx_whole(tx: &TxSession<'_>) {
    for pool in [tx.header_pool(), tx.payload_pool(), tx.copy_pool()] {
        assert_whole(pool);
    }
}

fn assert_frame(frame: &RxFrame<'_>, sent: &Sent<'_>) {
    assert_eq!(frame.timestamp(), sent.timestamp);
    assert_eq!(frame.len(), sent.bytes.len());
    assert!(
        frame.as_slice() == sent.bytes.as_slice(),
        "frame {} (timestamp {}) differs from what was sent",
        frame.id(),
        frame.timestamp()
    );
}

/// Each packet received exactly one way.
fn assert_accounted(session: &RxSession<'_>) {
    let s = session.stats();
    assert_eq!(
        s.packets_received,
        s.packets_placed + s.dropped.total() + s.duplicates,
        "{s:?}"
    );
}

/// Sends `frames` frames of `format` through a session on `borrower` and checks each comes
/// back byte for byte; returns the session's statistics.
fn round_trip<'p>(
    eal: &Eal,
    borrower: &mut DmaBorrower<'_, 'p>,
    rx: &'p PktmbufPool<'_>,
    format: St20Format,
    frames: u64,
    burst: usize,
) -> dpmem_frame::RxStats {
    let tx = TxSession::builder("tx")
        .format(format)
        .frames(1)
        .create(eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(format)
        .create(eal, borrower)
        .unwrap();
    for n in 0..frames {
        let Sent {
            bytes,
            packets,
            timestamp,
        } = send(&tx, rx, n + 1);
        let mut all = packets.into_iter().peekable();
        let mut arriving = Vec::with_capacity(burst);
        while all.peek().is_some() {
            arriving.extend(all.by_ref().take(burst));
            session.receive(borrower, &mut arriving);
            assert!(arriving.is_empty());
        }
        let delivered = drain(&mut session, borrower);
        assert_eq!(delivered.len(), 1, "frame {n}");
        let check = Sent {
            bytes,
            packets: Vec::new(),
            timestamp,
        };
        assert_frame(&delivered[0], &check);
    }
    let stats = session.stats();
    assert_eq!(stats.frames_complete, frames);
    assert_eq!(stats.frames_delivered, frames);
    assert_eq!(stats.frames_incomplete, 0);
    assert_eq!(
        stats.packets_placed,
        frames * u64::from(format.packets_per_frame())
    );
    assert_eq!(stats.bytes_placed, frames * format.frame_size() as u64);
    assert_eq!(stats.copies.dma + stats.copies.cpu(), stats.packets_placed);
    assert_eq!(stats.frames_held, 0);
    assert_accounted(&session);
    session.close(borrower).map_err(|(e, _)| e).unwrap();
    assert_tx_whole(&tx);
    assert_whole(rx);
    stats
}

#[test]
fn frames_come_back_byte_for_byte_with_cpu_copies_only() {
    let eal = no_huge_eal("cpu");
    let rx = rx_pool(&eal, "rx", 255);
    let mut borrower = DmaBorrower::new(&eal, None).unwrap();
    let stats = round_trip(&eal, &mut borrower, &rx, SMALL, 6, 32);
    assert_eq!(stats.copies.cpu_no_device, stats.packets_placed);
    assert_eq!(stats.copies.dma, 0);
    assert_eq!(borrower.stats().cpu_no_device, stats.packets_placed);
}

#[test]
fn frames_come_back_byte_for_byte_through_the_copy_device() {
    let eal = no_huge_eal("dma");
    let dev = device(&eal, 1024);
    let rx = rx_pool(&eal, "rx", 4200);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let small = round_trip(&eal, &mut borrower, &rx, SMALL, 6, 32);
    // 1,260-byte payloads go to the device; the last packet's 1,200 bytes too.
    assert_eq!(small.copies.dma, small.packets_placed);
    let fhd = round_trip(&eal, &mut borrower, &rx, St20Format::default(), 2, 64);
    // The last payload (360 bytes) is under the CPU threshold; any other goes to the device
    // unless its ring was full.
    assert_eq!(fhd.copies.cpu_small, 2);
    assert_eq!(
        fhd.copies.dma + fhd.copies.cpu_device_full,
        fhd.packets_placed - 2
    );
    assert!(fhd.copies.dma > 0);
    let b = borrower.stats();
    assert_eq!(b.released, b.dma_copies);
    assert_eq!(borrower.in_flight(), 0);
    eprintln!(
        "1080p through the device: {} device copies, {} CPU copies (ring full {})",
        fhd.copies.dma,
        fhd.copies.cpu(),
        fhd.copies.cpu_device_full
    );
}

/// A device with room for a whole frame: every copy queued, none submitted until the
/// session's poll, so copies are surely in flight when `receive` returns.
#[test]
fn a_frame_is_not_delivered_while_copies_into_it_are_in_flight() {
    let eal = no_huge_eal("inflight");
    let dev = device(&eal, 8192);
    let rx = rx_pool(&eal, "rx", 4200);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let format = St20Format::default();
    let tx = TxSession::builder("tx")
        .format(format)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(format)
        .frames(2)
        .create(&eal, &mut borrower)
        .unwrap();
    let mut seen_in_flight = 0;
    for n in 0..3 {
        let mut sent = send(&tx, &rx, 100 + n);
        let bytes = std::mem::take(&mut sent.bytes);
        session.receive(&mut borrower, &mut sent.packets);
        let stats = session.stats();
        assert_eq!(stats.frames_complete, n + 1);
        // Packets of copies in flight are the borrower's; every other one is back.
        assert_eq!(rx.in_use_count() as usize, borrower.in_flight());
        if stats.copies_in_flight > 0 {
            seen_in_flight += 1;
            let id = (0..2)
                .find(|&id| session.frame_state(id).unwrap() == RxFrameState::Settling)
                .expect("the frame settles while its copies are in flight");
            // Nothing but the borrower's report moves a frame on: not asking again.
            assert!(session.next_frame().is_none());
            assert!(session.next_frame().is_none());
            assert_eq!(session.frame_state(id).unwrap(), RxFrameState::Settling);
        }
        let delivered = drain(&mut session, &mut borrower);
        assert_eq!(delivered.len(), 1);
        let check = Sent {
            bytes,
            packets: Vec::new(),
            timestamp: sent.timestamp,
        };
        assert_frame(&delivered[0], &check);
        assert_eq!(rx.in_use_count(), 0);
    }
    assert!(seen_in_flight > 0, "no copy was in flight after a receive");
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

/// Dropped with device copies in flight, a session leaves its frame buffers in place (the
/// device may still write them); the borrower still releases every packet.
#[test]
fn a_session_dropped_with_copies_in_flight_leaves_its_buffers_in_place() {
    let eal = no_huge_eal("dropped");
    let dev = device(&eal, 8192);
    let rx = rx_pool(&eal, "rx", 4200);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let format = St20Format::default();
    let tx = TxSession::builder("tx")
        .format(format)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut zones = eal.memzones().count();
    let mut left_in_place = false;
    for n in 0..3 {
        let mut session = RxSession::builder(&format!("rx{n}"))
            .format(format)
            .frames(1)
            .create(&eal, &mut borrower)
            .unwrap();
        assert_eq!(eal.memzones().count(), zones + 1);
        let mut sent = send(&tx, &rx, n);
        session.receive(&mut borrower, &mut sent.packets);
        let in_flight = session.stats().copies_in_flight;
        drop(session);
        borrower.flush();
        assert_eq!(rx.in_use_count(), 0);
        if in_flight > 0 {
            assert_eq!(
                eal.memzones().count(),
                zones + 1,
                "buffer freed under the device"
            );
            left_in_place = true;
            break;
        }
        assert_eq!(
            eal.memzones().count(),
            zones,
            "a quiet session's buffer stays"
        );
        zones = eal.memzones().count();
    }
    assert!(left_in_place, "no copy was in flight after a receive");
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

#[test]
fn shuffled_duplicated_and_redundant_packets_make_the_same_frame() {
    let eal = no_huge_eal("shuffle");
    let dev = device(&eal, 256);
    let rx = rx_pool(&eal, "rx", 1023);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let tx = TxSession::builder("tx")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(SMALL)
        .create(&eal, &mut borrower)
        .unwrap();
    let per_frame = SMALL.packets_per_frame() as usize;
    let mut order_seed = 7u64;
    let mut next = |bound: usize| {
        order_seed ^= order_seed << 13;
        order_seed ^= order_seed >> 7;
        order_seed ^= order_seed << 17;
        (order_seed % bound as u64) as usize
    };
    // Shuffled, with every third packet twice.
    let mut sent = send(&tx, &rx, 1);
    let mut packets: Vec<Mbuf<'_>> = Vec::new();
    for (i, p) in sent.packets.drain(..).enumerate() {
        if i % 3 == 0 {
            packets.push(rx.alloc_from_slice(p.data()).unwrap());
        }
        packets.push(p);
    }
    for i in (1..packets.len()).rev() {
        packets.swap(i, next(i + 1));
    }
    let dups = per_frame.div_ceil(3) as u64;
    session.receive(&mut borrower, &mut packets);
    let frames = drain(&mut session, &mut borrower);
    assert_eq!(frames.len(), 1);
    assert_frame(&frames[0], &sent);
    drop(frames);
    // Some duplicates came after the last new packet completed the frame: those are
    // duplicates of a complete frame, counted the same.
    assert_eq!(session.stats().duplicates, dups);

    // ST 2022-7: both paths' packets interleaved in bursts, the redundant path a few packets
    // behind, so its last ones arrive after the frame is complete.
    let mut frame = tx.get_frame().unwrap();
    let bytes = random_bytes(SMALL.frame_size(), 2);
    frame.as_mut_slice()[..bytes.len()].copy_from_slice(&bytes);
    let (mut primary, mut redundant): (Vec<Mbuf<'_>>, Vec<Mbuf<'_>>) = (Vec::new(), Vec::new());
    let report = tx
        .transmit_redundant(frame, &mut primary, &mut redundant)
        .unwrap();
    let primary: Vec<Mbuf<'_>> = primary.into_iter().map(|c| gather(&rx, c)).collect();
    let redundant: Vec<Mbuf<'_>> = redundant.into_iter().map(|c| gather(&rx, c)).collect();
    let mut arriving: Vec<Mbuf<'_>> = Vec::new();
    let (mut a, mut b) = (primary.into_iter(), redundant.into_iter());
    arriving.extend(a.by_ref().take(5));
    loop {
        arriving.extend(a.by_ref().take(4));
        arriving.extend(b.by_ref().take(4));
        if arriving.is_empty() {
            break;
        }
        session.receive(&mut borrower, &mut arriving);
    }
    let frames = drain(&mut session, &mut borrower);
    assert_eq!(frames.len(), 1);
    let check = Sent {
        bytes,
        packets: Vec::new(),
        timestamp: report.timestamp,
    };
    assert_frame(&frames[0], &check);
    drop(frames);
    let stats = session.stats();
    assert_eq!(stats.duplicates, dups + per_frame as u64);
    assert_eq!(stats.packets_placed, 2 * per_frame as u64);
    assert_eq!(stats.frames_complete, 2);
    assert_accounted(&session);
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

#[test]
fn a_missing_packet_leaves_its_frame_incomplete_when_the_next_begins() {
    let eal = no_huge_eal("missing");
    let dev = device(&eal, 256);
    let rx = rx_pool(&eal, "rx", 511);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let tx = TxSession::builder("tx")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(SMALL)
        .frames(2)
        .create(&eal, &mut borrower)
        .unwrap();
    let mut first = send(&tx, &rx, 1);
    let missing = first.packets.remove(17);
    session.receive(&mut borrower, &mut first.packets);
    assert!(drain(&mut session, &mut borrower).is_empty());
    let stats = session.stats();
    assert_eq!((stats.frames_complete, stats.frames_incomplete), (0, 0));
    assert_eq!(
        stats.packets_placed,
        u64::from(SMALL.packets_per_frame() - 1)
    );
    // The next frame's first packet gives the first frame up.
    let mut second = send(&tx, &rx, 2);
    let mut head: Vec<Mbuf<'_>> = second.packets.drain(..1).collect();
    session.receive(&mut borrower, &mut head);
    assert_eq!(session.stats().frames_incomplete, 1);
    // Its missing packet, arriving now, is late: it goes nowhere.
    let mut late = vec![missing];
    session.receive(&mut borrower, &mut late);
    assert_eq!(session.stats().dropped.late, 1);
    session.receive(&mut borrower, &mut second.packets);
    let frames = drain(&mut session, &mut borrower);
    assert_eq!(frames.len(), 1);
    assert_frame(&frames[0], &second);
    drop(frames);
    // A stream that stops part-way: its last frame is given up on request.
    let mut third = send(&tx, &rx, 3);
    third.packets.truncate(10);
    session.receive(&mut borrower, &mut third.packets);
    session.abandon();
    assert!(drain(&mut session, &mut borrower).is_empty());
    let stats = session.stats();
    assert_eq!(stats.frames_incomplete, 2);
    assert_eq!(stats.frames_complete, 1);
    assert_eq!(stats.frames_delivered, 1);
    for id in 0..2 {
        assert_eq!(session.frame_state(id).unwrap(), RxFrameState::Free);
    }
    assert_accounted(&session);
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

/// Header offsets the test corrupts: the EtherType, the SRD length, row and offset.
const ETHER_TYPE_AT: usize = 12;
const SRD_LEN_AT: usize = 56;
const SRD_ROW_AT: usize = 58;
const SRD_OFFSET_AT: usize = 60;
const RTP_TIMESTAMP_AT: usize = 46;
const UDP_DST_PORT_AT: usize = 36;

/// A copy of `good` (in `rx`) with its payload overwritten by 0xee and `corrupt` applied.
fn corrupted<'r>(
    rx: &'r PktmbufPool<'_>,
    good: &Mbuf<'_>,
    corrupt: impl FnOnce(&mut Mbuf<'r>),
) -> Mbuf<'r> {
    let mut p = rx.alloc_from_slice(good.data()).unwrap();
    p.data_mut().unwrap()[HEADER_LEN..].fill(0xee);
    corrupt(&mut p);
    p
}

fn put16(p: &mut Mbuf<'_>, at: usize, value: u16) {
    p.data_mut().unwrap()[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[test]
fn bad_packets_are_dropped_and_counted_and_write_nothing() {
    let eal = no_huge_eal("bad");
    let dev = device(&eal, 256);
    let rx = rx_pool(&eal, "rx", 511);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let address = StreamAddress::default();
    let tx = TxSession::builder("tx")
        .format(SMALL)
        .frames(1)
        .address(address)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(SMALL)
        .frames(2)
        .stream(address)
        .create(&eal, &mut borrower)
        .unwrap();
    // A first frame, held by the application while the bad packets arrive.
    let mut first = send(&tx, &rx, 1);
    session.receive(&mut borrower, &mut first.packets);
    let held = drain(&mut session, &mut borrower).pop().unwrap();
    assert_frame(&held, &first);

    let mut second = send(&tx, &rx, 2);
    let good = &second.packets;
    let last = good.len() - 1;
    let packet_len = usize::from(SMALL.payload_len);
    let mut bad: Vec<Mbuf<'_>> = vec![
        // Not IPv4.
        corrupted(&rx, &good[3], |p| put16(p, ETHER_TYPE_AT, 0x86dd)),
        // Too short to hold a header.
        rx.alloc_from_slice(&good[3].data()[..40]).unwrap(),
        // Another stream's (its destination port), and another timestamp too.
        corrupted(&rx, &good[3], |p| {
            put16(p, UDP_DST_PORT_AT, 20_002);
            p.data_mut().unwrap()[RTP_TIMESTAMP_AT] ^= 0x40;
        }),
        // The row just past the frame, at a new timestamp (it must not end the frame).
        corrupted(&rx, &good[3], |p| {
            put16(p, SRD_ROW_AT, SMALL.height as u16);
            p.data_mut().unwrap()[RTP_TIMESTAMP_AT] ^= 0x40;
        }),
        // A pixel past the line's end.
        corrupted(&rx, &good[3], |p| {
            put16(p, SRD_OFFSET_AT, SMALL.width as u16)
        }),
        // Inside a pixel group.
        corrupted(&rx, &good[3], |p| put16(p, SRD_OFFSET_AT, 1)),
        // Inside packet 0 (pixel 2 is its byte 5): would overlap it.
        corrupted(&rx, &good[3], |p| {
            put16(p, SRD_ROW_AT, 0);
            put16(p, SRD_OFFSET_AT, 2);
        }),
        // The last line's last pixel group: inside the frame, but no packet starts there.
        corrupted(&rx, &good[3], |p| {
            put16(p, SRD_ROW_AT, SMALL.height as u16 - 1);
            put16(p, SRD_OFFSET_AT, SMALL.width as u16 - 2);
        }),
        // A length other than the format's for the place.
        corrupted(&rx, &good[3], |p| put16(p, SRD_LEN_AT, 1200)),
        // The last packet (1,200 bytes) claiming a full payload.
        corrupted(&rx, &good[last], |p| {
            put16(p, SRD_LEN_AT, packet_len as u16)
        }),
        // Fewer payload bytes than the header says.
        {
            let mut p = corrupted(&rx, &good[3], |_| {});
            p.trim(1).unwrap();
            p
        },
    ];
    let bad_count = bad.len() as u64;
    // Bad packets first, then the good ones with the bad ones once more in the middle.
    let again: Vec<Mbuf<'_>> = bad
        .iter()
        .map(|p| rx.alloc_from_slice(p.data()).unwrap())
        .collect();
    session.receive(&mut borrower, &mut bad);
    assert_eq!(session.frame_state(held.id()).unwrap(), RxFrameState::Held);
    let mut arriving: Vec<Mbuf<'_>> = second.packets.drain(..30).collect();
    arriving.extend(again);
    arriving.append(&mut second.packets);
    session.receive(&mut borrower, &mut arriving);
    let frames = drain(&mut session, &mut borrower);
    assert_eq!(frames.len(), 1);
    assert_frame(&frames[0], &second);
    assert_frame(&held, &first);
    let stats = session.stats();
    let d = stats.dropped;
    assert_eq!(d.unparsed, 2 * 2);
    assert_eq!(d.other_stream, 2);
    assert_eq!(d.outside_frame, 2 * 5);
    assert_eq!(d.bad_length, 2 * 3);
    assert_eq!(d.total(), 2 * bad_count);
    assert_eq!(stats.frames_incomplete, 0);
    assert_eq!(stats.frames_complete, 2);
    assert_accounted(&session);
    drop((held, frames));
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

#[test]
fn a_frame_the_application_holds_is_never_reused() {
    let eal = no_huge_eal("held");
    let rx = rx_pool(&eal, "rx", 511);
    let mut borrower = DmaBorrower::new(&eal, None).unwrap();
    let tx = TxSession::builder("tx")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(SMALL)
        .frames(2)
        .create(&eal, &mut borrower)
        .unwrap();
    let mut a = send(&tx, &rx, 1);
    session.receive(&mut borrower, &mut a.packets);
    let held = session.next_frame().unwrap();
    assert_eq!(session.frame_state(held.id()).unwrap(), RxFrameState::Held);
    assert_eq!(session.stats().frames_held, 1);
    // B fills the other buffer and waits, ready; C finds no buffer: dropped, counted.
    let mut b = send(&tx, &rx, 2);
    session.receive(&mut borrower, &mut b.packets);
    let other = 1 - held.id();
    assert_eq!(session.frame_state(other).unwrap(), RxFrameState::Ready);
    let mut c = send(&tx, &rx, 3);
    session.receive(&mut borrower, &mut c.packets);
    let stats = session.stats();
    assert_eq!(stats.frames_without_buffer, 1);
    assert_eq!(stats.dropped.no_frame, u64::from(SMALL.packets_per_frame()));
    assert_eq!(stats.frames_ready, 1);
    assert_frame(&held, &a);
    // Handed to another thread and dropped there, the frame is free again.
    let expected = a.bytes.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            assert!(held.as_slice() == expected.as_slice());
            drop(held);
        });
    });
    let mut d = send(&tx, &rx, 4);
    session.receive(&mut borrower, &mut d.packets);
    let frames: Vec<RxFrame<'_>> = std::iter::from_fn(|| session.next_frame()).collect();
    assert_eq!(frames.len(), 2);
    assert_frame(&frames[0], &b);
    assert_frame(&frames[1], &d);
    assert_ne!(frames[0].id(), frames[1].id());
    // A frame outlives its session.
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_frame(&frames[1], &d);
    drop(frames);
    assert_whole(&rx);
    assert_tx_whole(&tx);
}

#[test]
fn sixteen_sessions_share_a_device_and_the_seventeenth_copies_with_the_cpu() {
    let eal = no_huge_eal("share");
    let dev = device(&eal, 256);
    let rx = rx_pool(&eal, "rx", 255);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let format = St20Format { height: 8, ..SMALL };
    let mut sessions: Vec<RxSession<'_>> = (0..=MAX_LENDERS)
        .map(|i| {
            RxSession::builder(&format!("rx{i}"))
                .format(format)
                .frames(1)
                .create(&eal, &mut borrower)
                .unwrap()
        })
        .collect();
    let on_device: Vec<bool> = sessions.iter().map(RxSession::on_device).collect();
    assert!(on_device[..MAX_LENDERS].iter().all(|&d| d));
    assert!(!on_device[MAX_LENDERS]);
    let tx = TxSession::builder("tx")
        .format(format)
        .frames(1)
        .create(&eal)
        .unwrap();
    for (i, session) in sessions.iter_mut().enumerate() {
        let mut sent = send(&tx, &rx, i as u64);
        session.receive(&mut borrower, &mut sent.packets);
        let frames = drain(session, &mut borrower);
        assert_frame(&frames[0], &sent);
    }
    let last_session = sessions.pop().unwrap();
    let last = last_session.stats();
    assert_eq!(last.copies.cpu_no_device, last.packets_placed);
    last_session
        .close(&mut borrower)
        .map_err(|(e, _)| e)
        .unwrap();
    assert!(sessions.iter().all(|s| s.stats().copies.dma > 0));
    // One session closes: its place goes to the next one made.
    sessions
        .remove(0)
        .close(&mut borrower)
        .map_err(|(e, _)| e)
        .unwrap();
    let newcomer = RxSession::builder("rx-new")
        .format(format)
        .frames(1)
        .create(&eal, &mut borrower)
        .unwrap();
    assert!(newcomer.on_device());
    for session in sessions.into_iter().chain([newcomer]) {
        session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    }
    assert_whole(&rx);
}

#[test]
fn another_borrower_is_refused_and_the_session_copies_itself() {
    let eal = no_huge_eal("foreign");
    let dev = device(&eal, 256);
    let rx = rx_pool(&eal, "rx", 255);
    let mut own = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let mut other = DmaBorrower::new(&eal, None).unwrap();
    let tx = TxSession::builder("tx")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let mut session = RxSession::builder("rx")
        .format(SMALL)
        .create(&eal, &mut own)
        .unwrap();
    let mut sent = send(&tx, &rx, 9);
    session.receive(&mut other, &mut sent.packets);
    let frames = drain(&mut session, &mut other);
    assert_frame(&frames[0], &sent);
    let stats = session.stats();
    assert_eq!(stats.copies.cpu_refused, stats.packets_placed);
    assert_eq!(other.stats().cpu_copies(), 0);
    drop(frames);
    let (e, session) = session.close(&mut other).unwrap_err();
    assert!(matches!(e, FrameError::Dma(_)), "{e}");
    session.close(&mut own).map_err(|(e, _)| e).unwrap();
    assert_whole(&rx);
}

#[test]
fn settings_that_cannot_work_are_refused_and_register_nothing() {
    let eal = no_huge_eal("settings");
    let dev = device(&eal, 256);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let zones_before = eal.memzones().count();
    for _ in 0..=MAX_LENDERS {
        let refused = [
            RxSession::builder("rx")
                .frames(0)
                .create(&eal, &mut borrower),
            RxSession::builder("rx")
                .format(St20Format {
                    payload_len: 1262,
                    ..SMALL
                })
                .create(&eal, &mut borrower),
            // More memory than the EAL has: the first buffers are made, then given back.
            RxSession::builder("rx")
                .format(St20Format::default())
                .frames(60)
                .create(&eal, &mut borrower),
        ];
        for r in refused {
            assert!(r.is_err());
        }
        assert_eq!(eal.memzones().count(), zones_before);
    }
    // None of those took a place on the device.
    let session = RxSession::builder("rx")
        .format(SMALL)
        .create(&eal, &mut borrower)
        .unwrap();
    assert!(session.on_device());
    assert!(matches!(
        session.frame_state(3),
        Err(FrameError::UnknownFrame(3))
    ));
    session.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    assert_eq!(eal.memzones().count(), zones_before);
}

#[test]
fn sessions_and_frames_cross_threads() {
    fn send_only<T: Send>() {}
    fn shareable<T: Send + Sync>() {}
    send_only::<RxSession<'static>>();
    shareable::<RxFrame<'static>>();
}

#[test]
fn reassembly_on_hugepages_through_the_copy_device() {
    if !dpmem_testkit::hugepages_available("rx hugepage test", 96) {
        return;
    }
    let eal = Eal::init([
        "rx-test",
        "-m",
        "192",
        "-l",
        "0",
        "--file-prefix",
        &common::prefix("rx", "huge"),
    ])
    .unwrap();
    let dev = device(&eal, 1024);
    let rx = rx_pool(&eal, "rx", 4200);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let stats = round_trip(&eal, &mut borrower, &rx, St20Format::default(), 3, 32);
    assert!(stats.copies.dma > 0);
    eprintln!(
        "1080p on hugepages ({:?} IOVAs): {} device copies, {} CPU copies ({} across a page \
         break)",
        eal.iova_mode(),
        stats.copies.dma,
        stats.copies.cpu(),
        stats.copies.cpu_cross_page
    );
}
