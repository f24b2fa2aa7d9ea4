//! The [`Recorder`]: the only part of reporting that does I/O. It opens the row files before the run (a bad path
//! fails at once), appends and flushes one row per turn and call as they end (a crash or Ctrl-C keeps everything
//! measured so far), keeps the histograms, and writes histograms and `summary.json` when the run ends.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::summary::summary_json;
use super::{ReportError, RunMeta, Summary, hgrm, hlog, rows};
use crate::metrics::{Distribution, HistogramSet};
use crate::model::{CallRecord, TurnRecord};

/// Streams a run's records to a report directory and summarises them at the end.
#[derive(Debug)]
pub struct Recorder {
    out_dir: PathBuf,
    meta: RunMeta,
    turns_csv: Sink,
    turns_jsonl: Sink,
    calls_csv: Sink,
    calls_jsonl: Sink,
    set: HistogramSet,
}

/// An append-only row file. Each row goes out in one `write_all` on an unbuffered file, so it is in the OS's hands
/// when `record_*` returns.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: File,
}

impl Sink {
    fn create(path: PathBuf, header: &[u8]) -> Result<Sink, ReportError> {
        let file = File::create(&path).map_err(ReportError::io("create", &path))?;
        let mut sink = Sink { path, file };
        sink.append(header)?;
        Ok(sink)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ReportError> {
        self.file.write_all(bytes).and_then(|()| self.file.flush()).map_err(ReportError::io("write", &self.path))
    }
}

impl Recorder {
    /// Creates `out_dir` (and `out_dir/histograms`) and opens `turns.csv`, `turns.jsonl` and `calls.csv` with
    /// their headers. Files from an earlier run in the same directory are overwritten.
    pub fn create(out_dir: &Path, meta: RunMeta) -> Result<Recorder, ReportError> {
        let histograms = out_dir.join("histograms");
        fs::create_dir_all(&histograms).map_err(ReportError::io("create directory", &histograms))?;
        let csv_err = |path: &Path| {
            let path = path.to_owned();
            move |source| ReportError::Csv { path, source }
        };
        let path = out_dir.join("turns.csv");
        let turns_csv = Sink::create(path.clone(), &rows::turns_csv_header().map_err(csv_err(&path))?)?;
        let turns_jsonl = Sink::create(out_dir.join("turns.jsonl"), b"")?;
        let path = out_dir.join("calls.csv");
        let calls_csv = Sink::create(path.clone(), &rows::calls_csv_header().map_err(csv_err(&path))?)?;
        let calls_jsonl = Sink::create(out_dir.join("calls.jsonl"), b"")?;
        let set = HistogramSet::new(meta.targets.iter().map(|t| t.name.clone())).with_slos(meta.slo.clone());
        // The plan, before any call: what `voicebench report` needs to rebuild the summary from the rows if the
        // process is killed before it writes one.
        let plan = Summary::build(&meta, &set, meta.started_at, false);
        write_file(&out_dir.join(super::recover::RUN_JSON), summary_json(&plan).as_bytes())?;
        Ok(Recorder { out_dir: out_dir.to_owned(), meta, turns_csv, turns_jsonl, calls_csv, calls_jsonl, set })
    }

    /// The report directory.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The run's description.
    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    /// The histograms and counts so far.
    pub fn histograms(&self) -> &HistogramSet {
        &self.set
    }

    /// Records one turn: counts it, then appends it to `turns.csv` and `turns.jsonl` and flushes both.
    pub fn record_turn(&mut self, turn: &TurnRecord) -> Result<(), ReportError> {
        self.set.record_turn(turn);
        let row = rows::turns_csv_row(turn)
            .map_err(|source| ReportError::Csv { path: self.turns_csv.path.clone(), source })?;
        self.turns_csv.append(&row)?;
        let line = rows::turns_jsonl_line(turn)
            .map_err(|source| ReportError::Json { path: self.turns_jsonl.path.clone(), source })?;
        self.turns_jsonl.append(&line)
    }

