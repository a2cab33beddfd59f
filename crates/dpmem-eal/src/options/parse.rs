//! The `argv` reader: getopt-style scanning of DPDK's EAL options.
//!
//! Values are turned into types here (syntax); range and combination checks are left to
//! `validate.rs`, which the builder shares.

use std::path::PathBuf;

use super::error::OptionsError;
use super::ignored::{self, IgnoredOption};
use super::lcores::{parse_corelist, parse_coremask, parse_lcores, LcoreMap};
use super::numbers::{parse_c_integer, parse_decimal};
use super::validate::check_options;
use super::{EalOptions, HugeUnlink, IovaModeRequest, ProcType, BASE_VIRTADDR_ALIGN};

/// Whether an option takes a value, as in getopt's `struct option`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arity {
    /// A switch: `--no-huge`.
    None,
    /// `--opt=value` or `--opt value` (`-x value` or `-xvalue` for short options).
    Required,
    /// Only `--opt=value`; a following word is never taken as the value.
    Optional,
}

/// Every option dpmem knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Coremask,
    Corelist,
    Lcores,
    MainLcore,
    Memory,
    SocketMem,
    SocketLimit,
    LegacyMem,
    InMemory,
    SingleFileSegments,
    HugeDir,
    FilePrefix,
    HugeUnlink,
    NoHuge,
    IovaMode,
    MatchAllocations,
    ProcType,
    BaseVirtaddr,
    HugeWorkerStack,
    Telemetry,
    NoTelemetry,
}

/// (name as written, arity, option).
const LONG: &[(&str, Arity, Opt)] = &[
    ("--lcores", Arity::Required, Opt::Lcores),
    ("--main-lcore", Arity::Required, Opt::MainLcore),
    ("--socket-mem", Arity::Required, Opt::SocketMem),
    ("--socket-limit", Arity::Required, Opt::SocketLimit),
    ("--legacy-mem", Arity::None, Opt::LegacyMem),
    ("--in-memory", Arity::None, Opt::InMemory),
    (
        "--single-file-segments",
        Arity::None,
        Opt::SingleFileSegments,
    ),
    ("--huge-dir", Arity::Required, Opt::HugeDir),
    ("--file-prefix", Arity::Required, Opt::FilePrefix),
    ("--huge-unlink", Arity::Optional, Opt::HugeUnlink),
    ("--no-huge", Arity::None, Opt::NoHuge),
    ("--iova-mode", Arity::Required, Opt::IovaMode),
    ("--match-allocations", Arity::None, Opt::MatchAllocations),
    ("--proc-type", Arity::Required, Opt::ProcType),
    ("--base-virtaddr", Arity::Required, Opt::BaseVirtaddr),
    ("--huge-worker-stack", Arity::Optional, Opt::HugeWorkerStack),
    ("--telemetry", Arity::None, Opt::Telemetry),
    ("--no-telemetry", Arity::None, Opt::NoTelemetry),
];

/// Short options; all take a value.
const SHORT: &[(char, &str, Opt)] = &[
    ('c', "-c", Opt::Coremask),
    ('l', "-l", Opt::Corelist),
    ('m', "-m", Opt::Memory),
];

/// [`EalOptions::parse`].
pub(crate) fn parse<I, S>(args: I) -> Result<(EalOptions, Vec<String>), OptionsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut args = args.into_iter().map(|s| s.as_ref().to_owned());
    let _program = args.next();
    let mut state = State {
        opts: EalOptions::default(),
        lcore_option: None,
    };
    // After an optional-value option, a following word is probably its misplaced value.
    let mut last_optional: Option<&'static str> = None;
    let mut app_args = Vec::new();

    while let Some(arg) = args.next() {
        if arg == "--" {
            app_args.extend(args.by_ref());
            break;
        }
        let (name, found, value) = if arg.starts_with("--") {
            let (name_part, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            let (name, arity, found) = lookup_long(name_part, &arg)?;
            let value = match (arity, inline) {
                (Arity::None, Some(v)) => {
                    return Err(OptionsError::UnexpectedValue {
                        option: name,
                        value: v,
                    })
                }
                (Arity::None, None) => None,
                (Arity::Optional, inline) => inline,
                (Arity::Required, Some(v)) => Some(v),
                (Arity::Required, None) => Some(next_value(&mut args, name)?),
            };
            last_optional = (arity == Arity::Optional && value.is_none()).then_some(name);
            (name, found, value)
        } else if arg.len() > 1 && arg.starts_with('-') {
            let mut chars = arg.chars();
            chars.next();
            let letter = chars.next().unwrap_or('-');
            let (name, arity, found) = lookup_short(letter, &arg)?;
            let attached = chars.as_str();
            let value = match arity {
                Arity::None if attached.is_empty() => None,
                // getopt would read `-vx` as `-v -x`; dpmem takes one option per word.
                Arity::None => {
                    return Err(OptionsError::UnexpectedValue {
                        option: name,
                        value: attached.to_owned(),
                    })
                }
                _ if attached.is_empty() => Some(next_value(&mut args, name)?),
                _ => Some(attached.to_owned()),
            };
            last_optional = None;
            (name, found, value)
        } else {
            // getopt would move the word to the application's side; dpmem refuses it,
            // since it is most often a value meant for the option before it.
            let hint = match last_optional {
                Some(name) => format!("; {name} takes its value only as {name}=VALUE"),
                None => "; application arguments go after '--'".to_owned(),
            };
            return Err(OptionsError::UnexpectedArgument { arg, hint });
        };
        match found {
            Found::Known(opt) => state.apply(name, opt, value)?,
            Found::Ignored => state.opts.ignored.push(IgnoredOption {
                option: name.to_owned(),
                value,
            }),
        }
    }

    let State { opts, lcore_option } = state;
    check_options(&opts, lcore_option.unwrap_or("--lcores"))?;
    Ok((opts, app_args))
}

