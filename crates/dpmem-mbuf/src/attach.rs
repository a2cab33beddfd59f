//! Sharing data between buffers: attaching a buffer to another's data (an indirect buffer,
//! `rte_pktmbuf_attach`), to an external buffer (`rte_pktmbuf_attach_extbuf`), and detaching
//! (`rte_pktmbuf_detach`); cloning a whole packet is in `clone`.
//!
//! An indirect buffer holds a reference on the direct buffer whose room it points into; an
//! external one holds a reference on the shared info of the memory it points into (taken by
//! whoever attached it, as in DPDK). Detaching drops that reference — the direct buffer goes
//! home, or the external memory's callback runs, when it was the last — and gives the buffer
//! its own room back. A pinned pool's buffer is never detached from its memory.

use core::ffi::c_void;
use core::ptr::{null_mut, NonNull};

use dpmem_mempool::Mempool;

use crate::error::MbufError;
use crate::header::{MbufHeader, OlFlags, HEADER_SIZE, HEADROOM};
use crate::pool_info::PoolInfo;
use crate::put::raw_free;
use crate::refcount;
use crate::shared_info::ExtSharedInfo;

/// The direct buffer whose room `m`'s data is in (`rte_mbuf_from_indirect`): `m` itself when
/// direct. An indirect buffer's `buf_addr` and `priv_size` are its direct buffer's, whose
/// room starts right after its header and private area.
#[inline(always)]
pub(crate) fn direct_of(m: &MbufHeader) -> *mut MbufHeader {
    m.buf_addr
        .get()
        .wrapping_sub(HEADER_SIZE + m.priv_size.get() as usize)
        .cast()
}

/// The pool info of a live buffer.
#[inline(always)]
fn pool_info(m: &MbufHeader) -> &PoolInfo {
    // SAFETY: a live buffer's pool is open, and its info lives in the pool's memzone.
    unsafe { &*m.pool.get() }
}

/// Drops the reference `m` (not direct, last reference gone) holds on the data it is attached
/// to and gives it its own room back. False for a pinned pool's buffer whose memory clones
/// still share: it must stay out, and the last clone sends it home.
///
/// # Safety
/// `m` is a live buffer that is indirect or external, which the caller has alone; the pools
/// involved are open in this process.
#[inline]
pub(crate) unsafe fn detach_data(m: NonNull<MbufHeader>) -> bool {
    // SAFETY: the caller's contract.
    let h = unsafe { m.as_ref() };
    let info = pool_info(h);
    if h.has_extbuf() {
        if info.is_pinned() {
            return pinned_release_own(h);
        }
        // SAFETY: an external buffer the caller has alone; the callback is this process's
        // (the caller's contract).
        unsafe { release_extbuf(h) };
    } else {
        // SAFETY: an indirect buffer the caller has alone; the pools are open.
        unsafe { release_direct(h) };
    }
    restore_own_room(h, info);
    true
}

/// A pinned pool's buffer releasing its own memory: true when no clone shares it any more.
fn pinned_release_own(h: &MbufHeader) -> bool {
    // The buffer is being freed: its flags go back to a fresh pinned buffer's (as DPDK's),
    // so a raw allocation never sees the last packet's offload flags.
    h.ol_flags.set(OlFlags::EXTERNAL.bits());
    // SAFETY: a pinned buffer's shared info is right after its header, live with it.
    let shinfo = unsafe { &*h.shinfo.get() };
    // When the clones are gone the count is back at 1: the memory is this buffer's alone.
    refcount::release_for_reuse(&shinfo.refcnt)
}

/// Drops `h`'s reference on its external memory, running the callback when it was the last.
///
/// # Safety
/// `h` is an external buffer the caller has alone, holding a reference on a live shared
/// info; its callback (if any) may run in this process; a pinned owner's pool is open.
#[inline]
unsafe fn release_extbuf(h: &MbufHeader) {
    let shinfo = NonNull::new(h.shinfo.get()).expect("an external buffer has a shared info");
    // SAFETY: `h` holds a reference on the shared info, so it is live.
    let info = unsafe { shinfo.as_ref() };
    if !refcount::release(&info.refcnt) {
        return;
    }
    if info.free_cb.is_some() {
        // SAFETY: the last reference is gone; the callback is this process's (contract).
        unsafe { ExtSharedInfo::run_callback(shinfo, h.buf_addr.get()) };
    } else {
        // A pinned pool's memory: its buffer (the opaque value) goes home.
        let owner = info.fcb_opaque;
        // SAFETY: a shared info without callback is a pinned buffer's and names that buffer,
        // which stayed out for its clones; its pool is open (contract).
        unsafe { free_pinned_owner(owner) };
    }
}

