//! OpenAI Realtime over WebSocket (GA, and the legacy beta names for local servers): docs/protocols.md §1.
//!
//! Connect with `?model=` (not beside an Azure URL's `deployment=`, whose query is kept) and an
//! `Authorization: Bearer` header, or Azure's `api-key` header with `auth = "api-key"` (key from the scenario's
//! `api_key_env`), configure the
//! session with `session.update` (`type: "realtime"` in GA), then stream `input_audio_buffer.append` frames. A
//! reader task stamps each incoming frame with the clock *before* parsing it and turns the server's events into
//! [`AgentEvent`]s. Tool calls are answered with `conversation.item.create` (function_call_output) and, once the
//! response that made the call is done, `response.create`. After a flush the caller reports how much of the
//! item it heard and this adapter sends `conversation.item.truncate`, clamped to the audio actually received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::secret::Secrets;
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, Session, SessionError};
use crate::audio::{frames::to_le_bytes, mulaw};
use crate::scenario::schema::{AudioFormat, Dialect};
use crate::scenario::{Scenario, Target};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>;

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

/// State shared by the reader task and the caller's side.
#[derive(Default)]
struct Shared {
    /// item index → provider item id, and samples received for it.
    items: Vec<(String, usize)>,
    /// A response is in progress.
    active: bool,
    /// Tool results were sent; ask for a response when the current one is done.
    pending_response: bool,
}

/// An OpenAI Realtime session.
pub struct OpenAiRealtime {
    sink: Sink,
    events: mpsc::Receiver<AgentEvent>,
    shared: Arc<Mutex<Shared>>,
    format: AudioFormat,
    session_id: Option<String>,
    dialect: Dialect,
}

fn ws_error(e: impl std::fmt::Display) -> SessionError {
    SessionError::new(ErrorCategory::Disconnect, format!("WebSocket: {e}"))
}

impl OpenAiRealtime {
    /// Connects to `url` (the target's, or the embedded sim's), configures the session, and waits for the
    /// provider to confirm it. Bounded by the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target, url: &str) -> Result<Self, SessionError> {
        let limit = Duration::from_millis(scenario.defaults.connect_timeout_ms as u64);
        match tokio::time::timeout(limit, Self::connect_inner(scenario, target, url)).await {
            Ok(r) => r,
            Err(_) => {
                Err(SessionError::new(ErrorCategory::Connect, format!("no session within {} ms", limit.as_millis())))
            }
        }
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
        let mut secrets = Secrets::from_url(&full);
        let mut req = full
            .as_str()
            .into_client_request()
            .map_err(|e| SessionError::new(ErrorCategory::Connect, format!("bad URL {full}: {e}")))?;
        if let Some(var) = &target.api_key_env {
            let key = std::env::var(var.get_ref()).map_err(|_| {
                SessionError::new(ErrorCategory::Auth, format!("environment variable {} is not set", var.get_ref()))
            })?;
            // The key goes into the header and nowhere else; a bad header value is reported without it.
            let api_key = target.auth.as_ref().is_some_and(|a| a.get_ref() == "api-key");
            let (name, text) =
                if api_key { ("api-key", key.clone()) } else { ("Authorization", format!("Bearer {key}")) };
            let value = HeaderValue::from_str(&text).map_err(|_| {
                SessionError::new(ErrorCategory::Auth, format!("{} holds characters a header cannot", var.get_ref()))
            })?;
            req.headers_mut().insert(name, value);
            secrets.add(&key);
        }
        if dialect == Dialect::Beta {
            req.headers_mut().insert("OpenAI-Beta", HeaderValue::from_static("realtime=v1"));
        }
        let (sink, mut stream) = super::ws::dial(req, &secrets).await?;
        let format = format_of(target);

        // session.created, then our session.update, then session.updated.
        let created = next_json(&mut stream).await?;
        if created["type"] == "error" {
            return Err(provider_error(&created));
        }
        let session_id = created["session"]["id"].as_str().map(String::from);
        let update = session_update(scenario, target, dialect, format);
        sink.lock().await.send(Message::Text(update.to_string().into())).await.map_err(ws_error)?;
        loop {
            let ev = next_json(&mut stream).await?;
            match ev["type"].as_str() {
                Some("session.updated") => break,
                Some("error") => return Err(provider_error(&ev)),
                _ => {}
            }
        }
        let (tx, events) = mpsc::channel(1024);
        let shared = Arc::new(Mutex::new(Shared::default()));
        tokio::spawn(reader(stream, tx, shared.clone(), sink.clone(), format));
        Ok(Self { sink, events, shared, format, session_id, dialect })
    }
}

async fn next_json(stream: &mut SplitStream<Ws>) -> Result<Json, SessionError> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map_err(|e| SessionError::new(ErrorCategory::Protocol, format!("not JSON: {e}")));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(SessionError::new(ErrorCategory::Connect, format!("closed during set-up: {c:?}")));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(SessionError::new(ErrorCategory::Connect, e.to_string())),
            None => return Err(SessionError::new(ErrorCategory::Connect, "closed during set-up")),
        }
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

