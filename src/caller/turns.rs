//! The turn state machine: which turn owns which agent audio, when the next utterance may start, and every
//! per-turn measurement of docs/metrics.md. Pure logic over timestamped events, so it is tested deterministically.
//!
//! A turn's lifecycle: not started (the tracker holds no state for it) → started (its utterance's schedule is
//! fixed, see [`state::Utterance`]) → its reply heard and, for a barge-in, its interruption resolved → finalized
//! (its record written). A finalized turn's reply still counts for the turns anchored on it.
//!
//! Attribution rules:
//! - A new agent audio item (a provider response that speaks) belongs to the latest turn that expects a reply
//!   (`respond`, `stop`, `no_takeover`) whose utterance onset is at or before the item's first chunk.
//! - A response's end (`ResponseDone`) belongs to the turn that owned its audio or tool call.
//! - A flush signal (`SpeechStarted` / `Interrupted`) while agent audio is playing cuts the timeline; if the latest
//!   started turn is a barge-in its stop is measured, if it is a backchannel it is a false stop.

mod state;
#[cfg(test)]
mod tests;
mod tools;

use tokio::time::{Duration, Instant};

use self::state::{Barge, Reply, Turn, Utterance};
pub use self::tools::conforms;
use super::playback::{AudibleDetector, Playback};
use super::record::{ToolCallLog, TurnKind, TurnRecord};
use super::recording::Recording;
use crate::redact::Redactor;
use crate::scenario::{Expect, StartSpec, State, StateExpect, ToolSpec, TurnSpec};
use crate::targets::{AgentEvent, ErrorCategory, ResponseStatus, Stage};

/// A barge-in fails when the agent is still audible this long after the caller's onset.
pub const BARGE_IN_LIMIT: Duration = Duration::from_secs(2);

/// The most transcript a turn keeps, bytes: a provider that streams text forever cannot grow a run's memory.
pub const MAX_SAID: usize = 4096;

/// The most tool calls a call's log keeps.
pub const MAX_TOOL_LOG: usize = 64;

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
    /// The started turns, in order: turn `i` has started when `i < state.len()`.
    state: Vec<Turn>,
    /// An error reported before the first turn started: it goes to the first turn.
    early_error: Option<(ErrorCategory, String)>,
    playback: Playback,
    out_rate: u32,
    items: Vec<Item>,
    /// The turn that owns the response in progress.
    open_response: Option<usize>,
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
    /// The rows the call's tools recorded.
    tables: State,
    /// Every tool call, in order (bounded by [`MAX_TOOL_LOG`]; arguments redacted when the call ends).
    tool_log: Vec<ToolCallLog>,
    /// Whether any transcript came in the call so far (a protocol that never sends one leaves content unjudged).
    any_transcript: bool,
    /// Masks personal data in everything the tracker writes; learns the names the agent's arguments carry.
    redactor: Redactor,
    /// The call's audio, when it is recorded.
    recording: Option<Recording>,
}

