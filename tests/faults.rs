//! The sim's fault catalogue (docs/sim.md "Faults") against the harness, over real sockets: each fault is played by
//! one simulated target beside a healthy one (`fixed`) in a `voicebench run` of the built binary with small
//! timeouts. Each test checks that the run ends within its wall-clock bound, that the fault's error category lands
//! in the faulty target's turns or calls and in summary.json, that the healthy target's call is unaffected, and the
//! exit code (0 pass, 1 gate failed, 2 error: a target all of whose calls failed is an error).
//!
//! The cheap faults share one run (one target per fault and protocol, `shared`); the key-echoing faults share the
//! canary run, whose every output is then searched for the key (`the_canary_key_appears_in_no_output`); the heavy
//! ones (a 64 MiB message, 186 s of audio, a 20 MB body) run alone, so that one of them cannot take the others down.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{root, timing_lock};

/// A run of the binary, read back.
struct Run {
    code: Option<i32>,
    /// The report directory.
    out: PathBuf,
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

/// The canary key: the env var the key-echoing targets name holds it for every run (docs/sim.md "Faults").
pub const CANARY: &str = "sk-canary-0123456789abcdef0123";
/// The variable that holds [`CANARY`].
const CANARY_VAR: &str = "VOICEBENCH_CANARY_KEY";

fn target(protocol: &str, fault: &str) -> String {
    let name = fault_target(protocol, fault);
    let echoes = fault.starts_with("key-echo-");
    if protocol == "pipeline" {
        // A key-echoing fault's stages name the key, so the client sends it and the sim can echo it.
        let stages: String = if echoes {
            ["stt", "llm", "tts"]
                .iter()
                .map(|s| format!("[target.{s}]\nprovider = \"openai\"\napi_key_env = \"{CANARY_VAR}\"\n"))
                .collect()
        } else {
            String::new()
        };
        format!(
            "\n[[target]]\nname = \"{name}\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\nsim_options = {{ fault = \"{fault}\" }}\n{stages}"
        )
    } else {
        let key = if echoes { format!("api_key_env = \"{CANARY_VAR}\"\n") } else { String::new() };
        format!(
            "\n[[target]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nsim = \"fixed\"\nsim_options = {{ fault = \"{fault}\" }}\n{key}"
        )
    }
}

/// The faulty target's name: the fault, and the protocol when the fault is played on more than one.
fn fault_target(protocol: &str, fault: &str) -> String {
    format!("f-{fault}-{protocol}")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Runs the fixed call against the healthy target and `targets` with the binary, killed past [`WALL_LIMIT`].
fn run(dir: &Path, targets: &str) -> Run {
    run_with(dir, targets, &["-q"])
}

/// [`run`] with other arguments after `--out DIR`.
fn run_with(dir: &Path, targets: &str, args: &[&str]) -> Run {
    let toml = voicebench::run::bench::fixed_scenario_toml(&root().join("audio-corpus"), targets)
        .replace("turn_timeout_ms = 10000", TIMEOUTS)
        .replace("concurrency = 1", "concurrency = 64");
    let scenario = dir.join("faults.toml");
    std::fs::write(&scenario, toml).unwrap();
    let out = dir.join("out");
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(args)
        .current_dir(dir)
        .env(CANARY_VAR, CANARY)
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
    Run { code, wall, turns: lines(&out.join("turns.jsonl")), calls, summary, output, out }
}

/// calls.csv's rows as `{"target", "error", "call", "turns_total"}` objects (the columns these tests read).
fn read_calls(path: &Path) -> Vec<Value> {
    let Ok(mut r) = csv::Reader::from_path(path) else { return Vec::new() };
    let headers = r.headers().cloned().unwrap_or_default();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(t), Some(e), Some(c), Some(n)) = (col("target"), col("error"), col("call"), col("turns_total")) else {
        return Vec::new();
    };
    r.records()
        .filter_map(Result::ok)
        .map(|rec| {
            let err = rec.get(e).filter(|x| !x.is_empty()).map_or(Value::Null, |x| Value::String(x.into()));
            let num = |i: usize| rec.get(i).and_then(|x| x.parse::<u64>().ok());
            serde_json::json!({"target": rec.get(t).unwrap_or_default(), "error": err, "call": num(c), "turns_total": num(n)})
        })
        .collect()
}

/// Checks one fault's target in a run: bounded, its category in the rows and the summary, the healthy target clean.
fn check(run: &Run, protocol: &str, fault: &str, categories: &[&str]) {
    let name = fault_target(protocol, fault);
    assert!(run.wall < WALL_LIMIT, "{fault}: the run did not end within {WALL_LIMIT:?}\n{}", run.output);
    let of = |rows: &[Value], t: &str| -> Vec<String> {
        rows.iter().filter(|r| r["target"] == t).filter_map(|r| r["error"].as_str().map(String::from)).collect()
    };
    let mut seen = of(&run.turns, &name);
    seen.extend(of(&run.calls, &name));
    assert!(
        seen.iter().any(|c| categories.contains(&c.as_str())),
        "{fault} on {protocol}: expected one of {categories:?} in turns or calls, saw {seen:?}\n{}",
        run.output
    );
    healthy_unaffected(run, fault);
    let t = summary_of(run, &name);
    let counted = |k: &str| t[k].as_object().is_some_and(|m| categories.iter().any(|c| m.contains_key(*c)));
    assert!(counted("errors") || counted("call_errors"), "{fault}: summary counts {t}");
    assert!(matches!(run.code, Some(0..=2)), "{fault}: exit code {:?}\n{}", run.code, run.output);
}

fn healthy_unaffected(run: &Run, fault: &str) {
    let healthy: Vec<_> = run.turns.iter().filter(|r| r["target"] == "fixed" && !r["error"].is_null()).collect();
    assert!(healthy.is_empty(), "{fault}: the healthy target was affected: {healthy:?}");
    assert!(
        run.turns.iter().any(|r| r["target"] == "fixed"),
        "{fault}: the healthy target has no turns\n{}",
        run.output
    );
}

fn summary_of<'a>(run: &'a Run, name: &str) -> &'a Value {
    let t = run.summary["targets"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name));
    t.unwrap_or_else(|| panic!("no summary for {name}\n{}", run.output))
}

