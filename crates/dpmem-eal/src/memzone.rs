//! Memzones: named, contiguous blocks of hugepage memory that every process finds by name
//! (DPDK's `rte_memzone`).
//!
//! A memzone is a heap block recorded in a fixed table in the shared configuration, so a
//! secondary process looks it up by name and reads the same bytes at the same address. The
//! table's size is set at start-up (DPDK's `RTE_MAX_MEMZONE`, 2560 by default); freed slots are
//! reused, lowest first.
//!
//! Names are found through a hash index kept inside the slots themselves, so it lives in the
//! same shared memory as the table and a secondary's lookup uses it as the primary's does:
//! slot `b` heads the chain of memzones whose name hashes to bucket `b` (one bucket per slot),
//! and every memzone's slot links to the next one of its chain. DPDK searches the table
//! linearly, comparing names, for every reserve and lookup; here both cost one hash and a
//! chain of about one slot, whatever the number of memzones.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde::Serialize;

use crate::error::EalError;
use crate::heap::elem::CACHE_LINE;
use crate::heap::malloc_heap::AllocRequest;
use crate::heap::{Heaps, EXTERNAL_SOCKET_BASE, MAX_HEAPS};
use crate::memory::{Memory, MemoryMode};
use crate::memseg::{BAD_IOVA, SOCKET_ID_ANY};
use crate::shared_config::{decode_str, encode_str};

/// Bytes of a memzone name, terminating zero included (DPDK's `RTE_MEMZONE_NAMESIZE`).
pub const MEMZONE_NAME_LEN: usize = 32;
/// Memzones the table holds unless configured otherwise (DPDK's `RTE_MAX_MEMZONE`).
pub const DEFAULT_MAX_MEMZONES: u32 = 2560;

/// Reservation flags, with DPDK's values.
pub mod flags {
    pub const PAGE_2MB: u32 = 0x0000_0001;
    pub const PAGE_1GB: u32 = 0x0000_0002;
    /// The page-size flags are a preference: fall back to any page size.
    pub const SIZE_HINT_ONLY: u32 = 0x0000_0004;
    pub const PAGE_16MB: u32 = 0x0000_0100;
    pub const PAGE_16GB: u32 = 0x0000_0200;
    pub const PAGE_256KB: u32 = 0x0001_0000;
    pub const PAGE_256MB: u32 = 0x0002_0000;
    pub const PAGE_512MB: u32 = 0x0004_0000;
    pub const PAGE_4GB: u32 = 0x0008_0000;
    /// The memzone must be contiguous in IOVA space too.
    pub const IOVA_CONTIG: u32 = 0x0010_0000;

    pub const PAGE_SIZE_MASK: u32 = PAGE_2MB
        | PAGE_1GB
        | PAGE_16MB
        | PAGE_16GB
        | PAGE_256KB
        | PAGE_256MB
        | PAGE_512MB
        | PAGE_4GB;
    pub const ALL: u32 = PAGE_SIZE_MASK | SIZE_HINT_ONLY | IOVA_CONTIG;
}

/// One slot of the shared table. All-zero bytes are an unused slot heading an empty chain.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemzoneSlot {
    /// The memzone's name, zero-padded; empty (first byte 0) while the slot is unused — names
    /// are never empty.
    pub name: [u8; MEMZONE_NAME_LEN],
    pub va: u64,
    pub iova: u64,
    pub len: u64,
    pub page_size: u64,
    pub socket_id: i32,
    pub flags: u32,
    /// 1 + the slot of the first memzone whose name hashes to bucket *this slot's index*; 0:
    /// none. Belongs to the bucket, not to the memzone in the slot: it survives the slot's reuse.
    pub bucket_head: u32,
    /// 1 + the slot of the next memzone in this memzone's chain; 0: the chain ends.
    pub chain_next: u32,
}

impl MemzoneSlot {
    const EMPTY: MemzoneSlot = MemzoneSlot {
        name: [0; MEMZONE_NAME_LEN],
        va: 0,
        iova: 0,
        len: 0,
        page_size: 0,
        socket_id: 0,
        flags: 0,
        bucket_head: 0,
        chain_next: 0,
    };

    fn in_use(&self) -> bool {
        self.name[0] != 0
    }
}

/// The table's header in the shared configuration; the slots follow elsewhere in the mapping.
#[repr(C)]
#[derive(Debug)]
pub struct MemzoneTable {
    pub count: u32,
    pub capacity: u32,
    /// Offset of `[MemzoneSlot; capacity]` in the configuration mapping.
    pub slots_offset: u64,
    /// No slot below this index is free, so the search for the lowest free slot starts here
    /// (0, the value of a fresh table, is always true).
    pub free_hint: u32,
    pub reserved: u32,
}

