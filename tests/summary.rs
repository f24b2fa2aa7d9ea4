//! `summary.json` is a contract: a run through the real [`Recorder`] in a temp dir must produce a document that
//! validates against `docs/summary.schema.json`, with percentiles, `.hgrm` text and the interval log that read back
//! to what was recorded, and rows that are on disk before the run ends.
//!
//! The validator below implements the JSON-Schema subset the schema uses (type, properties, required,
//! additionalProperties, items, enum, minimum, maximum, pattern, propertyNames, local `$ref`) and rejects any other
//! keyword, so the schema cannot grow a constraint that is silently not checked.

use std::time::SystemTime;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::{Value, json};
use voicebench::caller::record::{CallRecord, METRICS, TurnKind, TurnRecord};
use voicebench::model::Metric;
use voicebench::report::{Recorder, RunMeta, Summary, TargetMeta};
use voicebench::targets::ErrorCategory;

// ---------------------------------------------------------------------------------------------------------------
// A small JSON-Schema validator (the subset docs/summary.schema.json uses).

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &["$schema", "$id", "$defs", "title", "description"];

/// Every violation of `schema` by `value`, as `path: message` lines; empty when valid.
pub fn validate(root: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(root, root, value, "$", &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!("{at}: schema is not an object"));
        return;
    };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let pointer = arg.as_str().and_then(|r| r.strip_prefix('#')).expect("local $ref");
                let target = root.pointer(pointer).unwrap_or_else(|| panic!("unresolved $ref {pointer}"));
                check(root, target, v, at, errors);
            }
            "type" => {
                let types: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().expect("type name")).collect(),
                    _ => panic!("bad `type` in schema at {at}"),
                };
                if !types.iter().any(|t| has_type(v, t)) {
                    errors.push(format!("{at}: expected {}, found {v}", types.join(" or ")));
                }
            }
            "enum" => {
                if !arg.as_array().expect("enum array").contains(v) {
                    errors.push(format!("{at}: {v} is not one of {arg}"));
                }
            }
            "minimum" => {
                if let (Some(x), Some(min)) = (v.as_f64(), arg.as_f64())
                    && x < min
                {
                    errors.push(format!("{at}: {x} is below the minimum {min}"));
                }
            }
            "maximum" => {
                if let (Some(x), Some(max)) = (v.as_f64(), arg.as_f64())
                    && x > max
                {
                    errors.push(format!("{at}: {x} is above the maximum {max}"));
                }
            }
            "pattern" => {
                if let Some(s) = v.as_str() {
                    let re = regex::Regex::new(arg.as_str().expect("pattern string")).expect("valid pattern");
                    if !re.is_match(s) {
                        errors.push(format!("{at}: {s:?} does not match {re}"));
                    }
                }
            }
            "required" => {
                if let Some(obj) = v.as_object() {
                    for name in arg.as_array().expect("required array") {
                        let name = name.as_str().expect("required name");
                        if !obj.contains_key(name) {
                            errors.push(format!("{at}: missing required property `{name}`"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = v.as_object() {
                    for (name, sub) in arg.as_object().expect("properties object") {
                        if let Some(x) = obj.get(name) {
                            check(root, sub, x, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = v.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, x) in obj {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match arg {
                            Value::Bool(false) => errors.push(format!("{at}: unexpected property `{name}`")),
                            Value::Bool(true) => {}
                            sub => check(root, sub, x, &format!("{at}.{name}"), errors),
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(obj) = v.as_object() {
                    for name in obj.keys() {
                        check(root, arg, &Value::String(name.clone()), &format!("{at} (key `{name}`)"), errors);
                    }
                }
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    for (i, x) in items.iter().enumerate() {
                        check(root, arg, x, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            other => panic!("the test validator does not implement `{other}` (at {at}): implement it or drop it"),
        }
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|x| x.fract() == 0.0),
        other => panic!("unknown type `{other}`"),
    }
}

pub fn schema() -> Value {
    let path = crate::root().join("docs/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema readable")).expect("schema is JSON")
}

// ---------------------------------------------------------------------------------------------------------------
// A hand-made run through the real Recorder.

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn meta() -> RunMeta {
    RunMeta {
        scenario_name: "booking".into(),
        scenario_path: "scenarios/booking.toml".into(),
        scenario_sha256: SHA.into(),
        corpus_sha256: None,
        version: voicebench::report::VERSION.into(),
        started_at: SystemTime::now(),
        seed: 7,
        calls: 10,
        ramp_up_ms: None,
        priority: None,
        concurrency: 2,
        frame_ms: 20,
        targets: vec![
            TargetMeta {
                name: "sim-native".into(),
                protocol: "openai-realtime".into(),
                simulated: true,
                model: Some("gpt-realtime".into()),
                network: None,
                telephone: false,
            },
            TargetMeta {
                name: "real-pipe".into(),
                protocol: "pipeline".into(),
                simulated: false,
                model: None,
                network: None,
                telephone: false,
            },
        ],
        slo: Vec::new(),
        shard: None,
        load: None,
    }
}

/// sim-native: 1000 turns over 10 calls with TTFA 1..=1000 ms (every fourth a tool turn expecting one call, which
/// succeeds but for every tenth tool turn). real-pipe: 20 plain turns, no tool expected, one timeout, plus a call
/// that never connected.
fn record_run(rec: &mut Recorder) {
    for i in 1..=1000u32 {
        let tool = i % 4 == 0;
        rec.record_turn(&TurnRecord {
            target: "sim-native".into(),
            simulated: true,
            call: (i - 1) / 100,
            turn: (i - 1) % 100,
            turn_id: format!("t{}", (i - 1) % 100),
            kind: Some(if tool { TurnKind::Tool } else { TurnKind::Plain }),
            utterance: "book_table".into(),
            ttfa_ms: Some(f64::from(i)),
            ttfb_ms: Some(f64::from(i) * 0.8),
            leading_silence_ms: Some(f64::from(i) * 0.2),
            tool_call_ms: tool.then_some(f64::from(i) * 0.5),
            tools_expected: u32::from(tool),
            tools_succeeded: u32::from(tool && i % 40 != 0),
            ..Default::default()
        })
        .unwrap();
    }
    for call in 0..10 {
        let mut c = CallRecord {
            target: "sim-native".into(),
            simulated: true,
            call,
            turns_total: 100,
            turns_ok: 100,
            ..Default::default()
        };
        c.pacing.lateness_us = (0..100).map(|k| k * 10).collect();
        c.pacing.frames = 100;
        rec.record_call(&c).unwrap();
    }
    for i in 0..20u32 {
        let failed = i == 5;
        rec.record_turn(&TurnRecord {
            target: "real-pipe".into(),
            call: i / 10,
            turn: i % 10,
            kind: Some(TurnKind::Plain),
            ttfa_ms: (!failed).then_some(900.0 + f64::from(i)),
            stt_ms: (!failed).then_some(200.0),
            error: failed.then_some(ErrorCategory::Timeout),
            error_message: failed.then(|| "no reply within 15000 ms".into()),
            ..Default::default()
        })
        .unwrap();
    }
    for call in 0..2 {
        rec.record_call(&CallRecord { target: "real-pipe".into(), call, turns_total: 10, ..Default::default() })
            .unwrap();
    }
    rec.record_call(&CallRecord {
        target: "real-pipe".into(),
        call: 2,
        turns_total: 10,
        error: Some(ErrorCategory::Connect),
        error_message: Some("connection refused".into()),
        ..Default::default()
    })
    .unwrap();
}

fn finished_run() -> (tempfile::TempDir, Summary, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path(), meta()).unwrap();
    record_run(&mut rec);
    let summary = rec.finish(false).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    (dir, summary, doc)
}

// ---------------------------------------------------------------------------------------------------------------

#[test]
fn summary_json_validates_against_the_schema() {
    let (_dir, _summary, doc) = finished_run();
    let errors = validate(&schema(), &doc);
    assert!(errors.is_empty(), "{}\n{doc:#}", errors.join("\n"));
}

#[test]
fn summary_schema_rejects_drift() {
    let (_dir, _summary, doc) = finished_run();
    let schema = schema();

    let mut missing = doc.clone();
    missing["targets"][0].as_object_mut().unwrap().remove("simulated");
    let errors = validate(&schema, &missing);
    assert!(errors.iter().any(|e| e.contains("$.targets[0]: missing required property `simulated`")), "{errors:?}");

    let mut extra = doc.clone();
    extra["targets"][1]["p50"] = json!(1.0);
    assert!(!validate(&schema, &extra).is_empty());

    let mut unknown_metric = doc.clone();
    unknown_metric["targets"][0]["metrics"]["latency"] = doc["targets"][0]["metrics"]["ttfa"].clone();
    assert!(!validate(&schema, &unknown_metric).is_empty());

    let mut wrong_type = doc.clone();
    wrong_type["targets"][0]["error_rate"] = Value::Null;
    assert!(!validate(&schema, &wrong_type).is_empty());

    let mut bad_rate = doc.clone();
    bad_rate["targets"][0]["tool_success_rate"] = json!(1.5);
    assert!(!validate(&schema, &bad_rate).is_empty());
}

#[test]
fn summary_schema_names_every_metric_kind_and_category() {
    let schema = schema();
    let names = |pointer: &str| -> Vec<String> {
        let list = schema.pointer(pointer).unwrap_or_else(|| panic!("{pointer}")).as_array().unwrap();
        list.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("/$defs/metrics/propertyNames/enum"), METRICS);
    let kinds: Vec<&str> = TurnKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names("/$defs/target/properties/by_kind/propertyNames/enum"), kinds);
    let categories = [
        ErrorCategory::Connect,
        ErrorCategory::Auth,
        ErrorCategory::RateLimit,
        ErrorCategory::ProviderError,
        ErrorCategory::Protocol,
        ErrorCategory::Disconnect,
        ErrorCategory::Timeout,
        ErrorCategory::Interrupted,
    ]
    .map(ErrorCategory::as_str);
    assert_eq!(names("/$defs/target/properties/errors/propertyNames/enum"), categories);
}

#[test]
fn summary_percentiles_match_known_inputs() {
    let (dir, summary, doc) = finished_run();
    let ttfa = summary.target("sim-native").unwrap().metric(Metric::Ttfa).unwrap();
    assert_eq!(ttfa.count, 1000);
    // 3 significant digits: within 0.1 % of the exact order statistic.
    assert!((ttfa.p50 - 500.0).abs() <= 0.5, "{ttfa:?}");
    assert!((ttfa.p99 - 990.0).abs() <= 1.0, "{ttfa:?}");
    assert!((ttfa.p999 - 999.0).abs() <= 1.0, "{ttfa:?}");
    assert!((ttfa.min - 1.0).abs() <= 0.001 && (ttfa.max - 1000.0).abs() <= 1.0, "{ttfa:?}");
    assert!((ttfa.mean - 500.5).abs() <= 0.5, "{ttfa:?}");
    // The document carries the same numbers, in ms, and by kind.
    assert_eq!(doc["targets"][0]["metrics"]["ttfa"]["p50"].as_f64(), Some(ttfa.p50));
    assert_eq!(doc["targets"][0]["by_kind"]["tool"]["ttfa"]["count"], 250);
    assert_eq!(doc["targets"][0]["by_kind"]["plain"]["ttfa"]["count"], 750);
    assert!(doc["targets"][0]["by_kind"]["tool"]["tool_call"].is_object());
    // Metrics without samples are absent; the file lists metrics in report order (METRICS), not sorted.
    assert_eq!(doc["targets"][0]["metrics"].as_object().unwrap().len(), 4);
    assert!(doc["targets"][0]["metrics"].get("endpointing").is_none());
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let at = |key: &str| text.find(&format!("\"{key}\": {{")).unwrap_or_else(|| panic!("{key}"));
    assert!(at("ttfa") < at("ttfb") && at("ttfb") < at("leading_silence") && at("leading_silence") < at("tool_call"));
    // Pacing: 1000 frames, 0..990 µs.
    assert_eq!(summary.pacing.frames, 1000);
    assert!((summary.pacing.max_ms - 0.99).abs() < 0.001, "{:?}", summary.pacing);
    // The file reads back into the same Summary.
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn summary_rates_and_errors() {
    let (_dir, summary, doc) = finished_run();
    let sim = &doc["targets"][0];
    assert_eq!(sim["simulated"], true);
    assert_eq!(sim["tool_success_rate"].as_f64(), Some(225.0 / 250.0));
    assert_eq!(sim["error_rate"].as_f64(), Some(0.0));
    assert!(sim["barge_in_success_rate"].is_null());

    let pipe = &doc["targets"][1];
    assert_eq!(pipe["simulated"], false);
    // No expected tool call: no rate, never a default pass.
    assert!(pipe["tool_success_rate"].is_null(), "{pipe:#}");
    assert!(pipe.as_object().unwrap().contains_key("tool_success_rate"));
    // 20 turns recorded + 10 never reached by the call that failed to connect; 1 + 10 failed.
    assert_eq!(pipe["turns"], 30);
    assert_eq!(pipe["error_rate"].as_f64(), Some(11.0 / 30.0));
    assert_eq!(pipe["errors"], json!({"connect": 10, "timeout": 1}));
    assert_eq!(pipe["call_errors"], json!({"connect": 1}));
    assert_eq!(summary.target("real-pipe").unwrap().counts.turns_unreached, 10);
    assert!(pipe["metrics"]["stt"].is_object());
}

#[test]
fn summary_rows_are_on_disk_before_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path(), meta()).unwrap();
    // Headers are there before the first result.
    let csv_text = std::fs::read_to_string(dir.path().join("turns.csv")).unwrap();
    assert!(csv_text.starts_with("target,simulated,call,turn,"), "{csv_text}");
    assert!(std::fs::read_to_string(dir.path().join("calls.csv")).unwrap().starts_with("target,"));

    rec.record_turn(&TurnRecord {
        target: "sim-native".into(),
        kind: Some(TurnKind::Plain),
        ttfa_ms: Some(432.5),
        ..Default::default()
    })
    .unwrap();
    rec.record_call(&CallRecord { target: "sim-native".into(), turns_total: 1, turns_ok: 1, ..Default::default() })
        .unwrap();

    // Read back while the recorder is still open, as after a crash.
    let mut r = csv::Reader::from_path(dir.path().join("turns.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let ttfa = headers.iter().position(|h| h == "ttfa_ms").unwrap();
    assert_eq!(&rows[0][ttfa], "432.5");
    let jsonl = std::fs::read_to_string(dir.path().join("turns.jsonl")).unwrap();
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line["ttfa_ms"], 432.5);
    assert_eq!(csv::Reader::from_path(dir.path().join("calls.csv")).unwrap().records().count(), 1);
    assert!(!dir.path().join("summary.json").exists());

    let summary = rec.finish(true).unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.target("real-pipe").unwrap().calls, 0);
}

#[test]
fn summary_recorder_fails_at_once_on_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Recorder::create(&file.join("report"), meta()).unwrap_err();
    assert!(err.to_string().contains(&*file.display().to_string()), "{err}");
}

/// One `.hgrm` data row: value (ms), percentile, total count.
fn parse_hgrm(text: &str) -> (Vec<(f64, f64, u64)>, u64, f64) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]);
    let (mut rows, mut total, mut mean) = (Vec::new(), 0, 0.0);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        if let Some(footer) = line.strip_prefix("#[") {
            let footer = footer.trim_end_matches(']');
            for part in footer.split(',') {
                let (k, v) = part.split_once('=').unwrap();
                match k.trim() {
                    "Mean" => mean = v.trim().parse().unwrap(),
                    "Total count" => total = v.trim().parse().unwrap(),
                    _ => {}
                }
            }
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() == 4 || cols.len() == 3, "{line}");
        rows.push((cols[0].parse().unwrap(), cols[1].parse().unwrap(), cols[2].parse().unwrap()));
    }
    (rows, total, mean)
}

