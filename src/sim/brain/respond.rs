//! The brain's responses: each planned in full when it starts (every step at an absolute instant, so timer
//! lateness never accumulates), run step by step as its instants come, ended (completed or cancelled) with its
//! ground truth.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::text::{corrupt_one, rand_id, split_text};
use super::{Brain, Event, TurnEnd, ms_dur};
use crate::sim::profile::chance;
use crate::sim::{GroundTruth, GroundTruthKind, ToolCallTruth};

/// A tool-call response is done: the spoken reply follows the client's next `response.create`.
#[derive(Debug)]
pub(super) struct AwaitTool {
    pub(super) end: TurnEnd,
}

#[derive(Debug, Clone)]
struct PlannedCall {
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
    sent: String,
    added: bool,
    done: bool,
}

#[derive(Debug)]
pub(super) enum Step {
    Audio { b64: Arc<str>, ms: f64, transcript: Option<Arc<str>> },
    CallAdded(usize),
    ArgDelta(usize, String),
    ArgsDone(usize),
    Finish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespKind {
    Spoken,
    Tool,
    Empty,
}

/// What a response used, for a wire's token accounting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Usage {
    /// The caller's audio of the turn it answers, ms (1000 when it answers none).
    pub user_audio_ms: f64,
    /// Reply audio sent, ms.
    pub audio_sent_ms: f64,
    /// Words of transcript sent.
    pub words: usize,
    /// Tokens of function-call arguments (a quarter of each call's characters).
    pub argument_tokens: u64,
}

#[derive(Debug)]
pub(super) struct Resp {
    pub(super) id: String,
    gt: usize,
    kind: RespKind,
    end: Option<TurnEnd>,
    pub(super) queue: VecDeque<(Instant, Step)>,
    msg_item: Option<String>,
    transcript_full: String,
    transcript_sent: String,
    audio_sent_ms: f64,
    first_audio_at: Option<Instant>,
    last_audio_at: Option<Instant>,
    calls: Vec<PlannedCall>,
    /// This reply's transcript says the wrong numbers (`misspeak_rate`).
    misspeak: bool,
}

impl Brain {
    fn new_resp(
        &mut self,
        kind: RespKind,
        gkind: GroundTruthKind,
        end: Option<&TurnEnd>,
        create_at: Option<Instant>,
    ) -> Resp {
        let id = self.new_id("resp");
        let turn = end.map_or(self.next_turn.saturating_sub(1), |e| e.idx);
        let mut g = GroundTruth::new(&self.session_id, self.idx, turn, gkind);
        g.response_id = Some(id.clone());
        if let Some(e) = end {
            g.onset_audio_ms = e.onset_audio_ms;
            g.onset_at = e.onset_at;
            g.onset_ms = e.onset_at.map(|x| self.ms(x));
            g.eos_audio_ms = Some(e.eos_audio_ms);
            g.eos_at = Some(e.eos_at);
            g.eos_ms = Some(self.ms(e.eos_at));
        }
        g.response_create_at = create_at;
        g.response_create_ms = create_at.map(|x| self.ms(x));
        let gt = self.shared.push(g);
        Resp {
            id,
            gt,
            kind,
            end: end.cloned(),
            queue: VecDeque::new(),
            msg_item: None,
            transcript_full: String::new(),
            transcript_sent: String::new(),
            audio_sent_ms: 0.0,
            first_audio_at: None,
            last_audio_at: None,
            calls: Vec::new(),
            misspeak: false,
        }
    }

    pub(super) fn start_empty(
        &mut self,
        end: Option<TurnEnd>,
        reference: Instant,
        create_at: Option<Instant>,
        k: GroundTruthKind,
    ) {
        let mut r = self.new_resp(RespKind::Empty, k, end.as_ref(), create_at);
        let delay = self.ctx.profile.draw_reply_delay(&mut self.rng);
        self.gt(r.gt, |g| g.reply_delay_ms = Some(delay));
        self.event(Event::ResponseCreated { response_id: r.id.clone() });
        r.queue.push_back((reference + ms_dur(delay), Step::Finish));
        self.resp = Some(r);
    }

