//! External frames: memory the test maps itself (anonymous pages, or anonymous hugepages),
//! mapped for I/O with `dma_map` and lent frame by frame to transmit sessions. Each frame
//! goes out in place — its packets' payloads point into the test's memory and carry its
//! bytes — comes back through the external "done" exactly once with its own value, and is
//! never freed: the memory is mapped and intact after the session and the mapping are gone.
//! Every refusal leaves the session as it was.

mod common;
use common::SMALL;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use dpmem_eal::{Eal, Iova, IovaMode};
use dpmem_frame::{
    dma_map, header, DmaMapping, ExternalFrame, FrameError, PacketSink, St20Format, TxSession,
    HEADER_LEN,
};
use dpmem_mbuf::Mbuf;
use dpmem_sys::mapping;

fn no_huge_eal(tag: &str) -> Eal {
    common::eal("ext", tag, &["--no-huge", "-m", "64", "-l", "0-1"])
}

const PAGE: usize = 4096;
/// Room for one SMALL frame, in whole pages (76,800 bytes need 19 pages).
const SLOT: usize = 20 * PAGE;

/// Memory the test maps itself, as an application bringing its own frames would.
struct UserMemory {
    addr: usize,
    len: usize,
}

impl UserMemory {
    /// Anonymous read-write memory of `len` bytes: small pages, or hugepages of `huge`.
    fn anonymous(len: usize, huge: Option<usize>) -> Self {
        let align = huge.unwrap_or(PAGE);
        let addr = mapping::reserve(len, align, None).unwrap();
        // SAFETY: the reservation made just above, of `len` bytes, holds nothing yet.
        unsafe { mapping::map_anonymous_fixed(addr, len, huge.map(|h| h as u64), true) }.unwrap();
        Self { addr, len }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the whole mapping is this value's, readable while it lives.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// Writes `len` bytes at `offset`, each from `byte`.
    fn fill(&self, offset: usize, len: usize, byte: impl Fn(usize) -> u8) {
        assert!(offset + len <= self.len);
        // SAFETY: inside the mapping, which is this value's; the tests write a frame only
        // while it is not lent.
        let bytes = unsafe { std::slice::from_raw_parts_mut((self.addr + offset) as *mut u8, len) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = byte(i);
        }
    }

    fn contains(&self, p: *const u8) -> bool {
        (p as usize) >= self.addr && (p as usize) < self.addr + self.len
    }
}

impl Drop for UserMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's; the tests drop it after the mappings made over
        // it and every packet that read it.
        let _ = unsafe { mapping::release(self.addr, self.len) };
    }
}

/// Maps all of `mem` for I/O.
fn map<'e>(eal: &'e Eal, mem: &UserMemory) -> DmaMapping<'e> {
    // SAFETY: `mem` is mapped read-write and outlives the mapping (every test drops the
    // mapping first); the tests write a lent frame only after "done" returned it.
    unsafe { dma_map(eal, mem.addr, mem.len) }.unwrap()
}

/// The frame of `len` bytes at `offset` of `mapping`, built by hand rather than by
/// `DmaMapping::frame` so the refusal tests can make one that runs past the mapping's end.
fn frame_at(mapping: &DmaMapping<'_>, offset: usize, len: usize, opaque: u64) -> ExternalFrame {
    let va = mapping.va() + offset;
    ExternalFrame {
        va,
        iova: mapping.iova_of(va).unwrap(),
        len,
        opaque,
    }
}

fn pattern(seed: u64) -> impl Fn(usize) -> u8 {
    move |i| ((i as u64).wrapping_mul(31).wrapping_add(seed) % 253) as u8
}

/// The payload segment of a packet (its second), checking the chain's shape.
fn payload_of<'a>(packet: &'a Mbuf<'_>) -> &'a [u8] {
    let mut segments = packet.segments();
    assert_eq!(segments.next().unwrap().len(), HEADER_LEN);
    let payload = segments.next().unwrap();
    assert!(segments.next().is_none());
    payload
}

