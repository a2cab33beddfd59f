//! Conformance with DPDK 22.11's documented ring behaviour, mode by mode.

use dpmem_ring::{
    memory_size, Behavior, ConsumerMode, HeapRegion, ProducerMode, RawRing, Ring, RingError,
    RingFlags, RING_NAME_MAX,
};

/// Heads beside tails, the room left kept: the layout of dpmem's mempool rings.
const MEMPOOL_LAYOUT: RingFlags = RingFlags::HEAD_TAIL_TOGETHER.union(RingFlags::CACHED_OTHER_TAIL);

/// Every producer/consumer pairing of modes, in every layout (heads apart from tails or
/// beside them, the other side's tail cached or not): the layout changes where positions
/// live, never what an operation does.
fn all_flags() -> Vec<RingFlags> {
    let prod = [
        RingFlags::NONE,
        RingFlags::SP_ENQ,
        RingFlags::MP_RTS_ENQ,
        RingFlags::MP_HTS_ENQ,
    ];
    let cons = [
        RingFlags::NONE,
        RingFlags::SC_DEQ,
        RingFlags::MC_RTS_DEQ,
        RingFlags::MC_HTS_DEQ,
    ];
    let layouts = [
        RingFlags::NONE,
        RingFlags::CACHED_OTHER_TAIL,
        MEMPOOL_LAYOUT,
    ];
    prod.iter()
        .flat_map(|p| cons.iter().map(move |c| *p | *c))
        .flat_map(|modes| layouts.iter().map(move |l| modes | *l))
        .collect()
}

#[test]
fn fill_to_capacity_then_full_then_fifo_in_every_mode() {
    for flags in all_flags() {
        let ring = Ring::<u64>::new("fill", 16, flags).unwrap();
        assert_eq!((ring.size(), ring.capacity()), (16, 15));
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        for i in 0..15 {
            assert_eq!(p.enqueue(i), Ok(()), "{flags:?}");
        }
        assert!(ring.is_full());
        assert_eq!(p.enqueue(99), Err(99));
        assert_eq!(ring.count(), 15);
        for i in 0..15 {
            assert_eq!(c.dequeue(), Some(i));
        }
        assert_eq!(c.dequeue(), None);
        assert!(ring.is_empty());
    }
}

