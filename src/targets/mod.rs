//! Target adapters: each turns one wire protocol into the caller's normalized [`AgentEvent`]s and back.
//!
//! The caller (src/caller) knows nothing of protocols. An adapter connects, configures the session from the
//! scenario (instructions, tools, audio format, turn detection), then:
//! - takes the caller's audio frames ([`Session::send_audio`]), tool results ([`Session::send_tool_result`]) and
//!   truncation requests ([`Session::truncate`]);
//! - reads the socket in its own task, stamps every frame with [`tokio::time::Instant::now`] **before** decoding it,
//!   and delivers [`AgentEvent`]s in arrival order on a channel.
//!
//! Adding a protocol is adding one file here, plus one arm in each of [`AnySession`], [`input_rate`],
//! [`encode_frame`] and [`connect`] (the runner dispatches through them and knows no protocol); the compiler
//! lists every match that needs the new arm.

pub mod elevenlabs;
pub mod gemini_live;
pub mod openai_realtime;
pub mod pipeline;
pub mod playout;
pub mod secret;
pub mod twilio;
pub mod ws;
pub mod ws_pcm;

use std::sync::Arc;

pub use crate::model::{AgentEvent, ErrorCategory, ResponseStatus, Stage};
use crate::scenario::{Protocol, Scenario, Target};
use tokio::sync::mpsc;

/// One frame of caller audio, encoded once for the wire (all calls of a target share the encoding).
#[derive(Debug, Clone)]
pub struct Frame {
    /// The samples, at the session's input rate.
    pub samples: Arc<[i16]>,
    /// The message that carries them, ready to send (cloning it is a reference-count bump).
    pub wire: tokio_tungstenite::tungstenite::Message,
}

/// A failure to set up or use a session.
#[derive(Debug, thiserror::Error)]
#[error("{category:?}: {message}")]
pub struct SessionError {
    /// Category.
    pub category: ErrorCategory,
    /// What happened (never contains a key).
    pub message: String,
}

impl SessionError {
    /// A new error.
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self { category, message: message.into() }
    }
}

/// An established session with a target: the caller's side of an adapter.
#[allow(async_fn_in_trait)]
pub trait Session {
    /// Sample rate of the audio the caller must send.
    fn input_rate(&self) -> u32;
    /// Sample rate of the agent audio in [`AgentEvent::Audio`].
    fn output_rate(&self) -> u32;
    /// The provider's session id, if it gives one (used to join the sim's ground truth).
    fn session_id(&self) -> Option<&str>;
    /// Sends one frame of caller audio, pre-encoded by the adapter's `encode_frame`.
    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError>;
    /// Answers a tool call; the adapter asks for the follow-up response once the current one is done.
    async fn send_tool_result(&mut self, call_id: &str, output: &str) -> Result<(), SessionError>;
    /// Tells the provider how much of audio item `item` the caller actually heard, after a flush.
    async fn truncate(&mut self, item: u32, played_ms: u32) -> Result<(), SessionError>;
    /// The event channel.
    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent>;
    /// Closes the session.
    async fn close(&mut self);
}

/// An established session of any protocol. [`Session`] has async methods (not object-safe), so the runner holds
/// this enum and each method forwards to the protocol's adapter.
pub enum AnySession {
    /// OpenAI Realtime (GA or beta).
    OpenAi(openai_realtime::OpenAiRealtime),
    /// STT → LLM → TTS orchestrated by voicebench.
    Pipeline(Box<pipeline::Pipeline>),
    /// Gemini Live.
    Gemini(gemini_live::GeminiLive),
    /// ElevenLabs Agents.
    ElevenLabs(elevenlabs::ElevenLabs),
    /// Twilio Media Streams (voicebench as Twilio).
    Twilio(twilio::Twilio),
    /// Generic PCM over WebSocket.
    WsPcm(ws_pcm::WsPcm),
}

