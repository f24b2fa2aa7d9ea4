//! The turn state machine: which turn owns which agent audio, when the next utterance may start, and every
//! per-turn measurement of docs/metrics.md. Pure logic over timestamped events, so it is tested deterministically.
//!
//! Attribution rules:
//! - A new agent audio item (a provider response that speaks) belongs to the latest turn that expects a reply
//!   (`respond`, `stop`, `no_takeover`) whose utterance onset is at or before the item's first chunk.
//! - A response's end (`ResponseDone`) belongs to the turn that owned its audio or tool call.
//! - A flush signal (`SpeechStarted` / `Interrupted`) while agent audio is playing cuts the timeline; if the latest
//!   started turn is a barge-in its stop is measured, if it is a backchannel it is a false stop.

use serde_json::Value as Json;
use tokio::time::{Duration, Instant};

use super::playback::{AudibleDetector, Playback};
use super::record::{TurnKind, TurnRecord};
use crate::scenario::{Expect, StartSpec, ToolSpec, TurnSpec};
use crate::targets::{AgentEvent, ErrorCategory, ResponseStatus, Stage};

/// A barge-in fails when the agent is still audible this long after the caller's onset.
pub const BARGE_IN_LIMIT: Duration = Duration::from_secs(2);

/// What the caller must do in answer to an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer a tool call.
    ToolResult {
        /// The provider's call id.
        call_id: String,
        /// The canned output (JSON text).
        output: String,
    },
    /// Tell the provider how much of an item the caller heard.
    Truncate {
        /// Item index.
        item: u32,
        /// Heard, ms.
        played_ms: u32,
    },
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed milliseconds from `a` to `b`.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}

#[derive(Debug, Default)]
struct TurnState {
    /// Frame at which the utterance starts, once scheduled.
    start_frame: Option<u64>,
    start: Option<Instant>,
    onset: Option<Instant>,
    eos: Option<Instant>,
    items: Vec<u32>,
    first_chunk_at: Option<Instant>,
    first_audible: Option<Instant>,
    last_heard_end: Option<Instant>,
    max_gap: Duration,
    speech_stopped: Option<Instant>,
    /// Pipeline stage boundaries before the reply's first audio, indexed by [`Stage`] (the latest of each).
    stages: [Option<Instant>; 6],
    reply_done: Option<Instant>,
    awaiting_followup: bool,
    tool_first_at: Option<Instant>,
    tools_succeeded: u32,
    tools_early: u32,
    tools_late: u32,
    tools_unexpected: u32,
    tools_malformed: u32,
    satisfied: Vec<bool>,
    // barge-in
    barge_resolved: bool,
    barge_ack: Option<Instant>,
    barge_stop: Option<Instant>,
    barge_na: bool,
    post_cancel_samples: usize,
    false_stop: bool,
    error: Option<(ErrorCategory, String)>,
    finalized: bool,
}

/// Per-item bookkeeping.
#[derive(Debug)]
struct Item {
    turn: Option<usize>,
    detector: AudibleDetector,
    /// (first sample index, play start) of each chunk until the first audible sample is found.
    chunk_starts: Vec<(usize, Instant)>,
    samples: usize,
}

/// Which call a tracker measures.
#[derive(Debug, Clone)]
pub struct CallId {
    /// Target name.
    pub target: String,
    /// Whether the target is simulated.
    pub simulated: bool,
    /// Call index.
    pub call: u32,
}

/// One call's turn state machine.
#[derive(Debug)]
pub struct Tracker {
    turns: Vec<TurnSpec>,
    tools: Vec<ToolSpec>,
    state: Vec<TurnState>,
    playback: Playback,
    out_rate: u32,
    items: Vec<Item>,
    /// The turn that owns the response in progress.
    open_response: Option<usize>,
    /// Index of the next turn to schedule.
    next_turn: usize,
    turn_timeout: Duration,
    /// Records of finalized turns not yet taken.
    done: Vec<TurnRecord>,
    target: String,
    simulated: bool,
    call: u32,
    /// When the call's utterances are scheduled from (audio time 0).
    t0: Instant,
    ended: Option<(ErrorCategory, String)>,
    /// The turn whose utterance caused the last cut.
    last_cut_turn: Option<usize>,
}

fn expects_reply(e: Expect) -> bool {
    matches!(e, Expect::Respond | Expect::Stop | Expect::NoTakeover)
}

fn kind_of(t: &TurnSpec) -> TurnKind {
    match t.expect {
        Expect::Stop => TurnKind::BargeIn,
        Expect::Ignore => TurnKind::Backchannel,
        Expect::NoTakeover => TurnKind::NoTakeover,
        Expect::Respond if !t.tool_calls.is_empty() => TurnKind::Tool,
        Expect::Respond => TurnKind::Plain,
    }
}

