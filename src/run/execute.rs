//! The run's second stage: a resolved [`RunPlan`] run. One dispatcher starts the calls, interleaved (call *i* of
//! every target before call *i+1*) and closed loop (`concurrency` in flight), each on its own task; the event loop
//! feeds the recorder and the progress as turns and calls finish, and Ctrl-C stops the calls in flight; a lag
//! monitor measures how far behind the event loop runs; then the report is finished and the sims' ground truth
//! written.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::{Duration, Instant};

use super::RunOutcome;
use super::load::{Load, LoadOutcome};
use super::plan::{Prepared, RunPlan};
use super::progress::Progress;
use crate::caller::record::{CallRecord, TurnRecord};
use crate::caller::run_call;
use crate::metrics::Distribution;
use crate::model::Shard;
use crate::report::Recorder;
use crate::scenario::Scenario;
use crate::targets::{self, ErrorCategory, Session};

/// What the dispatcher needs: the calls to start and where their records go.
struct Dispatch {
    scenario: Arc<Scenario>,
    prepared: Arc<Vec<Prepared>>,
    calls: u32,
    load: Option<Load>,
    run_seed: u64,
    shard: Shard,
    concurrency: u32,
    ramp_up: Option<Duration>,
    seed: u64,
    run_start: Instant,
    stop: watch::Receiver<bool>,
    turn_tx: mpsc::UnboundedSender<TurnRecord>,
    call_tx: mpsc::UnboundedSender<CallRecord>,
}

/// What the event loop gathered.
struct Collected {
    calls: Vec<CallRecord>,
    turns: Vec<TurnRecord>,
    interrupted: bool,
    /// A second signal came: the calls still in flight are abandoned.
    forced: bool,
}

