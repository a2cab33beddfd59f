//! EAL command-line options: DPDK 22.11's memory- and lcore-related flags, parsed,
//! cross-checked and printed back.
//!
//! Three ways lead to the same [`EalOptions`]:
//!
//! - [`EalOptions::parse`] reads an `argv` the way `rte_eal_init` does (both `-l0-3` and
//!   `-l 0-3`, both `--lcores=..` and `--lcores ..`), stops at `--` and hands back the
//!   application's arguments;
//! - [`EalOptions::builder`] sets the same options with types instead of strings;
//! - [`EalOptions::to_args`] prints options back as arguments that parse to an equal value,
//!   which is how a primary re-executes itself as a secondary.
//!
//! Parse and build both end in the same checks (`validate.rs`): the value checks and the
//! option-combination rules of DPDK's `eal_check_common_options`. Checks that need the
//! machine (which CPUs exist, where hugetlbfs is mounted) are separate, in
//! [`EalOptions::validate`], so options can be built and tested anywhere.
//!
//! Where dpmem departs from DPDK it does so by refusing something DPDK tolerates, never the
//! other way round; each such place says so in its documentation.
//!
//! DPDK's options for what dpmem does not have — devices, drivers, logging, tracing
//! (`-n`, `-a`, `--log-level`, `--no-pci`, ...) — are accepted with their values
//! checked, kept in [`EalOptions::ignored`] and reported by [`EalOptions::warnings`], so a DPDK
//! command line runs unchanged (`ignored.rs`); the few whose meaning dpmem cannot honour are
//! refused with the reason.

mod builder;
mod error;
mod ignored;
mod lcores;
mod numbers;
mod parse;
mod to_args;
mod validate;

use std::collections::BTreeSet;
use std::path::PathBuf;

pub use builder::EalOptionsBuilder;
pub use error::OptionsError;
pub use ignored::IgnoredOption;
pub use lcores::{LcoreMap, MAX_CPU, MAX_LCORE};

/// Most NUMA nodes `--socket-mem` / `--socket-limit` may name (`RTE_MAX_NUMA_NODES`).
pub const MAX_NUMA_NODES: usize = 32;

/// Hugepage file prefix used when `--file-prefix` is not given.
pub const DEFAULT_FILE_PREFIX: &str = "dpmem";

/// Longest `--file-prefix`: it names a directory and starts every hugepage file name, and the
/// shared configuration records it in 64 bytes.
pub const MAX_FILE_PREFIX_LEN: usize = 63;

/// DPDK rounds `--base-virtaddr` up to this (16 MiB, the largest common hugepage
/// alignment need: POWER's smallest hugepage), so dpmem stores the rounded address.
pub const BASE_VIRTADDR_ALIGN: u64 = 16 << 20;

/// When hugepage backing files are removed (`--huge-unlink`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HugeUnlink {
    /// Remove files left by an earlier run before reusing them; keep the files of pages
    /// in use, so secondaries can map them (DPDK's default, `--huge-unlink=existing`).
    #[default]
    Existing,
    /// Remove each file right after mapping it: no leftovers after a crash, but no
    /// secondary processes either. Bare `--huge-unlink` means this, as in DPDK.
    Always,
    /// Never remove files and reuse their content as is (`--huge-unlink=never`): faster
    /// restarts, but old data may leak into new allocations.
    Never,
}

impl HugeUnlink {
    /// The spelling after `--huge-unlink=`.
    pub fn as_str(self) -> &'static str {
        match self {
            HugeUnlink::Existing => "existing",
            HugeUnlink::Always => "always",
            HugeUnlink::Never => "never",
        }
    }
}

/// An explicit `--iova-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IovaModeRequest {
    /// `--iova-mode=pa`: device addresses are physical addresses.
    Pa,
    /// `--iova-mode=va`: device addresses are virtual addresses.
    Va,
}

impl IovaModeRequest {
    /// The spelling after `--iova-mode=`.
    pub fn as_str(self) -> &'static str {
        match self {
            IovaModeRequest::Pa => "pa",
            IovaModeRequest::Va => "va",
        }
    }
}

