//! What one call produces: a [`TurnRecord`] per turn and a [`CallRecord`] per call. These rows are the whole
//! interface between measuring (`crate::caller`) and reporting (`crate::metrics`, `crate::report`), so they live in
//! the leaf `model`, which both sides import.
//!
//! Times are milliseconds as `f64` (microsecond precision). `None` means "not applicable to this turn" (no barge-in
//! metrics on a plain turn) or "not measured because the turn failed"; a failed turn always has `error` set.

use serde::Serialize;

use super::Metric;

use super::ErrorCategory;

/// The kind of turn, for per-kind histograms ("tool turns are reported apart from plain turns").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// A turn that expects a spoken reply and no tool call.
    Plain,
    /// A turn that expects a tool call before the reply.
    Tool,
    /// A barge-in: the caller interrupts, the agent must stop (then reply).
    BargeIn,
    /// A backchannel or cough while the agent talks: the agent must not stop.
    Backchannel,
    /// An utterance with a pause inside: the agent must not take over, then reply.
    NoTakeover,
}

impl TurnKind {
    /// All kinds, in report order.
    pub const ALL: [TurnKind; 5] =
        [TurnKind::Plain, TurnKind::Tool, TurnKind::BargeIn, TurnKind::Backchannel, TurnKind::NoTakeover];

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnKind::Plain => "plain",
            TurnKind::Tool => "tool",
            TurnKind::BargeIn => "barge_in",
            TurnKind::Backchannel => "backchannel",
            TurnKind::NoTakeover => "no_takeover",
        }
    }
}

/// One turn of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnRecord {
    /// Target name.
    pub target: String,
    /// Whether the target is an embedded simulated provider.
    pub simulated: bool,
    /// Call index within the target (0-based).
    pub call: u32,
    /// Turn index within the scenario (0-based).
    pub turn: u32,
    /// Turn label.
    pub turn_id: String,
    /// Turn kind.
    pub kind: Option<TurnKind>,
    /// Utterance id (corpus id or WAV path).
    pub utterance: String,
    /// Scheduled time of the utterance's first voiced sample, ms after the call's t0.
    pub user_onset_ms: f64,
    /// Scheduled time of the utterance's last voiced sample (`user_eos`), ms after t0.
    pub user_eos_ms: f64,
    /// `user_eos` → first non-empty agent audio chunk of the reply.
    pub ttfb_ms: Option<f64>,
    /// First received agent sample → first audible sample.
    pub leading_silence_ms: Option<f64>,
    /// `user_eos` → first audible agent sample (negative values are talk-over; see `talk_over_ms`).
    pub ttfa_ms: Option<f64>,
    /// `user_eos` → the provider's end-of-speech signal.
    pub endpointing_ms: Option<f64>,
    /// `user_eos` → tool call complete (first expected call of the turn).
    pub tool_call_ms: Option<f64>,
    /// How long before `user_eos` the agent's reply became audible (only when it did).
    pub talk_over_ms: Option<f64>,
    /// Longest stretch the caller heard nothing: the TTFA gap or an underrun mid-reply.
    pub max_silence_ms: Option<f64>,
    /// `user_onset` → last agent sample the caller heard (barge-in turns).
    pub barge_in_stop_ms: Option<f64>,
    /// `user_onset` → the provider's interruption signal (barge-in turns).
    pub barge_in_ack_ms: Option<f64>,
    /// Agent audio received after the signal that cut it, ms of audio (barge-in turns).
    pub post_cancel_audio_ms: Option<f64>,
    /// The agent was still audible 2 s after `user_onset` (barge-in turns).
    pub barge_in_failed: Option<bool>,
    /// The agent stopped for an utterance it should have ignored (backchannel turns).
    pub false_stop: Option<bool>,
    /// The agent started talking during a pause inside the caller's utterance (no-takeover turns).
    pub premature_takeover: Option<bool>,
    /// Pipeline: `user_eos` → final transcript.
    pub stt_ms: Option<f64>,
    /// Pipeline: LLM request → first token.
    pub llm_ttft_ms: Option<f64>,
    /// Pipeline: TTS request → first audio byte.
    pub tts_ttfb_ms: Option<f64>,
    /// Tool calls the turn expects.
    pub tools_expected: u32,
    /// Expected calls made in this turn with matching arguments.
    pub tools_succeeded: u32,
    /// Calls that belong to a later turn, made in this one.
    pub tools_early: u32,
    /// Calls that belonged to an earlier turn, made in this one.
    pub tools_late: u32,
    /// Calls no turn expects (or with arguments that match no expectation).
    pub tools_unexpected: u32,
    /// Calls whose arguments are not valid JSON or break the tool's schema.
    pub tools_malformed: u32,
    /// Why the turn failed, if it did.
    pub error: Option<ErrorCategory>,
    /// The failure's message.
    pub error_message: Option<String>,
    /// Pipeline: `user_eos` → the chat-completion request of the spoken reply (after any tool-call round).
    pub llm_start_ms: Option<f64>,
    /// Pipeline: `user_eos` → the first sentence's TTS request. `ttfa = tts_start + tts_ttfb + leading_silence`.
    pub tts_start_ms: Option<f64>,
    /// First audible agent sample of this turn's reply, ms after t0 (for timelines).
    pub agent_audio_start_ms: Option<f64>,
    /// Last agent sample the caller heard of this turn's reply (its end, or where a barge-in cut it), ms after t0.
    pub agent_audio_end_ms: Option<f64>,
    /// The expected tool calls' names, `;`-separated in scenario order (empty when none).
    pub tools_expected_names: String,
    /// The names of the expected calls that succeeded, `;`-separated in scenario order.
    pub tools_succeeded_names: String,
    /// What the agent said in reply, from the provider's own transcript events (redacted; at most ~4 KB, cut
    /// with `…`). `None` when the provider sent no transcript for this turn.
    pub agent_text: Option<String>,
    /// The turn's content checks (`say` / `not_say`): `None` when it has none or there was no transcript to judge.
    pub content_ok: Option<bool>,
    /// What the content checks found or missed (redacted).
    pub content_detail: Option<String>,
    /// What the caller heard of the reply, transcribed by the scenario's `transcribe` service (redacted).
    pub heard_text: Option<String>,
    /// Words of `agent_text` that `heard_text` does not contain: reported but not heard.
    pub unheard_words: Option<u32>,
}

