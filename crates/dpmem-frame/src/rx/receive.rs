//! The receive path of [`RxSession`]: each packet's header is parsed and checked, its frame
//! found by RTP timestamp, its payload copied to its place through the borrowing layer (device
//! or CPU) and its arrival recorded; frames leave the session only when every packet arrived
//! and every copy into them is reported.
//!
//! - A packet that does not parse, is not the session's stream, or whose length or place
//!   does not fit the format is dropped and counted before anything else is done with it:
//!   it neither writes a byte nor ends the frame being assembled.
//! - A new timestamp starts a new frame; the one being assembled, if incomplete, is given up
//!   (counted). A packet of one of the last few frames that ended is a duplicate (that frame
//!   was complete) or late (it was given up), and goes nowhere.
//! - A new frame takes a free buffer; with none free, its packets are dropped and counted.
//! - A packet already placed in its frame is a duplicate: counted, not copied again.

use dpmem_dma::borrow::{CopyPath, DmaBorrower};
use dpmem_mbuf::Mbuf;

use crate::frame_id::FrameId;
use crate::header::{self, HEADER_LEN};
use crate::rx::frame::RxFrame;
use crate::rx::frame_states::RxFrameState;
use crate::rx::prefetch::prefetch;
use crate::rx::recent_frames::Ended;
use crate::rx::session::{Current, RxSession, Settling};
use crate::rx::stats::DropReason;

/// Why a packet found no frame to go in.
enum NoPlace {
    Drop(DropReason),
    Duplicate,
}

