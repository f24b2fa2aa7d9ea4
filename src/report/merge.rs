//! `voicebench merge`: the shards of one sharded run (`voicebench run --shard I/N`, one report directory each)
//! combined into one report directory, exactly.
//!
//! - The rows (`turns.jsonl`, `turns.csv`, `calls.csv`, `calls.jsonl`) are concatenated byte for byte in shard
//!   order: call indices are the whole run's, so each call appears once. Recordings are copied under
//!   `recordings/shard-<I>/`, the index and the rows' `recording` paths rewritten to match.
//! - `summary.json` is rebuilt from the merged rows through [`super::recover::replay`], the same replay the gate and
//!   a recovered run use: every percentile is the exact order statistic of the pooled samples and every count a sum,
//!   so the merged figures are what one process would compute over the same rows.
//! - The HdrHistograms are added: each shard's `histograms.hlog` is read back and summed ([`HistogramSet::merge`]).
//!   The targets' sums must equal the histograms of the merged rows (a shard whose rows and histograms disagree,
//!   edited or truncated, is refused); the harness's own pacing and event-loop lag exist only in the logs, so the
//!   merged run's harness figures are the summed histograms' (3 significant digits), and a shard that was
//!   overloaded makes the merged run overloaded, named in its reasons.
//! - The shards must be of one run: the same scenario file and corpus (by hash), voicebench version, seed, calls,
//!   frame and concurrency, targets and SLOs, and shard count; each index once. A missing shard is an error unless
//!   allowed, and then the summary is marked incomplete with the missing indices.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};

use super::read::{ReadError, Report, read_summary};
use super::recorder::{write_histograms, write_summary};
use super::summary::{MergedShard, MergedSummary, Summary};
use super::time::parse_rfc3339;
use super::{ReportError, hlog};
use crate::metrics::HistogramSet;

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Merge even when some shards of the run are not given (the summary is marked incomplete).
    pub allow_missing: bool,
}

