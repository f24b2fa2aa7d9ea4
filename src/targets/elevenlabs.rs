//! ElevenLabs Agents (Conversational AI) over WebSocket: docs/protocols.md §3.
//!
//! Connect to the target's `url` with `?agent_id=` (from `agent_id`), send `conversation_initiation_client_data`,
//! and wait for `conversation_initiation_metadata`: its `conversation_id` is the session id, its audio formats are
//! checked against what this target sends (`pcm_16000`, or `ulaw_8000` with `audio_format = "g711_ulaw"`; a
//! mismatch fails the connection with the fix, rather than the server's 1008 mid-call) and its output format sets
//! the decoding (`pcm_*` at its rate, or `ulaw_8000`). A key (`api_key_env`) goes in the `xi-api-key` header.
//! Then `{"user_audio_chunk": …}` frames.
//!
//! The reader stamps every frame before decoding it. Each agent response's `audio` events share an `event_id`;
//! each new id is a new audio item. `interruption` flushes playback ([`AgentEvent::Interrupted`]) and ends the
//! response as cancelled; late audio with an `event_id` ≤ the interruption's keeps its cut item, so the caller drops
//! it and counts it as post-cancel audio. ElevenLabs never says a reply is over: it ends when its audio stops
//! ([`super::playout`]). `ping` is answered with `pong` and the same `event_id` at once; `client_tool_call` becomes
//! a tool call answered with `client_tool_result`; `user_transcript` is the server's end-of-turn decision
//! ([`AgentEvent::SpeechStopped`]); `agent_response` is the agent's text.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::playout::Replies;
use super::ws::{self, Decoder, Out, WsProtocol, WsSession};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, SessionError};
use crate::audio::frames::{from_le_bytes, to_le_bytes};
use crate::audio::mulaw;
use crate::scenario::schema::AudioFormat;
use crate::scenario::{Scenario, Target};

/// An ElevenLabs audio format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PCM16 LE at this rate.
    Pcm(u32),
    /// G.711 μ-law 8 kHz.
    Ulaw,
}

impl Format {
    /// Parses `pcm_16000`, `ulaw_8000`, ….
    pub fn parse(s: &str) -> Option<Self> {
        if s == "ulaw_8000" {
            return Some(Format::Ulaw);
        }
        s.strip_prefix("pcm_").and_then(|r| r.parse().ok()).filter(|r| *r >= 8000).map(Format::Pcm)
    }

    /// Sample rate.
    pub fn rate(self) -> u32 {
        match self {
            Format::Pcm(r) => r,
            Format::Ulaw => 8000,
        }
    }

    /// The wire name.
    pub fn name(self) -> String {
        match self {
            Format::Pcm(r) => format!("pcm_{r}"),
            Format::Ulaw => "ulaw_8000".into(),
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Format::Pcm(_) => from_le_bytes(bytes),
            Format::Ulaw => mulaw::decode_all(bytes),
        }
    }
}

/// The format this target sends.
pub fn input_format(target: &Target) -> Format {
    match target.audio_format.as_ref().map(|f| *f.get_ref()) {
        Some(AudioFormat::G711Ulaw) => Format::Ulaw,
        _ => Format::Pcm(16_000),
    }
}

/// Encodes caller samples as a `user_audio_chunk` message.
pub fn encode_frame(format: Format, samples: &[i16]) -> Frame {
    let bytes = match format {
        Format::Pcm(_) => to_le_bytes(samples),
        Format::Ulaw => mulaw::encode_all(samples),
    };
    let text = format!(r#"{{"user_audio_chunk":"{}"}}"#, B64.encode(bytes));
    Frame { samples: samples.into(), wire: Message::Text(Utf8Bytes::from(text)) }
}

/// What the decoder remembers between server messages.
#[derive(Debug)]
pub struct DecodeState {
    /// Output format (from the metadata).
    pub format: Format,
    /// Reply bookkeeping and end detection.
    pub replies: Replies,
    /// Response event_id → audio item.
    pub items: HashMap<u64, u32>,
    /// The event_id of the open response.
    pub current: Option<u64>,
    /// Highest interrupted event_id.
    pub interrupted: Option<u64>,
    /// Pings to answer (event ids), taken by the reader.
    pub pongs: Vec<Json>,
}

impl DecodeState {
    /// A decoder for agent audio in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            replies: Replies::new(format.rate()),
            items: HashMap::new(),
            current: None,
            interrupted: None,
            pongs: Vec::new(),
        }
    }

    /// The open response ended (quiet time, a new response, or an interruption).
    fn end(&mut self, status: ResponseStatus, out: &mut Vec<AgentEvent>) {
        if let Some(at) = self.replies.end() {
            out.push(AgentEvent::ResponseDone { at, status, had_tool_call: false });
        }
        self.current = None;
    }

    /// The quiet time after the open response passed: it is over.
    pub fn on_quiet(&mut self, out: &mut Vec<AgentEvent>) {
        self.end(ResponseStatus::Completed, out);
    }
}

