//! The scenario file format, v1, exactly as a user writes it (TOML). docs/scenario.md documents every key.
//!
//! Every table rejects unknown keys. Values whose problems are found after parsing (a WAV that does not exist, a
//! tool a turn names, a regex) are kept [`Spanned`] so the error can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Short name; used in report directory names.
    pub name: Spanned<String>,
    /// What the scenario tests, for reports.
    #[serde(default)]
    pub description: Option<String>,
    /// The audio corpus directory (holding manifest.json), relative to this file. Default: the nearest
    /// `audio-corpus/` in this file's directory or one of its parents.
    #[serde(default)]
    pub corpus: Option<Spanned<String>>,
    /// Run-wide defaults.
    #[serde(default)]
    pub defaults: Defaults,
    /// The systems under test.
    #[serde(default, rename = "target")]
    pub targets: Vec<Spanned<Target>>,
    /// The agent every target is asked to be: instructions and tools.
    #[serde(default)]
    pub agent: Agent,
    /// The caller's script, in order.
    #[serde(default, rename = "turn")]
    pub turns: Vec<Spanned<Turn>>,
    /// Service-level objectives for `voicebench gate`.
    #[serde(default)]
    pub slo: BTreeMap<Spanned<String>, Spanned<f64>>,
    /// What every call must leave in the tools' tables (task success).
    #[serde(default)]
    pub expect_state: Vec<Spanned<ExpectState>>,
    /// What to mask in every output: `"phone"`, `"name"`, `"email"`, `"dates"`, `{ regex = "…" }`. Default
    /// `["phone", "name"]`; `[]` masks nothing.
    #[serde(default)]
    pub redact: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    /// Transcribe what the caller heard of each reply with an OpenAI-compatible speech-to-text service.
    #[serde(default)]
    pub transcribe: Option<Spanned<Transcribe>>,
}

/// `transcribe = { url, model, api_key_env }` or `transcribe = { sim = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcribe {
    /// Base URL of an OpenAI-compatible API (`…/v1`): `POST {url}/audio/transcriptions`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Model (default `whisper-1`).
    #[serde(default)]
    pub model: Option<String>,
    /// The environment variable holding its key (sent as `Authorization: Bearer`).
    #[serde(default)]
    pub api_key_env: Option<Spanned<String>>,
    /// Use voicebench's own simulated transcriber (it knows the scenario's lines).
    #[serde(default)]
    pub sim: Option<bool>,
}

/// `[[expect_state]]`: rows a tool's table must hold at the end of every call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectState {
    /// The table: a tool's `records`.
    pub table: Spanned<String>,
    /// Column matchers (the tool's argument names), as for tool calls.
    #[serde(default, rename = "where")]
    pub matches: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// How many rows must match (default 1).
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
}

/// `[defaults]`: how many calls, how fast, and timing limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Calls per target.
    pub calls: Spanned<u32>,
    /// Calls in flight at once (closed loop), per run.
    pub concurrency: Spanned<u32>,
    /// Duration of one outgoing audio frame, ms.
    pub frame_ms: Spanned<u32>,
    /// A turn with no complete reply after this long is a timeout failure, ms.
    pub turn_timeout_ms: Spanned<u32>,
    /// Connection and session set-up limit, ms (never part of TTFA).
    pub connect_timeout_ms: Spanned<u32>,
    /// HTTP stage request sent → response head limit, ms (pipeline targets).
    pub first_byte_timeout_ms: Spanned<u32>,
    /// Longest pause between two body chunks of an HTTP stage response, ms (pipeline targets).
    pub idle_timeout_ms: Spanned<u32>,
    /// Seed for every random choice (call phases, sim latencies).
    pub seed: u64,
    /// Corpus voice for turns that name a corpus utterance without a voice.
    pub voice: Spanned<String>,
    /// Silence between the end of the agent's reply and the caller's next utterance, ms.
    pub gap_ms: Spanned<u32>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            calls: Spanned::new(0..0, 10),
            concurrency: Spanned::new(0..0, 1),
            frame_ms: Spanned::new(0..0, 20),
            turn_timeout_ms: Spanned::new(0..0, 15_000),
            connect_timeout_ms: Spanned::new(0..0, 10_000),
            first_byte_timeout_ms: Spanned::new(0..0, 15_000),
            idle_timeout_ms: Spanned::new(0..0, 10_000),
            seed: 1,
            voice: Spanned::new(0..0, "joe".into()),
            gap_ms: Spanned::new(0..0, 600),
        }
    }
}

