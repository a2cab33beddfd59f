//! A pool's objects and memory chunks as the caller sees them: the header before each object
//! (owning pool, IOVA), and iterating every object and every chunk.

use dpmem_eal::Iova;

use crate::header::{decode, ChunkRecord, PoolHeader};
use crate::layout::{ObjHeader, COOKIE_IN_POOL};
use crate::pool::Mempool;

/// A memory chunk of a pool (`mem_iter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemChunk {
    pub addr: usize,
    /// Device address of `addr`, when known.
    pub iova: Option<Iova>,
    pub len: usize,
    /// Objects in it.
    pub objects: u32,
}

impl<'eal> Mempool<'eal> {
    /// Where the header of object `obj` is, if `obj` is an object of some dpmem pool.
    pub(super) fn obj_header(obj: *const u8) -> *mut ObjHeader {
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

    /// The device address of an object of this pool, when known (`rte_mempool_virt2iova`).
    ///
    /// # Safety
    /// `obj` is an object of some dpmem pool.
    pub unsafe fn obj_iova(obj: *const u8) -> Option<Iova> {
        // SAFETY: the caller's contract.
        Iova::new(unsafe { (*Self::obj_header(obj)).iova })
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
                    iova: Iova::new(rec.iova),
                    len: rec.len as usize,
                    objects: rec.objects,
                },
            );
            at = rec.next;
            i += 1;
        }
        i
    }

    /// The trailer word after object `obj`'s element.
    ///
    /// # Safety
    /// `obj` is an object of this pool.
    pub(super) unsafe fn trailer_of(&self, obj: *const u8) -> u64 {
        let at = obj
            .wrapping_add(self.hdr().rounded_elt_size as usize)
            .cast::<u64>();
        // SAFETY: the trailer follows the element inside the object's slot.
        unsafe { at.read_unaligned() }
    }
}
