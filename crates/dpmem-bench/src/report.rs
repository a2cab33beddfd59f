//! The result of one workload family, and how it is printed: an aligned table or JSON.
//!
//! Every family reports the same rows on dpmem and on DPDK 22.11, a per-row ratio
//! dpmem/dpdk, and one closing line with the geometric mean of those ratios. Most families
//! report a time (lower is better); a family whose unit is a rate (ends in `per second`,
//! [`RATE_UNIT_SUFFIX`]) reports throughput, and its closing line says that higher is better.
//! A side that could not be measured carries the reason instead of a number, so a table
//! never silently drops a row.

use serde::{Deserialize, Serialize};

use crate::stats::geometric_mean;

/// How a unit that is a rate ends: `objects per second`, `million objects per second`.
pub const RATE_UNIT_SUFFIX: &str = "per second";

/// Which way a report's numbers are better, and so how to read its ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// A time per operation: dpmem/dpdk below 1 means dpmem is faster.
    Lower,
    /// A rate: dpmem/dpdk above 1 means dpmem is faster.
    Higher,
}

/// One cell: a median, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// The median over the repetitions, in the report's unit.
    Value(f64),
    /// Why this cell has no number (DPDK not built in, no hugepages, init failed, ...).
    Missing(String),
}

impl Measurement {
    /// The number, if measured.
    pub fn value(&self) -> Option<f64> {
        match self {
            Measurement::Value(v) => Some(*v),
            Measurement::Missing(_) => None,
        }
    }
}

/// One line of a table: the same operation on both sides, plus optional extra figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was measured, e.g. `legacy`.
    pub name: String,
    /// dpmem's median.
    pub dpmem: Measurement,
    /// DPDK 22.11's median.
    pub dpdk: Measurement,
    /// One entry per [`Report::extra_columns`], in that order.
    pub extra: Vec<Measurement>,
    /// Something the reader must know to read this row (e.g. ran with `--no-huge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Row {
    /// dpmem / dpdk when both sides were measured (and DPDK's time is not zero).
    pub fn ratio(&self) -> Option<f64> {
        let (a, b) = (self.dpmem.value()?, self.dpdk.value()?);
        (b > 0.0).then(|| a / b)
    }
}

/// One workload family's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The family, as named on the command line (`init`, `ring`, ...).
    pub family: String,
    /// One line saying what the rows measure.
    pub title: String,
    /// The unit of every number in the table (`ms`, `cycles/elem`, ...); one that ends in
    /// [`RATE_UNIT_SUFFIX`] makes the report a rate report (see [`Report::better`]).
    pub unit: String,
    /// How many repetitions each median is taken over.
    pub reps: usize,
    /// The DPDK build measured against (`DPDK 22.11.4`), or why there is none.
    pub dpdk_build: String,
    /// Names of the extra columns after the ratio (e.g. a kernel baseline).
    pub extra_columns: Vec<String>,
    /// The table's rows.
    pub rows: Vec<Row>,
    /// Free-form lines printed under the table (method, caveats).
    pub notes: Vec<String>,
}

/// What `--json` prints: the report plus the derived ratios.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// dpmem/dpdk per row, `null` where a side is missing.
    ratios: Vec<Option<f64>>,
    /// Whether lower (a time) or higher (a rate) numbers and ratios are better.
    better: Better,
    /// The geometric mean of `ratios` over rows with both sides.
    ratio_dpmem_over_dpdk: Option<f64>,
}

impl Report {
    /// Lower for times, higher for rates: the direction follows from the unit, so a family
    /// cannot print a rate and call it a time.
    pub fn better(&self) -> Better {
        if self.unit.trim_end().ends_with(RATE_UNIT_SUFFIX) {
            Better::Higher
        } else {
            Better::Lower
        }
    }

