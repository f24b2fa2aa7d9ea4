//! The sim's fault catalogue (docs/sim.md "Faults") against the harness, over real sockets: each fault is played by
//! one simulated target beside a healthy one (`fixed`) in a `voicebench run` of the built binary with small
//! timeouts. Each test checks that the run ends within its wall-clock bound and each faulty call within its own,
//! that the run's peak memory stays bounded, that the fault's error category lands
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
    /// The process's peak resident memory (VmHWM, read while it ran), KiB.
    peak_kib: u64,
}

/// The small timeouts every fault run uses, ms. The turn timeout leaves the healthy target's replies (~3.0 s from
/// the caller's end of speech to the end of the reply's audio) 2 s of slack: at 3000 ms one of them ran 21 ms past it
/// while five sims built 64 MiB messages beside it, and the healthy call failed.
const TIMEOUTS: &str =
    "turn_timeout_ms = 5000\nconnect_timeout_ms = 2000\nfirst_byte_timeout_ms = 3000\nidle_timeout_ms = 2000";

/// The bound of one faulty call, from its row: the three turns' audio (~19 s) and the timeouts above; a fault that
/// held a call past its timeouts breaks it.
const CALL_LIMIT_MS: f64 = 30_000.0;

/// The bound of a fault run's peak memory (VmHWM), harness and sims together, KiB, for the heavy faults that run
/// alone, about twice what this debug build measured (in brackets); the shared runs (~90 and ~20 targets, each with
/// its own sim: 300 MB and 87 MB measured) are held to 512 MiB. These catch runaway growth (the index bomb's 4.8 GB
/// Vec, a 20 MB body copied per row, 64 MiB messages buffered per wire), not a few MB.
fn mem_limit_kib(fault: &str) -> u64 {
    let mib = match fault {
        "tool-index-bomb" | "unrequested-gzip" => 64, // [27, 28 MB]
        "body-20mb" => 160,                           // [68 MB]: the 20 MB body, cut at 16 MiB, and the sim's copy
        "audio-flood" => 192,                         // [83 MB for five wires]
        _ => 512,                                     // oversized-message: [310 MB]: five 64 MiB messages in the sims
    };
    mib * 1024
}

/// The wall-clock bound of a whole fault run, past which the process is killed: the calls (each within
/// [`CALL_LIMIT_MS`]), then the report and pages of up to ~90 targets in a debug build, with slack for a loaded
/// machine (the shared run takes ~20 s alone, and past 60 s beside another test suite).
const WALL_LIMIT: Duration = Duration::from_secs(150);

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
    // The pipes are drained while the child runs: a terminal table of ~90 targets is more than a pipe holds, and
    // a child blocked on a full pipe would look like a hung run.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let code = loop {
        // VmHWM only grows, so the last reading before the exit is the peak but for the final 100 ms.
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().as_deref().and_then(vm_hwm_kib) {
            peak_kib = peak_kib.max(kib);
        }
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
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let output = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    let calls = read_calls(&out.join("calls.csv"));
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    Run { code, wall, turns: lines(&out.join("turns.jsonl")), calls, summary, output, out, peak_kib }
}

/// The `VmHWM` line of /proc/PID/status, KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// calls.csv's rows as `{"target", "error", "call", "turns_total", "duration_ms"}` objects (the columns these tests
/// read).
fn read_calls(path: &Path) -> Vec<Value> {
    let Ok(mut r) = csv::Reader::from_path(path) else { return Vec::new() };
    let headers = r.headers().cloned().unwrap_or_default();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(t), Some(e), Some(c), Some(n), Some(d)) =
        (col("target"), col("error"), col("call"), col("turns_total"), col("duration_ms"))
    else {
        return Vec::new();
    };
    r.records()
        .filter_map(Result::ok)
        .map(|rec| {
            let err = rec.get(e).filter(|x| !x.is_empty()).map_or(Value::Null, |x| Value::String(x.into()));
            let num = |i: usize| rec.get(i).and_then(|x| x.parse::<u64>().ok());
            let duration = rec.get(d).and_then(|x| x.parse::<f64>().ok());
            serde_json::json!({"target": rec.get(t).unwrap_or_default(), "error": err, "call": num(c),
                "turns_total": num(n), "duration_ms": duration})
        })
        .collect()
}

