//! A packet's data: head and tail room, pointers and device addresses into a segment, growing
//! and shrinking at either end (`rte_pktmbuf_prepend`, `append`, `adj`, `trim`), chaining two
//! packets (`rte_pktmbuf_chain`), reading and writing across segments (`rte_pktmbuf_read`,
//! and its counterpart), and making a packet one segment (`rte_pktmbuf_linearize`).
//!
//! Each operation either does all it was asked or returns an error and leaves the packet as
//! it was. Lengths are 16 bits per segment and 32 bits per packet, as in DPDK; ranges are
//! checked without wrapping (DPDK's read lets `offset + len` wrap around 2^32; here a range
//! past the packet is an error, whatever its parts).

use core::ptr::NonNull;

use crate::error::MbufError;
use crate::free::free;
use crate::header::{MbufHeader, MAX_SEGS};

/// Bytes free in front of the data of segment `m` (`rte_pktmbuf_headroom`).
#[inline(always)]
pub fn headroom(m: &MbufHeader) -> u16 {
    m.data_off.get()
}

/// Bytes free after the data of segment `m` (`rte_pktmbuf_tailroom`); a consistent segment
/// has its data inside its buffer.
#[inline(always)]
pub fn tailroom(m: &MbufHeader) -> u16 {
    m.buf_len
        .get()
        .wrapping_sub(m.data_off.get())
        .wrapping_sub(m.data_len.get())
}

/// The last segment of packet `m` (`rte_pktmbuf_lastseg`).
#[inline(always)]
pub fn last_segment(m: &MbufHeader) -> &MbufHeader {
    let mut seg = m;
    while let Some(next) = next_of(seg) {
        seg = next;
    }
    seg
}

/// The next segment of a packet's segment.
#[inline(always)]
pub(crate) fn next_of(m: &MbufHeader) -> Option<&MbufHeader> {
    // SAFETY: a segment's `next` is null or the next live segment of the same packet, alive
    // as long as the packet is (which the borrow of `m` stands for).
    unsafe { m.next.get().as_ref() }
}

/// The address `offset` bytes into the data of segment `m` (`rte_pktmbuf_mtod_offset`); not
/// checked against the data's length.
#[inline(always)]
pub fn data_at(m: &MbufHeader, offset: usize) -> *mut u8 {
    m.buf_addr
        .get()
        .wrapping_add(m.data_off.get() as usize + offset)
}

/// The device address `offset` bytes into the data of segment `m`
/// (`rte_pktmbuf_iova_offset`), when the buffer's is known.
#[inline(always)]
pub fn iova_at(m: &MbufHeader, offset: usize) -> Option<dpmem_eal::Iova> {
    dpmem_eal::Iova::new(m.buf_iova.get())?.checked_add(m.data_off.get() as u64 + offset as u64)
}

/// The packet length after adding `len` bytes.
#[inline(always)]
fn grown(m: &MbufHeader, len: u16) -> Result<u32, MbufError> {
    match m.pkt_len.get().checked_add(len as u32) {
        Some(pkt_len) => Ok(pkt_len),
        None => Err(too_long(m.pkt_len.get() as u64 + len as u64)),
    }
}

#[cold]
fn too_long(len: u64) -> MbufError {
    MbufError::PacketTooLong { len }
}

#[cold]
fn no_headroom(wanted: u16, room: u16) -> MbufError {
    MbufError::NoHeadroom {
        wanted: wanted as usize,
        room,
    }
}

#[cold]
fn no_tailroom(wanted: usize, room: u16) -> MbufError {
    MbufError::NoTailroom { wanted, room }
}

#[cold]
fn too_short(wanted: u16, len: u16) -> MbufError {
    MbufError::SegmentTooShort {
        wanted: wanted as usize,
        len,
    }
}

/// Grows the data of the first segment by `len` bytes at the front (`rte_pktmbuf_prepend`);
/// returns where the new bytes start. `ENOSPC` when the headroom is shorter.
///
/// The caller owns the packet (its data may be shared; only the header changes here).
#[inline]
pub fn prepend(m: &MbufHeader, len: u16) -> Result<*mut u8, MbufError> {
    if len > m.data_off.get() {
        return Err(no_headroom(len, m.data_off.get()));
    }
    let pkt_len = grown(m, len)?;
    m.data_off.set(m.data_off.get() - len);
    m.data_len.set(m.data_len.get() + len);
    m.pkt_len.set(pkt_len);
    Ok(data_at(m, 0))
}

