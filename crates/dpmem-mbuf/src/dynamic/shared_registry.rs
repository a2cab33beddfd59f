//! The registry of dynamic fields and flags as it sits in shared memory: a memzone every
//! process of an EAL finds by name, holding two append-only tables (fields, flags), so the
//! primary and every secondary agree on each name's place.
//!
//! Entries are never changed or removed once written (DPDK has no unregistering either). A
//! writer fills the slot after the last published one, then publishes it by raising the
//! table's count with release ordering; a reader loads the count with acquire ordering and
//! reads the slots below it, which nobody writes any more. So lookups take no lock and cannot
//! see half an entry, and a writer that stopped midway would leave only an unpublished slot.
//!
//! Writers hold a spinlock kept in the memzone, from the check that a name is new to its
//! publication. Only the primary process registers new names (DPDK refuses a secondary
//! with `EPERM`), so today the lock is contended by the primary's threads alone; it sits in
//! the memzone rather than in a process-local mutex so that it is the registry's own, one per
//! EAL, whatever process or instance maps it. The EAL's process-shared futex mutex is private
//! to `dpmem-eal`; a spinlock suffices here because the section it guards is a scan of at most
//! 54 entries with no allocation, no system call and nothing that can fail halfway. A holder
//! cannot die inside it and leave others stuck: the holder is a thread of the primary, and
//! when the primary dies no process may register again anyway.

use core::marker::PhantomData;
use core::mem::{align_of, offset_of, size_of};
use core::ptr::NonNull;
use std::time::{Duration, Instant};

use dpmem_eal::{Eal, EalError, ErrorKind, Memzone, MemzoneFlags, Socket};
use dpmem_sys::sync::{spin_wait, AtomicU32, AtomicU64, Ordering};

use super::space::{FieldInfo, FlagInfo, FLAG_BITS, NAME_SIZE};
use crate::error::MbufError;
use crate::header::DYNFIELD_LEN;

/// The memzone holding the registry (DPDK's is `rte_mbuf_dyn`).
pub const REGISTRY_MEMZONE: &str = "dpmem_mbuf_dyn";

/// What [`RegistryLayout::ready`] holds once the layout after it is initialised. Memzone
/// memory is not cleared, so anything else (including old bytes) means "not yet".
const READY: u64 = u64::from_le_bytes(*b"mbufdyn1");

/// Every field holds at least one byte of the space, so it has at most this many.
const MAX_FIELDS: usize = DYNFIELD_LEN;
const MAX_FLAGS: usize = (*FLAG_BITS.end() - *FLAG_BITS.start() + 1) as usize;

/// How long a process that finds the memzone waits for its creator to initialise it: a few
/// stores, so only a creator that died in between makes anyone wait this long.
const INIT_WAIT: Duration = Duration::from_secs(2);

/// A name as stored: its bytes, then NUL up to [`NAME_SIZE`] (names have no NUL and at most
/// `NAME_SIZE - 1` bytes, so one always ends them, as in DPDK's tables).
type StoredName = [u8; NAME_SIZE];

#[repr(C)]
#[derive(Clone, Copy)]
struct FieldSlot {
    name: StoredName,
    offset: u64,
    size: u64,
    align: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FlagSlot {
    name: StoredName,
    bit: u64,
}

/// The memzone's contents.
#[repr(C)]
struct RegistryLayout {
    /// [`READY`] once the creator has initialised every field below; set last, with release
    /// ordering.
    ready: AtomicU64,
    /// The writers' spinlock: 1 while a writer holds it, else 0.
    writer_lock: AtomicU32,
    /// Slots of `fields` published; each below the count is complete and never written again.
    field_count: AtomicU32,
    /// As `field_count`, for `flags`.
    flag_count: AtomicU32,
    fields: [FieldSlot; MAX_FIELDS],
    flags: [FlagSlot; MAX_FLAGS],
}

/// The registry of one EAL, mapped in this process.
#[derive(Debug)]
pub(crate) struct SharedRegistry<'eal> {
    /// The memzone's start. Invariant: it holds a [`RegistryLayout`] whose `ready` is
    /// [`READY`], suitably aligned, and stays mapped while the EAL lives (the registry's
    /// memzone is never freed).
    layout: NonNull<RegistryLayout>,
    _eal: PhantomData<&'eal Eal>,
}

/// Proof that this thread holds the writers' lock; dropping it lets the next writer in.
#[derive(Debug)]
pub(crate) struct WriterGuard<'r> {
    lock: &'r AtomicU32,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
    }
}