/// Checks one fault's target in a run: bounded, its category in the rows and the summary, the healthy target clean.
fn check(run: &Run, protocol: &str, fault: &str, categories: &[&str]) {
    let name = fault_target(protocol, fault);
    assert!(run.wall < WALL_LIMIT, "{fault}: the run did not end within {WALL_LIMIT:?}\n{}", run.output);
    let limit = mem_limit_kib(fault);
    assert!(run.peak_kib > 0 && run.peak_kib < limit, "{fault}: peak memory {} KiB > {limit} KiB", run.peak_kib);
    let of = |rows: &[Value], t: &str| -> Vec<String> {
        rows.iter().filter(|r| r["target"] == t).filter_map(|r| r["error"].as_str().map(String::from)).collect()
    };
    let long: Vec<_> = run
        .calls
        .iter()
        .filter(|c| c["target"] == name.as_str() && c["duration_ms"].as_f64().is_none_or(|d| d > CALL_LIMIT_MS))
        .collect();
    assert!(long.is_empty(), "{fault} on {protocol}: calls not ended within {CALL_LIMIT_MS} ms: {long:?}");
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
    let limit = mem_limit_kib(fault);
    assert!(run.peak_kib > 0 && run.peak_kib < limit, "{fault}: peak memory {} KiB > {limit} KiB", run.peak_kib);
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

/// The WebSocket protocols: every WebSocket fault is played on each of them unless the sim refuses it there.
const WS: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs", "twilio", "ws-pcm"];
/// The WebSocket protocols whose clients present a key (Twilio's Media Streams carry none); also those whose audio is
/// PCM16, where an odd byte length is broken (Twilio's is μ-law, a byte a sample).
const KEYED_WS: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs", "ws-pcm"];
/// The WebSocket protocols that carry base64 audio (ws-pcm's is raw binary).
const BASE64_WS: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs", "twilio"];
/// The WebSocket protocols whose clients keep a session id from the server.
const SESSION_WS: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs"];
const OPENAI: &[&str] = &["openai-realtime"];
const PIPELINE: &[&str] = &["pipeline"];
const WS_AND_PIPELINE: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs", "twilio", "ws-pcm", "pipeline"];
const KEYED: &[&str] = &["openai-realtime", "gemini-live", "elevenlabs", "ws-pcm", "pipeline"];

/// A row of a fault table: the fault, the categories it may be recorded as (none: the run must be clean), and every
/// protocol it applies to (`sim::fault`'s refusals say which do not, and why).
type Case = (&'static str, &'static [&'static str], &'static [&'static str]);

/// The faults whose runs are cheap, one target per fault and protocol, all in one run.
const SHARED: &[Case] = &[
    ("stall-after-accept", &["timeout", "connect"], WS),
    ("stall-without-reading", &["timeout", "connect"], WS),
    ("no-handshake", &["connect", "timeout"], WS),
    ("slowloris", &["connect", "timeout"], WS),
    ("http-401", &["auth"], WS),
    ("http-403", &["auth"], WS),
    ("http-429", &["rate_limit"], WS),
    ("http-500", &["provider_error", "connect"], WS),
    ("http-302", &["connect", "protocol"], WS_AND_PIPELINE),
    ("tcp-reset-mid-reply", &["disconnect"], WS),
    ("close-1011-mid-reply", &["disconnect", "provider_error"], WS),
    ("malformed-json-at-setup", &["protocol"], WS),
    ("malformed-json-mid-reply", &["protocol"], WS),
    ("error-rate-limit", &["rate_limit"], OPENAI),
    ("error-server", &["provider_error"], OPENAI),
    ("invalid-base64", &["protocol"], BASE64_WS),
    ("odd-byte-length", &["protocol"], KEYED_WS),
    ("fragmented-message", &[], WS),
    ("broken-chunked", &["protocol"], PIPELINE),
    ("body-cut", &["disconnect"], PIPELINE),
    ("sse-cut-mid-event", &["protocol"], PIPELINE),
    ("sse-stall", &["timeout"], PIPELINE),
    ("content-length-long", &["disconnect"], PIPELINE),
    ("content-length-short", &["protocol"], PIPELINE),
    ("head-never-ends", &["timeout"], PIPELINE),
];

/// The key-echoing faults, all in the canary run (with the env var holding [`CANARY`]).
const KEY_ECHO: &[Case] = &[
    ("key-echo-401", &["auth"], KEYED),
    ("key-echo-sse-error", &["provider_error", "auth"], PIPELINE),
    ("key-echo-error-event", &["auth", "provider_error"], OPENAI),
    ("key-echo-close-reason", &["auth", "disconnect", "provider_error"], KEYED_WS),
    ("key-echo-session-id", &[], SESSION_WS),
    ("key-echo-url", &["connect", "protocol"], KEYED),
];

/// The faults that run alone (a 64 MiB message, 186 s of audio, a 20 MB body): one run per fault, with a target
/// for each protocol it applies to.
const ALONE: &[Case] = &[
    ("tool-index-bomb", &["protocol"], PIPELINE),
    ("audio-flood", &["timeout"], WS),
    ("body-20mb", &["protocol"], PIPELINE),
    ("unrequested-gzip", &["protocol"], PIPELINE),
    ("oversized-message", &["protocol", "disconnect"], WS),
];

/// Every target of a table, as scenario text.
fn targets_of(table: &[Case]) -> String {
    table.iter().flat_map(|(f, _, ps)| ps.iter().map(move |p| target(p, f))).collect()
}

fn shared() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let _timing = timing_lock();
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        run(&dir, &targets_of(SHARED))
    })
}

/// The canary run: every key-echoing fault beside the healthy target.
fn canary() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let _timing = timing_lock();
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        run(&dir, &targets_of(KEY_ECHO))
    })
}

