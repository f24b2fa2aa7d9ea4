//! The OpenAI Realtime wire of the sim (docs/protocols.md §1), over the shared agent brain: the upgrade
//! (`GET /v1/realtime[?model=…]`, or Azure's `/openai/realtime?api-version=…&deployment=…` in Azure mode), the
//! dialect (GA by default, beta with `OpenAI-Beta: realtime=v1`), the session configuration ([`session`]), the
//! client events ([`events`]) turned into calls on the brain, and the brain's events rendered as the real server
//! events with the conversation's items ([`render`]).

mod events;
mod render;
pub(crate) mod session;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Shared;
use super::azure::AzureGate;
use super::brain::{Brain, Ctx, Refused, Turns};
use super::profile::Profile;
use super::replies::WireFormat;
use super::wire::{Accept, Close, Out, Upgrade, Wire};
use crate::scenario::Target;
use crate::scenario::schema::AudioFormat;
use events::{ClientEvent, parse_event};
use session::{ApiError, DEFAULT_INSTRUCTIONS, Dialect, SessionConfig, TurnDetection};

/// The upgrade path.
pub const PATH: &str = "/v1/realtime";

impl From<&TurnDetection> for Turns {
    fn from(t: &TurnDetection) -> Self {
        Turns {
            threshold: t.threshold,
            prefix_padding_ms: t.prefix_padding_ms,
            silence_ms: t.silence_ms(),
            create_response: t.create_response,
            interrupt_response: t.interrupt_response,
        }
    }
}

/// Accepts OpenAI Realtime sessions for one target.
pub(crate) struct OpenAiAccept {
    init: SessionConfig,
    td_defaults: Arc<TurnDetection>,
    /// Azure mode: the front door's checks (`sim_options.azure`).
    azure: Option<AzureGate>,
}

impl OpenAiAccept {
    /// The session a connection starts with: the target's model, voice, audio format and turn detection (the
    /// profile's silence window unless the target says otherwise).
    pub(crate) fn new(target: &Target, profile: &Profile) -> Self {
        let td = target.turn_detection.as_ref().map(|t| t.get_ref());
        let td_defaults = TurnDetection {
            kind: "server_vad".into(),
            threshold: td.and_then(|t| t.threshold.as_ref()).map_or(0.5, |x| *x.get_ref()),
            prefix_padding_ms: td.and_then(|t| t.prefix_padding_ms).map_or(300, u64::from),
            silence_duration_ms: td
                .and_then(|t| t.silence_duration_ms)
                .map_or(profile.vad_silence_ms.round() as u64, u64::from),
            idle_timeout_ms: None,
            create_response: true,
            interrupt_response: true,
            eagerness: "auto".into(),
        };
        let turn_detection = match td.map(|t| t.kind.get_ref().as_str()) {
            Some("none") => None,
            Some("semantic_vad") => Some(TurnDetection {
                kind: "semantic_vad".into(),
                eagerness: td.and_then(|t| t.eagerness.as_ref()).map_or("auto".into(), |e| e.get_ref().clone()),
                ..td_defaults.clone()
            }),
            _ => Some(td_defaults.clone()),
        };
        let format = match target.audio_format.as_ref().map(|f| *f.get_ref()) {
            Some(AudioFormat::G711Ulaw) => WireFormat::Pcmu,
            _ => WireFormat::Pcm24,
        };
        let init = SessionConfig::initial(
            target.model.clone().unwrap_or_else(|| "gpt-realtime".into()),
            DEFAULT_INSTRUCTIONS.into(),
            format,
            turn_detection,
            target.voice.clone().unwrap_or_else(|| "alloy".into()),
        );
        Self { init, td_defaults: Arc::new(td_defaults), azure: AzureGate::of(target) }
    }

    /// The turn detection a session starts with, in the brain's terms (every native wire starts with it).
    pub(crate) fn initial_turns(&self) -> Option<Turns> {
        self.init.turn_detection.as_ref().map(Turns::from)
    }
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

impl Accept for OpenAiAccept {
    fn path(&self) -> &'static str {
        if self.azure.is_some() { "/openai/realtime" } else { PATH }
    }

