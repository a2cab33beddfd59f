//! The commands telemetry servers answer: one table per process (DPDK's
//! `rte_telemetry_register_cmd`), shared by the servers of every EAL in it. A handler is given
//! the EAL whose server was asked, so one registration serves them all.
//!
//! The table is seeded once with the commands every server has (see the module above); then
//! libraries and applications add theirs.

use std::collections::BTreeMap;
use std::sync::{Arc, Once, OnceLock, RwLock};

use super::answer::MAX_COMMAND_LEN;
use super::command::{Builtin, CommandHandler};
use super::error::TelemetryError;
use super::value::{TelemetryValue, MAX_NAME_LEN};
use crate::Eal;

struct Command {
    help: String,
    handler: Arc<CommandHandler>,
}

type Table = RwLock<BTreeMap<String, Command>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(BTreeMap::new()))
}

/// Enters `builtins` in the table, the first time only.
pub(crate) fn seed(builtins: impl FnOnce() -> Vec<Builtin>) {
    static SEEDED: Once = Once::new();
    SEEDED.call_once(|| {
        let mut commands = table().write().unwrap_or_else(|p| p.into_inner());
        for (name, help, handler) in builtins() {
            debug_assert!(check_command(name, help).is_ok(), "{name}");
            commands.insert(
                name.to_owned(),
                Command {
                    help: help.to_owned(),
                    handler,
                },
            );
        }
    });
}

/// DPDK's rules for a command: a name shorter than 56 bytes, starting with `/`, of letters,
/// digits, `_` and `/`; a help text shorter than 128 bytes.
fn check_command(name: &str, help: &str) -> Result<(), TelemetryError> {
    let refuse = |reason: &str| {
        Err(TelemetryError::InvalidCommand {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if !name.starts_with('/') {
        return refuse("a command starts with '/'");
    }
    if name.len() >= MAX_COMMAND_LEN {
        return refuse(&format!(
            "{} bytes long; a command is shorter than {MAX_COMMAND_LEN}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/')
    {
        return refuse("only letters, digits, '_' and '/' may appear in a command");
    }
    if help.len() >= MAX_NAME_LEN {
        return refuse(&format!(
            "its help text is {} bytes long; it must be shorter than {MAX_NAME_LEN}",
            help.len()
        ));
    }
    Ok(())
}

/// Enters a command (see [`super::register_command`]).
pub(crate) fn register_command<F>(name: &str, help: &str, handler: F) -> Result<(), TelemetryError>
where
    F: Fn(&Eal, Option<&str>) -> Result<TelemetryValue, TelemetryError> + Send + Sync + 'static,
{
    check_command(name, help)?;
    let mut commands = table().write().unwrap_or_else(|p| p.into_inner());
    if commands.contains_key(name) {
        return Err(TelemetryError::AlreadyRegistered(name.to_owned()));
    }
    commands.insert(
        name.to_owned(),
        Command {
            help: help.to_owned(),
            handler: Arc::new(handler),
        },
    );
    Ok(())
}

/// Every registered command, in byte order (what `/` answers).
pub(crate) fn commands() -> Vec<String> {
    let commands = table().read().unwrap_or_else(|p| p.into_inner());
    commands.keys().cloned().collect()
}

/// The help text of `name`, if it is registered.
pub(crate) fn help(name: &str) -> Option<String> {
    let commands = table().read().unwrap_or_else(|p| p.into_inner());
    commands.get(name).map(|c| c.help.clone())
}

/// The handler of `name`, taken out of the table so that it runs without the table's lock
/// (it may register commands itself).
pub(crate) fn handler(name: &str) -> Option<Arc<CommandHandler>> {
    let commands = table().read().unwrap_or_else(|p| p.into_inner());
    commands.get(name).map(|c| Arc::clone(&c.handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_help_follow_dpdk_rules() {
        assert!(check_command("/a/b_9", "short").is_ok());
        for bad in ["a", "/a b", "/a-b", "/a,b", &format!("/{}", "x".repeat(55))] {
            assert!(check_command(bad, "").is_err(), "{bad:?}");
        }
        assert!(check_command(&format!("/{}", "x".repeat(54)), "").is_ok());
        assert!(check_command("/a", &"h".repeat(128)).is_err());
    }

    #[test]
    fn a_second_registration_is_refused_and_the_first_kept() {
        register_command("/registry_test/once", "first", |_, _| Ok(1u32.into())).unwrap();
        let err =
            register_command("/registry_test/once", "second", |_, _| Ok(2u32.into())).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Exist);
        assert_eq!(help("/registry_test/once").as_deref(), Some("first"));
        assert!(commands().contains(&"/registry_test/once".to_owned()));
    }
}