/// The payloads of `packets` gathered in order.
fn gather(packets: &[Mbuf<'_>]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|p| payload_of(p).to_vec())
        .collect()
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

/// What the external "done" callback saw.
type Returned = Arc<Mutex<Vec<ExternalFrame>>>;

fn session_with_slots<'e>(eal: &'e Eal, name: &str, slots: u16) -> (TxSession<'e>, Returned) {
    let returned: Returned = Arc::default();
    let seen = returned.clone();
    let session = TxSession::builder(name)
        .format(SMALL)
        .frames(0)
        .external_frames(slots)
        .on_external_done(move |f| seen.lock().unwrap().push(f))
        .create(eal)
        .unwrap();
    (session, returned)
}

#[test]
fn a_lent_frame_goes_out_in_place_and_comes_back_once_never_freed() {
    let eal = no_huge_eal("basic");
    let size = SMALL.frame_size();
    let mem = UserMemory::anonymous(3 * SLOT, None);
    mem.fill(0, mem.len, pattern(7));
    let expected = mem.bytes().to_vec();
    let mapping = map(&eal, &mem);
    // IOVA as VA here (`--no-huge`), recorded as the EAL records its own pages'.
    assert_eq!(eal.iova_mode(), IovaMode::Va);
    assert_eq!(mapping.iova(), Iova::new(mem.addr as u64).unwrap());
    let list = eal.memory().virt_to_list(mem.addr).unwrap();
    assert!(list.external && (list.base_va, list.len) == (mem.addr, mem.len));
    assert_eq!(
        eal.memory().virt_to_iova(mem.addr + 5000),
        mapping.iova_of(mem.addr + 5000)
    );
    {
        let (session, returned) = session_with_slots(&eal, "basic", 2);
        let frame = frame_at(&mapping, SLOT, size, 0xA11CE);
        let mut sent: Vec<Mbuf<'_>> = Vec::new();
        let report = session
            .transmit_external(&mapping, frame, &mut sent)
            .unwrap();
        assert_eq!((report.packets, report.copied), (61, 0));
        assert_eq!(sent.len(), 61);
        // Zero copy: every payload lies in the application's frame, and they carry its bytes.
        for (i, packet) in sent.iter().enumerate() {
            let (offset, len) = SMALL.payload_range(i as u32);
            let payload = payload_of(packet);
            assert_eq!(payload.as_ptr() as usize, frame.va + offset);
            assert_eq!(payload.len(), len as usize);
            assert!(mem.contains(payload.as_ptr()));
            let fields = header::parse(packet.segments().next().unwrap()).unwrap();
            assert_eq!((fields.seq, fields.marker), (i as u32, i == 60));
        }
        assert_eq!(gather(&sent), &expected[SLOT..SLOT + size]);

        // In flight: asked about, and refused again, whole or in part; nothing changes.
        assert!(session.is_lent(&frame));
        assert_eq!(session.lent_frames(), [frame]);
        for again in [frame, frame_at(&mapping, SLOT + PAGE, size, 1)] {
            let refused = session.transmit_external(&mapping, again, &mut sent);
            assert!(
                matches!(refused, Err(FrameError::ExternalInFlight { lent_va, .. }) if lent_va == frame.va),
                "{refused:?}"
            );
        }
        assert_eq!(sent.len(), 61);
        assert_eq!(session.lent_frames(), [frame]);

        // Released from the back: returned with the last packet, not before, once.
        let mut back = Vec::new();
        while sent.len() > 1 {
            sent.pop();
            session.take_external_done(&mut back);
            assert!(back.is_empty() && returned.lock().unwrap().is_empty());
        }
        sent.pop();
        session.take_external_done(&mut back);
        assert_eq!(back, [frame]);
        assert_eq!(*returned.lock().unwrap(), [frame]);
        assert_eq!(session.external_frames_done(), 1);
        assert_eq!(session.frames_done(), 0);
        assert!(!session.is_lent(&frame) && session.lent_frames().is_empty());

        // Lent again, and beside another: two slots, so a third frame finds none free.
        let other = frame_at(&mapping, 0, size, 0xB0B);
        let third = frame_at(&mapping, 2 * SLOT, size, 0xC0C);
        session
            .transmit_external(&mapping, frame, &mut sent)
            .unwrap();
        let mut redundant: Vec<Mbuf<'_>> = Vec::new();
        let report = session
            .transmit_external_redundant(&mapping, other, &mut sent, &mut redundant)
            .unwrap();
        assert!(report.redundant);
        assert!(matches!(
            session.transmit_external(&mapping, third, &mut sent),
            Err(FrameError::NoExternalSlot { slots: 2 })
        ));
        assert_eq!(gather(&sent[..61]), &expected[SLOT..SLOT + size]);
        assert_eq!(gather(&sent[61..]), &expected[..size]);
        assert_eq!(gather(&redundant), &expected[..size]);
        // Both paths read the same bytes: no copy for the second either.
        for (p, r) in sent[61..].iter().zip(&redundant) {
            assert_eq!(payload_of(p).as_ptr(), payload_of(r).as_ptr());
        }
        sent.truncate(61);
        assert!(session.is_lent(&other), "its redundant packets hold it");
        redundant.clear();
        assert!(!session.is_lent(&other) && session.is_lent(&frame));
        sent.clear();
        session.take_external_done(&mut back);
        assert_eq!(back, [frame, other, frame]);
        assert_eq!(session.external_frames_done(), 3);
        assert_pools_whole(&session);
    }
    // The session is gone; the application's memory is still mapped, registered and intact.
    assert_eq!(mem.bytes(), expected.as_slice());
    assert!(eal.memory().virt_to_list(mem.addr).unwrap().external);
    mapping.unmap().unwrap();
    assert!(eal.memory().virt_to_list(mem.addr).is_none());
    assert_eq!(mem.bytes(), expected.as_slice());
}

/// Lends `frame` into a sink of its own: the packets, or the refusal (with nothing sent).
fn lend<'s>(
    session: &'s TxSession<'_>,
    mapping: &'s DmaMapping<'_>,
    frame: ExternalFrame,
) -> Result<Vec<Mbuf<'s>>, FrameError> {
    let mut sent = Vec::new();
    match session.transmit_external(mapping, frame, &mut sent) {
        Ok(_) => Ok(sent),
        Err(e) => {
            assert!(sent.is_empty(), "{e}: refused after sending");
            Err(e)
        }
    }
}

