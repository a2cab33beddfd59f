//! The 62-byte header of an ST 2110-20 packet — Ethernet (14), IPv4 (20), UDP (8), RTP (12)
//! and one RFC 4175 sample row data header (8) — built once per session as a template and
//! patched per packet: lengths, the IPv4 identification and checksum, the RTP sequence
//! number, marker and timestamp, the extended sequence number, and the row, offset and
//! length of the payload.

/// Bytes of the header.
pub const HEADER_LEN: usize = 62;

const ETH_LEN: usize = 14;
const IP_AT: usize = ETH_LEN;
const UDP_AT: usize = IP_AT + 20;
const RTP_AT: usize = UDP_AT + 8;
const SRD_AT: usize = RTP_AT + 12;
/// UDP header, RTP header and the payload header ahead of the payload.
const UDP_OVERHEAD: usize = HEADER_LEN - UDP_AT;

/// Where a stream goes and how it is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAddress {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    /// RTP payload type (dynamic, 96..=127).
    pub payload_type: u8,
    pub ssrc: u32,
}

impl Default for StreamAddress {
    fn default() -> Self {
        StreamAddress {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01],
            src_ip: [127, 0, 0, 1],
            dst_ip: [127, 0, 0, 1],
            src_port: 20_000,
            dst_port: 20_000,
            payload_type: 96,
            ssrc: 0x2110_0020,
        }
    }
}

/// What changes from packet to packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFields {
    /// The 32-bit sequence number: the RTP header carries its low half, the payload header
    /// its high half.
    pub seq: u32,
    pub timestamp: u32,
    /// The frame's last packet.
    pub marker: bool,
    pub row: u16,
    /// Pixel of the row where the payload starts.
    pub pixel: u16,
    pub payload_len: u16,
}

/// The header with every per-stream field filled in.
#[derive(Debug, Clone)]
pub struct HeaderTemplate {
    bytes: [u8; HEADER_LEN],
    /// One's-complement sum of the IPv4 header's fixed 16-bit words (all but total length,
    /// identification and the checksum).
    ip_fixed_sum: u32,
}

impl HeaderTemplate {
    pub fn new(to: &StreamAddress) -> HeaderTemplate {
        let mut b = [0u8; HEADER_LEN];
        b[0..6].copy_from_slice(&to.dst_mac);
        b[6..12].copy_from_slice(&to.src_mac);
        b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut b[IP_AT..UDP_AT];
        ip[0] = 0x45; // version 4, 5 words
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // time to live
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&to.src_ip);
        ip[16..20].copy_from_slice(&to.dst_ip);
        let ip_fixed_sum = ip
            .chunks_exact(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum();
        b[UDP_AT..UDP_AT + 2].copy_from_slice(&to.src_port.to_be_bytes());
        b[UDP_AT + 2..UDP_AT + 4].copy_from_slice(&to.dst_port.to_be_bytes());
        // UDP checksum 0: none, as IPv4 allows.
        b[RTP_AT] = 0x80; // RTP version 2
        b[RTP_AT + 1] = to.payload_type & 0x7f;
        b[RTP_AT + 8..RTP_AT + 12].copy_from_slice(&to.ssrc.to_be_bytes());
        HeaderTemplate {
            bytes: b,
            ip_fixed_sum,
        }
    }

    /// Writes the header of one packet into `out`.
    #[inline]
    pub fn write(&self, out: &mut [u8; HEADER_LEN], p: &PacketFields) {
        *out = self.bytes;
        let ip_total = (HEADER_LEN - ETH_LEN + p.payload_len as usize) as u16;
        let udp_len = (UDP_OVERHEAD + p.payload_len as usize) as u16;
        let ip_id = p.seq as u16;
        let mut sum = self.ip_fixed_sum + ip_total as u32 + ip_id as u32;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        out[IP_AT + 2..IP_AT + 4].copy_from_slice(&ip_total.to_be_bytes());
        out[IP_AT + 4..IP_AT + 6].copy_from_slice(&ip_id.to_be_bytes());
        out[IP_AT + 10..IP_AT + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        out[UDP_AT + 4..UDP_AT + 6].copy_from_slice(&udp_len.to_be_bytes());
        out[RTP_AT + 1] |= (p.marker as u8) << 7;
        out[RTP_AT + 2..RTP_AT + 4].copy_from_slice(&(p.seq as u16).to_be_bytes());
        out[RTP_AT + 4..RTP_AT + 8].copy_from_slice(&p.timestamp.to_be_bytes());
        out[SRD_AT..SRD_AT + 2].copy_from_slice(&((p.seq >> 16) as u16).to_be_bytes());
        out[SRD_AT + 2..SRD_AT + 4].copy_from_slice(&p.payload_len.to_be_bytes());
        // Field bit 0 (progressive) above the row; continuation bit 0 above the offset.
        out[SRD_AT + 4..SRD_AT + 6].copy_from_slice(&(p.row & 0x7fff).to_be_bytes());
        out[SRD_AT + 6..SRD_AT + 8].copy_from_slice(&(p.pixel & 0x7fff).to_be_bytes());
    }
}

/// Reads back the per-packet fields of a header (what a receiver parses); `None` when the
/// bytes are not an IPv4/UDP/RTP version 2 header of this layout.
pub fn parse(h: &[u8]) -> Option<PacketFields> {
    let h: &[u8; HEADER_LEN] = h.get(..HEADER_LEN)?.try_into().ok()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    if be16(12) != 0x0800 || h[IP_AT] != 0x45 || h[IP_AT + 9] != 17 || h[RTP_AT] >> 6 != 2 {
        return None;
    }
    Some(PacketFields {
        seq: (be16(SRD_AT) as u32) << 16 | be16(RTP_AT + 2) as u32,
        timestamp: u32::from_be_bytes(h[RTP_AT + 4..RTP_AT + 8].try_into().ok()?),
        marker: h[RTP_AT + 1] & 0x80 != 0,
        row: be16(SRD_AT + 4) & 0x7fff,
        pixel: be16(SRD_AT + 6) & 0x7fff,
        payload_len: be16(SRD_AT + 2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones_complement_sum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = bytes
            .chunks_exact(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn a_written_header_parses_back_with_valid_lengths_and_checksum() {
        let t = HeaderTemplate::new(&StreamAddress::default());
        let fields = PacketFields {
            seq: 0x0003_fffe,
            timestamp: 0xdead_beef,
            marker: true,
            row: 1079,
            pixel: 1512,
            payload_len: 1260,
        };
        let mut out = [0u8; HEADER_LEN];
        t.write(&mut out, &fields);
        assert_eq!(parse(&out), Some(fields));
        // A header whose checksum field is right sums to all ones.
        assert_eq!(ones_complement_sum(&out[IP_AT..UDP_AT]), 0xffff);
        assert_eq!(
            u16::from_be_bytes([out[16], out[17]]),
            20 + 8 + 12 + 8 + 1260
        );
        assert_eq!(u16::from_be_bytes([out[38], out[39]]), 8 + 12 + 8 + 1260);
        assert_eq!(out[RTP_AT + 1], 0x80 | 96);
        out[12] = 0x86;
        assert_eq!(parse(&out), None);
    }
}
