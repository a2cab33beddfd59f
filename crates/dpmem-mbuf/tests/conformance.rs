//! Conformance of plain packet buffer pools with DPDK 22.11's documented `rte_mbuf` behaviour:
//! pool creation, allocation, frees, reference counts, chains and data operations, reads and
//! writes, copies, clones, attach and detach, external buffers, the sanity check, the owning
//! handle and the error kinds. Every test ends with its pools whole: the audit passes and
//! every buffer is back, once.
//!
//! Where dpmem differs from DPDK on purpose, the test checks dpmem's behaviour and says so:
//! a read never lets `offset + len` wrap around (DPDK's fast path does), and the owning
//! handle refuses to write data another buffer shares (DPDK leaves that to the caller).

mod common;

use core::ffi::c_void;
use core::ptr::{null_mut, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::packet_ops::{self, fresh_headroom, packet_of, segment_headers};
use common::{assert_pool_whole, no_huge_eal, shape};
use dpmem_eal::{Eal, ErrorKind};
use dpmem_mbuf::attach::{attach, attach_extbuf, detach};
use dpmem_mbuf::check::check_header;
use dpmem_mbuf::{
    data, free, Burst, ExtSharedInfo, Mbuf, MbufError, MbufHeader, OlFlags, PktmbufPool,
    DEFAULT_BUF_SIZE, HEADER_SIZE, HEADROOM, MAX_SEGS, POOL_F_PINNED_EXT_BUF,
};
use dpmem_mempool::{Mempool, MempoolConfig};

/// The device address an object's header says it has, plus `offset`.
fn obj_iova_plus(obj: *const MbufHeader, offset: u64) -> Option<u64> {
    // SAFETY: every packet buffer header is a mempool object.
    unsafe { Mempool::obj_iova(obj.cast()) }.map(|i| i.get() + offset)
}

#[test]
fn pool_creation_records_room_private_size_and_flags() {
    let eal = no_huge_eal("create");
    let defaults = PktmbufPool::builder("defaults", 63).create(&eal).unwrap();
    assert_eq!(defaults.data_room(), DEFAULT_BUF_SIZE);
    assert_eq!(DEFAULT_BUF_SIZE, 2048 + 128);
    assert_eq!((defaults.priv_size(), defaults.flags()), (0, 0));
    assert!(!defaults.is_pinned());
    assert_eq!((defaults.size(), defaults.name()), (63, "defaults"));

    let custom = PktmbufPool::builder("custom", 31)
        .priv_size(24)
        .data_room(100)
        .cache_size(8)
        .create(&eal)
        .unwrap();
    assert_eq!((custom.data_room(), custom.priv_size()), (100, 24));
    let mut all = vec![null_mut(); 31];
    custom.alloc_bulk_raw(&mut all).unwrap();
    for &m in &all {
        // SAFETY: ours.
        let h = unsafe { &*m };
        let own_room = m.cast::<u8>().wrapping_add(HEADER_SIZE + 24);
        assert_eq!(
            h.buf_addr(),
            own_room,
            "the room follows the header and private area"
        );
        assert_eq!(h.priv_area(), m.cast::<u8>().wrapping_add(HEADER_SIZE));
        assert_eq!((h.buf_len(), h.priv_size()), (100, 24));
        assert_eq!(h.data_off(), 100, "headroom is min(128, room)");
        assert_eq!(data::tailroom(h), 0);
        assert_eq!(
            h.buf_iova().map(|i| i.get()),
            obj_iova_plus(m, (HEADER_SIZE + 24) as u64)
        );
        assert!(
            h.buf_iova().is_some(),
            "memory of the EAL has device addresses"
        );
    }
    // SAFETY: ours.
    unsafe { free::free_bulk(&all) };

    let roomless = PktmbufPool::builder("roomless", 15)
        .data_room(0)
        .create(&eal)
        .unwrap();
    let m = roomless.alloc().unwrap();
    assert_eq!((m.headroom(), m.tailroom_of_last()), (0, 0));
    drop(m);
    let e = roomless.alloc_from_slice(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert!(roomless.alloc_from_slice(b"").unwrap().is_empty());

    for pool in [&defaults, &custom, &roomless] {
        assert_pool_whole(pool);
    }
    for pool in [defaults, custom, roomless] {
        pool.free().unwrap();
    }
}

#[test]
fn a_refused_pool_leaves_nothing_behind() {
    let eal = no_huge_eal("refused");
    let zones = eal.memzones().count();
    for priv_size in [1, 4, 12, 20] {
        let e = PktmbufPool::builder("refused", 63)
            .priv_size(priv_size)
            .create(&eal)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Inval, "private size {priv_size}");
        assert!(matches!(e, MbufError::InvalidArgument(_)));
        assert_eq!(eal.memzones().count(), zones, "nothing created");
        assert!(Mempool::lookup(&eal, "refused").is_err());
        let e = PktmbufPool::lookup(&eal, "refused").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoEnt);
    }
    let pool = PktmbufPool::builder("refused", 63)
        .priv_size(16)
        .create(&eal)
        .unwrap();
    let zones_with_pool = eal.memzones().count();
    let e = PktmbufPool::builder("refused", 7).create(&eal).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist);
    let long = "p".repeat(dpmem_mempool::MEMPOOL_NAME_MAX + 1);
    let e = PktmbufPool::builder(&long, 7).create(&eal).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NameTooLong);
    let e = PktmbufPool::builder("bad-handler", 7)
        .handler("no-such-handler")
        .create(&eal)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert_eq!(eal.memzones().count(), zones_with_pool, "nothing created");
    assert_pool_whole(&pool);
    pool.free().unwrap();
    assert_eq!(eal.memzones().count(), zones);
}