#[test]
fn bad_lent_frames_are_refused_and_change_nothing() {
    let eal = no_huge_eal("bad");
    let other_eal = no_huge_eal("other");
    let size = SMALL.frame_size();
    let mem = UserMemory::anonymous(2 * SLOT, None);
    let unmapped = UserMemory::anonymous(SLOT, None);
    let other_mem = UserMemory::anonymous(SLOT, None);
    let mapping = map(&eal, &mem);
    let foreign = map(&other_eal, &other_mem);
    let (session, returned) = session_with_slots(&eal, "bad", 1);
    let own_only = TxSession::builder("own")
        .format(SMALL)
        .frames(1)
        .create(&eal)
        .unwrap();
    let good = frame_at(&mapping, 0, size, 1);
    let nothing_changed = |session: &TxSession<'_>| {
        assert!(session.lent_frames().is_empty());
        assert_eq!(session.external_frames_done(), 0);
        assert!(returned.lock().unwrap().is_empty());
        assert_pools_whole(session);
    };

    let null = ExternalFrame { va: 0, ..good };
    assert!(matches!(
        lend(&session, &mapping, null),
        Err(FrameError::ExternalNull)
    ));
    let short = ExternalFrame {
        len: size - 1,
        ..good
    };
    assert!(matches!(
        lend(&session, &mapping, short),
        Err(FrameError::FrameTooSmall { len, needed }) if len == size - 1 && needed == size
    ));
    let outside = ExternalFrame {
        va: unmapped.addr,
        iova: Iova::new(unmapped.addr as u64).unwrap(),
        ..good
    };
    assert!(matches!(
        lend(&session, &mapping, outside),
        Err(FrameError::ExternalUnknown { .. })
    ));
    let past_the_end = frame_at(&mapping, 2 * SLOT - size + PAGE, size, 2);
    assert!(matches!(
        lend(&session, &mapping, past_the_end),
        Err(FrameError::ExternalUnknown { .. })
    ));
    let wrong_iova = ExternalFrame {
        iova: good.iova.checked_add(PAGE as u64).unwrap(),
        ..good
    };
    let refused = lend(&session, &mapping, wrong_iova);
    assert!(
        matches!(refused, Err(FrameError::ExternalIova { given, mapped, .. }) if given == wrong_iova.iova && mapped == Some(good.iova)),
        "{refused:?}"
    );
    // A mapping of another EAL is unknown to this session.
    let refused = lend(&session, &foreign, frame_at(&foreign, 0, size, 3));
    assert!(
        matches!(refused, Err(FrameError::ExternalUnknown { .. })),
        "{refused:?}"
    );
    // A session without external slots takes none.
    assert!(matches!(
        lend(&own_only, &mapping, good),
        Err(FrameError::NoExternalSlot { slots: 0 })
    ));
    nothing_changed(&session);

    // The good frame goes, and comes back.
    drop(lend(&session, &mapping, good).unwrap());
    assert_eq!(*returned.lock().unwrap(), [good]);

    // Memory the EAL was told to forget behind the mapping's back is unknown too.
    eal.memory().extmem_unregister(mem.addr, mem.len).unwrap();
    let refused = lend(&session, &mapping, good);
    assert!(
        matches!(&refused, Err(FrameError::ExternalUnknown { detail, .. }) if detail.contains("no longer")),
        "{refused:?}"
    );
    assert_eq!(session.external_frames_done(), 1);
    assert!(session.lent_frames().is_empty());
    assert_pools_whole(&session);
}

