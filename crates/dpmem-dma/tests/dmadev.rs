//! The copy device against what DPDK 22.11's `test_dmadev` checks of a dmadev: ring indices
//! that count from 0 and wrap, completions in order, empty completions that leave the last
//! index alone, burst capacity, statistics, per-operation error statuses (with and without
//! fences), fills, and stop/start — plus the control path's refusals. The buffers are packet
//! buffers of a real pool, as in DPDK's test; the EAL runs on ordinary pages, for any user.

mod common;

use common::*;
use dpmem_dma::{
    Capabilities, Direction, DmaConf, DmaDevice, DmaStats, OpFlags, Status, VchanConf, VchanStatus,
};
use dpmem_eal::{ErrorKind, Iova};
use dpmem_mbuf::{Mbuf, PktmbufPool};

const COPY_LEN: usize = 1024;
const RING: u16 = 512;

/// A packet holding `len` bytes of seeded random data, and its data's IOVA.
fn packet<'p>(pool: &'p PktmbufPool<'_>, len: usize, seed: u64) -> (Mbuf<'p>, Iova) {
    let p = pool.alloc_from_slice(&random_bytes(len, seed)).unwrap();
    let iova = p.iova().unwrap();
    (p, iova)
}

/// A packet of `len` zero bytes to copy into.
fn target<'p>(pool: &'p PktmbufPool<'_>, len: usize) -> (Mbuf<'p>, Iova) {
    let p = pool.alloc_from_slice(&vec![0; len]).unwrap();
    let iova = p.iova().unwrap();
    (p, iova)
}

fn pool<'e>(eal: &'e dpmem_eal::Eal, name: &str) -> PktmbufPool<'e> {
    PktmbufPool::builder(name, 2 * u32::from(RING) - 1)
        .cache_size(32)
        .create(eal)
        .unwrap()
}

/// One round of `test_enqueue_copies`: a single copy, four copies of one buffer, then bursts
/// of 32 enqueued, submitted and completed in the four ways the DPDK test does; `id` is the
/// test's counter of ring indices.
fn enqueue_copies(dev: &DmaDevice<'_>, pool: &PktmbufPool<'_>, id: &mut u16, round: u64) {
    let mut vchan = dev.vchan(0).unwrap();

    // A single copy, submitted with its flag.
    let (src, s) = packet(pool, COPY_LEN, round);
    let (dst, d) = target(pool, COPY_LEN);
    // SAFETY: both packets are this test's and nothing touches them until the copy is done.
    let got = unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::SUBMIT) }.unwrap();
    assert_eq!(
        got, *id,
        "the ring index is the count of operations since start"
    );
    await_idle(dev, 0);
    assert_eq!(dst.data(), src.data());
    let c = vchan.completed(1);
    assert_eq!((c.count, c.last_idx, c.has_error), (1, *id, false));
    // Nothing more: 0, and the last index stays.
    let c = vchan.completed(1);
    assert_eq!((c.count, c.last_idx), (0, *id));
    *id = id.wrapping_add(1);

    // The same copy four times, completed at once.
    for _ in 0..4 {
        // SAFETY: as above.
        let got = unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::SUBMIT) }.unwrap();
        assert_eq!(got, *id);
        *id = id.wrapping_add(1);
    }
    await_idle(dev, 0);
    let c = vchan.completed(8);
    assert_eq!((c.count, c.last_idx), (4, id.wrapping_sub(1)));
    drop((src, dst));

    // Bursts of 32: one batch or two, completions in one call or two halves, or statuses.
    for (split_batches, split_completions, with_status) in [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (false, false, true),
    ] {
        let mut pairs = Vec::new();
        for i in 0..32u64 {
            if split_batches && i == 16 {
                vchan.submit();
            }
            let (src, s) = packet(pool, COPY_LEN, round * 1000 + i);
            let (dst, d) = target(pool, COPY_LEN);
            // SAFETY: as above.
            let got = unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::empty()) }.unwrap();
            assert_eq!(got, *id);
            *id = id.wrapping_add(1);
            pairs.push((src, dst));
        }
        vchan.submit();
        await_idle(dev, 0);
        if split_completions {
            for _ in 0..2 {
                let c = vchan.completed(16);
                assert_eq!((c.count, c.has_error), (16, false));
            }
        } else if with_status {
            let mut status = [Status::ErrorUnknown; 32];
            let c = vchan.completed_status(32, &mut status).unwrap();
            assert_eq!(c.count, 32);
            assert!(status.iter().all(|s| s.is_success()), "{status:?}");
        } else {
            let c = vchan.completed(32);
            assert_eq!(
                (c.count, c.has_error, c.last_idx),
                (32, false, id.wrapping_sub(1))
            );
        }
        assert_eq!(vchan.completed(32).count, 0);
        for (src, dst) in &pairs {
            assert_eq!(dst.data(), src.data());
        }
    }
}

