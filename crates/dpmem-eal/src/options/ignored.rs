//! DPDK 22.11's EAL options that mean nothing to dpmem, and those it must refuse.
//!
//! dpmem is DPDK's memory subsystem without its devices, drivers, logging and tracing. A DPDK command line names those too (`-n 4 -a 0000:01:00.0 --log-level=8`), so
//! that such a line runs unchanged, their options are accepted, their values checked as DPDK
//! checks them (a line DPDK refuses is refused here too), and each one is reported as a
//! one-line warning saying what is ignored and why: [`EalOptions::warnings`], printed by
//! [`Eal::init`](crate::Eal::init).
//!
//! Options whose meaning dpmem cannot honour — where ignoring them would change what the
//! program does, such as service cores taking lcores away from the workers — are refused with
//! the reason ([`OptionsError::Unsupported`]).
//!
//! [`EalOptions::warnings`]: super::EalOptions::warnings

use super::error::OptionsError;
use super::numbers::{parse_c_integer, parse_decimal};

/// A DPDK option that dpmem accepted and does not act on, as it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IgnoredOption {
    /// The option as spelled on the command line: `-n`, `-a`, `--allow`, `--log-level`.
    pub option: String,
    /// Its value, for an option that takes one.
    pub value: Option<String>,
}

impl IgnoredOption {
    /// The one-line warning: what is ignored, and why.
    pub fn warning(&self) -> String {
        let reason = find(&self.option).map_or("dpmem does not use it", |spec| spec.reason);
        format!("EAL option {} ignored: {reason}", self.shown(),)
    }

    /// The option and its value as a person reads them: `-n 4`, `--log-level=8`, `--no-pci`.
    pub fn shown(&self) -> String {
        match &self.value {
            None => self.option.clone(),
            Some(v) if self.option.starts_with("--") => format!("{}={v}", self.option),
            Some(v) => format!("{} {v}", self.option),
        }
    }

    /// As command-line arguments that parse back to the same option.
    pub(crate) fn to_args(&self) -> Vec<String> {
        match &self.value {
            None => vec![self.option.clone()],
            Some(v) if self.option.starts_with("--") => vec![format!("{}={v}", self.option)],
            // Attached (`-n4`): a value is never empty, and attached it cannot be taken for an
            // option or for the `--` that ends the EAL's arguments.
            Some(v) => vec![format!("{}{v}", self.option)],
        }
    }
}

/// How DPDK checks an option's value; `Err` gives the reason it is refused.
type ValueCheck = fn(&'static str, &str) -> Result<(), OptionsError>;

/// One ignorable option.
pub(crate) struct IgnoredSpec {
    /// Its spellings: a short `-x` and/or a long `--name`.
    names: &'static [&'static str],
    /// Whether it takes a value (always required in DPDK's table for these options).
    pub takes_value: bool,
    /// DPDK refuses it a second time (the trace options).
    once: bool,
    /// Why dpmem does not act on it.
    reason: &'static str,
    check: ValueCheck,
}

const DEVICES: &str = "dpmem has no device drivers and probes no devices";

