//! Conformance of pools whose buffers' data is pinned in the caller's memory (DPDK 22.11's
//! `rte_pktmbuf_pool_create_extbuf`), with the memory taken from memzones: the creation
//! rules, where each buffer's data lies and its device address, the packet operations of
//! `conformance.rs` again on such buffers, and the rule that a pinned buffer is never
//! detached from its memory and goes home once, after its memory's last clone.

mod common;

use core::ptr::null_mut;
use std::collections::HashSet;

use common::packet_ops::{self, packet_of, segment_headers};
use common::{assert_pool_whole, no_huge_eal, shape};
use dpmem_eal::{Eal, ErrorKind, Iova, Memzone, MemzoneFlags, Socket};
use dpmem_mbuf::attach::{attach, detach};
use dpmem_mbuf::{
    data, ExtMem, ExternalBuffer, MbufError, OlFlags, PktmbufPool, HEADER_SIZE, HEADROOM,
    POOL_F_PINNED_EXT_BUF,
};

/// Memzones lent to pinned pools; freed by [`Pieces::free`] once those pools are gone.
struct Pieces<'e> {
    eal: &'e Eal,
    zones: Vec<Memzone>,
}

impl<'e> Pieces<'e> {
    fn reserve(eal: &'e Eal, tag: &str, lens: &[usize]) -> Pieces<'e> {
        let zones = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                eal.memzones()
                    .reserve(
                        &format!("{tag}-{i}"),
                        len,
                        Socket::Any,
                        MemzoneFlags::empty(),
                    )
                    .unwrap()
            })
            .collect();
        Pieces { eal, zones }
    }

    fn ext(&self, elt_size: u16) -> Vec<ExtMem> {
        self.zones
            .iter()
            .map(|z| ExtMem::from_memzone(z, elt_size))
            .collect()
    }

    /// Gives the memzones back.
    ///
    /// # Safety
    /// Every pool made on them is freed.
    unsafe fn free(self) {
        for zone in &self.zones {
            // SAFETY: the caller's contract: no pool uses the memory any more.
            unsafe { self.eal.memzones().free(zone) }.unwrap();
        }
    }
}

const ELT: u16 = 640;
const ROOM: u16 = 512;

/// A pinned pool of `n` buffers of [`ROOM`] bytes in pieces of [`ELT`] bytes, with a private
/// area of 8 bytes.
fn pinned_pool<'e>(eal: &'e Eal, name: &str, n: u32, ext: &[ExtMem]) -> PktmbufPool<'e> {
    // SAFETY: the pieces are memzones, valid and at the same address in every process, used
    // by nothing else, freed only after the pool.
    unsafe {
        PktmbufPool::builder(name, n)
            .priv_size(8)
            .data_room(ROOM)
            .create_pinned(eal, ext)
    }
    .unwrap()
}

#[test]
fn pinned_pool_creation_rules() {
    let eal = no_huge_eal("pin-create");
    let pieces = Pieces::reserve(&eal, "pin-create", &[4 * ELT as usize]);
    let good = pieces.ext(ELT)[0];
    let zones = eal.memzones().count();
    let create = |builder: dpmem_mbuf::PktmbufPoolBuilder<'_>, ext: &[ExtMem]| {
        // SAFETY: as in `pinned_pool`; a refused pool uses nothing.
        unsafe { builder.create_pinned(&eal, ext) }
    };
    let bad_pieces = [
        ExtMem {
            addr: null_mut(),
            ..good
        },
        ExtMem { len: 0, ..good },
        ExtMem {
            elt_size: 0,
            ..good
        },
    ];
    let mut refused: Vec<MbufError> = bad_pieces
        .iter()
        .map(|&bad| create(PktmbufPool::builder("pin", 2).data_room(64), &[good, bad]).unwrap_err())
        .collect();
    refused.push(create(PktmbufPool::builder("pin", 2).data_room(64), &[]).unwrap_err());
    refused.push(
        create(
            PktmbufPool::builder("pin", 2).data_room(64).priv_size(12),
            &[good],
        )
        .unwrap_err(),
    );
    refused.push(create(PktmbufPool::builder("pin", 2).data_room(ELT + 1), &[good]).unwrap_err());
    for e in &refused {
        assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    }
    let e = create(PktmbufPool::builder("pin", 5).data_room(ELT), &[good]).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NoMem,
        "four buffers' worth, five wanted: {e}"
    );
    assert_eq!(eal.memzones().count(), zones, "nothing left behind");
    assert_eq!(
        PktmbufPool::lookup(&eal, "pin").unwrap_err().kind(),
        ErrorKind::NoEnt
    );

    let pool = create(PktmbufPool::builder("pin", 4).data_room(ELT), &[good]).unwrap();
    assert!(pool.is_pinned());
    assert_eq!(pool.flags(), POOL_F_PINNED_EXT_BUF);
    assert_eq!(
        (pool.data_room(), pool.priv_size(), pool.size()),
        (ELT, 0, 4)
    );
    let e = create(PktmbufPool::builder("pin", 1).data_room(8), &[good]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exist);
    assert_pool_whole(&pool);
    pool.free().unwrap();
    // SAFETY: the only pool on them is freed.
    unsafe { pieces.free() };
}