/// The wire protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// OpenAI Realtime over WebSocket (GA; `dialect = "beta"` for local servers on the beta names).
    OpenaiRealtime,
    /// Google Gemini Live (BidiGenerateContent).
    GeminiLive,
    /// ElevenLabs Agents (Conversational AI) WebSocket.
    Elevenlabs,
    /// Twilio Media Streams: voicebench plays Twilio toward your agent server.
    Twilio,
    /// Generic PCM over WebSocket (binary audio frames, JSON control messages).
    WsPcm,
    /// STT → LLM → TTS orchestrated by voicebench.
    Pipeline,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 6] = [
        Protocol::OpenaiRealtime,
        Protocol::GeminiLive,
        Protocol::Elevenlabs,
        Protocol::Twilio,
        Protocol::WsPcm,
        Protocol::Pipeline,
    ];

    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenaiRealtime => "openai-realtime",
            Protocol::GeminiLive => "gemini-live",
            Protocol::Elevenlabs => "elevenlabs",
            Protocol::Twilio => "twilio",
            Protocol::WsPcm => "ws-pcm",
            Protocol::Pipeline => "pipeline",
        }
    }
}

/// OpenAI Realtime event-name dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The GA API (default).
    Ga,
    /// The legacy beta names, for local servers that still speak them.
    Beta,
}

/// Audio encoding on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    /// 16-bit little-endian PCM at the protocol's rate.
    Pcm16,
    /// G.711 μ-law, 8 kHz (telephony).
    G711Ulaw,
}

/// A system under test: a real endpoint or an embedded simulated one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique name; used in reports and `--target`.
    pub name: Spanned<String>,
    /// Wire protocol.
    pub protocol: Spanned<Protocol>,
    /// Embedded simulated provider profile (`native`, `fixed`, `pipeline`); excludes `url`.
    #[serde(default)]
    pub sim: Option<Spanned<String>>,
    /// Endpoint URL (`ws://` / `wss://`).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<Spanned<String>>,
    /// How the key is sent (OpenAI Realtime): `bearer` (`Authorization: Bearer KEY`, default) or `api-key`
    /// (Azure OpenAI's `api-key: KEY` header).
    #[serde(default)]
    pub auth: Option<Spanned<String>>,
    /// Model id, where the protocol takes one.
    #[serde(default)]
    pub model: Option<String>,
    /// Output voice, where the protocol takes one.
    #[serde(default)]
    pub voice: Option<String>,
    /// OpenAI Realtime only: `ga` (default) or `beta`.
    #[serde(default)]
    pub dialect: Option<Spanned<Dialect>>,
    /// Audio encoding: `pcm16` (default) or `g711_ulaw` (telephony).
    #[serde(default)]
    pub audio_format: Option<Spanned<AudioFormat>>,
    /// `ws-pcm` only: sample rate of the PCM both ways, Hz (default 16000).
    #[serde(default)]
    pub sample_rate: Option<Spanned<u32>>,
    /// OpenAI Realtime only: the provider's turn detection.
    #[serde(default)]
    pub turn_detection: Option<Spanned<TurnDetection>>,
    /// ElevenLabs only: the agent id.
    #[serde(default)]
    pub agent_id: Option<Spanned<String>>,
    /// Pipeline only: local endpointing before the STT.
    #[serde(default)]
    pub endpointing: Option<Spanned<Endpointing>>,
    /// Pipeline only: speech-to-text stage.
    #[serde(default)]
    pub stt: Option<Spanned<Stage>>,
    /// Pipeline only: language-model stage.
    #[serde(default)]
    pub llm: Option<Spanned<Stage>>,
    /// Pipeline only: text-to-speech stage.
    #[serde(default)]
    pub tts: Option<Spanned<Stage>>,
    /// Simulated targets only: timing and fault parameters overriding the profile's defaults.
    #[serde(default)]
    pub sim_options: Option<Spanned<SimOptions>>,
    /// The network between the caller and this target (docs/network.md): a preset name (`lan`, `wifi`, `4g`,
    /// `pstn`, `bad-cellular`, `none`) or a table (`{ preset = "4g", loss = 0.02 }`); `--network` overrides it.
    #[serde(default)]
    pub network: Option<Spanned<toml::Value>>,
    /// The caller on a phone line: its audio, and the agent's as it hears it, through 8 kHz G.711 μ-law.
    #[serde(default)]
    pub telephone: Option<bool>,
}