/// `--proc-type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ProcType {
    /// Owns the shared configuration and the hugepages (the default).
    #[default]
    Primary,
    /// Attaches to a running primary's memory at the same addresses.
    Secondary,
    /// Secondary if a primary with the same file prefix runs, else primary.
    Auto,
}

impl ProcType {
    /// The spelling after `--proc-type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcType::Primary => "primary",
            ProcType::Secondary => "secondary",
            ProcType::Auto => "auto",
        }
    }
}

/// The EAL options dpmem understands, as given (defaults filled in, nothing derived).
///
/// Build one with [`EalOptions::parse`] or [`EalOptions::builder`]; both run the same
/// checks. [`EalOptions::default`] is what an empty command line gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EalOptions {
    /// Lcores and their CPUs from `-l`, `-c` or `--lcores`; `None` when none was given,
    /// which later means every CPU the process may run on.
    pub lcores: Option<LcoreMap>,
    /// `--main-lcore`; `None` means the lowest lcore id.
    pub main_lcore: Option<u32>,
    /// `-m`: megabytes to preallocate, spread over sockets.
    pub memory_mb: Option<u64>,
    /// `--socket-mem`: megabytes to preallocate per socket (index = socket id).
    pub socket_mem_mb: Option<Vec<u64>>,
    /// `--socket-limit`: most megabytes per socket (index = socket id, 0 = no limit).
    pub socket_limit_mb: Option<Vec<u64>>,
    /// `--legacy-mem`: map all memory at start, never grow or shrink.
    pub legacy_mem: bool,
    /// `--in-memory`: no shared configuration and no files in hugetlbfs.
    pub in_memory: bool,
    /// `--single-file-segments`: one backing file per memseg list instead of per page.
    pub single_file_segments: bool,
    /// `--huge-dir`: the hugetlbfs mount (or a directory inside one) to use.
    pub huge_dir: Option<PathBuf>,
    /// `--file-prefix`: prefix of hugepage files and runtime files; [`DEFAULT_FILE_PREFIX`]
    /// unless given.
    pub file_prefix: String,
    /// `--huge-unlink` as given ([`HugeUnlink::Existing`] when absent). `--in-memory`
    /// behaves as `Always` without changing this field: see
    /// [`EalOptions::effective_huge_unlink`].
    pub huge_unlink: HugeUnlink,
    /// Whether `--huge-unlink` appeared at all (with or without a value).
    pub huge_unlink_given: bool,
    /// `--no-huge`: anonymous 4 KiB pages instead of hugepages (implies legacy memory).
    pub no_huge: bool,
    /// `--iova-mode`; `None` lets EAL choose.
    pub iova_mode: Option<IovaModeRequest>,
    /// `--match-allocations`: free hugepages exactly as they were allocated.
    pub match_allocations: bool,
    /// `--proc-type`.
    pub proc_type: ProcType,
    /// `--base-virtaddr`, rounded up to [`BASE_VIRTADDR_ALIGN`] as DPDK does.
    pub base_virtaddr: Option<u64>,
    /// `--huge-worker-stack[=KiB]`: `Some(None)` is the bare flag (system default stack
    /// size), `Some(Some(kib))` an explicit size.
    pub huge_worker_stack_kb: Option<Option<u64>>,
    /// `--no-telemetry`: no telemetry socket ([`crate::telemetry`]). As in DPDK, `--telemetry`
    /// asks for the default (a socket) and does not undo a `--no-telemetry` given anywhere.
    pub no_telemetry: bool,
    /// DPDK options accepted without effect (devices, logging, tracing, ...), in the order
    /// given; see [`EalOptions::warnings`].
    pub ignored: Vec<IgnoredOption>,
}

