//! The ElevenLabs Agents (Conversational AI) wire of the sim: docs/protocols.md §3, over the shared agent brain.
//!
//! `GET /v1/convai/conversation?agent_id=…`. On `conversation_initiation_client_data` the sim answers
//! `conversation_initiation_metadata` with its `conversation_id` (the ground truth's session id) and the audio
//! formats: `pcm_16000` both ways, or `ulaw_8000` both ways for a target with `audio_format = "g711_ulaw"` (a
//! telephony agent). Then:
//!
//! * `user_audio_chunk` feeds the brain's VAD; a chunk that does not fit the input format (odd length for PCM)
//!   closes with 1008 and the real "could not broadcast input array" reason.
//! * Each agent response has its own `event_id`; its `audio` events carry it, `interruption` carries the id of the
//!   response it cuts, `agent_response` (full text) follows a completed spoken response.
//! * The agent's tools are the scenario's (configured on the agent, as on the real service): `client_tool_call`,
//!   answered by `client_tool_result` with the same `tool_call_id` (unknown ids close with 1008).
//! * `ping` every 2 s with an increasing `event_id`; a `pong` that names no ping sent closes with 1008.
//! * `user_transcript` at the end of each caller turn.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::brain::{Brain, Event};
use super::replies::WireFormat;
use super::wire::{Close, Out, Plain, Wire};

/// The upgrade path.
pub const PATH: &str = "/v1/convai/conversation";

/// Keep-alive ping period.
const PING_EVERY: Duration = Duration::from_secs(2);

/// Accepts ElevenLabs agent conversations: PCM 16 kHz both ways, or μ-law 8 kHz (`ulaw`); the agent has the
/// scenario's tools.
pub(crate) fn accept(ulaw: bool) -> Plain {
    let fmt = if ulaw { WireFormat::Pcmu } else { WireFormat::Pcm16 };
    Plain { path: PATH, input: fmt, output: fmt, tools: true, wire: |fmt| Box::new(ElevenLabs::new(fmt)) }
}

struct ElevenLabs {
    fmt: WireFormat,
    started: bool,
    /// event_id of the current agent response (a new one after each response ends).
    response_id: u64,
    /// The id of the last response that sent audio.
    spoke_id: Option<u64>,
    text: String,
    next_ping: Option<Instant>,
    pings: Vec<u64>,
    ping_id: u64,
    calls: Vec<String>,
    bytes: Vec<u8>,
}

impl ElevenLabs {
    fn new(fmt: WireFormat) -> Self {
        Self {
            fmt,
            started: false,
            response_id: 0,
            spoke_id: None,
            text: String::new(),
            next_ping: None,
            pings: Vec::new(),
            ping_id: 1000,
            calls: Vec::new(),
            bytes: Vec::new(),
        }
    }
}

fn text(v: Value) -> Message {
    Message::text(v.to_string())
}