#[test]
fn lookup_opens_the_same_pool_and_refuses_other_mempools() {
    let eal = no_huge_eal("lookup");
    let pool = PktmbufPool::builder("shared", 31)
        .priv_size(8)
        .data_room(512)
        .create(&eal)
        .unwrap();
    let other = PktmbufPool::lookup(&eal, "shared").unwrap();
    assert_eq!((other.data_room(), other.priv_size()), (512, 8));
    let m = other.alloc().unwrap();
    assert_eq!(pool.in_use_count(), 1);
    drop(m);
    assert_eq!(pool.avail_count(), 31);

    let plain = MempoolConfig::new("plain", 15, 256)
        .private_data_size(64)
        .create(&eal)
        .unwrap();
    let e = PktmbufPool::lookup(&eal, "plain").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert!(matches!(e, MbufError::NotAPacketPool(_)));
    plain.free().unwrap();

    let e = pool.free().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "another handle is open");
    assert_pool_whole(&other);
    other.free().unwrap();
    assert_eq!(
        PktmbufPool::lookup(&eal, "shared").unwrap_err().kind(),
        ErrorKind::NoEnt
    );
}

/// The pools most checks run on: a plain one with the default room, another with a private
/// area (for copies), small enough to run out of.
fn two_pools<'e>(eal: &'e Eal, tag: &str) -> (PktmbufPool<'e>, PktmbufPool<'e>) {
    let a = PktmbufPool::builder(&format!("{tag}-a"), 255)
        .cache_size(16)
        .create(eal)
        .unwrap();
    let b = PktmbufPool::builder(&format!("{tag}-b"), 127)
        .priv_size(16)
        .data_room(HEADROOM + 256)
        .handler("stack")
        .create(eal)
        .unwrap();
    (a, b)
}

#[test]
fn alloc_resets_and_raw_alloc_takes_buffers_as_kept() {
    let eal = no_huge_eal("alloc");
    let (a, b) = two_pools(&eal, "alloc");
    packet_ops::alloc_resets_and_raw_alloc_does_not(&a);
    packet_ops::alloc_resets_and_raw_alloc_does_not(&b);
    packet_ops::alloc_bulk_is_all_or_nothing(&a);
    packet_ops::alloc_bulk_is_all_or_nothing(&b);
}

#[test]
fn data_operations_chains_reads_writes_and_linearize() {
    let eal = no_huge_eal("data");
    let (a, b) = two_pools(&eal, "data");
    for pool in [&a, &b] {
        packet_ops::data_operations(pool);
        packet_ops::chain_read_write_linearize(pool);
    }
}

#[test]
fn copies_clones_and_frees() {
    let eal = no_huge_eal("copies");
    let (a, b) = two_pools(&eal, "copies");
    packet_ops::copies(&a, &b);
    packet_ops::copies(&b, &b);
    packet_ops::clones(&a, &a);
    packet_ops::clones(&a, &b);
    packet_ops::clones(&b, &a);
    packet_ops::frees(&a, &b);
    packet_ops::frees(&b, &a);
}

