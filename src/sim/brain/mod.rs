//! The simulated agent's brain: what the agent decides, with no wire protocol in it. One [`Brain`] per session
//! hears the caller's audio through a streaming VAD in audio time, follows the scenario's script (turn *k* is the
//! *k*-th utterance it hears), plans each response with absolute instants (a tool call, then the spoken reply after
//! the tool result; reply and tool delays, leading silence, chunking and speed from the profile), detects barge-ins,
//! and logs the ground truth of everything it does.
//!
//! A wire ([`super::wire::Wire`]) calls the brain's methods for what the client sent (audio, a hand-ended turn, a
//! tool result, a cancel) and renders the [`Event`]s the brain reports, in order, as its protocol's messages. The
//! brain owns the timing: its next deadline ([`Brain::deadline`]) and what is due then ([`Brain::tick`]).

mod respond;
mod text;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::profile::{Profile, chance};
use super::replies::{Reply, ReplyBank, WireFormat};
use super::vad::{StreamVad, VadEvent};
use super::{GroundTruth, GroundTruthKind, Shared, SimError};
use crate::scenario::schema::SimFault;
use crate::scenario::{Expect, Scenario};
use crate::stats::SplitMix64;

pub(crate) use respond::Usage;
use respond::{AwaitTool, Resp};
pub(crate) use text::rand_id;

/// A turn ends only after this much less than its annotated voiced span has been heard, ms.
const SPAN_MARGIN_MS: f64 = 150.0;
/// The same over G.711 μ-law input: the telephone band drops a final fricative below the gate (measured: the "s"
/// of `caller/joe/choose` ends the voiced span 173 ms early at 8 kHz).
const SPAN_MARGIN_MULAW_MS: f64 = 300.0;
/// A silence this much longer than the turn's longest annotated pause ends the turn whatever was heard, so a turn
/// the VAD hears shorter than annotated cannot hang, ms.
const PAUSE_MARGIN_MS: f64 = 300.0;

/// What the sim knows of one scripted turn.
#[derive(Debug)]
pub(crate) struct TurnInfo {
    expect: Expect,
    span_ms: f64,
    text: Option<String>,
    /// Per expected call: its tool, the arguments the sim sends, and the arguments the expectation checks (the
    /// ones a deliberate mistake may change: one matched by `{ any = true }` would stay right).
    tool_calls: Vec<(String, Value, Vec<String>)>,
    reply: Option<Arc<Reply>>,
    user_audio_ms: f64,
    longest_pause_ms: f64,
}

/// How the brain detects turns: the VAD's settings and what it does at a turn's end and on speech.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Turns {
    /// VAD threshold, 0–1.
    pub threshold: f64,
    /// Audio kept before the onset, ms (the `audio_start_ms` reported for speech).
    pub prefix_padding_ms: u64,
    /// The silence that ends a turn, ms.
    pub silence_ms: f64,
    /// Respond automatically at the end of a turn.
    pub create_response: bool,
    /// Cancel the active response on speech.
    pub interrupt_response: bool,
}

/// Everything a session needs, shared by all sessions of one sim.
pub(crate) struct Ctx {
    turns: Vec<TurnInfo>,
    profile: Profile,
    seed: u64,
    /// Turn detection a session starts with (None: the client ends turns).
    pub(crate) initial_turns: Option<Turns>,
    /// The scenario's tool names (the tools an agent configured on the provider's side has).
    pub(crate) tools: Vec<String>,
    /// The fault the wires play (`sim_options.fault`).
    pub(crate) fault: Option<SimFault>,
}

impl Ctx {
    pub(crate) fn new(
        scenario: &Scenario,
        profile: Profile,
        seed: u64,
        initial_turns: Option<Turns>,
        fault: Option<SimFault>,
    ) -> Result<Self, SimError> {
        let refs: Vec<_> = scenario.turns.iter().map(|t| t.reply.as_ref()).collect();
        let bank = ReplyBank::load(&refs, profile.chunk_ms)?;
        let turns = scenario
            .turns
            .iter()
            .zip(bank.per_turn)
            .map(|(t, reply)| TurnInfo {
                expect: t.expect,
                span_ms: t.audio.speech_end_ms - t.audio.speech_start_ms,
                text: t.audio.text.clone(),
                tool_calls: t
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let checked = c
                            .args
                            .iter()
                            .filter(|(_, m)| !matches!(m, crate::scenario::Matcher::Any))
                            .map(|(k, _)| k.clone())
                            .collect();
                        (c.name.clone(), c.sim_args.clone(), checked)
                    })
                    .collect(),
                reply,
                user_audio_ms: t.audio.duration_ms,
                longest_pause_ms: t.audio.pauses_ms.iter().map(|(a, b)| b - a).fold(0.0, f64::max),
            })
            .collect();
        let tools = scenario.agent.tools.iter().map(|t| t.name.clone()).collect();
        Ok(Self { turns, profile, seed, initial_turns, tools, fault })
    }
}

