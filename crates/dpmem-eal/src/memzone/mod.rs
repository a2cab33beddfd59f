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

mod recovery;
pub(crate) mod table;

use crate::error::EalError;
use crate::heap::elem::CACHE_LINE;
use crate::heap::malloc_heap::AllocRequest;
use crate::heap::state::MAX_HEAPS;
use crate::heap::Heaps;
use crate::iova::Iova;
use crate::memory::Memory;
use crate::memzone_flags::MemzoneFlags;
use crate::shared_name::{decode_str, encode_str};
use crate::socket::Socket;
pub use table::MEMZONE_NAME_LEN;

use crate::sync::SharedLockedGuard;
use table::{MemzoneSlot, MemzoneTable};

/// Memzones the table holds unless configured otherwise (DPDK's `RTE_MAX_MEMZONE`).
pub const DEFAULT_MAX_MEMZONES: u32 = 2560;

/// A memzone as a process sees it: a description, copied out of the shared table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Memzone {
    pub name: String,
    /// Start of the memory (the same in every process).
    pub va: usize,
    /// Device address of the start, when known.
    pub iova: Option<Iova>,
    pub len: usize,
    /// Page size of the memory under the memzone.
    pub page_size: u64,
    /// Where the memory is: the NUMA node of its first page, or the external heap it came from.
    #[cfg_attr(feature = "serde", serde(rename = "socket_id"))]
    pub socket: Socket,
    /// The flags it was reserved with.
    pub flags: MemzoneFlags,
}

impl Memzone {
    /// The start of the memory.
    pub fn as_ptr(&self) -> *mut u8 {
        self.va as *mut u8
    }

    fn from_slot(slot: &MemzoneSlot) -> Self {
        Self {
            name: decode_str(&slot.name),
            va: slot.va as usize,
            iova: Iova::new(slot.iova),
            len: slot.len as usize,
            page_size: slot.page_size,
            socket: Socket::from_recorded(slot.socket_id),
            flags: MemzoneFlags::from_bits_truncate(slot.flags),
        }
    }
}

/// A memzone to reserve, built up before [`MemzoneRequest::reserve`] makes it (the arguments
/// of DPDK's `rte_memzone_reserve_bounded`, each with its default).
///
/// ```no_run
/// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "16"])?;
/// use dpmem_eal::{MemzoneFlags, Socket};
/// let zone = eal
///     .memzones()
///     .request("descriptors", 64 << 10)
///     .socket(Socket::Node(0))
///     .align(4096)
///     .flags(MemzoneFlags::IOVA_CONTIG)
///     .reserve()?;
/// assert_eq!(zone.va % 4096, 0);
/// # Ok::<(), dpmem_eal::EalError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing is reserved until `reserve` is called"]
pub struct MemzoneRequest<'z, 'n> {
    zones: Memzones<'z>,
    name: &'n str,
    len: usize,
    socket: Socket,
    flags: MemzoneFlags,
    align: usize,
    bound: usize,
}

