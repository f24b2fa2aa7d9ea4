//! `voicebench run` end to end over real sockets: the fixed-profile sim's ground truth against what the caller
//! measured (TTFA, barge-in stop, tool calls split over many deltas), and the real summary.json against its schema.

use voicebench::run::bench::{join, quantile};
use voicebench::run::{RunOptions, run};

use super::{root, text, voicebench, write_fixed_scenario};

#[test]
fn fixed_profile_matches_ground_truth() {
    let _timing = super::timing_lock();
    let tmp = tempfile::tempdir().unwrap();
    // A second target whose every tool call carries a wrong argument: the same calls must score as failures.
    // Two more speak the telephone encoding (G.711 μ-law, 8 kHz) and the legacy beta event names.
    let wrong = r#"
[[target]]
name = "wrong-args"
protocol = "openai-realtime"
sim = "fixed"
sim_options = { reply_delay_ms = 400, tool_arg_error_rate = 1.0, interrupt_delay_ms = 100 }

[[target]]
name = "g711"
protocol = "openai-realtime"
sim = "fixed"
audio_format = "g711_ulaw"
sim_options = { reply_delay_ms = 400, interrupt_delay_ms = 100 }

[[target]]
name = "beta"
protocol = "openai-realtime"
sim = "fixed"
dialect = "beta"
sim_options = { reply_delay_ms = 400, interrupt_delay_ms = 100 }
"#;
    let path = write_fixed_scenario(tmp.path(), "fixed.toml", wrong);
    let scenario = voicebench::scenario::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions {
        calls: Some(3),
        concurrency: Some(6),
        out: Some(tmp.path().join("out")),
        progress: false,
        ..Default::default()
    };
    let outcome = rt.block_on(run(&scenario, &opts, &|_| {})).unwrap();

    assert!(!outcome.interrupted);
    assert_eq!(outcome.calls.len(), 12);
    let failed: Vec<_> = outcome.turns.iter().filter(|t| t.error.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(outcome.turns.len(), 36);

    let j = join(&outcome, 500.0, 400.0);
    // Every reply turn of every target: 3 calls × 3 turns × 4 targets.
    assert_eq!(j.ttfa.len(), 36, "{j:?}");
    let err: Vec<f64> = j.ttfa.iter().map(|(m, t)| m - t).collect();
    eprintln!("per target: {:?}", j.ttfa_by_target);
    let abs: Vec<f64> = err.iter().map(|e| e.abs()).collect();
    eprintln!(
        "TTFA − truth: p50 {:.3} ms, max {:.3} ms; detection lag {:?}",
        quantile(&abs, 0.5),
        quantile(&abs, 1.0),
        j.detection_lag
    );
    let bias = quantile(&err, 0.5);
    eprintln!(
        "TTFA bias (median signed error) {bias:.3} ms; signed error min {:.3} p10 {:.3} p90 {:.3} max {:.3}",
        quantile(&err, 0.0),
        quantile(&err, 0.1),
        quantile(&err, 0.9),
        quantile(&err, 1.0)
    );
    // The bias (the median signed error) is what the issue bounds at 0.5 ms for one call; measured 0.10–0.11 ms
    // with 6 calls in flight on an idle machine. A loaded machine widens the spread (the max), not the median.
    assert!(bias.abs() <= 0.5, "TTFA bias {bias:.3} ms: {err:?}");
    assert!(quantile(&abs, 0.5) <= 2.0, "TTFA error p50 {:.3} ms: {err:?}", quantile(&abs, 0.5));
    // Not the max: one turn delayed by a scheduling hiccup on a loaded machine says nothing about the harness's
    // truth; the strict tail is the bench's (`voicebench bench`, docs/bench.md).
    assert!(quantile(&abs, 0.9) <= 5.0, "TTFA error p90 {:.3} ms: {err:?}", quantile(&abs, 0.9));
    // The truth itself is S + D (+ the leading silence), give or take the sim's frame-quantised detection. Over the
    // telephone band the sim's VAD loses a final "s" and ends the turn up to ~110 ms early, as a real one would.
    for (target, lag) in &j.detection_lag {
        let range = if target == "g711" { -130.0..=30.0 } else { -10.0..=30.0 };
        assert!(range.contains(lag), "{target}: end-of-speech detection lag {lag} ms");
    }

    // Barge-in: the caller's stop equals the sim's speech_started (onset detection + the configured 100 ms).
    assert_eq!(j.barge_in_stop.len(), 12, "{j:?}");
    // Percentiles rather than every one of the 12: under heavy load one stop in twelve was seen ~20 ms off.
    let stop_err: Vec<f64> = j.barge_in_stop.iter().map(|(m, t)| (m - t).abs()).collect();
    assert!(quantile(&stop_err, 0.5) <= 2.0, "barge-in stop − truth (ms): {stop_err:?}");
    assert!(quantile(&stop_err, 0.75) <= 5.0, "barge-in stop − truth (ms): {stop_err:?}");
    let delay_err: Vec<f64> = j.interrupt_delay.iter().map(|d| (d - 100.0).abs()).collect();
    assert!(quantile(&delay_err, 0.5) <= 1.5, "interrupt delay − 100 ms: {delay_err:?}");
    assert!(quantile(&delay_err, 0.75) <= 3.0, "interrupt delay − 100 ms: {delay_err:?}");
    let barge: Vec<_> = outcome.turns.iter().filter(|t| t.turn == 2).collect();
    assert!(barge.iter().all(|t| t.barge_in_failed == Some(false)), "{barge:#?}");

    // Tool calls arrive in 8 (fixed) argument deltas; right arguments succeed, wrong ones do not.
    let tools = |target: &str| -> (u32, u32, u32) {
        outcome
            .turns
            .iter()
            .filter(|t| t.target == target)
            .fold((0, 0, 0), |a, t| (a.0 + t.tools_expected, a.1 + t.tools_succeeded, a.2 + t.tools_unexpected))
    };
    assert_eq!(tools("fixed"), (6, 6, 0));
    assert_eq!(tools("wrong-args"), (6, 0, 6));
    assert_eq!(tools("g711"), (6, 6, 0));
    assert_eq!(tools("beta"), (6, 6, 0));
    let summary = &outcome.summary;
    let rate = |name: &str| summary.targets.iter().find(|t| t.name == name).unwrap().tool_success_rate;
    assert_eq!(rate("fixed"), Some(1.0));
    assert_eq!(rate("wrong-args"), Some(0.0));

    // The real summary.json, against the schema, and the contract's fields.
    let text = std::fs::read_to_string(outcome.out_dir.join("summary.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let schema = super::summary::schema();
    let problems = super::summary::validate(&schema, &doc);
    assert!(problems.is_empty(), "{problems:#?}");
    let t0 = &doc["targets"][0];
    assert_eq!(t0["simulated"], true);
    for k in ["count", "p50", "p90", "p95", "p99", "p999", "max", "mean"] {
        assert!(t0["metrics"]["ttfa"][k].is_number(), "metrics.ttfa.{k}");
    }
    assert!(doc["pacing"]["p99_ms"].is_number());
    harness_watched_itself(&outcome.summary, &doc);
    for f in ["turns.csv", "turns.jsonl", "calls.csv", "histograms.hlog", "ground_truth.fixed.jsonl"] {
        assert!(outcome.out_dir.join(f).is_file(), "{f}");
    }

    // The gate on this real run: generous SLOs pass (0), tight ones fail (1), a metric with no samples fails.
    let dir = outcome.out_dir.to_str().unwrap();
    let gate = |slos: &[&str]| {
        let mut args = vec!["gate", dir];
        for s in slos {
            args.extend(["--slo", s]);
        }
        let o = super::voicebench(tmp.path(), &args);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let (code, out) = gate(&["ttfa.p95=3000ms", "barge_in_stop.p95=1000", "error_rate=0.01", "goodput=0.5"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = gate(&["ttfa.p95=500ms"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    let (code, out) = gate(&["stt.p95=100"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no stt samples"), "{out}");
}

/// Every run reports its own pacing and event-loop lag (docs/metrics.md, "The harness watches itself"), in
/// summary.json and on the terminal, and a normal run on a machine with CPU to spare is not flagged as overloaded.
fn harness_watched_itself(summary: &voicebench::report::Summary, doc: &serde_json::Value) {
    let h = summary.harness.as_ref().expect("a run has a harness section");
    eprintln!("harness: pacing {:?}, loop lag {:?}, overloaded {} {:?}", h.pacing, h.loop_lag, h.overloaded, h.reasons);
    assert_eq!(doc["harness"]["overloaded"], h.overloaded);
    assert_eq!(h.pacing.samples, summary.pacing.frames);
    assert_eq!((h.pacing.p99_ms, h.pacing.max_ms), (summary.pacing.p99_ms, summary.pacing.max_ms));
    // The monitor ran for the whole run, waking every 10 ms (a few seconds at least: ≥ 100 wake-ups).
    assert!(h.loop_lag.samples >= 100, "{:?}", h.loop_lag);
    assert!(h.loop_lag.p50_ms <= h.loop_lag.p99_ms && h.loop_lag.p99_ms <= h.loop_lag.max_ms, "{:?}", h.loop_lag);
    assert_eq!(h.overloaded, h.pacing.p99_ms > 5.0 || h.loop_lag.p99_ms > 10.0, "{h:?}");
    let text = voicebench::report::terminal_table(summary);
    assert!(text.contains("event-loop lag: p50 "), "{text}");
    assert_eq!(text.contains("OVERLOADED harness"), h.overloaded, "{text}");
    // Not flagged, unless the machine is busier than its cores (other builds, a loaded CI runner): then an
    // overloaded verdict is the truth, and the test says so rather than fail.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    if load < cores {
        assert!(!h.overloaded, "a normal run on a machine with load {load:.2} < {cores} cores: {h:?}");
    } else if h.overloaded {
        eprintln!("harness overloaded on a machine with load {load:.2} ≥ {cores} cores: {:?}", h.reasons);
    }
}

/// The gate against a baseline: a run of a profile 20 % slower is a regression; runs of the same profile with other
/// seeds are not (false-positive rate over many trials).
#[test]
fn gate_flags_a_slower_profile_and_not_noise() {
    let _timing = super::timing_lock();
    let tmp = tempfile::tempdir().unwrap();
    let corpus = root().join("audio-corpus");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let trials: u32 = std::env::var("VOICEBENCH_GATE_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let calls = 20;
    let (flagged, base) = rt.block_on(async {
        let (slow_dir, fp_dir) = (tmp.path().join("slow"), tmp.path().join("fp"));
        let slow = voicebench::run::bench::native_run(&corpus, &slow_dir, calls, 77, 1.2);
        let fp = voicebench::run::bench::gate_false_positives(&corpus, &fp_dir, trials, calls);
        let (slow, fp) = tokio::join!(slow, fp);
        let (flagged, _) = fp.unwrap();
        (flagged, slow.unwrap())
    });
    eprintln!("gate false positives: {flagged} of {trials} same-profile trials flagged");
    // The gate aims at a false-positive rate of at most 5 %. Were it exactly 5 %, 4 or more of 20 trials would be
    // flagged in 1.6 % of runs (binomial), 2 or more in 26 %: the bound allows 3 so that the test is not noise
    // itself, and still fails a gate that flags 30 % of same-profile runs 89 % of the time.
    let allowed = (trials as f64 * 0.15).ceil() as u32;
    assert!(flagged <= allowed, "{flagged} of {trials} same-profile runs flagged as regressions (allowed {allowed})");
    let baseline = tmp.path().join("fp/baseline/report");
    let opts = voicebench::gate::GateOptions { baseline: Some(baseline), ..Default::default() };
    let report = voicebench::gate::evaluate(&base.out_dir, &opts).unwrap();
    let regs: Vec<_> = report.regressions().map(|c| c.name.clone()).collect();
    assert!(
        regs.iter().any(|n| n.contains("ttfa")),
        "a 20 % slower profile must regress TTFA: {regs:?}\n{}",
        voicebench::gate::render_table(&report)
    );
}

/// Ctrl-C during a run: exit 2, and every turn measured so far is on disk with a summary marked interrupted.
/// The same run shows a connect failure recorded as a result and a real target without its key skipped.
#[test]
fn ctrl_c_keeps_results_and_failures_are_results() {
    interrupted_run_keeps_results("-INT");
}

/// SIGTERM (CI cancellation, `docker stop`, Kubernetes) acts as Ctrl-C: before, the process died with 143 and no
/// summary.
#[test]
fn sigterm_acts_as_ctrl_c() {
    interrupted_run_keeps_results("-TERM");
}

/// SIGHUP (the terminal closed) acts as Ctrl-C.
#[test]
fn sighup_acts_as_ctrl_c() {
    interrupted_run_keeps_results("-HUP");
}

/// A run whose only target cannot be reached at all exits 2 and names the target and the categories, even though
/// every call's failure is recorded as a result (before, it exited 0).
#[test]
fn a_target_whose_calls_all_fail_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let target =
        "[[target]]\nname = \"nobody-home\"\nprotocol = \"openai-realtime\"\nurl = \"ws://127.0.0.1:9/v1/realtime\"\n";
    let toml = voicebench::run::bench::short_scenario_toml(&root().join("audio-corpus"), target, "");
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, &toml).unwrap();
    let out = tmp.path().join("out");
    let (code, _, stderr) = text(&voicebench(
        tmp.path(),
        &["run", path.to_str().unwrap(), "--calls", "3", "--out", out.to_str().unwrap(), "--quiet"],
    ));
    assert_eq!(code, 2, "{stderr}\n{toml}");
    assert!(stderr.contains("target `nobody-home`: all 3 calls failed (connect 3)"), "{stderr}");
    assert!(out.join("summary.json").is_file(), "the failures are still a report");
}

/// Sends `signal` to a run once it has measured a few turns, and checks that what it measured is on disk.
fn interrupted_run_keeps_results(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let extra = r#"
[[target]]
name = "nobody-home"
protocol = "openai-realtime"
url = "ws://127.0.0.1:9/v1/realtime"

[[target]]
name = "needs-key"
protocol = "openai-realtime"
url = "wss://127.0.0.1:9/v1/realtime"
api_key_env = "VOICEBENCH_TEST_KEY_THAT_IS_NOT_SET"
"#;
    let path = write_fixed_scenario(tmp.path(), "s.toml", extra);
    let out = tmp.path().join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", path.to_str().unwrap(), "--calls", "4", "--concurrency", "8", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first turn of each call finish (about 3 s), then interrupt mid-call.
    let turns = out.join("turns.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&turns).map_or(0, |s| s.lines().count()) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("skipping target `needs-key`: VOICEBENCH_TEST_KEY_THAT_IS_NOT_SET is not set"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let rows = std::fs::read_to_string(&turns).unwrap();
    assert!(rows.lines().count() >= 3, "{rows}");
    assert!(rows.contains(",interrupted,") || rows.lines().count() >= 3);
    let calls = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    assert!(calls.lines().any(|l| l.starts_with("nobody-home,") && l.contains(",connect,")), "{calls}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let fixed = summary["targets"].as_array().unwrap().iter().find(|t| t["name"] == "fixed").unwrap();
    assert!(fixed["metrics"]["ttfa"]["count"].as_u64().unwrap() >= 1, "{fixed}");
    assert!(fixed["errors"]["interrupted"].as_u64().unwrap_or(0) >= 1, "{fixed}");
}

/// Calls start in index order: with one call in flight, `calls.csv`'s `started_ms` follows call 0 of every target
/// (in the scenario's target order), then call 1, and so on. Two fixed-profile targets, one short turn per call
/// (about 3 s). Before the dispatcher took the permits in order, one run in three started calls out of order.
#[test]
fn calls_start_in_index_order() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"name = "order"
corpus = {corpus:?}

[defaults]
calls = 3
concurrency = 1
turn_timeout_ms = 10000
seed = 7
gap_ms = 400

[[target]]
name = "first"
protocol = "openai-realtime"
sim = "fixed"
sim_options = {{ reply_delay_ms = 100, vad_silence_ms = 200 }}

[[target]]
name = "second"
protocol = "openai-realtime"
sim = "fixed"
sim_options = {{ reply_delay_ms = 100, vad_silence_ms = 200 }}

[[turn]]
utterance = "backchannel"
reply = "noted"
"#,
        corpus = root().join("audio-corpus")
    );
    let path = tmp.path().join("order.toml");
    std::fs::write(&path, toml).unwrap();
    let out = tmp.path().join("out");
    let (code, _, stderr) =
        text(&voicebench(tmp.path(), &["run", path.to_str().unwrap(), "-q", "--out", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    let mut rows = csv::Reader::from_path(out.join("calls.csv")).unwrap();
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no `{name}` in {header:?}"));
    let (target, call, started) = (col("target"), col("call"), col("started_ms"));
    let mut calls: Vec<(f64, String, u32)> = rows
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[started].parse().unwrap(), r[target].to_string(), r[call].parse().unwrap())
        })
        .collect();
    calls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let order: Vec<(String, u32)> = calls.into_iter().map(|(_, t, c)| (t, c)).collect();
    let want: Vec<(String, u32)> = (0..3).flat_map(|c| [("first".to_string(), c), ("second".to_string(), c)]).collect();
    assert_eq!(order, want, "calls by started_ms");
}

/// `voicebench sim` labels each served target with its own protocol, not all of them OpenAI Realtime.
#[test]
fn sim_prints_each_targets_protocol() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[target]]\nname = \"g\"\nprotocol = \"gemini-live\"\nsim = \"fixed\"\n";
    let scenario = write_fixed_scenario(dir.path(), "sim.toml", extra);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["sim", scenario.to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("voicebench sim starts");
    // It prints every URL before serving; fewer lines means it stopped with an error.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = stdout.lines().take(2).map(|l| l.unwrap()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines.iter().any(|l| l.starts_with("fixed (simulated, openai-realtime): ws://127.0.0.1:")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("g (simulated, gemini-live): ws://127.0.0.1:")), "{lines:?}");
}

/// SIGKILL mid-run leaves rows and `run.json` but no summary: `gate` refuses the directory and says how to recover,
/// `report` rebuilds `summary.json` from the rows (marked incomplete, its counts exactly the rows'), and the gate
/// then judges it only with `--allow-incomplete`.
#[test]
fn a_killed_run_is_recovered_from_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = voicebench::run::bench::short_scenario_toml(
        &root().join("audio-corpus"),
        voicebench::run::bench::FIXED_TARGET,
        "\"ttfa.p95\" = 5000",
    );
    let path = tmp.path().join("s.toml");
    std::fs::write(&path, toml).unwrap();
    let out = tmp.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", path.to_str().unwrap(), "--calls", "6", "--concurrency", "3", "--quiet"])
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let turns = out.join("turns.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&turns).map_or(0, |s| s.lines().count()) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("summary.json").exists(), "killed before the end");
    let dir = out.to_str().unwrap();
    let (code, _, stderr) = text(&voicebench(tmp.path(), &["gate", dir]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`voicebench report DIR` rebuilds it from the rows"), "{stderr}");

    let (code, _, stderr) = text(&voicebench(tmp.path(), &["report", dir]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rebuilt it from the rows"), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["incomplete"], true);
    assert_eq!(summary["interrupted"], true);
    let rows = std::fs::read_to_string(&turns).unwrap().lines().count() as u64;
    let fixed = &summary["targets"][0];
    let unreached = fixed["counts"]["turns_unreached"].as_u64().unwrap();
    assert_eq!(fixed["turns"].as_u64().unwrap(), rows + unreached, "{fixed}");
    let with_ttfa = std::fs::read_to_string(&turns)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ttfa_ms"].is_number())
        .count() as u64;
    assert_eq!(fixed["metrics"]["ttfa"]["count"].as_u64().unwrap(), with_ttfa, "{fixed}");
    assert!(out.join("index.html").is_file());

    let (code, _, stderr) = text(&voicebench(tmp.path(), &["gate", dir]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--allow-incomplete"), "{stderr}");
    let (code, stdout, stderr) = text(&voicebench(tmp.path(), &["gate", dir, "--allow-incomplete"]));
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(stdout.contains("ttfa") || stderr.contains("ttfa"), "{stdout}{stderr}");
}
