//! Reading a report directory back: `turns.jsonl` into [`TurnRecord`]s, `calls.csv` into [`CallRecord`]s (only
//! what the counts need) and `summary.json` into a [`Summary`] (for the scenario's SLOs and the targets' order).
//! The gate, compare, the plots and the pages all read a directory through [`Report::read`]; errors are
//! [`ReadError`]s naming the file (and line) at fault.
//!
//! [`TurnRecord`] is written, never read, elsewhere, so `TurnRow` mirrors it field for field; a test keeps the
//! two in step.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Summary;
use crate::model::{CallRecord, ErrorCategory, TurnKind, TurnRecord};

/// Why a report directory could not be read. Every variant names the file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file or directory could not be read.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: "read", "read report directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file of a report is not what voicebench writes.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A directory that should be a report directory is not one.
    #[error("{} is not a voicebench report directory: {missing} is missing ({hint})", dir.display())]
    NotAReport {
        /// The directory.
        dir: PathBuf,
        /// The file it lacks.
        missing: &'static str,
        /// What to do.
        hint: String,
    },
}

impl ReadError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + use<> {
        let path = path.to_owned();
        move |source| ReadError::Io { action, path, source }
    }
}

/// A report directory's raw records.
#[derive(Debug, Clone)]
pub struct Report {
    /// The directory.
    pub dir: PathBuf,
    /// `summary.json`, when present.
    pub summary: Option<Summary>,
    /// Every turn row, in file order.
    pub turns: Vec<TurnRecord>,
    /// Every call row, in file order (pacing left empty).
    pub calls: Vec<CallRecord>,
    /// Target names: the summary's order, then any other target a row names, in order of appearance.
    pub targets: Vec<String>,
}

impl Report {
    /// Reads `dir`. `turns.jsonl` and `calls.csv` must exist; `summary.json` too when `need_summary` (it carries the
    /// scenario's SLOs); otherwise a missing or unreadable summary is left out.
    pub fn read(dir: &Path, need_summary: bool) -> Result<Report, ReadError> {
        if !dir.is_dir() {
            return Err(ReadError::Io {
                action: "read report directory",
                path: dir.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            });
        }
        let summary_path = dir.join("summary.json");
        let summary = if summary_path.is_file() {
            match read_summary(&summary_path) {
                Ok(s) => Some(s),
                Err(e) if need_summary => return Err(e),
                // A baseline needs only its rows: a summary from another version must not stop the comparison.
                Err(_) => None,
            }
        } else if need_summary {
            return Err(ReadError::NotAReport {
                dir: dir.to_owned(),
                missing: "summary.json",
                hint: if super::recover::recoverable(dir) {
                    "the run ended without writing it (killed or crashed): `voicebench report DIR` rebuilds it from the rows".into()
                } else {
                    "a run writes it when it ends; a run that crashed has none: run it again".into()
                },
            });
        } else {
            None
        };
        let turns = read_turns(&require(dir, "turns.jsonl")?)?;
        let mut calls = read_calls(&require(dir, "calls.csv")?)?;
        add_network_effects(&dir.join("calls.jsonl"), &mut calls)?;
        let mut targets: Vec<String> =
            summary.as_ref().map(|s| s.targets.iter().map(|t| t.name.clone()).collect()).unwrap_or_default();
        for name in turns.iter().map(|t| &t.target).chain(calls.iter().map(|c| &c.target)) {
            if !targets.contains(name) {
                targets.push(name.clone());
            }
        }
        Ok(Report { dir: dir.to_owned(), summary, turns, calls, targets })
    }
}

fn require(dir: &Path, name: &'static str) -> Result<PathBuf, ReadError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ReadError::NotAReport {
            dir: dir.to_owned(),
            missing: name,
            hint: "give the directory `voicebench run` wrote (reports/<scenario>-<time>/) or a saved baseline".into(),
        })
    }
}

/// Reads a `summary.json`.
pub fn read_summary(path: &Path) -> Result<Summary, ReadError> {
    let text = std::fs::read_to_string(path).map_err(ReadError::io("read", path))?;
    serde_json::from_str(&text).map_err(|e| ReadError::Parse {
        path: path.to_owned(),
        line: Some(e.line()),
        message: format!("not a voicebench summary: {e}"),
    })
}

/// Reads `turns.jsonl`.
pub fn read_turns(path: &Path) -> Result<Vec<TurnRecord>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::io("read", path))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(ReadError::io("read", path))?;
        if line.trim().is_empty() {
            continue;
        }
        let parse_err = |message: String| ReadError::Parse { path: path.to_owned(), line: Some(i + 1), message };
        let row: TurnRow = serde_json::from_str(&line).map_err(|e| parse_err(format!("not a turn row: {e}")))?;
        out.push(row.into_record().map_err(parse_err)?);
    }
    Ok(out)
}