impl Tracker {
    /// A tracker for one call. `t0` is audio time zero; `out_rate` the agent audio's sample rate.
    pub fn new(
        turns: Vec<TurnSpec>,
        tools: Vec<ToolSpec>,
        t0: Instant,
        out_rate: u32,
        turn_timeout: Duration,
        id: CallId,
    ) -> Self {
        let state = turns
            .iter()
            .map(|t| TurnState { satisfied: vec![false; t.tool_calls.len()], ..Default::default() })
            .collect();
        Self {
            turns,
            tools,
            state,
            playback: Playback::new(out_rate),
            out_rate,
            items: Vec::new(),
            open_response: None,
            next_turn: 0,
            turn_timeout,
            done: Vec::new(),
            target: id.target,
            simulated: id.simulated,
            call: id.call,
            t0,
            ended: None,
            last_cut_turn: None,
        }
    }

    /// The turn whose utterance covers frame `k`, and the frame's index within the utterance.
    pub fn utterance_frame(&self, k: u64) -> Option<(usize, usize)> {
        // Only the most recent started turn can be sounding (utterances never overlap: the next starts after an
        // anchor that lies after the previous one's start; a long utterance is cut short by the next start).
        (0..self.next_turn).rev().find_map(|i| {
            let s = self.state[i].start_frame?;
            (k >= s).then(|| (i, (k - s) as usize))
        })
    }

    /// The latest turn whose utterance has started by `t`.
    fn latest_started(&self, t: Instant) -> Option<usize> {
        (0..self.next_turn).rev().find(|&i| self.state[i].start.is_some_and(|s| s <= t))
    }

    /// The latest reply-expecting turn whose onset is at or before `t`.
    fn reply_owner_at(&self, t: Instant) -> Option<usize> {
        (0..self.next_turn)
            .rev()
            .find(|&i| expects_reply(self.turns[i].expect) && self.state[i].onset.is_some_and(|o| o <= t))
    }

    /// The latest reply-expecting turn scheduled before turn `i`.
    fn owner_before(&self, i: usize) -> Option<usize> {
        (0..i).rev().find(|&j| expects_reply(self.turns[j].expect))
    }

    /// Schedules the next turn if its anchor is known. `first_free` is the first frame not yet sent, `frame` the
    /// frame duration. Returns the frame it starts at.
    pub fn schedule(&mut self, first_free: u64, frame: Duration) -> Option<u64> {
        let i = self.next_turn;
        if i >= self.turns.len() || self.ended.is_some() {
            return None;
        }
        let at = match (self.turns[i].start, self.owner_before(i)) {
            (StartSpec::AfterAgentDone { gap_ms }, None) => self.t0 + Duration::from_millis(gap_ms as u64),
            (StartSpec::AfterAgentDone { gap_ms }, Some(j)) => {
                self.reply_end(j)? + Duration::from_millis(gap_ms as u64)
            }
            (StartSpec::AfterAgentStart { delay_ms }, Some(j)) => {
                self.state[j].first_audible? + Duration::from_millis(delay_ms as u64)
            }
            (StartSpec::AfterAgentStart { .. }, None) => return None,
        };
        let since = at.saturating_duration_since(self.t0).as_nanos();
        let k = (since.div_ceil(frame.as_nanos()) as u64).max(first_free);
        let start = self.t0 + frame * k as u32;
        let a = &self.turns[i].audio;
        let st = &mut self.state[i];
        st.start_frame = Some(k);
        st.start = Some(start);
        st.onset = Some(start + Duration::from_secs_f64(a.speech_start_ms / 1000.0));
        st.eos = Some(start + Duration::from_secs_f64(a.speech_end_ms / 1000.0));
        self.next_turn += 1;
        Some(k)
    }

    /// When turn `j`'s reply has finished for the caller: the response is done and its audio has played out.
    fn reply_end(&self, j: usize) -> Option<Instant> {
        let st = &self.state[j];
        let done = st.reply_done?;
        Some(st.last_heard_end.map_or(done, |e| e.max(done)))
    }