    /// How the closing line names the direction: `time, lower is better`.
    pub fn direction_text(&self) -> &'static str {
        match self.better() {
            Better::Lower => "time, lower is better",
            Better::Higher => "rate, higher is better",
        }
    }

    /// Geometric mean of dpmem/dpdk over the rows that have both sides.
    pub fn ratio_geomean(&self) -> Option<f64> {
        let ratios: Vec<f64> = self.rows.iter().filter_map(Row::ratio).collect();
        geometric_mean(&ratios)
    }

    /// The closing line every table ends with.
    pub fn ratio_line(&self) -> String {
        let what = self.direction_text();
        match self.ratio_geomean() {
            Some(g) => format!("ratio dpmem/dpdk ({what}): {g:.2}"),
            None => format!("ratio dpmem/dpdk ({what}): n/a (no row has both sides)"),
        }
    }

    /// The report as JSON, with per-row ratios and their geometric mean.
    pub fn to_json(&self) -> serde_json::Value {
        let json = JsonReport {
            report: self,
            ratios: self.rows.iter().map(Row::ratio).collect(),
            better: self.better(),
            ratio_dpmem_over_dpdk: self.ratio_geomean(),
        };
        serde_json::to_value(json).expect("a report is plain data and always serializes")
    }

    /// The report as an aligned text table; the last line is [`Report::ratio_line`].
    ///
    /// A missing cell prints as `n/a [k]`, with reason `k` listed under the table: reasons
    /// (pkg-config errors, DPDK's init error) are too long to sit in a column.
    pub fn render_text(&self) -> String {
        let mut footnotes = Footnotes::default();
        let mut header = vec![
            self.family.clone(),
            "dpmem".to_owned(),
            "dpdk".to_owned(),
            "dpmem/dpdk".to_owned(),
        ];
        header.extend(self.extra_columns.iter().cloned());
        let mut table = vec![header];
        for row in &self.rows {
            let mut line = vec![
                row.name.clone(),
                footnotes.cell(&row.dpmem),
                footnotes.cell(&row.dpdk),
            ];
            line.push(
                row.ratio()
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            );
            line.extend(row.extra.iter().map(|m| footnotes.cell(m)));
            table.push(line);
        }

        let mut out = format!(
            "{}: {} (median of {} reps, {}; vs {})\n",
            self.family, self.title, self.reps, self.unit, self.dpdk_build
        );
        out.push_str(&render_table(&table));
        let row_notes = self
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.note.as_deref()));
        out.push_str(&render_notes(row_notes, &footnotes, &self.notes));
        out.push_str(&self.ratio_line());
        out.push('\n');
        out
    }
}

/// The reasons of a table's missing cells: a cell prints as `n/a [k]` and reason `k` is
/// listed under the table, since reasons (pkg-config errors, DPDK's init error) are too long
/// to sit in a column. A reason shared by several cells is listed once.
#[derive(Debug, Default)]
pub(crate) struct Footnotes {
    reasons: Vec<String>,
}

impl Footnotes {
    /// The text of one cell.
    pub fn cell(&mut self, m: &Measurement) -> String {
        match m {
            Measurement::Value(v) => format_value(*v),
            Measurement::Missing(why) => {
                let k = match self.reasons.iter().position(|r| r == why) {
                    Some(i) => i + 1,
                    None => {
                        self.reasons.push(why.clone());
                        self.reasons.len()
                    }
                };
                format!("n/a [{k}]")
            }
        }
    }

    /// One line per reason: `[k] why`.
    pub fn render(&self) -> String {
        self.reasons
            .iter()
            .enumerate()
            .map(|(i, why)| format!("[{}] {why}\n", i + 1))
            .collect()
    }
}

/// Lines of cells as an aligned table: names (the first column) left-aligned, numbers
/// right-aligned so their digits line up.
/// What goes under a table: each row's note, the reasons of its missing cells, then the
/// report's own notes.
pub(crate) fn render_notes<'a>(
    row_notes: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    footnotes: &Footnotes,
    notes: &[String],
) -> String {
    let mut out = String::new();
    for (name, note) in row_notes {
        if let Some(note) = note {
            out.push_str(&format!("{name}: {note}\n"));
        }
    }
    out.push_str(&footnotes.render());
    for note in notes {
        out.push_str(note);
        out.push('\n');
    }
    out
}