impl RunPlan {
    /// Runs the plan: every target × `calls`, the records written as they come; then the report finished, the
    /// sims' ground truth written and the sims shut down. `notice` receives one-line notices (Ctrl-C).
    pub async fn execute(self, notice: &(dyn Fn(&str) + Sync)) -> Result<RunOutcome> {
        let RunPlan {
            scenario,
            prepared,
            sims,
            skipped,
            calls,
            load,
            run_seed,
            shard,
            concurrency,
            ramp_up,
            seed,
            progress,
            out_dir,
            mut recorder,
        } = self;
        let redactor = scenario.redactor.clone();
        let recordings = prepared.first().map(|p| p.recordings.clone());
        let transcriber = prepared.first().and_then(|p| p.transcriber.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let (turn_tx, turn_rx) = mpsc::unbounded_channel::<TurnRecord>();
        let (call_tx, call_rx) = mpsc::unbounded_channel::<CallRecord>();
        let run_start = Instant::now();
        let total = u64::from(shard.calls_of(calls)) * prepared.len() as u64;
        let (lag_done, lag_rx) = oneshot::channel();
        let lag_monitor = tokio::spawn(monitor_loop_lag(lag_rx));
        let dispatcher = tokio::spawn(dispatch(Dispatch {
            scenario,
            prepared,
            calls,
            load,
            run_seed,
            shard,
            concurrency,
            ramp_up,
            seed,
            run_start,
            stop: stop_rx,
            turn_tx,
            call_tx,
        }));
        let mut progress = Progress::new(total, progress);
        let collected = collect(&mut recorder, turn_rx, call_rx, &stop_tx, &mut progress, notice).await?;
        if collected.forced {
            // Dropping the dispatcher's task set aborts every call still in flight.
            dispatcher.abort();
        }
        if let Ok(Some(o)) = dispatcher.await {
            recorder.record_load(o.intended, o.started, o.late, o.dropped, &o.start_lateness);
        }
        progress.finish();
        let _ = lag_done.send(());
        if let Ok(lag) = lag_monitor.await {
            recorder.record_loop_lag(&lag);
        }

        let summary = recorder.finish(collected.interrupted).context("writing the report")?;
        for problem in recordings.map(|r| r.finish()).unwrap_or_default() {
            notice(&format!("recording not written: {problem}"));
        }
        if let Some(tr) = &transcriber {
            let failed = tr.failed.load(std::sync::atomic::Ordering::Relaxed);
            if failed > 0 {
                notice(&format!(
                    "transcribe: {failed} repl{} could not be transcribed (their heard_text is empty): {}",
                    if failed == 1 { "y" } else { "ies" },
                    tr.first_error().unwrap_or_default()
                ));
            }
        }
        let mut ground_truth = HashMap::new();
        for s in sims {
            let path = out_dir.join(format!("ground_truth.{}.jsonl", s.target()));
            s.write_ground_truth(&path, &redactor).with_context(|| format!("writing {}", path.display()))?;
            ground_truth.insert(s.target().to_string(), (s.started_at(), s.ground_truth()));
            s.shutdown().await;
        }
        Ok(RunOutcome {
            summary,
            out_dir,
            skipped,
            interrupted: collected.interrupted,
            calls: collected.calls,
            turns: collected.turns,
            run_start,
            ground_truth,
        })
    }
}

/// Starts the calls. Interleaved: call i of every target before call i+1. One dispatcher takes the permits in that
/// order and starts each call once it holds one, so calls start in index order (tasks spawned up front and each
/// waiting for a permit would start in whatever order the scheduler first polls them, e.g. the newest task first).
/// Returns once every call it started has finished; the record channels close then. An open loop goes to
/// [`dispatch_open`].
async fn dispatch(d: Dispatch) -> Option<LoadOutcome> {
    if d.load.is_some() {
        return Some(dispatch_open(d).await);
    }
    let Dispatch {
        scenario,
        prepared,
        calls,
        shard,
        concurrency,
        ramp_up,
        seed,
        run_start,
        mut stop,
        turn_tx,
        call_tx,
        ..
    } = d;
    // With a ramp-up, the i-th call of the n this process starts waits until i/n of it has passed.
    let n = u64::from(shard.calls_of(calls)) * prepared.len() as u64;
    let mut started = 0u64;
    let sem = Arc::new(Semaphore::new(concurrency as usize));
    let mut rng = crate::stats::SplitMix64::new(seed ^ 0x5EED);
    // Finished calls are reaped as the dispatcher goes, so memory follows the calls in flight, not `--calls`.
    let mut tasks = tokio::task::JoinSet::new();
    // A shard runs every `count`th call, keeping the whole run's call indices.
    'dispatch: for call in (0..calls).filter(|c| shard.includes(*c)) {
        for ti in 0..prepared.len() {
            let phase = Duration::from_micros((rng.next_f64() * scenario.defaults.frame_ms as f64 * 1000.0) as u64);
            if let Some(r) = ramp_up {
                let due = run_start + r.mul_f64(started as f64 / n.max(1) as f64);
                started += 1;
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => break 'dispatch,
                }
            }
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
            tasks.spawn(async move {
                let _permit = permit;
                let rec = one_call(&scenario, &prepared[ti], call, phase, run_start, stop, &turn_tx).await;
                let _ = call_tx.send(rec);
            });
            while tasks.try_join_next().is_some() {}
        }
    }
    // The channels close once every call has finished.
    drop((turn_tx, call_tx));
    while tasks.join_next().await.is_some() {}
    None
}

