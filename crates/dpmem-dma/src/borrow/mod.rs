//! MTL's borrowing layer (`mt_dma.c`): sessions ("lenders") share one copy device to move
//! received payloads into frames, and the layer holds each packet while the device reads it.
//!
//! - Up to [`MAX_LENDERS`] lenders share the device; a lender registered after that gets no
//!   device and every one of its copies is a CPU copy (counted, with the lender).
//! - A device copy takes the packet by value ([`Mbuf`]): the layer holds it, so its buffer
//!   cannot go back to its pool while the device reads it. When [`DmaBorrower::completed`]
//!   reports the copy, the layer gives the packet to its lender's callback and then releases
//!   it — in the order the copies were queued, one queue for all lenders (MTL's borrow queue).
//! - The CPU copies instead, at once, when the payload is at most [`CPU_COPY_MAX`] bytes,
//!   when the device's ring is full, when source or destination crosses a page boundary
//!   where the IOVA jumps, or when there is no device; each reason is counted
//!   ([`BorrowStats`]). A copy the device reports failed is done again by the CPU before its
//!   packet goes, so a lender never sees a copy that did not happen.
//!
//! In MTL the RX session raises the packet's reference count before the copy and its own
//! free drops it later; here the packet's ownership moves into the layer instead, which is
//! the same hold without a count to get wrong.
//!
//! Both ends of a copy must be dpmem memory with a known IOVA (what the device could reach),
//! whichever way the copy goes: anything else is refused, and the packet handed back.

mod fallback;
mod lender;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering};

use dpmem_eal::{Eal, Iova, LayoutWatch};
use dpmem_mbuf::Mbuf;

use crate::address_map::{AddressMap, Hint, VaRange};
use crate::error::DmaError;
use crate::op_flags::OpFlags;
use crate::status::Status;
use crate::vchan::Vchan;
pub use fallback::{BorrowStats, CopyPath, Fallback, CPU_COPY_MAX, MAX_LENDERS};
use lender::LenderSlot;
pub use lender::{Lender, OnCopied};

/// Statuses read from the device per call, on the stack.
const REAP_CHUNK: usize = 64;

/// Borrowers made in this process: a lender says which one it belongs to.
static BORROWERS: StdAtomicU64 = StdAtomicU64::new(0);

/// A packet held for a device copy in flight.
#[derive(Debug)]
struct Borrowed<'p> {
    lender: u16,
    packet: Mbuf<'p>,
    /// Where the payload is, for a CPU copy if the device fails it.
    src: usize,
    dst: usize,
    len: u32,
}

/// The borrowing layer over one device channel (or none).
#[derive(Debug)]
pub struct DmaBorrower<'a, 'p> {
    id: u64,
    eal: &'a Eal,
    vchan: Option<Vchan<'a>>,
    map: AddressMap,
    /// Says when the memory changed since `map` was built.
    layout: LayoutWatch<'a>,
    /// Where lookups of packet data, and of destinations, start.
    src_hint: Hint,
    dst_hint: Hint,
    lenders: Vec<Option<LenderSlot<'a, 'p>>>,
    /// Packets of copies in flight, in the order the copies were queued.
    borrowed: VecDeque<Borrowed<'p>>,
    stats: BorrowStats,
}

impl Drop for DmaBorrower<'_, '_> {
    fn drop(&mut self) {
        // The device may still be reading held packets: wait for it before they go.
        self.flush();
    }
}

impl<'a, 'p> DmaBorrower<'a, 'p> {
    /// A borrowing layer over `vchan`, or with no device (every copy a CPU copy). `EINVAL`
    /// when the channel's device works on another EAL's memory.
    pub fn new(eal: &'a Eal, vchan: Option<Vchan<'a>>) -> Result<DmaBorrower<'a, 'p>, DmaError> {
        if let Some(v) = &vchan {
            if !std::ptr::eq(v.eal(), eal) {
                return Err(DmaError::invalid(
                    "the channel's device works on another EAL's memory",
                ));
            }
        }
        let layout = eal.memory().layout_watch();
        Ok(DmaBorrower {
            id: BORROWERS.fetch_add(1, Ordering::Relaxed),
            eal,
            vchan,
            map: AddressMap::build(eal.memory()),
            layout,
            src_hint: 0,
            dst_hint: 0,
            lenders: Vec::new(),
            borrowed: VecDeque::new(),
            stats: BorrowStats::default(),
        })
    }

    /// Whether the layer has a device.
    pub fn has_device(&self) -> bool {
        self.vchan.is_some()
    }

    /// What the layer did so far.
    pub fn stats(&self) -> BorrowStats {
        self.stats
    }

    /// Packets held for copies in flight, all lenders.
    pub fn in_flight(&self) -> usize {
        self.borrowed.len()
    }

    /// Packets held for `lender`'s copies in flight (0 for a lender of another borrower).
    pub fn lender_in_flight(&self, lender: &Lender) -> usize {
        self.slot(lender).map_or(0, |s| s.in_flight)
    }

