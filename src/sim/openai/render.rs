//! The brain's events as OpenAI Realtime server events, in the captured shapes of both dialects: speech and
//! commits with their conversation items, `response.created` … `response.done` with the output items, audio and
//! transcript deltas, function calls and their argument deltas, and the usage of each response.

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::session::{Dialect, SessionConfig};
use super::{Item, OpenAi, OpenResponse, transcription_delay};
use crate::sim::brain::{Brain, Event, Usage};
use crate::sim::wire::Out;

impl OpenAi {
    pub(super) fn render_event(&mut self, brain: &mut Brain, ev: Event, out: &mut Out) {
        match ev {
            Event::SpeechStarted { audio_start_ms, item_id } => self.emit(
                brain,
                out,
                json!({
                "type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms, "item_id": item_id}),
            ),
            Event::SpeechStopped { audio_end_ms, item_id } => self.emit(
                brain,
                out,
                json!({
                "type": "input_audio_buffer.speech_stopped", "audio_end_ms": audio_end_ms, "item_id": item_id}),
            ),
            Event::Interrupted => {}
            Event::Committed { item_id } => self.committed(brain, out, item_id),
            Event::UserTranscript { item_id, text, at, audio_ms } => self.user_transcript(item_id, text, at, audio_ms),
            Event::ResponseCreated { response_id } => {
                self.resp = Some(OpenResponse { id: response_id, ..OpenResponse::default() });
                let resp = self.response_json("in_progress", Value::Null, Value::Null);
                self.emit(brain, out, json!({"type": "response.created", "response": resp}));
            }
            Event::MessageStarted { response_id, item_id } => self.message_started(brain, out, response_id, item_id),
            Event::Transcript(t) => {
                let (rid, item_id) = self.current();
                let mut ev = json!({"type": self.name("response.output_audio_transcript.delta",
                    "response.audio_transcript.delta"), "response_id": rid, "item_id": item_id,
                    "output_index": 0, "content_index": 0, "delta": &*t});
                if self.ga() {
                    ev["obfuscation"] = json!("sim");
                }
                self.emit(brain, out, ev);
            }
            Event::Audio { b64, ms } => {
                let (rid, item_id) = self.current();
                let eid = brain.new_id("event");
                let ty = self.name("response.output_audio.delta", "response.audio.delta");
                out.push(Message::text(format!(
                    r#"{{"type":"{ty}","event_id":"{eid}","response_id":"{rid}","item_id":"{item_id}","output_index":0,"content_index":0,"delta":"{b64}"}}"#
                )));
                self.voice_locked = true;
                if let Some(i) = self.items.iter_mut().rev().find(|i| i.id == item_id) {
                    i.audio_ms = Some(i.audio_ms.unwrap_or(0.0) + ms);
                }
            }
            Event::CallAdded { index, item_id, call_id, name } => {
                self.call_added(brain, out, index, item_id, call_id, name)
            }
            Event::ArgDelta { index, delta } => {
                let (rid, _) = self.current();
                let (item_id, call_id) =
                    self.resp.as_ref().and_then(|r| r.calls.get(index)).cloned().unwrap_or_default();
                self.emit(
                    brain,
                    out,
                    json!({"type": "response.function_call_arguments.delta", "response_id": rid,
                    "item_id": item_id, "output_index": index, "call_id": call_id, "delta": delta}),
                );
            }
            Event::CallDone { index, item_id, call_id, name, arguments, completed } => {
                let status = if completed { "completed" } else { "incomplete" };
                self.call_done(brain, out, index, item_id, call_id, name, arguments, status)
            }
            Event::MessageDone { item_id, transcript, cancelled } => {
                self.message_done(brain, out, item_id, transcript, cancelled)
            }
            Event::ResponseDone { cancel_reason, usage, .. } => {
                let status = if cancel_reason.is_some() { "cancelled" } else { "completed" };
                let details = match cancel_reason {
                    Some(reason) => json!({"type": "cancelled", "reason": reason}),
                    None => Value::Null,
                };
                let usage = self.usage(&usage);
                let resp = self.response_json(status, details, usage);
                self.emit(brain, out, json!({"type": "response.done", "response": resp}));
                self.resp = None;
            }
        }
    }

    /// The current response's id and message item.
    fn current(&self) -> (String, String) {
        self.resp.as_ref().map(|r| (r.id.clone(), r.msg_item.clone())).unwrap_or_default()
    }

    pub(super) fn name(&self, ga: &'static str, beta: &'static str) -> &'static str {
        if self.ga() { ga } else { beta }
    }

    fn item_json(&self, mut item: Value) -> Value {
        if !self.ga() {
            item["object"] = json!("realtime.item");
        }
        item
    }

    fn committed(&mut self, brain: &mut Brain, out: &mut Out, item_id: String) {
        let prev = self.last_item_id();
        self.emit(
            brain,
            out,
            json!({"type": "input_audio_buffer.committed", "previous_item_id": prev,
            "item_id": item_id}),
        );
        let item = self.item_json(json!({"id": item_id, "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": null}]}));
        self.items.push(Item { id: item_id, audio_ms: None, json: item.clone() });
        self.announce_item(brain, out, prev, item, true);
    }

    fn user_transcript(&mut self, item_id: String, text: String, at: Instant, audio_ms: f64) {
        if self.cfg.transcription.is_null() {
            return;
        }
        let mut ev = json!({"type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id, "content_index": 0, "transcript": text});
        if self.ga() {
            ev["usage"] = json!({"type": "duration", "seconds": (audio_ms / 1000.0).round()});
        }
        self.later.push((at + transcription_delay(), ev));
    }

    fn message_started(&mut self, brain: &mut Brain, out: &mut Out, rid: String, item_id: String) {
        if let Some(r) = self.resp.as_mut() {
            r.msg_item = item_id.clone();
        }
        let item = self.item_json(json!({"id": item_id, "type": "message", "status": "in_progress",
            "role": "assistant", "content": []}));
        self.emit(
            brain,
            out,
            json!({"type": "response.output_item.added", "response_id": rid, "output_index": 0,
            "item": item}),
        );
        let prev = self.last_item_id();
        self.items.push(Item { id: item_id.clone(), audio_ms: Some(0.0), json: item.clone() });
        self.announce_item(brain, out, prev, item, false);
        self.emit(
            brain,
            out,
            json!({"type": "response.content_part.added", "response_id": rid, "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}}),
        );
    }

    fn call_added(
        &mut self,
        brain: &mut Brain,
        out: &mut Out,
        index: usize,
        item_id: String,
        call_id: String,
        name: String,
    ) {
        let (rid, _) = self.current();
        if let Some(r) = self.resp.as_mut() {
            r.calls.push((item_id.clone(), call_id.clone()));
        }
        let item = self.item_json(json!({"id": item_id, "type": "function_call", "status": "in_progress",
            "name": name, "call_id": call_id, "arguments": ""}));
        self.emit(
            brain,
            out,
            json!({"type": "response.output_item.added", "response_id": rid, "output_index": index,
            "item": item}),
        );
        let prev = self.last_item_id();
        self.items.push(Item { id: item_id, audio_ms: None, json: item.clone() });
        self.announce_item(brain, out, prev, item, false);
    }

    // The event's fields, one by one: grouping them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn call_done(
        &mut self,
        brain: &mut Brain,
        out: &mut Out,
        index: usize,
        item_id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: &str,
    ) {
        let (rid, _) = self.current();
        let mut done = json!({"type": "response.function_call_arguments.done", "response_id": rid,
            "item_id": item_id, "output_index": index, "call_id": call_id, "arguments": arguments});
        if self.ga() {
            done["name"] = json!(name);
        }
        self.emit(brain, out, done);
        let item = self.item_json(json!({"id": item_id, "type": "function_call", "status": status, "name": name,
            "call_id": call_id, "arguments": arguments}));
        self.emit(
            brain,
            out,
            json!({"type": "response.output_item.done", "response_id": rid, "output_index": index,
            "item": item}),
        );
        self.item_done(brain, out, &item_id, item);
    }

    /// GA's `conversation.item.done` for a finished output item; the item's final JSON kept and added to the
    /// response's output.
    fn item_done(&mut self, brain: &mut Brain, out: &mut Out, item_id: &str, item: Value) {
        if self.ga() {
            let prev = self.items.iter().position(|x| x.id == item_id).and_then(|p| p.checked_sub(1));
            let prev = prev.map_or(Value::Null, |p| json!(self.items[p].id));
            self.emit(brain, out, json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}));
        }
        if let Some(x) = self.items.iter_mut().find(|x| x.id == item_id) {
            x.json = item.clone();
        }
        if let Some(r) = self.resp.as_mut() {
            r.output.push(item);
        }
    }

    fn message_done(&mut self, brain: &mut Brain, out: &mut Out, item_id: String, transcript: String, cancelled: bool) {
        let (rid, _) = self.current();
        let base = json!({"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0});
        let mut e = base.clone();
        e["type"] = json!(self.name("response.output_audio.done", "response.audio.done"));
        self.emit(brain, out, e);
        let mut e = base.clone();
        e["type"] = json!(self.name("response.output_audio_transcript.done", "response.audio_transcript.done"));
        e["transcript"] = json!(transcript);
        self.emit(brain, out, e);
        let mut e = base;
        e["type"] = json!("response.content_part.done");
        e["part"] = json!({"type": "audio", "transcript": transcript});
        self.emit(brain, out, e);
        self.emit(
            brain,
            out,
            json!({"type": "rate_limits.updated", "rate_limits": [
            {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}]}),
        );
        let content_type = self.name("output_audio", "audio");
        let item = self.item_json(json!({"id": item_id, "type": "message",
            "status": if cancelled { "incomplete" } else { "completed" }, "role": "assistant",
            "content": [{"type": content_type, "transcript": transcript}]}));
        self.emit(
            brain,
            out,
            json!({"type": "response.output_item.done", "response_id": rid, "output_index": 0,
            "item": item}),
        );
        self.item_done(brain, out, &item_id, item);
    }

    fn response_json(&self, status: &str, details: Value, usage: Value) -> Value {
        let (id, output) = match &self.resp {
            Some(r) if status != "in_progress" => (r.id.clone(), Value::Array(r.output.clone())),
            Some(r) => (r.id.clone(), json!([])),
            None => (String::new(), json!([])),
        };
        let cfg = &self.cfg;
        match self.dialect {
            Dialect::Ga => json!({"object": "realtime.response", "id": id, "status": status,
                "status_details": details, "output": output, "conversation_id": self.conv_id,
                "output_modalities": cfg.modalities, "max_output_tokens": cfg.max_output_tokens,
                "audio": {"output": {"format": cfg.output_format_ga(), "voice": cfg.voice}},
                "usage": usage, "metadata": null}),
            Dialect::Beta => json!({"object": "realtime.response", "id": id, "status": status,
                "status_details": details, "output": output, "conversation_id": self.conv_id,
                "modalities": cfg.modalities, "voice": cfg.voice,
                "output_audio_format": SessionConfig::fmt_beta(cfg.output_format),
                "temperature": cfg.temperature, "max_output_tokens": cfg.max_output_tokens,
                "usage": usage, "metadata": null}),
        }
    }

    fn usage(&self, u: &Usage) -> Value {
        let in_audio = (u.user_audio_ms / 100.0).round() as u64;
        let in_text = 120 + 10 * self.items.len() as u64;
        let out_audio = (u.audio_sent_ms / 50.0).round() as u64;
        let out_text = (u.words as f64 * 1.3).round() as u64 + u.argument_tokens;
        let mut v = json!({"total_tokens": in_audio + in_text + out_audio + out_text,
            "input_tokens": in_audio + in_text, "output_tokens": out_audio + out_text,
            "input_token_details": {"text_tokens": in_text, "audio_tokens": in_audio, "image_tokens": 0,
                "cached_tokens": 0, "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio}});
        if !self.ga() {
            v["input_token_details"].as_object_mut().map(|o| o.remove("image_tokens"));
        }
        v
    }
}
