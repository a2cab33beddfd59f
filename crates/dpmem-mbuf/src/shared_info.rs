//! [`ExtSharedInfo`]: the shared info of an external buffer (DPDK's
//! `rte_mbuf_ext_shared_info`): a reference count and the callback that gives the memory back
//! when the last reference goes.
//!
//! The shared info lives wherever its owner put it — at the end of the external buffer
//! ([`ExtSharedInfo::init_at_end`]), embedded in a frame descriptor, or, for a pinned pool,
//! right after each buffer's header. Buffers attached to the external memory point at it;
//! the count says how many. As in DPDK, attaching a buffer does not add to the count: whoever
//! attaches accounts for the reference ([`ExtSharedInfo::refcnt_update`]).
//!
//! The callback is a function address, valid in the process that set it (and in processes of
//! the same executable without address randomisation): the last release of an external
//! buffer must happen in such a process.

use core::ffi::c_void;
use core::ptr::NonNull;

use crate::refcount;
use crate::sync::AtomicU16;

/// The function that gives an external buffer back: called with the buffer's address and the
/// opaque value given at set-up, once, after the last reference is released, from whichever
/// thread released it.
pub type ExtFreeCallback = unsafe extern "C" fn(addr: *mut c_void, opaque: *mut c_void);

/// An external buffer's shared info (24 bytes, as DPDK's).
#[repr(C)]
#[derive(Debug)]
pub struct ExtSharedInfo {
    /// The callback; `None` only in a pinned pool, where the "callback" is to put the buffer
    /// named by `fcb_opaque` back in its pool (this crate does that itself: a function address
    /// is not valid in every process).
    pub(crate) free_cb: Option<ExtFreeCallback>,
    pub(crate) fcb_opaque: *mut c_void,
    /// References to the external buffer.
    pub(crate) refcnt: AtomicU16,
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<ExtSharedInfo>() == 24);

impl ExtSharedInfo {
    /// A shared info with one reference (the caller's).
    pub fn new(free_cb: ExtFreeCallback, opaque: *mut c_void) -> ExtSharedInfo {
        ExtSharedInfo {
            free_cb: Some(free_cb),
            fcb_opaque: opaque,
            refcnt: AtomicU16::new(1),
        }
    }

    /// Places a shared info with one reference at the end of the caller's buffer
    /// (`rte_pktmbuf_ext_shinfo_init_helper`): at the last 8-byte aligned place where it
    /// fits, and shrinks `*buf_len` so the usable buffer stops before it. `None`, with
    /// `*buf_len` unchanged, when the buffer is too short to hold it and a byte of data.
    ///
    /// # Safety
    /// `buf` is valid for writes of `*buf_len` bytes and stays so while the shared info is
    /// used.
    pub unsafe fn init_at_end(
        buf: *mut u8,
        buf_len: &mut u16,
        free_cb: ExtFreeCallback,
        opaque: *mut c_void,
    ) -> Option<NonNull<ExtSharedInfo>> {
        let size = core::mem::size_of::<ExtSharedInfo>();
        let end = (buf as usize).checked_add(*buf_len as usize)?;
        let at = end.checked_sub(size)? & !7;
        if at <= buf as usize {
            return None;
        }
        let shinfo = at as *mut ExtSharedInfo;
        // SAFETY: `at..at+24` is inside the caller's buffer (`at + 24 <= end`, `at > buf`),
        // 8-byte aligned, and the caller gives us the buffer.
        unsafe { shinfo.write(ExtSharedInfo::new(free_cb, opaque)) };
        *buf_len = (at - buf as usize) as u16;
        NonNull::new(shinfo)
    }

    /// The references (`rte_mbuf_ext_refcnt_read`).
    #[inline]
    pub fn refcnt(&self) -> u16 {
        refcount::read(&self.refcnt)
    }

    /// Sets the references (`rte_mbuf_ext_refcnt_set`), for memory nobody else holds yet.
    #[inline]
    pub fn refcnt_set(&self, value: u16) {
        refcount::set(&self.refcnt, value)
    }

    /// Adds `delta` references and returns the new count (`rte_mbuf_ext_refcnt_update`).
    /// Dropping the last reference this way does not run the callback: release through a
    /// buffer's free, or [`release`](Self::release).
    #[inline]
    pub fn refcnt_update(&self, delta: i16) -> u16 {
        refcount::update(&self.refcnt, delta)
    }