/// Sends home the pinned buffer whose memory's last clone just went (DPDK's
/// `rte_pktmbuf_free_pinned_extmem`).
///
/// # Safety
/// `owner` is a live pinned-pool buffer whose shared info's last reference was just dropped,
/// its own reference dropped before; its pool is open in this process.
unsafe fn free_pinned_owner(owner: *mut c_void) {
    let m =
        NonNull::new(owner.cast::<MbufHeader>()).expect("a pinned shared info names its buffer");
    // SAFETY: the caller's contract: nobody else uses the buffer or its shared info.
    let h = unsafe { m.as_ref() };
    // SAFETY: as above; the shared info is right after the header.
    unsafe { &*h.shinfo.get() }.refcnt_set(1);
    h.ol_flags.set(OlFlags::EXTERNAL.bits());
    h.next.set(null_mut());
    h.nb_segs.set(1);
    refcount::set(&h.refcnt, 1);
    // SAFETY: the buffer is ready for its pool, owned here, and the pool is open.
    unsafe { raw_free(m) };
}

/// Drops `h`'s reference on the direct buffer it is attached to; the direct buffer goes home
/// when it was the last.
///
/// # Safety
/// `h` is an indirect buffer the caller has; the direct buffer's pool is open.
#[inline]
unsafe fn release_direct(h: &MbufHeader) {
    let md = NonNull::new(direct_of(h)).expect("an indirect buffer's direct buffer");
    // SAFETY: `h` holds a reference on `md`, so it is live.
    let direct = unsafe { md.as_ref() };
    if refcount::release_for_reuse(&direct.refcnt) {
        // The last reference is gone: this thread has `md` alone.
        direct.next.set(null_mut());
        direct.nb_segs.set(1);
        // SAFETY: ready for its pool, owned here; the pool is open (contract).
        unsafe { raw_free(md) };
    }
}

/// Gives `h` its own room back, empty, as a direct buffer.
#[inline]
fn restore_own_room(h: &MbufHeader, info: &PoolInfo) {
    let header_and_priv = HEADER_SIZE + info.priv_size as usize;
    let obj = core::ptr::from_ref(h).cast::<u8>();
    // SAFETY: every buffer header is a mempool object.
    let iova = unsafe { Mempool::obj_iova(obj) };
    h.priv_size.set(info.priv_size);
    h.buf_addr.set(obj.cast_mut().wrapping_add(header_and_priv));
    h.buf_iova.set(dpmem_eal::Iova::to_raw(
        iova.and_then(|i| i.checked_add(header_and_priv as u64)),
    ));
    h.buf_len.set(info.data_room);
    h.data_off.set(HEADROOM.min(info.data_room));
    h.data_len.set(0);
    h.ol_flags.set(0);
}

/// Detaches `m` from the data it is attached to and gives it its own room back, empty
/// (`rte_pktmbuf_detach`). A direct buffer, and a pinned pool's buffer, are left as they are.
///
/// # Safety
/// The caller has `m` alone (one reference); the pools involved are open in this process,
/// and an external buffer's callback may run in it.
#[inline]
pub unsafe fn detach(m: NonNull<MbufHeader>) {
    // SAFETY: the caller's contract.
    let h = unsafe { m.as_ref() };
    if h.is_direct() || (h.has_extbuf() && pool_info(h).is_pinned()) {
        return;
    }
    // SAFETY: indirect or external (not pinned), the caller's alone.
    let kept = unsafe { detach_data(m) };
    debug_assert!(kept, "only a pinned buffer stays attached");
}

/// Checks `mi` may be attached: direct, with one reference.
#[inline(always)]
fn check_attachable(mi: &MbufHeader) -> Result<(), MbufError> {
    if mi.is_direct() && mi.refcnt() == 1 {
        return Ok(());
    }
    Err(not_attachable(mi))
}

#[cold]
fn not_attachable(mi: &MbufHeader) -> MbufError {
    if !mi.is_direct() {
        return MbufError::NotDirectOrShared("it is already attached to other data".into());
    }
    MbufError::NotDirectOrShared(format!("it has {} references", mi.refcnt()))
}