/// What an option on the command line turned out to be.
enum Found {
    /// One dpmem acts on.
    Known(Opt),
    /// One of DPDK's that dpmem accepts and does not act on.
    Ignored,
}

/// The long option `name` (`--lcores`): its `'static` spelling, arity and kind. `arg` is the
/// whole word, for the message about an unknown option.
fn lookup_long(name: &str, arg: &str) -> Result<(&'static str, Arity, Found), OptionsError> {
    if let Some(&(name, arity, opt)) = LONG.iter().find(|(n, _, _)| *n == name) {
        return Ok((name, arity, Found::Known(opt)));
    }
    lookup_dpdk_only(name, arg)
}

/// The short option `-<letter>`, as [`lookup_long`].
fn lookup_short(letter: char, arg: &str) -> Result<(&'static str, Arity, Found), OptionsError> {
    if let Some(&(_, name, opt)) = SHORT.iter().find(|(c, _, _)| *c == letter) {
        return Ok((name, Arity::Required, Found::Known(opt)));
    }
    lookup_dpdk_only(&format!("-{letter}"), arg)
}

/// A DPDK option outside dpmem's own: ignored (with a warning), refused with a reason, or
/// unknown.
fn lookup_dpdk_only(name: &str, arg: &str) -> Result<(&'static str, Arity, Found), OptionsError> {
    if let Some(spec) = ignored::find(name) {
        let arity = if spec.takes_value {
            Arity::Required
        } else {
            Arity::None
        };
        return Ok((spec.spelling(name), arity, Found::Ignored));
    }
    Err(ignored::refusal(name).unwrap_or_else(|| OptionsError::UnknownOption(arg.to_owned())))
}

/// The next word as an option's value; `--` ends the EAL options, so it is not a value.
fn next_value(
    args: &mut impl Iterator<Item = String>,
    name: &'static str,
) -> Result<String, OptionsError> {
    match args.next() {
        Some(v) if v != "--" => Ok(v),
        _ => Err(OptionsError::MissingValue { option: name }),
    }
}

struct State {
    opts: EalOptions,
    /// Which of `-l`, `-c`, `--lcores` gave the lcore set.
    lcore_option: Option<&'static str>,
}

impl State {
    fn apply(
        &mut self,
        name: &'static str,
        opt: Opt,
        value: Option<String>,
    ) -> Result<(), OptionsError> {
        let v = value.as_deref().unwrap_or("");
        let o = &mut self.opts;
        match opt {
            Opt::Coremask => self.set_lcores(name, parse_coremask(name, v)?)?,
            Opt::Corelist => self.set_lcores(name, parse_corelist(name, v)?)?,
            Opt::Lcores => self.set_lcores(name, parse_lcores(name, v)?)?,
            Opt::MainLcore => o.main_lcore = Some(parse_c_integer(name, v)?),
            Opt::Memory => o.memory_mb = Some(parse_decimal(name, v, v)?),
            Opt::SocketMem => o.socket_mem_mb = Some(parse_socket_list(name, v)?),
            Opt::SocketLimit => o.socket_limit_mb = Some(parse_socket_list(name, v)?),
            Opt::LegacyMem => o.legacy_mem = true,
            Opt::InMemory => o.in_memory = true,
            Opt::SingleFileSegments => o.single_file_segments = true,
            Opt::HugeDir => o.huge_dir = Some(PathBuf::from(v)),
            Opt::FilePrefix => o.file_prefix = v.to_owned(),
            Opt::HugeUnlink => {
                o.huge_unlink = match value.as_deref() {
                    None | Some("always") => HugeUnlink::Always,
                    Some("existing") => HugeUnlink::Existing,
                    Some("never") => HugeUnlink::Never,
                    Some(other) => {
                        return Err(OptionsError::invalid(
                            name,
                            other,
                            "expected existing, always or never",
                        ))
                    }
                };
                o.huge_unlink_given = true;
            }
            Opt::NoHuge => o.no_huge = true,
            Opt::IovaMode => {
                o.iova_mode = Some(match v {
                    "pa" => IovaModeRequest::Pa,
                    "va" => IovaModeRequest::Va,
                    _ => return Err(OptionsError::invalid(name, v, "expected pa or va")),
                })
            }
            Opt::MatchAllocations => o.match_allocations = true,
            Opt::ProcType => {
                // DPDK compares without regard to case.
                o.proc_type = match v.to_ascii_lowercase().as_str() {
                    "primary" => ProcType::Primary,
                    "secondary" => ProcType::Secondary,
                    "auto" => ProcType::Auto,
                    _ => {
                        return Err(OptionsError::invalid(
                            name,
                            v,
                            "expected primary, secondary or auto",
                        ))
                    }
                }
            }
            Opt::BaseVirtaddr => o.base_virtaddr = Some(parse_base_virtaddr(name, v)?),
            Opt::HugeWorkerStack => {
                o.huge_worker_stack_kb = Some(match value.as_deref() {
                    None | Some("") => None,
                    Some(kib) => Some(parse_decimal(name, kib, kib)?),
                })
            }
            // The default; DPDK's `--telemetry` does not undo a `--no-telemetry` either.
            Opt::Telemetry => {}
            Opt::NoTelemetry => o.no_telemetry = true,
        }
        Ok(())
    }

