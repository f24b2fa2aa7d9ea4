//! SLOs: parsing `--slo KEY=VALUE`, merging with the scenario's, and one [`Check`] per SLO per target.
//!
//! Keys are the scenario's (`docs/scenario.md`, `[slo]`): `<metric>.<stat>` for a latency (at most, ms) or a rate
//! of [`RATES`] with its direction. Values: `800`, `800ms`, `1.5s` for latencies; `0.95` or `95%` for rates.
//!
//! Every figure comes from the report's [`TargetMetrics`], rebuilt from the raw rows exactly as the recorder built
//! it, so the gate's numbers are `summary.json`'s numbers. A check with nothing to measure fails: an SLO never
//! passes by default.

use super::{Check, CheckKind, GateError};
use crate::diag::suggest;
use crate::metrics::{Scope, TargetMetrics};
use crate::scenario::{Bound, LATENCY_METRICS, RATES, STATS, Slo, SloKey};

/// Parses `KEY=VALUE` (as `--slo` takes it).
pub fn parse_slo(arg: &str) -> Result<Slo, GateError> {
    let bad = |message: String, hint: String| GateError::BadSlo { arg: arg.to_owned(), message, hint };
    let Some((key, value)) = arg.split_once('=') else {
        return Err(bad(
            "expected KEY=VALUE".into(),
            "e.g. `--slo ttfa.p95=800ms` or `--slo tool_success_rate=95%`".into(),
        ));
    };
    let (key, value) = (key.trim(), value.trim());
    let slo_key = parse_key(key).map_err(|(m, h)| bad(m, h))?;
    let threshold = parse_value(key, slo_key.is_rate(), value).map_err(|(m, h)| bad(m, h))?;
    Ok(Slo { key: slo_key, threshold, bound: slo_key.bound() })
}

/// An SLO from a key and a threshold already in canonical units (ms, or 0–1), as `summary.json` records them.
pub(crate) fn make_slo(key: &str, threshold: &f64) -> Result<Slo, String> {
    let slo_key = parse_key(key).map_err(|(m, h)| format!("{m}; {h}"))?;
    check_range(key, slo_key.is_rate(), *threshold).map_err(|(m, h)| format!("{m}; {h}"))?;
    Ok(Slo { key: slo_key, threshold: *threshold, bound: slo_key.bound() })
}

/// The scenario's SLOs with the overrides applied: an override replaces the SLO of the same key in place; the
/// others are appended in the order given (a later duplicate wins).
pub fn merge_slos(scenario: &[Slo], overrides: &[Slo]) -> Vec<Slo> {
    let mut out = scenario.to_vec();
    for o in overrides {
        match out.iter_mut().find(|s| s.key == o.key) {
            Some(s) => *s = o.clone(),
            None => out.push(o.clone()),
        }
    }
    out
}

/// An SLO key as written, or (message, hint) saying which part is wrong.
fn parse_key(key: &str) -> Result<SloKey, (String, String)> {
    if let Some(k) = SloKey::parse(key) {
        return Ok(k);
    }
    let Some((metric, stat)) = key.split_once('.') else {
        let mut all: Vec<String> = RATES.iter().map(|(r, _)| r.to_string()).collect();
        all.extend(LATENCY_METRICS.iter().map(|m| format!("{m}.p95")));
        return Err((format!("unknown SLO `{key}`"), suggest(key, "SLOs", &all)));
    };
    if !LATENCY_METRICS.contains(&metric) {
        return Err((format!("unknown metric `{metric}`"), suggest(metric, "metrics", LATENCY_METRICS)));
    }
    Err((format!("unknown statistic `{stat}`"), suggest(stat, "statistics", STATS)))
}