/// DPDK 22.11's options that dpmem accepts without acting on them (and `-w`, the allow list of
/// DPDK before 20.11).
const IGNORED: &[IgnoredSpec] = &[
    IgnoredSpec {
        names: &["-n"],
        takes_value: true,
        once: false,
        reason: "memory channels only tune how DPDK spreads mempool objects; dpmem does not",
        check: positive_decimal,
    },
    IgnoredSpec {
        names: &["-r"],
        takes_value: true,
        once: false,
        reason: "memory ranks only tune how DPDK spreads mempool objects; dpmem does not",
        check: memory_ranks,
    },
    IgnoredSpec {
        names: &["-a", "--allow"],
        takes_value: true,
        once: false,
        reason: DEVICES,
        check: not_empty,
    },
    IgnoredSpec {
        names: &["-w"],
        takes_value: true,
        once: false,
        reason: DEVICES,
        check: not_empty,
    },
    IgnoredSpec {
        names: &["-b", "--block"],
        takes_value: true,
        once: false,
        reason: DEVICES,
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--vdev"],
        takes_value: true,
        once: false,
        reason: DEVICES,
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--no-pci"],
        takes_value: false,
        once: false,
        reason: "dpmem does not scan the PCI bus",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["-d"],
        takes_value: true,
        once: false,
        reason: "dpmem loads no driver libraries",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--create-uio-dev"],
        takes_value: false,
        once: false,
        reason: "dpmem binds no devices to UIO",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--vfio-intr"],
        takes_value: true,
        once: false,
        reason: "dpmem binds no devices to VFIO",
        check: vfio_interrupt_mode,
    },
    IgnoredSpec {
        names: &["--vfio-vf-token"],
        takes_value: true,
        once: false,
        reason: "dpmem binds no devices to VFIO",
        check: uuid,
    },
    IgnoredSpec {
        names: &["--log-level"],
        takes_value: true,
        once: false,
        reason: "dpmem does not write DPDK's log; it reports through errors and return values",
        check: log_level,
    },
    IgnoredSpec {
        names: &["--syslog"],
        takes_value: true,
        once: false,
        reason: "dpmem does not write DPDK's log",
        check: syslog_facility,
    },
    IgnoredSpec {
        names: &["--trace"],
        takes_value: true,
        once: false,
        reason: "dpmem has no trace points",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--trace-dir"],
        takes_value: true,
        once: true,
        reason: "dpmem has no trace points",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--trace-bufsz"],
        takes_value: true,
        once: true,
        reason: "dpmem has no trace points",
        check: trace_buffer_size,
    },
    IgnoredSpec {
        names: &["--trace-mode"],
        takes_value: true,
        once: true,
        reason: "dpmem has no trace points",
        check: trace_mode,
    },
    IgnoredSpec {
        names: &["--no-hpet"],
        takes_value: false,
        once: false,
        reason: "dpmem keeps time with the TSC only and never uses the HPET",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--vmware-tsc-map"],
        takes_value: false,
        once: false,
        reason: "dpmem reads the TSC with rdtsc",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["-v"],
        takes_value: false,
        once: false,
        reason: "dpmem prints no DPDK version banner",
        check: not_empty,
    },
    IgnoredSpec {
        names: &["--force-max-simd-bitwidth"],
        takes_value: true,
        once: false,
        reason: "dpmem chooses no code paths by a SIMD width limit",
        check: simd_bitwidth,
    },
    IgnoredSpec {
        names: &["--mbuf-pool-ops-name"],
        takes_value: true,
        once: false,
        reason: "dpmem's packet-buffer pools are given their handler when they are created",
        check: not_empty,
    },
];

/// DPDK options dpmem knows and cannot honour, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "-s",
        "service cores take lcores away from the workers, and dpmem has no services to run on them",
    ),
    (
        "-S",
        "service cores take lcores away from the workers, and dpmem has no services to run on them",
    ),
    (
        "--no-shconf",
        "dpmem's hugepage files are found through its shared configuration; --in-memory runs without either",
    ),
    (
        "-h",
        "the EAL prints no usage text and does not exit the program; the application handles --help",
    ),
    (
        "--help",
        "the EAL prints no usage text and does not exit the program; the application handles --help",
    ),
    (
        "--master-lcore",
        "DPDK renamed it --main-lcore (and 22.11 refuses the old name too)",
    ),
];

/// The ignorable option spelled `name` (`-a`, `--allow`).
pub(crate) fn find(name: &str) -> Option<&'static IgnoredSpec> {
    IGNORED.iter().find(|spec| spec.names.contains(&name))
}

impl IgnoredSpec {
    /// The `'static` spelling equal to `name` (for error messages).
    pub(crate) fn spelling(&self, name: &str) -> &'static str {
        self.names
            .iter()
            .copied()
            .find(|n| *n == name)
            .unwrap_or(self.names[0])
    }
}

/// Why dpmem refuses the DPDK option `name`, if it is one it knows and refuses.
pub(crate) fn refusal(name: &str) -> Option<OptionsError> {
    REFUSED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(option, reason)| OptionsError::Unsupported { option, reason })
}