impl<'eal> RxSession<'eal> {
    /// Takes every packet of `packets` (leaving it empty): places each payload in its frame
    /// or drops the packet (see the module notes), then rings the copy device's doorbell and
    /// [`poll`](Self::poll)s. Packets copied by the device stay with `borrower` until their
    /// copies are reported; the others are released before this returns.
    pub fn receive<'p>(&mut self, borrower: &mut DmaBorrower<'_, 'p>, packets: &mut Vec<Mbuf<'p>>) {
        let mut arriving = packets.drain(..);
        while let Some(packet) = arriving.next() {
            let coming = arriving.as_slice();
            // The buffer header two packets on, and the bytes of the next one (its header,
            // prefetched one packet ago, says where they are).
            if let Some(later) = coming.get(1) {
                prefetch(later.as_raw().as_ptr().cast());
            }
            if let Some(next) = coming.first() {
                prefetch(next.data().as_ptr());
            }
            self.place(borrower, packet);
        }
        self.poll(borrower);
    }

    /// Rings the doorbell for queued copies, has `borrower` release the packets of every
    /// reported copy (of all its sessions), and moves this session's frames whose copies are
    /// all reported on: complete ones to the application's queue, given-up ones back free.
    pub fn poll(&mut self, borrower: &mut DmaBorrower<'_, '_>) {
        borrower.submit();
        borrower.completed(usize::MAX);
        self.settle();
    }

    /// The oldest complete frame, for the application to read; `None` while there is none.
    /// Call [`poll`](Self::poll) (or [`receive`](Self::receive)) first: a frame is complete
    /// only once the borrower has reported the copies into it.
    pub fn next_frame(&mut self) -> Option<RxFrame<'eal>> {
        self.settle();
        let id = self.ready.pop_front()?;
        self.buffers.states().set(id, RxFrameState::Held);
        self.stats.frames_delivered += 1;
        Some(RxFrame {
            buffers: self.buffers.clone(),
            id,
            timestamp: self.books[usize::from(id)].timestamp,
        })
    }

    /// Gives up the frame being assembled, if any (counted incomplete): for the end of a
    /// stream, whose last frame no next timestamp will end.
    pub fn abandon(&mut self) {
        self.end_current(Ended::Incomplete);
        self.settle();
    }

    #[inline]
    fn place<'p>(&mut self, borrower: &mut DmaBorrower<'_, 'p>, packet: Mbuf<'p>) {
        self.stats.packets_received += 1;
        let data = packet.data();
        let Some(fields) = header::parse(data) else {
            return self.stats.dropped.count(DropReason::Unparsed);
        };
        if let Some(filter) = &self.filter {
            if !filter.matches(data) {
                return self.stats.dropped.count(DropReason::OtherStream);
            }
        }
        let place = match self.placement.locate(&fields, data.len()) {
            Ok(place) => place,
            Err(why) => return self.stats.dropped.count(why),
        };
        let id = match self.frame_for(fields.timestamp) {
            Ok(id) => id,
            Err(NoPlace::Drop(why)) => return self.stats.dropped.count(why),
            Err(NoPlace::Duplicate) => {
                self.stats.duplicates += 1;
                return;
            }
        };
        let book = &mut self.books[usize::from(id)];
        if !book.arrivals.insert(place.index) {
            self.stats.duplicates += 1;
            return;
        }
        let dst = self.buffers.base(id).wrapping_add(place.offset);
        let len = u32::from(place.len);
        let lender = self.lender.as_ref().expect("only close takes the lender");
        // SAFETY: `dst..dst+len` is inside buffer `id` (the placement checked the place
        // against the format, whose frame the buffer holds), which is assembling: the
        // session's alone, neither handed out nor taken for another frame until every device
        // copy into it is reported — which is when the borrower runs the session's callback
        // for this packet — and never freed while a copy is outstanding (the session leaks
        // it instead). No other copy of the frame touches these bytes: accepted places are
        // whole, distinct packets of the format, and this one is placed once (arrivals).
        let copied = unsafe { borrower.copy(lender, packet, HEADER_LEN as u32, dst, len) };
        match copied {
            Ok(path) => {
                if let CopyPath::Dma { .. } = path {
                    book.last_ticket = self.tickets.issue();
                }
                self.stats.copies.count(path);
            }
            Err((_, packet)) => {
                // Refused (another borrower, or memory without a known IOVA): the packet
                // came back, and the session copies it itself.
                let payload = &packet.data()[HEADER_LEN..][..place.len as usize];
                // SAFETY: the destination as above; the source is the packet's own data,
                // which cannot overlap a frame buffer.
                unsafe { core::ptr::copy_nonoverlapping(payload.as_ptr(), dst, payload.len()) };
                self.stats.copies.cpu_refused += 1;
            }
        }
        self.stats.packets_placed += 1;
        self.stats.bytes_placed += u64::from(len);
        if book.arrivals.is_complete() {
            self.end_current(Ended::Complete);
        }
    }

    /// The buffer of the frame with RTP timestamp `timestamp`: the one being assembled, or a
    /// free one for a new frame (ending the current one).
    #[inline]
    fn frame_for(&mut self, timestamp: u32) -> Result<FrameId, NoPlace> {
        match self.current {
            Current::Assembling(id) if self.books[usize::from(id)].timestamp == timestamp => {
                return Ok(id)
            }
            Current::WithoutBuffer { timestamp: t } if t == timestamp => {
                return Err(NoPlace::Drop(DropReason::NoFrame))
            }
            _ => {}
        }
        match self.recent.find(timestamp) {
            Some(Ended::Complete) => return Err(NoPlace::Duplicate),
            Some(Ended::Incomplete) => return Err(NoPlace::Drop(DropReason::Late)),
            None => {}
        }
        self.end_current(Ended::Incomplete);
        // A buffer whose copies were all reported since the last poll can be had now.
        self.settle();
        let Some(id) = self.take_free() else {
            self.current = Current::WithoutBuffer { timestamp };
            self.stats.frames_without_buffer += 1;
            return Err(NoPlace::Drop(DropReason::NoFrame));
        };
        let book = &mut self.books[usize::from(id)];
        book.timestamp = timestamp;
        book.arrivals.clear();
        book.last_ticket = 0;
        self.buffers.states().set(id, RxFrameState::Assembling);
        self.current = Current::Assembling(id);
        self.stats.frames_started += 1;
        Ok(id)
    }

    /// A free buffer, tried round-robin from the one after the last taken.
    fn take_free(&mut self) -> Option<FrameId> {
        let n = self.buffers.count();
        let id = (0..n)
            .map(|k| ((u32::from(self.next_free) + u32::from(k)) % u32::from(n)) as FrameId)
            .find(|&id| self.buffers.states().get(id) == RxFrameState::Free)?;
        self.next_free = ((u32::from(id) + 1) % u32::from(n)) as u16;
        Some(id)
    }

    /// Ends the current frame: complete, or given up (`how` is `Incomplete`; it is then
    /// counted unless it had no buffer). Its buffer settles.
    fn end_current(&mut self, how: Ended) {
        match core::mem::replace(&mut self.current, Current::Idle) {
            Current::Idle => {}
            Current::WithoutBuffer { timestamp } => self.recent.push(timestamp, Ended::Incomplete),
            Current::Assembling(id) => {
                let book = &self.books[usize::from(id)];
                let complete = how == Ended::Complete;
                if complete {
                    self.stats.frames_complete += 1;
                } else {
                    self.stats.frames_incomplete += 1;
                }
                self.recent.push(book.timestamp, how);
                self.buffers.states().set(id, RxFrameState::Settling);
                self.settling.push_back(Settling {
                    id,
                    last_ticket: book.last_ticket,
                    complete,
                });
            }
        }
    }

    /// Moves on every settling buffer whose copies are all reported. Buffers settle in the
    /// order their frames ended, which is the order of their last tickets.
    fn settle(&mut self) {
        let done = self.tickets.done_up_to();
        while let Some(s) = self.settling.front().copied() {
            if s.last_ticket > done {
                break;
            }
            self.settling.pop_front();
            if s.complete {
                self.buffers.states().set(s.id, RxFrameState::Ready);
                self.ready.push_back(s.id);
            } else {
                self.buffers.states().set(s.id, RxFrameState::Free);
            }
        }
    }
}