fn parse_value(key: &str, rate: bool, text: &str) -> Result<f64, (String, String)> {
    let lower = text.to_ascii_lowercase();
    let (number, scale) = if let Some(n) = lower.strip_suffix('%') {
        if !rate {
            return Err((format!("`{key}` is a latency in ms, not a percentage"), "write e.g. `800ms`".into()));
        }
        (n, 0.01)
    } else if let Some(n) = lower.strip_suffix("ms") {
        if rate {
            return Err((format!("`{key}` is a rate, not a duration"), "write e.g. `0.95` or `95%`".into()));
        }
        (n, 1.0)
    } else if let Some(n) = lower.strip_suffix('s') {
        if rate {
            return Err((format!("`{key}` is a rate, not a duration"), "write e.g. `0.95` or `95%`".into()));
        }
        (n, 1000.0)
    } else {
        (lower.as_str(), 1.0)
    };
    let v: f64 = number.trim().parse().map_err(|_| {
        (
            format!("`{text}` is not a number"),
            if rate {
                "write e.g. `0.95` or `95%`".to_string()
            } else {
                "write e.g. `800`, `800ms` or `1.5s`".to_string()
            },
        )
    })?;
    let v = v * scale;
    check_range(key, rate, v)?;
    Ok(v)
}

fn check_range(key: &str, rate: bool, v: f64) -> Result<(), (String, String)> {
    if rate && !(0.0..=1.0).contains(&v) {
        return Err((format!("`{key}` is a rate between 0 and 1, not {v}"), "write 0.95 or 95% for 95 %".into()));
    }
    if !rate && (!v.is_finite() || v <= 0.0) {
        return Err((format!("`{key}` must be a positive number of milliseconds, not {v}"), String::new()));
    }
    Ok(())
}

/// `<=` or `>=`.
fn op(b: Bound) -> &'static str {
    match b {
        Bound::AtMost => "<=",
        Bound::AtLeast => ">=",
    }
}

/// The checks of one target against every SLO, in the SLOs' order (goodput where its SLO is).
pub fn checks(m: &TargetMetrics, slos: &[Slo]) -> Vec<Check> {
    slos.iter().map(|slo| check(m, slo)).collect()
}