/// Decodes one server message (already stamped) into agent events. Pure, for the fixture tests; pings are queued
/// in `st.pongs` for the reader to answer. Everything off the wire is bounded: ids cut to [`ws::MAX_ID`], at most
/// [`ws::MAX_ITEMS`] audio items, odd PCM16 lengths and bad base64 reported as protocol errors.
pub fn decode_message(at: Instant, v: &Json, st: &mut DecodeState) -> Vec<AgentEvent> {
    let mut out = Vec::new();
    match v["type"].as_str().unwrap_or("") {
        "audio" => {
            let a = &v["audio_event"];
            let id = a["event_id"].as_u64().unwrap_or(0);
            let Some(bytes) = a["audio_base_64"].as_str().and_then(|s| B64.decode(s).ok()) else {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: "audio: bad base64".into(),
                });
                return out;
            };
            if matches!(st.format, Format::Pcm(_)) && !bytes.len().is_multiple_of(2) {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("audio: a PCM16 chunk of {} bytes (odd)", bytes.len()),
                });
            }
            let samples = st.format.decode(&bytes);
            if samples.is_empty() {
                return out;
            }
            if st.interrupted.is_some_and(|n| id <= n) {
                // A late chunk of an interrupted response: keep its (cut) item, so the caller drops and counts it.
                if let Some(&item) = st.items.get(&id) {
                    out.push(AgentEvent::Audio { at, item, samples });
                }
                return out;
            }
            if st.current.is_some_and(|c| c != id) {
                st.end(ResponseStatus::Completed, &mut out);
            }
            if !st.items.contains_key(&id) && st.items.len() >= ws::MAX_ITEMS {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("audio of more than {} responses", ws::MAX_ITEMS),
                });
                return out;
            }
            st.current = Some(id);
            let (item, _) = st.replies.audio(at, samples.len());
            st.items.insert(id, item);
            out.push(AgentEvent::Audio { at, item, samples });
        }
        "interruption" => {
            let id = v["interruption_event"]["event_id"].as_u64().unwrap_or(0);
            st.interrupted = Some(st.interrupted.map_or(id, |n| n.max(id)));
            out.push(AgentEvent::Interrupted { at });
            st.replies.flush(at);
            st.end(ResponseStatus::Cancelled, &mut out);
        }
        "client_tool_call" => {
            // Not the end of a reply's audio: the spoken answer follows the tool result, and the reply ends when
            // that audio stops.
            let c = &v["client_tool_call"];
            let arguments = if c["parameters"].is_null() { "{}".to_string() } else { c["parameters"].to_string() };
            let name = ws::cut(c["tool_name"].as_str().unwrap_or_default(), ws::MAX_ID).to_string();
            if arguments.len() > ws::MAX_ARGUMENTS {
                let n = arguments.len();
                let message = format!("tool call {name}: {n} bytes of arguments, over the bound");
                out.push(AgentEvent::Error { at, category: ErrorCategory::Protocol, message });
                return out;
            }
            let call_id = ws::cut(c["tool_call_id"].as_str().unwrap_or_default(), ws::MAX_ID).to_string();
            out.push(AgentEvent::ToolCall { at, first_at: at, call_id, name, arguments });
        }
        "ping" => st.pongs.push(match &v["ping_event"]["event_id"] {
            id @ Json::Number(_) => id.clone(),
            Json::String(id) => Json::String(ws::cut(id, ws::MAX_ID).to_string()),
            _ => Json::Null,
        }),
        "user_transcript" => out.push(AgentEvent::SpeechStopped { at }),
        "agent_response" => {
            let t = v["agent_response_event"]["agent_response"].as_str().unwrap_or_default();
            out.push(AgentEvent::Transcript { at, text: ws::cut(t, ws::MAX_FRAGMENT).to_string(), segment: true });
        }
        "error" => {
            let e = &v["error_event"];
            let code = e["code"].as_u64().unwrap_or(0) as u16;
            let (cat, _) = ws::close_error(code, e["message"].as_str().unwrap_or(""));
            let category = if cat == ErrorCategory::Disconnect { ErrorCategory::ProviderError } else { cat };
            out.push(AgentEvent::Error { at, category, message: format!("error {code}: {}", e["message"]) });
        }
        _ => {}
    }
    out
}