/// Checks a fault the harness must take in its stride (a fragmented message, a key in a session id): the target's
/// turns all answered, with no error in rows or summary.
fn check_clean(run: &Run, protocol: &str, fault: &str) {
    let name = fault_target(protocol, fault);
    assert!(run.wall < WALL_LIMIT, "{fault}: the run did not end within {WALL_LIMIT:?}\n{}", run.output);
    let turns: Vec<_> = run.turns.iter().filter(|r| r["target"] == name.as_str()).collect();
    assert!(!turns.is_empty(), "{fault} on {protocol}: no turns\n{}", run.output);
    let bad: Vec<_> = turns.iter().filter(|r| !r["error"].is_null()).collect();
    assert!(bad.is_empty(), "{fault} on {protocol}: errors {bad:?}\n{}", run.output);
    let calls: Vec<_> = run.calls.iter().filter(|r| r["target"] == name.as_str()).collect();
    assert!(!calls.is_empty() && calls.iter().all(|c| c["error"].is_null()), "{fault} on {protocol}: calls {calls:?}");
    let t = summary_of(run, &name);
    let none = |k: &str| t[k].as_object().is_none_or(|m| m.is_empty());
    assert!(none("errors") && none("call_errors"), "{fault} on {protocol}: summary counts {t}");
    healthy_unaffected(run, fault);
}

/// The faults whose runs are cheap, one target each, in one run: (protocol, fault, categories; none: a clean run).
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
    ("openai-realtime", "fragmented-message", &[]),
    ("gemini-live", "fragmented-message", &[]),
    ("elevenlabs", "fragmented-message", &[]),
    ("twilio", "fragmented-message", &[]),
    ("ws-pcm", "fragmented-message", &[]),
    ("pipeline", "http-302", &["protocol"]),
    ("pipeline", "broken-chunked", &["protocol"]),
    ("pipeline", "body-cut", &["disconnect"]),
    ("pipeline", "sse-cut-mid-event", &["protocol"]),
    ("pipeline", "sse-stall", &["timeout"]),
    ("pipeline", "content-length-long", &["disconnect"]),
    ("pipeline", "content-length-short", &["protocol"]),
    ("pipeline", "head-never-ends", &["timeout"]),
];