/// What a call leaves beyond its turns: its task verdict and its tool calls (see [`Tracker::call_outcome`]).
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    /// `[[expect_state]]`'s verdict and detail, when the scenario has expectations.
    pub task: Option<(bool, String)>,
    /// Every tool call, arguments redacted.
    pub tool_calls: Vec<ToolCallLog>,
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
        Self {
            state: Vec::with_capacity(turns.len()),
            turns,
            tools,
            early_error: None,
            playback: Playback::new(out_rate),
            out_rate,
            items: Vec::new(),
            open_response: None,
            turn_timeout,
            done: Vec::new(),
            target: id.target,
            simulated: id.simulated,
            call: id.call,
            t0,
            ended: None,
            last_cut_turn: None,
            tables: State::default(),
            tool_log: Vec::new(),
            any_transcript: false,
            redactor: Redactor::default(),
            recording: None,
        }
    }

    /// Keeps the call's audio in `recording` (the caller's frames as [`Tracker::record_sent`] gives them, the
    /// agent's as the playback timeline places and cuts them).
    pub fn with_recording(mut self, recording: Recording) -> Self {
        self.recording = Some(recording);
        self
    }

    /// The next frame sent carried `samples`.
    pub fn record_sent(&mut self, samples: &std::sync::Arc<[i16]>) {
        if let Some(r) = &mut self.recording {
            r.sent(samples);
        }
    }

    /// The recording, once the call is over.
    pub fn take_recording(&mut self) -> Option<Recording> {
        self.recording.take()
    }

    /// Masks what `redactor` masks in every record (default: nothing).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The call's task verdict against `expects` (none when there are none) and its tool calls, redacted.
    pub fn call_outcome(&self, expects: &[StateExpect]) -> CallOutcome {
        let task = (!expects.is_empty()).then(|| {
            let (ok, detail) = self.tables.judge(expects);
            (ok, self.redactor.text(&detail))
        });
        let tool_calls = self
            .tool_log
            .iter()
            .map(|c| ToolCallLog { arguments: self.redactor.json(&c.arguments), ..c.clone() })
            .collect();
        CallOutcome { task, tool_calls }
    }

    /// Masks `text` as every output must be.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.text(text)
    }

    /// The redactor, with the names the call's tool arguments taught it.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The turn whose utterance covers frame `k`, and the frame's index within the utterance.
    pub fn utterance_frame(&self, k: u64) -> Option<(usize, usize)> {
        // Only the most recent started turn can be sounding (utterances never overlap: the next starts after an
        // anchor that lies after the previous one's start; a long utterance is cut short by the next start).
        self.state.iter().enumerate().rev().find_map(|(i, st)| {
            let s = st.utt.start_frame;
            (k >= s).then(|| (i, (k - s) as usize))
        })
    }

    /// The latest turn whose utterance has started by `t`.
    fn latest_started(&self, t: Instant) -> Option<usize> {
        self.state.iter().rposition(|st| st.utt.start <= t)
    }

    /// The latest reply-expecting turn whose onset is at or before `t`.
    fn reply_owner_at(&self, t: Instant) -> Option<usize> {
        (0..self.state.len()).rev().find(|&i| expects_reply(self.turns[i].expect) && self.state[i].utt.onset <= t)
    }

    /// The latest reply-expecting turn scheduled before turn `i` (started, since turns start in order).
    fn owner_before(&self, i: usize) -> Option<usize> {
        (0..i).rev().find(|&j| expects_reply(self.turns[j].expect))
    }

    /// Schedules the next turn if its anchor is known. `first_free` is the first frame not yet sent, `frame` the
    /// frame duration. Returns the frame it starts at.
    pub fn schedule(&mut self, first_free: u64, frame: Duration) -> Option<u64> {
        let i = self.state.len();
        if i >= self.turns.len() || self.ended.is_some() {
            return None;
        }
        let at = match (self.turns[i].start, self.owner_before(i)) {
            (StartSpec::AfterAgentDone { gap_ms }, None) => self.t0 + Duration::from_millis(gap_ms as u64),
            (StartSpec::AfterAgentDone { gap_ms }, Some(j)) => {
                self.state[j].reply.end()? + Duration::from_millis(gap_ms as u64)
            }
            (StartSpec::AfterAgentStart { delay_ms }, Some(j)) => {
                self.state[j].reply.heard?.first_audible? + Duration::from_millis(delay_ms as u64)
            }
            (StartSpec::AfterAgentStart { .. }, None) => return None,
        };
        let since = at.saturating_duration_since(self.t0).as_nanos();
        let k = (since.div_ceil(frame.as_nanos()) as u64).max(first_free);
        let start = self.t0 + frame * k as u32;
        let t = &self.turns[i];
        let onset = start + Duration::from_secs_f64(t.audio.speech_start_ms / 1000.0);
        let eos = start + Duration::from_secs_f64(t.audio.speech_end_ms / 1000.0);
        // The frame carrying instant `x`: frame j carries audio [j·f, (j+1)·f); the end of speech is one past the
        // last voiced sample, so it belongs to the frame of that sample.
        let carrying = |x: Instant, end: bool| {
            let since = x.saturating_duration_since(self.t0).as_nanos();
            let since = if end { since.saturating_sub(1) } else { since };
            (since / frame.as_nanos().max(1)) as u64
        };
        let utt = Utterance::new(k, start, (onset, carrying(onset, false)), (eos, carrying(eos, true)));
        let turn = Turn::new(utt, t.tool_calls.len(), self.early_error.take());
        self.state.push(turn);
        Some(k)
    }

    /// Frame `k` went out `late` after it was due: the onset or end of speech it carries moves with it (see
    /// docs/metrics.md, "user_eos"), so the harness's own lateness is never charged to the agent.
    pub fn sent(&mut self, k: u64, late: Duration) {
        // The latest turn, and the one before it: its end of speech's window may run into the next turn's start.
        for st in self.state.iter_mut().rev().take(2) {
            st.utt.sent(k, late);
        }
    }

    /// Where a flush that reached the caller at `arrived` over an impaired network takes effect
    /// (`crate::caller::network`): the gateway had sent every packet before it and they have all arrived, so the
    /// caller hears the audio already in its playback to the end (the flush acts 1 ns before it, so the cut is
    /// recorded, with nothing of that audio lost); when nothing is playing, at once.
    pub fn flush_point(&self, arrived: Instant) -> Instant {
        match self.playback.end() {
            Some(end) if end > arrived => end - Duration::from_nanos(1),
            _ => arrived,
        }
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
                    && self.state[i].reply.heard.is_none()
                {
                    self.state[i].reply.speech_stopped = Some(*at);
                }
                vec![]
            }
            AgentEvent::ToolCall { at, call_id, name, arguments, .. } => {
                self.on_tool_call(*at, call_id, name, arguments)
            }
            AgentEvent::ResponseDone { at, status, had_tool_call } => {
                let owner = self.open_response.take().or_else(|| {
                    (0..self.state.len()).rev().find(|&i| {
                        expects_reply(self.turns[i].expect)
                            && self.state[i].reply.done.is_none()
                            && self.state[i].utt.onset <= *at
                    })
                });
                // A response that ends in a completed tool call leaves the reply open: its answer follows.
                if let Some(j) = owner
                    && !(*had_tool_call && *status == ResponseStatus::Completed)
                {
                    self.state[j].reply.done = Some(*at);
                }
                vec![]
            }
            AgentEvent::Stage { at, stage } => {
                // A stage belongs to the reply of the latest started turn, and only up to that reply's first audio
                // (a tool turn's second chat request replaces the first: the last one before the audio counts).
                if let Some(i) = self.latest_started(*at)
                    && self.state[i].reply.before_audio(*at)
                {
                    self.state[i].reply.stage(*at, *stage);
                }
                vec![]
            }
            AgentEvent::Transcript { at, text, segment } => {
                self.on_transcript(*at, text, *segment);
                vec![]
            }
            AgentEvent::Error { at, category, message } => {
                // An error before any turn's utterance belongs to the first turn (held until it starts).
                let i = self.reply_owner_at(*at).or_else(|| self.latest_started(*at)).unwrap_or(0);
                let slot = match self.state.get_mut(i) {
                    Some(st) => &mut st.error,
                    None if !self.turns.is_empty() => &mut self.early_error,
                    None => return vec![],
                };
                slot.get_or_insert_with(|| (*category, message.clone()));
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
            if owner.is_some() && self.open_response.is_none() {
                self.open_response = owner;
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
        if let Some(r) = &mut self.recording {
            r.heard(ms(placed.start.saturating_duration_since(self.t0)), samples);
        }
        let it = &mut self.items[idx];
        let first_index = it.samples;
        it.samples += samples.len();
        if it.detector.found().is_none() {
            it.chunk_starts.push((first_index, placed.start));
        }
        let Some(j) = owner else { return };
        let heard = self.state[j].reply.chunk(at, placed.start, placed.end);
        if heard.first_audible.is_none()
            && let Some(s) = it.detector.feed(samples)
        {
            let (cs, cstart) =
                it.chunk_starts.iter().rev().find(|(i, _)| *i <= s).copied().unwrap_or((0, placed.start));
            let t = cstart + Duration::from_nanos(((s - cs) as u128 * 1_000_000_000 / self.out_rate as u128) as u64);
            heard.first_audible = Some(t);
            it.chunk_starts.clear();
        }
    }

    /// A transcript fragment belongs to the reply in progress (or, before its audio, to the turn it answers).
    fn on_transcript(&mut self, at: Instant, text: &str, segment: bool) {
        self.any_transcript = true;
        let Some(j) = self.open_response.or_else(|| self.reply_owner_at(at)) else { return };
        let st = &mut self.state[j];
        st.transcribed = true;
        if st.said.len() >= MAX_SAID {
            return;
        }
        if segment && !st.said.is_empty() && !text.starts_with(char::is_whitespace) {
            st.said.push(' ');
        }
        let room = MAX_SAID.saturating_sub(st.said.len());
        if text.len() <= room {
            st.said.push_str(text);
        } else {
            let cut = (0..=room).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            st.said.push_str(&text[..cut]);
            st.said.push('…');
        }
    }

    fn on_flush(&mut self, at: Instant) -> Vec<Action> {
        let Some(cut) = self.playback.cut(at) else {
            return vec![];
        };
        self.last_cut_turn = self.latest_started(at);
        if let Some(r) = &mut self.recording {
            r.cut(ms(cut.heard_end.saturating_duration_since(self.t0)));
        }
        if let Some(owner) = self.items.get(cut.item as usize).and_then(|i| i.turn)
            && let Some(heard) = &mut self.state[owner].reply.heard
        {
            heard.end = cut.heard_end;
        }
        if let Some(i) = self.latest_started(at) {
            let st = &mut self.state[i];
            match self.turns[i].expect {
                Expect::Stop if st.barge == Barge::Pending => {
                    st.barge = Barge::Stopped { ack: Some(at), stop: cut.heard_end };
                }
                Expect::Ignore => st.false_stop = true,
                _ => {}
            }
        }
        vec![Action::Truncate { item: cut.item, played_ms: cut.played_ms }]
    }

    /// Resolves turn `i`'s barge-in if it is pending and `now` tells: the agent was not talking at the caller's
    /// onset (nothing to stop), or its audio ended by itself without a flush signal.
    fn resolve_barge(&mut self, i: usize, now: Instant) {
        if self.turns[i].expect != Expect::Stop || self.state[i].barge != Barge::Pending {
            return;
        }
        // Whether the agent was talking at all is judged once the onset has passed (its audio may still be arriving
        // before that).
        let onset = self.state[i].utt.onset;
        let resolved = match self.owner_before(i) {
            Some(j) if now >= onset => {
                let reply = &self.state[j].reply;
                let heard_end = reply.heard.map(|h| h.end);
                if !self.playback.playing_at(onset) && heard_end.is_none_or(|e| e <= onset) {
                    Barge::NotApplicable
                } else if let Some(e) = heard_end
                    && e <= now
                    && !self.playback.playing_at(now)
                    && reply.done.is_some()
                {
                    Barge::Stopped { ack: None, stop: e }
                } else {
                    Barge::Pending
                }
            }
            Some(_) => Barge::Pending,
            None => Barge::NotApplicable,
        };
        self.state[i].barge = resolved;
    }

    /// Whether turn `i` can be finalized at `now`.
    fn ready(&self, i: usize, now: Instant) -> bool {
        let t = &self.turns[i];
        if expects_reply(t.expect) {
            self.state[i].reply.end().is_some_and(|e| e <= now)
                && (t.expect != Expect::Stop || self.state[i].barge != Barge::Pending)
        } else {
            // A backchannel is judged once its owner's reply is over (or the next turn has started).
            let owner = self.owner_before(i);
            owner.is_none_or(|j| self.state[j].reply.end().is_some_and(|e| e <= now)) || self.state.len() > i + 1
        }
    }

    /// Advances time: resolves barge-ins, finalizes turns, checks timeouts. Returns true when the call is over.
    pub fn poll(&mut self, now: Instant) -> bool {
        for i in 0..self.state.len() {
            if self.state[i].finalized {
                continue;
            }
            self.resolve_barge(i, now);
            if self.ready(i, now) {
                self.finalize(i, None);
                continue;
            }
            // Timeouts: a reply that has not come, or not finished playing, within the limit after the caller
            // stopped talking. An agent that sends minutes of audio in a burst then says it is done would
            // otherwise hold the call for as long as that audio plays.
            let st = &self.state[i];
            if expects_reply(self.turns[i].expect)
                && now > st.utt.eos + self.turn_timeout
                && st.reply.end().is_none_or(|end| end > now)
            {
                let limit = self.turn_timeout.as_millis();
                let why = match st.reply.end() {
                    Some(end) => {
                        let why = format!(
                            "the reply to turn {} plays past the {limit} ms turn timeout (its audio ends {} ms after the caller stopped)",
                            i + 1,
                            end.saturating_duration_since(st.utt.eos).as_millis()
                        );
                        // The reply came whole, so the call's end alone would not mark this turn: it is the one
                        // that failed.
                        self.state[i].error.get_or_insert((ErrorCategory::Timeout, why.clone()));
                        why
                    }
                    None => format!("no complete reply within {limit} ms of the end of turn {}", i + 1),
                };
                self.ended.get_or_insert((ErrorCategory::Timeout, why));
            }
        }
        // A turn waiting for an anchor that never comes (the agent never starts or never finishes).
        let next = self.state.len();
        if next < self.turns.len()
            && self.ended.is_none()
            && let Some(j) = self.owner_before(next)
            && now > self.state[j].utt.eos + self.turn_timeout
        {
            self.ended =
                Some((ErrorCategory::Timeout, format!("turn {} never got the agent reply it waits for", next + 1)));
        }
        if let Some((cat, msg)) = self.ended.clone() {
            for i in 0..self.state.len() {
                if !self.state[i].finalized {
                    self.finalize(i, Some((cat, msg.clone())));
                }
            }
            return true;
        }
        self.state.len() == self.turns.len() && self.state.iter().all(|s| s.finalized)
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
        self.state.len()
    }

    /// Scheduled `user_eos` of turn `i`, once started (for ground-truth joins).
    pub fn user_eos(&self, i: usize) -> Option<Instant> {
        self.state.get(i).map(|s| s.utt.eos)
    }

    fn finalize(&mut self, i: usize, failure: Option<(ErrorCategory, String)>) {
        let t = &self.turns[i];
        let st = &mut self.state[i];
        st.finalized = true;
        let Utterance { onset, eos, .. } = st.utt;
        let tools = &st.tools;
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
            tools_succeeded: tools.succeeded,
            tools_early: tools.early,
            tools_late: tools.late,
            tools_unexpected: tools.unexpected,
            tools_malformed: tools.malformed,
            tools_expected_names: t.tool_calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(";"),
            tools_succeeded_names: t
                .tool_calls
                .iter()
                .zip(&tools.satisfied)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| c.name.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            ..Default::default()
        };
        let reply = &st.reply;
        if expects_reply(t.expect) {
            measure_reply(&mut r, reply, eos, self.t0);
            r.tool_call_ms = tools.first_at.map(|a| signed_ms(eos, a));
            let first_audible = reply.heard.and_then(|h| h.first_audible);
            if t.expect == Expect::NoTakeover {
                r.premature_takeover = Some(first_audible.is_some_and(|f| f < eos));
            }
        }
        if t.expect == Expect::Stop {
            // A barge-in still pending when the turn ends (the call failed) had no stop: it failed.
            let measured = match st.barge {
                Barge::NotApplicable => None,
                Barge::Pending => Some((None, None)),
                Barge::Stopped { ack, stop } => Some((ack, Some(stop))),
            };
            if let Some((ack, stop)) = measured {
                r.barge_in_ack_ms = ack.map(|a| signed_ms(onset, a));
                r.barge_in_stop_ms = stop.map(|s| signed_ms(onset, s));
                r.post_cancel_audio_ms = Some(st.post_cancel_samples as f64 * 1000.0 / self.out_rate as f64);
                r.barge_in_failed = Some(stop.is_none_or(|s| s > onset + BARGE_IN_LIMIT));
            }
        }
        if t.expect == Expect::Ignore {
            r.false_stop = Some(st.false_stop);
        }
        let replied = expects_reply(t.expect) && reply.done.is_some() && reply.heard.is_some();
        let err = st.error.clone().or(failure.filter(|_| !replied));
        if expects_reply(t.expect) && st.transcribed {
            r.agent_text = Some(self.redactor.text(st.said.trim()));
        }
        // Content is judged on what the provider said it said: a turn without a transcript is judged only when the
        // provider has sent transcripts in this call (it said nothing), and a failed turn is not judged.
        if !t.content.is_empty() && err.is_none() && (st.transcribed || self.any_transcript) {
            let v = t.content.judge(&st.said);
            r.content_ok = Some(v.ok);
            r.content_detail = Some(self.redactor.text(&v.detail));
        }
        if let Some((c, m)) = err {
            r.error = Some(c);
            r.error_message = Some(self.redactor.text(&m));
        }
        self.done.push(r);
    }
}