/// The columns of `calls.csv` the counts need.
#[derive(Debug, Deserialize)]
struct CallRow {
    target: String,
    simulated: bool,
    call: u32,
    /// Absent in reports written before it was read back.
    #[serde(default)]
    started_ms: f64,
    turns_total: u32,
    turns_ok: u32,
    error: Option<ErrorCategory>,
    /// Absent in reports written before task checks.
    #[serde(default)]
    task_ok: Option<bool>,
}

/// What the network did to each call, from `calls.jsonl` when the directory has one (`calls.csv` does not carry
/// it): matched to the call rows by target and call index. A line that is not JSON is a parse error.
fn add_network_effects(path: &Path, calls: &mut [CallRecord]) -> Result<(), ReadError> {
    #[derive(Deserialize)]
    struct Line {
        target: String,
        call: u32,
        #[serde(default)]
        network: Option<crate::model::network::NetEffect>,
    }
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let mut by_call = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let l: Line = serde_json::from_str(line).map_err(|e| ReadError::Parse {
            path: path.to_owned(),
            line: Some(i + 1),
            message: format!("not a call row: {e}"),
        })?;
        if let Some(n) = l.network {
            by_call.insert((l.target, l.call), n);
        }
    }
    if by_call.is_empty() {
        return Ok(());
    }
    for c in calls.iter_mut() {
        c.network = by_call.remove(&(c.target.clone(), c.call));
    }
    Ok(())
}

/// Reads `calls.csv` (pacing columns are not read back).
pub fn read_calls(path: &Path) -> Result<Vec<CallRecord>, ReadError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| ReadError::Parse {
        path: path.to_owned(),
        line: None,
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for row in r.deserialize::<CallRow>() {
        let row = row.map_err(|e| ReadError::Parse {
            path: path.to_owned(),
            line: e.position().map(|p| p.line() as usize),
            message: format!("not a call row: {e}"),
        })?;
        out.push(CallRecord {
            target: row.target,
            simulated: row.simulated,
            call: row.call,
            started_ms: row.started_ms,
            turns_total: row.turns_total,
            turns_ok: row.turns_ok,
            error: row.error,
            task_ok: row.task_ok,
            ..Default::default()
        });
    }
    Ok(out)
}

/// One line of `turns.jsonl`: [`TurnRecord`] field for field (a test checks they match).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TurnRow {
    target: String,
    simulated: bool,
    call: u32,
    turn: u32,
    turn_id: String,
    kind: Option<String>,
    utterance: String,
    user_onset_ms: f64,
    user_eos_ms: f64,
    ttfb_ms: Option<f64>,
    leading_silence_ms: Option<f64>,
    ttfa_ms: Option<f64>,
    endpointing_ms: Option<f64>,
    tool_call_ms: Option<f64>,
    talk_over_ms: Option<f64>,
    max_silence_ms: Option<f64>,
    barge_in_stop_ms: Option<f64>,
    barge_in_ack_ms: Option<f64>,
    post_cancel_audio_ms: Option<f64>,
    barge_in_failed: Option<bool>,
    false_stop: Option<bool>,
    premature_takeover: Option<bool>,
    stt_ms: Option<f64>,
    llm_ttft_ms: Option<f64>,
    tts_ttfb_ms: Option<f64>,
    tools_expected: u32,
    tools_succeeded: u32,
    tools_early: u32,
    tools_late: u32,
    tools_unexpected: u32,
    tools_malformed: u32,
    error: Option<ErrorCategory>,
    error_message: Option<String>,
    #[serde(default)]
    llm_start_ms: Option<f64>,
    #[serde(default)]
    tts_start_ms: Option<f64>,
    agent_audio_start_ms: Option<f64>,
    agent_audio_end_ms: Option<f64>,
    tools_expected_names: String,
    tools_succeeded_names: String,
    agent_text: Option<String>,
    content_ok: Option<bool>,
    content_detail: Option<String>,
    heard_text: Option<String>,
    unheard_words: Option<u32>,
}

