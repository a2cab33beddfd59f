//! The device reaches memory as hardware would, by IOVA through the memseg lists: copies
//! between memzones on real hugepages (physical addresses as root) and on ordinary pages,
//! a copy that runs over a page boundary where the IOVA jumps, external memory registered
//! after the device started, with IOVAs of its own (one range copied in pieces), external
//! memory registered again with other IOVAs, and memory freed back to the system.

mod common;

use common::*;
use dpmem_dma::{OpFlags, Status, Vchan};
use dpmem_eal::{Eal, Iova};

const PAGE_2M: usize = 2 << 20;

/// Copies `len` bytes from virtual address `src` to `dst`, both dpmem memory, with one
/// operation per stretch whose IOVA is contiguous on both sides (as a driver splits a
/// buffer into descriptors); returns how many operations it took.
fn copy_by_iova(eal: &Eal, vchan: &mut Vchan<'_>, src: usize, dst: usize, len: usize) -> u16 {
    let memory = eal.memory();
    let mut ops = 0;
    let mut done = 0;
    while done < len {
        let (s, d) = (src + done, dst + done);
        let (s_iova, d_iova) = (
            memory.virt_to_iova(s).unwrap(),
            memory.virt_to_iova(d).unwrap(),
        );
        // To the next page boundary of either side: within a page the IOVA is contiguous.
        let page = memory.virt_to_memseg(s).unwrap();
        let dpage = memory.virt_to_memseg(d).unwrap();
        let n = (page.end() - s).min(dpage.end() - d).min(len - done);
        // SAFETY: both ranges are the test's memzones; nothing else touches them until the
        // copies are reported.
        unsafe { vchan.copy(s_iova, d_iova, n as u32, OpFlags::empty()) }.unwrap();
        ops += 1;
        done += n;
    }
    vchan.submit();
    ops
}

/// Waits until `n` operations are reported, all of them successful.
fn complete_all(vchan: &mut Vchan<'_>, mut n: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while n > 0 {
        let c = vchan.completed(n);
        assert!(!c.has_error, "a copy failed");
        n -= c.count;
        assert!(
            std::time::Instant::now() < deadline,
            "{n} copies never completed"
        );
    }
}

fn bytes_at(va: usize, len: usize) -> Vec<u8> {
    // SAFETY: the callers' memzones, `len` bytes long, with no copy in flight.
    unsafe { std::slice::from_raw_parts(va as *const u8, len) }.to_vec()
}

fn write_at(va: usize, bytes: &[u8]) {
    // SAFETY: as in `bytes_at`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), va as *mut u8, bytes.len()) }
}