/// Parameters of an embedded simulated provider. Under `sim = "fixed"` each value is exact; under `native` or
/// `pipeline` a latency value sets the median of the profile's skewed distribution.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimOptions {
    /// The sim's end of speech (VAD) → first audio delta of the reply, ms.
    pub reply_delay_ms: Option<f64>,
    /// Silence at the start of each reply's audio, ms.
    pub leading_silence_ms: Option<f64>,
    /// server_vad silence that ends a turn, ms (a target's `turn_detection.silence_duration_ms` wins).
    pub vad_silence_ms: Option<f64>,
    /// The sim's detection of a barge-in → `speech_started` sent (and the response cancelled), ms.
    pub interrupt_delay_ms: Option<f64>,
    /// The sim's end of speech → first tool-call argument delta, ms.
    pub tool_delay_ms: Option<f64>,
    /// Argument deltas per tool call.
    pub tool_arg_deltas: Option<u32>,
    /// Probability that a tool call carries a wrong argument.
    pub tool_arg_error_rate: Option<f64>,
    /// Probability that the sim treats a backchannel as an interruption (a false stop).
    pub false_stop_rate: Option<f64>,
    /// Probability that the sim takes over during a pause inside an utterance.
    pub takeover_rate: Option<f64>,
    /// Probability that a reply's transcript says the wrong numbers ("six" for "eight"; the audio is unchanged).
    pub misspeak_rate: Option<f64>,
    /// How many times faster than real time reply audio is sent.
    pub realtime_factor: Option<f64>,
    /// Audio per delta, ms.
    pub chunk_ms: Option<f64>,
    /// Pipeline sim: the STT's answer after the request (live: after end of speech), ms.
    pub stt_delay_ms: Option<f64>,
    /// Pipeline sim: request → first token or tool-call chunk, ms.
    pub llm_ttft_ms: Option<f64>,
    /// Pipeline sim: between content tokens, ms.
    pub token_ms: Option<f64>,
    /// Pipeline sim: speech request → first audio byte, ms.
    pub tts_ttfb_ms: Option<f64>,
    /// OpenAI Realtime and pipeline sims: behave as Azure OpenAI's front door — serve Azure's paths, refuse a
    /// request without the `api-key` header (401; it must equal the key in the target's `api_key_env` variables
    /// when they are set) or without an `api-version` query parameter (404).
    pub azure: Option<bool>,
    /// A fault the sim injects on every connection (docs/sim.md, "Faults"); an unknown name is an error that lists
    /// the valid ones.
    pub fault: Option<SimFault>,
}

