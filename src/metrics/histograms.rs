//! Histogram sets: per target, one HdrHistogram per (metric, turn kind) and per (metric, all kinds), plus the run's
//! frame-pacing histogram; and [`Stats`], the percentile summary every report prints.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::errors::AdditionError;
use serde::{Deserialize, Serialize};

use super::SIGFIG;
use super::tally::Tally;
use crate::model::{CallRecord, Metric, TurnKind, TurnRecord};
use crate::scenario::Slo;

/// An empty auto-resizing histogram at [`SIGFIG`] significant digits (values in µs).
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(SIGFIG).expect("3 significant digits is a valid histogram precision");
    h.auto(true);
    h
}

/// Milliseconds (`f64`, as in the records) to whole microseconds. `None` for a negative or non-finite value: those
/// cannot go in a histogram (a negative response time is reported as `talk_over`, never clamped to 0).
pub fn ms_to_us(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
}

/// The samples of `metric` for `target`, grouped by call (only calls with samples), in µs each rounded to its
/// histogram bucket (the bucket's highest equivalent value), so [`crate::stats::quantile`] of the pooled samples
/// equals the histogram's percentile exactly: what the gate and compare resample.
pub fn call_samples(turns: &[TurnRecord], target: &str, metric: Metric) -> crate::stats::CallSamples {
    let h = new_histogram();
    let mut by_call: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for t in turns.iter().filter(|t| t.target == target) {
        if let Some(us) = t.value(metric).and_then(ms_to_us) {
            by_call.entry(t.call).or_default().push(h.highest_equivalent(us));
        }
    }
    by_call.into_values().collect()
}

/// Which turns a histogram covers: one kind, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Turns of one kind.
    Kind(TurnKind),
    /// Every turn, whatever its kind (including turns with no kind).
    All,
}

impl Scope {
    /// The name used in file names, tags and JSON: the kind's snake_case name, or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Kind(k) => k.as_str(),
            Scope::All => "all",
        }
    }

    /// The inverse of [`Scope::as_str`].
    pub fn parse(s: &str) -> Option<Scope> {
        if s == "all" {
            return Some(Scope::All);
        }
        TurnKind::ALL.into_iter().find(|k| k.as_str() == s).map(Scope::Kind)
    }
}

/// A histogram's key within a target: a [`Metric`] and a [`Scope`]. Orders as reports list them (metrics in
/// [`Metric::ALL`] order, kinds in [`TurnKind::ALL`] order, then `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HistKey {
    /// The metric.
    pub metric: Metric,
    /// The turns covered.
    pub scope: Scope,
}

/// The percentile summary of one histogram, in **milliseconds** (µs precision).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Samples.
    pub count: u64,
    /// Smallest sample (lowest value of its bucket).
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample (highest value of its bucket).
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Stats {
    /// The summary of a histogram of µs values; `None` when it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Stats> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |quantile: f64| ms(h.value_at_quantile(quantile));
        Some(Stats {
            count: h.len(),
            min: ms(h.min()),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(h.max()),
            mean: (h.mean()).round() / 1000.0,
        })
    }

    /// A statistic by the name SLO keys use (`p50` … `p999`, `max`, `mean`, `min`, `count`).
    pub fn get(&self, stat: &str) -> Option<f64> {
        Some(match stat {
            "count" => self.count as f64,
            "min" => self.min,
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p999" => self.p999,
            "max" => self.max,
            "mean" => self.mean,
            _ => return None,
        })
    }
}

/// Everything measured for one target: its histograms and its counts.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    /// Target name.
    pub name: String,
    /// Whether any record came from an embedded simulated provider.
    pub simulated: bool,
    histograms: BTreeMap<HistKey, Histogram<u64>>,
    /// Counts behind the rates.
    pub tally: Tally,
}

impl TargetMetrics {
    /// An empty set for target `name`.
    pub fn new(name: impl Into<String>) -> TargetMetrics {
        TargetMetrics { name: name.into(), simulated: false, histograms: BTreeMap::new(), tally: Tally::default() }
    }