    pub(super) fn start_spoken(
        &mut self,
        end: TurnEnd,
        reference: Instant,
        create_at: Option<Instant>,
        k: GroundTruthKind,
    ) {
        let Some(reply) = self.ctx.turns.get(end.idx).and_then(|t| t.reply.clone()) else {
            self.start_empty(Some(end), reference, create_at, k);
            return;
        };
        let mut r = self.new_resp(RespKind::Spoken, k, Some(&end), create_at);
        let delay = self.ctx.profile.draw_reply_delay(&mut self.rng);
        let lead = self.ctx.profile.draw_leading_silence(&mut self.rng);
        let fmt = self.output;
        let enc = reply.encoded(fmt, self.ctx.profile.chunk_ms);
        let silence = enc.silence(fmt, lead);
        let lead_sent: f64 = silence.iter().map(|(_, m)| m).sum();
        let planned = lead_sent + enc.total_ms;
        let lead_samples = (lead_sent * enc.rate as f64 / 1000.0).round() as usize;
        let lead_exact = enc.first_audible_ms(lead_samples);
        let item_id = self.new_id("item");
        self.gt(r.gt, |g| {
            g.reply_delay_ms = Some(delay);
            g.leading_silence_ms = Some(lead_exact);
            g.audio_planned_ms = planned;
            g.item_id = Some(item_id.clone());
            g.reply = Some(reply.id.clone());
        });
        r.msg_item = Some(item_id.clone());
        // No draw at rate 0: a profile that never misspeaks keeps the random stream it had before the option.
        r.misspeak = self.ctx.profile.misspeak_rate > 0.0 && chance(&mut self.rng, self.ctx.profile.misspeak_rate);
        r.transcript_full = reply.text.clone().unwrap_or_default();
        if r.misspeak {
            r.transcript_full = super::super::replies::misspeak(&r.transcript_full);
            self.gt(r.gt, |g| g.misspoke = true);
        }
        self.event(Event::ResponseCreated { response_id: r.id.clone() });
        self.event(Event::MessageStarted { response_id: r.id.clone(), item_id });
        let first = reference + ms_dur(delay);
        let rtf = self.ctx.profile.realtime_factor;
        let mut t_ms = 0.0;
        for (b64, ms) in silence {
            r.queue.push_back((first + ms_dur(t_ms / rtf), Step::Audio { b64, ms, transcript: None }));
            t_ms += ms;
        }
        for c in &enc.chunks {
            r.queue.push_back((
                first + ms_dur(t_ms / rtf),
                Step::Audio { b64: c.b64.clone(), ms: c.ms, transcript: c.transcript.clone() },
            ));
            t_ms += c.ms;
        }
        let last = r.queue.back().map_or(first, |(t, _)| *t);
        r.queue.push_back((last, Step::Finish));
        self.resp = Some(r);
    }

    pub(super) fn start_tool(
        &mut self,
        end: TurnEnd,
        calls: Vec<(String, Value, Vec<String>)>,
        reference: Instant,
        create_at: Option<Instant>,
    ) {
        let mut r = self.new_resp(RespKind::Tool, GroundTruthKind::ToolCall, Some(&end), create_at);
        let delay = self.ctx.profile.draw_tool_delay(&mut self.rng);
        let gap = self.ctx.profile.arg_delta_gap_ms();
        let n_deltas = self.ctx.profile.tool_arg_deltas.max(1) as usize;
        let mut truths = Vec::new();
        let mut t = reference + ms_dur(delay);
        for (i, (name, args, checked)) in calls.into_iter().enumerate() {
            let mut args = args;
            let wrong = if chance(&mut self.rng, self.ctx.profile.tool_arg_error_rate) {
                corrupt_one(&mut args, &checked, &mut self.rng)
            } else {
                None
            };
            let text = serde_json::to_string(&args).unwrap_or_else(|_| "{}".into());
            let pieces = split_text(&text, n_deltas, &mut self.rng, self.ctx.profile.kind);
            let call = PlannedCall {
                item_id: self.new_id("item"),
                call_id: format!("call_{}", &rand_id(&mut self.ids)[..16]),
                name: name.clone(),
                arguments: text.clone(),
                sent: String::new(),
                added: false,
                done: false,
            };
            truths.push(ToolCallTruth {
                call_id: call.call_id.clone(),
                name,
                arguments: text,
                wrong_arg: wrong,
                deltas: pieces.len(),
                first_delta_at: None,
                first_delta_ms: None,
                done_at: None,
                done_ms: None,
            });
            r.calls.push(call);
            r.queue.push_back((t, Step::CallAdded(i)));
            for (j, p) in pieces.into_iter().enumerate() {
                if j > 0 {
                    t += ms_dur(gap);
                }
                r.queue.push_back((t, Step::ArgDelta(i, p)));
            }
            r.queue.push_back((t, Step::ArgsDone(i)));
            t += ms_dur(gap);
        }
        r.queue.push_back((t, Step::Finish));
        self.gt(r.gt, |g| {
            g.tool_delay_ms = Some(delay);
            g.tool_calls = truths;
        });
        self.event(Event::ResponseCreated { response_id: r.id.clone() });
        self.resp = Some(r);
    }

    /// Runs the active response's next step; false when there is none.
    pub(super) fn step_response(&mut self) -> bool {
        let Some(mut r) = self.resp.take() else { return false };
        let Some((_, step)) = r.queue.pop_front() else {
            self.resp = Some(r);
            return false;
        };
        let finish = matches!(step, Step::Finish);
        self.step(&mut r, step);
        if !finish {
            self.resp = Some(r);
        }
        true
    }