    fn check(&self, up: &Upgrade) -> Result<(), (u16, String)> {
        let path = up.uri.path().trim_end_matches('/');
        let Some(gate) = &self.azure else {
            if path != PATH {
                let p = up.uri.path();
                return Err((404, format!("voicebench sim: no such path {p}; connect to {PATH}?model=…")));
            }
            return Ok(());
        };
        if path != "/openai/realtime" {
            return Err((404, json!({"error": {"code": "404", "message": "Resource not found"}}).to_string()));
        }
        let key = up.headers.get("api-key").and_then(|v| v.to_str().ok());
        gate.check(key, up.uri.query().unwrap_or(""))
    }

    fn open(&self, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, up: &Upgrade) -> (Box<dyn Wire>, Brain) {
        let query = up.uri.query().unwrap_or("");
        let model = query_value(query, if self.azure.is_some() { "deployment" } else { "model" });
        let beta = self.azure.is_none()
            && up
                .headers
                .get("openai-beta")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|p| p.trim() == "realtime=v1"));
        let mut cfg = self.init.clone();
        if let Some(m) = model {
            cfg.model = m.to_string();
        }
        let mut brain = Brain::new(ctx, shared, idx, cfg.input_format, cfg.output_format, false);
        let conv_id = brain.new_id("conv");
        let expires_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 30 * 60;
        let wire = OpenAi {
            dialect: if beta { Dialect::Beta } else { Dialect::Ga },
            conv_id,
            expires_at,
            cfg,
            td_defaults: self.td_defaults.clone(),
            voice_locked: false,
            items: Vec::new(),
            later: Vec::new(),
            resp: None,
            scratch: Vec::new(),
        };
        (Box::new(wire), brain)
    }
}

/// An item of the conversation.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    /// Assistant audio generated for it, ms (None: not an assistant audio item).
    audio_ms: Option<f64>,
    json: Value,
}

/// The response being rendered: its id, its message item, its calls' items and ids, its output so far.
#[derive(Debug, Default)]
struct OpenResponse {
    id: String,
    msg_item: String,
    calls: Vec<(String, String)>,
    output: Vec<Value>,
}

/// One OpenAI Realtime session's wire state.
struct OpenAi {
    dialect: Dialect,
    conv_id: String,
    expires_at: u64,
    cfg: SessionConfig,
    td_defaults: Arc<TurnDetection>,
    /// Audio went out: the voice can no longer change.
    voice_locked: bool,
    items: Vec<Item>,
    /// Events due later (input transcriptions).
    later: Vec<(Instant, Value)>,
    resp: Option<OpenResponse>,
    scratch: Vec<u8>,
}

/// Input transcription arrives this long after the commit, ms.
const TRANSCRIPTION_DELAY_MS: u64 = 300;

impl Wire for OpenAi {
    fn start(&mut self, brain: &mut Brain, out: &mut Out) {
        let s = self.cfg.to_json(self.dialect, brain.session_id(), self.expires_at);
        self.emit(brain, out, json!({"type": "session.created", "session": s}));
    }

    fn on_message(&mut self, brain: &mut Brain, msg: Message, at: Instant, out: &mut Out) -> Result<(), Close> {
        match msg {
            Message::Text(t) => self.on_text(brain, &t, at, out),
            Message::Binary(_) => self.error(
                brain,
                out,
                None,
                ApiError::new(
                    "invalid_event",
                    "Binary frames are not supported; send JSON events as text frames.",
                    None,
                ),
            ),
            _ => {}
        }
        Ok(())
    }

    fn render(&mut self, brain: &mut Brain, ev: super::brain::Event, out: &mut Out) {
        self.render_event(brain, ev, out);
    }

    fn deadline(&self) -> Option<Instant> {
        self.later.iter().map(|(t, _)| *t).min()
    }

    fn on_timer(&mut self, brain: &mut Brain, now: Instant, out: &mut Out) {
        while let Some(pos) = self.later.iter().position(|(t, _)| *t <= now) {
            let (_, ev) = self.later.swap_remove(pos);
            self.emit(brain, out, ev);
        }
    }
}

impl OpenAi {
    fn emit(&mut self, brain: &mut Brain, out: &mut Out, mut v: Value) {
        let id = brain.new_id("event");
        if let Some(o) = v.as_object_mut() {
            o.insert("event_id".into(), Value::String(id));
        }
        out.push(Message::text(v.to_string()));
    }

