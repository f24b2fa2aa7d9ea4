//! The Gemini Live (BidiGenerateContent) wire of the sim: docs/protocols.md §2, over the shared agent brain.
//!
//! `GET /ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=…` (any key). The first
//! message must be `setup` (camelCase or snake_case top-level keys, as the real service accepts both); the reply is
//! `setupComplete` with the `sessionId` the ground truth is logged under. Then:
//!
//! * `realtimeInput.audio` (`audio/pcm;rate=16000`, base64 PCM16) feeds the brain's VAD; automatic activity
//!   detection by default, or, with `realtimeInputConfig.automaticActivityDetection.disabled`, turns that end at
//!   `activityEnd` and barge-ins at `activityStart`.
//! * `realtimeInput.mediaChunks` closes with 1007 and the real reason; so do a missing `setup`, `clientContent`
//!   mid-session (3.1 models), a `toolResponse` for an unknown id and an audio MIME type that is not 16 kHz PCM.
//! * Server messages go out as **binary** frames carrying JSON, as the real service sends them: `modelTurn`
//!   `inlineData` (24 kHz PCM), `outputTranscription`, `inputTranscription`, `toolCall`, `interrupted` →
//!   `turnComplete` (no `generationComplete`), `generationComplete` → `turnComplete` + `usageMetadata` →
//!   `sessionResumptionUpdate`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::brain::{Brain, Event};
use super::replies::WireFormat;
use super::wire::{Close, Out, Plain, Wire};

/// The upgrade path of the Gemini Developer API's Live endpoint.
pub const PATH: &str = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

const INVALID: &str = "Request contains an invalid argument.";

/// Accepts Gemini Live sessions: 16 kHz PCM in, 24 kHz out, tools as the `setup` declares them.
pub(crate) fn accept() -> Plain {
    Plain {
        path: PATH,
        input: WireFormat::Pcm16,
        output: WireFormat::Pcm24,
        tools: false,
        wire: |_| Box::new(Gemini::default()),
    }
}

#[derive(Default)]
struct Gemini {
    set_up: bool,
    manual: bool,
    /// The current model turn was interrupted (its `turnComplete` carries no `generationComplete`).
    interrupted: bool,
    /// The current model turn sent something (audio or a tool call) and has no `turnComplete` yet.
    open: bool,
    /// Tool calls awaiting a `toolResponse`.
    pending_calls: Vec<String>,
    /// An interruption already sent this turn's `turnComplete`.
    closed: bool,
    handles: u64,
    bytes: Vec<u8>,
}

/// A top-level field in camelCase or snake_case.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn bin(v: Value) -> Message {
    Message::Binary(v.to_string().into_bytes().into())
}

