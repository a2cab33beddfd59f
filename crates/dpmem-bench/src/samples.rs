//! The repetitions of one table cell taken in child processes: the values the children
//! reported and the first reason one of them gave instead of a value.

use crate::report::Measurement;
use crate::stats::median;

/// Repetitions of one cell and the first failure among them.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    values: Vec<f64>,
    failure: Option<String>,
}

impl Samples {
    /// One repetition's value, or why it has none.
    pub(crate) fn push(&mut self, r: Result<f64, String>) {
        match r {
            Ok(v) => self.values.push(v),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    /// The median of `reps` repetitions, or the failure (with how many reps it hit).
    pub(crate) fn into_measurement(self, reps: usize) -> Measurement {
        match (self.failure, median(&self.values)) {
            (Some(e), _) if self.values.is_empty() => Measurement::Missing(e),
            (Some(e), _) => Measurement::Missing(format!(
                "failed in {} of {reps} reps: {e}",
                reps - self.values.len()
            )),
            (None, Some(m)) => Measurement::Value(m),
            (None, None) => Measurement::Missing("not run".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rep_keeps_its_reason() {
        let mut s = Samples::default();
        s.push(Ok(2.0));
        s.push(Err("boom".to_owned()));
        assert_eq!(
            s.into_measurement(2),
            Measurement::Missing("failed in 1 of 2 reps: boom".to_owned())
        );
        let mut s = Samples::default();
        s.push(Ok(2.0));
        s.push(Ok(4.0));
        s.push(Ok(3.0));
        assert_eq!(s.into_measurement(3), Measurement::Value(3.0));
    }
}