#[test]
fn copies_between_hugepage_memzones() {
    if !dpmem_testkit::hugepages_available("copies between hugepage memzones", 32) {
        return;
    }
    let eal = Eal::init(["dma-test", "-l", "0", "--file-prefix", &prefix("huge")]).unwrap();
    eprintln!("IOVA mode: {}", eal.iova_mode().as_str());
    let dev = started(&eal, 256);
    let mut vchan = dev.vchan(0).unwrap();
    let len = 3 * PAGE_2M + 12345;
    let zones = eal.memzones();
    let src = zones.request("dma-huge-src", len).reserve().unwrap();
    let dst = zones.request("dma-huge-dst", len).reserve().unwrap();
    assert_eq!(src.page_size, PAGE_2M as u64);
    let data = random_bytes(len, 11);
    write_at(src.va, &data);
    let ops = copy_by_iova(&eal, &mut vchan, src.va, dst.va, len);
    complete_all(&mut vchan, ops);
    assert!(bytes_at(dst.va, len) == data, "the hugepage copy differs");

    // Over a page boundary where the IOVA jumps, the range goes where the IOVAs lead: into
    // whatever dpmem memory has the next IOVA, or nowhere (INVALID_LENGTH).
    let memory = eal.memory();
    let jump = (1..4)
        .map(|p| src.va - src.va % PAGE_2M + p * PAGE_2M)
        .filter(|&b| b < src.va + len)
        .find(|&b| {
            memory.virt_to_iova(b).map(|i| i.get())
                != memory.virt_to_iova(b - 1).map(|i| i.get() + 1)
        });
    match jump {
        None => eprintln!("the source memzone's pages are IOVA-contiguous: no jump to cross"),
        Some(boundary) => {
            let from = memory.virt_to_iova(boundary - 64).unwrap();
            let after = memory.iova_to_virt(Iova::new(from.get() + 64).unwrap());
            // SAFETY: the destination is the test's memzone; the source is only read.
            unsafe { vchan.copy(from, dst.iova.unwrap(), 128, OpFlags::SUBMIT) }.unwrap();
            let mut status = [Status::ErrorUnknown; 1];
            while vchan.completed_status(1, &mut status).unwrap().count == 0 {
                std::hint::spin_loop();
            }
            match after {
                None => {
                    eprintln!("past the page's IOVA: no dpmem memory; INVALID_LENGTH");
                    assert_eq!(status[0], Status::InvalidLength)
                }
                Some(va) => {
                    assert_eq!(status[0], Status::Successful);
                    assert_eq!(bytes_at(dst.va + 64, 64), bytes_at(va, 64));
                }
            }
        }
    }
    drop(vchan);
    dev.close().unwrap();

    // Memory freed back to the system is no longer reachable: the device sees the memory's
    // layout count move and builds its map again. (Dynamic memory: the memzone's pages go back when
    // nothing else lives on them.)
    let dev = started(&eal, 64);
    let mut vchan = dev.vchan(0).unwrap();
    let gone = zones
        .request("dma-huge-gone", 8 * PAGE_2M)
        .reserve()
        .unwrap();
    let gone_iova = gone.iova.unwrap();
    // SAFETY: the memzone is the test's; nothing uses it any more.
    unsafe { zones.free(&gone) }.unwrap();
    if memory.iova_to_virt(gone_iova).is_some() {
        eprintln!("the freed memzone's first page stayed mapped: nothing to check");
        return;
    }
    // SAFETY: the destination is not dpmem memory any more: the device must refuse it.
    unsafe { vchan.copy(src.iova.unwrap(), gone_iova, 64, OpFlags::SUBMIT) }.unwrap();
    let mut status = [Status::ErrorUnknown; 1];
    while vchan.completed_status(1, &mut status).unwrap().count == 0 {
        std::hint::spin_loop();
    }
    assert_eq!(status[0], Status::InvalidDstAddr);
}

#[test]
fn copies_and_fills_between_memzones_on_ordinary_pages() {
    let eal = no_huge_eal("nohuge");
    let dev = started(&eal, 128);
    let mut vchan = dev.vchan(0).unwrap();
    let zones = eal.memzones();
    let len = 1 << 20;
    let src = zones.request("dma-nohuge-src", len).reserve().unwrap();
    let dst = zones.request("dma-nohuge-dst", len).reserve().unwrap();
    // IOVA as VA: a memzone is contiguous in both.
    assert_eq!(src.iova.unwrap().get(), src.va as u64);
    let data = random_bytes(len, 21);
    write_at(src.va, &data);
    let (from, to) = (src.iova.unwrap(), dst.iova.unwrap());
    // SAFETY: the test's memzones, untouched until the operations are reported.
    unsafe { vchan.copy(from, to, len as u32, OpFlags::empty()) }.unwrap();
    // SAFETY: as above; fenced, so it runs after the copy has read the source.
    unsafe { vchan.fill(0x1111_1111_1111_1111, from, 4096, OpFlags::FENCE) }.unwrap();
    vchan.submit();
    complete_all(&mut vchan, 2);
    assert!(bytes_at(dst.va, len) == data);
    assert!(bytes_at(src.va, 4096).iter().all(|&b| b == 0x11));
    assert_eq!(bytes_at(src.va + 4096, 16), data[4096..4096 + 16]);
}

