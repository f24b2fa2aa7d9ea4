//! The embedded simulated providers: real servers on `127.0.0.1:0`, one per simulated target, each speaking its
//! target's wire protocol — OpenAI Realtime (`openai`), Gemini Live ([`gemini`]), ElevenLabs Agents
//! ([`elevenlabs`]), Twilio Media Streams ([`twilio`]), ws-pcm ([`ws_pcm`]), and the STT, LLM and TTS HTTP services
//! of a pipeline target (`pipeline`) — that follow the scenario's script like a competent agent, with known timing,
//! and log ground truth for every response. One agent brain (`brain`: VAD, the script's turns, reply planning,
//! barge-in, profiles; no protocol in it) is behind every speech-to-speech wire, and one session loop (`wire`)
//! serves them all. A target's `sim_options.fault` makes its sim play one fault of the catalogue (`fault`).
//!
//! The harness (and tests) reach a sim over real sockets at [`SimHandle::url`]; [`SimHandle::point`] points a
//! target at it. The OpenAI Realtime sim speaks GA by default and the beta dialect when the upgrade request carries
//! `OpenAI-Beta: realtime=v1` (docs/protocols.md §1). What the agent does, in OpenAI Realtime's terms (the other
//! wires carry the same behaviour in their own messages):
//!
//! * session: `session.created` in the captured GA shape (pcm 24 kHz both ways, server_vad 0.5/300 and the
//!   profile's silence window — 500 ms unless `sim_options.vad_silence_ms` or the target's `turn_detection` says
//!   otherwise); `session.update` → `session.updated`, or the real `error` and the old config (see [`session`]).
//! * input: PCM16 24 kHz or μ-law 8 kHz; a streaming energy VAD in audio time ([`vad`]: threshold 0.5 ↦ −40 dBFS,
//!   `gate = −60 + 40·threshold`).
//! * the script: turn *k* is the *k*-th utterance the VAD hears. A turn ends at the first silence window after at
//!   least (its annotated voiced span − 150 ms) of audio since its onset, so pauses inside it do not end it — unless
//!   `takeover_rate` fires (a premature take-over). `expect = "ignore"` turns are not acted on (unless
//!   `false_stop_rate` fires). Speech while a response is active or its audio is still playing (as the sim
//!   estimates: real time from the first delta) is a barge-in: `speech_started` after `interrupt_delay_ms`, and the
//!   response is cancelled (`turn_detected`).
//! * replies: tool-call turns get a function-call response (`tool_delay_ms`, ≥ `tool_arg_deltas` argument deltas
//!   of `sim_args`, optionally one wrong argument), then — after the client's `function_call_output` and
//!   `response.create` — the spoken reply. The spoken reply's first audio delta goes out `reply_delay_ms` after the
//!   end-of-speech instant (or after the client's `response.create`), prefixed by `leading_silence_ms` of silence,
//!   in `chunk_ms` deltas, `realtime_factor`× faster than real time, with transcript deltas. A response's
//!   `response.created` goes out at once; the delay sits before its first audio delta.
//! * the session only calls tools the session declared (`session.tools`, `tool_choice` not `none`), like a real
//!   model: a client whose `session.update` was rejected gets spoken replies and no tool calls.
//!
//! Profiles and their numbers: [`profile`]. Not simulated: `audio/pcma`, text-only output modality (audio is always
//! sent), `idle_timeout_ms` (accepted and echoed), transcription sessions, WebRTC-only events.

pub mod azure;
mod brain;
pub mod elevenlabs;
mod fault;
pub mod gemini;
mod openai;
mod pipeline;
mod profile;
mod replies;
#[cfg(test)]
mod tests;
pub mod twilio;
mod wire;
pub mod ws_pcm;
use crate::audio::stream_vad as vad;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use fault::protocols_playing;
pub use profile::{Profile, ProfileKind};
pub use vad::gate_for_threshold;

use crate::scenario::{Protocol, Scenario, Target};