pub(crate) fn render_table(table: &[Vec<String>]) -> String {
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let w = table
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count());
            w.max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in table {
        let mut text = String::new();
        for (c, s) in line.iter().enumerate() {
            // `{:>w$}` pads by chars, so a cell with an en dash still lines up.
            if c == 0 {
                text.push_str(&format!("{s:<w$}", w = widths[c]));
            } else {
                text.push_str(&format!("  {s:>w$}", w = widths[c]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Three significant figures or more: enough to compare, few enough to read.
pub(crate) fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rows: Vec<Row>) -> Report {
        Report {
            family: "init".to_owned(),
            title: "test".to_owned(),
            unit: "ms".to_owned(),
            reps: 5,
            dpdk_build: "DPDK 22.11.0".to_owned(),
            extra_columns: vec!["kernel".to_owned()],
            rows,
            notes: vec![],
        }
    }

    fn row(name: &str, dpmem: Measurement, dpdk: Measurement) -> Row {
        Row {
            name: name.to_owned(),
            dpmem,
            dpdk,
            extra: vec![Measurement::Value(1.0)],
            note: None,
        }
    }

    #[test]
    fn geometric_mean_skips_rows_missing_a_side() {
        let r = report(vec![
            row("a", Measurement::Value(2.0), Measurement::Value(1.0)),
            row("b", Measurement::Value(1.0), Measurement::Value(2.0)),
            row(
                "c",
                Measurement::Value(8.0),
                Measurement::Missing("no dpdk".into()),
            ),
        ]);
        assert_eq!(r.rows[2].ratio(), None);
        assert!((r.ratio_geomean().unwrap() - 1.0).abs() < 1e-12);
        let text = r.render_text();
        assert_eq!(
            text.lines().last().unwrap(),
            "ratio dpmem/dpdk (time, lower is better): 1.00"
        );
        assert!(text.contains("n/a [1]"));
        assert!(text.contains("[1] no dpdk"));
    }

    #[test]
    fn all_dpdk_missing_says_so_and_reuses_reasons() {
        let why = Measurement::Missing("built without the `dpdk` feature".into());
        let r = report(vec![
            row("a", Measurement::Value(2.0), why.clone()),
            row("b", Measurement::Value(3.0), why),
        ]);
        assert_eq!(r.ratio_geomean(), None);
        let text = r.render_text();
        assert!(text.ends_with("n/a (no row has both sides)\n"));
        // One footnote for the shared reason, referenced from both rows.
        assert_eq!(text.matches("n/a [1]").count(), 2);
        assert!(!text.contains("[2]"));
        assert!(text.contains("[1] built without the `dpdk` feature"));
    }

    #[test]
    fn table_columns_are_aligned() {
        let r = report(vec![
            row(
                "legacy",
                Measurement::Value(123.456),
                Measurement::Value(100.0),
            ),
            row(
                "in-memory",
                Measurement::Value(9.5),
                Measurement::Value(10.0),
            ),
        ]);
        let text = r.render_text();
        let lines: Vec<&str> = text.lines().skip(1).take(3).collect();
        let widths: Vec<usize> = lines.iter().map(|l| l.len()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
        assert!(lines[1].contains("1.23"));
    }

    #[test]
    fn json_carries_ratios_and_missing_reasons() {
        let r = report(vec![
            row("a", Measurement::Value(4.0), Measurement::Value(2.0)),
            row(
                "b",
                Measurement::Value(1.0),
                Measurement::Missing("why".into()),
            ),
        ]);
        let j = r.to_json();
        assert_eq!(j["family"], "init");
        assert_eq!(j["ratios"][0], 2.0);
        assert!(j["ratios"][1].is_null());
        assert_eq!(j["ratio_dpmem_over_dpdk"], 2.0);
        assert_eq!(j["rows"][1]["dpdk"]["missing"], "why");
        assert_eq!(j["rows"][0]["dpmem"]["value"], 4.0);
        assert_eq!(j["better"], "lower");
    }

    #[test]
    fn a_rate_unit_makes_higher_better() {
        let mut r = report(vec![
            row("a", Measurement::Value(300.0), Measurement::Value(200.0)),
            row("b", Measurement::Value(100.0), Measurement::Value(150.0)),
        ]);
        assert_eq!(r.better(), Better::Lower);
        r.unit = "million objects per second".to_owned();
        assert_eq!(r.better(), Better::Higher);
        // The ratio stays dpmem/dpdk; only how to read it changes.
        assert_eq!(r.rows[0].ratio(), Some(1.5));
        assert_eq!(
            r.render_text().lines().last().unwrap(),
            "ratio dpmem/dpdk (rate, higher is better): 1.00"
        );
        assert_eq!(r.to_json()["better"], "higher");
    }
}