pub(crate) const SLOT_SIZE: usize = std::mem::size_of::<MemzoneSlot>();

/// The bucket of `name` (its encoded, zero-padded bytes) in a table of `capacity` slots:
/// FNV-1a over the name's bytes.
fn bucket_of(name: &[u8; MEMZONE_NAME_LEN], capacity: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in name.iter().take_while(|&&b| b != 0) {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    hash % capacity
}

/// A memzone as a process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memzone {
    pub name: String,
    /// Start of the memory (the same in every process).
    pub va: u64,
    /// Device address of the start ([`BAD_IOVA`] if unknown).
    pub iova: u64,
    pub len: u64,
    /// Page size of the memory under the memzone.
    pub page_size: u64,
    pub socket_id: i32,
    /// The flags it was reserved with.
    pub flags: u32,
}

impl Memzone {
    pub fn as_ptr(&self) -> *mut u8 {
        self.va as *mut u8
    }

    fn from_slot(slot: &MemzoneSlot) -> Self {
        Self {
            name: decode_str(&slot.name),
            va: slot.va,
            iova: slot.iova,
            len: slot.len,
            page_size: slot.page_size,
            socket_id: slot.socket_id,
            flags: slot.flags,
        }
    }
}

/// The memzones of one EAL instance.
#[derive(Debug, Clone, Copy)]
pub struct Memzones<'a> {
    memory: &'a Memory,
}

fn invalid(msg: String) -> EalError {
    EalError::InvalidArgument(msg)
}

impl<'a> Memzones<'a> {
    pub(crate) fn new(memory: &'a Memory) -> Self {
        Self { memory }
    }

    fn slot_ptr(&self, table: &MemzoneTable, idx: u32) -> *mut MemzoneSlot {
        assert!(idx < table.capacity);
        (self.memory.config_mapping().addr()
            + table.slots_offset as usize
            + idx as usize * SLOT_SIZE) as *mut MemzoneSlot
    }

    fn read_slot(&self, table: &MemzoneTable, idx: u32) -> MemzoneSlot {
        // SAFETY: idx < capacity, so the slot lies in the array the primary laid out inside the
        // mapping; the caller holds the table lock, which serialises writers.
        unsafe { self.slot_ptr(table, idx).read() }
    }

    fn write_slot(&self, table: &MemzoneTable, idx: u32, slot: MemzoneSlot) {
        // SAFETY: as in `read_slot`; the table lock makes this the only writer.
        unsafe { self.slot_ptr(table, idx).write(slot) }
    }

    fn update_slot(&self, table: &MemzoneTable, idx: u32, f: impl FnOnce(&mut MemzoneSlot)) {
        let mut slot = self.read_slot(table, idx);
        f(&mut slot);
        self.write_slot(table, idx, slot);
    }

    /// The slot holding the memzone called `name` (encoded), through its bucket's chain.
    fn find(&self, table: &MemzoneTable, name: &[u8; MEMZONE_NAME_LEN]) -> Option<u32> {
        if table.capacity == 0 {
            return None;
        }
        let bucket = bucket_of(name, table.capacity);
        let mut link = self.read_slot(table, bucket).bucket_head;
        while let Some(idx) = link.checked_sub(1) {
            let slot = self.read_slot(table, idx);
            if slot.name == *name {
                return Some(idx);
            }
            link = slot.chain_next;
        }
        None
    }

    /// The lowest free slot (the caller checked that the table is not full).
    fn lowest_free(&self, table: &MemzoneTable) -> u32 {
        (table.free_hint..table.capacity)
            .find(|&idx| !self.read_slot(table, idx).in_use())
            .expect("count < capacity leaves a free slot at or after the hint")
    }

    /// Records `slot` (in use) at the lowest free slot `idx` and puts it at the head of its bucket's chain.
    fn insert(&self, table: &mut MemzoneTable, idx: u32, slot: MemzoneSlot) {
        let bucket = bucket_of(&slot.name, table.capacity);
        let head = self.read_slot(table, bucket).bucket_head;
        // The slot's own bucket head is not the memzone's to change.
        let own_head = self.read_slot(table, idx).bucket_head;
        self.write_slot(
            table,
            idx,
            MemzoneSlot {
                bucket_head: own_head,
                chain_next: head,
                ..slot
            },
        );
        self.update_slot(table, bucket, |b| b.bucket_head = idx + 1);
        table.count += 1;
        // `idx` was the lowest free slot: every slot up to it is in use now.
        table.free_hint = idx + 1;
    }

