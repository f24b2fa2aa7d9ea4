//! Gemini Live (BidiGenerateContent over WebSocket): docs/protocols.md §2.
//!
//! Connect to the target's `url` with the key in the query (`?key=` from `api_key_env`; the URL may already carry
//! one), send `setup` (model, audio response modality, voice, instructions, the scenario's tools as function
//! declarations, activity detection, transcription, resumption) and wait for `setupComplete` before anything else.
//! Then stream `realtimeInput.audio` (PCM16 16 kHz, never the rejected `mediaChunks`). With
//! `turn_detection = { type = "none" }` the adapter ends turns itself (manual activity mode): a client-side energy
//! VAD on the outgoing audio sends `activityStart` at the caller's onset and `activityEnd` after
//! `silence_duration_ms` (default 500) of silence.
//!
//! The reader stamps every frame before decoding it; frames may be text or binary (the service sends binary JSON).
//! `modelTurn` `inlineData` is 24 kHz PCM audio, one audio item per model turn; `interrupted` flushes playback
//! ([`AgentEvent::Interrupted`]); `turnComplete` ends the response (cancelled if it was interrupted);
//! `toolCall` function calls are answered with `toolResponse` (result under `response.output`; the reader sends it,
//! since only the decoder knows each call's function name). Errors arrive
//! only as close codes (1007, 1008, 1011): they are reported with their category and code. `goAway` and
//! `sessionResumptionUpdate` are noted (the latest resumable handle is kept); a call is not resumed on a new socket
//! (calls are far shorter than the ~10 min connection limit). The key travels in the URL, so every message this
//! adapter produces is scrubbed of it ([`super::secret`]).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::secret::Secrets;
use super::ws::{self, Decoder, Out, WsProtocol, WsSession};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, SessionError};
use crate::audio::frames::{from_le_bytes, to_le_bytes};
use crate::audio::stream_vad::{StreamVad, VadEvent};
use crate::scenario::{Scenario, Target};

/// Input audio rate (PCM16 mono).
pub const INPUT_RATE: u32 = 16_000;
/// Output audio rate (PCM16 mono).
pub const OUTPUT_RATE: u32 = 24_000;
/// The model when the target names none.
pub const DEFAULT_MODEL: &str = "models/gemini-live-2.5-flash-preview";

/// Encodes caller samples (16 kHz) as a `realtimeInput.audio` message.
pub fn encode_frame(samples: &[i16]) -> Frame {
    let text = format!(
        r#"{{"realtimeInput":{{"audio":{{"data":"{}","mimeType":"audio/pcm;rate=16000"}}}}}}"#,
        B64.encode(to_le_bytes(samples))
    );
    Frame { samples: samples.into(), wire: Message::Text(Utf8Bytes::from(text)) }
}

/// Whether the target asks for manual activity mode (`turn_detection = { type = "none" }`).
fn manual(target: &Target) -> bool {
    target.turn_detection.as_ref().is_some_and(|t| t.get_ref().kind.get_ref() == "none")
}

/// The `setup` message for a target.
pub fn setup_message(scenario: &Scenario, target: &Target) -> Json {
    let mut model = target.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
    if !model.starts_with("models/") && !model.starts_with("projects/") {
        model = format!("models/{model}");
    }
    let decls: Vec<Json> = scenario
        .agent
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    let mut generation = json!({"responseModalities": ["AUDIO"]});
    if let Some(v) = &target.voice {
        generation["speechConfig"] = json!({"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": v}}});
    }
    let td = target.turn_detection.as_ref().map(|t| t.get_ref());
    let aad = if manual(target) {
        json!({"disabled": true})
    } else {
        let mut a = json!({"disabled": false});
        if let Some(ms) = td.and_then(|t| t.silence_duration_ms) {
            a["silenceDurationMs"] = json!(ms);
        }
        if let Some(ms) = td.and_then(|t| t.prefix_padding_ms) {
            a["prefixPaddingMs"] = json!(ms);
        }
        a
    };
    let mut setup = json!({
        "model": model,
        "generationConfig": generation,
        "realtimeInputConfig": {"automaticActivityDetection": aad, "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "sessionResumption": {},
    });
    if let Some(i) = &scenario.agent.instructions {
        setup["systemInstruction"] = json!({"parts": [{"text": i}]});
    }
    if !decls.is_empty() {
        setup["tools"] = json!([{"functionDeclarations": decls}]);
    }
    json!({"setup": setup})
}

