//! [`ExternalBuffer`]: memory a program owns, lent to packets without a copy — a Rust value
//! (a `Vec`, a boxed slice, a frame) or memory with a closure that gives it back — behind an
//! external buffer's shared info.
//!
//! The buffer holds a reference of its own from the start, as a builder should: packets
//! attached to pieces of it add theirs, and the memory goes back (the value dropped, the
//! closure run) exactly once, after the buffer handle and every packet are gone, whichever
//! goes last and on whichever thread. While only the handle holds it, the memory can be
//! written; once a packet shares it, it is read-only to everyone.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::attach::set_extbuf;
use crate::error::MbufError;
use crate::handle::Mbuf;
use crate::pool::PktmbufPool;
use crate::shared_info::ExtSharedInfo;

/// What the shared info's callback frees: the shared info first (its address is the block's),
/// then what gives the memory back.
#[repr(C)]
struct ExtBlock<'a> {
    shinfo: ExtSharedInfo,
    give_back: Option<Box<dyn FnOnce() + Send + 'a>>,
}

/// The callback of every [`ExternalBuffer`]: runs the closure and frees the block.
unsafe extern "C" fn give_back_block(_addr: *mut c_void, opaque: *mut c_void) {
    // SAFETY: the opaque value is the block `ExternalBuffer::from_raw_parts` boxed; this is
    // its one call, after the last reference.
    let mut block = unsafe { Box::from_raw(opaque.cast::<ExtBlock<'_>>()) };
    if let Some(give_back) = block.give_back.take() {
        give_back();
    }
}

/// Memory lent to packets without a copy (see the module notes). `'a` is how long the
/// memory and its give-back closure may live; packets attached to it borrow that.
pub struct ExternalBuffer<'a> {
    addr: NonNull<u8>,
    len: usize,
    iova: Option<dpmem_eal::Iova>,
    block: NonNull<ExtBlock<'a>>,
    /// References taken on the shared info ahead of the packets that will hold them: the
    /// handle takes [`CREDIT`] at a time with one atomic add, so attaching a packet needs no
    /// atomic instruction of its own (packets freed on other threads decrement the count at
    /// any time, so every increment must be atomic; taking them in batches makes them rare).
    /// Unspent ones go back with the handle's own reference when it drops.
    credit: core::cell::Cell<u16>,
    _memory: PhantomData<&'a mut [u8]>,
}

/// How many references [`ExternalBuffer::attach`] takes on the shared info at once.
const CREDIT: u16 = 32;

// SAFETY: the memory is lent whole to the handle; the shared count is atomic and the closure
// is `Send`.
unsafe impl Send for ExternalBuffer<'_> {}

impl std::fmt::Debug for ExternalBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBuffer")
            .field("addr", &self.addr)
            .field("len", &self.len)
            .field("refs", &self.refs())
            .finish()
    }
}

impl<'a> ExternalBuffer<'a> {
    /// Lends an owned value's bytes (a `Vec<u8>`, a `Box<[u8]>`, an array, ...): the value is
    /// dropped when the last packet using it goes.
    pub fn from_owner<T>(owner: T) -> ExternalBuffer<'a>
    where
        T: AsMut<[u8]> + Send + 'a,
    {
        // Boxed first, so the bytes stay where they are when the owner moves into the
        // give-back closure (an array's bytes are the value itself; a box's heap block is
        // not moved by moving the box).
        let mut owner = Box::new(owner);
        let bytes = (*owner).as_mut();
        let (addr, len) = (bytes.as_mut_ptr(), bytes.len());
        // SAFETY: the bytes are in `owner`'s heap block, which the closure keeps, unmoved and
        // otherwise unused, until the memory is given back.
        unsafe { Self::from_raw_parts(addr, len, None, move || drop(owner)) }
    }

