//! Measuring the harness itself: a short fixed-profile scenario, the join of what the caller measured with what
//! the embedded sim logged it did (its ground truth, on the same process clock), and `voicebench bench`, which
//! runs 1, 500, 1000 and 1500 concurrent calls, prints pacing, TTFA error, CPU and memory per call, and says at
//! which count the harness misses its targets ([`targets`]). With the sim in its own process ([`SimProcess`]) the
//! harness's CPU and memory are measured apart from the sim's.

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
    usage_of("self")
}

/// CPU time (user + system), resident and peak resident memory of process `pid` ("self" for this one), from /proc.
pub fn usage_of(pid: &str) -> Option<(Duration, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
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

/// Resets this process's peak resident memory to its current one (Linux: `5` into /proc/self/clear_refs), so a
/// level's peak is its own and not an earlier, larger level's. Best effort: elsewhere the peak is the process's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU and peak memory per call of one process over one level.
#[derive(Debug, Clone, Copy)]
pub struct PerCall {
    /// CPU time (user + system) per call, ms.
    pub cpu_ms: f64,
    /// Peak resident memory above the level's start, per call, KiB.
    pub rss_kib: f64,
}

impl PerCall {
    fn between(before: Option<(Duration, u64, u64)>, after: Option<(Duration, u64, u64)>, calls: u32) -> PerCall {
        match (before, after) {
            (Some((c0, r0, _)), Some((c1, _, h1))) => PerCall {
                cpu_ms: c1.saturating_sub(c0).as_secs_f64() * 1000.0 / calls as f64,
                rss_kib: h1.saturating_sub(r0) as f64 / 1024.0 / calls as f64,
            },
            _ => PerCall { cpu_ms: f64::NAN, rss_kib: f64::NAN },
        }
    }
}

/// One benchmark row.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// Concurrent calls.
    pub calls: u32,
    /// Pacing lateness p50 / p99 / max, ms.
    pub pacing: (f64, f64, f64),
    /// |TTFA − truth| p50 / p99 / max, ms; `None` when the sim's ground truth is not on the harness's clock (the
    /// sim in its own process).
    pub ttfa_error: Option<(f64, f64, f64)>,
    /// Turns measured.
    pub turns: usize,
    /// Turns that failed.
    pub failed: usize,
    /// The harness's process (with the sim in it, unless `sim` is set).
    pub harness: PerCall,
    /// The sim's own process, when it ran apart.
    pub sim: Option<PerCall>,
    /// Wall time of the run, s.
    pub wall_s: f64,
}

/// What the harness must hold at a number of concurrent calls on a 2-core machine (docs/bench.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Targets {
    /// Pacing lateness p99, ms.
    pub pacing_p99_ms: f64,
    /// |TTFA error| p99, ms.
    pub ttfa_error_p99_ms: f64,
    /// Peak memory per call, KiB (checked from 100 calls: below, the process's fixed size dominates).
    pub rss_kib_per_call: Option<f64>,
}

/// The targets at `calls` concurrent calls: up to 500, pacing p99 ≤ 0.5 ms; above, ≤ 2.5 ms; TTFA error p99 ≤ 2 ms
/// and ≤ 256 KiB per call throughout.
pub fn targets(calls: u32) -> Targets {
    Targets {
        pacing_p99_ms: if calls <= 500 { 0.5 } else { 2.5 },
        ttfa_error_p99_ms: 2.0,
        rss_kib_per_call: (calls >= 100).then_some(256.0),
    }
}

