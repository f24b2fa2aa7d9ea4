//! What the plots show, computed from a report's rows with no drawing: quantiles, CDF steps, histogram bins,
//! per-turn percentiles, stage means, the representative call and tool success. Pure functions, so the numbers a
//! plot draws are tested apart from the pixels.

use std::collections::BTreeMap;

use crate::metrics::stages;
use crate::model::{Metric, TurnKind, TurnRecord};
use crate::report::read::Report;

/// The `q`-quantile of sorted values by the crate's one rule ([`crate::stats::quantile`]: the value at rank
/// `max(1, ⌈q·n⌉)`, as the summary's percentiles); NaN when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    crate::stats::quantile(sorted, q).unwrap_or(f64::NAN)
}

/// Sorted copy of the finite values.
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Whether a target is simulated: its summary entry says so, or any of its rows does.
pub fn is_simulated(report: &Report, target: &str) -> bool {
    report.summary.as_ref().is_some_and(|s| s.targets.iter().any(|t| t.name == target && t.simulated))
        || report.turns.iter().any(|t| t.target == target && t.simulated)
        || report.calls.iter().any(|c| c.target == target && c.simulated)
}

/// A target's name as every plot shows it: with " (simulated)" when it is.
pub fn target_label(report: &Report, target: &str) -> String {
    if is_simulated(report, target) { format!("{target} (simulated)") } else { target.to_owned() }
}

/// A metric's sorted values for one target.
pub fn metric_values(report: &Report, target: &str, metric: Metric) -> Vec<f64> {
    sorted(report.turns.iter().filter(|t| t.target == target).filter_map(|t| t.value(metric)))
}

/// The steps of an empirical CDF of sorted values: `(x, fraction of values ≤ x)`, drawn as a staircase.
pub fn cdf_steps(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    let mut out = Vec::with_capacity(sorted.len() * 2);
    for (i, &x) in sorted.iter().enumerate() {
        out.push((x, i as f64 / n));
        out.push((x, (i + 1) as f64 / n));
    }
    out
}

/// Equal-width bins over `[lo, hi)`, the last one closed: per bin the fraction of `values` in it (values outside
/// are not counted, so the fractions of a clipped set add up to less than 1).
pub fn bin_fractions(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    let width = (hi - lo) / bins as f64;
    for &v in values {
        if v < lo || v > hi || width <= 0.0 {
            continue;
        }
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let n = values.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// A "nice" step (1, 2 or 5 × 10^k) near `span / target_steps`.
pub fn nice_step(span: f64, target_steps: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target_steps;
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let f = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    };
    f * mag
}

/// Per turn index: `(turn, p50, p95, n)` of TTFA for one target.
pub fn ttfa_by_turn(report: &Report, target: &str) -> Vec<(u32, f64, f64, usize)> {
    let mut by: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for t in report.turns.iter().filter(|t| t.target == target) {
        if let Some(v) = t.value(Metric::Ttfa) {
            by.entry(t.turn).or_default().push(v);
        }
    }
    by.into_iter()
        .map(|(turn, v)| {
            let s = sorted(v);
            (turn, quantile(&s, 0.5), quantile(&s, 0.95), s.len())
        })
        .collect()
}

/// A point of a p50/p95 line: `(x, p50, p95, samples)`.
pub type Point = (u32, f64, f64, usize);

/// A target's TTFA per window of run time, from the summary (`over_time`): `(window, p50, p95, turns)` for the
/// windows with a TTFA, and `(window start s, failed turns)` for the windows with failures.
pub fn ttfa_over_time(report: &Report, target: &str) -> (Vec<Point>, Vec<(u32, u64)>) {
    let Some(t) = report.summary.as_ref().and_then(|s| s.target(target)) else { return Default::default() };
    let w = crate::metrics::windows::WINDOW_S;
    let points =
        t.over_time.iter().filter_map(|x| Some((x.start_s / w, x.ttfa_p50?, x.ttfa_p95?, x.turns as usize))).collect();
    let failed = t.over_time.iter().filter(|x| x.failed > 0).map(|x| (x.start_s, x.failed)).collect();
    (points, failed)
}

/// Turn index → turn id, from any row.
pub fn turn_ids(report: &Report) -> BTreeMap<u32, String> {
    let mut m = BTreeMap::new();
    for t in &report.turns {
        m.entry(t.turn).or_insert_with(|| t.turn_id.clone());
    }
    m
}

/// Mean of each TTFA segment over a target's turns that have all of them, and how many turns that is.
pub fn stage_means(report: &Report, target: &str) -> Option<([f64; 7], usize)> {
    let mut sums = [0.0; 7];
    let mut n = 0usize;
    for s in report.turns.iter().filter(|t| t.target == target).filter_map(stages::segments) {
        n += 1;
        for (a, v) in sums.iter_mut().zip(s) {
            *a += v;
        }
    }
    (n > 0).then(|| (sums.map(|s| s / n as f64), n))
}

/// The call of `target` whose median TTFA is closest to the target's median TTFA (over all its turns), preferring
/// calls with no failed turn; ties go to the lower call index. With the target's median and the call's.
pub fn representative_call(report: &Report, target: &str) -> Option<(u32, f64, f64)> {
    let all = metric_values(report, target, Metric::Ttfa);
    if all.is_empty() {
        return None;
    }
    let target_median = quantile(&all, 0.5);
    let mut by_call: BTreeMap<u32, (Vec<f64>, bool)> = BTreeMap::new();
    for t in report.turns.iter().filter(|t| t.target == target) {
        let e = by_call.entry(t.call).or_default();
        e.1 |= t.error.is_some();
        e.0.extend(t.value(Metric::Ttfa));
    }
    let failed_call = |c: u32| report.calls.iter().any(|r| r.target == target && r.call == c && r.error.is_some());
    let pick = |clean: bool| {
        by_call
            .iter()
            .filter(|(c, (v, failed))| !v.is_empty() && (!clean || (!failed && !failed_call(**c))))
            .map(|(c, (v, _))| (*c, quantile(&sorted(v.iter().copied()), 0.5)))
            .min_by(|a, b| (a.1 - target_median).abs().total_cmp(&(b.1 - target_median).abs()).then(a.0.cmp(&b.0)))
    };
    let (call, median) = pick(true).or_else(|| pick(false))?;
    Some((call, target_median, median))
}

/// One call's turns, in turn order.
pub fn call_turns<'a>(report: &'a Report, target: &str, call: u32) -> Vec<&'a TurnRecord> {
    let mut v: Vec<&TurnRecord> = report.turns.iter().filter(|t| t.target == target && t.call == call).collect();
    v.sort_by_key(|t| t.turn);
    v
}