impl Decoder for DecodeState {
    type Command = ();

    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        let Some(v) = ws::frame_json(at, msg, true, out) else { return };
        out.events.extend(decode_message(at, &v, self));
        // Answered at once: the server measures its latency with it.
        out.send.extend(
            self.pongs.drain(..).map(|id| Message::Text(json!({"type": "pong", "event_id": id}).to_string().into())),
        );
    }

    fn due(&self) -> Option<Instant> {
        self.replies.due()
    }

    fn on_timer(&mut self, _now: Instant, out: &mut Out) {
        self.on_quiet(&mut out.events);
    }
}

/// ElevenLabs' sending side: tool results as `client_tool_result`.
pub struct Side;

impl WsProtocol for Side {
    type Command = ();
    const NAME: &'static str = "ElevenLabs";

    async fn send_tool_result(s: &mut ElevenLabs, call_id: &str, output: &str) -> Result<(), SessionError> {
        let msg = json!({"type": "client_tool_result", "tool_call_id": call_id, "result": output, "is_error": false});
        s.conn.send(Message::Text(msg.to_string().into())).await
    }
    // No truncation: the agent learns what was heard from the interruption itself.
}

/// An ElevenLabs agent conversation.
pub type ElevenLabs = WsSession<Side>;

impl ElevenLabs {
    /// Connects and waits for the conversation metadata, within the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let mut url = target.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
        if let Some(a) = &target.agent_id
            && !url.contains("agent_id=")
        {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("agent_id=");
            url.push_str(a.get_ref());
        }
        let key_env = target.api_key_env.as_ref().map(|v| v.get_ref().as_str());
        let (req, secrets) = ws::keyed_request(&url, key_env, "xi-api-key", "")?;
        let want = input_format(target);
        ws::within(scenario, async move {
            let (sink, mut stream) = ws::dial(req, &secrets).await?;
            let init = json!({"type": "conversation_initiation_client_data"});
            ws::send(&sink, Message::Text(init.to_string().into())).await?;
            let meta = loop {
                let v = ws::next_json(&mut stream, &secrets).await?;
                if v["type"] == "conversation_initiation_metadata" {
                    break v["conversation_initiation_metadata_event"].clone();
                }
            };
            let fmt = |k: &str| meta[k].as_str().and_then(Format::parse);
            let input = fmt("user_input_audio_format").unwrap_or(Format::Pcm(16_000));
            if input != want {
                return Err(format_mismatch(input, want));
            }
            let output = fmt("agent_output_audio_format").unwrap_or(Format::Pcm(16_000));
            let conversation_id = meta["conversation_id"].as_str().map(|s| secrets.scrub(ws::cut(s, ws::MAX_ID)));
            let conn = ws::spawn_reader(stream, sink, DecodeState::new(output), secrets);
            let (input_rate, output_rate) = (want.rate(), output.rate());
            Ok(WsSession { conn, input_rate, output_rate, session_id: conversation_id, side: Side })
        })
        .await
    }
}

