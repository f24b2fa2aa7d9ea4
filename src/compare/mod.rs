//! Head to head: `voicebench compare DIR_A DIR_B …`, and the comparison a multi-target run writes by itself.
//!
//! Every (report directory, target) is a *side*; the first side (or `--reference`) is the reference and every
//! other side is compared with it, metric by metric. For a latency metric and a statistic (p50, p95) the figure is
//! the **ratio** `stat(other) / stat(reference)` with a 95 % bootstrap confidence interval over **whole calls**
//! (the turns of one call share a connection and a moment, so calls are the unit, as in the gate: docs/metrics.md):
//! 1. samples are the turns' values in whole µs, grouped by call (so the point estimates are the `summary.json`
//!    figures); calls without a sample of the metric are left out;
//! 2. `B` times (default 2000, seeded): draw as many calls as each side has, with replacement, from that side,
//!    pool their samples and take the ratio of the statistics;
//! 3. the interval is the 2.5th and 97.5th percentiles of those ratios; the two-sided p-value is
//!    `2 · min(share ≤ 1, share ≥ 1)`, within `[1/B, 1]`; the difference is **significant** when `p < 0.05` and
//!    the interval excludes 1.
//!
//! Rates (tool success, barge-in success) are compared as a **difference** in percentage points with the same
//! bootstrap over calls (each call brings its numerator and denominator).

pub mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::metrics::call_samples as samples;
use crate::model::{CallRecord, Metric, TurnKind, TurnRecord};
use crate::report::read::{ReadError, Report};
use crate::stats::{CallSamples, SplitMix64, fnv, index, interval_and_p, pooled, quantile, resample_pooled};

pub use render::{render_json, render_markdown, render_terminal};

/// Why a comparison could not be made. Every variant names the directory, file or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A report directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Bad options or sides (fewer than two, an unknown reference or kind, two sides with one label).
    #[error("{0}")]
    Options(String),
    /// `compare.md` or `compare.json` could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The statistics compared, with their quantiles.
pub const STATS: &[(&str, f64)] = &[("p50", 0.50), ("p95", 0.95)];

/// Significance level.
pub const ALPHA: f64 = 0.05;

/// Fewest calls with samples on each side for an interval; below it the row states the point ratio only.
pub const MIN_CALLS: usize = 3;

/// Options of a comparison.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Seed of the bootstrap (the output is reproducible).
    pub seed: u64,
    /// Label of the reference side (default: the first).
    pub reference: Option<String>,
    /// Compare only turns of this kind (`plain` puts sides with different tool behaviour on equal terms).
    pub kind: Option<TurnKind>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions { resamples: 2000, seed: 0x766f_6963_6562_656e, reference: None, kind: None }
    }
}

/// One side: a target of a report directory.
#[derive(Debug, Clone)]
pub struct Side {
    /// The label used in every output: the target's name, or `dir/target` when names repeat across directories.
    pub label: String,
    /// The target's name.
    pub target: String,
    /// The report directory.
    pub dir: PathBuf,
    /// Whether the target is simulated.
    pub simulated: bool,
    /// Its turn rows.
    pub turns: Vec<TurnRecord>,
    /// Its call rows (for the rates judged per call: task success).
    pub calls: Vec<CallRecord>,
}

impl Side {
    /// The label with " (simulated)" when it is.
    pub fn display(&self) -> String {
        if self.simulated { format!("{} (simulated)", self.label) } else { self.label.clone() }
    }
}

/// A side as the outputs describe it.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    /// Label.
    pub label: String,
    /// Target name.
    pub target: String,
    /// Report directory.
    pub dir: String,
    /// Simulated target.
    pub simulated: bool,
    /// Calls with at least one turn row.
    pub calls: usize,
}

/// What a row compares: a latency metric (as a ratio) or a rate (as a difference). Written by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A latency metric.
    Latency(Metric),
    /// A rate: `tool_success_rate`, `barge_in_success_rate`, `content_success_rate` or `task_success_rate`.
    Rate(&'static str),
}

