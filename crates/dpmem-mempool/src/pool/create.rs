//! Creating a pool (empty, or populated with the EAL's memory), finding one by name or
//! walking them all, and freeing it; this process's open handles are counted so that a pool
//! is not freed under another of them.

use core::ptr::NonNull;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use dpmem_eal::memzone::Memzone;
use dpmem_eal::options::MAX_LCORE;
use dpmem_eal::{Eal, EalError, ErrorKind, MemzoneFlags, Socket};

use crate::cache::{self, CacheState, CACHE_MAX_SIZE};
use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::handler::{self, Store};
use crate::header::{
    caches_size, decode, encode, PoolHeader, MEMPOOL_NAME_MAX, MEMZONE_PREFIX, POOL_MAGIC,
};
use crate::layout::{calc_obj_size, CACHE_LINE};
use crate::pool::events::{self, MempoolEvent};
use crate::pool::{eal_error, Mempool};
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
    /// Where the pool's memory comes from ([`Socket::Any`]: the first socket that has it).
    pub socket: Socket,
    pub flags: MempoolFlags,
}

impl<'a> MempoolConfig<'a> {
    /// A pool called `name` of `n` objects of `elt_size` bytes: no caches, no private area,
    /// any socket, no flags, until set.
    ///
    /// ```no_run
    /// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "16"])?;
    /// use dpmem_mempool::MempoolConfig;
    /// let pool = MempoolConfig::new("frames", 4095, 2048).cache_size(256).create(&eal)?;
    /// assert_eq!(pool.avail_count(), 4095);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(name: &'a str, n: u32, elt_size: u32) -> Self {
        MempoolConfig {
            name,
            n,
            elt_size,
            cache_size: 0,
            private_data_size: 0,
            socket: Socket::Any,
            flags: MempoolFlags::empty(),
        }
    }

    /// Objects each lcore keeps at hand (at most 512 and at most `n / 1.5`).
    pub fn cache_size(mut self, cache_size: u32) -> Self {
        self.cache_size = cache_size;
        self
    }

    /// Bytes of the pool-wide private area ([`Mempool::private_data`]).
    pub fn private_data_size(mut self, bytes: u32) -> Self {
        self.private_data_size = bytes;
        self
    }

    /// Where the pool's memory comes from.
    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    pub fn flags(mut self, flags: MempoolFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Creates and populates the pool ([`Mempool::create_with`] without init callbacks).
    pub fn create<'eal>(&self, eal: &'eal Eal) -> Result<Mempool<'eal>, MempoolError> {
        Mempool::create_with(eal, self, |_| {}, |_, _, _| {})
    }

    /// Creates the pool without objects ([`Mempool::create_empty`]).
    pub fn create_empty<'eal>(&self, eal: &'eal Eal) -> Result<Mempool<'eal>, MempoolError> {
        Mempool::create_empty(eal, self)
    }
}

/// Handles open in this process, by pool header address: a pool is not freed under another
/// handle of the same process.
fn open_handles() -> &'static Mutex<HashMap<u64, usize>> {
    static OPEN: OnceLock<Mutex<HashMap<u64, usize>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
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
        socket: Socket,
        flags: MempoolFlags,
    ) -> Result<Mempool<'eal>, MempoolError> {
        let config = MempoolConfig {
            name,
            n,
            elt_size,
            cache_size,
            private_data_size,
            socket,
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
        crate::telemetry::register_telemetry();
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
        let obj = calc_obj_size(config.elt_size, flags).ok_or_else(|| {
            MempoolError::InvalidArgument(format!(
                "mempool {:?}: elements of {} bytes need slots of 4 GiB or more, past what a \
                 pool's u32 sizes hold",
                config.name, config.elt_size
            ))
        })?;
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
            .reserve_aligned(
                &zone_name,
                total,
                config.socket,
                MemzoneFlags::empty(),
                CACHE_LINE,
            )
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
                flags.union(MempoolFlags::NON_IO).bits(),
                config.n,
                config.cache_size,
                config.elt_size,
                obj,
                config.private_data_size,
                config.socket.to_raw(),
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
        crate::telemetry::register_telemetry();
        check_name(name)?;
        let zone = eal
            .memzones()
            .lookup(&format!("{MEMZONE_PREFIX}{name}"))
            .ok_or_else(|| MempoolError::NotFound(name.to_owned()))?;
        Self::open(eal, zone).ok_or_else(|| MempoolError::NotFound(name.to_owned()))?
    }

    /// Opens the pool whose header memzone is `zone`; `None` when it holds no pool header.
    fn open(eal: &'eal Eal, zone: Memzone) -> Option<Result<Mempool<'eal>, MempoolError>> {
        if zone.len < core::mem::size_of::<PoolHeader>() {
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
        if MempoolFlags::from_bits_retain(h.flags()).contains(MempoolFlags::POOL_CREATED) {
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
        crate::telemetry::register_telemetry();
        for zone in eal.memzones().list() {
            if !zone.name.starts_with(MEMZONE_PREFIX) {
                continue;
            }
            if let Some(Ok(pool)) = Self::open(eal, zone) {
                f(&pool);
            }
        }
    }

    /// Adds `delta` to this process's count of handles on the pool; returns the new count.
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
        // No longer a pool: a lookup racing the free, or a memzone made later in the same
        // memory, must not take these bytes for a pool header.
        this.hdr().magic.store(0, Ordering::Release);
        let (eal, zone) = (this.eal, this.zone.clone());
        // The handle goes (and is uncounted) before its memzone does.
        drop(this);
        // SAFETY: the store, the chunks and this process's handle are gone; `free` refuses
        // while another handle of this process is open, and other processes' handles on a
        // freed pool are theirs to drop first (as in DPDK).
        unsafe { eal.memzones().free(&zone) }.map_err(eal_error(&zone.name))
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
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        self.count_handle(-1);
    }
}