fn provider_error(ev: &Json) -> SessionError {
    let e = &ev["error"];
    let code = e["code"].as_str().unwrap_or("");
    let cat = categorise(code, e["type"].as_str().unwrap_or(""));
    SessionError::new(
        if cat == ErrorCategory::ProviderError { ErrorCategory::Connect } else { cat },
        format!("{code}: {}", e["message"].as_str().unwrap_or("")),
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

/// Decodes one server event (already stamped) into zero or more agent events. Pure, for the fixture tests.
pub fn decode_event(
    at: Instant,
    ev: &Json,
    format: AudioFormat,
    items: &mut HashMap<String, u32>,
    args_first: &mut HashMap<String, (Instant, String)>,
) -> Vec<AgentEvent> {
    let t = ev["type"].as_str().unwrap_or("");
    match t {
        "response.output_audio.delta" | "response.audio.delta" => {
            let Some(b64) = ev["delta"].as_str() else {
                return vec![AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("{t} without delta"),
                }];
            };
            let Ok(bytes) = B64.decode(b64) else {
                return vec![AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("{t}: bad base64"),
                }];
            };
            let samples = match format {
                AudioFormat::Pcm16 => crate::audio::frames::from_le_bytes(&bytes),
                AudioFormat::G711Ulaw => mulaw::decode_all(&bytes),
            };
            let id = ev["item_id"].as_str().unwrap_or("").to_string();
            let n = items.len() as u32;
            let item = *items.entry(id).or_insert(n);
            if samples.is_empty() { vec![] } else { vec![AgentEvent::Audio { at, item, samples }] }
        }
        "input_audio_buffer.speech_started" => vec![AgentEvent::SpeechStarted { at }],
        "input_audio_buffer.speech_stopped" => vec![AgentEvent::SpeechStopped { at }],
        "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
            vec![AgentEvent::Transcript { at, text: ev["delta"].as_str().unwrap_or("").to_string() }]
        }
        "response.output_item.added" if ev["item"]["type"] == "function_call" => {
            if let Some(call) = ev["item"]["call_id"].as_str() {
                let name = ev["item"]["name"].as_str().unwrap_or("").to_string();
                args_first.entry(call.to_string()).or_insert((at, name));
            }
            vec![]
        }
        "response.function_call_arguments.delta" => {
            if let Some(call) = ev["call_id"].as_str() {
                args_first.entry(call.to_string()).or_insert((at, String::new()));
            }
            vec![]
        }
        "response.function_call_arguments.done" => {
            let call_id = ev["call_id"].as_str().unwrap_or("").to_string();
            let (first_at, added_name) = args_first.remove(&call_id).unwrap_or((at, String::new()));
            let name = ev["name"].as_str().map(String::from).unwrap_or(added_name);
            vec![AgentEvent::ToolCall {
                at,
                first_at,
                call_id,
                name,
                arguments: ev["arguments"].as_str().unwrap_or("").to_string(),
            }]
        }
        "response.done" => {
            let r = &ev["response"];
            let status = match r["status"].as_str() {
                Some("cancelled") => ResponseStatus::Cancelled,
                Some("failed") => ResponseStatus::Failed,
                Some("incomplete") => ResponseStatus::Incomplete,
                _ => ResponseStatus::Completed,
            };
            let had_tool_call = r["output"].as_array().is_some_and(|o| o.iter().any(|i| i["type"] == "function_call"));
            let mut out = vec![AgentEvent::ResponseDone { at, status, had_tool_call }];
            if status == ResponseStatus::Failed {
                let err = &r["status_details"]["error"];
                out.insert(
                    0,
                    AgentEvent::Error {
                        at,
                        category: categorise(err["code"].as_str().unwrap_or(""), err["type"].as_str().unwrap_or("")),
                        message: format!("response failed: {}", err),
                    },
                );
            }
            out
        }
        "error" => {
            let e = &ev["error"];
            let code = e["code"].as_str().unwrap_or("");
            vec![AgentEvent::Error {
                at,
                category: categorise(code, e["type"].as_str().unwrap_or("")),
                message: format!("{code}: {}", e["message"].as_str().unwrap_or("")),
            }]
        }
        _ => vec![],
    }
}

