//! Helpers shared by the copy engine's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dpmem_dma::{DmaConf, DmaDevice, VchanConf, VchanStatus};
use dpmem_eal::{Eal, Iova};
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

/// Two pages of user memory, `x` registered at IOVA `first` and `y` not registered, until
/// [`IovaMove::move_first_to_y`] gives `x` the IOVA `second` and `first` to `y`: an application
/// that registers its buffers again, its old IOVA soon another buffer's.
pub struct IovaMove {
    pub x: UserMemory,
    pub y: UserMemory,
    pub first: Iova,
    pub second: Iova,
}

impl IovaMove {
    pub const PAGE: usize = 4096;

    /// `x` registered at `first`; `second` is `first` + 16 TiB, an address no process uses.
    pub fn register(eal: &Eal, first: u64) -> IovaMove {
        let moved = IovaMove {
            x: UserMemory::anonymous(Self::PAGE, Self::PAGE),
            y: UserMemory::anonymous(Self::PAGE, Self::PAGE),
            first: Iova::new(first).unwrap(),
            second: Iova::new(first + (1 << 44)).unwrap(),
        };
        moved.register_page(eal, moved.x.addr, moved.first);
        moved
    }

    pub fn move_first_to_y(&self, eal: &Eal) {
        eal.memory()
            .extmem_unregister(self.x.addr, Self::PAGE)
            .unwrap();
        self.register_page(eal, self.x.addr, self.second);
        self.register_page(eal, self.y.addr, self.first);
    }

    /// Forgets both pages (after the move).
    pub fn unregister(self, eal: &Eal) {
        for page in [&self.x, &self.y] {
            eal.memory()
                .extmem_unregister(page.addr, Self::PAGE)
                .unwrap();
        }
    }

    fn register_page(&self, eal: &Eal, addr: usize, iova: Iova) {
        eal.memory()
            .extmem_register(addr, Self::PAGE, Some(&[iova]), Self::PAGE)
            .unwrap();
    }
}
