//! [`Vchan`]: the data path of one virtual channel — copy, fill, submit, completed — held by
//! one owner at a time.
//!
//! DPDK's data-path calls on a channel are not thread-safe: two threads enqueueing at once
//! would hand out the same ring index. Here that is a property of the type: a channel is
//! reached only through its `Vchan`, which [`DmaDevice::vchan`](crate::DmaDevice::vchan)
//! hands to one owner at a time (a second call gets `EBUSY` until the first handle drops), and
//! which is `Send` but not `Sync`, its calls taking `&mut self`. The owner's indices live in
//! the handle and go back to the device when it drops, so the next owner carries on where it
//! stopped.

use core::cell::Cell;
use core::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use dpmem_eal::{Eal, Iova};

use crate::doorbell::Doorbell;
use crate::engine::{DmaStats, VchanShared};
use crate::error::DmaError;
use crate::op_flags::OpFlags;
use crate::ring::descriptor::{desc_flags, Descriptor, OpKind};
use crate::ring::{Reaped, UserCursor};
use crate::status::Status;

/// What [`Vchan::completed`] and [`Vchan::completed_status`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// Operations reported by this call.
    pub count: u16,
    /// The ring index of the last operation reported, by this call or (when it reported
    /// none) before it.
    pub last_idx: u16,
    /// `completed`: it stopped at a failed operation, which stays for `completed_status`.
    /// `completed_status`: one of the reported operations failed.
    pub has_error: bool,
}

/// One owner's hold on a virtual channel of a started device.
pub struct Vchan<'d> {
    shared: &'d VchanShared,
    doorbell: &'d Doorbell,
    /// Where the owner's indices go back to when the handle drops.
    home: &'d Mutex<Option<UserCursor>>,
    cursor: UserCursor,
    index: u16,
    eal: &'d Eal,
    /// Not `Sync`: the channel's calls are one owner's (see the module notes).
    _one_owner: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Vchan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vchan")
            .field("index", &self.index)
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl Drop for Vchan<'_> {
    fn drop(&mut self) {
        let mut home = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        *home = Some(self.cursor);
    }
}

