//! [`St20Format`]: the shape of an SMPTE ST 2110-20 video stream — picture size, pixel
//! group, payload per packet, frame rate — and how a frame splits into packets.
//!
//! Packets carry fixed-size payloads cut from the frame in order (block packing, as MTL's
//! default), so a payload may run from one line into the next; its header names the line
//! and pixel where it starts. The last packet carries what is left.

use crate::error::FrameError;

/// An ST 2110-20 stream's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct St20Format {
    pub width: u32,
    pub height: u32,
    /// Bytes of one pixel group (5 for 4:2:2 10-bit).
    pub pgroup_bytes: u32,
    /// Pixels of one pixel group (2 for 4:2:2).
    pub pgroup_pixels: u32,
    /// Payload bytes per packet (a whole number of pixel groups).
    pub payload_len: u16,
    /// Frame rate as a fraction (60000/1001 for 59.94).
    pub fps_num: u32,
    pub fps_den: u32,
}

/// The RTP clock of ST 2110-20 video.
pub const RTP_CLOCK_HZ: u64 = 90_000;

/// A frame cannot need more packets than this: each packet's payload (and its redundant
/// copy's) holds one reference on the frame's 16-bit count, and the builder one more.
pub const MAX_PACKETS_PER_FRAME: u32 = (u16::MAX as u32 - 1) / 2;

impl St20Format {
    /// 1080p59.94, 4:2:2 10-bit, 1,260-byte payloads: 5,184,000-byte frames in 4,115
    /// packets, the last of 360 bytes.
    pub const FHD_5994_422_10: St20Format = St20Format {
        width: 1920,
        height: 1080,
        pgroup_bytes: 5,
        pgroup_pixels: 2,
        payload_len: 1260,
        fps_num: 60_000,
        fps_den: 1001,
    };

    /// Bytes of one line.
    pub fn line_bytes(&self) -> usize {
        (self.width / self.pgroup_pixels) as usize * self.pgroup_bytes as usize
    }

    /// Bytes of one frame.
    pub fn frame_size(&self) -> usize {
        self.line_bytes() * self.height as usize
    }

    /// Packets per frame.
    pub fn packets_per_frame(&self) -> u32 {
        self.frame_size().div_ceil(self.payload_len as usize) as u32
    }

    /// Offset and length of packet `index`'s payload in the frame.
    #[inline]
    pub fn payload_range(&self, index: u32) -> (usize, u16) {
        let offset = index as usize * self.payload_len as usize;
        let len = (self.frame_size() - offset).min(self.payload_len as usize);
        (offset, len as u16)
    }

    /// The line and pixel where the payload at byte `offset` of the frame starts.
    #[inline]
    pub fn row_and_pixel(&self, offset: usize) -> (u16, u16) {
        let line = self.line_bytes();
        let row = offset / line;
        let in_line = offset % line;
        let pixel = in_line / self.pgroup_bytes as usize * self.pgroup_pixels as usize;
        (row as u16, pixel as u16)
    }

    /// The RTP timestamp of frame number `n` (90 kHz clock).
    pub fn rtp_timestamp(&self, n: u64) -> u32 {
        (n as u128 * RTP_CLOCK_HZ as u128 * self.fps_den as u128 / self.fps_num as u128) as u32
    }

    /// Checks the format can be sent: whole pixel groups per line and per payload, rows and
    /// pixel offsets within their 15 bits, packets within the frame count's reach.
    pub fn validate(&self) -> Result<(), FrameError> {
        let bad = |why: String| Err(FrameError::InvalidFormat(why));
        if self.width == 0 || self.height == 0 || self.pgroup_bytes == 0 {
            return bad(format!("{self:?}: empty picture or pixel group"));
        }
        if self.pgroup_pixels == 0 || !self.width.is_multiple_of(self.pgroup_pixels) {
            return bad(format!(
                "a width of {} is not a whole number of {}-pixel groups",
                self.width, self.pgroup_pixels
            ));
        }
        if self.width > 1 << 15 || self.height > 1 << 15 {
            return bad(format!(
                "{}x{} does not fit the header's 15-bit row and offset",
                self.width, self.height
            ));
        }
        if self.payload_len == 0 || !(self.payload_len as u32).is_multiple_of(self.pgroup_bytes) {
            return bad(format!(
                "a payload of {} bytes is not a whole number of {}-byte pixel groups",
                self.payload_len, self.pgroup_bytes
            ));
        }
        if self.fps_num == 0 || self.fps_den == 0 {
            return bad("a frame rate of zero".into());
        }
        let packets = self.packets_per_frame();
        if packets > MAX_PACKETS_PER_FRAME {
            return bad(format!(
                "{packets} packets per frame; at most {MAX_PACKETS_PER_FRAME} fit the frame's \
                 reference count"
            ));
        }
        Ok(())
    }
}

impl Default for St20Format {
    fn default() -> Self {
        Self::FHD_5994_422_10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_format_is_1080p5994_in_4115_packets() {
        let f = St20Format::default();
        f.validate().unwrap();
        assert_eq!(f.frame_size(), 5_184_000);
        assert_eq!(f.packets_per_frame(), 4115);
        assert_eq!(f.payload_range(4114), (4114 * 1260, 360));
        // 4,800-byte lines: the fourth payload starts 3,780 bytes into line 0, at pixel 1,512.
        assert_eq!(f.row_and_pixel(3 * 1260), (0, 1512));
        assert_eq!(f.row_and_pixel(4 * 1260), (1, 96));
        assert_eq!(f.rtp_timestamp(2), 3003);
    }

    #[test]
    fn formats_that_cannot_be_sent_are_refused() {
        let base = St20Format::default();
        for bad in [
            St20Format {
                width: 1921,
                ..base
            },
            St20Format {
                payload_len: 1262,
                ..base
            },
            St20Format {
                payload_len: 0,
                ..base
            },
            St20Format {
                height: 40_000,
                ..base
            },
            St20Format { fps_num: 0, ..base },
            St20Format {
                payload_len: 5,
                height: 4096,
                ..base
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(FrameError::InvalidFormat(_))),
                "{bad:?}"
            );
        }
    }
}
