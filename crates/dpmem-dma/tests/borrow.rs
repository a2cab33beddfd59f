//! MTL's borrowing layer over a real packet buffer pool: packets held while the device copies
//! them and released in order after their lender's callback, back in their pool; each reason
//! for a CPU copy counted (small payload, full ring, a page boundary where the IOVA jumps,
//! no device, the 17th lender); bad input refused with the packet handed back.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use dpmem_dma::borrow::{CopyPath, DmaBorrower, Fallback, CPU_COPY_MAX, MAX_LENDERS};
use dpmem_dma::{DmaConf, DmaDevice, VchanConf};
use dpmem_eal::{ErrorKind, Iova, Memzone};
use dpmem_mbuf::{Mbuf, PktmbufPool};

/// A payload the size MTL's RX sees (ST 2110-20, 1,260 bytes): above the CPU threshold.
const PAYLOAD: usize = 1260;

fn pool<'e>(eal: &'e dpmem_eal::Eal, name: &str) -> PktmbufPool<'e> {
    PktmbufPool::builder(name, 255).create(eal).unwrap()
}

/// A received packet: 8 bytes of header, then `len` bytes of payload starting with `tag`.
fn received<'p>(pool: &'p PktmbufPool<'_>, len: usize, tag: u8) -> Mbuf<'p> {
    let mut bytes = vec![0xee; 8];
    let mut payload = random_bytes(len, u64::from(tag) + 1);
    payload[0] = tag;
    bytes.extend_from_slice(&payload);
    pool.alloc_from_slice(&bytes).unwrap()
}

fn frame_bytes(frame: &Memzone, offset: usize, len: usize) -> Vec<u8> {
    assert!(offset + len <= frame.len);
    // SAFETY: inside the test's memzone; no copy to this range is in flight.
    unsafe { std::slice::from_raw_parts(frame.as_ptr().wrapping_add(offset), len) }.to_vec()
}

#[test]
fn device_copies_hold_packets_until_reported_then_release_them_in_order() {
    let eal = no_huge_eal("borrow-order");
    let pool = pool(&eal, "borrow-order");
    let frame = eal
        .memzones()
        .request("frame", 64 * PAYLOAD)
        .reserve()
        .unwrap();
    let dev = started(&eal, 256);
    let released = Arc::new(Mutex::new(Vec::new()));
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let lenders: Vec<_> = (0..2u16)
        .map(|id| {
            let released = Arc::clone(&released);
            borrower.register(move |packet: &Mbuf<'_>| {
                released.lock().unwrap().push((id, packet.data()[8]));
            })
        })
        .collect();
    assert!(lenders.iter().all(|l| l.on_device()));
    let mut expected_frame = Vec::new();
    for i in 0..40u8 {
        let packet = received(&pool, PAYLOAD, i);
        expected_frame.extend_from_slice(&packet.data()[8..]);
        let lender = &lenders[usize::from(i % 2)];
        // SAFETY: the frame is the test's, untouched until every copy is reported.
        let path = unsafe {
            borrower.copy(
                lender,
                packet,
                8,
                frame.as_ptr().wrapping_add(usize::from(i) * PAYLOAD),
                PAYLOAD as u32,
            )
        }
        .unwrap();
        assert_eq!(
            path,
            CopyPath::Dma {
                ring_idx: u16::from(i)
            }
        );
    }
    // Held: the packets are out of their pool while the device may read them.
    assert_eq!(pool.avail_count(), pool.size() - 40);
    assert_eq!(borrower.in_flight(), 40);
    assert_eq!(borrower.lender_in_flight(&lenders[1]), 20);
    let mut lenders = lenders;
    let busy = lenders.pop().unwrap();
    let (e, busy) = borrower.unregister(busy).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    lenders.push(busy);

    borrower.submit();
    let mut done = 0;
    while done < 40 {
        done += borrower.completed(7);
    }
    let order = released.lock().unwrap().clone();
    let want: Vec<(u16, u8)> = (0..40u8).map(|i| (u16::from(i % 2), i)).collect();
    assert_eq!(order, want, "callbacks in the order the copies were queued");
    assert_eq!(
        pool.avail_count(),
        pool.size(),
        "every packet is back in its pool"
    );
    assert!(frame_bytes(&frame, 0, 40 * PAYLOAD) == expected_frame);
    let stats = borrower.stats();
    assert_eq!(
        (stats.dma_copies, stats.released, stats.cpu_copies()),
        (40, 40, 0)
    );
    for lender in lenders {
        borrower.unregister(lender).unwrap();
    }
}

