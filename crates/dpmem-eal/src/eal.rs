//! The EAL instance: options in, memory out.
//!
//! [`Eal::init`] takes DPDK's command line, discovers the machine, decides whether this process
//! is the primary or a secondary, and brings the memory up in the mode the options ask for.
//! Dropping the [`Eal`] tears it down: the telemetry server and the inter-process channel
//! stopped, pages unmapped, files removed as the mode says, address space released, the configuration removed (primary) or
//! unmapped (secondary).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::cpu_topology::{self, CpuTopology};
use dpmem_sys::hugepage_info::{self, HugepageInfo};
use dpmem_sys::mounts;
use dpmem_sys::root::SysRoot;

use crate::error::EalError;
use crate::iova::{self, IovaMode};
use crate::ipc::{Ipc, IpcError, IpcService};
use crate::lcore::{LcoreSetup, LcoreThreads};
use crate::limits::MemsegLimits;
use crate::memory::PrimarySetup;
use crate::memory::{Memory, MemoryMode, MemorySettings, ProcessRole};
use crate::memseg::Memseg;
use crate::memseg_list::MemsegListInfo;
use crate::options::{EalOptions, HostFacts, HugeUnlink, IovaModeRequest, LcoreMap, ProcType};
use crate::runtime_dir;
use crate::shared_config::ConfigMapping;
use crate::socket::Socket;
use crate::telemetry::{self, TelemetryServer};

/// Memory mapped with `--no-huge` when `-m` does not say (DPDK's `MEMSIZE_IF_NO_HUGE_PAGE`).
pub const NO_HUGE_DEFAULT_MB: u64 = 64;

/// Settings of an EAL instance beyond DPDK's command line.
#[derive(Debug, Clone)]
pub struct EalSettings {
    /// Limits on memseg lists (DPDK's build-time `RTE_MAX_MEMSEG_*`).
    pub limits: MemsegLimits,
    /// Where sysfs and procfs are read from (tests present fake machines).
    pub sys_root: SysRoot,
    /// Slots of the memzone table (DPDK's `RTE_MAX_MEMZONE`).
    pub max_memzones: u32,
    /// Segments (pages) all external memory together may have: registered areas and the memory
    /// of named heaps. Their metadata lives in the shared configuration (57 bytes a segment,
    /// faulted in only when used).
    pub external_segments: u64,
}

impl Default for EalSettings {
    fn default() -> Self {
        Self {
            limits: MemsegLimits::default(),
            sys_root: SysRoot::host(),
            max_memzones: crate::memzone::DEFAULT_MAX_MEMZONES,
            external_segments: crate::memory::DEFAULT_EXTERNAL_SEGMENTS,
        }
    }
}

/// An initialised EAL. Several may coexist in one process when their file prefixes differ.
#[derive(Debug)]
pub struct Eal {
    /// The telemetry server, stopped (thread joined, socket removed) before anything else
    /// goes. `None` with `--no-telemetry`, and on the handle the server lends to its command
    /// handlers.
    telemetry: Option<TelemetryServer>,
    /// Everything else, shared with that lent handle; torn down when the application's handle
    /// drops, after the server (the last other holder) is gone.
    core: Arc<EalCore>,
}

#[derive(Debug)]
struct EalCore {
    /// The inter-process channel (none with `--in-memory`); stopped in `Drop` first, so no
    /// action runs while the rest goes.
    ipc: Option<IpcService>,
    /// The primary's server of secondaries' page requests; joined right after the channel
    /// stops (the channel's actions hold its queue).
    hotplug_worker: Option<crate::hotplug_channel::HotplugWorker>,
    /// Worker threads and lcore ids; stopped in `Drop` before `memory` goes (huge stacks).
    lcore_threads: LcoreThreads,
    /// Shared with the hotplug actions and worker, which hold it weakly.
    memory: Arc<Memory>,
    options: EalOptions,
    /// The command line up to `--`, program name first (DPDK's `/eal/params`).
    eal_args: Vec<String>,
    app_args: Vec<String>,
    lcores: LcoreMap,
    main_lcore: u32,
    hugepages: HugepageInfo,
    runtime_dir: Option<runtime_dir::Cleanup>,
}