fn check(m: &TargetMetrics, slo: &Slo) -> Check {
    let t = &m.tally;
    let within = |v: f64| match slo.bound {
        Bound::AtMost => v <= slo.threshold,
        Bound::AtLeast => v >= slo.threshold,
    };
    let target = &m.name;
    // (numerator, denominator, what the denominator counts) of a rate.
    let rate = |num: u64, den: u64, what: &str| -> (Option<f64>, String) {
        if den == 0 {
            (
                None,
                format!(
                    "no {what} for target `{target}`: `{}` has nothing to measure, and it never passes by default",
                    slo.key
                ),
            )
        } else {
            let v = num as f64 / den as f64;
            (Some(v), format!("{} = {:.1} % ({num} of {den} {what})", slo.key, v * 100.0))
        }
    };
    let (kind, name, measured, mut detail) = match slo.key {
        SloKey::Rate("tool_success_rate") => {
            let (v, d) = rate(t.counts.tools_succeeded, t.counts.tools_expected, "expected tool calls");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("barge_in_success_rate") => {
            let (v, d) =
                rate(t.counts.barge_in_turns - t.counts.barge_in_failed, t.counts.barge_in_turns, "barge-in turns");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("false_stop_rate") => {
            let (v, d) = rate(t.counts.false_stops, t.counts.backchannel_turns, "backchannel turns");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("premature_takeover_rate") => {
            let (v, d) = rate(t.counts.premature_takeovers, t.counts.no_takeover_turns, "no-take-over turns");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("content_success_rate") => {
            let (v, d) = rate(
                t.counts.content_turns - t.counts.content_failed,
                t.counts.content_turns,
                "turns with content checks judged",
            );
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("task_success_rate") => {
            let (v, d) =
                rate(t.counts.task_calls - t.counts.task_failed, t.counts.task_calls, "calls with an end state judged");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("error_rate") => {
            let (v, d) = rate(t.counts.turns_failed, t.turns, "turns attempted");
            (CheckKind::Slo, rate_name(slo), v, d)
        }
        SloKey::Rate("goodput") => {
            let (v, d) = rate(t.counts.turns_good, t.turns, "turns attempted");
            let d =
                if v.is_some() { d.replace(" turns attempted)", " turns attempted met every SLO at once)") } else { d };
            (CheckKind::Goodput, rate_name(slo), v, d)
        }
        SloKey::Rate(other) => {
            (CheckKind::Slo, rate_name(slo), None, format!("`{other}` is not a rate voicebench measures"))
        }
        SloKey::Latency(metric, stat) => {
            let name = format!("{} {} {} ms", slo.key, op(slo.bound), num(slo.threshold));
            match m.stats(metric, Scope::All) {
                Some(s) => {
                    let v = s.get(stat);
                    let d = format!("{stat} {metric} = {} ms over {} samples", v.map_or("?".into(), num), s.count);
                    (CheckKind::Slo, name, v, d)
                }
                None => (
                    CheckKind::Slo,
                    name,
                    None,
                    format!("no {metric} samples for target `{target}`: it never passes by default"),
                ),
            }
        }
    };
    let passed = measured.is_some_and(within);
    if let Some(v) = measured {
        let unit = if slo.key.is_rate() { "" } else { " ms" };
        let limit = match slo.bound {
            Bound::AtMost => "at most",
            Bound::AtLeast => "at least",
        };
        let rel = if passed { "meets" } else { "breaches" };
        detail = format!(
            "{detail}: {rel} the SLO ({limit} {}{unit}){}",
            num(slo.threshold),
            match (passed, unit) {
                (true, _) => String::new(),
                (false, "") => format!(", off by {:.1} points", (v - slo.threshold).abs() * 100.0),
                (false, _) => format!(", off by {}{unit}", num((v - slo.threshold).abs())),
            }
        );
    }
    Check { target: target.clone(), name, kind, passed, measured, threshold: Some(slo.threshold), detail, change: None }
}

fn rate_name(slo: &Slo) -> String {
    format!("{} {} {}", slo.key, op(slo.bound), num(slo.threshold))
}

/// A number without needless digits: `800`, `0.95`, `612.5`.
pub(crate) fn num(v: f64) -> String {
    if v.is_finite() && v == v.round() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallRecord, TurnRecord};
    use crate::model::{ErrorCategory, Metric};

    #[test]
    fn values_in_every_spelling() {
        let p = |s: &str| parse_slo(s).unwrap();
        assert_eq!(
            p("ttfa.p95=800"),
            Slo { key: SloKey::Latency(Metric::Ttfa, "p95"), threshold: 800.0, bound: Bound::AtMost }
        );
        assert_eq!(p("ttfa.p95=800ms").threshold, 800.0);
        assert_eq!(p("ttfa.p95 = 1.5s").threshold, 1500.0);
        assert_eq!(
            p("tool_success_rate=0.95"),
            Slo { key: SloKey::Rate("tool_success_rate"), threshold: 0.95, bound: Bound::AtLeast }
        );
        assert!((p("tool_success_rate=95%").threshold - 0.95).abs() < 1e-12);
        assert_eq!(p("error_rate=2%").bound, Bound::AtMost);
        assert_eq!(p("goodput=0.8").bound, Bound::AtLeast);
    }

    #[test]
    fn bad_slos_say_what_to_write() {
        let e = |s: &str| parse_slo(s).unwrap_err().to_string();
        assert!(e("ttfx.p95=800").contains("did you mean `ttfa`"), "{}", e("ttfx.p95=800"));
        assert!(e("ttfa.p955=800").contains("did you mean `p95`"), "{}", e("ttfa.p955=800"));
        assert!(e("tool_sucess_rate=0.9").contains("did you mean `tool_success_rate`"));
        assert!(e("ttfa.p95").contains("KEY=VALUE"));
        assert!(e("ttfa.p95=fast").contains("not a number"));
        assert!(e("ttfa.p95=95%").contains("not a percentage"));
        assert!(e("error_rate=20ms").contains("not a duration"));
        assert!(e("tool_success_rate=95").contains("between 0 and 1"));
        assert!(e("ttfa.p95=-3").contains("positive"));
    }

    #[test]
    fn overrides_replace_in_place_and_append() {
        let s = |k: &str, v: f64| parse_slo(&format!("{k}={v}")).unwrap();
        let merged =
            merge_slos(&[s("ttfa.p95", 800.0), s("error_rate", 0.02)], &[s("error_rate", 0.05), s("ttfb.p50", 300.0)]);
        let keys: Vec<(String, f64)> = merged.iter().map(|s| (s.key.to_string(), s.threshold)).collect();
        assert_eq!(keys, [("ttfa.p95".into(), 800.0), ("error_rate".into(), 0.05), ("ttfb.p50".into(), 300.0)]);
    }

    fn target(turns: &[TurnRecord], calls: &[CallRecord], slos: &[Slo]) -> TargetMetrics {
        let mut m = TargetMetrics::new("sim");
        for t in turns {
            m.record_turn(t, slos);
        }
        for c in calls {
            m.record_call(c);
        }
        m
    }

    #[test]
    fn no_samples_fails_with_a_reason() {
        let slos = [parse_slo("barge_in_stop.p95=600").unwrap(), parse_slo("barge_in_success_rate=0.9").unwrap()];
        let m = target(&[TurnRecord { ttfa_ms: Some(500.0), ..Default::default() }], &[], &slos);
        let c = checks(&m, &slos);
        assert!(c.iter().all(|c| !c.passed && c.measured.is_none()), "{c:?}");
        assert_eq!(c[0].detail, "no barge_in_stop samples for target `sim`: it never passes by default");
        assert!(c[1].detail.contains("no barge-in turns for target `sim`"), "{}", c[1].detail);
        // No turns at all: even the error rate has nothing to measure.
        let slos = [parse_slo("error_rate=0.1").unwrap()];
        let c = checks(&target(&[], &[], &slos), &slos);
        assert!(!c[0].passed && c[0].detail.contains("no turns attempted"), "{c:?}");
    }

    #[test]
    fn latency_rates_and_goodput_from_the_rows() {
        let slos: Vec<Slo> = ["ttfa.p95=800", "error_rate=0.3", "goodput=0.5", "tool_success_rate=1"]
            .map(|s| parse_slo(s).unwrap())
            .into();
        let mut turns: Vec<TurnRecord> = (0..20)
            .map(|i| TurnRecord { call: i / 4, ttfa_ms: Some(100.0 + 10.0 * f64::from(i)), ..Default::default() })
            .collect();
        turns[0].tools_expected = 1;
        turns[0].tools_succeeded = 1;
        // A call that failed to connect: its 4 turns count as failed (as the recorder's Tally counts them).
        let calls: Vec<CallRecord> = (0..5)
            .map(|call| CallRecord { call, turns_total: 4, ..Default::default() })
            .chain([CallRecord { call: 5, turns_total: 4, error: Some(ErrorCategory::Connect), ..Default::default() }])
            .collect();
        let c = checks(&target(&turns, &calls, &slos), &slos);
        assert_eq!(c[0].name, "ttfa.p95 <= 800 ms");
        // The exact order statistic (the top of its 3-digit bucket read 280.063).
        assert!(c[0].passed && c[0].measured == Some(280.0), "{:?}", c[0]);
        assert_eq!(c[1].measured, Some(4.0 / 24.0));
        assert!(c[1].passed, "{:?}", c[1]);
        assert_eq!((c[2].kind, c[2].measured), (CheckKind::Goodput, Some(20.0 / 24.0)));
        assert!(c[3].passed && c[3].name == "tool_success_rate >= 1", "{:?}", c[3]);
        // Tighter: the latency breaches and says by how much.
        let slos = [parse_slo("ttfa.p95=200ms").unwrap()];
        let c = checks(&target(&turns, &calls, &slos), &slos);
        assert!(!c[0].passed && c[0].detail.contains("breaches the SLO (at most 200 ms), off by 80 ms"), "{c:?}");
    }
}