/// The agent expects `input` but this target sends `want`: a Protocol error with the fix.
fn format_mismatch(input: Format, want: Format) -> SessionError {
    let fix = match input {
        Format::Ulaw => "set `audio_format = \"g711_ulaw\"` on the target".to_string(),
        Format::Pcm(16_000) => "remove `audio_format` from the target (pcm16 is the default)".to_string(),
        Format::Pcm(r) => format!("set the agent's user input format to pcm_16000 or ulaw_8000 (it is pcm_{r})"),
    };
    SessionError::new(
        ErrorCategory::Protocol,
        format!("the agent expects {} input but this target sends {}: {fix}", input.name(), want.name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Json {
        crate::protocol_fixture("elevenlabs_docs_sequences.json")
    }

    #[tokio::test(start_paused = true)]
    async fn docs_sequence_parses() {
        let f = fixture();
        let seq: Vec<&Json> = f["convai_sequence"].as_array().unwrap().iter().map(|e| &e["message"]).collect();
        let meta = &seq[1]["conversation_initiation_metadata_event"];
        let out_fmt = Format::parse(meta["agent_output_audio_format"].as_str().unwrap()).unwrap();
        assert_eq!(out_fmt, Format::Pcm(16_000));
        assert_eq!(Format::parse(meta["user_input_audio_format"].as_str().unwrap()), Some(input_format_default()));
        let mut st = DecodeState::new(out_fmt);
        let at = Instant::now();
        let f2 = fixture();
        let server: Vec<Json> = f2["convai_sequence"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["direction"] == "server->client")
            .map(|e| e["message"].clone())
            .collect();
        let out: Vec<AgentEvent> = server.iter().flat_map(|m| decode_message(at, m, &mut st)).collect();
        // The docs' audio is placeholder text, not canonical base64: it must surface as a protocol error, never as
        // silently dropped audio.
        assert!(
            out.iter().any(|e| matches!(e, AgentEvent::Audio { item: 0, .. })
                || matches!(e, AgentEvent::Error { category: ErrorCategory::Protocol, message, .. } if message.contains("base64"))),
            "{out:?}"
        );
        assert!(out.iter().any(|e| matches!(e, AgentEvent::SpeechStopped { .. })));
        assert!(
            out.iter().any(|e| matches!(e, AgentEvent::Transcript { text, .. } if text.starts_with("I'd be happy")))
        );
        match out.iter().find(|e| matches!(e, AgentEvent::ToolCall { .. })) {
            Some(AgentEvent::ToolCall { call_id, name, arguments, .. }) => {
                assert_eq!((call_id.as_str(), name.as_str()), ("tool_call_123", "check_account_status"));
                assert_eq!(serde_json::from_str::<Json>(arguments).unwrap()["user_id"], "user_123");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st.pongs, vec![json!(12345)], "the ping is queued for a pong with the same event_id");
        // The docs' pong is exactly what the reader sends.
        let pong = seq.iter().find(|m| m["type"] == "pong").unwrap();
        assert_eq!(**pong, json!({"type": "pong", "event_id": st.pongs[0]}));
        let frame = encode_frame(Format::Pcm(16_000), &[1, -2]);
        let v: Json = serde_json::from_str(frame.wire.to_text().unwrap()).unwrap();
        assert!(v.get("type").is_none() && v["user_audio_chunk"].is_string(), "user_audio_chunk has no type field");
    }

    fn input_format_default() -> Format {
        Format::Pcm(16_000)
    }

    #[tokio::test(start_paused = true)]
    async fn interruption_drops_late_audio_of_the_cut_response() {
        let mut st = DecodeState::new(Format::Pcm(16_000));
        let t0 = Instant::now();
        let audio = |id: u64| json!({"type": "audio", "audio_event": {"audio_base_64": B64.encode([0u8, 1, 0, 1]), "event_id": id}});
        let mut out = decode_message(t0, &audio(1), &mut st);
        out.extend(decode_message(
            t0,
            &json!({"type": "interruption", "interruption_event": {"event_id": 1}}),
            &mut st,
        ));
        out.extend(decode_message(t0, &audio(1), &mut st));
        out.extend(decode_message(t0, &audio(2), &mut st));
        let kinds: Vec<String> = out
            .iter()
            .map(|e| match e {
                AgentEvent::Audio { item, .. } => format!("audio{item}"),
                AgentEvent::Interrupted { .. } => "flush".into(),
                AgentEvent::ResponseDone { status, .. } => format!("{status:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["audio0", "flush", "Cancelled", "audio0", "audio1"]);
        // Quiet time after the new response: it completes.
        let due = st.replies.due().unwrap();
        assert!(due > t0);
        let mut done = Vec::new();
        st.on_quiet(&mut done);
        assert!(matches!(done[..], [AgentEvent::ResponseDone { status: ResponseStatus::Completed, .. }]));
    }
}
