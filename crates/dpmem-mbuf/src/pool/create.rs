//! Creating packet buffer pools: [`PktmbufPoolBuilder`] with DPDK's arguments and defaults, and
//! setting up each buffer's header once (`rte_pktmbuf_init`, or the pinned external memory's
//! piece and shared info for a pinned pool).

use core::ffi::c_void;
use core::ptr::NonNull;

use dpmem_eal::{Eal, Iova, Memzone, Socket};
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};

use crate::error::MbufError;
use crate::header::{MbufHeader, OlFlags, HEADER_SIZE, PRIV_ALIGN};
use crate::pool::PktmbufPool;
use crate::pool_info::{PoolInfo, POOL_F_PINNED_EXT_BUF, POOL_INFO_MAGIC};
use crate::shared_info::ExtSharedInfo;

/// The data room of a pool made with the defaults (DPDK's `RTE_MBUF_DEFAULT_BUF_SIZE`): 2048
/// bytes of data after the 128-byte headroom.
pub const DEFAULT_BUF_SIZE: u16 = 2048 + crate::header::HEADROOM;

/// One piece of external memory for a pinned pool (`struct rte_pktmbuf_extmem`): `len` bytes at
/// `addr`, cut into buffers of `elt_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtMem {
    pub addr: *mut u8,
    /// Device address of `addr`, when known.
    pub iova: Option<Iova>,
    pub len: usize,
    /// Bytes of each buffer cut from it.
    pub elt_size: u16,
}

impl ExtMem {
    /// A memzone's memory cut into buffers of `elt_size` bytes. Memzone memory stays mapped
    /// until the memzone is freed, which takes an `unsafe` call whose caller answers for the
    /// pool made on it.
    pub fn from_memzone(zone: &Memzone, elt_size: u16) -> ExtMem {
        ExtMem {
            addr: zone.as_ptr(),
            iova: zone.iova,
            len: zone.len,
            elt_size,
        }
    }

    fn buffers(&self) -> usize {
        self.len.checked_div(self.elt_size as usize).unwrap_or(0)
    }
}

/// What [`PktmbufPoolBuilder::create`] makes: `n` buffers, each a 128-byte header, `priv_size`
/// bytes of private area and `data_room` bytes of room, with DPDK's defaults until set (no
/// cache, no private area, a room of [`DEFAULT_BUF_SIZE`], any socket, the default handler).
///
/// ```no_run
/// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"])?;
/// use dpmem_mbuf::PktmbufPool;
/// let pool = PktmbufPool::builder("rx", 8191).cache_size(256).create(&eal)?;
/// assert_eq!(pool.data_room(), 2176);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "nothing is created until `create` is called"]
pub struct PktmbufPoolBuilder<'n> {
    name: &'n str,
    n: u32,
    cache_size: u32,
    priv_size: u16,
    data_room: u16,
    socket: Socket,
    handler: Option<&'n str>,
}

impl<'n> PktmbufPoolBuilder<'n> {
    /// Buffers each lcore keeps at hand (at most 512 and at most `n / 1.5`).
    pub fn cache_size(mut self, cache_size: u32) -> Self {
        self.cache_size = cache_size;
        self
    }

    /// Bytes of private area after each header: a multiple of 8 (else `EINVAL`).
    pub fn priv_size(mut self, priv_size: u16) -> Self {
        self.priv_size = priv_size;
        self
    }

    /// Bytes of each buffer's room, headroom included.
    pub fn data_room(mut self, data_room: u16) -> Self {
        self.data_room = data_room;
        self
    }

    pub fn socket(mut self, socket: Socket) -> Self {
        self.socket = socket;
        self
    }

    /// The mempool handler by name (`rte_pktmbuf_pool_create_by_ops`), e.g. `"stack"`.
    pub fn handler(mut self, name: &'n str) -> Self {
        self.handler = Some(name);
        self
    }

    fn check_priv_size(&self) -> Result<(), MbufError> {
        if !self.priv_size.is_multiple_of(PRIV_ALIGN) {
            return Err(MbufError::InvalidArgument(format!(
                "packet buffer pool {:?}: private size {} is not a multiple of {PRIV_ALIGN}",
                self.name, self.priv_size
            )));
        }
        Ok(())
    }