/// Checks `fault` on every protocol its table row names (each protocol's target checked, every failure listed).
fn case(run: &Run, table: &[Case], fault: &str) {
    let (_, cats, protocols) = table.iter().find(|(f, _, _)| *f == fault).unwrap();
    let failed: Vec<String> = protocols
        .iter()
        .filter_map(|p| {
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if cats.is_empty() { check_clean(run, p, fault) } else { check(run, p, fault, cats) }
            }));
            checked.err().map(|e| {
                let msg =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                format!("{p}: {}", msg.unwrap_or_default())
            })
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{fault} failed on {} of {} protocols:\n{}",
        failed.len(),
        protocols.len(),
        failed.join("\n")
    );
}

/// A fault in a run of its own, a target for each protocol it applies to.
fn alone(fault: &str) {
    let _timing = timing_lock();
    let dir = tempfile::tempdir().unwrap();
    let row = ALONE.iter().find(|(f, _, _)| *f == fault).unwrap();
    let r = run(dir.path(), &targets_of(std::slice::from_ref(row)));
    case(&r, ALONE, fault);
}

/// One test per fault run alone.
macro_rules! fault_tests_alone {
    ($($name:ident => $fault:literal),* $(,)?) => {
        $(#[test] fn $name() { alone($fault) })*
    };
}

/// One test per fault, each checking every protocol the fault applies to.
macro_rules! fault_tests {
    ($run:ident, $table:ident: $($name:ident => $fault:literal),* $(,)?) => {
        $(#[test] fn $name() { case($run(), $table, $fault) })*
    };
}

fault_tests! { shared, SHARED:
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
    error_rate_limit => "error-rate-limit",
    error_server => "error-server",
    invalid_base64 => "invalid-base64",
    odd_byte_length => "odd-byte-length",
    fragmented_message => "fragmented-message",
    broken_chunked => "broken-chunked",
    body_cut => "body-cut",
    sse_cut_mid_event => "sse-cut-mid-event",
    sse_stall => "sse-stall",
    content_length_long => "content-length-long",
    content_length_short => "content-length-short",
    head_never_ends => "head-never-ends",
}

fault_tests! { canary, KEY_ECHO:
    key_echo_401 => "key-echo-401",
    key_echo_sse_error => "key-echo-sse-error",
    key_echo_error_event => "key-echo-error-event",
    key_echo_close_reason => "key-echo-close-reason",
    key_echo_session_id => "key-echo-session-id",
    key_echo_url => "key-echo-url",
}

/// Every fault the sim knows is in one of the tables, on exactly the protocols whose sims play it.
#[test]
fn the_tables_cover_every_fault_on_every_protocol_that_plays_it() {
    let all: Vec<&Case> = SHARED.iter().chain(KEY_ECHO).chain(ALONE).collect();
    for fault in voicebench::scenario::schema::SimFault::ALL {
        let name = fault.name();
        let row = all.iter().find(|(f, _, _)| *f == name).unwrap_or_else(|| panic!("fault {name} is in no table"));
        let mut tested: Vec<&str> = row.2.to_vec();
        tested.sort_unstable();
        let mut plays: Vec<&str> = voicebench::sim::protocols_playing(fault).iter().map(|p| p.as_str()).collect();
        plays.sort_unstable();
        assert_eq!(tested, plays, "{name}: tested on {tested:?}, played by {plays:?}");
    }
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

fault_tests_alone! {
    tool_index_bomb => "tool-index-bomb",
    audio_flood => "audio-flood",
    body_20mb => "body-20mb",
    unrequested_gzip => "unrequested-gzip",
    oversized_message => "oversized-message",
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