#[test]
fn each_buffer_is_its_own_piece_of_the_callers_memory() {
    let eal = no_huge_eal("pin-layout");
    let elt = ELT as usize;
    // Three buffers and some slack, a piece too short for one (memzones are a whole number
    // of cache lines, so its length is cut here), and thirteen buffers.
    let pieces = Pieces::reserve(&eal, "pin-layout", &[3 * elt + 100, elt, 13 * elt]);
    let mut ext = pieces.ext(ELT);
    ext[1].len = elt - 40;
    ext[2].iova = None;
    let pool = pinned_pool(&eal, "layout", 16, &ext);
    assert_eq!((pool.data_room(), pool.priv_size()), (ROOM, 8));

    let mut all = vec![null_mut(); 16];
    pool.alloc_bulk_raw(&mut all).unwrap();
    let mut slots = HashSet::new();
    let mut per_piece = [0; 3];
    for (i, &m) in all.iter().enumerate() {
        // SAFETY: ours.
        let h = unsafe { &*m };
        let addr = h.buf_addr() as usize;
        let (p, piece) = ext
            .iter()
            .enumerate()
            .find(|(_, e)| (e.addr as usize..e.addr as usize + e.len).contains(&addr))
            .expect("every buffer's data is in a piece");
        let off = addr - piece.addr as usize;
        assert_eq!(off % elt, 0, "buffers are cut at element boundaries");
        assert!(off + elt <= piece.len, "buffer {i} runs past its piece");
        assert!(slots.insert(addr), "two buffers share a piece");
        per_piece[p] += 1;
        assert_eq!(
            h.buf_iova(),
            piece.iova.and_then(|i| i.checked_add(off as u64))
        );
        assert_eq!(
            data::iova_at(h, 2),
            piece
                .iova
                .map(|i| Iova::new(i.get() + (off + HEADROOM as usize + 2) as u64).unwrap())
        );
        assert_eq!(h.buf_len(), ROOM, "a pinned buffer is a data room long");
        assert_eq!(h.data_off(), HEADROOM.min(ROOM));
        assert_eq!(h.ol_flags(), OlFlags::EXTERNAL);
        assert!(h.has_extbuf() && !h.is_indirect());
        assert_eq!(h.priv_size(), 8);
        assert_eq!(h.priv_area(), m.cast::<u8>().wrapping_add(HEADER_SIZE));
        // Each buffer writes its whole room; no other buffer's data may change.
        data::prepend(h, h.data_off()).unwrap();
        let tail = data::tailroom(h);
        data::append(h, tail).unwrap();
        // SAFETY: the buffer's whole room, ours.
        unsafe { core::ptr::write_bytes(h.buf_addr(), i as u8, ROOM as usize) };
    }
    assert_eq!(per_piece, [3, 0, 13]);
    for (i, &m) in all.iter().enumerate() {
        // SAFETY: ours.
        let h = unsafe { &*m };
        assert_eq!(shape(h).bytes(), vec![i as u8; ROOM as usize]);
    }
    // SAFETY: ours, one segment each.
    unsafe { dpmem_mbuf::free::free_bulk(&all) };
    assert_pool_whole(&pool);
    pool.free().unwrap();
    // SAFETY: the only pool on them is freed.
    unsafe { pieces.free() };
}

/// A pinned pool of 127 buffers, a plain one with a private area (for copies), and the
/// memory under the first.
fn pinned_and_plain<'e>(eal: &'e Eal, tag: &str) -> (Pieces<'e>, PktmbufPool<'e>, PktmbufPool<'e>) {
    let pieces = Pieces::reserve(eal, tag, &[64 * ELT as usize, 63 * ELT as usize]);
    let pinned = pinned_pool(eal, &format!("{tag}-pinned"), 127, &pieces.ext(ELT));
    let plain = PktmbufPool::builder(&format!("{tag}-plain"), 255)
        .priv_size(16)
        .data_room(HEADROOM + 300)
        .create(eal)
        .unwrap();
    (pieces, pinned, plain)
}