impl<'d> Vchan<'d> {
    pub(crate) fn new(
        shared: &'d VchanShared,
        doorbell: &'d Doorbell,
        home: &'d Mutex<Option<UserCursor>>,
        cursor: UserCursor,
        index: u16,
        eal: &'d Eal,
    ) -> Vchan<'d> {
        Vchan {
            shared,
            doorbell,
            home,
            cursor,
            index,
            eal,
            _one_owner: PhantomData,
        }
    }

    /// The channel's number on its device.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The EAL whose memory the device reaches.
    pub fn eal(&self) -> &'d Eal {
        self.eal
    }

    /// Queues a copy of `len` bytes from `src` to `dst` (`rte_dma_copy`) and returns its
    /// ring index: one more than the last operation's, wrapping at 65,536, 0 for the first
    /// after a start. `ENOSPC` when the ring is full, `EINVAL` for a zero length; either way
    /// nothing is queued. With [`OpFlags::SUBMIT`] the doorbell rings as well.
    ///
    /// An address that does not lead into dpmem memory with a known IOVA is harmless: the
    /// operation completes with [`Status::InvalidSrcAddr`], [`Status::InvalidDstAddr`] or
    /// [`Status::InvalidLength`] and nothing is written.
    ///
    /// # Safety
    /// From this call until the device has carried the operation out — which `completed` or
    /// `completed_status` then reports, and which `stop` waits for — the `len` bytes at
    /// `dst`, where they are dpmem memory, are neither read nor written by anyone else, the
    /// `len` bytes at `src` are not written by anyone else, and both stay mapped (the EAL is
    /// alive and the pages are not freed). The device writes them from another thread, as
    /// hardware would.
    #[inline]
    pub unsafe fn copy(
        &mut self,
        src: Iova,
        dst: Iova,
        len: u32,
        flags: OpFlags,
    ) -> Result<u16, DmaError> {
        self.enqueue(src.get(), dst, len, OpKind::Copy, flags)
    }

    /// Queues a fill of `len` bytes at `dst` with the 8 bytes of `pattern`, in memory order
    /// (`rte_dma_fill`); as [`Vchan::copy`] otherwise.
    ///
    /// # Safety
    /// As for [`Vchan::copy`], for the destination.
    #[inline]
    pub unsafe fn fill(
        &mut self,
        pattern: u64,
        dst: Iova,
        len: u32,
        flags: OpFlags,
    ) -> Result<u16, DmaError> {
        self.enqueue(pattern, dst, len, OpKind::Fill, flags)
    }

    #[inline(always)]
    fn enqueue(
        &mut self,
        src: u64,
        dst: Iova,
        len: u32,
        kind: OpKind,
        flags: OpFlags,
    ) -> Result<u16, DmaError> {
        if len == 0 {
            return Err(zero_length(self.index));
        }
        let op = Descriptor {
            src,
            dst: dst.get(),
            len,
            kind,
            flags: if flags.contains(OpFlags::FENCE) {
                desc_flags::FENCE
            } else {
                0
            },
        };
        let idx = self
            .shared
            .ring
            .enqueue(&mut self.cursor, op)
            .map_err(|in_flight| no_space(self.index, in_flight))?;
        if flags.contains(OpFlags::SUBMIT) {
            self.submit();
        }
        Ok(idx)
    }

    /// Rings the doorbell (`rte_dma_submit`): the device starts on every operation queued
    /// since the last one. Nothing queued, nothing done.
    #[inline]
    pub fn submit(&mut self) {
        let n = self.shared.ring.submit(&mut self.cursor);
        if n != 0 {
            self.shared.counters.add_submitted(n);
            self.doorbell.ring();
        }
    }

    /// Reports up to `max` finished operations, in order, stopping before the first that
    /// failed (`rte_dma_completed`): `has_error` then says one is waiting at the head, which
    /// [`Vchan::completed_status`] reports. Once an operation is reported, its bytes are in
    /// place and visible to this thread.
    #[inline]
    pub fn completed(&mut self, max: u16) -> Completed {
        let reaped = self.shared.ring.reap_successful(&mut self.cursor, max);
        self.shared.counters.add_completed(reaped.count, 0);
        Completed {
            count: reaped.count,
            last_idx: self.cursor.last_idx(),
            has_error: reaped.has_error,
        }
    }

    /// Reports up to `max` finished operations, failed or not, with each one's status in
    /// `status` (`rte_dma_completed_status`). `EINVAL` when `status` holds fewer than `max`.
    #[inline]
    pub fn completed_status(
        &mut self,
        max: u16,
        status: &mut [Status],
    ) -> Result<Completed, DmaError> {
        let Some(out) = status.get_mut(..usize::from(max)) else {
            return Err(DmaError::invalid(format!(
                "vchan {}: {max} statuses asked for, room for {}",
                self.index,
                status.len()
            )));
        };
        let reaped = self.reap_status(out);
        Ok(Completed {
            count: reaped.count,
            last_idx: self.cursor.last_idx(),
            has_error: reaped.has_error,
        })
    }

    /// `completed_status` into all of `out`.
    #[inline]
    pub(crate) fn reap_status(&mut self, out: &mut [Status]) -> Reaped {
        let reaped = self.shared.ring.reap_status(&mut self.cursor, out);
        self.shared
            .counters
            .add_completed(reaped.count, reaped.errors);
        reaped
    }

    /// Operations that can still be queued (`rte_dma_burst_capacity`): the ring's
    /// `nb_desc − 1` less those queued and not yet reported.
    #[inline]
    pub fn burst_capacity(&self) -> u16 {
        self.shared.ring.capacity(&self.cursor)
    }

    /// Operations queued and not yet reported.
    #[inline]
    pub fn in_flight(&self) -> u16 {
        self.cursor.in_flight()
    }

    /// The ring index the next operation gets.
    pub fn next_idx(&self) -> u16 {
        self.cursor.next_idx()
    }

    /// The channel's statistics.
    pub fn stats(&self) -> DmaStats {
        self.shared.counters.get()
    }
}

#[cold]
fn zero_length(vchan: u16) -> DmaError {
    DmaError::invalid(format!("vchan {vchan}: an operation of 0 bytes"))
}

#[cold]
fn no_space(vchan: u16, in_flight: u16) -> DmaError {
    DmaError::NoSpace { vchan, in_flight }
}
