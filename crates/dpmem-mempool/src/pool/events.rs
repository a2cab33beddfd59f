//! Pool events (`rte_mempool_event_callback_register`): a pool became ready (fully
//! populated) or is about to be destroyed.
//!
//! Callbacks are per process, like the closures they are. An event calls the callbacks
//! registered when it started, outside the registry's lock, so a callback may unregister
//! itself or register another; one registered during an event is called from the next one.

use std::sync::{Arc, Mutex};

use crate::error::MempoolError;
use crate::pool::Mempool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MempoolEvent {
    /// Every object of the pool exists (populate finished).
    Ready,
    /// The pool is about to be freed.
    Destroy,
}

/// A registration, to unregister it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type Callback = Arc<dyn Fn(MempoolEvent, &Mempool<'_>) + Send + Sync>;

struct Registry {
    next_id: u64,
    callbacks: Vec<(CallbackId, Callback)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 1,
    callbacks: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `f` on every pool event of this process from now on.
pub fn register_event_callback(
    f: impl Fn(MempoolEvent, &Mempool<'_>) + Send + Sync + 'static,
) -> CallbackId {
    let mut r = registry();
    let id = CallbackId(r.next_id);
    r.next_id += 1;
    r.callbacks.push((id, Arc::new(f)));
    id
}

/// Stops a callback (`ENOENT` when it is not registered, e.g. already removed).
pub fn unregister_event_callback(id: CallbackId) -> Result<(), MempoolError> {
    let mut r = registry();
    let at = r
        .callbacks
        .iter()
        .position(|(i, _)| *i == id)
        .ok_or(MempoolError::CallbackNotFound)?;
    r.callbacks.remove(at);
    Ok(())
}

pub(crate) fn invoke(event: MempoolEvent, pool: &Mempool<'_>) {
    let snapshot: Vec<Callback> = registry()
        .callbacks
        .iter()
        .map(|(_, f)| f.clone())
        .collect();
    for f in snapshot {
        f(event, pool);
    }
}
