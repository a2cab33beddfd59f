//! What one row's rounds come to: the mean time per round trip or message, and two points of
//! the distribution (a channel's latency has a tail that a mean hides).

/// One row's figures, in nanoseconds per round trip or message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Latency {
    /// Total time over the count: what the table compares.
    pub mean: f64,
    /// The median round.
    pub p50: f64,
    /// The 99th percentile round (nearest rank).
    pub p99: f64,
}

impl Latency {
    /// The figures of `round_ns`, each round counting as `per_round` operations (a ping-pong
    /// round is two one-way messages); `None` for no rounds.
    pub(crate) fn of(round_ns: &[u64], per_round: u64) -> Option<Latency> {
        if round_ns.is_empty() || per_round == 0 {
            return None;
        }
        let mut sorted = round_ns.to_vec();
        sorted.sort_unstable();
        let per = per_round as f64;
        // Nearest rank: the smallest value with at least p of the rounds at or below it.
        let rank = |p: f64| {
            let at = (p * sorted.len() as f64).ceil() as usize;
            sorted[at.clamp(1, sorted.len()) - 1] as f64 / per
        };
        let total: u128 = sorted.iter().map(|&ns| u128::from(ns)).sum();
        Some(Latency {
            mean: total as f64 / sorted.len() as f64 / per,
            p50: rank(0.50),
            p99: rank(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_hundred_rounds() {
        let rounds: Vec<u64> = (1..=100).rev().collect();
        let l = Latency::of(&rounds, 1).unwrap();
        assert_eq!((l.mean, l.p50, l.p99), (50.5, 50.0, 99.0));
        let halves = Latency::of(&rounds, 2).unwrap();
        assert_eq!((halves.mean, halves.p50, halves.p99), (25.25, 25.0, 49.5));
        assert_eq!(Latency::of(&[7], 1).unwrap().p99, 7.0);
        assert!(Latency::of(&[], 1).is_none());
    }
}
