//! The two statistics every table uses: the median of repetitions and the geometric mean
//! of per-row ratios.

/// Median of `samples`; the mean of the two middle values when the count is even.
///
/// The median, not the mean, because one repetition that the scheduler or a page-cache
/// miss slowed down should not move the figure. Returns `None` for no samples.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Geometric mean of positive ratios; `None` when there are none.
///
/// Geometric, because ratios multiply: a row 2x slower and one 2x faster should average to
/// 1.0, which the arithmetic mean (1.25) would not give.
pub fn geometric_mean(ratios: &[f64]) -> Option<f64> {
    let positive: Vec<f64> = ratios
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    if positive.is_empty() {
        return None;
    }
    let log_sum: f64 = positive.iter().map(|r| r.ln()).sum();
    Some((log_sum / positive.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // One outlier does not move it.
        assert_eq!(median(&[10.0, 11.0, 10.5, 1000.0, 10.2]), Some(10.5));
    }

    #[test]
    fn geometric_mean_of_reciprocal_ratios_is_one() {
        let g = geometric_mean(&[2.0, 0.5]).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        let g = geometric_mean(&[1.0, 4.0]).unwrap();
        assert!((g - 2.0).abs() < 1e-12);
        assert_eq!(geometric_mean(&[]), None);
    }
}