/// What the agent did, in the order it did it. Each wire renders the events its protocol has words for.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The VAD heard the caller start (or a barge-in's `speech_started` instant came).
    SpeechStarted {
        /// Audio ms since session start, prefix padding included.
        audio_start_ms: u64,
        /// The user item it belongs to.
        item_id: String,
    },
    /// A barge-in: drop unplayed audio (at the sim's `speech_started` instant).
    Interrupted,
    /// The caller's turn ended.
    SpeechStopped {
        /// Audio ms since session start.
        audio_end_ms: u64,
        /// The user item.
        item_id: String,
    },
    /// The caller's audio was committed as a user item.
    Committed {
        /// The user item.
        item_id: String,
    },
    /// The caller's words, at the end of their turn.
    UserTranscript {
        /// The user item.
        item_id: String,
        /// What the script says they said.
        text: String,
        /// End of speech detected.
        at: Instant,
        /// Audio ms since session start at the end of the turn.
        audio_ms: f64,
    },
    /// A response began (its delay runs before its first output).
    ResponseCreated {
        /// `resp_…`.
        response_id: String,
    },
    /// A spoken response opened its assistant message.
    MessageStarted {
        /// The response.
        response_id: String,
        /// The assistant audio item.
        item_id: String,
    },
    /// Transcript of the agent's speech (just before the audio it belongs to).
    Transcript(Arc<str>),
    /// A chunk of reply audio, base64 in the session's output format.
    Audio {
        /// The encoded chunk.
        b64: Arc<str>,
        /// Its duration, ms.
        ms: f64,
    },
    /// A function call opened.
    CallAdded {
        /// Output index within the response.
        index: usize,
        /// The function call item.
        item_id: String,
        /// `call_…`.
        call_id: String,
        /// Function name.
        name: String,
    },
    /// A piece of a function call's argument JSON.
    ArgDelta {
        /// Output index.
        index: usize,
        /// The piece.
        delta: String,
    },
    /// A function call ended: complete, or cut short by a cancel (`completed` false, the arguments sent so far).
    CallDone {
        /// Output index.
        index: usize,
        /// The function call item.
        item_id: String,
        /// `call_…`.
        call_id: String,
        /// Function name.
        name: String,
        /// Argument JSON text.
        arguments: String,
        /// Whether the call went out whole.
        completed: bool,
    },
    /// The assistant message ended.
    MessageDone {
        /// The assistant audio item.
        item_id: String,
        /// What it said (all of it, or what was sent when cancelled).
        transcript: String,
        /// Cut by a barge-in or the client.
        cancelled: bool,
    },
    /// A response ended.
    ResponseDone {
        /// Cut by a barge-in or the client.
        cancelled: bool,
        /// `turn_detected` / `client_cancelled` when cancelled.
        cancel_reason: Option<String>,
        /// It sent audio.
        spoke: bool,
        /// It was a tool-call response (the spoken reply follows the tool result).
        tool: bool,
        /// What the response used.
        usage: Usage,
    },
}

/// Progress of the current scripted turn.
#[derive(Debug, Clone)]
struct TurnProgress {
    idx: usize,
    onset_at: Instant,
    onset_audio_ms: f64,
    min_end_ms: f64,
    ended: bool,
    ignoring: bool,
    item_id: String,
    /// Whether speech_started was sent for the current segment.
    started: bool,
}

/// A turn whose end was detected (or committed by hand), for the response and its ground truth.
#[derive(Debug, Clone)]
pub(crate) struct TurnEnd {
    idx: usize,
    onset_at: Option<Instant>,
    onset_audio_ms: Option<f64>,
    eos_at: Instant,
    eos_audio_ms: f64,
}

#[derive(Debug)]
struct PendingInterrupt {
    due: Instant,
    item_id: String,
    audio_start_ms: u64,
    gt: usize,
}

/// Why a client's `response.create` or cancel was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refused {
    /// A response is already active (its id).
    Active(String),
    /// No active response (with the id the client named, if any).
    NotActive(Option<String>),
}