/// The URL with the key in its query, and the secrets to scrub from every message.
fn endpoint(target: &Target) -> Result<(String, Secrets), SessionError> {
    let mut url = target.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
    let mut secrets = Secrets::from_url(&url);
    if let Some(var) = &target.api_key_env {
        let key = ws::env_key(var.get_ref(), &mut secrets)?;
        if !url.contains("key=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("key=");
            url.push_str(&key);
        }
    }
    Ok((url, secrets))
}

/// The longest resumption handle kept (handles are opaque; a longer one is cut).
const MAX_HANDLE: usize = 4096;

/// What the decoder remembers between server messages.
#[derive(Debug, Default)]
pub struct DecodeState {
    /// Audio item of the current model turn.
    pub item: u32,
    /// The current model turn has sent audio or a tool call.
    pub open: bool,
    /// The current model turn was interrupted.
    pub interrupted: bool,
    /// Latest resumable session handle.
    pub handle: Option<String>,
    /// `goAway` seen (time left, as sent).
    pub go_away: Option<String>,
    /// Function call id → name (the `toolResponse` must name the function).
    pub calls: HashMap<String, String>,
}

/// Decodes one server message (already stamped) into agent events. Pure, for the fixture tests. Ids are cut to
/// [`ws::MAX_ID`], at most [`ws::MAX_ITEMS`] tool calls wait for an answer, and bad base64 or an odd PCM16 length is a
/// protocol error.
pub fn decode_message(at: Instant, v: &Json, st: &mut DecodeState) -> Vec<AgentEvent> {
    let mut out = Vec::new();
    let sc = v.get("serverContent").or_else(|| v.get("server_content"));
    if let Some(sc) = sc {
        let parts = sc.get("modelTurn").or_else(|| sc.get("model_turn")).and_then(|m| m["parts"].as_array());
        for p in parts.into_iter().flatten() {
            let Some(d) = p.get("inlineData").or_else(|| p.get("inline_data")) else { continue };
            let mime = d.get("mimeType").or_else(|| d.get("mime_type")).and_then(Json::as_str).unwrap_or("");
            if !mime.starts_with("audio/") {
                continue;
            }
            let Some(bytes) = d["data"].as_str().and_then(|s| B64.decode(s).ok()) else {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: "modelTurn inlineData: bad base64".into(),
                });
                continue;
            };
            if !bytes.len().is_multiple_of(2) {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("modelTurn inlineData: a PCM16 chunk of {} bytes (odd)", bytes.len()),
                });
            }
            let samples = from_le_bytes(&bytes);
            if !samples.is_empty() {
                st.open = true;
                out.push(AgentEvent::Audio { at, item: st.item, samples });
            }
        }
        if let Some(t) =
            sc.get("outputTranscription").or_else(|| sc.get("output_transcription")).and_then(|t| t["text"].as_str())
        {
            out.push(AgentEvent::Transcript { at, text: ws::cut(t, ws::MAX_FRAGMENT).to_string(), segment: false });
        }
        if sc["interrupted"] == true {
            st.interrupted = true;
            out.push(AgentEvent::Interrupted { at });
        }
        if sc.get("turnComplete").or_else(|| sc.get("turn_complete")) == Some(&Json::Bool(true)) {
            // A turn that sent nothing (the spurious interrupted → turnComplete pair after a finished turn) owns
            // no response: reporting one would close the reply of the caller's new turn.
            if std::mem::take(&mut st.open) {
                let status = if st.interrupted { ResponseStatus::Cancelled } else { ResponseStatus::Completed };
                out.push(AgentEvent::ResponseDone { at, status, had_tool_call: false });
                st.item += 1;
            }
            st.interrupted = false;
        }
    }
    if let Some(tc) = v.get("toolCall").or_else(|| v.get("tool_call")) {
        let calls = tc.get("functionCalls").or_else(|| tc.get("function_calls")).and_then(Json::as_array);
        for c in calls.into_iter().flatten() {
            let call_id = ws::cut(c["id"].as_str().unwrap_or_default(), ws::MAX_ID).to_string();
            let name = ws::cut(c["name"].as_str().unwrap_or_default(), ws::MAX_ID).to_string();
            if st.calls.len() >= ws::MAX_ITEMS && !st.calls.contains_key(&call_id) {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("more than {} unanswered tool calls", ws::MAX_ITEMS),
                });
                continue;
            }
            st.calls.insert(call_id.clone(), name.clone());
            st.open = true;
            let arguments = if c["args"].is_null() { "{}".to_string() } else { c["args"].to_string() };
            if arguments.len() > ws::MAX_ARGUMENTS {
                let n = arguments.len();
                let message = format!("tool call {name}: {n} bytes of arguments, over the bound");
                out.push(AgentEvent::Error { at, category: ErrorCategory::Protocol, message });
                continue;
            }
            out.push(AgentEvent::ToolCall { at, first_at: at, call_id, name, arguments });
        }
    }
    if let Some(u) = v.get("sessionResumptionUpdate").or_else(|| v.get("session_resumption_update"))
        && u["resumable"] == true
        && let Some(h) = u.get("newHandle").or_else(|| u.get("new_handle")).and_then(Json::as_str)
    {
        st.handle = Some(ws::cut(h, MAX_HANDLE).to_string());
    }
    if let Some(g) = v.get("goAway").or_else(|| v.get("go_away")) {
        let left = g.get("timeLeft").or_else(|| g.get("time_left")).map_or(String::new(), |t| t.to_string());
        st.go_away = Some(ws::cut(&left, ws::MAX_ID).to_string());
    }
    out
}

