//! One OpenAI Realtime session of the sim: the WebSocket handshake, the per-connection state machine (session,
//! input audio and VAD, the script's turns, responses, barge-in), and the ground truth it logs.
//!
//! Each connection is one task. It waits on the socket and on its next deadline (the next step of the active
//! response, a pending barge-in, a scheduled transcription) with `select!`; every step is planned with absolute
//! instants when a response starts, so timer lateness never accumulates. Outgoing events of one wake-up are fed to
//! the socket and flushed once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::profile::{Profile, chance};
use super::replies::{Reply, ReplyBank, WireFormat};
use super::session::{ApiError, ClientEvent, DEFAULT_INSTRUCTIONS, Dialect, SessionConfig, TurnDetection, parse_event};
use super::vad::{StreamVad, VadEvent};
use super::wire::Signal;
use super::{GroundTruth, GroundTruthKind, Shared, SimError, ToolCallTruth};
use crate::scenario::schema::AudioFormat;
use crate::scenario::{Expect, Scenario, Target};
use crate::stats::SplitMix64;

/// A turn ends only after this much less than its annotated voiced span has been heard, ms.
const SPAN_MARGIN_MS: f64 = 150.0;
/// The same over G.711 μ-law input: the telephone band drops a final fricative below the gate (measured: the "s"
/// of `caller/joe/choose` ends the voiced span 173 ms early at 8 kHz).
const SPAN_MARGIN_MULAW_MS: f64 = 300.0;
/// A silence this much longer than the turn's longest annotated pause ends the turn whatever was heard, so a turn
/// the VAD hears shorter than annotated cannot hang, ms.
const PAUSE_MARGIN_MS: f64 = 300.0;
/// Input transcription arrives this long after the commit, ms.
const TRANSCRIPTION_DELAY_MS: u64 = 300;

/// What the sim knows of one scripted turn.
#[derive(Debug)]
pub(crate) struct TurnInfo {
    expect: Expect,
    span_ms: f64,
    text: Option<String>,
    tool_calls: Vec<(String, Value)>,
    reply: Option<Arc<Reply>>,
    user_audio_ms: f64,
    longest_pause_ms: f64,
}

/// Everything a connection needs, shared by all connections of one sim.
pub(crate) struct Ctx {
    turns: Vec<TurnInfo>,
    profile: Profile,
    init: SessionConfig,
    td_defaults: TurnDetection,
    seed: u64,
    /// The scenario's tools as OpenAI function declarations: the tools an agent configured on the provider's side
    /// has (ElevenLabs) or a client declares at set-up (Gemini), for wires other than OpenAI Realtime.
    pub(crate) tools: Vec<Value>,
    /// Azure mode: the front door's checks (`sim_options.azure`).
    azure: Option<super::azure::AzureGate>,
}

impl Ctx {
    pub(crate) fn new(scenario: &Scenario, target: &Target, profile: Profile, seed: u64) -> Result<Self, SimError> {
        let refs: Vec<_> = scenario.turns.iter().map(|t| t.reply.as_ref()).collect();
        let bank = ReplyBank::load(&refs, profile.chunk_ms)?;
        let turns = scenario
            .turns
            .iter()
            .zip(bank.per_turn)
            .map(|(t, reply)| TurnInfo {
                expect: t.expect,
                span_ms: t.audio.speech_end_ms - t.audio.speech_start_ms,
                text: t.audio.text.clone(),
                tool_calls: t.tool_calls.iter().map(|c| (c.name.clone(), c.sim_args.clone())).collect(),
                reply,
                user_audio_ms: t.audio.duration_ms,
                longest_pause_ms: t.audio.pauses_ms.iter().map(|(a, b)| b - a).fold(0.0, f64::max),
            })
            .collect();
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
        let tools = scenario
            .agent
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name, "description": t.description}))
            .collect();
        Ok(Self { turns, profile, init, td_defaults, seed, tools, azure: super::azure::AzureGate::of(target) })
    }
}

/// Accepts connections until `stop`; then closes every session and waits for them.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let _ = stream.set_nodelay(true);
                let (ctx, shared, stop) = (ctx.clone(), shared.clone(), stop.clone());
                let idx = n;
                n += 1;
                conns.spawn(async move { connection(stream, ctx, shared, idx, stop).await });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain).await.is_err() {
        conns.abort_all();
    }
}

/// The upgrade: `GET /v1/realtime[?model=…]`; the beta header picks the dialect.
async fn connection(stream: TcpStream, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, stop: watch::Receiver<bool>) {
    let mut dialect = Dialect::Ga;
    let mut model: Option<String> = None;
    // The handshake API fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(gate) = &ctx.azure {
            let query = req.uri().query().unwrap_or("");
            let refused = if req.uri().path().trim_end_matches('/') != "/openai/realtime" {
                Err((404, serde_json::json!({"error": {"code": "404", "message": "Resource not found"}}).to_string()))
            } else {
                gate.check(req.headers().get("api-key").and_then(|v| v.to_str().ok()), query)
            };
            if let Err((status, body)) = refused {
                let mut e = ErrorResponse::new(Some(body));
                *e.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
                return Err(e);
            }
            model = query.split('&').find_map(|kv| kv.strip_prefix("deployment=")).map(|m| m.to_string());
            return Ok(resp);
        }
        if req.uri().path().trim_end_matches('/') != "/v1/realtime" {
            let mut e = ErrorResponse::new(Some(format!(
                "voicebench sim: no such path {}; connect to /v1/realtime?model=…",
                req.uri().path()
            )));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        model = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("model=")))
            .map(|m| m.to_string());
        if req
            .headers()
            .get("openai-beta")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "realtime=v1"))
        {
            dialect = Dialect::Beta;
        }
        Ok(resp)
    };
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let mut conn = Conn::new(ctx, shared, idx, dialect, model);
    conn.run(ws, stop).await;
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// An item of the conversation.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    /// Assistant audio generated for it, ms (None: not an assistant audio item).
    audio_ms: Option<f64>,
    json: Value,
}

/// Progress of the current scripted turn.
#[derive(Debug, Clone)]
struct TurnProgress {
    idx: usize,
    onset_at: Instant,
    onset_audio_ms: f64,
    min_end_ms: f64,
    ended: bool,
    ignoring: bool,
    item_id: String,
    /// Whether speech_started was sent for the current segment.
    started: bool,
}

