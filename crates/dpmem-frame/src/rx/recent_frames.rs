//! [`RecentFrames`]: the RTP timestamps of the last few frames that ended, and how they
//! ended, so a packet that arrives after its frame is over — the other path's copy under ST
//! 2022-7, a packet delayed past the next frame's first — is recognised rather than taken for
//! the start of a new frame (which would give up the frame being assembled).

/// How many ended frames are remembered: enough for a redundant path running a few frames
/// behind the other.
const REMEMBERED: usize = 4;

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every packet arrived: later packets of it are duplicates.
    Complete,
    /// Given up (or it never had a buffer): later packets of it are late.
    Incomplete,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RecentFrames {
    ended: [Option<(u32, Ended)>; REMEMBERED],
    /// The place the next frame to end is written (the oldest is overwritten).
    next: usize,
}

impl RecentFrames {
    pub(crate) fn push(&mut self, timestamp: u32, how: Ended) {
        self.ended[self.next] = Some((timestamp, how));
        self.next = (self.next + 1) % REMEMBERED;
    }

    /// How the frame of `timestamp` ended, if it is one of the remembered ones.
    #[inline]
    pub(crate) fn find(&self, timestamp: u32) -> Option<Ended> {
        self.ended
            .iter()
            .flatten()
            .find(|(t, _)| *t == timestamp)
            .map(|&(_, how)| how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_few_frames_are_remembered_and_older_ones_forgotten() {
        let mut r = RecentFrames::default();
        assert_eq!(r.find(0), None);
        r.push(0, Ended::Complete);
        r.push(1501, Ended::Incomplete);
        assert_eq!(r.find(0), Some(Ended::Complete));
        assert_eq!(r.find(1501), Some(Ended::Incomplete));
        for t in 2..=REMEMBERED as u32 {
            r.push(t * 1501, Ended::Complete);
        }
        assert_eq!(r.find(0), None);
        assert_eq!(r.find(1501), Some(Ended::Incomplete));
    }
}
