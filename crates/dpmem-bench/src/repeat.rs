//! `--repeat K`: the whole workload K times, each run in fresh processes.
//!
//! `--reps N` repeats each measurement inside one run and takes the median; what it cannot
//! show is how much a whole run moves from one process to the next (heap and ring addresses,
//! thread placement, page cache). So each of the K runs is a child `dpmem` process that runs
//! the workload as `dpmem bench` would (its own children included) and hands its report back
//! as JSON; the parent reads the runs together ([`RepeatedReport`]).
//!
//! A run child's argv: `PROGRAM __dpmem-bench-child run WORKLOAD REPS [FILTER]`.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use crate::child::{self, CHILD_FLAG};
use crate::repeated_report::RepeatedReport;
use crate::report::Report;
use crate::workloads::Workload;
use crate::BenchOptions;

/// The kind word of a run child.
const RUN_KIND: &str = "run";

/// Run as a `--repeat` run child if `args` ask for it: the workload's report as one line of
/// JSON on stdout; `None` for any other invocation.
pub(crate) fn child_main(args: &[OsString]) -> Option<i32> {
    if args.get(1).map(OsString::as_os_str) != Some(CHILD_FLAG.as_ref())
        || args.get(2).map(OsString::as_os_str) != Some(RUN_KIND.as_ref())
    {
        return None;
    }
    let result = child::utf8_args(args).and_then(|args| {
        let workload = args
            .get(3)
            .and_then(|name| crate::workloads::workload(name))
            .ok_or_else(|| format!("run child: no such workload {:?}", args.get(3)))?;
        let reps = args
            .get(4)
            .and_then(|r| r.parse::<usize>().ok())
            .filter(|&r| r > 0)
            .ok_or_else(|| format!("run child: bad repetition count {:?}", args.get(4)))?;
        let options = BenchOptions {
            reps,
            filter: args.get(5).cloned(),
        };
        let report = (workload.run)(&options);
        serde_json::to_string(&report.to_json()).map_err(|e| e.to_string())
    });
    Some(match result {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("{CHILD_FLAG}: {e}");
            2
        }
    })
}

/// One run in a fresh `dpmem` process; its report, or why there is none.
fn run_once(workload: &Workload, options: &BenchOptions) -> Result<Report, String> {
    let program = child::own_program()?;
    let mut command = Command::new(&program);
    command
        .arg(CHILD_FLAG)
        .arg(RUN_KIND)
        .arg(workload.name)
        .arg(options.reps.to_string());
    if let Some(filter) = &options.filter {
        command.arg(filter);
    }
    // The run's own warnings go where this process's go; its stdout is the report.
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!("run child {}", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the run child printed no report")?;
    serde_json::from_str(json).map_err(|e| format!("the run child's report: {e}"))
}

/// `repeats` runs of `workload`, each in fresh processes, read together; `Err` when no run
/// gave a report. Progress goes to stderr, one line per run.
pub(crate) fn run_repeated(
    workload: &Workload,
    options: &BenchOptions,
    repeats: usize,
) -> Result<RepeatedReport, String> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for run in 1..=repeats {
        eprintln!("dpmem bench {}: run {run} of {repeats}", workload.name);
        match run_once(workload, options) {
            Ok(report) => reports.push(report),
            Err(e) => failures.push(format!("run {run}: {e}")),
        }
    }
    RepeatedReport::new(&reports, repeats, failures.clone())
        .ok_or_else(|| format!("no run gave a report: {}", failures.join("; ")))
}
