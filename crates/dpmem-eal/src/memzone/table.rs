//! The memzone table in the shared configuration: its header, its slots, and the hash index
//! kept inside the slots (see the parent module for why). Every operation here runs with the
//! table's lock held; `mapping` is where this process maps the configuration, whose
//! `slots_offset` bytes on the slot array lies.
//!
//! An insertion writes two slots (the memzone's and its bucket's head) and a removal up to
//! three (the bucket head or the chain link before it, and the memzone's own); a process killed
//! between those writes would leave a chain that skips a memzone or leads into a cleared slot.
//! So each first saves the slots it will write, and the count and search hint, in the table's
//! journal ([`SlotJournal`]), as the heaps journal their element headers: a process that takes
//! the table's lock over from a dead holder writes them back ([`MemzoneTable::undo`]), then
//! checks the whole table ([`MemzoneTable::check`]).

use std::sync::atomic::{compiler_fence, AtomicU32, Ordering};

/// Bytes of a memzone name, terminating zero included (DPDK's `RTE_MEMZONE_NAMESIZE`).
pub const MEMZONE_NAME_LEN: usize = 32;

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

    pub(crate) fn in_use(&self) -> bool {
        self.name[0] != 0
    }
}

/// Slots one change writes at most (a removal: the link before the memzone, its bucket's head
/// and its own slot).
const JOURNAL_SLOTS: usize = 3;

/// The slots an insertion or removal under way saved before writing them. All zero: none under
/// way. A plain `std` atomic orders the count against the process's own death, not threads
/// (the table's lock does that).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SlotJournal {
    /// Slots saved: `images[..saved]` were at `indices[..saved]`. 0: no change under way.
    saved: AtomicU32,
    /// The table's count and search hint before the change.
    count: u32,
    free_hint: u32,
    indices: [u32; JOURNAL_SLOTS],
    images: [MemzoneSlot; JOURNAL_SLOTS],
}

