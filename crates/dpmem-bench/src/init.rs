//! The `init` workload: EAL init of 1 GiB of 2 MiB hugepages, dpmem against DPDK 22.11.
//!
//! Three memory modes, each with the same EAL options on both sides:
//!
//! | row       | options                       | what init does                          |
//! | --------- | ----------------------------- | --------------------------------------- |
//! | legacy    | `--legacy-mem -m 1024`        | maps all pages up front, sorted by IOVA |
//! | dynamic   | `-m 1024`                     | reserves VA, maps pages into memseg lists |
//! | in-memory | `--in-memory -m 1024`         | as dynamic, no files/shared config left |
//!
//! DPDK gets, in addition, options that keep it from doing work dpmem does not do (PCI
//! scan, telemetry socket, extra lcores) or from talking (`--log-level`). Both sides get a
//! bench-private `--file-prefix` so that nothing of a running application is touched.
//!
//! Every repetition is a fresh child process per side (see [`crate::child`]), followed by the
//! kernel baseline ([`crate::kernel_baseline`]) for the same 1 GiB, interleaved so that
//! drift in the machine's state (page fragmentation, other load) hits all columns alike.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::child::{self, ChildKind, InitCleanup};
use crate::dpdk_runner::{self, DpdkRunner};
use crate::hugepage_host::{self, PAGE_2M};
use crate::report::{Measurement, Report, Row};
use crate::stats::median;
use crate::BenchOptions;

/// Memory every configuration asks for, in MiB (`-m 1024`).
const MEMORY_MB: u64 = 1024;

/// One row of the table: its name and the EAL options both sides get.
struct InitConfig {
    name: &'static str,
    eal_args: &'static [&'static str],
}

const CONFIGS: [InitConfig; 3] = [
    InitConfig {
        name: "legacy",
        eal_args: &["--legacy-mem", "-m", "1024"],
    },
    InitConfig {
        name: "dynamic",
        eal_args: &["-m", "1024"],
    },
    InitConfig {
        name: "in-memory",
        eal_args: &["--in-memory", "-m", "1024"],
    },
];

/// The rows' names, in the order a [`crate::row_selection::RowSelection`] indexes them.
pub(crate) fn row_names() -> Vec<String> {
    CONFIGS.iter().map(|c| c.name.to_owned()).collect()
}

/// Options both sides get on top of the row's: one lcore, so that DPDK starts no worker
/// threads (work that is not memory) and dpmem sees the same lcore map.
const SHARED_ARGS: &[&str] = &["-l", "0"];

/// Options only DPDK has: no device scan, no telemetry thread, quiet logs (errors still
/// come through, and end up in the row if init fails). [`dpmem_args`] removes them.
const DPDK_ONLY_ARGS: &[&str] = &["--no-pci", "--no-telemetry", "--log-level=error"];

/// dpmem's EAL init followed by its cleanup (dropping the `Eal`), timed. Child side.
///
/// `args[0]` is the program name. This is the one place that calls `dpmem::eal::Eal`.
pub(crate) fn dpmem_eal_init_and_cleanup(args: &[String]) -> Result<InitCleanup, String> {
    let t0 = Instant::now();
    let eal = dpmem::eal::Eal::init(args).map_err(|e| format!("Eal::init failed: {e}"))?;
    let init = t0.elapsed();
    let t0 = Instant::now();
    drop(eal);
    let cleanup = t0.elapsed();
    Ok(InitCleanup { init, cleanup })
}

/// DPDK's arguments minus the options only DPDK has (dpmem's parser rejects unknown
/// options, as DPDK's does): `--no-pci`, `--no-telemetry`, `--log-level[=]X`, `-n X`.
fn dpmem_args(dpdk_args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(dpdk_args.len());
    let mut it = dpdk_args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--no-pci" | "--no-telemetry" => {}
            // These take their value as the next word.
            "--log-level" | "-n" => {
                it.next();
            }
            a if a.starts_with("--log-level=") => {}
            // `-n4`: getopt's attached short-option value.
            a if a.starts_with("-n") && a.len() > 2 && !a.starts_with("--") => {}
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// Repetitions of one cell, or the first failure (the others would say the same).
#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    failure: Option<String>,
}

