//! `summary.json`: the contract CI jobs rely on (schema: `docs/summary.schema.json`). [`Summary::build`] derives it
//! from a run's [`HistogramSet`]; [`summary_json`] renders it. Latencies are in ms; metric objects list metrics in
//! [`Metric::ALL`] order and only metrics with samples; rates with no denominator are `null`, never a default pass.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RunMeta;
use super::time::rfc3339;
pub use crate::metrics::Counts;
use crate::metrics::{Distribution, HistogramSet, Scope, Stats, TargetMetrics};
use crate::model::{Metric, TurnKind};

/// The whole summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// voicebench version that wrote it.
    pub voicebench: String,
    /// Which scenario, exactly.
    pub scenario: ScenarioInfo,
    /// Run parameters.
    pub run: RunInfo,
    /// The scenario's SLOs, key → threshold (ms for latencies, 0–1 for rates), in the scenario's order; empty when
    /// it has none. `voicebench gate` reads them from here (absent in summaries written before the gate existed).
    #[serde(default)]
    pub slo: Ordered<f64>,
    /// UTC start, RFC 3339.
    pub started_at: String,
    /// UTC end, RFC 3339.
    pub finished_at: String,
    /// Whether the run was stopped early (Ctrl-C, SIGTERM, SIGHUP): the figures cover what was measured until then.
    pub interrupted: bool,
    /// Whether this summary was rebuilt from the rows of a run that ended without writing one (killed, crashed):
    /// the calls in flight then have no record. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// Outgoing frame send lateness over the whole run.
    pub pacing: PacingSummary,
    /// The harness's own health: its pacing and event-loop lag, and whether it was overloaded (so the figures it
    /// affects carry its lateness, not the provider's). Absent in a summary rebuilt from rows (they do not hold it)
    /// and in summaries written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<HarnessSummary>,
    /// Open loop (`--rate`/`--stages`): the schedule, and what became of its arrivals; absent for a closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSummary>,
    /// Which shard of a sharded run this is (`voicebench run --shard I/N`); absent for a run in one piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSummary>,
    /// What a merged directory was combined from (`voicebench merge`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedSummary>,
    /// One entry per target, in run order.
    pub targets: Vec<TargetSummary>,
}

/// An open-loop run's schedule and what became of its arrivals (docs/metrics.md "Load").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSummary {
    /// `constant` or `poisson`.
    pub arrivals: String,
    /// The stages: `duration_s`, `from_per_s`, `to_per_s` (calls started per second per target, ramped linearly).
    pub stages: Vec<Ordered<f64>>,
    /// Calls in flight at most, all targets together.
    pub max_in_flight: u32,
    /// How long a call may wait for a slot after its intended start before it is dropped, ms.
    pub max_start_delay_ms: f64,
    /// Calls the schedule asked for (arrivals × targets).
    pub intended: u64,
    /// Calls started.
    pub started: u64,
    /// Calls started 10 ms or more after their intended instant.
    pub late: u64,
    /// Calls dropped: no slot free within `max_start_delay_ms`.
    pub dropped: u64,
    /// How late the started calls started, ms.
    pub start_lateness: LatenessSummary,
}

/// One shard of a sharded run (docs/scale.md): it ran the calls whose index `i` has `i mod count = index − 1`, with
/// its own seed stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSummary {
    /// This shard, 1 to `count`.
    pub index: u32,
    /// Shards of the run.
    pub count: u32,
    /// The seed this shard's call phases and simulated latencies were drawn with (derived from `run.seed`).
    pub seed: u64,
}

impl ShardSummary {
    /// The summary entry of `shard` of a run seeded with `seed`.
    pub fn of(shard: crate::model::Shard, seed: u64) -> ShardSummary {
        ShardSummary { index: shard.index, count: shard.count, seed: shard.seed(seed) }
    }
}