#[test]
fn each_reason_for_a_cpu_copy_is_taken_and_counted() {
    const PAGE: usize = 4096;
    let eal = no_huge_eal("borrow-fallback");
    let pool = pool(&eal, "borrow-fallback");
    let frame = eal
        .memzones()
        .request("frame", 64 * PAYLOAD)
        .reserve()
        .unwrap();
    let dev = started(&eal, 32);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let lender = borrower.register(|_: &Mbuf<'_>| {});
    let at = |i: usize| frame.as_ptr().wrapping_add(i * PAYLOAD);

    // At the threshold: the CPU; one byte more: the device.
    let small = received(&pool, CPU_COPY_MAX as usize, 1);
    let small_bytes = small.data()[8..].to_vec();
    // SAFETY: the frame is the test's; a CPU copy is done when the call returns.
    let path = unsafe { borrower.copy(&lender, small, 8, at(0), CPU_COPY_MAX) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::Small));
    assert_eq!(frame_bytes(&frame, 0, CPU_COPY_MAX as usize), small_bytes);
    let over = received(&pool, CPU_COPY_MAX as usize + 1, 2);
    // SAFETY: as above; the device copy is reported before the frame is read.
    let path = unsafe { borrower.copy(&lender, over, 8, at(1), CPU_COPY_MAX + 1) }.unwrap();
    assert!(matches!(path, CopyPath::Dma { .. }));

    // A full ring (31 usable descriptors, none submitted): the 32nd copy is the CPU's.
    for i in 2..32 {
        let packet = received(&pool, PAYLOAD, i as u8);
        // SAFETY: as above.
        let path = unsafe { borrower.copy(&lender, packet, 8, at(i), PAYLOAD as u32) }.unwrap();
        assert!(matches!(path, CopyPath::Dma { .. }), "copy {i}: {path:?}");
    }
    let full = received(&pool, PAYLOAD, 32);
    let full_bytes = full.data()[8..].to_vec();
    // SAFETY: as above.
    let path = unsafe { borrower.copy(&lender, full, 8, at(32), PAYLOAD as u32) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::DeviceFull));
    assert_eq!(frame_bytes(&frame, 32 * PAYLOAD, PAYLOAD), full_bytes);
    borrower.flush();
    assert_eq!(borrower.in_flight(), 0);

    // A destination over a page boundary where the IOVA jumps (page 0 to page 1 of memory
    // registered with IOVAs of its own) is the CPU's; over one where it does not (page 1 to
    // page 2), the device's.
    let user = UserMemory::anonymous(3 * PAGE, PAGE);
    let base = 0x9000_0000_0000u64;
    let iovas =
        [base, base + 0x10_0000, base + 0x10_0000 + PAGE as u64].map(|i| Iova::new(i).unwrap());
    eal.memory()
        .extmem_register(user.addr, user.len, Some(&iovas), PAGE)
        .unwrap();
    let across = received(&pool, PAYLOAD, 40);
    let across_bytes = across.data()[8..].to_vec();
    // SAFETY: the user memory is the test's; a CPU copy is done when the call returns.
    let path =
        unsafe { borrower.copy(&lender, across, 8, user.at(PAGE - 600), PAYLOAD as u32) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::CrossPage));
    assert_eq!(user.read(PAGE - 600, PAYLOAD), across_bytes);
    let contiguous = received(&pool, PAYLOAD, 41);
    let contiguous_bytes = contiguous.data()[8..].to_vec();
    // SAFETY: as above; flushed before the memory is read.
    let path = unsafe {
        borrower.copy(
            &lender,
            contiguous,
            8,
            user.at(2 * PAGE - 600),
            PAYLOAD as u32,
        )
    }
    .unwrap();
    assert!(matches!(path, CopyPath::Dma { .. }), "{path:?}");
    borrower.flush();
    assert_eq!(user.read(2 * PAGE - 600, PAYLOAD), contiguous_bytes);

    // Sixteen lenders share the device; the 17th copies with the CPU.
    let mut others: Vec<_> = (1..MAX_LENDERS)
        .map(|_| borrower.register(|_: &Mbuf<'_>| {}))
        .collect();
    assert!(others.iter().all(|l| l.on_device()));
    let seventeenth = borrower.register(|_: &Mbuf<'_>| {});
    assert!(!seventeenth.on_device());
    let late = received(&pool, PAYLOAD, 42);
    // SAFETY: as above.
    let path = unsafe { borrower.copy(&seventeenth, late, 8, at(40), PAYLOAD as u32) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::NoDevice));
    // A place given back goes to the next lender.
    borrower.unregister(others.pop().unwrap()).unwrap();
    let next = borrower.register(|_: &Mbuf<'_>| {});
    assert!(next.on_device());

    let stats = borrower.stats();
    assert_eq!(
        (
            stats.cpu_small,
            stats.cpu_device_full,
            stats.cpu_cross_page,
            stats.cpu_no_device,
            stats.lenders_on_cpu
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!((stats.dma_copies, stats.released), (32, 32));
    assert_eq!(stats.cpu_after_error, 0);
    drop(borrower);
    assert_eq!(pool.avail_count(), pool.size());
    eal.memory().extmem_unregister(user.addr, user.len).unwrap();

    // Without a device, every copy is the CPU's.
    let mut cpu_only = DmaBorrower::new(&eal, None).unwrap();
    let lender = cpu_only.register(|_: &Mbuf<'_>| {});
    assert!(!lender.on_device());
    let packet = received(&pool, PAYLOAD, 43);
    // SAFETY: as above.
    let path = unsafe { cpu_only.copy(&lender, packet, 8, at(41), PAYLOAD as u32) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::NoDevice));
    assert_eq!(cpu_only.stats().cpu_no_device, 1);
    assert_eq!(pool.avail_count(), pool.size());
}

#[test]
fn bad_input_is_refused_with_the_packet_handed_back_and_nothing_counted() {
    let eal = no_huge_eal("borrow-bad");
    let pool = pool(&eal, "borrow-bad");
    let frame = eal
        .memzones()
        .request("frame", 4 * PAYLOAD)
        .reserve()
        .unwrap();
    let dev = started(&eal, 64);
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let mut other = DmaBorrower::new(&eal, None).unwrap();
    let lender = borrower.register(|_: &Mbuf<'_>| {});
    let foreign = other.register(|_: &Mbuf<'_>| {});
    let mut on_stack = [0u8; PAYLOAD];
    let packet = received(&pool, PAYLOAD, 7);
    let held = pool.avail_count();

    // SAFETY: every call is refused before anything is copied.
    let (e, packet) =
        unsafe { borrower.copy(&foreign, packet, 8, frame.as_ptr(), PAYLOAD as u32) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    // SAFETY: as above.
    let (e, packet) =
        unsafe { borrower.copy(&lender, packet, 9, frame.as_ptr(), PAYLOAD as u32) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval, "past the segment's data");
    // SAFETY: as above.
    let (e, packet) = unsafe { borrower.copy(&lender, packet, 8, frame.as_ptr(), 0) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval, "zero bytes");
    // SAFETY: as above.
    let (e, packet) =
        unsafe { borrower.copy(&lender, packet, 8, on_stack.as_mut_ptr(), PAYLOAD as u32) }
            .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Inval,
        "a destination that is not dpmem memory"
    );
    assert!(on_stack.iter().all(|&b| b == 0));
    assert_eq!(packet.data()[8], 7, "the packet came back whole");
    assert_eq!(pool.avail_count(), held);
    assert_eq!(borrower.stats(), Default::default());
    let (e, _foreign) = borrower.unregister(foreign).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    drop(packet);
    assert_eq!(pool.avail_count(), pool.size());
}

#[test]
fn dropping_the_borrower_waits_for_the_device_and_releases_every_packet() {
    let eal = no_huge_eal("borrow-drop");
    let pool = pool(&eal, "borrow-drop");
    let frame = eal
        .memzones()
        .request("frame", 16 * PAYLOAD)
        .reserve()
        .unwrap();
    let dev = started(&eal, 64);
    let calls = Arc::new(Mutex::new(0));
    {
        let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
        let counted = Arc::clone(&calls);
        let lender = borrower.register(move |_: &Mbuf<'_>| *counted.lock().unwrap() += 1);
        for i in 0..16 {
            let packet = received(&pool, PAYLOAD, i as u8);
            // SAFETY: the frame is the test's; the borrower's drop waits for the copies.
            unsafe {
                borrower.copy(
                    &lender,
                    packet,
                    8,
                    frame.as_ptr().wrapping_add(i * PAYLOAD),
                    PAYLOAD as u32,
                )
            }
            .unwrap();
        }
        // Queued, not even submitted.
        assert_eq!(pool.avail_count(), pool.size() - 16);
    }
    assert_eq!(*calls.lock().unwrap(), 16);
    assert_eq!(pool.avail_count(), pool.size());
    assert_eq!(dev.stats(0).unwrap().completed, 16);
}

/// Memory registered after the borrower was made is not in its address map: the first copy
/// into it builds the map again and goes through; memory unregistered since is refused.
#[test]
fn memory_registered_after_the_borrower_is_found_by_building_the_map_again() {
    const PAGE: usize = 4096;
    let eal = no_huge_eal("borrow-later");
    let pool = pool(&eal, "borrow-later");
    let mut borrower = DmaBorrower::new(&eal, None).unwrap();
    let lender = borrower.register(|_: &Mbuf<'_>| {});

    let user = UserMemory::anonymous(PAGE, PAGE);
    let iova = [Iova::new(0x9100_0000_0000).unwrap()];
    eal.memory()
        .extmem_register(user.addr, user.len, Some(&iova), PAGE)
        .unwrap();
    let packet = received(&pool, PAYLOAD, 61);
    // SAFETY: the user memory is the test's, and a CPU copy is done when this returns.
    let path = unsafe { borrower.copy(&lender, packet, 8, user.at(100), PAYLOAD as u32) }.unwrap();
    assert_eq!(path, CopyPath::Cpu(Fallback::NoDevice));
    assert_eq!(user.read(100, 1), [61]);

    eal.memory().extmem_unregister(user.addr, user.len).unwrap();
    let elsewhere = UserMemory::anonymous(PAGE, PAGE);
    let packet = received(&pool, PAYLOAD, 62);
    // SAFETY: refused before anything is copied.
    let (e, packet) =
        unsafe { borrower.copy(&lender, packet, 8, elsewhere.at(0), PAYLOAD as u32) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Inval);
    assert!(elsewhere.read(0, PAYLOAD).iter().all(|&b| b == 0));
    drop(packet);
    assert_eq!(borrower.stats().cpu_no_device, 1);
    assert_eq!(pool.avail_count(), pool.size());
}

/// Memory unregistered and registered again with another IOVA, its old IOVA given to other
/// memory: the borrower, whose map held the old IOVA, has the device copy through the new
/// one, so the payload lands where the caller asked and the other memory stays untouched.
#[test]
fn memory_registered_again_with_another_iova_is_copied_to_through_the_new_one() {
    let eal = no_huge_eal("borrow-again");
    let pool = pool(&eal, "borrow-again");
    let mut dev = DmaDevice::create(&eal, "borrow_again").unwrap();
    dev.configure(DmaConf::new(2)).unwrap();
    for vchan in 0..2 {
        dev.vchan_setup(vchan, VchanConf::mem_to_mem(64)).unwrap();
    }
    dev.start().unwrap();
    let mut borrower = DmaBorrower::new(&eal, Some(dev.vchan(0).unwrap())).unwrap();
    let lender = borrower.register(|_: &Mbuf<'_>| {});
    let pages = IovaMove::register(&eal, 0x9400_0000_0000);
    let (x, y) = (&pages.x, &pages.y);
    let packet = received(&pool, PAYLOAD, 70);
    // SAFETY: the user memory is the test's; flushed before it is read.
    let path = unsafe { borrower.copy(&lender, packet, 8, x.at(100), PAYLOAD as u32) }.unwrap();
    assert!(matches!(path, CopyPath::Dma { .. }), "{path:?}");
    borrower.flush();
    assert_eq!(x.read(100, 1), [70]);

    pages.move_first_to_y(&eal);
    // Another borrower on the second channel copies to `x` first, so that the device's own
    // map is current (it would be anyway: this makes the check below about the borrower's).
    let mut other = DmaBorrower::new(&eal, Some(dev.vchan(1).unwrap())).unwrap();
    let other_lender = other.register(|_: &Mbuf<'_>| {});
    let packet = received(&pool, PAYLOAD, 71);
    // SAFETY: as above.
    let path = unsafe { other.copy(&other_lender, packet, 8, x.at(100), PAYLOAD as u32) }.unwrap();
    assert!(matches!(path, CopyPath::Dma { .. }), "{path:?}");
    other.flush();
    assert_eq!(x.read(100, 1), [71]);

    let packet = received(&pool, PAYLOAD, 72);
    let payload = packet.data()[8..].to_vec();
    // SAFETY: as above.
    let path = unsafe { borrower.copy(&lender, packet, 8, x.at(100), PAYLOAD as u32) }.unwrap();
    assert!(matches!(path, CopyPath::Dma { .. }), "{path:?}");
    borrower.flush();
    assert_eq!(x.read(100, PAYLOAD), payload);
    assert!(
        y.read(0, IovaMove::PAGE).iter().all(|&b| b == 0),
        "the copy went to the old IOVA, now other memory's"
    );
    assert_eq!(borrower.stats().cpu_after_error, 0);
    drop((borrower, other));
    assert_eq!(pool.avail_count(), pool.size());
    drop(dev);
    pages.unregister(&eal);
}