    /// Lends `len` bytes at `addr` with device address `iova`; `give_back` runs once, after
    /// the handle and every packet using the memory are gone.
    ///
    /// # Safety
    /// The memory is valid for reads and writes of `len` bytes, not used otherwise until
    /// `give_back` runs, and `iova` (when given) is its device address.
    pub unsafe fn from_raw_parts(
        addr: *mut u8,
        len: usize,
        iova: Option<dpmem_eal::Iova>,
        give_back: impl FnOnce() + Send + 'a,
    ) -> ExternalBuffer<'a> {
        let block = Box::new(ExtBlock {
            shinfo: ExtSharedInfo::new(give_back_block, core::ptr::null_mut()),
            give_back: Some(Box::new(give_back)),
        });
        let block = NonNull::from(Box::leak(block));
        // SAFETY: the block is ours; the callback gets it back through the opaque value.
        unsafe { (*block.as_ptr()).shinfo.fcb_opaque = block.as_ptr().cast() };
        ExternalBuffer {
            addr: NonNull::new(addr).unwrap_or(NonNull::dangling()),
            len,
            iova,
            block,
            credit: core::cell::Cell::new(0),
            _memory: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// References to the memory: this handle's and one per packet using it.
    pub fn refs(&self) -> u16 {
        // SAFETY: the handle holds a reference, so the block is live.
        let count = unsafe { self.block.as_ref().shinfo.refcnt() };
        count - self.credit.get()
    }

    /// The memory, to write, while no packet uses it.
    pub fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if self.refs() != 1 {
            return None;
        }
        // SAFETY: only this handle references the memory, and it is borrowed uniquely.
        Some(unsafe { core::slice::from_raw_parts_mut(self.addr.as_ptr(), self.len) })
    }

    /// The memory, to read.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the memory is valid while the handle lives; writes need a unique borrow
        // of the handle and no packet sharing it.
        unsafe { core::slice::from_raw_parts(self.addr.as_ptr(), self.len) }
    }

    /// A packet whose one segment is `len` bytes at `offset` of the memory, in a buffer from
    /// `pool` (`rte_pktmbuf_attach_extbuf` with the reference taken for it). `EINVAL` when
    /// the range is past the memory or longer than a segment holds, or `pool` is pinned.
    #[inline]
    pub fn attach<'q>(
        &self,
        pool: &'q PktmbufPool<'_>,
        offset: usize,
        len: u16,
    ) -> Result<Mbuf<'q>, MbufError>
    where
        'a: 'q,
    {
        if offset
            .checked_add(len as usize)
            .is_none_or(|end| end > self.len)
        {
            return Err(self.out_of_range(offset, len));
        }
        pool.check_buffers_attachable()?;
        let m = pool.alloc_raw_reset()?;
        // The packet's reference comes from the handle's credit, topped up when spent.
        if self.credit.get() == 0 {
            if self.refs() > u16::MAX - CREDIT - 1 {
                return Err(self.too_many_packets());
            }
            // SAFETY: the handle holds a reference, so the shared info is live.
            unsafe { self.block.as_ref().shinfo.refcnt_update(CREDIT as i16) };
            self.credit.set(CREDIT);
        }
        self.credit.set(self.credit.get() - 1);
        // The shared info is the block's first field (`repr(C)`).
        let shinfo = self.block.cast::<ExtSharedInfo>();
        let iova = self.iova.and_then(|i| i.checked_add(offset as u64));
        let at = self.addr.as_ptr().wrapping_add(offset);
        // SAFETY: fresh from the pool: ours, direct, one reference.
        let h = unsafe { m.as_ref() };
        // The range is inside the memory, which stays valid until the last reference (the
        // packet's among them) goes; the callback frees a process-local block, so the packet
        // must be freed in this process, which a handle bound to `'q` is.
        set_extbuf(h, at, iova, len, shinfo);
        h.data_len.set(len);
        h.pkt_len.set(len as u32);
        // SAFETY: the buffer is new and owned, of `pool`.
        Ok(unsafe { Mbuf::from_raw(m, pool) })
    }
}

impl ExternalBuffer<'_> {
    #[cold]
    fn too_many_packets(&self) -> MbufError {
        MbufError::InvalidArgument(format!(
            "{} packets already use this external buffer: its 16-bit count is full",
            self.refs() - 1
        ))
    }

    #[cold]
    fn out_of_range(&self, offset: usize, len: u16) -> MbufError {
        MbufError::OutOfPacket {
            offset: offset as u64,
            len: len as u64,
            pkt_len: self.len.min(u32::MAX as usize) as u32,
        }
    }
}

impl Drop for ExternalBuffer<'_> {
    fn drop(&mut self) {
        let shinfo = self.block.cast::<ExtSharedInfo>();
        // SAFETY: the handle's own reference and its unspent credit; the callback is this
        // process's.
        unsafe { ExtSharedInfo::release_many(shinfo, 1 + self.credit.get(), self.addr.as_ptr()) };
    }
}
