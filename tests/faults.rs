//! The sim's fault catalogue (docs/sim.md "Faults") against the harness, over real sockets: each fault is played by
//! one simulated target beside a healthy one (`fixed`) in a `voicebench run` of the built binary with small
//! timeouts. Each test checks that the run ends within its wall-clock bound, that the fault's error category lands
//! in the faulty target's turns or calls and in summary.json, that the healthy target's call is unaffected, and the
//! exit code (0 pass, 1 gate failed, 2 error: a target all of whose calls failed is an error).
//!
//! The faults that need no fix in the harness share one run (one target per fault, `shared`); those that crash or
//! hang the harness today run alone, so that one of them cannot take the others down. Tests ignored with "needs
//! harness fix" are the defects of issue 15 still open on this branch.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{root, timing_lock};

/// A run of the binary, read back.
struct Run {
    code: Option<i32>,
    wall: Duration,
    turns: Vec<Value>,
    calls: Vec<Value>,
    summary: Value,
    output: String,
}

/// The small timeouts every fault run uses, ms.
const TIMEOUTS: &str =
    "turn_timeout_ms = 3000\nconnect_timeout_ms = 2000\nfirst_byte_timeout_ms = 3000\nidle_timeout_ms = 2000";

/// The wall-clock bound of a fault run: the three turns' audio, the timeouts, and slack for a loaded machine.
const WALL_LIMIT: Duration = Duration::from_secs(60);

fn target(protocol: &str, fault: &str) -> String {
    let name = fault_target(fault);
    if protocol == "pipeline" {
        format!(
            "\n[[target]]\nname = \"{name}\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\nsim_options = {{ fault = \"{fault}\" }}\n"
        )
    } else {
        format!(
            "\n[[target]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nsim = \"fixed\"\nsim_options = {{ fault = \"{fault}\" }}\n"
        )
    }
}

fn fault_target(fault: &str) -> String {
    format!("f-{fault}")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Runs the fixed call against the healthy target and `targets` with the binary, killed past [`WALL_LIMIT`].
fn run(dir: &Path, targets: &str) -> Run {
    let toml = voicebench::run::bench::fixed_scenario_toml(&root().join("audio-corpus"), targets)
        .replace("turn_timeout_ms = 10000", TIMEOUTS)
        .replace("concurrency = 1", "concurrency = 64");
    let scenario = dir.join("faults.toml");
    std::fs::write(&scenario, toml).unwrap();
    let out = dir.join("out");
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > WALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = start.elapsed();
    let o = child.wait_with_output().unwrap();
    let output = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let calls = read_calls(&out.join("calls.csv"));
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    Run { code, wall, turns: lines(&out.join("turns.jsonl")), calls, summary, output }
}

/// calls.csv's rows as `{"target", "error"}` objects (the two columns these tests read).
fn read_calls(path: &Path) -> Vec<Value> {
    let Ok(mut r) = csv::Reader::from_path(path) else { return Vec::new() };
    let headers = r.headers().cloned().unwrap_or_default();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(t), Some(e)) = (col("target"), col("error")) else { return Vec::new() };
    r.records()
        .filter_map(Result::ok)
        .map(|rec| {
            let err = rec.get(e).filter(|x| !x.is_empty()).map_or(Value::Null, |x| Value::String(x.into()));
            serde_json::json!({"target": rec.get(t).unwrap_or_default(), "error": err})
        })
        .collect()
}

/// Checks one fault's target in a run: bounded, its category in the rows and the summary, the healthy target clean.
fn check(run: &Run, fault: &str, categories: &[&str]) {
    let name = fault_target(fault);
    assert!(run.wall < WALL_LIMIT, "{fault}: the run did not end within {WALL_LIMIT:?}\n{}", run.output);
    let of = |rows: &[Value], t: &str| -> Vec<String> {
        rows.iter().filter(|r| r["target"] == t).filter_map(|r| r["error"].as_str().map(String::from)).collect()
    };
    let mut seen = of(&run.turns, &name);
    seen.extend(of(&run.calls, &name));
    assert!(
        seen.iter().any(|c| categories.contains(&c.as_str())),
        "{fault}: expected one of {categories:?} in turns or calls, saw {seen:?}\n{}",
        run.output
    );
    let healthy: Vec<_> = run.turns.iter().filter(|r| r["target"] == "fixed" && !r["error"].is_null()).collect();
    assert!(healthy.is_empty(), "{fault}: the healthy target was affected: {healthy:?}");
    let t = run.summary["targets"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name.as_str()));
    let t = t.unwrap_or_else(|| panic!("{fault}: no summary for {name}\n{}", run.output));
    let counted = |k: &str| t[k].as_object().is_some_and(|m| categories.iter().any(|c| m.contains_key(*c)));
    assert!(counted("errors") || counted("call_errors"), "{fault}: summary counts {t}");
    assert!(matches!(run.code, Some(0..=2)), "{fault}: exit code {:?}\n{}", run.code, run.output);
}