impl Eal {
    /// Initialises from DPDK's command-line form: `args[0]` is the program name, EAL options
    /// follow, and the application's own arguments come after `--` (see [`Eal::app_args`]).
    ///
    /// DPDK options that mean nothing to dpmem (`-n 4`, `-a 0000:01:00.0`, `--no-pci`, ...) are
    /// accepted and each printed once as a warning on stderr; `options().warnings()` lists them.
    pub fn init<I, S>(args: I) -> Result<Eal, EalError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let (options, app_args) = EalOptions::parse(&args)?;
        let eal_args = args.into_iter().take_while(|a| a != "--").collect();
        Self::start(options, EalSettings::default(), eal_args, app_args)
    }

    /// Initialises from typed options (see [`EalOptions::builder`]).
    ///
    /// DPDK options the options carry without effect ([`EalOptions::ignored`]) are reported
    /// once, one line each on stderr, before anything else happens.
    pub fn init_with(options: EalOptions, settings: EalSettings) -> Result<Eal, EalError> {
        // What telemetry reports as the command line: this program, and the options as
        // arguments that parse to them.
        let program = std::env::args()
            .next()
            .unwrap_or_else(|| "dpmem".to_owned());
        let eal_args = std::iter::once(program).chain(options.to_args()).collect();
        Self::start(options, settings, eal_args, Vec::new())
    }

    fn start(
        options: EalOptions,
        settings: EalSettings,
        eal_args: Vec<String>,
        app_args: Vec<String>,
    ) -> Result<Eal, EalError> {
        for warning in options.warnings() {
            eprintln!("dpmem: warning: {warning}");
        }
        let root = &settings.sys_root;
        let topology =
            cpu_topology::discover(root).map_err(|e| EalError::sys("read CPU topology", e))?;
        let hugepages = hugepage_info::discover(root)
            .map_err(|e| EalError::sys("read hugepage information", e))?;
        let mounts =
            mounts::hugetlbfs_mounts(root).map_err(|e| EalError::sys("read /proc/mounts", e))?;
        let mut cpus: std::collections::BTreeSet<u32> =
            topology.cpus.iter().map(|c| c.cpu).collect();
        if cpus.is_empty() {
            cpus =
                (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect();
        }
        // On the real machine only the CPUs of the caller's affinity are usable (a fake
        // root's CPUs are imaginary, so its topology is taken as is).
        let original_affinity = if root.is_host() {
            let allowed = crate::lcore::thread_local::original_affinity()
                .map_err(|e| EalError::sys("read thread affinity", e))?;
            cpus.retain(|c| allowed.contains(c));
            allowed
        } else {
            cpus.clone()
        };
        let host = HostFacts {
            cpus: cpus.clone(),
            hugetlbfs_mounts: mounts.iter().map(|m| m.mount_point.clone()).collect(),
        };
        options.validate(&host)?;
        let lcores = match &options.lcores {
            Some(map) => map.clone(),
            None => LcoreMap::identity(
                cpus.iter()
                    .copied()
                    .filter(|&c| c < crate::options::MAX_LCORE),
            )?,
        };
        let main_lcore = options
            .main_lcore
            .or_else(|| lcores.lcore_ids().next())
            .unwrap_or(0);

        let runtime = if options.in_memory {
            None
        } else {
            Some(open_runtime_dir(&options, &mounts)?)
        };
        let role = match &runtime {
            Some((_, None)) => ProcessRole::Secondary,
            _ => ProcessRole::Primary,
        };

        let runtime_path = runtime.as_ref().map(|(dir, _)| dir.path().to_path_buf());
        let memory = match (role, &runtime) {
            (ProcessRole::Secondary, Some((dir, _))) => {
                ConfigMapping::attach(dir).and_then(Memory::attach_secondary)
            }
            _ => {
                let config_file =
                    runtime.and_then(|(dir, file)| file.map(|f| (f, dir.config_path())));
                primary_setup(
                    &options,
                    &settings,
                    &hugepages,
                    &mounts,
                    &topology,
                    &lcores,
                    config_file,
                )
                .and_then(Memory::create_primary)
                // The heaps take the memory mapped at start-up before anyone can see them.
                .and_then(|memory| crate::heap::init_primary(&memory).map(|()| memory))
                .inspect(Memory::publish)
            }
        };
        let memory = match memory {
            Ok(m) => m,
            Err(e) => {
                // A failed start leaves nothing behind: the primary's lock file goes (the
                // mapping that owned it is already dropped) and so does an empty directory. A
                // secondary created neither, so it removes neither.
                if let (Some(dir), ProcessRole::Primary) = (runtime_path, role) {
                    let _ = std::fs::remove_file(dir.join(runtime_dir::CONFIG_FILE));
                    runtime_dir::remove_if_empty(&dir);
                }
                return Err(e);
            }
        };
        let runtime_dir = runtime_path.map(|dir| match role {
            ProcessRole::Primary => {
                let config = dir.join(runtime_dir::CONFIG_FILE);
                runtime_dir::Cleanup::primary(dir, config)
            }
            ProcessRole::Secondary => runtime_dir::Cleanup::secondary(dir),
        });
        // Last, because huge worker stacks come from the memory just brought up.
        let setup = LcoreSetup {
            lcores: &lcores,
            main_lcore,
            topology: &topology,
            pinning: root.is_host(),
            huge_worker_stack_kb: options.huge_worker_stack_kb,
            original_affinity,
        };
        let lcore_threads = match LcoreThreads::start(setup, &memory) {
            Ok(threads) => threads,
            Err(e) => {
                // Memory (and with it the configuration file) goes before the directory.
                drop(memory);
                drop(runtime_dir);
                return Err(e);
            }
        };
        // The channel runs on a control thread and lives in the runtime directory: none with
        // --in-memory, as in DPDK (no directory, so no peer could find it).
        let ipc = match &runtime_dir {
            None => None,
            Some(_) => match start_ipc(&options.file_prefix, &lcore_threads, role) {
                Ok(service) => Some(service),
                Err(e) => {
                    drop(lcore_threads);
                    drop(memory);
                    drop(runtime_dir);
                    return Err(e);
                }
            },
        };
        let memory = Arc::new(memory);
        // From here on pages mapped anywhere are mapped everywhere before the call returns.
        let hotplug_worker = match &ipc {
            None => None,
            Some(service) => {
                match crate::hotplug_channel::start(&lcore_threads, &memory, service.shared()) {
                    Ok(worker) => worker,
                    Err(e) => {
                        drop(ipc);
                        drop(lcore_threads);
                        drop(memory);
                        drop(runtime_dir);
                        return Err(e);
                    }
                }
            }
        };
        let core = Arc::new(EalCore {
            ipc,
            hotplug_worker,
            lcore_threads,
            memory,
            options,
            eal_args,
            app_args,
            lcores,
            main_lcore,
            hugepages,
            runtime_dir,
        });
        // Last, as in DPDK: it serves what is up. On failure `core` drops here, tearing down
        // what was started.
        let telemetry = if core.options.no_telemetry {
            None
        } else {
            let lent = Eal {
                telemetry: None,
                core: Arc::clone(&core),
            };
            let server =
                telemetry::start_server(&core.lcore_threads, lent, &core.options.file_prefix)?;
            Some(server)
        };
        Ok(Eal { telemetry, core })
    }

    /// The application's arguments (those after `--`).
    pub fn app_args(&self) -> &[String] {
        &self.core.app_args
    }

    /// The EAL's command line: the program name, then the EAL options as given (up to `--`);
    /// for [`Eal::init_with`], the options as [`EalOptions::to_args`] prints them.
    pub fn eal_args(&self) -> &[String] {
        &self.core.eal_args
    }

    pub fn options(&self) -> &EalOptions {
        &self.core.options
    }

    pub fn memory(&self) -> &Memory {
        &self.core.memory
    }

    /// The malloc heaps (DPDK's `rte_malloc` family).
    pub fn heaps(&self) -> crate::heap::Heaps<'_> {
        crate::heap::Heaps::new(&self.core.memory)
    }

    /// The memzones (DPDK's `rte_memzone` family).
    pub fn memzones(&self) -> crate::memzone::Memzones<'_> {
        crate::memzone::Memzones::new(&self.core.memory)
    }

    pub fn lcores(&self) -> &LcoreMap {
        &self.core.lcores
    }

    pub fn main_lcore(&self) -> u32 {
        self.core.main_lcore
    }

    /// Lcore roles, worker threads, launch and thread registration.
    pub fn lcore_threads(&self) -> &LcoreThreads {
        &self.core.lcore_threads
    }

    pub fn process_role(&self) -> ProcessRole {
        self.core.memory.role()
    }

    /// Whether this EAL's primary process is alive: `true` in the primary itself; in a
    /// secondary, whether the process that created the shared configuration still runs (a
    /// process that got its id since does not count). A secondary whose primary died can still
    /// use the memory it has mapped, but nothing can map or unmap pages any more.
    pub fn primary_alive(&self) -> bool {
        self.core.memory.config_mapping().primary_alive()
    }

    pub fn iova_mode(&self) -> IovaMode {
        self.core.memory.iova_mode()
    }

    /// The hugepage picture discovered at initialisation.
    pub fn hugepages(&self) -> &HugepageInfo {
        &self.core.hugepages
    }

    /// The runtime directory (none with `--in-memory`).
    pub fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.core.runtime_dir.as_ref().map(|g| g.path())
    }

    /// The inter-process channel (see [`ipc`](crate::ipc)); refused (`ENOTSUP`) with
    /// `--in-memory`, which has no runtime directory for peers to meet in.
    pub fn ipc(&self) -> Result<&Ipc, IpcError> {
        self.core.ipc.as_ref().map(IpcService::ipc).ok_or_else(|| {
            IpcError::Disabled("--in-memory: no runtime directory, so no peer to talk to".into())
        })
    }

    /// The telemetry socket this EAL serves (see [`telemetry`]); `None`
    /// with `--no-telemetry`, and on the handle telemetry command handlers are given.
    pub fn telemetry_socket(&self) -> Option<&std::path::Path> {
        self.telemetry.as_ref().map(|t| t.path())
    }

    /// Tears the EAL down now (the same as dropping it).
    pub fn cleanup(self) {}

    /// A serialisable picture of the memory layout.
    pub fn layout(&self) -> MemoryLayout {
        let memory = &self.core.memory;
        let lists: Vec<ListLayout> = memory
            .lists()
            .into_iter()
            .map(|info| ListLayout {
                segments: memory.segments(info.index),
                info,
            })
            .collect();
        let mut per_socket: BTreeMap<Socket, u64> = BTreeMap::new();
        // Per-socket totals are dpmem's own memory; external memory is the user's.
        for list in lists.iter().filter(|l| !l.info.external) {
            for seg in &list.segments {
                *per_socket.entry(seg.socket()).or_default() += seg.len() as u64;
            }
        }
        MemoryLayout {
            iova_mode: memory.iova_mode(),
            memory_mode: memory.mode(),
            process_type: memory.role(),
            file_prefix: self.core.options.file_prefix.clone(),
            in_memory: memory.is_in_memory(),
            runtime_dir: self.runtime_dir().map(|p| p.display().to_string()),
            page_sizes: memory.page_sizes(),
            memseg_lists: lists,
            sockets: per_socket
                .into_iter()
                .map(|(socket, bytes)| SocketTotal { socket, bytes })
                .collect(),
        }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // The server holds the other handle on the core: once it is joined, `core` is the last
        // and goes right after this, on this thread.
        drop(self.telemetry.take());
    }
}

