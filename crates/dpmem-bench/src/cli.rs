//! `dpmem bench <workload> [--json] [--reps N]`.

use crate::report::Report;
use crate::BenchOptions;

/// A workload family the command line can run.
#[derive(Debug)]
pub struct Workload {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line for `dpmem bench list`.
    pub about: &'static str,
    /// Runs it.
    pub run: fn(&BenchOptions) -> Report,
}

/// Every workload family known so far, in the order `list` prints them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "init",
        about: "EAL init of 1 GiB of 2 MiB hugepages: legacy, dynamic, in-memory (ms)",
        run: crate::init::run_init,
    },
    Workload {
        name: "ring",
        about:
            "ring_perf_autotest: single/burst/bulk, SP/SC and MP/MC, 1 and 2 cores (cycles/elem)",
        run: crate::ring::run_ring,
    },
    Workload {
        name: "malloc",
        about: "malloc/zmalloc+free 64 B..16 MiB, memzone reserve+free, churn (ns per op)",
        run: crate::malloc::run_malloc,
    },
    Workload {
        name: "mempool",
        about: "mempool_perf_autotest: cache 0/512, bulk 1..32, keep 32..512, 1 and 2 cores \
                (M objects/s, higher is better)",
        run: crate::mempool::run_mempool,
    },
];

const USAGE: &str = "usage: dpmem bench <workload> [--json] [--reps N]\n       dpmem bench list";

/// Parsed command line.
#[derive(Debug, PartialEq)]
enum Command {
    List,
    Help,
    Run {
        workload: String,
        json: bool,
        reps: usize,
    },
}

fn parse(args: &[String]) -> Result<Command, String> {
    let mut workload = None;
    let mut json = false;
    let mut reps = BenchOptions::default().reps;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "--reps" => {
                let v = it.next().ok_or("--reps needs a number")?;
                reps = parse_reps(v)?;
            }
            a if a.starts_with("--reps=") => reps = parse_reps(&a["--reps=".len()..])?,
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a if workload.is_none() => workload = Some(a.to_owned()),
            a => return Err(format!("unexpected argument {a}")),
        }
    }
    match workload.as_deref() {
        None => Err("no workload given".to_owned()),
        Some("list") => Ok(Command::List),
        Some(w) => Ok(Command::Run {
            workload: w.to_owned(),
            json,
            reps,
        }),
    }
}

fn parse_reps(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("--reps needs a positive number, not {v:?}")),
    }
}

fn known() -> String {
    WORKLOADS
        .iter()
        .map(|w| w.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Entry point of `dpmem bench`; `args` are the arguments after `bench`. Returns the exit
/// code: 0 on success (a row with a missing side is a result, not an error), 2 on misuse.
pub fn main_with_args(args: &[String]) -> i32 {
    let command = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dpmem bench: {e}\n{USAGE}\nworkloads: {}", known());
            return 2;
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}\nworkloads: {}", known());
            0
        }
        Command::List => {
            let width = WORKLOADS.iter().map(|w| w.name.len()).max().unwrap_or(0);
            for w in WORKLOADS {
                println!("{:<width$}  {}", w.name, w.about);
            }
            0
        }
        Command::Run {
            workload,
            json,
            reps,
        } => {
            let Some(w) = WORKLOADS.iter().find(|w| w.name == workload) else {
                eprintln!(
                    "dpmem bench: unknown workload {workload:?}; known workloads: {}",
                    known()
                );
                return 2;
            };
            let report = (w.run)(&BenchOptions { reps });
            if json {
                match serde_json::to_string_pretty(&report.to_json()) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("dpmem bench: {e}");
                        return 1;
                    }
                }
            } else {
                print!("{}", report.render_text());
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_workload_json_and_reps() {
        assert_eq!(
            parse(&args("init --json --reps 3")),
            Ok(Command::Run {
                workload: "init".into(),
                json: true,
                reps: 3
            })
        );
        assert_eq!(
            parse(&args("init --reps=7")),
            Ok(Command::Run {
                workload: "init".into(),
                json: false,
                reps: 7
            })
        );
        assert_eq!(parse(&args("list")), Ok(Command::List));
        assert!(parse(&args("init --reps 0")).is_err());
        assert!(parse(&args("init --reps")).is_err());
        assert!(parse(&args("")).is_err());
        assert!(parse(&args("init --bogus")).is_err());
    }

    #[test]
    fn unknown_workload_is_a_usage_error() {
        assert_eq!(main_with_args(&args("nosuch")), 2);
        assert_eq!(main_with_args(&args("list")), 0);
    }
}