impl Measure {
    /// The name files write (`ttfa`, `tool_success_rate`).
    pub fn name(self) -> &'static str {
        match self {
            Measure::Latency(m) => m.name(),
            Measure::Rate(r) => r,
        }
    }

    /// The label for people: the metric's ([`Metric::label`]), or the rate's ("tool success").
    pub fn label(self) -> &'static str {
        match self {
            Measure::Latency(m) => m.label(),
            Measure::Rate("tool_success_rate") => "tool success",
            Measure::Rate("barge_in_success_rate") => "barge-in success",
            Measure::Rate("content_success_rate") => "content success",
            Measure::Rate("task_success_rate") => "task success",
            Measure::Rate(r) => r,
        }
    }
}

impl Serialize for Measure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One row: a latency statistic or a rate, reference against another side.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Metric (`ttfa`, …, or a rate: `tool_success_rate`, `barge_in_success_rate`).
    pub metric: Measure,
    /// `p50`/`p95` for latencies; `rate` for rates.
    pub stat: String,
    /// The reference's value (ms, or a 0–1 rate).
    pub reference: f64,
    /// The other side's value.
    pub other: f64,
    /// Latencies: `other / reference`. Rates: `other − reference` (0–1).
    pub value: f64,
    /// 95 % bootstrap interval of `value`, when both sides have at least [`MIN_CALLS`] calls with samples.
    pub ci: Option<(f64, f64)>,
    /// Two-sided bootstrap p-value.
    pub p_value: Option<f64>,
    /// `p < 0.05` and the interval excludes the no-difference value.
    pub significant: bool,
    /// Calls with samples: (reference, other).
    pub calls: (usize, usize),
    /// Samples: (reference, other).
    pub samples: (usize, usize),
}

impl Row {
    /// Whether the row is a rate (a difference) rather than a latency (a ratio).
    pub fn is_rate(&self) -> bool {
        matches!(self.metric, Measure::Rate(_))
    }
}

/// The reference against one other side.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// The other side's label.
    pub other: String,
    /// Rows, metrics in [`Metric::ALL`] order then the rates.
    pub rows: Vec<Row>,
    /// What makes the pair less than like for like (different turn mixes, …).
    pub notes: Vec<String>,
}

/// A whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The reference side's label.
    pub reference: String,
    /// Every side, reference first.
    pub sides: Vec<SideInfo>,
    /// The reference against each other side.
    pub pairs: Vec<Pair>,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// The turn kind compared, when restricted (`--kind`).
    pub kind: Option<String>,
}

impl Comparison {
    /// The side with this label.
    pub fn side(&self, label: &str) -> Option<&SideInfo> {
        self.sides.iter().find(|s| s.label == label)
    }
}

/// Every target of one loaded report directory as a side, labelled by its target name.
pub fn sides_of(report: &Report) -> Vec<Side> {
    report
        .targets
        .iter()
        .map(|target| {
            let turns: Vec<TurnRecord> = report.turns.iter().filter(|t| &t.target == target).cloned().collect();
            let simulated = report
                .summary
                .as_ref()
                .and_then(|s| s.target(target))
                .map(|t| t.simulated)
                .unwrap_or_else(|| turns.iter().any(|t| t.simulated));
            let calls = report.calls.iter().filter(|c| &c.target == target).cloned().collect();
            Side { label: target.clone(), target: target.clone(), dir: report.dir.clone(), simulated, turns, calls }
        })
        .collect()
}

/// Every target of every directory as a side, in order. Labels are target names, or `dir/target` when a target
/// name appears in more than one directory (the directory's last path component).
pub fn load_sides(dirs: &[PathBuf]) -> Result<Vec<Side>, CompareError> {
    let mut raw = Vec::new();
    for dir in dirs {
        raw.extend(sides_of(&Report::read(dir, false)?));
    }
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for s in &raw {
        *count.entry(s.target.clone()).or_default() += 1;
    }
    for s in &mut raw {
        if count[&s.target] > 1 {
            let d = s.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            s.label = format!("{d}/{}", s.target);
        }
    }
    // Directories with the same last component (`a/report`, `b/report`): their whole paths tell them apart.
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for s in &raw {
        *labels.entry(s.label.clone()).or_default() += 1;
    }
    for s in &mut raw {
        if labels[&s.label] > 1 {
            s.label = format!("{}/{}", s.dir.display(), s.target);
        }
    }
    let mut seen = BTreeMap::new();
    for s in &raw {
        if let Some(prev) = seen.insert(s.label.clone(), s.dir.clone()) {
            return Err(CompareError::Options(format!(
                "two sides are both called `{}` ({} and {}): give directories with different names",
                s.label,
                prev.display(),
                s.dir.display()
            )));
        }
    }
    Ok(raw)
}

