//! A pool of `T`: objects are `T` values that live in the pool and go back to it when their
//! guard drops.
//!
//! Values are made once, when the pool is populated, and keep their contents across gets
//! and puts (as DPDK objects keep what `obj_init` wrote): a get hands out the value as the
//! last user left it. `T: Copy` because the values sit in shared memory that other processes
//! may map, and are never dropped.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use dpmem_eal::Eal;

use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::layout::slot_align;
use crate::pool::create::MempoolConfig;
use crate::pool::Mempool;

/// A pool of `T` values.
#[derive(Debug)]
pub struct TypedMempool<'eal, T: Copy + Send> {
    pool: Mempool<'eal>,
    _values: PhantomData<T>,
}

impl<'eal, T: Copy + Send> TypedMempool<'eal, T> {
    /// Creates a pool of `n` values, the `i`th made by `init(i)`.
    pub fn create(
        eal: &'eal Eal,
        name: &str,
        n: u32,
        cache_size: u32,
        socket_id: i32,
        flags: MempoolFlags,
        mut init: impl FnMut(u32) -> T,
    ) -> Result<Self, MempoolError> {
        if core::mem::align_of::<T>() > slot_align(flags) {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {name:?}: values need {}-byte alignment, objects have {}",
                core::mem::align_of::<T>(),
                slot_align(flags)
            )));
        }
        let elt_size = u32::try_from(core::mem::size_of::<T>().max(1)).map_err(|_| {
            MempoolError::InvalidArgument(format!("mempool {name:?}: values too large"))
        })?;
        let config = MempoolConfig {
            name,
            n,
            elt_size,
            cache_size,
            private_data_size: 0,
            socket_id,
            flags,
        };
        let pool = Mempool::create_with(
            eal,
            &config,
            |_| {},
            |_, obj, i| {
                // SAFETY: obj is a fresh object of at least size_of::<T>() bytes, aligned for T
                // (checked above), which nobody else uses yet.
                unsafe { obj.cast::<T>().write(init(i)) };
            },
        )?;
        Ok(TypedMempool {
            pool,
            _values: PhantomData,
        })
    }

    /// The pool underneath.
    pub fn raw(&self) -> &Mempool<'eal> {
        &self.pool
    }

    /// Takes one value.
    #[inline]
    pub fn get(&self) -> Result<PoolObj<'_, 'eal, T>, MempoolError> {
        let obj = self.pool.get()?;
        Ok(PoolObj {
            pool: self,
            obj: obj.cast(),
        })
    }

    /// Takes `N` values, all or none.
    #[inline]
    pub fn get_array<const N: usize>(&self) -> Result<[PoolObj<'_, 'eal, T>; N], MempoolError> {
        let mut raw = [core::ptr::null_mut(); N];
        self.pool.get_bulk(&mut raw)?;
        Ok(raw.map(|obj| PoolObj {
            pool: self,
            obj: NonNull::new(obj.cast()).expect("pool objects are never at 0"),
        }))
    }

    /// Returns values taken together in one call.
    pub fn put_all<const N: usize>(&self, objs: [PoolObj<'_, 'eal, T>; N]) {
        let raw = objs.map(|o| {
            assert!(core::ptr::eq(o.pool, self), "value of another pool");
            let ptr = o.obj.as_ptr().cast::<u8>();
            core::mem::forget(o);
            ptr
        });
        // SAFETY: each pointer came from a get on this pool and its guard is consumed.
        unsafe { self.pool.put_bulk(&raw) };
    }

    /// Frees the pool; no guard can be alive (they borrow it).
    pub fn free(self) -> Result<(), MempoolError> {
        self.pool.free()
    }
}

/// A value taken from a [`TypedMempool`]; it goes back when dropped.
#[derive(Debug)]
pub struct PoolObj<'p, 'eal, T: Copy + Send> {
    pool: &'p TypedMempool<'eal, T>,
    obj: NonNull<T>,
}

// SAFETY: the guard owns its value exclusively until it drops; T: Send.
unsafe impl<T: Copy + Send> Send for PoolObj<'_, '_, T> {}
// SAFETY: &PoolObj gives &T only.
unsafe impl<T: Copy + Send + Sync> Sync for PoolObj<'_, '_, T> {}

impl<T: Copy + Send> PoolObj<'_, '_, T> {
    /// The value's address (for IOVA lookups and the like).
    pub fn as_ptr(&self) -> *mut T {
        self.obj.as_ptr()
    }
}

impl<T: Copy + Send> Deref for PoolObj<'_, '_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the object alone; it holds a T written at populate.
        unsafe { self.obj.as_ref() }
    }
}

impl<T: Copy + Send> DerefMut for PoolObj<'_, '_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as deref, mutably: nobody else reaches the object while it is out.
        unsafe { self.obj.as_mut() }
    }
}

impl<T: Copy + Send> Drop for PoolObj<'_, '_, T> {
    fn drop(&mut self) {
        // SAFETY: the object came from a get on this pool and goes back once, here.
        unsafe { self.pool.pool.put(self.obj.cast()) };
    }
}