/// The open loop (`super::load`): arrival *k* of the schedule, in this shard's slice, starts call *k* of every
/// target at its intended instant, if a slot is free in time. Each call's phase is drawn from its own seed, so it
/// does not depend on which calls were dropped.
async fn dispatch_open(d: Dispatch) -> LoadOutcome {
    let Dispatch { scenario, prepared, load, run_seed, shard, seed, run_start, stop, turn_tx, call_tx, .. } = d;
    let load = load.expect("an open loop has a load");
    let frame_us = scenario.defaults.frame_ms as f64 * 1000.0;
    // The schedule is the whole run's (its seed, not the shard's), so shards split one set of arrivals.
    let schedule = load.schedule(run_seed).enumerate().map(|(k, t)| (k as u32, t)).filter(|(k, _)| shard.includes(*k));
    let mut stop_wait = stop.clone();
    let stopped = async move {
        let _ = stop_wait.wait_for(|s| *s).await;
    };
    let spawn = |call: u32, ti: usize| {
        let (prepared, scenario, turn_tx, call_tx, stop) =
            (prepared.clone(), scenario.clone(), turn_tx.clone(), call_tx.clone(), stop.clone());
        let mut rng =
            crate::stats::SplitMix64::new(seed ^ (u64::from(call) << 8 | ti as u64).wrapping_mul(0x9E37_79B9));
        let phase = Duration::from_micros((rng.next_f64() * frame_us) as u64);
        async move {
            let rec = one_call(&scenario, &prepared[ti], call, phase, run_start, stop, &turn_tx).await;
            let _ = call_tx.send(rec);
        }
    };
    super::load::open_loop(&load, schedule, prepared.len(), run_start, stopped, spawn).await
}

/// The event loop: records turns and calls as they finish (a call's row after its turns'), updates the progress,
/// and on Ctrl-C tells the calls in flight to stop. Returns once both channels have closed.
async fn collect(
    recorder: &mut Recorder,
    mut turn_rx: mpsc::UnboundedReceiver<TurnRecord>,
    mut call_rx: mpsc::UnboundedReceiver<CallRecord>,
    stop_tx: &watch::Sender<bool>,
    progress: &mut Progress,
    notice: &(dyn Fn(&str) + Sync),
) -> Result<Collected> {
    let mut out = Collected { calls: Vec::new(), turns: Vec::new(), interrupted: false, forced: false };
    let mut signals = StopSignals::new()?;
    let mut turns_open = true;
    let mut calls_open = true;
    while turns_open || calls_open {
        tokio::select! {
            // Biased, turns first: the guard below is checked when the select starts, and a turn row and its
            // call's record may both arrive while it waits; polled in random order, the call could be taken
            // first, and its unreached turns counted one too many (4 calls reset mid-frame: 13 turns attempted
            // in summary.json for 12 in the rows).
            biased;
            r = turn_rx.recv(), if turns_open => match r {
                Some(mut t) => {
                    sanitise_turn(&mut t);
                    progress.turn(&t);
                    recorder.record_turn(&t).context("writing a turn row")?;
                    out.turns.push(t);
                }
                None => turns_open = false,
            },
            // Turns before calls: a call's record must come after its turns'.
            r = call_rx.recv(), if calls_open && (!turns_open || turn_rx.is_empty()) => match r {
                Some(mut c) => {
                    sanitise_call(&mut c);
                    progress.call(&c);
                    recorder.record_call(&c).context("writing a call row")?;
                    out.calls.push(c);
                }
                None => calls_open = false,
            },
            name = signals.next() => {
                if out.interrupted {
                    // A second signal: no more waiting for the calls in flight to wind down.
                    notice(&format!("{name} again: abandoning the calls in flight; writing what was recorded…"));
                    out.forced = true;
                    break;
                }
                out.interrupted = true;
                notice(&format!("{name}: stopping the calls in flight and writing what was measured… (again to stop at once)"));
                let _ = stop_tx.send(true);
            }
        }
    }
    Ok(out)
}

/// How often the lag monitor wakes.
const LAG_TICK: Duration = Duration::from_millis(10);

