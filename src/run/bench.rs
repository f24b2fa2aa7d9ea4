//! Measuring the harness itself: a short fixed-profile scenario, the join of what the caller measured with what
//! the embedded sim logged it did (its ground truth, on the same process clock), and `voicebench bench`, which
//! runs 1, 100 and 500 concurrent calls and prints pacing, TTFA error, CPU and memory per call.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use tokio::time::{Duration, Instant};

use super::{RunOptions, RunOutcome};
use crate::sim::GroundTruthKind;

/// The `fixed`-profile target of [`fixed_scenario_toml`]: every delay exact.
pub const FIXED_TARGET: &str = r#"
[[target]]
name = "fixed"
protocol = "openai-realtime"
sim = "fixed"
sim_options = { reply_delay_ms = 400, leading_silence_ms = 0, vad_silence_ms = 500, interrupt_delay_ms = 100, tool_delay_ms = 300, tool_arg_deltas = 8 }
"#;

/// A three-turn call (greeting, a tool turn, a barge-in with a tool call) against the `fixed` sim profile: a few
/// seconds of audio per turn, every delay exact. `extra_targets` is appended verbatim (more `[[target]]`s).
pub fn fixed_scenario_toml(corpus: &Path, extra_targets: &str) -> String {
    short_scenario_toml(corpus, &format!("{FIXED_TARGET}{extra_targets}"), "")
}

/// The same three-turn call with the given `[[target]]`s and an `[slo]` table body (may be empty).
pub fn short_scenario_toml(corpus: &Path, targets: &str, slo: &str) -> String {
    format!(
        r#"name = "short-call"
corpus = {corpus:?}

[defaults]
calls = 1
concurrency = 1
turn_timeout_ms = 10000
seed = 7
gap_ms = 400

{targets}
[agent]
today = "2026-11-30"
[[agent.tool]]
name = "check_availability"
description = "Find open tables."
parameters = {{ type = "object", required = ["party_size", "date", "time"], properties = {{ party_size = {{ type = "integer" }}, date = {{ type = "string" }}, time = {{ type = "string" }} }} }}
default_result = {{ available = false }}

[[turn]]
utterance = "greeting"
reply = "noted"

[[turn]]
utterance = "request"
reply = "slots_four"
[[turn.tool_call]]
name = "check_availability"
args = {{ party_size = 4, date = {{ date = "2026-12-04" }}, time = {{ time = "19:00" }} }}

[[turn]]
utterance = "correction"
start = "after_agent_start"
delay_ms = 1000
expect = "stop"
reply = "noted"
[[turn.tool_call]]
name = "check_availability"
args = {{ party_size = 8, date = {{ date = "2026-12-04" }}, time = {{ any = true }} }}

[slo]
{slo}
"#
    )
}

/// Measured against true, per turn, ms.
#[derive(Debug, Clone, Default)]
pub struct Join {
    /// (measured TTFA, true TTFA) per reply turn.
    pub ttfa: Vec<(f64, f64)>,
    /// Target of each `ttfa` entry.
    pub ttfa_by_target: Vec<(String, f64)>,
    /// (measured barge-in stop, true stop) per barge-in turn.
    pub barge_in_stop: Vec<(f64, f64)>,
    /// True TTFA minus (VAD silence + reply delay + the reply's own audible offset): the sim's end-of-speech
    /// detection lag (frame quantisation and the 10 ms VAD windows).
    pub detection_lag: Vec<(String, f64)>,
    /// The sim's `speech_started` minus its own onset detection (the configured interrupt delay, exactly).
    pub interrupt_delay: Vec<f64>,
    /// The sim's onset detection minus the caller's scheduled onset.
    pub onset_detection_lag: Vec<f64>,
}

fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a { (b - a).as_secs_f64() * 1000.0 } else { -(a - b).as_secs_f64() * 1000.0 }
}

