//! OpenAI Realtime over WebSocket (GA, and the legacy beta names for local servers): docs/protocols.md §1.
//!
//! Connect with `?model=` (not beside an Azure URL's `deployment=`, whose query is kept) and an
//! `Authorization: Bearer` header, or Azure's `api-key` header with `auth = "api-key"` (key from the scenario's
//! `api_key_env`), configure the
//! session with `session.update` (`type: "realtime"` in GA), then stream `input_audio_buffer.append` frames. A
//! reader task stamps each incoming frame with the clock *before* parsing it and turns the server's events into
//! [`AgentEvent`]s (through the shared read loop, [`super::ws::spawn_reader`]; the decoder holds the response and
//! item state). Tool calls are answered with `conversation.item.create` (function_call_output) and, once the
//! response that made the call is done, `response.create`; a `response.done` without its `output` list still counts
//! the function call the response showed (`output_item.added`/`.done`, `function_call_arguments.done`). After a flush the caller reports how much of the
//! item it heard and this adapter sends `conversation.item.truncate`, clamped to the audio actually received.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::secret::Secrets;
use super::ws::{self, Decoder, Out, WsProtocol, WsSession};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, SessionError};
use crate::audio::{frames::to_le_bytes, mulaw};
use crate::scenario::schema::{AudioFormat, Dialect};
use crate::scenario::{Scenario, Target};

/// Rates on the wire: PCM16 is 24 kHz both ways; G.711 μ-law is 8 kHz.
pub fn wire_rate(format: AudioFormat) -> u32 {
    match format {
        AudioFormat::Pcm16 => 24_000,
        AudioFormat::G711Ulaw => 8_000,
    }
}

/// Encodes caller samples (at the session's input rate) as an `input_audio_buffer.append` frame.
pub fn encode_frame(format: AudioFormat, samples: &[i16]) -> Frame {
    let bytes = match format {
        AudioFormat::Pcm16 => to_le_bytes(samples),
        AudioFormat::G711Ulaw => mulaw::encode_all(samples),
    };
    let text = format!(r#"{{"type":"input_audio_buffer.append","audio":"{}"}}"#, B64.encode(bytes));
    Frame { samples: samples.into(), wire: Message::Text(Utf8Bytes::from(text)) }
}

/// The audio format a target uses.
pub fn format_of(target: &Target) -> AudioFormat {
    target.audio_format.as_ref().map_or(AudioFormat::Pcm16, |f| *f.get_ref())
}

/// OpenAI's sending side: tool results and truncations (the reader holds the state they need).
pub struct Side;

impl WsProtocol for Side {
    type Command = Command;
    const NAME: &'static str = "OpenAI Realtime";

    async fn send_tool_result(s: &mut OpenAiRealtime, call_id: &str, output: &str) -> Result<(), SessionError> {
        let item = json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}});
        s.conn.send(Message::Text(item.to_string().into())).await?;
        s.conn.command(Command::Respond).await
    }

    async fn truncate(s: &mut OpenAiRealtime, item: u32, played_ms: u32) -> Result<(), SessionError> {
        s.conn.command(Command::Truncate { item, played_ms }).await
    }
}

/// An OpenAI Realtime session.
pub type OpenAiRealtime = WsSession<Side>;

/// What the session side asks of the reader, which holds the response and item state.
#[derive(Debug)]
pub enum Command {
    /// Tool results were sent: ask for the follow-up response now, or once the current one is done.
    Respond,
    /// Tell the provider the caller heard `played_ms` of audio item `item`.
    Truncate {
        /// The item index.
        item: u32,
        /// How much was heard.
        played_ms: u32,
    },
}

