//! Families whose rows are a time per operation, timed inside child processes: one child per
//! side and repetition runs every selected row and prints one result line per row, and the
//! parent takes the medians. The `mbuf` and `frame` families share this; each has its own
//! rows, children and notes.
//!
//! A result line is `MARKER row <i> ns <ns per op> cycles <cycles per op>` or
//! `MARKER row <i> error <why>`, `<i>` the row's place in the family's full row list.

use std::path::PathBuf;

use crate::child::{self, ChildKind};
use crate::clocks::Elapsed;
use crate::report::{Measurement, Row};
use crate::row_selection::RowSelection;
use crate::samples::Samples;

/// One row's figures, per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PerOp {
    pub ns: f64,
    pub cycles: f64,
}

impl PerOp {
    pub(crate) fn of(elapsed: Elapsed, ops: u64) -> PerOp {
        PerOp {
            ns: elapsed.ns as f64 / ops as f64,
            cycles: elapsed.cycles as f64 / ops as f64,
        }
    }
}

/// A child's result line for row `i`.
pub(crate) fn print_row(marker: &str, i: usize, result: Result<PerOp, String>) {
    match result {
        Ok(p) => println!("{marker} row {i} ns {} cycles {}", p.ns, p.cycles),
        // One line: the parent reads results line by line.
        Err(e) => println!(
            "{marker} row {i} error {}",
            e.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

/// Per row, what one child reported: figures, or why there are none.
pub(crate) fn parse_child_lines(
    lines: &[String],
    rows: usize,
) -> Result<Vec<Result<PerOp, String>>, String> {
    let mut cells = vec![Err("the child reported nothing for this row".to_owned()); rows];
    for line in lines {
        let bad = || format!("malformed child line {line:?}");
        let mut words = line.split_whitespace().skip(1);
        if words.next() != Some("row") {
            return Err(bad());
        }
        let i: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let cell = cells.get_mut(i).ok_or_else(bad)?;
        *cell = match words.next() {
            Some("ns") => {
                let ns = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                if words.next() != Some("cycles") {
                    return Err(bad());
                }
                let cycles = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
                Ok(PerOp { ns, cycles })
            }
            Some("error") => Err(words.collect::<Vec<_>>().join(" ")),
            _ => return Err(bad()),
        };
    }
    Ok(cells)
}

/// One side's repetitions of every row: nanoseconds and cycles per operation.
#[derive(Debug, Default)]
pub(crate) struct SideSamples {
    ns: Vec<Samples>,
    cycles: Vec<Samples>,
}

impl SideSamples {
    fn new(rows: usize) -> SideSamples {
        SideSamples {
            ns: (0..rows).map(|_| Samples::default()).collect(),
            cycles: (0..rows).map(|_| Samples::default()).collect(),
        }
    }

    fn push(&mut self, i: usize, cell: Result<PerOp, String>) {
        self.ns[i].push(cell.clone().map(|p| p.ns));
        self.cycles[i].push(cell.map(|p| p.cycles));
    }
}

/// A family's children: what they are and how they mark their lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Children {
    pub marker: &'static str,
    /// Rows of the family (all of them, selected or not).
    pub rows: usize,
    pub dpmem: ChildKind,
    pub dpdk: ChildKind,
}

/// Where each side's program is and what its EAL gets.
#[derive(Debug)]
pub(crate) struct SidePrograms<'a> {
    pub own: &'a Result<PathBuf, String>,
    pub dpmem_args: &'a [String],
    /// `Err` (why) when DPDK's side cannot run: then only dpmem's children run.
    pub dpdk: &'a Result<PathBuf, String>,
    pub dpdk_args: &'a [String],
    /// The file prefix both sides use, whose leftovers go after every child.
    pub prefix: &'a str,
}

/// Both sides' repetitions.
#[derive(Debug)]
pub(crate) struct BothSides {
    dpmem: SideSamples,
    dpdk: SideSamples,
}

/// `reps` repetitions of the selected rows: per repetition one child per side, the sides
/// taking turns at going first, so neither always runs on the warmer machine.
pub(crate) fn run_reps(
    children: Children,
    programs: &SidePrograms<'_>,
    reps: usize,
    selection: &RowSelection,
) -> BothSides {
    let mut both = BothSides {
        dpmem: SideSamples::new(children.rows),
        dpdk: SideSamples::new(children.rows),
    };
    for rep in 0..reps {
        let mut sides = vec![children.dpmem];
        if programs.dpdk.is_ok() {
            sides.push(children.dpdk);
        }
        if rep % 2 == 1 {
            sides.reverse();
        }
        for kind in sides {
            let (program, args, samples) = if kind == children.dpmem {
                (programs.own, programs.dpmem_args, &mut both.dpmem)
            } else {
                (programs.dpdk, programs.dpdk_args, &mut both.dpdk)
            };
            let lines = program.clone().and_then(|program| {
                child::run_lines(&program, kind, selection, args, children.marker)
            });
            crate::init::remove_leftovers(None, programs.prefix);
            match lines.and_then(|lines| parse_child_lines(&lines, children.rows)) {
                Ok(cells) => {
                    for &i in selection.indices() {
                        samples.push(i, cells[i].clone());
                    }
                }
                Err(e) => {
                    for &i in selection.indices() {
                        samples.push(i, Err(e.clone()));
                    }
                }
            }
        }
    }
    both
}

impl BothSides {
    /// The table: per selected row its name, both medians in ns, both in cycles as the
    /// extra columns, and its note. `dpdk_missing` is why DPDK's side did not run, if it
    /// did not.
    pub(crate) fn into_rows(
        self,
        names_and_notes: Vec<(String, String)>,
        reps: usize,
        selection: &RowSelection,
        dpdk_missing: Option<&String>,
    ) -> Vec<Row> {
        let theirs = |samples: Samples| match dpdk_missing {
            Some(why) => Measurement::Missing(why.clone()),
            None => samples.into_measurement(reps),
        };
        names_and_notes
            .into_iter()
            .zip(self.dpmem.ns.into_iter().zip(self.dpmem.cycles))
            .zip(self.dpdk.ns.into_iter().zip(self.dpdk.cycles))
            .enumerate()
            .filter(|(i, _)| selection.contains(*i))
            .map(
                |(_, (((name, note), (ours_ns, ours_cycles)), (theirs_ns, theirs_cycles)))| Row {
                    name,
                    dpmem: ours_ns.into_measurement(reps),
                    dpdk: theirs(theirs_ns),
                    extra: vec![ours_cycles.into_measurement(reps), theirs(theirs_cycles)],
                    note: Some(note),
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_lines_round_trip_figures_and_errors() {
        let lines: Vec<String> = [
            "DPMEM_BENCH_X row 0 ns 4.5 cycles 11.25",
            "DPMEM_BENCH_X row 2 error a pool ran out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cells = parse_child_lines(&lines, 3).unwrap();
        assert_eq!(
            cells[0],
            Ok(PerOp {
                ns: 4.5,
                cycles: 11.25
            })
        );
        assert!(cells[1].is_err());
        assert_eq!(cells[2], Err("a pool ran out".to_owned()));
        for bad in [
            "DPMEM_BENCH_X row 9 ns 1 cycles 1",
            "DPMEM_BENCH_X row 0 ns x cycles 1",
            "DPMEM_BENCH_X row 0 ns 1",
            "DPMEM_BENCH_X pool 7",
        ] {
            assert!(parse_child_lines(&[bad.to_owned()], 3).is_err(), "{bad}");
        }
    }

    #[test]
    fn per_op_divides_both_clocks() {
        let p = PerOp::of(
            Elapsed {
                ns: 1000,
                cycles: 2500,
            },
            100,
        );
        assert_eq!(
            p,
            PerOp {
                ns: 10.0,
                cycles: 25.0
            }
        );
    }
}
