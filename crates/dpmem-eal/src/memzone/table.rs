//! The memzone table in the shared configuration: its header, its slots, and the hash index
//! kept inside the slots (see the parent module for why). Every operation here runs with the
//! table's lock held; `mapping` is where this process maps the configuration, whose
//! `slots_offset` bytes on the slot array lies.

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

    /// Records `slot` (in use) at the lowest free slot `idx` and puts it at the head of its bucket's chain.
    pub(crate) fn insert(&mut self, mapping: usize, idx: u32, slot: MemzoneSlot) {
        let bucket = bucket_of(&slot.name, self.capacity);
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
    }

    /// Takes the memzone in slot `idx` out of its chain and clears the slot, keeping the bucket
    /// head it holds for its own bucket.
    pub(crate) fn remove(&mut self, mapping: usize, idx: u32) {
        let slot = self.read_slot(mapping, idx);
        let bucket = bucket_of(&slot.name, self.capacity);
        let head = self.read_slot(mapping, bucket).bucket_head;
        if head == idx + 1 {
            self.update_slot(mapping, bucket, |b| b.bucket_head = slot.chain_next);
        } else {
            let mut prev = head
                .checked_sub(1)
                .expect("a memzone in use is on its bucket's chain");
            loop {
                let p = self.read_slot(mapping, prev);
                if p.chain_next == idx + 1 {
                    self.update_slot(mapping, prev, |p| p.chain_next = slot.chain_next);
                    break;
                }
                prev = p
                    .chain_next
                    .checked_sub(1)
                    .expect("a memzone in use is on its bucket's chain");
            }
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
    }
}
