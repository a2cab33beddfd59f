//! [`RxStats`]: what a receive session did with the packets it was given, by outcome and by
//! the way each payload was copied, and where its frames are now.
//!
//! Every packet given to a session ends one way: placed in a frame, dropped for one of the
//! reasons of [`RxDrops`], or recognised as a duplicate; so
//! `packets_received == packets_placed + dropped.total() + duplicates`.

use dpmem_dma::borrow::{CopyPath, Fallback};

/// Why a packet was dropped without being written anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    Unparsed,
    OtherStream,
    BadLength,
    OutsideFrame,
    NoFrame,
    Late,
}

/// Packets dropped, by reason. None of them wrote a byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxDrops {
    /// The header is not an IPv4/UDP/RTP version 2 header of the ST 2110-20 layout.
    pub unparsed: u64,
    /// Addresses, ports, payload type or SSRC are not the session's stream.
    pub other_stream: u64,
    /// The header's payload length is not the format's for the packet's place, or the packet
    /// holds fewer payload bytes than its header says.
    pub bad_length: u64,
    /// The row or pixel offset lies outside the frame, or is not where a packet of the
    /// format starts.
    pub outside_frame: u64,
    /// The packet's frame had no buffer: every one was being assembled, settling, ready or
    /// held by the application when it started.
    pub no_frame: u64,
    /// The packet belongs to a frame that was already given up as incomplete.
    pub late: u64,
}

impl RxDrops {
    pub fn total(&self) -> u64 {
        self.unparsed
            + self.other_stream
            + self.bad_length
            + self.outside_frame
            + self.no_frame
            + self.late
    }

    pub(crate) fn count(&mut self, why: DropReason) {
        let counter = match why {
            DropReason::Unparsed => &mut self.unparsed,
            DropReason::OtherStream => &mut self.other_stream,
            DropReason::BadLength => &mut self.bad_length,
            DropReason::OutsideFrame => &mut self.outside_frame,
            DropReason::NoFrame => &mut self.no_frame,
            DropReason::Late => &mut self.late,
        };
        *counter += 1;
    }
}

/// Payload copies of one session, by the way they went (the borrowing layer's own
/// statistics cover every session sharing it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCopies {
    /// Queued on the copy device.
    pub dma: u64,
    /// Done by the CPU because the payload was small, the device's ring full, a page
    /// boundary where the IOVA jumps in the way, or the session without a device place.
    pub cpu_small: u64,
    pub cpu_device_full: u64,
    pub cpu_cross_page: u64,
    pub cpu_no_device: u64,
    /// Done by the session itself because the borrowing layer refused the copy: the
    /// borrower given is not the one the session registered with, or an end of the copy is
    /// memory without a known IOVA.
    pub cpu_refused: u64,
}

impl RxCopies {
    /// Every copy the CPU did.
    pub fn cpu(&self) -> u64 {
        self.cpu_small
            + self.cpu_device_full
            + self.cpu_cross_page
            + self.cpu_no_device
            + self.cpu_refused
    }

    #[inline]
    pub(crate) fn count(&mut self, path: CopyPath) {
        let counter = match path {
            CopyPath::Dma { .. } => &mut self.dma,
            CopyPath::Cpu(Fallback::Small) => &mut self.cpu_small,
            CopyPath::Cpu(Fallback::DeviceFull) => &mut self.cpu_device_full,
            CopyPath::Cpu(Fallback::CrossPage) => &mut self.cpu_cross_page,
            CopyPath::Cpu(Fallback::NoDevice) => &mut self.cpu_no_device,
        };
        *counter += 1;
    }
}

/// What a receive session did, and where its frames are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Packets given to the session.
    pub packets_received: u64,
    /// Packets whose payload was copied into a frame.
    pub packets_placed: u64,
    /// Payload bytes copied into frames.
    pub bytes_placed: u64,
    pub dropped: RxDrops,
    /// Packets that had arrived already (retransmissions, ST 2022-7 redundant copies): not
    /// copied again.
    pub duplicates: u64,
    /// Frames that began (a buffer taken for a new RTP timestamp).
    pub frames_started: u64,
    /// Frames whose every packet arrived.
    pub frames_complete: u64,
    /// Frames given up because the next one began (or [`abandon`] was called) before every
    /// packet arrived; their buffers went back free.
    ///
    /// [`abandon`]: crate::RxSession::abandon
    pub frames_incomplete: u64,
    /// Frames whose packets all went unplaced because no buffer was free when they began.
    pub frames_without_buffer: u64,
    /// Complete frames the application has taken.
    pub frames_delivered: u64,
    pub copies: RxCopies,
    /// Device copies queued but not yet reported (now).
    pub copies_in_flight: u64,
    /// Complete frames waiting for the application (now).
    pub frames_ready: u32,
    /// Frames the application holds (now).
    pub frames_held: u32,
}