#[test]
fn ring_indices_count_from_zero_wrap_and_complete_in_order() {
    let eal = no_huge_eal("copies");
    let pool = pool(&eal, "copies");
    let dev = started(&eal, RING);
    assert_eq!(
        dev.stats(0).unwrap(),
        DmaStats::default(),
        "zero after start"
    );
    assert!(dev.vchan(0).unwrap().burst_capacity() >= 32);
    let mut id = 0u16;
    let mut wrapped = false;
    // 640 rounds of 133 operations go past 65,535 and wrap, as DPDK's test makes them.
    for round in 0..640 {
        let before = id;
        enqueue_copies(&dev, &pool, &mut id, round);
        wrapped |= id < before;
        let stats = dev.stats(0).unwrap();
        assert_eq!(stats.completed, stats.submitted);
        assert_eq!(stats.errors, 0);
    }
    assert!(wrapped);
    assert_eq!(dev.stats(0).unwrap().submitted, 640 * 133);
    assert_eq!(pool.avail_count(), pool.size(), "every packet went back");
}

#[test]
fn burst_capacity_drops_by_one_per_operation_and_comes_back() {
    const BURST: u16 = 64;
    let eal = no_huge_eal("capacity");
    let pool = pool(&eal, "capacity");
    let dev = started(&eal, RING);
    let mut vchan = dev.vchan(0).unwrap();
    let space = vchan.burst_capacity();
    assert_eq!(space, RING - 1, "one descriptor stays empty");
    let (_src, s) = packet(&pool, COPY_LEN, 1);
    let (_dst, d) = target(&pool, COPY_LEN);
    // Twice, so the second pass goes round the ring's end.
    for _ in 0..2 {
        let bursts = space / (2 * BURST) + 1;
        for _ in 0..bursts {
            let cap = vchan.burst_capacity();
            for j in 0..BURST {
                // SAFETY: the packets are this test's; nothing reads them meanwhile.
                unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::empty()) }.unwrap();
                assert_eq!(vchan.burst_capacity(), cap - (j + 1));
            }
            vchan.submit();
            assert!(vchan.burst_capacity() <= cap);
        }
        await_idle(&dev, 0);
        for _ in 0..bursts {
            let c = vchan.completed(BURST);
            assert_eq!((c.count, c.has_error), (BURST, false));
        }
        assert_eq!(vchan.burst_capacity(), space);
    }
}