/// The embedded sim's fault catalogue (docs/sim.md): what a hostile or broken provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimFault {
    /// WebSocket: the upgrade completes, then the server never sends a byte (it reads and discards).
    StallAfterAccept,
    /// WebSocket: the upgrade completes, then the server neither reads nor sends.
    StallWithoutReading,
    /// WebSocket: TCP accepted, the upgrade request is never answered.
    NoHandshake,
    /// WebSocket: the `101` response trickled one byte every 500 ms.
    Slowloris,
    /// WebSocket: the upgrade refused with 401.
    #[serde(rename = "http-401")]
    Http401,
    /// WebSocket: the upgrade refused with 403.
    #[serde(rename = "http-403")]
    Http403,
    /// WebSocket: the upgrade refused with 429 and `Retry-After: 1`.
    #[serde(rename = "http-429")]
    Http429,
    /// WebSocket: the upgrade refused with 500.
    #[serde(rename = "http-500")]
    Http500,
    /// WebSocket: the upgrade answered with a 302 redirect.
    #[serde(rename = "http-302")]
    Http302,
    /// WebSocket: at the first reply audio, the TCP connection is reset.
    TcpResetMidReply,
    /// WebSocket: at the first reply audio, close 1011.
    #[serde(rename = "close-1011-mid-reply")]
    Close1011MidReply,
    /// WebSocket: a message that is not JSON before anything else.
    MalformedJsonAtSetup,
    /// WebSocket: a message that is not JSON right after the first reply audio.
    MalformedJsonMidReply,
    /// OpenAI Realtime: a rate-limit `error` event instead of the first reply.
    ErrorRateLimit,
    /// OpenAI Realtime: a server `error` event instead of the first reply.
    ErrorServer,
    /// WebSocket: one 64 MiB message after the first reply audio.
    OversizedMessage,
    /// Base64-carrying wires: the first reply audio chunk is not base64.
    InvalidBase64,
    /// The first reply audio chunk has an odd number of bytes.
    OddByteLength,
    /// The first reply carries 186 s of audio at once, then its end.
    AudioFlood,
    /// Pipeline LLM: a streamed tool-call delta with `index: 100000000`.
    ToolIndexBomb,
    /// Pipeline STT: a 200 whose body is 20 MB of HTML.
    #[serde(rename = "body-20mb")]
    Body20mb,
    /// Pipeline TTS: the audio gzip-compressed with `Content-Encoding: gzip`, unrequested.
    UnrequestedGzip,
    /// WebSocket: the first reply audio message sent as a first frame and continuation frames.
    FragmentedMessage,
    /// Pipeline LLM: a chunk-size line that is not hexadecimal in the chunked stream.
    BrokenChunked,
    /// Pipeline TTS: the connection closed in the middle of the audio body.
    BodyCut,
    /// Pipeline LLM: the SSE stream ends (cleanly, as HTTP) inside an event.
    SseCutMidEvent,
    /// Pipeline LLM: the SSE stream stops sending and keeps the connection open.
    SseStall,
    /// Pipeline STT: `Content-Length` larger than the body sent, then the connection closed.
    ContentLengthLong,
    /// Pipeline STT: `Content-Length` smaller than the body sent.
    ContentLengthShort,
    /// Pipeline STT: a response head that never ends (one header byte every 500 ms).
    HeadNeverEnds,
    /// The API key the client presented, echoed in a 401 body (WebSocket upgrade; pipeline STT).
    #[serde(rename = "key-echo-401")]
    KeyEcho401,
    /// Pipeline LLM: the key echoed in an SSE error chunk.
    KeyEchoSseError,
    /// OpenAI Realtime: the key echoed in an `error` event.
    KeyEchoErrorEvent,
    /// WebSocket: the key echoed in a close reason.
    KeyEchoCloseReason,
    /// OpenAI Realtime, Gemini Live, ElevenLabs: the key as (part of) the session id.
    KeyEchoSessionId,
    /// The key in a URL: a redirect `Location` with `?api_key=` (WebSocket upgrade; pipeline LLM).
    KeyEchoUrl,
}