/// Why a sim could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The target has no `sim`.
    #[error("target `{target}` is not simulated: it has no `sim = \"native\"` or `sim = \"fixed\"`")]
    NotSimulated {
        /// Target name.
        target: String,
    },
    /// `sim = "pipeline"` on a target that is not `protocol = "pipeline"`.
    #[error(
        "target `{target}`: `sim = \"pipeline\"` simulates STT → LLM → TTS services and needs `protocol = \"pipeline\"`; \
         a native protocol takes `sim = \"native\"` or `sim = \"fixed\"`"
    )]
    PipelineNotYet {
        /// Target name.
        target: String,
    },
    /// An unknown profile name.
    #[error("target `{target}`: unknown sim profile `{profile}`; use `native` or `fixed`")]
    UnknownProfile {
        /// Target name.
        target: String,
        /// What it said.
        profile: String,
    },
    /// A protocol the embedded sim does not speak.
    #[error("target `{target}`: the embedded simulator speaks `openai-realtime`, not `{protocol}`")]
    Protocol {
        /// Target name.
        target: String,
        /// Its protocol.
        protocol: &'static str,
    },
    /// A `sim_options` value out of range.
    #[error("target `{target}`: sim_options.{field} = {value} is out of range: {why}")]
    BadOption {
        /// Target name.
        target: String,
        /// The option.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The rule.
        why: &'static str,
    },
    /// A reply WAV could not be loaded.
    #[error("loading the simulated agent's replies: {0}")]
    Audio(#[from] crate::audio::AudioError),
    /// The listening socket could not be opened.
    #[error("opening the simulator's socket on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    /// Writing ground truth failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Ctrl-C handling failed.
    #[error("waiting for Ctrl-C: {0}")]
    Signal(std::io::Error),
    /// A `sim_options.fault` the target's sim cannot play.
    #[error("target `{target}`: sim_options.fault = \"{fault}\" does not apply to a `{protocol}` sim: {why}")]
    Fault {
        /// Target name.
        target: String,
        /// The fault.
        fault: String,
        /// The target's protocol.
        protocol: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// A `ws-pcm` rate the sim does not speak.
    #[error("target `{target}`: the simulated ws-pcm server speaks sample_rate 16000 or 24000, not {rate}")]
    SampleRate {
        /// Target name.
        target: String,
        /// The rate asked for.
        rate: u32,
    },
}

/// What a ground-truth entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroundTruthKind {
    /// A spoken (or, for a turn without a reply, empty) response at the end of a turn or after a tool result.
    Reply,
    /// A response carrying function calls.
    ToolCall,
    /// A barge-in: `speech_started` sent while a response was active or playing.
    Interrupt,
    /// A premature reply during a pause inside the caller's utterance.
    Takeover,
    /// Pipeline sim: a `/v1/audio/transcriptions` request.
    Stt,
    /// Pipeline sim: a final result of the Deepgram-style live STT (end of speech, or an answer to `Finalize`).
    SttLive,
    /// Pipeline sim: a `/v1/chat/completions` request (its `tool_calls` say whether it called tools).
    Llm,
    /// Pipeline sim: a speech request (`/v1/audio/speech` or the ElevenLabs stream).
    Tts,
}

/// One function call the sim made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolCallTruth {
    /// `call_…`.
    pub call_id: String,
    /// Function name.
    pub name: String,
    /// The argument JSON text sent.
    pub arguments: String,
    /// The argument the sim deliberately got wrong (`tool_arg_error_rate`), if any.
    pub wrong_arg: Option<String>,
    /// Number of argument deltas.
    pub deltas: usize,
    /// First argument delta sent.
    #[serde(skip)]
    pub first_delta_at: Option<Instant>,
    /// First argument delta sent, ms since sim start.
    pub first_delta_ms: Option<f64>,
    /// `…arguments.done` sent.
    #[serde(skip)]
    pub done_at: Option<Instant>,
    /// `…arguments.done` sent, ms since sim start.
    pub done_ms: Option<f64>,
}