impl Drop for EalCore {
    fn drop(&mut self) {
        drop(self.ipc.take());
        drop(self.hotplug_worker.take());
        // Workers may run on hugepage stacks: they end before the memory is unmapped.
        self.lcore_threads.shutdown();
    }
}

/// The memory layout, as `dpmem info` prints it.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MemoryLayout {
    pub iova_mode: IovaMode,
    pub memory_mode: MemoryMode,
    pub process_type: ProcessRole,
    pub file_prefix: String,
    pub in_memory: bool,
    pub runtime_dir: Option<String>,
    pub page_sizes: Vec<u64>,
    pub memseg_lists: Vec<ListLayout>,
    pub sockets: Vec<SocketTotal>,
}

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ListLayout {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub info: MemsegListInfo,
    pub segments: Vec<Memseg>,
}

#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SocketTotal {
    #[cfg_attr(feature = "serde", serde(rename = "socket_id"))]
    pub socket: Socket,
    pub bytes: u64,
}

/// Opens the runtime directory and decides the process's role: the configuration file comes
/// back locked when this process becomes the primary, `None` for a secondary. A secondary
/// creates nothing: with no runtime directory or configuration there is no primary to attach
/// to, and it says so.
fn open_runtime_dir(
    options: &EalOptions,
    mounts: &[mounts::HugetlbfsMount],
) -> Result<(runtime_dir::RuntimeDir, Option<BackingFile>), EalError> {
    let prefix = &options.file_prefix;
    // Where a primary of another user would have left page files of the prefix.
    let huge_dirs = || -> Vec<PathBuf> {
        options
            .huge_dir
            .iter()
            .cloned()
            .chain(mounts.iter().map(|m| m.mount_point.clone()))
            .collect()
    };
    if options.proc_type == ProcType::Secondary {
        let dir = runtime_dir::open_existing(prefix)?
            .ok_or_else(|| crate::no_primary::refusal(prefix, &huge_dirs()))?;
        return Ok((dir, None));
    }
    if options.proc_type == ProcType::Auto && runtime_dir::open_existing(prefix)?.is_none() {
        if let Some(refusal) = crate::no_primary::auto_refusal(prefix, &huge_dirs()) {
            return Err(refusal);
        }
    }
    let dir = runtime_dir::create(prefix)?;
    let lock = match ConfigMapping::try_become_primary(&dir) {
        Ok(lock) => lock,
        Err(e) => {
            runtime_dir::remove_if_empty(dir.path());
            return Err(e);
        }
    };
    match (options.proc_type, lock) {
        (_, Some(file)) => Ok((dir, Some(file))),
        (ProcType::Primary, None) => Err(EalError::Busy(format!(
            "a primary process already runs with file prefix {prefix:?} (use another --file-prefix or --proc-type=secondary)"
        ))),
        (_, None) => Ok((dir, None)),
    }
}

