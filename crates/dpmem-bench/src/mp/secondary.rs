//! A secondary process of the `mp` workload, seen from the primary that started it.
//!
//! The primary child starts each secondary as a process of its own (the same program, a
//! secondary child kind), waits until the secondary says it is [`READY`] — its EAL attached
//! and its actions registered — and stops it by closing its stdin: a secondary serves until
//! its stdin ends, then cleans up its EAL and exits. So a secondary also ends when its primary
//! dies, whatever kills it. On every path that does not stop it explicitly (a failed row, a
//! panic) the drop does the same, and kills a secondary that does not exit within
//! [`STOP_LIMIT`]; nothing outlives the primary child.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dpmem_sys::thread;

use crate::child::failure_text;

/// The line a secondary prints once it serves the channel.
pub(crate) const READY: &str = "DPMEM_BENCH_MP_SECONDARY ready";

/// The primary's request for growth rounds: `grow <rounds>`.
pub(crate) const GROW_COMMAND: &str = "grow";
/// The secondary's answer: this, then every round's nanoseconds.
pub(crate) const GROWN: &str = "DPMEM_BENCH_MP_SECONDARY grown";
/// The secondary's answer when the rounds failed: this, then why.
pub(crate) const GROW_FAILED: &str = "DPMEM_BENCH_MP_SECONDARY grow failed:";

/// How long a secondary may take for the growth rounds asked at once.
const GROW_LIMIT: Duration = Duration::from_secs(120);
/// How long a secondary may take to attach and say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a secondary may take to exit once its stdin is closed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A running secondary.
#[derive(Debug)]
pub(crate) struct Secondary {
    /// `None` once it has been waited for.
    child: Option<Child>,
    /// Closing it tells the secondary to stop.
    stdin: Option<ChildStdin>,
    /// What it said on stdout, line by line (DPDK 22.11 logs there).
    stdout: Receiver<String>,
    /// Everything it said on stderr, once it closed it.
    stderr: Option<JoinHandle<String>>,
}

impl Secondary {
    /// Starts `command` (which must run a secondary child) on `cpus` and waits until it is
    /// ready; if it is not within [`READY_LIMIT`], or exits first, it is ended and the error
    /// says what it said.
    ///
    /// A process starts on the CPUs of the thread that started it, and a primary's main thread
    /// is pinned to its lcore's CPU: `cpus` are those the primary had before its EAL pinned it,
    /// so that a secondary starts as one started from a shell would.
    pub(crate) fn start(mut command: Command, cpus: &BTreeSet<u32>) -> Result<Secondary, String> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let pinned = thread::current_affinity().map_err(|e| format!("this thread's CPUs: {e}"))?;
        thread::set_current_affinity(cpus)
            .map_err(|e| format!("unpinning to start a secondary: {e}"))?;
        let spawned = command.spawn();
        let repinned = thread::set_current_affinity(&pinned);
        let mut child = spawned.map_err(|e| format!("starting a secondary: {e}"))?;
        if let Err(e) = repinned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pinning again after starting a secondary: {e}"));
        }
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (lines_tx, lines) = mpsc::channel();
        if let Some(stdout) = stdout {
            // Drains stdout for the secondary's whole life, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = stderr.map(|mut stderr| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
        });
        let mut secondary = Secondary {
            child: Some(child),
            stdin,
            stdout: lines,
            stderr,
        };
        secondary.wait_ready()?;
        Ok(secondary)
    }

    /// Has the secondary run `round_ns.len()` growth rounds on its main thread (see the module
    /// documentation) and puts their nanoseconds in `round_ns`.
    pub(crate) fn grow_rounds(&mut self, round_ns: &mut [u64]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("the secondary was stopped")?;
        writeln!(stdin, "{GROW_COMMAND} {}", round_ns.len())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("asking a secondary for growth rounds: {e}"))?;
        let end = Instant::now() + GROW_LIMIT;
        let line = loop {
            match self
                .stdout
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with(GROWN) || line.starts_with(GROW_FAILED) => break line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "a secondary's growth rounds took over {} s",
                        GROW_LIMIT.as_secs()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("a secondary exited during its growth rounds".into())
                }
            }
        };
        if let Some(why) = line.strip_prefix(GROW_FAILED) {
            return Err(why.trim().to_owned());
        }
        let figures: Vec<u64> = line[GROWN.len()..]
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| format!("malformed growth line {line:?}"))?;
        if figures.len() != round_ns.len() {
            return Err(format!(
                "a secondary reported {} growth rounds, not {}",
                figures.len(),
                round_ns.len()
            ));
        }
        round_ns.copy_from_slice(&figures);
        Ok(())
    }

    /// Reads stdout until the ready line; on failure ends the secondary and says why.
    fn wait_ready(&mut self) -> Result<(), String> {
        let end = Instant::now() + READY_LIMIT;
        let mut said = Vec::new();
        let why = loop {
            match self
                .stdout
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(READY) => return Ok(()),
                Ok(line) => said.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    break format!("not ready after {} s", READY_LIMIT.as_secs())
                }
                Err(RecvTimeoutError::Disconnected) => break "exited before it was ready".into(),
            }
        };
        let (status, stderr) = self.end();
        Err(format!(
            "a secondary {why} ({}): {}",
            status_text(status),
            failure_text(&said.join("\n"), &stderr)
        ))
    }

    /// Tells the secondary to stop and waits for it; `Err` when it did not exit within
    /// [`STOP_LIMIT`] (it is killed then) or exited with a failure.
    pub(crate) fn stop(mut self) -> Result<(), String> {
        let (status, stderr) = self.end();
        match status {
            Some(status) if status.success() => Ok(()),
            status => {
                let said: Vec<String> = self.stdout.try_iter().collect();
                Err(format!(
                    "a secondary did not stop cleanly ({}): {}",
                    status_text(status),
                    failure_text(&said.join("\n"), &stderr)
                ))
            }
        }
    }

    /// Closes stdin, waits up to [`STOP_LIMIT`], kills the secondary if it is still there,
    /// reaps it; its exit status (`None` when it had to be killed) and its stderr.
    fn end(&mut self) -> (Option<ExitStatus>, String) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let Some(mut child) = self.child.take() else {
            return (None, String::new());
        };
        let end = Instant::now() + STOP_LIMIT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        self.end();
    }
}

fn status_text(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => format!("killed after {} s", STOP_LIMIT.as_secs()),
    }
}

/// What a secondary does once it is ready: run the growth rounds it is asked for with `grow`
/// (which fills each round's nanoseconds), and serve until its stdin ends (its primary closed
/// it, or died).
pub(crate) fn announce_ready_and_serve(grow: &dyn Fn(&mut [u64]) -> Result<(), String>) {
    println!("{READY}");
    let _ = std::io::stdout().flush();
    // Ends at end of file, or on an error.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let rounds = line
            .strip_prefix(GROW_COMMAND)
            .and_then(|n| n.trim().parse::<usize>().ok());
        let answer = match rounds {
            Some(rounds) => {
                let mut round_ns = vec![0u64; rounds];
                match grow(&mut round_ns) {
                    Ok(()) => {
                        let figures: Vec<String> = round_ns.iter().map(u64::to_string).collect();
                        format!("{GROWN} {}", figures.join(" "))
                    }
                    // One line: the primary reads answers line by line.
                    Err(e) => format!(
                        "{GROW_FAILED} {}",
                        e.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                }
            }
            None => format!("{GROW_FAILED} unknown command {line:?}"),
        };
        println!("{answer}");
        let _ = std::io::stdout().flush();
    }
}