/// What a merged report directory was combined from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergedSummary {
    /// Shards of the run.
    pub count: u32,
    /// The shards merged, by index.
    pub shards: Vec<MergedShard>,
    /// Shard indices that were not merged (`--allow-missing`); the summary is then marked incomplete.
    pub missing: Vec<u32>,
}

/// One merged shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergedShard {
    /// Its index, 1-based.
    pub index: u32,
    /// Its report directory, as given to `merge`.
    pub dir: String,
    /// Its seed stream.
    pub seed: u64,
    /// Its start and end, UTC, RFC 3339.
    pub started_at: String,
    /// Its end.
    pub finished_at: String,
    /// Whether it was stopped early.
    pub interrupted: bool,
    /// Whether its summary was rebuilt from its rows.
    pub incomplete: bool,
    /// Whether its harness was overloaded (`null` when its summary does not say).
    pub overloaded: Option<bool>,
}

/// Provenance of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Scenario file, as given on the command line.
    pub path: String,
    /// SHA-256 of the scenario file, hex.
    pub sha256: String,
    /// SHA-256 of the corpus manifest, hex, when the scenario uses the corpus.
    pub corpus_sha256: Option<String>,
}

/// Run parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// Seed.
    pub seed: u64,
    /// Calls per target.
    pub calls: u32,
    /// Concurrent calls.
    pub concurrency: u32,
    /// Outgoing frame duration, ms.
    pub frame_ms: u32,
    /// Closed loop with `--ramp-up`: the calls' starts were spread evenly over this long, ms; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_ms: Option<f64>,
    /// The scheduling priority of the harness's threads: `realtime` (granted), `refused` (asked, not granted) or
    /// `normal` (not asked); absent in summaries written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

/// Frame send lateness, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingSummary {
    /// Frames sent.
    pub frames: u64,
    /// Median lateness (0 when no frame was sent).
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

/// The p50, p99 and max of one of the harness's own lateness figures, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatenessSummary {
    /// Samples (frames sent; lag monitor wake-ups).
    pub samples: u64,
    /// Median, ms (0 without samples).
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
}

impl LatenessSummary {
    /// The summary of a distribution of µs.
    pub fn of(d: &Distribution) -> LatenessSummary {
        let s = d.stats();
        LatenessSummary {
            samples: d.len(),
            p50_ms: s.map_or(0.0, |s| s.p50),
            p99_ms: s.map_or(0.0, |s| s.p99),
            max_ms: s.map_or(0.0, |s| s.max),
        }
    }
}

/// Above this frame-pacing p99 the harness was overloaded (docs/metrics.md, "The harness watches itself").
pub const PACING_P99_LIMIT_MS: f64 = 5.0;
/// Above this event-loop lag p99 the harness was overloaded.
pub const LOOP_LAG_P99_LIMIT_MS: f64 = 10.0;

/// The metrics whose figures carry the harness's lateness: each is timed from the user's speech, which the
/// harness sends late when its frames leave late, to an agent event, which it stamps late when its event loop is
/// behind.
pub const HARNESS_AFFECTED: [Metric; 6] =
    [Metric::Ttfa, Metric::Ttfb, Metric::Endpointing, Metric::ToolCall, Metric::BargeInStop, Metric::BargeInAck];

/// The harness watching itself (as k6 and wrk2 do): its frames' send lateness and its event loop's lag, and the
/// verdict on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnessSummary {
    /// Frame send lateness (as `pacing`).
    pub pacing: LatenessSummary,
    /// How late the event loop's lag monitor woke, every 10 ms of the run.
    pub loop_lag: LatenessSummary,
    /// The thresholds the verdict used: `pacing_p99_ms` and `loop_lag_p99_ms`.
    pub limits: Ordered<f64>,
    /// Whether either p99 passed its limit: the harness, not the provider, was late.
    pub overloaded: bool,
    /// One sentence per limit passed (empty when not overloaded).
    pub reasons: Vec<String>,
    /// When overloaded, the metrics with samples in this run whose figures carry the harness's lateness.
    pub affected: Vec<String>,
}