/// Starts the inter-process channel of a process of `role` in the runtime directory of
/// `prefix`, on a control thread of `threads`.
fn start_ipc(
    prefix: &str,
    threads: &LcoreThreads,
    role: ProcessRole,
) -> Result<IpcService, EalError> {
    let dir = runtime_dir::open_existing(prefix)?.ok_or_else(|| EalError::RuntimeDir {
        path: runtime_dir::location(prefix),
        reason: "went away during start-up".into(),
    })?;
    Ok(IpcService::start(threads, dir.into_handle(), role)?)
}

fn primary_setup(
    options: &EalOptions,
    settings: &EalSettings,
    hugepages: &HugepageInfo,
    mounts: &[mounts::HugetlbfsMount],
    topology: &CpuTopology,
    lcores: &LcoreMap,
    config_file: Option<(dpmem_sys::backing_file::BackingFile, PathBuf)>,
) -> Result<PrimarySetup, EalError> {
    let mode = if options.no_huge {
        MemoryMode::NoHuge
    } else if options.legacy_mem {
        MemoryMode::Legacy
    } else {
        MemoryMode::Dynamic
    };
    let iova_mode = choose_iova_mode(options, &settings.sys_root)?;
    let mut sockets: Vec<i32> = hugepages.numa_nodes.iter().map(|&n| n as i32).collect();
    if sockets.is_empty() {
        sockets.push(0);
    }
    let huge_dirs: Vec<(u64, PathBuf)> = if mode == MemoryMode::NoHuge {
        Vec::new()
    } else if options.in_memory {
        // memfds need no mount: every size the kernel has a pool for will do.
        hugepages
            .sizes
            .iter()
            .filter(|s| s.total > 0 || s.free > 0)
            .map(|s| (s.page_size, PathBuf::new()))
            .collect()
    } else if let Some(dir) = &options.huge_dir {
        let mount = mounts::hugetlbfs_mount_containing(&settings.sys_root, dir)
            .map_err(|e| EalError::sys("look up --huge-dir", e))?
            .ok_or_else(|| {
                EalError::InvalidArgument(format!(
                    "--huge-dir {}: not on a hugetlbfs mount",
                    dir.display()
                ))
            })?;
        if let Err(reason) = page_dir_is_private(&settings.sys_root, dir) {
            return Err(EalError::InvalidArgument(format!("--huge-dir {reason}")));
        }
        vec![(mount.page_size, dir.clone())]
    } else {
        let mut dirs: Vec<(u64, PathBuf)> = Vec::new();
        let mut passed_over = Vec::new();
        for m in mounts {
            if dirs.iter().any(|(ps, _)| *ps == m.page_size) {
                continue;
            }
            match page_dir_is_private(&settings.sys_root, &m.mount_point) {
                Ok(()) => dirs.push((m.page_size, m.mount_point.clone())),
                Err(reason) => passed_over.push(reason),
            }
        }
        dirs.sort_by_key(|(ps, _)| *ps);
        if dirs.is_empty() && !passed_over.is_empty() {
            return Err(EalError::NoHugepages {
                reason: format!(
                    "no hugetlbfs mount is safe for page files: {}",
                    passed_over.join("; ")
                ),
            });
        }
        dirs
    };
    if mode != MemoryMode::NoHuge && huge_dirs.is_empty() {
        return Err(EalError::NoHugepages {
            reason: if options.in_memory {
                "the kernel has no hugepage pool of any size".into()
            } else {
                "no hugetlbfs mount found in /proc/mounts".into()
            },
        });
    }
    let page_sizes: Vec<u64> = huge_dirs.iter().map(|(ps, _)| *ps).collect();
    let mb = 1u64 << 20;
    let startup_bytes = if mode == MemoryMode::NoHuge {
        None
    } else if let Some(per_socket) = &options.socket_mem_mb {
        Some(
            per_socket
                .iter()
                .enumerate()
                .map(|(s, m)| (s as i32, m * mb))
                .collect(),
        )
    } else {
        options.memory_mb.map(|m| {
            split_across_sockets(m * mb, &sockets, lcores, topology, hugepages, &page_sizes)
        })
    };
    let socket_limits = options
        .socket_limit_mb
        .as_ref()
        .map(|limits| {
            limits
                .iter()
                .enumerate()
                .filter(|(_, &m)| m > 0)
                .map(|(s, m)| (s as i32, m * mb))
                .collect()
        })
        .unwrap_or_default();
    let memory_settings = MemorySettings {
        mode,
        in_memory: options.in_memory,
        single_file_segments: options.single_file_segments,
        huge_unlink: if options.in_memory {
            HugeUnlink::Always
        } else {
            options.huge_unlink
        },
        match_allocations: options.match_allocations,
        iova_mode,
        file_prefix: options.file_prefix.clone(),
        huge_dirs,
        numa_policy: dpmem_sys::numa::policy_supported(),
        role: ProcessRole::Primary,
    };
    Ok(PrimarySetup {
        settings: memory_settings,
        limits: settings.limits,
        page_sizes,
        sockets,
        base_virtaddr: options.base_virtaddr,
        config_file,
        startup_bytes,
        no_huge_bytes: options.memory_mb.unwrap_or(NO_HUGE_DEFAULT_MB) * mb,
        socket_limits,
        max_memzones: settings.max_memzones,
        external_segments: settings.external_segments,
    })
}

