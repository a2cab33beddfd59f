//! Frames through the packetiser: in place and back, racing completions, cross-page copies
//! on real hugepages, redundancy, and bad input.

mod common;
use common::SMALL;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use dpmem_eal::Eal;
use dpmem_frame::{header, FrameError, FrameState, PacketSink, St20Format, TxSession, HEADER_LEN};
use dpmem_mbuf::{Mbuf, PktmbufPool};

fn no_huge_eal(tag: &str) -> Eal {
    common::eal("fr", tag, &["--no-huge", "-m", "160", "-l", "0-1"])
}

fn assert_pools_whole(session: &TxSession<'_>) {
    for pool in [
        session.header_pool(),
        session.payload_pool(),
        session.copy_pool(),
    ] {
        pool.audit().unwrap();
        assert_eq!(pool.avail_count(), pool.size(), "pool {}", pool.name());
    }
}

/// The payload segment of a packet (its second).
fn payload_of<'a>(packet: &'a Mbuf<'_>) -> &'a [u8] {
    let mut segments = packet.segments();
    let head = segments.next().unwrap();
    assert_eq!(head.len(), HEADER_LEN);
    let payload = segments.next().unwrap();
    assert!(segments.next().is_none());
    payload
}

fn is_in_place(packet: &Mbuf<'_>) -> bool {
    // SAFETY: the packet's second segment is live while the packet is.
    unsafe { &*packet.header().next() }.has_extbuf()
}

#[test]
fn a_frame_goes_out_in_place_and_comes_back_done_once() {
    let eal = no_huge_eal("basic");
    let session = TxSession::builder("basic")
        .format(SMALL)
        .frames(2)
        .create(&eal)
        .unwrap();
    let mut frame = session.get_frame().unwrap();
    let id = frame.id();
    for (i, b) in frame.as_mut_slice().iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let expected = frame.as_slice()[..SMALL.frame_size()].to_vec();
    let mut sent: Vec<Mbuf<'_>> = Vec::new();
    let report = session.transmit(frame, &mut sent).unwrap();
    assert_eq!(report.packets, 61);
    assert_eq!(report.copied, 0);
    assert_eq!(sent.len(), 61);
    assert!(session.in_flight(id).unwrap());
    assert!(matches!(session.claim(id), Err(FrameError::InFlight(i)) if i == id));
    // The other frame can be had meanwhile; this one cannot.
    let other = session.get_frame().unwrap();
    assert_ne!(other.id(), id);
    assert!(session.get_frame().is_none());
    drop(other);
    let mut gathered = Vec::new();
    for (i, packet) in sent.iter().enumerate() {
        assert_eq!(packet.nb_segs(), 2);
        assert!(is_in_place(packet));
        let fields = header::parse(packet.segments().next().unwrap()).unwrap();
        let (offset, len) = SMALL.payload_range(i as u32);
        let (row, pixel) = SMALL.row_and_pixel(offset);
        assert_eq!(
            (fields.seq, fields.row, fields.pixel),
            (i as u32, row, pixel)
        );
        assert_eq!(fields.payload_len, len);
        assert_eq!(fields.marker, i == 60);
        assert_eq!(fields.timestamp, report.timestamp);
        gathered.extend_from_slice(payload_of(packet));
    }
    assert_eq!(gathered, expected);
    // Released from the back: the frame is done with the last one, not before.
    let mut done = Vec::new();
    while sent.len() > 1 {
        sent.pop();
        session.take_done(&mut done);
        assert!(done.is_empty());
        assert!(session.in_flight(id).unwrap());
    }
    sent.pop();
    session.take_done(&mut done);
    assert_eq!(done, [id]);
    assert_eq!(session.frames_done(), 1);
    assert_eq!(session.state(id).unwrap(), FrameState::Free);
    assert_pools_whole(&session);
    drop(sent);
    drop(session);
    assert_eq!(
        eal.memzones()
            .list()
            .iter()
            .filter(|z| z.name.starts_with("basic"))
            .count(),
        0
    );
}