impl HarnessSummary {
    /// The harness's figures and verdict; `measured` lists the metric names with samples in the run.
    pub fn judge(pacing: LatenessSummary, loop_lag: LatenessSummary, measured: &[&str]) -> HarnessSummary {
        let mut reasons = Vec::new();
        if pacing.p99_ms > PACING_P99_LIMIT_MS {
            reasons.push(format!("frames left late: pacing p99 {:.2} ms > {PACING_P99_LIMIT_MS} ms", pacing.p99_ms));
        }
        if loop_lag.p99_ms > LOOP_LAG_P99_LIMIT_MS {
            reasons.push(format!(
                "the event loop fell behind: lag p99 {:.2} ms > {LOOP_LAG_P99_LIMIT_MS} ms",
                loop_lag.p99_ms
            ));
        }
        let mut h = HarnessSummary {
            pacing,
            loop_lag,
            limits: Ordered(vec![
                ("pacing_p99_ms".into(), PACING_P99_LIMIT_MS),
                ("loop_lag_p99_ms".into(), LOOP_LAG_P99_LIMIT_MS),
            ]),
            overloaded: false,
            reasons: Vec::new(),
            affected: Vec::new(),
        };
        h.add_reasons(reasons, measured);
        h
    }

    /// Adds reasons the harness was overloaded that its own figures may not show (a merged run: one shard's
    /// verdict, which the shards' pooled figures can dilute); with any reason the verdict is overloaded.
    pub fn add_reasons(&mut self, reasons: Vec<String>, measured: &[&str]) {
        self.reasons.extend(reasons);
        self.overloaded = !self.reasons.is_empty();
        self.affected = if self.overloaded {
            HARNESS_AFFECTED.iter().map(|m| m.name()).filter(|m| measured.contains(m)).map(str::to_owned).collect()
        } else {
            Vec::new()
        };
    }

    /// When overloaded, one line for the terminal and the pages' banner: what was late and which figures it
    /// reaches.
    pub fn warning(&self) -> Option<String> {
        self.overloaded.then(|| {
            let affected = if self.affected.is_empty() { "none measured".to_owned() } else { self.affected.join(", ") };
            format!(
                "{}; these figures carry the harness's lateness, not the provider's: {affected}",
                self.reasons.join("; ")
            )
        })
    }
}

/// One target's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSummary {
    /// Target name.
    pub name: String,
    /// Wire protocol.
    pub protocol: String,
    /// Whether the target is an embedded simulated provider (its figures say nothing about a real agent).
    pub simulated: bool,
    /// Model id, when the target names one.
    pub model: Option<String>,
    /// Calls recorded.
    pub calls: u64,
    /// Turns attempted (including turns a failed call never reached).
    pub turns: u64,
    /// Latency metrics over all turns.
    pub metrics: Ordered<Stats>,
    /// Latency metrics per turn kind (only kinds with samples).
    pub by_kind: Ordered<Ordered<Stats>>,
    /// Succeeded expected tool calls / expected tool calls; `null` when none was expected.
    pub tool_success_rate: Option<f64>,
    /// Barge-ins the agent yielded to in time / barge-ins; `null` without barge-in turns.
    pub barge_in_success_rate: Option<f64>,
    /// Backchannels the agent wrongly stopped for / backchannels; `null` without backchannel turns.
    pub false_stop_rate: Option<f64>,
    /// Paused utterances the agent talked into / paused utterances; `null` without such turns.
    pub premature_takeover_rate: Option<f64>,
    /// Turns whose reply said what `say` / `not_say` ask / turns judged; `null` without content checks or
    /// transcripts.
    #[serde(default)]
    pub content_success_rate: Option<f64>,
    /// Calls that left the tools' tables as `[[expect_state]]` says / calls judged; `null` without expectations.
    #[serde(default)]
    pub task_success_rate: Option<f64>,
    /// Turns meeting every SLO of the scenario at once / turns; `null` when the scenario has no SLOs.
    pub goodput: Option<f64>,
    /// Failed turns / turns attempted.
    pub error_rate: f64,
    /// Failed turns by error category.
    pub errors: BTreeMap<String, u64>,
    /// Failed calls by error category.
    pub call_errors: BTreeMap<String, u64>,
    /// The counts behind the rates, so shards' summaries merge exactly.
    pub counts: Counts,
    /// TTFA p50/p95, turns and failed turns per 10 s of run time (windows with turns only); empty in summaries
    /// written before it existed.
    #[serde(default)]
    pub over_time: Vec<WindowSummary>,
    /// Pipeline targets: the mean TTFA split into its stages (absent for native targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<StageBreakdown>,
    /// Whether its callers were on a phone line (8 kHz G.711 μ-law both ways); written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub telephone: bool,
    /// The network its callers went through and what it measurably did (docs/network.md); absent on a clean line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSummary>,
}

