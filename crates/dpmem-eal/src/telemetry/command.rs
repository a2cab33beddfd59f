//! What a telemetry command is to the server: a handler, called with the EAL being asked and
//! the request's parameter.

use std::sync::Arc;

use super::error::TelemetryError;
use super::value::TelemetryValue;
use crate::Eal;

/// A command's handler: the EAL being asked, and the request's parameter (what follows the
/// first comma; `None` when nothing does). An error answers `null`.
///
/// It runs on the telemetry server's control thread, which serves one request at a time:
/// it should be quick, and must not wait for the data path. The `&Eal` is the EAL of the
/// server that was asked, the same memory, heaps, memzones and lcores as the application's
/// handle; it is another handle on them, so do not compare it with the application's by
/// address.
pub type CommandHandler =
    dyn Fn(&Eal, Option<&str>) -> Result<TelemetryValue, TelemetryError> + Send + Sync;

/// A command every server starts with: name, help, handler.
pub(crate) type Builtin = (&'static str, &'static str, Arc<CommandHandler>);