#[test]
fn a_redundant_path_shares_the_payload_bytes_and_holds_the_frame() {
    let eal = no_huge_eal("red");
    let session = TxSession::builder("red")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let frame = session.get_frame().unwrap();
    let id = frame.id();
    let (mut primary, mut redundant): (Vec<Mbuf<'_>>, Vec<Mbuf<'_>>) = (Vec::new(), Vec::new());
    let report = session
        .transmit_redundant(frame, &mut primary, &mut redundant)
        .unwrap();
    assert!(report.redundant);
    assert_eq!((primary.len(), redundant.len()), (61, 61));
    for (p, r) in primary.iter().zip(&redundant) {
        let (hp, hr) = (p.segments().next().unwrap(), r.segments().next().unwrap());
        assert_eq!(hp, hr);
        assert_eq!(payload_of(p).as_ptr(), payload_of(r).as_ptr());
    }
    drop(primary);
    assert!(session.in_flight(id).unwrap());
    drop(redundant);
    assert!(!session.in_flight(id).unwrap());
    assert_eq!(session.frames_done(), 1);
    assert_pools_whole(&session);
}

/// A sink whose packets go to another thread, which holds them a while and releases them in
/// batches of varying size, as a NIC's completions would.
struct CompletionSink<'p> {
    to_completion: mpsc::Sender<Vec<Mbuf<'p>>>,
}

impl<'p> PacketSink<'p> for CompletionSink<'p> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        self.to_completion.send(std::mem::take(packets)).unwrap();
    }
}

/// Per frame number: packets in place released so far, dones seen.
struct Ledger {
    released: Vec<AtomicU32>,
    dones: Vec<AtomicU32>,
    /// Frame number each frame buffer holds now.
    frame_in_slot: Vec<AtomicU64>,
    early_dones: AtomicU32,
    bad_bytes: AtomicU32,
}

fn fill_value(n: u64) -> u8 {
    (n % 251) as u8 + 1
}

/// Sends `frames` frames of `format` through a session of `buffers` frame buffers whose
/// completions race on another thread; checks every rule on the way.
fn race_completions(eal: &Eal, name: &str, format: St20Format, buffers: u16, frames: u64) {
    let ledger = Arc::new(Ledger {
        released: (0..frames).map(|_| AtomicU32::new(0)).collect(),
        dones: (0..frames).map(|_| AtomicU32::new(0)).collect(),
        frame_in_slot: (0..buffers).map(|_| AtomicU64::new(u64::MAX)).collect(),
        early_dones: AtomicU32::new(0),
        bad_bytes: AtomicU32::new(0),
    });
    // The in-place counts depend on the frame buffers' pages: learnt after creating the
    // session, so the callback reads them through a second ledger field set once.
    let in_place: Arc<std::sync::OnceLock<Vec<u32>>> = Arc::new(std::sync::OnceLock::new());
    let (l, ip) = (ledger.clone(), in_place.clone());
    let session = TxSession::builder(name)
        .format(format)
        .frames(buffers)
        .on_done(move |id| {
            let n = l.frame_in_slot[id as usize].load(Ordering::Relaxed) as usize;
            let want = ip.get().map_or(u32::MAX, |v| v[id as usize]);
            // Counted before each release: at the last one, all of them.
            if l.released[n].load(Ordering::Relaxed) != want {
                l.early_dones.fetch_add(1, Ordering::Relaxed);
            }
            l.dones[n].fetch_add(1, Ordering::Relaxed);
        })
        .create(eal)
        .unwrap();
    let total = format.packets_per_frame();
    in_place
        .set(
            (0..buffers)
                .map(|id| total - session.location(id).unwrap().crossing_payloads)
                .collect(),
        )
        .unwrap();
    let timestamps: HashMap<u32, u64> = (0..frames).map(|n| (format.rtp_timestamp(n), n)).collect();
    let mut waits = 0u64;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Vec<Mbuf<'_>>>();
        let l = ledger.clone();
        let timestamps = &timestamps;
        scope.spawn(move || {
            let release = |held: &mut std::collections::VecDeque<Mbuf<'_>>, n: usize| {
                for packet in held.drain(..n.min(held.len())) {
                    let fields = header::parse(packet.segments().next().unwrap()).unwrap();
                    let frame_no = timestamps[&fields.timestamp];
                    let want = fill_value(frame_no);
                    if payload_of(&packet).iter().any(|&b| b != want) {
                        l.bad_bytes.fetch_add(1, Ordering::Relaxed);
                    }
                    if is_in_place(&packet) {
                        l.released[frame_no as usize].fetch_add(1, Ordering::Relaxed);
                    }
                    drop(packet);
                }
            };
            common::release_at_random(rx, 0x9e37_79b9_7f4a_7c15u64, release);
        });
        let mut sink = CompletionSink { to_completion: tx };
        for n in 0..frames {
            let mut frame = loop {
                match session.get_frame() {
                    Some(frame) => break frame,
                    None => {
                        waits += 1;
                        std::thread::yield_now();
                    }
                }
            };
            ledger.frame_in_slot[frame.id() as usize].store(n, Ordering::Relaxed);
            frame.as_mut_slice().fill(fill_value(n));
            let report = session.transmit(frame, &mut sink).unwrap();
            assert_eq!(report.packets, total);
        }
        drop(sink);
    });
    assert_eq!(
        ledger.early_dones.load(Ordering::Relaxed),
        0,
        "a frame finished early"
    );
    assert_eq!(
        ledger.bad_bytes.load(Ordering::Relaxed),
        0,
        "a frame was rewritten in flight"
    );
    for (n, dones) in ledger.dones.iter().enumerate() {
        assert_eq!(dones.load(Ordering::Relaxed), 1, "frame {n}");
    }
    assert_eq!(session.frames_done(), frames);
    for id in 0..buffers {
        assert_eq!(session.state(id).unwrap(), FrameState::Free);
    }
    assert_pools_whole(&session);
    eprintln!("{name}: {frames} frames, {waits} waits for a free frame buffer");
}

