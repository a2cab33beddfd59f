//! [`DmaDevice`]: a software DMA device with DPDK 22.11 dmadev's control path — info,
//! configure, channel set-up, start, stop, close, statistics, channel status, dump.
//!
//! A device is created stopped. `configure` says how many channels it has, `vchan_setup`
//! sizes each channel's ring, and `start` makes a fresh ring per channel (every index and
//! statistic at 0) and starts the worker: a control thread of the EAL
//! ([`LcoreThreads::create_control_thread`](dpmem_eal::lcore::LcoreThreads::create_control_thread)),
//! on the CPUs no lcore uses, so copies do not take time from the data plane. `stop` lets the
//! worker finish what was submitted and joins it; `close` (or dropping the device) stops it
//! for good.
//!
//! Control calls take `&mut self` and the channels ([`DmaDevice::vchan`]) borrow the device,
//! so reconfiguring or stopping a device whose channel someone holds does not compile —
//! DPDK's rule that control and data path calls must not overlap, kept by the borrow checker.
//! Statistics, channel status and dump take `&self` and work from any thread at any time.
//!
//! The worker reaches memory through the memseg lists ([`crate::address_map`]), kept as a
//! table it builds again when the EAL's
//! [`layout_generation`](dpmem_eal::Memory::layout_generation) moves (pages came or went,
//! external memory was registered or unregistered) and when an address misses.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use dpmem_eal::lcore::{ControlThread, LcoreError, LCORE_ID_ANY};
use dpmem_eal::{Eal, Socket};

use crate::capability::{Capabilities, DmaInfo};
use crate::config::{DmaConf, VchanConf, MAX_DESC, MAX_VCHANS, MIN_DESC};
use crate::copier::SoftwareCopier;
use crate::engine::{DmaStats, Engine};
use crate::error::DmaError;
use crate::ring::UserCursor;
use crate::status::VchanStatus;
use crate::vchan::Vchan;

/// What the software device does: copies and fills between memories of this host, each
/// failure reported in its operation's status. Not `SVA`: only dpmem memory (memseg lists,
/// external memory included) is reachable, not any address of the process; not `SILENT`;
/// no scatter-gather.
pub const SOFTWARE_CAPABILITIES: Capabilities = Capabilities::MEM_TO_MEM
    .union(Capabilities::HANDLES_ERRORS)
    .union(Capabilities::OPS_COPY)
    .union(Capabilities::OPS_FILL);

/// Longest device name (DPDK's `RTE_DEV_NAME_MAX_LEN` less its terminating NUL).
pub const DEVICE_NAME_MAX: usize = 63;

/// Name of the worker threads (what `ps` and `top` show).
const WORKER_THREAD_NAME: &str = "dpmem-dma";

/// A software DMA copy device.
pub struct DmaDevice<'eal> {
    eal: &'eal Eal,
    name: String,
    conf: Option<DmaConf>,
    /// Per channel of the configuration, its set-up (all `Some` before a start).
    vchan_confs: Vec<Option<VchanConf>>,
    /// The rings and counters of the last start; kept after a stop for statistics and dump.
    engine: Option<Arc<Engine>>,
    /// Per channel of the last start: the owner's indices while no [`Vchan`] holds them.
    homes: Box<[Mutex<Option<UserCursor>>]>,
    /// The worker of a started device.
    running: Option<ControlThread<()>>,
}

impl std::fmt::Debug for DmaDevice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaDevice")
            .field("name", &self.name)
            .field("conf", &self.conf)
            .field("vchan_confs", &self.vchan_confs)
            .field("started", &self.running.is_some())
            .finish()
    }
}

impl Drop for DmaDevice<'_> {
    fn drop(&mut self) {
        // The worker must be gone before the borrow of the EAL ends (see `MemoryRef`).
        let _ = self.stop();
    }
}