#[test]
fn bulk_is_all_or_nothing_and_burst_partial_at_the_edge() {
    for flags in all_flags() {
        let ring = Ring::<u32>::new("edge", 8, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        assert_eq!(p.enqueue_bulk(&[1, 2, 3, 4, 5]).count, 5);
        let m = p.enqueue_bulk(&[6, 7, 8]);
        assert_eq!((m.count, m.remaining), (0, 2), "{flags:?}");
        let m = p.enqueue_burst(&[6, 7, 8]);
        assert_eq!((m.count, m.remaining), (2, 0));
        let mut out = [0u32; 8];
        let m = c.dequeue_bulk(&mut out);
        assert_eq!((m.count, m.remaining), (0, 7));
        let m = c.dequeue_burst(&mut out);
        assert_eq!((m.count, m.remaining), (7, 0));
        assert_eq!(&out[..7], &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(c.dequeue_burst(&mut out).count, 0);
    }
}

#[test]
fn wraps_around_in_every_mode() {
    for flags in all_flags() {
        let ring = Ring::<[u64; 2]>::new("wrap", 8, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        let mut next = 0u64;
        let mut expect = 0u64;
        // Steps of 3 and 5 go around an 8-slot array many times at shifting offsets.
        for round in 0..100 {
            let k = if round % 2 == 0 { 3 } else { 5 };
            let items: Vec<[u64; 2]> = (0..k).map(|i| [next + i, !(next + i)]).collect();
            assert_eq!(p.enqueue_bulk(&items).count, k as u32, "{flags:?}");
            next += k;
            let mut out = vec![[0u64; 2]; k as usize];
            assert_eq!(c.dequeue_bulk(&mut out).count, k as u32);
            for v in out {
                assert_eq!(v, [expect, !expect]);
                expect += 1;
            }
        }
    }
}

/// Singles, bulks and bursts of elements of type `T` (built from an index by `make`) go
/// around a 16-slot ring at shifting offsets and come out whole and in order.
fn round_trip_across_the_wrap<T: Copy + PartialEq + core::fmt::Debug>(make: impl Fn(u64) -> T) {
    for flags in all_flags() {
        let ring = Ring::<T>::new("sizes", 16, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        let (mut next, mut expect) = (0u64, 0u64);
        for round in 0..60u64 {
            // 1 goes through the single-element calls; 3, 7 and 12 through bulk and burst,
            // so that runs start at every slot and wrap at every split.
            let k = [1, 3, 7, 12][round as usize % 4];
            let items: Vec<T> = (next..next + k).map(&make).collect();
            let mut out: Vec<T> = (0..k).map(|_| make(u64::MAX)).collect();
            match (k, round % 3) {
                (1, _) => {
                    assert_eq!(p.enqueue(items[0]), Ok(()), "{flags:?}");
                    out[0] = c.dequeue().expect("one element in");
                }
                (_, 0) => {
                    assert_eq!(p.enqueue_bulk(&items).count, k as u32, "{flags:?}");
                    assert_eq!(c.dequeue_bulk(&mut out).count, k as u32, "{flags:?}");
                }
                _ => {
                    assert_eq!(p.enqueue_burst(&items).count, k as u32, "{flags:?}");
                    assert_eq!(c.dequeue_burst(&mut out).count, k as u32, "{flags:?}");
                }
            }
            next += k;
            for v in out {
                assert_eq!(v, make(expect), "{flags:?}, round {round}");
                expect += 1;
            }
        }
        assert_eq!(c.dequeue(), None);
    }
}

#[test]
fn every_element_size_round_trips_across_the_wrap() {
    // 4, 8 and 16 bytes take the single-element fast path; 12, 20, 24, 36 and 72 bytes
    // the general copy, with its 64-byte blocks and 32/16/8/4-byte tails.
    round_trip_across_the_wrap(|i| i as u32);
    round_trip_across_the_wrap(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    round_trip_across_the_wrap(|i| [i, !i]);
    round_trip_across_the_wrap(|i| [i as u32, (i >> 7) as u32, !(i as u32)]);
    round_trip_across_the_wrap(|i| core::array::from_fn::<u32, 5, _>(|k| (i as u32) ^ k as u32));
    round_trip_across_the_wrap(|i| [i, i.rotate_left(17), !i]);
    round_trip_across_the_wrap(|i| core::array::from_fn::<u8, 36, _>(|k| (i as u8) ^ k as u8));
    round_trip_across_the_wrap(|i| core::array::from_fn::<u64, 9, _>(|k| i ^ (k as u64) << 40));
}

#[test]
fn exact_size_capacity() {
    let ring = Ring::<u64>::new("exact", 1000, RingFlags::EXACT_SZ).unwrap();
    assert_eq!((ring.size(), ring.capacity()), (1024, 1000));
    let mut p = ring.producer().unwrap();
    let items: Vec<u64> = (0..1000).collect();
    assert_eq!(p.enqueue_burst(&items).count, 1000);
    assert_eq!(p.enqueue(1), Err(1));
    // A power of two with EXACT_SZ still gets exactly that capacity.
    let ring = Ring::<u64>::new("exact2", 16, RingFlags::EXACT_SZ).unwrap();
    assert_eq!((ring.size(), ring.capacity()), (32, 16));
}

#[test]
fn counts_reset_and_dump() {
    let mut ring = Ring::<u64>::new("counts", 32, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
    {
        let mut p = ring.producer().unwrap();
        assert_eq!(p.enqueue_bulk(&[1; 10]).remaining, 21);
    }
    assert_eq!((ring.count(), ring.free_count()), (10, 21));
    let dump = ring.dump();
    assert!(
        dump.contains("ring <counts>") && dump.contains("used=10"),
        "{dump}"
    );
    ring.reset();
    assert!(ring.is_empty());
    assert_eq!(ring.free_count(), 31);
}

#[test]
fn peek_across_the_wrap_for_st_and_hts() {
    for flags in [
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        RingFlags::SP_ENQ | RingFlags::SC_DEQ | MEMPOOL_LAYOUT,
        RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
    ] {
        let ring = Ring::<u64>::new("peek", 8, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        // Move the positions to 6 so that 4 elements wrap.
        p.enqueue_bulk(&[0; 6]);
        c.dequeue_bulk(&mut [0; 6]);
        let r = p.enqueue_start(4, Behavior::Fixed).unwrap();
        assert_eq!((r.len(), r.remaining()), (4, 3));
        r.finish(&[10, 11, 12]); // one of the four given back
        assert_eq!(ring.count(), 3);
        // Dropping a reservation gives it all back.
        drop(p.enqueue_start(2, Behavior::Fixed).unwrap());
        assert_eq!(ring.count(), 3);
        let mut out = [0u64; 3];
        let peek = c.dequeue_start(&mut out, Behavior::Fixed).unwrap();
        assert_eq!(peek.len(), 3);
        peek.finish(1); // take one, leave two
        assert_eq!(out, [10, 11, 12]);
        assert_eq!(ring.count(), 2);
        let mut out = [0u64; 2];
        c.dequeue_start(&mut out, Behavior::Variable)
            .unwrap()
            .finish(2);
        assert_eq!(out, [11, 12]);
        assert!(ring.is_empty());
    }
}

/// The dump gives each side's head and tail, as `rte_ring_dump` does: while a reservation
/// is open, the producers' head is past their tail by the slots it holds, in both modes that
/// have reservations (single-thread and HTS).
#[test]
fn the_dump_shows_an_open_reservation_as_the_head_past_the_tail() {
    for flags in [
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
    ] {
        let ring = Ring::<u64>::new("dump", 16, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        p.enqueue_bulk(&[0; 6]);
        c.dequeue_bulk(&mut [0; 2]);
        let open = p.enqueue_start(3, Behavior::Fixed).unwrap();
        let dump = ring.dump();
        assert!(dump.contains(": head=9 tail=6 "), "{flags:?}: {dump}");
        assert!(dump.contains(": head=2 tail=2 "), "{flags:?}: {dump}");
        open.finish(&[1, 2, 3]);
        let dump = ring.dump();
        assert!(dump.contains(": head=9 tail=9 "), "{flags:?}: {dump}");
    }
}

/// On an HTS side a start that claims nothing holds nothing, so another handle may claim
/// next; giving back the empty reservation must leave that claim alone (finishing it would
/// end the other claim and let a third take the same slots).
#[test]
fn an_empty_hts_claim_given_back_leaves_another_handles_claim_open() {
    let ring =
        Ring::<u64>::new("htsempty", 8, RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ).unwrap();
    let (mut p1, mut p2) = (ring.producer().unwrap(), ring.producer().unwrap());
    let (mut c1, mut c2) = (ring.consumer().unwrap(), ring.consumer().unwrap());
    p1.enqueue_bulk(&[1, 2, 3, 4, 5]);
    let empty = p2.enqueue_start(3, Behavior::Fixed).unwrap();
    assert!(empty.is_empty(), "2 free slots, 3 asked for all or nothing");
    let zc = p1.enqueue_zc_start(2, Behavior::Fixed).unwrap();
    drop(empty);
    zc.fill(&[6, 7]);
    assert_eq!(ring.count(), 7);

    let mut none = [0u64; 8];
    let empty = c2.dequeue_start(&mut none, Behavior::Fixed).unwrap();
    assert!(empty.is_empty(), "7 elements, 8 asked for all or nothing");
    let zc = c1.dequeue_zc_start(3, Behavior::Fixed).unwrap();
    drop(empty);
    zc.finish(3);
    let mut rest = [0u64; 4];
    assert_eq!(c1.dequeue_burst(&mut rest).count, 4);
    assert_eq!(rest, [4, 5, 6, 7]);
    assert!(ring.is_empty());
}

#[test]
fn zero_copy_regions_across_the_wrap() {
    for flags in [
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        RingFlags::SP_ENQ | RingFlags::SC_DEQ | MEMPOOL_LAYOUT,
        RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
    ] {
        let ring = Ring::<u32>::new("zc", 8, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        p.enqueue_bulk(&[0; 5]);
        c.dequeue_bulk(&mut [0; 5]);
        let mut zc = p.enqueue_zc_start(6, Behavior::Fixed).unwrap();
        {
            let (a, b) = zc.regions();
            assert_eq!(
                (a.len(), b.len()),
                (3, 3),
                "positions 5..11 wrap after slot 7"
            );
        }
        zc.fill(&[1, 2, 3, 4, 5, 6]);
        let zc = c.dequeue_zc_start(6, Behavior::Fixed).unwrap();
        let (a, b) = zc.regions();
        assert_eq!((a, b), (&[1, 2, 3][..], &[4, 5, 6][..]));
        zc.finish(4);
        assert_eq!(ring.count(), 2);
        assert_eq!(c.dequeue(), Some(5));
    }
}

#[test]
fn peek_and_zero_copy_refused_on_mp_mc_and_rts() {
    for flags in [
        RingFlags::NONE,
        MEMPOOL_LAYOUT,
        RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ,
    ] {
        let ring = Ring::<u64>::new("nopeek", 8, flags).unwrap();
        let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
        assert!(matches!(
            p.enqueue_start(1, Behavior::Fixed),
            Err(RingError::ProducerModeUnsupported { .. })
        ));
        assert!(p.enqueue_zc_start(1, Behavior::Fixed).is_err());
        assert!(matches!(
            c.dequeue_start(&mut [0], Behavior::Fixed),
            Err(RingError::ConsumerModeUnsupported { .. })
        ));
        assert!(c.dequeue_zc_start(1, Behavior::Fixed).is_err());
    }
}

#[test]
fn single_thread_sides_have_one_handle() {
    let ring = Ring::<u64>::new("st", 8, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
    let p = ring.producer().unwrap();
    assert!(matches!(
        ring.producer(),
        Err(RingError::Busy {
            side: "producer",
            ..
        })
    ));
    drop(p);
    let _p = ring.producer().unwrap();
    let _c = ring.consumer().unwrap();
    assert!(ring.consumer().is_err());
    // Multi-thread sides hand out any number.
    let mp = Ring::<u64>::new("mt", 8, RingFlags::NONE).unwrap();
    let _a = mp.producer().unwrap();
    let _b = mp.producer().unwrap();
}

#[test]
fn rts_head_tail_distance() {
    let ring = Ring::<u64>::new("rts", 64, RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ).unwrap();
    assert_eq!(ring.prod_htd_max(), Ok(63 / 8));
    ring.set_prod_htd_max(3).unwrap();
    ring.set_cons_htd_max(0).unwrap();
    assert_eq!((ring.prod_htd_max(), ring.cons_htd_max()), (Ok(3), Ok(0)));
    let mut p = ring.producer().unwrap();
    let mut c = ring.consumer().unwrap();
    assert_eq!(p.enqueue_bulk(&[7; 10]).count, 10);
    assert_eq!(c.dequeue_bulk(&mut [0; 10]).count, 10);
    let plain = Ring::<u64>::new("mpmc", 64, RingFlags::NONE).unwrap();
    assert!(matches!(
        plain.set_prod_htd_max(1),
        Err(RingError::NotRts { .. })
    ));
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let err = |count, esize, flags| RawRing::new("bad", count, esize, flags).unwrap_err();
    assert!(matches!(
        err(0, 8, RingFlags::NONE),
        RingError::InvalidCount { .. }
    ));
    assert!(matches!(
        err(100, 8, RingFlags::NONE),
        RingError::InvalidCount { .. }
    ));
    assert!(matches!(
        err(1 << 31, 8, RingFlags::NONE),
        RingError::InvalidCount { .. }
    ));
    assert!(matches!(
        err(0x7fff_ffff, 8, RingFlags::EXACT_SZ),
        RingError::InvalidCount { .. }
    ));
    assert!(matches!(
        err(8, 6, RingFlags::NONE),
        RingError::InvalidElementSize { esize: 6 }
    ));
    assert!(matches!(
        err(8, 0, RingFlags::NONE),
        RingError::InvalidElementSize { esize: 0 }
    ));
    assert!(matches!(
        err(8, 8, RingFlags::SP_ENQ | RingFlags::MP_HTS_ENQ),
        RingError::InvalidFlags { .. }
    ));
    assert!(matches!(
        err(8, 8, RingFlags::MC_RTS_DEQ | RingFlags::MC_HTS_DEQ),
        RingError::InvalidFlags { .. }
    ));
    assert!(matches!(
        err(8, 8, RingFlags::from_bits_retain(0x100)),
        RingError::InvalidFlags { .. }
    ));
    let long = "x".repeat(RING_NAME_MAX + 1);
    let e = RawRing::new(&long, 8, 8, RingFlags::NONE).unwrap_err();
    assert!(matches!(
        e,
        RingError::NameTooLong {
            len: 29,
            max: 28,
            ..
        }
    ));
    assert!(e.to_string().contains("ENAMETOOLONG"));
    assert!(RawRing::new(&"y".repeat(RING_NAME_MAX), 8, 8, RingFlags::NONE).is_ok());
    assert!(matches!(
        RawRing::new("", 8, 8, RingFlags::NONE).unwrap_err(),
        RingError::InvalidName { .. }
    ));
    // Memory too small for the ring: nothing is written.
    let small = HeapRegion::zeroed(256).unwrap();
    assert!(matches!(
        RawRing::create_in(small, "small", 1024, 8, RingFlags::NONE).unwrap_err(),
        RingError::BadRegion { .. }
    ));
}

#[test]
fn raw_byte_api_with_odd_element_size_and_per_call_modes() {
    let ring = RawRing::new("raw12", 8, 12, RingFlags::NONE).unwrap();
    assert_eq!(ring.producer_mode(), ProducerMode::Mp);
    assert_eq!(ring.consumer_mode(), ConsumerMode::Mc);
    let src: Vec<u8> = (0..12 * 5).map(|b| b as u8).collect();
    // SAFETY: this thread is the only user of the ring.
    let (n, free) = unsafe { ring.enqueue_elems(&src, 5, Behavior::Fixed, Some(ProducerMode::Sp)) };
    assert_eq!((n, free), (5, 2));
    let mut dst = vec![0u8; 12 * 5];
    // SAFETY: as above.
    let (n, left) = unsafe { ring.dequeue_elems(&mut dst, 5, Behavior::Variable, None) };
    assert_eq!((n, left), (5, 0));
    assert_eq!(src, dst);
}

#[test]
fn attach_sees_the_same_ring_through_another_handle() {
    /// A borrowed view of another ring's block, as a second process's mapping would be.
    struct View(core::ptr::NonNull<u8>, usize);
    // SAFETY: the view is used only while the owning ring (and its block) lives.
    unsafe impl dpmem_ring::RingMemory for View {
        fn base(&self) -> core::ptr::NonNull<u8> {
            self.0
        }
        fn len(&self) -> usize {
            self.1
        }
    }
    let owner = Ring::<u64>::new("shared", 16, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
    owner.producer().unwrap().enqueue_bulk(&[5, 6, 7]);
    let view = View(
        dpmem_ring::RingMemory::base(owner.memory()),
        owner.memory_size(),
    );
    // SAFETY: the block was built for u64 elements.
    let other = unsafe { Ring::<u64, View>::attach(view) }.unwrap();
    assert_eq!(other.name(), "shared");
    assert_eq!(other.consumer().unwrap().dequeue(), Some(5));
    assert_eq!(owner.count(), 2);
    assert_eq!(
        memory_size(16, 8, RingFlags::NONE).unwrap(),
        owner.memory_size()
    );
    let junk = HeapRegion::zeroed(4096).unwrap();
    assert!(matches!(
        RawRing::attach(junk).unwrap_err(),
        RingError::NotARing { magic: 0 }
    ));
}

/// A header whose sizes or sides disagree with its own flags (memory another process
/// scribbled on) is refused by `attach`, not trusted to index slots with.
#[test]
fn attach_refuses_a_header_inconsistent_with_its_flags() {
    struct View(core::ptr::NonNull<u8>, usize);
    // SAFETY: the view is used only while the owning ring (and its block) lives.
    unsafe impl dpmem_ring::RingMemory for View {
        fn base(&self) -> core::ptr::NonNull<u8> {
            self.0
        }
        fn len(&self) -> usize {
            self.1
        }
    }
    let owner = Ring::<u64>::new("scribbled", 16, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
    let base = dpmem_ring::RingMemory::base(owner.memory());
    let view = || View(base, owner.memory_size());
    // The header's `flags`, `size` and `mask` words (RingMeta: magic, memory_size, a
    // 32-byte name, then flags, size, mask as u32s), checked before they are changed.
    let word = |offset: usize| base.as_ptr().wrapping_add(offset).cast::<u32>();
    let (flags_at, mask_at) = (48, 56);
    // SAFETY: inside the ring's header, 4-byte aligned; nothing else uses the ring now.
    let read = |offset: usize| unsafe { word(offset).read() };
    // SAFETY: as above.
    let write = |offset: usize, v: u32| unsafe { word(offset).write(v) };
    assert_eq!(
        read(flags_at),
        (RingFlags::SP_ENQ | RingFlags::SC_DEQ).bits()
    );
    assert_eq!(read(mask_at), 15);
    for (offset, scribble, said) in [
        (mask_at, 0xffff, "inconsistent sizes"),
        (flags_at, RingFlags::NONE.bits(), "producer side"),
        (
            flags_at,
            (RingFlags::SP_ENQ | RingFlags::SC_DEQ | RingFlags::CACHED_OTHER_TAIL).bits(),
            "producer side",
        ),
    ] {
        let kept = read(offset);
        write(offset, scribble);
        // SAFETY: the block was built for u64 elements.
        let err = unsafe { Ring::<u64, View>::attach(view()) }.unwrap_err();
        assert!(err.to_string().contains(said), "{said}: {err}");
        write(offset, kept);
    }
    // SAFETY: as above, now whole again.
    let again = unsafe { Ring::<u64, View>::attach(view()) }.unwrap();
    assert_eq!(again.name(), "scribbled");
}

/// DPDK's idiom for asking the room: an enqueue (or dequeue) of nothing reports the exact free
/// space (or count), also where the room a claim saw is kept, which may lag behind.
#[test]
fn a_transfer_of_nothing_reports_the_exact_room_whatever_the_layout() {
    for layout in [
        RingFlags::NONE,
        RingFlags::CACHED_OTHER_TAIL,
        MEMPOOL_LAYOUT,
    ] {
        let ring = Ring::<u64>::new("room0", 16, layout).unwrap();
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        assert_eq!(producer.enqueue_burst(&[1; 10]).count, 10);
        assert_eq!(consumer.dequeue_burst(&mut [0; 10]).count, 10);
        // The producer last saw 5 slots left; the consumer has emptied the ring since.
        assert_eq!(producer.enqueue_burst(&[]).remaining, 15, "{layout:?}");
        assert_eq!(producer.enqueue_burst(&[2; 3]).count, 3);
        assert_eq!(consumer.dequeue_burst(&mut []).remaining, 3, "{layout:?}");
    }
}

#[test]
fn the_layout_flags_are_kept_and_reported_and_bad_ones_refused() {
    for layout in [RingFlags::CACHED_OTHER_TAIL, MEMPOOL_LAYOUT] {
        let ring = Ring::<u64>::new("layout", 16, layout).unwrap();
        assert_eq!(ring.flags(), layout);
        assert_eq!(ring.producer_mode(), ProducerMode::Mp);
        assert_eq!(ring.consumer_mode(), ConsumerMode::Mc);
        // Same memory every way: the head's word exists in both blocks.
        assert_eq!(
            memory_size(16, 8, RingFlags::NONE).unwrap(),
            memory_size(16, 8, layout).unwrap()
        );
    }
    // Heads beside tails only pay with the room left kept; alone, the flag is refused.
    assert!(matches!(
        Ring::<u64>::new("layout2", 16, RingFlags::HEAD_TAIL_TOGETHER),
        Err(RingError::InvalidFlags { .. })
    ));
    // The bit after the last of dpmem's is no flag of DPDK's or dpmem's.
    assert!(matches!(
        Ring::<u64>::new(
            "layout3",
            16,
            RingFlags::from_bits_retain(RingFlags::CACHED_OTHER_TAIL.bits() << 1)
        ),
        Err(RingError::InvalidFlags { .. })
    ));
}

/// DPDK reports the room as of each claim. A side that trusts the other side's tail as
/// last seen reports at least that much, may report less — and still moves exactly what the
/// tail allows, because a record that shows too little is checked against the tail.
#[test]
fn a_cached_other_tail_never_takes_less_and_reports_a_lower_bound() {
    for modes in [RingFlags::NONE, RingFlags::SP_ENQ | RingFlags::SC_DEQ] {
        for layout in [RingFlags::CACHED_OTHER_TAIL, MEMPOOL_LAYOUT] {
            let flags = modes | layout;
            let ring = Ring::<u32>::new("cached", 8, flags).unwrap();
            let (mut p, mut c) = (ring.producer().unwrap(), ring.consumer().unwrap());
            // Producers record the consumers' tail (0) on their first claim.
            assert_eq!(p.enqueue_bulk(&[1, 2, 3, 4, 5]).count, 5);
            let mut out = [0u32; 5];
            assert_eq!(c.dequeue_bulk(&mut out).count, 5, "{flags:?}");
            assert_eq!(out, [1, 2, 3, 4, 5]);
            // 7 free; the record (0) shows 2, enough for one: a lower bound is reported.
            let one = p.enqueue_bulk(&[6]);
            assert_eq!(one.count, 1);
            assert!(one.remaining <= 6, "{flags:?}: {one:?}");
            assert_eq!(one.remaining, 1, "{flags:?}: the record was trusted");
            // Six more do not fit the record: the tail is read, and all six go in.
            let six = p.enqueue_bulk(&[7, 8, 9, 10, 11, 12]);
            assert_eq!((six.count, six.remaining), (6, 0), "{flags:?}");
            // A burst is not cut short by a record either.
            let mut burst = [0u32; 8];
            assert_eq!(c.dequeue_burst(&mut burst).count, 7, "{flags:?}");
            assert_eq!(&burst[..7], &[6, 7, 8, 9, 10, 11, 12]);
            assert_eq!(p.enqueue_burst(&[0; 9]).count, 7, "{flags:?}");
            assert!(ring.is_full());
        }
    }
}

/// Runs `f` on its own thread and fails the test if it does not finish within 10 s: the
/// bugs the leak tests guard against show up as a thread spinning for ever.
fn within_10s<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(value) => value,
        // The closure panicked: report its panic, not a time-out.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{what}: ended without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after 10 s")
        }
    }
}

/// A reservation leaked with `mem::forget` (safe code may) leaves its claim open. On an
/// SP/SC side the next claim gives it back: nothing unwritten is published, nothing waits
/// for ever, and leaked peeks leave their elements in the ring. (On an HTS side, where other
/// threads' claims may be open, a leaked claim keeps the side busy and later operations
/// wait, as after a leaked lock guard.)
#[test]
fn leaked_reservations_are_given_back_before_the_next_operation() {
    for flags in [
        RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        RingFlags::SP_ENQ | RingFlags::SC_DEQ | MEMPOOL_LAYOUT,
    ] {
        let got = within_10s(&format!("{flags:?}"), move || {
            let ring = Ring::<u64>::new("leak", 8, flags).unwrap();
            let mut p = ring.producer().unwrap();
            std::mem::forget(p.enqueue_zc_start(2, Behavior::Fixed).unwrap());
            p.enqueue(7).unwrap();
            assert_eq!(ring.count(), 1);
            std::mem::forget(p.enqueue_start(3, Behavior::Fixed).unwrap());
            assert_eq!(p.enqueue_bulk(&[8, 9]).count, 2);
            assert_eq!(ring.count(), 3);
            std::mem::forget(p.enqueue_start(1, Behavior::Fixed).unwrap());
            let again = p.enqueue_start(1, Behavior::Fixed).unwrap();
            assert_eq!(again.len(), 1);
            again.finish(&[10]);
            assert_eq!(ring.count(), 4);
            drop(p);
            let mut c = ring.consumer().unwrap();
            let mut peeked = [0u64; 2];
            let peek = c.dequeue_start(&mut peeked, Behavior::Fixed).unwrap();
            assert_eq!(peek.len(), 2);
            std::mem::forget(peek);
            assert_eq!(peeked, [7, 8]);
            std::mem::forget(c.dequeue_zc_start(1, Behavior::Fixed).unwrap());
            assert_eq!(ring.count(), 4, "leaked peeks take nothing");
            let mut out = Vec::new();
            while let Some(v) = c.dequeue() {
                out.push(v);
            }
            out
        });
        assert_eq!(got, vec![7, 8, 9, 10], "{flags:?}");
    }
}

#[test]
fn reset_puts_heads_and_tails_back_in_every_layout() {
    for layout in [
        RingFlags::NONE,
        RingFlags::CACHED_OTHER_TAIL,
        MEMPOOL_LAYOUT,
    ] {
        for modes in [
            RingFlags::NONE,
            RingFlags::SP_ENQ | RingFlags::SC_DEQ,
            RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ,
            RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ,
        ] {
            let flags = modes | layout;
            let mut ring = Ring::<u64>::new("reset", 8, flags).unwrap();
            ring.producer().unwrap().enqueue_bulk(&[1, 2, 3, 4, 5]);
            ring.consumer().unwrap().dequeue_bulk(&mut [0; 2]);
            ring.reset();
            assert!(ring.is_empty(), "{flags:?}");
            // A stale head would make these claim the wrong slots, or wait for ever; a stale
            // room left on the consumers' side (3) would let a dequeue take slots never
            // written.
            let again = within_10s(&format!("{flags:?}"), move || {
                assert_eq!(ring.consumer().unwrap().dequeue_burst(&mut [0; 2]).count, 0);
                let moved = ring.producer().unwrap().enqueue_bulk(&[1; 7]).count;
                let mut out = [0u64; 7];
                let back = ring.consumer().unwrap().dequeue_bulk(&mut out).count;
                (moved, back, ring.count())
            });
            assert_eq!(again, (7, 7, 0), "{flags:?}");
        }
    }
}

/// Single-thread calls on a multi-thread side whose head is beside its tail run the
/// multi-thread protocol; every other pairing its own.
#[test]
fn per_call_modes_on_rings_with_other_layouts() {
    for layout in [RingFlags::CACHED_OTHER_TAIL, MEMPOOL_LAYOUT] {
        for flags in [layout, RingFlags::SP_ENQ | RingFlags::SC_DEQ | layout] {
            let ring = RawRing::new("percall", 8, 8, flags).unwrap();
            for (i, mode) in [Some(ProducerMode::Sp), Some(ProducerMode::Mp), None]
                .into_iter()
                .enumerate()
            {
                let v = (i as u64 + 1).to_ne_bytes();
                // SAFETY: one thread uses the ring.
                let (n, _) = unsafe { ring.enqueue_elems(&v, 1, Behavior::Fixed, mode) };
                assert_eq!(n, 1);
            }
            let mut out = [0u8; 24];
            // SAFETY: as above.
            let (n, left) =
                unsafe { ring.dequeue_elems(&mut out, 3, Behavior::Fixed, Some(ConsumerMode::Sc)) };
            assert_eq!((n, left), (3, 0), "{flags:?}");
            let values: Vec<u64> = out
                .chunks_exact(8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(values, vec![1, 2, 3], "{flags:?}");
        }
    }
}

/// Bulk calls without a handle serve multi-thread sides (MP, RTS, HTS, in their own
/// protocols) and refuse single-thread ones, doing nothing, in every layout.
#[test]
fn bulk_calls_without_a_handle_on_multi_thread_sides_only() {
    for flags in all_flags() {
        let ring = Ring::<u32>::new("nohandle", 8, flags).unwrap();
        let single_producer = flags.contains(RingFlags::SP_ENQ);
        let single_consumer = flags.contains(RingFlags::SC_DEQ);
        let put = ring.mp_enqueue_bulk(&[1, 2, 3]).map(|m| m.count);
        if single_producer {
            assert_eq!(put, None, "{flags:?}");
            assert!(ring.is_empty());
            ring.producer().unwrap().enqueue_bulk(&[1, 2, 3]);
        } else {
            assert_eq!(put, Some(3), "{flags:?}");
            // 4 free of 7: all or nothing.
            assert_eq!(ring.mp_enqueue_bulk(&[9; 5]).map(|m| m.count), Some(0));
        }
        let mut out = [0u32; 3];
        let got = ring.mc_dequeue_bulk(&mut out).map(|m| m.count);
        if single_consumer {
            assert_eq!(got, None, "{flags:?}");
            assert_eq!(ring.count(), 3);
            ring.consumer().unwrap().dequeue_bulk(&mut out);
        } else {
            assert_eq!(got, Some(3), "{flags:?}");
            assert_eq!(
                ring.mc_dequeue_bulk(&mut out[..1]).map(|m| m.count),
                Some(0)
            );
        }
        assert_eq!(out, [1, 2, 3], "{flags:?}");
        assert!(ring.is_empty());
    }
}
