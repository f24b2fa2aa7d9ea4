//! The caller: a protocol-free scripted caller that paces audio on absolute deadlines, plays the agent's audio on a
//! playback timeline, answers tool calls from the scenario, and measures every per-turn metric of docs/metrics.md.
//!
//! [`run_call`] is one call: a loop that sends the frame that is due (an utterance frame or silence: a caller's
//! microphone never stops), handles the adapter's events as they come, and hands finished turns to the recorder.

pub mod network;
pub mod pacer;
pub mod playback;
pub mod priority;
pub mod record;
pub mod recording;
pub mod slots;
pub mod turns;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use self::network::{NetPath, UpFrame};
use self::pacer::{Pacer, Ticker};
use self::record::{CallRecord, Pacing, TurnRecord};
use self::recording::Recording;
use self::turns::{Action, CallId, Tracker};
use crate::audio::telephone;
use crate::model::AgentEvent;
use crate::redact::Redactor;
use crate::scenario::{StateExpect, ToolSpec, TurnSpec};
use crate::targets::{ErrorCategory, Frame, Session};

/// Everything one call of one target needs, prepared once per target (frames are encoded once and shared).
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// Target name.
    pub target: String,
    /// Whether the target is simulated.
    pub simulated: bool,
    /// The scenario's turns.
    pub turns: Vec<TurnSpec>,
    /// The scenario's tools.
    pub tools: Vec<ToolSpec>,
    /// Per turn: its utterance as wire frames.
    pub frames: Vec<Arc<Vec<Frame>>>,
    /// A frame of silence.
    pub silence: Frame,
    /// Frame duration, ms.
    pub frame_ms: u32,
    /// Per-turn timeout.
    pub turn_timeout: Duration,
    /// What every call must leave in the tools' tables.
    pub expect_state: Vec<StateExpect>,
    /// What every record masks.
    pub redactor: Redactor,
    /// Whether calls keep their audio for a recording.
    pub record: bool,
    /// The network between the caller and the target, when impaired (docs/network.md).
    pub network: Option<crate::model::network::NetworkConfig>,
    /// Whether the caller is on a phone line: its ear hears the agent at 8 kHz through μ-law (its utterances crossed
    /// the line when they were framed).
    pub telephone: bool,
    /// The seed the network's draws derive from (with the target and the call).
    pub seed: u64,
}