/// The key-echoing faults, all in the canary run (with the env var holding [`CANARY`]).
const KEY_ECHO: &[(&str, &str, &[&str])] = &[
    ("openai-realtime", "key-echo-401", &["auth"]),
    ("pipeline", "key-echo-401", &["auth"]),
    ("pipeline", "key-echo-sse-error", &["provider_error", "auth"]),
    ("openai-realtime", "key-echo-error-event", &["auth", "provider_error"]),
    ("openai-realtime", "key-echo-close-reason", &["auth", "disconnect", "provider_error"]),
    ("gemini-live", "key-echo-close-reason", &["auth", "disconnect", "provider_error"]),
    ("openai-realtime", "key-echo-session-id", &[]),
    ("gemini-live", "key-echo-session-id", &[]),
    ("elevenlabs", "key-echo-session-id", &[]),
    ("openai-realtime", "key-echo-url", &["connect", "protocol"]),
    ("pipeline", "key-echo-url", &["protocol"]),
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

/// The canary run: every key-echoing fault beside the healthy target.
fn canary() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let _timing = timing_lock();
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        let targets: String = KEY_ECHO.iter().map(|(p, f, _)| target(p, f)).collect();
        run(&dir, &targets)
    })
}

fn case(run: &Run, table: &[(&str, &str, &[&str])], protocol: &str, fault: &str) {
    let (_, _, cats) = table.iter().find(|(p, f, _)| *p == protocol && *f == fault).unwrap();
    if cats.is_empty() { check_clean(run, protocol, fault) } else { check(run, protocol, fault, cats) }
}

fn shared_case(fault: &str) {
    let (protocol, _, _) = SHARED.iter().find(|(_, f, _)| *f == fault).unwrap();
    case(shared(), SHARED, protocol, fault);
}

/// A fault in a run of its own.
fn alone(protocol: &str, fault: &str, categories: &[&str]) {
    let _timing = timing_lock();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &target(protocol, fault));
    check(&r, protocol, fault, categories);
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

/// A fault played on several protocols (or a second one): each protocol's target in the shared run.
macro_rules! protocol_tests {
    ($run:ident, $table:ident: $($name:ident => $protocol:literal $fault:literal),* $(,)?) => {
        $(#[test] fn $name() { case($run(), $table, $protocol, $fault) })*
    };
}

protocol_tests! { shared, SHARED:
    fragmented_message_openai_realtime => "openai-realtime" "fragmented-message",
    fragmented_message_gemini_live => "gemini-live" "fragmented-message",
    fragmented_message_elevenlabs => "elevenlabs" "fragmented-message",
    fragmented_message_twilio => "twilio" "fragmented-message",
    fragmented_message_ws_pcm => "ws-pcm" "fragmented-message",
    http_302_pipeline => "pipeline" "http-302",
    broken_chunked => "pipeline" "broken-chunked",
    body_cut => "pipeline" "body-cut",
    sse_cut_mid_event => "pipeline" "sse-cut-mid-event",
    sse_stall => "pipeline" "sse-stall",
    content_length_long => "pipeline" "content-length-long",
    content_length_short => "pipeline" "content-length-short",
    head_never_ends => "pipeline" "head-never-ends",
}

protocol_tests! { canary, KEY_ECHO:
    key_echo_401_openai_realtime => "openai-realtime" "key-echo-401",
    key_echo_401_pipeline => "pipeline" "key-echo-401",
    key_echo_sse_error => "pipeline" "key-echo-sse-error",
    key_echo_error_event => "openai-realtime" "key-echo-error-event",
    key_echo_close_reason_openai_realtime => "openai-realtime" "key-echo-close-reason",
    key_echo_close_reason_gemini_live => "gemini-live" "key-echo-close-reason",
    key_echo_session_id_openai_realtime => "openai-realtime" "key-echo-session-id",
    key_echo_session_id_gemini_live => "gemini-live" "key-echo-session-id",
    key_echo_session_id_elevenlabs => "elevenlabs" "key-echo-session-id",
    key_echo_url_openai_realtime => "openai-realtime" "key-echo-url",
    key_echo_url_pipeline => "pipeline" "key-echo-url",
}

/// Issue 15 item 2: with the canary key in the env var the targets name, every key-echoing fault (and the healthy
/// target beside them) runs, and neither the key nor any 12-byte part of it appears in any file of the report
/// directory (rows, summary, pages, plots, ground truth, logs) or in the process's stdout and stderr.
#[test]
fn the_canary_key_appears_in_no_output() {
    let r = canary();
    let needles: Vec<&[u8]> = CANARY.as_bytes().windows(12).collect();
    let leaks = |what: &str, body: &[u8]| {
        for n in &needles {
            assert!(
                !body.windows(n.len()).any(|w| w == *n),
                "{what} holds `{}` of the canary key:\n{}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(body).chars().take(4000).collect::<String>()
            );
        }
    };
    leaks("stdout/stderr", r.output.as_bytes());
    let mut files = Vec::new();
    let mut dirs = vec![r.out.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { dirs.push(p) } else { files.push(p) }
        }
    }
    for p in &files {
        leaks(&p.display().to_string(), &std::fs::read(p).unwrap());
    }
    let names: Vec<String> = files.iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    for want in ["turns.jsonl", "turns.csv", "calls.csv", "summary.json"] {
        assert!(names.iter().any(|n| n == want), "the report has no {want}: {names:?}");
    }
    // The faults did reach the key: the echoing targets' calls were made with it.
    assert!(r.turns.iter().any(|t| t["target"] == "f-key-echo-session-id-openai-realtime"), "{}", r.output);
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
    let r = run(dir.path(), &target("pipeline", "fragmented-message"));
    assert!(r.output.contains("does not apply to a `pipeline` sim"), "exit {:?}: {}", r.code, r.output);
}