impl TurnRow {
    fn into_record(self) -> Result<TurnRecord, String> {
        let kind = match self.kind {
            None => None,
            Some(k) => Some(TurnKind::ALL.into_iter().find(|x| x.as_str() == k).ok_or_else(|| {
                let kinds: Vec<&str> = TurnKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown turn kind `{k}`; {}", crate::diag::suggest(&k, "kinds", &kinds))
            })?),
        };
        Ok(TurnRecord {
            target: self.target,
            simulated: self.simulated,
            call: self.call,
            turn: self.turn,
            turn_id: self.turn_id,
            kind,
            utterance: self.utterance,
            user_onset_ms: self.user_onset_ms,
            user_eos_ms: self.user_eos_ms,
            ttfb_ms: self.ttfb_ms,
            leading_silence_ms: self.leading_silence_ms,
            ttfa_ms: self.ttfa_ms,
            endpointing_ms: self.endpointing_ms,
            tool_call_ms: self.tool_call_ms,
            talk_over_ms: self.talk_over_ms,
            max_silence_ms: self.max_silence_ms,
            barge_in_stop_ms: self.barge_in_stop_ms,
            barge_in_ack_ms: self.barge_in_ack_ms,
            post_cancel_audio_ms: self.post_cancel_audio_ms,
            barge_in_failed: self.barge_in_failed,
            false_stop: self.false_stop,
            premature_takeover: self.premature_takeover,
            stt_ms: self.stt_ms,
            llm_ttft_ms: self.llm_ttft_ms,
            tts_ttfb_ms: self.tts_ttfb_ms,
            tools_expected: self.tools_expected,
            tools_succeeded: self.tools_succeeded,
            tools_early: self.tools_early,
            tools_late: self.tools_late,
            tools_unexpected: self.tools_unexpected,
            tools_malformed: self.tools_malformed,
            error: self.error,
            error_message: self.error_message,
            llm_start_ms: self.llm_start_ms,
            tts_start_ms: self.tts_start_ms,
            agent_audio_start_ms: self.agent_audio_start_ms,
            agent_audio_end_ms: self.agent_audio_end_ms,
            tools_expected_names: self.tools_expected_names,
            tools_succeeded_names: self.tools_succeeded_names,
            agent_text: self.agent_text,
            content_ok: self.content_ok,
            content_detail: self.content_detail,
            heard_text: self.heard_text,
            unheard_words: self.unheard_words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rows::turns_jsonl_line;

    fn full() -> TurnRecord {
        let mut n = 0.0;
        let mut v = || {
            n += 1.25;
            Some(n)
        };
        TurnRecord {
            target: "t \"x\"".into(),
            simulated: true,
            call: 3,
            turn: 4,
            turn_id: "barge_in".into(),
            kind: Some(TurnKind::BargeIn),
            utterance: "correction".into(),
            user_onset_ms: 1.5,
            user_eos_ms: 2.5,
            ttfb_ms: v(),
            leading_silence_ms: v(),
            ttfa_ms: v(),
            endpointing_ms: v(),
            tool_call_ms: v(),
            talk_over_ms: v(),
            max_silence_ms: v(),
            barge_in_stop_ms: v(),
            barge_in_ack_ms: v(),
            post_cancel_audio_ms: v(),
            barge_in_failed: Some(true),
            false_stop: Some(false),
            premature_takeover: Some(true),
            stt_ms: v(),
            llm_ttft_ms: v(),
            tts_ttfb_ms: v(),
            tools_expected: 1,
            tools_succeeded: 2,
            tools_early: 3,
            tools_late: 4,
            tools_unexpected: 5,
            tools_malformed: 6,
            error: Some(ErrorCategory::Timeout),
            error_message: Some("late\nvery".into()),
            llm_start_ms: v(),
            tts_start_ms: v(),
            agent_audio_start_ms: v(),
            agent_audio_end_ms: v(),
            tools_expected_names: "check_availability;book".into(),
            tools_succeeded_names: "book".into(),
            agent_text: Some("For eight people, \"this\" Friday".into()),
            content_ok: Some(false),
            content_detail: Some("did not say \"six\"".into()),
            heard_text: Some("For eight people".into()),
            unheard_words: Some(2),
        }
    }

    #[test]
    fn turn_rows_read_back_exactly() {
        let line = turns_jsonl_line(&full()).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let row: TurnRow = serde_json::from_slice(&line).unwrap();
        // The mirror has exactly the record's fields …
        assert_eq!(serde_json::to_value(&row).unwrap(), written);
        // … and converts back to the same record.
        let back = row.into_record().unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), written);
    }

    #[test]
    fn the_mirror_knows_every_field_of_a_default_record() {
        let written = serde_json::to_value(TurnRecord::default()).unwrap();
        let mirror = serde_json::to_value(TurnRow::default()).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&mirror), keys(&written), "TurnRow must mirror TurnRecord: add the new field to both");
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("turns.jsonl");
        let mut text = String::from_utf8(turns_jsonl_line(&full()).unwrap()).unwrap();
        text.push_str("{\"kind\": \"plan\"}\n");
        std::fs::write(&path, text).unwrap();
        let e = read_turns(&path).unwrap_err().to_string();
        assert!(e.contains("turns.jsonl:2") && e.contains("did you mean `plain`"), "{e}");
    }
}
