//! Histogram sets: per target, one [`Distribution`] per (metric, turn kind) and per (metric, all kinds), plus the
//! run's frame pacing and event-loop lag; and [`Stats`], the percentile summary every report prints.
//!
//! A [`Distribution`] keeps each quantity twice: an HdrHistogram (3 significant digits, for the `.hgrm` files and
//! the interval log that shards merge from) and an [`Exact`] count per distinct µs value, from which every reported
//! figure is read, so a percentile is the order statistic of the raw samples rather than the top of its bucket
//! (553.49 ms, not 553.98).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::errors::AdditionError;
use serde::{Deserialize, Serialize};

use super::SIGFIG;
use super::exact::Exact;
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

/// The samples of `metric` for `target`, grouped by call (only calls with samples), in whole µs as the
/// histograms record them ([`ms_to_us`]), so [`crate::stats::quantile`] of the pooled samples equals the
/// summary's percentile exactly: what the gate and compare resample.
pub fn call_samples(turns: &[TurnRecord], target: &str, metric: Metric) -> crate::stats::CallSamples {
    let mut by_call: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for t in turns.iter().filter(|t| t.target == target) {
        if let Some(us) = t.value(metric).and_then(ms_to_us) {
            by_call.entry(t.call).or_default().push(us);
        }
    }
    by_call.into_values().collect()
}

/// One measured quantity in µs: its HdrHistogram (for the `.hgrm` files, the interval log and merging logs) and
/// its [`Exact`] counts (for every figure a report prints).
#[derive(Debug, Clone)]
pub struct Distribution {
    hist: Histogram<u64>,
    exact: Exact,
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution { hist: new_histogram(), exact: Exact::new() }
    }
}

impl Distribution {
    /// Adds one sample.
    pub fn record(&mut self, us: u64) {
        // An auto-resizing u64 histogram only refuses a value it cannot address, which a u64 of µs cannot reach
        // on a 64-bit target; were it to, the counts would differ and [`Distribution::stats`] would say so by
        // falling back to the histogram.
        let _ = self.hist.record(us);
        self.exact.record(us);
    }