    /// Handles one agent event; returns what the caller must send.
    pub fn on_event(&mut self, ev: &AgentEvent) -> Vec<Action> {
        match ev {
            AgentEvent::Audio { at, item, samples } => {
                self.on_audio(*at, *item, samples);
                vec![]
            }
            AgentEvent::SpeechStarted { at } | AgentEvent::Interrupted { at } => self.on_flush(*at),
            AgentEvent::SpeechStopped { at } => {
                if let Some(i) = self.latest_started(*at)
                    && self.state[i].first_chunk_at.is_none()
                {
                    self.state[i].speech_stopped = Some(*at);
                }
                vec![]
            }
            AgentEvent::ToolCall { at, call_id, name, arguments, .. } => {
                self.on_tool_call(*at, call_id, name, arguments)
            }
            AgentEvent::ResponseDone { at, status, had_tool_call } => {
                let owner = self.open_response.take().or_else(|| {
                    (0..self.next_turn).rev().find(|&i| {
                        expects_reply(self.turns[i].expect)
                            && self.state[i].reply_done.is_none()
                            && self.state[i].onset.is_some_and(|o| o <= *at)
                    })
                });
                if let Some(j) = owner {
                    if *had_tool_call && *status == ResponseStatus::Completed {
                        self.state[j].awaiting_followup = true;
                    } else {
                        self.state[j].reply_done = Some(*at);
                        self.state[j].awaiting_followup = false;
                    }
                }
                vec![]
            }
            AgentEvent::Stage { at, stage } => {
                // A stage belongs to the reply of the latest started turn, and only up to that reply's first audio
                // (a tool turn's second chat request replaces the first: the last one before the audio counts).
                if let Some(i) = self.latest_started(*at)
                    && self.state[i].first_chunk_at.is_none_or(|f| *at <= f)
                {
                    let st = &mut self.state[i];
                    st.stages[*stage as usize] = Some(*at);
                    if *stage == Stage::EndOfTurn {
                        st.speech_stopped = Some(*at);
                    }
                }
                vec![]
            }
            AgentEvent::Transcript { .. } => vec![],
            AgentEvent::Error { at, category, message } => {
                let i = self.reply_owner_at(*at).or_else(|| self.latest_started(*at)).unwrap_or(0);
                if i < self.state.len() && self.state[i].error.is_none() {
                    self.state[i].error = Some((*category, message.clone()));
                }
                vec![]
            }
            AgentEvent::Closed { reason, .. } => {
                self.ended.get_or_insert((
                    ErrorCategory::Disconnect,
                    format!("the provider closed the connection: {reason}"),
                ));
                vec![]
            }
        }
    }

    fn on_audio(&mut self, at: Instant, item: u32, samples: &[i16]) {
        while self.items.len() <= item as usize {
            self.items.push(Item {
                turn: None,
                detector: AudibleDetector::new(self.out_rate),
                chunk_starts: Vec::new(),
                samples: 0,
            });
        }
        let idx = item as usize;
        if self.items[idx].samples == 0 && self.items[idx].turn.is_none() {
            let owner = self.reply_owner_at(at);
            self.items[idx].turn = owner;
            if let Some(j) = owner {
                self.state[j].items.push(item);
                if self.open_response.is_none() {
                    self.open_response = Some(j);
                }
            }
        }
        let owner = self.items[idx].turn;
        let Some(placed) = self.playback.push(at, item, samples.len()) else {
            // Audio of a cut item: wasted, and a sign of a bad client or server. It counts against the turn whose
            // utterance caused the cut.
            if let Some(k) = self.last_cut_turn.or(owner) {
                self.state[k].post_cancel_samples += samples.len();
            }
            self.items[idx].samples += samples.len();
            return;
        };
        let it = &mut self.items[idx];
        let first_index = it.samples;
        it.samples += samples.len();
        if it.detector.found().is_none() {
            it.chunk_starts.push((first_index, placed.start));
        }
        let Some(j) = owner else { return };
        let st = &mut self.state[j];
        if st.first_chunk_at.is_none() {
            st.first_chunk_at = Some(at);
        }
        // Silence the caller heard inside the reply (an underrun, or the wait between two responses).
        if let Some(prev) = st.last_heard_end
            && placed.start > prev
        {
            st.max_gap = st.max_gap.max(placed.start - prev);
        }
        st.last_heard_end = Some(placed.end);
        if st.first_audible.is_none()
            && let Some(s) = it.detector.feed(samples)
        {
            let (cs, cstart) =
                it.chunk_starts.iter().rev().find(|(i, _)| *i <= s).copied().unwrap_or((0, placed.start));
            let t = cstart + Duration::from_nanos(((s - cs) as u128 * 1_000_000_000 / self.out_rate as u128) as u64);
            st.first_audible = Some(t);
            it.chunk_starts.clear();
        }
    }

    fn on_flush(&mut self, at: Instant) -> Vec<Action> {
        let Some(cut) = self.playback.cut(at) else {
            return vec![];
        };
        self.last_cut_turn = self.latest_started(at);
        if let Some(owner) = self.items.get(cut.item as usize).and_then(|i| i.turn) {
            let st = &mut self.state[owner];
            st.last_heard_end = Some(cut.heard_end);
        }
        if let Some(i) = self.latest_started(at) {
            match self.turns[i].expect {
                Expect::Stop if !self.state[i].barge_resolved => {
                    let st = &mut self.state[i];
                    st.barge_ack = Some(at);
                    st.barge_stop = Some(cut.heard_end);
                    st.barge_resolved = true;
                }
                Expect::Ignore => self.state[i].false_stop = true,
                _ => {}
            }
        }
        vec![Action::Truncate { item: cut.item, played_ms: cut.played_ms }]
    }

