//! Row formats streamed during a run: `turns.csv`, `turns.jsonl`, `calls.csv` and `calls.jsonl`. Each function
//! returns the bytes of one line (header or row); the [`Recorder`](super::Recorder) appends them.
//!
//! Turn columns are [`TurnRecord`]'s fields in declaration order, so the CSV follows the record without a second
//! list to keep in step. Call rows flatten [`CallRecord`]'s pacing into `pacing_*` columns.

use serde::Serialize;

use crate::model::{CallRecord, ErrorCategory, Pacing, ToolCallLog, TurnRecord};

/// The header line of `turns.csv`.
pub fn turns_csv_header() -> Result<Vec<u8>, csv::Error> {
    header_of(&TurnRecord::default())
}

/// One row of `turns.csv`.
pub fn turns_csv_row(t: &TurnRecord) -> Result<Vec<u8>, csv::Error> {
    row_of(t)
}

/// One line of `turns.jsonl`.
pub fn turns_jsonl_line(t: &TurnRecord) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(t)?;
    line.push(b'\n');
    Ok(line)
}

/// The header line of `calls.csv`.
pub fn calls_csv_header() -> Result<Vec<u8>, csv::Error> {
    header_of(&CallRow::from(&CallRecord::default()))
}

/// One row of `calls.csv`.
pub fn calls_csv_row(c: &CallRecord) -> Result<Vec<u8>, csv::Error> {
    row_of(&CallRow::from(c))
}

/// A call as a flat CSV row.
#[derive(Serialize)]
struct CallRow<'a> {
    target: &'a str,
    simulated: bool,
    call: u32,
    session_id: Option<&'a str>,
    connect_ms: Option<f64>,
    started_ms: f64,
    duration_ms: f64,
    turns_total: u32,
    turns_ok: u32,
    error: Option<ErrorCategory>,
    error_message: Option<&'a str>,
    pacing_frames: u64,
    pacing_p50_us: u32,
    pacing_p99_us: u32,
    pacing_max_us: u32,
    task_ok: Option<bool>,
    content_checked: u32,
    content_failed: u32,
    ttfa_p50_ms: Option<f64>,
    ttfa_max_ms: Option<f64>,
}

impl<'a> From<&'a CallRecord> for CallRow<'a> {
    fn from(c: &'a CallRecord) -> Self {
        CallRow {
            target: &c.target,
            simulated: c.simulated,
            call: c.call,
            session_id: c.session_id.as_deref(),
            connect_ms: c.connect_ms,
            started_ms: c.started_ms,
            duration_ms: c.duration_ms,
            turns_total: c.turns_total,
            turns_ok: c.turns_ok,
            error: c.error,
            error_message: c.error_message.as_deref(),
            pacing_frames: c.pacing.frames,
            pacing_p50_us: c.pacing.p50_us,
            pacing_p99_us: c.pacing.p99_us,
            pacing_max_us: c.pacing.max_us,
            task_ok: c.task_ok,
            content_checked: c.content_checked,
            content_failed: c.content_failed,
            ttfa_p50_ms: c.ttfa_p50_ms,
            ttfa_max_ms: c.ttfa_max_ms,
        }
    }
}

/// One line of `calls.jsonl` (docs/report.md has its fields): the call's structured row.
pub fn calls_jsonl_line(c: &CallRecord) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(&CallJson::from(c))?;
    line.push(b'\n');
    Ok(line)
}

/// A call as `calls.jsonl` writes it.
#[derive(Serialize)]
struct CallJson<'a> {
    target: &'a str,
    simulated: bool,
    call: u32,
    /// `ok`, or the category of the error that ended the call.
    outcome: &'a str,
    error_message: Option<&'a str>,
    session_id: Option<&'a str>,
    started_ms: f64,
    connect_ms: Option<f64>,
    duration_ms: f64,
    turns_total: u32,
    turns_ok: u32,
    task_ok: Option<bool>,
    task_detail: Option<&'a str>,
    content_checked: u32,
    content_failed: u32,
    ttfa_p50_ms: Option<f64>,
    ttfa_max_ms: Option<f64>,
    tool_calls: &'a [ToolCallLog],
    recording: Option<&'a str>,
    /// Every argument of the call's well-formed tool calls, the last value of each name (what the agent
    /// collected: name, callback number, party size, date, time).
    slots: serde_json::Map<String, serde_json::Value>,
    pacing: &'a Pacing,
    /// What the impaired network did to the call's packets (docs/network.md); absent on a clean line.
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a crate::model::network::NetEffect>,
}

