//! `RawRing::attach` over a damaged header: a real ring is built in a heap block and used a
//! little, bytes of its header are overwritten from the input, and a second handle attaches to
//! the block. The attach must refuse, or give a ring whose operations stay inside the block
//! (16 KiB of guard bytes after it are checked after every operation, and zero-copy regions
//! must lie in the slot array) and return.
//!
//! One kind of waiting is the ring's documented behaviour, not a hang: a header can show an
//! operation in flight on a side (a multi-thread producer that moved the head and has not
//! published yet, as when another process is in the middle of an enqueue), and a thread-safe
//! operation on that side waits for it to finish, as DPDK's does. In a damaged header that
//! operation never finishes, so those operations are not run on such a side; everything that
//! does not wait by design (single-thread operations, counts, dumps, and every operation on a
//! side at rest) is run. A watchdog aborts, naming the operation, when one takes over 5 s.
//!
//! Input: the ring's geometry and modes, operations on the intact ring, the damage (a list of
//! writes into the header), then operations on the attached ring; missing bytes read as 0.

#![no_main]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use dpmem_ring::{
    memory_size, Behavior, ConsumerMode, HeapRegion, ProducerMode, RawRing, RingFlags, RingMemory,
    ZeroCopyRegions,
};
use libfuzzer_sys::fuzz_target;

#[path = "../common/input_reader.rs"]
mod input_reader;
use input_reader::Reader;

// Where the header keeps what the harness reads and damages on purpose (header.rs, headtail.rs:
// five 128-byte blocks, checked against a real ring at start-up by `check_layout`).
/// Bytes of header before slot 0.
const HEADER: usize = 640;
/// Start of each side's head block (the tail block follows 128 bytes later).
const PRODUCER: usize = 128;
const CONSUMER: usize = 384;
/// Within a side: the head word (on the head block), the sync type and whether the head is
/// kept beside the tail; the tail word and that other head word (on the tail block).
const HEAD_POS: usize = 0;
const SYNC: usize = 8;
const HEAD_WITH_TAIL: usize = 20;
const TAIL_WORD: usize = 128;
const TAIL_HEAD: usize = 136;
/// Guard bytes after the ring's memory.
const GUARD: usize = 16 << 10;
const GUARD_BYTE: u8 = 0xA5;
/// Most elements one operation asks for.
const MAX_N: u32 = 1024;
/// Operations before and after the damage.
const MAX_OPS: usize = 48;

/// The attached handle's view of the block the creating handle owns.
struct Borrowed {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the block belongs to the `HeapRegion` of the creating `RawRing`, which the harness
// keeps alive (and does not move or free) until this value is dropped; its bytes are changed
// by ring operations and by the harness's damage, which happens before the attach, never while
// an operation runs.
unsafe impl RingMemory for Borrowed {
    fn base(&self) -> NonNull<u8> {
        self.base
    }
    fn len(&self) -> usize {
        self.len
    }
}

// ---- the watchdog --------------------------------------------------------------------------

/// Milliseconds since `EPOCH` at which the running operation started; 0 when none runs.
static STARTED: AtomicU64 = AtomicU64::new(0);
static CURRENT: Mutex<String> = Mutex::new(String::new());

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        epoch();
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let started = STARTED.load(Ordering::Relaxed);
            if started != 0 && now_ms().saturating_sub(started) > 5_000 {
                let op = CURRENT.lock().map(|s| s.clone()).unwrap_or_default();
                eprintln!("ring_attach: an operation has not returned after 5 s: {op}");
                std::process::abort();
            }
        });
    });
}

/// Runs `f` under the watchdog, described by `what()` should it hang.
fn watched<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> T) -> T {
    *CURRENT.lock().unwrap() = what();
    STARTED.store(now_ms(), Ordering::Relaxed);
    let out = f();
    STARTED.store(0, Ordering::Relaxed);
    out
}

// ---- the header, read and damaged as bytes ---------------------------------------------------

