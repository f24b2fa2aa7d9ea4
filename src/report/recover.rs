//! Recovering a run that ended without writing `summary.json` (SIGKILL, the OOM killer, a power cut, a panic in a
//! later stage): the rows are on disk (the [`super::Recorder`] flushes each one as it ends), and so is `run.json`,
//! which the recorder writes before the first call: the summary of the run as planned (provenance, parameters,
//! SLOs, targets) with nothing measured yet. [`recover`] replays the rows through the same [`HistogramSet`] the
//! recorder fills during a run, and writes `summary.json` marked `incomplete` (and `interrupted`): its figures are
//! exactly what the rows say, and the gate refuses it unless told otherwise.
//!
//! [`replay`] is also how every reader counts: the gate rebuilds a report's figures from its rows the same way, so
//! the terminal, `summary.json`, the pages and the gate cannot disagree.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::read::{ReadError, Report};
use super::summary::Summary;
use super::{ReportError, RunMeta, TargetMeta};
use crate::metrics::HistogramSet;
use crate::scenario::{Slo, SloKey};

/// The plan of a run, written before its first call.
pub const RUN_JSON: &str = "run.json";

/// Why a directory could not be recovered: its plan or rows could not be read, or the summary not written.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// Reading `run.json` or the rows.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing `summary.json`.
    #[error(transparent)]
    Write(#[from] ReportError),
}

/// Replays a report's rows as the recorder saw them: every turn, then every call (a call's record counts the turns
/// it never reached, from the turn rows seen for it), into a set judged against `slos`.
pub fn replay(report: &Report, slos: Vec<Slo>) -> HistogramSet {
    let mut set = HistogramSet::new(report.targets.iter().cloned()).with_slos(slos);
    for t in &report.turns {
        set.record_turn(t);
    }
    for c in &report.calls {
        set.record_call(c);
    }
    set
}

/// The SLOs a summary records, with their directions (a key this version does not know is left out).
pub fn summary_slos(summary: &Summary) -> Vec<Slo> {
    summary
        .slo
        .0
        .iter()
        .filter_map(|(key, threshold)| {
            let key = SloKey::parse(key)?;
            Some(Slo { key, threshold: *threshold, bound: key.bound() })
        })
        .collect()
}

/// Whether `dir` lacks `summary.json` but has what [`recover`] needs.
pub fn recoverable(dir: &Path) -> bool {
    !dir.join("summary.json").is_file() && dir.join(RUN_JSON).is_file() && dir.join("turns.jsonl").is_file()
}

/// Rebuilds `dir/summary.json` from `dir/run.json` and the rows, marked incomplete and interrupted, and returns it.
pub fn recover(dir: &Path) -> Result<Summary, RecoverError> {
    let plan_path = dir.join(RUN_JSON);
    let text = std::fs::read_to_string(&plan_path).map_err(|source| ReadError::Io {
        action: "read",
        path: plan_path.clone(),
        source,
    })?;
    let plan: Summary = serde_json::from_str(&text).map_err(|e| ReadError::Parse {
        path: plan_path.clone(),
        line: Some(e.line()),
        message: format!("not the run plan voicebench writes: {e}"),
    })?;
    let report = Report::read(dir, false)?;
    let set = replay(&report, summary_slos(&plan));
    let meta = meta_of(&plan);
    let mut summary = Summary::build(&meta, &set, finished_at(dir), true);
    summary.started_at = plan.started_at.clone();
    summary.incomplete = true;
    super::recorder::write_summary(dir, &summary)?;
    Ok(summary)
}

/// The run's description as the plan recorded it.
pub(crate) fn meta_of(plan: &Summary) -> RunMeta {
    RunMeta {
        scenario_name: plan.scenario.name.clone(),
        scenario_path: PathBuf::from(&plan.scenario.path),
        scenario_sha256: plan.scenario.sha256.clone(),
        corpus_sha256: plan.scenario.corpus_sha256.clone(),
        version: plan.voicebench.clone(),
        started_at: SystemTime::UNIX_EPOCH,
        seed: plan.run.seed,
        calls: plan.run.calls,
        ramp_up_ms: plan.run.ramp_up_ms,
        priority: plan.run.priority.clone(),
        concurrency: plan.run.concurrency,
        frame_ms: plan.run.frame_ms,
        targets: plan
            .targets
            .iter()
            .map(|t| TargetMeta {
                name: t.name.clone(),
                protocol: t.protocol.clone(),
                simulated: t.simulated,
                model: t.model.clone(),
                network: t.network.as_ref().map(|n| n.applied.clone()),
                telephone: t.telephone,
            })
            .collect(),
        slo: summary_slos(plan),
        shard: plan.shard.clone(),
        load: plan.load.clone(),
    }
}

/// When the last row was written: the newest row file's modification time (now, when unknown).
fn finished_at(dir: &Path) -> SystemTime {
    ["turns.jsonl", "turns.csv", "calls.csv"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .max()
        .unwrap_or_else(SystemTime::now)
}