/// Everything the sim did for one response or interruption, to check measurements against. Instants are on the
/// process's tokio clock (the same clock as an in-process client); each `*_ms` is the same instant in ms since the
/// sim started ([`SimHandle::started_at`]), for serialisation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroundTruth {
    /// The session (`sess_…`).
    pub session_id: String,
    /// Connection number within this sim (0-based, accept order).
    pub connection: u64,
    /// Scenario turn index (turns past the script keep counting).
    pub turn: usize,
    /// What this entry is.
    pub kind: GroundTruthKind,
    /// The response (`resp_…`), for reply / tool_call / takeover.
    pub response_id: Option<String>,
    /// The assistant audio item, when the response spoke.
    pub item_id: Option<String>,
    /// The reply audio (corpus id), when the response spoke.
    pub reply: Option<String>,
    /// `completed` or `cancelled` once the response is done.
    pub status: Option<String>,
    /// `turn_detected` / `client_cancelled` for cancelled responses.
    pub status_reason: Option<String>,
    /// The VAD's onset of the turn: first voiced sample, audio ms since session start.
    pub onset_audio_ms: Option<f64>,
    /// The VAD's onset detection instant (the frame that confirmed it arrived).
    #[serde(skip)]
    pub onset_at: Option<Instant>,
    /// Onset detection, ms since sim start.
    pub onset_ms: Option<f64>,
    /// End of the turn's last voiced sample, audio ms since session start.
    pub eos_audio_ms: Option<f64>,
    /// End of speech detected: when `speech_stopped` was sent.
    #[serde(skip)]
    pub eos_at: Option<Instant>,
    /// End of speech detected, ms since sim start.
    pub eos_ms: Option<f64>,
    /// The client's `response.create` that started this response, when it was one.
    #[serde(skip)]
    pub response_create_at: Option<Instant>,
    /// Its receipt, ms since sim start.
    pub response_create_ms: Option<f64>,
    /// Drawn reply delay, ms (from `eos_at`, or from `response_create_at` when set).
    pub reply_delay_ms: Option<f64>,
    /// Drawn leading silence, ms (exact: the reply's first audible sample follows this much silence).
    pub leading_silence_ms: Option<f64>,
    /// Drawn tool delay, ms.
    pub tool_delay_ms: Option<f64>,
    /// Drawn interrupt delay, ms.
    pub interrupt_delay_ms: Option<f64>,
    /// First audio delta sent.
    #[serde(skip)]
    pub first_audio_at: Option<Instant>,
    /// First audio delta sent, ms since sim start.
    pub first_audio_ms: Option<f64>,
    /// Last audio delta sent.
    #[serde(skip)]
    pub last_audio_at: Option<Instant>,
    /// Last audio delta sent, ms since sim start.
    pub last_audio_ms: Option<f64>,
    /// Audio sent, ms (leading silence included).
    pub audio_sent_ms: f64,
    /// Audio the response would have sent uncut, ms (leading silence included).
    pub audio_planned_ms: f64,
    /// Interrupts: when `speech_started` was sent.
    #[serde(skip)]
    pub speech_started_at: Option<Instant>,
    /// `speech_started` sent, ms since sim start.
    pub speech_started_ms: Option<f64>,
    /// Interrupts: the response cancelled by it, if one was active.
    pub interrupted_response: Option<String>,
    /// Interrupts: a backchannel (`expect = "ignore"`) treated as a barge-in.
    pub false_stop: bool,
    /// The reply's transcript says the wrong numbers (`misspeak_rate`): its audio is the recording, unchanged.
    pub misspoke: bool,
    /// `response.done` sent (for interrupts: the cancelling `response.done`).
    #[serde(skip)]
    pub response_done_at: Option<Instant>,
    /// `response.done` sent, ms since sim start.
    pub response_done_ms: Option<f64>,
    /// Function calls of a tool_call response.
    pub tool_calls: Vec<ToolCallTruth>,
    /// Pipeline sim: the request's last byte arrived (live STT: end of speech detected).
    #[serde(skip)]
    pub request_at: Option<Instant>,
    /// The same, ms since sim start.
    pub request_ms: Option<f64>,
    /// Pipeline sim: the first byte of the answer (transcript, first token or tool-call chunk, first audio) went out.
    #[serde(skip)]
    pub first_byte_at: Option<Instant>,
    /// The same, ms since sim start.
    pub first_byte_ms: Option<f64>,
    /// Pipeline sim: the transcript returned, the reply text streamed, or the text synthesised.
    pub text: Option<String>,
}