/// Grows the data of the last segment by `len` bytes at the end (`rte_pktmbuf_append`);
/// returns where the new bytes start. `ENOSPC` when that segment's tailroom is shorter.
#[inline]
pub fn append(m: &MbufHeader, len: u16) -> Result<*mut u8, MbufError> {
    append_to_last(m, last_segment(m), len)
}

/// [`append`] with the last segment of `m` already found.
#[inline(always)]
pub(crate) fn append_to_last(
    m: &MbufHeader,
    last: &MbufHeader,
    len: u16,
) -> Result<*mut u8, MbufError> {
    let room = tailroom(last);
    if len > room {
        return Err(no_tailroom(len as usize, room));
    }
    let pkt_len = grown(m, len)?;
    let tail = data_at(last, last.data_len.get() as usize);
    last.data_len.set(last.data_len.get() + len);
    m.pkt_len.set(pkt_len);
    Ok(tail)
}

/// Removes `len` bytes from the front of the first segment (`rte_pktmbuf_adj`); returns
/// where the data now starts. `EINVAL` when the segment holds fewer.
#[inline]
pub fn adj(m: &MbufHeader, len: u16) -> Result<*mut u8, MbufError> {
    if len > m.data_len.get() {
        return Err(too_short(len, m.data_len.get()));
    }
    m.data_len.set(m.data_len.get() - len);
    m.data_off.set(m.data_off.get() + len);
    m.pkt_len.set(m.pkt_len.get() - len as u32);
    Ok(data_at(m, 0))
}

/// Removes `len` bytes from the end of the last segment (`rte_pktmbuf_trim`). `EINVAL` when
/// the segment holds fewer.
#[inline]
pub fn trim(m: &MbufHeader, len: u16) -> Result<(), MbufError> {
    let last = last_segment(m);
    if len > last.data_len.get() {
        return Err(too_short(len, last.data_len.get()));
    }
    last.data_len.set(last.data_len.get() - len);
    m.pkt_len.set(m.pkt_len.get() - len as u32);
    Ok(())
}

/// Appends packet `tail` to packet `head` (`rte_pktmbuf_chain`): `head` now owns `tail`'s
/// segments. `EOVERFLOW` when the chain would pass 65,535 segments or a packet length's
/// 32 bits; nothing changes then.
///
/// # Safety
/// The caller owns both packets, which are distinct, and gives `tail`'s reference to `head`.
pub unsafe fn chain(head: &MbufHeader, tail: &MbufHeader) -> Result<(), MbufError> {
    let segs = head.nb_segs.get() as u32 + tail.nb_segs.get() as u32;
    if segs > MAX_SEGS {
        return Err(MbufError::TooManySegments {
            segs,
            max: MAX_SEGS,
        });
    }
    let pkt_len = head.pkt_len.get() as u64 + tail.pkt_len.get() as u64;
    let Ok(pkt_len) = u32::try_from(pkt_len) else {
        return Err(MbufError::PacketTooLong { len: pkt_len });
    };
    last_segment(head)
        .next
        .set(core::ptr::from_ref(tail).cast_mut());
    head.nb_segs.set(segs as u16);
    head.pkt_len.set(pkt_len);
    // The tail is a segment now: its packet fields describe itself alone.
    tail.pkt_len.set(tail.data_len.get() as u32);
    Ok(())
}

/// Checks `offset..offset+len` is inside packet `m`. Compared as what is left after
/// `offset`, so that no `len` (up to `usize::MAX`) can wrap the sum back into the packet.
fn check_range(m: &MbufHeader, offset: u32, len: usize) -> Result<(), MbufError> {
    let pkt_len = m.pkt_len.get();
    let inside = offset <= pkt_len && len as u64 <= u64::from(pkt_len - offset);
    if !inside {
        return Err(MbufError::OutOfPacket {
            offset: offset as u64,
            len: len as u64,
            pkt_len,
        });
    }
    Ok(())
}