/// The event loop's lag monitor (docs/metrics.md, "The harness watches itself"): every [`LAG_TICK`] it sleeps and
/// records how late it woke, in µs, until `done` fires (or its sender is dropped), and returns what it measured.
/// A task polled late is late because every worker thread was busy (or the machine gave it no CPU): the same
/// delay hits a frame due then, or the timestamp of an agent event read then. The next sleep is measured from the
/// late wake-up, so one long stall is one sample, not a burst of catch-up ticks. tokio's timer wakes at the next
/// whole millisecond, so an idle loop reads 0–1 ms. About 100 wake-ups a second, each a timer entry and a map
/// update: nothing next to the calls it watches.
async fn monitor_loop_lag(mut done: oneshot::Receiver<()>) -> Distribution {
    let mut lag = Distribution::default();
    let mut due = Instant::now() + LAG_TICK;
    loop {
        tokio::select! {
            biased;
            _ = &mut done => return lag,
            () = tokio::time::sleep_until(due) => {
                let now = Instant::now();
                lag.record(now.saturating_duration_since(due).as_micros() as u64);
                due = now + LAG_TICK;
            }
        }
    }
}

/// One call: connect, run the caller's script, close. A failed connect is a call record with its error.
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
    let mut stop_connect = stop.clone();
    let connected = tokio::select! {
        c = targets::connect(scenario, &p.target) => c,
        _ = stop_connect.wait_for(|s| *s) => Err(targets::SessionError::new(
            ErrorCategory::Interrupted,
            "interrupted while connecting".to_string(),
        )),
    };
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    match connected {
        Ok(mut session) => {
            // A transcribed call's rows wait for its transcripts: they go out when the call ends.
            let (held_tx, mut held_rx) = mpsc::unbounded_channel();
            let rows = if p.transcriber.is_some() { &held_tx } else { turns };
            let end = run_call(&mut session, &p.plan, call, phase, run_start, stop, rows).await;
            session.close().await;
            let (mut rec, recording) = (end.record, end.recording);
            rec.connect_ms = Some(connect_ms);
            if let Some(tr) = &p.transcriber {
                drop(held_tx);
                let mut rows = Vec::new();
                while let Some(r) = held_rx.recv().await {
                    rows.push(r);
                }
                if let Some(audio) = &recording {
                    // The caller counted the turns it judged; these are the ones judged on the heard audio.
                    let (judged, failed) = tr.annotate(&mut rows, audio, &p.plan.turns, &end.redactor).await;
                    rec.content_checked += judged;
                    rec.content_failed += failed;
                }
                for r in rows {
                    let _ = turns.send(r);
                }
            }
            let recording = recording.filter(|_| p.recordings.enabled());
            match recording {
                // Writing a WAV is blocking file I/O: off the runtime's threads.
                Some(audio) => {
                    let recordings = p.recordings.clone();
                    let offered = tokio::task::spawn_blocking(move || {
                        recordings.offer(&mut rec, audio);
                        rec
                    });
                    offered.await.expect("a recording is written without panicking")
                }
                None => rec,
            }
        }
        Err(e) => {
            // A call that never connected did not do its task: a failure, unless the user stopped the run.
            let judged = !p.plan.expect_state.is_empty() && e.category != ErrorCategory::Interrupted;
            CallRecord {
                target: p.plan.target.clone(),
                simulated: p.plan.simulated,
                call,
                connect_ms: Some(connect_ms),
                started_ms: t.saturating_duration_since(run_start).as_secs_f64() * 1000.0,
                turns_total: p.plan.turns.len() as u32,
                error: Some(if e.category == ErrorCategory::Disconnect { ErrorCategory::Connect } else { e.category }),
                // Masked here: every other text of a call's rows is masked by its caller (`caller::turns`).
                error_message: Some(p.plan.redactor.text(&e.message)),
                task_ok: judged.then_some(false),
                task_detail: judged.then(|| "the call never connected".to_string()),
                ..Default::default()
            }
        }
    }
}

/// The signals that stop a run as Ctrl-C does: SIGINT, and on Unix SIGTERM (CI cancellation, `docker stop`,
/// Kubernetes) and SIGHUP (the terminal closed). Their handlers are installed when the run starts, so from then on
/// none of them kills the process before what was measured is written.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
                hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for the next signal; returns its name for the notice.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = self.term.recv() => "SIGTERM",
                _ = self.hup.recv() => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