impl GroundTruth {
    fn new(session_id: &str, connection: u64, turn: usize, kind: GroundTruthKind) -> Self {
        Self {
            session_id: session_id.to_string(),
            connection,
            turn,
            kind,
            response_id: None,
            item_id: None,
            reply: None,
            status: None,
            status_reason: None,
            onset_audio_ms: None,
            onset_at: None,
            onset_ms: None,
            eos_audio_ms: None,
            eos_at: None,
            eos_ms: None,
            response_create_at: None,
            response_create_ms: None,
            reply_delay_ms: None,
            leading_silence_ms: None,
            tool_delay_ms: None,
            interrupt_delay_ms: None,
            first_audio_at: None,
            first_audio_ms: None,
            last_audio_at: None,
            last_audio_ms: None,
            audio_sent_ms: 0.0,
            audio_planned_ms: 0.0,
            speech_started_at: None,
            speech_started_ms: None,
            interrupted_response: None,
            false_stop: false,
            misspoke: false,
            response_done_at: None,
            response_done_ms: None,
            tool_calls: Vec::new(),
            request_at: None,
            request_ms: None,
            first_byte_at: None,
            first_byte_ms: None,
            text: None,
        }
    }
}

/// State shared by the server and its connections.
pub(crate) struct Shared {
    started: Instant,
    log: Mutex<Vec<GroundTruth>>,
    /// Turns in the scenario (entries past the script count on from here).
    turns: usize,
}

impl Shared {
    /// ms since the sim started.
    pub(crate) fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1000.0
    }

    /// Appends an entry; returns its index.
    pub(crate) fn push(&self, g: GroundTruth) -> usize {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push(g);
        log.len() - 1
    }

    /// Updates entry `i`.
    pub(crate) fn update(&self, i: usize, f: impl FnOnce(&mut GroundTruth)) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = log.get_mut(i) {
            f(g);
        }
    }
}

/// A running sim: its address, its ground truth, and the way to stop it.
pub struct SimHandle {
    addr: SocketAddr,
    url: String,
    target: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// A pipeline sim's raw fault responder: the stage it plays and its address.
    fault_stage: Option<(&'static str, SocketAddr)>,
}

impl SimHandle {
    /// The listening address (127.0.0.1 and an ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/v1/realtime` (the client appends `?model=…`).
    pub fn realtime_url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// The URL a client of the target's protocol connects to (for OpenAI Realtime, [`Self::realtime_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The target as the runner calls it: its URLs pointed at this sim, so the adapter cannot tell it from a real
    /// provider (only the `sim` field, kept for labelling, says otherwise).
    pub fn point(&self, target: &Target) -> Target {
        let mut t = target.clone();
        t.url = Some(toml::Spanned::new(0..0, self.url.clone()));
        // An Azure-mode sim checks the key, so the client sends it.
        // So does a key-echoing fault: the key it echoes is the one the client presents.
        let azure = azure::AzureGate::of(target).is_some();
        if !azure && !fault::echoes_key(fault::named(target)) {
            t.api_key_env = None;
        }
        if *t.protocol.get_ref() == Protocol::Pipeline {
            t.url = None;
            pipeline::point(&mut t, &self.url, self.addr, azure, self.fault_stage);
        }
        t
    }

    /// The target this sim serves.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The instant every `*_ms` of the ground truth counts from.
    pub fn started_at(&self) -> Instant {
        self.shared.started
    }