#[test]
fn a_full_ring_refuses_with_enospc_and_changes_nothing() {
    let eal = no_huge_eal("full");
    let pool = pool(&eal, "full");
    let dev = started(&eal, 32);
    let mut vchan = dev.vchan(0).unwrap();
    let (_src, s) = packet(&pool, 64, 2);
    let (_dst, d) = target(&pool, 64);
    for i in 0..31 {
        // SAFETY: as above.
        let id = unsafe { vchan.copy(s, d, 64, OpFlags::empty()) }.unwrap();
        assert_eq!(id, i);
    }
    // SAFETY: as above.
    let e = unsafe { vchan.copy(s, d, 64, OpFlags::SUBMIT) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpc);
    assert_eq!((vchan.burst_capacity(), vchan.next_idx()), (0, 31));
    // Not submitted by the refused call: the device has nothing to do yet.
    assert_eq!(dev.vchan_status(0).unwrap(), VchanStatus::Idle);
    vchan.submit();
    await_idle(&dev, 0);
    assert_eq!(vchan.completed(64).count, 31);
    // A zero-length operation is refused too.
    // SAFETY: as above.
    let e = unsafe { vchan.copy(s, d, 0, OpFlags::SUBMIT) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert_eq!(vchan.next_idx(), 31);
}

/// `test_failure_in_full_burst`: 16 copies, the one at `fail` from IOVA 0 (not dpmem
/// memory), an optional fence on the 9th.
fn failure_in_full_burst(dev: &DmaDevice<'_>, pool: &PktmbufPool<'_>, fail: u16, fence: bool) {
    const BURST: u16 = 16;
    let mut vchan = dev.vchan(0).unwrap();
    let baseline = vchan.stats();
    let packets: Vec<_> = (0..BURST)
        .map(|i| (packet(pool, COPY_LEN, u64::from(i)), target(pool, COPY_LEN)))
        .collect();
    let mut bad_id = 0;
    for (i, ((_, s), (_, d))) in packets.iter().enumerate() {
        let i = i as u16;
        let src = if i == fail { Iova::new(0).unwrap() } else { *s };
        let flags = if fence && i == 8 {
            OpFlags::FENCE
        } else {
            OpFlags::empty()
        };
        // SAFETY: as above.
        let id = unsafe { vchan.copy(src, *d, COPY_LEN as u32, flags) }.unwrap();
        if i == fail {
            bad_id = id;
        }
    }
    vchan.submit();
    assert_eq!(
        vchan.stats().submitted,
        baseline.submitted + u64::from(BURST)
    );
    await_idle(dev, 0);

    let c = vchan.completed(BURST);
    assert_eq!((c.count, c.has_error), (fail, true));
    assert_eq!(c.last_idx, bad_id.wrapping_sub(1));
    // Asking again changes nothing until the failure is taken with its status.
    for _ in 0..10 {
        let again = vchan.completed(BURST);
        assert_eq!(
            (again.count, again.has_error, again.last_idx),
            (0, true, bad_id.wrapping_sub(1))
        );
    }
    let mut status = [Status::ErrorUnknown; BURST as usize];
    let rest = BURST - fail;
    let s = vchan.completed_status(BURST, &mut status).unwrap();
    assert_eq!(s.count, rest);
    assert_eq!(status[0], Status::InvalidSrcAddr);
    let skipped_from = if fence && fail < 8 { 8 - fail } else { rest };
    for (k, st) in status[1..usize::from(rest)].iter().enumerate() {
        let want = if (k as u16 + 1) >= skipped_from {
            Status::NotAttempted
        } else {
            Status::Successful
        };
        assert_eq!(
            *st,
            want,
            "status {} of the rest (fail {fail}, fence {fence})",
            k + 1
        );
    }
    let errors = status[..usize::from(rest)]
        .iter()
        .filter(|s| !s.is_success())
        .count() as u64;
    let stats = vchan.stats();
    assert_eq!(stats.completed, baseline.completed + u64::from(BURST));
    assert_eq!(stats.errors, baseline.errors + errors);
    // The copies that ran put their bytes in place; the skipped and failed ones wrote none.
    for (i, ((src, _), (dst, _))) in packets.iter().enumerate() {
        let ran = i as u16 != fail && !(fence && fail < 8 && i >= 8);
        if ran {
            assert_eq!(dst.data(), src.data(), "copy {i}");
        } else {
            assert!(dst.data().iter().all(|&b| b == 0), "copy {i} wrote");
        }
    }
}

#[test]
fn a_bad_address_fails_its_operation_and_a_fence_skips_the_rest_of_the_batch() {
    let eal = no_huge_eal("errors");
    let pool = pool(&eal, "errors");
    let dev = started(&eal, RING);
    assert!(dev
        .info()
        .capabilities
        .contains(Capabilities::HANDLES_ERRORS));
    for fence in [false, true] {
        for fail in [0, 7, 14, 15] {
            failure_in_full_burst(&dev, &pool, fail, fence);
        }
    }
    // Several failures in one burst, taken one status at a time between completions.
    let mut vchan = dev.vchan(0).unwrap();
    let fails = [0u16, 7, 14, 15];
    let pairs: Vec<_> = (0..16)
        .map(|i| (packet(&pool, COPY_LEN, i), target(&pool, COPY_LEN)))
        .collect();
    for (i, ((_, s), (_, d))) in pairs.iter().enumerate() {
        let src = if fails.contains(&(i as u16)) {
            Iova::new(0).unwrap()
        } else {
            *s
        };
        // SAFETY: as above.
        unsafe { vchan.copy(src, *d, COPY_LEN as u32, OpFlags::empty()) }.unwrap();
    }
    vchan.submit();
    await_idle(&dev, 0);
    let (mut count, mut errors) = (0, 0);
    while count + errors < 16 {
        let c = vchan.completed(16);
        count += c.count;
        if c.has_error {
            let mut status = [Status::ErrorUnknown; 1];
            assert_eq!(vchan.completed_status(1, &mut status).unwrap().count, 1);
            assert_eq!(status[0], Status::InvalidSrcAddr);
            errors += 1;
        }
    }
    assert_eq!((count, errors), (12, 4));
}

#[test]
fn a_destination_or_length_outside_dpmem_memory_fails_with_its_own_status() {
    let eal = no_huge_eal("statuses");
    let pool = pool(&eal, "statuses");
    let dev = started(&eal, 64);
    let mut vchan = dev.vchan(0).unwrap();
    let (_src, s) = packet(&pool, COPY_LEN, 3);
    let (dst, _d) = target(&pool, COPY_LEN);
    let zone = eal
        .memzones()
        .request("statuses-end", 4096)
        .reserve()
        .unwrap();
    // The last list's window ends somewhere after this memzone; a length of 1 GiB from it
    // runs past the end of every run of dpmem memory.
    let zone_iova = zone.iova.unwrap();
    let nowhere = Iova::new(8).unwrap();
    // SAFETY: fails on its destination before writing anything.
    unsafe { vchan.copy(s, nowhere, 64, OpFlags::empty()) }.unwrap();
    // SAFETY: runs past the end of memory; the device checks both ends whole first.
    unsafe { vchan.copy(s, zone_iova, 1 << 30, OpFlags::empty()) }.unwrap();
    // SAFETY: fails on its destination.
    unsafe { vchan.fill(7, nowhere, 64, OpFlags::SUBMIT) }.unwrap();
    await_idle(&dev, 0);
    let mut status = [Status::ErrorUnknown; 3];
    assert_eq!(vchan.completed_status(3, &mut status).unwrap().count, 3);
    assert_eq!(
        status,
        [
            Status::InvalidDstAddr,
            Status::InvalidLength,
            Status::InvalidDstAddr
        ]
    );
    assert!(dst.data().iter().all(|&b| b == 0));
    // `completed_status` with less room than asked for is refused, and reports nothing.
    let e = vchan.completed_status(4, &mut status).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    drop(zone);
}

#[test]
fn fill_writes_the_pattern_in_memory_order_and_nothing_after() {
    let eal = no_huge_eal("fill");
    let pool = pool(&eal, "fill");
    let dev = started(&eal, 64);
    assert!(dev.info().capabilities.contains(Capabilities::OPS_FILL));
    let mut vchan = dev.vchan(0).unwrap();
    let pattern = 0xfedc_ba98_7654_3210u64;
    let (dst, d) = target(&pool, COPY_LEN);
    for len in [8usize, 64, 1024, 50, 100, 89] {
        // Back to zeros, by the device itself.
        // SAFETY: the packet is this test's; nothing reads it until the fill is reported.
        unsafe { vchan.fill(0, d, COPY_LEN as u32, OpFlags::SUBMIT) }.unwrap();
        // SAFETY: as above.
        unsafe { vchan.fill(pattern, d, len as u32, OpFlags::SUBMIT) }.unwrap();
        await_idle(&dev, 0);
        assert_eq!(vchan.completed(2).count, 2);
        let bytes = pattern.to_ne_bytes();
        let data = dst.data();
        for (j, &b) in data[..len].iter().enumerate() {
            assert_eq!(b, bytes[j % 8], "byte {j} of a fill of {len}");
        }
        assert!(
            data[len..].iter().all(|&b| b == 0),
            "a fill of {len} wrote past it"
        );
    }
}

#[test]
fn stop_and_start_reset_ring_indices_and_statistics() {
    let eal = no_huge_eal("restart");
    let pool = pool(&eal, "restart");
    let mut dev = started(&eal, 64);
    let (src, s) = packet(&pool, COPY_LEN, 4);
    let (dst, d) = target(&pool, COPY_LEN);
    {
        let mut vchan = dev.vchan(0).unwrap();
        for i in 0..5 {
            // SAFETY: as above.
            let id = unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::SUBMIT) }.unwrap();
            assert_eq!(id, i);
        }
        // Queued, not submitted: the stop drops it.
        // SAFETY: as above.
        unsafe { vchan.copy(s, d, COPY_LEN as u32, OpFlags::empty()) }.unwrap();
    }
    // Another owner carries on where the first left off.
    assert_eq!(dev.vchan(0).unwrap().next_idx(), 6);
    dev.stop().unwrap();
    assert!(!dev.is_started());
    // Stopped: the submitted copies are done, the statistics still readable.
    assert_eq!(dst.data(), src.data());
    assert_eq!(dev.stats(0).unwrap().submitted, 5);
    assert_eq!(dev.vchan(0).unwrap_err().kind(), ErrorKind::Inval);
    dev.start().unwrap();
    assert_eq!(dev.stats(0).unwrap(), DmaStats::default());
    let mut vchan = dev.vchan(0).unwrap();
    assert_eq!((vchan.next_idx(), vchan.burst_capacity()), (0, 63));
    assert_eq!(vchan.completed(8).last_idx, u16::MAX);
    // SAFETY: as above.
    assert_eq!(unsafe { vchan.copy(s, d, 64, OpFlags::SUBMIT) }.unwrap(), 0);
    await_idle(&dev, 0);
    assert_eq!(vchan.completed(8).count, 1);
}