fn encode_name(name: &str) -> StoredName {
    let mut stored = [0u8; NAME_SIZE];
    let len = name.len().min(NAME_SIZE - 1);
    stored[..len].copy_from_slice(&name.as_bytes()[..len]);
    stored
}

fn decode_name(stored: &StoredName) -> String {
    let len = stored.iter().position(|&b| b == 0).unwrap_or(NAME_SIZE);
    String::from_utf8_lossy(&stored[..len]).into_owned()
}

/// The `ready` word of the layout at `layout`.
///
/// # Safety
/// `layout` points to memory mapped for at least as long as the returned reference is used,
/// big and aligned enough for a [`RegistryLayout`]. Every process accesses the word only
/// atomically, so a shared reference to it is sound whatever its value.
unsafe fn ready_word<'a>(layout: *mut RegistryLayout) -> &'a AtomicU64 {
    let word = layout.wrapping_byte_add(offset_of!(RegistryLayout, ready));
    // SAFETY: the caller's contract.
    unsafe { &*word.cast::<AtomicU64>() }
}

fn registry_fault(reason: String) -> MbufError {
    MbufError::Eal(EalError::Busy(format!(
        "dynamic field registry (memzone {REGISTRY_MEMZONE:?}): {reason}"
    )))
}

impl<'eal> SharedRegistry<'eal> {
    /// The registry of `eal`, if a process has created it.
    pub(crate) fn find(eal: &'eal Eal) -> Result<Option<Self>, MbufError> {
        match eal.memzones().lookup(REGISTRY_MEMZONE) {
            Some(zone) => Self::attach(&zone).map(Some),
            None => Ok(None),
        }
    }

    /// The registry of `eal`, created when no process has made it yet. For the primary
    /// process: secondaries only [`find`](Self::find) it.
    pub(crate) fn find_or_create(eal: &'eal Eal) -> Result<Self, MbufError> {
        if let Some(registry) = Self::find(eal)? {
            return Ok(registry);
        }
        let reserved = eal.memzones().reserve(
            REGISTRY_MEMZONE,
            size_of::<RegistryLayout>(),
            Socket::Any,
            MemzoneFlags::empty(),
        );
        match reserved {
            Ok(zone) => Self::initialise(&zone),
            // Another thread created it between the lookup and the reservation.
            Err(e) if e.kind() == ErrorKind::Exist => {
                Self::find(eal)?.ok_or_else(|| registry_fault("reserved and gone again".into()))
            }
            Err(e) => Err(MbufError::Eal(e)),
        }
    }

    /// Checks that `zone` can hold the layout, then waits until its creator has initialised it.
    fn attach(zone: &Memzone) -> Result<Self, MbufError> {
        let fits = zone.len >= size_of::<RegistryLayout>()
            && zone.va.is_multiple_of(align_of::<RegistryLayout>());
        let layout = NonNull::new(zone.as_ptr().cast::<RegistryLayout>())
            .filter(|_| fits)
            .ok_or_else(|| {
                registry_fault(format!(
                    "{} bytes at {:#x}, not a registry made by this crate",
                    zone.len, zone.va
                ))
            })?;
        // SAFETY: the memzone is mapped in this process (the lookup mapped it), big enough
        // and aligned (checked above).
        let ready = unsafe { ready_word(layout.as_ptr()) };
        let deadline = Instant::now() + INIT_WAIT;
        let mut spins = 0u32;
        while ready.load(Ordering::Acquire) != READY {
            if Instant::now() > deadline {
                return Err(registry_fault(
                    "never initialised (its creator may have died while making it)".into(),
                ));
            }
            spins += 1;
            if spins < 64 {
                spin_wait();
            } else {
                std::thread::yield_now();
            }
        }
        Ok(SharedRegistry {
            layout,
            _eal: PhantomData,
        })
    }

    /// Empties the tables of a memzone just reserved, then marks it ready.
    fn initialise(zone: &Memzone) -> Result<Self, MbufError> {
        let tail = offset_of!(RegistryLayout, writer_lock);
        let tables = zone.as_ptr().wrapping_add(tail);
        // SAFETY: the memzone was just reserved with room for the layout, cache-line aligned.
        // Until `ready` says so, no other thread or process reads or writes past `ready`
        // (they wait in `attach`), so these plain writes race with nobody.
        unsafe { tables.write_bytes(0, size_of::<RegistryLayout>() - tail) };
        // SAFETY: as above.
        let ready = unsafe { ready_word(zone.as_ptr().cast()) };
        ready.store(READY, Ordering::Release);
        Self::attach(zone)
    }