/// A turn whose end was detected (or committed by hand), for the response and its ground truth.
#[derive(Debug, Clone)]
struct TurnEnd {
    idx: usize,
    onset_at: Option<Instant>,
    onset_audio_ms: Option<f64>,
    eos_at: Instant,
    eos_audio_ms: f64,
}

#[derive(Debug)]
struct PendingInterrupt {
    due: Instant,
    item_id: String,
    audio_start_ms: u64,
    gt: usize,
}

#[derive(Debug)]
struct AwaitTool {
    end: TurnEnd,
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
enum Step {
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

#[derive(Debug)]
struct Resp {
    id: String,
    gt: usize,
    kind: RespKind,
    end: Option<TurnEnd>,
    queue: VecDeque<(Instant, Step)>,
    msg_item: Option<String>,
    transcript_full: String,
    transcript_sent: String,
    audio_sent_ms: f64,
    first_audio_at: Option<Instant>,
    last_audio_at: Option<Instant>,
    calls: Vec<PlannedCall>,
    output: Vec<Value>,
}

pub(crate) struct Conn {
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    idx: u64,
    dialect: Dialect,
    session_id: String,
    conv_id: String,
    expires_at: u64,
    cfg: SessionConfig,
    ids: SplitMix64,
    rng: SplitMix64,
    out: Vec<String>,
    vad: StreamVad,
    vad_events: Vec<VadEvent>,
    samples: Vec<i16>,
    scratch: Vec<u8>,
    buffer_ms: f64,
    items: Vec<Item>,
    voice_locked: bool,
    next_turn: usize,
    turn: Option<TurnProgress>,
    pending_turn: Option<TurnEnd>,
    awaiting_tool: Option<AwaitTool>,
    resp: Option<Resp>,
    play_end: Option<Instant>,
    interrupt: Option<PendingInterrupt>,
    later: Vec<(Instant, Value)>,
    /// Protocol-neutral record of what the agent did, for the other wires (None: OpenAI Realtime, which reads `out`).
    signals: Option<Vec<Signal>>,
    /// A tool result came while a response was active: ask for the follow-up when it is done (neutral sessions).
    followup: bool,
}

fn ms_dur(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl Conn {
    fn new(ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, dialect: Dialect, model: Option<String>) -> Self {
        let mix = ctx.seed ^ (idx.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut ids = SplitMix64::new(mix ^ 0x05EE_D1D5);
        let rng = SplitMix64::new(mix);
        let mut cfg = ctx.init.clone();
        if let Some(m) = model {
            cfg.model = m;
        }
        let (threshold, silence) = cfg.turn_detection.as_ref().map_or((0.5, 500.0), |t| (t.threshold, t.silence_ms()));
        let vad = StreamVad::new(cfg.input_format.rate(), threshold, silence);
        let session_id = format!("sess_{}", rand_id(&mut ids));
        let conv_id = format!("conv_{}", rand_id(&mut ids));
        let expires_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 30 * 60;
        Self {
            ctx,
            shared,
            idx,
            dialect,
            session_id,
            conv_id,
            expires_at,
            cfg,
            ids,
            rng,
            out: Vec::new(),
            vad,
            vad_events: Vec::new(),
            samples: Vec::new(),
            scratch: Vec::new(),
            buffer_ms: 0.0,
            items: Vec::new(),
            voice_locked: false,
            next_turn: 0,
            turn: None,
            pending_turn: None,
            awaiting_tool: None,
            resp: None,
            play_end: None,
            interrupt: None,
            later: Vec::new(),
            signals: None,
            followup: false,
        }
    }

    /// A session driven by another protocol's wire layer ([`super::wire`]): the same brain (VAD, script, replies,
    /// barge-in, ground truth) with the given audio formats, reporting what it does as [`Signal`]s. With `tools`,
    /// the session has the scenario's tools declared (as a Gemini set-up or an ElevenLabs agent would).
    pub(crate) fn neutral(
        ctx: Arc<Ctx>,
        shared: Arc<Shared>,
        idx: u64,
        input: WireFormat,
        output: WireFormat,
        tools: bool,
    ) -> Self {
        let mut c = Self::new(ctx, shared, idx, Dialect::Ga, None);
        c.signals = Some(Vec::new());
        c.cfg.input_format = input;
        c.cfg.output_format = output;
        c.vad.set_rate(input.rate());
        if tools {
            c.cfg.tools = c.ctx.tools.clone();
        }
        c
    }

    /// The session id the ground truth is logged under.
    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Sets the session id (wires whose client names the session, e.g. Twilio's `callSid`). Call before any turn.
    pub(crate) fn set_session_id(&mut self, id: String) {
        self.session_id = id;
    }

    /// Switches the session to client-side turn detection (Gemini's manual activity mode): the VAD only keeps
    /// the clock and turns end at [`Self::end_turn`].
    pub(crate) fn manual_turns(&mut self) {
        self.cfg.turn_detection = None;
    }

    /// Caller audio in the session's input format.
    pub(crate) fn audio(&mut self, bytes: &[u8], at: Instant) {
        self.on_audio(bytes, at);
        self.out.clear();
    }

    /// The client ended its turn by hand (Gemini `activityEnd`): commit and respond.
    pub(crate) fn end_turn(&mut self, at: Instant) {
        let _ = self.on_event(ClientEvent::Commit, at);
        let _ = self.on_event(ClientEvent::ResponseCreate(None), at);
        self.out.clear();
    }

    /// A tool result: the function_call_output item, then a response (now, or when the current one is done).
    /// Returns false when the call id is unknown.
    pub(crate) fn tool_result(&mut self, call_id: &str, output: &str, at: Instant) -> bool {
        let item = json!({"type": "function_call_output", "call_id": call_id, "output": output});
        let ok = self.on_event(ClientEvent::ItemCreate { previous_item_id: None, item }, at).is_ok();
        if ok && self.resp.is_none() {
            let _ = self.on_event(ClientEvent::ResponseCreate(None), at);
        } else if ok {
            self.followup = true;
        }
        self.out.clear();
        ok
    }

    /// Declares the tools of the scenario named in `names` (a Gemini `setup`'s function declarations).
    pub(crate) fn declare_tools(&mut self, names: &[String]) {
        self.cfg.tools = self
            .ctx
            .tools
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| names.iter().any(|x| x == n)))
            .cloned()
            .collect();
    }

    /// The client says the caller started talking (Gemini `activityStart` in manual mode): a barge-in if the agent
    /// is talking, logged like the VAD's (onset = `speech_started` = this instant).
    pub(crate) fn client_activity_start(&mut self, at: Instant) {
        if !self.agent_active(at) {
            return;
        }
        let mut g = GroundTruth::new(&self.session_id, self.idx, self.next_turn, GroundTruthKind::Interrupt);
        let ms = self.ms(at);
        g.onset_at = Some(at);
        g.onset_ms = Some(ms);
        g.speech_started_at = Some(at);
        g.speech_started_ms = Some(ms);
        g.interrupt_delay_ms = Some(0.0);
        let gt = self.shared.push(g);
        self.signal(Signal::Interrupted);
        if let Some(rid) = self.resp.as_ref().map(|r| r.id.clone()) {
            self.cancel(at, "turn_detected");
            self.gt(gt, |g| g.interrupted_response = Some(rid));
        }
        self.play_end = None;
        self.out.clear();
    }

    /// Runs every step that is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.on_timer(now);
        if self.followup && self.resp.is_none() {
            self.followup = false;
            let _ = self.on_event(ClientEvent::ResponseCreate(None), now);
        }
        self.out.clear();
    }

    /// The next instant something is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.next_deadline()
    }