/// A turn kind by its snake_case name (`plain`, `tool`, `barge_in`, `backchannel`, `no_takeover`).
pub fn parse_kind(s: &str) -> Result<TurnKind, CompareError> {
    TurnKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        let kinds: Vec<&str> = TurnKind::ALL.iter().map(|k| k.as_str()).collect();
        CompareError::Options(format!("unknown turn kind `{s}`; {}", crate::diag::suggest(s, "kinds", &kinds)))
    })
}

/// Compares the reference side with every other side. Needs at least two sides.
pub fn compare(sides: &[Side], opts: &CompareOptions) -> Result<Comparison, CompareError> {
    if sides.len() < 2 {
        return Err(CompareError::Options(format!(
            "a comparison needs two targets; found {}: give two report directories, or one with two targets",
            sides.len()
        )));
    }
    let ref_index = match &opts.reference {
        None => 0,
        Some(r) => sides.iter().position(|s| &s.label == r).ok_or_else(|| {
            let labels: Vec<&str> = sides.iter().map(|s| s.label.as_str()).collect();
            CompareError::Options(format!("no side is called `{r}`; {}", crate::diag::suggest(r, "sides", &labels)))
        })?,
    };
    // `--kind`: every side keeps only the turns of that kind.
    let restricted: Vec<Side>;
    let sides = match opts.kind {
        None => sides,
        Some(k) => {
            restricted = sides
                .iter()
                .map(|s| Side { turns: s.turns.iter().filter(|t| t.kind == Some(k)).cloned().collect(), ..s.clone() })
                .collect();
            &restricted
        }
    };
    let reference = &sides[ref_index];
    let mut order: Vec<&Side> = vec![reference];
    order.extend(sides.iter().enumerate().filter(|(i, _)| *i != ref_index).map(|(_, s)| s));
    let pairs = order[1..]
        .iter()
        .map(|other| Pair {
            other: other.label.clone(),
            rows: pair_rows(reference, other, opts),
            notes: pair_notes(reference, other),
        })
        .collect();
    Ok(Comparison {
        reference: reference.label.clone(),
        sides: order
            .iter()
            .map(|s| SideInfo {
                label: s.label.clone(),
                target: s.target.clone(),
                dir: s.dir.display().to_string(),
                simulated: s.simulated,
                calls: s.turns.iter().map(|t| t.call).collect::<std::collections::BTreeSet<_>>().len(),
            })
            .collect(),
        pairs,
        resamples: opts.resamples,
        seed: opts.seed,
        kind: opts.kind.map(|k| k.as_str().to_string()),
    })
}

fn pair_rows(a: &Side, b: &Side, opts: &CompareOptions) -> Vec<Row> {
    let mut rows = Vec::new();
    for metric in Metric::ALL {
        let (sa, sb) = (samples(&a.turns, &a.target, metric), samples(&b.turns, &b.target, metric));
        // Nothing on either side (post-cancel audio of agents that stop cleanly): a ratio of zeros says nothing.
        if sa.is_empty() || sb.is_empty() || sa.iter().chain(&sb).flatten().all(|v| *v == 0) {
            continue;
        }
        for (stat, q) in STATS {
            let seed = opts.seed ^ fnv(&format!("{}|{}|{metric}|{stat}", a.label, b.label));
            rows.push(ratio_row(metric, stat, *q, &sa, &sb, opts.resamples, seed));
        }
    }
    for (metric, per_call) in RATES {
        let (ra, rb) = (per_call(a), per_call(b));
        if ra.is_empty() || rb.is_empty() {
            continue;
        }
        let seed = opts.seed ^ fnv(&format!("{}|{}|{metric}", a.label, b.label));
        rows.push(rate_row(metric, &ra, &rb, opts.resamples, seed));
    }
    rows
}