impl Gemini {
    fn setup(&mut self, conn: &mut Brain, s: &Value, out: &mut Out) -> Result<(), Close> {
        if !s.is_object() {
            return Err(Close::new(1007, INVALID));
        }
        let names: Vec<String> = s["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| field(t, "functionDeclarations", "function_declarations").and_then(Value::as_array))
            .flatten()
            .filter_map(|d| d["name"].as_str().map(String::from))
            .collect();
        conn.declare_tools(&names);
        let ric = field(s, "realtimeInputConfig", "realtime_input_config");
        let aad = ric.and_then(|r| field(r, "automaticActivityDetection", "automatic_activity_detection"));
        if aad.and_then(|a| a["disabled"].as_bool()) == Some(true) {
            self.manual = true;
            conn.manual_turns();
        }
        if let Some(m) = s["generationConfig"]["responseModalities"].as_array()
            && m.iter().any(|x| x == "TEXT")
        {
            // Native-audio models reject the TEXT modality at set-up (maximhq/bifrost#4988).
            return Err(Close::new(1007, INVALID));
        }
        self.set_up = true;
        out.push(bin(json!({"setupComplete": {"sessionId": conn.session_id()}})));
        Ok(())
    }

    fn realtime_input(&mut self, conn: &mut Brain, r: &Value, at: Instant) -> Result<(), Close> {
        if field(r, "mediaChunks", "media_chunks").is_some() {
            return Err(Close::new(
                1007,
                "realtime_input.media_chunks is deprecated. Use audio, video, or text instead.",
            ));
        }
        if let Some(a) = r.get("audio") {
            let mime = field(a, "mimeType", "mime_type").and_then(Value::as_str).unwrap_or("");
            if !mime.starts_with("audio/pcm") || (mime.contains("rate=") && !mime.contains("rate=16000")) {
                return Err(Close::new(1007, INVALID));
            }
            let data = a["data"].as_str().unwrap_or("");
            self.bytes.clear();
            if STANDARD.decode_vec(data, &mut self.bytes).is_err() || !self.bytes.len().is_multiple_of(2) {
                return Err(Close::new(1007, INVALID));
            }
            let bytes = std::mem::take(&mut self.bytes);
            conn.audio(&bytes, at);
            self.bytes = bytes;
        }
        if field(r, "activityStart", "activity_start").is_some() && self.manual {
            conn.client_activity_start(at);
        }
        if field(r, "activityEnd", "activity_end").is_some() && self.manual {
            conn.end_turn(at);
        }
        Ok(())
    }
}

impl Wire for Gemini {
    fn on_message(&mut self, conn: &mut Brain, msg: Message, at: Instant, out: &mut Out) -> Result<(), Close> {
        let v: Value = match &msg {
            Message::Text(t) => serde_json::from_str(t),
            Message::Binary(b) => serde_json::from_slice(b),
            _ => return Ok(()),
        }
        .map_err(|_| Close::new(1007, INVALID))?;
        if !self.set_up {
            return match v.get("setup") {
                Some(s) => self.setup(conn, s, out),
                None => Err(Close::new(1007, INVALID)),
            };
        }
        if let Some(r) = field(&v, "realtimeInput", "realtime_input") {
            return self.realtime_input(conn, r, at);
        }
        if let Some(t) = field(&v, "toolResponse", "tool_response") {
            let responses = field(t, "functionResponses", "function_responses").and_then(Value::as_array);
            for f in responses.into_iter().flatten() {
                let id = f["id"].as_str().unwrap_or_default().to_string();
                let Some(pos) = self.pending_calls.iter().position(|c| *c == id) else {
                    return Err(Close::new(1007, INVALID));
                };
                self.pending_calls.remove(pos);
                if !conn.tool_result(&id, at) {
                    return Err(Close::new(1007, INVALID));
                }
            }
            return Ok(());
        }
        if field(&v, "clientContent", "client_content").is_some() || v.get("setup").is_some() {
            // 3.1 models: clientContent only seeds history; a second setup is never accepted.
            return Err(Close::new(1007, INVALID));
        }
        Err(Close::new(1007, INVALID))
    }

    fn render(&mut self, conn: &mut Brain, sig: Event, out: &mut Out) {
        match sig {
            Event::Audio { b64, .. } => {
                self.open = true;
                out.push(Message::Binary(
                    format!(
                        r#"{{"serverContent":{{"modelTurn":{{"parts":[{{"inlineData":{{"mimeType":"audio/pcm;rate=24000","data":"{b64}"}}}}]}}}}}}"#
                    )
                    .into_bytes()
                    .into(),
                ));
            }
            Event::Transcript(t) => out.push(bin(json!({"serverContent": {"outputTranscription": {"text": &*t}}}))),
            Event::UserTranscript { text: t, .. } => {
                out.push(bin(json!({"serverContent": {"inputTranscription": {"text": t}}})))
            }
            Event::Interrupted => {
                self.interrupted = true;
                out.push(bin(json!({"serverContent": {"interrupted": true}})));
                if !self.open {
                    // The reply was fully generated and is only playing: the spurious interrupted → turnComplete
                    // pair of a finished turn (langwatch/scenario#360).
                    out.push(bin(json!({"serverContent": {"turnComplete": true}})));
                    self.interrupted = false;
                    self.closed = true;
                }
            }
            Event::CallDone { call_id, name, arguments, completed: true, .. } => {
                self.open = true;
                let args: Value = serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
                self.pending_calls.push(call_id.clone());
                out.push(bin(json!({"toolCall": {"functionCalls": [{"id": call_id, "name": name, "args": args}]}})));
            }
            Event::ResponseDone { cancelled, tool, .. } => {
                if tool && !cancelled {
                    // The model waits for the toolResponse; the turn goes on.
                    return;
                }
                if std::mem::take(&mut self.closed) && cancelled {
                    // Cancelled before it sent anything; the interruption already completed the turn.
                    return;
                }
                if cancelled && !self.pending_calls.is_empty() {
                    out.push(bin(json!({"toolCallCancellation": {"ids": std::mem::take(&mut self.pending_calls)}})));
                }
                if !cancelled && !self.interrupted {
                    out.push(bin(json!({"serverContent": {"generationComplete": true}})));
                }
                out.push(bin(json!({"serverContent": {"turnComplete": true},
                    "usageMetadata": {"promptTokenCount": 147, "responseTokenCount": 36, "totalTokenCount": 183}})));
                self.handles += 1;
                out.push(bin(json!({"sessionResumptionUpdate": {
                    "newHandle": format!("{}-{}", conn.session_id(), self.handles), "resumable": true}})));
                self.open = false;
                self.interrupted = false;
            }
            _ => {}
        }
    }
}
