//! Reports: each format is a function from results to bytes or text and does no I/O ([`rows`], [`hgrm`], [`hlog`],
//! [`summary`], [`terminal`]); the [`Recorder`] is the only part that writes to the disk, and [`read`] the only
//! part that reads a report directory back (for the gate, compare, the plots and the pages). Reports record and
//! read; they do not judge: the verdicts (gate) and the head to head (compare) sit above, and the pages
//! (`crate::pages`) above those.
//!
//! A report directory holds:
//! - `turns.csv`, `turns.jsonl`, `calls.csv`: one row per turn / call, appended and flushed as each one ends, so a
//!   crash or Ctrl-C leaves every result measured so far;
//! - `histograms/<target>.<metric>.<kind|all>.hgrm` (and `histograms/pacing.hgrm`, `histograms/loop_lag.hgrm`):
//!   HdrHistogram's percentile-distribution text, in ms;
//! - `histograms.hlog`: every histogram in one HdrHistogram interval log (µs, tagged `target/metric/kind`), the
//!   form `voicebench merge` adds exactly;
//! - `summary.json`: the contract CI jobs read, described by `docs/summary.schema.json`. Its percentiles are the
//!   exact order statistics of the samples (`crate::metrics::Exact`), not the histograms' bucket edges.
//!
//! [`merge`] combines the directories of a sharded run's shards into one such directory.

mod escape;
pub mod hgrm;
pub mod hlog;
pub mod merge;
pub mod read;
mod recorder;
pub mod recordings;
pub mod recover;
pub mod rows;
pub mod summary;
pub mod terminal;
pub mod time;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub use escape::escape;
pub use read::{ReadError, Report};
pub use recorder::Recorder;
pub use summary::{
    LoadSummary, MergedShard, MergedSummary, PacingSummary, RunInfo, ScenarioInfo, ShardSummary, Summary, TargetSummary,
};
pub use terminal::terminal_table;

use crate::scenario::{Scenario, Slo, Target};

/// This build's version, as reports record it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a report could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be created, written or read.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: "create", "write", "read".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A record could not be encoded as CSV.
    #[error("cannot encode a row of {}: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode {}: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A histogram could not be encoded or decoded.
    #[error("{}: {message}", path.display())]
    Histogram {
        /// The histogram file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl ReportError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReportError + use<> {
        let path = path.to_owned();
        move |source| ReportError::Io { action, path, source }
    }
}

/// A target as reports describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMeta {
    /// Unique name.
    pub name: String,
    /// Wire protocol (`openai-realtime`, `pipeline`, …).
    pub protocol: String,
    /// Whether it is an embedded simulated provider.
    pub simulated: bool,
    /// Model id, when the target names one.
    pub model: Option<String>,
    /// The network its callers went through, when impaired.
    pub network: Option<crate::model::network::NetworkConfig>,
    /// Whether its callers were on a phone line (8 kHz μ-law).
    pub telephone: bool,
}

impl TargetMeta {
    /// A scenario target's description.
    pub fn from_target(t: &Target) -> TargetMeta {
        TargetMeta {
            name: t.name.get_ref().clone(),
            protocol: t.protocol.get_ref().as_str().to_owned(),
            simulated: t.sim.is_some(),
            model: t.model.clone(),
            network: None,
            telephone: t.telephone.unwrap_or(false),
        }
    }
}

/// What a run was: provenance and parameters, written into `summary.json`.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// Scenario name.
    pub scenario_name: String,
    /// Scenario file, as given.
    pub scenario_path: PathBuf,
    /// SHA-256 of the scenario file, hex.
    pub scenario_sha256: String,
    /// SHA-256 of the corpus manifest, hex, when the scenario uses the corpus.
    pub corpus_sha256: Option<String>,
    /// voicebench version ([`VERSION`]).
    pub version: String,
    /// When the run started.
    pub started_at: SystemTime,
    /// Seed.
    pub seed: u64,
    /// Calls per target.
    pub calls: u32,
    /// Closed loop: the calls' starts were spread evenly over this long, ms.
    pub ramp_up_ms: Option<f64>,
    /// The scheduling priority of the harness's threads (`crate::caller::priority::Status::label`).
    pub priority: Option<String>,
    /// Concurrent calls.
    pub concurrency: u32,
    /// Outgoing frame duration, ms.
    pub frame_ms: u32,
    /// Targets, in run order.
    pub targets: Vec<TargetMeta>,
    /// The scenario's SLOs; turns are judged against them for goodput.
    pub slo: Vec<Slo>,
    /// Which shard of a sharded run this is, with its seed stream; `None` for a run in one piece.
    pub shard: Option<summary::ShardSummary>,
    /// Open loop: the schedule and its counts (filled in as the run ends); `None` for a closed loop.
    pub load: Option<summary::LoadSummary>,
}

impl RunMeta {
    /// The meta of a run of `scenario` with its defaults, starting now: hashes the scenario file and, when the
    /// scenario uses a corpus, its `manifest.json`. Override `calls`, `concurrency`, `targets`, … as the command
    /// line says.
    pub fn from_scenario(scenario: &Scenario) -> Result<RunMeta, ReportError> {
        let corpus_sha256 = match &scenario.corpus_dir {
            Some(dir) => {
                let manifest = dir.join("manifest.json");
                if manifest.is_file() { Some(sha256_file(&manifest)?) } else { None }
            }
            None => None,
        };
        Ok(RunMeta {
            scenario_name: scenario.name.clone(),
            scenario_path: scenario.path.clone(),
            scenario_sha256: sha256_file(&scenario.path)?,
            corpus_sha256,
            version: VERSION.to_owned(),
            started_at: SystemTime::now(),
            seed: scenario.defaults.seed,
            calls: scenario.defaults.calls,
            ramp_up_ms: None,
            priority: None,
            concurrency: scenario.defaults.concurrency,
            frame_ms: scenario.defaults.frame_ms,
            targets: scenario.targets.iter().map(TargetMeta::from_target).collect(),
            slo: scenario.slo.clone(),
            shard: None,
            load: None,
        })
    }
}

/// SHA-256 of a file's bytes, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ReportError> {
    let bytes = std::fs::read(path).map_err(ReportError::io("read", path))?;
    Ok(sha256_hex(&bytes))
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