    /// What the agent did since the last call.
    pub(crate) fn take_signals(&mut self) -> Vec<Signal> {
        self.signals.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn signal(&mut self, s: Signal) {
        if let Some(v) = self.signals.as_mut() {
            v.push(s);
        }
    }

    async fn run(&mut self, mut ws: Ws, mut stop: watch::Receiver<bool>) {
        let s = self.cfg.to_json(self.dialect, &self.session_id, self.expires_at);
        self.emit(json!({"type": "session.created", "session": s}));
        if self.flush(&mut ws).await.is_err() {
            return;
        }
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    let _ = ws
                        .close(Some(CloseFrame { code: CloseCode::Away, reason: Utf8Bytes::from_static("simulator shutting down") }))
                        .await;
                    return;
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))),
                    if deadline.is_some() => {
                    self.on_timer(Instant::now());
                }
                msg = ws.next() => {
                    let at = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(t))) => self.on_text(&t, at),
                        Some(Ok(Message::Binary(_))) => self.error(None, ApiError::new(
                            "invalid_event", "Binary frames are not supported; send JSON events as text frames.", None)),
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => {}
                    }
                }
            }
            if self.flush(&mut ws).await.is_err() {
                return;
            }
        }
    }

    async fn flush(&mut self, ws: &mut Ws) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        for s in self.out.drain(..) {
            ws.feed(Message::text(s)).await?;
        }
        ws.flush().await
    }

    fn next_deadline(&self) -> Option<Instant> {
        let r = self.resp.as_ref().and_then(|r| r.queue.front().map(|(t, _)| *t));
        let i = self.interrupt.as_ref().map(|p| p.due);
        let l = self.later.iter().map(|(t, _)| *t).min();
        [r, i, l].into_iter().flatten().min()
    }

    // ---------------------------------------------------------------------------------------------------------
    // output helpers

    fn new_id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{}", rand_id(&mut self.ids))
    }

    fn emit(&mut self, mut v: Value) {
        let id = self.new_id("event");
        if let Some(o) = v.as_object_mut() {
            o.insert("event_id".into(), Value::String(id));
        }
        self.out.push(v.to_string());
    }

    fn error(&mut self, client_event_id: Option<String>, e: ApiError) {
        self.emit(json!({"type": "error", "error": {
            "type": "invalid_request_error", "code": e.code, "message": e.message, "param": e.param,
            "event_id": client_event_id}}));
    }

    fn ga(&self) -> bool {
        self.dialect == Dialect::Ga
    }

    fn gt(&self, i: usize, f: impl FnOnce(&mut GroundTruth)) {
        self.shared.update(i, f);
    }

    fn ms(&self, at: Instant) -> f64 {
        self.shared.ms(at)
    }

    fn last_item_id(&self) -> Value {
        self.items.last().map_or(Value::Null, |i| Value::String(i.id.clone()))
    }

    fn push_item(&mut self, id: String, audio_ms: Option<f64>, json: Value) {
        self.items.push(Item { id, audio_ms, json });
    }

    /// GA: `conversation.item.added` + `.done`; beta: `conversation.item.created`.
    fn announce_item(&mut self, prev: Value, item: Value, done_too: bool) {
        if self.ga() {
            self.emit(json!({"type": "conversation.item.added", "previous_item_id": prev, "item": item}));
            if done_too {
                self.emit(json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}));
            }
        } else {
            self.emit(json!({"type": "conversation.item.created", "previous_item_id": prev, "item": item}));
        }
    }

    fn response_json(&self, r: &Resp, status: &str, details: Value, usage: Value) -> Value {
        let output = if status == "in_progress" { json!([]) } else { Value::Array(r.output.clone()) };
        match self.dialect {
            Dialect::Ga => json!({"object": "realtime.response", "id": r.id, "status": status,
                "status_details": details, "output": output, "conversation_id": self.conv_id,
                "output_modalities": self.cfg.modalities, "max_output_tokens": self.cfg.max_output_tokens,
                "audio": {"output": {"format": self.cfg.output_format_ga(), "voice": self.cfg.voice}},
                "usage": usage, "metadata": null}),
            Dialect::Beta => json!({"object": "realtime.response", "id": r.id, "status": status,
                "status_details": details, "output": output, "conversation_id": self.conv_id,
                "modalities": self.cfg.modalities, "voice": self.cfg.voice,
                "output_audio_format": SessionConfig::fmt_beta(self.cfg.output_format),
                "temperature": self.cfg.temperature, "max_output_tokens": self.cfg.max_output_tokens,
                "usage": usage, "metadata": null}),
        }
    }

    fn usage(&self, r: &Resp) -> Value {
        let user_ms = r.end.as_ref().and_then(|e| self.ctx.turns.get(e.idx)).map_or(1000.0, |t| t.user_audio_ms);
        let in_audio = (user_ms / 100.0).round() as u64;
        let in_text = 120 + 10 * self.items.len() as u64;
        let out_audio = (r.audio_sent_ms / 50.0).round() as u64;
        let out_text = (r.transcript_sent.split_whitespace().count() as f64 * 1.3).round() as u64
            + r.calls.iter().map(|c| c.arguments.len() as u64 / 4).sum::<u64>();
        let mut u = json!({"total_tokens": in_audio + in_text + out_audio + out_text,
            "input_tokens": in_audio + in_text, "output_tokens": out_audio + out_text,
            "input_token_details": {"text_tokens": in_text, "audio_tokens": in_audio, "image_tokens": 0,
                "cached_tokens": 0, "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio}});
        if !self.ga() {
            u["input_token_details"].as_object_mut().map(|o| o.remove("image_tokens"));
        }
        u
    }

    fn name(&self, ga: &'static str, beta: &'static str) -> &'static str {
        if self.ga() { ga } else { beta }
    }

    // ---------------------------------------------------------------------------------------------------------
    // client events

    fn on_text(&mut self, text: &str, at: Instant) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let parsed = parse_event(text, self.dialect, self.cfg.input_format, &mut scratch);
        match parsed {
            Err((eid, e)) => {
                self.scratch = scratch;
                self.error(eid, e);
            }
            Ok((eid, ev)) => {
                if let ClientEvent::Append(bytes) = ev {
                    self.on_audio(&bytes, at);
                    self.scratch = bytes;
                    return;
                }
                self.scratch = scratch;
                if let Err(e) = self.on_event(ev, at) {
                    self.error(eid, e);
                }
            }
        }
    }

    fn on_event(&mut self, ev: ClientEvent, at: Instant) -> Result<(), ApiError> {
        match ev {
            ClientEvent::Append(_) => unreachable!("handled in on_text"),
            ClientEvent::SessionUpdate(s) => {
                let defaults = self.ctx.td_defaults.clone();
                let was_vad = self.cfg.turn_detection.is_some();
                self.cfg.apply_update(self.dialect, &s, &defaults, self.voice_locked)?;
                self.vad.set_rate(self.cfg.input_format.rate());
                if let Some(t) = &self.cfg.turn_detection {
                    self.vad.configure(t.threshold, t.silence_ms());
                } else if was_vad {
                    self.vad.end_speech();
                }
                let s = self.cfg.to_json(self.dialect, &self.session_id, self.expires_at);
                self.emit(json!({"type": "session.updated", "session": s}));
            }
            ClientEvent::Commit => {
                if self.buffer_ms < 100.0 {
                    return Err(ApiError::new(
                        "input_audio_buffer_commit_empty",
                        format!(
                            "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, \
                             but buffer only has {:.2}ms of audio.",
                            self.buffer_ms
                        ),
                        None,
                    ));
                }
                let item_id = self.new_id("item");
                self.commit_user_item(item_id);
                if self.cfg.turn_detection.is_none() {
                    let idx = self.next_turn;
                    self.next_turn += 1;
                    self.pending_turn = Some(TurnEnd {
                        idx,
                        onset_at: None,
                        onset_audio_ms: None,
                        eos_at: at,
                        eos_audio_ms: self.vad.now_ms(),
                    });
                }
            }
            ClientEvent::Clear => {
                self.buffer_ms = 0.0;
                self.emit(json!({"type": "input_audio_buffer.cleared"}));
            }
            ClientEvent::ItemCreate { previous_item_id, item } => {
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
                let mut item = item;
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
                    None => self.new_id("item"),
                };
                if let Some(o) = item.as_object_mut() {
                    o.insert("id".into(), json!(id));
                    o.entry("status").or_insert(json!("completed"));
                    if !self.ga() {
                        o.insert("object".into(), json!("realtime.item"));
                    }
                }
                let prev = previous_item_id.map_or_else(|| self.last_item_id(), Value::String);
                self.push_item(id, None, item.clone());
                self.announce_item(prev, item, true);
            }
            ClientEvent::ItemTruncate { item_id, content_index, audio_end_ms } => {
                let Some(item) = self.items.iter().find(|i| i.id == item_id) else {
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
                if let Some(i) = self.items.iter_mut().find(|i| i.id == item_id) {
                    i.audio_ms = Some(audio_end_ms as f64);
                }
                self.emit(json!({"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0,
                    "audio_end_ms": audio_end_ms}));
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
                self.emit(json!({"type": "conversation.item.deleted", "item_id": id}));
            }
            ClientEvent::ItemRetrieve(id) => {
                let Some(item) = self.items.iter().find(|i| i.id == id).map(|i| i.json.clone()) else {
                    return Err(ApiError::new(
                        "invalid_value",
                        format!("Error retrieving item: the item with id '{id}' does not exist."),
                        Some("item_id".into()),
                    ));
                };
                self.emit(json!({"type": "conversation.item.retrieved", "item": item}));
            }
            ClientEvent::ResponseCreate(params) => {
                if let Some(r) = &self.resp {
                    return Err(ApiError::new(
                        "conversation_already_has_active_response",
                        format!(
                            "Conversation already has an active response in progress: {}. Wait until the response is \
                             finished before creating a new one.",
                            r.id
                        ),
                        None,
                    ));
                }
                let out_of_band = params
                    .as_ref()
                    .and_then(|p| p.get("conversation"))
                    .and_then(Value::as_str)
                    .is_some_and(|c| c == "none");
                if out_of_band {
                    self.start_empty(None, at, Some(at), GroundTruthKind::Reply);
                } else if let Some(a) = self.awaiting_tool.take() {
                    self.start_spoken(a.end, at, Some(at), GroundTruthKind::Reply);
                } else if let Some(end) = self.pending_turn.take() {
                    self.respond_to_turn(end, at, Some(at));
                } else {
                    self.start_empty(None, at, Some(at), GroundTruthKind::Reply);
                }
            }
            ClientEvent::ResponseCancel(rid) => {
                let active = self.resp.as_ref().map(|r| r.id.clone());
                match (active, rid) {
                    (Some(a), Some(r)) if a != r => {
                        return Err(ApiError::new(
                            "response_cancel_not_active",
                            format!("Cancellation failed: no active response found with id '{r}'."),
                            None,
                        ));
                    }
                    (Some(_), _) => self.cancel(at, "client_cancelled"),
                    (None, _) => {
                        return Err(ApiError::new(
                            "response_cancel_not_active",
                            "Cancellation failed: no active response found",
                            None,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn commit_user_item(&mut self, item_id: String) {
        let prev = self.last_item_id();
        self.emit(json!({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id}));
        let mut item = json!({"id": item_id, "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": null}]});
        if !self.ga() {
            item["object"] = json!("realtime.item");
        }
        self.push_item(item_id, None, item.clone());
        self.announce_item(prev, item, true);
        self.buffer_ms = 0.0;
    }

    // ---------------------------------------------------------------------------------------------------------
    // input audio, VAD and the script

    fn on_audio(&mut self, bytes: &[u8], at: Instant) {
        let fmt = self.cfg.input_format;
        let mut samples = std::mem::take(&mut self.samples);
        fmt.decode_into(bytes, &mut samples);
        self.buffer_ms += samples.len() as f64 * 1000.0 / fmt.rate() as f64;
        let mut evs = std::mem::take(&mut self.vad_events);
        evs.clear();
        let detect = self.cfg.turn_detection.is_some();
        self.vad.push(&samples, detect, &mut evs);
        self.samples = samples;
        for ev in evs.drain(..) {
            match ev {
                VadEvent::Onset { start_ms, .. } => self.on_onset(start_ms, at),
                VadEvent::Silence { last_voiced_ms, now_ms } => self.on_silence(last_voiced_ms, now_ms, at),
            }
        }
        self.vad_events = evs;
    }

    fn agent_active(&self, at: Instant) -> bool {
        self.resp.is_some() || self.play_end.is_some_and(|e| at < e)
    }

    fn on_onset(&mut self, start_ms: f64, at: Instant) {
        let continuing = self.turn.as_ref().is_some_and(|t| !t.ended);
        let item_id = self.new_id("item");
        let idx = if continuing {
            let t = self.turn.as_mut().expect("continuing turn");
            t.item_id = item_id.clone();
            t.idx
        } else {
            let idx = self.next_turn;
            self.next_turn += 1;
            let (span, pause) = self.ctx.turns.get(idx).map_or((0.0, 0.0), |t| (t.span_ms, t.longest_pause_ms));
            let margin = match self.cfg.input_format {
                WireFormat::Pcm24 | WireFormat::Pcm16 => SPAN_MARGIN_MS,
                WireFormat::Pcmu => SPAN_MARGIN_MULAW_MS,
            };
            let silence = self.cfg.turn_detection.as_ref().map_or(500.0, |t| t.silence_ms());
            self.vad.set_long_pause((pause + PAUSE_MARGIN_MS - silence).max(PAUSE_MARGIN_MS));
            self.turn = Some(TurnProgress {
                idx,
                onset_at: at,
                onset_audio_ms: start_ms,
                min_end_ms: start_ms + span - margin,
                ended: false,
                ignoring: false,
                item_id: item_id.clone(),
                started: false,
            });
            idx
        };
        let active = self.agent_active(at);
        let mut false_stop = false;
        if !continuing && self.ctx.turns.get(idx).is_some_and(|t| t.expect == Expect::Ignore) {
            // Always draw, so the stream of draws does not depend on timing.
            false_stop = chance(&mut self.rng, self.ctx.profile.false_stop_rate) && active;
            if !false_stop {
                if let Some(t) = self.turn.as_mut() {
                    t.ignoring = true;
                }
                return;
            }
        }
        let prefix = self.cfg.turn_detection.as_ref().map_or(300, |t| t.prefix_padding_ms) as f64;
        let audio_start_ms = (start_ms - prefix).max(0.0).round() as u64;
        if let Some(t) = self.turn.as_mut() {
            t.started = true;
        }
        if active && self.interrupt.is_none() {
            let delay = self.ctx.profile.draw_interrupt_delay(&mut self.rng);
            let mut g = GroundTruth::new(&self.session_id, self.idx, idx, GroundTruthKind::Interrupt);
            g.onset_audio_ms = Some(start_ms);
            g.onset_at = Some(at);
            g.onset_ms = Some(self.ms(at));
            g.interrupt_delay_ms = Some(delay);
            g.false_stop = false_stop;
            let gt = self.shared.push(g);
            self.interrupt = Some(PendingInterrupt { due: at + ms_dur(delay), item_id, audio_start_ms, gt });
        } else if self.interrupt.is_none() {
            self.emit(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms,
                "item_id": item_id}));
        }
    }

    fn fire_interrupt(&mut self, at: Instant) {
        let Some(p) = self.interrupt.take() else { return };
        self.emit(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": p.audio_start_ms,
            "item_id": p.item_id}));
        self.signal(Signal::Interrupted);
        let sent = Instant::now().max(at);
        let ms = self.ms(sent);
        self.gt(p.gt, |g| {
            g.speech_started_at = Some(sent);
            g.speech_started_ms = Some(ms);
        });
        let interrupt = self.cfg.turn_detection.as_ref().is_none_or(|t| t.interrupt_response);
        if interrupt && let Some(rid) = self.resp.as_ref().map(|r| r.id.clone()) {
            self.cancel(at, "turn_detected");
            let done = Instant::now();
            let dms = self.ms(done);
            self.gt(p.gt, |g| {
                g.interrupted_response = Some(rid);
                g.response_done_at = Some(done);
                g.response_done_ms = Some(dms);
            });
        }
    }

    fn on_silence(&mut self, last_voiced_ms: f64, now_ms: f64, at: Instant) {
        let Some(t) = self.turn.clone().filter(|t| !t.ended) else {
            self.vad.end_speech();
            return;
        };
        let known = self.ctx.turns.get(t.idx).is_some();
        let long = self.ctx.turns.get(t.idx).map_or(0.0, |x| x.longest_pause_ms) + PAUSE_MARGIN_MS;
        let silence = self.cfg.turn_detection.as_ref().map_or(500.0, |x| x.silence_ms());
        if !known
            || last_voiced_ms >= t.min_end_ms
            || now_ms - last_voiced_ms >= long.max(silence + PAUSE_MARGIN_MS) - 1e-6
        {
            self.vad.end_speech();
            if let Some(tp) = self.turn.as_mut() {
                tp.ended = true;
            }
            if t.ignoring {
                return;
            }
            let end = self.end_of_speech(&t, last_voiced_ms, now_ms, at);
            let create = self.cfg.turn_detection.as_ref().is_none_or(|td| td.create_response);
            if create {
                self.respond_to_turn(end, Instant::now(), None);
            } else {
                self.pending_turn = Some(end);
            }
        } else if !t.ignoring && chance(&mut self.rng, self.ctx.profile.takeover_rate) {
            // A pause inside the utterance, and the sim takes it for the end of the turn.
            self.vad.end_speech();
            let end = self.end_of_speech(&t, last_voiced_ms, now_ms, at);
            self.start_spoken(end, Instant::now(), None, GroundTruthKind::Takeover);
        }
    }

    /// speech_stopped, committed, the user item; returns the turn end (eos = when speech_stopped was sent).
    fn end_of_speech(&mut self, t: &TurnProgress, last_voiced_ms: f64, now_ms: f64, at: Instant) -> TurnEnd {
        if self.interrupt.is_some() {
            self.fire_interrupt(at);
        }
        if !t.started {
            let prefix = self.cfg.turn_detection.as_ref().map_or(300, |x| x.prefix_padding_ms) as f64;
            self.emit(json!({"type": "input_audio_buffer.speech_started",
                "audio_start_ms": (t.onset_audio_ms - prefix).max(0.0).round() as u64, "item_id": t.item_id}));
        }
        self.emit(json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": now_ms.round() as u64,
            "item_id": t.item_id}));
        let eos_at = Instant::now().max(at);
        self.commit_user_item(t.item_id.clone());
        if let Some(text) = self.ctx.turns.get(t.idx).and_then(|x| x.text.clone()) {
            self.signal(Signal::UserTranscript(text));
        }
        if !self.cfg.transcription.is_null()
            && let Some(text) = self.ctx.turns.get(t.idx).and_then(|x| x.text.clone())
        {
            let mut ev = json!({"type": "conversation.item.input_audio_transcription.completed",
                "item_id": t.item_id, "content_index": 0, "transcript": text});
            if self.ga() {
                ev["usage"] = json!({"type": "duration", "seconds": (now_ms / 1000.0).round()});
            }
            self.later.push((eos_at + Duration::from_millis(TRANSCRIPTION_DELAY_MS), ev));
        }
        TurnEnd {
            idx: t.idx,
            onset_at: Some(t.onset_at),
            onset_audio_ms: Some(t.onset_audio_ms),
            eos_at,
            eos_audio_ms: last_voiced_ms,
        }
    }

    /// The scripted response to a finished turn: a tool call where the turn expects one (and the session declared
    /// the tool), else the spoken reply.
    fn respond_to_turn(&mut self, end: TurnEnd, reference: Instant, create_at: Option<Instant>) {
        let calls: Vec<(String, Value)> = self
            .ctx
            .turns
            .get(end.idx)
            .map(|t| t.tool_calls.iter().filter(|(n, _)| self.cfg.allows_tool(n)).cloned().collect())
            .unwrap_or_default();
        if calls.is_empty() {
            self.start_spoken(end, reference, create_at, GroundTruthKind::Reply);
        } else {
            self.start_tool(end, calls, reference, create_at);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // responses

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
            output: Vec::new(),
        }
    }

    fn emit_created(&mut self, r: &Resp) {
        let resp = self.response_json(r, "in_progress", Value::Null, Value::Null);
        self.emit(json!({"type": "response.created", "response": resp}));
    }

    fn start_empty(
        &mut self,
        end: Option<TurnEnd>,
        reference: Instant,
        create_at: Option<Instant>,
        k: GroundTruthKind,
    ) {
        let mut r = self.new_resp(RespKind::Empty, k, end.as_ref(), create_at);
        let delay = self.ctx.profile.draw_reply_delay(&mut self.rng);
        self.gt(r.gt, |g| g.reply_delay_ms = Some(delay));
        self.emit_created(&r);
        r.queue.push_back((reference + ms_dur(delay), Step::Finish));
        self.resp = Some(r);
    }

    fn start_spoken(&mut self, end: TurnEnd, reference: Instant, create_at: Option<Instant>, k: GroundTruthKind) {
        let Some(reply) = self.ctx.turns.get(end.idx).and_then(|t| t.reply.clone()) else {
            self.start_empty(Some(end), reference, create_at, k);
            return;
        };
        let mut r = self.new_resp(RespKind::Spoken, k, Some(&end), create_at);
        let delay = self.ctx.profile.draw_reply_delay(&mut self.rng);
        let lead = self.ctx.profile.draw_leading_silence(&mut self.rng);
        let fmt = self.cfg.output_format;
        let enc = reply.encoded(fmt, self.ctx.profile.chunk_ms);
        let silence = enc.silence(fmt, lead);
        let lead_sent: f64 = silence.iter().map(|(_, m)| m).sum();
        let planned = lead_sent + enc.total_ms;
        let lead_samples = (lead_sent * enc.rate as f64 / 1000.0).round() as usize;
        let lead_exact = enc.first_audible_ms(lead_samples);
        let item_id = self.new_id("item");
        let rid = r.id.clone();
        self.gt(r.gt, |g| {
            g.reply_delay_ms = Some(delay);
            g.leading_silence_ms = Some(lead_exact);
            g.audio_planned_ms = planned;
            g.item_id = Some(item_id.clone());
            g.reply = Some(reply.id.clone());
        });
        r.msg_item = Some(item_id.clone());
        r.transcript_full = reply.text.clone().unwrap_or_default();
        self.emit_created(&r);
        let mut item = json!({"id": item_id, "type": "message", "status": "in_progress", "role": "assistant",
            "content": []});
        if !self.ga() {
            item["object"] = json!("realtime.item");
        }
        self.emit(json!({"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item}));
        let prev = self.last_item_id();
        self.push_item(item_id.clone(), Some(0.0), item.clone());
        self.announce_item(prev, item, false);
        self.emit(json!({"type": "response.content_part.added", "response_id": rid, "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}}));
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

    fn start_tool(
        &mut self,
        end: TurnEnd,
        calls: Vec<(String, Value)>,
        reference: Instant,
        create_at: Option<Instant>,
    ) {
        let mut r = self.new_resp(RespKind::Tool, GroundTruthKind::ToolCall, Some(&end), create_at);
        let delay = self.ctx.profile.draw_tool_delay(&mut self.rng);
        let gap = self.ctx.profile.arg_delta_gap_ms();
        let n_deltas = self.ctx.profile.tool_arg_deltas.max(1) as usize;
        let mut truths = Vec::new();
        let mut t = reference + ms_dur(delay);
        for (i, (name, args)) in calls.into_iter().enumerate() {
            let mut args = args;
            let wrong = if chance(&mut self.rng, self.ctx.profile.tool_arg_error_rate) {
                corrupt_one(&mut args, &mut self.rng)
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
        self.emit_created(&r);
        self.resp = Some(r);
    }

    fn on_timer(&mut self, now: Instant) {
        loop {
            let next = self.next_deadline();
            let Some(due) = next.filter(|d| *d <= now) else { break };
            if self.interrupt.as_ref().is_some_and(|p| p.due == due) {
                self.fire_interrupt(now);
                continue;
            }
            if let Some(pos) = self.later.iter().position(|(t, _)| *t == due) {
                let (_, ev) = self.later.swap_remove(pos);
                self.emit(ev);
                continue;
            }
            let Some(mut r) = self.resp.take() else { break };
            let Some((_, step)) = r.queue.pop_front() else {
                self.resp = Some(r);
                break;
            };
            let finish = matches!(step, Step::Finish);
            self.step(&mut r, step);
            if !finish {
                self.resp = Some(r);
            }
        }
    }

    fn step(&mut self, r: &mut Resp, step: Step) {
        match step {
            Step::Audio { b64, ms, transcript } => {
                let item_id = r.msg_item.clone().unwrap_or_default();
                if let Some(t) = transcript {
                    let mut ev = json!({"type": self.name("response.output_audio_transcript.delta",
                        "response.audio_transcript.delta"), "response_id": r.id, "item_id": item_id,
                        "output_index": 0, "content_index": 0, "delta": &*t});
                    if self.ga() {
                        ev["obfuscation"] = json!("sim");
                    }
                    self.emit(ev);
                    r.transcript_sent.push_str(&t);
                    self.signal(Signal::Transcript(t.clone()));
                }
                self.signal(Signal::Audio { b64: b64.clone() });
                let eid = self.new_id("event");
                let ty = self.name("response.output_audio.delta", "response.audio.delta");
                self.out.push(format!(
                    r#"{{"type":"{ty}","event_id":"{eid}","response_id":"{}","item_id":"{item_id}","output_index":0,"content_index":0,"delta":"{b64}"}}"#,
                    r.id
                ));
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
                self.voice_locked = true;
                if let Some(i) = self.items.iter_mut().rev().find(|i| i.id == item_id) {
                    i.audio_ms = Some(r.audio_sent_ms);
                }
            }
            Step::CallAdded(i) => {
                let c = &mut r.calls[i];
                c.added = true;
                let mut item = json!({"id": c.item_id, "type": "function_call", "status": "in_progress",
                    "name": c.name, "call_id": c.call_id, "arguments": ""});
                if !self.ga() {
                    item["object"] = json!("realtime.item");
                }
                let rid = r.id.clone();
                self.emit(json!({"type": "response.output_item.added", "response_id": rid, "output_index": i,
                    "item": item}));
                let prev = self.last_item_id();
                self.push_item(r.calls[i].item_id.clone(), None, item.clone());
                self.announce_item(prev, item, false);
            }
            Step::ArgDelta(i, piece) => {
                let c = &mut r.calls[i];
                let first = c.sent.is_empty();
                c.sent.push_str(&piece);
                let ev = json!({"type": "response.function_call_arguments.delta", "response_id": r.id,
                    "item_id": c.item_id, "output_index": i, "call_id": c.call_id, "delta": piece});
                self.emit(ev);
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
                self.finish_call(r, i, "completed");
                let c = &r.calls[i];
                let call = Signal::ToolCall {
                    call_id: c.call_id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                };
                self.signal(call);
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

    fn finish_call(&mut self, r: &mut Resp, i: usize, status: &str) {
        let c = r.calls[i].clone();
        r.calls[i].done = true;
        let args = if status == "completed" { c.arguments.clone() } else { c.sent.clone() };
        let mut done = json!({"type": "response.function_call_arguments.done", "response_id": r.id,
            "item_id": c.item_id, "output_index": i, "call_id": c.call_id, "arguments": args});
        if self.ga() {
            done["name"] = json!(c.name);
        }
        self.emit(done);
        let mut item = json!({"id": c.item_id, "type": "function_call", "status": status, "name": c.name,
            "call_id": c.call_id, "arguments": args});
        if !self.ga() {
            item["object"] = json!("realtime.item");
        }
        self.emit(json!({"type": "response.output_item.done", "response_id": r.id, "output_index": i, "item": item}));
        if self.ga() {
            let prev = self.items.iter().position(|x| x.id == c.item_id).and_then(|p| p.checked_sub(1));
            let prev = prev.map_or(Value::Null, |p| json!(self.items[p].id));
            self.emit(json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}));
        }
        if let Some(x) = self.items.iter_mut().find(|x| x.id == c.item_id) {
            x.json = item.clone();
        }
        r.output.push(item);
    }

    /// Ends the response: `cancel_reason` None = completed, else cancelled with that reason.
    fn finish(&mut self, r: &mut Resp, cancel_reason: Option<&str>) {
        let status = if cancel_reason.is_some() { "cancelled" } else { "completed" };
        if let Some(item_id) = r.msg_item.clone() {
            let transcript =
                if cancel_reason.is_some() { r.transcript_sent.clone() } else { r.transcript_full.clone() };
            let base = json!({"response_id": r.id, "item_id": item_id, "output_index": 0, "content_index": 0});
            let mut e = base.clone();
            e["type"] = json!(self.name("response.output_audio.done", "response.audio.done"));
            self.emit(e);
            let mut e = base.clone();
            e["type"] = json!(self.name("response.output_audio_transcript.done", "response.audio_transcript.done"));
            e["transcript"] = json!(transcript);
            self.emit(e);
            let mut e = base;
            e["type"] = json!("response.content_part.done");
            e["part"] = json!({"type": "audio", "transcript": transcript});
            self.emit(e);
            self.emit(json!({"type": "rate_limits.updated", "rate_limits": [
                {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}]}));
            let content_type = self.name("output_audio", "audio");
            let mut item = json!({"id": item_id, "type": "message",
                "status": if cancel_reason.is_some() { "incomplete" } else { "completed" }, "role": "assistant",
                "content": [{"type": content_type, "transcript": transcript}]});
            if !self.ga() {
                item["object"] = json!("realtime.item");
            }
            self.emit(json!({"type": "response.output_item.done", "response_id": r.id, "output_index": 0,
                "item": item}));
            if self.ga() {
                let prev = self.items.iter().position(|x| x.id == item_id).and_then(|p| p.checked_sub(1));
                let prev = prev.map_or(Value::Null, |p| json!(self.items[p].id));
                self.emit(json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}));
            }
            if let Some(x) = self.items.iter_mut().find(|x| x.id == item_id) {
                x.json = item.clone();
            }
            r.output.push(item);
        }
        for i in 0..r.calls.len() {
            if r.calls[i].added && !r.calls[i].done {
                self.finish_call(r, i, "incomplete");
            }
        }
        let details = match cancel_reason {
            Some(reason) => json!({"type": "cancelled", "reason": reason}),
            None => Value::Null,
        };
        let usage = self.usage(r);
        let resp = self.response_json(r, status, details, usage);
        self.emit(json!({"type": "response.done", "response": resp}));
        self.signal(Signal::ResponseDone {
            cancelled: cancel_reason.is_some(),
            spoke: r.first_audio_at.is_some(),
            tool: r.kind == RespKind::Tool,
        });
        let at = Instant::now();
        let ms = self.ms(at);
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
        if cancel_reason.is_none()
            && r.kind == RespKind::Tool
            && let Some(end) = r.end.clone()
        {
            self.awaiting_tool = Some(AwaitTool { end });
        }
    }

    fn cancel(&mut self, _at: Instant, reason: &str) {
        if let Some(mut r) = self.resp.take() {
            self.finish(&mut r, Some(reason));
        }
    }
}

/// 21 base62 characters, like the real service's ids.
fn rand_id(rng: &mut SplitMix64) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(21);
    let mut x = rng.next_u64();
    for i in 0..21 {
        if i == 10 {
            x = rng.next_u64();
        }
        s.push(A[(x % 62) as usize] as char);
        x /= 62;
    }
    s
}

/// Splits JSON text into `n` non-empty pieces (fewer if the text is shorter) at char boundaries: evenly under
/// `fixed`, at random positions under `native`.
fn split_text(text: &str, n: usize, rng: &mut SplitMix64, kind: super::ProfileKind) -> Vec<String> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
    let n = n.min(bounds.len() + 1).max(1);
    let mut cuts: Vec<usize> = match kind {
        super::ProfileKind::Fixed => (1..n).map(|k| bounds[k * bounds.len() / n]).collect(),
        super::ProfileKind::Native => {
            let mut pool = bounds.clone();
            let mut chosen = Vec::with_capacity(n - 1);
            for _ in 1..n {
                let j = (rng.next_u64() % pool.len() as u64) as usize;
                chosen.push(pool.swap_remove(j));
            }
            chosen
        }
    };
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for c in cuts {
        out.push(text[prev..c].to_string());
        prev = c;
    }
    out.push(text[prev..].to_string());
    out
}

/// Makes one argument wrong, the way a model gets one wrong: a number off by one, the next day, an hour later, a
/// misspelt name. Returns the argument's name.
fn corrupt_one(args: &mut Value, rng: &mut SplitMix64) -> Option<String> {
    let obj = args.as_object_mut()?;
    if obj.is_empty() {
        return None;
    }
    let mut keys: Vec<String> = obj.keys().cloned().collect();
    keys.sort();
    let k = keys[(rng.next_u64() % keys.len() as u64) as usize].clone();
    let v = obj.get_mut(&k)?;
    *v = match v.take() {
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!(i + 1),
            None => json!(n.as_f64().unwrap_or(0.0) + 1.0),
        },
        Value::Bool(b) => json!(!b),
        Value::String(s) => json!(wrong_string(&s)),
        other => other,
    };
    Some(k)
}

fn wrong_string(s: &str) -> String {
    let b = s.as_bytes();
    // YYYY-MM-DD: the next day.
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Ok(y), Ok(m), Ok(d)) = (s[..4].parse::<u32>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>())
    {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (y, m, d) = if d < len {
            (y, m, d + 1)
        } else if m >= 12 {
            (y + 1, 1, 1)
        } else {
            (y, m + 1, 1)
        };
        return format!("{y:04}-{m:02}-{d:02}");
    }
    // HH:MM: an hour later.
    if b.len() == 5
        && b[2] == b':'
        && let (Ok(h), Ok(mi)) = (s[..2].parse::<u32>(), s[3..].parse::<u32>())
    {
        return format!("{:02}:{mi:02}", (h + 1) % 24);
    }
    if s.is_empty() { "x".into() } else { format!("{s}e") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_lossless_and_counts() {
        let text = r#"{"date":"2026-12-04","party_size":4,"time":"19:00"}"#;
        let mut rng = SplitMix64::new(1);
        for kind in [super::super::ProfileKind::Fixed, super::super::ProfileKind::Native] {
            for n in [1, 4, 6, 20] {
                let p = split_text(text, n, &mut rng, kind);
                assert_eq!(p.len(), n);
                assert!(p.iter().all(|x| !x.is_empty()));
                assert_eq!(p.concat(), text);
            }
        }
        assert_eq!(split_text("ab", 6, &mut rng, super::super::ProfileKind::Native).len(), 2);
    }

    #[test]
    fn corrupting_changes_exactly_one_argument() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..20 {
            let orig = json!({"party_size": 4, "date": "2026-12-04", "time": "19:00", "name": "Jordan Lee"});
            let mut v = orig.clone();
            let k = corrupt_one(&mut v, &mut rng).unwrap();
            let changed: Vec<_> = orig.as_object().unwrap().keys().filter(|key| orig[*key] != v[*key]).collect();
            assert_eq!(changed, vec![&k]);
        }
        assert_eq!(wrong_string("2026-12-31"), "2027-01-01");
        assert_eq!(wrong_string("2026-12-04"), "2026-12-05");
        assert_eq!(wrong_string("2028-02-28"), "2028-02-29");
        assert_eq!(wrong_string("19:30"), "20:30");
    }
}
