//! `dpmem bench <workload> [--json] [--reps N] [--repeat K] [--filter PATTERN]`.

use clap::builder::{PossibleValue, PossibleValuesParser, RangedU64ValueParser};

use crate::row_selection::RowSelection;
use crate::workloads::{workload, WORKLOADS};
use crate::BenchOptions;

/// The word that lists the workloads instead of running one.
const LIST: &str = "list";

fn workload_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(
        WORKLOADS
            .iter()
            .map(|w| PossibleValue::new(w.name).help(w.about))
            .chain([PossibleValue::new(LIST).help("print the workloads")]),
    )
}

fn positive() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

/// How `--reps` and `--repeat` differ, for `--help`.
const REPS_AND_REPEAT: &str = "\
--reps and --repeat:
  --reps N    repeats each measurement N times inside one run and prints the medians:
              dpmem's side in this process or its children, DPDK's in one child per
              repetition (or per rte_eal_init).
  --repeat K  runs the whole workload K times, each run in fresh processes (a new dpmem
              process with its own children), and prints per row the median over the
              runs and the range (min-max) of dpmem/dpdk, the closing ratio's median and
              range, and the rows behind DPDK in the median (dpmem/dpdk above 1.0 for a
              time, below 1.0 for a rate). Every run uses --reps N.

DPDK's side runs in the dpmem-bench-dpdk program, built with dpmem and found next to
it (or at $DPMEM_BENCH_DPDK); without it the DPDK column says why it is empty.";

/// The arguments of `dpmem bench`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = REPS_AND_REPEAT)]
pub struct BenchArgs {
    /// The workload family to run, or `list` to print them.
    #[arg(value_name = "WORKLOAD", value_parser = workload_parser())]
    pub workload: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Repetitions inside one run: each cell is the median of N measurements (--repeat
    /// runs the whole workload again instead).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = positive())]
    pub reps: usize,
    /// Runs of the whole workload, each in fresh processes; with K > 1 each row shows the
    /// median dpmem/dpdk ratio over the runs and its range (see --help).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = positive())]
    pub repeat: usize,
    /// Run only the rows whose name contains PATTERN, e.g. "SP/SC 1c bulk" (for profiling).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
}

/// `dpmem bench`: what to print on stdout, or why the command failed. A row with a missing
/// side is a result (its cell says why), not a failure.
pub fn run(args: &BenchArgs) -> Result<String, String> {
    if args.workload == LIST {
        let width = WORKLOADS.iter().map(|w| w.name.len()).max().unwrap_or(0);
        return Ok(WORKLOADS
            .iter()
            .map(|w| format!("{:<width$}  {}\n", w.name, w.about))
            .collect());
    }
    let workload =
        workload(&args.workload).ok_or_else(|| format!("unknown workload {:?}", args.workload))?;
    let names = (workload.rows)();
    if RowSelection::matching(&names, args.filter.as_deref()).is_empty() {
        return Err(format!(
            "no {} row's name contains {:?}; the rows are: {}",
            workload.name,
            args.filter.as_deref().unwrap_or_default(),
            names.join(", ")
        ));
    }
    let options = BenchOptions {
        reps: args.reps,
        filter: args.filter.clone(),
    };
    let json = |value: serde_json::Value| {
        serde_json::to_string_pretty(&value)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string())
    };
    if args.repeat > 1 {
        let report = crate::repeat::run_repeated(workload, &options, args.repeat)?;
        return if args.json {
            json(report.to_json())
        } else {
            Ok(report.render_text())
        };
    }
    let report = (workload.run)(&options);
    if args.json {
        json(report.to_json())
    } else {
        Ok(report.render_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Bench {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(s: &str) -> Result<BenchArgs, clap::Error> {
        Bench::try_parse_from(std::iter::once("bench").chain(s.split_whitespace())).map(|b| b.args)
    }

    #[test]
    fn parses_workload_json_reps_repeat_and_filter() {
        let a = parse("init --json --reps 3").unwrap();
        assert_eq!(
            (a.workload.as_str(), a.json, a.reps, a.repeat),
            ("init", true, 3, 1)
        );
        let a = parse("ring --reps=7 --repeat 4 --filter SP/SC").unwrap();
        assert_eq!((a.reps, a.repeat), (7, 4));
        assert_eq!(a.filter.as_deref(), Some("SP/SC"));
        assert_eq!(parse("list").unwrap().workload, "list");
        assert!(parse("init --reps 0").is_err());
        assert!(parse("init --repeat 0").is_err());
        assert!(parse("init --reps").is_err());
        assert!(parse("").is_err());
        assert!(parse("init --bogus").is_err());
    }

    #[test]
    fn an_unknown_workload_names_the_known_ones() {
        let e = parse("nosuch").unwrap_err().to_string();
        assert!(
            e.contains("nosuch") && e.contains("init") && e.contains("mempool"),
            "{e}"
        );
    }

    #[test]
    fn every_workload_has_distinct_row_names() {
        for w in WORKLOADS {
            let mut names = (w.rows)();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "{}", w.name);
            assert!(n > 0);
        }
    }

    #[test]
    fn a_filter_matching_no_row_is_an_error_that_lists_the_rows() {
        let e = run(&parse("init --filter nosuchrow").unwrap()).unwrap_err();
        assert!(e.contains("nosuchrow") && e.contains("legacy"), "{e}");
        let list = run(&parse("list").unwrap()).unwrap();
        assert!(list.lines().any(|l| l.starts_with("ring ")), "{list}");
    }
}