/// The reply's latencies (from the caller's end of speech `eos`) into `r`; `t0` is audio time zero.
fn measure_reply(r: &mut TurnRecord, reply: &Reply, eos: Instant, t0: Instant) {
    let first_chunk_at = reply.heard.map(|h| h.first_chunk_at);
    let first_audible = reply.heard.and_then(|h| h.first_audible);
    r.ttfb_ms = first_chunk_at.map(|a| signed_ms(eos, a));
    if let (Some(a), Some(f)) = (first_chunk_at, first_audible) {
        r.leading_silence_ms = Some(signed_ms(a, f));
    }
    r.ttfa_ms = first_audible.map(|f| signed_ms(eos, f));
    r.agent_audio_start_ms = first_audible.map(|f| signed_ms(t0, f));
    r.agent_audio_end_ms = reply.heard.map(|h| signed_ms(t0, h.end));
    r.talk_over_ms = r.ttfa_ms.filter(|v| *v < 0.0).map(|v| -v);
    r.endpointing_ms = reply.speech_stopped.map(|s| signed_ms(eos, s));
    let stage = |k: Stage| reply.stages[k as usize];
    let span = |a: Option<Instant>, b: Option<Instant>| a.zip(b).map(|(a, b)| signed_ms(a, b));
    r.stt_ms = span(Some(eos), stage(Stage::Transcript));
    r.llm_start_ms = span(Some(eos), stage(Stage::LlmRequest));
    r.llm_ttft_ms = span(stage(Stage::LlmRequest), stage(Stage::LlmFirstToken));
    r.tts_start_ms = span(Some(eos), stage(Stage::TtsRequest));
    r.tts_ttfb_ms = span(stage(Stage::TtsRequest), stage(Stage::TtsFirstByte));
    let max_gap = reply.heard.map_or(Duration::ZERO, |h| h.max_gap);
    r.max_silence_ms = r.ttfa_ms.map(|v| v.max(0.0).max(ms(max_gap)));
}
