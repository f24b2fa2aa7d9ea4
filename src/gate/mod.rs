//! The CI gate (`voicebench gate`, `voicebench run … --gate`): judges a report directory against SLOs and, given a
//! baseline, against an earlier run, and says PASS or FAIL with the numbers (docs/gate.md).
//!
//! Everything is computed from the raw per-turn samples in `turns.jsonl` (and `calls.csv` for calls that never
//! produced a turn), never from the rounded figures of `summary.json`, which only supplies the scenario's SLOs and
//! the targets' order:
//! - [`slo`]: SLO keys and values (`--slo ttfa.p95=800ms`), and one check per SLO per target, reusing the
//!   report's own [`HistogramSet`](crate::metrics::HistogramSet) and [`Tally`](crate::metrics::Tally) so the gate and `summary.json` agree;
//! - [`compare`]: criterion-style change detection against a baseline, by a bootstrap over whole calls;
//! - [`baseline`]: the baseline store (`.voicebench/baselines/<name>/`, raw samples kept);
//! - reading a report directory back is [`crate::report::read`]'s;
//! - [`render`] and [`junit`]: the verdict as a table, Markdown, JSON and JUnit XML, as strings (no I/O).
//!
//! Exit codes are the CLI's business: 0 pass, 1 an SLO breached or a regression, 2 an error ([`GateError`]).

pub mod baseline;
pub mod compare;
pub mod junit;
pub mod render;
pub mod slo;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use baseline::{DEFAULT_STORE, STORE_ENV, default_store, list_baselines, resolve_baseline, save_baseline};
pub use compare::{MIN_CALLS, STATS_COMPARED};
pub use junit::render_junit;
pub use render::{render_json, render_markdown, render_table};
pub use slo::{merge_slos, parse_slo};

use crate::model::Metric;
use crate::report::read::{ReadError, Report};
use crate::scenario::Slo;

/// What the gate checks, beyond the report directory itself.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// SLOs from `--slo KEY=VALUE`: they override the scenario's SLO of the same key and add the others.
    pub slo_overrides: Vec<Slo>,
    /// A baseline report directory to compare with (already resolved: see [`resolve_baseline`]).
    pub baseline: Option<PathBuf>,
    /// Noise threshold of the change detection, as a relative change (0.05 = 5 %).
    pub noise: f64,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Seed of the bootstrap's generator (the same inputs and seed give the same verdict).
    pub seed: u64,
    /// Judge a summary rebuilt from the rows of a killed run (`incomplete`) instead of refusing it.
    pub allow_incomplete: bool,
}

/// Default noise threshold: a change must be past ±5 % to count.
pub const DEFAULT_NOISE: f64 = 0.05;
/// Default number of bootstrap resamples.
pub const DEFAULT_BOOTSTRAP: usize = 2000;
/// Default bootstrap seed.
pub const DEFAULT_SEED: u64 = 0x9A7E_5EED;

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            slo_overrides: Vec::new(),
            baseline: None,
            noise: DEFAULT_NOISE,
            bootstrap: DEFAULT_BOOTSTRAP,
            seed: DEFAULT_SEED,
            allow_incomplete: false,
        }
    }
}

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A latency statistic or a rate against its SLO.
    Slo,
    /// The share of turns meeting every SLO at once, against the `goodput` SLO.
    Goodput,
    /// A latency statistic against the baseline's.
    Regression,
}

/// The verdict of a comparison with the baseline (criterion's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeVerdict {
    /// Significantly slower, and the whole confidence interval is past the noise threshold: fails the gate.
    Regressed,
    /// Significantly faster, and the whole confidence interval is past the noise threshold.
    Improved,
    /// Not significant (p ≥ 0.05).
    NoChange,
    /// Significant, but the confidence interval reaches inside the noise threshold.
    WithinNoise,
}

impl ChangeVerdict {
    /// Lowercase words for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeVerdict::Regressed => "regressed",
            ChangeVerdict::Improved => "improved",
            ChangeVerdict::NoChange => "no change",
            ChangeVerdict::WithinNoise => "within noise",
        }
    }
}

