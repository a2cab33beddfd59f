//! Frames the application lends: [`TxSession::transmit_external`] checks a lent frame against
//! the mapping it comes from, takes one of the session's external slots for it, and
//! packetises it exactly as the session's own frames — zero copy, the builder's reference
//! held throughout, "done" after the last packet — then hands it back through the
//! session's external "done" ([`LentFrames`](crate::lent_frames)), never freeing it.
//!
//! Checked before anything changes, in this order: a null address, a frame shorter than
//! the format's, a frame not wholly inside the mapping or a mapping the session's EAL no
//! longer knows as registered external memory, a device address other than the mapping's;
//! then, as the slot is taken, bytes overlapping a frame lent to the session and still in
//! flight, or no free slot.

use crate::dma_mapping::DmaMapping;
use crate::error::FrameError;
use crate::external_frame::ExternalFrame;
use crate::lent_frames::LentFrames;
use crate::packetise::{PacketSink, TxReport};
use crate::session::TxSession;
use crate::slot::FrameSlot;

/// Claims a free slot of `slots` (the external slots `lent` describes) for `frame` and
/// records the frame there; the slot's index. Refused, with nothing changed: `frame`
/// overlaps a frame still lent, or no slot is free.
pub(crate) fn lend_slot(
    lent: &LentFrames,
    slots: &[FrameSlot],
    frame: ExternalFrame,
) -> Result<usize, FrameError> {
    let in_flight = |held: ExternalFrame| FrameError::ExternalInFlight {
        va: frame.va,
        len: frame.len,
        lent_va: held.va,
        lent_len: held.len,
    };
    if let Some(held) = lent.overlapping_held(&frame) {
        return Err(in_flight(held));
    }
    let index = (0..slots.len())
        .find(|&i| slots[i].try_claim().is_ok())
        .ok_or(FrameError::NoExternalSlot {
            slots: slots.len() as u16,
        })?;
    // Another thread may have lent an overlapping frame since the first look.
    if let Err(held) = lent.record(index, frame) {
        slots[index].unclaim();
        return Err(in_flight(held));
    }
    Ok(index)
}

impl<'eal> TxSession<'eal> {
    /// Packetises `frame`, lent from `mapping`, into `sink` without copying it. The frame is
    /// in flight until every packet is released; then the session's external "done" hands it
    /// back ([`on_external_done`](crate::TxSessionBuilder::on_external_done),
    /// [`take_external_done`](Self::take_external_done)) exactly once. The mapping is borrowed
    /// for as long as the packets live. The report's `frame` is the external slot the frame
    /// went out through.
    ///
    /// Refused, with nothing changed: see the module notes. A pool running dry part-way is
    /// [`FrameError::PoolDry`], as for the session's own frames: the frame comes back
    /// through "done" once the packets sent are released.
    pub fn transmit_external<'s>(
        &'s self,
        mapping: &'s DmaMapping<'_>,
        frame: ExternalFrame,
        sink: &mut dyn PacketSink<'s>,
    ) -> Result<TxReport, FrameError> {
        self.lend_and_packetise(mapping, frame, sink, None)
    }

    /// [`transmit_external`](Self::transmit_external) on two paths (ST 2022-7), as
    /// [`transmit_redundant`](Self::transmit_redundant).
    pub fn transmit_external_redundant<'s>(
        &'s self,
        mapping: &'s DmaMapping<'_>,
        frame: ExternalFrame,
        primary: &mut dyn PacketSink<'s>,
        redundant: &mut dyn PacketSink<'s>,
    ) -> Result<TxReport, FrameError> {
        self.lend_and_packetise(mapping, frame, primary, Some(redundant))
    }

    fn lend_and_packetise<'s>(
        &'s self,
        mapping: &'s DmaMapping<'_>,
        frame: ExternalFrame,
        primary: &mut dyn PacketSink<'s>,
        redundant: Option<&mut dyn PacketSink<'s>>,
    ) -> Result<TxReport, FrameError> {
        self.check_lent(mapping, &frame)?;
        let memory = mapping.frame_memory(&frame, &self.format);
        let index = lend_slot(self.lent(), &self.external_slots, frame)?;
        self.packetise_slot(&self.external_slots[index], &memory, primary, redundant)
    }

    /// The checks a lent frame passes before any slot is taken.
    fn check_lent(
        &self,
        mapping: &DmaMapping<'_>,
        frame: &ExternalFrame,
    ) -> Result<(), FrameError> {
        if frame.va == 0 {
            return Err(FrameError::ExternalNull);
        }
        let needed = self.format.frame_size();
        if frame.len < needed {
            return Err(FrameError::FrameTooSmall {
                len: frame.len,
                needed,
            });
        }
        let unknown = |detail: String| FrameError::ExternalUnknown {
            va: frame.va,
            len: frame.len,
            detail,
        };
        if !core::ptr::eq(mapping.eal(), self.eal) {
            return Err(unknown(
                "the mapping was made in another EAL than the session's".into(),
            ));
        }
        if !mapping.contains(frame.va, frame.len) {
            return Err(unknown(format!(
                "the mapping covers {:#x}+{:#x}",
                mapping.va(),
                mapping.len()
            )));
        }
        if !mapping.still_registered() {
            return Err(unknown(format!(
                "the EAL no longer knows {:#x}+{:#x} as registered external memory",
                mapping.va(),
                mapping.len()
            )));
        }
        let mapped = mapping.iova_of(frame.va);
        if mapped != Some(frame.iova) {
            return Err(FrameError::ExternalIova {
                va: frame.va,
                given: frame.iova,
                mapped,
            });
        }
        Ok(())
    }
}