impl<'a> From<&'a CallRecord> for CallJson<'a> {
    fn from(c: &'a CallRecord) -> Self {
        let mut slots = serde_json::Map::new();
        for call in c.tool_calls.iter().filter(|t| t.outcome != "malformed") {
            if let serde_json::Value::Object(o) = &call.arguments {
                for (k, v) in o {
                    slots.insert(k.clone(), v.clone());
                }
            }
        }
        CallJson {
            target: &c.target,
            simulated: c.simulated,
            call: c.call,
            outcome: c.error.map_or("ok", ErrorCategory::as_str),
            error_message: c.error_message.as_deref(),
            session_id: c.session_id.as_deref(),
            started_ms: c.started_ms,
            connect_ms: c.connect_ms,
            duration_ms: c.duration_ms,
            turns_total: c.turns_total,
            turns_ok: c.turns_ok,
            task_ok: c.task_ok,
            task_detail: c.task_detail.as_deref(),
            content_checked: c.content_checked,
            content_failed: c.content_failed,
            ttfa_p50_ms: c.ttfa_p50_ms,
            ttfa_max_ms: c.ttfa_max_ms,
            tool_calls: &c.tool_calls,
            recording: c.recording.as_deref(),
            slots,
            pacing: &c.pacing,
            network: c.network.as_ref(),
        }
    }
}

fn header_of<T: Serialize>(example: &T) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(Vec::new());
    w.serialize(example)?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    // Column names are identifiers, never quoted over lines: the header is the first line.
    let end = bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
    Ok(bytes[..end].to_vec())
}

fn row_of<T: Serialize>(row: &T) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.serialize(row)?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TurnKind;

    #[test]
    fn turn_row_matches_header() {
        let header = String::from_utf8(turns_csv_header().unwrap()).unwrap();
        assert!(header.starts_with("target,simulated,call,turn,turn_id,kind,"), "{header}");
        let t = TurnRecord {
            target: "sim".into(),
            kind: Some(TurnKind::BargeIn),
            ttfa_ms: Some(512.25),
            error: Some(ErrorCategory::RateLimit),
            error_message: Some("slow down, \"please\"\nnow".into()),
            ..Default::default()
        };
        let row = turns_csv_row(&t).unwrap();
        let text = [header.as_bytes(), &row].concat();
        let mut r = csv::Reader::from_reader(text.as_slice());
        let headers = r.headers().unwrap().clone();
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(headers.len(), rec.len());
        let get = |name: &str| rec.get(headers.iter().position(|h| h == name).unwrap()).unwrap().to_owned();
        assert_eq!(get("kind"), "barge_in");
        assert_eq!(get("ttfa_ms"), "512.25");
        assert_eq!(get("ttfb_ms"), "");
        assert_eq!(get("error"), "rate_limit");
        assert_eq!(get("error_message"), "slow down, \"please\"\nnow");
    }

    #[test]
    fn call_row_matches_header() {
        let header = calls_csv_header().unwrap();
        let mut c = CallRecord { target: "sim".into(), session_id: Some("s1".into()), ..Default::default() };
        c.pacing.p99_us = 420;
        let row = calls_csv_row(&c).unwrap();
        let text = [header, row].concat();
        let mut r = csv::Reader::from_reader(text.as_slice());
        let headers = r.headers().unwrap().clone();
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(headers.len(), rec.len());
        assert_eq!(rec.get(headers.iter().position(|h| h == "pacing_p99_us").unwrap()), Some("420"));
    }

    #[test]
    fn jsonl_is_one_line() {
        let t = TurnRecord { error_message: Some("a\nb".into()), ..Default::default() };
        let line = turns_jsonl_line(&t).unwrap();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
    }
}
