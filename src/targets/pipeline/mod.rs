//! Pipeline targets: voicebench plays the agent framework (Pipecat, LiveKit Agents, Vapi) and orchestrates
//! STT → LLM → TTS itself, the way a good production pipeline runs, timing every stage.
//!
//! The caller sees an ordinary [`Session`]: it sends 16 kHz frames and gets [`AgentEvent`]s. Inside:
//!
//! * **Endpointing.** Every frame goes through the streaming energy VAD ([`StreamVad`], the corpus annotations'
//!   own detector) the moment it is sent. With `endpointing.mode = "local"` the caller's turn ends when the VAD
//!   has heard `silence_ms` of silence; with `"stt"` (Deepgram) it ends at the STT's `speech_final` /
//!   `UtteranceEnd`. Either way a [`Stage::EndOfTurn`] is stamped.
//! * **STT.** OpenAI-compatible: the turn's audio (from 200 ms before its onset) is posted as a WAV; Deepgram: the
//!   audio streams live all along, and a local end of turn sends `Finalize`. [`Stage::Transcript`] at the final text.
//! * **LLM.** A streamed chat completion with the scenario's tools and the whole conversation so far.
//!   Tool calls are handed to the caller (which answers from the scenario, as for native targets), the results go
//!   back in a second request. Content tokens are cut into sentences ([`tts::Sentences`]).
//! * **TTS.** Synthesis starts on the first sentence while the LLM goes on; sentences are spoken in order, each
//!   audio chunk handed to the caller as it arrives.
//! * **Interruptions.** Speech that starts while the agent's audio is still playing (as the adapter estimates it:
//!   real time from each chunk's arrival) interrupts once its voiced span — first voiced sample to the latest one
//!   — reaches `interrupt_min_ms` (after LiveKit Agents' `min_interruption_duration`), so a short "mm-hmm" does not
//!   stop the agent and is not taken as a turn; a pause inside the speech delays the decision until the voice
//!   resumes. An interruption flushes playback ([`AgentEvent::SpeechStarted`], as OpenAI's
//!   `speech_started` does) and cancels the in-flight requests by dropping their connections. Speech that starts
//!   while a reply is still being prepared (nothing played yet) cancels that reply at once, and the next request
//!   covers the whole turn, pause included.
//!
//! The conversation history holds what the caller actually heard: a reply's user message, tool calls and the
//! sentences whose audio began are committed when its first audio arrives; a reply cancelled before that leaves
//! no trace.

pub mod http;
pub mod llm;
pub mod stt;
pub mod tts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use self::http::{Client, HttpError, HttpSettings, SseParser};
use self::llm::{ChatDecoder, LlmEvent};
use self::stt::{DeepgramDecoder, DeepgramEvent};
use self::tts::{Sentences, Speech, TTS_RATE, TtsApi};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, Session, SessionError, Stage};
use crate::audio::Pcm;
use crate::audio::frames::to_le_bytes;
use crate::audio::stream_vad::{StreamVad, VadEvent};
use crate::scenario::schema::Stage as StageSpec;
use crate::scenario::{Scenario, Target};

/// The caller's audio rate for every pipeline (what Whisper-class STTs and Deepgram's `linear16` take).
pub const INPUT_RATE: u32 = 16_000;
/// Audio kept before a turn's onset for the STT, ms.
const PRE_ROLL_MS: u64 = 200;
/// Default `interrupt_min_ms` (LiveKit Agents' `min_interruption_duration` default).
pub const DEFAULT_INTERRUPT_MIN_MS: u32 = 500;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type WsSink = Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>;

/// Encodes a caller frame: raw PCM16 little-endian (sent as-is to a Deepgram live socket).
pub fn encode_frame(samples: &[i16]) -> Frame {
    Frame { samples: samples.into(), wire: Message::Binary(to_le_bytes(samples).into()) }
}

/// A failure inside a stage, with its category.
#[derive(Debug)]
struct StageFailure {
    category: ErrorCategory,
    message: String,
}