/// What the session side asks of the reader.
pub enum Command {
    /// Answer tool call `call_id` (the response must name the function, which only the decoder knows).
    ToolResult {
        /// The call.
        call_id: String,
        /// The result text (JSON, or sent as a string).
        output: String,
    },
    /// The latest resumable handle.
    Handle(oneshot::Sender<Option<String>>),
}

impl Decoder for DecodeState {
    type Command = Command;

    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        if let Some(v) = ws::frame_json(at, msg, true, out) {
            out.events.extend(decode_message(at, &v, self));
        }
    }

    fn on_command(&mut self, cmd: Command, out: &mut Out) {
        match cmd {
            Command::ToolResult { call_id, output } => {
                let name = self.calls.remove(&call_id).unwrap_or_default();
                let output: Json = serde_json::from_str(&output).unwrap_or(Json::String(output));
                let msg = json!({"toolResponse": {"functionResponses": [
                    {"id": call_id, "name": name, "response": {"output": output}}]}});
                out.send.push(Message::Text(msg.to_string().into()));
            }
            Command::Handle(reply) => {
                let _ = reply.send(self.handle.clone());
            }
        }
    }
}

/// Client-side turn detection for manual activity mode.
struct Activity {
    vad: StreamVad,
    speaking: bool,
    events: Vec<VadEvent>,
}

/// Gemini's sending side: the client-side turn detection of manual activity mode, and the secrets its send
/// errors are scrubbed of (the key travels in the URL).
pub struct Side {
    activity: Option<Activity>,
    secrets: Secrets,
}

impl WsProtocol for Side {
    type Command = Command;
    const NAME: &'static str = "Gemini Live";

