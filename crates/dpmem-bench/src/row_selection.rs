//! Which rows of a workload run: all of them, or those whose name contains `--filter`'s
//! pattern (to profile one row without waiting for the others).
//!
//! A selection is a list of indices into the workload's full row list, so a child that runs
//! a few rows still reports each under the index the parent knows it by; children get it as
//! one argument, the indices joined by commas.

/// Indices of the rows to run, ascending, into the workload's full row list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSelection(Vec<usize>);

impl RowSelection {
    /// Every row of `names` whose name contains `filter`, or every row without one.
    pub fn matching(names: &[String], filter: Option<&str>) -> RowSelection {
        RowSelection(
            names
                .iter()
                .enumerate()
                .filter(|(_, name)| filter.is_none_or(|f| name.contains(f)))
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// The selected indices, ascending.
    pub fn indices(&self) -> &[usize] {
        &self.0
    }

    /// Whether row `i` runs.
    pub fn contains(&self, i: usize) -> bool {
        self.0.binary_search(&i).is_ok()
    }

    /// Whether no row runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The argument a child gets: `0,3,5`.
    pub fn to_arg(&self) -> String {
        self.0
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`RowSelection::to_arg`]'s form for a workload of `rows` rows.
    pub fn from_arg(arg: &str, rows: usize) -> Result<RowSelection, String> {
        let mut indices = Vec::new();
        for word in arg.split(',').filter(|w| !w.is_empty()) {
            match word.parse::<usize>() {
                Ok(i) if i < rows => indices.push(i),
                _ => {
                    return Err(format!(
                        "bad row index {word:?} (the workload has {rows} rows)"
                    ))
                }
            }
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(RowSelection(indices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "ptr SP/SC 1c single",
            "ptr MP/MC 1c single",
            "16B SP/SC 2c bulk 8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn a_filter_keeps_rows_whose_name_contains_it() {
        assert_eq!(RowSelection::matching(&names(), None).indices(), [0, 1, 2]);
        let s = RowSelection::matching(&names(), Some("SP/SC"));
        assert_eq!(s.indices(), [0, 2]);
        assert!(s.contains(2) && !s.contains(1));
        assert!(RowSelection::matching(&names(), Some("nothing")).is_empty());
    }

    #[test]
    fn the_child_argument_round_trips_and_bad_indices_are_refused() {
        let s = RowSelection::matching(&names(), Some("SP/SC"));
        assert_eq!(s.to_arg(), "0,2");
        assert_eq!(RowSelection::from_arg("0,2", 3), Ok(s));
        assert_eq!(
            RowSelection::from_arg("", 3).unwrap().indices(),
            [] as [usize; 0]
        );
        assert!(RowSelection::from_arg("3", 3).is_err());
        assert!(RowSelection::from_arg("x", 3).is_err());
    }
}