    /// One of the layout's atomic words. No reference to the whole layout is ever made: the
    /// slots are plain memory that a writer of this process may be filling while another
    /// thread reads the counts.
    fn atomic<A>(&self, offset: usize) -> &A {
        let word = self.layout.as_ptr().wrapping_byte_add(offset).cast::<A>();
        // SAFETY: the type's invariant: an initialised layout, mapped while 'eal lives; the
        // callers pass the offset of one of its atomic fields, of type `A`, which every
        // process only accesses atomically.
        unsafe { &*word }
    }

    fn writer_lock(&self) -> &AtomicU32 {
        self.atomic(offset_of!(RegistryLayout, writer_lock))
    }

    fn field_count(&self) -> &AtomicU32 {
        self.atomic(offset_of!(RegistryLayout, field_count))
    }

    fn flag_count(&self) -> &AtomicU32 {
        self.atomic(offset_of!(RegistryLayout, flag_count))
    }

    /// Takes the writers' lock (see the module notes).
    pub(crate) fn lock_writers(&self) -> WriterGuard<'_> {
        let lock = self.writer_lock();
        let mut spins = 0u32;
        while lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                spin_wait();
            } else {
                std::thread::yield_now();
            }
        }
        WriterGuard { lock }
    }

    /// The published count of a table, bounded by its capacity (a damaged count reads
    /// no slot outside the table).
    fn published(count: &AtomicU32, capacity: usize) -> usize {
        (count.load(Ordering::Acquire) as usize).min(capacity)
    }

    /// The fields registered so far, in registration order.
    pub(crate) fn fields(&self) -> Vec<FieldInfo> {
        let n = Self::published(self.field_count(), MAX_FIELDS);
        (0..n)
            .map(|i| {
                // SAFETY: slot i < n is inside the table, published (acquire load of the count
                // above pairs with the writer's release), and never written again.
                let slot = unsafe { self.field_slot(i).read() };
                FieldInfo {
                    name: decode_name(&slot.name),
                    offset: slot.offset as usize,
                    size: slot.size as usize,
                    align: slot.align as usize,
                }
            })
            .collect()
    }

    /// The flags registered so far, in registration order.
    pub(crate) fn flags(&self) -> Vec<FlagInfo> {
        let n = Self::published(self.flag_count(), MAX_FLAGS);
        (0..n)
            .map(|i| {
                // SAFETY: as in `fields`.
                let slot = unsafe { self.flag_slot(i).read() };
                FlagInfo {
                    name: decode_name(&slot.name),
                    bit: slot.bit as u32,
                }
            })
            .collect()
    }

    fn field_slot(&self, i: usize) -> *mut FieldSlot {
        let fields = self
            .layout
            .as_ptr()
            .wrapping_byte_add(offset_of!(RegistryLayout, fields));
        fields.cast::<FieldSlot>().wrapping_add(i)
    }

    fn flag_slot(&self, i: usize) -> *mut FlagSlot {
        let flags = self
            .layout
            .as_ptr()
            .wrapping_byte_add(offset_of!(RegistryLayout, flags));
        flags.cast::<FlagSlot>().wrapping_add(i)
    }

    /// Appends and publishes `field`, which the caller has checked against the published
    /// ones under the lock. False when the table is full (cannot happen for fields that do
    /// not overlap).
    pub(crate) fn push_field(&self, _writer: &WriterGuard<'_>, field: &FieldInfo) -> bool {
        let count = self.field_count();
        let n = count.load(Ordering::Relaxed) as usize;
        if n >= MAX_FIELDS {
            return false;
        }
        let slot = FieldSlot {
            name: encode_name(&field.name),
            offset: field.offset as u64,
            size: field.size as u64,
            align: field.align as u64,
        };
        // SAFETY: slot n is inside the table and unpublished: no reader reads it, and the
        // writers' lock (`_writer`) keeps other writers out.
        unsafe { self.field_slot(n).write(slot) };
        count.store(n as u32 + 1, Ordering::Release);
        true
    }

    /// As [`push_field`](Self::push_field), for a flag.
    pub(crate) fn push_flag(&self, _writer: &WriterGuard<'_>, flag: &FlagInfo) -> bool {
        let count = self.flag_count();
        let n = count.load(Ordering::Relaxed) as usize;
        if n >= MAX_FLAGS {
            return false;
        }
        let slot = FlagSlot {
            name: encode_name(&flag.name),
            bit: u64::from(flag.bit),
        };
        // SAFETY: as in `push_field`.
        unsafe { self.flag_slot(n).write(slot) };
        count.store(n as u32 + 1, Ordering::Release);
        true
    }
}
