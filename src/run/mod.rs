//! The runner: targets × calls, closed loop (N calls in flight), targets interleaved (call *i* of every target
//! before call *i+1*, so drift hits all of them alike), each call on its own task; the recorder is fed as turns
//! finish; Ctrl-C stops the calls in flight, records what they measured, and writes the report.

pub mod bench;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Duration, Instant};

use crate::audio::{frames::frames, read_wav, resample::resample};
use crate::caller::record::{CallRecord, TurnRecord};
use crate::caller::{CallPlan, run_call};
use crate::report::Recorder;
use crate::report::summary::Summary;
use crate::report::{RunMeta, TargetMeta};
use crate::scenario::{Scenario, Target};
use crate::sim::{GroundTruth, SimHandle};
use crate::targets::{self, ErrorCategory, Session};

/// What the command line asked for, over the scenario's defaults.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only these targets (by name); all when empty.
    pub targets: Vec<String>,
    /// Calls per target.
    pub calls: Option<u32>,
    /// Calls in flight.
    pub concurrency: Option<u32>,
    /// Report directory (default `reports/<scenario>-<UTC time>/`).
    pub out: Option<PathBuf>,
    /// Seed.
    pub seed: Option<u64>,
    /// Show progress (a bar on a terminal, lines otherwise).
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// The report directory.
    pub out_dir: PathBuf,
    /// Targets skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Every call's record.
    pub calls: Vec<CallRecord>,
    /// Every turn's record.
    pub turns: Vec<TurnRecord>,
    /// The instant the run's clock started (call records' `started_ms` count from it).
    pub run_start: Instant,
    /// Per simulated target: the sim's start instant and ground truth.
    pub ground_truth: HashMap<String, (Instant, Vec<GroundTruth>)>,
}

/// A target ready to call.
struct Prepared {
    /// The target, its URLs pointed at the embedded sim when it is simulated.
    target: Target,
    plan: Arc<CallPlan>,
}

/// The default report directory: `reports/<scenario>-<UTC yyyymmddThhmmssZ>/`.
pub fn default_out_dir(scenario: &Scenario) -> PathBuf {
    let stamp: String =
        crate::report::time::rfc3339(SystemTime::now()).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    PathBuf::from("reports").join(format!("{}-{stamp}", scenario.name))
}

/// Encodes every turn's utterance as wire frames for a target.
fn plan_for(
    scenario: &Scenario,
    target: &Target,
    cache: &mut HashMap<(PathBuf, u32), Arc<Vec<i16>>>,
) -> Result<CallPlan> {
    let rate = targets::input_rate(target);
    let f = scenario.defaults.frame_ms;
    let mut per_turn = Vec::new();
    for t in &scenario.turns {
        let key = (t.audio.path.clone(), rate);
        let samples = match cache.get(&key) {
            Some(s) => s.clone(),
            None => {
                let pcm = read_wav(&t.audio.path).with_context(|| format!("turn `{}`", t.id))?;
                let s = Arc::new(resample(&pcm, rate).samples);
                cache.insert(key, s.clone());
                s
            }
        };
        let fr = frames(&crate::audio::Pcm::new(rate, samples.to_vec()), f);
        per_turn.push(Arc::new(fr.iter().map(|x| targets::encode_frame(target, x)).collect::<Vec<_>>()));
    }
    let silence = targets::encode_frame(target, &vec![0; (rate as usize * f as usize) / 1000]);
    let mut turns = scenario.turns.clone();
    if !targets::shows_tool_calls(target) {
        // Audio-only protocols: the agent's tool calls cannot be seen, so they are not scored (n/a, not failed).
        turns.iter_mut().for_each(|t| t.tool_calls.clear());
    }
    Ok(CallPlan {
        target: target.name.get_ref().clone(),
        simulated: target.sim.is_some(),
        turns,
        tools: scenario.agent.tools.clone(),
        frames: per_turn,
        silence,
        frame_ms: f,
        turn_timeout: Duration::from_millis(scenario.defaults.turn_timeout_ms as u64),
    })
}