#[test]
fn pinned_buffers_take_the_packet_operations_as_plain_ones() {
    let eal = no_huge_eal("pin-ops");
    let (pieces, pinned, plain) = pinned_and_plain(&eal, "ops");
    packet_ops::alloc_resets_and_raw_alloc_does_not(&pinned);
    packet_ops::alloc_bulk_is_all_or_nothing(&pinned);
    packet_ops::data_operations(&pinned);
    packet_ops::chain_read_write_linearize(&pinned);
    packet_ops::copies(&pinned, &plain);
    packet_ops::copies(&plain, &pinned);
    packet_ops::copies(&pinned, &pinned);
    packet_ops::clones(&pinned, &plain);
    packet_ops::frees(&pinned, &plain);
    packet_ops::frees(&plain, &pinned);
    pinned.free().unwrap();
    plain.free().unwrap();
    // SAFETY: the pinned pool is freed.
    unsafe { pieces.free() };
}

#[test]
fn a_pinned_buffer_is_never_detached_and_goes_home_once() {
    let eal = no_huge_eal("pin-once");
    let (pieces, pinned, plain) = pinned_and_plain(&eal, "once");
    // Every order of freeing a pinned packet, its clone and the clone's clone.
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let p = packet_of(&pinned, &[b"pinned data"]);
        let data_at = p.data().as_ptr();
        assert!(p.is_writable());
        let c1 = p.clone_in(&plain).unwrap();
        let c2 = c1.clone_in(&plain).unwrap();
        for c in [&c1, &c2] {
            assert_eq!(c.data().as_ptr(), data_at);
            assert!(c.header().has_extbuf() && !c.header().is_indirect());
        }
        assert!(!p.is_writable() && !c1.is_writable());
        let mut packets = [Some(p), Some(c1), Some(c2)];
        for (step, &i) in order.iter().enumerate() {
            assert_eq!(pinned.in_use_count(), 1, "order {order:?} step {step}");
            packets[i] = None;
        }
        assert_eq!(pinned.in_use_count(), 0, "order {order:?}");
        assert_eq!(plain.in_use_count(), 0);
        assert_pool_whole(&pinned);
    }

    // The clone gone, the pinned buffer is writable again and still pinned.
    let mut p = packet_of(&pinned, &[b"abc"]);
    let c = p.clone_in(&plain).unwrap();
    assert_eq!(p.data_mut().unwrap_err().kind(), ErrorKind::Busy);
    drop(c);
    p.data_mut().unwrap()[0] = b'A';
    assert_eq!(p.to_vec(), b"Abc");

    // Detaching a pinned buffer leaves it as it is; it cannot be attached to other data.
    let before = shape(p.header());
    // SAFETY: ours, one reference; the pools are open.
    unsafe { detach(p.as_raw()) };
    assert_eq!(shape(p.header()), before);
    assert!(p.header().has_extbuf());
    let other = plain.alloc().unwrap();
    // SAFETY: `p` is ours; we hold `other`.
    let e = unsafe { attach(p.as_raw(), other.as_raw()) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(shape(p.header()), before);

    // Buffers cannot be attached in a pinned pool: clones and external buffers are refused
    // there, with nothing taken.
    let free_before = pinned.avail_count();
    let e = other.clone_in(&pinned).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    let ext = ExternalBuffer::from_owner(vec![7u8; 64]);
    let e = ext.attach(&pinned, 0, 10).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval, "{e}");
    assert_eq!(ext.refs(), 1);
    assert_eq!(pinned.avail_count(), free_before);

    // A copy into a pinned pool is pinned data: a clone of it shares the pinned memory.
    let src = packet_of(&plain, &[b"copied ", b"into pinned"]);
    let copy = src.copy_in(&pinned, 0, u32::MAX).unwrap();
    for seg in segment_headers(copy.header()) {
        assert_eq!(seg.ol_flags() & OlFlags::EXTERNAL, OlFlags::EXTERNAL);
    }
    let clone = copy.clone_in(&plain).unwrap();
    assert_eq!(clone.to_vec(), b"copied into pinned");
    assert_eq!(clone.data().as_ptr(), copy.data().as_ptr());
    drop(copy);
    assert_eq!(clone.to_vec(), b"copied into pinned");
    drop((clone, src, other, p, ext));
    assert_pool_whole(&pinned);
    assert_pool_whole(&plain);
    pinned.free().unwrap();
    plain.free().unwrap();
    // SAFETY: the pinned pool is freed.
    unsafe { pieces.free() };
}