/// Forwards an expression to the adapter inside an [`AnySession`].
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnySession::OpenAi($s) => $e,
            AnySession::Pipeline($s) => $e,
            AnySession::Gemini($s) => $e,
            AnySession::ElevenLabs($s) => $e,
            AnySession::Twilio($s) => $e,
            AnySession::WsPcm($s) => $e,
        }
    };
}

impl Session for AnySession {
    fn input_rate(&self) -> u32 {
        each!(self, s => s.input_rate())
    }

    fn output_rate(&self) -> u32 {
        each!(self, s => s.output_rate())
    }

    fn session_id(&self) -> Option<&str> {
        each!(self, s => s.session_id())
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        each!(self, s => s.send_frame(frame).await)
    }

    async fn send_tool_result(&mut self, call_id: &str, output: &str) -> Result<(), SessionError> {
        each!(self, s => s.send_tool_result(call_id, output).await)
    }

    async fn truncate(&mut self, item: u32, played_ms: u32) -> Result<(), SessionError> {
        each!(self, s => s.truncate(item, played_ms).await)
    }

    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent> {
        each!(self, s => s.events())
    }

    async fn close(&mut self) {
        each!(self, s => s.close().await)
    }
}

/// Whether the protocol shows the agent's tool calls to the caller. Twilio Media Streams and ws-pcm carry audio
/// only: an agent behind them calls its tools out of sight, so their tool expectations are not scored.
pub fn shows_tool_calls(target: &Target) -> bool {
    !matches!(target.protocol.get_ref(), Protocol::Twilio | Protocol::WsPcm)
}

/// The sample rate the caller's audio must have for this target.
pub fn input_rate(target: &Target) -> u32 {
    match target.protocol.get_ref() {
        Protocol::OpenaiRealtime => openai_realtime::wire_rate(openai_realtime::format_of(target)),
        Protocol::Pipeline => pipeline::INPUT_RATE,
        Protocol::GeminiLive => gemini_live::INPUT_RATE,
        Protocol::Elevenlabs => elevenlabs::input_format(target).rate(),
        Protocol::Twilio => twilio::RATE,
        Protocol::WsPcm => ws_pcm::rate(target),
    }
}

/// Encodes one frame of caller audio (at [`input_rate`]) for the target's wire.
pub fn encode_frame(target: &Target, samples: &[i16]) -> Frame {
    match target.protocol.get_ref() {
        Protocol::OpenaiRealtime => openai_realtime::encode_frame(openai_realtime::format_of(target), samples),
        Protocol::Pipeline => pipeline::encode_frame(samples),
        Protocol::GeminiLive => gemini_live::encode_frame(samples),
        Protocol::Elevenlabs => elevenlabs::encode_frame(elevenlabs::input_format(target), samples),
        Protocol::Twilio => twilio::encode_frame(samples),
        Protocol::WsPcm => ws_pcm::encode_frame(samples),
    }
}

/// Connects to a target at its `url` (for a simulated target, the runner has already pointed the URLs at the
/// embedded sim) and configures the session. Bounded by the scenario's `connect_timeout_ms`.
pub async fn connect(scenario: &Scenario, target: &Target) -> Result<AnySession, SessionError> {
    let url = target.url.as_ref().map(|u| u.get_ref().as_str()).unwrap_or_default();
    match target.protocol.get_ref() {
        Protocol::OpenaiRealtime => {
            openai_realtime::OpenAiRealtime::connect(scenario, target, url).await.map(AnySession::OpenAi)
        }
        Protocol::Pipeline => {
            pipeline::Pipeline::connect(scenario, target).await.map(|p| AnySession::Pipeline(Box::new(p)))
        }
        Protocol::GeminiLive => gemini_live::GeminiLive::connect(scenario, target).await.map(AnySession::Gemini),
        Protocol::Elevenlabs => elevenlabs::ElevenLabs::connect(scenario, target).await.map(AnySession::ElevenLabs),
        Protocol::Twilio => twilio::Twilio::connect(scenario, target).await.map(AnySession::Twilio),
        Protocol::WsPcm => ws_pcm::WsPcm::connect(scenario, target).await.map(AnySession::WsPcm),
    }
}
