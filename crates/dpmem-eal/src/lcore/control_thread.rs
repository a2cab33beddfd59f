//! Control threads: helpers for the library's own work (DPDK's `rte_ctrl_thread_create`).
//!
//! They must not steal time from the data plane, so they run on the CPUs the process could
//! use before initialisation minus every lcore's CPUs, and on the main lcore's CPUs when that
//! leaves nothing. They have no lcore id.

use std::collections::BTreeSet;
use std::sync::mpsc;

use super::error::LcoreError;
use super::lcore_threads::LcoreThreads;
use super::thread_local;

impl LcoreThreads {
    /// The CPUs control threads run on.
    pub fn control_cpus(&self) -> BTreeSet<u32> {
        self.control_cpus_set().clone()
    }

    /// Starts a named control thread running `f`, restricted to
    /// [`control_cpus`](Self::control_cpus) before `f` starts. Fails, with no thread left
    /// running, when the thread cannot be created or pinned.
    pub fn create_control_thread<T, F>(
        &self,
        name: &str,
        f: F,
    ) -> Result<ControlThread<T>, LcoreError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let cpus = self.control_cpus();
        let registry = self.registry().clone();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), LcoreError>>();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let pinned = if registry.pinning {
                    thread_local::set_thread_affinity(&cpus)
                } else {
                    Ok(())
                };
                let ok = pinned.is_ok();
                let _ = ready_tx.send(pinned);
                // Decided by the launching side, which joins a thread that failed to pin.
                ok.then(f)
            })
            .map_err(|e| LcoreError::WorkerStart {
                lcore: super::LCORE_ID_ANY,
                reason: format!("control thread {name:?}: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(ControlThread { handle }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(LcoreError::WorkerStart {
                    lcore: super::LCORE_ID_ANY,
                    reason: format!("control thread {name:?} ended before starting its work"),
                })
            }
        }
    }
}

/// A running control thread.
#[derive(Debug)]
pub struct ControlThread<T> {
    /// `None` only from a thread that failed to pin, which is never handed out.
    handle: std::thread::JoinHandle<Option<T>>,
}

impl<T> ControlThread<T> {
    /// Waits for the thread: its work's value, or the panic payload.
    pub fn join(self) -> std::thread::Result<T> {
        self.handle
            .join()
            .map(|value| value.expect("a control thread handed out has pinned and run its work"))
    }

    pub fn thread(&self) -> &std::thread::Thread {
        self.handle.thread()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}
