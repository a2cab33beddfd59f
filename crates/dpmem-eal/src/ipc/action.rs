//! The table of named actions: what a process runs when a message or request of that name
//! arrives (DPDK's `rte_mp_action_register`). What an action is and what it is handed
//! ([`Incoming`](super::channel::Incoming)) belong to the channel that runs it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::error::IpcError;
use super::message::check_name;

/// The actions of one channel, by name (`A` is the channel's action type).
pub(crate) struct ActionTable<A: ?Sized> {
    actions: Mutex<BTreeMap<String, Arc<A>>>,
}

impl<A: ?Sized> Default for ActionTable<A> {
    fn default() -> Self {
        ActionTable {
            actions: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<A: ?Sized> ActionTable<A> {
    pub(crate) fn register(&self, name: &str, action: Arc<A>) -> Result<(), IpcError> {
        check_name(name)?;
        let mut actions = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        if actions.contains_key(name) {
            return Err(IpcError::ActionExists(name.to_owned()));
        }
        actions.insert(name.to_owned(), action);
        Ok(())
    }

    pub(crate) fn unregister(&self, name: &str) -> Result<(), IpcError> {
        check_name(name)?;
        let mut actions = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        actions
            .remove(name)
            .map(drop)
            .ok_or_else(|| IpcError::NoAction(name.to_owned()))
    }

    /// The action for `name`, held past the table's lock so that an action may register or
    /// unregister others (itself included) while it runs.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<A>> {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Drops every action (the channel is stopping: what they hold goes with them).
    pub(crate) fn clear(&self) {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