#[test]
fn summary_hgrm_parses_back() {
    let (dir, _summary, _doc) = finished_run();
    let text = std::fs::read_to_string(dir.path().join("histograms/sim-native.ttfa.all.hgrm")).unwrap();
    let (rows, total, mean) = parse_hgrm(&text);
    assert_eq!(total, 1000);
    assert!((mean - 500.5).abs() < 0.5, "{mean}");
    assert!(rows.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2));
    let last = rows.last().unwrap();
    assert_eq!((last.1, last.2), (1.0, 1000));
    let median = rows.iter().find(|r| r.1 >= 0.5).unwrap();
    assert!((median.0 - 500.0).abs() <= 0.5, "{median:?}");
    for name in ["sim-native.ttfa.tool.hgrm", "sim-native.tool_call.tool.hgrm", "real-pipe.stt.all.hgrm", "pacing.hgrm"]
    {
        assert!(dir.path().join("histograms").join(name).is_file(), "{name}");
    }
}

#[test]
fn summary_interval_log_decodes_to_the_same_counts() {
    let (dir, summary, _doc) = finished_run();
    let bytes = std::fs::read(dir.path().join("histograms.hlog")).unwrap();
    let mut deserializer = Deserializer::new();
    let mut by_tag = std::collections::BTreeMap::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(interval) = entry.unwrap() else { continue };
        let tag = interval.tag().expect("every interval is tagged").as_str().to_owned();
        let raw = base64_decode(interval.encoded_histogram());
        let h: Histogram<u64> = deserializer.deserialize(&mut raw.as_slice()).unwrap();
        assert!(by_tag.insert(tag, h).is_none(), "tags are unique");
    }
    for t in &summary.targets {
        for (metric, stats) in t.metrics.iter() {
            let h = &by_tag[&format!("{}/{metric}/all", t.name)];
            assert_eq!(h.len(), stats.count, "{}/{metric}", t.name);
            // The summary's median is the exact sample; the log keeps its bucket (3 significant digits).
            let p50_us = (stats.p50 * 1000.0).round() as u64;
            assert!(h.equivalent(h.value_at_quantile(0.5), p50_us), "{}/{metric}: {p50_us} µs", t.name);
        }
        for (kind, metrics) in t.by_kind.iter() {
            for (metric, stats) in metrics.iter() {
                assert_eq!(by_tag[&format!("{}/{metric}/{kind}", t.name)].len(), stats.count);
            }
        }
    }
    assert_eq!(by_tag["pacing"].len(), 1000);
    // Exactly the histograms with samples: 4 metrics × (all, plain, tool) - plain has no tool_call, + pipe's 2 × 2.
    assert_eq!(by_tag.len(), 4 + 4 + 3 + 2 * 2 + 1);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