/// The faults the harness survives today, one target each, in one run.
const SHARED: &[(&str, &str, &[&str])] = &[
    ("openai-realtime", "stall-after-accept", &["timeout", "connect"]),
    ("openai-realtime", "stall-without-reading", &["timeout", "connect"]),
    ("openai-realtime", "no-handshake", &["connect", "timeout"]),
    ("openai-realtime", "slowloris", &["connect", "timeout"]),
    ("openai-realtime", "http-401", &["auth"]),
    ("openai-realtime", "http-403", &["auth"]),
    ("openai-realtime", "http-429", &["rate_limit"]),
    ("openai-realtime", "http-500", &["provider_error", "connect"]),
    ("openai-realtime", "http-302", &["connect", "protocol"]),
    ("openai-realtime", "tcp-reset-mid-reply", &["disconnect"]),
    ("gemini-live", "close-1011-mid-reply", &["disconnect", "provider_error"]),
    ("openai-realtime", "malformed-json-at-setup", &["protocol"]),
    ("elevenlabs", "malformed-json-mid-reply", &["protocol"]),
    ("openai-realtime", "error-rate-limit", &["rate_limit"]),
    ("openai-realtime", "error-server", &["provider_error"]),
    ("twilio", "invalid-base64", &["protocol"]),
    ("ws-pcm", "odd-byte-length", &["protocol"]),
];

fn shared() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let _timing = timing_lock();
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        let targets: String = SHARED.iter().map(|(p, f, _)| target(p, f)).collect();
        run(&dir, &targets)
    })
}

fn shared_case(fault: &str) {
    let (_, _, cats) = SHARED.iter().find(|(_, f, _)| *f == fault).unwrap();
    check(shared(), fault, cats);
}

/// A fault in a run of its own.
fn alone(protocol: &str, fault: &str, categories: &[&str]) {
    let _timing = timing_lock();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &target(protocol, fault));
    check(&r, fault, categories);
}

macro_rules! shared_tests {
    ($($name:ident => $fault:literal),* $(,)?) => {
        $(#[test] fn $name() { shared_case($fault) })*
    };
}

#[test]
fn error_rate_limit() {
    shared_case("error-rate-limit")
}

#[test]
fn error_server() {
    shared_case("error-server")
}

shared_tests! {
    stall_after_accept => "stall-after-accept",
    stall_without_reading => "stall-without-reading",
    no_handshake => "no-handshake",
    slowloris => "slowloris",
    http_401 => "http-401",
    http_403 => "http-403",
    http_429 => "http-429",
    http_500 => "http-500",
    http_302 => "http-302",
    tcp_reset_mid_reply => "tcp-reset-mid-reply",
    close_1011_mid_reply => "close-1011-mid-reply",
    malformed_json_at_setup => "malformed-json-at-setup",
    malformed_json_mid_reply => "malformed-json-mid-reply",
    invalid_base64 => "invalid-base64",
    odd_byte_length => "odd-byte-length",
}

#[test]
fn tool_index_bomb() {
    alone("pipeline", "tool-index-bomb", &["protocol"]);
}

#[test]
fn audio_flood() {
    alone("openai-realtime", "audio-flood", &["timeout"]);
}

#[test]
fn body_20mb() {
    alone("pipeline", "body-20mb", &["protocol"]);
}

#[test]
fn unrequested_gzip() {
    alone("pipeline", "unrequested-gzip", &["protocol"]);
}

#[test]
fn oversized_message() {
    alone("openai-realtime", "oversized-message", &["protocol", "disconnect"]);
}

/// A fault name the sim does not know is refused by the scenario loader with the valid names listed; a fault a
/// protocol's sim cannot play is refused when the sim starts.
#[test]
fn unknown_and_inapplicable_faults_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        voicebench::run::bench::fixed_scenario_toml(&root().join("audio-corpus"), &target("openai-realtime", "nope"));
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let o = super::voicebench(dir.path(), &["validate", path.to_str().unwrap()]);
    let (code, out, err) = super::text(&o);
    assert_eq!(code, 2, "{out}{err}");
    assert!((out.clone() + &err).contains("stall-after-accept"), "the valid names are listed: {out}{err}");
    let r = run(dir.path(), &target("ws-pcm", "tool-index-bomb"));
    assert!(r.output.contains("does not apply to a `ws-pcm` sim"), "exit {:?}: {}", r.code, r.output);
}