    /// Adds one turn: each metric it has goes into its kind's histogram and the `all` histogram.
    pub fn record_turn(&mut self, turn: &TurnRecord, slos: &[Slo]) {
        self.simulated |= turn.simulated;
        for metric in Metric::ALL {
            let Some(us) = turn.value(metric).and_then(ms_to_us) else { continue };
            let scopes = [turn.kind.map(Scope::Kind), Some(Scope::All)];
            for scope in scopes.into_iter().flatten() {
                let h = self.histograms.entry(HistKey { metric, scope }).or_insert_with(new_histogram);
                // An auto-resizing u64 histogram only refuses a value it cannot address, which a u64 of µs
                // cannot reach on a 64-bit target.
                let _ = h.record(us);
            }
        }
        self.tally.record_turn(turn, slos);
    }

    /// Adds one call (its counts; the run's pacing is kept by [`HistogramSet`]).
    pub fn record_call(&mut self, call: &CallRecord) {
        self.simulated |= call.simulated;
        self.tally.record_call(call);
    }

    /// The histogram of `metric` over `scope`, if it has samples.
    pub fn histogram(&self, metric: Metric, scope: Scope) -> Option<&Histogram<u64>> {
        self.histograms.get(&HistKey { metric, scope })
    }

    /// Every non-empty histogram, in report order.
    pub fn histograms(&self) -> impl Iterator<Item = (HistKey, &Histogram<u64>)> {
        self.histograms.iter().filter(|(_, h)| !h.is_empty()).map(|(k, h)| (*k, h))
    }

    /// The summary of `metric` over `scope`, if it has samples.
    pub fn stats(&self, metric: Metric, scope: Scope) -> Option<Stats> {
        self.histogram(metric, scope).and_then(Stats::from_histogram)
    }

    /// Adds a histogram (e.g. one read back from an interval log) into the one under `key`, exactly.
    pub fn add_histogram(&mut self, key: HistKey, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.histograms.entry(key).or_insert_with(new_histogram).add(h)
    }

    /// Adds another shard's measurements of the same target: histograms exactly, counts by addition.
    pub fn merge(&mut self, other: &TargetMetrics) -> Result<(), AdditionError> {
        for (key, h) in &other.histograms {
            self.add_histogram(*key, h)?;
        }
        self.simulated |= other.simulated;
        self.tally.merge(&other.tally);
        Ok(())
    }
}

/// A run's measurements: one [`TargetMetrics`] per target (in the run's order) and the frame-pacing histogram.
#[derive(Debug, Clone)]
pub struct HistogramSet {
    targets: Vec<TargetMetrics>,
    pacing: Histogram<u64>,
    slos: Vec<Slo>,
}

impl Default for HistogramSet {
    fn default() -> Self {
        HistogramSet { targets: Vec::new(), pacing: new_histogram(), slos: Vec::new() }
    }
}

impl HistogramSet {
    /// An empty set with these targets, in this order (targets first seen in a record are appended).
    pub fn new<S: Into<String>>(targets: impl IntoIterator<Item = S>) -> HistogramSet {
        HistogramSet { targets: targets.into_iter().map(TargetMetrics::new).collect(), ..Default::default() }
    }

    /// Judges every turn against these SLOs for goodput (docs/metrics.md: the share of turns that meet every SLO at
    /// once). Without SLOs, goodput is not computed.
    pub fn with_slos(mut self, slos: Vec<Slo>) -> HistogramSet {
        self.slos = slos;
        self
    }