    /// Takes the memzone in slot `idx` out of its chain and clears the slot, keeping the bucket
    /// head it holds for its own bucket.
    fn remove(&self, table: &mut MemzoneTable, idx: u32) {
        let slot = self.read_slot(table, idx);
        let bucket = bucket_of(&slot.name, table.capacity);
        let head = self.read_slot(table, bucket).bucket_head;
        if head == idx + 1 {
            self.update_slot(table, bucket, |b| b.bucket_head = slot.chain_next);
        } else {
            let mut prev = head
                .checked_sub(1)
                .expect("a memzone in use is on its bucket's chain");
            loop {
                let p = self.read_slot(table, prev);
                if p.chain_next == idx + 1 {
                    self.update_slot(table, prev, |p| p.chain_next = slot.chain_next);
                    break;
                }
                prev = p
                    .chain_next
                    .checked_sub(1)
                    .expect("a memzone in use is on its bucket's chain");
            }
        }
        // Read again: the slot may be its own bucket's head, updated just above.
        let bucket_head = self.read_slot(table, idx).bucket_head;
        self.write_slot(
            table,
            idx,
            MemzoneSlot {
                bucket_head,
                ..MemzoneSlot::EMPTY
            },
        );
        table.count -= 1;
        table.free_hint = table.free_hint.min(idx);
    }

    /// Reserves `len` bytes (0: the biggest free block) on `socket` (a socket, an external
    /// heap's socket id, or `SOCKET_ID_ANY`) with cache-line alignment.
    pub fn reserve(
        &self,
        name: &str,
        len: usize,
        socket: i32,
        flags: u32,
    ) -> Result<Memzone, EalError> {
        self.reserve_bounded(name, len, socket, flags, CACHE_LINE, 0)
    }

    /// Reserves with `align` (a power of two; raised to a cache line).
    pub fn reserve_aligned(
        &self,
        name: &str,
        len: usize,
        socket: i32,
        flags: u32,
        align: usize,
    ) -> Result<Memzone, EalError> {
        self.reserve_bounded(name, len, socket, flags, align, 0)
    }

    /// Reserves a memzone that does not cross a multiple of `bound` (0: no bound). With
    /// `len == 0` it takes the biggest free block, or `bound` bytes when bounded.
    pub fn reserve_bounded(
        &self,
        name: &str,
        len: usize,
        socket: i32,
        flags: u32,
        align: usize,
        bound: usize,
    ) -> Result<Memzone, EalError> {
        let shared = &self.memory.shared().memzones;
        let mut table = shared.lock();
        // DPDK's order of checks: room, name, duplicate, then the arguments.
        if table.count >= table.capacity {
            return Err(EalError::MemzoneTableFull {
                capacity: table.capacity,
            });
        }
        if name.len() >= MEMZONE_NAME_LEN {
            return Err(EalError::NameTooLong {
                what: "memzone",
                name: name.into(),
                max: MEMZONE_NAME_LEN - 1,
            });
        }
        if name.is_empty() || name.as_bytes().contains(&0) {
            return Err(invalid(format!(
                "memzone name {name:?} is empty or holds a NUL"
            )));
        }
        let encoded: [u8; MEMZONE_NAME_LEN] = encode_str(name)?;
        if self.find(&table, &encoded).is_some() {
            return Err(EalError::AlreadyExists {
                what: "memzone",
                name: name.into(),
            });
        }
        // A socket heap's id, or an external heap's (which the heap lookup below checks).
        let socket_heap = (0..MAX_HEAPS as i32).contains(&socket);
        if socket != SOCKET_ID_ANY && !socket_heap && socket < EXTERNAL_SOCKET_BASE {
            return Err(invalid(format!("memzone {name:?}: bad socket {socket}")));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(invalid(format!(
                "memzone {name:?}: alignment {align} is not a power of two"
            )));
        }
        if flags & !flags::ALL != 0 {
            return Err(invalid(format!(
                "memzone {name:?}: unknown flags {:#x}",
                flags & !flags::ALL
            )));
        }
        let align = align.max(CACHE_LINE);
        let len = len
            .checked_next_multiple_of(CACHE_LINE)
            .filter(|l| *l <= isize::MAX as usize / 2)
            .ok_or_else(|| invalid(format!("memzone {name:?}: length {len} too large")))?;
        let requested = len.max(CACHE_LINE);
        if bound != 0 && (requested > bound || !bound.is_power_of_two()) {
            return Err(invalid(format!(
                "memzone {name:?}: bound {bound} is not a power of two at least the length {requested}"
            )));
        }
        let heaps = Heaps::new(self.memory);
        // Without hugepages every socket is the same memory (DPDK lets such requests go
        // anywhere); an external heap is memory of its own either way.
        let socket = if self.memory.mode() == MemoryMode::NoHuge && socket_heap {
            SOCKET_ID_ANY
        } else {
            socket
        };
        let contig = flags & flags::IOVA_CONTIG != 0;
        let page_flags = flags & flags::PAGE_SIZE_MASK;
        let hint_only = flags & flags::SIZE_HINT_ONLY != 0;
        let (va, len) = if len == 0 && bound == 0 {
            let got = heaps.alloc_biggest(socket, align, page_flags, contig);
            let got = match got {
                Err(_) if hint_only && page_flags != 0 => {
                    heaps.alloc_biggest(socket, align, 0, contig)
                }
                other => other,
            };
            got?
        } else {
            let size = if len == 0 { bound } else { requested };
            let req = AllocRequest {
                size,
                align,
                bound,
                contig,
                page_flags,
            };
            (heaps.alloc_request(&req, socket, hint_only)?.0, size)
        };
        let (_, socket_id, seg) = self
            .memory
            .page_at(va)
            .expect("a block just allocated is mapped");
        let iova = if seg.iova == BAD_IOVA {
            BAD_IOVA
        } else {
            seg.iova + (va as u64 - seg.va)
        };
        let slot = MemzoneSlot {
            name: encoded,
            va: va as u64,
            iova,
            len: len as u64,
            page_size: seg.page_size,
            socket_id,
            flags,
            bucket_head: 0,
            chain_next: 0,
        };
        let idx = self.lowest_free(&table);
        self.insert(&mut table, idx, slot);
        Ok(Memzone::from_slot(&slot))
    }

