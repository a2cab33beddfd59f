//! Several runs of one workload, read together: per row the median over the runs and the
//! range of dpmem/dpdk, the same for the closing ratio, and which rows are behind DPDK.
//!
//! One run's figures move with things a run cannot see (where the allocator put the rings,
//! which CPU the kernel gave a thread, another tenant's load), so a ratio from one run can sit
//! anywhere in a band; the range says how wide the band was, and a row is called behind DPDK
//! only by its median over the runs.

use serde::Serialize;

use crate::report::{render_notes, render_table, Better, Footnotes, Measurement, Report};
use crate::stats::median;

/// Median and range of one figure over the runs that measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median over the runs.
    pub median: f64,
    /// The smallest run's figure.
    pub min: f64,
    /// The largest run's figure.
    pub max: f64,
    /// How many runs measured it.
    pub runs: usize,
}

impl Spread {
    /// `None` without values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        Some(Spread {
            median: median(values)?,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            runs: values.len(),
        })
    }

    /// `0.82–0.86`.
    fn range_text(&self) -> String {
        format!("{:.2}–{:.2}", self.min, self.max)
    }
}

/// One row over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatedRow {
    /// The row's name.
    pub name: String,
    /// Median over the runs of dpmem's figure.
    pub dpmem: Measurement,
    /// Median over the runs of DPDK's figure.
    pub dpdk: Measurement,
    /// dpmem/dpdk over the runs that have both sides.
    pub ratio: Option<Spread>,
    /// Whether the median ratio is on DPDK's better side of 1.0.
    pub behind_dpdk: bool,
    /// Medians of the extra columns.
    pub extra: Vec<Measurement>,
    /// What a reader must know: the row's own note (the first run's: what the row does, the
    /// same in every run), then cells missing in some runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A workload run several times, each run in fresh processes.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatedReport {
    /// The family, as named on the command line.
    pub family: String,
    /// One line saying what the rows measure.
    pub title: String,
    /// The unit of every number in the table.
    pub unit: String,
    /// Whether lower (a time) or higher (a rate) numbers and ratios are better.
    pub better: Better,
    /// Repetitions inside each run (`--reps`).
    pub reps: usize,
    /// Runs asked for (`--repeat`).
    pub repeats: usize,
    /// The DPDK build measured against, or why there is none.
    pub dpdk_build: String,
    /// Names of the extra columns.
    pub extra_columns: Vec<String>,
    /// The rows, in the first run's order.
    pub rows: Vec<RepeatedRow>,
    /// The geometric mean of the ratios, over the runs.
    pub ratio_dpmem_over_dpdk: Option<Spread>,
    /// Rows whose median ratio is on DPDK's better side of 1.0.
    pub behind_dpdk: Vec<String>,
    /// Why the runs that gave no report failed, each as `run N: why`.
    pub failed_runs: Vec<String>,
    /// The first run's notes (method and caveats; the same in every run).
    pub notes: Vec<String>,
    /// Every run's report, as `--json` prints one.
    pub runs: Vec<serde_json::Value>,
}

/// One cell over the runs: the median of the values, and what to say about runs without one.
fn median_cell(cells: &[&Measurement], side: &str) -> (Measurement, Option<String>) {
    let values: Vec<f64> = cells.iter().filter_map(|m| m.value()).collect();
    let first_reason = cells.iter().find_map(|m| match m {
        Measurement::Missing(why) => Some(why.clone()),
        Measurement::Value(_) => None,
    });
    match (median(&values), first_reason) {
        (Some(m), None) => (Measurement::Value(m), None),
        (Some(m), Some(why)) => (
            Measurement::Value(m),
            Some(format!(
                "{side} missing in {} of {} runs ({why})",
                cells.len() - values.len(),
                cells.len()
            )),
        ),
        (None, Some(why)) => (Measurement::Missing(why), None),
        (None, None) => (Measurement::Missing("no run measured it".to_owned()), None),
    }
}