/// Warnings about a pair: a side that scores no tool calls (its protocol carries none) answers tool turns without a
/// tool round, so its whole-call latencies are not like for like with a side that makes them.
fn pair_notes(a: &Side, b: &Side) -> Vec<String> {
    let expected = |s: &Side| s.turns.iter().map(|t| u64::from(t.tools_expected)).sum::<u64>();
    let (ea, eb) = (expected(a), expected(b));
    let mut notes = Vec::new();
    for (side, e, other, eo) in [(a, ea, b, eb), (b, eb, a, ea)] {
        if e == 0 && eo > 0 {
            notes.push(format!(
                "{} scores no tool calls (none expected of it: its protocol carries none), so its tool turns skip the \
                 tool round that {} makes: compare plain turns only (`voicebench compare --kind plain`) before \
                 concluding",
                side.label, other.label
            ));
        }
    }
    notes
}

/// The ratio row of one latency statistic.
pub fn ratio_row(
    metric: Metric,
    stat: &str,
    q: f64,
    a: &CallSamples,
    b: &CallSamples,
    resamples: usize,
    seed: u64,
) -> Row {
    let (pa, pb) = (pooled(a), pooled(b));
    let at = |s: &[u64]| quantile(s, q).unwrap_or(0) as f64;
    let (va, vb) = (at(&pa), at(&pb));
    let ratio = |x: f64, y: f64| if x == 0.0 { if y == 0.0 { 1.0 } else { f64::INFINITY } } else { y / x };
    let value = ratio(va, vb);
    let (mut ci, mut p_value) = (None, None);
    if a.len() >= MIN_CALLS && b.len() >= MIN_CALLS && resamples > 0 {
        let mut rng = SplitMix64::new(seed);
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        let mut dist: Vec<f64> = (0..resamples)
            .map(|_| {
                resample_pooled(a, &mut rng, &mut ra);
                resample_pooled(b, &mut rng, &mut rb);
                ratio(at(&ra), at(&rb))
            })
            .collect();
        let (c, p) = interval_and_p(&mut dist, 1.0);
        ci = Some(c);
        p_value = Some(p);
    }
    let significant = matches!((ci, p_value), (Some((lo, hi)), Some(p)) if p < ALPHA && (lo > 1.0 || hi < 1.0));
    Row {
        metric: Measure::Latency(metric),
        stat: stat.to_string(),
        reference: va / 1000.0,
        other: vb / 1000.0,
        value,
        ci,
        p_value,
        significant,
        calls: (a.len(), b.len()),
        samples: (pa.len(), pb.len()),
    }
}

/// Per call (numerator, denominator) of a rate.
type PerCall = fn(&Side) -> Vec<(u64, u64)>;

/// The rates compared, with how each call contributes.
const RATES: &[(&str, PerCall)] = &[
    ("tool_success_rate", tool_calls),
    ("barge_in_success_rate", barge_ins),
    ("content_success_rate", content),
    ("task_success_rate", task),
];

fn by_call(turns: &[TurnRecord], f: impl Fn(&TurnRecord) -> (u64, u64)) -> Vec<(u64, u64)> {
    let mut m: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for t in turns {
        let (n, d) = f(t);
        if d > 0 {
            let e = m.entry(t.call).or_default();
            e.0 += n;
            e.1 += d;
        }
    }
    m.into_values().collect()
}

fn tool_calls(s: &Side) -> Vec<(u64, u64)> {
    by_call(&s.turns, |t| (u64::from(t.tools_succeeded), u64::from(t.tools_expected)))
}

fn barge_ins(s: &Side) -> Vec<(u64, u64)> {
    by_call(&s.turns, |t| match t.barge_in_failed {
        Some(failed) => (u64::from(!failed), 1),
        None => (0, 0),
    })
}

fn content(s: &Side) -> Vec<(u64, u64)> {
    by_call(&s.turns, |t| match t.content_ok {
        Some(ok) => (u64::from(ok), 1),
        None => (0, 0),
    })
}

fn task(s: &Side) -> Vec<(u64, u64)> {
    s.calls.iter().filter_map(|c| c.task_ok.map(|ok| (u64::from(ok), 1))).collect()
}

