//! [`Mempool`]: a named pool of fixed-size objects in memzones, with per-lcore caches in
//! front of a pluggable handler (DPDK's `rte_mempool`).

use core::ptr::NonNull;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use dpmem_eal::lcore::LcoreIdProbe;
use dpmem_eal::memzone::{flags as mz_flags, Memzone};
use dpmem_eal::options::MAX_LCORE;
use dpmem_eal::{Eal, EalError, ErrorKind, IovaMode, BAD_IOVA};

use crate::cache::{self, CacheState, CACHE_MAX_SIZE};
use crate::error::MempoolError;
use crate::events::{self, MempoolEvent};
use crate::flags::MempoolFlags;
use crate::handler::{self, Handler, PoolContext, Store};
use crate::header::{
    caches_size, decode, encode, ChunkRecord, PoolHeader, MEMPOOL_NAME_MAX, MEMZONE_PREFIX,
    POOL_MAGIC,
};
use crate::layout::{
    calc_obj_size, crosses_page, mem_size, slot_align, ObjHeader, ObjSize, CACHE_LINE,
    COOKIE_IN_POOL, COOKIE_OUT, COOKIE_TRAILER,
};
use crate::lcore_cache::LcoreCache;
use crate::sync::Ordering;

/// What [`Mempool::create`] needs besides the EAL.
#[derive(Debug, Clone)]
pub struct MempoolConfig<'a> {
    pub name: &'a str,
    /// Objects in the pool.
    pub n: u32,
    /// Bytes per object.
    pub elt_size: u32,
    /// Objects kept per lcore (0: no caches; at most 512 and at most `n / 1.5`).
    pub cache_size: u32,
    /// Bytes of the pool-wide private area ([`Mempool::private_data`]).
    pub private_data_size: u32,
    pub socket_id: i32,
    pub flags: MempoolFlags,
}

/// A memory chunk of a pool (`mem_iter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemChunk {
    pub addr: usize,
    /// IOVA of `addr`, or [`BAD_IOVA`].
    pub iova: u64,
    pub len: usize,
    /// Objects in it.
    pub objects: u32,
}

/// What frees caller memory given to [`Mempool::populate_iova`] or
/// [`Mempool::populate_virt`] when the pool is freed: called with the region's address and
/// length, in the process that frees the pool.
pub type ChunkFreeFn = Box<dyn FnOnce(*mut u8, usize) + Send>;

/// A free callback and the caller region it frees (which may span several chunks).
struct RegionFree {
    addr: usize,
    len: usize,
    free: ChunkFreeFn,
}

/// Free callbacks of this process, by the record address of the first chunk of their region.
fn chunk_free_callbacks() -> &'static Mutex<HashMap<u64, RegionFree>> {
    static CALLBACKS: OnceLock<Mutex<HashMap<u64, RegionFree>>> = OnceLock::new();
    CALLBACKS.get_or_init(Default::default)
}

/// Frees caller memory `[addr, addr + len)` with `free` when the pool goes; tied to the chunk
/// record `record` (the first chunk made in that memory).
fn register_region_free(record: u64, addr: usize, len: usize, free: ChunkFreeFn) {
    chunk_free_callbacks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(record, RegionFree { addr, len, free });
}

/// Handles open in this process, by pool header address: a pool is not freed under another
/// handle of the same process.
fn open_handles() -> &'static Mutex<HashMap<u64, usize>> {
    static OPEN: OnceLock<Mutex<HashMap<u64, usize>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// A handle on a mempool. Handles are per process and per EAL; the pool itself is in shared
/// memory, found by name from any process ([`Mempool::lookup`]).
pub struct Mempool<'eal> {
    eal: &'eal Eal,
    zone: Memzone,
    header: NonNull<PoolHeader>,
    /// Cache of lcore 0 (the others follow), or null when the pool has no caches.
    caches: *mut CacheState,
    /// Finds the calling thread's lcore id (its cache) in one thread-local read.
    lcore: LcoreIdProbe<'eal>,
    handler: Handler,
    /// The handler's store, once the pool is populated (or found populated).
    store: Option<Store<'eal>>,
    name: String,
}

// SAFETY: the handle's pointers are into memzones that live as long as the EAL borrow; the
// shared words are atomics or protected by the pool's protocols (caches are only touched by
// the thread holding their lcore id; the store synchronises itself).
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; `&Mempool` operations are the get/put protocol.
unsafe impl Sync for Mempool<'_> {}

impl std::fmt::Debug for Mempool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name)
            .field("size", &self.size())
            .field("populated", &self.populated_size())
            .field("handler", &self.handler_name())
            .finish()
    }
}

fn eal_error(pool: &str) -> impl FnOnce(EalError) -> MempoolError + '_ {
    move |source| MempoolError::Eal {
        pool: pool.to_owned(),
        source,
    }
}

fn check_name(name: &str) -> Result<(), MempoolError> {
    if name.len() > MEMPOOL_NAME_MAX {
        return Err(MempoolError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
            max: MEMPOOL_NAME_MAX,
        });
    }
    if name.is_empty() || name.as_bytes().contains(&0) {
        return Err(MempoolError::InvalidArgument(format!(
            "mempool name {name:?} is empty or holds a NUL"
        )));
    }
    Ok(())
}

impl<'eal> Mempool<'eal> {
    // ---- creation ---------------------------------------------------------------