    /// Records one call (after its turns): counts it, adds its frame pacing, appends it to `calls.csv` and
    /// `calls.jsonl` and flushes both.
    pub fn record_call(&mut self, call: &CallRecord) -> Result<(), ReportError> {
        self.set.record_call(call);
        let row = rows::calls_csv_row(call)
            .map_err(|source| ReportError::Csv { path: self.calls_csv.path.clone(), source })?;
        self.calls_csv.append(&row)?;
        let line = rows::calls_jsonl_line(call)
            .map_err(|source| ReportError::Json { path: self.calls_jsonl.path.clone(), source })?;
        self.calls_jsonl.append(&line)
    }

    /// Adds the event loop's lag, as the run's lag monitor measured it (docs/metrics.md, "The harness watches
    /// itself").
    pub fn record_loop_lag(&mut self, lag: &Distribution) {
        // Two distributions of µs in auto-resizing histograms always add.
        let _ = self.set.add_loop_lag(lag);
    }

    /// Adds an open loop's outcome: its counts into the summary's `load`, its start lateness into the histograms.
    pub fn record_load(&mut self, intended: u64, started: u64, late: u64, dropped: u64, lateness: &Distribution) {
        if let Some(l) = self.meta.load.as_mut() {
            (l.intended, l.started, l.late, l.dropped) = (intended, started, late, dropped);
        }
        // Two distributions of µs in auto-resizing histograms always add.
        let _ = self.set.add_start_lateness(lateness);
    }

    /// The summary of what has been recorded so far, as if the run ended now. No I/O.
    pub fn summary(&self, interrupted: bool) -> Summary {
        Summary::build(&self.meta, &self.set, SystemTime::now(), interrupted)
    }

    /// Ends the run: writes `histograms/*.hgrm`, `histograms.hlog` and `summary.json`, and returns the summary.
    pub fn finish(self, interrupted: bool) -> Result<Summary, ReportError> {
        let finished = SystemTime::now();
        write_histograms(&self.out_dir, &self.set, self.meta.started_at, finished)?;
        let summary = Summary::build(&self.meta, &self.set, finished, interrupted);
        write_summary(&self.out_dir, &summary)?;
        Ok(summary)
    }
}

/// Writes a run's histograms into `dir`: `histograms/*.hgrm` and `histograms.hlog` (one interval, `started` to
/// `finished`).
pub(crate) fn write_histograms(
    dir: &Path,
    set: &HistogramSet,
    started: SystemTime,
    finished: SystemTime,
) -> Result<(), ReportError> {
    let hist_dir = dir.join("histograms");
    fs::create_dir_all(&hist_dir).map_err(ReportError::io("create directory", &hist_dir))?;
    for t in set.targets() {
        for (key, h) in t.histograms() {
            let name = format!("{}.{}.{}.hgrm", t.name, key.metric, key.scope.as_str());
            write_file(&hist_dir.join(name), hgrm::percentile_distribution(h, hgrm::US_PER_MS).as_bytes())?;
        }
    }
    if !set.pacing().is_empty() {
        let text = hgrm::percentile_distribution(set.pacing(), hgrm::US_PER_MS);
        write_file(&hist_dir.join("pacing.hgrm"), text.as_bytes())?;
    }
    if !set.loop_lag().is_empty() {
        let text = hgrm::percentile_distribution(set.loop_lag().histogram(), hgrm::US_PER_MS);
        write_file(&hist_dir.join("loop_lag.hgrm"), text.as_bytes())?;
    }
    let path = dir.join("histograms.hlog");
    let log = hlog::interval_log(set, started, finished)
        .map_err(|e| ReportError::Histogram { path: path.clone(), message: e.to_string() })?;
    write_file(&path, &log)
}

/// Writes `dir/summary.json` under a temporary name and renames it, so a CI job never reads half a summary.
pub(crate) fn write_summary(dir: &Path, summary: &Summary) -> Result<(), ReportError> {
    let path = dir.join("summary.json");
    let tmp = dir.join(".summary.json.tmp");
    write_file(&tmp, summary_json(summary).as_bytes())?;
    fs::rename(&tmp, &path).map_err(ReportError::io("write", &path))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    fs::write(path, bytes).map_err(ReportError::io("write", path))
}
