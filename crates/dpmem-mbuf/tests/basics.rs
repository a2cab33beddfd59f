//! The first things a packet path does: allocate, fill, clone, chain, free; every buffer back.

use dpmem_mbuf::{ExternalBuffer, Mbuf, PktmbufPool, HEADROOM};

mod common;

#[test]
fn alloc_fill_clone_chain_and_free_returns_every_buffer() {
    let eal = common::no_huge_eal("basics");
    let pool = PktmbufPool::builder("basics", 511)
        .cache_size(32)
        .create(&eal)
        .unwrap();
    assert_eq!(pool.avail_count(), 511);
    let mut packet = pool.alloc().unwrap();
    assert_eq!(packet.headroom(), HEADROOM);
    packet.extend_from_slice(b"payload").unwrap();
    packet.prepend(4).unwrap().copy_from_slice(b"hdr:");
    assert_eq!(packet.to_vec(), b"hdr:payload");
    let clone = packet.clone_in(&pool).unwrap();
    assert_eq!(clone.to_vec(), b"hdr:payload");
    assert!(packet.append(1).is_err());
    assert_eq!(pool.in_use_count(), 2);
    drop(clone);
    packet.append(1).unwrap()[0] = b'!';
    let mut tail = pool.alloc().unwrap();
    tail.extend_from_slice(b"-tail").unwrap();
    packet.chain(tail).unwrap();
    assert_eq!(packet.nb_segs(), 2);
    assert_eq!(packet.to_vec(), b"hdr:payload!-tail");
    let copy = packet.copy_in(&pool, 4, 100).unwrap();
    assert_eq!(copy.to_vec(), b"payload!-tail");
    packet.linearize().unwrap();
    assert_eq!(packet.nb_segs(), 1);
    assert_eq!(packet.data(), b"hdr:payload!-tail");
    assert_eq!(packet.check(), Ok(()));
    drop((packet, copy));
    assert_eq!(pool.avail_count(), 511);
    pool.audit().unwrap();
    pool.free().unwrap();
}

#[test]
fn external_buffer_goes_back_once_after_every_packet() {
    let eal = common::no_huge_eal("ext");
    let pool = PktmbufPool::builder("ext", 63).create(&eal).unwrap();
    let given_back = std::sync::atomic::AtomicUsize::new(0);
    {
        let mut frame = vec![0u8; 4096];
        frame[100..105].copy_from_slice(b"hello");
        let ext = ExternalBuffer::from_raw_parts_owned_for_test(frame, &given_back);
        let a: Mbuf<'_> = ext.attach(&pool, 100, 5).unwrap();
        let b = ext.attach(&pool, 0, 1000).unwrap();
        assert_eq!(a.data(), b"hello");
        assert_eq!(ext.refs(), 3);
        drop(ext);
        assert_eq!(given_back.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(given_back.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(given_back.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
    assert_eq!(pool.avail_count(), 63);
}

trait OwnedForTest<'a> {
    fn from_raw_parts_owned_for_test(
        v: Vec<u8>,
        counter: &'a std::sync::atomic::AtomicUsize,
    ) -> ExternalBuffer<'a>;
}

impl<'a> OwnedForTest<'a> for ExternalBuffer<'a> {
    fn from_raw_parts_owned_for_test(
        mut v: Vec<u8>,
        counter: &'a std::sync::atomic::AtomicUsize,
    ) -> ExternalBuffer<'a> {
        let (addr, len) = (v.as_mut_ptr(), v.len());
        // SAFETY: the vector's heap bytes stay put until the closure drops it.
        unsafe {
            ExternalBuffer::from_raw_parts(addr, len, None, move || {
                drop(v);
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        }
    }
}

#[test]
fn packets_travel_between_lcores_through_a_handle_ring_without_unsafe() {
    use dpmem_ring::{HandleRing, RingFlags};
    let eal = common::no_huge_eal("ring");
    let pool = PktmbufPool::builder("ring", 1023)
        .cache_size(64)
        .create(&eal)
        .unwrap();
    let ring: HandleRing<Mbuf<'_>> =
        HandleRing::new("packets", 256, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
    let worker = eal.lcore_threads().worker_ids().next().expect("-l 0-1");
    eal.lcore_threads()
        .scope(|s| {
            let sender = s.launch(worker, || {
                let mut tx = ring.producer().unwrap();
                for i in 0..200u8 {
                    let mut packet = pool.alloc().unwrap();
                    packet.extend_from_slice(&[i; 60]).unwrap();
                    while let Err(back) = tx.enqueue(packet) {
                        packet = back;
                        std::hint::spin_loop();
                    }
                }
            })?;
            let mut rx = ring.consumer().unwrap();
            let mut next = 0u8;
            while next < 200 {
                if let Some(packet) = rx.dequeue() {
                    assert_eq!(packet.data(), &[next; 60]);
                    next += 1;
                }
            }
            sender.join()?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .unwrap();
    assert_eq!(pool.avail_count(), 1023);
    // A packet left in the ring is freed with it.
    let mut tx = ring.producer().unwrap();
    assert!(tx.enqueue(pool.alloc().unwrap()).is_ok());
    drop(tx);
    drop(ring);
    assert_eq!(pool.avail_count(), 1023);
}

#[test]
fn an_owned_array_lent_to_packets_stays_in_place() {
    let eal = common::no_huge_eal("owned");
    let pool = PktmbufPool::builder("owned", 63).create(&eal).unwrap();
    let mut bytes = [0u8; 512];
    bytes[..5].copy_from_slice(b"frame");
    // An array is its bytes: lending it must not leave packets pointing at where it was.
    let ext = ExternalBuffer::from_owner(bytes);
    let packet = ext.attach(&pool, 0, 5).unwrap();
    drop(ext);
    // The array was moved into the handle: its bytes must be on the heap, not in a stack
    // frame that is gone (within a few MiB of this frame's locals).
    let here = core::ptr::from_ref(&pool) as usize;
    let data = packet.data().as_ptr() as usize;
    assert!(
        data.abs_diff(here) > 8 << 20,
        "packet data {data:#x} is on the stack near {here:#x}"
    );
    assert_eq!(packet.data(), b"frame");
    drop(packet);
    assert_eq!(pool.avail_count(), 63);
}