/// The difference row of a rate.
pub fn rate_row(metric: &'static str, a: &[(u64, u64)], b: &[(u64, u64)], resamples: usize, seed: u64) -> Row {
    let rate = |v: &mut dyn Iterator<Item = (u64, u64)>| {
        let (n, d) = v.fold((0, 0), |s, x| (s.0 + x.0, s.1 + x.1));
        n as f64 / d.max(1) as f64
    };
    let (va, vb) = (rate(&mut a.iter().copied()), rate(&mut b.iter().copied()));
    let (mut ci, mut p_value) = (None, None);
    if a.len() >= MIN_CALLS && b.len() >= MIN_CALLS && resamples > 0 {
        let mut rng = SplitMix64::new(seed);
        let mut draw = |v: &[(u64, u64)]| rate(&mut (0..v.len()).map(|_| v[index(&mut rng, v.len())]));
        let mut dist: Vec<f64> = (0..resamples).map(|_| draw(b) - draw(a)).collect();
        let (c, p) = interval_and_p(&mut dist, 0.0);
        ci = Some(c);
        p_value = Some(p);
    }
    let significant = matches!((ci, p_value), (Some((lo, hi)), Some(p)) if p < ALPHA && (lo > 0.0 || hi < 0.0));
    let samples = |v: &[(u64, u64)]| v.iter().map(|x| x.1 as usize).sum::<usize>();
    Row {
        metric: Measure::Rate(metric),
        stat: "rate".into(),
        reference: va,
        other: vb,
        value: vb - va,
        ci,
        p_value,
        significant,
        calls: (a.len(), b.len()),
        samples: (samples(a), samples(b)),
    }
}

/// The per-side samples (ms) of one metric, for overlaid CDFs.
pub fn metric_values(sides: &[Side], metric: Metric) -> Vec<(String, Vec<f64>)> {
    sides
        .iter()
        .map(|s| (s.display(), s.turns.iter().filter_map(|t| t.value(metric)).collect::<Vec<f64>>()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Writes `compare.md` and `compare.json` into `dir`; returns their paths.
pub fn write_outputs(c: &Comparison, dir: &Path) -> Result<Vec<PathBuf>, CompareError> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| CompareError::Write { path: path.to_owned(), source })
    };
    let md = dir.join("compare.md");
    write(&md, render_markdown(c))?;
    let json = dir.join("compare.json");
    write(&json, render_json(c))?;
    Ok(vec![md, json])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(values: &[&[u64]]) -> CallSamples {
        values.iter().map(|v| v.to_vec()).collect()
    }

    #[test]
    fn a_ratio_of_two_and_a_significant_interval_around_it() {
        // Reference ~500 ms, other ~1000 ms, a little spread, 10 calls each.
        let a: CallSamples = (0..10).map(|i| vec![490_000 + i * 2_000, 500_000 + i * 1_000]).collect();
        let b: CallSamples = (0..10).map(|i| vec![980_000 + i * 4_000, 1_000_000 + i * 2_000]).collect();
        let r = ratio_row(Metric::Ttfa, "p50", 0.5, &a, &b, 2000, 1);
        assert!((r.value - 2.0).abs() < 0.05, "{r:?}");
        let (lo, hi) = r.ci.unwrap();
        assert!(lo < r.value && r.value < hi && lo > 1.8 && hi < 2.2, "{r:?}");
        assert!(r.significant && r.p_value.unwrap() <= 0.001, "{r:?}");
    }

    #[test]
    fn identical_sides_are_not_significant() {
        let a: CallSamples = (0..10).map(|i| vec![400_000 + i * 10_000]).collect();
        let r = ratio_row(Metric::Ttfa, "p50", 0.5, &a, &a.clone(), 2000, 1);
        assert_eq!(r.value, 1.0);
        assert!(!r.significant && r.p_value.unwrap() > 0.05, "{r:?}");
    }

    #[test]
    fn too_few_calls_give_a_point_and_no_interval() {
        let a = calls(&[&[1_000], &[2_000]]);
        let r = ratio_row(Metric::Ttfa, "p50", 0.5, &a, &a.clone(), 2000, 1);
        assert!(r.ci.is_none() && r.p_value.is_none() && !r.significant);
    }

    #[test]
    fn rates_differ_in_points() {
        let a: Vec<(u64, u64)> = vec![(2, 2); 10];
        let b: Vec<(u64, u64)> = (0..10).map(|i| (u64::from(i % 2 == 0), 2)).collect();
        let r = rate_row("tool_success_rate", &a, &b, 2000, 3);
        assert_eq!((r.reference, r.other), (1.0, 0.25));
        assert!((r.value + 0.75).abs() < 1e-9);
        let (lo, hi) = r.ci.unwrap();
        assert!(hi < 0.0 && lo >= -1.0 && r.significant, "{r:?}");
    }
}