/// Whether a turn is a barge-in (its kind, or it has a barge-in measurement).
pub fn is_barge_in(t: &TurnRecord) -> bool {
    t.kind == Some(TurnKind::BargeIn) || t.barge_in_stop_ms.is_some()
}

/// Tool success by tool name for one target: name → (succeeded, expected), in order of first expectation.
pub fn tool_success(report: &Report, target: &str) -> Vec<(String, u32, u32)> {
    let mut out: Vec<(String, u32, u32)> = Vec::new();
    let names = |s: &str| s.split(';').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    for t in report.turns.iter().filter(|t| t.target == target) {
        let mut ok = names(&t.tools_succeeded_names);
        for name in names(&t.tools_expected_names) {
            let i = match out.iter().position(|(n, _, _)| *n == name) {
                Some(i) => i,
                None => {
                    out.push((name.clone(), 0, 0));
                    out.len() - 1
                }
            };
            out[i].2 += 1;
            // A name expected twice in a turn succeeds at most as often as it is listed as succeeded.
            if let Some(j) = ok.iter().position(|n| *n == name) {
                ok.remove(j);
                out[i].1 += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_summary_s_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
    }

    #[test]
    fn cdf_steps_end_at_one_and_bins_count_what_falls_inside() {
        let s = cdf_steps(&[1.0, 2.0, 2.0, 4.0]);
        assert_eq!(s.first(), Some(&(1.0, 0.0)));
        assert_eq!(s.last(), Some(&(4.0, 1.0)));
        assert_eq!(bin_fractions(&[0.0, 1.0, 9.9, 10.0, 11.0], 0.0, 10.0, 2), vec![0.4, 0.4]);
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(3000.0, 8.0), 500.0);
    }

    #[test]
    fn tool_success_counts_each_expectation() {
        let report = Report {
            dir: ".".into(),
            summary: None,
            turns: vec![
                TurnRecord {
                    target: "a".into(),
                    tools_expected_names: "check;book".into(),
                    tools_succeeded_names: "book".into(),
                    ..Default::default()
                },
                TurnRecord {
                    target: "a".into(),
                    tools_expected_names: "check".into(),
                    tools_succeeded_names: "check".into(),
                    ..Default::default()
                },
                TurnRecord { target: "b".into(), tools_expected_names: "check".into(), ..Default::default() },
            ],
            calls: vec![],
            targets: vec!["a".into(), "b".into()],
        };
        assert_eq!(tool_success(&report, "a"), vec![("check".into(), 1, 2), ("book".into(), 1, 1)]);
        assert_eq!(tool_success(&report, "b"), vec![("check".into(), 0, 1)]);
    }

    #[test]
    fn the_representative_call_has_the_median_closest_to_the_target_s() {
        let turn = |call, ttfa| TurnRecord { target: "a".into(), call, ttfa_ms: Some(ttfa), ..Default::default() };
        let report = Report {
            dir: ".".into(),
            summary: None,
            turns: vec![turn(0, 100.0), turn(0, 110.0), turn(1, 500.0), turn(1, 520.0), turn(2, 900.0)],
            calls: vec![],
            targets: vec!["a".into()],
        };
        // Median of all five is 500: call 1.
        assert_eq!(representative_call(&report, "a").map(|r| r.0), Some(1));
        assert_eq!(representative_call(&report, "b"), None);
    }
}