impl OpenAiRealtime {
    /// Connects to `url` (the target's, or the embedded sim's), configures the session, and waits for the
    /// provider to confirm it. Bounded by the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target, url: &str) -> Result<Self, SessionError> {
        ws::within(scenario, Self::connect_inner(scenario, target, url)).await
    }

    async fn connect_inner(scenario: &Scenario, target: &Target, url: &str) -> Result<Self, SessionError> {
        let dialect = target.dialect.as_ref().map_or(Dialect::Ga, |d| *d.get_ref());
        let mut full = url.to_string();
        // An Azure URL names its deployment instead of a model.
        if let Some(model) = &target.model
            && !full.contains("model=")
            && !full.contains("deployment=")
        {
            full.push(if full.contains('?') { '&' } else { '?' });
            full.push_str("model=");
            full.push_str(model);
        }
        // The key travels in a header; scrubbed anyway, should an error ever echo the request.
        let api_key = target.auth.as_ref().is_some_and(|a| a.get_ref() == "api-key");
        let (name, prefix) = if api_key { ("api-key", "") } else { ("Authorization", "Bearer ") };
        let key_env = target.api_key_env.as_ref().map(|v| v.get_ref().as_str());
        let (mut req, secrets) = ws::keyed_request(&full, key_env, name, prefix)?;
        if dialect == Dialect::Beta {
            req.headers_mut().insert("OpenAI-Beta", HeaderValue::from_static("realtime=v1"));
        }
        let (sink, mut stream) = ws::dial(req, &secrets).await?;
        let format = format_of(target);

        // session.created, then our session.update, then session.updated.
        let created = ws::next_json(&mut stream, &secrets).await?;
        if created["type"] == "error" {
            return Err(provider_error(&created, &secrets));
        }
        let session_id = created["session"]["id"].as_str().map(|id| secrets.scrub(ws::cut(id, ws::MAX_ID)));
        let update = session_update(scenario, target, dialect, format);
        ws::send(&sink, Message::Text(update.to_string().into())).await?;
        loop {
            let ev = ws::next_json(&mut stream, &secrets).await?;
            match ev["type"].as_str() {
                Some("session.updated") => break,
                Some("error") => return Err(provider_error(&ev, &secrets)),
                _ => {}
            }
        }
        let conn = ws::spawn_reader(stream, sink, Decode::new(format), secrets);
        let rate = wire_rate(format);
        Ok(WsSession { conn, input_rate: rate, output_rate: rate, session_id, side: Side })
    }
}

fn categorise(code: &str, etype: &str) -> ErrorCategory {
    if code.contains("rate_limit") || etype.contains("rate_limit") {
        ErrorCategory::RateLimit
    } else if code.contains("api_key") || code.contains("auth") || etype.contains("authentication") {
        ErrorCategory::Auth
    } else {
        ErrorCategory::ProviderError
    }
}

fn provider_error(ev: &Json, secrets: &Secrets) -> SessionError {
    let e = &ev["error"];
    let code = e["code"].as_str().unwrap_or("");
    let cat = categorise(code, e["type"].as_str().unwrap_or(""));
    SessionError::new(
        if cat == ErrorCategory::ProviderError { ErrorCategory::Connect } else { cat },
        secrets.scrub(&format!("{code}: {}", e["message"].as_str().unwrap_or(""))),
    )
}

/// The `session.update` for a target, GA or beta shape.
pub fn session_update(scenario: &Scenario, target: &Target, dialect: Dialect, format: AudioFormat) -> Json {
    let tools: Vec<Json> = scenario
        .agent
        .tools
        .iter()
        .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    let td = target.turn_detection.as_ref().map(|t| {
        let t = t.get_ref();
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!(t.kind.get_ref()));
        if let Some(v) = &t.threshold {
            o.insert("threshold".into(), json!(v.get_ref()));
        }
        if let Some(v) = t.prefix_padding_ms {
            o.insert("prefix_padding_ms".into(), json!(v));
        }
        if let Some(v) = t.silence_duration_ms {
            o.insert("silence_duration_ms".into(), json!(v));
        }
        if let Some(v) = &t.eagerness {
            o.insert("eagerness".into(), json!(v.get_ref()));
        }
        o.insert("create_response".into(), json!(true));
        o.insert("interrupt_response".into(), json!(true));
        Json::Object(o)
    });
    let instructions = scenario.agent.instructions.clone().unwrap_or_default();
    match dialect {
        Dialect::Ga => {
            let fmt = match format {
                AudioFormat::Pcm16 => json!({"type": "audio/pcm", "rate": 24000}),
                AudioFormat::G711Ulaw => json!({"type": "audio/pcmu"}),
            };
            let mut input = json!({"format": fmt});
            if let Some(td) = td {
                input["turn_detection"] = td;
            }
            let mut output = json!({"format": fmt});
            if let Some(v) = &target.voice {
                output["voice"] = json!(v);
            }
            let mut session = json!({
                "type": "realtime",
                "output_modalities": ["audio"],
                "instructions": instructions,
                "audio": {"input": input, "output": output},
                "tools": tools,
                "tool_choice": "auto",
            });
            if let Some(m) = &target.model {
                session["model"] = json!(m);
            }
            json!({"type": "session.update", "session": session})
        }
        Dialect::Beta => {
            let fmt = match format {
                AudioFormat::Pcm16 => "pcm16",
                AudioFormat::G711Ulaw => "g711_ulaw",
            };
            let mut session = json!({
                "modalities": ["text", "audio"],
                "instructions": instructions,
                "input_audio_format": fmt,
                "output_audio_format": fmt,
                "tools": tools,
                "tool_choice": "auto",
            });
            if let Some(td) = td {
                session["turn_detection"] = td;
            }
            if let Some(v) = &target.voice {
                session["voice"] = json!(v);
            }
            json!({"type": "session.update", "session": session})
        }
    }
}

