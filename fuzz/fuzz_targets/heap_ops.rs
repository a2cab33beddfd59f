//! Heap and memzone operation sequences on a `--no-huge` EAL of 16 MiB: whatever the order and
//! the arguments, every call gives a block or an error, [`Heaps::check`] holds after every step,
//! a pointer that was freed (and not handed out again) is refused on a second free, a pointer
//! into the middle of a block is refused, no call changes the bytes of a block it was not given,
//! and once everything is freed the heap is as it was before the input.
//!
//! Input: a sequence of operations, each an opcode byte and its arguments (sizes, alignments,
//! sockets, slots), read until the input runs out; missing bytes read as 0.

#![no_main]

use std::ptr::NonNull;
use std::sync::OnceLock;

use dpmem_eal::heap::Heaps;
use dpmem_eal::{Eal, HeapStats, Memzone, MemzoneFlags, Socket};
use libfuzzer_sys::fuzz_target;

#[path = "../common/input_reader.rs"]
mod input_reader;
use input_reader::Reader;

/// The heap's alignment when a call passes 0.
const CACHE_LINE: usize = 64;
/// Live blocks and memzones kept at once; further allocations are skipped.
const MAX_LIVE: usize = 48;
/// Freed pointers remembered for double frees.
const MAX_FREED: usize = 48;
/// Operations per input.
const MAX_OPS: usize = 200;

/// One EAL for the whole run: the heap goes back to where it started after every input (which
/// the target checks), so inputs do not see each other, and starting an EAL per input would
/// spend the time on start-up.
fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        let prefix = format!("fuzzheap{}", std::process::id());
        Eal::init([
            "fuzz",
            "--no-huge",
            "-m",
            "16",
            "-l",
            "0",
            "--file-prefix",
            &prefix,
        ])
        .expect("a --no-huge EAL starts")
    })
}

/// The heap's own readings of the input: sizes, alignments and sockets as a user might pass.
impl Reader<'_> {
    /// A size: mostly small, sometimes large (up to 16 MiB, the whole heap), sometimes absurd.
    fn size(&mut self) -> usize {
        let kind = self.u8();
        match kind >> 5 {
            0..=2 => self.u8() as usize,
            3 | 4 => self.u16() as usize,
            5 => (self.u16() as usize) << (kind & 7),
            6 => (self.u32() as usize) & ((32 << 20) - 1),
            _ => match kind & 7 {
                0 => 0,
                1 => 1,
                2 => usize::MAX,
                3 => isize::MAX as usize,
                4 => 1 << 40,
                5 => (16 << 20) - 64,
                6 => 2 << 20,
                _ => self.u32() as usize,
            },
        }
    }

    /// An alignment: 0 (the default), a power of two up to 4 MiB, or any byte (mostly not a
    /// power of two).
    fn align(&mut self) -> usize {
        let kind = self.u8();
        match kind & 3 {
            0 => 0,
            1 | 2 => 1 << (kind >> 2).min(22),
            _ => self.u8() as usize,
        }
    }

    fn socket(&mut self) -> Socket {
        match self.u8() % 8 {
            0..=3 => Socket::Any,
            4 | 5 => Socket::Node(0),
            6 => Socket::Node(1),
            _ => Socket::External(0),
        }
    }

    fn index(&mut self, len: usize) -> Option<usize> {
        let b = self.u8() as usize;
        (len > 0).then(|| b % len)
    }
}

/// A block the input owns, filled with `fill` over its first `size` bytes.
#[derive(Debug, Clone, Copy)]
struct Block {
    ptr: usize,
    size: usize,
    fill: u8,
}

/// A memzone the input owns, filled with `fill`.
#[derive(Debug)]
struct Zone {
    zone: Memzone,
    fill: u8,
}

fn bytes(ptr: usize, len: usize) -> &'static mut [u8] {
    // SAFETY: callers pass blocks and memzones the input owns (live, `len` bytes or fewer from
    // their start) and drop the slice before the block is freed.
    unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) }
}

fn nonnull(ptr: usize) -> NonNull<u8> {
    NonNull::new(ptr as *mut u8).expect("a non-null pointer")
}

/// The first and last byte (all bytes when `whole`) still hold `fill`.
fn check_fill(what: &str, ptr: usize, size: usize, fill: u8, whole: bool) {
    if size == 0 {
        return;
    }
    let data = bytes(ptr, size);
    if whole {
        // A fold without a comparison per byte: coverage instrumentation traces every compare,
        // which made this loop most of the target's time.
        let differs = data.iter().fold(0u8, |acc, b| acc | (b ^ fill));
        if differs == 0 {
            return;
        }
        if let Some(at) = data.iter().position(|b| *b != fill) {
            panic!(
                "{what} {ptr:#x} ({size} bytes): byte {at} is {:#x}, not {fill:#x}",
                data[at]
            );
        }
    } else {
        assert!(
            data[0] == fill && data[size - 1] == fill,
            "{what} {ptr:#x} ({size} bytes) changed at its ends"
        );
    }
}