impl SimFault {
    /// Every fault, in the catalogue's order (a unit test checks it against the names serde knows).
    pub const ALL: [SimFault; 36] = {
        use SimFault::*;
        [
            StallAfterAccept,
            StallWithoutReading,
            NoHandshake,
            Slowloris,
            Http401,
            Http403,
            Http429,
            Http500,
            Http302,
            TcpResetMidReply,
            Close1011MidReply,
            MalformedJsonAtSetup,
            MalformedJsonMidReply,
            ErrorRateLimit,
            ErrorServer,
            OversizedMessage,
            InvalidBase64,
            OddByteLength,
            AudioFlood,
            ToolIndexBomb,
            Body20mb,
            UnrequestedGzip,
            FragmentedMessage,
            BrokenChunked,
            BodyCut,
            SseCutMidEvent,
            SseStall,
            ContentLengthLong,
            ContentLengthShort,
            HeadNeverEnds,
            KeyEcho401,
            KeyEchoSseError,
            KeyEchoErrorEvent,
            KeyEchoCloseReason,
            KeyEchoSessionId,
            KeyEchoUrl,
        ]
    };

    /// Whether the fault echoes the key the client presents: a simulated target that plays it may name
    /// `api_key_env`, and keeps it so that its client sends the key.
    pub fn echoes_key(self) -> bool {
        matches!(
            self,
            Self::KeyEcho401
                | Self::KeyEchoSseError
                | Self::KeyEchoErrorEvent
                | Self::KeyEchoCloseReason
                | Self::KeyEchoSessionId
                | Self::KeyEchoUrl
        )
    }

    /// The name a scenario uses.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
    }
}

/// Provider turn detection (OpenAI Realtime `audio.input.turn_detection`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TurnDetection {
    /// `server_vad`, `semantic_vad` or `none`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// server_vad: activation threshold, 0–1.
    #[serde(default)]
    pub threshold: Option<Spanned<f64>>,
    /// server_vad: audio kept before detected speech, ms.
    #[serde(default)]
    pub prefix_padding_ms: Option<u32>,
    /// server_vad: silence that ends a turn, ms.
    #[serde(default)]
    pub silence_duration_ms: Option<u32>,
    /// semantic_vad: `low`, `medium`, `high` or `auto`.
    #[serde(default)]
    pub eagerness: Option<Spanned<String>>,
}

/// Local endpointing of a pipeline target.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpointing {
    /// `local` (voicebench's VAD decides the end of the caller's turn) or `stt` (the STT's own endpointing).
    #[serde(default = "default_endpointing_mode")]
    pub mode: Spanned<String>,
    /// Silence that ends the caller's turn, ms.
    #[serde(default = "default_endpointing_silence")]
    pub silence_ms: u32,
    /// Speech over the agent's audio interrupts it once it has lasted this long (voiced), ms; shorter speech (a
    /// "mm-hmm") is neither an interruption nor a turn. Default 500 (LiveKit Agents' `min_interruption_duration`).
    #[serde(default)]
    pub interrupt_min_ms: Option<u32>,
}

fn default_endpointing_mode() -> Spanned<String> {
    Spanned::new(0..0, "local".into())
}

fn default_endpointing_silence() -> u32 {
    500
}

/// One stage of a pipeline target.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The stage's API: STT `openai` or `deepgram`; LLM `openai`; TTS `openai` or `elevenlabs`.
    pub provider: Spanned<String>,
    /// Base URL (`http(s)://…/v1` for OpenAI-compatible, `wss://…` for Deepgram live). Not with a sim target.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Environment variable holding this stage's key.
    #[serde(default)]
    pub api_key_env: Option<Spanned<String>>,
    /// How an `openai` stage sends its key: `bearer` (default) or `api-key` (Azure OpenAI).
    #[serde(default)]
    pub auth: Option<Spanned<String>>,
    /// Model id.
    #[serde(default)]
    pub model: Option<String>,
    /// TTS voice.
    #[serde(default)]
    pub voice: Option<String>,
    /// Use the stage's streaming form (SSE transcription, chunked TTS). Default true.
    #[serde(default)]
    pub stream: Option<bool>,
}