impl StageFailure {
    fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self { category, message: message.into() }
    }

    fn http(stage: &str, e: HttpError) -> Self {
        let category = match &e {
            HttpError::Connect { .. } | HttpError::Url { .. } | HttpError::Setup(_) => ErrorCategory::Connect,
            HttpError::Disconnect { .. } => ErrorCategory::Disconnect,
            HttpError::Timeout { .. } => ErrorCategory::Timeout,
            HttpError::Protocol { .. } | HttpError::Encoding { .. } => ErrorCategory::Protocol,
        };
        Self::new(category, format!("{stage}: {e}"))
    }

    fn status(stage: &str, status: u16, body: &str) -> Self {
        let category = match status {
            401 | 403 => ErrorCategory::Auth,
            429 => ErrorCategory::RateLimit,
            _ => ErrorCategory::ProviderError,
        };
        let body: String = body.chars().take(300).collect();
        Self::new(category, format!("{stage}: HTTP {status}: {body}"))
    }
}

impl From<stt::SttError> for StageFailure {
    fn from(e: stt::SttError) -> Self {
        match e {
            stt::SttError::Http(h) => Self::http("STT", h),
            stt::SttError::Status { status, body } => Self::status("STT", status, &body),
            stt::SttError::Protocol(m) => Self::new(ErrorCategory::Protocol, format!("STT: {m}")),
        }
    }
}

impl From<tts::TtsError> for StageFailure {
    fn from(e: tts::TtsError) -> Self {
        match e {
            tts::TtsError::Http(h) => Self::http("TTS", h),
            tts::TtsError::Status { status, body } => Self::status("TTS", status, &body),
        }
    }
}

/// How the STT is reached.
enum SttKind {
    /// OpenAI-compatible transcription requests.
    OpenAi { client: Client, stream: bool },
    /// Deepgram live: the socket is per session.
    Deepgram,
}