/// Whether page files may go in `dir`: the rule of the runtime directory's anchor (owned by
/// root or by this user, and sticky when others may write to it), since in a directory others
/// may write to without the sticky bit they could rename or remove this process's page files
/// and put their own in their place. Only the host's directories are checked (a fake root's
/// mounts are imaginary).
fn page_dir_is_private(root: &SysRoot, dir: &std::path::Path) -> Result<(), String> {
    if !root.is_host() {
        return Ok(());
    }
    dpmem_sys::dir_handle::DirHandle::open_anchor(dir)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `-m` without `--socket-mem`: memory goes to sockets in proportion to their lcores (DPDK's
/// rule), each share capped by what the node has free, and what no share could take goes to
/// the sockets that still have room, in order.
fn split_across_sockets(
    total: u64,
    sockets: &[i32],
    lcores: &LcoreMap,
    topology: &CpuTopology,
    hugepages: &HugepageInfo,
    page_sizes: &[u64],
) -> Vec<(i32, u64)> {
    if sockets.len() == 1 {
        return vec![(sockets[0], total)];
    }
    let node_of_lcore = |cpus: &std::collections::BTreeSet<u32>| {
        cpus.iter()
            .next()
            .and_then(|c| topology.cpu(*c))
            .map_or(0, |c| c.node as i32)
    };
    let n_lcores = lcores.len().max(1) as u64;
    let free = |s: i32| {
        page_sizes
            .iter()
            .map(|&ps| hugepages.free_on_node(ps, s as u32) * ps)
            .sum::<u64>()
    };
    let mut shares: Vec<(i32, u64)> = sockets
        .iter()
        .map(|&s| {
            let count = lcores
                .iter()
                .filter(|(_, cpus)| node_of_lcore(cpus) == s)
                .count() as u64;
            (s, (total * count / n_lcores).min(free(s)))
        })
        .collect();
    let mut left = total - shares.iter().map(|(_, b)| b).sum::<u64>();
    for (s, bytes) in shares.iter_mut() {
        let extra = (free(*s) - *bytes).min(left);
        *bytes += extra;
        left -= extra;
    }
    if left > 0 {
        // Nobody has room: ask the first socket anyway so start-up reports the shortfall.
        shares[0].1 += left;
    }
    shares
}

fn choose_iova_mode(options: &EalOptions, root: &SysRoot) -> Result<IovaMode, EalError> {
    let pa_available =
        dpmem_sys::process::is_root() && dpmem_sys::pagemap::physical_addresses_available();
    match options.iova_mode {
        Some(IovaModeRequest::Va) => Ok(IovaMode::Va),
        Some(IovaModeRequest::Pa) if options.no_huge => {
            Err(EalError::PhysicalAddressesUnavailable {
                reason:
                    "--no-huge memory is ordinary 4 KiB pages whose physical addresses may change"
                        .into(),
            })
        }
        Some(IovaModeRequest::Pa) if !pa_available => Err(EalError::PhysicalAddressesUnavailable {
            reason: if dpmem_sys::process::is_root() {
                "/proc/self/pagemap hides page frame numbers here".into()
            } else {
                "reading /proc/self/pagemap frame numbers needs root (CAP_SYS_ADMIN)".into()
            },
        }),
        Some(IovaModeRequest::Pa) => Ok(IovaMode::Pa),
        None if options.no_huge => Ok(IovaMode::Va),
        None => {
            let iommu = root
                .read_dir_names("/sys/kernel/iommu_groups")
                .map(|g| !g.is_empty())
                .unwrap_or(false);
            Ok(iova::choose_automatically(pa_available, iommu))
        }
    }
}