/// The checks DPDK applies to these options: each value's grammar, options it accepts only
/// once, and the allow/block exclusion. Shared by the parser and the builder.
pub(crate) fn check(ignored: &[IgnoredOption]) -> Result<(), OptionsError> {
    let mut seen: Vec<&'static str> = Vec::new();
    for given in ignored {
        let spec =
            find(&given.option).ok_or_else(|| OptionsError::UnknownOption(given.option.clone()))?;
        let name = spec.spelling(&given.option);
        match (&given.value, spec.takes_value) {
            (Some(v), true) => (spec.check)(name, v)?,
            (None, true) => return Err(OptionsError::MissingValue { option: name }),
            (Some(v), false) => {
                return Err(OptionsError::UnexpectedValue {
                    option: name,
                    value: v.clone(),
                })
            }
            (None, false) => {}
        }
        let canonical = spec.names[0];
        if spec.once && seen.contains(&canonical) {
            return Err(OptionsError::Repeated {
                option: name,
                reason: "DPDK accepts this trace option only once",
            });
        }
        seen.push(canonical);
    }
    let allow = seen.iter().find(|n| matches!(**n, "-a" | "-w"));
    if let (Some(allow), true) = (allow, seen.contains(&"-b")) {
        return Err(OptionsError::Conflict {
            first: "-b/--block",
            second: if *allow == "-w" { "-w" } else { "-a/--allow" },
            reason: "DPDK takes either an allow list or a block list of devices, not both",
        });
    }
    Ok(())
}

fn not_empty(option: &'static str, value: &str) -> Result<(), OptionsError> {
    if value.is_empty() {
        return Err(OptionsError::invalid(option, value, "must not be empty"));
    }
    Ok(())
}

/// `-n`: DPDK refuses 0 channels.
fn positive_decimal(option: &'static str, value: &str) -> Result<(), OptionsError> {
    match parse_decimal(option, value, value)? {
        0 => Err(OptionsError::invalid(option, value, "must be at least 1")),
        _ => Ok(()),
    }
}

/// `-r`: DPDK takes 1 to 16 ranks.
fn memory_ranks(option: &'static str, value: &str) -> Result<(), OptionsError> {
    match parse_decimal(option, value, value)? {
        1..=16 => Ok(()),
        _ => Err(OptionsError::invalid(option, value, "must be 1 to 16")),
    }
}

fn vfio_interrupt_mode(option: &'static str, value: &str) -> Result<(), OptionsError> {
    match value {
        "legacy" | "msi" | "msix" => Ok(()),
        _ => Err(OptionsError::invalid(
            option,
            value,
            "expected legacy, msi or msix",
        )),
    }
}