/// One session's agent.
pub(crate) struct Brain {
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    idx: u64,
    session_id: String,
    ids: SplitMix64,
    rng: SplitMix64,
    events: Vec<Event>,
    vad: StreamVad,
    vad_events: Vec<VadEvent>,
    samples: Vec<i16>,
    buffer_ms: f64,
    input: WireFormat,
    output: WireFormat,
    turns: Option<Turns>,
    /// Tools the session may call.
    tools: Vec<String>,
    /// Function calls made so far (a tool result must name one).
    calls_made: Vec<String>,
    next_turn: usize,
    turn: Option<TurnProgress>,
    pending_turn: Option<TurnEnd>,
    awaiting_tool: Option<AwaitTool>,
    resp: Option<Resp>,
    play_end: Option<Instant>,
    interrupt: Option<PendingInterrupt>,
    /// A tool result came while a response was active: ask for the follow-up when it is done.
    followup: bool,
}

pub(crate) fn ms_dur(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl Brain {
    /// A new session with the given audio formats and the context's initial turn detection; `tools`: whether the
    /// scenario's tools are declared from the start (as on an agent configured on the provider's side).
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        shared: Arc<Shared>,
        idx: u64,
        input: WireFormat,
        output: WireFormat,
        tools: bool,
    ) -> Self {
        let mix = ctx.seed ^ (idx.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut ids = SplitMix64::new(mix ^ 0x05EE_D1D5);
        let rng = SplitMix64::new(mix);
        let turns = ctx.initial_turns.clone();
        let (threshold, silence) = turns.as_ref().map_or((0.5, 500.0), |t| (t.threshold, t.silence_ms));
        let vad = StreamVad::new(input.rate(), threshold, silence);
        let session_id = format!("sess_{}", rand_id(&mut ids));
        let tools = if tools { ctx.tools.clone() } else { Vec::new() };
        Self {
            ctx,
            shared,
            idx,
            session_id,
            ids,
            rng,
            events: Vec::new(),
            vad,
            vad_events: Vec::new(),
            samples: Vec::new(),
            buffer_ms: 0.0,
            input,
            output,
            turns,
            tools,
            calls_made: Vec::new(),
            next_turn: 0,
            turn: None,
            pending_turn: None,
            awaiting_tool: None,
            resp: None,
            play_end: None,
            interrupt: None,
            followup: false,
        }
    }

    /// The session id the ground truth is logged under.
    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Sets the session id (wires whose client names the session, e.g. Twilio's `callSid`). Call before any turn.
    pub(crate) fn set_session_id(&mut self, id: String) {
        self.session_id = id;
    }

    /// A new id `prefix_…` from the session's id stream.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{}", rand_id(&mut self.ids))
    }

    /// Reconfigures the session (a client's accepted settings): audio formats, turn detection, callable tools.
    pub(crate) fn configure(
        &mut self,
        input: WireFormat,
        output: WireFormat,
        turns: Option<Turns>,
        tools: Vec<String>,
    ) {
        let was_vad = self.turns.is_some();
        self.input = input;
        self.output = output;
        self.vad.set_rate(input.rate());
        if let Some(t) = &turns {
            self.vad.configure(t.threshold, t.silence_ms);
        } else if was_vad {
            self.vad.end_speech();
        }
        self.turns = turns;
        self.tools = tools;
    }

    /// Switches the session to client-side turn detection (Gemini's manual activity mode): the VAD only keeps
    /// the clock and turns end at [`Self::end_turn`].
    pub(crate) fn manual_turns(&mut self) {
        self.turns = None;
    }

    /// Declares the tools of the scenario named in `names` (a Gemini `setup`'s function declarations).
    pub(crate) fn declare_tools(&mut self, names: &[String]) {
        self.tools = self.ctx.tools.iter().filter(|t| names.iter().any(|x| x == *t)).cloned().collect();
    }

    /// What the agent did since the last call.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn event(&mut self, e: Event) {
        self.events.push(e);
    }

    fn gt(&self, i: usize, f: impl FnOnce(&mut GroundTruth)) {
        self.shared.update(i, f);
    }

    fn ms(&self, at: Instant) -> f64 {
        self.shared.ms(at)
    }

    /// Caller audio in the session's input format (callers check its length).
    pub(crate) fn audio(&mut self, bytes: &[u8], at: Instant) {
        let fmt = self.input;
        let mut samples = std::mem::take(&mut self.samples);
        fmt.decode_into(bytes, &mut samples);
        self.buffer_ms += samples.len() as f64 * 1000.0 / fmt.rate() as f64;
        let mut evs = std::mem::take(&mut self.vad_events);
        evs.clear();
        let detect = self.turns.is_some();
        self.vad.push(&samples, detect, &mut evs);
        self.samples = samples;
        for ev in evs.drain(..) {
            match ev {
                VadEvent::Onset { start_ms, .. } => self.on_onset(start_ms, at),
                VadEvent::Silence { last_voiced_ms, now_ms } => self.on_silence(last_voiced_ms, now_ms, at),
            }
        }
        self.vad_events = evs;
    }

    /// Commits the caller's audio as a user item (a client's hand commit). Without turn detection this ends the
    /// turn. Refused with the buffered ms when under 100 ms of audio is buffered.
    pub(crate) fn commit(&mut self, at: Instant) -> Result<(), f64> {
        if self.buffer_ms < 100.0 {
            return Err(self.buffer_ms);
        }
        let item_id = self.new_id("item");
        self.commit_user_item(item_id);
        if self.turns.is_none() {
            let idx = self.next_turn;
            self.next_turn += 1;
            self.pending_turn = Some(TurnEnd {
                idx,
                onset_at: None,
                onset_audio_ms: None,
                eos_at: at,
                eos_audio_ms: self.vad.now_ms(),
            });
        }
        Ok(())
    }

    /// Drops the buffered caller audio.
    pub(crate) fn clear_buffer(&mut self) {
        self.buffer_ms = 0.0;
    }

    /// The client asks for a response (`out_of_band`: outside the conversation, an empty one): the spoken reply
    /// after a tool result, the response to a hand-ended turn, or an empty response.
    pub(crate) fn response_create(&mut self, at: Instant, out_of_band: bool) -> Result<(), Refused> {
        if let Some(r) = &self.resp {
            return Err(Refused::Active(r.id.clone()));
        }
        if out_of_band {
            self.start_empty(None, at, Some(at), GroundTruthKind::Reply);
        } else if let Some(a) = self.awaiting_tool.take() {
            self.start_spoken(a.end, at, Some(at), GroundTruthKind::Reply);
        } else if let Some(end) = self.pending_turn.take() {
            self.respond_to_turn(end, at, Some(at));
        } else {
            self.start_empty(None, at, Some(at), GroundTruthKind::Reply);
        }
        Ok(())
    }

    /// The client cancels the active response (`id`: the one it names, if any).
    pub(crate) fn response_cancel(&mut self, id: Option<String>, at: Instant) -> Result<(), Refused> {
        match (self.resp.as_ref().map(|r| r.id.clone()), id) {
            (Some(a), Some(r)) if a != r => Err(Refused::NotActive(Some(r))),
            (Some(_), _) => {
                self.cancel(at, "client_cancelled");
                Ok(())
            }
            (None, _) => Err(Refused::NotActive(None)),
        }
    }

    /// Whether the session made a function call with this id.
    pub(crate) fn knows_call(&self, call_id: &str) -> bool {
        self.calls_made.iter().any(|c| c == call_id)
    }

    /// The client ended its turn by hand (Gemini `activityEnd`): commit and respond.
    pub(crate) fn end_turn(&mut self, at: Instant) {
        let _ = self.commit(at);
        let _ = self.response_create(at, false);
    }

    /// A tool result: a response follows now, or when the current one is done. Returns false when the call id is
    /// unknown.
    pub(crate) fn tool_result(&mut self, call_id: &str, at: Instant) -> bool {
        if !self.knows_call(call_id) {
            return false;
        }
        if self.resp.is_none() {
            let _ = self.response_create(at, false);
        } else {
            self.followup = true;
        }
        true
    }

    /// The client says the caller started talking (Gemini `activityStart` in manual mode): a barge-in if the agent
    /// is talking, logged like the VAD's (onset = `speech_started` = this instant).
    pub(crate) fn client_activity_start(&mut self, at: Instant) {
        if !self.agent_active(at) {
            return;
        }
        let mut g = GroundTruth::new(&self.session_id, self.idx, self.next_turn, GroundTruthKind::Interrupt);
        let ms = self.ms(at);
        g.onset_at = Some(at);
        g.onset_ms = Some(ms);
        g.speech_started_at = Some(at);
        g.speech_started_ms = Some(ms);
        g.interrupt_delay_ms = Some(0.0);
        let gt = self.shared.push(g);
        self.event(Event::Interrupted);
        if let Some(rid) = self.resp.as_ref().map(|r| r.id.clone()) {
            self.cancel(at, "turn_detected");
            self.gt(gt, |g| g.interrupted_response = Some(rid));
        }
        self.play_end = None;
    }

    /// Runs every step that is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        while let Some(due) = self.deadline().filter(|d| *d <= now) {
            if self.interrupt.as_ref().is_some_and(|p| p.due == due) {
                self.fire_interrupt(now);
                continue;
            }
            if !self.step_response() {
                break;
            }
        }
        if self.followup && self.resp.is_none() {
            self.followup = false;
            let _ = self.response_create(now, false);
        }
    }

    /// The next instant something is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let r = self.resp.as_ref().and_then(|r| r.queue.front().map(|(t, _)| *t));
        let i = self.interrupt.as_ref().map(|p| p.due);
        [r, i].into_iter().flatten().min()
    }

    fn commit_user_item(&mut self, item_id: String) {
        self.event(Event::Committed { item_id });
        self.buffer_ms = 0.0;
    }

    fn agent_active(&self, at: Instant) -> bool {
        self.resp.is_some() || self.play_end.is_some_and(|e| at < e)
    }

    fn prefix_ms(&self) -> f64 {
        self.turns.as_ref().map_or(300, |t| t.prefix_padding_ms) as f64
    }

    fn silence_ms(&self) -> f64 {
        self.turns.as_ref().map_or(500.0, |t| t.silence_ms)
    }

    /// The turn a new onset belongs to: the current one when it has not ended (a pause inside it), else the next.
    fn onset_turn(&mut self, start_ms: f64, item_id: &str, at: Instant) -> (usize, bool) {
        if let Some(t) = self.turn.as_mut().filter(|t| !t.ended) {
            t.item_id = item_id.to_string();
            return (t.idx, true);
        }
        let idx = self.next_turn;
        self.next_turn += 1;
        let (span, pause) = self.ctx.turns.get(idx).map_or((0.0, 0.0), |t| (t.span_ms, t.longest_pause_ms));
        let margin = match self.input {
            WireFormat::Pcm24 | WireFormat::Pcm16 => SPAN_MARGIN_MS,
            WireFormat::Pcmu => SPAN_MARGIN_MULAW_MS,
        };
        let silence = self.silence_ms();
        self.vad.set_long_pause((pause + PAUSE_MARGIN_MS - silence).max(PAUSE_MARGIN_MS));
        self.turn = Some(TurnProgress {
            idx,
            onset_at: at,
            onset_audio_ms: start_ms,
            min_end_ms: start_ms + span - margin,
            ended: false,
            ignoring: false,
            item_id: item_id.to_string(),
            started: false,
        });
        (idx, false)
    }

    fn on_onset(&mut self, start_ms: f64, at: Instant) {
        let item_id = self.new_id("item");
        let (idx, continuing) = self.onset_turn(start_ms, &item_id, at);
        let active = self.agent_active(at);
        let mut false_stop = false;
        if !continuing && self.ctx.turns.get(idx).is_some_and(|t| t.expect == Expect::Ignore) {
            // Always draw, so the stream of draws does not depend on timing.
            false_stop = chance(&mut self.rng, self.ctx.profile.false_stop_rate) && active;
            if !false_stop {
                if let Some(t) = self.turn.as_mut() {
                    t.ignoring = true;
                }
                return;
            }
        }
        let audio_start_ms = (start_ms - self.prefix_ms()).max(0.0).round() as u64;
        if let Some(t) = self.turn.as_mut() {
            t.started = true;
        }
        if active && self.interrupt.is_none() {
            let delay = self.ctx.profile.draw_interrupt_delay(&mut self.rng);
            let mut g = GroundTruth::new(&self.session_id, self.idx, idx, GroundTruthKind::Interrupt);
            g.onset_audio_ms = Some(start_ms);
            g.onset_at = Some(at);
            g.onset_ms = Some(self.ms(at));
            g.interrupt_delay_ms = Some(delay);
            g.false_stop = false_stop;
            let gt = self.shared.push(g);
            self.interrupt = Some(PendingInterrupt { due: at + ms_dur(delay), item_id, audio_start_ms, gt });
        } else if self.interrupt.is_none() {
            self.event(Event::SpeechStarted { audio_start_ms, item_id });
        }
    }

    fn fire_interrupt(&mut self, at: Instant) {
        let Some(p) = self.interrupt.take() else { return };
        self.event(Event::SpeechStarted { audio_start_ms: p.audio_start_ms, item_id: p.item_id });
        self.event(Event::Interrupted);
        let sent = Instant::now().max(at);
        let ms = self.ms(sent);
        self.gt(p.gt, |g| {
            g.speech_started_at = Some(sent);
            g.speech_started_ms = Some(ms);
        });
        let interrupt = self.turns.as_ref().is_none_or(|t| t.interrupt_response);
        if interrupt && let Some(rid) = self.resp.as_ref().map(|r| r.id.clone()) {
            self.cancel(at, "turn_detected");
            let done = Instant::now();
            let dms = self.ms(done);
            self.gt(p.gt, |g| {
                g.interrupted_response = Some(rid);
                g.response_done_at = Some(done);
                g.response_done_ms = Some(dms);
            });
        }
    }

    fn on_silence(&mut self, last_voiced_ms: f64, now_ms: f64, at: Instant) {
        let Some(t) = self.turn.clone().filter(|t| !t.ended) else {
            self.vad.end_speech();
            return;
        };
        let known = self.ctx.turns.get(t.idx).is_some();
        let long = self.ctx.turns.get(t.idx).map_or(0.0, |x| x.longest_pause_ms) + PAUSE_MARGIN_MS;
        let silence = self.silence_ms();
        if !known
            || last_voiced_ms >= t.min_end_ms
            || now_ms - last_voiced_ms >= long.max(silence + PAUSE_MARGIN_MS) - 1e-6
        {
            self.vad.end_speech();
            if let Some(tp) = self.turn.as_mut() {
                tp.ended = true;
            }
            if t.ignoring {
                return;
            }
            let end = self.end_of_speech(&t, last_voiced_ms, now_ms, at);
            if self.turns.as_ref().is_none_or(|td| td.create_response) {
                self.respond_to_turn(end, Instant::now(), None);
            } else {
                self.pending_turn = Some(end);
            }
        } else if !t.ignoring && chance(&mut self.rng, self.ctx.profile.takeover_rate) {
            // A pause inside the utterance, and the sim takes it for the end of the turn.
            self.vad.end_speech();
            let end = self.end_of_speech(&t, last_voiced_ms, now_ms, at);
            self.start_spoken(end, Instant::now(), None, GroundTruthKind::Takeover);
        }
    }

    /// speech_stopped, committed, the user item; returns the turn end (eos = when speech_stopped was sent).
    fn end_of_speech(&mut self, t: &TurnProgress, last_voiced_ms: f64, now_ms: f64, at: Instant) -> TurnEnd {
        if self.interrupt.is_some() {
            self.fire_interrupt(at);
        }
        if !t.started {
            let audio_start_ms = (t.onset_audio_ms - self.prefix_ms()).max(0.0).round() as u64;
            self.event(Event::SpeechStarted { audio_start_ms, item_id: t.item_id.clone() });
        }
        self.event(Event::SpeechStopped { audio_end_ms: now_ms.round() as u64, item_id: t.item_id.clone() });
        let eos_at = Instant::now().max(at);
        self.commit_user_item(t.item_id.clone());
        if let Some(text) = self.ctx.turns.get(t.idx).and_then(|x| x.text.clone()) {
            self.event(Event::UserTranscript { item_id: t.item_id.clone(), text, at: eos_at, audio_ms: now_ms });
        }
        TurnEnd {
            idx: t.idx,
            onset_at: Some(t.onset_at),
            onset_audio_ms: Some(t.onset_audio_ms),
            eos_at,
            eos_audio_ms: last_voiced_ms,
        }
    }

    /// The scripted response to a finished turn: a tool call where the turn expects one (and the session declared
    /// the tool), else the spoken reply.
    fn respond_to_turn(&mut self, end: TurnEnd, reference: Instant, create_at: Option<Instant>) {
        let calls: Vec<(String, Value, Vec<String>)> = self
            .ctx
            .turns
            .get(end.idx)
            .map(|t| t.tool_calls.iter().filter(|(n, ..)| self.tools.iter().any(|x| x == n)).cloned().collect())
            .unwrap_or_default();
        if calls.is_empty() {
            self.start_spoken(end, reference, create_at, GroundTruthKind::Reply);
        } else {
            self.start_tool(end, calls, reference, create_at);
        }
    }
}