    fn error(&mut self, brain: &mut Brain, out: &mut Out, client_event_id: Option<String>, e: ApiError) {
        self.emit(
            brain,
            out,
            json!({"type": "error", "error": {
            "type": "invalid_request_error", "code": e.code, "message": e.message, "param": e.param,
            "event_id": client_event_id}}),
        );
    }

    fn ga(&self) -> bool {
        self.dialect == Dialect::Ga
    }

    fn on_text(&mut self, brain: &mut Brain, text: &str, at: Instant, out: &mut Out) {
        let mut scratch = std::mem::take(&mut self.scratch);
        match parse_event(text, self.dialect, self.cfg.input_format, &mut scratch) {
            Err((eid, e)) => {
                self.scratch = scratch;
                self.error(brain, out, eid, e);
            }
            Ok((_, ClientEvent::Append(bytes))) => {
                brain.audio(&bytes, at);
                self.scratch = bytes;
            }
            Ok((eid, ev)) => {
                self.scratch = scratch;
                if let Err(e) = self.on_event(brain, ev, at, out) {
                    self.error(brain, out, eid, e);
                }
            }
        }
    }

    fn on_event(&mut self, brain: &mut Brain, ev: ClientEvent, at: Instant, out: &mut Out) -> Result<(), ApiError> {
        match ev {
            ClientEvent::Append(_) => unreachable!("handled in on_text"),
            ClientEvent::SessionUpdate(s) => {
                self.cfg.apply_update(self.dialect, &s, &self.td_defaults, self.voice_locked)?;
                let names = self.cfg.tools.iter().filter_map(|t| t.get("name")?.as_str());
                let tools = names.filter(|n| self.cfg.allows_tool(n)).map(String::from).collect();
                let turns = self.cfg.turn_detection.as_ref().map(Turns::from);
                brain.configure(self.cfg.input_format, self.cfg.output_format, turns, tools);
                let s = self.cfg.to_json(self.dialect, brain.session_id(), self.expires_at);
                self.emit(brain, out, json!({"type": "session.updated", "session": s}));
            }
            ClientEvent::Commit => brain.commit(at).map_err(|buffer_ms| {
                ApiError::new(
                    "input_audio_buffer_commit_empty",
                    format!(
                        "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, \
                         but buffer only has {buffer_ms:.2}ms of audio."
                    ),
                    None,
                )
            })?,
            ClientEvent::Clear => {
                brain.clear_buffer();
                self.emit(brain, out, json!({"type": "input_audio_buffer.cleared"}));
            }
            ClientEvent::ItemCreate { previous_item_id, item } => {
                self.item_create(brain, out, previous_item_id, item)?
            }
            ClientEvent::ItemTruncate { item_id, content_index, audio_end_ms } => {
                self.truncate(&item_id, content_index, audio_end_ms)?;
                self.emit(
                    brain,
                    out,
                    json!({"type": "conversation.item.truncated", "item_id": item_id,
                    "content_index": 0, "audio_end_ms": audio_end_ms}),
                );
            }
            ClientEvent::ItemDelete(id) => {
                let Some(pos) = self.items.iter().position(|i| i.id == id) else {
                    return Err(ApiError::new(
                        "invalid_value",
                        format!("Error deleting item: the item with id '{id}' does not exist."),
                        Some("item_id".into()),
                    ));
                };
                self.items.remove(pos);
                self.emit(brain, out, json!({"type": "conversation.item.deleted", "item_id": id}));
            }
            ClientEvent::ItemRetrieve(id) => {
                let Some(item) = self.items.iter().find(|i| i.id == id).map(|i| i.json.clone()) else {
                    return Err(ApiError::new(
                        "invalid_value",
                        format!("Error retrieving item: the item with id '{id}' does not exist."),
                        Some("item_id".into()),
                    ));
                };
                self.emit(brain, out, json!({"type": "conversation.item.retrieved", "item": item}));
            }
            ClientEvent::ResponseCreate(params) => {
                let out_of_band = params
                    .as_ref()
                    .and_then(|p| p.get("conversation"))
                    .and_then(Value::as_str)
                    .is_some_and(|c| c == "none");
                brain.response_create(at, out_of_band).map_err(refused)?;
            }
            ClientEvent::ResponseCancel(rid) => brain.response_cancel(rid, at).map_err(refused)?,
        }
        Ok(())
    }

