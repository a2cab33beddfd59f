//! Conformance checks that hold for any packet buffer pool, plain or pinned: DPDK 22.11's
//! documented behaviour of allocation, data operations, chains, reads and writes, copies,
//! clones and frees. `conformance.rs` runs them on plain pools, `pinned.rs` on pinned ones
//! (and on a mix of both). Each check leaves its pools whole.

use core::ptr::{null_mut, NonNull};

use dpmem_eal::ErrorKind;
use dpmem_mbuf::{
    data, free, Burst, Mbuf, MbufError, MbufHeader, OlFlags, PktmbufPool, HEADROOM, PORT_INVALID,
};

use super::{assert_pool_whole, shape};

/// The headroom of a fresh buffer of `pool`: 128 bytes, or the whole room when smaller.
pub fn fresh_headroom(pool: &PktmbufPool<'_>) -> u16 {
    HEADROOM.min(pool.data_room())
}

/// The tailroom of a fresh buffer of `pool`.
pub fn fresh_tailroom(pool: &PktmbufPool<'_>) -> u16 {
    pool.data_room() - fresh_headroom(pool)
}

/// The offload flags of a fresh buffer: a pinned pool's buffers are external for good.
pub fn fresh_flags(pool: &PktmbufPool<'_>) -> OlFlags {
    if pool.is_pinned() {
        OlFlags::EXTERNAL
    } else {
        OlFlags::empty()
    }
}

/// A packet of one segment per slice, chained in order.
pub fn packet_of<'p>(pool: &'p PktmbufPool<'_>, segments: &[&[u8]]) -> Mbuf<'p> {
    let mut packet = pool.alloc().unwrap();
    packet.extend_from_slice(segments[0]).unwrap();
    for bytes in &segments[1..] {
        let mut seg = pool.alloc().unwrap();
        seg.extend_from_slice(bytes).unwrap();
        packet.chain(seg).map_err(|(e, _)| e).unwrap();
    }
    packet
}

/// The headers of a packet's segments, in order.
pub fn segment_headers(m: &MbufHeader) -> Vec<&MbufHeader> {
    let mut out = vec![m];
    // SAFETY: a live packet's `next` pointers lead to its live segments, alive as long as
    // the packet the caller borrows.
    while let Some(next) = unsafe { out[out.len() - 1].next().as_ref() } {
        out.push(next);
    }
    out
}

/// Asserts `h` is as a fresh allocation leaves a buffer (`rte_pktmbuf_reset`): one segment,
/// no next, the data at the default headroom, lengths zero, flags cleared but `EXTERNAL`,
/// port invalid, type, VLAN and transmit offload fields zero, one reference.
pub fn assert_reset(h: &MbufHeader, pool: &PktmbufPool<'_>) {
    assert_eq!(h.nb_segs(), 1);
    assert!(h.next().is_null());
    assert_eq!(h.data_off(), fresh_headroom(pool));
    assert_eq!(h.data_len(), 0);
    assert_eq!(h.pkt_len(), 0);
    assert_eq!(h.ol_flags(), fresh_flags(pool));
    assert_eq!(h.port(), PORT_INVALID);
    assert_eq!(h.packet_type(), 0);
    assert_eq!(h.vlan_tci(), 0);
    assert_eq!(h.tx_offload(), 0);
    assert_eq!(h.refcnt(), 1);
    assert_eq!(h.buf_len(), pool.data_room());
    assert_eq!(h.priv_size(), pool.priv_size());
}

/// Sets every field a reset clears (and moves the data) on a buffer of one segment.
fn dirty(h: &MbufHeader) {
    h.set_port(7);
    h.set_packet_type(0x11);
    h.set_vlan_tci(5);
    h.set_tx_offload(0xabc);
    h.insert_ol_flags(OlFlags::RX_VLAN | OlFlags::RX_RSS_HASH);
    if data::tailroom(h) > 0 {
        data::append(h, 1).unwrap();
        data::adj(h, 1).unwrap();
    }
}