/// Runs a scenario. `notice` receives one-line notices (skipped targets, the report directory).
pub async fn run(scenario: &Scenario, opts: &RunOptions, notice: &(dyn Fn(&str) + Sync)) -> Result<RunOutcome> {
    let names: Vec<&str> = scenario.targets.iter().map(|t| t.name.get_ref().as_str()).collect();
    for want in &opts.targets {
        if !names.contains(&want.as_str()) {
            bail!("unknown target `{want}`; the scenario's targets are: {}", names.join(", "));
        }
    }
    let seed = opts.seed.unwrap_or(scenario.defaults.seed);
    let calls = opts.calls.unwrap_or(scenario.defaults.calls);
    let concurrency = opts.concurrency.unwrap_or(scenario.defaults.concurrency).max(1);
    if calls == 0 {
        bail!("--calls must be at least 1");
    }

    // Resolve targets: start sims, check keys, skip what cannot run (with the reason).
    let mut skipped = Vec::new();
    let mut sims: Vec<SimHandle> = Vec::new();
    let mut prepared = Vec::new();
    let mut cache = HashMap::new();
    for t in scenario.targets.iter().filter(|t| opts.targets.is_empty() || opts.targets.contains(t.name.get_ref())) {
        let name = t.name.get_ref().clone();
        let target = if t.sim.is_some() {
            match crate::sim::start(scenario, t, seed).await {
                Ok(h) => {
                    let pointed = h.point(t);
                    sims.push(h);
                    pointed
                }
                Err(e) => {
                    skipped.push((name, e.to_string()));
                    continue;
                }
            }
        } else {
            let stages = [&t.stt, &t.llm, &t.tts];
            let keys =
                t.api_key_env.iter().chain(stages.iter().filter_map(|s| s.as_ref()?.get_ref().api_key_env.as_ref()));
            let missing: Vec<&str> =
                keys.filter(|v| std::env::var_os(v.get_ref()).is_none()).map(|v| v.get_ref().as_str()).collect();
            if !missing.is_empty() {
                let verb = if missing.len() == 1 { "is" } else { "are" };
                skipped.push((name, format!("{} {verb} not set", missing.join(", "))));
                continue;
            }
            t.clone()
        };
        let plan = Arc::new(plan_for(scenario, &target, &mut cache)?);
        prepared.push(Prepared { target, plan });
    }
    for (name, why) in &skipped {
        notice(&format!("skipping target `{name}`: {why}"));
    }
    if prepared.is_empty() {
        bail!(
            "no target can run ({})",
            skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect::<Vec<_>>().join("; ")
        );
    }

    let out_dir = opts.out.clone().unwrap_or_else(|| default_out_dir(scenario));
    let mut meta = RunMeta::from_scenario(scenario).context("reading the scenario's provenance")?;
    meta.calls = calls;
    meta.concurrency = concurrency;
    meta.seed = seed;
    meta.targets = prepared.iter().map(|p| TargetMeta::from_target(&p.target)).collect();
    let mut recorder = Recorder::create(&out_dir, meta)
        .with_context(|| format!("creating the report directory {}", out_dir.display()))?;
    notice(&format!("writing to {}", out_dir.display()));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (turn_tx, mut turn_rx) = mpsc::unbounded_channel::<TurnRecord>();
    let (call_tx, mut call_rx) = mpsc::unbounded_channel::<CallRecord>();
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    let run_start = Instant::now();
    let mut rng = crate::stats::SplitMix64::new(seed ^ 0x5EED);
    let total = calls as u64 * prepared.len() as u64;
    let prepared = Arc::new(prepared);
    let scenario = Arc::new(scenario.clone());
    // Interleaved: call i of every target before call i+1. One dispatcher takes the permits in that order and
    // starts each call once it holds one, so calls start in index order (tasks spawned up front and each waiting
    // for a permit would start in whatever order the scheduler first polls them, e.g. the newest task first).
    let dispatcher = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            'dispatch: for call in 0..calls {
                for ti in 0..prepared.len() {
                    let phase =
                        Duration::from_micros((rng.next_f64() * scenario.defaults.frame_ms as f64 * 1000.0) as u64);
                    let permit = tokio::select! {
                        p = sem.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => break 'dispatch,
                        },
                        _ = async { let _ = stop.wait_for(|s| *s).await; } => break 'dispatch,
                    };
                    if *stop.borrow() {
                        break 'dispatch;
                    }
                    let (prepared, scenario, turn_tx, call_tx, stop) =
                        (prepared.clone(), scenario.clone(), turn_tx.clone(), call_tx.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move {
                        let _permit = permit;
                        let rec = one_call(&scenario, &prepared[ti], call, phase, run_start, stop, &turn_tx).await;
                        let _ = call_tx.send(rec);
                    }));
                }
            }
            // The channels close once every call has finished.
            drop((turn_tx, call_tx));
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    let mut progress = Progress::new(total, opts.progress);
    let mut interrupted = false;
    let mut all_calls = Vec::new();
    let mut all_turns = Vec::new();
    let mut turns_open = true;
    let mut calls_open = true;
    while turns_open || calls_open {
        tokio::select! {
            r = turn_rx.recv(), if turns_open => match r {
                Some(t) => {
                    progress.turn(&t);
                    recorder.record_turn(&t).context("writing a turn row")?;
                    all_turns.push(t);
                }
                None => turns_open = false,
            },
            // Turns before calls: a call's record must come after its turns'.
            r = call_rx.recv(), if calls_open && (!turns_open || turn_rx.is_empty()) => match r {
                Some(c) => {
                    progress.call(&c);
                    recorder.record_call(&c).context("writing a call row")?;
                    all_calls.push(c);
                }
                None => calls_open = false,
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                notice("interrupted: stopping the calls in flight and writing what was measured…");
                let _ = stop_tx.send(true);
            }
        }
    }
    let _ = dispatcher.await;
    progress.finish();
    let summary = recorder.finish(interrupted).context("writing the report")?;
    let mut ground_truth = HashMap::new();
    for s in sims {
        let path = out_dir.join(format!("ground_truth.{}.jsonl", s.target()));
        s.write_ground_truth(&path).with_context(|| format!("writing {}", path.display()))?;
        ground_truth.insert(s.target().to_string(), (s.started_at(), s.ground_truth()));
        s.shutdown().await;
    }
    Ok(RunOutcome {
        summary,
        out_dir,
        skipped,
        interrupted,
        calls: all_calls,
        turns: all_turns,
        run_start,
        ground_truth,
    })
}