    fn item_create(
        &mut self,
        brain: &mut Brain,
        out: &mut Out,
        previous_item_id: Option<String>,
        mut item: Value,
    ) -> Result<(), ApiError> {
        if let Some(p) = &previous_item_id
            && p != "root"
            && !self.items.iter().any(|i| &i.id == p)
        {
            return Err(ApiError::new(
                "invalid_value",
                format!("Invalid 'previous_item_id': no item with id '{p}' in the conversation."),
                Some("previous_item_id".into()),
            ));
        }
        if item.get("type").and_then(Value::as_str) == Some("function_call_output") {
            let call = item["call_id"].as_str().unwrap_or_default().to_string();
            let known = self.items.iter().any(|i| i.json.get("call_id").and_then(Value::as_str) == Some(&call));
            if !known {
                return Err(ApiError::new(
                    "invalid_value",
                    format!("Tool call ID '{call}' not found in conversation."),
                    Some("item.call_id".into()),
                ));
            }
        }
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => brain.new_id("item"),
        };
        if let Some(o) = item.as_object_mut() {
            o.insert("id".into(), json!(id));
            o.entry("status").or_insert(json!("completed"));
            if !self.ga() {
                o.insert("object".into(), json!("realtime.item"));
            }
        }
        let prev = previous_item_id.map_or_else(|| self.last_item_id(), Value::String);
        self.items.push(Item { id, audio_ms: None, json: item.clone() });
        self.announce_item(brain, out, prev, item, true);
        Ok(())
    }

    fn truncate(&mut self, item_id: &str, content_index: u64, audio_end_ms: u64) -> Result<(), ApiError> {
        let Some(item) = self.items.iter_mut().find(|i| i.id == item_id) else {
            return Err(ApiError::new(
                "invalid_value",
                format!("Item with item_id not found: {item_id}"),
                Some("item_id".into()),
            ));
        };
        let Some(audio_ms) = item.audio_ms.filter(|&a| a > 0.0) else {
            return Err(ApiError::new(
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
                None,
            ));
        };
        if content_index != 0 {
            return Err(ApiError::new(
                "invalid_value",
                format!("Invalid 'content_index': the item has no content part {content_index}."),
                Some("content_index".into()),
            ));
        }
        if audio_end_ms as f64 > audio_ms + 0.5 {
            return Err(ApiError {
                code: None,
                message: format!(
                    "Audio content of {}ms is already shorter than {audio_end_ms}ms",
                    audio_ms.floor() as u64
                ),
                param: None,
            });
        }
        item.audio_ms = Some(audio_end_ms as f64);
        Ok(())
    }

    fn last_item_id(&self) -> Value {
        self.items.last().map_or(Value::Null, |i| Value::String(i.id.clone()))
    }

    /// GA: `conversation.item.added` (+ `.done`); beta: `conversation.item.created`.
    fn announce_item(&mut self, brain: &mut Brain, out: &mut Out, prev: Value, item: Value, done_too: bool) {
        if self.ga() {
            let added = json!({"type": "conversation.item.added", "previous_item_id": prev, "item": item});
            self.emit(brain, out, added);
            if done_too {
                self.emit(
                    brain,
                    out,
                    json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}),
                );
            }
        } else {
            self.emit(brain, out, json!({"type": "conversation.item.created", "previous_item_id": prev, "item": item}));
        }
    }
}

/// A refused `response.create` or `response.cancel` as the real `error`.
fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Active(id) => ApiError::new(
            "conversation_already_has_active_response",
            format!(
                "Conversation already has an active response in progress: {id}. Wait until the response is finished \
                 before creating a new one."
            ),
            None,
        ),
        Refused::NotActive(Some(r)) => ApiError::new(
            "response_cancel_not_active",
            format!("Cancellation failed: no active response found with id '{r}'."),
            None,
        ),
        Refused::NotActive(None) => {
            ApiError::new("response_cancel_not_active", "Cancellation failed: no active response found", None)
        }
    }
}

/// The transcription delay, for [`render`].
fn transcription_delay() -> Duration {
    Duration::from_millis(TRANSCRIPTION_DELAY_MS)
}
