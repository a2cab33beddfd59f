//! Reproducible choices for the tests that kill processes at random moments: a small xorshift
//! generator (the kill moments and the children's work), whose seed a test takes from an
//! environment variable when one is set ([`env_number`]), so that a failing schedule can be
//! run again.

/// A xorshift generator: cheap, reproducible, and the same in a parent and in the child it
/// hands a seed to.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (made odd: a zero state would stay zero).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The whole number in environment variable `name`, or `default` when it is not set; a value
/// that is not a whole number fails the test with its name.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: want a whole number")),
        Err(_) => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_choices_and_zero_is_no_dead_end() {
        let (mut a, mut b) = (XorShift::new(42), XorShift::new(42));
        let first: Vec<u64> = (0..8).map(|_| a.below(100)).collect();
        assert_eq!(first, (0..8).map(|_| b.below(100)).collect::<Vec<_>>());
        let mut zero = XorShift::new(0);
        assert!((0..4).map(|_| zero.next_u64()).all(|x| x != 0));
    }
}