fn read_u32(block: *const u8, at: usize) -> u32 {
    // SAFETY: `at + 4 <= HEADER` inside the live block; an unaligned plain read of bytes that
    // no operation is writing (the harness is the only thread).
    unsafe { block.add(at).cast::<u32>().read_unaligned() }
}

fn read_u64(block: *const u8, at: usize) -> u64 {
    // SAFETY: as in `read_u32`.
    unsafe { block.add(at).cast::<u64>().read_unaligned() }
}

fn write_bytes(block: *mut u8, at: usize, bytes: &[u8]) {
    assert!(at + bytes.len() <= HEADER);
    // SAFETY: inside the header of the live block; no operation runs meanwhile.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.add(at), bytes.len()) }
}

/// A side's sync type as the header records it (the ring reads unknown values as MT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideSync {
    Mt,
    St,
    Rts,
    Hts,
}

#[derive(Debug, Clone, Copy)]
struct SideState {
    sync: SideSync,
    together: bool,
    /// An operation is in flight: thread-safe operations on this side would wait for it.
    busy: bool,
}

fn side_state(block: *const u8, side: usize) -> SideState {
    let sync = match read_u32(block, side + SYNC) {
        1 => SideSync::St,
        2 => SideSync::Rts,
        3 => SideSync::Hts,
        _ => SideSync::Mt,
    };
    let together = read_u32(block, side + HEAD_WITH_TAIL) != 0;
    let head = read_u64(block, side + if together { TAIL_HEAD } else { HEAD_POS });
    let tail = read_u64(block, side + TAIL_WORD);
    let busy = match sync {
        // Positions (low halves) apart: a claim not yet published.
        SideSync::Mt | SideSync::St => head as u32 != tail as u32,
        // Position or count of operations apart.
        SideSync::Rts => head != tail,
        // The tail word holds both.
        SideSync::Hts => tail as u32 != (tail >> 32) as u32,
    };
    SideState {
        sync,
        together,
        busy,
    }
}

/// Whether an operation on a side in `mode` (`Some(true)`: per-call single-thread,
/// `Some(false)`: per-call multi-thread, `None`: the side's own) may wait for another thread.
fn may_wait(side: SideState, mode: Option<bool>) -> bool {
    let single_thread = match (side.sync, mode) {
        (SideSync::St, None) => true,
        // A per-call single-thread operation runs the single-thread protocol on an ST or MT
        // side whose head is apart, and the multi-thread one where it is beside the tail.
        (SideSync::St | SideSync::Mt, Some(true)) => !side.together,
        _ => false,
    };
    side.busy && !single_thread
}

/// Damage from the input: a few writes into the header.
fn damage(block: *mut u8, r: &mut Reader<'_>) -> Vec<String> {
    let mut done = Vec::new();
    for _ in 0..r.u8() % 6 {
        let kind = r.u8() % 6;
        let at = r.u32() as usize;
        match kind {
            0 => {
                let (at, v) = (at % HEADER, r.u8());
                write_bytes(block, at, &[v]);
                done.push(format!("byte {at} = {v:#x}"));
            }
            1 => {
                let (at, v) = (at % (HEADER / 4) * 4, r.u32());
                write_bytes(block, at, &v.to_le_bytes());
                done.push(format!("u32 {at} = {v:#x}"));
            }
            2 => {
                let (at, v) = (at % (HEADER / 8) * 8, r.u64());
                write_bytes(block, at, &v.to_le_bytes());
                done.push(format!("u64 {at} = {v:#x}"));
            }
            3 => {
                let (at, delta) = (at % (HEADER / 4) * 4, r.u8() as i8);
                let v = read_u32(block, at).wrapping_add(delta as u32);
                write_bytes(block, at, &v.to_le_bytes());
                done.push(format!("u32 {at} += {delta}"));
            }
            4 => {
                // Every position moved by the same amount: a consistent ring elsewhere in the
                // position space (near the wrap at 2^32, say), which must be accepted and work.
                let delta = at as u32;
                for side in [PRODUCER, CONSUMER] {
                    let hts = side_state(block, side).sync == SideSync::Hts;
                    for word in [HEAD_POS, TAIL_WORD, TAIL_HEAD] {
                        let mut v = read_u64(block, side + word);
                        v = (v & !0xffff_ffff) | u64::from((v as u32).wrapping_add(delta));
                        if hts && word == TAIL_WORD {
                            let high = ((v >> 32) as u32).wrapping_add(delta);
                            v = (v & 0xffff_ffff) | u64::from(high) << 32;
                        }
                        write_bytes(block, side + word, &v.to_le_bytes());
                    }
                }
                done.push(format!("positions += {delta:#x}"));
            }
            _ => {
                let bit = at % (HEADER * 8);
                let v = read_u32(block, bit / 8) ^ (1 << (bit % 8));
                write_bytes(block, bit / 8, &v.to_le_bytes()[..1]);
                done.push(format!("bit {bit} flipped"));
            }
        }
    }
    done
}

