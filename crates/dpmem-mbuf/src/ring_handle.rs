//! Packets travel between the threads of a process through a
//! [`HandleRing`](dpmem_ring::HandleRing): an [`Mbuf`] is a ring handle whose raw form is the
//! address of its first segment, so a packet moves through the ring whole and owned, and one
//! left in the ring when it is dropped is freed with it.

use core::ptr::NonNull;

use dpmem_ring::Handle;

use crate::handle::Mbuf;
use crate::header::MbufHeader;

impl Handle for Mbuf<'_> {
    type Raw = usize;

    #[inline(always)]
    fn into_raw(self) -> usize {
        Mbuf::into_raw(self).as_ptr() as usize
    }

    #[inline(always)]
    unsafe fn from_raw(raw: usize) -> Self {
        let m = NonNull::new(raw as *mut MbufHeader).expect("a packet's address is not null");
        // SAFETY: `raw` came from `into_raw` of a handle of the same type (so the same `'p`
        // borrow of the pools) and is turned back once: the packet's reference goes back to a
        // handle.
        unsafe { Mbuf::from_raw_parts(m) }
    }
}