    async fn send_frame(s: &mut GeminiLive, frame: &Frame) -> Result<(), SessionError> {
        let (start, end) = s.side.activity.as_mut().map_or((false, false), |a| a.push(&frame.samples));
        let mut sink = s.conn.sink.lock().await;
        let secrets = &s.side.secrets;
        let scrub = |e: tokio_tungstenite::tungstenite::Error| {
            SessionError::new(ErrorCategory::Disconnect, secrets.scrub(&format!("WebSocket: {e}")))
        };
        use futures_util::SinkExt;
        if start {
            sink.feed(Message::Text(r#"{"realtimeInput":{"activityStart":{}}}"#.into())).await.map_err(&scrub)?;
        }
        sink.feed(frame.wire.clone()).await.map_err(&scrub)?;
        if end {
            sink.feed(Message::Text(r#"{"realtimeInput":{"activityEnd":{}}}"#.into())).await.map_err(&scrub)?;
        }
        sink.flush().await.map_err(&scrub)
    }

    async fn send_tool_result(s: &mut GeminiLive, call_id: &str, output: &str) -> Result<(), SessionError> {
        s.conn.command(Command::ToolResult { call_id: call_id.to_string(), output: output.to_string() }).await
    }
    // No truncation: the server already knows it was interrupted.
}

impl Activity {
    /// Runs the VAD over one outgoing frame: whether the caller's activity starts before it, and ends after it.
    fn push(&mut self, samples: &[i16]) -> (bool, bool) {
        let (mut start, mut end) = (false, false);
        self.events.clear();
        self.vad.push(samples, true, &mut self.events);
        for e in &self.events {
            match e {
                VadEvent::Onset { .. } if !self.speaking => {
                    self.speaking = true;
                    start = true;
                }
                VadEvent::Silence { .. } if self.speaking => {
                    self.speaking = false;
                    end = true;
                }
                _ => {}
            }
        }
        if end {
            self.vad.end_speech();
        }
        (start, end)
    }
}

/// A Gemini Live session.
pub type GeminiLive = WsSession<Side>;

impl GeminiLive {
    /// Connects, sends `setup` and waits for `setupComplete`, within the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let (url, secrets) = endpoint(target)?;
        let s2 = secrets.clone();
        ws::within(scenario, Self::connect_inner(scenario, target, url, secrets))
            .await
            .map_err(|e| SessionError::new(e.category, s2.scrub(&e.message)))
    }

    async fn connect_inner(
        scenario: &Scenario,
        target: &Target,
        url: String,
        secrets: Secrets,
    ) -> Result<Self, SessionError> {
        let req = ws::request(&url, &secrets)?;
        let (sink, mut stream) = ws::dial(req, &secrets).await?;
        ws::send(&sink, Message::Text(setup_message(scenario, target).to_string().into())).await?;
        let session_id = loop {
            let v = ws::next_json(&mut stream, &secrets).await?;
            if let Some(s) = v.get("setupComplete").or_else(|| v.get("setup_complete")) {
                let id = s.get("sessionId").or_else(|| s.get("session_id")).and_then(Json::as_str);
                break id.map(|id| secrets.scrub(ws::cut(id, ws::MAX_ID)));
            }
        };
        let activity = manual(target).then(|| {
            let silence =
                target.turn_detection.as_ref().and_then(|t| t.get_ref().silence_duration_ms).map_or(500.0, f64::from);
            Activity { vad: StreamVad::new(INPUT_RATE, 0.5, silence), speaking: false, events: Vec::new() }
        });
        let conn = ws::spawn_reader(stream, sink, DecodeState::default(), secrets.clone());
        let side = Side { activity, secrets };
        Ok(WsSession { conn, input_rate: INPUT_RATE, output_rate: OUTPUT_RATE, session_id, side })
    }

    /// The latest resumable session handle the server gave (for a resumed connection's `setup`); `None` also once
    /// the connection is gone.
    pub async fn resumption_handle(&self) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.conn.command(Command::Handle(tx)).await.ok()?;
        rx.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol_fixture as fixture;

    /// The fixture's server messages, with placeholder audio replaced by real base64 (20 ms of a tone).
    fn server_msgs(seq: &Json) -> Vec<Json> {
        let tone: Vec<i16> = (0..480).map(|i| ((i as f64 * 0.2).sin() * 8000.0) as i16).collect();
        let b64 = B64.encode(to_le_bytes(&tone));
        seq.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["dir"] == "server")
            .map(|e| {
                let mut m = e["msg"].clone();
                if let Some(parts) = m.pointer_mut("/serverContent/modelTurn/parts").and_then(Json::as_array_mut) {
                    for p in parts {
                        if let Some(d) = p.get_mut("inlineData") {
                            d["data"] = json!(b64);
                        }
                    }
                }
                m
            })
            .collect()
    }

    fn decode_all(msgs: &[Json], st: &mut DecodeState) -> Vec<AgentEvent> {
        let at = Instant::now();
        msgs.iter().flat_map(|m| decode_message(at, m, st)).collect()
    }

    #[test]
    fn tool_call_turn_parses() {
        let f = fixture("gemini_live_tool_call_turn_assembled.json");
        let mut st = DecodeState::default();
        let out = decode_all(&server_msgs(&f["sequence"]), &mut st);
        let names: Vec<&str> = out
            .iter()
            .map(|e| match e {
                AgentEvent::Audio { .. } => "audio",
                AgentEvent::ToolCall { .. } => "tool",
                AgentEvent::Transcript { .. } => "transcript",
                AgentEvent::ResponseDone { .. } => "done",
                _ => "other",
            })
            .collect();
        assert_eq!(names, ["tool", "audio", "transcript", "audio", "transcript", "done"], "{out:?}");
        match &out[0] {
            AgentEvent::ToolCall { name, arguments, call_id, .. } => {
                assert_eq!(name, "turn_off_the_lights");
                assert_eq!(arguments, "{}");
                assert_eq!(st.calls.get(call_id).map(String::as_str), Some("turn_off_the_lights"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(out[1], AgentEvent::Audio { item: 0, ref samples, .. } if samples.len() == 480));
        assert!(matches!(out[5], AgentEvent::ResponseDone { status: ResponseStatus::Completed, .. }));
        assert_eq!(st.handle.as_deref(), Some("<opaque handle>"));
        assert_eq!(st.item, 1, "the next model turn is a new audio item");
    }

    #[test]
    fn interruption_flushes_and_cancels_and_go_away_is_noted() {
        let f = fixture("gemini_live_interruption_assembled.json");
        let mut st = DecodeState::default();
        let out = decode_all(&server_msgs(&f["barge_in_sequence"]), &mut st);
        let i = out.iter().position(|e| matches!(e, AgentEvent::Interrupted { .. })).expect("interrupted");
        assert!(matches!(out[0], AgentEvent::Audio { .. }));
        assert!(matches!(out[i + 1], AgentEvent::ResponseDone { status: ResponseStatus::Cancelled, .. }), "{out:?}");
        // The spurious pair after a finished turn: a flush, but no response of its own.
        let again = decode_all(&server_msgs(&f["barge_in_sequence"])[1..], &mut st);
        assert!(again.iter().any(|e| matches!(e, AgentEvent::Interrupted { .. })));
        assert!(!again.iter().any(|e| matches!(e, AgentEvent::ResponseDone { .. })), "{again:?}");
        let ga: Vec<Json> = f["connection_end"].as_array().unwrap().iter().map(|e| e["msg"].clone()).collect();
        decode_all(&ga[..1], &mut st);
        assert_eq!(st.go_away.as_deref(), Some("\"60s\""));
    }

    #[test]
    fn setup_and_frames_follow_the_fixture_shapes() {
        let f = fixture("gemini_live_tool_call_turn_assembled.json");
        let client_audio = &f["sequence"][2]["msg"];
        let frame = encode_frame(&[1, -2]);
        let v: Json = serde_json::from_str(frame.wire.to_text().unwrap()).unwrap();
        assert_eq!(v["realtimeInput"]["audio"]["mimeType"], client_audio["realtimeInput"]["audio"]["mimeType"]);
        assert!(v["realtimeInput"].get("mediaChunks").is_none());
        assert_eq!(B64.decode(v["realtimeInput"]["audio"]["data"].as_str().unwrap()).unwrap(), [1, 0, 0xFE, 0xFF]);
        let manual_fragment = &fixture("gemini_live_interruption_assembled.json")["manual_activity_mode"];
        assert_eq!(
            manual_fragment["setup_fragment"]["realtimeInputConfig"]["automaticActivityDetection"]["disabled"],
            true
        );
    }
}