#[test]
fn a_mapping_hands_out_frames_inside_it_and_none_outside() {
    let eal = no_huge_eal("frame-of");
    let mem = UserMemory::anonymous(4 * PAGE, None);
    mem.fill(0, mem.len, |_| 0);
    let mapping = map(&eal, &mem);
    let frame = mapping.frame(PAGE + 8, 2 * PAGE, 7).unwrap();
    assert_eq!(frame.va, mem.addr + PAGE + 8);
    assert_eq!(Some(frame.iova), mapping.iova_of(frame.va));
    assert_eq!((frame.len, frame.opaque), (2 * PAGE, 7));
    assert!(mapping.frame(0, mem.len, 0).is_some());
    for (offset, len) in [
        (0, 0),
        (0, mem.len + 1),
        (mem.len, 1),
        (1, mem.len),
        (usize::MAX, 1),
    ] {
        assert_eq!(mapping.frame(offset, len, 0), None, "{offset} {len}");
    }
}

#[test]
fn memory_that_cannot_be_mapped_for_io_is_refused() {
    let eal = no_huge_eal("map");
    let mem = UserMemory::anonymous(4 * PAGE, None);
    for (va, len) in [
        (0, PAGE),
        (mem.addr, 0),
        (mem.addr + 8, PAGE),
        (mem.addr, PAGE + 8),
    ] {
        // SAFETY: refused before anything is registered (and the memory is the test's).
        let refused = unsafe { DmaMapping::map(&eal, va, len) };
        assert!(
            matches!(refused, Err(FrameError::DmaMap { .. })),
            "{va:#x}+{len:#x}: {refused:?}"
        );
    }
    // SAFETY: as `map`'s callers.
    let refused = unsafe { DmaMapping::map_in_pages(&eal, mem.addr, mem.len, 3 * PAGE) };
    assert!(matches!(refused, Err(FrameError::DmaMap { .. })));
    let whole = map(&eal, &mem);
    // The same memory twice, or part of it, is refused by the EAL (it overlaps).
    // SAFETY: as above.
    let twice = unsafe { DmaMapping::map(&eal, mem.addr + PAGE, PAGE) };
    assert!(matches!(twice, Err(FrameError::Eal(_))), "{twice:?}");
    // So is the EAL's own memory.
    let zone = eal
        .memzones()
        .request("ext.zone", 2 * PAGE)
        .reserve()
        .unwrap();
    let start = zone.va.next_multiple_of(PAGE);
    // SAFETY: as above.
    let own = unsafe { DmaMapping::map(&eal, start, PAGE) };
    assert!(matches!(own, Err(FrameError::Eal(_))), "{own:?}");
    drop(whole);
    // SAFETY: nothing points into the memzone.
    unsafe { eal.memzones().free(&zone) }.unwrap();
}

