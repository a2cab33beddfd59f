//! The ST 2110-20 packetiser: [`TxSession::transmit`] turns a frame into packets — per
//! packet a header buffer with the header written from the session's template, and a
//! zero-room buffer attached to the frame's bytes as an external buffer, chained behind it —
//! and hands them to a [`PacketSink`] in bursts. A payload that crosses a break in the
//! frame's device addresses is copied into a data buffer instead. With a second sink (ST
//! 2022-7 redundancy) each packet goes twice: another header in front of the same payload
//! bytes, one more reference and no copy.
//!
//! The packetiser holds the frame's builder reference from the first packet to the last
//! ([`crate::slot`]), so sinks may release packets at once, on any thread.

use std::sync::atomic::Ordering;

use dpmem_mbuf::{attach, data, Mbuf, MbufError};

use crate::error::FrameError;
use crate::frame::FrameMut;
use crate::frame_id::FrameId;
use crate::header::{PacketFields, HEADER_LEN};
use crate::memory::FrameMemory;
use crate::session::TxSession;
use crate::slot::{FrameSlot, PacketiseRef};

/// Where packets go: a port, a queue, a test's completion thread. A packet's references are
/// released when it is dropped, which is what lets its frame complete.
pub trait PacketSink<'p> {
    /// Takes a burst of packets; whatever it leaves in `packets` is dropped (freed).
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>);
}

impl<'p> PacketSink<'p> for Vec<Mbuf<'p>> {
    fn send_burst(&mut self, packets: &mut Vec<Mbuf<'p>>) {
        self.append(packets);
    }
}

/// What one transmit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReport {
    pub frame: FrameId,
    /// Packets per path.
    pub packets: u32,
    /// Payloads copied (crossing a break), per path.
    pub copied: u32,
    pub redundant: bool,
    /// The RTP timestamp the frame went out with.
    pub timestamp: u32,
}

/// Packets of the path(s) not yet handed to their sinks.
struct Bursts<'p, 'k, 'r> {
    primary: (Vec<Mbuf<'p>>, &'k mut dyn PacketSink<'p>),
    redundant: Option<(Vec<Mbuf<'p>>, &'r mut dyn PacketSink<'p>)>,
}

impl Bursts<'_, '_, '_> {
    fn flush(&mut self) {
        let (burst, sink) = &mut self.primary;
        sink.send_burst(burst);
        burst.clear();
        if let Some((burst, sink)) = &mut self.redundant {
            sink.send_burst(burst);
            burst.clear();
        }
    }
}

