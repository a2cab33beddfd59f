//! [`Mbuf`]: an owning handle on a packet, in the manner of the `bytes` crate: the packet is
//! freed (every segment, each going home with its last reference) when the handle drops;
//! segments are byte slices; clones share data; data can be written only where nothing else
//! shares it.
//!
//! The handle borrows the pool it came from (`'p`), and joining packets or clones of other
//! pools shortens that borrow to the shortest of them, so every pool a packet's segments
//! belong to stays open while the handle lives. It is `Send` (a packet can go to another
//! lcore) but not `Sync`: two threads acting through one handle at once would race on the
//! single-owner shortcut of its reference counts.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crate::data;
use crate::error::MbufError;
use crate::free;
use crate::header::MbufHeader;
use crate::pool::PktmbufPool;

/// An owned packet: one or more segments, freed on drop.
///
/// The handle is the address of the packet's first segment and nothing else
/// (`repr(transparent)`), so arrays of handles and arrays of addresses have the same layout.
#[repr(transparent)]
pub struct Mbuf<'p> {
    m: NonNull<MbufHeader>,
    /// The pools of the segments outlive `'p`; not `Sync` (see the module notes).
    _pools: PhantomData<(&'p PktmbufPool<'p>, core::cell::Cell<()>)>,
}

// SAFETY: a packet's segments are shared memory reachable from any thread; the handle owns
// its reference, and every shared count it touches is atomic beyond one owner.
unsafe impl Send for Mbuf<'_> {}

impl std::fmt::Debug for Mbuf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.header();
        f.debug_struct("Mbuf")
            .field("at", &self.m)
            .field("pkt_len", &h.pkt_len)
            .field("nb_segs", &h.nb_segs)
            .field("data_len", &h.data_len)
            .field("refcnt", &h.refcnt())
            .field("ol_flags", &h.ol_flags())
            .finish()
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle owns the packet's reference; the lifetime keeps its pools open.
        unsafe { free::free(self.m) }
    }
}

