//! Typed construction of [`EalOptions`] with the command line's meaning and checks.

use std::path::PathBuf;

use super::error::OptionsError;
use super::ignored::{self, IgnoredOption};
use super::lcores::{parse_corelist, parse_coremask, parse_lcores, LcoreMap};
use super::validate::check_options;
use super::{EalOptions, HugeUnlink, IovaModeRequest, ProcType, BASE_VIRTADDR_ALIGN};

/// Builder for [`EalOptions`]; each method matches one command-line option.
///
/// Setting the lcore set twice (through any of [`lcores`](Self::lcores),
/// [`corelist`](Self::corelist), [`coremask`](Self::coremask),
/// [`lcore_map`](Self::lcore_map)) is refused by [`build`](Self::build), as the command
/// line refuses `-l` with `-c`. All other setters replace earlier values.
#[derive(Debug, Clone, Default)]
pub struct EalOptionsBuilder {
    opts: EalOptions,
    /// Option names the lcore set was given through, in order.
    lcore_sources: Vec<&'static str>,
}

impl EalOptionsBuilder {
    /// `--lcores`: the full lcore-to-CPU grammar (`"1,2@(5-7),(0,6)"`).
    pub fn lcores(self, spec: &str) -> Result<Self, OptionsError> {
        let map = parse_lcores("--lcores", spec)?;
        Ok(self.with_lcores("--lcores", map))
    }

    /// `-l`: a core list (`"0-3,5"`), lcore *i* on CPU *i*.
    pub fn corelist(self, list: &str) -> Result<Self, OptionsError> {
        let map = parse_corelist("-l", list)?;
        Ok(self.with_lcores("-l", map))
    }

    /// `-c`: a hexadecimal core mask (`"0xf"`), lcore *i* on CPU *i*.
    pub fn coremask(self, mask: &str) -> Result<Self, OptionsError> {
        let map = parse_coremask("-c", mask)?;
        Ok(self.with_lcores("-c", map))
    }

    /// An lcore map built in code (same meaning as `--lcores`).
    pub fn lcore_map(self, map: LcoreMap) -> Self {
        self.with_lcores("--lcores", map)
    }

    fn with_lcores(mut self, source: &'static str, map: LcoreMap) -> Self {
        self.lcore_sources.push(source);
        self.opts.lcores = Some(map);
        self
    }

    /// `--main-lcore`.
    pub fn main_lcore(mut self, lcore: u32) -> Self {
        self.opts.main_lcore = Some(lcore);
        self
    }

    /// `-m`: megabytes to preallocate.
    pub fn memory_mb(mut self, mb: u64) -> Self {
        self.opts.memory_mb = Some(mb);
        self
    }

    /// `--socket-mem`: megabytes per socket, index = socket id.
    pub fn socket_mem_mb(mut self, per_socket: Vec<u64>) -> Self {
        self.opts.socket_mem_mb = Some(per_socket);
        self
    }

    /// `--socket-limit`: most megabytes per socket, 0 = no limit.
    pub fn socket_limit_mb(mut self, per_socket: Vec<u64>) -> Self {
        self.opts.socket_limit_mb = Some(per_socket);
        self
    }

    /// `--legacy-mem`.
    pub fn legacy_mem(mut self, on: bool) -> Self {
        self.opts.legacy_mem = on;
        self
    }

    /// `--in-memory`.
    pub fn in_memory(mut self, on: bool) -> Self {
        self.opts.in_memory = on;
        self
    }

    /// `--single-file-segments`.
    pub fn single_file_segments(mut self, on: bool) -> Self {
        self.opts.single_file_segments = on;
        self
    }

    /// `--huge-dir`.
    pub fn huge_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.huge_dir = Some(dir.into());
        self
    }

    /// `--file-prefix`.
    pub fn file_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.opts.file_prefix = prefix.into();
        self
    }

    /// `--huge-unlink=<policy>` (marks the option as given).
    pub fn huge_unlink(mut self, policy: HugeUnlink) -> Self {
        self.opts.huge_unlink = policy;
        self.opts.huge_unlink_given = true;
        self
    }

    /// `--no-huge`.
    pub fn no_huge(mut self, on: bool) -> Self {
        self.opts.no_huge = on;
        self
    }

    /// `--iova-mode`.
    pub fn iova_mode(mut self, mode: IovaModeRequest) -> Self {
        self.opts.iova_mode = Some(mode);
        self
    }

    /// `--match-allocations`.
    pub fn match_allocations(mut self, on: bool) -> Self {
        self.opts.match_allocations = on;
        self
    }

    /// `--proc-type`.
    pub fn proc_type(mut self, proc_type: ProcType) -> Self {
        self.opts.proc_type = proc_type;
        self
    }

    /// `--base-virtaddr`; rounded up to 16 MiB by [`build`](Self::build), as the parser does.
    pub fn base_virtaddr(mut self, addr: u64) -> Self {
        self.opts.base_virtaddr = Some(addr);
        self
    }

    /// `--huge-worker-stack[=KiB]`: `None` for the system's default stack size.
    pub fn huge_worker_stack_kb(mut self, kib: Option<u64>) -> Self {
        self.opts.huge_worker_stack_kb = Some(kib);
        self
    }

    /// `--no-telemetry`: no telemetry socket.
    pub fn no_telemetry(mut self, on: bool) -> Self {
        self.opts.no_telemetry = on;
        self
    }

    /// A DPDK option dpmem accepts without acting on (`"-n"`, `Some("4")`; `"--no-pci"`,
    /// `None`), as the command line gives it: kept in [`EalOptions::ignored`] and reported by
    /// [`EalOptions::warnings`]. [`build`](Self::build) checks the value as the parser does;
    /// an option that is not one of these is refused here.
    pub fn ignored_option(
        mut self,
        option: &str,
        value: Option<&str>,
    ) -> Result<Self, OptionsError> {
        if ignored::find(option).is_none() {
            return Err(ignored::refusal(option)
                .unwrap_or_else(|| OptionsError::UnknownOption(option.to_owned())));
        }
        self.opts.ignored.push(IgnoredOption {
            option: option.to_owned(),
            value: value.map(str::to_owned),
        });
        Ok(self)
    }

    /// Runs the checks [`EalOptions::parse`] runs and returns the options.
    pub fn build(self) -> Result<EalOptions, OptionsError> {
        let EalOptionsBuilder {
            mut opts,
            lcore_sources,
        } = self;
        if let [first, second, ..] = lcore_sources[..] {
            return Err(if first == second {
                OptionsError::Repeated {
                    option: second,
                    reason: "the lcore set may be given only once",
                }
            } else {
                OptionsError::Conflict {
                    first: second,
                    second: first,
                    reason: "-l, -c and --lcores each give the whole lcore set; use one",
                }
            });
        }
        check_options(&opts, lcore_sources.first().copied().unwrap_or("--lcores"))?;
        // Checked above that the rounding cannot overflow.
        opts.base_virtaddr = opts
            .base_virtaddr
            .and_then(|a| a.checked_next_multiple_of(BASE_VIRTADDR_ALIGN));
        Ok(opts)
    }
}
