//! A session that lends packets to the borrowing layer ([`Lender`]), and what the layer keeps
//! for it: its callback and its copies in flight.

use dpmem_mbuf::Mbuf;

/// A session's registration with a [`DmaBorrower`](crate::borrow::DmaBorrower): pass it to
/// every copy the session asks for, and give it back with
/// [`unregister`](crate::borrow::DmaBorrower::unregister). Not `Clone`: one session, one
/// lender.
#[derive(Debug)]
pub struct Lender {
    /// The borrower it belongs to.
    pub(crate) borrower: u64,
    /// Its slot in the borrower's table.
    pub(crate) slot: u16,
    pub(crate) on_device: bool,
}

impl Lender {
    /// Its number among the borrower's lenders.
    pub fn id(&self) -> u16 {
        self.slot
    }

    /// Whether its copies may go to the device (else every one is a CPU copy).
    pub fn on_device(&self) -> bool {
        self.on_device
    }
}

/// Runs once per packet whose device copy was reported, just before the packet is released.
pub type OnCopied<'a, 'p> = Box<dyn FnMut(&Mbuf<'p>) + Send + 'a>;

/// What the borrower keeps per lender.
pub(crate) struct LenderSlot<'a, 'p> {
    pub(crate) on_copied: OnCopied<'a, 'p>,
    pub(crate) on_device: bool,
    /// Its packets held for copies in flight.
    pub(crate) in_flight: usize,
}

impl std::fmt::Debug for LenderSlot<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LenderSlot")
            .field("on_device", &self.on_device)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}
