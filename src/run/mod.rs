//! The runner, in two stages. [`RunPlan::resolve`] turns the scenario and the command line into a plan once:
//! targets selected, keys checked, sims started, frames encoded, the report directory created (`plan`).
//! [`RunPlan::execute`] runs it: targets × calls, closed loop (N calls in flight), targets interleaved (call *i* of
//! every target before call *i+1*, so drift hits all of them alike), each call on its own task, the recorder fed as
//! turns finish; Ctrl-C stops the calls in flight, records what they measured, and writes the report (`execute`).
//! `progress` is the bar or the lines on stderr.

pub mod bench;
mod execute;
pub mod load;
mod plan;
mod progress;
pub mod recordings;
pub mod transcribe;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;
use tokio::time::Instant;

use crate::caller::record::{CallRecord, TurnRecord};
use crate::report::summary::Summary;
use crate::scenario::Scenario;
use crate::sim::GroundTruth;

pub use plan::RunPlan;

/// What the command line asked for, over the scenario's defaults.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only these targets (by name); all when empty.
    pub targets: Vec<String>,
    /// Calls per target.
    pub calls: Option<u32>,
    /// Calls in flight.
    pub concurrency: Option<u32>,
    /// Report directory (default `reports/<scenario>-<UTC time>/`).
    pub out: Option<PathBuf>,
    /// Seed.
    pub seed: Option<u64>,
    /// Show progress (a bar on a terminal, lines otherwise).
    pub progress: bool,
    /// Run only this shard's slice of the calls, on its own seed stream (docs/scale.md).
    pub shard: Option<crate::model::Shard>,
    /// Open loop: start calls on this schedule instead of `concurrency` in a closed loop (`load`).
    pub load: Option<load::Load>,
    /// Which calls are recorded; `None`: failed calls and each target's slowest, unless more than
    /// [`plan::MAX_RECORDED_IN_FLIGHT`] calls are in flight.
    pub record: Option<crate::caller::recording::RecordMode>,
    /// The network preset (or `none`) every target's caller goes through, over the scenario's `network` keys.
    pub network: Option<String>,
    /// Closed loop: start the calls evenly over this long instead of all at once (the i-th of n after i/n of it).
    pub ramp_up: Option<std::time::Duration>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// The report directory.
    pub out_dir: PathBuf,
    /// Targets skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Every call's record.
    pub calls: Vec<CallRecord>,
    /// Every turn's record.
    pub turns: Vec<TurnRecord>,
    /// The instant the run's clock started (call records' `started_ms` count from it).
    pub run_start: Instant,
    /// Per simulated target: the sim's start instant and ground truth.
    pub ground_truth: HashMap<String, (Instant, Vec<GroundTruth>)>,
}

/// The default report directory: `reports/<scenario>-<UTC yyyymmddThhmmssZ>/`.
pub fn default_out_dir(scenario: &Scenario) -> PathBuf {
    let stamp: String =
        crate::report::time::rfc3339(SystemTime::now()).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    PathBuf::from("reports").join(format!("{}-{stamp}", scenario.name))
}

/// Runs a scenario: resolves the plan, then executes it. `notice` receives one-line notices (skipped targets, the
/// report directory, Ctrl-C).
pub async fn run(scenario: &Scenario, opts: &RunOptions, notice: &(dyn Fn(&str) + Sync)) -> Result<RunOutcome> {
    RunPlan::resolve(scenario, opts, notice).await?.execute(notice).await
}