    /// Registers a session. `on_copied` runs once per packet of the session whose device
    /// copy was reported, just before the layer releases the packet. The first
    /// [`MAX_LENDERS`] lenders of a layer with a device get it; later ones (or every one,
    /// without a device) copy with the CPU.
    pub fn register(&mut self, on_copied: impl FnMut(&Mbuf<'p>) + Send + 'a) -> Lender {
        let on_device_now = self
            .lenders
            .iter()
            .flatten()
            .filter(|s| s.on_device)
            .count();
        let on_device = self.vchan.is_some() && on_device_now < MAX_LENDERS;
        if !on_device {
            self.stats.lenders_on_cpu += 1;
        }
        let slot = LenderSlot {
            on_copied: Box::new(on_copied),
            on_device,
            in_flight: 0,
        };
        let index = match self.lenders.iter().position(Option::is_none) {
            Some(free) => {
                self.lenders[free] = Some(slot);
                free
            }
            None => {
                self.lenders.push(Some(slot));
                self.lenders.len() - 1
            }
        };
        Lender {
            borrower: self.id,
            slot: u16::try_from(index).expect("fewer than 65,536 sessions"),
            on_device,
        }
    }

    /// Ends a session's registration; its device place (if it had one) goes to the next
    /// lender registered. `EINVAL` for a lender of another borrower, `EBUSY` while copies of
    /// it are in flight; the lender is handed back with the error.
    pub fn unregister(&mut self, lender: Lender) -> Result<(), (DmaError, Lender)> {
        let in_flight = match self.slot(&lender) {
            None => return Err((foreign_lender(), lender)),
            Some(slot) => slot.in_flight,
        };
        if in_flight != 0 {
            return Err((
                DmaError::busy(format!(
                    "lender {} has {in_flight} copies in flight",
                    lender.slot
                )),
                lender,
            ));
        }
        self.lenders[usize::from(lender.slot)] = None;
        Ok(())
    }

    fn slot(&self, lender: &Lender) -> Option<&LenderSlot<'a, 'p>> {
        if lender.borrower != self.id {
            return None;
        }
        self.lenders.get(usize::from(lender.slot))?.as_ref()
    }

    /// Copies `len` bytes of `packet`'s first segment, from `offset` in its data, to `dst`,
    /// with the device or the CPU (see the module notes); says which. The packet is the
    /// layer's from here on: released at once after a CPU copy, held until the device copy
    /// is reported otherwise. `EINVAL`, with the packet handed back and nothing copied, for a
    /// lender of another borrower, a range outside the segment's data, a zero length, or an
    /// end that is not dpmem memory with a known IOVA.
    ///
    /// # Safety
    /// The `len` bytes at `dst` are neither read nor written by anyone else, and stay mapped,
    /// until the copy is done: when this returns for a CPU copy, when the lender's callback
    /// runs for this packet for a device copy.
    pub unsafe fn copy(
        &mut self,
        lender: &Lender,
        packet: Mbuf<'p>,
        offset: u32,
        dst: *mut u8,
        len: u32,
    ) -> Result<CopyPath, (DmaError, Mbuf<'p>)> {
        if self.slot(lender).is_none() {
            return Err((foreign_lender(), packet));
        }
        let data = packet.data();
        let end = u64::from(offset) + u64::from(len);
        if len == 0 || end > data.len() as u64 {
            let data_len = data.len();
            return Err((
                DmaError::invalid(format!(
                    "bytes {offset}..{end} of a segment holding {data_len}: nothing to copy"
                )),
                packet,
            ));
        }
        let src = data[offset as usize..].as_ptr() as usize;
        if self.layout.changed() {
            // Pages went, or external memory was unregistered (perhaps registered again with
            // other IOVAs): an address the old map still holds would take the device to the
            // memory's old IOVA.
            self.rebuild_map();
        }
        let (src_at, dst_at) = match (
            self.locate(src, len, false),
            self.locate(dst as usize, len, true),
        ) {
            (Some(s), Some(d)) => (s, d),
            (s, _) => {
                let which = if s.is_none() { "source" } else { "destination" };
                return Err((
                    DmaError::invalid(format!(
                        "the {which} of a {len}-byte copy is not dpmem memory with a known IOVA"
                    )),
                    packet,
                ));
            }
        };
        let fallback = if !lender.on_device || self.vchan.is_none() {
            Some(Fallback::NoDevice)
        } else if len <= CPU_COPY_MAX {
            Some(Fallback::Small)
        } else {
            None
        };
        let (src_iova, dst_iova) = match (fallback, src_at, dst_at) {
            (Some(why), _, _) => return Ok(self.cpu_copy(packet, src, dst, len, why)),
            (None, VaRange::Contiguous(s), VaRange::Contiguous(d)) => (s, d),
            _ => return Ok(self.cpu_copy(packet, src, dst, len, Fallback::CrossPage)),
        };
        Ok(self.device_copy(lender.slot, packet, (src, src_iova), (dst, dst_iova), len))
    }

    /// Where `len` bytes at `va` lead in IOVA; `None` when not dpmem memory (after looking
    /// again at memory, which may have been registered since the map was built). Inline:
    /// it runs twice per copy, and a call each cost the CPU path more than the lookup.
    #[inline(always)]
    fn locate(&mut self, va: usize, len: u32, dst: bool) -> Option<VaRange> {
        let len = len as usize;
        let hint = if dst {
            &mut self.dst_hint
        } else {
            &mut self.src_hint
        };
        match self.map.resolve_va(va, len, hint) {
            VaRange::Outside => self.locate_in_new_map(va, len),
            found => Some(found),
        }
    }

    /// [`locate`](Self::locate) after building the map again.
    #[cold]
    #[inline(never)]
    fn locate_in_new_map(&mut self, va: usize, len: usize) -> Option<VaRange> {
        // The map is about to be current, whatever the count says: take it as seen.
        self.layout.changed();
        self.rebuild_map();
        match self.map.resolve_va(va, len, &mut 0) {
            VaRange::Outside => None,
            found => Some(found),
        }
    }

    /// Builds the map again from the memory as it is now (the layout watch already looked:
    /// a change during the walk moves the count again, and the next copy builds once more).
    #[cold]
    #[inline(never)]
    fn rebuild_map(&mut self) {
        self.map = AddressMap::build(self.eal.memory());
        self.src_hint = 0;
        self.dst_hint = 0;
    }

    fn device_copy(
        &mut self,
        lender: u16,
        packet: Mbuf<'p>,
        (src, src_iova): (usize, Iova),
        (dst, dst_iova): (*mut u8, Iova),
        len: u32,
    ) -> CopyPath {
        let vchan = self.vchan.as_mut().expect("checked by the caller");
        // SAFETY: the source is the packet's data, which the layer holds (and nobody writes:
        // the packet is the layer's) until the copy is reported; the destination is the
        // caller's to lend until then (its contract). Both are dpmem memory (located).
        let queued = unsafe { vchan.copy(src_iova, dst_iova, len, OpFlags::empty()) };
        match queued {
            Ok(ring_idx) => {
                self.borrowed.push_back(Borrowed {
                    lender,
                    packet,
                    src,
                    dst: dst as usize,
                    len,
                });
                if let Some(slot) = self.lenders[usize::from(lender)].as_mut() {
                    slot.in_flight += 1;
                }
                self.stats.dma_copies += 1;
                CopyPath::Dma { ring_idx }
            }
            Err(_) => self.cpu_copy(packet, src, dst, len, Fallback::DeviceFull),
        }
    }

    fn cpu_copy(
        &mut self,
        packet: Mbuf<'p>,
        src: usize,
        dst: *mut u8,
        len: u32,
        why: Fallback,
    ) -> CopyPath {
        // SAFETY: the source is `len` bytes of the packet's data (checked); the destination
        // is the caller's to write (its contract). `copy` allows the two to overlap.
        unsafe { core::ptr::copy(src as *const u8, dst, len as usize) };
        drop(packet);
        self.stats.count_cpu(why);
        CopyPath::Cpu(why)
    }

    /// Rings the device's doorbell for the copies queued since the last time.
    pub fn submit(&mut self) {
        if let Some(vchan) = &mut self.vchan {
            vchan.submit();
        }
    }

    /// Releases up to `max` packets whose device copies are reported, in the order the
    /// copies were queued, each after its lender's callback. Returns how many.
    pub fn completed(&mut self, max: usize) -> usize {
        let Some(vchan) = self.vchan.as_mut() else {
            return 0;
        };
        let mut statuses = [Status::Successful; REAP_CHUNK];
        let mut released = 0;
        while released < max {
            let want = (max - released).min(REAP_CHUNK);
            let reaped = vchan.reap_status(&mut statuses[..want]);
            if reaped.count == 0 {
                break;
            }
            for status in &statuses[..usize::from(reaped.count)] {
                let held = self
                    .borrowed
                    .pop_front()
                    .expect("every operation of the layer's channel holds a packet");
                if !status.is_success() {
                    // SAFETY: as in `cpu_copy`; the destination is still lent to this copy
                    // (the callback has not run).
                    unsafe {
                        core::ptr::copy(
                            held.src as *const u8,
                            held.dst as *mut u8,
                            held.len as usize,
                        )
                    };
                    self.stats.cpu_after_error += 1;
                }
                if let Some(slot) = self.lenders[usize::from(held.lender)].as_mut() {
                    slot.in_flight -= 1;
                    (slot.on_copied)(&held.packet);
                }
                drop(held.packet);
                self.stats.released += 1;
                released += 1;
            }
        }
        released
    }

    /// Submits what is queued and waits until every held packet is released (MTL finishes a
    /// frame only once its device queue is empty).
    pub fn flush(&mut self) {
        self.submit();
        while !self.borrowed.is_empty() {
            if self.completed(usize::MAX) == 0 {
                std::thread::yield_now();
            }
        }
    }
}

#[cold]
fn foreign_lender() -> DmaError {
    DmaError::invalid("the lender is not registered with this borrower")
}