/// A bulk free over more pools than it gathers groups for (four) at once: every buffer still
/// goes back to its own pool, once. Packets cycle through six pools, in runs of one, of
/// three, and of more than a group holds (64), with chains whose segments change pool, so
/// groups are taken over while others are half full and one fills up between changes.
#[test]
fn a_bulk_free_over_six_pools_sends_each_buffer_home() {
    let eal = no_huge_eal("sixpools");
    let pools: Vec<PktmbufPool<'_>> = (0..6)
        .map(|i| {
            PktmbufPool::builder(&format!("six-{i}"), 255)
                .cache_size(8)
                .create(&eal)
                .unwrap()
        })
        .collect();
    let mut bulk: Vec<*mut MbufHeader> = Vec::new();
    for i in 0..60 {
        bulk.push(packet_of(&pools[i % 6], &[b"x"]).into_raw().as_ptr());
    }
    for i in 0..30 {
        for _ in 0..3 {
            bulk.push(packet_of(&pools[(i * 5) % 6], &[b"y"]).into_raw().as_ptr());
        }
    }
    for pool in [&pools[2], &pools[4]] {
        for _ in 0..70 {
            bulk.push(packet_of(pool, &[b"z"]).into_raw().as_ptr());
        }
    }
    for i in 0..6 {
        let mut chain = packet_of(&pools[i], &[b"c1"]);
        for j in 1..6 {
            chain
                .chain(packet_of(&pools[(i + j) % 6], &[b"c2", b"c3"]))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        bulk.push(chain.into_raw().as_ptr());
    }
    assert!(pools.iter().all(|p| p.in_use_count() > 0));
    // SAFETY: every packet was given up by its handle and is ours; the pools are open.
    unsafe { free::free_bulk(&bulk) };
    for pool in &pools {
        assert_eq!(pool.in_use_count(), 0, "{}", pool.name());
        assert_pool_whole(pool);
    }
}

#[test]
fn refcounts_send_a_buffer_home_once_after_its_last_reference() {
    let eal = no_huge_eal("refcnt");
    let pool = PktmbufPool::builder("refcnt", 31).create(&eal).unwrap();
    for direct_first in [true, false] {
        let m = pool.alloc_raw_reset().unwrap();
        // SAFETY: ours.
        let h = unsafe { m.as_ref() };
        data::append(h, 4).unwrap();
        h.set_port(9);
        h.set_vlan_tci(3);
        let mi1 = pool.alloc_raw_reset().unwrap();
        let mi2 = pool.alloc_raw_reset().unwrap();
        // SAFETY: `mi1` is fresh and ours; we hold `m`.
        unsafe { attach(mi1, m) }.unwrap();
        assert_eq!(h.refcnt(), 2);
        // Attaching to an indirect buffer takes a reference on the direct one behind it.
        // SAFETY: `mi2` is fresh and ours; we hold `mi1`.
        unsafe { attach(mi2, mi1) }.unwrap();
        assert_eq!(h.refcnt(), 3);
        // SAFETY: live, ours.
        let i1 = unsafe { mi1.as_ref() };
        // SAFETY: live, ours.
        let i2 = unsafe { mi2.as_ref() };
        for i in [i1, i2] {
            assert!(i.is_indirect() && !i.is_direct());
            assert_eq!(i.refcnt(), 1);
            assert_eq!((i.buf_addr(), i.buf_len()), (h.buf_addr(), h.buf_len()));
            assert_eq!(i.buf_iova(), h.buf_iova());
            assert_eq!(
                (i.data_off(), i.data_len(), i.pkt_len()),
                (h.data_off(), 4, 4)
            );
            assert_eq!((i.port(), i.vlan_tci(), i.nb_segs()), (9, 3, 1));
            assert!(i.next().is_null());
        }
        assert_eq!(pool.in_use_count(), 3);
        let order = if direct_first {
            [m, mi1, mi2]
        } else {
            [mi2, mi1, m]
        };
        for (i, seg) in order.into_iter().enumerate() {
            // SAFETY: each is a packet we own a reference of; the pool is open.
            unsafe { free::free(seg) };
            let out = if direct_first {
                // The direct buffer waits for its last clone.
                [3, 2, 0][i]
            } else {
                [2, 1, 0][i]
            };
            assert_eq!(
                pool.in_use_count(),
                out,
                "after freeing {i} (direct first: {direct_first})"
            );
        }
    }
    assert_pool_whole(&pool);
}

#[test]
fn attach_refuses_buffers_not_direct_or_shared_and_changes_nothing() {
    let eal = no_huge_eal("attach");
    let pool = PktmbufPool::builder("attach", 31).create(&eal).unwrap();
    let m = pool.alloc_raw_reset().unwrap();
    let other = pool.alloc_raw_reset().unwrap();
    let mi = pool.alloc_raw_reset().unwrap();
    // SAFETY: ours.
    let h = unsafe { m.as_ref() };
    // SAFETY: ours.
    let o = unsafe { other.as_ref() };
    data::append(o, 3).unwrap();
    // SAFETY: `mi` is fresh; we hold `m`.
    unsafe { attach(mi, m) }.unwrap();

    // Not direct: already attached.
    // SAFETY: all ours and live.
    let before = (shape(unsafe { mi.as_ref() }), shape(o));
    // SAFETY: as above.
    let e = unsafe { attach(mi, other) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(matches!(e, MbufError::NotDirectOrShared(_)));
    // SAFETY: as above.
    assert_eq!((shape(unsafe { mi.as_ref() }), shape(o)), before);
    assert_eq!(h.refcnt(), 2);

    // Shared: `m` has two references now.
    let before = (shape(h), shape(o));
    // SAFETY: as above.
    let e = unsafe { attach(m, other) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(e.to_string().contains("2 references"), "{e}");
    assert_eq!((shape(h), shape(o)), before);

    // External: attached to external memory.
    let mut mem = vec![0u8; 256];
    let log = CallbackLog::default();
    let mut len = 256u16;
    // SAFETY: `mem` outlives every buffer attached to it (freed below, before it drops).
    let shinfo =
        unsafe { ExtSharedInfo::init_at_end(mem.as_mut_ptr(), &mut len, log_free, log.opaque()) }
            .unwrap();
    let ext = pool.alloc_raw_reset().unwrap();
    // SAFETY: `ext` is fresh; the memory and shared info are live; its count is ours.
    unsafe { attach_extbuf(ext, mem.as_mut_ptr(), None, len, shinfo) }.unwrap();
    // SAFETY: as above.
    let e = unsafe { attach(ext, other) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    // An external buffer cannot take other external memory either, nor can a shared one.
    // SAFETY: as above.
    let e = unsafe { attach_extbuf(ext, mem.as_mut_ptr(), None, len, shinfo) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    // SAFETY: as above.
    let e = unsafe { attach_extbuf(m, mem.as_mut_ptr(), None, len, shinfo) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    // SAFETY: the shared info lives in `mem`.
    let info = unsafe { shinfo.as_ref() };
    assert_eq!(info.refcnt(), 1, "refusals leave the count");
    assert_eq!(shape(h), before.0);

    for seg in [mi, m, other, ext] {
        // SAFETY: ours, one reference each.
        unsafe { free::free(seg) };
    }
    assert_eq!(log.calls(), 1);
    drop(mem);
    assert_pool_whole(&pool);
}

#[test]
fn detach_gives_a_buffer_its_own_room_back() {
    let eal = no_huge_eal("detach");
    let a = PktmbufPool::builder("detach-a", 31)
        .priv_size(16)
        .create(&eal)
        .unwrap();
    let b = PktmbufPool::builder("detach-b", 31)
        .data_room(HEADROOM + 64)
        .create(&eal)
        .unwrap();
    let m = a.alloc_raw_reset().unwrap();
    // SAFETY: ours.
    let h = unsafe { m.as_ref() };
    data::append(h, 10).unwrap();
    data::adj(h, 3).unwrap();
    h.insert_ol_flags(OlFlags::RX_VLAN);
    let mi = b.alloc_raw_reset().unwrap();
    // SAFETY: ours.
    let i = unsafe { mi.as_ref() };
    let (own_addr, own_iova) = (i.buf_addr(), i.buf_iova());
    // SAFETY: `mi` fresh; we hold `m`.
    unsafe { attach(mi, m) }.unwrap();
    assert_eq!(
        i.priv_size(),
        16,
        "an attached buffer takes the direct one's private size"
    );
    assert_eq!(i.ol_flags(), OlFlags::RX_VLAN | OlFlags::INDIRECT);
    assert_eq!(data::data_at(i, 0), data::data_at(h, 0));
    assert_eq!(h.refcnt(), 2);

    // SAFETY: `mi` has one reference, ours; the pools are open.
    unsafe { detach(mi) };
    assert!(i.is_direct());
    assert_eq!((i.buf_addr(), i.buf_iova()), (own_addr, own_iova));
    assert_eq!((i.buf_len(), i.priv_size()), (HEADROOM + 64, 0));
    assert_eq!((i.data_off(), i.data_len()), (HEADROOM, 0));
    assert_eq!(i.ol_flags(), OlFlags::empty());
    assert_eq!(h.refcnt(), 1);
    assert_eq!(a.in_use_count(), 1);

    // Detaching a direct buffer changes nothing.
    let before = shape(h);
    // SAFETY: ours.
    unsafe { detach(m) };
    assert_eq!(shape(h), before);
    for seg in [m, mi] {
        // SAFETY: ours.
        unsafe { free::free(seg) };
    }

    // The last reference on the direct buffer going through detach sends it home.
    let m = a.alloc_raw_reset().unwrap();
    let mi = b.alloc_raw_reset().unwrap();
    // SAFETY: as above.
    unsafe { attach(mi, m) }.unwrap();
    // SAFETY: ours.
    unsafe { free::free(m) };
    assert_eq!(a.in_use_count(), 1, "the direct buffer waits for its clone");
    // SAFETY: ours.
    unsafe { detach(mi) };
    assert_eq!(a.in_use_count(), 0, "detach released the last reference");
    // SAFETY: ours, direct now.
    unsafe { free::free(mi) };
    assert_pool_whole(&a);
    assert_pool_whole(&b);
}

/// What the free callback of an external buffer saw.
#[derive(Default)]
struct CallbackLog {
    calls: AtomicUsize,
    addr: AtomicUsize,
    opaque: AtomicUsize,
}

impl CallbackLog {
    fn opaque(&self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

unsafe extern "C" fn log_free(addr: *mut c_void, opaque: *mut c_void) {
    // SAFETY: the opaque value is a test's log, which outlives the buffers it watches.
    let log = unsafe { &*opaque.cast::<CallbackLog>() };
    log.addr.store(addr as usize, Ordering::SeqCst);
    log.opaque.store(opaque as usize, Ordering::SeqCst);
    log.calls.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn shared_info_at_the_end_shrinks_the_length_and_refuses_short_buffers() {
    let log = CallbackLog::default();
    let mut mem = vec![0u64; 16];
    let buf = mem.as_mut_ptr().cast::<u8>();
    let init = |buf: *mut u8, len: &mut u16| {
        // SAFETY: `buf` is inside `mem`, `*len` bytes of it (all of `mem` is 128 bytes).
        unsafe { ExtSharedInfo::init_at_end(buf, len, log_free, log.opaque()) }
    };
    for short in [0u16, 8, 24, 31] {
        let mut len = short;
        assert!(init(buf, &mut len).is_none(), "{short} bytes");
        assert_eq!(len, short, "a refusal leaves the length");
    }
    let mut len = 32;
    let at = init(buf, &mut len).unwrap();
    assert_eq!((at.as_ptr() as usize - buf as usize, len), (8, 8));
    // An unaligned start: the shared info goes to the last 8-byte boundary where it fits.
    let odd = buf.wrapping_add(1);
    let mut len = 40;
    let at = init(odd, &mut len).unwrap();
    assert_eq!(at.as_ptr() as usize % 8, 0);
    assert_eq!(at.as_ptr() as usize, buf as usize + 16);
    assert_eq!(len, 15);
    let mut len = 128;
    let at = init(buf, &mut len).unwrap();
    assert_eq!((len, at.as_ptr() as usize), (104, buf as usize + 104));
    // SAFETY: the shared info lives in `mem`.
    let info = unsafe { at.as_ref() };
    assert_eq!(info.refcnt(), 1);
    assert_eq!(info.refcnt_update(2), 3);
    assert_eq!(info.refcnt_update(-2), 1);
    info.refcnt_set(2);
    // SAFETY: we hold both references; the callback is this process's.
    unsafe { ExtSharedInfo::release(at, buf) };
    assert_eq!(log.calls(), 0);
    // SAFETY: as above.
    unsafe { ExtSharedInfo::release(at, buf) };
    assert_eq!(log.calls(), 1);
    assert_eq!(log.addr.load(Ordering::SeqCst), buf as usize);
    drop(mem);
}

#[test]
fn external_memory_goes_back_once_after_every_reference() {
    let eal = no_huge_eal("extbuf");
    let pool = PktmbufPool::builder("extbuf", 31).create(&eal).unwrap();
    for order in 0..3 {
        let log = CallbackLog::default();
        let mut mem = vec![0u8; 600];
        let buf = mem.as_mut_ptr();
        let mut len = 600u16;
        // SAFETY: `mem` outlives every buffer attached to it.
        let shinfo =
            unsafe { ExtSharedInfo::init_at_end(buf, &mut len, log_free, log.opaque()) }.unwrap();
        // SAFETY: the shared info lives in `mem`.
        let info = unsafe { shinfo.as_ref() };
        let iova = dpmem_eal::Iova::new(0x1000_0000);
        let m1 = pool.alloc_raw_reset().unwrap();
        // SAFETY: `m1` fresh; the memory and shared info are live; the count holds m1's
        // reference (the one init gave).
        unsafe { attach_extbuf(m1, buf, iova, len, shinfo) }.unwrap();
        assert_eq!(
            info.refcnt(),
            1,
            "attach_extbuf leaves the count to the caller"
        );
        // SAFETY: ours.
        let h1 = unsafe { m1.as_ref() };
        assert!(h1.has_extbuf() && !h1.is_indirect() && !h1.is_direct());
        assert_eq!((h1.buf_addr(), h1.buf_len()), (buf, len));
        assert_eq!((h1.data_off(), h1.data_len()), (0, 0));
        assert_eq!(data::iova_at(h1, 5).map(|i| i.get()), Some(0x1000_0005));
        let at = data::append(h1, 5).unwrap();
        assert_eq!(at, buf);
        // SAFETY: five bytes of `mem`, ours to write.
        unsafe { core::ptr::copy_nonoverlapping(b"hello".as_ptr(), at, 5) };

        assert_eq!(info.refcnt_update(1), 2);
        let m2 = pool.alloc_raw_reset().unwrap();
        // SAFETY: as above, with the reference just taken.
        unsafe { attach_extbuf(m2, buf, iova, len, shinfo) }.unwrap();
        // A clone of an external segment is external too, and holds a reference.
        // SAFETY: we hold `m1`.
        let c = unsafe { pool.clone_raw(m1) }.unwrap();
        assert_eq!(info.refcnt(), 3);
        // SAFETY: ours.
        let ch = unsafe { c.as_ref() };
        assert!(ch.has_extbuf() && !ch.is_indirect());
        assert_eq!(data::data_at(ch, 0), buf);
        assert_eq!(ch.pkt_len(), 5);

        let order = [[m1, m2, c], [c, m1, m2], [m2, c, m1]][order];
        for (i, m) in order.into_iter().enumerate() {
            assert_eq!(log.calls(), 0, "the callback waits for the last reference");
            // SAFETY: ours, one reference each; the callback is this process's.
            unsafe { free::free(m) };
            assert_eq!(
                pool.in_use_count(),
                2 - i as u32,
                "the buffer itself goes home"
            );
        }
        assert_eq!(log.calls(), 1);
        assert_eq!(log.addr.load(Ordering::SeqCst), buf as usize);
        assert_eq!(log.opaque.load(Ordering::SeqCst), log.opaque() as usize);
        drop(mem);
    }
    assert_pool_whole(&pool);
}

/// Writes `value` at byte `offset` of the header (DPDK's layout) and returns what was there.
///
/// # Safety
/// `m` is a live header the caller owns, and puts right before freeing it.
unsafe fn poke<T: Copy>(m: NonNull<MbufHeader>, offset: usize, value: T) -> T {
    let at = m.as_ptr().cast::<u8>().wrapping_add(offset).cast::<T>();
    // SAFETY: the caller's contract; the offset is inside the 128-byte header.
    let old = unsafe { at.read_unaligned() };
    // SAFETY: as above.
    unsafe { at.write_unaligned(value) };
    old
}

const OFF_BUF_ADDR: usize = 0;
const OFF_BUF_IOVA: usize = 8;
const OFF_DATA_OFF: usize = 16;
const OFF_REFCNT: usize = 18;
const OFF_NB_SEGS: usize = 20;
const OFF_PKT_LEN: usize = 36;
const OFF_DATA_LEN: usize = 40;
const OFF_POOL: usize = 56;
const OFF_NEXT: usize = 64;

#[test]
fn sanity_check_gives_dpdks_reasons_in_dpdks_order() {
    let eal = no_huge_eal("check");
    let pool = PktmbufPool::builder("check", 31)
        .data_room(HEADROOM + 64)
        .create(&eal)
        .unwrap();
    let check = |m: NonNull<MbufHeader>, header: bool| {
        // SAFETY: the header is live (its fields may be wrong, which is what is checked).
        unsafe { check_header(m.as_ptr(), header) }
    };
    // SAFETY: null is allowed.
    let null = unsafe { check_header(core::ptr::null(), true) };
    assert_eq!(null, Err("mbuf is NULL"));
    let packet = packet_of(&pool, &[b"0123456789"]);
    let m = packet.as_raw();
    assert_eq!(check(m, true), Ok(()));

    // Every fault at once; mending one at a time shows the next in DPDK's order.
    // SAFETY: the packet is ours; every field poked is put back below, before it is freed.
    let pool_ptr = unsafe { poke(m, OFF_POOL, 0usize) };
    // SAFETY: as above.
    let iova = unsafe { poke(m, OFF_BUF_IOVA, 0u64) };
    // SAFETY: as above.
    let addr = unsafe { poke(m, OFF_BUF_ADDR, 0usize) };
    // SAFETY: as above.
    unsafe { poke(m, OFF_REFCNT, 0u16) };
    // SAFETY: as above.
    unsafe { poke(m, OFF_DATA_LEN, 11u16) };
    assert_eq!(check(m, true), Err("bad mbuf pool"));
    // A pool pointer that is not a packet buffer pool's is as bad as none (dpmem checks the
    // pool's mark too; DPDK only null).
    // SAFETY: as above; the header itself is readable memory without the mark.
    unsafe { poke(m, OFF_POOL, m.as_ptr() as usize) };
    assert_eq!(check(m, false), Err("bad mbuf pool"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_POOL, pool_ptr) };
    assert_eq!(check(m, true), Err("bad IO addr"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_BUF_IOVA, iova) };
    assert_eq!(check(m, true), Err("bad virt addr"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_BUF_ADDR, addr) };
    assert_eq!(check(m, true), Err("bad ref cnt"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_REFCNT, u16::MAX) };
    assert_eq!(check(m, false), Err("bad ref cnt"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_REFCNT, 1u16) };
    assert_eq!(
        check(m, false),
        Ok(()),
        "a segment alone is not checked as a packet"
    );
    assert_eq!(check(m, true), Err("bad data_len"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_DATA_LEN, 10u16) };
    assert_eq!(check(m, true), Ok(()));

    // SAFETY: as above.
    let data_off = unsafe { poke(m, OFF_DATA_OFF, HEADROOM + 65) };
    assert_eq!(check(m, true), Err("data offset too big in mbuf segment"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_DATA_OFF, HEADROOM + 55) };
    assert_eq!(check(m, true), Err("data length too big in mbuf segment"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_DATA_OFF, data_off) };
    // SAFETY: as above.
    unsafe { poke(m, OFF_NB_SEGS, 2u16) };
    // SAFETY: as above.
    unsafe { poke(m, OFF_PKT_LEN, 12u32) };
    assert_eq!(check(m, true), Err("bad nb_segs"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_NB_SEGS, 1u16) };
    assert_eq!(check(m, true), Err("bad pkt_len"));
    // SAFETY: as above.
    unsafe { poke(m, OFF_PKT_LEN, 10u32) };
    assert_eq!(check(m, true), Ok(()));
    drop(packet);

    // Segment checks reach every segment; a loop of segments ends as a bad count.
    let packet = packet_of(&pool, &[b"abc", b"defg"]);
    let segs: Vec<NonNull<MbufHeader>> = segment_headers(packet.header())
        .into_iter()
        .map(NonNull::from)
        .collect();
    // SAFETY: as above.
    let data_off = unsafe { poke(segs[1], OFF_DATA_OFF, HEADROOM + 65) };
    assert_eq!(packet.check(), Err("data offset too big in mbuf segment"));
    // SAFETY: as above.
    unsafe { poke(segs[1], OFF_DATA_OFF, data_off) };
    // SAFETY: as above.
    unsafe { poke(segs[1], OFF_NEXT, segs[0].as_ptr() as usize) };
    assert_eq!(packet.check(), Err("bad nb_segs"));
    // SAFETY: as above.
    unsafe { poke(segs[1], OFF_NEXT, 0usize) };
    assert_eq!(packet.check(), Ok(()));
    drop(packet);
    assert_pool_whole(&pool);
}

#[test]
fn chain_is_refused_past_65535_segments_with_both_packets_unchanged() {
    let eal = no_huge_eal("segs");
    let n = MAX_SEGS as usize + 2;
    let pool = PktmbufPool::builder("segs", n as u32)
        .data_room(HEADROOM + 8)
        .create(&eal)
        .unwrap();
    let mut raw = vec![null_mut::<MbufHeader>(); n];
    pool.alloc_bulk_raw(&mut raw).unwrap();
    for &m in &raw {
        // SAFETY: ours.
        let at = data::append(unsafe { &*m }, 1).unwrap();
        // SAFETY: the byte just appended.
        unsafe { at.write(b'x') };
    }
    // Each new segment becomes the head of the packet, so chaining walks one segment.
    let mut head = raw[0];
    for &m in &raw[1..MAX_SEGS as usize - 1] {
        // SAFETY: ours.
        let new_head = unsafe { &*m };
        // SAFETY: ours.
        let tail = unsafe { &*head };
        // SAFETY: distinct packets, ours; the new head takes the tail.
        unsafe { data::chain(new_head, tail) }.unwrap();
        head = m;
    }
    let (t1, t2) = (raw[n - 3], raw[n - 2]);
    // SAFETY: ours.
    let h = unsafe { &*head };
    // SAFETY: ours.
    let t = unsafe { &*t1 };
    // SAFETY: ours.
    let t2 = unsafe { &*t2 };
    // SAFETY: distinct packets, ours.
    unsafe { data::chain(t, t2) }.unwrap();
    assert_eq!(
        (h.nb_segs() as u32, h.pkt_len()),
        (MAX_SEGS - 1, MAX_SEGS - 1)
    );
    let last = data::last_segment(h) as *const MbufHeader;
    // SAFETY: as above.
    let e = unsafe { data::chain(h, t) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overflow);
    assert!(matches!(
        e,
        MbufError::TooManySegments {
            segs: 65_536,
            max: 65_535
        }
    ));
    assert_eq!(
        (h.nb_segs() as u32, h.pkt_len()),
        (MAX_SEGS - 1, MAX_SEGS - 1)
    );
    assert!(core::ptr::eq(data::last_segment(h), last));
    assert!(data::last_segment(h).next().is_null());
    assert_eq!(shape(t).segments.len(), 2);
    assert_eq!((t.nb_segs(), t.pkt_len()), (2, 2));

    // One more segment fits exactly; the owning handle hands back a tail it cannot take.
    // SAFETY: ours.
    let one = unsafe { &*raw[n - 1] };
    // SAFETY: distinct packets, ours.
    unsafe { data::chain(h, one) }.unwrap();
    assert_eq!((h.nb_segs() as u32, h.pkt_len()), (MAX_SEGS, MAX_SEGS));
    // SAFETY: ours, open.
    let mut packet = unsafe { Mbuf::from_raw(NonNull::new(head).unwrap(), &pool) };
    assert_eq!(packet.check(), Ok(()));
    // SAFETY: ours, open.
    let tail = unsafe { Mbuf::from_raw(NonNull::new(t1).unwrap(), &pool) };
    let (e, tail) = packet.chain(tail).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overflow);
    assert_eq!(tail.to_vec(), b"xx");
    assert_eq!(packet.nb_segs() as u32, MAX_SEGS);
    drop((packet, tail));
    assert_pool_whole(&pool);
}

#[test]
fn the_handle_gives_segments_and_refuses_to_write_shared_data() {
    let eal = no_huge_eal("handle");
    let pool = PktmbufPool::builder("handle", 63).create(&eal).unwrap();
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut p = pool.alloc_from_slice(&bytes).unwrap();
    let tail = (DEFAULT_BUF_SIZE - HEADROOM) as usize;
    let lens: Vec<usize> = p.segments().map(<[u8]>::len).collect();
    assert_eq!(lens, [tail, 3000 - tail]);
    assert_eq!(p.data(), &bytes[..tail]);
    assert_eq!(p.to_vec(), bytes);
    p.data_mut().unwrap()[0] = 0xee;
    assert!(p.is_writable());

    let c = p.clone_in(&pool).unwrap();
    assert_eq!(
        c.data().as_ptr(),
        p.data().as_ptr(),
        "a clone shares the data"
    );
    for e in [
        p.data_mut().map(|_| ()).unwrap_err(),
        p.append(1).map(|_| ()).unwrap_err(),
        p.prepend(1).map(|_| ()).unwrap_err(),
        p.write(0, b"x").unwrap_err(),
        p.linearize().unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    }
    let mut c = c;
    assert_eq!(c.data_mut().unwrap_err().kind(), ErrorKind::Busy);
    assert_eq!(c.write(0, b"y").unwrap_err().kind(), ErrorKind::Busy);
    // Header-only changes are each packet's own.
    p.adj(10).unwrap();
    c.trim(5).unwrap();
    assert_eq!(p.to_vec(), &bytes[10..]);
    assert_eq!(c.pkt_len(), 2995);
    assert_eq!(c.to_vec()[0], 0xee);
    drop(c);
    assert!(p.is_writable());
    p.data_mut().unwrap()[0] = 1;
    assert_eq!(p.linearize().unwrap_err().kind(), ErrorKind::NoSpc);
    drop(p);
    assert_pool_whole(&pool);
}

#[test]
fn into_bytes_hands_the_data_over_without_a_copy() {
    // `Bytes` may outlive any scope, so only packets of pools open for good become `Bytes`:
    // this test's EAL and pool are leaked (nothing else is). A primary EAL that is never
    // dropped removes its runtime files when the test program exits.
    let eal: &'static Eal = Box::leak(Box::new(no_huge_eal("bytes")));
    let pool: &'static PktmbufPool<'static> = Box::leak(Box::new(
        PktmbufPool::builder("bytes", 15).create(eal).unwrap(),
    ));
    let mut p = pool.alloc().unwrap();
    p.extend_from_slice(b"zero-copy").unwrap();
    let at = p.data().as_ptr();
    let bytes = p.into_bytes().unwrap();
    assert_eq!((&bytes[..], bytes.as_ptr()), (&b"zero-copy"[..], at));
    let part = bytes.slice(5..);
    let again = part.clone();
    drop(bytes);
    assert_eq!(pool.in_use_count(), 1);
    let sent = std::thread::spawn(move || {
        assert_eq!(&part[..], b"copy");
        drop(part);
    });
    sent.join().unwrap();
    assert_eq!(pool.in_use_count(), 1, "one Bytes still holds it");
    drop(again);
    assert_eq!(pool.in_use_count(), 0);

    // Several segments are made one first.
    let long: Vec<u8> = (0..2100u32).map(|i| i as u8).collect();
    let mut p = pool.alloc_from_slice(&long[..1000]).unwrap();
    let mut rest = pool.alloc().unwrap();
    rest.extend_from_slice(&long[1000..2000]).unwrap();
    p.chain(rest).map_err(|(e, _)| e).unwrap();
    let bytes = p.into_bytes().unwrap();
    assert_eq!(&bytes[..], &long[..2000]);
    assert_eq!(pool.in_use_count(), 1);
    drop(bytes);

    // A packet that cannot be made one comes back as it was.
    let p = pool.alloc_from_slice(&long).unwrap();
    assert_eq!(p.nb_segs(), 2);
    let (e, p) = p.into_bytes().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    assert_eq!(p.to_vec(), long);
    let c = p.clone_in(pool).unwrap();
    let (e, p) = p.into_bytes().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    drop((p, c));
    assert_pool_whole(pool);
}

#[test]
fn error_kinds_are_dpdks_errno_kinds() {
    let eal = no_huge_eal("kinds");
    let pool = PktmbufPool::builder("kinds", 3)
        .data_room(HEADROOM + 16)
        .create(&eal)
        .unwrap();
    let mut p = pool.alloc().unwrap();
    let kinds: Vec<(MbufError, ErrorKind)> = vec![
        (
            PktmbufPool::builder("k2", 3)
                .priv_size(3)
                .create(&eal)
                .unwrap_err(),
            ErrorKind::Inval,
        ),
        (p.adj(1).unwrap_err(), ErrorKind::Inval),
        (p.copy_in(&pool, 0, 1).unwrap_err(), ErrorKind::Inval),
        (p.append(17).map(|_| ()).unwrap_err(), ErrorKind::NoSpc),
        (p.prepend(129).map(|_| ()).unwrap_err(), ErrorKind::NoSpc),
        (pool.alloc_array::<3>().unwrap_err(), ErrorKind::NoEnt),
        (
            PktmbufPool::lookup(&eal, "none").unwrap_err(),
            ErrorKind::NoEnt,
        ),
        (
            PktmbufPool::builder("kinds", 3).create(&eal).unwrap_err(),
            ErrorKind::Exist,
        ),
    ];
    for (e, kind) in &kinds {
        assert_eq!(e.kind(), *kind, "{e}");
        assert!(!e.to_string().is_empty());
    }
    let other = pool.alloc().unwrap();
    let clone = other.clone_in(&pool).unwrap();
    // SAFETY: the clone is ours (one reference); we hold `p`.
    let e = unsafe { attach(clone.as_raw(), p.as_raw()) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    drop((clone, other));
    p.extend_from_slice(b"x").unwrap();
    assert_eq!(fresh_headroom(&pool), HEADROOM);
    drop(p);
    assert_pool_whole(&pool);
}

#[test]
fn device_addresses_on_hugepages() {
    if !common::hugepages_usable(16) {
        return;
    }
    let prefix = format!("mbhuge{}_", std::process::id());
    let eal = Eal::init(["mbuf-test", "-m", "32", "-l", "0", "--file-prefix", &prefix]).unwrap();
    let pool = PktmbufPool::builder("huge", 255)
        .priv_size(8)
        .create(&eal)
        .unwrap();
    let mut all = vec![null_mut(); 255];
    pool.alloc_bulk_raw(&mut all).unwrap();
    for &m in &all {
        // SAFETY: ours.
        let h = unsafe { &*m };
        let expected = obj_iova_plus(m, (HEADER_SIZE + 8) as u64);
        assert!(expected.is_some());
        assert_eq!(h.buf_iova().map(|i| i.get()), expected);
        assert_eq!(
            data::iova_at(h, 3).map(|i| i.get()),
            expected.map(|i| i + HEADROOM as u64 + 3)
        );
    }
    // SAFETY: ours.
    unsafe { free::free_bulk(&all) };
    // A burst on hugepages: filled in place, each packet with its device address, freed in
    // one call.
    let mut burst = Burst::<32>::new();
    pool.alloc_burst(&mut burst, 32).unwrap();
    for packet in &burst {
        let m = packet.as_raw().as_ptr();
        assert_eq!(
            packet.header().buf_iova().map(|i| i.get()),
            obj_iova_plus(m, (HEADER_SIZE + 8) as u64)
        );
    }
    assert_eq!(pool.in_use_count(), 32);
    drop(burst); // the burst borrows the pool: it goes before the pool is freed
    assert_pool_whole(&pool);
    pool.free().unwrap();
    assert_eq!(POOL_F_PINNED_EXT_BUF, 1);
}