/// Why shards could not be merged. Every variant names the directory at fault and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A shard could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The merged directory could not be written.
    #[error(transparent)]
    Write(#[from] ReportError),
    /// No directory given.
    #[error("nothing to merge: give the report directories of a sharded run's shards")]
    Nothing,
    /// A directory without `summary.json`.
    #[error(
        "{} has no summary.json{}",
        dir.display(),
        if *recoverable { " (the shard was killed): `voicebench report DIR` rebuilds it from its rows; then merge" } else { "" }
    )]
    NoSummary {
        /// The directory.
        dir: PathBuf,
        /// Whether `voicebench report` can rebuild it.
        recoverable: bool,
    },
    /// A run in one piece.
    #[error(
        "{} is not a shard (its summary.json has no `shard`): merge combines the shards of one run made with \
         `voicebench run --shard I/N` (or a Kubernetes Indexed Job)",
        dir.display()
    )]
    NotAShard {
        /// The directory.
        dir: PathBuf,
    },
    /// Two shards of different runs.
    #[error(
        "{} and {} are not shards of one run: {what} differs ({left} vs {right}); merge only the shards of one run, \
         made with the same scenario, voicebench, seed and options",
        a.display(),
        b.display()
    )]
    Mismatch {
        /// The first shard.
        a: PathBuf,
        /// The shard that differs.
        b: PathBuf,
        /// What differs.
        what: &'static str,
        /// The first shard's value.
        left: String,
        /// The other's.
        right: String,
    },
    /// One index twice.
    #[error("{} and {} are both shard {index}/{count}: give each shard once", a.display(), b.display())]
    Duplicate {
        /// The index.
        index: u32,
        /// The count.
        count: u32,
        /// One directory.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// Shards missing.
    #[error(
        "shard{} {} of {count} {} missing: give every shard's directory, or --allow-missing to merge what there is \
         (the summary is then marked incomplete)",
        if missing.len() == 1 { "" } else { "s" },
        missing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
        if missing.len() == 1 { "is" } else { "are" }
    )]
    Missing {
        /// The missing indices.
        missing: Vec<u32>,
        /// The count.
        count: u32,
    },
    /// The output is one of the inputs.
    #[error("--out {} is one of the shards: write the merged run to a directory of its own", dir.display())]
    OutIsInput {
        /// The directory.
        dir: PathBuf,
    },
    /// A shard's histograms disagree with its rows.
    #[error(
        "the shards' histograms.hlog and their rows disagree on `{tag}` ({logged} samples logged, {rows} in the rows): \
         a shard's files were edited or cut; re-run it"
    )]
    Inconsistent {
        /// The histogram's tag.
        tag: String,
        /// Samples in the summed logs.
        logged: u64,
        /// Samples from the rows.
        rows: u64,
    },
    /// A shard's interval log could not be read.
    #[error("{}: {message}", path.display())]
    Hlog {
        /// The log.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One shard, read.
struct Input {
    dir: PathBuf,
    summary: Summary,
    index: u32,
    count: u32,
    seed: u64,
}

/// The row files, and whether each has a header line to keep once.
const ROW_FILES: [(&str, bool); 3] = [("turns.jsonl", false), ("turns.csv", true), ("calls.csv", true)];

/// Merges the shards in `dirs` into `out` (created; files of an earlier merge there are overwritten) and returns the
/// merged summary. The pages are not built here (the caller does, as `voicebench report` would).
pub fn merge(dirs: &[PathBuf], out: &Path, opts: &MergeOptions) -> Result<Summary, MergeError> {
    let mut inputs = read_inputs(dirs)?;
    inputs.sort_by_key(|i| i.index);
    check_one_run(&inputs)?;
    let count = inputs[0].count;
    let missing: Vec<u32> = (1..=count).filter(|i| !inputs.iter().any(|s| s.index == *i)).collect();
    if !missing.is_empty() && !opts.allow_missing {
        return Err(MergeError::Missing { missing, count });
    }
    std::fs::create_dir_all(out).map_err(ReportError::io("create directory", out))?;
    let out_canon = out.canonicalize().map_err(ReportError::io("read", out))?;
    for i in &inputs {
        if i.dir.canonicalize().is_ok_and(|d| d == out_canon) {
            return Err(MergeError::OutIsInput { dir: out.to_owned() });
        }
    }
    for (name, header) in ROW_FILES {
        concatenate(&inputs, out, name, header)?;
    }
    merge_calls_and_recordings(&inputs, out)?;

    let first = &inputs[0].summary;
    let report = Report::read(out, false)?;
    let mut set = super::recover::replay(&report, super::recover::summary_slos(first));
    add_logged(&inputs, &mut set)?;
    let mut meta = super::recover::meta_of(first);
    meta.shard = None;
    // Open loop: the shards' arrivals add up; the start lateness comes from their logs (add_logged).
    if let Some(l) = meta.load.as_mut() {
        let loads = || inputs.iter().filter_map(|i| i.summary.load.as_ref());
        l.intended = loads().map(|x| x.intended).sum();
        l.started = loads().map(|x| x.started).sum();
        l.late = loads().map(|x| x.late).sum();
        l.dropped = loads().map(|x| x.dropped).sum();
    }
    let started = inputs.iter().filter_map(|i| parse_rfc3339(&i.summary.started_at)).min();
    let finished = inputs.iter().filter_map(|i| parse_rfc3339(&i.summary.finished_at)).max();
    meta.started_at = started.unwrap_or(std::time::UNIX_EPOCH);
    let finished = finished.unwrap_or_else(std::time::SystemTime::now);
    let interrupted = inputs.iter().any(|i| i.summary.interrupted);
    write_histograms(out, &set, meta.started_at, finished)?;

    let mut summary = Summary::build(&meta, &set, finished, interrupted);
    summary.incomplete = !missing.is_empty() || inputs.iter().any(|i| i.summary.incomplete);

    let measured: Vec<String> =
        summary.targets.iter().flat_map(|t| t.metrics.iter().map(|(name, _)| name.to_owned())).collect();
    let measured: Vec<&str> = measured.iter().map(String::as_str).collect();
    let shard_reasons: Vec<String> = inputs
        .iter()
        .filter_map(|i| {
            let h = i.summary.harness.as_ref().filter(|h| h.overloaded)?;
            Some(format!("shard {}/{}: {}", i.index, i.count, h.reasons.join("; ")))
        })
        .collect();
    if let Some(h) = summary.harness.as_mut() {
        h.add_reasons(shard_reasons, &measured);
    }
    summary.merged = Some(MergedSummary {
        count,
        shards: inputs
            .iter()
            .map(|i| MergedShard {
                index: i.index,
                dir: i.dir.display().to_string(),
                seed: i.seed,
                started_at: i.summary.started_at.clone(),
                finished_at: i.summary.finished_at.clone(),
                interrupted: i.summary.interrupted,
                incomplete: i.summary.incomplete,
                overloaded: i.summary.harness.as_ref().map(|h| h.overloaded),
            })
            .collect(),
        missing,
    });
    write_summary(out, &summary)?;
    copy_ground_truth(&inputs, out)?;
    Ok(summary)
}

/// `calls.jsonl` concatenated in shard order (when every shard has one: shards of an older version have none), and
/// each shard's recordings copied under `recordings/shard-<I>/`, with the index and the rows' `recording` paths
/// pointing there.
fn merge_calls_and_recordings(inputs: &[Input], out: &Path) -> Result<(), MergeError> {
    let mut index = Vec::new();
    let mut calls = Vec::new();
    let all_calls = inputs.iter().all(|i| i.dir.join("calls.jsonl").is_file());
    for i in inputs {
        let prefix = format!("recordings/shard-{}/", i.index);
        for mut e in super::recordings::read_index(&i.dir) {
            let Some(rest) = e.file.strip_prefix("recordings/") else { continue };
            let (from, to) = (i.dir.join(&e.file), out.join(&prefix).join(rest));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(ReportError::io("create directory", parent))?;
            }
            std::fs::copy(&from, &to).map_err(ReportError::io("write", &to))?;
            e.file = format!("{prefix}{rest}");
            index.push(e);
        }
        if all_calls {
            let path = i.dir.join("calls.jsonl");
            let text = std::fs::read_to_string(&path).map_err(ReportError::io("read", &path))?;
            calls.push(text.replace("\"recording\":\"recordings/", &format!("\"recording\":\"{prefix}")));
        }
    }
    if all_calls {
        let path = out.join("calls.jsonl");
        std::fs::write(&path, calls.concat()).map_err(ReportError::io("write", &path))?;
    }
    if !index.is_empty() {
        let path = out.join(super::recordings::INDEX);
        let json = serde_json::to_string_pretty(&index).unwrap_or_default();
        std::fs::write(&path, json).map_err(ReportError::io("write", &path))?;
    }
    Ok(())
}

