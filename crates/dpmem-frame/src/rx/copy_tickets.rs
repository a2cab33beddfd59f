//! [`CopyTickets`]: how a receive session knows which of its device copies are done.
//!
//! The borrowing layer reports device copies in the order they were queued and runs the
//! lender's callback for each, just before releasing its packet. So one count is enough:
//! every device copy the session queues gets the next ticket (1, 2, ...), the callback counts
//! the copies reported, and ticket `t` is done once the count reaches `t`. A frame remembers
//! the last ticket of a copy into it; it is quiet when that one is done.
//!
//! The count is raised with release order after the device's writes were seen (the layer
//! acquires them from the device before the callback) and read with acquire order, so a frame
//! found quiet can be read, or written again, by whoever read the count.

use std::sync::Arc;

use dpmem_mbuf::Mbuf;

use crate::sync::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct CopyTickets {
    /// Tickets given out: the session's device copies queued.
    issued: u64,
    reported: CopyReports,
}

/// The count of a session's device copies reported, raised by its callback.
#[derive(Debug, Clone)]
pub(crate) struct CopyReports(Arc<AtomicU64>);

impl CopyReports {
    /// One more copy is done (the borrower has seen the device's report of it).
    #[inline]
    pub(crate) fn copy_reported(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

impl CopyTickets {
    pub(crate) fn new() -> CopyTickets {
        CopyTickets {
            issued: 0,
            reported: CopyReports(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Where the session's reports are counted.
    pub(crate) fn reports(&self) -> CopyReports {
        self.reported.clone()
    }

    /// The lender's callback: counts one reported copy per packet.
    pub(crate) fn on_copied(&self) -> impl FnMut(&Mbuf<'_>) + Send + 'static {
        let reports = self.reports();
        move |_| reports.copy_reported()
    }

    /// The ticket of a device copy just queued.
    #[inline]
    pub(crate) fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// Tickets done so far: every ticket up to this one is done.
    #[inline]
    pub(crate) fn done_up_to(&self) -> u64 {
        self.reported.0.load(Ordering::Acquire)
    }

    /// Device copies queued and not yet reported.
    pub(crate) fn in_flight(&self) -> u64 {
        self.issued - self.done_up_to()
    }
}