struct State {
    heaps: Heaps<'static>,
    blocks: Vec<Block>,
    freed: Vec<usize>,
    zones: Vec<Zone>,
    freed_zones: Vec<Memzone>,
    next_fill: u8,
}

impl State {
    fn fill(&mut self) -> u8 {
        // Never 0, so a block that should keep its bytes never looks cleared.
        self.next_fill = self.next_fill % 254 + 1;
        self.next_fill
    }

    /// `ptr` was just handed out: it is no longer a freed pointer.
    fn handed_out(&mut self, ptr: usize) {
        self.freed.retain(|p| *p != ptr);
    }

    fn remember_freed(&mut self, ptr: usize) {
        if self.freed.len() == MAX_FREED {
            self.freed.remove(0);
        }
        self.freed.push(ptr);
    }

    /// A block just allocated with `size` and `align` (0: a cache line): aligned, as large as
    /// asked, zeroed when asked; then filled and kept.
    fn take(&mut self, what: &str, ptr: NonNull<u8>, size: usize, align: usize, zeroed: bool) {
        let ptr = ptr.as_ptr() as usize;
        let align = if align == 0 { CACHE_LINE } else { align };
        assert_eq!(ptr % align, 0, "{what} {ptr:#x} not aligned to {align}");
        // SAFETY: a block just handed out to this thread, the only one using the heap.
        let usable = unsafe { self.heaps.validate(ptr as *const u8) }
            .unwrap_or_else(|e| panic!("{what} {ptr:#x}: validate refused a live block: {e}"));
        assert!(usable >= size, "{what} {ptr:#x}: {usable} usable < {size}");
        if zeroed {
            check_fill(what, ptr, size, 0, true);
        }
        self.handed_out(ptr);
        let fill = self.fill();
        bytes(ptr, size).fill(fill);
        self.blocks.push(Block { ptr, size, fill });
    }

