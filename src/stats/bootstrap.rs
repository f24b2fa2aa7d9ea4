//! The call-clustered bootstrap shared by the gate's change detection and the head to head: samples are grouped by
//! call, and a resample draws whole calls with replacement, each bringing all its samples (the turns of one call
//! share a connection, a server and a moment, so they are not independent; resampling turns one by one would make
//! the interval too narrow). What is drawn, and the statistic taken of each resample, is the caller's.

use super::SplitMix64;

/// Samples of one metric grouped by call (the gate and compare use whole µs, as the summary counts them).
pub type CallSamples = Vec<Vec<u64>>;

/// A uniform index below `n` (`n > 0`), by Lemire's multiply-shift.
pub fn index(rng: &mut SplitMix64, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Draws `calls.len()` calls with replacement and pools their samples into `out`, sorted.
pub fn resample_pooled(calls: &[Vec<u64>], rng: &mut SplitMix64, out: &mut Vec<u64>) {
    out.clear();
    for _ in 0..calls.len() {
        out.extend_from_slice(&calls[index(rng, calls.len())]);
    }
    out.sort_unstable();
}

/// Every call's samples in one sorted pool.
pub fn pooled(calls: &[Vec<u64>]) -> Vec<u64> {
    let mut all: Vec<u64> = calls.concat();
    all.sort_unstable();
    all
}

/// The 95 % percentile interval of a non-empty bootstrap distribution (sorted in place; its 2.5th and 97.5th
/// percentiles by the crate's one quantile rule, [`super::quantile`]) and its two-sided p-value against `null`
/// (the no-difference value): `2 · min(share ≤ null, share ≥ null)`, within `[1/B, 1]`.
pub fn interval_and_p(dist: &mut [f64], null: f64) -> ((f64, f64), f64) {
    dist.sort_by(f64::total_cmp);
    let n = dist.len();
    let at = |q: f64| super::quantile(dist, q).unwrap_or(f64::NAN);
    let le = dist.iter().filter(|x| **x <= null).count();
    let ge = dist.iter().filter(|x| **x >= null).count();
    ((at(0.025), at(0.975)), (2.0 * le.min(ge) as f64 / n as f64).clamp(1.0 / n as f64, 1.0))
}

/// A stable 64-bit hash (FNV-1a), to give every comparison its own stream of the seed.
pub fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_draws_whole_calls() {
        // Call k's samples are all 1000·k + turn: every resample holds each call entirely or not at all.
        let calls: Vec<Vec<u64>> = (1..=10).map(|k| (0..6).map(|t| 1000 * k + t).collect()).collect();
        let mut rng = SplitMix64::new(7);
        let mut out = Vec::new();
        for _ in 0..200 {
            resample_pooled(&calls, &mut rng, &mut out);
            assert_eq!(out.len(), 60);
            for k in 1..=10u64 {
                let counts: Vec<usize> = (0..6).map(|t| out.iter().filter(|v| **v == 1000 * k + t).count()).collect();
                assert!(counts.iter().all(|c| *c == counts[0]), "call {k} split: {counts:?}");
            }
        }
    }

    #[test]
    fn interval_and_p_of_a_known_distribution() {
        // 1..=200 shifted by −100.5: 100 values below 0 and 100 above; the interval is the 5th and 195th values.
        let mut dist: Vec<f64> = (1..=200).rev().map(|i| i as f64 - 100.5).collect();
        let ((lo, hi), p) = interval_and_p(&mut dist, 0.0);
        assert_eq!((lo, hi, p), (5.0 - 100.5, 195.0 - 100.5, 1.0));
        let mut dist: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(interval_and_p(&mut dist, 0.0).1, 1.0 / 200.0);
    }
}