impl Samples {
    fn push(&mut self, r: Result<Duration, String>) {
        match r {
            Ok(d) => self.ms.push(d.as_secs_f64() * 1e3),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    fn into_measurement(self, reps: usize) -> Measurement {
        match (self.failure, median(&self.ms)) {
            (Some(e), _) if self.ms.is_empty() => Measurement::Missing(e),
            (Some(e), _) => Measurement::Missing(format!(
                "failed in {} of {reps} reps: {e}",
                reps - self.ms.len()
            )),
            (None, Some(m)) => Measurement::Value(m),
            (None, None) => Measurement::Missing("not run".to_owned()),
        }
    }
}

/// Whether the host can give 1 GiB of 2 MiB hugepages right now, and where.
fn hugepages_for_1g() -> Result<PathBuf, String> {
    let mount = hugepage_host::hugetlbfs_2m_mount()?;
    let free = hugepage_host::free_2m_hugepages()?;
    let needed = (MEMORY_MB << 20) / PAGE_2M;
    if free < needed {
        return Err(format!(
            "only {free} free 2 MiB hugepages, {needed} needed for 1 GiB"
        ));
    }
    Ok(mount)
}

/// Remove what an EAL run with `prefix` may leave behind: hugepage files (legacy mode keeps
/// them, holding their pages) and the runtime directory with the shared config.
pub(crate) fn remove_leftovers(mount: Option<&Path>, prefix: &str) {
    if let Some(mount) = mount {
        hugepage_host::remove_files_with_prefix(mount, prefix);
    }
    // DPDK's runtime dir: /var/run/dpdk/<prefix> for root, else $XDG_RUNTIME_DIR or /tmp.
    let mut bases = vec![PathBuf::from("/var/run"), PathBuf::from("/tmp")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(PathBuf::from(xdg));
    }
    let dirs = bases
        .into_iter()
        .map(|base| base.join("dpdk").join(prefix))
        // dpmem's own runtime directory (a crashed child leaves it behind).
        .chain([dpmem::eal::runtime_dir::location(prefix)]);
    for dir in dirs {
        if dir.is_dir() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Run the `init` workload: three memory modes, dpmem and DPDK, plus the kernel baseline.
pub fn run_init(opts: &BenchOptions) -> Report {
    let reps = opts.reps.max(1);
    // Hugepage file names start with the prefix, so the prefix is also how leftovers are
    // found; the pid keeps two concurrent benches apart.
    let prefix = format!("dpmem-bench-{}", std::process::id());
    let runner = DpdkRunner::find();
    let dpdk_missing = runner.as_ref().err().map(String::as_str);
    let selection = opts.selection(&row_names());
    let own = child::own_program();

    let mut rows = Vec::new();
    let mut mount_for_notes = None;
    for &i in selection.indices() {
        let config = &CONFIGS[i];
        let hugepages = hugepages_for_1g();
        let mount = hugepage_host::hugetlbfs_2m_mount().ok();
        mount_for_notes = mount_for_notes.or(mount.clone());
        let mut common: Vec<String> = SHARED_ARGS
            .iter()
            .chain(config.eal_args)
            .map(|s| s.to_string())
            .collect();
        let note = match &hugepages {
            Ok(_) => None,
            Err(why) => {
                // DPDK runs --no-huge through its legacy path, which it refuses to combine
                // with --in-memory; anonymous memory leaves no files behind anyway.
                let dropped = common.iter().any(|a| a == "--in-memory");
                common.retain(|a| a != "--in-memory");
                common.push("--no-huge".to_owned());
                Some(format!(
                    "ran with --no-huge{} on both sides: {why}",
                    if dropped { " (not --in-memory)" } else { "" }
                ))
            }
        };
        common.extend(["--file-prefix".to_owned(), prefix.clone()]);
        let mut dpdk_args: Vec<String> = DPDK_ONLY_ARGS.iter().map(|s| s.to_string()).collect();
        dpdk_args.extend(common.iter().cloned());
        let dpmem_args = dpmem_args(&dpdk_args);

        let (mut dpmem_init, mut dpmem_cleanup) = (Samples::default(), Samples::default());
        let (mut dpdk_init, mut dpdk_cleanup) = (Samples::default(), Samples::default());
        let (mut kernel_1t, mut kernel_2t) = (Samples::default(), Samples::default());
        for _ in 0..reps {
            let r = own
                .clone()
                .and_then(|own| child::run_init(&own, ChildKind::DpmemInit, &dpmem_args));
            remove_leftovers(mount.as_deref(), &prefix);
            dpmem_init.push(r.clone().map(|t| t.init));
            dpmem_cleanup.push(r.map(|t| t.cleanup));
            if let Ok(runner) = &runner {
                let r = runner.run_init(&dpdk_args);
                remove_leftovers(mount.as_deref(), &prefix);
                dpdk_init.push(r.clone().map(|t| t.init));
                dpdk_cleanup.push(r.map(|t| t.cleanup));
            }
            for (threads, samples) in [(1, &mut kernel_1t), (2, &mut kernel_2t)] {
                samples.push(hugepages.clone().and_then(|mount| {
                    crate::kernel_baseline::measure(&mount, &prefix, MEMORY_MB << 20, threads)
                }));
            }
        }

        let side = |missing: Option<&str>, s: Samples| match missing {
            Some(why) => Measurement::Missing(why.to_owned()),
            None => s.into_measurement(reps),
        };
        rows.push(Row {
            name: config.name.to_owned(),
            dpmem: dpmem_init.into_measurement(reps),
            dpdk: side(dpdk_missing, dpdk_init),
            extra: vec![
                dpmem_cleanup.into_measurement(reps),
                side(dpdk_missing, dpdk_cleanup),
                kernel_1t.into_measurement(reps),
                kernel_2t.into_measurement(reps),
            ],
            note,
        });
    }
    remove_leftovers(mount_for_notes.as_deref(), &prefix);

    let mount_text = mount_for_notes.map_or_else(
        || "hugetlbfs".to_owned(),
        |m| format!("hugetlbfs at {}", m.display()),
    );
    Report {
        family: "init".to_owned(),
        title: "EAL init of 1 GiB of 2 MiB hugepages".to_owned(),
        unit: "ms".to_owned(),
        reps,
        dpdk_build: dpdk_runner::build_text(&runner),
        extra_columns: vec![
            "dpmem cleanup".to_owned(),
            "dpdk cleanup".to_owned(),
            "kernel 1 thread".to_owned(),
            "kernel 2 threads".to_owned(),
        ],
        rows,
        notes: vec![
            "each rep runs every EAL in a fresh child process (rte_eal_init runs once per process)"
                .to_owned(),
            format!(
                "both sides: {} + the row's options + --file-prefix {prefix}; DPDK also: {}",
                SHARED_ARGS.join(" "),
                DPDK_ONLY_ARGS.join(" ")
            ),
            "cleanup: rte_eal_cleanup() / drop(Eal), timed after init".to_owned(),
            "DPDK's init includes fixed work besides memory: a 100 ms sleep to estimate the TSC \
             frequency when the CPU does not report it, and (shared-library build) dlopen of \
             every PMD in its plugin directory"
                .to_owned(),
            format!(
                "kernel: create + fallocate 1 GiB + mmap(MAP_SHARED|MAP_POPULATE) on {mount_text}, \
                 one file per thread; unmap/unlink not timed"
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn dpmem_gets_dpdk_args_without_dpdk_only_options() {
        assert_eq!(
            dpmem_args(&words(
                "--no-pci --no-telemetry --log-level=error -l 0 -m 1024 --file-prefix p"
            )),
            words("-l 0 -m 1024 --file-prefix p")
        );
        assert_eq!(
            dpmem_args(&words(
                "-n 4 --log-level lib.eal:debug -n4 --in-memory -m 8"
            )),
            words("--in-memory -m 8")
        );
    }
}