/// Reads `len` bytes at `offset` in packet `m` (`rte_pktmbuf_read`): a pointer into the
/// segment when the range is in one, else the bytes gathered into `buf` (which must hold
/// `len`) and a pointer to it. `EINVAL` for a range past the packet or a short `buf`.
pub fn read(
    m: &MbufHeader,
    offset: u32,
    len: usize,
    buf: &mut [u8],
) -> Result<*const u8, MbufError> {
    check_range(m, offset, len)?;
    // A range inside one segment, whichever, is read in place (as DPDK's slow path does
    // after skipping the segments before it).
    let (seg, off) = skip_to(m, offset as usize);
    if off + len <= seg.data_len.get() as usize {
        return Ok(data_at(seg, off));
    }
    if buf.len() < len {
        return Err(MbufError::InvalidArgument(format!(
            "reading {len} bytes across segments needs a buffer of as many, not {}",
            buf.len()
        )));
    }
    copy_out(m, offset, &mut buf[..len]);
    Ok(buf.as_ptr())
}

/// Copies `out.len()` bytes at `offset` of packet `m` into `out`; the range must be inside
/// the packet (checked by the callers).
pub(crate) fn copy_out(m: &MbufHeader, offset: u32, out: &mut [u8]) {
    let (mut seg, mut off) = skip_to(m, offset as usize);
    let mut done = 0;
    while done < out.len() {
        let here = (seg.data_len.get() as usize - off).min(out.len() - done);
        let to = &mut out[done..done + here];
        // SAFETY: `here` bytes at `off` are inside the segment's data, which is readable
        // while the packet is; `to` is as long.
        unsafe { core::ptr::copy_nonoverlapping(data_at(seg, off), to.as_mut_ptr(), here) };
        done += here;
        off = 0;
        match next_of(seg) {
            Some(next) => seg = next,
            None => break,
        }
    }
}

/// The segment holding byte `offset` of packet `m` and the offset in it (a segment's end is
/// the next one's start).
fn skip_to(m: &MbufHeader, mut offset: usize) -> (&MbufHeader, usize) {
    let mut seg = m;
    while offset >= seg.data_len.get() as usize {
        let Some(next) = next_of(seg) else { break };
        offset -= seg.data_len.get() as usize;
        seg = next;
    }
    (seg, offset)
}

/// Writes `data` at `offset` in packet `m`, across segments as needed. `EINVAL` for a range
/// past the packet; nothing is written then.
///
/// # Safety
/// The caller owns the packet and may write its data (no other buffer shares it).
pub unsafe fn write(m: &MbufHeader, offset: u32, data: &[u8]) -> Result<(), MbufError> {
    check_range(m, offset, data.len())?;
    let (mut seg, mut off) = skip_to(m, offset as usize);
    let mut done = 0;
    while done < data.len() {
        let here = (seg.data_len.get() as usize - off).min(data.len() - done);
        let from = &data[done..done + here];
        // SAFETY: `here` bytes at `off` are inside the segment's data, which the caller may
        // write; `from` is as long.
        unsafe { core::ptr::copy_nonoverlapping(from.as_ptr(), data_at(seg, off), here) };
        done += here;
        off = 0;
        match next_of(seg) {
            Some(next) => seg = next,
            None => break,
        }
    }
    Ok(())
}

/// Moves the whole packet into its first segment and frees the others
/// (`rte_pktmbuf_linearize`). `ENOSPC` when the first segment's tailroom cannot take the
/// rest; the packet is unchanged then.
///
/// # Safety
/// The caller owns the packet and may write its first segment's buffer; the pools of its
/// segments are open in this process.
pub unsafe fn linearize(m: &MbufHeader) -> Result<(), MbufError> {
    let Some(first_tail) = next_of(m) else {
        return Ok(());
    };
    let rest = m.pkt_len.get() - m.data_len.get() as u32;
    let room = tailroom(m);
    if rest > room as u32 {
        return Err(MbufError::NoTailroom {
            wanted: rest as usize,
            room,
        });
    }
    let mut at = data_at(m, m.data_len.get() as usize);
    let mut seg = Some(first_tail);
    while let Some(s) = seg {
        let n = s.data_len.get() as usize;
        // SAFETY: the segment's data is readable; the first segment's tailroom (checked to
        // hold the rest) is the caller's to write, and the two do not overlap (distinct
        // buffers' data, or the first segment's free tail).
        unsafe { core::ptr::copy_nonoverlapping(data_at(s, 0), at, n) };
        at = at.wrapping_add(n);
        seg = next_of(s);
    }
    let tail = NonNull::from(first_tail);
    m.next.set(core::ptr::null_mut());
    m.data_len.set(m.pkt_len.get() as u16);
    m.nb_segs.set(1);
    // The old tail is a packet of its own now, with the references its segments held.
    // SAFETY: the caller owned them through the packet; their pools are open.
    unsafe { free(tail) };
    Ok(())
}