// ---- the ring --------------------------------------------------------------------------------

fn geometry(r: &mut Reader<'_>) -> (u32, u32, RingFlags) {
    let shape = r.u8();
    let exact = shape & 0x80 != 0;
    let count = if exact {
        [1, 3, 6, 10, 100, 1000][(shape % 6) as usize]
    } else {
        [2, 4, 8, 16, 32, 256][(shape % 6) as usize]
    };
    let esize = 4 * (1 + u32::from(r.u8() % 4));
    let modes = r.u8();
    let producer = [
        RingFlags::SP_ENQ,
        RingFlags::NONE,
        RingFlags::MP_RTS_ENQ,
        RingFlags::MP_HTS_ENQ,
    ][(modes & 3) as usize];
    let consumer = [
        RingFlags::SC_DEQ,
        RingFlags::NONE,
        RingFlags::MC_RTS_DEQ,
        RingFlags::MC_HTS_DEQ,
    ][((modes >> 2) & 3) as usize];
    let layout = [
        RingFlags::NONE,
        RingFlags::CACHED_OTHER_TAIL,
        RingFlags::CACHED_OTHER_TAIL | RingFlags::HEAD_TAIL_TOGETHER,
    ][((modes >> 4) % 3) as usize];
    let exact = if exact {
        RingFlags::EXACT_SZ
    } else {
        RingFlags::NONE
    };
    (count, esize, producer | consumer | layout | exact)
}

/// The block: a heap block holding the ring, then guard bytes.
struct Block {
    /// The creating handle, which owns the block.
    ring: RawRing<HeapRegion>,
    ring_len: usize,
}

impl Block {
    fn base(&self) -> *mut u8 {
        self.ring.memory().base().as_ptr()
    }

    fn check_guard(&self, after: &dyn Fn() -> String) {
        // SAFETY: the guard lies inside the block, after the ring's bytes; nothing writes it
        // but a ring operation gone wrong, and none runs now.
        let guard = unsafe { std::slice::from_raw_parts(self.base().add(self.ring_len), GUARD) };
        if let Some(at) = guard.iter().position(|b| *b != GUARD_BYTE) {
            panic!(
                "a ring operation wrote {at} bytes past the ring's memory ({} bytes): {}",
                self.ring_len,
                after()
            );
        }
    }

    /// Whether `[p, p + len)` lies in the slot array.
    fn in_slots(&self, p: *mut u8, len: usize, slots_len: usize) -> bool {
        let start = self.base() as usize + HEADER;
        let p = p as usize;
        p >= start && p + len <= start + slots_len
    }
}

fn check_layout() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ring = RawRing::new("layout", 16, 4, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
        // SAFETY: SP/SC ring used by this thread alone; buffers hold the elements asked for.
        unsafe {
            ring.enqueue_elems(&[0; 20], 5, Behavior::Fixed, None);
            ring.dequeue_elems(&mut [0; 8], 2, Behavior::Fixed, None);
        }
        let block = ring.memory().base().as_ptr();
        let words = (
            read_u64(block, PRODUCER + HEAD_POS),
            read_u64(block, PRODUCER + TAIL_WORD),
            read_u64(block, CONSUMER + HEAD_POS) as u32,
            read_u64(block, CONSUMER + TAIL_WORD),
            read_u32(block, PRODUCER + SYNC),
        );
        assert_eq!(
            words,
            (5, 5, 2, 2, 1),
            "the ring header's layout changed: update the offsets in this target"
        );
    });
}

