//! The CI gate on synthetic report directories written by the real [`Recorder`] (no sim): SLOs from
//! `summary.json` and `--slo`, a connect failure in the error rate, a baseline saved to the store and a regression
//! found against it, and the binary's exit codes, files and `$GITHUB_STEP_SUMMARY`.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use voicebench::caller::record::{CallRecord, TurnKind, TurnRecord};
use voicebench::gate::{self, CheckKind, GateOptions};
use voicebench::report::{Recorder, RunMeta, TargetMeta};
use voicebench::scenario::Slo;
use voicebench::stats::SplitMix64;
use voicebench::targets::ErrorCategory;

fn meta(slo: Vec<Slo>) -> RunMeta {
    RunMeta {
        scenario_name: "booking".into(),
        scenario_path: "scenarios/booking.toml".into(),
        scenario_sha256: "0".repeat(64),
        corpus_sha256: None,
        version: voicebench::report::VERSION.into(),
        started_at: SystemTime::now(),
        seed: 7,
        calls: 40,
        ramp_up_ms: None,
        priority: None,
        concurrency: 4,
        frame_ms: 20,
        targets: vec![TargetMeta {
            name: "sim-native".into(),
            protocol: "openai-realtime".into(),
            simulated: true,
            model: None,
            network: None,
            telephone: false,
        }],
        slo,
        shard: None,
        load: None,
    }
}

fn slos(specs: &[&str]) -> Vec<Slo> {
    specs.iter().map(|s| gate::parse_slo(s).unwrap()).collect()
}

/// Writes a report of `calls` calls × 8 turns to `dir`: TTFA around 600 ms × `shift` (per-call and per-turn
/// spread), one tool turn and one barge-in per call; call 0 fails to connect when `connect_failure`.
fn write_report(dir: &Path, slo: Vec<Slo>, calls: u32, shift: f64, seed: u64, connect_failure: bool) {
    let mut rec = Recorder::create(dir, meta(slo)).unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut spread = |sigma: f64| 1.0 + sigma * (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5);
    for call in 0..calls {
        if connect_failure && call == 0 {
            rec.record_call(&CallRecord {
                target: "sim-native".into(),
                simulated: true,
                call,
                turns_total: 8,
                error: Some(ErrorCategory::Connect),
                error_message: Some("connection refused".into()),
                ..Default::default()
            })
            .unwrap();
            continue;
        }
        let call_factor = spread(0.2);
        for turn in 0..8 {
            let ttfa = 600.0 * shift * call_factor * spread(0.5);
            let kind = match turn {
                1 => TurnKind::Tool,
                2 => TurnKind::BargeIn,
                _ => TurnKind::Plain,
            };
            rec.record_turn(&TurnRecord {
                target: "sim-native".into(),
                simulated: true,
                call,
                turn,
                kind: Some(kind),
                ttfb_ms: Some(ttfa - 20.0),
                leading_silence_ms: Some(20.0),
                ttfa_ms: Some(ttfa),
                tools_expected: u32::from(turn == 1),
                tools_succeeded: u32::from(turn == 1),
                barge_in_stop_ms: (turn == 2).then_some(300.0 * shift),
                barge_in_failed: (turn == 2).then_some(false),
                ..Default::default()
            })
            .unwrap();
        }
        rec.record_call(&CallRecord {
            target: "sim-native".into(),
            simulated: true,
            call,
            turns_total: 8,
            turns_ok: 8,
            ..Default::default()
        })
        .unwrap();
    }
    rec.finish(false).unwrap();
}

fn bin(dir: &Path, args: &[&str], store: &Path, step_summary: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_voicebench"));
    cmd.args(args).current_dir(dir).env("VOICEBENCH_BASELINES", store).env_remove("GITHUB_STEP_SUMMARY");
    if let Some(p) = step_summary {
        cmd.env("GITHUB_STEP_SUMMARY", p);
    }
    crate::text(&cmd.output().unwrap())
}

#[test]
fn gate_checks_the_scenarios_slos_from_the_raw_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let scenario = slos(&["ttfa.p95=1500", "barge_in_stop.p95=600", "tool_success_rate=0.9", "error_rate=0.05"]);
    write_report(&dir, scenario, 40, 1.0, 1, true);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["slo"]["ttfa.p95"], 1500.0);

    let r = gate::evaluate(&dir, &GateOptions::default()).unwrap();
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["ttfa.p95 <= 1500 ms", "barge_in_stop.p95 <= 600 ms", "tool_success_rate >= 0.9", "error_rate <= 0.05"]
    );
    // The gate's figures are the summary's.
    let p95 = summary["targets"][0]["metrics"]["ttfa"]["p95"].as_f64().unwrap();
    assert_eq!(r.checks[0].measured, Some(p95));
    // The call that never connected: its 8 turns count as failed, 8 of 320.
    assert_eq!(r.checks[3].measured, Some(8.0 / 320.0));
    assert!(r.passed(), "{}", gate::render_table(&r));

    // --slo overrides the scenario's SLO of the same key and adds others; a metric with no samples fails.
    let opts = GateOptions {
        slo_overrides: slos(&["error_rate=0.01", "goodput=0.99", "tool_call.p50=500ms"]),
        ..Default::default()
    };
    let r = gate::evaluate(&dir, &opts).unwrap();
    assert!(!r.passed());
    let failed: Vec<&str> = r.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["error_rate <= 0.01", "goodput >= 0.99", "tool_call.p50 <= 500 ms"]);
    let goodput = r.checks.iter().find(|c| c.kind == CheckKind::Goodput).unwrap();
    assert_eq!(goodput.measured, Some(summary_goodput(&r, &dir)));
    assert!(r.checks.last().unwrap().detail.contains("no tool_call samples for target `sim-native`"));
    assert_eq!(r.regressions().count(), 0);
}