/// The line a target's callers were on, in one line for people: `phone line (8 kHz G.711 μ-law); pstn: 70 ± 3 ms
/// one way (normal), …`; `None` on a clean line.
pub fn line_of(t: &TargetSummary) -> Option<String> {
    let phone = t.telephone.then_some("phone line (8 kHz G.711 μ-law)".to_string());
    let net = t.network.as_ref().map(|n| n.applied.describe());
    match (phone, net) {
        (Some(p), Some(n)) => Some(format!("{p}; {n}")),
        (p, n) => p.or(n),
    }
}

impl NetworkSummary {
    /// What the packets met, one phrase per direction: `up 3980 packets: 4 lost (0.10 %), 0 reordered, 2 late;
    /// delay mean 86.1 ms, max 97.3 ms`.
    pub fn measured_lines(&self) -> [String; 2] {
        let dir = |name: &str, d: &crate::model::network::DirEffect| {
            format!(
                "{name} {} packets: {} lost ({:.2} %), {} reordered, {} late; delay mean {:.1} ms, max {:.1} ms",
                d.packets,
                d.lost,
                d.lost_pct(),
                d.reordered,
                d.late,
                d.delay_mean_ms,
                d.delay_max_ms
            )
        };
        [dir("up", &self.measured.up), dir("down", &self.measured.down)]
    }
}

/// An impaired network: what was applied, and what the callers' packets met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSummary {
    /// The configured impairment, each direction.
    pub applied: crate::model::network::NetworkConfig,
    /// What it did, summed over the target's calls: packets, lost, reordered, late, delay mean and max.
    pub measured: crate::model::network::NetEffect,
}

/// One 10 s window of a target's run time (docs/metrics.md "Load").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSummary {
    /// The window's start, seconds from the run's start (windows are 10 s wide).
    pub start_s: u32,
    /// Turns whose end of speech fell in it.
    pub turns: u64,
    /// Of which failed.
    pub failed: u64,
    /// TTFA median of those turns, ms (`null` without a TTFA).
    pub ttfa_p50: Option<f64>,
    /// TTFA p95, ms.
    pub ttfa_p95: Option<f64>,
}

/// A pipeline target's mean TTFA, stage by stage ([`crate::metrics::stages`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBreakdown {
    /// Turns with every stage stamp and an audible reply.
    pub turns: u64,
    /// Mean of each segment, in chain order, ms; they add up to `ttfa_mean_ms`.
    pub mean_ms: Ordered<f64>,
    /// Mean TTFA of those turns, ms.
    pub ttfa_mean_ms: f64,
    /// The largest |TTFA − Σ segments| of a turn, ms.
    pub max_residual_ms: f64,
}