impl RepeatedReport {
    /// Reads `runs` (at least one) together; `failed_runs` are the runs without a report.
    pub fn new(
        runs: &[Report],
        repeats: usize,
        failed_runs: Vec<String>,
    ) -> Option<RepeatedReport> {
        let first = runs.first()?;
        let better = first.better();
        let rows: Vec<RepeatedRow> = first
            .rows
            .iter()
            .map(|row| {
                let same: Vec<&crate::report::Row> = runs
                    .iter()
                    .filter_map(|r| r.rows.iter().find(|x| x.name == row.name))
                    .collect();
                let (dpmem, dpmem_note) =
                    median_cell(&same.iter().map(|r| &r.dpmem).collect::<Vec<_>>(), "dpmem");
                let (dpdk, dpdk_note) =
                    median_cell(&same.iter().map(|r| &r.dpdk).collect::<Vec<_>>(), "dpdk");
                let extra = (0..row.extra.len())
                    .map(|c| {
                        let cells: Vec<&Measurement> =
                            same.iter().filter_map(|r| r.extra.get(c)).collect();
                        median_cell(&cells, "").0
                    })
                    .collect();
                let ratios: Vec<f64> = same.iter().filter_map(|r| r.ratio()).collect();
                let ratio = Spread::of(&ratios);
                let notes: Vec<String> = [row.note.clone(), dpmem_note, dpdk_note]
                    .into_iter()
                    .flatten()
                    .collect();
                RepeatedRow {
                    name: row.name.clone(),
                    dpmem,
                    dpdk,
                    behind_dpdk: ratio.is_some_and(|r| is_behind(better, r.median)),
                    ratio,
                    extra,
                    note: (!notes.is_empty()).then(|| notes.join("; ")),
                }
            })
            .collect();
        let geomeans: Vec<f64> = runs.iter().filter_map(Report::ratio_geomean).collect();
        Some(RepeatedReport {
            family: first.family.clone(),
            title: first.title.clone(),
            unit: first.unit.clone(),
            better,
            reps: first.reps,
            repeats,
            dpdk_build: first.dpdk_build.clone(),
            extra_columns: first.extra_columns.clone(),
            behind_dpdk: rows
                .iter()
                .filter(|r| r.behind_dpdk)
                .map(|r| r.name.clone())
                .collect(),
            rows,
            ratio_dpmem_over_dpdk: Spread::of(&geomeans),
            failed_runs,
            notes: first.notes.clone(),
            runs: runs.iter().map(Report::to_json).collect(),
        })
    }

    fn direction_text(&self) -> &'static str {
        match self.better {
            Better::Lower => "time, lower is better",
            Better::Higher => "rate, higher is better",
        }
    }

    /// The report as an aligned text table; the last line is the closing ratio.
    pub fn render_text(&self) -> String {
        let mut footnotes = Footnotes::default();
        let mut header = vec![
            self.family.clone(),
            "dpmem".to_owned(),
            "dpdk".to_owned(),
            "dpmem/dpdk median".to_owned(),
            "range".to_owned(),
        ];
        header.extend(self.extra_columns.iter().cloned());
        let mut table = vec![header];
        for row in &self.rows {
            let mut line = vec![
                row.name.clone(),
                footnotes.cell(&row.dpmem),
                footnotes.cell(&row.dpdk),
            ];
            match &row.ratio {
                Some(r) => line.extend([format!("{:.2}", r.median), r.range_text()]),
                None => line.extend(["-".to_owned(), "-".to_owned()]),
            }
            line.extend(row.extra.iter().map(|m| footnotes.cell(m)));
            table.push(line);
        }

        let runs = self.runs.len();
        let mut out = format!(
            "{}: {} ({runs} of {} runs, each in fresh processes, each cell the median of {} \
             reps; dpmem, dpdk and the extra columns: median over the runs; {}; vs {})\n",
            self.family, self.title, self.repeats, self.reps, self.unit, self.dpdk_build
        );
        out.push_str(&render_table(&table));
        let row_notes = self
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.note.as_deref()));
        out.push_str(&render_notes(row_notes, &footnotes, &self.notes));
        for why in &self.failed_runs {
            out.push_str(&format!("failed {why}\n"));
        }
        let threshold = match self.better {
            Better::Lower => "above",
            Better::Higher => "below",
        };
        let behind = if self.behind_dpdk.is_empty() {
            "none".to_owned()
        } else {
            self.behind_dpdk.join(", ")
        };
        out.push_str(&format!(
            "behind DPDK in the median (dpmem/dpdk {threshold} 1.0): {behind}\n"
        ));
        let what = self.direction_text();
        match &self.ratio_dpmem_over_dpdk {
            Some(r) => out.push_str(&format!(
                "ratio dpmem/dpdk ({what}): median {:.2}, range {} over {} runs\n",
                r.median,
                r.range_text(),
                r.runs
            )),
            None => out.push_str(&format!(
                "ratio dpmem/dpdk ({what}): n/a (no row has both sides)\n"
            )),
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report is plain data and always serializes")
    }
}