impl MemzoneRequest<'_, '_> {
    /// Where the memory comes from ([`Socket::Any`] unless set).
    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    /// Page sizes and IOVA contiguity (none unless set).
    pub fn flags(mut self, flags: MemzoneFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Alignment of the start: a power of two, raised to a cache line (a cache line unless set).
    pub fn align(mut self, align: usize) -> Self {
        self.align = align;
        self
    }

    /// A power of two, at least the length, that the memzone must not cross (none unless set).
    /// With a length of 0 the memzone is `bound` bytes long.
    pub fn bound(mut self, bound: usize) -> Self {
        self.bound = bound;
        self
    }

    /// Reserves the memzone.
    pub fn reserve(&self) -> Result<Memzone, EalError> {
        self.zones.reserve_request(self)
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

    /// Where this process maps the configuration holding the table.
    fn mapping(&self) -> usize {
        self.memory.config_mapping().addr()
    }

    /// A memzone called `name` of `len` bytes, to reserve once its other properties are set;
    /// a length of 0 takes the biggest free block (or `bound` bytes when bounded).
    pub fn request<'n>(&self, name: &'n str, len: usize) -> MemzoneRequest<'a, 'n> {
        MemzoneRequest {
            zones: *self,
            name,
            len,
            socket: Socket::Any,
            flags: MemzoneFlags::empty(),
            align: CACHE_LINE,
            bound: 0,
        }
    }

    /// Reserves `len` bytes (0: the biggest free block) on `socket`, cache-line aligned
    /// (DPDK's `rte_memzone_reserve`).
    pub fn reserve(
        &self,
        name: &str,
        len: usize,
        socket: Socket,
        flags: MemzoneFlags,
    ) -> Result<Memzone, EalError> {
        self.request(name, len)
            .socket(socket)
            .flags(flags)
            .reserve()
    }

    /// [`Memzones::reserve`] with `align` (DPDK's `rte_memzone_reserve_aligned`).
    pub fn reserve_aligned(
        &self,
        name: &str,
        len: usize,
        socket: Socket,
        flags: MemzoneFlags,
        align: usize,
    ) -> Result<Memzone, EalError> {
        self.request(name, len)
            .socket(socket)
            .flags(flags)
            .align(align)
            .reserve()
    }

    /// [`Memzones::reserve_aligned`] within `bound` (DPDK's `rte_memzone_reserve_bounded`).
    pub fn reserve_bounded(
        &self,
        name: &str,
        len: usize,
        socket: Socket,
        flags: MemzoneFlags,
        align: usize,
        bound: usize,
    ) -> Result<Memzone, EalError> {
        self.request(name, len)
            .socket(socket)
            .flags(flags)
            .align(align)
            .bound(bound)
            .reserve()
    }

    fn reserve_request(&self, req: &MemzoneRequest<'_, '_>) -> Result<Memzone, EalError> {
        let MemzoneRequest {
            name,
            len,
            socket,
            flags,
            align,
            bound,
            ..
        } = *req;
        let mapping = self.mapping();
        let mut table = self.lock_table()?;
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
        if table.find(mapping, &encoded).is_some() {
            return Err(EalError::AlreadyExists {
                what: "memzone",
                name: name.into(),
            });
        }
        // A socket heap's id, or an external heap's (which the heap lookup below checks).
        let socket_heap = socket.node().is_some_and(|n| (n as usize) < MAX_HEAPS);
        if matches!(socket, Socket::Node(_)) && !socket_heap {
            return Err(invalid(format!(
                "memzone {name:?}: bad socket ({socket}: no NUMA node has a heap of that id)"
            )));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(invalid(format!(
                "memzone {name:?}: alignment {align} is not a power of two"
            )));
        }
        if !MemzoneFlags::all().contains(flags) {
            return Err(invalid(format!(
                "memzone {name:?}: unknown flags {:#x}",
                flags.difference(MemzoneFlags::all()).bits()
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
        let contig = flags.contains(MemzoneFlags::IOVA_CONTIG);
        let page_flags = flags.intersection(MemzoneFlags::PAGE_SIZES);
        let hint_only = flags.contains(MemzoneFlags::SIZE_HINT_ONLY);
        let raw_socket = socket
            .to_raw_checked()
            .ok_or_else(|| invalid(format!("memzone {name:?}: bad socket ({socket:?})")))?;
        let (va, len) = if len == 0 && bound == 0 {
            let got = heaps.alloc_biggest(raw_socket, align, page_flags, contig);
            let got = match got {
                Err(_) if hint_only && !page_flags.is_empty() => {
                    heaps.alloc_biggest(raw_socket, align, MemzoneFlags::empty(), contig)
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
            (heaps.alloc_request(&req, raw_socket, hint_only)?.0, size)
        };
        let (_, socket_id, seg) = self
            .memory
            .page_at(va)
            .expect("a block just allocated is mapped");
        let iova = Iova::new(seg.iova).and_then(|i| i.checked_add(va as u64 - seg.va));
        let slot = MemzoneSlot {
            name: encoded,
            va: va as u64,
            iova: Iova::to_raw(iova),
            len: len as u64,
            page_size: seg.page_size,
            socket_id,
            flags: flags.bits(),
            bucket_head: 0,
            chain_next: 0,
        };
        let idx = table.lowest_free(mapping);
        table.insert(mapping, idx, slot);
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
        let mapping = self.mapping();
        let zone = {
            // A table given up (a process died changing it) finds nothing.
            let table = self.lock_table().ok()?;
            let idx = table.find(mapping, &encoded)?;
            Memzone::from_slot(&table.read_slot(mapping, idx))
        };
        // After the zone is found: its pages were mapped (and counted) before it entered the
        // table, so catching up now maps them here.
        self.memory.sync_with_primary().ok()?;
        Some(zone)
    }

    /// Frees a memzone (DPDK's `rte_memzone_free`): its memory goes back to the heap and its
    /// slot can be reused. A memzone that is not in the table (freed already, or never
    /// reserved here) is refused (`ENOENT`) with nothing changed.
    ///
    /// # Safety
    /// Nothing uses the memzone's memory any more, in any process: no reference into it, no
    /// ring or pool built in it (a ring or pool made by dpmem frees its own memzone), no
    /// pointer that will be dereferenced. The memory may be handed out again at once.
    pub unsafe fn free(&self, mz: &Memzone) -> Result<(), EalError> {
        let not_found = || EalError::NotFound {
            what: "memzone",
            name: mz.name.clone(),
        };
        let encoded: [u8; MEMZONE_NAME_LEN] = encode_str(&mz.name).map_err(|_| not_found())?;
        let mapping = self.mapping();
        let mut table = self.lock_table()?;
        let idx = table
            .find(mapping, &encoded)
            .filter(|&idx| table.read_slot(mapping, idx).va == mz.va as u64)
            .ok_or_else(not_found)?;
        let heaps = Heaps::new(self.memory);
        let ptr = std::ptr::NonNull::new(mz.as_ptr()).expect("memzones are never at 0");
        // The slot goes before its block: a process killed in between leaves a block nobody
        // names (leaked), never a memzone naming a block the heap may hand out again. The
        // block is checked first, so that the free below cannot refuse it.
        // SAFETY: the memzone's block header is written only by a free of the memzone, which
        // needs the table lock held here.
        unsafe { heaps.validate(ptr.as_ptr()) }?;
        table.remove(mapping, idx);
        // SAFETY: the caller's promise: nothing uses the memzone's block any more.
        unsafe { heaps.free(ptr) }
    }

    /// Every memzone, in slot order.
    pub fn list(&self) -> Vec<Memzone> {
        self.list_indexed().into_iter().map(|(_, mz)| mz).collect()
    }

    /// Every memzone with its slot in the table (DPDK's memzone index, which telemetry
    /// reports), in slot order.
    pub(crate) fn list_indexed(&self) -> Vec<(u32, Memzone)> {
        let mapping = self.mapping();
        let Ok(table) = self.lock_table() else {
            return Vec::new();
        };
        (0..table.capacity)
            .map(|idx| (idx, table.read_slot(mapping, idx)))
            .filter(|(_, slot)| slot.in_use())
            .map(|(idx, slot)| (idx, Memzone::from_slot(&slot)))
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

    /// How many memzones there are (0 once the table was given up: a process died changing
    /// it and it could not be repaired).
    pub fn count(&self) -> u32 {
        self.lock_table().map_or(0, |t| t.count)
    }

    /// How many memzones the table holds at most.
    pub fn capacity(&self) -> u32 {
        self.lock_table().map_or(0, |t| t.capacity)
    }

    /// Locks the memzone table, putting it back in order first when a process died holding
    /// the lock; the error of a table given up names the dead process. Lock order: the table,
    /// then a heap.
    fn lock_table(&self) -> Result<SharedLockedGuard<'a, MemzoneTable>, EalError> {
        let mapping = self.mapping();
        let memory = self.memory;
        memory
            .shared()
            .memzones
            .lock(|table, dead_pid| recovery::recover_table(table, mapping, memory, dead_pid))
            .map_err(|died| EalError::owner_died("the memzone table", died))
    }

    /// Every memzone, as text.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for mz in self.list() {
            let iova = mz
                .iova
                .map_or_else(|| "unknown".to_owned(), |i| i.to_string());
            let _ = writeln!(
                out,
                "memzone {:<31} va {:#x} iova {iova} len {:#x} page {:#x} {} flags {:#x}",
                mz.name,
                mz.va,
                mz.len,
                mz.page_size,
                mz.socket,
                mz.flags.bits()
            );
        }
        out
    }
}