impl StageBreakdown {
    fn from_sums(s: &crate::metrics::stages::StageSums) -> Option<Self> {
        let means = s.means()?;
        Some(StageBreakdown {
            turns: s.turns,
            mean_ms: Ordered(crate::metrics::stages::SEGMENTS.iter().map(|n| n.to_string()).zip(means).collect()),
            ttfa_mean_ms: s.ttfa_ms / s.turns as f64,
            max_residual_ms: s.max_residual_ms,
        })
    }
}

impl Summary {
    /// The summary of a run described by `meta`, measured in `set`, that ended at `finished`.
    pub fn build(meta: &RunMeta, set: &HistogramSet, finished: SystemTime, interrupted: bool) -> Summary {
        let mut targets: Vec<TargetSummary> = meta
            .targets
            .iter()
            .map(|tm| {
                let empty;
                let m = match set.target(&tm.name) {
                    Some(m) => m,
                    None => {
                        empty = TargetMetrics::new(&tm.name);
                        &empty
                    }
                };
                let mut ts = TargetSummary::build(m, &tm.protocol, tm.simulated || m.simulated, tm.model.clone());
                ts.telephone = tm.telephone;
                ts.network =
                    tm.network.clone().map(|applied| NetworkSummary { applied, measured: m.tally.network.clone() });
                ts
            })
            .collect();
        // Records for a target the meta does not list still appear, rather than vanish.
        for m in set.targets() {
            if !meta.targets.iter().any(|t| t.name == m.name) {
                targets.push(TargetSummary::build(m, "unknown", m.simulated, None));
            }
        }
        let pacing = LatenessSummary::of(set.pacing_distribution());
        let loop_lag = LatenessSummary::of(set.loop_lag());
        let harness = (pacing.samples > 0 || loop_lag.samples > 0).then(|| {
            let measured: Vec<&str> = targets.iter().flat_map(|t| t.metrics.iter().map(|(name, _)| name)).collect();
            HarnessSummary::judge(pacing.clone(), loop_lag, &measured)
        });
        Summary {
            voicebench: meta.version.clone(),
            scenario: ScenarioInfo {
                name: meta.scenario_name.clone(),
                path: meta.scenario_path.display().to_string(),
                sha256: meta.scenario_sha256.clone(),
                corpus_sha256: meta.corpus_sha256.clone(),
            },
            run: RunInfo {
                seed: meta.seed,
                calls: meta.calls,
                concurrency: meta.concurrency,
                frame_ms: meta.frame_ms,
                ramp_up_ms: meta.ramp_up_ms,
                priority: meta.priority.clone(),
            },
            slo: Ordered(meta.slo.iter().map(|s| (s.key.to_string(), s.threshold)).collect()),
            started_at: rfc3339(meta.started_at),
            finished_at: rfc3339(finished),
            interrupted,
            incomplete: false,
            pacing: PacingSummary {
                frames: pacing.samples,
                p50_ms: pacing.p50_ms,
                p99_ms: pacing.p99_ms,
                max_ms: pacing.max_ms,
            },
            harness,
            load: meta.load.clone().map(|mut l| {
                l.start_lateness = LatenessSummary::of(set.start_lateness());
                l
            }),
            shard: meta.shard.clone(),
            merged: None,
            targets,
        }
    }

    /// A target's results by name.
    pub fn target(&self, name: &str) -> Option<&TargetSummary> {
        self.targets.iter().find(|t| t.name == name)
    }
}