impl Wire for ElevenLabs {
    fn on_message(&mut self, conn: &mut Brain, msg: Message, at: Instant, out: &mut Out) -> Result<(), Close> {
        let Message::Text(t) = msg else {
            return Err(Close::new(1008, "Invalid message received: binary frames are not supported"));
        };
        let v: Value =
            serde_json::from_str(&t).map_err(|e| Close::new(1008, format!("Invalid message received: {e}")))?;
        if let Some(chunk) = v.get("user_audio_chunk") {
            self.bytes.clear();
            let ok = chunk.as_str().is_some_and(|c| STANDARD.decode_vec(c, &mut self.bytes).is_ok());
            let bps = self.fmt.bytes_per_sample();
            if !ok || !self.bytes.len().is_multiple_of(bps) {
                let n = self.bytes.len();
                return Err(Close::new(
                    1008,
                    format!(
                        "Invalid message received: could not broadcast input array from shape ({n},) into shape ({},)",
                        n / bps
                    ),
                ));
            }
            let bytes = std::mem::take(&mut self.bytes);
            conn.audio(&bytes, at);
            self.bytes = bytes;
            return Ok(());
        }
        match v["type"].as_str().unwrap_or("") {
            "conversation_initiation_client_data" => {
                let f = match self.fmt {
                    WireFormat::Pcmu => "ulaw_8000",
                    _ => "pcm_16000",
                };
                out.push(text(json!({"type": "conversation_initiation_metadata",
                    "conversation_initiation_metadata_event": {"conversation_id": conn.session_id(),
                        "agent_output_audio_format": f, "user_input_audio_format": f}})));
                if !self.started {
                    self.started = true;
                    self.next_ping = Some(at + PING_EVERY);
                }
                Ok(())
            }
            "pong" => {
                let id = v["event_id"].as_u64();
                match id.and_then(|id| self.pings.iter().position(|p| *p == id)) {
                    Some(pos) => {
                        self.pings.drain(..=pos);
                        Ok(())
                    }
                    None => Err(Close::new(
                        1008,
                        format!("Invalid message received: pong for unknown ping {}", v["event_id"]),
                    )),
                }
            }
            "client_tool_result" => {
                let id = v["tool_call_id"].as_str().unwrap_or_default().to_string();
                let Some(pos) = self.calls.iter().position(|c| *c == id) else {
                    return Err(Close::new(1008, format!("Invalid message received: unknown tool_call_id {id}")));
                };
                self.calls.remove(pos);
                conn.tool_result(&id, at);
                Ok(())
            }
            "user_activity" | "contextual_update" | "user_message" | "user_feedback" => Ok(()),
            other => Err(Close::new(1008, format!("Invalid message received: unknown type `{other}`"))),
        }
    }

    fn render(&mut self, _conn: &mut Brain, sig: Event, out: &mut Out) {
        match sig {
            Event::Audio { b64, .. } => {
                if self.spoke_id != Some(self.response_id) {
                    self.spoke_id = Some(self.response_id);
                }
                out.push(Message::text(format!(
                    r#"{{"type":"audio","audio_event":{{"audio_base_64":"{b64}","event_id":{}}}}}"#,
                    self.response_id
                )));
            }
            Event::Transcript(t) => {
                // Deltas carry their own spaces; the whole response goes out trimmed.
                self.text.push_str(&t);
            }
            Event::UserTranscript { text: t, .. } => out.push(text(json!({"type": "user_transcript",
                "user_transcription_event": {"user_transcript": t, "event_id": self.response_id}}))),
            Event::Interrupted => {
                let id = self.spoke_id.unwrap_or(self.response_id);
                out.push(text(json!({"type": "interruption", "interruption_event": {"event_id": id}})));
            }
            Event::CallDone { call_id, name, arguments, completed: true, .. } => {
                let params: Value = serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
                self.calls.push(call_id.clone());
                out.push(text(json!({"type": "client_tool_call", "client_tool_call": {"tool_name": name,
                    "tool_call_id": call_id, "parameters": params, "event_id": self.response_id}})));
            }
            Event::ResponseDone { cancelled, spoke, .. } => {
                let said = std::mem::take(&mut self.text).trim().to_string();
                if spoke && !cancelled {
                    out.push(text(json!({"type": "agent_response",
                        "agent_response_event": {"agent_response": said, "event_id": self.response_id}})));
                }
                self.response_id += 1;
            }
            _ => {}
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_ping
    }

    fn on_timer(&mut self, _brain: &mut Brain, now: Instant, out: &mut Out) {
        let Some(due) = self.next_ping.filter(|d| *d <= now) else { return };
        self.ping_id += 1;
        self.pings.push(self.ping_id);
        out.push(text(json!({"type": "ping", "ping_event": {"event_id": self.ping_id, "ping_ms": 12}})));
        self.next_ping = Some(due + PING_EVERY);
    }
}