/// Joins a run's turn records with its sims' ground truth (by target, session id and turn index).
///
/// The true first audible instant of a reply is when the sim sent its first audio delta plus the drawn leading
/// silence (the sim trims each reply WAV to its first audible sample, so nothing else precedes it). The caller's
/// TTFA exceeds it by the loopback latency and its own overhead: that difference is the harness's error.
pub fn join(outcome: &RunOutcome, vad_silence_ms: f64, reply_delay_ms: f64) -> Join {
    let mut j = Join::default();
    for (target, (_, truth)) in outcome.ground_truth.iter() {
        // Session ids are unique within one sim, not across sims: join within the target.
        let sessions: HashMap<&str, &crate::caller::record::CallRecord> = outcome
            .calls
            .iter()
            .filter(|c| &c.target == target)
            .filter_map(|c| c.session_id.as_deref().map(|s| (s, c)))
            .collect();
        for g in truth {
            let Some(call) = sessions.get(g.session_id.as_str()) else { continue };
            let Some(turn) = outcome
                .turns
                .iter()
                .find(|t| t.target == call.target && t.call == call.call && t.turn as usize == g.turn)
            else {
                continue;
            };
            let call_t0 = outcome.run_start + Duration::from_secs_f64(call.started_ms / 1000.0);
            let eos = call_t0 + Duration::from_secs_f64(turn.user_eos_ms / 1000.0);
            let onset = call_t0 + Duration::from_secs_f64(turn.user_onset_ms / 1000.0);
            match g.kind {
                GroundTruthKind::Reply => {
                    let Some(first) = g.first_audio_at else { continue };
                    let lead = g.leading_silence_ms.unwrap_or(0.0);
                    let truth = ms_between(eos, first) + lead;
                    if let Some(m) = turn.ttfa_ms {
                        j.ttfa.push((m, truth));
                        j.ttfa_by_target.push((target.clone(), m - truth));
                    }
                    if turn.tools_expected == 0 && g.response_create_at.is_none() {
                        j.detection_lag.push((target.clone(), truth - (vad_silence_ms + reply_delay_ms + lead)));
                    }
                }
                GroundTruthKind::Interrupt => {
                    let Some(ss) = g.speech_started_at else { continue };
                    if let Some(m) = turn.barge_in_stop_ms {
                        j.barge_in_stop.push((m, ms_between(onset, ss)));
                    }
                    if let Some(o) = g.onset_at {
                        j.interrupt_delay.push(ms_between(o, ss));
                        j.onset_detection_lag.push(ms_between(onset, o));
                    }
                }
                _ => {}
            }
        }
    }
    j
}

/// `q`-quantile of unsorted values by the crate's one rule ([`crate::stats::quantile`], nearest rank); NaN when
/// there are none.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    crate::stats::quantile_unsorted(v, q)
}