    fn on_tool_call(&mut self, at: Instant, call_id: &str, name: &str, arguments: &str) -> Vec<Action> {
        let owner = self.reply_owner_at(at).or_else(|| self.latest_started(at));
        let tool = self.tools.iter().find(|t| t.name == name);
        let parsed: Option<Json> = serde_json::from_str::<Json>(arguments).ok().filter(|v| v.is_object());
        let output = match (tool, &parsed) {
            (Some(t), Some(args)) => t.result_for(args).to_string(),
            (Some(t), None) => t.default_result.to_string(),
            (None, _) => serde_json::json!({"error": format!("unknown tool {name}")}).to_string(),
        };
        if let Some(j) = owner {
            if self.open_response.is_none() {
                self.open_response = Some(j);
            }
            let malformed = match (tool, &parsed) {
                (_, None) => true,
                (Some(t), Some(args)) => !conforms(args, &t.parameters),
                (None, Some(_)) => false,
            };
            let st_first = self.state[j].tool_first_at.is_none();
            if st_first {
                self.state[j].tool_first_at = Some(at);
            }
            if malformed {
                self.state[j].tools_malformed += 1;
            } else {
                let args = parsed.as_ref().expect("parsed when not malformed");
                let here = self.turns[j]
                    .tool_calls
                    .iter()
                    .enumerate()
                    .position(|(k, e)| !self.state[j].satisfied[k] && e.matches(name, args));
                if let Some(k) = here {
                    self.state[j].satisfied[k] = true;
                    self.state[j].tools_succeeded += 1;
                } else if ((j + 1)..self.turns.len())
                    .any(|i| self.turns[i].tool_calls.iter().any(|e| e.matches(name, args)))
                {
                    self.state[j].tools_early += 1;
                } else if (0..j).any(|i| {
                    self.turns[i]
                        .tool_calls
                        .iter()
                        .enumerate()
                        .any(|(k, e)| !self.state[i].satisfied[k] && e.matches(name, args))
                }) {
                    self.state[j].tools_late += 1;
                } else {
                    self.state[j].tools_unexpected += 1;
                }
            }
        }
        vec![Action::ToolResult { call_id: call_id.to_string(), output }]
    }

    /// Advances time: resolves barge-ins, finalizes turns, checks timeouts. Returns true when the call is over.
    pub fn poll(&mut self, now: Instant) -> bool {
        for i in 0..self.next_turn {
            if self.state[i].finalized {
                continue;
            }
            let t = &self.turns[i];
            // A barge-in nobody signalled: resolved when the agent's audio ends by itself. Whether the agent was
            // talking at all is judged once the onset has passed (its audio may still be arriving before that).
            if t.expect == Expect::Stop && !self.state[i].barge_resolved {
                let onset = self.state[i].onset.expect("started turns have an onset");
                match self.owner_before(i) {
                    Some(j) if now >= onset => {
                        if !self.playback.playing_at(onset) && self.state[j].last_heard_end.is_none_or(|e| e <= onset) {
                            self.state[i].barge_na = true;
                            self.state[i].barge_resolved = true;
                        } else if let Some(e) = self.state[j].last_heard_end
                            && e <= now
                            && !self.playback.playing_at(now)
                            && self.state[j].reply_done.is_some()
                        {
                            self.state[i].barge_stop = Some(e);
                            self.state[i].barge_resolved = true;
                        }
                    }
                    Some(_) => {}
                    None => {
                        self.state[i].barge_na = true;
                        self.state[i].barge_resolved = true;
                    }
                }
            }
            let ready = if expects_reply(t.expect) {
                self.reply_end(i).is_some_and(|e| e <= now)
                    && (t.expect != Expect::Stop || self.state[i].barge_resolved)
            } else {
                // A backchannel is judged once its owner's reply is over (or the next turn has started).
                let owner = self.owner_before(i);
                owner.is_none_or(|j| self.reply_end(j).is_some_and(|e| e <= now)) || self.next_turn > i + 1
            };
            if ready {
                self.finalize(i, None);
                continue;
            }
            // Timeouts: a reply that has not come within the limit after the caller stopped talking.
            if expects_reply(t.expect) {
                let eos = self.state[i].eos.expect("started turns have an eos");
                if now > eos + self.turn_timeout && self.state[i].reply_done.is_none() {
                    self.ended.get_or_insert((
                        ErrorCategory::Timeout,
                        format!(
                            "no complete reply within {} ms of the end of turn {}",
                            self.turn_timeout.as_millis(),
                            i + 1
                        ),
                    ));
                }
            }
        }
        // A turn waiting for an anchor that never comes (the agent never starts or never finishes).
        if self.next_turn < self.turns.len()
            && self.ended.is_none()
            && let Some(j) = self.owner_before(self.next_turn)
            && let Some(eos) = self.state[j].eos
            && now > eos + self.turn_timeout
        {
            self.ended = Some((
                ErrorCategory::Timeout,
                format!("turn {} never got the agent reply it waits for", self.next_turn + 1),
            ));
        }
        if let Some((cat, msg)) = self.ended.clone() {
            for i in 0..self.next_turn {
                if !self.state[i].finalized {
                    self.finalize(i, Some((cat, msg.clone())));
                }
            }
            return true;
        }
        self.next_turn == self.turns.len() && self.state.iter().all(|s| s.finalized)
    }