/// Whether a dpmem/dpdk ratio leaves dpmem behind: slower for a time, fewer for a rate.
fn is_behind(better: Better, ratio: f64) -> bool {
    match better {
        Better::Lower => ratio > 1.0,
        Better::Higher => ratio < 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Row;

    fn run(unit: &str, cells: &[(&str, f64, Option<f64>)]) -> Report {
        Report {
            family: "ring".to_owned(),
            title: "test".to_owned(),
            unit: unit.to_owned(),
            reps: 3,
            dpdk_build: "DPDK 22.11.0".to_owned(),
            extra_columns: vec![],
            rows: cells
                .iter()
                .map(|&(name, dpmem, dpdk)| Row {
                    name: name.to_owned(),
                    dpmem: Measurement::Value(dpmem),
                    dpdk: dpdk.map_or_else(
                        || Measurement::Missing("child died".to_owned()),
                        Measurement::Value,
                    ),
                    extra: vec![],
                    note: None,
                })
                .collect(),
            notes: vec![],
        }
    }

    #[test]
    fn rows_get_the_median_ratio_and_its_range() {
        let runs = [
            run("cycles", &[("a", 2.0, Some(1.0)), ("b", 1.0, Some(2.0))]),
            run("cycles", &[("a", 3.0, Some(1.0)), ("b", 1.0, Some(4.0))]),
            run("cycles", &[("a", 1.0, Some(2.0)), ("b", 1.0, Some(1.0))]),
        ];
        let r = RepeatedReport::new(&runs, 3, vec![]).unwrap();
        let a = r.rows[0].ratio.unwrap();
        assert_eq!((a.median, a.min, a.max, a.runs), (2.0, 0.5, 3.0, 3));
        assert_eq!(r.rows[0].dpmem, Measurement::Value(2.0));
        // A time: a above 1.0 is behind, b (0.5, 0.25, 1.0: median 0.5) is not.
        assert_eq!(r.behind_dpdk, ["a"]);
        let overall = r.ratio_dpmem_over_dpdk.unwrap();
        assert_eq!(overall.runs, 3);
        assert!(overall.min <= overall.median && overall.median <= overall.max);
        let text = r.render_text();
        assert!(text.lines().nth(1).unwrap().contains("median"), "{text}");
        assert!(text.lines().nth(1).unwrap().contains("range"), "{text}");
        assert!(text.contains("0.50–3.00"), "{text}");
        assert!(text.contains("behind DPDK in the median (dpmem/dpdk above 1.0): a\n"));
        assert!(text.ends_with("over 3 runs\n"), "{text}");
    }

    #[test]
    fn a_rate_is_behind_below_one() {
        let runs = [
            run(
                "million objects per second",
                &[("a", 2.0, Some(1.0)), ("b", 1.0, Some(2.0))],
            ),
            run(
                "million objects per second",
                &[("a", 2.0, Some(1.0)), ("b", 1.0, Some(2.0))],
            ),
        ];
        let r = RepeatedReport::new(&runs, 2, vec![]).unwrap();
        assert_eq!(r.behind_dpdk, ["b"]);
        let j = r.to_json();
        assert_eq!(j["behind_dpdk"][0], "b");
        assert_eq!(j["rows"][1]["ratio"]["median"], 0.5);
        assert_eq!(j["runs"].as_array().unwrap().len(), 2);
        assert_eq!(j["better"], "higher");
    }

    #[test]
    fn a_side_missing_in_some_runs_is_noted_and_one_missing_everywhere_is_kept() {
        let runs = [
            run("ms", &[("a", 2.0, Some(1.0)), ("b", 1.0, None)]),
            run("ms", &[("a", 4.0, None), ("b", 1.0, None)]),
        ];
        let r = RepeatedReport::new(&runs, 3, vec!["run 1: exit status 1".to_owned()]).unwrap();
        assert_eq!(r.rows[0].dpdk, Measurement::Value(1.0));
        assert_eq!(r.rows[0].ratio.unwrap().runs, 1);
        assert_eq!(
            r.rows[0].note.as_deref(),
            Some("dpdk missing in 1 of 2 runs (child died)")
        );
        assert_eq!(
            r.rows[1].dpdk,
            Measurement::Missing("child died".to_owned())
        );
        assert!(r.rows[1].ratio.is_none() && !r.rows[1].behind_dpdk);
        let text = r.render_text();
        assert!(text.contains("failed run 1: exit status 1"), "{text}");
        assert!(text.contains("(2 of 3 runs,"), "{text}");
        assert!(RepeatedReport::new(&[], 2, vec![]).is_none());
    }

    #[test]
    fn a_rows_own_note_is_kept_before_what_the_runs_add() {
        let mut first = run("ns per op", &[("a", 2.0, Some(1.0))]);
        first.rows[0].note = Some("dpmem: the safe handle".to_owned());
        let runs = [first, run("ns per op", &[("a", 2.0, None)])];
        let r = RepeatedReport::new(&runs, 2, vec![]).unwrap();
        assert_eq!(
            r.rows[0].note.as_deref(),
            Some("dpmem: the safe handle; dpdk missing in 1 of 2 runs (child died)")
        );
        assert!(
            r.render_text()
                .contains("a: dpmem: the safe handle; dpdk missing"),
            "{}",
            r.render_text()
        );
    }
}