    fn step(&mut self, r: &mut Resp, step: Step) {
        match step {
            Step::Audio { b64, ms, transcript } => self.send_audio(r, b64, ms, transcript),
            Step::CallAdded(i) => {
                let c = &mut r.calls[i];
                c.added = true;
                self.calls_made.push(c.call_id.clone());
                let (item_id, call_id, name) = (c.item_id.clone(), c.call_id.clone(), c.name.clone());
                self.event(Event::CallAdded { index: i, item_id, call_id, name });
            }
            Step::ArgDelta(i, piece) => {
                let c = &mut r.calls[i];
                let first = c.sent.is_empty();
                c.sent.push_str(&piece);
                self.event(Event::ArgDelta { index: i, delta: piece });
                if first {
                    let at = Instant::now();
                    let ms = self.ms(at);
                    self.gt(r.gt, |g| {
                        if let Some(t) = g.tool_calls.get_mut(i) {
                            t.first_delta_at = Some(at);
                            t.first_delta_ms = Some(ms);
                        }
                    });
                }
            }
            Step::ArgsDone(i) => {
                self.finish_call(r, i, true);
                let at = Instant::now();
                let ms = self.ms(at);
                self.gt(r.gt, |g| {
                    if let Some(t) = g.tool_calls.get_mut(i) {
                        t.done_at = Some(at);
                        t.done_ms = Some(ms);
                    }
                });
            }
            Step::Finish => self.finish(r, None),
        }
    }

    fn send_audio(&mut self, r: &mut Resp, b64: Arc<str>, ms: f64, transcript: Option<Arc<str>>) {
        if let Some(mut t) = transcript {
            if r.misspeak {
                t = Arc::from(super::super::replies::misspeak(&t));
            }
            r.transcript_sent.push_str(&t);
            self.event(Event::Transcript(t));
        }
        self.event(Event::Audio { b64, ms });
        let at = Instant::now();
        if r.first_audio_at.is_none() {
            r.first_audio_at = Some(at);
            let ms = self.ms(at);
            self.gt(r.gt, |g| {
                g.first_audio_at = Some(at);
                g.first_audio_ms = Some(ms);
            });
        }
        r.last_audio_at = Some(at);
        r.audio_sent_ms += ms;
    }

    fn finish_call(&mut self, r: &mut Resp, i: usize, completed: bool) {
        let c = r.calls[i].clone();
        r.calls[i].done = true;
        let arguments = if completed { c.arguments } else { c.sent };
        self.event(Event::CallDone {
            index: i,
            item_id: c.item_id,
            call_id: c.call_id,
            name: c.name,
            arguments,
            completed,
        });
    }

    /// Ends the response: `cancel_reason` None = completed, else cancelled with that reason.
    fn finish(&mut self, r: &mut Resp, cancel_reason: Option<&str>) {
        let cancelled = cancel_reason.is_some();
        if let Some(item_id) = r.msg_item.clone() {
            let transcript = if cancelled { r.transcript_sent.clone() } else { r.transcript_full.clone() };
            self.event(Event::MessageDone { item_id, transcript, cancelled });
        }
        for i in 0..r.calls.len() {
            if r.calls[i].added && !r.calls[i].done {
                self.finish_call(r, i, false);
            }
        }
        let usage = Usage {
            user_audio_ms: r.end.as_ref().and_then(|e| self.ctx.turns.get(e.idx)).map_or(1000.0, |t| t.user_audio_ms),
            audio_sent_ms: r.audio_sent_ms,
            words: r.transcript_sent.split_whitespace().count(),
            argument_tokens: r.calls.iter().map(|c| c.arguments.len() as u64 / 4).sum(),
        };
        self.event(Event::ResponseDone {
            cancelled,
            cancel_reason: cancel_reason.map(str::to_string),
            spoke: r.first_audio_at.is_some(),
            tool: r.kind == RespKind::Tool,
            usage,
        });
        let at = Instant::now();
        let ms = self.ms(at);
        let status = if cancelled { "cancelled" } else { "completed" };
        let (first, last, sent) = (r.first_audio_at, r.last_audio_at, r.audio_sent_ms);
        let (first_ms, last_ms) = (first.map(|x| self.ms(x)), last.map(|x| self.ms(x)));
        let reason = cancel_reason.map(str::to_string);
        self.gt(r.gt, |g| {
            g.status = Some(status.to_string());
            g.status_reason = reason;
            g.response_done_at = Some(at);
            g.response_done_ms = Some(ms);
            g.first_audio_at = first;
            g.first_audio_ms = first_ms;
            g.last_audio_at = last;
            g.last_audio_ms = last_ms;
            g.audio_sent_ms = sent;
        });
        if let Some(f) = first {
            self.play_end = Some(f + ms_dur(sent));
        }
        r.queue.clear();
        if !cancelled
            && r.kind == RespKind::Tool
            && let Some(end) = r.end.clone()
        {
            self.awaiting_tool = Some(AwaitTool { end });
        }
    }

    pub(super) fn cancel(&mut self, _at: Instant, reason: &str) {
        if let Some(mut r) = self.resp.take() {
            self.finish(&mut r, Some(reason));
        }
    }
}