impl BenchRow {
    /// Why this row misses its [`targets`] (empty when it holds them): failed turns, pacing, TTFA error, memory.
    pub fn misses(&self) -> Vec<String> {
        let t = targets(self.calls);
        let mut out = Vec::new();
        if self.failed > 0 {
            out.push(format!("{} of {} turns failed", self.failed, self.turns));
        }
        if self.pacing.1.is_nan() || self.pacing.1 > t.pacing_p99_ms {
            out.push(format!("pacing p99 {:.2} ms > {} ms", self.pacing.1, t.pacing_p99_ms));
        }
        if let Some((_, p99, _)) = self.ttfa_error
            && (p99.is_nan() || p99 > t.ttfa_error_p99_ms)
        {
            out.push(format!("TTFA error p99 {p99:.2} ms > {} ms", t.ttfa_error_p99_ms));
        }
        if let Some(max) = t.rss_kib_per_call
            && self.harness.rss_kib > max
        {
            out.push(format!("{:.0} KiB per call > {max} KiB", self.harness.rss_kib));
        }
        out
    }
}

/// The bench's table: a header, one line per row, and the verdict (where the harness breaks, and why).
/// `priority` says how the harness's threads were scheduled ([`crate::caller::priority::Status::describe`]).
pub fn render(rows: &[BenchRow], sim_process: bool, ramp_up: Option<Duration>, priority: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let starts = match ramp_up {
        Some(r) if !r.is_zero() => format!("calls started evenly over {:.1} s", r.as_secs_f64()),
        _ => "calls started at once (lockstep)".to_string(),
    };
    let mut s = format!(
        "voicebench bench: fixed-profile sim (simulated) on 127.0.0.1, {cores} cores; {}; {starts}; harness at \
         {priority}\n",
        if sim_process {
            "the sim in its own process"
        } else {
            "harness and sim in one process, on runtimes of their own"
        }
    );
    let sim_cols = if sim_process { format!(" {:>12} {:>12}", "sim CPU ms", "sim KiB") } else { String::new() };
    s.push_str(&format!(
        "{:>6} {:>24} {:>26} {:>6} {:>6} {:>11} {:>12}{sim_cols} {:>6}  targets\n",
        "calls",
        "pacing p50/p99/max ms",
        "TTFA error p50/p99/max ms",
        "turns",
        "failed",
        "CPU ms/call",
        "RSS KiB/call",
        "wall s"
    ));
    for r in rows {
        let ttfa =
            r.ttfa_error.map_or("n/a (truth in the sim)".to_string(), |e| format!("{:.2}/{:.2}/{:.2}", e.0, e.1, e.2));
        let sim = r.sim.map_or(String::new(), |p| format!(" {:>12.1} {:>12.0}", p.cpu_ms, p.rss_kib));
        let misses = r.misses();
        s.push_str(&format!(
            "{:>6} {:>24} {:>26} {:>6} {:>6} {:>11.1} {:>12.0}{sim} {:>6.1}  {}\n",
            r.calls,
            format!("{:.2}/{:.2}/{:.2}", r.pacing.0, r.pacing.1, r.pacing.2),
            ttfa,
            r.turns,
            r.failed,
            r.harness.cpu_ms,
            r.harness.rss_kib,
            r.wall_s,
            if misses.is_empty() { "held".to_string() } else { format!("missed: {}", misses.join("; ")) }
        ));
    }
    match rows.iter().find(|r| !r.misses().is_empty()) {
        Some(r) => s.push_str(&format!("breaks at {} calls: {}\n", r.calls, r.misses().join("; "))),
        None => {
            if let Some(n) = rows.iter().map(|r| r.calls).max() {
                s.push_str(&format!("held every target up to {n} calls\n"));
            }
        }
    }
    let t1 = targets(500);
    let t2 = targets(1000);
    s.push_str(&format!(
        "targets: pacing p99 ≤ {} ms up to 500 calls, ≤ {} ms above; TTFA error p99 ≤ {} ms; ≤ {} KiB per call\n",
        t1.pacing_p99_ms,
        t2.pacing_p99_ms,
        t2.ttfa_error_p99_ms,
        t2.rss_kib_per_call.unwrap_or(f64::NAN)
    ));
    s
}