#[test]
fn external_memory_registered_later_is_reached_through_its_iovas_even_in_pieces() {
    const PAGE: usize = 4096;
    let eal = no_huge_eal("extmem");
    let dev = started(&eal, 64);
    let mut vchan = dev.vchan(0).unwrap();
    let zone = eal
        .memzones()
        .request("dma-ext-src", PAGE)
        .reserve()
        .unwrap();
    let data = random_bytes(PAGE, 31);
    write_at(zone.va, &data);

    // Three pages the user mapped, registered after the device started, with IOVAs that put
    // page 2 right after page 0 and page 1 elsewhere (no address the process uses).
    let user = UserMemory::anonymous(3 * PAGE, PAGE);
    let base = 0x9000_0000_0000u64;
    let iovas = [base, base + 0x10_0000, base + PAGE as u64].map(|i| Iova::new(i).unwrap());
    eal.memory()
        .extmem_register(user.addr, user.len, Some(&iovas), PAGE)
        .unwrap();

    // 200 bytes at IOVA base + 4000: 96 at the end of page 0, 104 at the start of page 2.
    let at = Iova::new(base + 4000).unwrap();
    // SAFETY: the user memory is the test's, untouched until the copy is reported.
    unsafe { vchan.copy(zone.iova.unwrap(), at, 200, OpFlags::SUBMIT) }.unwrap();
    complete_all(&mut vchan, 1);
    assert_eq!(user.read(4000, 96), data[..96]);
    assert_eq!(user.read(2 * PAGE, 104), data[96..200]);
    assert!(
        user.read(PAGE, PAGE).iter().all(|&b| b == 0),
        "page 1 was written"
    );

    // From page 1's IOVA past its end: nothing of dpmem's follows it.
    // SAFETY: refused by the device before anything is written.
    unsafe {
        vchan.copy(
            zone.iova.unwrap(),
            Iova::new(base + 0x10_0000 + 4000).unwrap(),
            200,
            OpFlags::SUBMIT,
        )
    }
    .unwrap();
    let mut status = [Status::ErrorUnknown; 1];
    while vchan.completed_status(1, &mut status).unwrap().count == 0 {
        std::hint::spin_loop();
    }
    assert_eq!(status[0], Status::InvalidLength);
    drop(vchan);
    dev.close().unwrap();
    eal.memory().extmem_unregister(user.addr, user.len).unwrap();
}

/// External memory unregistered and registered again with another IOVA, its old IOVA given
/// to other memory: an operation naming the old IOVA reaches the other memory, one naming the
/// new IOVA reaches it, though the device's map held the old one (no memory event tells of
/// external memory, as in DPDK; the layout count does).
#[test]
fn external_memory_registered_again_is_reached_through_its_new_iova_only() {
    let eal = no_huge_eal("extmem-again");
    let dev = started(&eal, 64);
    let mut vchan = dev.vchan(0).unwrap();
    let zone = eal
        .memzones()
        .request("dma-again-src", IovaMove::PAGE)
        .reserve()
        .unwrap();
    let data = random_bytes(IovaMove::PAGE, 41);
    write_at(zone.va, &data);
    let src = |offset: u64| Iova::new(zone.iova.unwrap().get() + offset).unwrap();
    let pages = IovaMove::register(&eal, 0x9200_0000_0000);
    let (x, y) = (&pages.x, &pages.y);
    // SAFETY: the user memory is the test's, untouched until the copy is reported.
    unsafe { vchan.copy(src(0), pages.first, 64, OpFlags::SUBMIT) }.unwrap();
    complete_all(&mut vchan, 1);
    assert_eq!(x.read(0, 64), data[..64]);

    pages.move_first_to_y(&eal);
    // SAFETY: as above.
    unsafe { vchan.copy(src(64), pages.first, 64, OpFlags::SUBMIT) }.unwrap();
    complete_all(&mut vchan, 1);
    assert_eq!(
        y.read(0, 64),
        data[64..128],
        "the old IOVA did not reach its new memory"
    );
    assert_eq!(
        x.read(0, 64),
        data[..64],
        "the old IOVA reached the memory it left"
    );
    // SAFETY: as above.
    unsafe { vchan.copy(src(128), pages.second, 64, OpFlags::SUBMIT) }.unwrap();
    complete_all(&mut vchan, 1);
    assert_eq!(x.read(0, 64), data[128..192]);
    drop(vchan);
    drop(dev);
    pages.unregister(&eal);
}