/// The OpenAI Realtime decoder: what the reader remembers between server events.
#[derive(Debug)]
pub struct Decode {
    format: AudioFormat,
    /// Audio item index → provider item id, and samples received for it (at most [`ws::MAX_ITEMS`]).
    items: Vec<(String, usize)>,
    /// Call id → instant of the first argument fragment, and the name from `output_item.added`.
    args_first: HashMap<String, (Instant, String)>,
    /// A response is in progress.
    active: bool,
    /// Tool results were sent; ask for a response when the current one is done.
    pending_response: bool,
    /// The response in progress made a function call (an output item or `arguments.done` showed it).
    saw_call: bool,
}

/// A protocol error event.
fn protocol(at: Instant, message: String) -> AgentEvent {
    AgentEvent::Error { at, category: ErrorCategory::Protocol, message }
}

impl Decode {
    /// A decoder for audio in `format`.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            format,
            items: Vec::new(),
            args_first: HashMap::new(),
            active: false,
            pending_response: false,
            saw_call: false,
        }
    }

    /// Decodes one server event (already stamped) into agent events (and `response.create` when tool results wait
    /// for the end of the response). Everything off the wire is bounded: ids cut to [`ws::MAX_ID`], at most
    /// [`ws::MAX_ITEMS`] audio items and open calls, arguments up to [`ws::MAX_ARGUMENTS`]; bad base64 and odd
    /// PCM16 lengths are protocol errors.
    pub fn decode_event(&mut self, at: Instant, ev: &Json, out: &mut Out) {
        let t = ev["type"].as_str().unwrap_or("");
        match t {
            "response.output_audio.delta" | "response.audio.delta" => self.on_audio(at, t, ev, out),
            "input_audio_buffer.speech_started" => out.event(AgentEvent::SpeechStarted { at }),
            "input_audio_buffer.speech_stopped" => out.event(AgentEvent::SpeechStopped { at }),
            "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
                out.event(AgentEvent::Transcript {
                    at,
                    text: ws::cut(ev["delta"].as_str().unwrap_or(""), ws::MAX_FRAGMENT).to_string(),
                    segment: false,
                })
            }
            "response.created" => {
                self.active = true;
                self.saw_call = false;
            }
            "response.output_item.added" | "response.output_item.done" if ev["item"]["type"] == "function_call" => {
                self.saw_call = true;
                if let Some(call) = ev["item"]["call_id"].as_str() {
                    let name = ws::cut(ev["item"]["name"].as_str().unwrap_or(""), ws::MAX_ID).to_string();
                    self.first_fragment(at, call, name);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(call) = ev["call_id"].as_str() {
                    self.first_fragment(at, call, String::new());
                }
            }
            "response.function_call_arguments.done" => self.on_call_done(at, ev, out),
            "response.done" => self.on_response_done(at, ev, out),
            "error" => {
                let e = &ev["error"];
                let code = e["code"].as_str().unwrap_or("");
                out.event(AgentEvent::Error {
                    at,
                    category: categorise(code, e["type"].as_str().unwrap_or("")),
                    message: format!("{code}: {}", e["message"].as_str().unwrap_or("")),
                });
            }
            _ => {}
        }
    }

    fn on_audio(&mut self, at: Instant, t: &str, ev: &Json, out: &mut Out) {
        let Some(b64) = ev["delta"].as_str() else { return out.event(protocol(at, format!("{t} without delta"))) };
        let Ok(bytes) = B64.decode(b64) else { return out.event(protocol(at, format!("{t}: bad base64"))) };
        let samples = match self.format {
            AudioFormat::Pcm16 => {
                if !bytes.len().is_multiple_of(2) {
                    out.event(protocol(at, format!("{t}: a PCM16 chunk of {} bytes (odd)", bytes.len())));
                }
                crate::audio::frames::from_le_bytes(&bytes)
            }
            AudioFormat::G711Ulaw => mulaw::decode_all(&bytes),
        };
        let id = ws::cut(ev["item_id"].as_str().unwrap_or(""), ws::MAX_ID);
        let item = match self.items.iter().rposition(|(i, _)| i == id) {
            Some(k) => k,
            None if self.items.len() >= ws::MAX_ITEMS => {
                return out.event(protocol(at, format!("audio of more than {} items", ws::MAX_ITEMS)));
            }
            None => {
                self.items.push((id.to_string(), 0));
                self.items.len() - 1
            }
        };
        self.items[item].1 += samples.len();
        if !samples.is_empty() {
            out.event(AgentEvent::Audio { at, item: item as u32, samples });
        }
    }

    /// The first fragment of call `call` (its `output_item.added`, or its first argument delta).
    fn first_fragment(&mut self, at: Instant, call: &str, name: String) {
        if self.args_first.len() < ws::MAX_ITEMS {
            self.args_first.entry(ws::cut(call, ws::MAX_ID).to_string()).or_insert((at, name));
        }
    }

    fn on_call_done(&mut self, at: Instant, ev: &Json, out: &mut Out) {
        self.saw_call = true;
        let call_id = ws::cut(ev["call_id"].as_str().unwrap_or(""), ws::MAX_ID).to_string();
        let (first_at, added_name) = self.args_first.remove(&call_id).unwrap_or((at, String::new()));
        let name = ev["name"].as_str().map_or(added_name, |n| ws::cut(n, ws::MAX_ID).to_string());
        let arguments = ev["arguments"].as_str().unwrap_or("");
        if arguments.len() > ws::MAX_ARGUMENTS {
            let n = arguments.len();
            return out.event(protocol(at, format!("tool call {name}: {n} bytes of arguments, over the bound")));
        }
        out.event(AgentEvent::ToolCall { at, first_at, call_id, name, arguments: arguments.to_string() });
    }

    fn on_response_done(&mut self, at: Instant, ev: &Json, out: &mut Out) {
        self.active = false;
        if std::mem::take(&mut self.pending_response) {
            out.send.push(Message::Text(r#"{"type":"response.create"}"#.into()));
        }
        let r = &ev["response"];
        let status = match r["status"].as_str() {
            Some("cancelled") => ResponseStatus::Cancelled,
            Some("failed") => ResponseStatus::Failed,
            Some("incomplete") => ResponseStatus::Incomplete,
            _ => ResponseStatus::Completed,
        };
        // A `response.done` without its output list still made the calls this response showed.
        let listed = r["output"].as_array().is_some_and(|o| o.iter().any(|i| i["type"] == "function_call"));
        let had_tool_call = listed || std::mem::take(&mut self.saw_call);
        if status == ResponseStatus::Failed {
            let err = &r["status_details"]["error"];
            out.event(AgentEvent::Error {
                at,
                category: categorise(err["code"].as_str().unwrap_or(""), err["type"].as_str().unwrap_or("")),
                message: format!("response failed: {}", err),
            });
        }
        out.event(AgentEvent::ResponseDone { at, status, had_tool_call });
    }
}

impl Decoder for Decode {
    type Command = Command;

    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        if let Some(ev) = ws::frame_json(at, msg, false, out) {
            self.decode_event(at, &ev, out);
        }
    }

    fn on_command(&mut self, cmd: Command, out: &mut Out) {
        match cmd {
            Command::Respond if self.active => self.pending_response = true,
            Command::Respond => out.send.push(Message::Text(r#"{"type":"response.create"}"#.into())),
            Command::Truncate { item, played_ms } => {
                let Some((id, n)) = self.items.get(item as usize).filter(|(id, _)| !id.is_empty()) else { return };
                // Never claim more than the server generated (its error otherwise: "Audio content of … is already
                // shorter").
                let received_ms = (*n as u64 * 1000 / wire_rate(self.format) as u64).min(u32::MAX as u64) as u32;
                let ms = played_ms.min(received_ms);
                let msg = json!({"type": "conversation.item.truncate", "item_id": id, "content_index": 0,
                    "audio_end_ms": ms});
                out.send.push(Message::Text(msg.to_string().into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol_fixture as fixture;

    /// Every JSON object with a string `type` inside a fixture, in document order.
    fn events_in(v: &Json, out: &mut Vec<Json>) {
        match v {
            Json::Object(o) => {
                if o.get("type").and_then(|t| t.as_str()).is_some_and(|t| t.contains('.') || t == "error")
                    && !o.contains_key("item_type")
                {
                    out.push(v.clone());
                }
                for x in o.values() {
                    events_in(x, out);
                }
            }
            Json::Array(a) => a.iter().for_each(|x| events_in(x, out)),
            _ => {}
        }
    }

    fn decode_all(evs: &[Json]) -> Vec<AgentEvent> {
        let at = Instant::now();
        let mut d = Decode::new(AudioFormat::Pcm16);
        let mut out = Out::default();
        evs.iter().for_each(|e| d.decode_event(at, e, &mut out));
        out.events
    }

    #[test]
    fn captured_ga_turn_parses() {
        let mut evs = Vec::new();
        events_in(&fixture("openai_realtime_ga_turn_captured.json"), &mut evs);
        assert!(evs.len() > 5, "{} events", evs.len());
        let out = decode_all(&evs);
        assert!(out.iter().any(|e| matches!(e, AgentEvent::SpeechStarted { .. })));
        assert!(out.iter().any(|e| matches!(e, AgentEvent::SpeechStopped { .. })));
        assert!(out.iter().any(|e| matches!(e, AgentEvent::ResponseDone { status: ResponseStatus::Completed, .. })));
    }

    #[test]
    fn official_examples_parse_in_both_dialects() {
        for f in
            ["openai_realtime_ga_official_event_examples.json", "openai_realtime_beta_official_event_examples.json"]
        {
            let mut evs = Vec::new();
            events_in(&fixture(f), &mut evs);
            let out = decode_all(&evs);
            // The spec's audio example carries a placeholder, not base64: it must surface as a protocol error,
            // never as silently dropped audio.
            assert!(
                out.iter().any(|e| matches!(e, AgentEvent::Audio { .. })
                    || matches!(e, AgentEvent::Error { category: ErrorCategory::Protocol, message, .. } if message.contains("base64"))),
                "{f}: the audio delta example was not decoded"
            );
            assert!(
                out.iter().any(|e| matches!(e, AgentEvent::Error { category: ErrorCategory::ProviderError, .. })),
                "{f}: no error event decoded"
            );
            assert!(out.iter().any(|e| matches!(e, AgentEvent::SpeechStarted { .. })), "{f}");
            assert!(out.iter().any(|e| matches!(e, AgentEvent::ToolCall { .. })), "{f}");
        }
    }

    #[test]
    fn function_call_turn_parses() {
        let mut evs = Vec::new();
        events_in(&fixture("openai_realtime_function_call_turn_docs.json"), &mut evs);
        let out = decode_all(&evs);
        assert!(
            out.iter().any(|e| matches!(e, AgentEvent::ResponseDone { had_tool_call: true, .. })
                || matches!(e, AgentEvent::ToolCall { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn split_arguments_are_joined_by_the_server_done_event() {
        let mut evs: Vec<Json> = [r#"{"party"#, r#"_size": 8, "da"#, r#"te": "2026-12-04"}"#]
            .iter()
            .map(|d| json!({"type": "response.function_call_arguments.delta", "call_id": "c1", "delta": d}))
            .collect();
        evs.push(json!({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "check_availability", "arguments": "{\"party_size\": 8, \"date\": \"2026-12-04\"}"}));
        let out = decode_all(&evs);
        match &out[..] {
            [AgentEvent::ToolCall { name, arguments, .. }] => {
                assert_eq!(name, "check_availability");
                assert_eq!(serde_json::from_str::<Json>(arguments).unwrap()["party_size"], 8);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Issue 15 item 7: a `response.done` without its `output` list still counts the call the response showed, so
    /// the reply stays open for the answer that follows the tool result.
    #[test]
    fn a_response_done_without_output_keeps_the_call_it_showed() {
        for shown in [
            json!({"type": "response.output_item.added", "item": {"type": "function_call", "call_id": "c1", "name": "f"}}),
            json!({"type": "response.output_item.done", "item": {"type": "function_call", "call_id": "c1", "name": "f"}}),
            json!({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "f", "arguments": "{}"}),
        ] {
            let evs = [
                json!({"type": "response.created"}),
                shown.clone(),
                json!({"type": "response.done", "response": {"status": "completed"}}),
                json!({"type": "response.created"}),
                json!({"type": "response.done", "response": {"status": "completed"}}),
            ];
            let dones: Vec<bool> = decode_all(&evs)
                .iter()
                .filter_map(|e| match e {
                    AgentEvent::ResponseDone { had_tool_call, .. } => Some(*had_tool_call),
                    _ => None,
                })
                .collect();
            assert_eq!(dones, [true, false], "{shown}: the follow-up response made no call");
        }
    }

    #[test]
    fn wire_values_are_bounded() {
        let long = "x".repeat(10_000);
        let out = decode_all(&[
            json!({"type": "response.output_audio.delta", "item_id": "a", "delta": B64.encode([1u8, 2, 3])}),
            json!({"type": "response.output_audio.delta", "item_id": "a", "delta": "not base64!"}),
            json!({"type": "response.function_call_arguments.done", "call_id": long, "name": long, "arguments": "{}"}),
            json!({"type": "response.function_call_arguments.done", "call_id": "c", "arguments": "x".repeat(100_000)}),
        ]);
        let kinds: Vec<String> = out
            .iter()
            .map(|e| match e {
                AgentEvent::Audio { samples, .. } => format!("audio{}", samples.len()),
                AgentEvent::Error { message, .. } => format!("error: {message}"),
                AgentEvent::ToolCall { call_id, name, .. } => format!("call {} {}", call_id.len(), name.len()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "error: response.output_audio.delta: a PCM16 chunk of 3 bytes (odd)",
                "audio1",
                "error: response.output_audio.delta: bad base64",
                "call 256 256",
                "error: tool call : 100000 bytes of arguments, over the bound",
            ]
        );
        // More audio items than the bound: the rest are refused, never sized from.
        let mut d = Decode::new(AudioFormat::G711Ulaw);
        let mut out = Out::default();
        for k in 0..ws::MAX_ITEMS + 3 {
            let ev = json!({"type": "response.output_audio.delta", "item_id": k.to_string(), "delta": "AAAA"});
            d.decode_event(Instant::now(), &ev, &mut out);
        }
        let errors = out.events.iter().filter(|e| matches!(e, AgentEvent::Error { .. })).count();
        assert_eq!((d.items.len(), errors), (ws::MAX_ITEMS, 3));
    }

    #[test]
    fn truncation_names_the_item_and_clamps_to_what_was_received() {
        let mut d = Decode::new(AudioFormat::Pcm16);
        let mut out = Out::default();
        // 2400 samples = 100 ms at 24 kHz.
        let ev = json!({"type": "response.output_audio.delta", "item_id": "it_1", "delta": B64.encode([0u8; 4800])});
        d.decode_event(Instant::now(), &ev, &mut out);
        d.on_command(Command::Truncate { item: 0, played_ms: 250 }, &mut out);
        d.on_command(Command::Truncate { item: 7, played_ms: 250 }, &mut out);
        let sent: Vec<Json> = out.send.iter().map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap()).collect();
        assert_eq!(
            sent,
            [json!({"type": "conversation.item.truncate", "item_id": "it_1", "content_index": 0, "audio_end_ms": 100})]
        );
        // A tool result during a response waits for its end; outside one it asks at once.
        let mut out = Out::default();
        d.decode_event(Instant::now(), &json!({"type": "response.created"}), &mut out);
        d.on_command(Command::Respond, &mut out);
        assert!(out.send.is_empty());
        d.decode_event(Instant::now(), &json!({"type": "response.done", "response": {}}), &mut out);
        d.on_command(Command::Respond, &mut out);
        assert_eq!(out.send.len(), 2);
    }

    #[test]
    fn frames_are_valid_append_events() {
        let f = encode_frame(AudioFormat::Pcm16, &[1, -2, 3]);
        let v: Json = serde_json::from_str(f.wire.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "input_audio_buffer.append");
        assert_eq!(B64.decode(v["audio"].as_str().unwrap()).unwrap(), vec![1, 0, 0xFE, 0xFF, 3, 0]);
        let f = encode_frame(AudioFormat::G711Ulaw, &[0; 160]);
        let v: Json = serde_json::from_str(f.wire.to_text().unwrap()).unwrap();
        assert_eq!(B64.decode(v["audio"].as_str().unwrap()).unwrap().len(), 160);
    }
}