/// Everything fixed for the session.
struct Config {
    stt: SttKind,
    stt_key: Option<String>,
    stt_auth: Option<(&'static str, String)>,
    stt_model: Option<String>,
    llm: Client,
    llm_auth: Option<(&'static str, String)>,
    llm_model: Option<String>,
    tts: Client,
    tts_api: TtsApi,
    tts_key: Option<String>,
    tts_api_key_header: bool,
    tts_model: Option<String>,
    tts_voice: Option<String>,
    tools: Json,
    system: Json,
    events: mpsc::Sender<AgentEvent>,
    tool_results: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>,
}

/// What a reply starts from.
enum JobInput {
    /// The turn's audio, for an STT request.
    Audio(Pcm),
    /// The final transcript, from a streaming STT, and when it arrived.
    Text(String, Instant),
}

/// A reply in progress.
struct Job {
    task: JoinHandle<()>,
    spoke: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

/// State shared by the caller's side, the reply tasks and the Deepgram reader.
struct Core {
    /// Caller audio from `offset` (sample index since the call's first frame).
    audio: Vec<i16>,
    offset: u64,
    /// Sample index where the pending turn's speech began (kept across a reply cancelled before it spoke).
    turn_start: Option<u64>,
    /// Sample index of the onset of the speech in progress, if any.
    speaking_since: Option<u64>,
    /// The conversation as the caller heard it.
    history: Vec<Json>,
    job: Option<Job>,
    next_item: u32,
    /// When the agent's audio, as the caller plays it, ends.
    playing_until: Instant,
    /// Speech began while the agent's audio played and has not (yet) lasted long enough to interrupt.
    pending_interrupt: bool,
}

impl Core {
    /// Cancels the reply in progress; returns whether one was running and whether it had spoken.
    fn cancel(&mut self) -> Option<bool> {
        let j = self.job.take()?;
        let running = !j.done.load(Ordering::SeqCst);
        j.task.abort();
        running.then(|| j.spoke.load(Ordering::SeqCst))
    }

    /// The turn's audio, from the pre-roll before its start to now.
    fn turn_audio(&self) -> Pcm {
        let start = self.turn_start.unwrap_or(self.offset + self.audio.len() as u64);
        let from = start.saturating_sub(PRE_ROLL_MS * INPUT_RATE as u64 / 1000).max(self.offset);
        Pcm::new(INPUT_RATE, self.audio[(from - self.offset) as usize..].to_vec())
    }

    /// Drops audio no turn can need any more.
    fn trim(&mut self) {
        let keep_from = self.turn_start.or(self.speaking_since).unwrap_or(self.offset + self.audio.len() as u64);
        let keep_from = keep_from.saturating_sub(PRE_ROLL_MS * INPUT_RATE as u64 / 1000);
        if keep_from > self.offset + INPUT_RATE as u64 {
            let n = ((keep_from - self.offset) as usize).min(self.audio.len());
            self.audio.drain(..n);
            self.offset += n as u64;
        }
    }
}

/// An orchestrated STT → LLM → TTS session.
pub struct Pipeline {
    cfg: Arc<Config>,
    core: Arc<Mutex<Core>>,
    events: mpsc::Receiver<AgentEvent>,
    tool_tx: mpsc::UnboundedSender<(String, String)>,
    vad: StreamVad,
    stt_endpointing: bool,
    interrupt_min_ms: f64,
    deepgram: Option<(WsSink, Arc<Mutex<DeepgramDecoder>>, JoinHandle<()>)>,
    scratch: Vec<VadEvent>,
}

fn key_of(stage: Option<&StageSpec>) -> Option<String> {
    stage.and_then(|s| s.api_key_env.as_ref()).and_then(|v| std::env::var(v.get_ref()).ok())
}

/// Whether an OpenAI-compatible stage sends its key as Azure's `api-key` header (else `Authorization: Bearer`).
fn api_key_header(stage: Option<&StageSpec>) -> bool {
    stage.and_then(|s| s.auth.as_ref()).is_some_and(|a| a.get_ref() == "api-key")
}

/// The auth header of an OpenAI-compatible stage: name and value.
fn openai_auth(stage: Option<&StageSpec>) -> Option<(&'static str, String)> {
    let key = key_of(stage)?;
    Some(if api_key_header(stage) { ("api-key", key) } else { ("Authorization", format!("Bearer {key}")) })
}

fn url_of(stage: Option<&StageSpec>, which: &str) -> Result<String, SessionError> {
    stage.and_then(|s| s.url.as_ref()).map(|u| u.get_ref().clone()).ok_or_else(|| {
        SessionError::new(ErrorCategory::Connect, format!("the pipeline's [target.{which}] has no `url`"))
    })
}

fn connect_err(which: &str, e: impl std::fmt::Display) -> SessionError {
    SessionError::new(ErrorCategory::Connect, format!("{which}: {e}"))
}

impl Pipeline {
    /// Sets up the stage clients (warm connections to each service; the Deepgram socket), bounded by the
    /// scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let limit = Duration::from_millis(scenario.defaults.connect_timeout_ms as u64);
        match tokio::time::timeout(limit, Self::connect_inner(scenario, target)).await {
            Ok(r) => r,
            Err(_) => Err(SessionError::new(
                ErrorCategory::Connect,
                format!("the pipeline's services were not all reachable within {} ms", limit.as_millis()),
            )),
        }
    }

    async fn connect_inner(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let (stt, llm, tts) = (
            target.stt.as_ref().map(|s| s.get_ref()),
            target.llm.as_ref().map(|s| s.get_ref()),
            target.tts.as_ref().map(|s| s.get_ref()),
        );
        let ep = target.endpointing.as_ref().map(|e| e.get_ref());
        let silence_ms = ep.map_or(500, |e| e.silence_ms);
        let stt_endpointing = ep.is_some_and(|e| e.mode.get_ref() == "stt");
        let interrupt_min_ms = ep.and_then(|e| e.interrupt_min_ms).unwrap_or(DEFAULT_INTERRUPT_MIN_MS) as f64;
        let deepgram_stt = stt.is_some_and(|s| s.provider.get_ref() == "deepgram");
        let stt_url = url_of(stt, "stt")?;
        let d = &scenario.defaults;
        let ms = |v: u32| Duration::from_millis(v as u64);
        let settings =
            HttpSettings::from_env(ms(d.connect_timeout_ms), ms(d.first_byte_timeout_ms), ms(d.idle_timeout_ms));
        let stt_kind = if deepgram_stt {
            SttKind::Deepgram
        } else {
            let c = Client::new(&stt_url, &settings).map_err(|e| connect_err("STT", e))?;
            c.warm().await.map_err(|e| connect_err("STT", e))?;
            SttKind::OpenAi { client: c, stream: stt.and_then(|s| s.stream).unwrap_or(true) }
        };
        let llm_client = Client::new(&url_of(llm, "llm")?, &settings).map_err(|e| connect_err("LLM", e))?;
        llm_client.warm().await.map_err(|e| connect_err("LLM", e))?;
        let tts_client = Client::new(&url_of(tts, "tts")?, &settings).map_err(|e| connect_err("TTS", e))?;
        tts_client.warm().await.map_err(|e| connect_err("TTS", e))?;
        let tts_api =
            if tts.is_some_and(|s| s.provider.get_ref() == "elevenlabs") { TtsApi::ElevenLabs } else { TtsApi::OpenAi };
        let (ev_tx, ev_rx) = mpsc::channel(8192);
        let (tool_tx, tool_rx) = mpsc::unbounded_channel();
        let cfg = Arc::new(Config {
            stt: stt_kind,
            stt_key: key_of(stt),
            stt_auth: openai_auth(stt),
            stt_model: stt.and_then(|s| s.model.clone()),
            llm: llm_client,
            llm_auth: openai_auth(llm),
            llm_model: llm.and_then(|s| s.model.clone()),
            tts: tts_client,
            tts_api,
            tts_key: key_of(tts),
            tts_api_key_header: api_key_header(tts),
            tts_model: tts.and_then(|s| s.model.clone()),
            tts_voice: tts.and_then(|s| s.voice.clone()),
            tools: llm::tools_json(&scenario.agent.tools),
            system: llm::system_message(scenario),
            events: ev_tx,
            tool_results: tokio::sync::Mutex::new(tool_rx),
        });
        let core = Arc::new(Mutex::new(Core {
            audio: Vec::new(),
            offset: 0,
            turn_start: None,
            speaking_since: None,
            history: vec![cfg.system.clone()],
            job: None,
            next_item: 0,
            playing_until: Instant::now(),
            pending_interrupt: false,
        }));
        let deepgram = if deepgram_stt {
            let url = stt::deepgram_url(&stt_url, stt.and_then(|s| s.model.as_deref()), INPUT_RATE, silence_ms);
            let mut req = url.as_str().into_client_request().map_err(|e| connect_err("Deepgram", e))?;
            if let Some(k) = &cfg.stt_key {
                let v = HeaderValue::from_str(&format!("Token {k}"))
                    .map_err(|_| connect_err("Deepgram", "the key is not a valid header value"))?;
                req.headers_mut().insert("Authorization", v);
            }
            let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| connect_err("Deepgram", e))?;
            let (sink, stream) = ws.split();
            let decoder = Arc::new(Mutex::new(DeepgramDecoder::default()));
            let reader =
                tokio::spawn(deepgram_reader(stream, cfg.clone(), core.clone(), decoder.clone(), stt_endpointing));
            Some((Arc::new(tokio::sync::Mutex::new(sink)), decoder, reader))
        } else {
            None
        };
        Ok(Self {
            cfg,
            core,
            events: ev_rx,
            tool_tx,
            vad: StreamVad::new(INPUT_RATE, 0.5, silence_ms as f64),
            stt_endpointing: stt_endpointing && deepgram_stt,
            interrupt_min_ms,
            deepgram,
            scratch: Vec::new(),
        })
    }

    /// Emits an event from the caller's side (never blocks: the channel is large and drained by the caller).
    fn emit(&self, ev: AgentEvent) {
        let _ = self.cfg.events.try_send(ev);
    }
}

/// Starts a reply for the pending turn, cancelling any reply in progress.
fn start_job(cfg: &Arc<Config>, core_arc: &Arc<Mutex<Core>>, core: &mut Core, input: JobInput) {
    core.cancel();
    let item = core.next_item;
    core.next_item += 1;
    let spoke = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let history = core.history.clone();
    let task = tokio::spawn(reply(cfg.clone(), core_arc.clone(), history, input, item, spoke.clone(), done.clone()));
    core.job = Some(Job { task, spoke, done });
}

impl Session for Pipeline {
    fn input_rate(&self) -> u32 {
        INPUT_RATE
    }