/// Allocation resets a buffer; raw allocation takes it as the pool keeps it, with only what
/// DPDK guarantees (one reference, one segment, no next, its room); `reset` and the bulk
/// allocation reset as the single one does.
pub fn alloc_resets_and_raw_alloc_does_not(pool: &PktmbufPool<'_>) {
    let n = pool.size() as usize;
    let mut all = vec![null_mut(); n];
    pool.alloc_bulk_raw(&mut all).unwrap();
    for &m in &all {
        // SAFETY: just allocated, ours.
        let h = unsafe { &*m };
        assert_reset(h, pool);
        dirty(h);
    }
    // SAFETY: every buffer is ours, one segment each; the pool is open.
    unsafe { free::free_bulk(&all) };
    assert_eq!(pool.avail_count(), pool.size());

    for slot in all.iter_mut() {
        let m = pool.alloc_raw().unwrap();
        // SAFETY: just allocated, ours.
        let h = unsafe { m.as_ref() };
        assert_eq!((h.refcnt(), h.nb_segs()), (1, 1));
        assert!(h.next().is_null());
        assert_eq!(h.buf_len(), pool.data_room());
        assert_eq!(h.priv_size(), pool.priv_size());
        assert_eq!(h.port(), 7, "a raw allocation does not reset the port");
        if pool.is_pinned() {
            // Freeing a pinned buffer clears its flags but EXTERNAL, as DPDK's does.
            assert_eq!(h.ol_flags(), OlFlags::EXTERNAL);
        } else {
            assert_eq!(h.ol_flags(), OlFlags::RX_VLAN | OlFlags::RX_RSS_HASH);
        }
        *slot = m.as_ptr();
    }
    let e = pool.alloc_raw().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert!(matches!(e, MbufError::Exhausted { wanted: 1, .. }), "{e:?}");
    for (i, &m) in all.iter().enumerate() {
        let m = NonNull::new(m).unwrap();
        if i % 3 == 0 {
            // SAFETY: a raw buffer is ready for its pool (one reference, alone, no next).
            unsafe { free::raw_free(m) };
        } else if i % 3 == 1 {
            // SAFETY: ours, one reference.
            unsafe { free::free_seg(m) };
        } else {
            // SAFETY: ours, one reference.
            unsafe { dpmem_mbuf::reset(m) };
            // SAFETY: as above.
            assert_reset(unsafe { m.as_ref() }, pool);
            // SAFETY: ours, one segment.
            unsafe { free::free(m) };
        }
    }
    assert_eq!(pool.avail_count(), pool.size());

    for _ in 0..n {
        let m = pool.alloc_raw_reset().unwrap();
        // SAFETY: just allocated, ours.
        let h = unsafe { m.as_ref() };
        assert_reset(h, pool);
        dirty(h);
        // SAFETY: ours, one segment.
        unsafe { free::free(m) };
    }
    let packet = pool.alloc().unwrap();
    assert_reset(packet.header(), pool);
    assert!(packet.is_empty());
    drop(packet);
    assert_pool_whole(pool);
}