    /// Creates and populates a pool of `n` objects of `elt_size` bytes
    /// (`rte_mempool_create` without init callbacks).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        eal: &'eal Eal,
        name: &str,
        n: u32,
        elt_size: u32,
        cache_size: u32,
        private_data_size: u32,
        socket_id: i32,
        flags: MempoolFlags,
    ) -> Result<Mempool<'eal>, MempoolError> {
        let config = MempoolConfig {
            name,
            n,
            elt_size,
            cache_size,
            private_data_size,
            socket_id,
            flags,
        };
        Self::create_with(eal, &config, |_| {}, |_, _, _| {})
    }

    /// Creates a pool, runs `pool_init` on it (to fill the private area), populates it with
    /// the default memory, then runs `obj_init` on every object with its index
    /// (`rte_mempool_create`). On any failure nothing is left behind.
    pub fn create_with(
        eal: &'eal Eal,
        config: &MempoolConfig<'_>,
        pool_init: impl FnOnce(&mut Mempool<'eal>),
        mut obj_init: impl FnMut(&Mempool<'eal>, *mut u8, u32),
    ) -> Result<Mempool<'eal>, MempoolError> {
        let mut pool = Self::create_empty(eal, config)?;
        pool_init(&mut pool);
        if let Err(e) = pool.populate_default() {
            let _ = pool.free();
            return Err(e);
        }
        pool.obj_iter(|p, obj, i| obj_init(p, obj, i));
        Ok(pool)
    }

    /// Creates a pool with no objects yet (`rte_mempool_create_empty`): choose a handler
    /// ([`Mempool::set_handler`]), then populate it.
    pub fn create_empty(
        eal: &'eal Eal,
        config: &MempoolConfig<'_>,
    ) -> Result<Mempool<'eal>, MempoolError> {
        let flags = config.flags.checked()?;
        check_name(config.name)?;
        if config.n == 0 {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {:?}: a pool needs at least one object",
                config.name
            )));
        }
        if config.cache_size > CACHE_MAX_SIZE
            || cache::flush_threshold(config.cache_size) > config.n
        {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {:?}: cache size {} must be at most {CACHE_MAX_SIZE} and at most \
                 n / 1.5 ({} objects)",
                config.name,
                config.cache_size,
                config.n * 2 / 3
            )));
        }
        let obj = calc_obj_size(config.elt_size, flags);
        let private = (config.private_data_size as usize).next_multiple_of(CACHE_LINE);
        let private_offset = core::mem::size_of::<PoolHeader>();
        let cache_offset = if config.cache_size > 0 {
            private_offset + private
        } else {
            0
        };
        let total = private_offset + private + if cache_offset > 0 { caches_size() } else { 0 };
        let zone_name = format!("{MEMZONE_PREFIX}{}", config.name);
        let zone = eal
            .memzones()
            .reserve_aligned(&zone_name, total, config.socket_id, 0, CACHE_LINE)
            .map_err(|e| {
                if e.kind() == ErrorKind::Exist {
                    MempoolError::AlreadyExists(config.name.to_owned())
                } else {
                    eal_error(config.name)(e)
                }
            })?;
        let header = NonNull::new(zone.as_ptr().cast::<PoolHeader>()).expect("memzone at 0");
        let handler_name = handler::default_for(flags);
        // SAFETY: the memzone is new (nobody else knows its name yet), 64-byte aligned and
        // `total` bytes long: room for the header, the private area and the caches.
        unsafe {
            header.as_ptr().write(PoolHeader::new(
                config.name,
                handler_name,
                flags.0 | MempoolFlags::NON_IO.0,
                config.n,
                config.cache_size,
                config.elt_size,
                obj,
                config.private_data_size,
                config.socket_id,
                private_offset as u32,
                cache_offset as u32,
            ))
        };
        let caches = if cache_offset > 0 {
            // SAFETY: the caches area is inside the memzone (sized above).
            let first = unsafe { zone.as_ptr().add(cache_offset) }.cast::<CacheState>();
            for lcore in 0..MAX_LCORE as usize {
                let cache = first.wrapping_add(lcore);
                // SAFETY: lcore < MAX_LCORE: inside the caches area; nothing uses it yet.
                unsafe { cache.write(CacheState::new(config.cache_size)) };
            }
            first
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: the header is fully written; the magic marks it complete for lookups, and
        // Release publishes the fields written before it.
        unsafe { &(*header.as_ptr()).magic }.store(POOL_MAGIC, Ordering::Release);
        let pool = Mempool {
            eal,
            zone,
            header,
            caches,
            lcore: eal.lcore_threads().lcore_id_probe(),
            handler: handler::find(handler_name)?,
            store: None,
            name: config.name.to_owned(),
        };
        pool.count_handle(1);
        Ok(pool)
    }

    /// A handle on the pool called `name`, made by this process or another one
    /// (`rte_mempool_lookup`). Its handler must be registered in this process, and the pool
    /// fully populated ([`MempoolError::NotReady`] before: its builder is still writing it).
    pub fn lookup(eal: &'eal Eal, name: &str) -> Result<Mempool<'eal>, MempoolError> {
        check_name(name)?;
        let zone = eal
            .memzones()
            .lookup(&format!("{MEMZONE_PREFIX}{name}"))
            .ok_or_else(|| MempoolError::NotFound(name.to_owned()))?;
        Self::open(eal, zone).ok_or_else(|| MempoolError::NotFound(name.to_owned()))?
    }

    /// Opens the pool whose header memzone is `zone`; `None` when it holds no pool header.
    fn open(eal: &'eal Eal, zone: Memzone) -> Option<Result<Mempool<'eal>, MempoolError>> {
        if (zone.len as usize) < core::mem::size_of::<PoolHeader>() {
            return None;
        }
        let header = NonNull::new(zone.as_ptr().cast::<PoolHeader>())?;
        // SAFETY: the memzone is mapped for at least a header's bytes (checked); the magic
        // is written last when a pool is made.
        let h = unsafe { header.as_ref() };
        if h.magic.load(Ordering::Acquire) != POOL_MAGIC
            || format!("{MEMZONE_PREFIX}{}", decode(&h.name)) != zone.name
        {
            return None;
        }
        let name = decode(&h.name);
        // The handle that populates the pool writes header fields (handler, chunk and object
        // lists, the store's word) while it does; a second handle reading them meanwhile
        // would race it. So other handles open a pool only once it is fully populated: the
        // last populate publishes every field with its Release store of `populated_size`,
        // and nothing but `free` writes them afterwards. (DPDK lets a lookup see a
        // half-built pool; here that is `ENOENT` until it is ready.)
        if h.populated_size.load(Ordering::Acquire) != h.size {
            return Some(Err(MempoolError::NotReady(name)));
        }
        let handler = match handler::find(&decode(&h.handler)) {
            Ok(handler) => handler,
            Err(e) => return Some(Err(e)),
        };
        let caches = if h.cache_offset > 0 {
            // SAFETY: the creator put the caches at this offset inside the memzone.
            unsafe { zone.as_ptr().add(h.cache_offset as usize) }.cast::<CacheState>()
        } else {
            core::ptr::null_mut()
        };
        let mut pool = Mempool {
            eal,
            zone,
            header,
            caches,
            lcore: eal.lcore_threads().lcore_id_probe(),
            handler,
            store: None,
            name,
        };
        // Counted now: an early return drops (and uncounts) the handle.
        pool.count_handle(1);
        if MempoolFlags(h.flags()).contains(MempoolFlags::POOL_CREATED) {
            let attached = Store::attach(&pool.handler, eal, &pool.context());
            match attached {
                Ok(store) => pool.store = Some(store),
                Err(reason) => return Some(Err(pool.handler_error(reason))),
            }
        }
        Some(Ok(pool))
    }

    /// Calls `f` on every pool of the EAL (`rte_mempool_walk`); pools whose handler this
    /// process has not registered, and pools not fully populated yet, are skipped.
    pub fn walk(eal: &'eal Eal, mut f: impl FnMut(&Mempool<'eal>)) {
        for zone in eal.memzones().list() {
            if !zone.name.starts_with(MEMZONE_PREFIX) {
                continue;
            }
            if let Some(Ok(pool)) = Self::open(eal, zone) {
                f(&pool);
            }
        }
    }

    fn count_handle(&self, delta: isize) -> usize {
        let mut open = open_handles().lock().unwrap_or_else(|e| e.into_inner());
        let key = self.header.as_ptr() as u64;
        let count = open.entry(key).or_insert(0);
        *count = count
            .checked_add_signed(delta)
            .expect("handle count underflow");
        let now = *count;
        if now == 0 {
            open.remove(&key);
        }
        now
    }

    /// Frees the pool and all its memory (`rte_mempool_free`), after the destroy event.
    /// Refused (`EBUSY`) while this process has other handles on it; handles in other
    /// processes must be gone, as with DPDK. Objects still out are lost with the memory.
    pub fn free(self) -> Result<(), MempoolError> {
        {
            let open = open_handles().lock().unwrap_or_else(|e| e.into_inner());
            if open
                .get(&(self.header.as_ptr() as u64))
                .copied()
                .unwrap_or(0)
                > 1
            {
                return Err(MempoolError::Eal {
                    pool: self.name.clone(),
                    source: EalError::Busy(format!(
                        "mempool {:?} has other handles in this process",
                        self.name
                    )),
                });
            }
        }
        events::invoke(MempoolEvent::Destroy, &self);
        let mut this = self;
        if let Some(store) = this.store.take() {
            store.free(&this.context());
        }
        this.free_chunks();
        let (eal, zone) = (this.eal, this.zone.clone());
        // The handle goes (and is uncounted) before its memzone does.
        drop(this);
        eal.memzones().free(&zone).map_err(eal_error(&zone.name))
    }

    fn free_chunks(&mut self) {
        let mut zones = Vec::new();
        let mut at = self.hdr().chunk_head;
        while at != 0 {
            // SAFETY: chunk records are heap blocks this pool allocated and links to them
            // only through the header's list.
            let rec = unsafe { &*(at as *const ChunkRecord) };
            let next = rec.next;
            let callback = chunk_free_callbacks()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&at);
            if let Some(region) = callback {
                (region.free)(region.addr as *mut u8, region.len);
            }
            if rec.anonymous != 0 {
                // SAFETY: the chunk is an anonymous mapping this pool made; its objects die
                // with the pool.
                let _ = unsafe { dpmem_sys::mapping::release(rec.addr as usize, rec.len as usize) };
            }
            let zone = decode(&rec.memzone);
            if !zone.is_empty() && !zones.contains(&zone) {
                zones.push(zone);
            }
            // SAFETY: the record came from this EAL's heap and is unlinked with the others.
            let _ = unsafe {
                self.eal
                    .heaps()
                    .free(NonNull::new(at as *mut u8).expect("record at 0"))
            };
            at = next;
        }
        for name in zones {
            if let Some(zone) = self.eal.memzones().lookup(&name) {
                let _ = self.eal.memzones().free(&zone);
            }
        }
        let h = self.hdr_mut();
        h.chunk_head = 0;
        h.chunk_tail = 0;
        h.obj_head = 0;
        h.obj_tail = 0;
        h.nb_mem_chunks.store(0, crate::sync::Ordering::Relaxed);
        h.populated_size.store(0, crate::sync::Ordering::Relaxed);
    }

    /// Chooses the handler by name (`rte_mempool_set_ops_byname`); only before the first
    /// populate (`EEXIST` after).
    pub fn set_handler(&mut self, name: &str) -> Result<(), MempoolError> {
        if self.flags().contains(MempoolFlags::POOL_CREATED) {
            return Err(MempoolError::HandlerFixed {
                pool: self.name.clone(),
                handler: self.handler_name(),
            });
        }
        let handler = handler::find(name)?;
        self.hdr_mut().handler = encode(name);
        self.handler = handler;
        Ok(())
    }

    // ---- accessors --------------------------------------------------------------

    #[inline(always)]
    fn hdr(&self) -> &PoolHeader {
        // SAFETY: the header lives in the pool's memzone, which outlives the handle.
        unsafe { self.header.as_ref() }
    }

    fn hdr_mut(&mut self) -> &mut PoolHeader {
        // SAFETY: as `hdr`; the fields written through this are written only by the
        // populating handle (`&mut self`), before other threads can use the objects.
        unsafe { self.header.as_mut() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn eal(&self) -> &'eal Eal {
        self.eal
    }

    /// Objects when full.
    pub fn size(&self) -> u32 {
        self.hdr().size
    }

    pub fn cache_size(&self) -> u32 {
        self.hdr().cache_size
    }

    /// The element size asked for.
    pub fn elt_size(&self) -> u32 {
        self.hdr().requested_elt_size
    }

    /// The slot layout of every object.
    pub fn obj_size(&self) -> ObjSize {
        let h = self.hdr();
        ObjSize {
            header_size: h.header_size,
            elt_size: h.rounded_elt_size,
            trailer_size: h.trailer_size,
            total_size: h.total_size,
        }
    }

    pub fn socket_id(&self) -> i32 {
        self.hdr().socket_id
    }

    pub fn flags(&self) -> MempoolFlags {
        MempoolFlags(self.hdr().flags())
    }

    /// Whether no object has a valid IOVA (the pool cannot be used for device IO).
    pub fn is_non_io(&self) -> bool {
        self.flags().contains(MempoolFlags::NON_IO)
    }

    pub fn handler_name(&self) -> String {
        decode(&self.hdr().handler)
    }

    pub fn populated_size(&self) -> u32 {
        self.hdr()
            .populated_size
            .load(crate::sync::Ordering::Acquire)
    }

    pub fn nb_mem_chunks(&self) -> u32 {
        self.hdr()
            .nb_mem_chunks
            .load(crate::sync::Ordering::Acquire)
    }

    /// The private data area (`rte_mempool_get_priv`): `private_data_size` bytes, rounded up
    /// to a cache line, zeroed at creation.
    pub fn private_data(&self) -> *mut u8 {
        // SAFETY: the private area is inside the header memzone at this offset.
        unsafe { self.zone.as_ptr().add(self.hdr().private_offset as usize) }
    }

    pub fn private_data_size(&self) -> u32 {
        self.hdr().private_data_size
    }

    /// The memzone holding the header, private area and caches.
    pub fn memzone(&self) -> &Memzone {
        &self.zone
    }

    fn context(&self) -> PoolContext<'_> {
        PoolContext {
            eal: self.eal,
            name: &self.name,
            size: self.size(),
            socket_id: self.socket_id(),
            flags: self.flags(),
            pool_data: self.hdr().pool_data,
        }
    }

    fn handler_error(&self, reason: String) -> MempoolError {
        MempoolError::Handler {
            pool: self.name.clone(),
            handler: self.handler_name(),
            reason,
        }
    }

    // ---- populate ---------------------------------------------------------------

    /// Builds the handler's store at the first populate and fixes the page rule.
    fn ensure_store(&mut self) -> Result<(), MempoolError> {
        if self.store.is_some() {
            return Ok(());
        }
        let built = Store::alloc(&self.handler, self.eal, &self.context());
        let (data, store) = built.map_err(|reason| self.handler_error(reason))?;
        let need_contig = !self.flags().contains(MempoolFlags::NO_IOVA_CONTIG);
        let page_bound = if need_contig {
            self.eal
                .memory()
                .page_sizes()
                .first()
                .copied()
                .unwrap_or(dpmem_sys::mapping::system_page_size() as u64)
        } else {
            0
        };
        let h = self.hdr_mut();
        h.pool_data = data;
        h.page_bound = page_bound;
        h.set_flags(MempoolFlags::POOL_CREATED.0, 0);
        self.store = Some(store);
        Ok(())
    }

    /// Adds the objects that fit in `[addr, addr + len)` (whose IOVA is `iova`) and records
    /// the chunk. Returns the number added.
    fn add_chunk(
        &mut self,
        addr: usize,
        iova: u64,
        len: usize,
        memzone: &str,
        anonymous: bool,
    ) -> Result<u32, MempoolError> {
        let size = self.size();
        let mut populated = self.populated_size();
        if populated >= size {
            return Err(MempoolError::Full(self.name.clone()));
        }
        self.ensure_store()?;
        let obj = self.obj_size();
        let total = obj.total_size as usize;
        let page = self.hdr().page_bound as usize;
        let align = slot_align(self.flags());
        // Where the slots go, before anything is written.
        let mut slots = Vec::new();
        let mut off = addr.next_multiple_of(align) - addr;
        while populated + (slots.len() as u32) < size && off + total <= len {
            if crosses_page(addr + off, total, page) {
                off = (addr + off).next_multiple_of(page) - addr;
                continue;
            }
            slots.push(addr + off);
            off += total;
        }
        if slots.is_empty() {
            return Err(MempoolError::RegionTooSmall {
                pool: self.name.clone(),
                addr,
                len,
                total,
            });
        }
        let record = self
            .eal
            .heaps()
            .zmalloc_socket(core::mem::size_of::<ChunkRecord>(), 0, self.socket_id())
            .or_else(|_| {
                self.eal
                    .heaps()
                    .zmalloc(core::mem::size_of::<ChunkRecord>(), 0)
            })
            .map_err(eal_error(&self.name))?
            .cast::<ChunkRecord>();
        // SAFETY: a fresh heap block sized and aligned for a record.
        unsafe {
            record.as_ptr().write(ChunkRecord {
                next: 0,
                addr: addr as u64,
                iova,
                len: len as u64,
                memzone: encode(memzone),
                anonymous: u32::from(anonymous),
                objects: slots.len() as u32,
            })
        };
        let record_addr = record.as_ptr() as u64;
        let pool_addr = self.header.as_ptr() as u64;
        let header_size = obj.header_size as usize;
        let mut batch = [0usize; 64];
        let mut batched = 0;
        let mut prev_tail = self.hdr().obj_tail;
        for &slot in &slots {
            let obj_addr = slot + header_size;
            // The header ends where the object starts (the rest of the header area pads).
            let hdr_addr = obj_addr - core::mem::size_of::<ObjHeader>();
            let obj_hdr = ObjHeader {
                next: 0,
                pool: pool_addr,
                iova: if iova == BAD_IOVA {
                    BAD_IOVA
                } else {
                    iova + (obj_addr - addr) as u64
                },
                cookie: COOKIE_IN_POOL,
            };
            // SAFETY: the slot lies inside the caller's region (computed above), which the
            // pool now owns; the header sits in its first bytes.
            unsafe { (hdr_addr as *mut ObjHeader).write(obj_hdr) };
            if cfg!(feature = "debug") {
                // SAFETY: the trailer's cookie sits right after the element, inside the slot.
                unsafe {
                    ((obj_addr + obj.elt_size as usize) as *mut u64).write_unaligned(COOKIE_TRAILER)
                };
            }
            if prev_tail == 0 {
                self.hdr_mut().obj_head = hdr_addr as u64;
            } else {
                // SAFETY: prev_tail is the header of this pool's previous last object.
                unsafe { (*(prev_tail as *mut ObjHeader)).next = hdr_addr as u64 };
            }
            prev_tail = hdr_addr as u64;
            if cfg!(feature = "debug") {
                dpmem_eal::memcheck::make_noaccess(obj_addr as *const u8, obj.elt_size as usize);
            }
            batch[batched] = obj_addr;
            batched += 1;
            if batched == batch.len() {
                self.store_objects(&batch)?;
                batched = 0;
            }
        }
        self.store_objects(&batch[..batched])?;
        let count = slots.len() as u32;
        populated += count;
        let h = self.hdr_mut();
        h.obj_tail = prev_tail;
        if h.chunk_tail == 0 {
            h.chunk_head = record_addr;
        } else {
            // SAFETY: chunk_tail is this pool's last record.
            unsafe { (*(h.chunk_tail as *mut ChunkRecord)).next = record_addr };
        }
        h.chunk_tail = record_addr;
        if iova != BAD_IOVA {
            h.set_flags(0, MempoolFlags::NON_IO.0);
        }
        h.nb_mem_chunks.fetch_add(1, crate::sync::Ordering::Release);
        // Last: once it reaches the size, other handles may open the pool (see `open`).
        h.populated_size
            .store(populated, crate::sync::Ordering::Release);
        if populated == size {
            events::invoke(MempoolEvent::Ready, self);
        }
        Ok(count)
    }

    fn store_objects(&self, objs: &[usize]) -> Result<(), MempoolError> {
        let store = self.store.as_ref().expect("store built before objects");
        if store.enqueue(objs) {
            Ok(())
        } else {
            Err(self.handler_error(format!("refused {} new objects", objs.len())))
        }
    }

    /// Adds objects in caller memory `[addr, addr + len)` whose IOVA is `iova` (or
    /// [`BAD_IOVA`]) (`rte_mempool_populate_iova`). Returns the objects added; `ENOSPC`
    /// when the pool is full, `EINVAL` when not one object fits.
    ///
    /// # Safety
    /// The region is valid for reads and writes, used by nothing else, and stays mapped (at
    /// the same address in every process that uses the pool) until the pool is freed, when
    /// `free_fn` (if any) is called with it.
    pub unsafe fn populate_iova(
        &mut self,
        addr: *mut u8,
        iova: u64,
        len: usize,
        free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        let added = self.add_chunk(addr as usize, iova, len, "", false)?;
        if let Some(free) = free_fn {
            register_region_free(self.hdr().chunk_tail, addr as usize, len, free);
        }
        Ok(added)
    }

    /// Adds objects in caller memory of pages of `page_size`, splitting it where its IOVA is
    /// not contiguous so that no object spans a discontinuity (`rte_mempool_populate_virt`).
    /// `addr` and `len` must be multiples of `page_size` (`EINVAL`).
    ///
    /// # Safety
    /// As [`Mempool::populate_iova`].
    pub unsafe fn populate_virt(
        &mut self,
        addr: *mut u8,
        len: usize,
        page_size: usize,
        free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        self.populate_region(addr as usize, len, page_size, "", free_fn)
    }

    fn populate_region(
        &mut self,
        addr: usize,
        len: usize,
        page_size: usize,
        memzone: &str,
        mut free_fn: Option<ChunkFreeFn>,
    ) -> Result<u32, MempoolError> {
        if !page_size.is_power_of_two()
            || !addr.is_multiple_of(page_size)
            || !len.is_multiple_of(page_size)
            || len == 0
        {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {:?}: region {addr:#x} + {len:#x} is not whole pages of {page_size:#x}",
                self.name
            )));
        }
        let memory = self.eal.memory();
        let iova_of = |va: usize| -> u64 {
            if self.eal.iova_mode() == IovaMode::Va {
                va as u64
            } else {
                memory.virt_to_iova(va).unwrap_or(BAD_IOVA)
            }
        };
        let mut added = 0;
        let mut off = 0;
        while off < len && self.populated_size() < self.size() {
            let iova = iova_of(addr + off);
            let mut run = page_size;
            while off + run < len
                && iova != BAD_IOVA
                && iova_of(addr + off + run) == iova + run as u64
            {
                run += page_size;
            }
            match self.add_chunk(addr + off, iova, run, memzone, false) {
                Ok(n) => {
                    added += n;
                    // The callback frees the whole region: it goes with its first chunk.
                    if let Some(free) = free_fn.take() {
                        register_region_free(self.hdr().chunk_tail, addr, len, free);
                    }
                }
                Err(MempoolError::RegionTooSmall { .. }) => {}
                Err(e) => return Err(e),
            }
            off += run;
        }
        if added == 0 {
            return Err(MempoolError::RegionTooSmall {
                pool: self.name.clone(),
                addr,
                len,
                total: self.obj_size().total_size as usize,
            });
        }
        Ok(added)
    }

    /// Populates the whole pool with memory from the EAL (`rte_mempool_populate_default`):
    /// one IOVA-contiguous memzone when it can get one, else page-aligned memory split where
    /// its IOVA breaks; objects never straddle a page unless `NO_IOVA_CONTIG`. `EEXIST` when
    /// the pool already has memory.
    pub fn populate_default(&mut self) -> Result<u32, MempoolError> {
        self.populate_from_memzones(false)
    }

    /// Populates the whole pool in one memzone, so its objects form one region of memory
    /// (IOVA-contiguous unless `NO_IOVA_CONTIG`) — what a device that registers one memory
    /// area for all buffers needs (AF_XDP's UMEM). `ENOMEM` when no such region is free.
    pub fn populate_single_region(&mut self) -> Result<u32, MempoolError> {
        self.populate_from_memzones(true)
    }

    fn populate_from_memzones(&mut self, single: bool) -> Result<u32, MempoolError> {
        if self.nb_mem_chunks() != 0 {
            return Err(MempoolError::AlreadyExists(format!(
                "{} (already populated)",
                self.name
            )));
        }
        self.ensure_store()?;
        let result = self.populate_memzones_inner(single);
        if result.is_err() {
            self.unpopulate();
        }
        result
    }

    fn populate_memzones_inner(&mut self, single: bool) -> Result<u32, MempoolError> {
        let need_contig = !self.flags().contains(MempoolFlags::NO_IOVA_CONTIG);
        let page = self.hdr().page_bound as usize;
        let total = self.obj_size().total_size as usize;
        let align = slot_align(self.flags()).max(page);
        let mut added = 0;
        while self.populated_size() < self.size() {
            let remaining = (self.size() - self.populated_size()) as usize;
            let zone_name = format!("{MEMZONE_PREFIX}{}_{}", self.name, self.hdr().next_zone_id);
            self.hdr_mut().next_zone_id += 1;
            let bytes = mem_size(remaining, total, page, slot_align(self.flags()));
            let memzones = self.eal.memzones();
            let contig_flag = if need_contig {
                mz_flags::IOVA_CONTIG
            } else {
                0
            };
            let mut zone =
                memzones.reserve_aligned(&zone_name, bytes, self.socket_id(), contig_flag, align);
            if zone.is_err() && need_contig && !single {
                zone = memzones.reserve_aligned(&zone_name, bytes, self.socket_id(), 0, align);
            }
            let zone = zone.map_err(eal_error(&self.name))?;
            let contiguous = zone.iova != BAD_IOVA
                && (zone.flags & mz_flags::IOVA_CONTIG != 0
                    || self.eal.iova_mode() == IovaMode::Va);
            let n = if contiguous || single {
                self.add_chunk(
                    zone.va as usize,
                    zone.iova,
                    zone.len as usize,
                    &zone.name,
                    false,
                )
            } else {
                let page_size = zone.page_size as usize;
                let start = (zone.va as usize).next_multiple_of(page_size);
                let end = ((zone.va + zone.len) as usize) / page_size * page_size;
                self.populate_region(start, end - start, page_size, &zone.name, None)
            };
            match n {
                Ok(n) => added += n,
                Err(e) => {
                    let _ = memzones.free(&zone);
                    return Err(e);
                }
            }
        }
        Ok(added)
    }

    /// Populates with anonymous memory of this process (`rte_mempool_populate_anon`): no
    /// IOVA (the pool becomes non-IO) and not shared with other processes. Only on an empty
    /// pool; returns the objects added.
    pub fn populate_anon(&mut self) -> Result<u32, MempoolError> {
        if self.nb_mem_chunks() != 0 {
            return Err(MempoolError::AlreadyExists(format!(
                "{} (already populated)",
                self.name
            )));
        }
        self.ensure_store()?;
        let page = dpmem_sys::mapping::system_page_size();
        let bytes = mem_size(
            self.size() as usize,
            self.obj_size().total_size as usize,
            self.hdr().page_bound as usize,
            slot_align(self.flags()),
        )
        .next_multiple_of(page);
        let sys = |e| {
            eal_error(&self.name)(EalError::Sys {
                context: "mempool anonymous memory".to_owned(),
                source: e,
            })
        };
        let addr = dpmem_sys::mapping::reserve(bytes, page, None).map_err(sys)?;
        // SAFETY: [addr, addr + bytes) is the reservation just made, used by nothing.
        if let Err(e) = unsafe { dpmem_sys::mapping::map_anonymous_fixed(addr, bytes, None, false) }
        {
            // SAFETY: the reservation is ours and unused.
            let _ = unsafe { dpmem_sys::mapping::release(addr, bytes) };
            return Err(sys(e));
        }
        match self.add_chunk(addr, BAD_IOVA, bytes, "", true) {
            Ok(n) => Ok(n),
            Err(e) => {
                // SAFETY: the mapping is ours and no object in it was handed out.
                let _ = unsafe { dpmem_sys::mapping::release(addr, bytes) };
                Err(e)
            }
        }
    }

    /// Takes every object back out of the store and frees the chunks: the pool is empty
    /// again (after a failed populate).
    fn unpopulate(&mut self) {
        let populated = self.populated_size() as usize;
        if let Some(store) = &self.store {
            let mut drained = vec![0usize; populated];
            if populated > 0 && !store.dequeue(&mut drained) {
                // Some objects are out (the pool was used meanwhile): keep the memory.
                return;
            }
        }
        self.free_chunks();
    }

    // ---- get and put ------------------------------------------------------------

    /// The cache of `lcore` (the pool has caches, `lcore < MAX_LCORE`).
    fn cache_len_at(&self, lcore: usize) -> u32 {
        assert!(!self.caches.is_null() && lcore < MAX_LCORE as usize);
        let cache = self.caches.wrapping_add(lcore);
        // SAFETY: the caches area holds MAX_LCORE initialised caches (asserted in range);
        // `len_of` reads the atomic `len` alone, so the owner may be at work.
        unsafe { cache::len_of(cache) }
    }

    /// The trailer word after object `obj`'s element.
    ///
    /// # Safety
    /// `obj` is an object of this pool.
    unsafe fn trailer_of(&self, obj: *const u8) -> u64 {
        let at = obj
            .wrapping_add(self.hdr().rounded_elt_size as usize)
            .cast::<u64>();
        // SAFETY: the trailer follows the element inside the object's slot.
        unsafe { at.read_unaligned() }
    }

    /// The calling thread's cache in this pool, or null (no caches, or no lcore id).
    #[inline(always)]
    pub(crate) fn lcore_cache_slot(&self) -> *mut CacheState {
        if self.caches.is_null() {
            return core::ptr::null_mut();
        }
        let lcore = self.lcore.lcore_id();
        if lcore >= MAX_LCORE {
            return core::ptr::null_mut();
        }
        // SAFETY: lcore < MAX_LCORE: the caches area holds one cache per lcore id.
        unsafe { self.caches.add(lcore as usize) }
    }

    /// The calling thread's lcore id in the pool's EAL.
    pub(crate) fn current_lcore(&self) -> u32 {
        self.lcore.lcore_id()
    }

    /// The calling thread's cache when plain gets and puts may use it: null without one, or
    /// while an [`LcoreCache`] handle holds it (the handle keeps its length in a register).
    #[inline(always)]
    fn plain_lcore_cache(&self) -> *mut CacheState {
        let cache = self.lcore_cache_slot();
        // SAFETY: a non-null slot is a live cache in the pool's memzone; the reference covers
        // the atomic `held` alone. Acquire pairs with the release of a dropped handle, so the
        // slots it wrote are seen.
        if !cache.is_null() && unsafe { (*cache).held.load(Ordering::Acquire) } != 0 {
            return core::ptr::null_mut();
        }
        cache
    }

    /// The calling thread's cache as a handle (`rte_mempool_default_cache`), for loops that
    /// get and put many times: the handle finds the cache once and keeps its length in a
    /// register, where [`get_bulk`](Self::get_bulk) and [`put_bulk`](Self::put_bulk) look both
    /// up on every call. Without a cache (a pool made with cache size 0, or a thread with no
    /// lcore id) the handle's gets and puts go to the handler, as those calls do.
    ///
    /// While the handle lives, this thread's plain gets and puts skip the cache (going to the
    /// handler), so the two never disagree about what it holds. `EBUSY`
    /// ([`MempoolError::CacheBusy`]) when another handle holds the cache.
    ///
    /// Without a cache the handle reaches the handler through a call, so that loops over a
    /// handle with a cache hold the cache's few instructions only: a pool made without caches
    /// is better served by [`generic_get`](Self::generic_get) and
    /// [`generic_put`](Self::generic_put) with no cache (as DPDK code passes a null cache),
    /// which inline the handler.
    #[inline]
    pub fn lcore_cache(&self) -> Result<LcoreCache<'_, 'eal>, MempoolError> {
        LcoreCache::new(self)
    }

    /// Takes `objs.len()` objects, all or none (`rte_mempool_get_bulk`), through the calling
    /// lcore's cache when it has one. `ENOENT` ([`MempoolError::Exhausted`]) when there are
    /// not that many.
    ///
    /// Without a cache this reaches the handler through a call, for the reason given at
    /// [`Mempool::lcore_cache`]; [`generic_get`](Self::generic_get) with no cache inlines it.
    #[inline(always)]
    pub fn get_bulk(&self, objs: &mut [*mut u8]) -> Result<(), MempoolError> {
        let cache = self.plain_lcore_cache();
        if cache.is_null() {
            return self.get_uncached(objs);
        }
        // SAFETY: a per-lcore cache is used only by the thread holding that lcore id.
        unsafe { self.get_with(objs, cache) }
    }

    /// [`Mempool::get_bulk`] without a cache, out of line (one object with its length known,
    /// so the handler's copy is a single move).
    #[inline(never)]
    pub(crate) fn get_uncached(&self, objs: &mut [*mut u8]) -> Result<(), MempoolError> {
        match objs {
            // SAFETY: no cache.
            [one] => unsafe { self.get_with(core::slice::from_mut(one), core::ptr::null_mut()) },
            // SAFETY: no cache.
            _ => unsafe { self.get_with(objs, core::ptr::null_mut()) },
        }
    }

    /// One object (`rte_mempool_get`).
    #[inline]
    pub fn get(&self) -> Result<NonNull<u8>, MempoolError> {
        let mut one = [core::ptr::null_mut(); 1];
        self.get_bulk(&mut one)?;
        Ok(NonNull::new(one[0]).expect("pool objects are never at 0"))
    }

    /// Returns objects (`rte_mempool_put_bulk`), through the calling lcore's cache.
    ///
    /// # Safety
    /// Every pointer came from a get on this pool and has not been put back since, and
    /// nothing uses the objects afterwards. With the `debug` feature a violation that the
    /// object headers reveal (another pool's object, a double put, a write past the end)
    /// panics before the pool is touched.
    ///
    /// Without a cache this reaches the handler through a call, as [`Mempool::get_bulk`].
    #[inline(always)]
    pub unsafe fn put_bulk(&self, objs: &[*mut u8]) {
        let cache = self.plain_lcore_cache();
        if cache.is_null() {
            // SAFETY: the caller's contract.
            return unsafe { self.put_uncached(objs) };
        }
        // SAFETY: the caller's contract; the cache is this thread's (lcore id).
        unsafe { self.put_with(objs, cache) }
    }

    /// [`Mempool::put_bulk`] without a cache, out of line.
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline(never)]
    pub(crate) unsafe fn put_uncached(&self, objs: &[*mut u8]) {
        match objs {
            // SAFETY: the caller's contract; no cache.
            [one] => unsafe { self.put_with(core::slice::from_ref(one), core::ptr::null_mut()) },
            // SAFETY: the caller's contract; no cache.
            _ => unsafe { self.put_with(objs, core::ptr::null_mut()) },
        }
    }

    /// Returns one object (`rte_mempool_put`).
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline]
    pub unsafe fn put(&self, obj: NonNull<u8>) {
        // SAFETY: the caller's contract.
        unsafe { self.put_bulk(&[obj.as_ptr()]) }
    }

    /// Gets through `cache` (`rte_mempool_generic_get`), or straight from the handler.
    #[inline(always)]
    pub fn generic_get(
        &self,
        objs: &mut [*mut u8],
        cache: Option<&mut UserCache>,
    ) -> Result<(), MempoolError> {
        let cache = match cache {
            Some(c) => c.bind(self)?,
            None => core::ptr::null_mut(),
        };
        // SAFETY: a user cache is borrowed mutably for the call.
        unsafe { self.get_with(objs, cache) }
    }

    /// Puts through `cache` (`rte_mempool_generic_put`), or straight into the handler.
    ///
    /// # Safety
    /// As [`Mempool::put_bulk`].
    #[inline(always)]
    pub unsafe fn generic_put(
        &self,
        objs: &[*mut u8],
        cache: Option<&mut UserCache>,
    ) -> Result<(), MempoolError> {
        let cache = match cache {
            Some(c) => c.bind(self)?,
            None => core::ptr::null_mut(),
        };
        // SAFETY: the caller's contract; the user cache is borrowed mutably for the call.
        unsafe { self.put_with(objs, cache) };
        Ok(())
    }

    /// # Safety
    /// `cache` is null or a cache of this pool used by no other thread during the call.
    #[inline(always)]
    unsafe fn get_with(
        &self,
        objs: &mut [*mut u8],
        cache: *mut CacheState,
    ) -> Result<(), MempoolError> {
        let out = as_words_mut(objs);
        let done = match &self.store {
            None => false,
            Some(store) if cache.is_null() => store.dequeue(out),
            // SAFETY: the caller's contract on the cache.
            Some(store) => unsafe { cache::get(cache, store, out) },
        };
        if !done {
            return Err(self.exhausted(objs.len()));
        }
        self.debug_after_get(objs);
        Ok(())
    }

    /// # Safety
    /// As [`Mempool::put_bulk`], and `cache` as in `get_with`.
    #[inline(always)]
    unsafe fn put_with(&self, objs: &[*mut u8], cache: *mut CacheState) {
        let store = self.store_for_put(objs);
        let words = as_words(objs);
        if cache.is_null() {
            self.enqueue_direct(store, words);
        } else {
            // SAFETY: the caller's contract on the cache.
            unsafe { cache::put(cache, store, words) };
        }
    }

    /// The store, once the pool is populated (gets and puts of [`LcoreCache`]).
    #[inline(always)]
    pub(crate) fn store(&self) -> Option<&Store<'eal>> {
        self.store.as_ref()
    }

    /// With the `debug` feature: marks objects just got as out of the pool.
    #[inline(always)]
    pub(crate) fn debug_after_get(&self, objs: &[*mut u8]) {
        if cfg!(feature = "debug") {
            self.mark_out(objs);
        }
    }

    /// The store a put goes to, after the `debug` feature's checks of `objs`.
    ///
    /// # Panics
    /// As [`Mempool::debug_before_put`], and when the pool has no store (so no object could
    /// have come from it).
    #[inline(always)]
    pub(crate) fn store_for_put(&self, objs: &[*mut u8]) -> &Store<'eal> {
        self.debug_before_put(objs);
        match &self.store {
            Some(store) => store,
            None => self.put_without_store(),
        }
    }

    /// With the `debug` feature: checks that `objs` are out of this pool, and marks them in.
    ///
    /// # Panics
    /// On an object the headers show is not out of this pool.
    #[inline(always)]
    pub(crate) fn debug_before_put(&self, objs: &[*mut u8]) {
        if cfg!(feature = "debug") {
            if let Err(e) = self.check_out(objs) {
                panic!("{e}");
            }
            self.mark_in(objs);
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn put_without_store(&self) -> ! {
        panic!(
            "mempool {:?}: put into a pool that has no objects",
            self.name
        );
    }

    /// Puts `words` into the store, bypassing any cache.
    ///
    /// # Panics
    /// When the store refuses them: more objects put than the pool holds.
    #[inline(always)]
    pub(crate) fn enqueue_direct(&self, store: &Store<'eal>, words: &[usize]) {
        if !store.enqueue(words) {
            self.refused_put(words.len());
        }
    }

    #[cold]
    #[inline(never)]
    fn refused_put(&self, n: usize) -> ! {
        panic!(
            "mempool {:?}: handler refused {n} objects (put twice?)",
            self.name
        );
    }

    #[cold]
    pub(crate) fn exhausted(&self, wanted: usize) -> MempoolError {
        MempoolError::Exhausted {
            pool: self.name.clone(),
            wanted,
        }
    }

    /// Empties the calling lcore's cache into the handler (`rte_mempool_cache_flush` on the
    /// default cache); nothing when the thread has none, or while an [`LcoreCache`] of this
    /// thread holds it.
    ///
    /// # Panics
    /// When the cache's length in shared memory is past its slots (corrupt memory): its
    /// objects cannot be told apart, and dropping them quietly would lose them.
    pub fn flush_lcore_cache(&self) {
        let cache = self.plain_lcore_cache();
        if let (false, Some(store)) = (cache.is_null(), &self.store) {
            // SAFETY: the cache is the calling thread's (its lcore id).
            unsafe { cache::flush(cache, store) };
        }
    }

    // ---- objects ----------------------------------------------------------------

    /// Where the header of object `obj` is, if `obj` is an object of some dpmem pool.
    fn obj_header(obj: *const u8) -> *mut ObjHeader {
        // The header ends where the object starts; for an object of a dpmem pool the
        // result is in bounds (dereferencing it is the callers' business).
        obj.wrapping_sub(core::mem::size_of::<ObjHeader>())
            .cast_mut()
            .cast()
    }

    /// Whether `obj`'s header names this pool (`rte_mempool_from_obj(obj) == mp`).
    ///
    /// # Safety
    /// `obj` is an object of some dpmem pool.
    pub unsafe fn owns(&self, obj: *const u8) -> bool {
        // SAFETY: the caller's contract.
        unsafe { (*Self::obj_header(obj)).pool == self.header.as_ptr() as u64 }
    }

    /// The IOVA of an object of this pool ([`BAD_IOVA`] when unknown)
    /// (`rte_mempool_virt2iova`).
    ///
    /// # Safety
    /// `obj` is an object of some dpmem pool.
    pub unsafe fn obj_iova(obj: *const u8) -> u64 {
        // SAFETY: the caller's contract.
        unsafe { (*Self::obj_header(obj)).iova }
    }

    /// The name of the pool `obj` belongs to (`rte_mempool_from_obj`).
    ///
    /// # Safety
    /// `obj` is an object of some dpmem pool that still exists.
    pub unsafe fn pool_name_of(obj: *const u8) -> String {
        // SAFETY: the caller's contract: obj's header is mapped...
        let pool = unsafe { (*Self::obj_header(obj)).pool } as *const PoolHeader;
        // SAFETY: ...and names a live pool header.
        decode(unsafe { &(*pool).name })
    }

    /// Calls `f(pool, object, index)` on every object, in or out of the pool
    /// (`rte_mempool_obj_iter`); returns how many.
    pub fn obj_iter(&self, mut f: impl FnMut(&Self, *mut u8, u32)) -> u32 {
        let elt = self.hdr().rounded_elt_size as usize;
        let mut at = self.hdr().obj_head;
        let mut i = 0;
        while at != 0 {
            let obj = (at as usize + core::mem::size_of::<ObjHeader>()) as *mut u8;
            // SAFETY: the list links this pool's object headers.
            let in_pool = unsafe { (*(at as *const ObjHeader)).cookie } == COOKIE_IN_POOL;
            // An object in the pool is no-access to memcheck; the callback may use it.
            if cfg!(feature = "debug") && in_pool {
                dpmem_eal::memcheck::make_defined(obj, elt);
            }
            f(self, obj, i);
            if cfg!(feature = "debug") && in_pool {
                dpmem_eal::memcheck::make_noaccess(obj, elt);
            }
            // SAFETY: the list links this pool's object headers.
            at = unsafe { (*(at as *const ObjHeader)).next };
            i += 1;
        }
        i
    }

    /// Calls `f` on every memory chunk (`rte_mempool_mem_iter`); returns how many.
    pub fn mem_iter(&self, mut f: impl FnMut(&Self, &MemChunk)) -> u32 {
        let mut at = self.hdr().chunk_head;
        let mut i = 0;
        while at != 0 {
            // SAFETY: the list links this pool's chunk records.
            let rec = unsafe { &*(at as *const ChunkRecord) };
            f(
                self,
                &MemChunk {
                    addr: rec.addr as usize,
                    iova: rec.iova,
                    len: rec.len as usize,
                    objects: rec.objects,
                },
            );
            at = rec.next;
            i += 1;
        }
        i
    }

    // ---- counts -----------------------------------------------------------------

    /// Objects in the pool: the handler's plus every lcore cache's
    /// (`rte_mempool_avail_count`). User caches are not counted.
    pub fn avail_count(&self) -> u32 {
        let mut count = self.store.as_ref().map_or(0, |s| s.count());
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                // SAFETY: lcore < MAX_LCORE; `len` is atomic, so reading it while its owner
                // works is a race on a counter, not on memory.
                count += self.cache_len_at(lcore);
            }
        }
        count.min(self.size())
    }

    /// Objects out of the pool (`rte_mempool_in_use_count`).
    pub fn in_use_count(&self) -> u32 {
        self.populated_size() - self.avail_count().min(self.populated_size())
    }

    pub fn is_full(&self) -> bool {
        self.avail_count() == self.size()
    }

    pub fn is_empty(&self) -> bool {
        self.avail_count() == 0
    }

    /// Objects in the calling lcore's cache (0 without one).
    pub fn lcore_cache_len(&self) -> u32 {
        let cache = self.lcore_cache_slot();
        if cache.is_null() {
            0
        } else {
            // SAFETY: the cache is inside the pool's memzone.
            unsafe { cache::len_of(cache) }
        }
    }

    // ---- checks -----------------------------------------------------------------

    /// Checks the pool's bookkeeping (`rte_mempool_audit`): counts within bounds, caches
    /// below their limits, every object's header naming this pool, and with the `debug`
    /// feature every object's trailer intact and cookie valid.
    pub fn audit(&self) -> Result<(), MempoolError> {
        let bad = |reason: String| MempoolError::Handler {
            pool: self.name.clone(),
            handler: self.handler_name(),
            reason,
        };
        if self.populated_size() > self.size() {
            return Err(bad("more objects than the pool size".into()));
        }
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                // SAFETY: lcore < MAX_LCORE.
                let len = self.cache_len_at(lcore);
                if len as usize > cache::CACHE_SLOTS {
                    return Err(bad(format!("lcore {lcore} cache holds {len} objects")));
                }
            }
        }
        let pool = self.header.as_ptr() as u64;
        let mut problem = None;
        let objects = self.obj_iter(|_, obj, i| {
            // SAFETY: obj_iter yields this pool's objects, whose headers precede them.
            let h = unsafe { &*Self::obj_header(obj) };
            if problem.is_none() && h.pool != pool {
                problem = Some(format!("object {i} at {obj:p} names another pool"));
            }
            if cfg!(feature = "debug") && problem.is_none() {
                // SAFETY: the trailer follows the element inside the slot.
                let trailer = unsafe { self.trailer_of(obj) };
                if trailer != COOKIE_TRAILER {
                    problem = Some(format!("object {i} at {obj:p}: write past its end"));
                } else if h.cookie != COOKIE_IN_POOL && h.cookie != COOKIE_OUT {
                    problem = Some(format!("object {i} at {obj:p}: header overwritten"));
                }
            }
        });
        if let Some(p) = problem {
            return Err(bad(p));
        }
        if objects != self.populated_size() {
            return Err(bad(format!(
                "{objects} objects listed, {} populated",
                self.populated_size()
            )));
        }
        Ok(())
    }

    fn check_out(&self, objs: &[*mut u8]) -> Result<(), MempoolError> {
        let pool = self.header.as_ptr() as u64;
        for &obj in objs {
            let bad = |reason| MempoolError::BadObject {
                pool: self.name.clone(),
                addr: obj as usize,
                reason,
            };
            if obj.is_null() {
                return Err(bad("is null"));
            }
            // SAFETY: under the put contract obj is an object of a dpmem pool; the checks
            // read only its header and trailer.
            let h = unsafe { &*Self::obj_header(obj) };
            if h.pool != pool {
                return Err(bad("is not an object of this pool"));
            }
            if h.cookie == COOKIE_IN_POOL {
                return Err(bad("is already in the pool (put twice)"));
            }
            if h.cookie != COOKIE_OUT {
                return Err(bad("has a corrupted header"));
            }
            // SAFETY: the trailer follows the element inside the slot.
            if unsafe { self.trailer_of(obj) } != COOKIE_TRAILER {
                return Err(bad("was written past its end"));
            }
        }
        Ok(())
    }

    fn mark_in(&self, objs: &[*mut u8]) {
        let elt = self.hdr().rounded_elt_size as usize;
        for &obj in objs {
            // SAFETY: checked by check_out: an object of this pool.
            unsafe { (*Self::obj_header(obj)).cookie = COOKIE_IN_POOL };
            // Back in the pool, the object is nobody's to touch.
            dpmem_eal::memcheck::make_noaccess(obj, elt);
        }
    }

    fn mark_out(&self, objs: &[*mut u8]) {
        for &obj in objs {
            // SAFETY: the handler or cache just gave out this object of this pool.
            let h = unsafe { &mut *Self::obj_header(obj) };
            assert_eq!(
                h.cookie, COOKIE_IN_POOL,
                "mempool {:?}: object {obj:p} given out but not marked in the pool",
                self.name
            );
            h.cookie = COOKIE_OUT;
            // Objects keep their contents across put and get: what is handed out is defined.
            dpmem_eal::memcheck::make_defined(obj, self.hdr().rounded_elt_size as usize);
        }
    }

    /// A description of the pool (`rte_mempool_dump`).
    pub fn dump(&self) -> String {
        let o = self.obj_size();
        let mut s = format!(
            "mempool <{}>@{:p}\n  flags={:#x}\n  socket_id={}\n  handler={}\n  pool_data={:#x}\n  \
             size={}\n  populated_size={}\n  header_size={}\n  elt_size={}\n  trailer_size={}\n  \
             total_obj_size={}\n  private_data_size={}\n  nb_mem_chunks={}\n  cache_size={}\n  \
             avail_count={}\n  in_use_count={}\n",
            self.name,
            self.header,
            self.flags().0,
            self.socket_id(),
            self.handler_name(),
            self.hdr().pool_data,
            self.size(),
            self.populated_size(),
            o.header_size,
            o.elt_size,
            o.trailer_size,
            o.total_size,
            self.private_data_size(),
            self.nb_mem_chunks(),
            self.cache_size(),
            self.avail_count(),
            self.in_use_count()
        );
        if let Some(store) = &self.store {
            s.push_str(&format!("  store: {store:?}\n"));
        }
        if !self.caches.is_null() {
            for lcore in 0..MAX_LCORE as usize {
                // SAFETY: lcore < MAX_LCORE.
                let len = self.cache_len_at(lcore);
                if len > 0 {
                    s.push_str(&format!("  cache lcore {lcore}: {len}\n"));
                }
            }
        }
        self.mem_iter(|_, c| {
            s.push_str(&format!(
                "  chunk {:#x} iova={:#x} len={} objects={}\n",
                c.addr, c.iova, c.len, c.objects
            ))
        });
        s
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        self.count_handle(-1);
    }
}

