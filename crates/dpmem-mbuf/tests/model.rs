//! A model test: random sequences of packet operations (alloc, append, prepend, adj, trim,
//! chain, clone, copy, linearize, read, write, free) on a few packets of one small pool,
//! checked after every step against a model that keeps each packet as a list of segments
//! (their bytes, where their data starts, whose buffer the data is in).
//!
//! After every step: each packet's bytes, length, segment count and segments are the
//! model's; each operation succeeded or failed with the kind the model predicts (`EBUSY` for
//! writing shared data, `ENOSPC`, `EINVAL`, `ENOENT` when the pool runs dry); the pool's audit
//! passes; its count of buffers out is the model's (none lost, none back twice); and every
//! buffer's reference count is the number of segments using its data.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use dpmem_eal::ErrorKind;
use dpmem_mbuf::{Mbuf, MbufError, MbufHeader, PktmbufPool, HEADER_SIZE, HEADROOM};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Room of each buffer: the default headroom and 48 bytes, so packets soon span segments.
const ROOM: u16 = HEADROOM + 48;
const TAIL: usize = 48;
const POOL_SIZE: u32 = 12;
const MAX_PACKETS: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Alloc(Vec<u8>),
    Append(Index, Vec<u8>),
    Prepend(Index, Vec<u8>),
    Adj(Index, u16),
    Trim(Index, u16),
    Chain(Index, Index),
    Clone(Index),
    /// Offset and length as fractions of the packet's length (a little past it too), or
    /// the whole rest.
    Copy(Index, Index, Option<Index>),
    Linearize(Index),
    Read(Index, Index, Index),
    Write(Index, Index, Vec<u8>),
    Free(Index),
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// Mostly packets of one segment, some of several.
fn packet_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => bytes(TAIL / 2), 1 => bytes(3 * TAIL)]
}

fn op() -> impl Strategy<Value = Op> {
    let at = any::<Index>;
    prop_oneof![
        3 => packet_bytes().prop_map(Op::Alloc),
        2 => (at(), bytes(60)).prop_map(|(p, b)| Op::Append(p, b)),
        2 => (at(), bytes(140)).prop_map(|(p, b)| Op::Prepend(p, b)),
        2 => (at(), 0..60u16).prop_map(|(p, n)| Op::Adj(p, n)),
        2 => (at(), 0..60u16).prop_map(|(p, n)| Op::Trim(p, n)),
        3 => (at(), at()).prop_map(|(a, b)| Op::Chain(a, b)),
        2 => at().prop_map(Op::Clone),
        2 => (at(), at(), prop::option::of(at())).prop_map(|(p, o, l)| Op::Copy(p, o, l)),
        3 => at().prop_map(Op::Linearize),
        2 => (at(), at(), at()).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        2 => (at(), at(), bytes(60)).prop_map(|(p, o, b)| Op::Write(p, o, b)),
        2 => at().prop_map(Op::Free),
    ]
}

/// A segment as the model sees it.
#[derive(Debug, Clone)]
struct Seg {
    /// The buffer whose header this segment is.
    header: u32,
    /// The buffer whose data this segment shows (its own, or a clone's source's).
    data: u32,
    indirect: bool,
    data_off: u16,
    bytes: Vec<u8>,
}

impl Seg {
    fn tailroom(&self) -> usize {
        ROOM as usize - self.data_off as usize - self.bytes.len()
    }
}

type Packet = Vec<Seg>;

#[derive(Debug, Default)]
struct Model {
    packets: Vec<Packet>,
    next_id: u32,
}

impl Model {
    fn new_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Segments showing the data of buffer `data`.
    fn users(&self, data: u32) -> usize {
        self.packets
            .iter()
            .flatten()
            .filter(|s| s.data == data)
            .count()
    }

    fn seg_writable(&self, s: &Seg) -> bool {
        !s.indirect && self.users(s.data) == 1
    }