/// One latency statistic compared with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Latency metric (`ttfa`).
    pub metric: Metric,
    /// Statistic: `p50` or `p95`.
    pub stat: String,
    /// The baseline's statistic, ms (equal to its summary's).
    pub base: f64,
    /// This run's statistic, ms.
    pub current: f64,
    /// (current − base) / base.
    pub rel_change: f64,
    /// Lower end of the 95 % bootstrap confidence interval of the relative change.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Two-sided bootstrap p-value of "no change" (at least 1/B).
    pub p_value: f64,
    /// The verdict.
    pub verdict: ChangeVerdict,
}

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Target name.
    pub target: String,
    /// What is checked: `ttfa.p95 <= 800 ms`, `tool_success_rate >= 0.9`, `regression ttfa.p95`.
    pub name: String,
    /// Kind of check.
    pub kind: CheckKind,
    /// Whether it passed.
    pub passed: bool,
    /// The measured value: ms for a latency, 0–1 for a rate, the relative change for a regression check; `None`
    /// when there was nothing to measure.
    pub measured: Option<f64>,
    /// The SLO's threshold; for a regression check, the noise threshold.
    pub threshold: Option<f64>,
    /// A sentence with the numbers, or why it failed ("no ttfa samples for target …").
    pub detail: String,
    /// For a regression check, the comparison.
    pub change: Option<Change>,
}

/// The gate's verdict on a report directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// The report directory judged.
    pub report_dir: PathBuf,
    /// The baseline compared with.
    pub baseline: Option<PathBuf>,
    /// The SLOs checked (scenario's merged with `--slo`), key and threshold (a JSON object in order).
    #[serde(serialize_with = "slo_object")]
    pub slo: Vec<(String, f64)>,
    /// Noise threshold used.
    pub noise: f64,
    /// Bootstrap resamples used.
    pub bootstrap: usize,
    /// Every check, target by target: SLOs in order, goodput, then regressions.
    pub checks: Vec<Check>,
    /// What was not compared and why, and other things a reader should know (an interrupted run, …).
    pub notes: Vec<String>,
}

fn slo_object<S: serde::Serializer>(slo: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(slo.len()))?;
    for (k, v) in slo {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl GateReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The regressions: failed comparisons with the baseline.
    pub fn regressions(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.kind == CheckKind::Regression && !c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Why the gate could not judge. Every variant names the file, directory or argument at fault.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A file or directory could not be read, created or copied.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: "read", "create", "copy to", …
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A `--slo KEY=VALUE` (or an SLO in summary.json) is not valid.
    #[error("invalid SLO `{arg}`: {message}{}", if hint.is_empty() { String::new() } else { format!("; {hint}") })]
    BadSlo {
        /// The argument as written.
        arg: String,
        /// What is wrong.
        message: String,
        /// A did-you-mean hint or the valid choices.
        hint: String,
    },
    /// Neither an SLO nor a baseline: nothing to judge.
    #[error(
        "nothing to check in {}: the scenario has no [slo] and no baseline was given. Add SLOs to the scenario \
         (`[slo]` with e.g. `\"ttfa.p95\" = 800`), pass `--slo ttfa.p95=800ms`, or compare with an earlier run \
         (`--baseline DIR|NAME`; save one with `voicebench gate DIR --save-baseline NAME`)",
        dir.display()
    )]
    NothingToCheck {
        /// The report directory.
        dir: PathBuf,
    },
    /// `--baseline NAME` names no saved baseline.
    #[error(
        "no baseline named `{name}` in {} ({}); create it from a report with `voicebench gate DIR --save-baseline \
         {name}` (the store is {}; set {STORE_ENV} to use another)",
        store.display(),
        if saved.is_empty() { "the store is empty".to_string() } else { crate::diag::suggest(name, "baselines", saved) },
        store.display()
    )]
    NoBaseline {
        /// The name asked for.
        name: String,
        /// The store searched.
        store: PathBuf,
        /// The baselines it holds.
        saved: Vec<String>,
    },
    /// A baseline name that cannot be a directory name in the store.
    #[error(
        "invalid baseline name `{name}`: use letters, digits, `.`, `_` and `-` only, not starting with `.` (e.g. \
         `main`)"
    )]
    BadBaselineName {
        /// The name.
        name: String,
    },
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// The report's summary was rebuilt from the rows of a run that was killed.
    #[error(
        "{}: the run was killed before it finished and its summary was rebuilt from the rows (incomplete): the calls in flight then are missing; judge it anyway with --allow-incomplete",
        dir.display()
    )]
    Incomplete {
        /// The report directory.
        dir: PathBuf,
    },
    /// A report directory (the one judged or the baseline) could not be read, is not one, or holds a file that is
    /// not what voicebench writes.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl GateError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> GateError + use<> {
        let path = path.to_owned();
        move |source| GateError::Io { action, path, source }
    }
}