    /// Ends the call early (Ctrl-C, a send failure): unfinished turns are recorded with this error.
    pub fn abort(&mut self, category: ErrorCategory, message: &str) {
        self.ended.get_or_insert((category, message.to_string()));
    }

    /// Why the call ended early, if it did.
    pub fn ended(&self) -> Option<&(ErrorCategory, String)> {
        self.ended.as_ref()
    }

    /// Finalized turn records not yet taken.
    pub fn take_records(&mut self) -> Vec<TurnRecord> {
        std::mem::take(&mut self.done)
    }

    /// Turns that started.
    pub fn turns_started(&self) -> usize {
        self.next_turn
    }

    /// Scheduled `user_eos` of turn `i`, once started (for ground-truth joins).
    pub fn user_eos(&self, i: usize) -> Option<Instant> {
        self.state.get(i).and_then(|s| s.eos)
    }

    fn finalize(&mut self, i: usize, failure: Option<(ErrorCategory, String)>) {
        let t = &self.turns[i];
        let st = &mut self.state[i];
        st.finalized = true;
        let onset = st.onset.expect("started");
        let eos = st.eos.expect("started");
        let mut r = TurnRecord {
            target: self.target.clone(),
            simulated: self.simulated,
            call: self.call,
            turn: i as u32,
            turn_id: t.id.clone(),
            kind: Some(kind_of(t)),
            utterance: t.audio.id.clone(),
            user_onset_ms: ms(onset - self.t0),
            user_eos_ms: ms(eos - self.t0),
            tools_expected: t.tool_calls.len() as u32,
            tools_succeeded: st.tools_succeeded,
            tools_early: st.tools_early,
            tools_late: st.tools_late,
            tools_unexpected: st.tools_unexpected,
            tools_malformed: st.tools_malformed,
            tools_expected_names: t.tool_calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(";"),
            tools_succeeded_names: t
                .tool_calls
                .iter()
                .zip(&st.satisfied)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| c.name.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            ..Default::default()
        };
        if expects_reply(t.expect) {
            r.ttfb_ms = st.first_chunk_at.map(|a| signed_ms(eos, a));
            if let (Some(a), Some(f)) = (st.first_chunk_at, st.first_audible) {
                r.leading_silence_ms = Some(signed_ms(a, f));
            }
            r.ttfa_ms = st.first_audible.map(|f| signed_ms(eos, f));
            r.agent_audio_start_ms = st.first_audible.map(|f| signed_ms(self.t0, f));
            r.agent_audio_end_ms = st.last_heard_end.map(|e| signed_ms(self.t0, e));
            r.talk_over_ms = r.ttfa_ms.filter(|v| *v < 0.0).map(|v| -v);
            r.endpointing_ms = st.speech_stopped.map(|s| signed_ms(eos, s));
            r.tool_call_ms = st.tool_first_at.map(|a| signed_ms(eos, a));
            let stage = |k: Stage| st.stages[k as usize];
            let span = |a: Option<Instant>, b: Option<Instant>| a.zip(b).map(|(a, b)| signed_ms(a, b));
            r.stt_ms = span(Some(eos), stage(Stage::Transcript));
            r.llm_start_ms = span(Some(eos), stage(Stage::LlmRequest));
            r.llm_ttft_ms = span(stage(Stage::LlmRequest), stage(Stage::LlmFirstToken));
            r.tts_start_ms = span(Some(eos), stage(Stage::TtsRequest));
            r.tts_ttfb_ms = span(stage(Stage::TtsRequest), stage(Stage::TtsFirstByte));
            r.max_silence_ms = r.ttfa_ms.map(|v| v.max(0.0).max(ms(st.max_gap)));
            if t.expect == Expect::NoTakeover {
                r.premature_takeover = Some(st.first_audible.is_some_and(|f| f < eos));
            }
        }
        if t.expect == Expect::Stop && !st.barge_na {
            r.barge_in_ack_ms = st.barge_ack.map(|a| signed_ms(onset, a));
            r.barge_in_stop_ms = st.barge_stop.map(|s| signed_ms(onset, s));
            r.post_cancel_audio_ms = Some(st.post_cancel_samples as f64 * 1000.0 / self.out_rate as f64);
            r.barge_in_failed = match st.barge_stop {
                Some(s) => Some(s > onset + BARGE_IN_LIMIT),
                None => Some(true),
            };
        }
        if t.expect == Expect::Ignore {
            r.false_stop = Some(st.false_stop);
        }
        let err =
            st.error.clone().or(failure
                .filter(|_| !(expects_reply(t.expect) && st.reply_done.is_some() && st.last_heard_end.is_some())));
        if let Some((c, m)) = err {
            r.error = Some(c);
            r.error_message = Some(m);
        }
        self.done.push(r);
    }
}

