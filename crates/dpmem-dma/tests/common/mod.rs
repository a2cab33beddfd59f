//! Helpers shared by the copy engine's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dpmem_dma::{DmaConf, DmaDevice, VchanConf, VchanStatus};
use dpmem_eal::Eal;
use dpmem_sys::mapping;

/// A prefix no other test or run uses.
pub fn prefix(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "dma{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An EAL on ordinary pages (any user, any machine), main lcore 0, so control threads run
/// on the other CPUs when there are any.
pub fn no_huge_eal(tag: &str) -> Eal {
    Eal::init([
        "dma-test",
        "--no-huge",
        "-m",
        "128",
        "-l",
        "0",
        "--file-prefix",
        &prefix(tag),
    ])
    .unwrap()
}

/// A started device with one memory-to-memory channel of `nb_desc` descriptors.
pub fn started(eal: &Eal, nb_desc: u16) -> DmaDevice<'_> {
    let mut dev = DmaDevice::create(eal, "dma_test").unwrap();
    dev.configure(DmaConf::new(1)).unwrap();
    dev.vchan_setup(0, VchanConf::mem_to_mem(nb_desc)).unwrap();
    dev.start().unwrap();
    dev
}

/// Waits (at most a second, as DPDK's test does) until the channel has nothing submitted
/// left to do.
pub fn await_idle(dev: &DmaDevice<'_>, vchan: u16) {
    let end = Instant::now() + Duration::from_secs(1);
    while dev.vchan_status(vchan).unwrap() == VchanStatus::Active && Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// Pseudo-random bytes (xorshift), different per `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Memory the test maps itself, as a user bringing their own buffers would.
pub struct UserMemory {
    pub addr: usize,
    pub len: usize,
}

impl UserMemory {
    /// Anonymous read-write memory of `len` bytes aligned to `align`.
    pub fn anonymous(len: usize, align: usize) -> Self {
        let addr = mapping::reserve(len, align, None).unwrap();
        // SAFETY: the reservation made just above, of `len` bytes, holds nothing yet.
        unsafe { mapping::map_anonymous_fixed(addr, len, None, false) }.unwrap();
        Self { addr, len }
    }

    pub fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len);
        (self.addr + offset) as *mut u8
    }

    /// `len` bytes at `offset`.
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        // SAFETY: inside the mapping, which lives as long as `self`; no copy is in flight
        // when the tests read.
        unsafe { std::slice::from_raw_parts(self.at(offset), len) }.to_vec()
    }

    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(offset), bytes.len()) }
    }
}

impl Drop for UserMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's; the tests drop it after dpmem forgot it.
        unsafe { mapping::release(self.addr, self.len) }.unwrap();
    }
}