    fn alloc(&mut self, r: &mut Reader<'_>, zeroed: bool, calloc: bool) {
        let (size, align, socket) = if calloc {
            let count = r.u8() as usize;
            let each = r.size();
            let align = r.align();
            let socket = r.socket();
            if self.blocks.len() >= MAX_LIVE {
                return;
            }
            match self.heaps.calloc_socket(count, each, align, socket) {
                Ok(ptr) => self.take("calloc", ptr, count * each, align, true),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            return;
        } else {
            (r.size(), r.align(), r.socket())
        };
        if self.blocks.len() >= MAX_LIVE {
            return;
        }
        let got = if zeroed {
            self.heaps.zmalloc_socket(size, align, socket)
        } else {
            self.heaps.malloc_socket(size, align, socket)
        };
        match got {
            Ok(ptr) => self.take("malloc", ptr, size, align, zeroed),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    fn free(&mut self, r: &mut Reader<'_>) {
        let Some(i) = r.index(self.blocks.len()) else {
            return;
        };
        let block = self.blocks.swap_remove(i);
        check_fill("block", block.ptr, block.size, block.fill, true);
        // SAFETY: the block is the input's and nothing refers to it any more.
        unsafe { self.heaps.free(nonnull(block.ptr)) }
            .unwrap_or_else(|e| panic!("free of live block {block:?} refused: {e}"));
        self.check("free");
        // At once, the same pointer again: refused.
        // SAFETY: refused, or the test fails; the block is not used either way.
        let again = unsafe { self.heaps.free(nonnull(block.ptr)) };
        assert!(again.is_err(), "second free of {:#x} accepted", block.ptr);
        self.remember_freed(block.ptr);
    }

    /// A pointer freed earlier, and not handed out since: refused by free, realloc and validate.
    fn free_again(&mut self, r: &mut Reader<'_>, how: u8) {
        let Some(i) = r.index(self.freed.len()) else {
            return;
        };
        let ptr = self.freed[i];
        let refused = match how % 3 {
            // SAFETY: refused, or the test fails.
            0 => unsafe { self.heaps.free(nonnull(ptr)) }.is_err(),
            // SAFETY: refused, or the test fails.
            1 => unsafe { self.heaps.realloc(Some(nonnull(ptr)), 128, 0) }.is_err(),
            // SAFETY: one thread uses the heap: nothing writes the line before `ptr` meanwhile.
            _ => unsafe { self.heaps.validate(ptr as *const u8) }.is_err(),
        };
        assert!(refused, "freed pointer {ptr:#x} accepted (way {})", how % 3);
    }

    /// A pointer into the middle of a live block: refused, the block untouched.
    fn free_inside(&mut self, r: &mut Reader<'_>) {
        let Some(i) = r.index(self.blocks.len()) else {
            return;
        };
        let block = self.blocks[i];
        let offset = r.u16() as usize;
        if block.size < 2 {
            return;
        }
        let inside = block.ptr + 1 + offset % (block.size - 1);
        // SAFETY: refused, or the test fails.
        let freed = unsafe { self.heaps.free(nonnull(inside)) };
        assert!(
            freed.is_err(),
            "free of {inside:#x}, inside {block:?}, accepted"
        );
        // SAFETY: the block is this thread's own, and nothing else uses the heap.
        assert!(unsafe { self.heaps.validate(inside as *const u8) }.is_err());
        check_fill("block", block.ptr, block.size, block.fill, true);
    }

    fn realloc(&mut self, r: &mut Reader<'_>) {
        let Some(i) = r.index(self.blocks.len()) else {
            return;
        };
        let size = r.size();
        let align = r.align();
        let socket = r.socket();
        let old = self.blocks[i];
        // SAFETY: the block is the input's; on success the old pointer is not used again.
        match unsafe {
            self.heaps
                .realloc_socket(Some(nonnull(old.ptr)), size, align, socket)
        } {
            Ok(new) => {
                let new = new.as_ptr() as usize;
                let kept = old.size.min(size);
                check_fill("realloc'd block", new, kept, old.fill, true);
                let align = if align == 0 { CACHE_LINE } else { align };
                assert_eq!(new % align, 0, "realloc {new:#x} not aligned to {align}");
                // SAFETY: the block realloc just gave this thread, the only one using the heap.
                let usable = unsafe { self.heaps.validate(new as *const u8) }.unwrap_or_else(|e| {
                    panic!("realloc {new:#x}: validate refused a live block: {e}")
                });
                assert!(usable >= size, "realloc {new:#x}: {usable} usable < {size}");
                if new != old.ptr {
                    // SAFETY: refused, or the test fails: the block moved.
                    let again = unsafe { self.heaps.free(nonnull(old.ptr)) };
                    assert!(
                        again.is_err(),
                        "free of {:#x} accepted after realloc moved it",
                        old.ptr
                    );
                    self.remember_freed(old.ptr);
                }
                self.handed_out(new);
                bytes(new, size).fill(old.fill);
                self.blocks[i] = Block {
                    ptr: new,
                    size,
                    fill: old.fill,
                };
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                check_fill(
                    "block after a refused realloc",
                    old.ptr,
                    old.size,
                    old.fill,
                    true,
                );
            }
        }
    }

    fn reserve(&mut self, r: &mut Reader<'_>) {
        let name = format!("mz{}", r.u8() % 6);
        let len = match r.u8() % 4 {
            0 => 0,
            _ => r.size(),
        };
        let align = r.align();
        let bound = match r.u8() % 4 {
            0 => 1 << (r.u8() % 24),
            1 => r.u16() as usize,
            _ => 0,
        };
        let flags = match r.u8() % 6 {
            0 => MemzoneFlags::PAGE_2MB,
            1 => MemzoneFlags::PAGE_2MB | MemzoneFlags::SIZE_HINT_ONLY,
            2 => MemzoneFlags::IOVA_CONTIG,
            3 => MemzoneFlags::from_bits_retain(r.u32()),
            _ => MemzoneFlags::empty(),
        };
        let socket = r.socket();
        if self.zones.len() >= MAX_LIVE {
            return;
        }
        let live_name = self.zones.iter().any(|z| z.zone.name == name);
        let got = eal()
            .memzones()
            .request(&name, len)
            .socket(socket)
            .align(align)
            .bound(bound)
            .flags(flags)
            .reserve();
        match got {
            Ok(zone) => {
                assert!(!live_name, "memzone {name} reserved twice");
                let align = if align == 0 {
                    CACHE_LINE
                } else {
                    align.max(CACHE_LINE)
                };
                assert_eq!(zone.va % align, 0, "{zone:?} not aligned to {align}");
                if let (Some(first), Some(last)) = (
                    zone.va.checked_div(bound),
                    (zone.va + zone.len.max(1) - 1).checked_div(bound),
                ) {
                    assert_eq!(first, last, "{zone:?} crosses a {bound}-byte boundary");
                }
                assert!(zone.len >= len, "{zone:?} shorter than {len}");
                self.handed_out(zone.va);
                self.freed_zones
                    .retain(|z| z.name != zone.name && z.va != zone.va);
                let fill = self.fill();
                bytes(zone.va, zone.len).fill(fill);
                self.zones.push(Zone { zone, fill });
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    fn unreserve(&mut self, r: &mut Reader<'_>) {
        let Some(i) = r.index(self.zones.len()) else {
            return;
        };
        let Zone { zone, fill } = self.zones.swap_remove(i);
        check_fill("memzone", zone.va, zone.len, fill, true);
        // SAFETY: the memzone is the input's and nothing refers to it any more.
        unsafe { eal().memzones().free(&zone) }
            .unwrap_or_else(|e| panic!("free of live memzone {zone:?} refused: {e}"));
        self.check("memzone free");
        // SAFETY: refused, or the test fails.
        let again = unsafe { eal().memzones().free(&zone) };
        assert!(again.is_err(), "second free of memzone {zone:?} accepted");
        assert!(eal().memzones().lookup(&zone.name).is_none());
        self.remember_freed(zone.va);
        self.freed_zones.push(zone);
        if self.freed_zones.len() > MAX_FREED {
            self.freed_zones.remove(0);
        }
    }

    /// A memzone freed earlier: refused, unless a live one now has its name and address (which
    /// is then the same memzone as far as the table can tell).
    fn unreserve_again(&mut self, r: &mut Reader<'_>) {
        let Some(i) = r.index(self.freed_zones.len()) else {
            return;
        };
        let stale = &self.freed_zones[i];
        if self.zones.iter().any(|z| z.zone.name == stale.name) {
            return;
        }
        // SAFETY: refused, or the test fails.
        let again = unsafe { eal().memzones().free(stale) };
        assert!(again.is_err(), "freed memzone {stale:?} accepted again");
    }

    fn lookup(&mut self, r: &mut Reader<'_>) {
        let name = format!("mz{}", r.u8() % 6);
        let found = eal().memzones().lookup(&name);
        let ours = self.zones.iter().find(|z| z.zone.name == name);
        match (found, ours) {
            (None, None) => {}
            (Some(found), Some(ours)) => {
                assert_eq!((found.va, found.len), (ours.zone.va, ours.zone.len))
            }
            (found, ours) => panic!("lookup {name}: table {found:?}, ours {ours:?}"),
        }
    }

    fn check(&self, after: &str) {
        if let Err(e) = self.heaps.check() {
            panic!("heap check after {after}: {e}\n{}", self.heaps.dump());
        }
        for b in &self.blocks {
            check_fill("block", b.ptr, b.size, b.fill, false);
        }
        for z in &self.zones {
            check_fill("memzone", z.zone.va, z.zone.len, z.fill, false);
        }
    }

    /// Frees everything the input still holds, checking every byte first.
    fn release_all(&mut self) {
        for block in std::mem::take(&mut self.blocks) {
            check_fill("block", block.ptr, block.size, block.fill, true);
            // SAFETY: the block is the input's, used no more.
            unsafe { self.heaps.free(nonnull(block.ptr)) }
                .unwrap_or_else(|e| panic!("free of live block {block:?} refused: {e}"));
        }
        for Zone { zone, fill } in std::mem::take(&mut self.zones) {
            check_fill("memzone", zone.va, zone.len, fill, true);
            // SAFETY: the memzone is the input's, used no more.
            unsafe { eal().memzones().free(&zone) }
                .unwrap_or_else(|e| panic!("free of live memzone {zone:?} refused: {e}"));
        }
        self.check("releasing everything");
    }
}

/// What must be the same before and after an input: everything but the fallback count.
fn shape(stats: &[HeapStats]) -> Vec<(String, u64, u64, u64, u64, u64)> {
    stats
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.total_bytes,
                s.free_bytes,
                s.greatest_free_bytes,
                s.free_count,
                s.alloc_count,
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let eal = eal();
    let heaps = eal.heaps();
    let before = shape(&heaps.all_stats());
    let zones_before = eal.memzones().count();
    let mut state = State {
        heaps,
        blocks: Vec::new(),
        freed: Vec::new(),
        zones: Vec::new(),
        freed_zones: Vec::new(),
        next_fill: 0,
    };
    let mut r = Reader::new(data);
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        let op = r.u8();
        match op % 16 {
            0..=2 => state.alloc(&mut r, false, false),
            3 => state.alloc(&mut r, true, false),
            4 => state.alloc(&mut r, true, true),
            5..=7 => state.free(&mut r),
            8 => state.realloc(&mut r),
            9 => state.free_again(&mut r, op >> 4),
            10 => state.free_inside(&mut r),
            11 => state.reserve(&mut r),
            12 => state.unreserve(&mut r),
            13 => state.unreserve_again(&mut r),
            14 => state.lookup(&mut r),
            _ => {
                // Statistics merge the parked small blocks: a different heap for what follows.
                let _ = state.heaps.all_stats();
            }
        }
        state.check(&format!("op {}", op % 16));
    }
    state.release_all();
    assert_eq!(eal.memzones().count(), zones_before, "memzones left");
    let after = shape(&heaps.all_stats());
    assert_eq!(after, before, "the heap is not as it was before the input");
});