    fn output_rate(&self) -> u32 {
        TTS_RATE
    }

    fn session_id(&self) -> Option<&str> {
        None
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        if let Some((sink, _, _)) = &self.deepgram {
            sink.lock()
                .await
                .send(frame.wire.clone())
                .await
                .map_err(|e| SessionError::new(ErrorCategory::Disconnect, format!("Deepgram: {e}")))?;
        }
        let now = Instant::now();
        let mut evs = std::mem::take(&mut self.scratch);
        self.vad.push(&frame.samples, true, &mut evs);
        let span = self.vad.speech_span_ms();
        let mut finalize = false;
        {
            let mut core = self.core.lock().expect("pipeline state");
            core.audio.extend_from_slice(&frame.samples);
            for ev in evs.drain(..) {
                match ev {
                    VadEvent::Onset { start_ms, .. } => {
                        let sample = (start_ms * INPUT_RATE as f64 / 1000.0) as u64;
                        core.speaking_since = Some(sample);
                        let speaking = core
                            .job
                            .as_ref()
                            .is_some_and(|j| !j.done.load(Ordering::SeqCst) && j.spoke.load(Ordering::SeqCst));
                        if core.playing_until > now || speaking {
                            // The agent is talking: interrupt only if the speech lasts (checked below).
                            core.pending_interrupt = true;
                        } else {
                            // A reply still being prepared (nothing played yet) is dropped; the turn goes on, its
                            // audio kept, so the next request covers all of it.
                            core.cancel();
                            core.turn_start.get_or_insert(sample);
                        }
                    }
                    VadEvent::Silence { .. } => {
                        self.vad.end_speech();
                        core.speaking_since = None;
                        if core.pending_interrupt {
                            // Short speech over the agent: a backchannel, not a turn.
                            core.pending_interrupt = false;
                            continue;
                        }
                        if self.stt_endpointing {
                            continue;
                        }
                        self.emit(AgentEvent::Stage { at: now, stage: Stage::EndOfTurn });
                        if self.deepgram.is_some() {
                            finalize = true;
                        } else {
                            let audio = core.turn_audio();
                            let cfg = self.cfg.clone();
                            start_job(&cfg, &self.core, &mut core, JobInput::Audio(audio));
                        }
                    }
                }
            }
            if core.pending_interrupt && span.is_some_and(|s| s >= self.interrupt_min_ms) {
                core.pending_interrupt = false;
                let was = core.cancel();
                core.playing_until = now;
                core.turn_start = core.speaking_since;
                self.emit(AgentEvent::SpeechStarted { at: now });
                if was.is_some() {
                    self.emit(AgentEvent::ResponseDone {
                        at: now,
                        status: ResponseStatus::Cancelled,
                        had_tool_call: false,
                    });
                }
            }
            core.trim();
        }
        self.scratch = evs;
        if finalize && let Some((sink, dec, _)) = &self.deepgram {
            dec.lock().expect("decoder").finalizing = true;
            sink.lock()
                .await
                .send(Message::Text(Utf8Bytes::from_static(r#"{"type":"Finalize"}"#)))
                .await
                .map_err(|e| SessionError::new(ErrorCategory::Disconnect, format!("Deepgram: {e}")))?;
        }
        Ok(())
    }

    async fn send_tool_result(&mut self, call_id: &str, output: &str) -> Result<(), SessionError> {
        let _ = self.tool_tx.send((call_id.to_string(), output.to_string()));
        Ok(())
    }

    async fn truncate(&mut self, _item: u32, _played_ms: u32) -> Result<(), SessionError> {
        // The history already holds only sentences whose audio began; nothing to tell a stateless service.
        Ok(())
    }

    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent> {
        &mut self.events
    }

    async fn close(&mut self) {
        self.core.lock().expect("pipeline state").cancel();
        if let Some((sink, _, reader)) = self.deepgram.take() {
            let mut s = sink.lock().await;
            let _ = s.send(Message::Text(Utf8Bytes::from_static(r#"{"type":"CloseStream"}"#))).await;
            let _ = s.close().await;
            reader.abort();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Ok(mut c) = self.core.lock() {
            c.cancel();
        }
        if let Some((_, _, reader)) = &self.deepgram {
            reader.abort();
        }
    }
}

/// Reads the Deepgram socket: each message is stamped before it is parsed; an end of turn starts a reply.
async fn deepgram_reader(
    mut stream: futures_util::stream::SplitStream<Ws>,
    cfg: Arc<Config>,
    core: Arc<Mutex<Core>>,
    decoder: Arc<Mutex<DeepgramDecoder>>,
    stt_endpointing: bool,
) {
    while let Some(msg) = stream.next().await {
        let at = Instant::now();
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(c)) => {
                let reason = c.map_or("no close frame".to_string(), |c| format!("{} {}", c.code, c.reason));
                let _ = cfg.events.send(AgentEvent::Closed { at, reason: format!("Deepgram closed: {reason}") }).await;
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = cfg.events.send(AgentEvent::Closed { at, reason: format!("Deepgram: {e}") }).await;
                return;
            }
        };
        let evs = decoder.lock().expect("decoder").feed(&text);
        for ev in evs {
            match ev {
                DeepgramEvent::EndOfTurn { text, by } => {
                    let mut c = core.lock().expect("pipeline state");
                    if by != "finalize" && !stt_endpointing {
                        continue;
                    }
                    if by != "finalize" && c.pending_interrupt {
                        continue;
                    }
                    if by != "finalize" {
                        let _ = cfg.events.try_send(AgentEvent::Stage { at, stage: Stage::EndOfTurn });
                    }
                    start_job(&cfg, &core, &mut c, JobInput::Text(text, at));
                }
                DeepgramEvent::Error(m) => {
                    let _ = cfg
                        .events
                        .send(AgentEvent::Error {
                            at,
                            category: ErrorCategory::ProviderError,
                            message: format!("Deepgram: {m}"),
                        })
                        .await;
                }
                DeepgramEvent::SpeechStarted | DeepgramEvent::Interim(_) => {}
            }
        }
    }
}

/// One reply: transcript, chat completions (with tool rounds), synthesis sentence by sentence.
async fn reply(
    cfg: Arc<Config>,
    core: Arc<Mutex<Core>>,
    history: Vec<Json>,
    input: JobInput,
    item: u32,
    spoke: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
) {
    let r = reply_inner(&cfg, &core, history, input, item, &spoke).await;
    let at = Instant::now();
    done.store(true, Ordering::SeqCst);
    match r {
        Ok(()) => {
            let _ = cfg
                .events
                .send(AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false })
                .await;
        }
        Err(f) => {
            let _ = cfg.events.send(AgentEvent::Error { at, category: f.category, message: f.message }).await;
            let _ = cfg
                .events
                .send(AgentEvent::ResponseDone { at, status: ResponseStatus::Failed, had_tool_call: false })
                .await;
        }
    }
}

/// The conversation as heard: the reply's messages and the sentences whose audio began.
fn commit(core: &Mutex<Core>, msgs: &[Json], spoken: &str) {
    let mut c = core.lock().expect("pipeline state");
    c.history = msgs.to_vec();
    if !spoken.is_empty() {
        c.history.push(json!({"role": "assistant", "content": spoken}));
    }
}

async fn reply_inner(
    cfg: &Arc<Config>,
    core: &Arc<Mutex<Core>>,
    mut msgs: Vec<Json>,
    input: JobInput,
    item: u32,
    spoke: &AtomicBool,
) -> Result<(), StageFailure> {
    let text = transcript(cfg, input).await?;
    msgs.push(json!({"role": "user", "content": text}));
    let mut spoken = String::new();
    loop {
        let body = llm::request_body(cfg.llm_model.as_deref(), &msgs, &cfg.tools).to_string();
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", "text/event-stream")];
        if let Some((name, value)) = &cfg.llm_auth {
            headers.push((name, value.as_str()));
        }
        let mut resp = cfg
            .llm
            .request("POST", "/chat/completions", &headers, body.as_bytes())
            .await
            .map_err(|e| StageFailure::http("LLM", e))?;
        let _ = cfg.events.send(AgentEvent::Stage { at: resp.sent, stage: Stage::LlmRequest }).await;
        if resp.status != 200 {
            let b = resp.error_body().await;
            return Err(StageFailure::status("LLM", resp.status, &b));
        }
        // The LLM stream and the synthesis of its sentences run side by side.
        let (sent_tx, sent_rx) = mpsc::unbounded_channel::<String>();
        let heard = msgs.clone();
        let (l, t) =
            tokio::join!(read_llm(cfg, resp, sent_tx), speak(cfg, core, sent_rx, &heard, &mut spoken, spoke, item));
        t?;
        let answer = l?;
        if answer.finish.as_deref() != Some("tool_calls") || answer.dec.calls.is_empty() {
            return Ok(());
        }
        tool_round(cfg, &mut msgs, &answer, &mut spoken).await?;
    }
}

/// The caller's words: the text a text turn carries, or the STT's transcript of the turn's audio.
async fn transcript(cfg: &Config, input: JobInput) -> Result<String, StageFailure> {
    match input {
        JobInput::Text(t, at) => {
            let _ = cfg.events.send(AgentEvent::Stage { at, stage: Stage::Transcript }).await;
            Ok(t)
        }
        JobInput::Audio(pcm) => match &cfg.stt {
            SttKind::OpenAi { client, stream } => {
                let t = stt::transcribe(client, cfg.stt_auth.as_ref(), cfg.stt_model.as_deref(), *stream, &pcm).await?;
                let _ = cfg.events.send(AgentEvent::Stage { at: t.at, stage: Stage::Transcript }).await;
                Ok(t.text)
            }
            SttKind::Deepgram => Err(StageFailure::new(ErrorCategory::Protocol, "no audio path for Deepgram")),
        },
    }
}

/// What one LLM answer came to: its tool calls, why it finished, and when.
struct LlmAnswer {
    dec: ChatDecoder,
    finish: Option<String>,
    first_tool: Option<Instant>,
    last_at: Instant,
}

/// Reads one streamed chat completion, sending each sentence to `sent_tx` as soon as it is complete.
async fn read_llm(
    cfg: &Config,
    mut resp: http::Response,
    sent_tx: mpsc::UnboundedSender<String>,
) -> Result<LlmAnswer, StageFailure> {
    let mut dec = ChatDecoder::default();
    let mut sse = SseParser::default();
    let mut sentences = Sentences::default();
    let mut first_token = true;
    let mut first_tool: Option<Instant> = None;
    let mut last_at = resp.head_at;
    let mut finish = None;
    let mut finish_at = None;
    while let Some((at, bytes)) = resp.chunk().await.map_err(|e| StageFailure::http("LLM", e))? {
        last_at = at;
        let events = sse.feed(&bytes).map_err(|e| StageFailure::new(ErrorCategory::Protocol, format!("LLM: {e}")))?;
        for data in events {
            let had_calls = dec.calls.len();
            for e in dec.feed(&data) {
                match e {
                    LlmEvent::Content(t) => {
                        if first_token {
                            first_token = false;
                            let _ = cfg.events.send(AgentEvent::Stage { at, stage: Stage::LlmFirstToken }).await;
                        }
                        for s in sentences.push(&t) {
                            let _ = sent_tx.send(s);
                        }
                    }
                    LlmEvent::Finish(f) => {
                        finish = Some(f);
                        finish_at = Some(at);
                    }
                }
            }
            if dec.calls.len() > had_calls {
                first_tool.get_or_insert(at);
            }
        }
        if let Some(v) = dec.violation.take() {
            // Stop reading: the rest of a stream that broke a bound is not worth a byte more.
            return Err(StageFailure::new(ErrorCategory::Protocol, format!("LLM: {v}")));
        }
    }
    if sse.inside_event() {
        // The body ended cleanly as HTTP, but inside an SSE event: the rest of the answer is lost.
        return Err(StageFailure::new(ErrorCategory::Protocol, "LLM: the event stream ended inside an event"));
    }
    if let Some(s) = sentences.finish() {
        let _ = sent_tx.send(s);
    }
    drop(sent_tx);
    if let Some(e) = dec.error.take() {
        return Err(StageFailure::new(ErrorCategory::ProviderError, format!("LLM: {e}")));
    }
    Ok(LlmAnswer { dec, finish, first_tool, last_at: finish_at.unwrap_or(last_at) })
}

/// Synthesises each sentence as it arrives and plays its audio; `spoken` gathers the sentences whose audio began,
/// and the conversation as heard (`heard` plus `spoken`) is committed as each one begins.
async fn speak(
    cfg: &Config,
    core: &Mutex<Core>,
    mut sent_rx: mpsc::UnboundedReceiver<String>,
    heard: &[Json],
    spoken: &mut String,
    spoke: &AtomicBool,
    item: u32,
) -> Result<(), StageFailure> {
    let mut first = true;
    while let Some(sentence) = sent_rx.recv().await {
        let mut speech = Speech::start(
            &cfg.tts,
            cfg.tts_api,
            cfg.tts_key.as_deref(),
            cfg.tts_api_key_header,
            cfg.tts_model.as_deref(),
            cfg.tts_voice.as_deref(),
            &sentence,
        )
        .await?;
        let mut sentence_heard = false;
        while let Some((at, samples)) = speech.next().await? {
            if first {
                first = false;
                let _ = cfg.events.send(AgentEvent::Stage { at: speech.sent, stage: Stage::TtsRequest }).await;
                let _ = cfg.events.send(AgentEvent::Stage { at, stage: Stage::TtsFirstByte }).await;
            }
            if !sentence_heard {
                sentence_heard = true;
                // What the agent says, as the LLM wrote it: the sentence the caller is starting to hear.
                let text = crate::targets::ws::cut(&sentence, crate::targets::ws::MAX_FRAGMENT).to_string();
                let _ = cfg.events.send(AgentEvent::Transcript { at, text, segment: true }).await;
                if !spoken.is_empty() {
                    spoken.push(' ');
                }
                spoken.push_str(&sentence);
                if !spoke.swap(true, Ordering::SeqCst) {
                    let mut c = core.lock().expect("pipeline state");
                    // The turn is answered: the next speech starts a new one.
                    c.turn_start = c.speaking_since;
                }
                commit(core, heard, spoken);
            }
            let dur = Duration::from_secs_f64(samples.len() as f64 / TTS_RATE as f64);
            {
                let mut c = core.lock().expect("pipeline state");
                c.playing_until = c.playing_until.max(at) + dur;
            }
            let _ = cfg.events.send(AgentEvent::Audio { at, item, samples }).await;
        }
    }
    Ok(())
}

/// A tool round: hands the answer's calls to the caller, waits for its results, and adds both to the conversation.
async fn tool_round(
    cfg: &Config,
    msgs: &mut Vec<Json>,
    answer: &LlmAnswer,
    spoken: &mut String,
) -> Result<(), StageFailure> {
    let LlmAnswer { dec, first_tool, last_at, .. } = answer;
    let first_at = first_tool.unwrap_or(*last_at);
    let calls: Vec<Json> = dec
        .calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    if !spoken.is_empty() {
        msgs.push(json!({"role": "assistant", "content": spoken.clone()}));
        spoken.clear();
    }
    msgs.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
    for c in &dec.calls {
        let _ = cfg
            .events
            .send(AgentEvent::ToolCall {
                at: *last_at,
                first_at,
                call_id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            })
            .await;
    }
    let done = AgentEvent::ResponseDone { at: *last_at, status: ResponseStatus::Completed, had_tool_call: true };
    let _ = cfg.events.send(done).await;
    let mut wanted: Vec<&str> = dec.calls.iter().map(|c| c.id.as_str()).collect();
    let mut rx = cfg.tool_results.lock().await;
    while !wanted.is_empty() {
        let Some((id, output)) = rx.recv().await else {
            return Err(StageFailure::new(ErrorCategory::Disconnect, "the caller went away during a tool call"));
        };
        if let Some(i) = wanted.iter().position(|w| *w == id) {
            wanted.remove(i);
            msgs.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
        }
    }
    Ok(())
}
