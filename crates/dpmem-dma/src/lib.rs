//! dpmem's DMA copy engine: DPDK 22.11's `dmadev` in Rust, on a software backend, with
//! Intel MTL's borrowing layer on top.
//!
//! - **A device** ([`DmaDevice`]) has virtual channels, each a ring of descriptors. Its
//!   control path is dmadev's: [`info`](DmaDevice::info),
//!   [`configure`](DmaDevice::configure), [`vchan_setup`](DmaDevice::vchan_setup),
//!   [`start`](DmaDevice::start), [`stop`](DmaDevice::stop), [`close`](DmaDevice::close),
//!   statistics, channel status and [`dump`](DmaDevice::dump).
//! - **A channel's data path** ([`Vchan`], one owner at a time): [`copy`](Vchan::copy) and
//!   [`fill`](Vchan::fill) return the operation's 16-bit ring index,
//!   [`submit`](Vchan::submit) rings the doorbell, [`completed`](Vchan::completed) and
//!   [`completed_status`](Vchan::completed_status) report finished operations in order, and
//!   [`burst_capacity`](Vchan::burst_capacity) says how many more fit.
//! - **The software backend** is a worker thread on the EAL's control CPUs that carries out
//!   the submitted operations with the CPU, reaching memory through the memseg lists: an
//!   address that is not dpmem memory fails its operation with a status, as an IOMMU fault
//!   would ([`Status`]). Idle, it sleeps.
//! - **The borrowing layer** ([`borrow::DmaBorrower`]): sessions share one channel to copy
//!   packet payloads, each packet held until its copy is reported, with a CPU copy where the
//!   device would not pay.
//!
//! ```no_run
//! use dpmem_dma::{DmaConf, DmaDevice, OpFlags, VchanConf};
//! let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"])?;
//! let zone = eal.memzones().request("dma-demo", 8192).reserve()?;
//! let (src, dst) = (zone.iova.unwrap(), zone.iova.unwrap().checked_add(4096).unwrap());
//! let mut dev = DmaDevice::create(&eal, "dma0")?;
//! dev.configure(DmaConf::new(1))?;
//! dev.vchan_setup(0, VchanConf::mem_to_mem(128))?;
//! dev.start()?;
//! let mut vchan = dev.vchan(0)?;
//! // SAFETY: the memzone is ours and nothing else touches it until the copy is reported.
//! let idx = unsafe { vchan.copy(src, dst, 4096, OpFlags::SUBMIT)? };
//! while vchan.completed(1).count == 0 {
//!     std::hint::spin_loop();
//! }
//! assert_eq!(idx, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address_map;
pub mod borrow;
mod cache_padded;
mod capability;
mod config;
mod copier;
mod device;
mod doorbell;
mod engine;
mod error;
mod op_flags;
mod ring;
mod status;
mod sync;
mod vchan;

pub use capability::{Capabilities, DmaInfo};
pub use config::{Direction, DmaConf, VchanConf, MAX_DESC, MAX_VCHANS, MIN_DESC};
pub use device::{DmaDevice, DEVICE_NAME_MAX, SOFTWARE_CAPABILITIES};
pub use engine::DmaStats;
pub use error::DmaError;
pub use op_flags::OpFlags;
pub use status::{Status, VchanStatus};
pub use vchan::{Completed, Vchan};