    /// The empty mempool with the pool info written, the handler chosen.
    fn empty_mempool<'eal>(
        &self,
        eal: &'eal Eal,
        elt_size: u32,
        flags: u32,
    ) -> Result<Mempool<'eal>, MbufError> {
        let config = MempoolConfig::new(self.name, self.n, elt_size)
            .cache_size(self.cache_size)
            .private_data_size(core::mem::size_of::<PoolInfo>() as u32)
            .socket(self.socket)
            .flags(MempoolFlags::empty());
        let mut mempool = config.create_empty(eal)?;
        if let Some(handler) = self.handler {
            if let Err(e) = mempool.set_handler(handler) {
                let _ = mempool.free();
                return Err(e.into());
            }
        }
        let info = mempool.private_data().cast::<PoolInfo>();
        // SAFETY: the private area is a pool info long, cache-line aligned, zeroed, and the
        // pool is not populated: nothing else reads it yet.
        unsafe {
            info.write(PoolInfo {
                data_room: self.data_room,
                priv_size: self.priv_size,
                flags,
                magic: POOL_INFO_MAGIC,
                mempool_header: mempool.memzone().va as u64,
            })
        };
        Ok(mempool)
    }

    /// Creates the pool in the EAL's memory (`rte_pktmbuf_pool_create`). On any failure
    /// nothing is left behind.
    pub fn create<'eal>(&self, eal: &'eal Eal) -> Result<PktmbufPool<'eal>, MbufError> {
        self.check_priv_size()?;
        let elt_size = HEADER_SIZE as u32 + self.priv_size as u32 + self.data_room as u32;
        let mut mempool = self.empty_mempool(eal, elt_size, 0)?;
        if let Err(e) = mempool.populate_default() {
            let _ = mempool.free();
            return Err(e.into());
        }
        let info = mempool.private_data().cast::<PoolInfo>().cast_const();
        let (priv_size, room) = (self.priv_size, self.data_room);
        mempool.obj_iter(|_, obj, _| {
            // SAFETY: every object is a fresh slot of `elt_size` bytes of this pool, not
            // handed out yet (the pool was just populated).
            unsafe { init_direct(obj, priv_size, room, info) }
        });
        let info = NonNull::new(info.cast_mut()).expect("the private area is not null");
        PktmbufPool::open(info, mempool, true)
    }

    /// Creates a pool whose buffers' data is pinned in the caller's memory
    /// (`rte_pktmbuf_pool_create_extbuf`): buffer `i`'s data is the `i`-th piece of
    /// `elt_size` bytes of the pieces of `ext`, for good. `EINVAL` for a null address, a zero
    /// length or element size, or a data room larger than an element; `ENOMEM` when the
    /// pieces hold fewer than `n` buffers.
    ///
    /// # Safety
    /// Each piece of `ext` is memory valid for reads and writes of `len` bytes, at the same
    /// address in every process that uses the pool, not otherwise used while the pool lives,
    /// with its device address right when one is given.
    pub unsafe fn create_pinned<'eal>(
        &self,
        eal: &'eal Eal,
        ext: &[ExtMem],
    ) -> Result<PktmbufPool<'eal>, MbufError> {
        self.check_priv_size()?;
        if ext.is_empty() {
            return Err(MbufError::InvalidArgument(format!(
                "packet buffer pool {:?}: a pinned pool needs external memory",
                self.name
            )));
        }
        for (i, piece) in ext.iter().enumerate() {
            if piece.addr.is_null() || piece.len == 0 || piece.elt_size == 0 {
                return Err(MbufError::InvalidArgument(format!(
                    "packet buffer pool {:?}: external memory {i} has a null address or a zero \
                     length or element size",
                    self.name
                )));
            }
            if self.data_room > piece.elt_size {
                return Err(MbufError::InvalidArgument(format!(
                    "packet buffer pool {:?}: a data room of {} bytes does not fit the {}-byte \
                     elements of external memory {i}",
                    self.name, self.data_room, piece.elt_size
                )));
            }
        }
        let available: usize = ext.iter().map(ExtMem::buffers).sum();
        if available < self.n as usize {
            return Err(MbufError::ExternalMemoryShort {
                pool: self.name.to_owned(),
                available,
                wanted: self.n,
            });
        }
        let elt_size = HEADER_SIZE as u32
            + self.priv_size as u32
            + core::mem::size_of::<ExtSharedInfo>() as u32;
        let mut mempool = self.empty_mempool(eal, elt_size, POOL_F_PINNED_EXT_BUF)?;
        if let Err(e) = mempool.populate_default() {
            let _ = mempool.free();
            return Err(e.into());
        }
        let info = mempool.private_data().cast::<PoolInfo>().cast_const();
        let (priv_size, room) = (self.priv_size, self.data_room);
        let (mut piece, mut off) = (0usize, 0usize);
        mempool.obj_iter(|_, obj, _| {
            // Past every piece too short for another element (some may hold none at all);
            // the pieces hold at least `n` elements, so one is found.
            while off + ext[piece].elt_size as usize > ext[piece].len {
                piece += 1;
                off = 0;
            }
            let at = &ext[piece];
            // SAFETY: the object is a fresh slot of this pool; the piece holds a buffer at
            // `off` (pieces hold at least `n` buffers in all, checked above); the caller
            // vouches for the memory.
            unsafe { init_pinned(obj, priv_size, room, at, off, info) };
            off += at.elt_size as usize;
        });
        let info = NonNull::new(info.cast_mut()).expect("the private area is not null");
        PktmbufPool::open(info, mempool, true)
    }
}