/// The scenario's SLOs as a report's `summary.json` records them (none without a summary).
pub fn scenario_slos(report: &Report) -> Result<Vec<Slo>, GateError> {
    let Some(s) = &report.summary else { return Ok(Vec::new()) };
    let path = report.dir.join("summary.json");
    s.slo
        .iter()
        .map(|(key, threshold)| {
            slo::make_slo(key, threshold).map_err(|e| {
                GateError::Read(ReadError::Parse {
                    path: path.clone(),
                    line: None,
                    message: format!("bad SLO in `slo`: {e}"),
                })
            })
        })
        .collect()
}

/// Judges the report in `report_dir`: every SLO (the scenario's, from `summary.json`, merged with
/// `opts.slo_overrides`) per target, and, with a baseline, every latency metric's p50 and p95 per target present in
/// both. Errors with [`GateError::NothingToCheck`] when there is neither an SLO nor a baseline.
pub fn evaluate(report_dir: &Path, opts: &GateOptions) -> Result<GateReport, GateError> {
    if !(opts.noise.is_finite() && opts.noise >= 0.0) {
        return Err(GateError::Options(format!(
            "--noise must be a relative change ≥ 0 (0.05 = 5 %), not {}",
            opts.noise
        )));
    }
    if opts.bootstrap < 100 {
        return Err(GateError::Options(format!("the bootstrap needs at least 100 resamples, not {}", opts.bootstrap)));
    }
    let current = Report::read(report_dir, true)?;
    let scenario_slos = scenario_slos(&current)?;
    let slos = merge_slos(&scenario_slos, &opts.slo_overrides);
    let base = match &opts.baseline {
        Some(dir) => Some(Report::read(dir, false)?),
        None => None,
    };
    if slos.is_empty() && base.is_none() {
        return Err(GateError::NothingToCheck { dir: report_dir.to_owned() });
    }

    let mut notes = Vec::new();
    if current.summary.as_ref().is_some_and(|s| s.incomplete) {
        if !opts.allow_incomplete {
            return Err(GateError::Incomplete { dir: report_dir.to_owned() });
        }
        notes.push("the run was killed: its summary was rebuilt from the rows (incomplete)".to_string());
    } else if current.summary.as_ref().is_some_and(|s| s.interrupted) {
        notes.push("the run was interrupted (Ctrl-C): the figures cover what was measured until then".to_string());
    }
    let set = crate::report::recover::replay(&current, slos.clone());

    let mut checks = Vec::new();
    for m in set.targets() {
        checks.extend(slo::checks(m, &slos));
        if let Some(base) = &base {
            if base.targets.contains(&m.name) {
                let (c, n) = compare::checks(&m.name, &base.turns, &current.turns, opts);
                checks.extend(c);
                notes.extend(n);
            } else {
                notes.push(format!("target `{}` is not in the baseline: not compared", m.name));
            }
        }
    }
    if let Some(base) = &base {
        for t in base.targets.iter().filter(|t| set.target(t).is_none()) {
            notes.push(format!("target `{t}` is in the baseline but not in this report: not compared"));
        }
    }
    Ok(GateReport {
        report_dir: report_dir.to_owned(),
        baseline: opts.baseline.clone(),
        slo: slos.iter().map(|s| (s.key.to_string(), s.threshold)).collect(),
        noise: opts.noise,
        bootstrap: opts.bootstrap,
        checks,
        notes,
    })
}