async fn one_call(
    scenario: &Scenario,
    p: &Prepared,
    call: u32,
    phase: Duration,
    run_start: Instant,
    stop: watch::Receiver<bool>,
    turns: &mpsc::UnboundedSender<TurnRecord>,
) -> CallRecord {
    let t = Instant::now();
    let connected = targets::connect(scenario, &p.target).await;
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    match connected {
        Ok(mut session) => {
            let mut rec = run_call(&mut session, &p.plan, call, phase, run_start, stop, turns).await;
            session.close().await;
            rec.connect_ms = Some(connect_ms);
            rec
        }
        Err(e) => CallRecord {
            target: p.plan.target.clone(),
            simulated: p.plan.simulated,
            call,
            connect_ms: Some(connect_ms),
            started_ms: t.saturating_duration_since(run_start).as_secs_f64() * 1000.0,
            turns_total: p.plan.turns.len() as u32,
            error: Some(if e.category == ErrorCategory::Disconnect { ErrorCategory::Connect } else { e.category }),
            error_message: Some(e.message),
            ..Default::default()
        },
    }
}

/// Progress: an indicatif bar on a terminal (calls done, errors, live TTFA p50/p95), plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    errors: u64,
    ttfa: hdrhistogram::Histogram<u64>,
    next_line: u64,
    enabled: bool,
}

impl Progress {
    fn new(total: u64, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} calls  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Self { bar, total, done: 0, errors: 0, ttfa: crate::metrics::new_histogram(), next_line: 0, enabled }
    }

    fn status(&self) -> String {
        let q = |p: f64| {
            if self.ttfa.is_empty() {
                "–".into()
            } else {
                format!("{:.0}", self.ttfa.value_at_quantile(p) as f64 / 1000.0)
            }
        };
        format!("errors {}  TTFA p50 {} ms  p95 {} ms", self.errors, q(0.5), q(0.95))
    }

    fn turn(&mut self, t: &TurnRecord) {
        if let Some(v) = t.metric("ttfa") {
            let _ = self.ttfa.record((v * 1000.0) as u64);
        }
        if t.error.is_some() {
            self.errors += 1;
        }
    }

    fn call(&mut self, c: &CallRecord) {
        self.done += 1;
        if c.error.is_some() && c.turns_ok == 0 && c.connect_ms.is_some() && c.duration_ms == 0.0 {
            self.errors += 1;
        }
        if let Some(b) = &self.bar {
            b.set_position(self.done);
            b.set_message(self.status());
        } else if self.enabled && (self.done >= self.next_line || self.done == self.total) {
            eprintln!("[{}/{} calls] {}", self.done, self.total, self.status());
            self.next_line = self.done + (self.total / 10).max(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