/// Reads each directory's summary and shard.
fn read_inputs(dirs: &[PathBuf]) -> Result<Vec<Input>, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Nothing);
    }
    let mut inputs: Vec<Input> = Vec::new();
    for dir in dirs {
        let path = dir.join("summary.json");
        if !path.is_file() {
            if !dir.is_dir() {
                return Err(ReadError::Io {
                    action: "read report directory",
                    path: dir.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                }
                .into());
            }
            return Err(MergeError::NoSummary { dir: dir.clone(), recoverable: super::recover::recoverable(dir) });
        }
        let summary = read_summary(&path)?;
        let Some(shard) = summary.shard.clone() else { return Err(MergeError::NotAShard { dir: dir.clone() }) };
        if let Some(other) = inputs.iter().find(|i| i.index == shard.index && i.count == shard.count) {
            return Err(MergeError::Duplicate {
                index: shard.index,
                count: shard.count,
                a: other.dir.clone(),
                b: dir.clone(),
            });
        }
        inputs.push(Input { dir: dir.clone(), summary, index: shard.index, count: shard.count, seed: shard.seed });
    }
    Ok(inputs)
}

/// Every shard must be of the first one's run.
fn check_one_run(inputs: &[Input]) -> Result<(), MergeError> {
    let a = &inputs[0];
    let describe = |s: &Summary| -> Vec<(&'static str, String)> {
        let targets: Vec<String> = s
            .targets
            .iter()
            .map(|t| format!("{} ({}{})", t.name, t.protocol, if t.simulated { ", simulated" } else { "" }))
            .collect();
        vec![
            ("the shard count", s.shard.as_ref().map_or(0, |x| x.count).to_string()),
            ("the scenario file (SHA-256)", s.scenario.sha256.clone()),
            ("the corpus (SHA-256)", s.scenario.corpus_sha256.clone().unwrap_or_else(|| "none".into())),
            ("the voicebench version", s.voicebench.clone()),
            ("the seed", s.run.seed.to_string()),
            ("calls per target", s.run.calls.to_string()),
            ("concurrency", s.run.concurrency.to_string()),
            ("the frame", format!("{} ms", s.run.frame_ms)),
            ("the targets", targets.join(", ")),
            ("the SLOs", s.slo.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
            (
                "the open-loop schedule",
                s.load.as_ref().map_or("none (closed loop)".into(), |l| {
                    format!("{} {:?}, {} in flight, {} ms", l.arrivals, l.stages, l.max_in_flight, l.max_start_delay_ms)
                }),
            ),
        ]
    };
    let want = describe(&a.summary);
    for b in &inputs[1..] {
        for ((what, left), (_, right)) in want.iter().zip(describe(&b.summary)) {
            if *left != right {
                return Err(MergeError::Mismatch {
                    a: a.dir.clone(),
                    b: b.dir.clone(),
                    what,
                    left: left.clone(),
                    right,
                });
            }
        }
    }
    Ok(())
}

/// Concatenates one row file of every shard into `out`, keeping the first shard's header line once (the others'
/// must be the same).
fn concatenate(inputs: &[Input], out: &Path, name: &str, header: bool) -> Result<(), MergeError> {
    let mut merged: Vec<u8> = Vec::new();
    let mut first_header: Option<(PathBuf, Vec<u8>)> = None;
    for i in inputs {
        let path = i.dir.join(name);
        let bytes =
            std::fs::read(&path).map_err(|source| ReadError::Io { action: "read", path: path.clone(), source })?;
        let mut body: &[u8] = &bytes;
        if header {
            let end = body.iter().position(|b| *b == b'\n').map_or(body.len(), |p| p + 1);
            let (head, rest) = body.split_at(end);
            match &first_header {
                None => {
                    merged.extend_from_slice(head);
                    first_header = Some((path.clone(), head.to_vec()));
                }
                Some((first, h)) if h.as_slice() != head => {
                    return Err(MergeError::Mismatch {
                        a: first.clone(),
                        b: path,
                        what: "the row columns",
                        left: String::from_utf8_lossy(h).trim().chars().take(120).collect(),
                        right: String::from_utf8_lossy(head).trim().chars().take(120).collect(),
                    });
                }
                Some(_) => {}
            }
            body = rest;
        }
        merged.extend_from_slice(body);
        if !merged.is_empty() && merged.last() != Some(&b'\n') {
            // A shard killed mid-row: its last, partial line ends here rather than run into the next shard's.
            merged.push(b'\n');
        }
    }
    let path = out.join(name);
    std::fs::write(&path, merged).map_err(ReportError::io("write", &path))?;
    Ok(())
}

/// Adds the shards' interval logs: the harness's pacing and loop lag into `set`, and the targets' histograms checked
/// against `set`'s (from the rows). A shard without a log (rebuilt from its rows) adds nothing and is not checked.
fn add_logged(inputs: &[Input], set: &mut HistogramSet) -> Result<(), MergeError> {
    let mut logged = HistogramSet::default();
    let mut every_shard_logged = true;
    for i in inputs {
        let path = i.dir.join("histograms.hlog");
        let Ok(bytes) = std::fs::read(&path) else {
            every_shard_logged = false;
            continue;
        };
        let shard =
            hlog::histogram_set(&bytes).map_err(|e| MergeError::Hlog { path: path.clone(), message: e.to_string() })?;
        logged.merge(&shard).map_err(|e| MergeError::Hlog { path, message: format!("{e:?}") })?;
    }
    let add_err = |e| MergeError::Hlog { path: PathBuf::from("histograms.hlog"), message: format!("{e:?}") };
    set.add_pacing(logged.pacing()).map_err(add_err)?;
    set.add_loop_lag_histogram(logged.loop_lag().histogram()).map_err(add_err)?;
    set.add_start_lateness_histogram(logged.start_lateness().histogram()).map_err(add_err)?;
    if !every_shard_logged {
        return Ok(());
    }
    // Every histogram either side has, keyed by tag: the logs' sum must be the rows' histogram, sample for sample.
    type Pair<'a> = (Option<&'a Histogram<u64>>, Option<&'a Histogram<u64>>);
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    for t in logged.targets() {
        for (key, h) in t.histograms() {
            pairs.entry(hlog::tag(&t.name, key)).or_default().0 = Some(h);
        }
    }
    for t in set.targets() {
        for (key, h) in t.histograms().filter(|(_, h)| !h.is_empty()) {
            pairs.entry(hlog::tag(&t.name, key)).or_default().1 = Some(h);
        }
    }
    for (tag, (logged, rows)) in pairs {
        if logged != rows {
            let len = |h: Option<&Histogram<u64>>| h.map_or(0, |h| h.len());
            return Err(MergeError::Inconsistent { tag, logged: len(logged), rows: len(rows) });
        }
    }
    Ok(())
}

/// Copies each shard's sim ground truth as `ground_truth.<target>.shard-<I>.jsonl` (each on its shard's clock).
fn copy_ground_truth(inputs: &[Input], out: &Path) -> Result<(), MergeError> {
    for i in inputs {
        let Ok(entries) = std::fs::read_dir(&i.dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(target) = name.strip_prefix("ground_truth.").and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            let to = out.join(format!("ground_truth.{target}.shard-{}.jsonl", i.index));
            std::fs::copy(e.path(), &to).map_err(ReportError::io("write", &to))?;
        }
    }
    Ok(())
}