#[test]
fn completions_on_another_thread_never_finish_a_frame_early_or_twice() {
    let eal = no_huge_eal("race");
    race_completions(&eal, "race", SMALL, 4, 400);
}

#[test]
fn completions_race_a_real_1080p_frame() {
    let eal = no_huge_eal("fhd");
    race_completions(&eal, "fhd", St20Format::default(), 2, 3);
}

#[test]
fn payloads_crossing_a_physical_break_are_copied_and_only_those() {
    if !dpmem_testkit::hugepages_available("frame cross-page test", 24) {
        return;
    }
    if !dpmem_sys::pagemap::physical_addresses_available() {
        eprintln!("skipped frame cross-page test: physical addresses are hidden");
        return;
    }
    let prefix = format!("frhuge{}_", std::process::id());
    let eal = Eal::init([
        "frame-test",
        "-m",
        "48",
        "-l",
        "0",
        "--iova-mode",
        "pa",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    // 1080p frames span three or four 2 MiB pages each.
    let session = TxSession::builder("cross").frames(3).create(&eal).unwrap();
    let pagemap = dpmem_sys::pagemap::Pagemap::open().unwrap();
    let format = *session.format();
    let mut total_breaks = 0;
    for _ in 0..3 {
        let frame = session.get_frame().unwrap();
        let at = session.location(frame.id()).unwrap();
        let first_page = at.va & !(at.page_size - 1);
        let phys = |va: usize| pagemap.physical_address(va).unwrap().unwrap();
        // Payload i crosses a break when its first and last bytes' pages are not physically
        // adjacent.
        let expected = (0..format.packets_per_frame())
            .filter(|&i| {
                let (offset, len) = format.payload_range(i);
                let (a, b) = (at.va + offset, at.va + offset + len as usize - 1);
                let (pa, pb) = (
                    (a - first_page) / at.page_size,
                    (b - first_page) / at.page_size,
                );
                pa != pb && phys(a).checked_add((b - a) as u64) != Some(phys(b))
            })
            .count() as u32;
        let mut sent: Vec<Mbuf<'_>> = Vec::new();
        let report = session.transmit(frame, &mut sent).unwrap();
        let copied_packets = sent.iter().filter(|p| !is_in_place(p)).count() as u32;
        assert_eq!(report.copied, expected);
        assert_eq!(copied_packets, expected);
        assert_eq!(at.crossing_payloads, expected);
        total_breaks += expected;
    }
    eprintln!("cross-page: {total_breaks} payloads copied over 3 frames");
    assert_eq!(session.copied_payloads(), total_breaks as u64);
    assert_pools_whole(&session);
}

#[test]
fn settings_too_small_for_the_format_are_refused_and_leave_nothing() {
    let eal = no_huge_eal("bad");
    let zones = eal.memzones().count();
    let too_small = TxSession::builder("bad")
        .format(SMALL)
        .frame_len(76_799)
        .create(&eal);
    assert!(matches!(
        too_small,
        Err(FrameError::FrameTooSmall {
            len: 76_799,
            needed: 76_800
        })
    ));
    let pool = TxSession::builder("bad")
        .format(SMALL)
        .header_pool(31)
        .create(&eal);
    assert!(matches!(
        pool,
        Err(FrameError::PoolTooSmall { pool: "header", .. })
    ));
    let pool = TxSession::builder("bad")
        .format(SMALL)
        .copy_pool(8)
        .create(&eal);
    assert!(matches!(
        pool,
        Err(FrameError::PoolTooSmall { pool: "copy", .. })
    ));
    let format = TxSession::builder("bad")
        .format(St20Format {
            payload_len: 1261,
            ..SMALL
        })
        .create(&eal);
    assert!(matches!(format, Err(FrameError::InvalidFormat(_))));
    assert!(matches!(
        TxSession::builder("bad").frames(0).create(&eal),
        Err(FrameError::InvalidFormat(_))
    ));
    // Memory runs out part-way: the frames already reserved go back.
    let huge = TxSession::builder("bad").frames(200).create(&eal);
    assert!(matches!(huge, Err(FrameError::Eal(_))), "{huge:?}");
    assert_eq!(eal.memzones().count(), zones);
    assert!(PktmbufPool::lookup(&eal, "bad.h").is_err());
}

#[test]
fn frames_owned_or_in_flight_are_refused_and_nothing_leaks() {
    let eal = no_huge_eal("own");
    let session = TxSession::builder("own")
        .format(SMALL)
        .frames(2)
        .create(&eal)
        .unwrap();
    let other = TxSession::builder("other")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let frame = session.claim(1).unwrap();
    assert!(matches!(session.claim(1), Err(FrameError::AlreadyOwned(1))));
    assert!(matches!(session.claim(2), Err(FrameError::UnknownFrame(2))));
    // A frame handed to the wrong session is refused and is free again in its own.
    let foreign = other.get_frame().unwrap();
    let mut sink: Vec<Mbuf<'_>> = Vec::new();
    assert!(matches!(
        session.transmit(foreign, &mut sink),
        Err(FrameError::UnknownFrame(0))
    ));
    assert_eq!(other.state(0).unwrap(), FrameState::Free);
    // Dropped untransmitted: free again, no done.
    drop(frame);
    assert_eq!(session.state(1).unwrap(), FrameState::Free);
    assert_eq!(session.frames_done(), 0);
    assert!(sink.is_empty());
    assert_pools_whole(&session);
}

#[test]
fn a_pool_running_dry_mid_frame_sends_what_it_built_and_the_frame_still_completes() {
    let eal = no_huge_eal("dry");
    let session = TxSession::builder("dry")
        .format(SMALL)
        .frames(1)
        .header_pool(40)
        .create(&eal)
        .unwrap();
    let frame = session.get_frame().unwrap();
    let mut sent: Vec<Mbuf<'_>> = Vec::new();
    let err = session.transmit(frame, &mut sent).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::PoolDry {
                frame: 0,
                sent: 40,
                total: 61,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(sent.len(), 40);
    assert!(session.in_flight(0).unwrap());
    drop(sent);
    assert!(!session.in_flight(0).unwrap());
    assert_eq!(session.frames_done(), 1);
    assert_pools_whole(&session);
}