/// A turn record made safe to keep: provider text bounded, every registered secret masked (the transcripts and the
/// content detail are bounded where they are made, `caller::turns::MAX_SAID`, and only masked here).
fn sanitise_turn(t: &mut TurnRecord) {
    use crate::secret::{MAX_TEXT, for_row, scrub};
    if let Some(m) = &mut t.error_message {
        *m = for_row(m, MAX_TEXT);
    }
    t.utterance = for_row(&t.utterance, MAX_TEXT);
    for text in [&mut t.agent_text, &mut t.content_detail, &mut t.heard_text].into_iter().flatten() {
        *text = scrub(text);
    }
}

/// A call record made safe to keep: provider text and ids bounded, every registered secret masked (the tool calls
/// are bounded where they are logged, `caller::turns::MAX_TOOL_LOG`, and only masked here).
fn sanitise_call(c: &mut CallRecord) {
    use crate::secret::{MAX_ID, MAX_TEXT, for_row, scrub, scrub_json};
    if let Some(m) = &mut c.error_message {
        *m = for_row(m, MAX_TEXT);
    }
    if let Some(id) = &mut c.session_id {
        *id = for_row(id, MAX_ID);
    }
    if let Some(d) = &mut c.task_detail {
        *d = scrub(d);
    }
    for call in &mut c.tool_calls {
        call.name = scrub(&call.name);
        call.arguments = scrub_json(&call.arguments);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text a row keeps passes the run's secret mask, the transcripts and tool arguments too: a pipeline's LLM
    /// that says the key, or puts it in a tool argument, does not carry it into `turns.jsonl` or `calls.jsonl`.
    #[test]
    fn rows_are_masked_in_every_text_they_keep() {
        let key = "sk-canary-execute-rows-0123456789abcdef";
        let mut s = crate::secret::Secrets::default();
        s.add(key);
        crate::secret::register(&s);
        let said = Some(format!("my key is {key}"));
        let mut t = TurnRecord {
            agent_text: said.clone(),
            content_detail: said.clone(),
            heard_text: said.clone(),
            ..Default::default()
        };
        sanitise_turn(&mut t);
        let mut c = CallRecord {
            task_detail: said,
            tool_calls: vec![crate::model::ToolCallLog {
                name: key.into(),
                arguments: serde_json::json!({"note": [key], key: 1}),
                ..Default::default()
            }],
            ..Default::default()
        };
        sanitise_call(&mut c);
        let rows = format!("{}{}", serde_json::to_string(&t).unwrap(), serde_json::to_string(&c).unwrap());
        assert!(!rows.contains("canary-execute"), "{rows}");
        assert!(t.agent_text.unwrap().starts_with("my key is "));
    }

    /// On tokio's paused clock the timer is exact: every wake-up is on time, and a task that hogs its thread shows
    /// up as one late wake-up of the size of the hog.
    #[tokio::test(start_paused = true)]
    async fn the_lag_monitor_records_how_late_it_woke() {
        let (done, rx) = oneshot::channel();
        let monitor = tokio::spawn(monitor_loop_lag(rx));
        tokio::time::sleep(Duration::from_millis(105)).await;
        // A blocking stretch on the (single) runtime thread: the paused clock jumps 35 ms while nothing is polled.
        tokio::time::advance(Duration::from_millis(35)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        done.send(()).unwrap();
        let lag = monitor.await.unwrap();
        let e = lag.exact().unwrap();
        assert!(lag.len() >= 18, "{}", lag.len());
        assert_eq!(e.max(), Some(30_000), "the hog, less the 5 ms the monitor was asleep anyway");
        assert_eq!(e.quantile(0.9), Some(0), "every other wake-up was on time");
    }
}
