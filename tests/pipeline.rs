//! Pipeline targets end to end over real sockets: voicebench orchestrates STT → LLM → TTS against the embedded
//! pipeline sim (HTTP and WebSocket on loopback) with fixed stage times, and must measure each stage within ±3 ms of
//! its configured value, account for the TTFA with its parts, cancel in-flight requests on a barge-in, and score
//! tool calls made through streamed chat completions. Two stage mixes: OpenAI-compatible transcription (SSE) after
//! local endpointing with OpenAI speech, and Deepgram live with its own endpointing with ElevenLabs streaming TTS.

use voicebench::caller::record::TurnRecord;
use voicebench::run::bench::short_scenario_toml;
use voicebench::run::{RunOptions, RunOutcome, run};

use super::root;

const STT: f64 = 180.0;
const LLM: f64 = 350.0;
const TTS: f64 = 120.0;
const SILENCE: f64 = 500.0;

fn target(name: &str, stt: &str, mode: &str, tts: &str) -> String {
    format!(
        r#"
[[target]]
name = "{name}"
protocol = "pipeline"
sim = "fixed"
sim_options = {{ stt_delay_ms = {STT}, llm_ttft_ms = {LLM}, tts_ttfb_ms = {TTS}, token_ms = 15 }}
endpointing = {{ mode = "{mode}", silence_ms = {SILENCE}, interrupt_min_ms = 300 }}
[target.stt]
provider = "{stt}"
[target.tts]
provider = "{tts}"
"#
    )
}

/// Runs the short call against `targets`; the report directory lives as long as the returned `TempDir`.
fn run_scenario(targets: &str, calls: u32) -> (RunOutcome, voicebench::scenario::Scenario, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pipeline.toml");
    std::fs::write(&path, short_scenario_toml(&root().join("audio-corpus"), targets, "")).unwrap();
    let scenario = voicebench::scenario::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions {
        calls: Some(calls),
        concurrency: Some(4),
        out: Some(tmp.path().join("out")),
        progress: false,
        ..Default::default()
    };
    let outcome = rt.block_on(run(&scenario, &opts, &|_| {})).unwrap();
    (outcome, scenario, tmp)
}

fn close(what: &str, v: Option<f64>, want: f64, tol: f64, t: &TurnRecord) {
    let v = v.unwrap_or_else(|| panic!("{what} missing: {t:#?}"));
    assert!((v - want).abs() <= tol, "{what} = {v:.3} ms, configured {want} ms (±{tol}): {t:#?}");
}

/// Per stage, every reply's error (measured − configured): transcription (local endpointing only), LLM TTFT, TTS
/// TTFB.
fn stage_errors(o: &RunOutcome) -> Vec<(&'static str, Vec<f64>)> {
    let mut errors: Vec<(&str, Vec<f64>)> = vec![("transcription", vec![]), ("LLM TTFT", vec![]), ("TTS TTFB", vec![])];
    for t in o.turns.iter().filter(|t| t.ttfa_ms.is_some()) {
        if t.target == "pipe-http" {
            errors[0].1.push(t.stt_ms.expect("stt") - t.endpointing_ms.expect("endpointing") - STT);
        }
        errors[1].1.push(t.llm_ttft_ms.expect("llm_ttft") - LLM);
        errors[2].1.push(t.tts_ttfb_ms.expect("tts_ttfb") - TTS);
    }
    errors
}

/// Why the stages miss their bounds (median within ±3 ms, every turn within ±10 ms), if they do.
fn stages_missed(o: &RunOutcome) -> Option<String> {
    let mut missed = Vec::new();
    for (stage, mut errs) in stage_errors(o) {
        errs.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        let (median, worst) = (errs[errs.len() / 2].abs(), errs.last().unwrap().abs());
        eprintln!(
            "{stage}: |measured − configured| median {median:.2} ms, max {worst:.2} ms over {} turns",
            errs.len()
        );
        if median > 3.0 || worst > 10.0 {
            missed.push(format!("{stage}: errors {errs:?}"));
        }
    }
    (!missed.is_empty()).then(|| missed.join("; "))
}

