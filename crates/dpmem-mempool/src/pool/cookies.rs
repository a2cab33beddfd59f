//! The `debug` feature's object cookies on the data path: a put checks that every object is
//! out of this pool (its header names the pool and says "out", its trailer is intact) before
//! the pool is touched, and marks it in; a get marks what it hands out as out. Without the
//! feature the hooks are empty and fold away where they are inlined.

use crate::error::MempoolError;
use crate::layout::{COOKIE_IN_POOL, COOKIE_OUT, COOKIE_TRAILER};
use crate::pool::Mempool;

impl<'eal> Mempool<'eal> {
    /// With the `debug` feature: marks objects just got as out of the pool.
    #[inline(always)]
    pub(crate) fn debug_after_get(&self, objs: &[*mut u8]) {
        if cfg!(feature = "debug") {
            self.mark_out(objs);
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
}