impl<'eal> DmaDevice<'eal> {
    /// A stopped, unconfigured device named `name` on `eal`'s memory. `EINVAL` for an empty
    /// name or one longer than [`DEVICE_NAME_MAX`] bytes.
    pub fn create(eal: &'eal Eal, name: &str) -> Result<DmaDevice<'eal>, DmaError> {
        if name.is_empty() || name.len() > DEVICE_NAME_MAX || name.contains('\0') {
            return Err(DmaError::invalid(format!(
                "device name {name:?}: 1 to {DEVICE_NAME_MAX} bytes, no NUL"
            )));
        }
        Ok(DmaDevice {
            eal,
            name: name.to_owned(),
            conf: None,
            vchan_confs: Vec::new(),
            engine: None,
            homes: Box::new([]),
            running: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The EAL whose memory the device reaches.
    pub fn eal(&self) -> &'eal Eal {
        self.eal
    }

    /// Whether the device is started.
    pub fn is_started(&self) -> bool {
        self.running.is_some()
    }

    /// What the device is and can do (`rte_dma_info_get`).
    pub fn info(&self) -> DmaInfo {
        DmaInfo {
            name: self.name.clone(),
            capabilities: SOFTWARE_CAPABILITIES,
            max_vchans: MAX_VCHANS,
            max_desc: MAX_DESC,
            min_desc: MIN_DESC,
            max_sges: 0,
            // The worker runs on the control CPUs, which may span nodes.
            socket: Socket::Any,
            nb_vchans: self.conf.map_or(0, |c| c.nb_vchans),
        }
    }

    /// Sets the number of channels (`rte_dma_configure`); every channel must then be set up
    /// again. `EBUSY` on a started device, `EINVAL` for a bad configuration.
    pub fn configure(&mut self, conf: DmaConf) -> Result<(), DmaError> {
        self.refuse_if_started("configure")?;
        conf.check()?;
        self.conf = Some(conf);
        self.vchan_confs = vec![None; usize::from(conf.nb_vchans)];
        Ok(())
    }

    /// Sets up channel `vchan` (`rte_dma_vchan_setup`). `EBUSY` on a started device,
    /// `EINVAL` before `configure`, for a channel past the configuration or a bad set-up.
    pub fn vchan_setup(&mut self, vchan: u16, conf: VchanConf) -> Result<(), DmaError> {
        self.refuse_if_started("set up a channel of")?;
        if self.conf.is_none() {
            return Err(DmaError::invalid(format!(
                "dma device {:?}: set up a channel after configure",
                self.name
            )));
        }
        self.check_vchan(vchan)?;
        conf.check()?;
        self.vchan_confs[usize::from(vchan)] = Some(conf);
        Ok(())
    }

    /// Starts the device (`rte_dma_start`): fresh rings (every ring index starts at 0 again,
    /// statistics at 0) and the worker thread. Starting a started device does nothing.
    /// `EINVAL` before every channel is set up.
    pub fn start(&mut self) -> Result<(), DmaError> {
        if self.running.is_some() {
            return Ok(());
        }
        if self.conf.is_none() {
            return Err(DmaError::invalid(format!(
                "dma device {:?}: start after configure",
                self.name
            )));
        }
        let nb_descs = self
            .vchan_confs
            .iter()
            .enumerate()
            .map(|(i, conf)| {
                conf.map(|c| c.nb_desc).ok_or_else(|| {
                    DmaError::invalid(format!(
                        "dma device {:?}: vchan {i} is not set up",
                        self.name
                    ))
                })
            })
            .collect::<Result<Vec<u16>, DmaError>>()?;

        let engine = Arc::new(Engine::new(&nb_descs, 0));
        let mut copier = SoftwareCopier::new(self.eal.memory());
        let worker_engine = Arc::clone(&engine);
        let worker = self
            .eal
            .lcore_threads()
            .create_control_thread(WORKER_THREAD_NAME, move || {
                worker_engine.run_worker(&mut copier, 0)
            })?;
        self.homes = nb_descs
            .iter()
            .map(|_| Mutex::new(Some(UserCursor::at(0))))
            .collect();
        self.engine = Some(engine);
        self.running = Some(worker);
        Ok(())
    }

    /// Stops the device (`rte_dma_stop`): the worker finishes every submitted operation and
    /// ends, so afterwards the device touches no memory. Operations queued but not submitted
    /// are dropped. Stopping a stopped device does nothing.
    pub fn stop(&mut self) -> Result<(), DmaError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        if let Some(engine) = &self.engine {
            engine.request_stop();
        }
        running.join().map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            DmaError::Lcore(LcoreError::Panicked {
                lcore: LCORE_ID_ANY,
                message: format!("dma device {:?} worker: {message}", self.name),
            })
        })
    }

    /// Stops the device for good and frees it (`rte_dma_close`).
    pub fn close(mut self) -> Result<(), DmaError> {
        self.stop()
    }