/// One operation on `ring` from the input; returns a description (for failure messages).
fn operate<M: RingMemory>(ring: &RawRing<M>, block: &Block, r: &mut Reader<'_>) -> String {
    let op = r.u8();
    let n = u32::from(r.u8()) * u32::from(r.u8() % 5) % (MAX_N + 1);
    let behavior = if op & 0x80 != 0 {
        Behavior::Fixed
    } else {
        Behavior::Variable
    };
    let per_call = match (op >> 5) & 3 {
        0 | 1 => None,
        2 => Some(true),
        _ => Some(false),
    };
    let base = block.base();
    let producer = side_state(base, PRODUCER);
    let consumer = side_state(base, CONSUMER);
    let esize = ring.esize() as usize;
    let slots_len = ring.size() as usize * esize;
    let what = format!(
        "op {} n {n} {behavior:?} per-call {per_call:?} on {}; producer {producer:?}, \
         consumer {consumer:?}",
        op & 7,
        ring.dump()
    );
    let check_moved = |moved: u32| {
        assert!(moved <= n, "{moved} moved of {n} asked: {what}");
        assert!(
            moved <= ring.capacity(),
            "{moved} moved, capacity {}: {what}",
            ring.capacity()
        );
        if behavior == Behavior::Fixed {
            assert!(
                moved == 0 || moved == n,
                "bulk moved {moved} of {n}: {what}"
            );
        }
    };
    // A zero-copy claim's regions must lie in the slot array; their lengths in bytes.
    let check_regions = |regions: &ZeroCopyRegions| {
        check_moved(regions.n);
        let first = regions.first_len as usize * esize;
        let second = (regions.n - regions.first_len) as usize * esize;
        if regions.n > 0 {
            assert!(
                block.in_slots(regions.first, first, slots_len)
                    && (second == 0 || block.in_slots(regions.second, second, slots_len)),
                "zero-copy regions {regions:?} outside the slots: {what}"
            );
        }
        (first, second)
    };
    match op & 7 {
        0 | 1 => {
            if may_wait(producer, per_call) {
                return what;
            }
            let mode = per_call.map(|single| {
                if single {
                    ProducerMode::Sp
                } else {
                    ProducerMode::Mp
                }
            });
            let objs = vec![op; n as usize * esize];
            // SAFETY: this thread is the ring's only user; the buffer holds n elements.
            let (moved, _) = watched(
                || what.clone(),
                || unsafe { ring.enqueue_elems(&objs, n, behavior, mode) },
            );
            check_moved(moved);
        }
        2 | 3 => {
            if may_wait(consumer, per_call) {
                return what;
            }
            let mode = per_call.map(|single| {
                if single {
                    ConsumerMode::Sc
                } else {
                    ConsumerMode::Mc
                }
            });
            let mut objs = vec![0; n as usize * esize];
            // SAFETY: as above, with room for n elements.
            let (moved, _) = watched(
                || what.clone(),
                || unsafe { ring.dequeue_elems(&mut objs, n, behavior, mode) },
            );
            check_moved(moved);
        }
        4 => {
            // Peek and zero-copy on the producer side: ST and HTS sides only (others refuse).
            if may_wait(producer, None) {
                return what;
            }
            if op & 8 != 0 {
                // SAFETY: this thread is the only user; the finish follows the start.
                let started = watched(
                    || what.clone(),
                    || unsafe { ring.enqueue_start(n, behavior) },
                );
                if let Ok((claimed, _)) = started {
                    check_moved(claimed);
                    if claimed > 0 {
                        let objs = vec![op; claimed as usize * esize];
                        // SAFETY: finishes the claim just made, with `claimed` elements.
                        unsafe { ring.enqueue_finish(&objs, claimed) };
                    }
                }
            } else {
                // SAFETY: as above.
                let started = watched(
                    || what.clone(),
                    || unsafe { ring.enqueue_zc_start(n, behavior) },
                );
                if let Ok(regions) = started {
                    let (first, second) = check_regions(&regions);
                    if regions.n > 0 {
                        // SAFETY: the claimed regions, inside the slot array (checked).
                        unsafe {
                            std::ptr::write_bytes(regions.first, op, first);
                            if second > 0 {
                                std::ptr::write_bytes(regions.second, op, second);
                            }
                            ring.enqueue_zc_finish(regions.n);
                        }
                    }
                }
            }
        }
        5 => {
            if may_wait(consumer, None) {
                return what;
            }
            if op & 8 != 0 {
                let mut objs = vec![0; n as usize * esize];
                // SAFETY: this thread is the only user; the finish follows the start.
                let started = watched(
                    || what.clone(),
                    || unsafe { ring.dequeue_start(&mut objs, n, behavior) },
                );
                if let Ok((claimed, _)) = started {
                    check_moved(claimed);
                    if claimed > 0 {
                        // SAFETY: finishes the claim just made.
                        unsafe { ring.dequeue_finish(claimed / 2) };
                    }
                }
            } else {
                // SAFETY: as above.
                let started = watched(
                    || what.clone(),
                    || unsafe { ring.dequeue_zc_start(n, behavior) },
                );
                if let Ok(regions) = started {
                    check_regions(&regions);
                    if regions.n > 0 {
                        // SAFETY: finishes the claim just made.
                        unsafe { ring.dequeue_zc_finish(regions.n) };
                    }
                }
            }
        }
        6 => {
            let _ = (ring.prod_htd_max(), ring.cons_htd_max());
            if op & 8 != 0 && !producer.busy && !consumer.busy {
                let _ = ring.set_prod_htd_max(u32::from(r.u8()));
                let _ = ring.set_cons_htd_max(u32::from(r.u8()));
            }
        }
        _ => {
            let count = ring.count();
            assert!(count <= ring.capacity(), "count {count}: {what}");
            assert_eq!(ring.free_count(), ring.capacity() - count);
            let _ = (
                ring.is_full(),
                ring.is_empty(),
                ring.name(),
                format!("{ring:?}"),
            );
        }
    }
    what
}