impl<'eal> PktmbufPool<'eal> {
    /// An empty packet (`rte_pktmbuf_alloc`). `ENOENT` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Result<Mbuf<'_>, MbufError> {
        let m = self.alloc_raw_reset()?;
        // SAFETY: a fresh buffer of this pool, owned by the caller.
        Ok(unsafe { Mbuf::from_raw(m, self) })
    }

    /// `N` empty packets, all or none (`rte_pktmbuf_alloc_bulk`).
    ///
    /// The array is returned by value, which the compiler copies as it is moved (through `?`,
    /// into a free): a loop that allocates bursts at line rate keeps a
    /// [`Burst`](crate::Burst) instead and fills it in place with
    /// [`alloc_burst`](Self::alloc_burst).
    #[inline(always)]
    pub fn alloc_array<const N: usize>(&self) -> Result<[Mbuf<'_>; N], MbufError> {
        // Written where it is returned from, rather than read out of an array of addresses:
        // one copy of the array fewer. `ManuallyDrop`: should the pool panic half-way (a
        // check of the debug build), the placeholders must not be dropped as packets.
        // SAFETY: each placeholder is overwritten by the pool, or never dropped.
        let mut packets =
            core::mem::ManuallyDrop::new(core::array::from_fn::<_, N, _>(|_| unsafe {
                Mbuf::dangling()
            }));
        // SAFETY: `Mbuf` is a `repr(transparent)` non-null address, so the array reads as `N`
        // initialised addresses for the pool to overwrite with fresh buffers of its own.
        let raw = unsafe { &mut *packets.as_mut_ptr().cast::<[*mut MbufHeader; N]>() };
        self.alloc_bulk_raw(raw)?;
        Ok(core::mem::ManuallyDrop::into_inner(packets))
    }

    /// Fills `out` with empty packets, all or none, keeping what it held.
    ///
    /// The buffers are taken straight into `out`'s spare room (a handle is an address), so a
    /// receive path that keeps its vector allocates nothing per burst.
    pub fn alloc_into<'a>(&'a self, out: &mut Vec<Mbuf<'a>>, n: usize) -> Result<(), MbufError> {
        out.reserve(n);
        self.fill_slots(&mut out.spare_capacity_mut()[..n])?;
        let len = out.len();
        // SAFETY: the `n` slots past the length hold fresh buffers of this pool, each now
        // owned by the caller through its handle.
        unsafe { out.set_len(len + n) };
        Ok(())
    }

    /// Fills every slot of `slots` with an empty packet, all or none (`ENOENT`): on `Ok` each
    /// slot holds a handle its owner must count (and so drop), on `Err` none holds a packet.
    /// How [`alloc_into`](Self::alloc_into) and [`alloc_burst`](Self::alloc_burst) take
    /// buffers straight into their spare room (a handle is an address).
    #[inline(always)]
    pub(crate) fn fill_slots<'a>(
        &'a self,
        slots: &mut [MaybeUninit<Mbuf<'a>>],
    ) -> Result<(), MbufError> {
        // A pointer must be initialised before a slice of pointers may cover it.
        for slot in slots.iter_mut() {
            // SAFETY: a `MaybeUninit` slot is never dropped, so the placeholder is not; the
            // pool overwrites it, or the caller leaves the slot uncounted.
            slot.write(unsafe { Mbuf::dangling() });
        }
        // SAFETY: `Mbuf` is a `repr(transparent)` non-null address, so the slots, all just
        // initialised, read as as many initialised `*mut MbufHeader`s; the slice borrows them
        // mutably for the call only.
        let raw = unsafe {
            core::slice::from_raw_parts_mut(
                slots.as_mut_ptr().cast::<*mut MbufHeader>(),
                slots.len(),
            )
        };
        self.alloc_bulk_raw(raw)
    }

    /// A packet holding a copy of `bytes`, chaining as many buffers as it takes. `EINVAL`
    /// when the pool's buffers have no room for data.
    pub fn alloc_from_slice(&self, bytes: &[u8]) -> Result<Mbuf<'_>, MbufError> {
        let mut packet = self.alloc()?;
        let mut rest = bytes;
        loop {
            let here = (packet.tailroom_of_last() as usize).min(rest.len());
            packet.extend_from_slice(&rest[..here])?;
            rest = &rest[here..];
            if rest.is_empty() {
                return Ok(packet);
            }
            let next = self.alloc()?;
            if next.tailroom_of_last() == 0 {
                return Err(MbufError::InvalidArgument(format!(
                    "packet buffer pool {:?} has no room for data",
                    self.name()
                )));
            }
            packet.chain(next).map_err(|(e, _)| e)?;
        }
    }
}

impl<'p> Mbuf<'p> {
    /// Frees `N` packets of any pools in one call (`rte_pktmbuf_free_bulk`): segments going
    /// to the same pool are put back together.
    #[inline(always)]
    pub fn free_bulk<const N: usize>(packets: [Mbuf<'p>; N]) {
        let packets = core::mem::ManuallyDrop::new(packets);
        // SAFETY: a `repr(transparent)` handle is its packet's address; the handles are not
        // dropped (`ManuallyDrop`), so each reference is freed once, by `free_bulk`.
        let raw: &[*mut MbufHeader; N] = unsafe { &*core::ptr::from_ref(&*packets).cast() };
        // SAFETY: each address carries its handle's reference; the handles' borrows keep the
        // pools open for the call.
        unsafe { free::free_bulk(raw) }
    }

    /// Frees any number of packets, in bulk calls of up to 64 ([`Mbuf::free_bulk`]).
    pub fn free_all(packets: impl IntoIterator<Item = Mbuf<'p>>) {
        const STEP: usize = 64;
        let mut raw = [core::ptr::null_mut::<MbufHeader>(); STEP];
        let mut n = 0;
        for packet in packets {
            raw[n] = packet.into_raw().as_ptr();
            n += 1;
            if n == STEP {
                // SAFETY: each address carries the reference its handle gave up; the
                // handles' borrows keep the pools open.
                unsafe { free::free_bulk(&raw) };
                n = 0;
            }
        }
        // SAFETY: as above.
        unsafe { free::free_bulk(&raw[..n]) };
    }

    /// Takes ownership of packet `m`.
    ///
    /// # Safety
    /// The caller owns the packet's reference and gives it to the handle; every segment's
    /// pool is open in this process for `'p` (`pool` is one of them, which is how the
    /// borrow is taken).
    #[inline(always)]
    pub unsafe fn from_raw(m: NonNull<MbufHeader>, _pool: &'p PktmbufPool<'_>) -> Mbuf<'p> {
        Mbuf {
            m,
            _pools: PhantomData,
        }
    }

