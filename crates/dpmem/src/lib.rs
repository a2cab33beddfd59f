//! dpmem: DPDK's data-plane memory subsystem, in Rust.
//!
//! This facade re-exports the layers; applications depend on this crate only.

pub use dpmem_eal as eal;
pub use dpmem_mempool as mempool;
pub use dpmem_ring as ring;
pub use dpmem_sys as sys;