/// Writes the fixed scenario for `calls` into `out/bench-<calls>/` and loads it; `url` points the target at a sim
/// in another process instead of the embedded one.
fn bench_scenario(
    corpus: &Path,
    out: &Path,
    calls: u32,
    url: Option<&str>,
) -> Result<(crate::scenario::Scenario, std::path::PathBuf)> {
    let dir = out.join(format!("bench-{calls}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("scenario.toml");
    let corpus = std::path::absolute(corpus)?;
    let toml = match url {
        None => fixed_scenario_toml(&corpus, ""),
        Some(url) => short_scenario_toml(
            &corpus,
            &format!("[[target]]\nname = \"fixed\"\nprotocol = \"openai-realtime\"\nurl = {url:?}\n"),
            "",
        ),
    };
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok((crate::scenario::load(&path)?, dir))
}

/// Runs `calls` concurrent calls of the fixed scenario and measures the harness: against the embedded sim, or, with
/// `sim`, against the sim in its own process (whose CPU and memory are then measured apart).
pub async fn bench_once(
    corpus: &Path,
    out: &Path,
    calls: u32,
    sim: Option<&SimProcess>,
    ramp_up: Option<Duration>,
) -> Result<BenchRow> {
    let (scenario, dir) = bench_scenario(corpus, out, calls, sim.map(|s| s.url.as_str()))?;
    reset_peak_rss();
    let before = process_usage();
    let sim_before = sim.and_then(|s| usage_of(&s.pid()));
    let wall = Instant::now();
    let opts = RunOptions {
        calls: Some(calls),
        concurrency: Some(calls),
        out: Some(dir.join("report")),
        progress: false,
        // The bench measures the harness's pacing and memory, not the recorder's.
        record: Some(crate::caller::recording::RecordMode::None),
        ramp_up,
        ..Default::default()
    };
    let outcome = super::run(&scenario, &opts, &|_| {}).await?;
    let wall_s = wall.elapsed().as_secs_f64();
    let harness = PerCall::between(before, process_usage(), calls);
    let sim_use = sim.map(|s| PerCall::between(sim_before, usage_of(&s.pid()), calls));
    let ttfa_error = sim.is_none().then(|| {
        let j = join(&outcome, 500.0, 400.0);
        let errs: Vec<f64> = j.ttfa.iter().map(|(m, t)| (m - t).abs()).collect();
        (quantile(&errs, 0.5), quantile(&errs, 0.99), quantile(&errs, 1.0))
    });
    let p = &outcome.summary.pacing;
    Ok(BenchRow {
        calls,
        pacing: (p.p50_ms, p.p99_ms, p.max_ms),
        ttfa_error,
        turns: outcome.turns.len(),
        failed: outcome.turns.iter().filter(|t| t.error.is_some()).count(),
        harness,
        sim: sim_use,
        wall_s,
    })
}

/// The sim in its own process: `voicebench sim --port N` on the bench's fixed scenario, killed on drop.
#[derive(Debug)]
pub struct SimProcess {
    child: std::process::Child,
    /// The sim's Realtime URL, as it printed it.
    pub url: String,
}

impl SimProcess {
    /// Starts `exe sim <out>/sim.toml --port <a free port>` and waits for it to print its URL.
    pub fn spawn(exe: &Path, corpus: &Path, out: &Path) -> Result<SimProcess> {
        use std::io::BufRead as _;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join("sim.toml");
        std::fs::write(&path, fixed_scenario_toml(&std::path::absolute(corpus)?, ""))
            .with_context(|| format!("writing {}", path.display()))?;
        // A port the kernel just handed out and took back: free unless something grabs it in between.
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .context("finding a free port on 127.0.0.1 for the sim")?
            .port();
        let mut child = std::process::Command::new(exe)
            .arg("sim")
            .arg(&path)
            .args(["--port", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} sim", exe.display()))?;
        let stdout = child.stdout.take().context("the sim's stdout")?;
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        let url = line.split_whitespace().last().filter(|u| u.starts_with("ws://")).map(String::from);
        match (read, url) {
            (Ok(_), Some(url)) => Ok(SimProcess { child, url }),
            _ => {
                let _ = child.kill();
                let status = child.wait().ok();
                anyhow::bail!(
                    "`{} sim {} --port {port}` did not print its URL (it printed {:?}, exit {status:?})",
                    exe.display(),
                    path.display(),
                    line.trim()
                )
            }
        }
    }

    /// The child's process id, as /proc names it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Gate false positives: a baseline run and `trials` runs of the *same* profile with other seeds, 21 at a time (the
/// baseline in the first wave); returns how many trials the gate flags as a regression, and the reports' directories.
pub async fn gate_false_positives(
    corpus: &Path,
    out: &Path,
    trials: u32,
    calls: u32,
) -> Result<(u32, Vec<std::path::PathBuf>)> {
    // The baseline runs in the first wave, beside the trials, so that it is measured under the same load as
    // they are: run alone first, it was faster than trials run 20 at a time, and a loaded machine turned that
    // difference into false regressions. Waves of 21 runs keep the machine from saturating.
    let plans: Vec<(std::path::PathBuf, u64)> = std::iter::once((out.join("baseline"), 1))
        .chain((0..trials).map(|k| (out.join(format!("trial-{k:03}")), 1000 + k as u64)))
        .collect();
    let mut runs = Vec::new();
    for wave in plans.chunks(21) {
        runs.extend(
            futures_util::future::join_all(
                wave.iter().map(|(dir, seed)| async move { native_run(corpus, dir, calls, *seed, 1.0).await }),
            )
            .await,
        );
    }
    let mut runs = runs.into_iter();
    let base = runs.next().expect("the baseline is the first plan")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(calls: u32, pacing_p99: f64, ttfa_p99: Option<f64>, rss_kib: f64) -> BenchRow {
        BenchRow {
            calls,
            pacing: (0.2, pacing_p99, 3.0),
            ttfa_error: ttfa_p99.map(|p| (0.1, p, 2.5)),
            turns: calls as usize * 3,
            failed: 0,
            harness: PerCall { cpu_ms: 20.0, rss_kib },
            sim: None,
            wall_s: 19.0,
        }
    }

    #[test]
    fn the_first_level_that_misses_a_target_is_where_it_breaks() {
        let rows = [row(1, 0.3, Some(0.1), 6000.0), row(500, 0.45, Some(1.0), 100.0), row(1000, 2.7, Some(1.5), 90.0)];
        // One call carries the process's fixed size: its memory per call is not checked.
        assert!(rows[0].misses().is_empty() && rows[1].misses().is_empty());
        assert_eq!(rows[2].misses(), ["pacing p99 2.70 ms > 2.5 ms"]);
        let table = render(&rows, false, None, "normal priority");
        assert!(table.contains("breaks at 1000 calls: pacing p99 2.70 ms > 2.5 ms"), "{table}");
        let held = render(&rows[..2], false, None, "normal priority");
        assert!(held.contains("held every target up to 500 calls"), "{held}");
    }

    #[test]
    fn misses_name_each_target_and_failed_turns() {
        let mut r = row(500, 0.6, Some(2.1), 300.0);
        r.failed = 2;
        assert_eq!(
            r.misses(),
            [
                "2 of 1500 turns failed",
                "pacing p99 0.60 ms > 0.5 ms",
                "TTFA error p99 2.10 ms > 2 ms",
                "300 KiB per call > 256 KiB"
            ]
        );
        // A NaN (no frames paced) is a miss, not a pass.
        assert_eq!(row(500, f64::NAN, None, 10.0).misses().len(), 1);
        // Without the sim's truth the TTFA column says so rather than print a number.
        let table =
            render(&[row(500, 0.4, None, 10.0)], true, Some(std::time::Duration::from_secs(5)), "normal priority");
        assert!(table.contains("n/a (truth in the sim)") && table.contains("own process"), "{table}");
        assert!(table.contains("calls started evenly over 5.0 s"), "{table}");
        assert!(render(&[row(500, 0.4, None, 10.0)], true, None, "normal priority").contains("at once (lockstep)"));
    }
}
