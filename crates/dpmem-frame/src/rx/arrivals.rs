//! [`Arrivals`]: which packets of a frame have been placed, one bit per packet, so a second
//! copy of a packet (a retransmission, or the other path of ST 2022-7 redundancy) is
//! recognised and never copied into the frame twice.

#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    /// Bit `i % 64` of word `i / 64`: packet `i` was placed.
    words: Vec<u64>,
    /// Bits set (packets placed).
    count: u32,
    /// Packets in a frame.
    total: u32,
}

impl Arrivals {
    pub(crate) fn new(total: u32) -> Arrivals {
        Arrivals {
            words: vec![0; (total as usize).div_ceil(64)],
            count: 0,
            total,
        }
    }

    /// Forgets every arrival (a new frame starts in the buffer).
    pub(crate) fn clear(&mut self) {
        self.words.fill(0);
        self.count = 0;
    }

    /// Records packet `index`; false when it had arrived already. `index` is below the
    /// frame's packet count (the caller located it in the frame).
    #[inline]
    pub(crate) fn insert(&mut self, index: u32) -> bool {
        debug_assert!(index < self.total);
        let word = &mut self.words[(index / 64) as usize];
        let bit = 1u64 << (index % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.count += 1;
        true
    }

    /// Every packet of the frame has arrived.
    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        self.count == self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_packet_counts_once_and_clear_starts_over() {
        let mut a = Arrivals::new(130);
        assert!(a.insert(0));
        assert!(a.insert(129));
        assert!(!a.insert(129));
        assert_eq!(a.count, 2);
        for i in 1..129 {
            assert!(a.insert(i));
        }
        assert!(a.is_complete());
        a.clear();
        assert_eq!(a.count, 0);
        assert!(a.insert(129));
    }
}