/// Per frame number: packets released so far, and returns seen.
struct Ledger {
    released: Vec<AtomicU32>,
    returns: Vec<AtomicU32>,
    early: AtomicU32,
    bad_bytes: AtomicU32,
    wrong_value: AtomicU32,
}

struct CompletionSink<'p> {
    to_completion: mpsc::Sender<Vec<Mbuf<'p>>>,
}

impl<'p> PacketSink<'p> for CompletionSink<'p> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        self.to_completion.send(std::mem::take(packets)).unwrap();
    }
}

fn fill_value(n: u64) -> u8 {
    (n % 251) as u8 + 1
}

/// Lends `FRAMES` frames from `regions` places of the application's memory through a
/// session of `slots` external slots whose completions race on another thread; checks every
/// rule on the way.
fn race(regions: usize, slots: u16) {
    let eal = no_huge_eal("race");
    const FRAMES: u64 = 300;
    let total = SMALL.packets_per_frame();
    let ledger = Arc::new(Ledger {
        released: (0..FRAMES).map(|_| AtomicU32::new(0)).collect(),
        returns: (0..FRAMES).map(|_| AtomicU32::new(0)).collect(),
        early: AtomicU32::new(0),
        bad_bytes: AtomicU32::new(0),
        wrong_value: AtomicU32::new(0),
    });
    let mem = UserMemory::anonymous(regions * SLOT, None);
    let (in_flight_waits, slot_waits) = (AtomicU64::new(0), AtomicU64::new(0));
    let mapping = map(&eal, &mem);
    let l = ledger.clone();
    let base = mem.addr;
    let session = TxSession::builder("race")
        .format(SMALL)
        .frames(0)
        .external_frames(slots)
        .on_external_done(move |f| {
            let n = f.opaque as usize;
            if f.va != base + (n % regions) * SLOT {
                l.wrong_value.fetch_add(1, Ordering::Relaxed);
            }
            // Counted before each release: at the last one, all of them.
            if l.released[n].load(Ordering::Relaxed) != total {
                l.early.fetch_add(1, Ordering::Relaxed);
            }
            l.returns[n].fetch_add(1, Ordering::Relaxed);
        })
        .create(&eal)
        .unwrap();
    let timestamps: HashMap<u32, u64> = (0..FRAMES).map(|n| (SMALL.rtp_timestamp(n), n)).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Vec<Mbuf<'_>>>();
        let (l, timestamps) = (ledger.clone(), &timestamps);
        scope.spawn(move || {
            let release = |held: &mut std::collections::VecDeque<Mbuf<'_>>, n: usize| {
                for packet in held.drain(..n.min(held.len())) {
                    let fields = header::parse(packet.segments().next().unwrap()).unwrap();
                    let n = timestamps[&fields.timestamp];
                    if payload_of(&packet).iter().any(|&b| b != fill_value(n)) {
                        l.bad_bytes.fetch_add(1, Ordering::Relaxed);
                    }
                    l.released[n as usize].fetch_add(1, Ordering::Relaxed);
                    drop(packet);
                }
            };
            common::release_at_random(rx, 0x2545_f491_4f6c_dd1du64, release);
        });
        let mut sink = CompletionSink { to_completion: tx };
        for n in 0..FRAMES {
            let region = (n as usize % regions) * SLOT;
            let frame = frame_at(&mapping, region, SMALL.frame_size(), n);
            // The application waits for its frame instead of sleeping, then rewrites it.
            while session.is_lent(&frame) {
                in_flight_waits.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
            mem.fill(region, frame.len, |_| fill_value(n));
            loop {
                match session.transmit_external(&mapping, frame, &mut sink) {
                    Ok(report) => {
                        assert_eq!(report.packets, total);
                        break;
                    }
                    // Every slot out (with frames of other regions): wait for one.
                    Err(FrameError::NoExternalSlot { .. }) => {
                        slot_waits.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("frame {n}: {e}"),
                }
            }
        }
        drop(sink);
    });
    assert_eq!(ledger.early.load(Ordering::Relaxed), 0, "returned early");
    assert_eq!(
        ledger.bad_bytes.load(Ordering::Relaxed),
        0,
        "rewritten in flight"
    );
    assert_eq!(
        ledger.wrong_value.load(Ordering::Relaxed),
        0,
        "not the frame lent"
    );
    for (n, returns) in ledger.returns.iter().enumerate() {
        assert_eq!(returns.load(Ordering::Relaxed), 1, "frame {n}");
    }
    assert_eq!(session.external_frames_done(), FRAMES);
    assert!(session.lent_frames().is_empty());
    assert_pools_whole(&session);
    eprintln!(
        "race over {regions} regions and {slots} slots: {FRAMES} lent frames, {} waits for a \
         frame in flight, {} for a slot",
        in_flight_waits.load(Ordering::Relaxed),
        slot_waits.load(Ordering::Relaxed)
    );
}