    fn writable(&self, p: usize) -> bool {
        self.packets[p].iter().all(|s| self.seg_writable(s))
    }

    /// Buffers out of the pool: every segment's header and every buffer whose data is shown.
    fn in_use(&self) -> u32 {
        let ids: HashSet<u32> = self
            .packets
            .iter()
            .flatten()
            .flat_map(|s| [s.header, s.data])
            .collect();
        ids.len() as u32
    }

    fn available(&self) -> u32 {
        POOL_SIZE - self.in_use()
    }

    /// Fresh direct segments holding `bytes`, as many as a fresh buffer's tailroom takes.
    fn fresh_segments(&mut self, bytes: &[u8]) -> Packet {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[]]
        } else {
            bytes.chunks(TAIL).collect()
        };
        chunks
            .into_iter()
            .map(|c| {
                let id = self.new_id();
                Seg {
                    header: id,
                    data: id,
                    indirect: false,
                    data_off: HEADROOM,
                    bytes: c.to_vec(),
                }
            })
            .collect()
    }

    fn flat(&self, p: usize) -> Vec<u8> {
        self.packets[p]
            .iter()
            .flat_map(|s| s.bytes.clone())
            .collect()
    }
}

/// Buffers a fresh packet of `len` bytes takes.
fn buffers_for(len: usize) -> u32 {
    len.div_ceil(TAIL).max(1) as u32
}