/// A bulk allocation takes every buffer asked for or none (`ENOENT`, the pool unchanged).
pub fn alloc_bulk_is_all_or_nothing(pool: &PktmbufPool<'_>) {
    let n = pool.size() as usize;
    let mut too_many = vec![null_mut(); n + 1];
    let e = pool.alloc_bulk_raw(&mut too_many).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert!(matches!(e, MbufError::Exhausted { wanted, .. } if wanted == n + 1));
    assert!(too_many.iter().all(|m| m.is_null()));
    assert_eq!(pool.avail_count(), pool.size());

    let mut most = vec![null_mut(); n - 2];
    pool.alloc_bulk_raw(&mut most).unwrap();
    let mut three = [null_mut(); 3];
    assert_eq!(
        pool.alloc_bulk_raw(&mut three).unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    assert!(three.iter().all(|m| m.is_null()));
    assert_eq!(pool.avail_count(), 2);
    assert_eq!(
        pool.alloc_array::<3>().unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    let mut held = Vec::new();
    assert_eq!(
        pool.alloc_into(&mut held, 3).unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    assert!(held.is_empty());
    let mut burst = Burst::<4>::new();
    assert_eq!(
        pool.alloc_burst(&mut burst, 3).unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    assert!(burst.is_empty());
    assert_eq!(pool.avail_count(), 2);
    pool.alloc_burst(&mut burst, 2).unwrap();
    for m in &burst {
        assert_reset(m.header(), pool);
    }
    burst.clear();
    assert_eq!(pool.avail_count(), 2);
    let two = pool.alloc_array::<2>().unwrap();
    for m in &two {
        assert_reset(m.header(), pool);
    }
    assert_eq!(pool.avail_count(), 0);
    drop(two);
    pool.alloc_into(&mut held, 2).unwrap();
    assert_eq!(held.len(), 2);
    drop(held);
    // SAFETY: ours, one segment each.
    unsafe { free::free_bulk(&most) };
    assert_pool_whole(pool);
}

/// Append, prepend, adj and trim do what DPDK's do, and a refused one leaves the packet as it
/// was; data pointers, head and tail rooms and device addresses at an offset follow the
/// header.
pub fn data_operations(pool: &PktmbufPool<'_>) {
    let (head, tail) = (fresh_headroom(pool), fresh_tailroom(pool));
    assert!(
        head >= 8 && tail >= 32,
        "the check needs some room at both ends"
    );
    let mut p = pool.alloc().unwrap();

    let before = shape(p.header());
    let e = p.append(tail + 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    assert!(
        matches!(e, MbufError::NoTailroom { room, .. } if room == tail),
        "{e:?}"
    );
    assert_eq!(shape(p.header()), before);

    let start = data::data_at(p.header(), 0);
    let new = p.append(10).unwrap();
    assert_eq!(new.as_ptr(), start.cast_const());
    new.copy_from_slice(b"0123456789");
    let h = p.header();
    assert_eq!((h.data_len(), h.pkt_len()), (10, 10));
    assert_eq!((data::headroom(h), data::tailroom(h)), (head, tail - 10));

    let before = shape(p.header());
    let e = p.prepend(head + 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    assert!(
        matches!(e, MbufError::NoHeadroom { room, .. } if room == head),
        "{e:?}"
    );
    assert_eq!(shape(p.header()), before);

    let front = p.prepend(4).unwrap();
    front.copy_from_slice(b"abcd");
    let front = front.as_ptr();
    assert_eq!(front, data::data_at(p.header(), 0).cast_const());
    assert_eq!(p.to_vec(), b"abcd0123456789");
    assert_eq!(data::headroom(p.header()), head - 4);

    let before = shape(p.header());
    let e = p.adj(15).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert!(matches!(
        e,
        MbufError::SegmentTooShort {
            wanted: 15,
            len: 14
        }
    ));
    assert_eq!(shape(p.header()), before);
    let e = p.trim(15).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert_eq!(shape(p.header()), before);

    let h = p.header();
    let at = data::adj(h, 2).unwrap();
    assert_eq!(at, data::data_at(h, 0));
    assert_eq!(at.cast_const(), front.wrapping_add(2));
    data::trim(h, 3).unwrap();
    assert_eq!(p.to_vec(), b"cd0123456");
    assert_eq!((p.header().data_len(), p.pkt_len()), (9, 9));

    // Offsets into the data and the device.
    let h = p.header();
    for off in [0usize, 1, 8] {
        let expected = h.buf_addr().wrapping_add(h.data_off() as usize + off);
        assert_eq!(data::data_at(h, off), expected);
        let iova = h
            .buf_iova()
            .map(|i| i.get() + h.data_off() as u64 + off as u64);
        assert_eq!(data::iova_at(h, off).map(|i| i.get()), iova);
    }
    assert_eq!(p.iova(), data::iova_at(h, 0));
    assert_eq!(data::tailroom(h), h.buf_len() - h.data_off() - h.data_len());
    assert_eq!(p.tailroom_of_last(), data::tailroom(h));
    assert_eq!(p.headroom(), h.data_off());

    // The whole room at either end, and no byte more.
    let room = p.tailroom_of_last();
    p.append(room).unwrap().fill(b'z');
    assert_eq!(p.tailroom_of_last(), 0);
    assert_eq!(p.append(1).unwrap_err().kind(), ErrorKind::NoSpc);
    let room = p.headroom();
    p.prepend(room).unwrap().fill(b'a');
    assert_eq!(p.headroom(), 0);
    assert_eq!(p.prepend(1).unwrap_err().kind(), ErrorKind::NoSpc);
    assert_eq!(p.pkt_len(), pool.data_room() as u32);
    assert_eq!(p.check(), Ok(()));
    let all = p.pkt_len() as u16;
    p.adj(all).unwrap();
    assert!(p.is_empty());
    assert_eq!(p.trim(1).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(p.adj(1).unwrap_err().kind(), ErrorKind::Inval);
    drop(p);

    // Two segments: adj acts on the first alone, trim on the last, append on the last,
    // prepend on the first.
    let mut p = packet_of(pool, &[b"head", b"tail!"]);
    let before = shape(p.header());
    assert_eq!(p.adj(5).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(p.trim(6).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(shape(p.header()), before);
    p.append(1).unwrap()[0] = b'?';
    p.prepend(1).unwrap()[0] = b'>';
    p.adj(2).unwrap();
    p.trim(3).unwrap();
    assert_eq!(p.to_vec(), b"eadtai");
    let segs: Vec<&[u8]> = p.segments().collect();
    assert_eq!(segs, [&b"ead"[..], &b"tai"[..]]);
    assert_eq!((p.pkt_len(), p.nb_segs()), (6, 2));
    assert_eq!(p.check(), Ok(()));
    drop(p);
    assert_pool_whole(pool);
}

/// Chains add segment counts and lengths and leave the tail's packet length its own data
/// length; reads point into the data when the range is in one segment and gather it into
/// the caller's buffer otherwise; writes cross segments; linearize needs the room.
pub fn chain_read_write_linearize(pool: &PktmbufPool<'_>) {
    let mut a = packet_of(pool, &[b"first-"]);
    let mut b = packet_of(pool, &[b"second-"]);
    let c = packet_of(pool, &[b"third"]);
    let (b_raw, c_raw) = (b.as_raw(), c.as_raw());
    b.chain(c).map_err(|(e, _)| e).unwrap();
    assert_eq!((b.nb_segs(), b.pkt_len()), (2, 12));
    // SAFETY: the segment lives in `b`.
    assert_eq!(unsafe { c_raw.as_ref() }.pkt_len(), 5);
    a.chain(b).map_err(|(e, _)| e).unwrap();
    assert_eq!((a.nb_segs(), a.pkt_len()), (3, 18));
    // SAFETY: the segment lives in `a`.
    assert_eq!(unsafe { b_raw.as_ref() }.pkt_len(), 7);
    assert_eq!(a.to_vec(), b"first-second-third");
    let segs: Vec<&[u8]> = a.segments().collect();
    assert_eq!(segs, [&b"first-"[..], b"second-", b"third"]);
    assert_eq!(a.check(), Ok(()));

    let hs = segment_headers(a.header());
    let mut buf = [0u8; 32];
    let got = a.read(0, 6, &mut buf).unwrap();
    assert_eq!(got, b"first-");
    assert_eq!(got.as_ptr(), data::data_at(hs[0], 0).cast_const());
    let got = a.read(7, 3, &mut buf).unwrap();
    assert_eq!(got, b"eco");
    assert_eq!(
        got.as_ptr(),
        data::data_at(hs[1], 1).cast_const(),
        "a range inside the second segment is read in place"
    );
    let mut tiny = [0u8; 1];
    assert_eq!(a.read(13, 5, &mut tiny).unwrap(), b"third");
    let got = a.read(4, 6, &mut buf).unwrap();
    assert_eq!(got, b"t-seco");
    let got = a.read(4, 6, &mut buf).unwrap();
    assert_eq!(got.as_ptr(), buf.as_ptr());
    assert_eq!(a.read(0, 18, &mut buf).unwrap(), b"first-second-third");
    assert_eq!(a.read(18, 0, &mut buf).unwrap(), b"");
    let e = a.read(17, 2, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert!(matches!(
        e,
        MbufError::OutOfPacket {
            offset: 17,
            len: 2,
            pkt_len: 18
        }
    ));
    assert_eq!(
        a.read(u32::MAX, 2, &mut buf).unwrap_err().kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        a.read(1, usize::MAX, &mut buf).unwrap_err().kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        a.read(u32::MAX, usize::MAX, &mut buf).unwrap_err().kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        a.read(2, 10, &mut tiny).unwrap_err().kind(),
        ErrorKind::Inval
    );
    let mut out = [0u8; 7];
    a.copy_to_slice(5, &mut out).unwrap();
    assert_eq!(&out, b"-second");
    assert_eq!(
        a.copy_to_slice(12, &mut out).unwrap_err().kind(),
        ErrorKind::Inval
    );

    a.write(3, b"ST-SECOND-T").unwrap();
    assert_eq!(a.to_vec(), b"firST-SECOND-Third");
    let before = shape(a.header());
    assert_eq!(a.write(15, b"four").unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(shape(a.header()), before);
    a.write(18, b"").unwrap();

    // Linearize: refused while the first segment's tailroom is short, the packet unchanged.
    let tail = fresh_tailroom(pool) as usize;
    let full = vec![b'f'; tail];
    let mut q = packet_of(pool, &[&full[..], &b"rest"[..]]);
    let before = shape(q.header());
    let e = q.linearize().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    assert!(
        matches!(e, MbufError::NoTailroom { wanted: 4, room: 0 }),
        "{e:?}"
    );
    assert_eq!(shape(q.header()), before);
    drop(q);

    let out_before = pool.in_use_count();
    a.linearize().unwrap();
    assert_eq!(
        pool.in_use_count(),
        out_before - 2,
        "the tail segments went home"
    );
    assert_eq!((a.nb_segs(), a.pkt_len()), (1, 18));
    assert_eq!(a.data(), b"firST-SECOND-Third");
    assert!(a.header().next().is_null());
    assert_eq!(a.check(), Ok(()));
    a.linearize().unwrap();
    assert_eq!(a.data(), b"firST-SECOND-Third");
    drop(a);
    assert_pool_whole(pool);
}

/// Fills the private area of every buffer of `pool` with `byte`.
fn fill_private_areas(pool: &PktmbufPool<'_>, byte: u8) {
    let mut all = vec![null_mut(); pool.size() as usize];
    pool.alloc_bulk_raw(&mut all).unwrap();
    for &m in &all {
        // SAFETY: ours.
        let h = unsafe { &*m };
        // SAFETY: the private area is `priv_size` bytes after the header, ours to write.
        unsafe { core::ptr::write_bytes(h.priv_area(), byte, h.priv_size() as usize) };
    }
    // SAFETY: ours, one segment each.
    unsafe { free::free_bulk(&all) };
}

fn private_area(h: &MbufHeader) -> &[u8] {
    // SAFETY: the private area is `priv_size` bytes after the header, live with it.
    unsafe { core::slice::from_raw_parts(h.priv_area(), h.priv_size() as usize) }
}

/// Copies take `len` bytes at `offset` (fewer when the packet ends first) into new buffers of
/// the copy pool, with the source's header fields and flags (never `INDIRECT`, and
/// `EXTERNAL` only as the copy pool's buffers have it), not its private area; an offset at
/// or past the end is `EINVAL`; a pool running out is `ENOENT` with nothing taken.
pub fn copies(pool: &PktmbufPool<'_>, copy_pool: &PktmbufPool<'_>) {
    assert!(copy_pool.priv_size() > 0, "the check needs a private area");
    fill_private_areas(copy_pool, 0x5a);
    let src = packet_of(pool, &[b"0123456789", b"abcdefghij"]);
    let h = src.header();
    h.set_port(3);
    h.set_packet_type(0x0601);
    h.set_vlan_tci(42);
    h.set_tx_offload(0x1234_5678);
    h.set_rss_hash(0xfeed);
    h.insert_ol_flags(OlFlags::RX_VLAN | OlFlags::RX_RSS_HASH);
    let mut dyn_bytes = [0u8; dpmem_mbuf::DYNFIELD_LEN];
    dyn_bytes[3] = 9;
    dyn_bytes[35] = 1;
    h.set_dynfield_bytes(dyn_bytes);
    // SAFETY: the source's own private area (possibly empty).
    unsafe { core::ptr::write_bytes(h.priv_area(), 0xab, h.priv_size() as usize) };
    let before = shape(h);

    let free_before = copy_pool.avail_count();
    for (offset, len) in [(20, 1), (20, 0), (21, 5), (u32::MAX, 1)] {
        let e = src.copy_in(copy_pool, offset, len).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Inval, "copy at {offset}");
        assert!(matches!(e, MbufError::OutOfPacket { .. }), "{e:?}");
    }
    assert_eq!(copy_pool.avail_count(), free_before);

    let whole = src.copy_in(copy_pool, 0, u32::MAX).unwrap();
    assert_eq!(whole.to_vec(), b"0123456789abcdefghij");
    assert_eq!(whole.pkt_len(), 20);
    let c = whole.header();
    assert_eq!(c.port(), 3);
    assert_eq!(c.packet_type(), 0x0601);
    assert_eq!(c.vlan_tci(), 42);
    assert_eq!(c.tx_offload(), 0x1234_5678);
    assert_eq!(c.rss_hash(), 0xfeed);
    assert_eq!(c.dynfield_bytes(), dyn_bytes);
    let expected = (h.ol_flags() - OlFlags::INDIRECT - OlFlags::EXTERNAL) | fresh_flags(copy_pool);
    assert_eq!(c.ol_flags(), expected);
    assert!(!c.is_indirect());
    for seg in segment_headers(c) {
        assert!(
            private_area(seg).iter().all(|&b| b == 0x5a),
            "private area copied"
        );
        assert_eq!(seg.data_off(), fresh_headroom(copy_pool));
    }
    assert_eq!(whole.check(), Ok(()));
    assert!(whole.is_writable());

    assert_eq!(
        src.copy_in(copy_pool, 5, 10).unwrap().to_vec(),
        b"56789abcde"
    );
    assert_eq!(src.copy_in(copy_pool, 15, 100).unwrap().to_vec(), b"fghij");
    assert_eq!(src.copy_in(copy_pool, 19, 0).unwrap().to_vec(), b"");
    let one = src.copy_in(copy_pool, 9, 2).unwrap();
    assert_eq!((one.to_vec(), one.nb_segs()), (b"9a".to_vec(), 1));

    // A copy of a clone is direct (its flags lose INDIRECT); clones are made in a plain pool.
    let clone_pool = if copy_pool.is_pinned() {
        pool
    } else {
        copy_pool
    };
    if !clone_pool.is_pinned() {
        let clone = src.clone_in(clone_pool).unwrap();
        let of_clone = clone.copy_in(copy_pool, 0, 20).unwrap();
        assert!(!of_clone.header().is_indirect());
        assert_eq!(of_clone.to_vec(), src.to_vec());
        assert_eq!(of_clone.header().ol_flags(), expected);
    }
    assert_eq!(shape(src.header()), before, "the source is as it was");
    drop((whole, one));

    // Longer than a buffer's room: chained over as many buffers as it takes.
    let room = fresh_tailroom(copy_pool) as usize;
    let long: Vec<u8> = (0..room * 2 + 3).map(|i| i as u8).collect();
    let long_src = pool.alloc_from_slice(&long).unwrap();
    let copy = long_src.copy_in(copy_pool, 1, u32::MAX).unwrap();
    assert_eq!(copy.to_vec(), &long[1..]);
    assert_eq!(copy.nb_segs() as usize, (long.len() - 1).div_ceil(room));
    assert_eq!(copy.check(), Ok(()));
    drop(copy);

    // Out of buffers half-way: nothing taken.
    let spare = copy_pool.avail_count() as usize;
    let mut held = vec![null_mut(); spare - 1];
    copy_pool.alloc_bulk_raw(&mut held).unwrap();
    let e = long_src.copy_in(copy_pool, 0, u32::MAX).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert_eq!(copy_pool.avail_count(), 1);
    // SAFETY: ours, one segment each.
    unsafe { free::free_bulk(&held) };
    drop((long_src, src));
    assert_pool_whole(pool);
    assert_pool_whole(copy_pool);
}

/// Clones share the data segment by segment (the direct buffer's count goes up, or the
/// external memory's); every buffer goes home once when its last reference goes, in either
/// order of freeing; a clone that runs out of buffers half-way frees what it made and leaves
/// the source as it was.
pub fn clones(pool: &PktmbufPool<'_>, clone_pool: &PktmbufPool<'_>) {
    let counts = || (pool.in_use_count(), clone_pool.in_use_count());
    let separate = !core::ptr::eq(pool, clone_pool);
    let src = packet_of(pool, &[b"one", b"two", b"three"]);
    let (src_out, clones_out) = counts();
    assert!(src.is_writable());

    let c = src.clone_in(clone_pool).unwrap();
    assert_eq!((c.nb_segs(), c.pkt_len()), (3, 11));
    assert_eq!(c.to_vec(), src.to_vec());
    let (src_segs, c_segs) = (segment_headers(src.header()), segment_headers(c.header()));
    for (s, k) in src_segs.iter().zip(&c_segs) {
        assert_eq!(
            data::data_at(s, 0),
            data::data_at(k, 0),
            "the data is shared"
        );
        if pool.is_pinned() {
            assert!(
                k.has_extbuf() && !k.is_indirect(),
                "a clone of external data is external"
            );
            assert_eq!(s.refcnt(), 1);
        } else {
            assert!(k.is_indirect());
            assert_eq!(s.refcnt(), 2);
        }
        assert_eq!(k.refcnt(), 1);
    }
    assert_eq!(c.check(), Ok(()));
    assert!(!src.is_writable() && !c.is_writable());
    assert_eq!(c.header().port(), src.header().port());

    let c2 = c.clone_in(clone_pool).unwrap();
    assert_eq!(c2.to_vec(), src.to_vec());
    if !pool.is_pinned() {
        assert!(src_segs.iter().all(|s| s.refcnt() == 3));
    }
    drop(c);
    if !pool.is_pinned() {
        assert!(src_segs.iter().all(|s| s.refcnt() == 2));
    }
    // The source goes first: its buffers stay out for the clone, and go home with it.
    drop(src);
    let c2_out = if separate { 0 } else { 3 };
    assert_eq!(
        counts().0,
        src_out + c2_out,
        "the source's buffers wait for the clone"
    );
    assert_eq!(c2.to_vec(), b"onetwothree");
    drop(c2);
    assert_eq!(
        counts(),
        (src_out - 3, clones_out - if separate { 0 } else { 3 })
    );

    // The clone goes first: the source is its only owner again.
    let src = packet_of(pool, &[b"one", b"two", b"three"]);
    let before = shape(src.header());
    let c = src.clone_in(clone_pool).unwrap();
    drop(c);
    assert!(src.is_writable());
    assert_eq!(shape(src.header()), before);

    // Running out half-way: what was made goes back, the source is as it was.
    let spare = clone_pool.avail_count() as usize;
    let mut held = vec![null_mut(); spare - 2];
    clone_pool.alloc_bulk_raw(&mut held).unwrap();
    let e = src.clone_in(clone_pool).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoEnt);
    assert_eq!(clone_pool.avail_count(), 2);
    assert_eq!(shape(src.header()), before);
    assert!(src.is_writable());
    // SAFETY: ours, one segment each.
    unsafe { free::free_bulk(&held) };
    drop(src);
    assert_pool_whole(pool);
    assert_pool_whole(clone_pool);
}

/// Frees: a chain goes home whole, a segment alone, and a bulk of packets of two pools
/// (chains mixing them, clones and their sources, gaps) each buffer to its own pool, once.
pub fn frees(a: &PktmbufPool<'_>, b: &PktmbufPool<'_>) {
    let base = (a.in_use_count(), b.in_use_count());
    let chain = packet_of(a, &[b"1", b"2", b"3"]);
    assert_eq!(a.in_use_count(), base.0 + 3);
    // SAFETY: the handle gave up the packet, which is ours.
    unsafe { free::free(chain.into_raw()) };
    assert_eq!(a.in_use_count(), base.0);

    let m = a.alloc_raw_reset().unwrap();
    // SAFETY: ours.
    unsafe { free::free_seg(m) };
    assert_eq!(a.in_use_count(), base.0);

    let mut bulk: Vec<*mut MbufHeader> = Vec::new();
    for i in 0..40 {
        let pool = if i % 3 == 0 { b } else { a };
        bulk.push(packet_of(pool, &[b"x"]).into_raw().as_ptr());
        if i % 7 == 0 {
            bulk.push(null_mut());
        }
    }
    let mut mixed = packet_of(a, &[b"a1"]);
    mixed
        .chain(packet_of(b, &[b"b1", b"b2"]))
        .map_err(|(e, _)| e)
        .unwrap();
    mixed
        .chain(packet_of(a, &[b"a2"]))
        .map_err(|(e, _)| e)
        .unwrap();
    // Clones are made in a plain pool (a pinned pool's buffers cannot be attached).
    let clone_pool = if b.is_pinned() { a } else { b };
    let mixed_clone = mixed.clone_in(clone_pool).unwrap();
    bulk.push(mixed.into_raw().as_ptr());
    bulk.push(mixed_clone.into_raw().as_ptr());
    let ones: Vec<&[u8]> = vec![&b"1"[..]; 70];
    let long = packet_of(a, &ones);
    bulk.push(long.into_raw().as_ptr());
    assert!(a.in_use_count() > base.0 && b.in_use_count() > base.1);
    // SAFETY: every packet was given up by its handle and is ours; the pools are open.
    unsafe { free::free_bulk(&bulk) };
    assert_eq!((a.in_use_count(), b.in_use_count()), base);
    assert_pool_whole(a);
    assert_pool_whole(b);
}
