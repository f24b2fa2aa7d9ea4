//! Change detection against a baseline, the way criterion does it (`analysis/compare.rs`), with calls as the unit
//! of resampling (docs/metrics.md: a bootstrap over whole calls): turns of one call share a connection, a server and a
//! moment, so they are not independent, and resampling turns one by one would make the interval too narrow.
//!
//! For one target, one latency metric and a statistic (p50, p95):
//! 1. Samples are the turns' values in whole µs, grouped by call ([`crate::metrics::call_samples`]); calls with no
//!    sample of the metric are left out. The statistic of a pool of samples is [`crate::stats::quantile`] (the
//!    value at rank `max(1, ⌈q·n⌉)` of the sorted pool), so the point estimates equal the two runs'
//!    `summary.json` figures.
//! 2. B times (default 2000), by [`crate::stats::bootstrap`]: draw as many calls as the baseline has, with replacement, from the baseline, and as
//!    many as the current run has from the current run, each drawn call bringing all its samples; compute
//!    `(stat(current) − stat(base)) / stat(base)`.
//! 3. 95 % confidence interval: the 2.5th and 97.5th percentiles of those B relative changes. p-value (two-sided):
//!    `2 · min(share ≤ 0, share ≥ 0)`, at most 1 and at least `1/B`.
//! 4. Verdict: **regressed** when `p < 0.05` and the interval's low end is above `+noise` (latency: higher is
//!    worse); **improved** when `p < 0.05` and its high end is below `−noise`; **within noise** when `p < 0.05`
//!    otherwise; **no change** when `p ≥ 0.05`. Only a regression fails the gate.

use super::{Change, ChangeVerdict, Check, CheckKind, GateOptions};
use crate::metrics::call_samples as samples;
use crate::model::{Metric, TurnRecord};
use crate::stats::{SplitMix64, fnv, interval_and_p, pooled, quantile, resample_pooled};

/// The statistics compared, with their quantiles.
pub const STATS_COMPARED: &[(&str, f64)] = &[("p50", 0.50), ("p95", 0.95)];

/// Significance level.
pub const ALPHA: f64 = 0.05;

/// Fewest calls with samples, on each side, for a comparison: below that the bootstrap cannot say anything.
pub const MIN_CALLS: usize = 5;

/// Compares `cur` with `base` (samples of `metric`) for each `(stat, quantile)`: the bootstrap of the relative
/// change. `None` for a statistic whose baseline value is 0 (a relative change is undefined). Both sides must be
/// non-empty.
pub fn compare(
    metric: Metric,
    base: &[Vec<u64>],
    cur: &[Vec<u64>],
    stats: &[(&str, f64)],
    resamples: usize,
    seed: u64,
    noise: f64,
) -> Vec<Option<Change>> {
    let (base_all, cur_all) = (pooled(base), pooled(cur));
    let points: Vec<(f64, f64)> = stats.iter().map(|(_, q)| (stat(&base_all, *q), stat(&cur_all, *q))).collect();
    let mut dists: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); stats.len()];
    let mut rng = SplitMix64::new(seed);
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        resample_pooled(base, &mut rng, &mut b);
        resample_pooled(cur, &mut rng, &mut c);
        for (i, (_, q)) in stats.iter().enumerate() {
            let (bs, cs) = (stat(&b, *q), stat(&c, *q));
            dists[i].push(relative(bs, cs));
        }
    }
    stats
        .iter()
        .zip(points)
        .zip(dists)
        .map(|(((stat, _), (bp, cp)), mut dist)| {
            if bp == 0.0 {
                return None;
            }
            let ((ci_low, ci_high), p_value) = interval_and_p(&mut dist, 0.0);
            let verdict = if p_value >= ALPHA {
                ChangeVerdict::NoChange
            } else if ci_low > noise {
                ChangeVerdict::Regressed
            } else if ci_high < -noise {
                ChangeVerdict::Improved
            } else {
                ChangeVerdict::WithinNoise
            };
            Some(Change {
                metric,
                stat: stat.to_string(),
                base: bp / 1000.0,
                current: cp / 1000.0,
                rel_change: relative(bp, cp),
                ci_low,
                ci_high,
                p_value,
                verdict,
            })
        })
        .collect()
}