/// How often each operation met each outcome, over a whole run: the test asserts at the end
/// that every one was met, so the generated sequences keep reaching them.
type Tally = RefCell<BTreeMap<(&'static str, String), u32>>;

/// Checks a result against the model's prediction (`Ok(())` or the error kind) and counts the
/// outcome.
fn expect<T>(
    tally: &Tally,
    got: Result<T, MbufError>,
    want: Result<(), ErrorKind>,
    what: &'static str,
) -> Result<Option<T>, TestCaseError> {
    *tally
        .borrow_mut()
        .entry((what, format!("{want:?}")))
        .or_default() += 1;
    match (got, want) {
        (Ok(v), Ok(())) => Ok(Some(v)),
        (Err(e), Err(kind)) => {
            prop_assert_eq!(e.kind(), kind, "{}: {}", what, e);
            Ok(None)
        }
        (Ok(_), Err(kind)) => Err(TestCaseError::fail(format!(
            "{what}: ok, {kind:?} expected"
        ))),
        (Err(e), Ok(())) => Err(TestCaseError::fail(format!(
            "{what}: {e}, success expected"
        ))),
    }
}

/// The direct buffer whose data a segment shows.
fn data_owner(h: &MbufHeader) -> usize {
    if h.is_indirect() {
        h.buf_addr() as usize - HEADER_SIZE - h.priv_size() as usize
    } else {
        core::ptr::from_ref(h) as usize
    }
}

/// Everything the model says about the packets and the pool, checked against them.
fn check_against_model(
    pool: &PktmbufPool<'_>,
    real: &[Mbuf<'_>],
    model: &Model,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(real.len(), model.packets.len());
    let mut header_of: HashMap<u32, usize> = HashMap::new();
    let mut data_of: HashMap<u32, usize> = HashMap::new();
    for (i, (packet, segs)) in real.iter().zip(&model.packets).enumerate() {
        prop_assert_eq!(packet.to_vec(), model.flat(i), "packet {}", i);
        prop_assert_eq!(packet.pkt_len() as usize, model.flat(i).len());
        prop_assert_eq!(packet.nb_segs() as usize, segs.len(), "packet {}", i);
        prop_assert_eq!(packet.check(), Ok(()));
        prop_assert_eq!(packet.is_writable(), model.writable(i), "packet {}", i);
        let headers = common::packet_ops::segment_headers(packet.header());
        prop_assert_eq!(headers.len(), segs.len());
        for (h, s) in headers.iter().zip(segs) {
            prop_assert_eq!(h.data_off(), s.data_off);
            prop_assert_eq!(h.data_len() as usize, s.bytes.len());
            prop_assert_eq!(h.is_indirect(), s.indirect);
            let at = core::ptr::from_ref(*h) as usize;
            prop_assert_eq!(*header_of.entry(s.header).or_insert(at), at);
            let owner = data_owner(h);
            prop_assert_eq!(*data_of.entry(s.data).or_insert(owner), owner);
        }
    }
    // Distinct model buffers are distinct real buffers.
    let headers: HashSet<usize> = header_of.values().copied().collect();
    prop_assert_eq!(headers.len(), header_of.len());
    let owners: HashSet<usize> = data_of.values().copied().collect();
    prop_assert_eq!(owners.len(), data_of.len());
    // Each buffer whose data is shown counts one reference per segment showing it.
    for (&id, &addr) in &data_of {
        // SAFETY: the buffer is live while a packet's segment shows its data.
        let refs = unsafe { &*(addr as *const MbufHeader) }.refcnt();
        prop_assert_eq!(refs as usize, model.users(id), "buffer {}", id);
    }
    if let Err(e) = pool.audit() {
        return Err(TestCaseError::fail(format!("audit: {e}")));
    }
    prop_assert_eq!(pool.in_use_count(), model.in_use(), "buffers out");
    Ok(())
}

/// Runs one operation on the packets and the model.
fn step<'p>(
    pool: &'p PktmbufPool<'_>,
    real: &mut Vec<Mbuf<'p>>,
    model: &mut Model,
    op: &Op,
    tally: &Tally,
) -> Result<(), TestCaseError> {
    let n = real.len();
    if n == 0 && !matches!(op, Op::Alloc(_)) {
        return Ok(());
    }
    let full = n >= MAX_PACKETS;
    match op {
        Op::Alloc(bytes) => {
            if full {
                return Ok(());
            }
            let want = if buffers_for(bytes.len()) > model.available() {
                Err(ErrorKind::NoEnt)
            } else {
                Ok(())
            };
            if let Some(p) = expect(tally, pool.alloc_from_slice(bytes), want, "alloc")? {
                real.push(p);
                let segs = model.fresh_segments(bytes);
                model.packets.push(segs);
            }
        }
        Op::Append(p, bytes) => {
            let p = p.index(n);
            let last = model.packets[p].last().unwrap();
            // Appending writes the last segment only: only it must be unshared.
            let want = if !model.seg_writable(last) {
                Err(ErrorKind::Busy)
            } else if bytes.len() > last.tailroom() {
                Err(ErrorKind::NoSpc)
            } else {
                Ok(())
            };
            if expect(tally, real[p].extend_from_slice(bytes), want, "append")?.is_some() {
                let last = model.packets[p].last_mut().unwrap();
                last.bytes.extend_from_slice(bytes);
            }
        }
        Op::Prepend(p, bytes) => {
            let p = p.index(n);
            // Prepending writes the first segment only: only it must be unshared.
            let want = if !model.seg_writable(&model.packets[p][0]) {
                Err(ErrorKind::Busy)
            } else if bytes.len() > model.packets[p][0].data_off as usize {
                Err(ErrorKind::NoSpc)
            } else {
                Ok(())
            };
            let got = real[p].prepend(bytes.len() as u16).map(|front| {
                front.copy_from_slice(bytes);
            });
            if expect(tally, got, want, "prepend")?.is_some() {
                let first = &mut model.packets[p][0];
                first.data_off -= bytes.len() as u16;
                first.bytes.splice(0..0, bytes.iter().copied());
            }
        }
        Op::Adj(p, len) => {
            let p = p.index(n);
            let first = &model.packets[p][0];
            let want = if *len as usize > first.bytes.len() {
                Err(ErrorKind::Inval)
            } else {
                Ok(())
            };
            if expect(tally, real[p].adj(*len), want, "adj")?.is_some() {
                let first = &mut model.packets[p][0];
                first.data_off += len;
                first.bytes.drain(..*len as usize);
            }
        }
        Op::Trim(p, len) => {
            let p = p.index(n);
            let last = model.packets[p].last().unwrap();
            let want = if *len as usize > last.bytes.len() {
                Err(ErrorKind::Inval)
            } else {
                Ok(())
            };
            if expect(tally, real[p].trim(*len), want, "trim")?.is_some() {
                let last = model.packets[p].last_mut().unwrap();
                let keep = last.bytes.len() - *len as usize;
                last.bytes.truncate(keep);
            }
        }
        Op::Chain(a, b) => {
            let (a, b) = (a.index(n), b.index(n));
            if a == b {
                return Ok(());
            }
            let tail = real.remove(b);
            let tail_segs = model.packets.remove(b);
            let a = if a > b { a - 1 } else { a };
            expect(
                tally,
                real[a].chain(tail).map_err(|(e, _)| e),
                Ok(()),
                "chain",
            )?;
            model.packets[a].extend(tail_segs);
        }
        Op::Clone(p) => {
            let p = p.index(n);
            if full {
                return Ok(());
            }
            let want = if model.packets[p].len() as u32 > model.available() {
                Err(ErrorKind::NoEnt)
            } else {
                Ok(())
            };
            if let Some(c) = expect(tally, real[p].clone_in(pool), want, "clone")? {
                real.push(c);
                let segs: Packet = model.packets[p]
                    .clone()
                    .into_iter()
                    .map(|s| Seg {
                        header: model.new_id(),
                        indirect: true,
                        ..s
                    })
                    .collect();
                model.packets.push(segs);
            }
        }
        Op::Copy(p, offset, len) => {
            let p = p.index(n);
            if full {
                return Ok(());
            }
            let flat = model.flat(p);
            let offset = offset.index(flat.len() + 3);
            let len = len.map_or(u32::MAX as usize, |l| l.index(flat.len() + 3));
            let want = if offset >= flat.len() {
                Err(ErrorKind::Inval)
            } else if buffers_for(len.min(flat.len() - offset)) > model.available() {
                Err(ErrorKind::NoEnt)
            } else {
                Ok(())
            };
            let got = real[p].copy_in(pool, offset as u32, len as u32);
            if let Some(c) = expect(tally, got, want, "copy")? {
                real.push(c);
                let end = offset + len.min(flat.len() - offset);
                let segs = model.fresh_segments(&flat[offset..end]);
                model.packets.push(segs);
            }
        }
        Op::Linearize(p) => {
            let p = p.index(n);
            let segs = &model.packets[p];
            let rest: usize = segs[1..].iter().map(|s| s.bytes.len()).sum();
            let what = if segs.len() == 1 {
                "linearize (one segment)"
            } else {
                "linearize"
            };
            let want = if segs.len() == 1 {
                Ok(())
            } else if !model.seg_writable(&segs[0]) {
                Err(ErrorKind::Busy)
            } else if rest > segs[0].tailroom() {
                Err(ErrorKind::NoSpc)
            } else {
                Ok(())
            };
            if expect(tally, real[p].linearize(), want, what)?.is_some() {
                let flat = model.flat(p);
                let segs = &mut model.packets[p];
                segs.truncate(1);
                segs[0].bytes = flat;
            }
        }
        Op::Read(p, offset, len) => {
            let p = p.index(n);
            let flat = model.flat(p);
            let (offset, len) = (offset.index(flat.len() + 3), len.index(flat.len() + 3));
            let want = if offset + len > flat.len() {
                Err(ErrorKind::Inval)
            } else {
                Ok(())
            };
            // Where the range lies: in one segment (read in place) or across several.
            let mut at = offset;
            let mut seg = 0;
            let segs = &model.packets[p];
            while seg + 1 < segs.len() && at >= segs[seg].bytes.len() {
                at -= segs[seg].bytes.len();
                seg += 1;
            }
            let in_place = at + len <= segs[seg].bytes.len();
            let slices: Vec<*const u8> = real[p].segments().map(<[u8]>::as_ptr).collect();
            // As long as the range: a chain can be longer than any fixed buffer.
            let mut buf = vec![0u8; len];
            let buf_at = buf.as_ptr();
            let got = real[p].read(offset as u32, len, &mut buf);
            if let Some(got) = expect(tally, got, want, "read")? {
                prop_assert_eq!(got, &flat[offset..offset + len]);
                let expected_at = if in_place {
                    slices[seg].wrapping_add(at)
                } else {
                    buf_at
                };
                prop_assert_eq!(got.as_ptr(), expected_at, "read in place: {}", in_place);
            }
        }
        Op::Write(p, offset, bytes) => {
            let p = p.index(n);
            let len = model.flat(p).len();
            let offset = offset.index(len + 3);
            let want = if !model.writable(p) {
                Err(ErrorKind::Busy)
            } else if offset + bytes.len() > len {
                Err(ErrorKind::Inval)
            } else {
                Ok(())
            };
            if expect(tally, real[p].write(offset as u32, bytes), want, "write")?.is_some() {
                let mut at = 0;
                for seg in &mut model.packets[p] {
                    for (i, b) in seg.bytes.iter_mut().enumerate() {
                        if (offset..offset + bytes.len()).contains(&(at + i)) {
                            *b = bytes[at + i - offset];
                        }
                    }
                    at += seg.bytes.len();
                }
            }
        }
        Op::Free(p) => {
            let p = p.index(n);
            drop(real.remove(p));
            model.packets.remove(p);
        }
    }
    Ok(())
}

#[test]
fn packet_operations_follow_the_model() {
    let eal = common::no_huge_eal("model");
    let pool = PktmbufPool::builder("model", POOL_SIZE)
        .data_room(ROOM)
        .create(&eal)
        .unwrap();
    let config = Config {
        cases: 384,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = Tally::default();
    runner
        .run(&prop::collection::vec(op(), 1..60), |ops| {
            let mut real = Vec::new();
            let mut model = Model::default();
            for (i, op) in ops.iter().enumerate() {
                step(&pool, &mut real, &mut model, op, &tally)
                    .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
                check_against_model(&pool, &real, &model)
                    .map_err(|e| TestCaseError::fail(format!("after step {i} {op:?}: {e}")))?;
            }
            drop(real);
            prop_assert_eq!(pool.avail_count(), POOL_SIZE);
            Ok(())
        })
        .unwrap();
    let tally = tally.into_inner();
    for ((what, outcome), times) in &tally {
        eprintln!("{what:>24} {outcome:<11} {times}");
    }
    let ok = "Ok(())".to_owned();
    let err = |kind: ErrorKind| format!("{:?}", Err::<(), _>(kind));
    let (busy, inval, nospc, noent) = (
        err(ErrorKind::Busy),
        err(ErrorKind::Inval),
        err(ErrorKind::NoSpc),
        err(ErrorKind::NoEnt),
    );
    let reached: [(&str, Vec<&String>); 11] = [
        ("alloc", vec![&ok, &noent]),
        ("append", vec![&ok, &busy, &nospc]),
        ("prepend", vec![&ok, &busy, &nospc]),
        ("adj", vec![&ok, &inval]),
        ("trim", vec![&ok, &inval]),
        ("chain", vec![&ok]),
        ("clone", vec![&ok, &noent]),
        ("copy", vec![&ok, &inval, &noent]),
        ("linearize", vec![&ok, &busy, &nospc]),
        ("read", vec![&ok, &inval]),
        ("write", vec![&ok, &busy, &inval]),
    ];
    for (what, outcomes) in reached {
        for outcome in outcomes {
            let key = (what, outcome.clone());
            assert!(tally.contains_key(&key), "no {what} ended {outcome}");
        }
    }
    common::assert_pool_whole(&pool);
    pool.free().unwrap();
}