impl TurnRecord {
    /// The turn's value of a latency metric, when it has one (negative TTFA, TTFB, endpointing and tool-call
    /// times are left out: they are not latencies, and a histogram holds none; talk-over has its own metric).
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Ttfa => self.ttfa_ms.filter(|v| *v >= 0.0),
            Metric::Ttfb => self.ttfb_ms.filter(|v| *v >= 0.0),
            Metric::LeadingSilence => self.leading_silence_ms,
            Metric::Endpointing => self.endpointing_ms.filter(|v| *v >= 0.0),
            Metric::ToolCall => self.tool_call_ms.filter(|v| *v >= 0.0),
            Metric::TalkOver => self.talk_over_ms,
            Metric::MaxSilence => self.max_silence_ms,
            Metric::BargeInStop => self.barge_in_stop_ms,
            Metric::BargeInAck => self.barge_in_ack_ms,
            Metric::PostCancelAudio => self.post_cancel_audio_ms,
            Metric::Stt => self.stt_ms,
            Metric::LlmTtft => self.llm_ttft_ms,
            Metric::TtsTtfb => self.tts_ttfb_ms,
        }
    }
}

/// Frame send lateness of one call, µs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pacing {
    /// Frames sent.
    pub frames: u64,
    /// Every frame's lateness, µs (for the run's histogram; not serialised per call).
    #[serde(skip)]
    pub lateness_us: Vec<u32>,
    /// Median lateness, µs.
    pub p50_us: u32,
    /// 99th percentile, µs.
    pub p99_us: u32,
    /// Worst, µs.
    pub max_us: u32,
}

impl Pacing {
    /// A call's pacing from every frame's lateness (in send order, kept for the run's histogram): p50 and p99 by the
    /// crate's one quantile rule ([`crate::stats::quantile`]), so they match the run's histogram in `summary.json`.
    pub fn from_lateness(lateness_us: Vec<u32>) -> Pacing {
        let mut sorted = lateness_us.clone();
        sorted.sort_unstable();
        Pacing {
            frames: sorted.len() as u64,
            p50_us: crate::stats::quantile(&sorted, 0.5).unwrap_or(0),
            p99_us: crate::stats::quantile(&sorted, 0.99).unwrap_or(0),
            max_us: sorted.last().copied().unwrap_or(0),
            lateness_us,
        }
    }
}

/// One call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    /// Target name.
    pub target: String,
    /// Whether the target is simulated.
    pub simulated: bool,
    /// Call index within the target.
    pub call: u32,
    /// The provider's session id, when it gives one.
    pub session_id: Option<String>,
    /// Connection and session set-up time, ms (never part of TTFA).
    pub connect_ms: Option<f64>,
    /// When the call started, ms after the run started.
    pub started_ms: f64,
    /// Call duration from t0 to hang-up, ms.
    pub duration_ms: f64,
    /// Turns in the scenario.
    pub turns_total: u32,
    /// Turns that completed without error.
    pub turns_ok: u32,
    /// Why the call ended early, if it did.
    pub error: Option<ErrorCategory>,
    /// The failure's message.
    pub error_message: Option<String>,
    /// Outgoing frame pacing.
    pub pacing: Pacing,
    /// Whether the call left the tools' tables as `[[expect_state]]` says (`None`: no expectations, or the run was
    /// interrupted during the call).
    pub task_ok: Option<bool>,
    /// Which expectations failed and what the tables held, or that they held.
    pub task_detail: Option<String>,
    /// Every tool call the agent made, in order (arguments redacted).
    pub tool_calls: Vec<ToolCallLog>,
    /// Turns whose content checks were judged.
    pub content_checked: u32,
    /// Content checks that failed.
    pub content_failed: u32,
    /// The call's TTFA, median and worst over its reply turns, ms.
    pub ttfa_p50_ms: Option<f64>,
    /// Worst TTFA of the call, ms.
    pub ttfa_max_ms: Option<f64>,
    /// Its recording, relative to the report directory, when it was written as the call ended (a failed call, or
    /// `--record all`; the slowest call's is in `recordings/index.json`).
    pub recording: Option<String>,
    /// What the impaired network did to the call's packets; absent on a clean line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<super::network::NetEffect>,
}

/// One tool call of a call, as `calls.jsonl` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ToolCallLog {
    /// The turn it was attributed to (0-based), when any.
    pub turn: Option<u32>,
    /// Tool name (bounded, as received).
    pub name: String,
    /// Its arguments: the JSON object, or the raw text (cut to 1 KB) when it was not one.
    pub arguments: serde_json::Value,
    /// `succeeded`, `early`, `late`, `unexpected` or `malformed` (see docs/metrics.md).
    pub outcome: String,
    /// When it completed, ms after the call's t0.
    pub at_ms: f64,
}