/// The statistic of a non-empty sorted pool: its `q`-quantile by the crate's one rule ([`crate::stats::quantile`]),
/// as a float.
fn stat(sorted: &[u64], q: f64) -> f64 {
    quantile(sorted, q).unwrap_or(0) as f64
}

/// `(cur − base) / base`; a resample whose base statistic is 0 counts as +∞ (or 0 when both are 0).
fn relative(base: f64, cur: f64) -> f64 {
    if base == 0.0 { if cur == 0.0 { 0.0 } else { f64::INFINITY } } else { (cur - base) / base }
}

/// Percent with a sign: `+20.1 %`.
pub fn pct(x: f64) -> String {
    if x.is_finite() { format!("{:+.1} %", x * 100.0) } else { format!("{x}") }
}

/// The regression checks of one target present in both runs, and notes on what was not compared.
pub fn checks(target: &str, base: &[TurnRecord], cur: &[TurnRecord], opts: &GateOptions) -> (Vec<Check>, Vec<String>) {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    for metric in Metric::ALL {
        let (b, c) = (samples(base, target, metric), samples(cur, target, metric));
        if b.is_empty() && c.is_empty() {
            continue;
        }
        if b.len() < MIN_CALLS || c.len() < MIN_CALLS {
            notes.push(format!(
                "`{target}` {metric}: not compared with the baseline: {} call(s) with samples in the baseline and {} \
                 in this run; the bootstrap needs at least {MIN_CALLS} on each side",
                b.len(),
                c.len()
            ));
            continue;
        }
        let seed = opts.seed ^ fnv(target).rotate_left(17) ^ fnv(metric.name());
        let changes = compare(metric, &b, &c, STATS_COMPARED, opts.bootstrap, seed, opts.noise);
        for ((stat, _), change) in STATS_COMPARED.iter().zip(changes) {
            let Some(ch) = change else {
                notes.push(format!(
                    "`{target}` {metric}.{stat}: not compared: the baseline's value is 0 ms, a relative change is undefined"
                ));
                continue;
            };
            let passed = ch.verdict != ChangeVerdict::Regressed;
            let detail = format!(
                "{metric}.{stat} {} → {} ms ({}, 95 % CI {} … {}, p = {}): {}{}",
                super::slo::num(ch.base),
                super::slo::num(ch.current),
                pct(ch.rel_change),
                pct(ch.ci_low),
                pct(ch.ci_high),
                p_text(ch.p_value),
                ch.verdict.as_str(),
                match ch.verdict {
                    ChangeVerdict::Regressed =>
                        format!(", the whole interval is above the {} noise threshold", pct(opts.noise)),
                    ChangeVerdict::Improved => format!(", the whole interval is below {}", pct(-opts.noise)),
                    ChangeVerdict::WithinNoise => format!(" (significant, but inside ±{:.1} %)", opts.noise * 100.0),
                    ChangeVerdict::NoChange => String::new(),
                }
            );
            out.push(Check {
                target: target.to_string(),
                name: format!("regression {metric}.{stat}"),
                kind: CheckKind::Regression,
                passed,
                measured: Some(ch.rel_change),
                threshold: Some(opts.noise),
                detail,
                change: Some(ch),
            });
        }
    }
    (out, notes)
}