    /// A placeholder handle that names no packet, for a slot the pool is about to write.
    ///
    /// # Safety
    /// The handle is overwritten with a packet's address, or forgotten, before it can be
    /// dropped or used.
    #[inline(always)]
    pub(crate) unsafe fn dangling() -> Self {
        Mbuf {
            m: NonNull::dangling(),
            _pools: PhantomData,
        }
    }

    /// A handle on packet `m` with the lifetime the caller names.
    ///
    /// # Safety
    /// As [`from_raw`](Self::from_raw), with `'p` no longer than the pools' being open.
    #[inline(always)]
    pub(crate) unsafe fn from_raw_parts(m: NonNull<MbufHeader>) -> Mbuf<'p> {
        Mbuf {
            m,
            _pools: PhantomData,
        }
    }

    /// Gives up the handle without freeing: the caller owns the packet's reference.
    #[inline(always)]
    pub fn into_raw(self) -> NonNull<MbufHeader> {
        let m = self.m;
        core::mem::forget(self);
        m
    }

    /// The first segment's header.
    #[inline(always)]
    pub fn as_raw(&self) -> NonNull<MbufHeader> {
        self.m
    }

    /// The first segment's header: lengths, flags, offload fields.
    #[inline(always)]
    pub fn header(&self) -> &MbufHeader {
        // SAFETY: the handle keeps the packet alive.
        unsafe { self.m.as_ref() }
    }

    /// Sets the port the packet goes to or came from.
    pub fn set_port(&self, port: u16) {
        self.header().set_port(port);
    }

    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.header().pkt_len()
    }

    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.header().nb_segs()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pkt_len() == 0
    }

    /// Bytes free in front of the data.
    #[inline]
    pub fn headroom(&self) -> u16 {
        self.header().data_off()
    }

    /// Bytes free after the data of the last segment.
    #[inline]
    pub fn tailroom_of_last(&self) -> u16 {
        data::tailroom(data::last_segment(self.header()))
    }

    /// The device address of the first byte of data, when known.
    pub fn iova(&self) -> Option<dpmem_eal::Iova> {
        data::iova_at(self.header(), 0)
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        segment_bytes(self.header())
    }

    /// The segments' data in order.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: Some(self.header()),
        }
    }

    /// Whether every segment's data is this packet's alone to write: one reference on each
    /// segment, and each segment's memory shared with no other buffer.
    pub fn is_writable(&self) -> bool {
        let mut seg = Some(self.header());
        while let Some(s) = seg {
            if !segment_writable(s) {
                return false;
            }
            seg = data::next_of(s);
        }
        true
    }

    fn check_writable(&self) -> Result<(), MbufError> {
        if self.is_writable() {
            Ok(())
        } else {
            Err(shared_data())
        }
    }

    /// The first segment's data, to write. `EBUSY` when it is shared.
    #[inline]
    pub fn data_mut(&mut self) -> Result<&mut [u8], MbufError> {
        check_segment_writable(self.header())?;
        let (at, len) = (
            data::data_at(self.header(), 0),
            self.header().data_len() as usize,
        );
        // SAFETY: the first segment's data is inside its buffer and this packet's alone
        // (checked); the borrow of the handle keeps it so.
        Ok(unsafe { core::slice::from_raw_parts_mut(at, len) })
    }

    /// Grows the packet by `len` bytes at the end (in the last segment's tailroom) and gives
    /// them to write. `ENOSPC` when the tailroom is short, `EBUSY` when the data is shared.
    #[inline]
    pub fn append(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        let last = data::last_segment(self.header());
        check_segment_writable(last)?;
        let at = data::append_to_last(self.header(), last, len)?;
        // SAFETY: the new bytes are inside the last segment's buffer, this packet's alone.
        Ok(unsafe { core::slice::from_raw_parts_mut(at, len as usize) })
    }

    /// Appends a copy of `bytes` (in the last segment's tailroom).
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), MbufError> {
        let len = u16::try_from(bytes.len()).map_err(|_| MbufError::NoTailroom {
            wanted: bytes.len(),
            room: self.tailroom_of_last(),
        })?;
        self.append(len)?.copy_from_slice(bytes);
        Ok(())
    }

    /// Grows the packet by `len` bytes at the front (in the headroom) and gives them to
    /// write. `ENOSPC` when the headroom is short, `EBUSY` when the data is shared.
    #[inline]
    pub fn prepend(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        check_segment_writable(self.header())?;
        let at = data::prepend(self.header(), len)?;
        // SAFETY: the new bytes are inside the first segment's buffer, this packet's alone.
        Ok(unsafe { core::slice::from_raw_parts_mut(at, len as usize) })
    }

    /// Removes `len` bytes from the front of the first segment. `EINVAL` when it holds fewer.
    #[inline]
    pub fn adj(&mut self, len: u16) -> Result<(), MbufError> {
        data::adj(self.header(), len).map(|_| ())
    }

    /// Removes `len` bytes from the end of the last segment. `EINVAL` when it holds fewer.
    #[inline]
    pub fn trim(&mut self, len: u16) -> Result<(), MbufError> {
        data::trim(self.header(), len)
    }

    /// Appends packet `tail` to this one. `EOVERFLOW` past 65,535 segments, with `tail`
    /// handed back.
    pub fn chain(&mut self, tail: Mbuf<'p>) -> Result<(), (MbufError, Mbuf<'p>)> {
        // SAFETY: the handles own both packets, which are distinct (two owners); on success
        // the tail's reference goes to this packet (the tail handle is forgotten).
        match unsafe { data::chain(self.header(), tail.header()) } {
            Ok(()) => {
                core::mem::forget(tail);
                Ok(())
            }
            Err(e) => Err((e, tail)),
        }
    }

    /// `len` bytes at `offset`: a slice of the packet when they are in one segment, else
    /// gathered into `buf` (which must hold `len`). `EINVAL` past the packet.
    pub fn read<'a>(
        &'a self,
        offset: u32,
        len: usize,
        buf: &'a mut [u8],
    ) -> Result<&'a [u8], MbufError> {
        let at = data::read(self.header(), offset, len, buf)?;
        // SAFETY: `read` points into a segment's data or into `buf`, `len` bytes either way,
        // both living as long as the borrows.
        Ok(unsafe { core::slice::from_raw_parts(at, len) })
    }

    /// Copies the bytes at `offset` into `out` (across segments). `EINVAL` past the packet.
    pub fn copy_to_slice(&self, offset: u32, out: &mut [u8]) -> Result<(), MbufError> {
        let pkt_len = self.pkt_len();
        if offset as u64 + out.len() as u64 > pkt_len as u64 {
            return Err(MbufError::OutOfPacket {
                offset: offset as u64,
                len: out.len() as u64,
                pkt_len,
            });
        }
        data::copy_out(self.header(), offset, out);
        Ok(())
    }

    /// The whole packet's bytes in a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.pkt_len() as usize];
        self.copy_to_slice(0, &mut out)
            .expect("the whole packet is inside it");
        out
    }

    /// Writes `bytes` at `offset`, across segments. `EINVAL` past the packet, `EBUSY` when
    /// the data is shared.
    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MbufError> {
        self.check_writable()?;
        // SAFETY: the handle owns the packet, whose data is its alone (checked).
        unsafe { data::write(self.header(), offset, bytes) }
    }

    /// Makes the packet one segment, moving the rest into the first segment's tailroom.
    /// `ENOSPC` when it is short, `EBUSY` when the first segment is shared.
    pub fn linearize(&mut self) -> Result<(), MbufError> {
        if self.header().next().is_null() {
            return Ok(());
        }
        if !segment_writable(self.header()) {
            return Err(MbufError::NotDirectOrShared(
                "its first segment is shared and cannot take the rest".into(),
            ));
        }
        // SAFETY: the handle owns the packet; the first segment is its alone; the pools are
        // open for `'p`.
        unsafe { data::linearize(self.header()) }
    }

    /// A clone sharing this packet's data: one indirect buffer from `pool` per segment
    /// (`rte_pktmbuf_clone`). Neither can write the shared data while both live. `EINVAL`
    /// when `pool` is pinned.
    #[inline]
    pub fn clone_in<'q>(&self, pool: &'q PktmbufPool<'_>) -> Result<Mbuf<'q>, MbufError>
    where
        'p: 'q,
    {
        // SAFETY: the handle holds the packet's reference; its pools outlive `'p: 'q`.
        let m = unsafe { pool.clone_raw(self.m)? };
        // SAFETY: the clone is new and owned; its segments' pools are `pool` and this
        // packet's (held by the clone's references), open for `'q`.
        Ok(unsafe { Mbuf::from_raw(m, pool) })
    }

    /// A deep copy of `len` bytes at `offset` (fewer when the packet ends first) in buffers
    /// of `pool` (`rte_pktmbuf_copy`).
    pub fn copy_in<'q>(
        &self,
        pool: &'q PktmbufPool<'_>,
        offset: u32,
        len: u32,
    ) -> Result<Mbuf<'q>, MbufError> {
        // SAFETY: the handle holds the packet's reference.
        let m = unsafe { pool.copy_raw(self.m, offset, len)? };
        // SAFETY: the copy is new, owned, all of `pool`.
        Ok(unsafe { Mbuf::from_raw(m, pool) })
    }

    /// Checks the packet (`rte_mbuf_check` of a packet's head): the reason of the first
    /// problem found.
    pub fn check(&self) -> Result<(), &'static str> {
        // SAFETY: the handle keeps the packet alive.
        unsafe { crate::check::check_header(self.m.as_ptr(), true) }
    }
}