/// Goodput under the merged SLOs: the share of turns meeting every SLO at once, counted here from turns.jsonl.
fn summary_goodput(r: &gate::GateReport, dir: &Path) -> f64 {
    let merged: Vec<Slo> = r.slo.iter().map(|(k, v)| gate::parse_slo(&format!("{k}={v}")).unwrap()).collect();
    let turns = voicebench::report::read::read_turns(&dir.join("turns.jsonl")).unwrap();
    let good = turns.iter().filter(|t| voicebench::metrics::meets_slos(t, &merged)).count();
    good as f64 / (turns.len() + 8) as f64
}

#[test]
fn a_saved_baseline_catches_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (base, same, slow) = (tmp.path().join("base"), tmp.path().join("same"), tmp.path().join("slow"));
    write_report(&base, Vec::new(), 40, 1.0, 1, false);
    write_report(&same, Vec::new(), 40, 1.0, 2, false);
    write_report(&slow, Vec::new(), 40, 1.3, 3, false);
    let saved = gate::save_baseline(&base, "main", &store).unwrap();
    assert_eq!(gate::resolve_baseline("main", &store).unwrap(), saved);

    let opts = GateOptions { baseline: Some(saved.clone()), ..Default::default() };
    let r = gate::evaluate(&same, &opts).unwrap();
    assert!(r.passed(), "{}", gate::render_table(&r));
    // ttfa, ttfb, leading_silence, barge_in_stop: p50 and p95 each.
    assert_eq!(r.checks.len(), 8, "{}", gate::render_table(&r));

    let r = gate::evaluate(&slow, &opts).unwrap();
    let regressed: Vec<&str> = r.regressions().map(|c| c.name.as_str()).collect();
    assert!(
        regressed.contains(&"regression ttfa.p50") && regressed.contains(&"regression barge_in_stop.p95"),
        "{regressed:?}"
    );
    let ttfa = r.regressions().next().unwrap().change.as_ref().unwrap();
    assert!(ttfa.ci_low > 0.05 && ttfa.p_value < 0.05, "{ttfa:?}");
    // leading_silence is 20 ms in both: no change.
    assert!(r.checks.iter().any(|c| c.name == "regression leading_silence.p50" && c.passed));
    // The same seed gives the same verdict.
    assert_eq!(gate::evaluate(&slow, &opts).unwrap(), r);
}

#[test]
fn the_binary_exits_0_1_2_and_writes_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (run, bare) = (tmp.path().join("run"), tmp.path().join("bare"));
    write_report(&run, slos(&["ttfa.p95=1500", "tool_success_rate=95%"]), 20, 1.0, 1, false);
    write_report(&bare, Vec::new(), 20, 1.0, 2, false);
    let (run_s, bare_s) = (run.to_str().unwrap(), bare.to_str().unwrap());
    let step = tmp.path().join("step-summary.md");
    let junit = tmp.path().join("junit.xml");

    let (code, out, err) = bin(tmp.path(), &["gate", run_s, "--junit", "junit.xml"], &store, Some(&step));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: all 2 check(s) passed"), "{out}");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testcase name=\"ttfa.p95 &lt;= 1500 ms\""));
    assert!(std::fs::read_to_string(&step).unwrap().starts_with("### voicebench gate: ✅ PASS"));

    let (code, out, _) = bin(tmp.path(), &["gate", run_s, "--slo", "ttfa.p95=100ms", "--json", "v.json"], &store, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL") && out.contains("breaches the SLO (at most 100 ms)"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("v.json")).unwrap()).unwrap();
    assert_eq!(v["passed"], false);

    // Nothing to check: exit 2, saying what to add.
    let (code, _, err) = bin(tmp.path(), &["gate", bare_s], &store, None);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to check") && err.contains("--save-baseline NAME"), "{err}");
    // … unless a baseline is being saved.
    let (code, _, err) = bin(tmp.path(), &["gate", bare_s, "--save-baseline", "main"], &store, None);
    assert_eq!(code, 0, "{err}");
    assert!(store.join("main/turns.jsonl").is_file());
    let (code, out, err) = bin(tmp.path(), &["gate", bare_s, "--baseline", "main", "--format", "json"], &store, None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["passed"], true);

    // A baseline name that is not saved says how to save it; a bad --slo gives a hint.
    let (code, _, err) = bin(tmp.path(), &["gate", run_s, "--baseline", "nightly"], &store, None);
    assert_eq!(code, 2);
    assert!(err.contains("voicebench gate DIR --save-baseline nightly"), "{err}");
    let (code, _, err) = bin(tmp.path(), &["gate", run_s, "--slo", "ttfx.p95=800"], &store, None);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `ttfa`"), "{err}");
    let (code, _, err) = bin(tmp.path(), &["gate", tmp.path().join("nope").to_str().unwrap()], &store, None);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
}