impl Default for MemzoneSlot {
    fn default() -> Self {
        MemzoneSlot::EMPTY
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
    /// What the change under way saved (see the module docs).
    pub journal: SlotJournal,
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

impl MemzoneTable {
    fn slot_ptr(&self, mapping: usize, idx: u32) -> *mut MemzoneSlot {
        assert!(idx < self.capacity);
        (mapping + self.slots_offset as usize + idx as usize * SLOT_SIZE) as *mut MemzoneSlot
    }

    pub(crate) fn read_slot(&self, mapping: usize, idx: u32) -> MemzoneSlot {
        // SAFETY: idx < capacity, so the slot lies in the array the primary laid out inside the
        // mapping; the caller holds the table lock, which serialises writers, and `mapping` is where this process maps the configuration holding the table.
        unsafe { self.slot_ptr(mapping, idx).read() }
    }

    fn write_slot(&self, mapping: usize, idx: u32, slot: MemzoneSlot) {
        crate::crash_point::crash_point();
        // SAFETY: as in `read_slot`; the table lock makes this the only writer.
        unsafe { self.slot_ptr(mapping, idx).write(slot) }
    }

    fn update_slot(&self, mapping: usize, idx: u32, f: impl FnOnce(&mut MemzoneSlot)) {
        let mut slot = self.read_slot(mapping, idx);
        f(&mut slot);
        self.write_slot(mapping, idx, slot);
    }

    /// The slot holding the memzone called `name` (encoded), through its bucket's chain.
    pub(crate) fn find(&self, mapping: usize, name: &[u8; MEMZONE_NAME_LEN]) -> Option<u32> {
        if self.capacity == 0 {
            return None;
        }
        let bucket = bucket_of(name, self.capacity);
        let mut link = self.read_slot(mapping, bucket).bucket_head;
        while let Some(idx) = link.checked_sub(1) {
            let slot = self.read_slot(mapping, idx);
            if slot.name == *name {
                return Some(idx);
            }
            link = slot.chain_next;
        }
        None
    }

    /// The lowest free slot (the caller checked that the table is not full).
    pub(crate) fn lowest_free(&self, mapping: usize) -> u32 {
        (self.free_hint..self.capacity)
            .find(|&idx| !self.read_slot(mapping, idx).in_use())
            .expect("count < capacity leaves a free slot at or after the hint")
    }

    /// Saves slots `indices` (and the count and hint) before a change writes them.
    fn journal_begin(&mut self, mapping: usize, indices: &[u32]) {
        let mut saved = 0;
        for &idx in indices {
            if self.journal.indices[..saved].contains(&idx) {
                continue;
            }
            let image = self.read_slot(mapping, idx);
            crate::crash_point::crash_point();
            self.journal.indices[saved] = idx;
            self.journal.images[saved] = image;
            saved += 1;
        }
        self.journal.count = self.count;
        self.journal.free_hint = self.free_hint;
        // The copies are complete before the count covers them, and covered before any slot
        // is written.
        compiler_fence(Ordering::SeqCst);
        self.journal.saved.store(saved as u32, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// The change's writes are all done: nothing to undo any more.
    fn journal_end(&mut self) {
        crate::crash_point::crash_point();
        compiler_fence(Ordering::SeqCst);
        self.journal.saved.store(0, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    /// Writes back what a change of a dead process had saved; returns how many slots, or
    /// `None` when no change was under way.
    pub(crate) fn undo(&mut self, mapping: usize) -> Option<usize> {
        let saved = (self.journal.saved.load(Ordering::Relaxed) as usize).min(JOURNAL_SLOTS);
        if saved == 0 {
            return None;
        }
        for i in (0..saved).rev() {
            let (idx, image) = (self.journal.indices[i], self.journal.images[i]);
            if idx < self.capacity {
                self.write_slot(mapping, idx, image);
            }
        }
        self.count = self.journal.count;
        self.free_hint = self.journal.free_hint;
        self.journal_end();
        Some(saved)
    }

    /// Checks the table's invariants: every memzone in use has a name and is found by it at its
    /// own slot, every chain link leads to a memzone of its bucket and no chain loops, the
    /// count is right and no free slot lies below the search hint. `Err` names the first
    /// broken one.
    pub(crate) fn check(&self, mapping: usize) -> Result<(), String> {
        let mut in_use = 0u32;
        let mut lowest_free = None;
        for idx in 0..self.capacity {
            let slot = self.read_slot(mapping, idx);
            if !slot.in_use() {
                lowest_free.get_or_insert(idx);
                continue;
            }
            in_use += 1;
            if !slot.name.contains(&0) {
                return Err(format!("slot {idx}: the name has no end"));
            }
            if self.find(mapping, &slot.name) != Some(idx) {
                return Err(format!(
                    "slot {idx}: memzone {:?} is not found by its name",
                    crate::shared_name::decode_str(&slot.name)
                ));
            }
        }
        if in_use != self.count {
            return Err(format!(
                "{in_use} memzones in use, the table counts {}",
                self.count
            ));
        }
        if lowest_free.is_some_and(|free| free < self.free_hint) {
            return Err(format!(
                "slot {} is free, below the search hint {}",
                lowest_free.unwrap_or(0),
                self.free_hint
            ));
        }
        for bucket in 0..self.capacity {
            let mut link = self.read_slot(mapping, bucket).bucket_head;
            let mut steps = 0;
            while let Some(idx) = link.checked_sub(1) {
                steps += 1;
                if idx >= self.capacity || steps > self.capacity {
                    return Err(format!(
                        "bucket {bucket}: its chain leaves the table or loops"
                    ));
                }
                let slot = self.read_slot(mapping, idx);
                if !slot.in_use() || bucket_of(&slot.name, self.capacity) != bucket {
                    return Err(format!(
                        "bucket {bucket}: its chain leads to slot {idx}, not one of its memzones"
                    ));
                }
                link = slot.chain_next;
            }
        }
        Ok(())
    }

    /// Records `slot` (in use) at the lowest free slot `idx` and puts it at the head of its bucket's chain.
    pub(crate) fn insert(&mut self, mapping: usize, idx: u32, slot: MemzoneSlot) {
        let bucket = bucket_of(&slot.name, self.capacity);
        self.journal_begin(mapping, &[idx, bucket]);
        let head = self.read_slot(mapping, bucket).bucket_head;
        // The slot's own bucket head is not the memzone's to change.
        let own_head = self.read_slot(mapping, idx).bucket_head;
        self.write_slot(
            mapping,
            idx,
            MemzoneSlot {
                bucket_head: own_head,
                chain_next: head,
                ..slot
            },
        );
        self.update_slot(mapping, bucket, |b| b.bucket_head = idx + 1);
        self.count += 1;
        // `idx` was the lowest free slot: every slot up to it is in use now.
        self.free_hint = idx + 1;
        self.journal_end();
    }

    /// Takes the memzone in slot `idx` out of its chain and clears the slot, keeping the bucket
    /// head it holds for its own bucket.
    pub(crate) fn remove(&mut self, mapping: usize, idx: u32) {
        let slot = self.read_slot(mapping, idx);
        let bucket = bucket_of(&slot.name, self.capacity);
        let head = self.read_slot(mapping, bucket).bucket_head;
        // The chain link before the memzone, found before anything is written.
        let before = (head != idx + 1).then(|| {
            let mut prev = head
                .checked_sub(1)
                .expect("a memzone in use is on its bucket's chain");
            loop {
                let p = self.read_slot(mapping, prev);
                if p.chain_next == idx + 1 {
                    break prev;
                }
                prev = p
                    .chain_next
                    .checked_sub(1)
                    .expect("a memzone in use is on its bucket's chain");
            }
        });
        self.journal_begin(mapping, &[bucket, before.unwrap_or(bucket), idx]);
        match before {
            None => self.update_slot(mapping, bucket, |b| b.bucket_head = slot.chain_next),
            Some(prev) => self.update_slot(mapping, prev, |p| p.chain_next = slot.chain_next),
        }
        // Read again: the slot may be its own bucket's head, updated just above.
        let bucket_head = self.read_slot(mapping, idx).bucket_head;
        self.write_slot(
            mapping,
            idx,
            MemzoneSlot {
                bucket_head,
                ..MemzoneSlot::EMPTY
            },
        );
        self.count -= 1;
        self.free_hint = self.free_hint.min(idx);
        self.journal_end();
    }
}