#[test]
fn lent_frames_come_back_once_with_completions_racing_waiting_for_slots() {
    race(3, 2);
}

#[test]
fn lent_frames_come_back_once_with_completions_racing_waiting_for_frames() {
    race(2, 3);
}

#[test]
fn a_lent_1080p_frame_on_hugepages_goes_out_with_physical_addresses() {
    const HUGE: usize = 2 << 20;
    if !dpmem_testkit::hugepages_available("external frame on hugepages", 16) {
        return;
    }
    if !dpmem_sys::pagemap::physical_addresses_available() {
        eprintln!("skipped external frame on hugepages: physical addresses are hidden");
        return;
    }
    let eal = Eal::init([
        "external-test",
        "--in-memory",
        "-m",
        "24",
        "-l",
        "0",
        "--iova-mode",
        "pa",
        "--file-prefix",
        &common::prefix("ext", "huge"),
    ])
    .unwrap();
    let format = St20Format::default();
    let size = format.frame_size();
    // Three hugepages hold a 5,184,000-byte frame.
    let mem = UserMemory::anonymous(3 * HUGE, Some(HUGE));
    mem.fill(0, mem.len, pattern(11));
    let expected = mem.bytes().to_vec();
    // SAFETY: the memory is the test's, hugepages (they do not move), outliving the
    // mapping; nothing writes it while lent.
    let mapping = unsafe { DmaMapping::map_in_pages(&eal, mem.addr, mem.len, HUGE) }.unwrap();
    let pagemap = dpmem_sys::pagemap::Pagemap::open().unwrap();
    let phys = |va: usize| pagemap.physical_address(va).unwrap().unwrap();
    for va in [mem.addr, mem.addr + 12345, mem.addr + 2 * HUGE + 7] {
        assert_eq!(mapping.iova_of(va).unwrap().get(), phys(va));
    }
    // Payloads that cross a physical break between the hugepages must be copied.
    let at = mem.addr + 64;
    let breaks = (0..format.packets_per_frame())
        .filter(|&i| {
            let (offset, len) = format.payload_range(i);
            let (a, b) = (at + offset, at + offset + len as usize - 1);
            a / HUGE != b / HUGE && phys(a) + (b - a) as u64 != phys(b)
        })
        .count() as u32;
    let returned: Returned = Arc::default();
    let seen = returned.clone();
    {
        let session = TxSession::builder("huge")
            .frames(0)
            .external_frames(1)
            .on_external_done(move |f| seen.lock().unwrap().push(f))
            .create(&eal)
            .unwrap();
        let frame = frame_at(&mapping, 64, size, 42);
        let mut sent: Vec<Mbuf<'_>> = Vec::new();
        let report = session
            .transmit_external(&mapping, frame, &mut sent)
            .unwrap();
        assert_eq!(report.packets, format.packets_per_frame());
        assert_eq!(report.copied, breaks);
        let in_place = sent
            .iter()
            .filter(|p| mem.contains(payload_of(p).as_ptr()))
            .count() as u32;
        assert_eq!(in_place, report.packets - breaks);
        assert_eq!(gather(&sent), &expected[64..64 + size]);
        drop(sent);
        assert_eq!(*returned.lock().unwrap(), [frame]);
        assert_pools_whole(&session);
        eprintln!("external on hugepages: {breaks} payloads copied across physical breaks");
    }
    drop(mapping);
    assert_eq!(mem.bytes(), expected.as_slice());
}