impl<'eal> TxSession<'eal> {
    /// Packetises `frame` into `sink`. The frame is in flight until every packet is released;
    /// then "done" reports it and it is free again. A frame of another session is refused
    /// (and goes back free in its own). When a pool runs dry part-way
    /// ([`FrameError::PoolDry`]) the packets sent stay sent and the frame comes back through
    /// "done" once they are released.
    pub fn transmit<'s>(
        &'s self,
        frame: FrameMut<'s>,
        sink: &mut dyn PacketSink<'s>,
    ) -> Result<TxReport, FrameError> {
        self.packetise(frame, sink, None)
    }

    /// [`transmit`](Self::transmit) on two paths (ST 2022-7): every packet to both sinks,
    /// the redundant one with its own header over the same payload bytes.
    pub fn transmit_redundant<'s>(
        &'s self,
        frame: FrameMut<'s>,
        primary: &mut dyn PacketSink<'s>,
        redundant: &mut dyn PacketSink<'s>,
    ) -> Result<TxReport, FrameError> {
        self.packetise(frame, primary, Some(redundant))
    }

    fn packetise<'s>(
        &'s self,
        frame: FrameMut<'s>,
        primary: &mut dyn PacketSink<'s>,
        redundant: Option<&mut dyn PacketSink<'s>>,
    ) -> Result<TxReport, FrameError> {
        if frame.owner != core::ptr::from_ref(self) as usize {
            return Err(FrameError::UnknownFrame(frame.id()));
        }
        let index = frame.into_id() as usize;
        self.packetise_slot(&self.slots[index], &self.memory[index], primary, redundant)
    }

    /// Packetises the frame of `slot`, owned by the caller (claimed), whose pages `memory`
    /// describes: one of the session's own frames or one lent to it.
    pub(crate) fn packetise_slot<'s>(
        &'s self,
        slot: &'s FrameSlot,
        memory: &FrameMemory,
        primary: &mut dyn PacketSink<'s>,
        redundant: Option<&mut dyn PacketSink<'s>>,
    ) -> Result<TxReport, FrameError> {
        let index = slot.id() as usize;
        let format = &self.format;
        let total = format.packets_per_frame();
        let paths = 1 + redundant.is_some() as u32;
        // Every packet sent in place holds one reference per path; the format's check keeps
        // that within the count.
        let credit = ((total - memory.crossings()) * paths) as u16;
        let mut builder = slot.begin_transmit(credit);
        let frame_no = self.frames_sent.fetch_add(1, Ordering::Relaxed);
        let timestamp = format.rtp_timestamp(frame_no);
        let seq0 = self.next_seq.fetch_add(total, Ordering::Relaxed);
        let mut bursts = Bursts {
            primary: (Vec::with_capacity(self.burst), primary),
            redundant: redundant.map(|sink| (Vec::with_capacity(self.burst), sink)),
        };
        let mut copied = 0;
        for i in 0..total {
            let (offset, len) = format.payload_range(i);
            let (row, pixel) = format.row_and_pixel(offset);
            let fields = PacketFields {
                seq: seq0.wrapping_add(i),
                timestamp,
                marker: i + 1 == total,
                row,
                pixel,
                payload_len: len,
            };
            let sent = self.packet(memory, &mut builder, &fields, offset, &mut bursts);
            match sent {
                Ok(was_copied) => copied += was_copied as u32,
                Err(source) => {
                    // The packets before this one are whole: they go out.
                    bursts.flush();
                    self.copied.fetch_add(copied as u64, Ordering::Relaxed);
                    return Err(FrameError::PoolDry {
                        frame: index as FrameId,
                        sent: i,
                        total,
                        source,
                    });
                }
            }
            if bursts.primary.0.len() >= self.burst {
                bursts.flush();
            }
        }
        bursts.flush();
        self.copied.fetch_add(copied as u64, Ordering::Relaxed);
        // The builder's reference goes last (when `builder` drops, after the packets).
        drop(builder);
        Ok(TxReport {
            frame: index as FrameId,
            packets: total,
            copied,
            redundant: bursts.redundant.is_some(),
            timestamp,
        })
    }

    /// Builds one packet (and its redundant twin) into the bursts; whether its payload was
    /// copied. Nothing is queued when it fails.
    #[inline]
    fn packet<'s>(
        &'s self,
        memory: &FrameMemory,
        builder: &mut PacketiseRef<'_>,
        fields: &PacketFields,
        offset: usize,
        bursts: &mut Bursts<'s, '_, '_>,
    ) -> Result<bool, MbufError> {
        let len = fields.payload_len;
        let copy = memory.crosses_break(offset, len);
        let payload = if copy {
            let mut p = self.copy_pool.alloc()?;
            // SAFETY: the frame's bytes stay valid and unwritten while it is in flight (the
            // application has no handle on it).
            let bytes = unsafe {
                core::slice::from_raw_parts(memory.as_ptr().wrapping_add(offset), len as usize)
            };
            p.extend_from_slice(bytes)?;
            p
        } else {
            self.attached_payload(memory, builder, offset, len)?
        };
        let twin = match &bursts.redundant {
            None => None,
            Some(_) if copy => Some(payload.clone_in(&self.payload_pool)?),
            Some(_) => Some(self.attached_payload(memory, builder, offset, len)?),
        };
        let packet = self.headed(fields, payload)?;
        if let (Some(twin), Some((burst, _))) = (twin, &mut bursts.redundant) {
            burst.push(self.headed(fields, twin)?);
        }
        bursts.primary.0.push(packet);
        Ok(copy)
    }

    /// A header buffer with `fields` written, and `payload` chained behind it.
    #[inline]
    fn headed<'s>(
        &'s self,
        fields: &PacketFields,
        payload: Mbuf<'s>,
    ) -> Result<Mbuf<'s>, MbufError> {
        let mut header = self.header_pool.alloc()?;
        let bytes: &mut [u8; HEADER_LEN] = header
            .append(HEADER_LEN as u16)?
            .try_into()
            .expect("append gives the length asked for");
        self.template.write(bytes, fields);
        header.chain(payload).map_err(|(e, _)| e)?;
        Ok(header)
    }

    /// A zero-room buffer attached to `len` bytes of the frame at `offset`, holding one of
    /// the builder's credited references.
    #[inline]
    fn attached_payload<'s>(
        &'s self,
        memory: &FrameMemory,
        builder: &mut PacketiseRef<'_>,
        offset: usize,
        len: u16,
    ) -> Result<Mbuf<'s>, MbufError> {
        let m = self.payload_pool.alloc_raw_reset()?;
        // SAFETY: fresh from the pool: ours, one reference; the handle frees it on any error.
        let payload = unsafe { Mbuf::from_raw(m, &self.payload_pool) };
        let shinfo = builder
            .take_reference()
            .expect("the credit covers every packet sent in place");
        // SAFETY: the range is inside the frame, which stays valid while any reference is
        // held (packets borrow the session that owns it); the reference the buffer holds was
        // just taken from the builder's credit; the callback is this process's and packets
        // are bound to this process's session.
        let attached = unsafe {
            attach::attach_extbuf(
                payload.as_raw(),
                memory.as_ptr().wrapping_add(offset),
                memory.iova_at(offset),
                len,
                shinfo,
            )
        };
        if let Err(e) = attached {
            builder.give_back_reference();
            return Err(e);
        }
        data::append(payload.header(), len)?;
        Ok(payload)
    }
}