fuzz_target!(|data: &[u8]| {
    start_watchdog();
    check_layout();
    let mut r = Reader::new(data);
    let (count, esize, flags) = geometry(&mut r);
    let ring_len = memory_size(count, esize, flags).expect("a geometry the ring accepts");
    let region = HeapRegion::zeroed(ring_len + GUARD).expect("memory for the ring");
    // SAFETY: the region is ours and nothing else uses it yet.
    unsafe {
        std::ptr::write_bytes(region.base().as_ptr().add(ring_len), GUARD_BYTE, GUARD);
    }
    let ring = RawRing::create_in(region, "fuzzed", count, esize, flags)
        .expect("a ring in a block of the right size");
    let block = Block { ring, ring_len };

    // Use the intact ring a little, so positions, counts and cached room are not all 0.
    for _ in 0..r.u8() % 8 {
        let what = operate(&block.ring, &block, &mut r);
        block.check_guard(&|| format!("intact ring: {what}"));
    }

    let damage = damage(block.base(), &mut r);
    let memory = Borrowed {
        base: block.ring.memory().base(),
        len: ring_len,
    };
    let attached = match RawRing::attach(memory) {
        Ok(ring) => ring,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // What never changes after initialisation reads back as a ring the checks accept.
    assert!(attached.capacity() < attached.size());
    assert!(attached.memory_size() <= ring_len);
    let _ = (attached.name(), attached.flags(), attached.dump());
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        let what = operate(&attached, &block, &mut r);
        block.check_guard(&|| format!("after damage {damage:?}: {what}"));
    }
    drop(attached);
});