/// `EBUSY` unless the segment's data is its own to write.
#[inline(always)]
fn check_segment_writable(s: &MbufHeader) -> Result<(), MbufError> {
    if segment_writable(s) {
        Ok(())
    } else {
        Err(shared_data())
    }
}

#[cold]
fn shared_data() -> MbufError {
    MbufError::NotDirectOrShared(
        "its data is shared with another buffer and cannot be written".into(),
    )
}

/// Whether a segment's data is its own to write.
#[inline(always)]
fn segment_writable(s: &MbufHeader) -> bool {
    if s.refcnt() != 1 || s.is_indirect() {
        return false;
    }
    if s.has_extbuf() {
        // SAFETY: an external buffer's shared info lives while the buffer references it.
        return unsafe { (*s.shinfo.get()).refcnt() } == 1;
    }
    true
}

/// A segment's data as a slice, for as long as the segment is borrowed.
fn segment_bytes(m: &MbufHeader) -> &[u8] {
    // SAFETY: a segment's data is inside its buffer, readable while the packet lives (the
    // borrow); nothing writes shared data, and writes to data of this packet alone need a
    // unique borrow of its handle.
    unsafe { core::slice::from_raw_parts(data::data_at(m, 0), m.data_len() as usize) }
}

/// The segments of a packet as byte slices ([`Mbuf::segments`]).
#[derive(Debug)]
pub struct Segments<'a> {
    next: Option<&'a MbufHeader>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let seg = self.next?;
        self.next = data::next_of(seg);
        Some(segment_bytes(seg))
    }
}
