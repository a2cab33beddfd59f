//! The server's own commands, as DPDK's telemetry library has them: `/` (the commands),
//! `/info` (what the greeting says) and `/help` (a command's help text).

use std::sync::Arc;

use super::answer::MAX_OUTPUT_LEN;
use super::command::Builtin;
use super::error::TelemetryError;
use super::registry;
use super::value::{TelemetryDict, TelemetryValue};

/// What the greeting and `/info` give as the version: dpmem's, as DPDK gives its own.
pub(crate) fn version() -> String {
    format!("dpmem {}", env!("CARGO_PKG_VERSION"))
}

/// The greeting and `/info`: version, process id and the longest answer.
pub(crate) fn info() -> TelemetryDict {
    let mut info = TelemetryDict::new();
    // The names are fixed and valid.
    let _ = info.insert("version", version());
    let _ = info.insert("pid", dpmem_sys::process::pid());
    let _ = info.insert("max_output_len", MAX_OUTPUT_LEN);
    info
}

pub(crate) fn commands() -> Vec<Builtin> {
    vec![
        (
            "/",
            "Lists the commands this server answers. No parameter.",
            Arc::new(|_, _| Ok(TelemetryValue::from(registry::commands()))),
        ),
        (
            "/info",
            "The server's version and process id, and the longest answer it sends. No parameter.",
            Arc::new(|_, _| Ok(info().into())),
        ),
        (
            "/help",
            "Help on a command. Parameter: the command, as in /help,/eal/heap_info.",
            Arc::new(|_, param| help(param)),
        ),
    ]
}

/// `/help` alone is its own help, as a plain string; `/help,<command>` is a dictionary of
/// the command and its help (DPDK's two shapes).
fn help(param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    match param {
        None => registry::help("/help")
            .map(TelemetryValue::from)
            .ok_or_else(|| TelemetryError::NotFound("command /help".into())),
        Some(command) => {
            let text = registry::help(command)
                .ok_or_else(|| TelemetryError::NotFound(format!("command {command:?}")))?;
            let mut answer = TelemetryDict::new();
            answer.insert(command, text)?;
            Ok(answer.into())
        }
    }
}