/// A p-value as text: `0.0005`, `0.31`.
pub fn p_text(p: f64) -> String {
    if p < 0.001 { format!("{p:.4}") } else { format!("{p:.3}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::HistogramSet;

    /// `calls` calls of `turns` turns: a lognormal-ish spread (σ ≈ 0.25) around `median_ms`, with a per-call
    /// factor (σ ≈ 0.1) shared by the call's turns, scaled by `shift`.
    fn realistic(calls: u32, turns: u32, median_ms: f64, shift: f64, seed: u64) -> Vec<TurnRecord> {
        let mut rng = SplitMix64::new(seed);
        let mut normal = || {
            // Box–Muller.
            let (u1, u2) = (rng.next_f64().max(1e-12), rng.next_f64());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let mut out = Vec::new();
        for call in 0..calls {
            let call_factor = (0.1 * normal()).exp();
            for turn in 0..turns {
                let v = median_ms * call_factor * (0.25 * normal()).exp() * shift;
                out.push(TurnRecord { target: "t".into(), call, turn, ttfa_ms: Some(v), ..Default::default() });
            }
        }
        out
    }

    fn compare_ttfa(base: &[TurnRecord], cur: &[TurnRecord]) -> Vec<Change> {
        let (b, c) = (samples(base, "t", Metric::Ttfa), samples(cur, "t", Metric::Ttfa));
        compare(Metric::Ttfa, &b, &c, STATS_COMPARED, 2000, 42, 0.05).into_iter().map(Option::unwrap).collect()
    }

    #[test]
    fn identical_samples_are_no_change() {
        let base = realistic(20, 8, 600.0, 1.0, 1);
        for ch in compare_ttfa(&base, &base) {
            assert_eq!(ch.verdict, ChangeVerdict::NoChange, "{ch:?}");
            assert_eq!(ch.rel_change, 0.0);
            assert!(ch.ci_low < 0.0 && ch.ci_high > 0.0, "{ch:?}");
            assert!(ch.p_value > 0.5, "{ch:?}");
        }
    }

    #[test]
    fn constant_samples_give_p_one() {
        let turns: Vec<TurnRecord> = (0..40)
            .map(|i| TurnRecord { target: "t".into(), call: i / 4, ttfa_ms: Some(500.0), ..Default::default() })
            .collect();
        for ch in compare_ttfa(&turns, &turns) {
            assert_eq!((ch.p_value, ch.ci_low, ch.ci_high, ch.verdict), (1.0, 0.0, 0.0, ChangeVerdict::NoChange));
        }
    }

    #[test]
    fn a_20_percent_shift_is_a_regression_and_back_an_improvement() {
        // 60 calls of 8 turns: at this spread the p95's interval is about ±10 %, so a 20 % shift clears the 5 %
        // noise threshold (with the booking scenario's default 20 calls, p95's interval is about twice as wide).
        let base = realistic(60, 8, 600.0, 1.0, 1);
        let cur = realistic(60, 8, 600.0, 1.2, 2);
        for ch in compare_ttfa(&base, &cur) {
            assert_eq!(ch.verdict, ChangeVerdict::Regressed, "{ch:?}");
            assert!(ch.ci_low > 0.05 && ch.ci_low < ch.rel_change && ch.rel_change < ch.ci_high, "{ch:?}");
            assert!((ch.rel_change - 0.2).abs() < 0.12, "{ch:?}");
            assert!(ch.p_value < 0.01 && ch.p_value >= 1.0 / 2000.0, "{ch:?}");
        }
        for ch in compare_ttfa(&cur, &base) {
            assert_eq!(ch.verdict, ChangeVerdict::Improved, "{ch:?}");
            assert!(ch.ci_high < -0.05, "{ch:?}");
        }
    }

    #[test]
    fn a_2_percent_shift_is_within_noise() {
        // The same calls, 2 % slower: the smallest difference the bootstrap can see, and still no regression.
        let base = realistic(40, 8, 600.0, 1.0, 1);
        let cur = realistic(40, 8, 600.0, 1.02, 1);
        for ch in compare_ttfa(&base, &cur) {
            assert!(matches!(ch.verdict, ChangeVerdict::WithinNoise | ChangeVerdict::NoChange), "{ch:?}");
            assert!(ch.ci_high < 0.15 && ch.ci_low > -0.15, "{ch:?}");
        }
        // Independent runs 2 % apart: not significant, or significant within the noise.
        let cur = realistic(40, 8, 600.0, 1.02, 3);
        for ch in compare_ttfa(&base, &cur) {
            assert_ne!(ch.verdict, ChangeVerdict::Regressed, "{ch:?}");
        }
    }

    #[test]
    fn p_values_are_sane() {
        // Under no true difference (two independent draws of the same distribution), p is spread out, not
        // concentrated near 0: at most a few of 20 pairs are significant at 5 %.
        let mut significant = 0;
        for seed in 0..20 {
            let (b, c) = (realistic(15, 8, 600.0, 1.0, 100 + seed), realistic(15, 8, 600.0, 1.0, 200 + seed));
            let m = Metric::Ttfa;
            let ch = &compare(m, &samples(&b, "t", m), &samples(&c, "t", m), &[("p50", 0.5)], 1000, seed, 0.05)[0];
            let ch = ch.as_ref().unwrap();
            assert!((1.0 / 1000.0..=1.0).contains(&ch.p_value), "{ch:?}");
            significant += usize::from(ch.p_value < ALPHA);
        }
        assert!(significant <= 4, "{significant} of 20 null comparisons significant");
        // A large shift has the floor p-value.
        let ch = compare_ttfa(&realistic(20, 8, 600.0, 1.0, 1), &realistic(20, 8, 600.0, 2.0, 2));
        assert_eq!(ch[0].p_value, 1.0 / 2000.0);
    }

    #[test]
    fn whole_call_resampling_widens_the_interval_when_turns_are_correlated() {
        // Strong per-call effect: resampling calls must give a wider interval than treating turns as independent.
        let mut rng = SplitMix64::new(3);
        let mk = |rng: &mut SplitMix64| -> Vec<Vec<u64>> {
            (0..12)
                .map(|_| {
                    let level = 400_000 + (rng.next_f64() * 400_000.0) as u64;
                    (0..10).map(|_| level + (rng.next_f64() * 20_000.0) as u64).collect()
                })
                .collect()
        };
        let (b, c) = (mk(&mut rng), mk(&mut rng));
        let single = |x: &Vec<Vec<u64>>| x.iter().flatten().map(|v| vec![*v]).collect::<Vec<_>>();
        let whole = compare(Metric::Ttfa, &b, &c, &[("p50", 0.5)], 2000, 1, 0.05)[0].clone().unwrap();
        let turns = compare(Metric::Ttfa, &single(&b), &single(&c), &[("p50", 0.5)], 2000, 1, 0.05)[0].clone().unwrap();
        let width = |ch: &Change| ch.ci_high - ch.ci_low;
        assert!(width(&whole) > 1.5 * width(&turns), "whole calls {whole:?} vs turns {turns:?}");
    }

    #[test]
    fn point_estimates_equal_the_summary() {
        let turns = realistic(20, 8, 600.0, 1.0, 9);
        let mut set = HistogramSet::default();
        for t in &turns {
            set.record_turn(t);
        }
        let stats = set.target("t").unwrap().stats(Metric::Ttfa, crate::metrics::Scope::All).unwrap();
        let ch = &compare_ttfa(&turns, &turns);
        assert_eq!((ch[0].base, ch[1].base), (stats.p50, stats.p95));
    }

    #[test]
    fn checks_name_the_change_and_note_what_is_not_compared() {
        let base = realistic(20, 8, 600.0, 1.0, 1);
        let cur = realistic(20, 8, 600.0, 1.3, 2);
        let few: Vec<TurnRecord> = cur.iter().filter(|t| t.call < 3).cloned().collect();
        let (checks_, notes) = checks("t", &base, &cur, &GateOptions::default());
        assert_eq!(checks_.len(), 2);
        assert_eq!(checks_[1].name, "regression ttfa.p95");
        assert!(!checks_[0].passed && checks_[0].detail.contains("regressed"), "{:?}", checks_[0]);
        assert!(notes.is_empty(), "{notes:?}");
        let (checks_, notes) = checks("t", &base, &few, &GateOptions::default());
        assert!(checks_.is_empty());
        assert!(notes[0].contains("needs at least 5"), "{notes:?}");
    }
}