/// Runs one call on an established session. Finished turns go to `records` as they finish; the call's own record
/// is returned. `stop` turning true ends the call at once (Ctrl-C), recording what was measured.
pub async fn run_call<S: Session>(
    session: &mut S,
    plan: &CallPlan,
    call: u32,
    phase: Duration,
    run_start: Instant,
    mut stop: watch::Receiver<bool>,
    records: &mpsc::UnboundedSender<TurnRecord>,
) -> CallEnd {
    let t0 = Instant::now() + phase;
    let mut pacer = Pacer::with_ticker(t0, plan.frame_ms, Ticker::slots());
    let id = CallId { target: plan.target.clone(), simulated: plan.simulated, call };
    // On a phone line the caller hears the agent at 8 kHz through μ-law.
    let agent_rate = session.output_rate();
    let ear_rate = if plan.telephone { telephone::RATE } else { agent_rate };
    let mut tracker = Tracker::new(plan.turns.clone(), plan.tools.clone(), t0, ear_rate, plan.turn_timeout, id)
        .with_redactor(plan.redactor.clone());
    if plan.record {
        let in_rate = plan.silence.samples.len() as u32 * 1000 / plan.frame_ms.max(1);
        tracker = tracker.with_recording(Recording::new(in_rate, ear_rate, plan.frame_ms));
    }
    let mut net = plan.network.as_ref().map(|cfg| {
        let frame = Duration::from_millis(plan.frame_ms as u64);
        // What one frame weighs on the caller's link: μ-law bytes on a phone line, else the PCM16 samples.
        let (up_bytes, sample_bytes) = if plan.telephone {
            ((telephone::RATE * plan.frame_ms / 1000) as usize, 1)
        } else {
            (plan.silence.samples.len() * 2, 2)
        };
        NetPath::new(cfg, network::seeds(plan.seed, &plan.target, call), frame, up_bytes, ear_rate, sample_bytes)
    });
    let mut turns_ok = 0;
    let (mut content_checked, mut content_failed) = (0, 0);
    let mut ttfa: Vec<f64> = Vec::new();
    let mut stop_seen = *stop.borrow();
    if stop_seen {
        tracker.abort(ErrorCategory::Interrupted, "run interrupted");
    }
    loop {
        let arrival = net.as_ref().and_then(NetPath::next_arrival);
        tokio::select! {
            biased;
            res = stop.changed(), if !stop_seen => {
                stop_seen = true;
                if res.is_ok() && *stop.borrow() {
                    tracker.abort(ErrorCategory::Interrupted, "run interrupted (Ctrl-C) during the call");
                }
            }
            ev = session.events().recv() => match ev {
                Some(mut ev) => {
                    if plan.telephone && let AgentEvent::Audio { samples, .. } = &mut ev {
                        *samples = telephone::to_ear(samples, agent_rate);
                    }
                    let now = match &mut net {
                        // Tool calls run beside the agent: they do not cross the caller's network.
                        Some(n) if !matches!(ev, AgentEvent::ToolCall { .. }) => n.send_down(ev),
                        _ => Some(ev),
                    };
                    if let Some(ev) = now {
                        deliver(session, &mut tracker, &ev).await;
                    }
                }
                None => tracker.abort(ErrorCategory::Disconnect, "the session's event stream ended"),
            },
            _ = pacer.wait() => {
                let k = pacer.next_index();
                tracker.schedule(k, pacer.frame());
                let up = match tracker.utterance_frame(k) {
                    Some((i, n)) if n < plan.frames[i].len() => UpFrame::Utterance(i, n),
                    _ => UpFrame::Silence,
                };
                let frame = frame_of(plan, up);
                tracker.record_sent(&frame.samples);
                let now = Instant::now();
                let k = pacer.sent(now);
                tracker.sent(k, now.saturating_duration_since(pacer.due(k)));
                match &mut net {
                    // Spoken when it was due; the agent hears it when the network delivers it.
                    Some(n) => n.send_up(up, pacer.due(k)),
                    None => {
                        if let Err(e) = session.send_frame(frame).await {
                            tracker.abort(e.category, &e.message);
                        }
                    }
                }
            }
            _ = async {
                match arrival {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }, if arrival.is_some() => {
                let now = Instant::now();
                if let Some(n) = &mut net {
                    while let Some(up) = n.arrive_up(now) {
                        if let Err(e) = session.send_frame(frame_of(plan, up)).await {
                            tracker.abort(e.category, &e.message);
                        }
                    }
                    while let Some(mut ev) = n.arrive_down(now) {
                        if let AgentEvent::SpeechStarted { at } | AgentEvent::Interrupted { at } = &mut ev {
                            *at = tracker.flush_point(*at);
                        }
                        deliver(session, &mut tracker, &ev).await;
                    }
                }
            }
        }
        let over = tracker.poll(Instant::now());
        for r in tracker.take_records() {
            turns_ok += u32::from(r.error.is_none());
            if let Some(ok) = r.content_ok {
                content_checked += 1;
                content_failed += u32::from(!ok);
            }
            ttfa.extend(r.ttfa_ms.filter(|v| *v >= 0.0));
            let _ = records.send(r);
        }
        if over {
            break;
        }
    }
    let ended = tracker.ended().cloned();
    let pacing = Pacing::from_lateness(pacer.take_lateness());
    let outcome = tracker.call_outcome(&plan.expect_state);
    // A call the user interrupted has no verdict: the agent was not given the whole call to do the task.
    let interrupted = ended.as_ref().is_some_and(|e| e.0 == ErrorCategory::Interrupted);
    let task = outcome.task.filter(|_| !interrupted);
    ttfa.sort_by(f64::total_cmp);
    let recording = tracker.take_recording();
    let record = CallRecord {
        target: plan.target.clone(),
        simulated: plan.simulated,
        call,
        session_id: session.session_id().map(String::from),
        connect_ms: None,
        started_ms: t0.saturating_duration_since(run_start).as_secs_f64() * 1000.0,
        duration_ms: Instant::now().saturating_duration_since(t0).as_secs_f64() * 1000.0,
        turns_total: plan.turns.len() as u32,
        turns_ok,
        error: ended.as_ref().map(|e| e.0),
        error_message: ended.map(|e| tracker.redact(&e.1)),
        pacing,
        task_ok: task.as_ref().map(|t| t.0),
        task_detail: task.map(|t| t.1),
        tool_calls: outcome.tool_calls,
        content_checked,
        content_failed,
        ttfa_p50_ms: crate::stats::quantile(&ttfa, 0.5),
        ttfa_max_ms: ttfa.last().copied(),
        recording: None,
        network: net.as_ref().map(NetPath::effect),
    };
    CallEnd { record, recording, redactor: tracker.redactor().clone() }
}

/// The wire frame of `up`.
fn frame_of(plan: &CallPlan, up: UpFrame) -> &Frame {
    match up {
        UpFrame::Utterance(i, n) => &plan.frames[i][n],
        UpFrame::Silence => &plan.silence,
    }
}

/// Hands an agent event to the tracker, sending what it answers (tool results, truncations).
async fn deliver<S: Session>(session: &mut S, tracker: &mut Tracker, ev: &AgentEvent) {
    for a in tracker.on_event(ev) {
        let r = match a {
            Action::ToolResult { call_id, output } => session.send_tool_result(&call_id, &output).await,
            Action::Truncate { item, played_ms } => session.truncate(item, played_ms).await,
        };
        if let Err(e) = r {
            tracker.abort(e.category, &e.message);
        }
    }
}

/// What a call leaves: its record, its audio when it was recorded, and the redactor with the names it learned.
#[derive(Debug)]
pub struct CallEnd {
    /// The call's record.
    pub record: CallRecord,
    /// Its audio, when the plan records.
    pub recording: Option<Recording>,
    /// The scenario's redaction with the names this call's tool arguments taught it.
    pub redactor: Redactor,
}