#[test]
fn the_control_path_refuses_bad_input_and_wrong_states() {
    let eal = no_huge_eal("control");
    let kind = |r: Result<(), dpmem_dma::DmaError>| r.unwrap_err().kind();
    assert_eq!(
        DmaDevice::create(&eal, "").unwrap_err().kind(),
        ErrorKind::Inval
    );
    assert_eq!(
        DmaDevice::create(&eal, &"x".repeat(64)).unwrap_err().kind(),
        ErrorKind::Inval
    );
    let mut dev = DmaDevice::create(&eal, "dma_control").unwrap();
    let info = dev.info();
    assert_eq!(
        info.capabilities,
        Capabilities::MEM_TO_MEM
            | Capabilities::HANDLES_ERRORS
            | Capabilities::OPS_COPY
            | Capabilities::OPS_FILL
    );
    assert!(!info.capabilities.contains(Capabilities::SVA));
    assert_eq!(
        (info.min_desc, info.max_desc, info.nb_vchans),
        (32, 8192, 0)
    );

    assert_eq!(
        kind(dev.start()),
        ErrorKind::Inval,
        "start before configure"
    );
    assert_eq!(
        kind(dev.vchan_setup(0, VchanConf::mem_to_mem(64))),
        ErrorKind::Inval
    );
    assert_eq!(kind(dev.configure(DmaConf::new(0))), ErrorKind::Inval);
    assert_eq!(kind(dev.configure(DmaConf::new(9))), ErrorKind::Inval);
    let silent = DmaConf {
        nb_vchans: 1,
        enable_silent: true,
    };
    assert_eq!(kind(dev.configure(silent)), ErrorKind::Inval);
    dev.configure(DmaConf::new(2)).unwrap();
    assert_eq!(dev.info().nb_vchans, 2);
    for nb_desc in [0, 16, 31, 48, 16384] {
        assert_eq!(
            kind(dev.vchan_setup(0, VchanConf::mem_to_mem(nb_desc))),
            ErrorKind::Inval,
            "{nb_desc} descriptors"
        );
    }
    let to_device = VchanConf {
        direction: Direction::MemToDev,
        nb_desc: 64,
    };
    assert_eq!(kind(dev.vchan_setup(0, to_device)), ErrorKind::Inval);
    assert_eq!(
        kind(dev.vchan_setup(2, VchanConf::mem_to_mem(64))),
        ErrorKind::Inval
    );
    dev.vchan_setup(0, VchanConf::mem_to_mem(32)).unwrap();
    assert_eq!(kind(dev.start()), ErrorKind::Inval, "vchan 1 not set up");
    dev.vchan_setup(1, VchanConf::mem_to_mem(8192)).unwrap();
    dev.start().unwrap();
    dev.start().unwrap();
    assert_eq!(kind(dev.configure(DmaConf::new(1))), ErrorKind::Busy);
    assert_eq!(
        kind(dev.vchan_setup(0, VchanConf::mem_to_mem(64))),
        ErrorKind::Busy
    );
    {
        let first = dev.vchan(1).unwrap();
        assert_eq!(dev.vchan(1).unwrap_err().kind(), ErrorKind::Busy);
        assert_eq!(dev.vchan(2).unwrap_err().kind(), ErrorKind::Inval);
        assert_eq!(first.burst_capacity(), 8191);
        // Two owners of two channels, each on its own thread.
        let zero = dev.vchan(0).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || assert_eq!(zero.burst_capacity(), 31));
            s.spawn(move || assert_eq!(first.burst_capacity(), 8191));
        });
    }
    assert_eq!(dev.stats(2).unwrap_err().kind(), ErrorKind::Inval);
    assert_eq!(dev.vchan_status(1).unwrap(), VchanStatus::Idle);
    let dump = dev.dump();
    assert!(
        dump.contains("dma_control") && dump.contains("started") && dump.contains("nb_desc 8192"),
        "{dump}"
    );
    dev.close().unwrap();
}

#[test]
fn results_are_visible_to_another_thread_the_owner_hands_them_to() {
    let eal = no_huge_eal("visible");
    let pool = pool(&eal, "visible");
    let dev = started(&eal, 64);
    let (src, s) = packet(&pool, 1500, 5);
    let (dst, d) = target(&pool, src.data().len());
    let len = src.data().len() as u32;
    let mut vchan = dev.vchan(0).unwrap();
    // SAFETY: as above.
    unsafe { vchan.copy(s, d, len, OpFlags::SUBMIT) }.unwrap();
    while vchan.completed(1).count == 0 {
        std::hint::spin_loop();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || tx.send(dst.to_vec()).unwrap());
    });
    assert_eq!(rx.recv().unwrap(), src.data());
}