/// CPU time (user + system) this process has used, and its resident and peak resident memory, from /proc.
pub fn process_usage() -> Option<(Duration, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // The kernel reports CPU time in clock ticks of 1/100 s on Linux.
    Some((Duration::from_millis(ticks * 10), kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

/// One benchmark row.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// Concurrent calls.
    pub calls: u32,
    /// Pacing lateness p50 / p99 / max, ms.
    pub pacing: (f64, f64, f64),
    /// |TTFA − truth| p50 / p99 / max, ms.
    pub ttfa_error: (f64, f64, f64),
    /// Turns measured.
    pub turns: usize,
    /// Turns that failed.
    pub failed: usize,
    /// CPU per call (harness and sim together), ms.
    pub cpu_ms_per_call: f64,
    /// Peak RSS growth per call (harness and sim together), KiB.
    pub rss_kib_per_call: f64,
    /// Wall time of the run, s.
    pub wall_s: f64,
}

/// Runs `calls` concurrent calls of the fixed scenario and measures the harness.
pub async fn bench_once(corpus: &Path, out: &Path, calls: u32) -> Result<BenchRow> {
    let dir = out.join(format!("bench-{calls}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("scenario.toml");
    std::fs::write(&path, fixed_scenario_toml(&std::path::absolute(corpus)?, ""))
        .with_context(|| format!("writing {}", path.display()))?;
    let scenario = crate::scenario::load(&path)?;
    let before = process_usage();
    let wall = Instant::now();
    let opts = RunOptions {
        calls: Some(calls),
        concurrency: Some(calls),
        out: Some(dir.join("report")),
        progress: false,
        ..Default::default()
    };
    let outcome = super::run(&scenario, &opts, &|_| {}).await?;
    let wall_s = wall.elapsed().as_secs_f64();
    let after = process_usage();
    let j = join(&outcome, 500.0, 400.0);
    let errs: Vec<f64> = j.ttfa.iter().map(|(m, t)| (m - t).abs()).collect();
    let p = &outcome.summary.pacing;
    let (cpu, rss) = match (before, after) {
        (Some((c0, _, h0)), Some((c1, _, h1))) => {
            ((c1 - c0).as_secs_f64() * 1000.0 / calls as f64, h1.saturating_sub(h0) as f64 / 1024.0 / calls as f64)
        }
        _ => (f64::NAN, f64::NAN),
    };
    Ok(BenchRow {
        calls,
        pacing: (p.p50_ms, p.p99_ms, p.max_ms),
        ttfa_error: (quantile(&errs, 0.5), quantile(&errs, 0.99), quantile(&errs, 1.0)),
        turns: outcome.turns.len(),
        failed: outcome.turns.iter().filter(|t| t.error.is_some()).count(),
        cpu_ms_per_call: cpu,
        rss_kib_per_call: rss,
        wall_s,
    })
}

/// The native-profile target used for gate trials, its latencies scaled by `slow` (1.0 = the profile's medians).
pub fn native_target(slow: f64) -> String {
    format!(
        r#"
[[target]]
name = "agent"
protocol = "openai-realtime"
sim = "native"
sim_options = {{ reply_delay_ms = {:.1}, vad_silence_ms = {:.1}, leading_silence_ms = {:.1}, tool_delay_ms = {:.1}, interrupt_delay_ms = {:.1} }}
"#,
        450.0 * slow,
        500.0 * slow,
        60.0 * slow,
        600.0 * slow,
        212.0 * slow
    )
}

/// Runs the short native-profile call `calls` times with `seed`, its latencies scaled by `slow`, into `out`.
pub async fn native_run(corpus: &Path, out: &Path, calls: u32, seed: u64, slow: f64) -> Result<RunOutcome> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("scenario.toml");
    std::fs::write(&path, short_scenario_toml(&std::path::absolute(corpus)?, &native_target(slow), ""))
        .with_context(|| format!("writing {}", path.display()))?;
    let scenario = crate::scenario::load(&path)?;
    let opts = RunOptions {
        calls: Some(calls),
        concurrency: Some(calls),
        out: Some(out.join("report")),
        seed: Some(seed),
        progress: false,
        ..Default::default()
    };
    super::run(&scenario, &opts, &|_| {}).await
}

/// Gate false positives: a baseline run, then `trials` runs of the *same* profile with other seeds, all at once;
/// returns how many trials the gate flags as a regression, and the reports' directories. Trials run 20 at a time.
pub async fn gate_false_positives(
    corpus: &Path,
    out: &Path,
    trials: u32,
    calls: u32,
) -> Result<(u32, Vec<std::path::PathBuf>)> {
    let base = native_run(corpus, &out.join("baseline"), calls, 1, 1.0).await?;
    // Waves of 20 runs at a time keep the machine from saturating (which would change the latencies measured).
    let mut runs = Vec::new();
    for wave in (0..trials).collect::<Vec<_>>().chunks(20) {
        runs.extend(
            futures_util::future::join_all(wave.iter().map(|&k| {
                let dir = out.join(format!("trial-{k:03}"));
                async move { native_run(corpus, &dir, calls, 1000 + k as u64, 1.0).await }
            }))
            .await,
        );
    }
    let mut flagged = 0;
    let mut dirs = Vec::new();
    for r in runs {
        let r = r?;
        let opts = crate::gate::GateOptions { baseline: Some(base.out_dir.clone()), ..Default::default() };
        let report = crate::gate::evaluate(&r.out_dir, &opts)?;
        if report.regressions().next().is_some() {
            flagged += 1;
        }
        dirs.push(r.out_dir);
    }
    Ok((flagged, dirs))
}