    /// The memzone called `name`.
    ///
    /// In a secondary, the pages the primary mapped since this process last looked are mapped
    /// first ([`Memory::sync_with_primary`]), so the zone's bytes can be read; when that
    /// fails the zone is not returned (its memory might not be mapped here).
    pub fn lookup(&self, name: &str) -> Option<Memzone> {
        let encoded: [u8; MEMZONE_NAME_LEN] = encode_str(name).ok()?;
        if encoded[0] == 0 {
            return None;
        }
        let zone = {
            let table = self.memory.shared().memzones.lock();
            let idx = self.find(&table, &encoded)?;
            Memzone::from_slot(&self.read_slot(&table, idx))
        };
        // After the zone is found: its pages were mapped (and counted) before it entered the
        // table, so catching up now maps them here.
        self.memory.sync_with_primary().ok()?;
        Some(zone)
    }

    /// Frees a memzone: its memory goes back to the heap and its slot can be reused.
    pub fn free(&self, mz: &Memzone) -> Result<(), EalError> {
        let not_found = || EalError::NotFound {
            what: "memzone",
            name: mz.name.clone(),
        };
        let encoded: [u8; MEMZONE_NAME_LEN] = encode_str(&mz.name).map_err(|_| not_found())?;
        let mut table = self.memory.shared().memzones.lock();
        let idx = self
            .find(&table, &encoded)
            .filter(|&idx| self.read_slot(&table, idx).va == mz.va)
            .ok_or_else(not_found)?;
        let heaps = Heaps::new(self.memory);
        let ptr = std::ptr::NonNull::new(mz.va as *mut u8).expect("memzones are never at 0");
        // SAFETY: the memzone is being freed at its owner's request; its block is no longer
        // used through this table.
        unsafe { heaps.free(ptr) }?;
        self.remove(&mut table, idx);
        Ok(())
    }

    /// Every memzone, in slot order.
    pub fn list(&self) -> Vec<Memzone> {
        let table = self.memory.shared().memzones.lock();
        (0..table.capacity)
            .map(|idx| self.read_slot(&table, idx))
            .filter(MemzoneSlot::in_use)
            .map(|s| Memzone::from_slot(&s))
            .collect()
    }

    /// Visits every memzone (a snapshot: the callback may reserve or free).
    pub fn walk<B>(&self, mut f: impl FnMut(&Memzone) -> ControlFlow<B>) -> Option<B> {
        for mz in self.list() {
            if let ControlFlow::Break(b) = f(&mz) {
                return Some(b);
            }
        }
        None
    }

    pub fn count(&self) -> u32 {
        self.memory.shared().memzones.lock().count
    }

    /// How many memzones the table holds at most.
    pub fn capacity(&self) -> u32 {
        self.memory.shared().memzones.lock().capacity
    }

    /// Every memzone, as text.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for mz in self.list() {
            let _ = writeln!(
                out,
                "memzone {:<31} va {:#x} iova {:#x} len {:#x} page {:#x} socket {} flags {:#x}",
                mz.name, mz.va, mz.iova, mz.len, mz.page_size, mz.socket_id, mz.flags
            );
        }
        out
    }
}
