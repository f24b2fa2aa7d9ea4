//! Scenarios: the TOML a user writes ([`schema`]), its validation with `file:line:col` diagnostics ([`crate::diag`],
//! [`validate`]), argument matchers ([`matcher`]), and the resolved [`Scenario`] the rest of voicebench runs.

pub mod content;
pub mod matcher;
pub mod network;
pub mod schema;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::model::Metric;

pub use crate::diag::Diagnostic;
pub use content::{ContentCheck, State, StateExpect};
pub use matcher::Matcher;
pub use schema::{Expect, Protocol, Target};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The scenario file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems; every one found is listed.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Diagnostic>),
}

struct Problems<'a>(&'a [Diagnostic]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} problems in {}", self.0.len(), self.0[0].file.display())?;
        }
        Ok(())
    }
}

/// A validated scenario, with every reference resolved: WAVs found, decoded and annotated, tools and matchers
/// compiled.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario file.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The corpus directory, when the scenario uses corpus utterances.
    pub corpus_dir: Option<PathBuf>,
    /// Run-wide defaults.
    pub defaults: Defaults,
    /// Targets, in file order.
    pub targets: Vec<Target>,
    /// The agent's instructions and tools.
    pub agent: AgentSpec,
    /// The caller's turns, in order.
    pub turns: Vec<TurnSpec>,
    /// SLOs for the gate.
    pub slo: Vec<Slo>,
    /// What every call must leave in the tools' tables.
    pub expect_state: Vec<StateExpect>,
    /// What every output masks, and the scenario's own names.
    pub redactor: crate::redact::Redactor,
    /// How to transcribe what the caller heard of each reply, when asked.
    pub transcribe: Option<TranscribeSpec>,
}

/// Where heard audio is transcribed.
#[derive(Debug, Clone, PartialEq)]
pub enum TranscribeSpec {
    /// An OpenAI-compatible service.
    Service {
        /// Base URL (`…/v1`).
        url: String,
        /// Model.
        model: Option<String>,
        /// The key's environment variable.
        api_key_env: Option<String>,
    },
    /// voicebench's simulated transcriber.
    Sim,
}

/// Run-wide defaults, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Calls per target.
    pub calls: u32,
    /// Concurrent calls.
    pub concurrency: u32,
    /// Outgoing frame duration, ms.
    pub frame_ms: u32,
    /// Per-turn timeout, ms.
    pub turn_timeout_ms: u32,
    /// Connection set-up limit, ms.
    pub connect_timeout_ms: u32,
    /// HTTP stage request → response head limit, ms.
    pub first_byte_timeout_ms: u32,
    /// HTTP stage body: longest pause between chunks, ms.
    pub idle_timeout_ms: u32,
    /// Seed.
    pub seed: u64,
    /// Default corpus voice.
    pub voice: String,
    /// Default gap after the agent's reply, ms.
    pub gap_ms: u32,
}

/// The agent's side of the scenario.
#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    /// System instructions.
    pub instructions: Option<String>,
    /// The agent's notion of today (ISO date).
    pub today: Option<String>,
    /// Tools.
    pub tools: Vec<ToolSpec>,
}

/// A tool with compiled canned results.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Json,
    /// Canned results: matchers → output; the first match wins.
    pub results: Vec<(Vec<(String, Matcher)>, Json)>,
    /// Output when nothing matches.
    pub default_result: Json,
    /// The state table a call of this tool adds its arguments to.
    pub records: Option<String>,
}

impl ToolSpec {
    /// The names of its parameters (its schema's `properties`); `None` when the schema lists none (any name goes).
    pub fn parameter_names(&self) -> Option<Vec<String>> {
        self.parameters.get("properties").and_then(|p| p.as_object()).map(|o| o.keys().cloned().collect())
    }

    /// The canned output for a call's arguments.
    pub fn result_for(&self, args: &Json) -> &Json {
        self.results
            .iter()
            .find(|(when, _)| when.iter().all(|(k, m)| m.matches(args.get(k).unwrap_or(&Json::Null))))
            .map_or(&self.default_result, |(_, out)| out)
    }
}

/// A caller utterance, resolved to a WAV with its annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRef {
    /// The WAV file.
    pub path: PathBuf,
    /// Corpus id (`caller/joe/request`), or the path for a user WAV.
    pub id: String,
    /// Transcript, when known.
    pub text: Option<String>,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Duration, ms.
    pub duration_ms: f64,
    /// First voiced sample, ms from the start of the file.
    pub speech_start_ms: f64,
    /// End of the last voiced sample, ms.
    pub speech_end_ms: f64,
    /// Pauses inside the speech, ms.
    pub pauses_ms: Vec<(f64, f64)>,
}