    /// Takes channel `vchan`'s data path. `EINVAL` when the device is not started or has no
    /// such channel, `EBUSY` while another [`Vchan`] holds it.
    pub fn vchan(&self, vchan: u16) -> Result<Vchan<'_>, DmaError> {
        let engine = match (&self.running, &self.engine) {
            (Some(_), Some(engine)) => engine,
            _ => {
                return Err(DmaError::invalid(format!(
                    "dma device {:?} is not started",
                    self.name
                )))
            }
        };
        self.check_vchan(vchan)?;
        let i = usize::from(vchan);
        let home = &self.homes[i];
        let cursor = home
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| {
                DmaError::busy(format!(
                    "dma device {:?}: vchan {vchan} is held by another owner",
                    self.name
                ))
            })?;
        Ok(Vchan::new(
            &engine.vchans[i],
            &engine.doorbell,
            home,
            cursor,
            vchan,
            self.eal,
        ))
    }

    /// Channel `vchan`'s statistics since the last start or reset (`rte_dma_stats_get`).
    pub fn stats(&self, vchan: u16) -> Result<DmaStats, DmaError> {
        self.check_vchan(vchan)?;
        Ok(self
            .engine
            .as_ref()
            .and_then(|e| e.vchans.get(usize::from(vchan)))
            .map_or_else(DmaStats::default, |v| v.counters.get()))
    }

    /// Every channel's statistics summed (`RTE_DMA_ALL_VCHAN`).
    pub fn stats_total(&self) -> DmaStats {
        self.engine.as_ref().map_or_else(DmaStats::default, |e| {
            e.vchans
                .iter()
                .fold(DmaStats::default(), |sum, v| sum.plus(v.counters.get()))
        })
    }

    /// Sets channel `vchan`'s statistics to 0 (`rte_dma_stats_reset`).
    pub fn stats_reset(&self, vchan: u16) -> Result<(), DmaError> {
        self.check_vchan(vchan)?;
        if let Some(v) = self
            .engine
            .as_ref()
            .and_then(|e| e.vchans.get(usize::from(vchan)))
        {
            v.counters.reset();
        }
        Ok(())
    }

    /// Sets every channel's statistics to 0.
    pub fn stats_reset_all(&self) {
        if let Some(engine) = &self.engine {
            engine.vchans.iter().for_each(|v| v.counters.reset());
        }
    }

    /// Whether channel `vchan` has submitted work left (`rte_dma_vchan_status`).
    pub fn vchan_status(&self, vchan: u16) -> Result<VchanStatus, DmaError> {
        self.check_vchan(vchan)?;
        let busy = self
            .engine
            .as_ref()
            .and_then(|e| e.vchans.get(usize::from(vchan)))
            .is_some_and(|v| !v.ring.is_idle());
        Ok(if busy && self.running.is_some() {
            VchanStatus::Active
        } else {
            VchanStatus::Idle
        })
    }

    /// The device's state in words (`rte_dma_dump`).
    pub fn dump(&self) -> String {
        let info = self.info();
        let mut out = String::new();
        let _ = writeln!(out, "dma device {:?}", info.name);
        let _ = writeln!(
            out,
            "  state: {}",
            if self.running.is_some() {
                "started"
            } else if self.conf.is_some() {
                "configured, stopped"
            } else {
                "not configured"
            }
        );
        let _ = writeln!(out, "  capabilities: {:?}", info.capabilities);
        let _ = writeln!(
            out,
            "  max_vchans: {}, desc: {}..={}, nb_vchans: {}",
            info.max_vchans, info.min_desc, info.max_desc, info.nb_vchans
        );
        for (i, conf) in self.vchan_confs.iter().enumerate() {
            let Some(conf) = conf else {
                let _ = writeln!(out, "  vchan {i}: not set up");
                continue;
            };
            let _ = write!(
                out,
                "  vchan {i}: {:?}, nb_desc {}",
                conf.direction, conf.nb_desc
            );
            if let Some(v) = self.engine.as_ref().and_then(|e| e.vchans.get(i)) {
                let (submitted, done) = v.ring.shared_indices();
                let stats = v.counters.get();
                let _ = write!(
                    out,
                    ", ring {} slots, submitted index {submitted}, done index {done}, \
                     stats: submitted {} completed {} errors {}",
                    v.ring.nb_desc(),
                    stats.submitted,
                    stats.completed,
                    stats.errors
                );
            }
            let _ = writeln!(out);
        }
        out
    }

    fn refuse_if_started(&self, what: &str) -> Result<(), DmaError> {
        if self.running.is_some() {
            return Err(DmaError::busy(format!(
                "dma device {:?} is started: stop it to {what} it",
                self.name
            )));
        }
        Ok(())
    }

    fn check_vchan(&self, vchan: u16) -> Result<(), DmaError> {
        let configured = self.conf.map_or(0, |c| c.nb_vchans);
        if vchan >= configured {
            return Err(DmaError::invalid(format!(
                "dma device {:?} has {configured} vchans, no vchan {vchan}",
                self.name
            )));
        }
        Ok(())
    }
}
