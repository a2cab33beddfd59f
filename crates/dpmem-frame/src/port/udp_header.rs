//! The Ethernet (14 bytes), IPv4 (20, no options) and UDP (8) headers in front of a UDP
//! port's datagram. On TX they are read to find the datagram (the kernel writes headers of
//! its own); on RX the port writes them in front of each datagram it receives, so received
//! packets have the layout the loopback port delivers and [`crate::header::parse`] reads.

use std::net::SocketAddrV4;

/// Bytes ahead of the datagram: Ethernet, IPv4 and UDP headers.
pub const DATAGRAM_AT: usize = 42;

const IP_AT: usize = 14;
const UDP_AT: usize = IP_AT + 20;

/// The datagram's length (the UDP payload) if `h` begins an unfragmented Ethernet/IPv4/UDP
/// packet without IP options, as the packetiser writes them.
pub(crate) fn datagram_len(h: &[u8; DATAGRAM_AT]) -> Option<usize> {
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]) as usize;
    let fragmented = be16(IP_AT + 6) & 0x3fff != 0; // more fragments, or an offset
    if be16(12) != 0x0800 || h[IP_AT] != 0x45 || h[IP_AT + 9] != 17 || fragmented {
        return None;
    }
    be16(UDP_AT + 4).checked_sub(8)
}

/// Writes the headers of a datagram of `len` bytes from `from` to `to` into `out`: MAC
/// addresses zero (those of Linux's loopback device), identification 0, don't fragment,
/// TTL 64, a valid IPv4 checksum, no UDP checksum (the kernel checked it).
pub(crate) fn write(out: &mut [u8; DATAGRAM_AT], from: SocketAddrV4, to: SocketAddrV4, len: u16) {
    *out = [0; DATAGRAM_AT];
    out[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut out[IP_AT..UDP_AT];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20 + 8 + len).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&from.ip().octets());
    ip[16..20].copy_from_slice(&to.ip().octets());
    let checksum = !ones_complement_sum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut out[UDP_AT..];
    udp[0..2].copy_from_slice(&from.port().to_be_bytes());
    udp[2..4].copy_from_slice(&to.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(8 + len).to_be_bytes());
}

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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::header::{HeaderTemplate, PacketFields, StreamAddress, HEADER_LEN};

    #[test]
    fn a_packetised_header_gives_its_datagram_and_a_written_one_reads_back() {
        let mut packet = [0u8; HEADER_LEN];
        let fields = PacketFields {
            seq: 7,
            timestamp: 9,
            marker: false,
            row: 3,
            pixel: 0,
            payload_len: 1260,
        };
        HeaderTemplate::new(&StreamAddress::default()).write(&mut packet, &fields);
        let l2l4: &mut [u8; DATAGRAM_AT] = (&mut packet[..DATAGRAM_AT]).try_into().unwrap();
        // RTP (12) and the payload header (8) ride in the datagram with the payload.
        assert_eq!(datagram_len(l2l4), Some(12 + 8 + 1260));

        let (from, to) = (
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40_000),
            SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 20_000),
        );
        write(l2l4, from, to, 12 + 8 + 1260);
        assert_eq!(datagram_len(l2l4), Some(1280));
        assert_eq!(ones_complement_sum(&l2l4[IP_AT..UDP_AT]), 0xffff);
        assert_eq!(u16::from_be_bytes([l2l4[16], l2l4[17]]), 20 + 8 + 1280);
        assert_eq!(&l2l4[26..30], &[127, 0, 0, 1]);
        assert_eq!(&l2l4[30..34], &[127, 0, 0, 2]);
        assert_eq!(crate::header::parse(&packet), Some(fields));

        let mut other = [0u8; DATAGRAM_AT];
        write(&mut other, from, to, 4);
        other[IP_AT + 9] = 6; // TCP
        assert_eq!(datagram_len(&other), None);
        other[IP_AT + 9] = 17;
        other[IP_AT + 7] = 1; // a fragment's offset
        assert_eq!(datagram_len(&other), None);
    }
}