/// `[agent]`: what every target is told to be, and the tools it may call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// System instructions sent to every target.
    #[serde(default)]
    pub instructions: Option<String>,
    /// The agent's idea of today's date (ISO), so "this Friday" has one meaning.
    #[serde(default)]
    pub today: Option<Spanned<String>>,
    /// Tools the agent may call.
    #[serde(default, rename = "tool")]
    pub tools: Vec<Spanned<Tool>>,
}

/// A tool (function) the agent may call, with canned results so the call can go on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Function name (letters, digits, `_`, `-`; at most 64).
    pub name: Spanned<String>,
    /// What the tool does, as the model sees it.
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Spanned<toml::Table>,
    /// Canned results, the first whose `when` matches the call's arguments wins.
    #[serde(default, rename = "result")]
    pub results: Vec<CannedResult>,
    /// The result when no `result` entry matches.
    pub default_result: toml::Value,
    /// A state table each call of this tool adds a row (its arguments) to, for `[[expect_state]]`.
    #[serde(default)]
    pub records: Option<Spanned<String>>,
}

/// A canned tool result chosen by argument matchers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResult {
    /// Argument matchers; all must match.
    #[serde(default)]
    pub when: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// The tool output returned to the agent (any TOML value, sent as JSON).
    pub output: toml::Value,
}

/// When a turn's utterance starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// After the agent's reply has finished playing, plus `gap_ms`.
    AfterAgentDone,
    /// After the agent's reply started playing, plus `delay_ms`: a barge-in or a backchannel.
    AfterAgentStart,
}

/// What the agent is expected to do with a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Reply (the default).
    Respond,
    /// Stop talking: a barge-in.
    Stop,
    /// Keep talking: a cough or a backchannel ("mm-hmm").
    Ignore,
    /// The utterance has a pause inside; the agent must not start before it is over, then reply.
    NoTakeover,
}

/// One caller turn.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// A label for reports (default: the utterance id or `turn<N>`).
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// A corpus line id (audio-corpus/manifest.json).
    #[serde(default)]
    pub utterance: Option<Spanned<String>>,
    /// A WAV file (mono 16-bit PCM), relative to the scenario file.
    #[serde(default)]
    pub wav: Option<Spanned<String>>,
    /// Corpus voice for `utterance` (default `defaults.voice`).
    #[serde(default)]
    pub voice: Option<Spanned<String>>,
    /// Transcript of a `wav` utterance (corpus utterances carry their own).
    #[serde(default)]
    pub text: Option<String>,
    /// When the utterance starts.
    #[serde(default)]
    pub start: Option<Spanned<Start>>,
    /// With `after_agent_done`: silence before the utterance, ms (default `defaults.gap_ms`).
    #[serde(default)]
    pub gap_ms: Option<Spanned<u32>>,
    /// With `after_agent_start`: delay after the agent's first audible sample, ms.
    #[serde(default)]
    pub delay_ms: Option<Spanned<u32>>,
    /// What the agent should do.
    #[serde(default)]
    pub expect: Option<Spanned<Expect>>,
    /// Tool calls the agent should make in reply to this turn.
    #[serde(default, rename = "tool_call")]
    pub tool_calls: Vec<Spanned<ExpectedToolCall>>,
    /// Simulated providers only: the agent corpus line the sim says in reply.
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    /// What the agent's reply must say: a phrase, `{ regex = "…" }`, or an array of them (all must be found).
    #[serde(default)]
    pub say: Option<Spanned<toml::Value>>,
    /// What the agent's reply must not say (same forms; none may be found).
    #[serde(default)]
    pub not_say: Option<Spanned<toml::Value>>,
}

/// A tool call a turn expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedToolCall {
    /// The tool's name (one of `[[agent.tool]]`).
    pub name: Spanned<String>,
    /// Argument matchers; arguments not named are not checked.
    #[serde(default)]
    pub args: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Simulated providers only: the arguments the sim sends. Default: derived from the matchers (numbers, exact
    /// values, `ci` text, dates as YYYY-MM-DD, times as HH:MM); an argument matched by `regex` must be given here.
    #[serde(default)]
    pub sim_args: Option<Spanned<toml::Table>>,
}