/// A cache owned by the caller (`rte_mempool_cache_create`), for threads without an lcore id
/// or to keep objects apart from the lcore's cache. It binds to the first pool it is used
/// with; using it with another is refused (`EINVAL`). Flush it before dropping it, or its
/// objects stay out of the pool.
pub struct UserCache {
    state: Box<CacheState>,
}

impl std::fmt::Debug for UserCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCache")
            .field("size", &self.state.size)
            .field("len", &self.state.len())
            .finish()
    }
}

impl UserCache {
    /// A cache of `size` objects (1..=512, `EINVAL` otherwise).
    pub fn new(size: u32) -> Result<UserCache, MempoolError> {
        if size == 0 || size > CACHE_MAX_SIZE {
            return Err(MempoolError::InvalidArgument(format!(
                "cache size {size} must be 1..={CACHE_MAX_SIZE}"
            )));
        }
        Ok(UserCache {
            state: Box::new(CacheState::new(size)),
        })
    }

    pub fn len(&self) -> u32 {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bind(&mut self, pool: &Mempool<'_>) -> Result<*mut CacheState, MempoolError> {
        let addr = pool.header.as_ptr() as u64;
        if self.state.bound_pool == 0 {
            self.state.bound_pool = addr;
        } else if self.state.bound_pool != addr {
            return Err(MempoolError::InvalidArgument(format!(
                "this cache holds objects of another pool than {:?}",
                pool.name
            )));
        }
        Ok(&mut *self.state)
    }

    /// Puts every cached object back into `pool` (`rte_mempool_cache_flush`).
    pub fn flush(&mut self, pool: &Mempool<'_>) -> Result<(), MempoolError> {
        let cache = self.bind(pool)?;
        if let Some(store) = &pool.store {
            // SAFETY: the cache is borrowed mutably; its objects came from this pool.
            unsafe { cache::flush(cache, store) };
        }
        Ok(())
    }
}

pub(crate) fn as_words(objs: &[*mut u8]) -> &[usize] {
    // SAFETY: *mut u8 and usize have the same size and alignment; addresses are read as
    // integers only.
    unsafe { core::slice::from_raw_parts(objs.as_ptr().cast(), objs.len()) }
}

pub(crate) fn as_words_mut(objs: &mut [*mut u8]) -> &mut [usize] {
    // SAFETY: as `as_words`; any usize written is a valid (if unusable) pointer value.
    unsafe { core::slice::from_raw_parts_mut(objs.as_mut_ptr().cast(), objs.len()) }
}
