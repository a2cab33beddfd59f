//! Which way a borrowed copy went, why the CPU did it when it did, and the counts of each.

/// Payloads of at most this many bytes are copied by the CPU: for them, queueing a
/// descriptor and waiting for its completion costs more than the copy (MTL's threshold).
pub const CPU_COPY_MAX: u32 = 1024;

/// Sessions that can share one device; the next ones copy with the CPU (MTL's
/// `MT_DMA_MAX_SESSIONS`).
pub const MAX_LENDERS: usize = 16;

/// Why the CPU copied instead of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// The payload is at most [`CPU_COPY_MAX`] bytes.
    Small,
    /// The device's ring was full.
    DeviceFull,
    /// The source or the destination crosses a page boundary where the IOVA jumps, which one
    /// descriptor cannot describe.
    CrossPage,
    /// There is no device, or the lender came after [`MAX_LENDERS`] others took it.
    NoDevice,
}

/// Which way a copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPath {
    /// Queued on the device with this ring index: the packet is held until the copy is
    /// reported, then given to the lender's callback and released.
    Dma { ring_idx: u16 },
    /// Done by the CPU before the call returned, for this reason; the packet is released.
    Cpu(Fallback),
}

/// What the borrowing layer did, by path and reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BorrowStats {
    /// Copies queued on the device.
    pub dma_copies: u64,
    /// CPU copies, by reason.
    pub cpu_small: u64,
    pub cpu_device_full: u64,
    pub cpu_cross_page: u64,
    pub cpu_no_device: u64,
    /// Copies the device reported failed, done again by the CPU before their packet went.
    pub cpu_after_error: u64,
    /// Packets released after their device copy was reported.
    pub released: u64,
    /// Lenders that got no device (none, or [`MAX_LENDERS`] taken).
    pub lenders_on_cpu: u64,
}

impl BorrowStats {
    /// Every copy the CPU did, for any reason.
    pub fn cpu_copies(&self) -> u64 {
        self.cpu_small
            + self.cpu_device_full
            + self.cpu_cross_page
            + self.cpu_no_device
            + self.cpu_after_error
    }

    pub(crate) fn count_cpu(&mut self, why: Fallback) {
        let counter = match why {
            Fallback::Small => &mut self.cpu_small,
            Fallback::DeviceFull => &mut self.cpu_device_full,
            Fallback::CrossPage => &mut self.cpu_cross_page,
            Fallback::NoDevice => &mut self.cpu_no_device,
        };
        *counter += 1;
    }
}