async fn reader(
    mut stream: SplitStream<Ws>,
    tx: mpsc::Sender<AgentEvent>,
    shared: Arc<Mutex<Shared>>,
    sink: Sink,
    format: AudioFormat,
) {
    let mut items: HashMap<String, u32> = HashMap::new();
    let mut args_first = HashMap::new();
    loop {
        let msg = stream.next().await;
        // The receive instant: before any parsing or decoding.
        let at = Instant::now();
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(c))) => {
                let reason = c.map_or("closed".to_string(), |c| format!("close {}: {}", u16::from(c.code), c.reason));
                let _ = tx.send(AgentEvent::Closed { at, reason }).await;
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let _ = tx.send(AgentEvent::Closed { at, reason: e.to_string() }).await;
                return;
            }
            None => {
                let _ = tx.send(AgentEvent::Closed { at, reason: "connection closed".into() }).await;
                return;
            }
        };
        let ev: Json = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let _ = tx
                    .send(AgentEvent::Error {
                        at,
                        category: ErrorCategory::Protocol,
                        message: format!("not JSON: {e}"),
                    })
                    .await;
                continue;
            }
        };
        let t = ev["type"].as_str().unwrap_or("");
        let mut send_response = false;
        {
            let mut s = shared.lock().expect("adapter state");
            match t {
                "response.created" => s.active = true,
                "response.done" => {
                    s.active = false;
                    send_response = std::mem::take(&mut s.pending_response);
                }
                "response.output_audio.delta" | "response.audio.delta" => {
                    let id = ev["item_id"].as_str().unwrap_or("");
                    let n = ev["delta"].as_str().map_or(0, |d| d.len() / 4 * 3);
                    let samples = match format {
                        AudioFormat::Pcm16 => n / 2,
                        AudioFormat::G711Ulaw => n,
                    };
                    match s.items.iter_mut().find(|(i, _)| i == id) {
                        Some(entry) => entry.1 += samples,
                        None => s.items.push((id.to_string(), samples)),
                    }
                }
                _ => {}
            }
        }
        if send_response {
            let msg = Message::Text(r#"{"type":"response.create"}"#.into());
            let _ = sink.lock().await.send(msg).await;
        }
        for e in decode_event(at, &ev, format, &mut items, &mut args_first) {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}

impl Session for OpenAiRealtime {
    fn input_rate(&self) -> u32 {
        wire_rate(self.format)
    }

    fn output_rate(&self) -> u32 {
        wire_rate(self.format)
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        self.sink.lock().await.send(frame.wire.clone()).await.map_err(ws_error)
    }

    async fn send_tool_result(&mut self, call_id: &str, output: &str) -> Result<(), SessionError> {
        let item = json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}});
        let mut sink = self.sink.lock().await;
        sink.send(Message::Text(item.to_string().into())).await.map_err(ws_error)?;
        let now = {
            let mut s = self.shared.lock().expect("adapter state");
            if s.active {
                s.pending_response = true;
                false
            } else {
                true
            }
        };
        if now {
            sink.send(Message::Text(r#"{"type":"response.create"}"#.into())).await.map_err(ws_error)?;
        }
        Ok(())
    }

    async fn truncate(&mut self, item: u32, played_ms: u32) -> Result<(), SessionError> {
        let (id, received_ms) = {
            let s = self.shared.lock().expect("adapter state");
            match s.items.get(item as usize) {
                Some((id, n)) => (id.clone(), (*n as u64 * 1000 / wire_rate(self.format) as u64) as u32),
                None => return Ok(()),
            }
        };
        if id.is_empty() {
            return Ok(());
        }
        // Never claim more than the server generated (its error otherwise: "Audio content of … is already shorter").
        let ms = played_ms.min(received_ms);
        let msg = json!({"type": "conversation.item.truncate", "item_id": id, "content_index": 0, "audio_end_ms": ms});
        let _ = self.dialect;
        self.sink.lock().await.send(Message::Text(msg.to_string().into())).await.map_err(ws_error)
    }

    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent> {
        &mut self.events
    }

    async fn close(&mut self) {
        let _ = self.sink.lock().await.send(Message::Close(None)).await;
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
        let (mut items, mut first) = (HashMap::new(), HashMap::new());
        evs.iter().flat_map(|e| decode_event(at, e, AudioFormat::Pcm16, &mut items, &mut first)).collect()
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
        let at = Instant::now();
        let (mut items, mut first) = (HashMap::new(), HashMap::new());
        let mut out = Vec::new();
        for d in [r#"{"party"#, r#"_size": 8, "da"#, r#"te": "2026-12-04"}"#] {
            out.extend(decode_event(
                at,
                &json!({"type": "response.function_call_arguments.delta", "call_id": "c1", "delta": d}),
                AudioFormat::Pcm16,
                &mut items,
                &mut first,
            ));
        }
        out.extend(decode_event(
            at,
            &json!({"type": "response.function_call_arguments.done", "call_id": "c1", "name": "check_availability", "arguments": "{\"party_size\": 8, \"date\": \"2026-12-04\"}"}),
            AudioFormat::Pcm16,
            &mut items,
            &mut first,
        ));
        match &out[..] {
            [AgentEvent::ToolCall { name, arguments, .. }] => {
                assert_eq!(name, "check_availability");
                assert_eq!(serde_json::from_str::<Json>(arguments).unwrap()["party_size"], 8);
            }
            other => panic!("{other:?}"),
        }
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