/// When a turn's utterance starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSpec {
    /// After the agent's reply finished playing, plus a gap.
    AfterAgentDone {
        /// Gap, ms.
        gap_ms: u32,
    },
    /// After the agent's reply started playing, plus a delay (barge-in, backchannel).
    AfterAgentStart {
        /// Delay, ms.
        delay_ms: u32,
    },
}

/// An expected tool call with compiled matchers.
#[derive(Debug, Clone)]
pub struct ExpectedCall {
    /// Tool name.
    pub name: String,
    /// Argument matchers.
    pub args: Vec<(String, Matcher)>,
    /// The arguments a simulated provider sends for this call (JSON object).
    pub sim_args: Json,
}

impl ExpectedCall {
    /// Whether a call's arguments satisfy every matcher.
    pub fn matches(&self, name: &str, args: &Json) -> bool {
        name == self.name && self.args.iter().all(|(k, m)| m.matches(args.get(k).unwrap_or(&Json::Null)))
    }
}

/// One resolved caller turn.
#[derive(Debug, Clone)]
pub struct TurnSpec {
    /// 0-based position.
    pub index: usize,
    /// Label.
    pub id: String,
    /// The utterance.
    pub audio: AudioRef,
    /// When it starts.
    pub start: StartSpec,
    /// What the agent should do.
    pub expect: Expect,
    /// Tool calls expected in reply.
    pub tool_calls: Vec<ExpectedCall>,
    /// What a simulated agent says in reply.
    pub reply: Option<AudioRef>,
    /// What the reply must and must not say.
    pub content: ContentCheck,
}

/// Direction of an SLO bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The measured value must be ≤ the threshold.
    AtMost,
    /// The measured value must be ≥ the threshold.
    AtLeast,
}

/// What an SLO bounds: a statistic of a latency metric, or a rate. Written (and shown) as `ttfa.p95` or
/// `tool_success_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloKey {
    /// `<metric>.<stat>`: a statistic of [`STATS`] of a latency metric, bounded from above.
    Latency(Metric, &'static str),
    /// A rate of [`RATES`], bounded in its direction there.
    Rate(&'static str),
}

impl SloKey {
    /// The key of `key` as written; `None` when it names no rate and no metric's statistic (the scenario's
    /// validation and `--slo` say which part is wrong and suggest the right one).
    pub fn parse(key: &str) -> Option<SloKey> {
        if let Some((rate, _)) = RATES.iter().find(|(r, _)| *r == key) {
            return Some(SloKey::Rate(rate));
        }
        let (metric, stat) = key.split_once('.')?;
        let stat = STATS.iter().find(|s| **s == stat)?;
        Some(SloKey::Latency(Metric::from_name(metric)?, stat))
    }

    /// The bound's direction: at most for latencies, the rate's own for rates.
    pub fn bound(self) -> Bound {
        match self {
            SloKey::Latency(..) => Bound::AtMost,
            SloKey::Rate(r) => RATES.iter().find(|(name, _)| *name == r).map_or(Bound::AtMost, |(_, b)| *b),
        }
    }

    /// Whether it bounds a rate (0–1) rather than a latency (ms).
    pub fn is_rate(self) -> bool {
        matches!(self, SloKey::Rate(_))
    }
}

impl fmt::Display for SloKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SloKey::Latency(metric, stat) => write!(f, "{metric}.{stat}"),
            SloKey::Rate(rate) => f.write_str(rate),
        }
    }
}

/// A service-level objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// What it bounds: `ttfa.p95`, `tool_success_rate`.
    pub key: SloKey,
    /// Threshold (ms for latencies, 0–1 for rates).
    pub threshold: f64,
    /// Direction.
    pub bound: Bound,
}

/// Latency metrics an SLO can name (docs/metrics.md), in ms: the metrics every turn record carries.
pub const LATENCY_METRICS: &[&str] = crate::model::METRICS;

/// Statistics an SLO can bound.
pub const STATS: &[&str] = &["p50", "p90", "p95", "p99", "p999", "max", "mean"];

/// Rates an SLO can bound, with their direction.
pub const RATES: &[(&str, Bound)] = &[
    ("tool_success_rate", Bound::AtLeast),
    ("barge_in_success_rate", Bound::AtLeast),
    ("goodput", Bound::AtLeast),
    ("error_rate", Bound::AtMost),
    ("false_stop_rate", Bound::AtMost),
    ("premature_takeover_rate", Bound::AtMost),
    ("content_success_rate", Bound::AtLeast),
    ("task_success_rate", Bound::AtLeast),
];

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let bytes = std::fs::read(path).map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
    match String::from_utf8(bytes) {
        Ok(src) => validate::validate(path, &src),
        Err(e) => Err(ScenarioError::Invalid(vec![validate::not_utf8(path, e.as_bytes(), e.utf8_error())])),
    }
}

/// Validates scenario text as if read from `path` (relative references resolve against `path`'s directory).
pub fn parse(path: &Path, src: &str) -> Result<Scenario, ScenarioError> {
    validate::validate(path, src)
}
