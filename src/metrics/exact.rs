//! [`Exact`]: a distribution kept exactly, as a count per distinct whole-µs value, so every percentile a report
//! prints is the nearest-rank order statistic of the raw samples ([`crate::stats::rank`]), not the top of a
//! histogram bucket.
//!
//! Memory follows the number of *distinct* values, not the number of samples: latencies measured to the µs
//! repeat a great deal (a million frames' lateness fit in a few thousand distinct values, a million TTFAs spread
//! over a second in at most a million), at about 30 bytes per distinct value (a `BTreeMap` of `u64 → u64`). Two
//! shards add exactly, count by count.

use std::collections::BTreeMap;

/// Counts per distinct µs value, with the total and the sum (for an exact mean).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exact {
    counts: BTreeMap<u64, u64>,
    len: u64,
    sum: u128,
}

impl Exact {
    /// An empty distribution.
    pub fn new() -> Exact {
        Exact::default()
    }

    /// Adds one sample.
    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// Adds `n` samples of the same value.
    pub fn record_n(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        *self.counts.entry(us).or_default() += n;
        self.len += n;
        self.sum += u128::from(us) * u128::from(n);
    }

    /// Adds every sample of `other`.
    pub fn add(&mut self, other: &Exact) {
        for (&us, &n) in &other.counts {
            self.record_n(us, n);
        }
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Distinct values recorded (what the memory follows).
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// The smallest sample.
    pub fn min(&self) -> Option<u64> {
        self.counts.keys().next().copied()
    }

    /// The largest sample.
    pub fn max(&self) -> Option<u64> {
        self.counts.keys().next_back().copied()
    }

    /// The arithmetic mean, µs.
    pub fn mean(&self) -> Option<f64> {
        (self.len > 0).then(|| self.sum as f64 / self.len as f64)
    }

    /// The `q`-quantile by the crate's one rule: the sample of rank `max(1, ⌈q·n⌉)` in sorted order.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let rank = crate::stats::rank(usize::try_from(self.len).unwrap_or(usize::MAX), q) as u64;
        let mut seen = 0u64;
        for (&us, &n) in &self.counts {
            seen += n;
            if seen >= rank && rank > 0 {
                return Some(us);
            }
        }
        None
    }

    /// Every `(value, count)`, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().map(|(&v, &n)| (v, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::quantile;

    #[test]
    fn quantiles_are_the_order_statistics_of_the_raw_samples() {
        let mut rng = crate::stats::SplitMix64::new(16);
        for n in [1usize, 2, 3, 10, 99, 100, 101, 1000, 4321] {
            // Repeated values, and values no 3-digit histogram holds exactly (553_490 µs).
            let mut raw: Vec<u64> = (0..n).map(|_| 553_000 + rng.next_u64() % 997).collect();
            let mut e = Exact::new();
            for v in &raw {
                e.record(*v);
            }
            raw.sort_unstable();
            for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                assert_eq!(e.quantile(q), quantile(&raw, q), "n = {n}, q = {q}");
            }
            assert_eq!((e.min(), e.max(), e.len()), (raw.first().copied(), raw.last().copied(), n as u64));
            let mean = raw.iter().sum::<u64>() as f64 / n as f64;
            assert!((e.mean().unwrap() - mean).abs() < 1e-6);
        }
        assert_eq!(Exact::new().quantile(0.5), None);
        assert_eq!(Exact::new().mean(), None);
    }

    #[test]
    fn shards_add_exactly() {
        let (mut a, mut b, mut whole) = (Exact::new(), Exact::new(), Exact::new());
        for v in 0..500u64 {
            let us = v * 37 % 101;
            whole.record(us);
            if v % 3 == 0 { a.record(us) } else { b.record(us) }
        }
        a.add(&b);
        assert_eq!(a, whole);
        assert_eq!(a.distinct(), 101);
    }
}