    /// Drops one reference; runs the callback when it was the last.
    ///
    /// # Safety
    /// The caller holds the reference it drops, and the callback may run now, in this
    /// process.
    pub unsafe fn release(this: NonNull<ExtSharedInfo>, buf_addr: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { Self::release_many(this, 1, buf_addr) }
    }

    /// Drops `n` references at once; runs the callback when they were the last.
    ///
    /// # Safety
    /// As [`release`](Self::release), for `n` references the caller holds.
    pub(crate) unsafe fn release_many(this: NonNull<ExtSharedInfo>, n: u16, buf_addr: *mut u8) {
        // SAFETY: the caller holds references, so the shared info is alive.
        let count = unsafe { &this.as_ref().refcnt };
        let last = refcount::update(count, -(n as i16)) == 0;
        if last {
            // SAFETY: the last reference is gone: this thread owns the shared info.
            unsafe { Self::run_callback(this, buf_addr) }
        }
    }

    /// Runs the callback of a shared info whose last reference is gone.
    ///
    /// # Safety
    /// No reference is left and the callback was set in this process.
    pub(crate) unsafe fn run_callback(this: NonNull<ExtSharedInfo>, buf_addr: *mut u8) {
        // SAFETY: the caller's contract: nobody else uses the shared info.
        let info = unsafe { this.as_ref() };
        let (cb, opaque) = (info.free_cb, info.fcb_opaque);
        if let Some(cb) = cb {
            // SAFETY: the callback's contract is its setter's; this is its one call, after
            // the last release. It is the last touch: the shared info may be inside the
            // memory it frees.
            unsafe { cb(buf_addr.cast(), opaque) };
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Two holders of an external buffer release at once — a packet, and the builder with its
    //! own reference and unspent credit — : the callback runs exactly once, on whichever
    //! thread released last, and sees what the other holder wrote before releasing.
    use super::*;
    use core::ptr::NonNull;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    struct Frame {
        shinfo: ExtSharedInfo,
        data: UnsafeCell<u32>,
        calls: AtomicUsize,
        seen: AtomicUsize,
    }

    // SAFETY (test only): `data` is accessed under the protocol being checked; loom's cell
    // reports any access the protocol does not order.
    unsafe impl Sync for Frame {}
    // SAFETY (test only): as above.
    unsafe impl Send for Frame {}

    unsafe extern "C" fn frame_done(_addr: *mut c_void, opaque: *mut c_void) {
        // SAFETY: the opaque value is the frame, kept alive by the test's Arc.
        let frame = unsafe { &*opaque.cast::<Frame>() };
        // SAFETY: the callback runs after the last release; loom checks the read is ordered
        // after both holders' writes.
        let value = frame.data.with(|d| unsafe { *d });
        frame.seen.store(value as usize, Ordering::Relaxed);
        frame.calls.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_last_release_runs_the_callback_once_after_the_other_holders_writes() {
        loom::model(|| {
            let frame = Arc::new(Frame {
                shinfo: ExtSharedInfo::new(frame_done, core::ptr::null_mut()),
                data: UnsafeCell::new(0),
                calls: AtomicUsize::new(0),
                seen: AtomicUsize::new(0),
            });
            // The opaque value points at the frame itself.
            let opaque = Arc::as_ptr(&frame).cast_mut().cast::<c_void>();
            // SAFETY (test only): set before any other thread sees the frame.
            unsafe { (*Arc::as_ptr(&frame).cast_mut()).shinfo.fcb_opaque = opaque };
            // The builder takes three references ahead (its credit, as `ExternalBuffer` does)
            // and gives one to a packet attached to the frame, held by the other thread.
            frame.shinfo.refcnt_update(3);
            let other = frame.clone();
            let t = loom::thread::spawn(move || {
                // SAFETY: this holder writes before it releases.
                other.data.with_mut(|d| unsafe { *d += 1 });
                let shinfo = NonNull::from(&other.shinfo);
                // SAFETY: this thread holds one reference; the callback is this process's.
                unsafe { ExtSharedInfo::release(shinfo, core::ptr::null_mut()) };
            });
            let shinfo = NonNull::from(&frame.shinfo);
            // SAFETY: as above: the builder's own reference and its two unspent credits.
            unsafe { ExtSharedInfo::release_many(shinfo, 3, core::ptr::null_mut()) };
            t.join().unwrap();
            assert_eq!(frame.calls.load(Ordering::Relaxed), 1);
            assert_eq!(frame.seen.load(Ordering::Relaxed), 1);
        });
    }
}
