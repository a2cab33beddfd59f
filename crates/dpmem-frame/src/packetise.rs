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

use dpmem_eal::Iova;
use dpmem_mbuf::{attach, data, Mbuf, MbufError, PktmbufPool};

use crate::error::FrameError;
use crate::format::St20Format;
use crate::frame::FrameMut;
use crate::frame_id::FrameId;
use crate::header::{PacketFields, HEADER_LEN};
use crate::memory::FrameMemory;
use crate::session::TxSession;
use crate::slot::{FrameSlot, PacketiseRef};

/// Buffers taken from a pool at once: one bulk get, and the resets of a chunk's buffers one
/// after another, so that their cache misses overlap (DPDK's `rte_pktmbuf_alloc_bulk`, which
/// MTL uses for its header buffers).
const CHUNK: usize = 32;

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

/// Buffers of one pool for the packets of one frame: taken [`CHUNK`] at a time while the
/// frame needs that many more, one at a time after. What is left when it drops (the frame
/// stopped early) goes back to the pool.
struct Stock<'s, 'eal> {
    pool: &'s PktmbufPool<'eal>,
    chunk: Option<core::array::IntoIter<Mbuf<'s>, CHUNK>>,
}

impl<'s, 'eal> Stock<'s, 'eal> {
    fn new(pool: &'s PktmbufPool<'eal>) -> Self {
        Stock { pool, chunk: None }
    }

    /// A fresh buffer; `needed` is how many the frame may still take from this pool, this
    /// one included. A chunk is taken only while the frame needs that many more, and a pool
    /// that cannot give a whole chunk still gives one buffer, so a pool with just enough for
    /// the frame does not run dry because of the chunks.
    #[inline(always)]
    fn take(&mut self, needed: u32) -> Result<Mbuf<'s>, MbufError> {
        if let Some(m) = self.chunk.as_mut().and_then(Iterator::next) {
            return Ok(m);
        }
        if needed as usize >= CHUNK {
            if let Ok(chunk) = self.pool.alloc_array::<CHUNK>() {
                let mut chunk = chunk.into_iter();
                let first = chunk.next();
                self.chunk = Some(chunk);
                if let Some(m) = first {
                    return Ok(m);
                }
            }
        }
        self.pool.alloc()
    }
}

/// Where each packet's payload starts in the frame, and the line and pixel it starts at,
/// packet after packet without a division (the format's `payload_range` and
/// `row_and_pixel` divide for every packet).
#[derive(Debug, Clone)]
struct Walk {
    offset: usize,
    row: u16,
    /// Pixel groups of the current line before the payload.
    groups_in_line: u32,
    payload_groups: u32,
    line_groups: u32,
    pgroup_pixels: u32,
    payload_len: usize,
    frame_size: usize,
}

impl Walk {
    /// At the first packet. Payloads and lines are whole pixel groups (the format's
    /// `validate`).
    fn start(format: &St20Format) -> Walk {
        let pgroup = format.pgroup_bytes as usize;
        Walk {
            offset: 0,
            row: 0,
            groups_in_line: 0,
            payload_groups: (format.payload_len as usize / pgroup) as u32,
            line_groups: (format.line_bytes() / pgroup) as u32,
            pgroup_pixels: format.pgroup_pixels,
            payload_len: format.payload_len as usize,
            frame_size: format.frame_size(),
        }
    }

    /// The payload's offset and length (the last packet's is short), and its line and pixel.
    #[inline(always)]
    fn here(&self) -> (usize, u16, u16, u16) {
        let len = (self.frame_size - self.offset).min(self.payload_len) as u16;
        let pixel = (self.groups_in_line * self.pgroup_pixels) as u16;
        (self.offset, len, self.row, pixel)
    }

    /// On to the next packet.
    #[inline(always)]
    fn advance(&mut self) {
        self.offset += self.payload_len;
        self.groups_in_line += self.payload_groups;
        while self.groups_in_line >= self.line_groups {
            self.groups_in_line -= self.line_groups;
            self.row = self.row.wrapping_add(1);
        }
    }
}