impl PktmbufPool<'_> {
    /// A builder for a pool called `name` of `n` buffers (`rte_pktmbuf_pool_create`).
    pub fn builder(name: &str, n: u32) -> PktmbufPoolBuilder<'_> {
        PktmbufPoolBuilder {
            name,
            n,
            cache_size: 0,
            priv_size: 0,
            data_room: DEFAULT_BUF_SIZE,
            socket: Socket::Any,
            handler: None,
        }
    }
}

/// Sets up a direct buffer's header once: its room right after the header and private area.
///
/// # Safety
/// `obj` is a fresh object of a pool whose elements are `128 + priv_size + room` bytes.
unsafe fn init_direct(obj: *mut u8, priv_size: u16, room: u16, info: *const PoolInfo) {
    let header_and_priv = HEADER_SIZE + priv_size as usize;
    // SAFETY: the caller's contract: the object is a mempool object.
    let iova = unsafe { Mempool::obj_iova(obj) };
    let buf_iova = Iova::to_raw(iova.and_then(|i| i.checked_add(header_and_priv as u64)));
    // SAFETY: the object is `header_and_priv + room` bytes, cache-line aligned, ours.
    unsafe { core::ptr::write_bytes(obj, 0, header_and_priv) };
    let header = MbufHeader::new_in_pool(
        obj.wrapping_add(header_and_priv),
        buf_iova,
        room,
        priv_size,
        info,
    );
    // SAFETY: as above.
    unsafe { obj.cast::<MbufHeader>().write(header) };
}

/// Sets up a pinned pool's buffer: its data at `off` in `ext`, `room` bytes long (the pool's
/// data room, as DPDK's, not the element size), its shared info right after the header and
/// private area.
///
/// # Safety
/// `obj` is a fresh object of a pool whose elements are `128 + priv_size + 24` bytes;
/// `ext` holds a buffer at `off`, and `room` is at most its element size.
unsafe fn init_pinned(
    obj: *mut u8,
    priv_size: u16,
    room: u16,
    ext: &ExtMem,
    off: usize,
    info: *const PoolInfo,
) {
    let header_and_priv = HEADER_SIZE + priv_size as usize;
    let iova = ext.iova.and_then(|i| i.checked_add(off as u64));
    let m = obj.cast::<MbufHeader>();
    let shinfo = obj.wrapping_add(header_and_priv).cast::<ExtSharedInfo>();
    // SAFETY: the caller's contract: the object is ours and large enough for the header,
    // the private area and a shared info.
    unsafe { core::ptr::write_bytes(obj, 0, header_and_priv) };
    // SAFETY: as above; the shared info is 8-byte aligned after a 128-byte header and a
    // private area of a multiple of 8.
    unsafe {
        shinfo.write(ExtSharedInfo {
            free_cb: None,
            fcb_opaque: m.cast::<c_void>(),
            refcnt: crate::sync::AtomicU16::new(1),
        })
    };
    let header = MbufHeader::new_in_pool(
        ext.addr.wrapping_add(off),
        Iova::to_raw(iova),
        room,
        priv_size,
        info,
    );
    header.ol_flags.set(OlFlags::EXTERNAL.bits());
    header.shinfo.set(shinfo);
    // SAFETY: as above.
    unsafe { m.write(header) };
}