    /// DPDK accepts exactly one of `-l`, `-c`, `--lcores`, exactly once.
    fn set_lcores(&mut self, name: &'static str, map: LcoreMap) -> Result<(), OptionsError> {
        match self.lcore_option {
            Some(previous) if previous == name => Err(OptionsError::Repeated {
                option: name,
                reason: "the lcore set may be given only once",
            }),
            Some(previous) => Err(OptionsError::Conflict {
                first: name,
                second: previous,
                reason: "-l, -c and --lcores each give the whole lcore set; use one",
            }),
            None => {
                self.lcore_option = Some(name);
                self.opts.lcores = Some(map);
                Ok(())
            }
        }
    }
}

/// `--socket-mem` / `--socket-limit`: comma-separated decimal megabytes, one per socket.
fn parse_socket_list(option: &'static str, text: &str) -> Result<Vec<u64>, OptionsError> {
    if text.is_empty() {
        return Err(OptionsError::invalid(option, text, "empty list"));
    }
    text.split(',')
        .enumerate()
        .map(|(socket, part)| {
            if part.is_empty() {
                return Err(OptionsError::invalid(
                    option,
                    text,
                    format!("no value for socket {socket}"),
                ));
            }
            parse_decimal(option, part, text)
        })
        .collect()
}

/// `--base-virtaddr`: hexadecimal with or without `0x` (DPDK reads it with
/// `strtoull(.., 16)`), rounded up to [`BASE_VIRTADDR_ALIGN`] as DPDK does.
fn parse_base_virtaddr(option: &'static str, text: &str) -> Result<u64, OptionsError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(OptionsError::invalid(
            option,
            text,
            "not a hexadecimal address",
        ));
    }
    let addr = u64::from_str_radix(digits, 16)
        .map_err(|_| OptionsError::invalid(option, text, "address does not fit 64 bits"))?;
    addr.checked_next_multiple_of(BASE_VIRTADDR_ALIGN)
        .ok_or_else(|| {
            OptionsError::invalid(
                option,
                text,
                "rounding up to a 16 MiB boundary overflows 64 bits",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_integer_notations() {
        assert_eq!(parse_c_integer("--main-lcore", "12").unwrap(), 12);
        assert_eq!(parse_c_integer("--main-lcore", "0x1f").unwrap(), 31);
        assert_eq!(parse_c_integer("--main-lcore", "010").unwrap(), 8);
        assert_eq!(parse_c_integer("--main-lcore", "0").unwrap(), 0);
        assert!(parse_c_integer("--main-lcore", "08").is_err());
        assert!(parse_c_integer("--main-lcore", "-1").is_err());
        assert!(parse_c_integer("--main-lcore", "99999999999").is_err());
    }

    #[test]
    fn base_virtaddr_rounds_up_to_16_mib() {
        assert_eq!(
            parse_base_virtaddr("--base-virtaddr", "100000000").unwrap(),
            0x1_0000_0000
        );
        assert_eq!(
            parse_base_virtaddr("--base-virtaddr", "0x1000001").unwrap(),
            0x200_0000
        );
        assert!(parse_base_virtaddr("--base-virtaddr", "0xffffffffffffffff").is_err());
        assert!(parse_base_virtaddr("--base-virtaddr", "0x").is_err());
        assert!(parse_base_virtaddr("--base-virtaddr", "12345678901234567").is_err());
    }
}