/// The device address of payloads in a frame, looked up once per page rather than per
/// packet: within a page device addresses follow virtual ones.
#[derive(Debug)]
struct PageWalk<'m> {
    memory: &'m FrameMemory,
    page_size: usize,
    /// Frame offset where the page of the last lookup ends.
    page_end: usize,
    /// The offset of the last lookup and its device address.
    looked_up: usize,
    iova: Option<Iova>,
}

impl<'m> PageWalk<'m> {
    fn start(memory: &'m FrameMemory) -> PageWalk<'m> {
        let page_size = memory.page_size();
        let into_page = memory.as_ptr() as usize & (page_size - 1);
        PageWalk {
            memory,
            page_size,
            page_end: page_size - into_page,
            looked_up: 0,
            iova: memory.iova_at(0),
        }
    }

    /// Device address of byte `offset` of the frame; offsets only grow.
    #[inline(always)]
    fn iova_at(&mut self, offset: usize) -> Option<Iova> {
        if offset >= self.page_end {
            while offset >= self.page_end {
                self.page_end += self.page_size;
            }
            self.looked_up = offset;
            self.iova = self.memory.iova_at(offset);
        }
        self.iova?.checked_add((offset - self.looked_up) as u64)
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
        let mut build = Build {
            memory,
            pages: PageWalk::start(memory),
            headers: Stock::new(&self.header_pool),
            payloads: Stock::new(&self.payload_pool),
            // A frame with no crossing payload needs no look for one per packet.
            may_cross: memory.crossings() != 0,
        };
        let mut walk = Walk::start(format);
        let mut copied = 0;
        for i in 0..total {
            let (offset, len, row, pixel) = walk.here();
            walk.advance();
            let fields = PacketFields {
                seq: seq0.wrapping_add(i),
                timestamp,
                marker: i + 1 == total,
                row,
                pixel,
                payload_len: len,
            };
            // Buffers of each pool this packet and the ones after it take.
            let needed = (total - i) * paths;
            let sent = self.packet(
                &mut build,
                &mut builder,
                &fields,
                offset,
                needed,
                &mut bursts,
            );
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
    /// copied. Nothing is queued when it fails. `needed`: buffers of each pool the frame
    /// still takes, this packet's included.
    #[inline(always)]
    fn packet<'s>(
        &'s self,
        build: &mut Build<'s, '_, 'eal>,
        builder: &mut PacketiseRef<'_>,
        fields: &PacketFields,
        offset: usize,
        needed: u32,
        bursts: &mut Bursts<'s, '_, '_>,
    ) -> Result<bool, MbufError> {
        let len = fields.payload_len;
        let memory = build.memory;
        let copy = build.may_cross && memory.crosses_break(offset, len);
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
            let m = build.payloads.take(needed)?;
            self.attached_payload(build, builder, m, offset, len)?
        };
        let twin = match &bursts.redundant {
            None => None,
            Some(_) if copy => Some(payload.clone_in(&self.payload_pool)?),
            Some(_) => {
                let m = build.payloads.take(needed - 1)?;
                Some(self.attached_payload(build, builder, m, offset, len)?)
            }
        };
        let packet = Self::headed(&self.template, build.headers.take(needed)?, fields, payload)?;
        if let (Some(twin), Some((burst, _))) = (twin, &mut bursts.redundant) {
            let header = build.headers.take(needed - 1)?;
            burst.push(Self::headed(&self.template, header, fields, twin)?);
        }
        bursts.primary.0.push(packet);
        Ok(copy)
    }

    /// `header`, a fresh header buffer, with `fields` written, and `payload` chained behind
    /// it.
    #[inline(always)]
    fn headed<'s>(
        template: &crate::header::HeaderTemplate,
        mut header: Mbuf<'s>,
        fields: &PacketFields,
        payload: Mbuf<'s>,
    ) -> Result<Mbuf<'s>, MbufError> {
        // Written on the stack, then copied out whole: the buffer's data line is not in the
        // cache yet, and stores alone need not wait for it where the template's
        // read-modify-writes would.
        let bytes: &mut [u8; HEADER_LEN] = header
            .append(HEADER_LEN as u16)?
            .try_into()
            .expect("append gives the length asked for");
        template.write(bytes, fields);
        header.chain(payload).map_err(|(e, _)| e)?;
        Ok(header)
    }

    /// `payload`, a fresh zero-room buffer, attached to `len` bytes of the frame at `offset`,
    /// holding one of the builder's credited references.
    #[inline(always)]
    fn attached_payload<'s>(
        &'s self,
        build: &mut Build<'s, '_, 'eal>,
        builder: &mut PacketiseRef<'_>,
        payload: Mbuf<'s>,
        offset: usize,
        len: u16,
    ) -> Result<Mbuf<'s>, MbufError> {
        let shinfo = builder
            .take_reference()
            .expect("the credit covers every packet sent in place");
        let iova = build.pages.iova_at(offset);
        // SAFETY: the range is inside the frame, which stays valid while any reference is
        // held (packets borrow the session that owns it); the reference the buffer holds was
        // just taken from the builder's credit; the callback is this process's and packets
        // are bound to this process's session.
        let attached = unsafe {
            attach::attach_extbuf(
                payload.as_raw(),
                build.memory.as_ptr().wrapping_add(offset),
                iova,
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

/// What packetising one frame works with besides the session: the frame's memory and where
/// its pages lead, and the stocks of header and payload buffers.
struct Build<'s, 'm, 'eal> {
    memory: &'m FrameMemory,
    pages: PageWalk<'m>,
    headers: Stock<'s, 'eal>,
    payloads: Stock<'s, 'eal>,
    may_cross: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every payload segment carries the device address of its first byte, looked up once per
    /// page: on real hugepages in physical-address mode when they can be had (pages whose
    /// addresses jump, and payloads copied where they cross), always on ordinary pages.
    #[test]
    fn payload_segments_carry_the_device_address_of_their_bytes() {
        let huge = dpmem_testkit::hugepages_available("packetiser device address test", 24)
            && dpmem_sys::pagemap::physical_addresses_available();
        let mut modes = vec![false];
        if huge {
            modes.push(true);
        }
        for huge in modes {
            let prefix = format!("frpkt{}_{huge}_", std::process::id());
            let memory: &[&str] = if huge {
                &["-m", "48", "--iova-mode", "pa"]
            } else {
                &["--no-huge", "-m", "64"]
            };
            let args = ["packetise-test", "-l", "0", "--file-prefix", &prefix]
                .into_iter()
                .chain(memory.iter().copied());
            let eal = dpmem_eal::Eal::init(args).unwrap();
            let session = TxSession::builder("iova").frames(3).create(&eal).unwrap();
            for _ in 0..3 {
                let frame = session.get_frame().unwrap();
                let (mut sent, mut twins): (Vec<Mbuf<'_>>, Vec<Mbuf<'_>>) = (vec![], vec![]);
                session
                    .transmit_redundant(frame, &mut sent, &mut twins)
                    .unwrap();
                assert_eq!(sent.len(), twins.len());
                for packet in sent.iter().chain(&twins) {
                    // SAFETY: the packet is a header chained to its payload segment, alive
                    // while the packet is.
                    let seg = unsafe { &*packet.header().next() };
                    let at = data::data_at(seg, 0) as usize;
                    assert_eq!(
                        data::iova_at(seg, 0),
                        eal.memory().virt_to_iova(at),
                        "payload at {at:#x}, hugepages {huge}"
                    );
                }
            }
            assert!(!huge || session.location(0).unwrap().page_size == 2 << 20);
        }
    }

    /// The walk gives every packet the offset, length, line and pixel the format computes.
    #[test]
    fn the_walk_matches_the_formats_arithmetic() {
        let formats = [
            St20Format::default(),
            St20Format {
                width: 1280,
                height: 720,
                ..St20Format::default()
            },
            // Payloads longer than a line.
            St20Format {
                width: 64,
                height: 2000,
                payload_len: 1200,
                ..St20Format::default()
            },
            St20Format {
                width: 3840,
                height: 2160,
                pgroup_bytes: 3,
                pgroup_pixels: 2,
                payload_len: 1200,
                ..St20Format::default()
            },
        ];
        for format in formats {
            format.validate().unwrap();
            let mut walk = Walk::start(&format);
            for i in 0..format.packets_per_frame() {
                let (offset, len) = format.payload_range(i);
                let (row, pixel) = format.row_and_pixel(offset);
                assert_eq!(
                    walk.here(),
                    (offset, len, row, pixel),
                    "{format:?} packet {i}"
                );
                walk.advance();
            }
        }
    }
}