    /// The SLOs turns are judged against.
    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }

    /// Adds one turn.
    pub fn record_turn(&mut self, turn: &TurnRecord) {
        let slos = std::mem::take(&mut self.slos);
        self.target_mut(&turn.target).record_turn(turn, &slos);
        self.slos = slos;
    }

    /// Adds one call, and its frames' lateness to the pacing histogram.
    pub fn record_call(&mut self, call: &CallRecord) {
        self.target_mut(&call.target).record_call(call);
        for us in &call.pacing.lateness_us {
            let _ = self.pacing.record(u64::from(*us));
        }
    }

    /// A target's measurements.
    pub fn target(&self, name: &str) -> Option<&TargetMetrics> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// A target's measurements, created empty if the target is new.
    pub fn target_mut(&mut self, name: &str) -> &mut TargetMetrics {
        match self.targets.iter().position(|t| t.name == name) {
            Some(i) => &mut self.targets[i],
            None => {
                self.targets.push(TargetMetrics::new(name));
                self.targets.last_mut().expect("just pushed")
            }
        }
    }

    /// Every target, in the run's order.
    pub fn targets(&self) -> &[TargetMetrics] {
        &self.targets
    }

    /// Frame send lateness over the whole run, µs.
    pub fn pacing(&self) -> &Histogram<u64> {
        &self.pacing
    }

    /// Adds frame-lateness samples (e.g. a shard's pacing histogram), exactly.
    pub fn add_pacing(&mut self, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.pacing.add(h)
    }

    /// Adds another shard of the same run: per target, histograms exactly and counts by addition.
    pub fn merge(&mut self, other: &HistogramSet) -> Result<(), AdditionError> {
        for t in &other.targets {
            self.target_mut(&t.name).merge(t)?;
        }
        self.pacing.add(&other.pacing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(target: &str, kind: TurnKind, ttfa: f64) -> TurnRecord {
        TurnRecord { target: target.into(), kind: Some(kind), ttfa_ms: Some(ttfa), ..Default::default() }
    }

    #[test]
    fn percentiles_of_1_to_1000_ms() {
        let mut set = HistogramSet::new(["a"]);
        for ms in 1..=1000 {
            set.record_turn(&turn("a", TurnKind::Plain, f64::from(ms)));
        }
        let s = set.target("a").unwrap().stats(Metric::Ttfa, Scope::All).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() <= 0.5, "{s:?}");
        assert!((s.p99 - 990.0).abs() <= 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() <= 1.0, "{s:?}");
        assert!((s.min - 1.0).abs() <= 0.001, "{s:?}");
        assert!((s.mean - 500.5).abs() <= 0.5, "{s:?}");
    }

    #[test]
    fn kinds_are_kept_apart_and_all_covers_every_kind() {
        let mut set = HistogramSet::default();
        set.record_turn(&turn("a", TurnKind::Plain, 100.0));
        set.record_turn(&turn("a", TurnKind::Tool, 900.0));
        set.record_turn(&TurnRecord { target: "a".into(), ttfa_ms: Some(50.0), ..Default::default() });
        let t = set.target("a").unwrap();
        assert_eq!(t.stats(Metric::Ttfa, Scope::Kind(TurnKind::Plain)).unwrap().count, 1);
        assert_eq!(t.stats(Metric::Ttfa, Scope::Kind(TurnKind::Tool)).unwrap().count, 1);
        assert_eq!(t.stats(Metric::Ttfa, Scope::All).unwrap().count, 3);
        assert!(t.stats(Metric::Ttfb, Scope::All).is_none());
    }

    #[test]
    fn negative_and_missing_values_stay_out() {
        let mut set = HistogramSet::default();
        set.record_turn(&turn("a", TurnKind::Plain, -20.0));
        set.record_turn(&turn("a", TurnKind::Plain, f64::NAN));
        assert!(set.target("a").unwrap().stats(Metric::Ttfa, Scope::All).is_none());
    }

    #[test]
    fn shards_merge_exactly() {
        let mut whole = HistogramSet::default();
        let (mut a, mut b) = (HistogramSet::default(), HistogramSet::default());
        for ms in 1..=500 {
            let t = turn("x", TurnKind::Plain, f64::from(ms) * 3.7);
            whole.record_turn(&t);
            if ms % 2 == 0 { a.record_turn(&t) } else { b.record_turn(&t) }
        }
        a.merge(&b).unwrap();
        let key = (Metric::Ttfa, Scope::All);
        assert_eq!(a.target("x").unwrap().histogram(key.0, key.1), whole.target("x").unwrap().histogram(key.0, key.1));
        assert_eq!(a.target("x").unwrap().tally, whole.target("x").unwrap().tally);
    }

    #[test]
    fn pacing_collects_every_frame() {
        let mut set = HistogramSet::default();
        let mut call = CallRecord { target: "a".into(), ..Default::default() };
        call.pacing.lateness_us = vec![100, 200, 300, 5000];
        set.record_call(&call);
        assert_eq!(set.pacing().len(), 4);
        assert_eq!(set.pacing().max(), set.pacing().highest_equivalent(5000));
    }

    #[test]
    fn scope_names_round_trip() {
        for s in TurnKind::ALL.map(Scope::Kind).into_iter().chain([Scope::All]) {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