impl Default for EalOptions {
    fn default() -> Self {
        EalOptions {
            lcores: None,
            main_lcore: None,
            memory_mb: None,
            socket_mem_mb: None,
            socket_limit_mb: None,
            legacy_mem: false,
            in_memory: false,
            single_file_segments: false,
            huge_dir: None,
            file_prefix: DEFAULT_FILE_PREFIX.to_owned(),
            huge_unlink: HugeUnlink::Existing,
            huge_unlink_given: false,
            no_huge: false,
            iova_mode: None,
            match_allocations: false,
            proc_type: ProcType::Primary,
            base_virtaddr: None,
            huge_worker_stack_kb: None,
            no_telemetry: false,
            ignored: Vec::new(),
        }
    }
}

/// The facts about the machine that [`EalOptions::validate`] checks against.
///
/// Collected by `dpmem-sys` on a real machine; written by hand in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs this process may run on (its affinity mask ∩ online CPUs).
    pub cpus: BTreeSet<u32>,
    /// Mount points of hugetlbfs file systems.
    pub hugetlbfs_mounts: Vec<PathBuf>,
}

impl EalOptions {
    /// Parses an `argv`: `args[0]` is the program name, EAL options follow, and everything
    /// after a `--` belongs to the application and is returned (without the `--`).
    ///
    /// Unknown options, stray words before `--`, bad values and forbidden combinations are
    /// errors. DPDK options that mean nothing to dpmem (`-n 4`, `-a 0000:01:00.0`,
    /// `--log-level=8`, `--no-pci`, ...) are accepted into [`EalOptions::ignored`], their
    /// values checked as DPDK checks them; those whose meaning dpmem cannot honour (`-s`,
    /// `--no-shconf`, ...) are [`OptionsError::Unsupported`]. Long options take `--opt=value` or `--opt value`; short ones `-l0-3` or
    /// `-l 0-3`. `--huge-unlink` and `--huge-worker-stack` take a value only after `=`, as
    /// with DPDK's getopt. A repeated option replaces the earlier value, except `-l`, `-c`
    /// and `--lcores`, of which only one may appear, once (as in DPDK).
    pub fn parse<I, S>(args: I) -> Result<(EalOptions, Vec<String>), OptionsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        parse::parse(args)
    }

    /// A typed builder; [`EalOptionsBuilder::build`] runs the same checks as `parse`.
    pub fn builder() -> EalOptionsBuilder {
        EalOptionsBuilder::default()
    }

    /// Checks that need the machine: every lcore's CPUs exist and are usable, the main
    /// lcore is among the lcores (the default set being every usable CPU below
    /// [`MAX_LCORE`]), and `--huge-dir` is a hugetlbfs mount or lies inside one.
    ///
    /// The mount check is lexical (`.` and `..` are folded, symlinks are not followed), and
    /// is skipped with `--no-huge`, which never touches hugetlbfs.
    pub fn validate(&self, host: &HostFacts) -> Result<(), OptionsError> {
        validate::check_host(self, host)
    }

    /// Arguments (without a program name) that [`EalOptions::parse`] turns back into an
    /// equal value; defaults are left out.
    ///
    /// A `--huge-dir` that is not valid UTF-8 is printed lossily.
    pub fn to_args(&self) -> Vec<String> {
        to_args::to_args(self)
    }

    /// One line per ignored DPDK option, saying what is ignored and why
    /// (`EAL option -n 4 ignored: ...`). [`Eal::init`](crate::Eal::init) prints them to stderr.
    pub fn warnings(&self) -> Vec<String> {
        self.ignored.iter().map(IgnoredOption::warning).collect()
    }

    /// The unlink policy in force: `--in-memory` keeps no files, so it behaves as
    /// [`HugeUnlink::Always`] whatever `--huge-unlink` says.
    pub fn effective_huge_unlink(&self) -> HugeUnlink {
        if self.in_memory {
            HugeUnlink::Always
        } else {
            self.huge_unlink
        }
    }

    /// Whether memory is laid out statically: `--legacy-mem`, or `--no-huge`, which DPDK
    /// always runs in legacy mode.
    pub fn effective_legacy_mem(&self) -> bool {
        self.legacy_mem || self.no_huge
    }

    /// Whether a shared configuration file exists for secondaries (not with `--in-memory`).
    pub fn has_shared_config(&self) -> bool {
        !self.in_memory
    }
}
