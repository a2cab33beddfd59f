//! The one error type of the options subsystem.
//!
//! Every variant carries the option it is about (spelled as on the command line, e.g.
//! `--socket-mem` or `-l`), so a message can be shown to a person as is.

use std::path::PathBuf;

/// Why a command line, a builder or a host check was refused.
///
/// All of these are `EINVAL` in DPDK's terms: the input is wrong, nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// An argument looked like an option but is not one dpmem knows.
    #[error("unknown option '{0}'")]
    UnknownOption(String),

    /// An option that needs a value came last (or right before `--`).
    #[error("option {option} requires a value")]
    MissingValue {
        /// The option, e.g. `--socket-mem`.
        option: &'static str,
    },

    /// A DPDK option dpmem knows but cannot honour: ignoring it would change what the program
    /// does.
    #[error("option {option} is not supported by dpmem: {reason}")]
    Unsupported {
        /// The option, e.g. `-s`.
        option: &'static str,
        /// Why it cannot be honoured, and what to do instead.
        reason: &'static str,
    },

    /// A switch such as `--no-huge` was given `=value`.
    #[error("option {option} takes no value, got '{value}'")]
    UnexpectedValue {
        /// The option, e.g. `--no-huge`.
        option: &'static str,
        /// What followed the `=`.
        value: String,
    },

    /// A word that is not an option appeared before `--`.
    #[error("unexpected argument '{arg}' before '--'{hint}")]
    UnexpectedArgument {
        /// The stray word.
        arg: String,
        /// Extra advice (starts with "; "), or empty.
        hint: String,
    },

    /// The value of an option does not parse or is out of range.
    #[error("invalid value '{value}' for {option}: {reason}")]
    InvalidValue {
        /// The option, e.g. `--lcores`.
        option: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An option that may appear only once appeared again.
    #[error("option {option} given more than once: {reason}")]
    Repeated {
        /// The option, e.g. `-l`.
        option: &'static str,
        /// Why a repeat is refused.
        reason: &'static str,
    },

    /// Two options that DPDK does not allow together.
    #[error("option {first} cannot be used together with {second}: {reason}")]
    Conflict {
        /// The option that is refused.
        first: &'static str,
        /// The option it collides with.
        second: &'static str,
        /// Why they exclude each other.
        reason: &'static str,
    },

    /// `--main-lcore` names an lcore outside the lcore set.
    #[error("option --main-lcore {lcore} is not one of the lcores of {lcore_option}")]
    MainLcoreNotInSet {
        /// The requested main lcore.
        lcore: u32,
        /// Where the lcore set came from, e.g. `-l` or "the default lcore set".
        lcore_option: String,
    },

    /// An lcore is mapped to a CPU this machine lacks (or this process may not use).
    #[error(
        "lcore option (-l/-c/--lcores): lcore {lcore} runs on cpu {cpu}, \
         which this machine does not offer to the process (usable cpus: {available})"
    )]
    CpuUnavailable {
        /// The lcore id.
        lcore: u32,
        /// The missing CPU.
        cpu: u32,
        /// The usable CPUs, as a DPDK-style list (`0-3,8`).
        available: String,
    },

    /// `--huge-dir` is neither a hugetlbfs mount point nor inside one.
    #[error(
        "option --huge-dir {}: not a hugetlbfs mount point or a directory inside one \
         (hugetlbfs mounts: {})",
        path.display(),
        mounts_list(mounts)
    )]
    HugeDirNotHugetlbfs {
        /// The directory as given.
        path: PathBuf,
        /// The hugetlbfs mount points the host has.
        mounts: Vec<PathBuf>,
    },
}

fn mounts_list(mounts: &[PathBuf]) -> String {
    if mounts.is_empty() {
        return "none".to_owned();
    }
    mounts
        .iter()
        .map(|m| m.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl OptionsError {
    /// Shorthand for [`OptionsError::InvalidValue`].
    pub(crate) fn invalid(option: &'static str, value: &str, reason: impl Into<String>) -> Self {
        OptionsError::InvalidValue {
            option,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}