/// One source of counts (issue 15, row 4): calls whose connection is reset mid-frame while others run beside them
/// give the same turn count, error count and error rate in turns.jsonl, summary.json, the terminal and the gate,
/// run after run (before, summary.json counted 5 turns where turns.jsonl had 4, the terminal said 50 %, `gate` 33 %).
#[test]
fn counts_agree_across_outputs_when_calls_close_mid_frame() {
    let _t = timing_lock();
    let name = fault_target("openai-realtime", "tcp-reset-mid-reply");
    for round in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let r = run_with(tmp.path(), &target("openai-realtime", "tcp-reset-mid-reply"), &["--calls", "4"]);
        let ctx = format!("round {round}\n{}", r.output);
        let rows: Vec<&Value> = r.turns.iter().filter(|t| t["target"] == name.as_str()).collect();
        let calls: Vec<&Value> = r.calls.iter().filter(|c| c["target"] == name.as_str()).collect();
        assert_eq!(calls.len(), 4, "calls.csv\n{ctx}");
        // Attempted turns, from the rows (docs/metrics.md): every turn row, plus the turns a failed call never
        // reached (its turns_total less its rows), which count as failed under the call's category.
        let unreached: usize = calls
            .iter()
            .filter(|c| !c["error"].is_null())
            .map(|c| {
                let had = rows.iter().filter(|t| t["call"] == c["call"]).count();
                (c["turns_total"].as_u64().unwrap() as usize).saturating_sub(had)
            })
            .sum();
        let attempted = rows.len() + unreached;
        let failed = rows.iter().filter(|t| !t["error"].is_null()).count() + unreached;
        assert!(failed > 0, "no turn failed: the fault did not play\n{ctx}");
        let t = summary_of(&r, &name);
        assert_eq!(
            t["turns"].as_u64(),
            Some(attempted as u64),
            "summary turns vs the rows: {t}\nturn rows {rows:?}\ncalls {calls:?}\n{ctx}"
        );
        let counted: u64 = t["errors"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        assert_eq!(counted, failed as u64, "summary errors vs failed rows: {t}\n{ctx}");
        let rate = failed as f64 / attempted as f64;
        assert!((t["error_rate"].as_f64().unwrap() - rate).abs() < 1e-9, "summary error_rate {t}\n{ctx}");
        let terminal = format!("({failed}/{attempted} turns");
        assert!(r.output.contains(&terminal), "the terminal does not say {terminal}\n{ctx}");
        let json = tmp.path().join("gate.json");
        let gate = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
            .args(["gate", r.out.to_str().unwrap(), "--slo", "error_rate=1.0", "--json", json.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(gate.status.code().is_some_and(|c| c <= 1), "gate: {}", String::from_utf8_lossy(&gate.stderr));
        let verdict: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let check = verdict["checks"].as_array().unwrap().iter().find(|c| c["target"] == name.as_str()).unwrap();
        assert!((check["measured"].as_f64().unwrap() - rate).abs() < 1e-9, "gate error rate {check}\n{ctx}");
    }
}
