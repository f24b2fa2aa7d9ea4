//! What a provider did and why a call failed, as every room of the crate speaks of it: the normalized agent events
//! an adapter delivers to the caller ([`AgentEvent`], with [`ResponseStatus`] and the pipeline [`Stage`]s) and the
//! failure categories every record, count and report uses ([`ErrorCategory`]). Imports nothing from the crate, so
//! metrics, report and gate name these without importing the adapters.

use tokio::time::Instant;

/// Why a call or turn failed. Every failure is a result with one of these categories; none disappears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// TCP/TLS/WebSocket connection or session set-up failed or timed out.
    Connect,
    /// The provider refused the credentials (401/403, or an auth error event).
    Auth,
    /// Rate limited (429, or a rate-limit error event).
    RateLimit,
    /// The provider sent an `error` event (or a 5xx) we cannot attribute to the categories above.
    ProviderError,
    /// The provider sent something we could not parse or that breaks the protocol.
    Protocol,
    /// The socket closed while the call was in progress.
    Disconnect,
    /// No complete reply within the turn timeout.
    Timeout,
    /// The run was interrupted (Ctrl-C) while the call was in progress.
    Interrupted,
}

impl ErrorCategory {
    /// The snake_case name used in CSV, JSON and terminal output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Connect => "connect",
            ErrorCategory::Auth => "auth",
            ErrorCategory::RateLimit => "rate_limit",
            ErrorCategory::ProviderError => "provider_error",
            ErrorCategory::Protocol => "protocol",
            ErrorCategory::Disconnect => "disconnect",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Interrupted => "interrupted",
        }
    }
}

/// How a provider response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Finished normally.
    Completed,
    /// Cancelled (barge-in, or client cancel).
    Cancelled,
    /// Failed on the provider's side.
    Failed,
    /// Cut short (token limit, content filter).
    Incomplete,
}

/// A boundary between a pipeline's stages, stamped by the pipeline adapter (pipeline targets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The end of the caller's turn was decided (local VAD end, or the STT's `speech_final`/`UtteranceEnd`).
    EndOfTurn,
    /// The final transcript of the turn arrived.
    Transcript,
    /// A chat-completion request was on the wire (the last one before the reply's audio counts).
    LlmRequest,
    /// The first non-empty content token of that request arrived.
    LlmFirstToken,
    /// The first sentence's synthesis request was on the wire.
    TtsRequest,
    /// The first audio byte of that request arrived.
    TtsFirstByte,
}

/// What the provider did, normalized, each stamped when its bytes came off the socket.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// A chunk of agent audio, already decoded to PCM16 at the session's output rate.
    Audio {
        /// Receive instant.
        at: Instant,
        /// Adapter-assigned index of the audio item (one per provider response that speaks).
        item: u32,
        /// The samples.
        samples: Vec<i16>,
    },
    /// The provider detected the caller starting to speak (OpenAI `speech_started`). While agent audio is playing,
    /// this is the protocol's signal to flush playback.
    SpeechStarted {
        /// Receive instant.
        at: Instant,
    },
    /// The provider's own end-of-speech signal (OpenAI `speech_stopped`).
    SpeechStopped {
        /// Receive instant.
        at: Instant,
    },
    /// An explicit "drop unplayed audio" signal that is not a VAD event (Gemini `interrupted`, Twilio `clear`).
    Interrupted {
        /// Receive instant.
        at: Instant,
    },
    /// A tool call whose arguments are complete.
    ToolCall {
        /// Receive instant of the last argument fragment (`…arguments.done`).
        at: Instant,
        /// Receive instant of the first argument fragment.
        first_at: Instant,
        /// Provider's call id, to answer with.
        call_id: String,
        /// Function name.
        name: String,
        /// Raw argument text (JSON, if the model behaved).
        arguments: String,
    },
    /// A provider response ended.
    ResponseDone {
        /// Receive instant.
        at: Instant,
        /// How it ended.
        status: ResponseStatus,
        /// Whether the response contained a function call (another response follows the tool result).
        had_tool_call: bool,
    },
    /// A pipeline stage boundary.
    Stage {
        /// When it happened.
        at: Instant,
        /// Which.
        stage: Stage,
    },
    /// Transcript text of the agent's speech.
    Transcript {
        /// Receive instant.
        at: Instant,
        /// The text fragment.
        text: String,
        /// Whether it is a whole segment (joined to the text before it with a space: ElevenLabs' `agent_response`,
        /// ws-pcm's `transcript`) rather than a delta (appended as is: OpenAI's transcript deltas, Gemini's output
        /// transcription, the pipeline's LLM tokens).
        segment: bool,
    },
    /// An error event from the provider; the session may continue.
    Error {
        /// Receive instant.
        at: Instant,
        /// Category.
        category: ErrorCategory,
        /// The provider's message (never contains our key).
        message: String,
    },
    /// The socket closed.
    Closed {
        /// Receive instant.
        at: Instant,
        /// Close code and reason, or the I/O error.
        reason: String,
    },
}

/// The most bytes of provider text (an error message, a close reason) any record keeps.
pub const MAX_ERROR_TEXT: usize = crate::secret::MAX_TEXT;

/// `text` bounded to [`MAX_ERROR_TEXT`] bytes: a longer one is cut at a character boundary and says how long it was
/// ("… (truncated, 20480 bytes)"); [`crate::secret::bound`] does the cutting.
pub fn bound_text(text: &str) -> String {
    crate::secret::bound(text, MAX_ERROR_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_its_length_noted() {
        assert_eq!(bound_text("short"), "short");
        let long = "é".repeat(10_240);
        let b = bound_text(&long);
        assert!(b.ends_with("… (truncated, 20480 bytes)"), "{}", &b[b.len() - 40..]);
        assert!(b.len() <= MAX_ERROR_TEXT + 40);
    }
}
