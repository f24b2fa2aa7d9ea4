//! The statistics every output shares, importing nothing from the rest of the crate: one quantile rule, the
//! call-clustered bootstrap and the seeded generator behind it.
//!
//! **The quantile rule** (the only one in voicebench): the `q`-quantile of `n` sorted samples is the sample at
//! 1-based rank `r = max(1, ⌈q·n⌉)` (with `q` capped at 1, so `r ≤ n`): the nearest-rank rule, HdrHistogram's
//! `value_at_quantile`'s too. `summary.json`'s percentiles are this rule applied exactly to the raw µs samples
//! (`crate::metrics::Exact`); a histogram gives the same rank's bucket, so it agrees only to its 3 significant
//! digits. No interpolation: every quantile is a value that was measured. `calls.csv`'s pacing p50/p99, the plots'
//! markers, the gate's and compare's statistics and their bootstrap intervals, and the benchmark's error
//! percentiles all go through [`quantile`].

pub mod bootstrap;
pub mod rng;

pub use bootstrap::{CallSamples, fnv, index, interval_and_p, pooled, resample_pooled};
pub use rng::SplitMix64;

/// The 1-based rank of the `q`-quantile among `n` sorted samples: `max(1, ⌈q·n⌉)`, at most `n` (`q` is capped at 1;
/// 0 only when `n` is 0).
pub fn rank(n: usize, q: f64) -> usize {
    if n == 0 {
        return 0;
    }
    ((q.min(1.0) * n as f64).ceil() as usize).clamp(1, n)
}

/// The `q`-quantile of ascending `sorted` samples by the nearest-rank rule ([`rank`]); `None` when empty.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    sorted.get(rank(sorted.len(), q).checked_sub(1)?).copied()
}

/// The `q`-quantile of unsorted, finite values (sorted in a copy); NaN when there are none.
pub fn quantile_unsorted(values: &[f64], q: f64) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    quantile(&s, q).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_1_to_100() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 0.999), Some(100));
        assert_eq!(quantile(&v, 0.0), Some(1));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&v, 2.0), Some(100));
        assert_eq!(quantile::<u64>(&[], 0.5), None);
        assert_eq!(quantile(&[7u32], 0.99), Some(7));
        // Even counts take the lower middle: no interpolation, no rounding up.
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
        assert!(quantile_unsorted(&[], 0.5).is_nan());
        assert_eq!(quantile_unsorted(&[4.0, 1.0, 3.0, 2.0], 0.75), 3.0);
    }

    /// The rule is HdrHistogram's: for every count and quantile the summary uses, a histogram of distinct
    /// exactly-representable values gives the same sample.
    #[test]
    fn agrees_with_hdrhistogram() {
        for n in 1..=230u64 {
            let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            let v: Vec<u64> = (1..=n).map(|i| i * 7).collect();
            for x in &v {
                h.record(*x).unwrap();
            }
            for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                assert_eq!(quantile(&v, q), Some(h.value_at_quantile(q)), "n = {n}, q = {q}");
            }
        }
    }
}
