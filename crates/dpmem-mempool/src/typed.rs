//! A pool of `T`: objects are `T` values that live in the pool and go back to it when their
//! handle drops.
//!
//! Values are made once, when the pool is populated, and keep their contents across gets
//! and puts (as DPDK objects keep what `obj_init` wrote): a get hands out the value as the
//! last user left it. `T: Copy` because the values sit in shared memory that other processes
//! may map, and are never dropped.
//!
//! A [`PoolObj`] is an owning handle: it is `Send`, goes through a
//! [`HandleRing`](dpmem_ring::HandleRing) to another lcore and back without a copy of the
//! value, and returns to its pool exactly once, when the last owner drops it. It borrows its
//! pool, so it cannot outlive it:
//!
//! ```compile_fail,E0597
//! # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "16"]).unwrap();
//! use dpmem_mempool::TypedMempool;
//! let obj = {
//!     let pool = TypedMempool::<u64>::builder("short", 63).create(&eal, |_| 0).unwrap();
//!     pool.get().unwrap()
//! }; // the pool is dropped here, and the object with it: refused at compile time
//! drop(obj);
//! ```

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use dpmem_eal::{Eal, Socket};
use dpmem_ring::Handle;

use crate::error::MempoolError;
use crate::flags::MempoolFlags;
use crate::layout::slot_align;
use crate::pool::create::MempoolConfig;
use crate::pool::Mempool;

/// A pool of `T` values.
///
/// ```no_run
/// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "16"])?;
/// use dpmem_mempool::TypedMempool;
/// #[derive(Clone, Copy)]
/// struct Descriptor { addr: u64, len: u32, flags: u32 }
/// let pool = TypedMempool::builder("descriptors", 1023)
///     .cache_size(64)
///     .create(&eal, |i| Descriptor { addr: 0, len: 0, flags: i })?;
/// let mut d = pool.get()?;
/// d.len = 1500;
/// drop(d); // back in the pool
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TypedMempool<'eal, T: Copy + Send> {
    pool: Mempool<'eal>,
    _values: PhantomData<T>,
}

/// A [`TypedMempool`] to create, built up before [`TypedPoolBuilder::create`] makes it.
#[derive(Debug, Clone)]
#[must_use = "nothing is created until `create` is called"]
pub struct TypedPoolBuilder<'n, T> {
    config: MempoolConfig<'n>,
    _values: PhantomData<fn() -> T>,
}

impl<'n, T: Copy + Send> TypedPoolBuilder<'n, T> {
    /// Values each lcore keeps at hand (0, the default: no caches; at most 512 and
    /// `n / 1.5`).
    pub fn cache_size(mut self, cache_size: u32) -> Self {
        self.config.cache_size = cache_size;
        self
    }

    /// Where the pool's memory comes from ([`Socket::Any`] unless set).
    pub fn socket(mut self, socket: Socket) -> Self {
        self.config.socket = socket;
        self
    }

    /// Creation flags (none unless set).
    pub fn flags(mut self, flags: MempoolFlags) -> Self {
        self.config.flags = flags;
        self
    }

    /// Creates the pool, the `i`th value made by `init(i)`. On any failure nothing is left.
    pub fn create<'eal>(
        &self,
        eal: &'eal Eal,
        mut init: impl FnMut(u32) -> T,
    ) -> Result<TypedMempool<'eal, T>, MempoolError> {
        let name = self.config.name;
        if core::mem::align_of::<T>() > slot_align(self.config.flags) {
            return Err(MempoolError::InvalidArgument(format!(
                "mempool {name:?}: values need {}-byte alignment, objects have {}",
                core::mem::align_of::<T>(),
                slot_align(self.config.flags)
            )));
        }
        let pool = Mempool::create_with(
            eal,
            &self.config,
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
}

impl<'eal, T: Copy + Send> TypedMempool<'eal, T> {
    /// A pool called `name` of `n` values of `T`, to create once its cache, socket and flags
    /// are set.
    pub fn builder(name: &str, n: u32) -> TypedPoolBuilder<'_, T> {
        // A zero-sized T still takes a byte per object; sizes past u32 are refused by create.
        let elt_size = u32::try_from(core::mem::size_of::<T>().max(1)).unwrap_or(u32::MAX);
        TypedPoolBuilder {
            config: MempoolConfig::new(name, n, elt_size),
            _values: PhantomData,
        }
    }

    /// The pool underneath (counts, audit, dump, the raw object API).
    pub fn raw(&self) -> &Mempool<'eal> {
        &self.pool
    }

    /// Takes one value (from the calling lcore's cache when it has one).
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

    /// Returns values taken from this pool, in one call (a bulk put). A value of another pool
    /// is refused before anything is returned: the values are handed back.
    pub fn put_all<'p, const N: usize>(
        &'p self,
        objs: [PoolObj<'p, 'eal, T>; N],
    ) -> Result<(), [PoolObj<'p, 'eal, T>; N]> {
        if objs.iter().any(|o| !core::ptr::eq(o.pool, self)) {
            return Err(objs);
        }
        let raw = objs.map(|o| {
            let ptr = o.obj.as_ptr().cast::<u8>();
            core::mem::forget(o);
            ptr
        });
        // SAFETY: each pointer came from a get on this pool (checked above) and its handle is
        // consumed, so it goes back once.
        unsafe { self.pool.put_bulk(&raw) };
        Ok(())
    }

    /// Frees the pool; no handle can be alive (they borrow it).
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

// SAFETY: the handle owns its value exclusively until it drops, and T: Send lets the value
// move. The pool reference goes along even when T is not Sync (a `TypedMempool<T>` then is
// not Sync either): the handle puts its own value back through it, and what else the
// reference reaches (`get`, `raw`, via `Handle::into_raw`) takes values out one handle at a
// time or deals in raw pointers; no `&T` is ever shared between threads through it.
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
        // SAFETY: the handle holds the object alone; it holds a T written at populate.
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

/// A pool object travels through a [`HandleRing`](dpmem_ring::HandleRing) as its address and
/// its pool's: 16 bytes, moved, never copied.
impl<'p, 'eal, T: Copy + Send> Handle for PoolObj<'p, 'eal, T> {
    type Raw = (NonNull<T>, &'p TypedMempool<'eal, T>);

    #[inline]
    fn into_raw(self) -> Self::Raw {
        let raw = (self.obj, self.pool);
        core::mem::forget(self);
        raw
    }

    #[inline]
    unsafe fn from_raw((obj, pool): Self::Raw) -> Self {
        PoolObj { pool, obj }
    }
}