    /// Everything the sim did that a measurement can be checked against: a clone of the log so far.
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes the ground truth so far as JSON lines (one entry per line, sessions in log order), the texts and tool
    /// arguments in it masked by `redactor` like every other artefact of a run.
    pub fn write_ground_truth(&self, path: &Path, redactor: &crate::redact::Redactor) -> Result<(), SimError> {
        let io = |source| SimError::Io { path: path.to_owned(), source };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        for mut g in self.ground_truth() {
            if !redactor.is_off() {
                g.text = g.text.map(|t| redactor.text(&t));
                for c in &mut g.tool_calls {
                    c.arguments = match serde_json::from_str::<serde_json::Value>(&c.arguments) {
                        Ok(v) => redactor.json(&v).to_string(),
                        Err(_) => redactor.text(&c.arguments),
                    };
                }
            }
            let line = serde_json::to_string(&g).map_err(|e| io(std::io::Error::other(e)))?;
            // What the sim logged came partly from the client (a key-echoing fault makes a session id of its key):
            // through the run's scrubber like every other artefact.
            writeln!(out, "{}", crate::secret::scrub(&line)).map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// Stops accepting, closes every session (close code 1001) and waits for them to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The target's name and the agent profile its `sim` and `sim_options` ask for (the OpenAI sim's brain, behind
/// any native wire).
fn agent_profile(target: &Target) -> Result<(String, Profile), SimError> {
    let name = target.name.get_ref().clone();
    let kind = match target.sim.as_ref().map(|s| s.get_ref().as_str()) {
        None => return Err(SimError::NotSimulated { target: name }),
        Some("native") => ProfileKind::Native,
        Some("fixed") => ProfileKind::Fixed,
        Some("pipeline") => return Err(SimError::PipelineNotYet { target: name }),
        Some(other) => return Err(SimError::UnknownProfile { target: name, profile: other.to_string() }),
    };
    let profile = Profile::resolve(kind, target.sim_options.as_ref().map(|o| o.get_ref()))
        .map_err(|b| SimError::BadOption { target: name.clone(), field: b.field, value: b.value, why: b.why })?;
    Ok((name, profile))
}

/// Starts the OpenAI Realtime sim for one target of a scenario.
pub async fn start_realtime(scenario: &Scenario, target: &Target, seed: u64) -> Result<SimHandle, SimError> {
    agent_profile(target)?;
    let protocol = *target.protocol.get_ref();
    if protocol != Protocol::OpenaiRealtime {
        let name = target.name.get_ref().clone();
        return Err(SimError::Protocol { target: name, protocol: protocol.as_str() });
    }
    start_wire(scenario, target, seed).await
}

/// Starts the sim of a simulated target, whatever its protocol.
pub async fn start(scenario: &Scenario, target: &Target, seed: u64) -> Result<SimHandle, SimError> {
    start_on(scenario, target, seed, 0).await
}

/// How many connections may wait to be accepted. std and mio listen with 128: a thousand callers dialling at once
/// overflowed that queue and the kernel dropped ~430 of their SYNs, which the clients resent a second later (a
/// 1,000-call bench measured connect p90 1,056 ms, all of it the sim's). The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// The runtime the embedded sims run on when the command gave them one of their own ([`use_runtime`]).
static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

/// Runs every sim started from now on on `handle`'s runtime instead of the caller's: `voicebench run` and `bench`
/// keep the sims' work off the harness's (real-time) threads, as a provider's is on its own machine. Set once per
/// process; later calls are ignored. Without it (the tests) a sim runs on the runtime that starts it.
pub fn use_runtime(handle: tokio::runtime::Handle) {
    let _ = RUNTIME.set(handle);
}

/// Spawns a sim's server task on the sims' runtime ([`use_runtime`]), or on the current one.
pub(crate) fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match RUNTIME.get() {
        Some(h) => h.spawn(f),
        None => tokio::spawn(f),
    }
}

/// A loopback listener on `port` (0 for any free one) with room for a thousand callers dialling at once. Registered
/// with the sims' runtime ([`use_runtime`]) when there is one, so its connections are served there.
pub(crate) fn listen(port: u16) -> std::io::Result<TcpListener> {
    let _runtime = RUNTIME.get().map(tokio::runtime::Handle::enter);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(BACKLOG)
}

/// [`start`] listening on 127.0.0.1:`port` (0: an ephemeral port; the pipeline sim always takes one).
pub async fn start_on(scenario: &Scenario, target: &Target, seed: u64, port: u16) -> Result<SimHandle, SimError> {
    if *target.protocol.get_ref() == Protocol::Pipeline {
        let name = target.name.get_ref().clone();
        return match target.sim.as_ref().map(|s| s.get_ref().as_str()) {
            None => Err(SimError::NotSimulated { target: name }),
            Some("pipeline") => pipeline::start(scenario, target, false, seed).await,
            Some("fixed") => pipeline::start(scenario, target, true, seed).await,
            Some(other) => Err(SimError::UnknownProfile { target: name, profile: other.to_string() }),
        };
    }
    start_wire_on(scenario, target, seed, port).await
}

/// The name of the simulated transcriber's target (its ground truth is `ground_truth.transcriber.jsonl`).
pub const TRANSCRIBER: &str = "transcriber";

/// Starts a simulated OpenAI-compatible speech-to-text service for `transcribe = { sim = true }`: the pipeline sim's
/// `/v1/audio/transcriptions` (fixed profile, answering 50 ms after the request), recognising the scenario's caller
/// lines and its agent's reply lines; audio that covers part of a line gets that share of its words.
pub async fn start_transcriber(scenario: &Scenario, seed: u64) -> Result<SimHandle, SimError> {
    let target: Target = toml::from_str(&format!(
        "name = \"{TRANSCRIBER}\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\nsim_options = {{ stt_delay_ms = 50 }}\n"
    ))
    .expect("the transcriber's target parses");
    pipeline::start_as(scenario, &target, true, seed, true).await
}

/// A fake API key in the simulated Gemini URL, so that tests can check it never reaches any output.
pub const SIM_GEMINI_KEY: &str = "SIMKEY-voicebench-not-a-secret-0123456789";

/// Starts the sim of a speech-to-speech target (OpenAI Realtime, Gemini Live, ElevenLabs, Twilio, ws-pcm): the
/// agent brain ([`brain`]) behind that protocol's wire, served by the one session loop ([`wire`]).
pub async fn start_wire(scenario: &Scenario, target: &Target, seed: u64) -> Result<SimHandle, SimError> {
    start_wire_on(scenario, target, seed, 0).await
}

/// [`start_wire`] listening on 127.0.0.1:`port` (0: an ephemeral port).
pub async fn start_wire_on(scenario: &Scenario, target: &Target, seed: u64, port: u16) -> Result<SimHandle, SimError> {
    use crate::scenario::schema::AudioFormat;
    let (name, profile) = agent_profile(target)?;
    let openai = openai::OpenAiAccept::new(target, &profile);
    let initial_turns = openai.initial_turns();
    let accept: Arc<dyn wire::Accept> = match target.protocol.get_ref() {
        Protocol::OpenaiRealtime => Arc::new(openai),
        Protocol::GeminiLive => Arc::new(gemini::accept()),
        Protocol::Elevenlabs => Arc::new(elevenlabs::accept(
            target.audio_format.as_ref().is_some_and(|f| *f.get_ref() == AudioFormat::G711Ulaw),
        )),
        Protocol::Twilio => Arc::new(twilio::accept()),
        Protocol::WsPcm => {
            let rate = target.sample_rate.as_ref().map_or(16_000, |r| *r.get_ref());
            let format = match rate {
                16_000 => replies::WireFormat::Pcm16,
                24_000 => replies::WireFormat::Pcm24,
                _ => return Err(SimError::SampleRate { target: name, rate }),
            };
            Arc::new(ws_pcm::accept(format))
        }
        p => return Err(SimError::Protocol { target: name, protocol: p.as_str() }),
    };
    let fault = fault::of(target)?;
    let ctx = brain::Ctx::new(scenario, profile, seed, initial_turns, fault)?;
    let listener = listen(port).map_err(SimError::Bind)?;
    let addr = listener.local_addr().map_err(SimError::Bind)?;
    let url = match target.protocol.get_ref() {
        Protocol::OpenaiRealtime if azure::AzureGate::of(target).is_some() => {
            let deployment = target.model.as_deref().unwrap_or("gpt-realtime");
            format!("ws://{addr}/openai/realtime?api-version={}&deployment={deployment}", azure::API_VERSION)
        }
        Protocol::OpenaiRealtime => format!("ws://{addr}{}", openai::PATH),
        // A key-echoing fault echoes the client's own key (from `api_key_env`), which Gemini's client puts in the URL.
        Protocol::GeminiLive if fault::echoes_key(fault) && target.api_key_env.is_some() => {
            format!("ws://{addr}{}", gemini::PATH)
        }
        Protocol::GeminiLive => format!("ws://{addr}{}?key={SIM_GEMINI_KEY}", gemini::PATH),
        Protocol::Elevenlabs => format!("ws://{addr}{}?agent_id=sim-agent", elevenlabs::PATH),
        Protocol::Twilio => format!("ws://{addr}{}", twilio::PATH),
        _ => format!("ws://{addr}{}", ws_pcm::PATH),
    };
    let shared = Arc::new(Shared { started: Instant::now(), log: Mutex::new(Vec::new()), turns: scenario.turns.len() });
    let (stop, stop_rx) = watch::channel(false);
    let task = spawn(wire::serve(listener, Arc::new(ctx), shared.clone(), accept, stop_rx));
    Ok(SimHandle { addr, url, target: name, shared, stop, task, fault_stage: None })
}

/// Starts a sim for every simulated OpenAI Realtime target of the scenario. Targets the embedded sim cannot serve
/// (`sim = "pipeline"`, other protocols, real targets) are returned with the reason, for the CLI to report.
pub async fn start_all(scenario: &Scenario, seed: u64) -> Result<(Vec<SimHandle>, Vec<(String, String)>), SimError> {
    start_all_on(scenario, seed, 0).await
}

/// [`start_all`] with the sims on 127.0.0.1 ports `port`, `port + 1`, … in target order (0: ephemeral ports).
pub async fn start_all_on(
    scenario: &Scenario,
    seed: u64,
    port: u16,
) -> Result<(Vec<SimHandle>, Vec<(String, String)>), SimError> {
    let mut sims = Vec::new();
    let mut skipped = Vec::new();
    for t in &scenario.targets {
        let p = if port == 0 { 0 } else { port.saturating_add(sims.len() as u16) };
        match start_on(scenario, t, seed, p).await {
            Ok(h) => sims.push(h),
            Err(
                e @ (SimError::NotSimulated { .. }
                | SimError::PipelineNotYet { .. }
                | SimError::Protocol { .. }
                | SimError::SampleRate { .. }),
            ) => skipped.push((t.name.get_ref().clone(), e.to_string())),
            Err(e) => {
                for h in sims {
                    h.shutdown().await;
                }
                return Err(e);
            }
        }
    }
    Ok((sims, skipped))
}

/// Waits for Ctrl-C.
pub async fn wait_for_ctrl_c() -> Result<(), SimError> {
    tokio::signal::ctrl_c().await.map_err(SimError::Signal)
}

/// `voicebench sim`: runs every simulated target of the scenario standalone until Ctrl-C. `ready` gets
/// `(target, url)` pairs and the skipped targets with their reasons once the servers listen (the CLI prints them).
/// On Ctrl-C the sessions are closed and, when `ground_truth` is given, the log is written there as JSON lines
/// (one file per target: `<stem>.<target>.jsonl` when there are several targets).
pub async fn serve_forever(
    scenario: &Scenario,
    seed: u64,
    port: u16,
    ground_truth: Option<&Path>,
    ready: impl FnOnce(&[(String, String)], &[(String, String)]),
) -> Result<(), SimError> {
    let (sims, skipped) = start_all_on(scenario, seed, port).await?;
    let urls: Vec<(String, String)> = sims.iter().map(|s| (s.target().to_string(), s.url().to_string())).collect();
    ready(&urls, &skipped);
    let waited = wait_for_ctrl_c().await;
    let mut result = waited;
    let many = sims.len() > 1;
    for s in sims {
        if let Some(p) = ground_truth {
            let path = if many {
                let stem = p.file_stem().and_then(|x| x.to_str()).unwrap_or("ground_truth");
                p.with_file_name(format!("{stem}.{}.jsonl", s.target()))
            } else {
                p.to_owned()
            };
            if let Err(e) = s.write_ground_truth(&path, &crate::redact::Redactor::default())
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        s.shutdown().await;
    }
    result
}
