//! Dynamic fields and flags (DPDK's `rte_mbuf_dyn.h`): named places in the packet header that
//! features and programs reserve at run time, instead of a fixed field for each.
//!
//! A field is a run of bytes in the 36-byte space at the end of the header ([`FIELD_SPACE`],
//! header offsets 92 to 127), with a size and an alignment; a flag is one of the 18 bits of
//! `ol_flags` no static flag holds ([`FLAG_BITS`], 23 to 40). Registering a name gives its
//! place — where the registry finds room, or where the caller asks — and registering it again
//! with the same parameters gives the same place back, so independent pieces of code agree on
//! it by name.
//!
//! The registry lives in a memzone (`dpmem_mbuf_dyn`) that the primary process creates on its
//! first registration, so every process of the EAL sees the same places. As in DPDK only the
//! primary registers new names; a secondary looks names up, or registers one the primary has
//! with the same parameters, and gets `EPERM` for anything new. Nothing is ever unregistered.
//! The memzone ends with the EAL.
//!
//! - Raw forms, as DPDK's functions: [`register_field`], [`register_field_at`],
//!   [`lookup_field`], [`register_flag`], [`register_flag_at`], [`lookup_flag`], [`dump`]
//!   and [`registered`].
//! - Typed handles: [`DynField<T>`] reads and writes a `T` in a header, [`DynFlag`] tests,
//!   sets and clears its bit.
//!
//! ```no_run
//! use dpmem_mbuf::dynamic::{DynField, DynFlag};
//! # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"])?;
//! let pool = dpmem_mbuf::PktmbufPool::builder("rx", 63).create(&eal)?;
//! let timestamp = DynField::<u64>::register(&eal, "app_rx_timestamp")?;
//! let stamped = DynFlag::register(&eal, "app_rx_timestamped")?;
//! let packet = pool.alloc()?;
//! timestamp.set(packet.header(), 1_000_000);
//! stamped.set(packet.header());
//! assert!(stamped.is_set(packet.header()));
//! assert_eq!(timestamp.get(packet.header()), 1_000_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod register;
mod shared_registry;
mod space;
mod typed;

pub use register::{
    dump, lookup_field, lookup_flag, register_field, register_field_at, register_flag,
    register_flag_at, registered, FieldSpec, FlagSpec, Registered,
};
pub use shared_registry::REGISTRY_MEMZONE;
pub use space::{FieldInfo, FlagInfo, FIELD_SPACE, FLAG_BITS, NAME_SIZE};
pub use typed::{DynField, DynFieldValue, DynFlag};