/// Whether tool arguments satisfy the basics of their JSON Schema: required properties present, declared
/// primitive types respected.
pub fn conforms(args: &Json, schema: &Json) -> bool {
    let Some(obj) = args.as_object() else { return false };
    if let Some(req) = schema["required"].as_array()
        && req.iter().filter_map(|r| r.as_str()).any(|r| !obj.contains_key(r))
    {
        return false;
    }
    let Some(props) = schema["properties"].as_object() else { return true };
    obj.iter().all(|(k, v)| match props.get(k).and_then(|p| p["type"].as_str()) {
        Some("integer") => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        Some("number") => v.is_number(),
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{AudioRef, ExpectedCall, Matcher};
    use std::path::PathBuf;

    const RATE: u32 = 24_000;

    fn ms_(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    /// A turn whose utterance has speech from 300 ms to 1300 ms of its WAV.
    fn turn(i: usize, expect: Expect, start: StartSpec) -> TurnSpec {
        TurnSpec {
            index: i,
            id: format!("t{i}"),
            audio: AudioRef {
                path: PathBuf::new(),
                id: format!("u{i}"),
                text: None,
                sample_rate: RATE,
                duration_ms: 1600.0,
                speech_start_ms: 300.0,
                speech_end_ms: 1300.0,
                pauses_ms: vec![],
            },
            start,
            expect,
            tool_calls: vec![],
            reply: None,
        }
    }

    fn id() -> CallId {
        CallId { target: "t".into(), simulated: true, call: 0 }
    }

    fn done(gap: u32) -> StartSpec {
        StartSpec::AfterAgentDone { gap_ms: gap }
    }

    fn loud(ms: u64) -> Vec<i16> {
        (0..(RATE as u64 * ms / 1000)).map(|i| if i % 2 == 0 { 8000 } else { -8000 }).collect()
    }

    fn quiet(ms: u64) -> Vec<i16> {
        vec![0; (RATE as u64 * ms / 1000) as usize]
    }

    fn tracker(turns: Vec<TurnSpec>, t0: Instant) -> Tracker {
        Tracker::new(turns, vec![], t0, RATE, ms_(5000), id())
    }

    fn audio(tr: &mut Tracker, at: Instant, item: u32, samples: Vec<i16>) {
        tr.on_event(&AgentEvent::Audio { at, item, samples });
    }

    fn response_done(tr: &mut Tracker, at: Instant) {
        tr.on_event(&AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false });
    }

    #[tokio::test(start_paused = true)]
    async fn pipeline_stages_are_the_last_before_the_reply_audio() {
        let t0 = Instant::now();
        let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
        assert_eq!(tr.schedule(0, ms_(20)), Some(0));
        let eos = t0 + ms_(1300);
        let stage = |tr: &mut Tracker, ms: u64, stage: Stage| {
            tr.on_event(&AgentEvent::Stage { at: eos + ms_(ms), stage });
        };
        stage(&mut tr, 500, Stage::EndOfTurn);
        stage(&mut tr, 650, Stage::Transcript);
        // A tool round: the first chat request is replaced by the one whose answer is spoken.
        stage(&mut tr, 651, Stage::LlmRequest);
        stage(&mut tr, 1100, Stage::LlmRequest);
        stage(&mut tr, 1500, Stage::LlmFirstToken);
        stage(&mut tr, 1560, Stage::TtsRequest);
        stage(&mut tr, 1700, Stage::TtsFirstByte);
        audio(&mut tr, eos + ms_(1700), 0, quiet(30));
        audio(&mut tr, eos + ms_(1701), 0, loud(400));
        // After the reply's first audio, later requests (the next sentences) do not count.
        stage(&mut tr, 1900, Stage::TtsRequest);
        stage(&mut tr, 2000, Stage::TtsFirstByte);
        response_done(&mut tr, eos + ms_(2100));
        assert!(tr.poll(eos + ms_(2300)));
        let r = tr.take_records().pop().unwrap();
        assert_eq!(r.endpointing_ms, Some(500.0));
        assert_eq!(r.stt_ms, Some(650.0));
        assert_eq!(r.llm_start_ms, Some(1100.0));
        assert_eq!(r.llm_ttft_ms, Some(400.0));
        assert_eq!(r.tts_start_ms, Some(1560.0));
        assert_eq!(r.tts_ttfb_ms, Some(140.0));
        assert_eq!(r.ttfa_ms, Some(1730.0));
        let parts = r.tts_start_ms.unwrap() + r.tts_ttfb_ms.unwrap() + r.leading_silence_ms.unwrap();
        assert_eq!(r.ttfa_ms, Some(parts));
    }

    #[tokio::test(start_paused = true)]
    async fn ttfa_is_ttfb_plus_leading_silence() {
        let t0 = Instant::now();
        let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
        assert_eq!(tr.schedule(0, ms_(20)), Some(0));
        let eos = t0 + ms_(1300);
        tr.on_event(&AgentEvent::SpeechStopped { at: eos + ms_(200) });
        // First chunk 500 ms after eos: 120 ms of silence, then speech; sent in a burst.
        audio(&mut tr, eos + ms_(500), 0, quiet(120));
        audio(&mut tr, eos + ms_(501), 0, loud(400));
        response_done(&mut tr, eos + ms_(510));
        assert!(!tr.poll(eos + ms_(600)), "the reply is still playing");
        assert!(tr.poll(eos + ms_(1100)));
        let r = tr.take_records().pop().unwrap();
        assert_eq!(r.ttfb_ms, Some(500.0));
        assert_eq!(r.leading_silence_ms, Some(120.0));
        assert_eq!(r.ttfa_ms, Some(620.0));
        assert_eq!(r.ttfa_ms.unwrap(), r.ttfb_ms.unwrap() + r.leading_silence_ms.unwrap());
        assert_eq!(r.endpointing_ms, Some(200.0));
        assert_eq!(r.talk_over_ms, None);
        assert_eq!(r.max_silence_ms, Some(620.0));
        assert_eq!(r.error, None);
    }

    #[tokio::test(start_paused = true)]
    async fn talk_over_is_reported_not_clamped() {
        let t0 = Instant::now();
        let mut tr = tracker(vec![turn(0, Expect::NoTakeover, done(0))], t0);
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        audio(&mut tr, eos - ms_(200), 0, loud(300));
        response_done(&mut tr, eos);
        assert!(tr.poll(eos + ms_(200)));
        let r = tr.take_records().pop().unwrap();
        assert_eq!(r.ttfa_ms, Some(-200.0));
        assert_eq!(r.talk_over_ms, Some(200.0));
        assert_eq!(r.premature_takeover, Some(true));
        assert_eq!(r.metric("ttfa"), None, "a negative TTFA never enters the TTFA distribution");
    }

    #[tokio::test(start_paused = true)]
    async fn underrun_mid_reply_counts_as_silence() {
        let t0 = Instant::now();
        let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        audio(&mut tr, eos + ms_(300), 0, loud(200));
        // The next chunk comes 900 ms later: the caller hears 700 ms of nothing mid-reply.
        audio(&mut tr, eos + ms_(1200), 0, loud(200));
        response_done(&mut tr, eos + ms_(1200));
        assert!(tr.poll(eos + ms_(2000)));
        let r = tr.take_records().pop().unwrap();
        assert_eq!(r.ttfa_ms, Some(300.0));
        assert_eq!(r.max_silence_ms, Some(700.0));
    }

    /// Turn 0 gets a 5-second reply sent in one burst; turn 1 barges in 1 s after it became audible.
    fn barge_setup(t0: Instant) -> (Tracker, Instant) {
        let mut tr = tracker(
            vec![
                turn(0, Expect::Respond, done(0)),
                turn(1, Expect::Stop, StartSpec::AfterAgentStart { delay_ms: 1000 }),
            ],
            t0,
        );
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        for _ in 0..50 {
            audio(&mut tr, eos + ms_(400), 0, loud(100));
        }
        // Turn 1 is anchored on turn 0's first audible sample (eos + 400 ms) + 1000 ms.
        assert_eq!(tr.schedule(50, ms_(20)), Some(((1300 + 400 + 1000) / 20) as u64));
        (tr, eos)
    }

    #[tokio::test(start_paused = true)]
    async fn barge_in_stop_is_measured_to_the_cut() {
        let t0 = Instant::now();
        let (mut tr, eos) = barge_setup(t0);
        let onset = eos + ms_(1400) + ms_(300);
        let acts = tr.on_event(&AgentEvent::SpeechStarted { at: onset + ms_(250) });
        assert!(matches!(acts[..], [Action::Truncate { item: 0, played_ms: 1550 }]), "{acts:?}");
        // The provider keeps sending 300 ms of the cancelled item: post-cancel audio, not played.
        audio(&mut tr, onset + ms_(260), 0, loud(300));
        tr.on_event(&AgentEvent::ResponseDone {
            at: onset + ms_(270),
            status: ResponseStatus::Cancelled,
            had_tool_call: false,
        });
        // The reply to the barge-in.
        let eos1 = t0 + ms_(2700 + 1300);
        audio(&mut tr, eos1 + ms_(400), 1, loud(300));
        response_done(&mut tr, eos1 + ms_(400));
        assert!(tr.poll(eos1 + ms_(1000)));
        let recs = tr.take_records();
        let r = recs.iter().find(|r| r.turn == 1).unwrap();
        assert_eq!(r.barge_in_stop_ms, Some(250.0));
        assert_eq!(r.barge_in_ack_ms, Some(250.0));
        assert_eq!(r.post_cancel_audio_ms, Some(300.0));
        assert_eq!(r.barge_in_failed, Some(false));
        assert_eq!(r.ttfa_ms, Some(400.0));
    }

    #[tokio::test(start_paused = true)]
    async fn missed_barge_in_fails_after_two_seconds() {
        let t0 = Instant::now();
        let (mut tr, eos) = barge_setup(t0);
        let onset = eos + ms_(1700);
        // No interruption signal; the 5 s reply plays out (ends at eos + 400 + 5000).
        response_done(&mut tr, eos + ms_(500));
        let eos1 = t0 + ms_(2700 + 1300);
        audio(&mut tr, eos + ms_(5500), 1, loud(100));
        response_done(&mut tr, eos + ms_(5500));
        assert!(tr.poll(eos1 + ms_(6000)));
        let r = tr.take_records().into_iter().find(|r| r.turn == 1).unwrap();
        assert_eq!(r.barge_in_failed, Some(true));
        assert_eq!(r.barge_in_stop_ms, Some(((eos + ms_(5400)) - onset).as_secs_f64() * 1000.0));
        assert_eq!(r.barge_in_ack_ms, None);
    }

    #[tokio::test(start_paused = true)]
    async fn backchannel_flush_is_a_false_stop() {
        let t0 = Instant::now();
        let mut tr = tracker(
            vec![
                turn(0, Expect::Respond, done(0)),
                turn(1, Expect::Ignore, StartSpec::AfterAgentStart { delay_ms: 500 }),
            ],
            t0,
        );
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        audio(&mut tr, eos + ms_(300), 0, loud(3000));
        tr.schedule(10, ms_(20));
        let onset = eos + ms_(800) + ms_(300);
        tr.on_event(&AgentEvent::SpeechStarted { at: onset + ms_(100) });
        tr.on_event(&AgentEvent::ResponseDone {
            at: onset + ms_(120),
            status: ResponseStatus::Cancelled,
            had_tool_call: false,
        });
        assert!(tr.poll(onset + ms_(2000)));
        let r = tr.take_records().into_iter().find(|r| r.turn == 1).unwrap();
        assert_eq!(r.false_stop, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn no_reply_times_out_as_a_result() {
        let t0 = Instant::now();
        let mut tr = tracker(vec![turn(0, Expect::Respond, done(0)), turn(1, Expect::Respond, done(500))], t0);
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        assert!(!tr.poll(eos + ms_(4999)));
        assert!(tr.poll(eos + ms_(5001)));
        let recs = tr.take_records();
        assert_eq!(recs.len(), 1, "the second turn never started");
        assert_eq!(recs[0].error, Some(ErrorCategory::Timeout));
        assert_eq!(recs[0].ttfa_ms, None);
    }

    #[tokio::test(start_paused = true)]
    async fn tool_calls_are_scored_and_answered() {
        let t0 = Instant::now();
        let mut a = turn(0, Expect::Respond, done(0));
        let matcher =
            |src: &str| Matcher::compile(&toml::from_str::<toml::Table>(&format!("x = {src}")).unwrap()["x"]).unwrap();
        a.tool_calls =
            vec![ExpectedCall { name: "check".into(), args: vec![("n".into(), matcher("4"))], sim_args: Json::Null }];
        let mut b = turn(1, Expect::Respond, done(0));
        b.tool_calls = vec![ExpectedCall { name: "book".into(), args: vec![], sim_args: Json::Null }];
        let tools = vec![
            ToolSpec {
                name: "check".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
                results: vec![(vec![("n".into(), matcher("4"))], serde_json::json!({"ok": 4}))],
                default_result: serde_json::json!({"ok": false}),
            },
            ToolSpec {
                name: "book".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object"}),
                results: vec![],
                default_result: serde_json::json!({"booked": true}),
            },
        ];
        let mut tr = Tracker::new(vec![a, b], tools, t0, RATE, ms_(5000), id());
        tr.schedule(0, ms_(20));
        let eos = t0 + ms_(1300);
        let call = |tr: &mut Tracker, at: Instant, name: &str, args: &str| {
            tr.on_event(&AgentEvent::ToolCall {
                at,
                first_at: at,
                call_id: "c".into(),
                name: name.into(),
                arguments: args.into(),
            })
        };
        let acts = call(&mut tr, eos + ms_(100), "check", r#"{"n": 8}"#);
        assert_eq!(acts, vec![Action::ToolResult { call_id: "c".into(), output: r#"{"ok":false}"#.into() }]);
        let acts = call(&mut tr, eos + ms_(200), "check", r#"{"n": 4}"#);
        assert_eq!(acts, vec![Action::ToolResult { call_id: "c".into(), output: r#"{"ok":4}"#.into() }]);
        call(&mut tr, eos + ms_(300), "book", "{}");
        call(&mut tr, eos + ms_(400), "check", r#"{"n": "#);
        call(&mut tr, eos + ms_(500), "check", r#"{"m": 1}"#);
        audio(&mut tr, eos + ms_(600), 0, loud(100));
        response_done(&mut tr, eos + ms_(600));
        tr.poll(eos + ms_(800));
        let r = tr.take_records().into_iter().find(|r| r.turn == 0).unwrap();
        assert_eq!(
            (r.tools_expected, r.tools_succeeded, r.tools_early, r.tools_unexpected, r.tools_malformed),
            (1, 1, 1, 1, 2)
        );
        assert_eq!(r.tool_call_ms, Some(100.0));
    }
}