    /// The histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The exact counts, when they hold every sample the histogram holds (not after a histogram read back from
    /// an interval log was added: such a log keeps only the buckets).
    pub fn exact(&self) -> Option<&Exact> {
        (self.exact.len() == self.hist.len()).then_some(&self.exact)
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The summary: exact when [`Distribution::exact`] is, else the histogram's (to its 3 significant digits);
    /// `None` when empty.
    pub fn stats(&self) -> Option<Stats> {
        match self.exact() {
            Some(e) => Stats::from_exact(e),
            None => Stats::from_histogram(&self.hist),
        }
    }

    /// Adds a histogram (e.g. one read back from an interval log): from then on the figures are the histogram's.
    pub fn add_histogram(&mut self, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.hist.add(h)
    }

    /// Adds another shard's samples: the histograms exactly, the exact counts by addition.
    pub fn add(&mut self, other: &Distribution) -> Result<(), AdditionError> {
        self.hist.add(&other.hist)?;
        self.exact.add(&other.exact);
        Ok(())
    }
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

/// The percentile summary of one distribution, in **milliseconds** (µs precision): the exact order statistics of
/// the samples ([`Stats::from_exact`]), or a histogram's to its bucket ([`Stats::from_histogram`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
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
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Stats {
    /// The exact summary of µs samples: each percentile the sample of nearest rank, `min` and `max` the extreme
    /// samples, `mean` rounded to the µs; `None` when there are none.
    pub fn from_exact(e: &Exact) -> Option<Stats> {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |quantile: f64| e.quantile(quantile).map(ms);
        Some(Stats {
            count: e.len(),
            min: ms(e.min()?),
            p50: q(0.50)?,
            p90: q(0.90)?,
            p95: q(0.95)?,
            p99: q(0.99)?,
            p999: q(0.999)?,
            max: ms(e.max()?),
            mean: e.mean()?.round() / 1000.0,
        })
    }

    /// The summary of a histogram of µs values, to its bucket precision (percentiles and `max` the top of their
    /// bucket, `min` the bottom); `None` when it is empty. For histograms read back from an interval log.
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
    histograms: BTreeMap<HistKey, Distribution>,
    /// Counts behind the rates.
    pub tally: Tally,
    /// TTFA and errors per 10 s of run time.
    pub windows: super::windows::Windows,
}

impl TargetMetrics {
    /// An empty set for target `name`.
    pub fn new(name: impl Into<String>) -> TargetMetrics {
        TargetMetrics {
            name: name.into(),
            simulated: false,
            histograms: BTreeMap::new(),
            tally: Tally::default(),
            windows: Default::default(),
        }
    }

    /// Adds one turn: each metric it has goes into its kind's histogram and the `all` histogram.
    pub fn record_turn(&mut self, turn: &TurnRecord, slos: &[Slo]) {
        self.simulated |= turn.simulated;
        for metric in Metric::ALL {
            let Some(us) = turn.value(metric).and_then(ms_to_us) else { continue };
            let scopes = [turn.kind.map(Scope::Kind), Some(Scope::All)];
            for scope in scopes.into_iter().flatten() {
                self.histograms.entry(HistKey { metric, scope }).or_default().record(us);
            }
        }
        self.tally.record_turn(turn, slos);
        self.windows.record_turn(turn);
    }

    /// Adds one call (its counts; the run's pacing is kept by [`HistogramSet`]).
    pub fn record_call(&mut self, call: &CallRecord) {
        self.simulated |= call.simulated;
        self.tally.record_call(call);
        self.windows.record_call(call);
    }

    /// The histogram of `metric` over `scope`, if it has samples.
    pub fn histogram(&self, metric: Metric, scope: Scope) -> Option<&Histogram<u64>> {
        self.distribution(metric, scope).map(Distribution::histogram)
    }

    /// The distribution of `metric` over `scope`, if it has samples.
    pub fn distribution(&self, metric: Metric, scope: Scope) -> Option<&Distribution> {
        self.histograms.get(&HistKey { metric, scope })
    }

    /// Every non-empty histogram, in report order.
    pub fn histograms(&self) -> impl Iterator<Item = (HistKey, &Histogram<u64>)> {
        self.histograms.iter().filter(|(_, d)| !d.is_empty()).map(|(k, d)| (*k, d.histogram()))
    }

    /// The summary of `metric` over `scope`, if it has samples: the exact order statistics of its samples.
    pub fn stats(&self, metric: Metric, scope: Scope) -> Option<Stats> {
        self.distribution(metric, scope).and_then(Distribution::stats)
    }

    /// Adds a histogram (e.g. one read back from an interval log) into the one under `key`, exactly; from then on
    /// that key's figures are the histogram's, to its bucket precision.
    pub fn add_histogram(&mut self, key: HistKey, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.histograms.entry(key).or_default().add_histogram(h)
    }

    /// Adds another shard's measurements of the same target: distributions and counts by addition.
    pub fn merge(&mut self, other: &TargetMetrics) -> Result<(), AdditionError> {
        for (key, d) in &other.histograms {
            self.histograms.entry(*key).or_default().add(d)?;
        }
        self.simulated |= other.simulated;
        self.tally.merge(&other.tally);
        Ok(())
    }
}

/// A run's measurements: one [`TargetMetrics`] per target (in the run's order), the frames' send lateness and the
/// event loop's lag (the harness watching itself, docs/metrics.md).
#[derive(Debug, Clone, Default)]
pub struct HistogramSet {
    targets: Vec<TargetMetrics>,
    pacing: Distribution,
    loop_lag: Distribution,
    /// Open loop: how late each call started after its intended instant.
    start_lateness: Distribution,
    slos: Vec<Slo>,
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
            self.pacing.record(u64::from(*us));
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
        self.pacing.histogram()
    }

    /// Frame send lateness over the whole run, exactly.
    pub fn pacing_distribution(&self) -> &Distribution {
        &self.pacing
    }

    /// Adds frame-lateness samples (e.g. a shard's pacing histogram), exactly.
    pub fn add_pacing(&mut self, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.pacing.add_histogram(h)
    }

    /// Adds one event-loop lag sample: how late, in µs, the run's lag monitor woke.
    pub fn record_loop_lag(&mut self, us: u64) {
        self.loop_lag.record(us);
    }

    /// Adds a whole distribution of event-loop lag (the monitor's, when the run ends).
    pub fn add_loop_lag(&mut self, d: &Distribution) -> Result<(), AdditionError> {
        self.loop_lag.add(d)
    }

    /// Adds event-loop lag samples read back from an interval log.
    pub fn add_loop_lag_histogram(&mut self, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.loop_lag.add_histogram(h)
    }

    /// The event loop's lag over the whole run.
    pub fn loop_lag(&self) -> &Distribution {
        &self.loop_lag
    }

    /// Open loop: how late each call started after its intended instant, µs.
    pub fn start_lateness(&self) -> &Distribution {
        &self.start_lateness
    }

    /// Adds calls' start lateness (the open loop's, when the run ends).
    pub fn add_start_lateness(&mut self, d: &Distribution) -> Result<(), AdditionError> {
        self.start_lateness.add(d)
    }

    /// Adds start-lateness samples read back from an interval log.
    pub fn add_start_lateness_histogram(&mut self, h: &Histogram<u64>) -> Result<(), AdditionError> {
        self.start_lateness.add_histogram(h)
    }

    /// Adds another shard of the same run: per target, distributions and counts by addition.
    pub fn merge(&mut self, other: &HistogramSet) -> Result<(), AdditionError> {
        for t in &other.targets {
            self.target_mut(&t.name).merge(t)?;
        }
        self.pacing.add(&other.pacing)?;
        self.start_lateness.add(&other.start_lateness)?;
        self.loop_lag.add(&other.loop_lag)
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
        // Exact order statistics, not the top of a 3-digit bucket (990 ms would read 990.5).
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.p999, s.max, s.mean),
            (1.0, 500.0, 900.0, 990.0, 999.0, 1000.0, 500.5)
        );
    }

    #[test]
    fn figures_are_the_raw_samples_not_their_buckets() {
        let mut set = HistogramSet::default();
        for ms in [553.49, 553.491, 12.3456, 1999.999] {
            set.record_turn(&turn("a", TurnKind::Plain, ms));
        }
        let s = set.target("a").unwrap().stats(Metric::Ttfa, Scope::All).unwrap();
        // A 3-digit histogram reads 553.49 as 553.983 (the top of its 0.5 ms bucket).
        assert_eq!((s.min, s.p50, s.p90, s.max), (12.346, 553.49, 1999.999, 1999.999));
        let h = set.target("a").unwrap().histogram(Metric::Ttfa, Scope::All).unwrap();
        assert_eq!(Stats::from_histogram(h).unwrap().p50, 553.983);
    }

    #[test]
    fn a_histogram_read_back_from_a_log_gives_its_bucket_figures() {
        let mut set = HistogramSet::default();
        set.record_turn(&turn("a", TurnKind::Plain, 553.49));
        let mut logged = new_histogram();
        logged.record(553_490).unwrap();
        set.target_mut("a").add_histogram(HistKey { metric: Metric::Ttfa, scope: Scope::All }, &logged).unwrap();
        let s = set.target("a").unwrap().stats(Metric::Ttfa, Scope::All).unwrap();
        assert_eq!((s.count, s.p50), (2, 553.983), "the log holds buckets, so every figure is the bucket's");
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
        let exact = set.pacing_distribution().stats().unwrap();
        assert_eq!((exact.p50, exact.max), (0.2, 5.0));
    }

    #[test]
    fn scope_names_round_trip() {
        for s in TurnKind::ALL.map(Scope::Kind).into_iter().chain([Scope::All]) {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
