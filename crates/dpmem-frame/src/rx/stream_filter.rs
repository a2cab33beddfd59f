//! [`StreamFilter`]: whether a received packet belongs to the session's stream — its IPv4
//! source and destination, UDP ports, RTP payload type and SSRC, as a sender configured with
//! the same [`StreamAddress`] writes them. MAC addresses are not compared: routers rewrite
//! them.

use crate::header::{HeaderTemplate, PacketFields, StreamAddress, HEADER_LEN};

/// Byte ranges of the header that identify a stream: IPv4 source and destination (26..34),
/// UDP ports (34..38), the RTP SSRC (50..54). The payload type shares its byte (43) with the
/// marker bit and is compared under a mask.
const IDENTITY: [core::ops::Range<usize>; 3] = [26..34, 34..38, 50..54];
const PAYLOAD_TYPE_AT: usize = 43;

#[derive(Debug, Clone)]
pub(crate) struct StreamFilter {
    /// A header the stream's sender would write, to compare with.
    expected: [u8; HEADER_LEN],
}

impl StreamFilter {
    pub(crate) fn new(address: &StreamAddress) -> StreamFilter {
        let mut expected = [0u8; HEADER_LEN];
        let fields = PacketFields {
            seq: 0,
            timestamp: 0,
            marker: false,
            row: 0,
            pixel: 0,
            payload_len: 0,
        };
        HeaderTemplate::new(address).write(&mut expected, &fields);
        StreamFilter { expected }
    }

    /// Whether `header` (a header that parsed, so at least [`HEADER_LEN`] bytes) is the
    /// stream's.
    #[inline]
    pub(crate) fn matches(&self, header: &[u8]) -> bool {
        IDENTITY
            .iter()
            .all(|r| header[r.clone()] == self.expected[r.clone()])
            && (header[PAYLOAD_TYPE_AT] ^ self.expected[PAYLOAD_TYPE_AT]) & 0x7f == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(address: &StreamAddress, marker: bool) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields = PacketFields {
            seq: 77,
            timestamp: 3003,
            marker,
            row: 5,
            pixel: 8,
            payload_len: 1260,
        };
        HeaderTemplate::new(address).write(&mut out, &fields);
        out
    }

    #[test]
    fn the_streams_packets_match_and_any_other_identity_does_not() {
        let ours = StreamAddress::default();
        let filter = StreamFilter::new(&ours);
        assert!(filter.matches(&header(&ours, false)));
        assert!(filter.matches(&header(&ours, true)));
        let other_mac = StreamAddress {
            src_mac: [2, 9, 9, 9, 9, 9],
            ..ours
        };
        assert!(filter.matches(&header(&other_mac, false)));
        for other in [
            StreamAddress {
                src_ip: [10, 0, 0, 1],
                ..ours
            },
            StreamAddress {
                dst_ip: [239, 1, 1, 2],
                ..ours
            },
            StreamAddress {
                src_port: 1,
                ..ours
            },
            StreamAddress {
                dst_port: 20_002,
                ..ours
            },
            StreamAddress {
                payload_type: 97,
                ..ours
            },
            StreamAddress { ssrc: 1, ..ours },
        ] {
            assert!(!filter.matches(&header(&other, false)), "{other:?}");
        }
    }
}
