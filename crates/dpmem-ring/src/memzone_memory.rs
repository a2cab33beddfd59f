//! [`MemzoneMemory`]: the memzone a named ring lives in, as the block of memory its handles
//! work on, and the memzone name a ring's name maps to.
//!
//! It sits below both [`named`](crate::named), which creates, finds and frees named rings,
//! and the telemetry commands, which read them: each needs the memzone, and `named` also
//! registers the commands, so neither can hold it.

use core::marker::PhantomData;
use core::ptr::NonNull;

use dpmem_eal::memzone::Memzone;
use dpmem_eal::Eal;

use crate::error::RingError;
use crate::header::RING_NAME_MAX;
use crate::memory::RingMemory;

/// Prefix of the memzone that holds a named ring.
pub const MEMZONE_PREFIX: &str = "RG_";

/// The memzone under a named ring. It borrows the EAL: the memory is the EAL's and goes away
/// with it.
#[derive(Debug)]
pub struct MemzoneMemory<'eal> {
    zone: Memzone,
    _eal: PhantomData<&'eal Eal>,
}

impl<'eal> MemzoneMemory<'eal> {
    /// The block of `zone`, a memzone of `_eal`.
    pub(crate) fn new(_eal: &'eal Eal, zone: Memzone) -> Self {
        MemzoneMemory {
            zone,
            _eal: PhantomData,
        }
    }

    /// The memzone of the ring called `name`, when there is one (whatever its bytes hold);
    /// `ENAMETOOLONG` for a name no ring can have.
    pub(crate) fn find(eal: &'eal Eal, name: &str) -> Result<Option<Self>, RingError> {
        let zone_name = memzone_name(name)?;
        Ok(eal
            .memzones()
            .lookup(&zone_name)
            .map(|zone| MemzoneMemory::new(eal, zone)))
    }

    /// The memzone itself (its IOVA, socket, page size).
    pub fn memzone(&self) -> &Memzone {
        &self.zone
    }
}

// SAFETY: a memzone's bytes stay mapped at `va` for `len` bytes as long as the EAL lives
// (which the `'eal` borrow guarantees) and until the memzone is freed, which only
// `named::free` does, consuming the ring's handle.
unsafe impl RingMemory for MemzoneMemory<'_> {
    fn base(&self) -> NonNull<u8> {
        NonNull::new(self.zone.as_ptr()).expect("memzones are never at address 0")
    }

    fn len(&self) -> usize {
        self.zone.len
    }
}

/// The memzone name of the ring called `name`: the rings' prefix and the name, which the
/// 28-byte name limit keeps within the memzone's 31 bytes.
pub(crate) fn memzone_name(name: &str) -> Result<String, RingError> {
    if name.len() > RING_NAME_MAX {
        return Err(RingError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
            max: RING_NAME_MAX,
        });
    }
    Ok(format!("{MEMZONE_PREFIX}{name}"))
}