#[test]
fn stage_times_match_the_configured_profile_and_account_for_the_ttfa() {
    let _timing = super::timing_lock();
    let targets = format!(
        "{}{}",
        target("pipe-http", "openai", "local", "openai"),
        target("pipe-dg", "deepgram", "stt", "elevenlabs")
    );
    let (o, _, _tmp) = run_scenario(&targets, 2);
    assert!(!o.interrupted);
    let failed: Vec<_> = o.turns.iter().filter(|t| t.error.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let replies: Vec<&TurnRecord> = o.turns.iter().filter(|t| t.ttfa_ms.is_some()).collect();
    assert_eq!(replies.len(), 2 * 2 * 3, "every turn of every call answered: {:#?}", o.turns);
    for t in &replies {
        let local = t.target == "pipe-http";
        // Local endpointing: the VAD's silence window, quantised by its 10 ms windows and the 20 ms frames.
        // STT endpointing: the sim's Deepgram waits the same silence, then its transcription delay.
        let e = t.endpointing_ms.expect("endpointing");
        let transcription = t.stt_ms.expect("stt") - e;
        if local {
            // The VAD hears the end of speech up to ~10 ms before the annotation does (16 kHz resampling).
            assert!((SILENCE - 12.0..SILENCE + 32.0).contains(&e), "endpointing {e}: {t:#?}");
        } else {
            assert!((SILENCE + STT - 12.0..SILENCE + STT + 42.0).contains(&e), "endpointing {e}: {t:#?}");
            close("transcription after the STT's own end of turn", Some(transcription), 0.0, 3.0, t);
        }
        // The parts account for the TTFA.
        let parts = t.tts_start_ms.unwrap() + t.tts_ttfb_ms.unwrap() + t.leading_silence_ms.unwrap();
        close("TTFA − parts", Some(t.ttfa_ms.unwrap() - parts), 0.0, 5.0, t);
        let chain = t.stt_ms.unwrap() + (t.llm_start_ms.unwrap() - t.stt_ms.unwrap()) + t.llm_ttft_ms.unwrap();
        assert!(t.tts_start_ms.unwrap() >= chain - 0.01, "TTS starts after the first token: {t:#?}");
    }
    // Per stage: every turn's error (measured − configured), the median within ±3 ms, every turn within ±10 ms. The
    // sims' timers run on a real clock, so a machine busy with the suite's other tests can make one run's requests
    // late (the sim's lateness, not the measurement's: 1.2–2.4 ms median alone, 3.6 and 4.6 once each in .ci/run on
    // 3 December): a run that misses is repeated once, and the second must hold.
    if let Some(why) = stages_missed(&o) {
        eprintln!("the stage times missed their bounds ({why}); running once more");
        let (again, _, _tmp) = run_scenario(&targets, 2);
        assert!(!again.interrupted);
        if let Some(why) = stages_missed(&again) {
            panic!("twice: {why}");
        }
    }
    // The tool turn's spoken reply comes after a tool round: a whole second LLM request.
    let tool_turns: Vec<_> = replies.iter().filter(|t| t.turn == 1).collect();
    for t in &tool_turns {
        let round = t.llm_start_ms.unwrap() - t.stt_ms.unwrap();
        assert!(round >= LLM - 3.0, "tool round {round} ms: {t:#?}");
        close("tool call", t.tool_call_ms.map(|v| v - t.stt_ms.unwrap()), LLM, 30.0, t);
    }
    // Tool calls through streamed chat completions are scored right.
    let (exp, ok) = o.turns.iter().fold((0, 0), |a, t| (a.0 + t.tools_expected, a.1 + t.tools_succeeded));
    assert_eq!((exp, ok), (8, 8), "{:#?}", o.turns);
    // The summary's stage breakdown adds up.
    for ts in &o.summary.targets {
        let b = ts.stages.as_ref().expect("a pipeline target has a stage breakdown");
        let sum: f64 = b.mean_ms.iter().map(|(_, v)| v).sum();
        assert!((sum - b.ttfa_mean_ms).abs() < 1.0 && b.max_residual_ms < 5.0, "{b:?}");
    }
}

#[test]
fn a_barge_in_cancels_the_in_flight_requests() {
    let _timing = super::timing_lock();
    let (o, scenario, _tmp) = run_scenario(&target("pipe", "openai", "local", "openai"), 2);
    // The interruption rule: the voiced span reaches 300 ms. "Oh, … actually" has a pause there, so the decision
    // waits for the voice to resume: the first voiced instant ≥ onset + 300 ms, from the corpus annotation.
    let audio = &scenario.turns[2].audio;
    let want = audio.speech_start_ms + 300.0;
    let resume = audio.pauses_ms.iter().find(|(a, b)| (*a..*b).contains(&want)).map_or(want, |(_, b)| *b);
    let expected = resume - audio.speech_start_ms;
    let barge: Vec<_> = o.turns.iter().filter(|t| t.turn == 2).collect();
    assert_eq!(barge.len(), 2);
    for t in &barge {
        // + one 10 ms VAD window and one 20 ms frame of quantisation.
        let stop = t.barge_in_stop_ms.unwrap_or_else(|| panic!("no barge-in stop: {t:#?}"));
        assert!((expected - 2.0..expected + 32.0).contains(&stop), "barge-in stop {stop}, expected {expected}: {t:#?}");
        assert_eq!(t.barge_in_failed, Some(false));
    }
    // The sim saw each call's speech request cut off mid-stream.
    let (_, truth) = o.ground_truth.get("pipe").expect("ground truth");
    let cancelled = truth.iter().filter(|g| g.status.as_deref() == Some("cancelled")).count();
    assert!(cancelled >= 2, "the sim logged {cancelled} cancelled requests: {truth:#?}");
}

/// The real local engines end to end (faster-whisper, llama-server + SmolLM2, Piper): opt-in, because they are
/// installed and started by scripts/local-engines/ (a ~14 min llama-server build the first time) and a call takes
/// a minute of real audio. Run: `scripts/local-engines/install.sh && scripts/local-engines/start.sh &&
/// cargo test --test tests -- --ignored local_engines`.
#[test]
#[ignore = "needs scripts/local-engines/start.sh (real engines on loopback)"]
fn local_engines_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = voicebench::scenario::load(&root().join("scenarios/local-pipeline.toml")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions { calls: Some(1), out: Some(tmp.path().join("out")), ..Default::default() };
    let o = rt.block_on(run(&scenario, &opts, &|_| {})).unwrap();
    let connect_errors: Vec<_> = o.calls.iter().filter(|c| c.error.is_some() && c.duration_ms == 0.0).collect();
    assert!(connect_errors.is_empty(), "are the engines up (scripts/local-engines/status.sh)? {connect_errors:#?}");
    let answered: Vec<_> = o.turns.iter().filter(|t| t.ttfa_ms.is_some()).collect();
    assert!(answered.len() >= 4, "{:#?}", o.turns);
    for t in &answered {
        for (name, v) in [("stt", t.stt_ms), ("llm_ttft", t.llm_ttft_ms), ("tts_ttfb", t.tts_ttfb_ms)] {
            assert!(v.is_some_and(|v| v > 0.0), "{name} missing: {t:#?}");
        }
    }
    let b = o.summary.targets[0].stages.as_ref().expect("a stage breakdown");
    eprintln!("real local pipeline, {} turns: {:?}, mean TTFA {:.0} ms", b.turns, b.mean_ms, b.ttfa_mean_ms);
}