/// A UUID in its 8-4-4-4-12 hexadecimal form.
fn uuid(option: &'static str, value: &str) -> Result<(), OptionsError> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if lengths != [8, 4, 4, 4, 12] || !hex {
        return Err(OptionsError::invalid(
            option,
            value,
            "expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        ));
    }
    Ok(())
}

/// DPDK's log levels, 1 to 8; a name may be shortened to any prefix.
const LOG_LEVELS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

/// `--log-level`: `LEVEL`, `PATTERN:LEVEL` (a glob over log types) or `REGEX,LEVEL`, the level
/// a name (or its prefix) or a number up to 8; or `help`.
fn log_level(option: &'static str, value: &str) -> Result<(), OptionsError> {
    if value == "help" {
        return Ok(());
    }
    let (types, level) = match value.split_once(',').or_else(|| value.split_once(':')) {
        Some((types, level)) => (Some(types), level),
        None => (None, value),
    };
    if types == Some("") {
        return Err(OptionsError::invalid(
            option,
            value,
            "no log type before the level",
        ));
    }
    let named = !level.is_empty() && LOG_LEVELS.iter().any(|name| name.starts_with(level));
    let numbered = parse_c_integer(option, level).is_ok_and(|n| n <= 8);
    if !named && !numbered {
        return Err(OptionsError::invalid(
            option,
            value,
            format!(
                "'{level}' is not a log level (a number up to 8, or one of {})",
                LOG_LEVELS.join(", ")
            ),
        ));
    }
    Ok(())
}

fn syslog_facility(option: &'static str, value: &str) -> Result<(), OptionsError> {
    const FACILITIES: [&str; 11] = [
        "auth", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp",
    ];
    let local = value
        .strip_prefix("local")
        .is_some_and(|n| n.len() == 1 && ('0'..='7').contains(&n.chars().next().unwrap_or('x')));
    if FACILITIES.contains(&value) || local {
        return Ok(());
    }
    Err(OptionsError::invalid(
        option,
        value,
        format!(
            "not a syslog facility (one of {}, local0 to local7)",
            FACILITIES.join(", ")
        ),
    ))
}

/// `--trace-bufsz`: a size with an optional B, K or M unit, not zero.
fn trace_buffer_size(option: &'static str, value: &str) -> Result<(), OptionsError> {
    let bytes_unit = value
        .strip_suffix(['B', 'b'])
        .filter(|rest| rest.ends_with(|c: char| c.is_ascii_digit()));
    let size = dpmem_sys::mounts::parse_size_suffix(bytes_unit.unwrap_or(value));
    match size {
        Some(0) => Err(OptionsError::invalid(option, value, "must not be zero")),
        Some(_) => Ok(()),
        None => Err(OptionsError::invalid(
            option,
            value,
            "expected a size such as 4096, 512K or 2M",
        )),
    }
}

/// `--trace-mode`: `overwrite` or `discard`, or a prefix of either (`o`, `d`).
fn trace_mode(option: &'static str, value: &str) -> Result<(), OptionsError> {
    if !value.is_empty()
        && ["overwrite", "discard"]
            .iter()
            .any(|m| m.starts_with(value))
    {
        return Ok(());
    }
    Err(OptionsError::invalid(
        option,
        value,
        "expected overwrite (o) or discard (d)",
    ))
}

/// `--force-max-simd-bitwidth`: 0 (no limit) or a power of two from 64 to 32768.
fn simd_bitwidth(option: &'static str, value: &str) -> Result<(), OptionsError> {
    let bits = parse_c_integer(option, value)?;
    if bits == 0 || ((64..=32768).contains(&bits) && bits.is_power_of_two()) {
        return Ok(());
    }
    Err(OptionsError::invalid(
        option,
        value,
        "expected 0 (no limit) or a power of two from 64 to 32768",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_found_once() {
        let mut all: Vec<&str> = IGNORED
            .iter()
            .flat_map(|s| s.names.iter().copied())
            .collect();
        all.extend(REFUSED.iter().map(|(n, _)| *n));
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a spelling appears twice");
    }

    #[test]
    fn log_levels_as_dpdk_reads_them() {
        for good in [
            "8",
            "debug",
            "d",
            "err",
            "lib.eal:debug",
            "pmd.*,7",
            "0x3",
            "help",
        ] {
            log_level("--log-level", good).unwrap();
        }
        for bad in ["", "9", "loud", ":8", "lib.eal:", "eal:x"] {
            assert!(log_level("--log-level", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn value_grammars() {
        assert!(simd_bitwidth("--force-max-simd-bitwidth", "512").is_ok());
        assert!(simd_bitwidth("--force-max-simd-bitwidth", "0").is_ok());
        assert!(simd_bitwidth("--force-max-simd-bitwidth", "100").is_err());
        assert!(simd_bitwidth("--force-max-simd-bitwidth", "32").is_err());
        assert!(uuid("--vfio-vf-token", "14d63f20-8445-11ea-8900-1f9ce7d5650d").is_ok());
        assert!(uuid("--vfio-vf-token", "14d63f20-8445-11ea-8900").is_err());
        assert!(trace_buffer_size("--trace-bufsz", "2M").is_ok());
        assert!(trace_buffer_size("--trace-bufsz", "512B").is_ok());
        assert!(trace_buffer_size("--trace-bufsz", "0").is_err());
        assert!(trace_mode("--trace-mode", "o").is_ok());
        assert!(trace_mode("--trace-mode", "x").is_err());
        assert!(syslog_facility("--syslog", "local7").is_ok());
        assert!(syslog_facility("--syslog", "local8").is_err());
        assert!(memory_ranks("-r", "16").is_ok());
        assert!(memory_ranks("-r", "17").is_err());
        assert!(positive_decimal("-n", "0").is_err());
    }
}
