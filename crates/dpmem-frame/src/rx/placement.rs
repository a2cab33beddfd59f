//! [`Placement`]: where a received payload goes in its frame, or why it goes nowhere.
//!
//! A packet's header names the line and pixel where its payload starts and the payload's
//! length. With the block packing the packetiser uses (fixed-size payloads cut from the frame
//! in order), that place must be the start of packet `i` of the format, and the length packet
//! `i`'s length. Anything else is refused before a byte is written: so no payload can land
//! outside the frame, and no two accepted payloads of a frame can overlap — which is what
//! lets the copies into one frame run on the device and the CPU at the same time.

use crate::format::St20Format;
use crate::header::{PacketFields, HEADER_LEN};
use crate::rx::stats::DropReason;

/// Where an accepted payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    /// The packet's number in the frame.
    pub(crate) index: u32,
    /// Byte offset of the payload in the frame.
    pub(crate) offset: usize,
    pub(crate) len: u16,
}

/// The format's geometry, ready for per-packet arithmetic.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    format: St20Format,
    line_bytes: usize,
    packets: u32,
}

impl Placement {
    /// For a format that passed [`St20Format::validate`].
    pub(crate) fn new(format: St20Format) -> Placement {
        Placement {
            format,
            line_bytes: format.line_bytes(),
            packets: format.packets_per_frame(),
        }
    }

    pub(crate) fn packets(&self) -> u32 {
        self.packets
    }

    /// The place of a packet with header `fields` whose first segment holds `segment_len`
    /// bytes (header included).
    #[inline]
    pub(crate) fn locate(
        &self,
        fields: &PacketFields,
        segment_len: usize,
    ) -> Result<Place, DropReason> {
        let f = &self.format;
        let (row, pixel) = (u32::from(fields.row), u32::from(fields.pixel));
        if row >= f.height || pixel >= f.width || !pixel.is_multiple_of(f.pgroup_pixels) {
            return Err(DropReason::OutsideFrame);
        }
        let offset = row as usize * self.line_bytes
            + (pixel / f.pgroup_pixels) as usize * f.pgroup_bytes as usize;
        let payload_len = usize::from(f.payload_len);
        if !offset.is_multiple_of(payload_len) {
            return Err(DropReason::OutsideFrame);
        }
        let index = (offset / payload_len) as u32;
        let (_, len) = f.payload_range(index);
        if fields.payload_len != len || segment_len < HEADER_LEN + usize::from(len) {
            return Err(DropReason::BadLength);
        }
        Ok(Place { index, offset, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(row: u16, pixel: u16, payload_len: u16) -> PacketFields {
        PacketFields {
            seq: 0,
            timestamp: 0,
            marker: false,
            row,
            pixel,
            payload_len,
        }
    }

    #[test]
    fn every_packet_the_packetiser_sends_lands_where_it_was_cut_from() {
        let format = St20Format::default();
        let p = Placement::new(format);
        for i in 0..format.packets_per_frame() {
            let (offset, len) = format.payload_range(i);
            let (row, pixel) = format.row_and_pixel(offset);
            let place = p
                .locate(&fields(row, pixel, len), HEADER_LEN + usize::from(len))
                .unwrap();
            assert_eq!(
                place,
                Place {
                    index: i,
                    offset,
                    len
                }
            );
        }
    }

    #[test]
    fn places_outside_the_frame_or_between_packets_and_wrong_lengths_are_refused() {
        let p = Placement::new(St20Format::default());
        let full = HEADER_LEN + 1260;
        for (f, why) in [
            (fields(1080, 0, 1260), DropReason::OutsideFrame),
            (fields(0, 1920, 1260), DropReason::OutsideFrame),
            (fields(0, 1, 1260), DropReason::OutsideFrame),
            // Pixel 2 is byte 5: inside the frame, but inside packet 0 too.
            (fields(0, 2, 1260), DropReason::OutsideFrame),
            (fields(0, 0, 1259), DropReason::BadLength),
            (fields(0, 0, 1300), DropReason::BadLength),
            // The last packet (4,114, at line 1,079 pixel 1,776) holds 360 bytes.
            (fields(1079, 1776, 1260), DropReason::BadLength),
        ] {
            assert_eq!(p.locate(&f, full), Err(why), "{f:?}");
        }
        assert!(p.locate(&fields(1079, 1776, 360), HEADER_LEN + 360).is_ok());
        assert_eq!(
            p.locate(&fields(0, 0, 1260), full - 1),
            Err(DropReason::BadLength)
        );
    }
}