/// Attaches `mi` to the data of segment `m` (`rte_pktmbuf_attach`): `mi` becomes a
/// one-segment packet sharing `m`'s data and header fields, holding a reference on the direct
/// buffer behind `m` (or on `m`'s external memory). `EBUSY`
/// ([`MbufError::NotDirectOrShared`]) when `mi` is not direct or is shared; nothing changes.
///
/// # Safety
/// The caller has `mi` and holds a reference on `m`, both live.
#[inline]
pub unsafe fn attach(mi: NonNull<MbufHeader>, m: NonNull<MbufHeader>) -> Result<(), MbufError> {
    // SAFETY: the caller's contract: `mi` is live and the caller's.
    let dst = unsafe { mi.as_ref() };
    // SAFETY: the caller's contract: `m` is live and held.
    let src = unsafe { m.as_ref() };
    check_attachable(dst)?;
    if src.has_extbuf() {
        // SAFETY: `m` holds a reference on its live shared info.
        unsafe { &*src.shinfo.get() }.refcnt_update(1);
        dst.ol_flags.set(src.ol_flags.get());
        dst.shinfo.set(src.shinfo.get());
    } else {
        // SAFETY: `m` (held) holds or is a reference on its direct buffer, which is live.
        refcount::update(unsafe { &(*direct_of(src)).refcnt }, 1);
        dst.priv_size.set(src.priv_size.get());
        dst.ol_flags
            .set(src.ol_flags.get() | OlFlags::INDIRECT.bits());
    }
    copy_header_fields(dst, src);
    dst.data_off.set(src.data_off.get());
    dst.data_len.set(src.data_len.get());
    dst.buf_iova.set(src.buf_iova.get());
    dst.buf_addr.set(src.buf_addr.get());
    dst.buf_len.set(src.buf_len.get());
    dst.next.set(null_mut());
    dst.pkt_len.set(dst.data_len.get() as u32);
    dst.nb_segs.set(1);
    Ok(())
}

/// The fields a clone or a copy takes from its source (`__rte_pktmbuf_copy_hdr`).
#[inline(always)]
pub(crate) fn copy_header_fields(dst: &MbufHeader, src: &MbufHeader) {
    dst.port.set(src.port.get());
    dst.vlan_tci.set(src.vlan_tci.get());
    dst.vlan_tci_outer.set(src.vlan_tci_outer.get());
    dst.tx_offload.set(src.tx_offload.get());
    dst.hash.set(src.hash.get());
    dst.packet_type.set(src.packet_type.get());
    dst.dynfield1.set(src.dynfield1.get());
}

/// Attaches external memory to `m` (`rte_pktmbuf_attach_extbuf`): `len` bytes at `addr`
/// become its buffer, empty, with `shinfo` describing the memory. The shared info's count is
/// not changed: the caller accounts for the reference `m` now holds. `EBUSY` when `m` is not
/// direct or is shared; nothing changes.
///
/// # Safety
/// The caller has `m`; `addr` is valid for `len` bytes while any buffer references it;
/// `shinfo` is live, its count includes `m`'s reference, and its callback may run in
/// whichever process frees the last reference.
#[inline]
pub unsafe fn attach_extbuf(
    m: NonNull<MbufHeader>,
    addr: *mut u8,
    iova: Option<dpmem_eal::Iova>,
    len: u16,
    shinfo: NonNull<ExtSharedInfo>,
) -> Result<(), MbufError> {
    // SAFETY: the caller's contract.
    let h = unsafe { m.as_ref() };
    check_attachable(h)?;
    set_extbuf(h, addr, iova, len, shinfo);
    Ok(())
}

/// The fields [`attach_extbuf`] sets, for a buffer known to be attachable (fresh from its
/// pool): its buffer becomes the external memory, empty.
#[inline(always)]
pub(crate) fn set_extbuf(
    h: &MbufHeader,
    addr: *mut u8,
    iova: Option<dpmem_eal::Iova>,
    len: u16,
    shinfo: NonNull<ExtSharedInfo>,
) {
    h.buf_addr.set(addr);
    h.buf_iova.set(dpmem_eal::Iova::to_raw(iova));
    h.buf_len.set(len);
    h.data_len.set(0);
    h.data_off.set(0);
    h.ol_flags.set(h.ol_flags.get() | OlFlags::EXTERNAL.bits());
    h.shinfo.set(shinfo.as_ptr());
}