impl TargetSummary {
    /// One target's summary from its measurements.
    pub fn build(m: &TargetMetrics, protocol: &str, simulated: bool, model: Option<String>) -> TargetSummary {
        let t = &m.tally;
        let metrics_of = |scope: Scope| {
            Ordered(Metric::ALL.iter().filter_map(|&mt| Some((mt.name().to_string(), m.stats(mt, scope)?))).collect())
        };
        let by_kind = TurnKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), metrics_of(Scope::Kind(*k))))
            .filter(|(_, metrics)| !metrics.0.is_empty())
            .collect();
        let names = |errors: &BTreeMap<crate::model::ErrorCategory, u64>| {
            errors.iter().map(|(k, v)| (k.as_str().to_owned(), *v)).collect()
        };
        TargetSummary {
            name: m.name.clone(),
            protocol: protocol.to_owned(),
            simulated,
            model,
            calls: t.calls,
            turns: t.turns,
            metrics: metrics_of(Scope::All),
            by_kind: Ordered(by_kind),
            tool_success_rate: t.tool_success_rate(),
            barge_in_success_rate: t.barge_in_success_rate(),
            false_stop_rate: t.false_stop_rate(),
            premature_takeover_rate: t.premature_takeover_rate(),
            content_success_rate: t.content_success_rate(),
            task_success_rate: t.task_success_rate(),
            goodput: t.goodput(),
            error_rate: t.error_rate(),
            errors: names(&t.turn_errors),
            call_errors: names(&t.call_errors),
            counts: t.counts.clone(),
            over_time: m
                .windows
                .iter()
                .map(|(i, w)| {
                    let ms = |q: f64| w.ttfa.quantile(q).map(|us| us as f64 / 1000.0);
                    WindowSummary {
                        start_s: i * crate::metrics::windows::WINDOW_S,
                        turns: w.turns,
                        failed: w.failed,
                        ttfa_p50: ms(0.5),
                        ttfa_p95: ms(0.95),
                    }
                })
                .collect(),
            stages: StageBreakdown::from_sums(&t.stages),
            telephone: false,
            network: None,
        }
    }

    /// The statistics of `metric` over all turns.
    pub fn metric(&self, metric: Metric) -> Option<&Stats> {
        self.metrics.get(metric.name())
    }
}

/// `summary.json`'s text: pretty-printed, with a final newline.
pub fn summary_json(s: &Summary) -> String {
    let mut text = serde_json::to_string_pretty(s).expect("a Summary always serialises: string keys, finite numbers");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lateness(p99_ms: f64) -> LatenessSummary {
        LatenessSummary { samples: 1000, p50_ms: p99_ms / 2.0, p99_ms, max_ms: p99_ms * 2.0 }
    }

    #[test]
    fn the_harness_is_overloaded_only_past_a_limit() {
        let measured = ["ttfa", "max_silence", "barge_in_stop"];
        let ok = HarnessSummary::judge(lateness(1.5), lateness(1.2), &measured);
        assert!(!ok.overloaded && ok.reasons.is_empty() && ok.affected.is_empty(), "{ok:?}");
        assert_eq!(ok.warning(), None);
        // At the limit is not past it.
        let edge = HarnessSummary::judge(lateness(PACING_P99_LIMIT_MS), lateness(LOOP_LAG_P99_LIMIT_MS), &measured);
        assert!(!edge.overloaded, "{edge:?}");

        let late = HarnessSummary::judge(lateness(42.1), lateness(1.0), &measured);
        assert!(late.overloaded);
        assert_eq!(late.reasons, ["frames left late: pacing p99 42.10 ms > 5 ms"]);
        // Only the affected metrics this run measured, in report order.
        assert_eq!(late.affected, ["ttfa", "barge_in_stop"]);
        let w = late.warning().unwrap();
        assert!(w.contains("not the provider's: ttfa, barge_in_stop"), "{w}");

        let lag = HarnessSummary::judge(lateness(0.9), lateness(10.5), &measured);
        assert_eq!(lag.reasons, ["the event loop fell behind: lag p99 10.50 ms > 10 ms"]);
        let both = HarnessSummary::judge(lateness(6.0), lateness(11.0), &[]);
        assert_eq!((both.reasons.len(), both.affected.len()), (2, 0));
        assert!(both.warning().unwrap().ends_with("none measured"));
    }
}

/// A JSON object whose keys keep the order they were inserted in (metrics in [`Metric::ALL`] order, kinds in
/// [`TurnKind::ALL`] order), which `serde_json`'s default map would sort.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}
