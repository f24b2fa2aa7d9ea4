//! The shared vocabulary of measuring and reporting, importing only the leaf `stats`: the latency metrics as one
//! [`Metric`] enum, with each metric's name (as files and SLO keys write it), its label for people and its unit,
//! in report order. The scenario's SLO keys, the caller's records, the histograms, the gate, compare, the plots and
//! the pages all take their metric list from here ([`METRICS`], the names, is derived from the enum).
//!
//! Histogram keys, SLO keys, compare rows, the plots and the summary take a [`Metric`]; the names are for files,
//! JSON and the "did you mean" of a misspelt key.
//!
//! The agent events and the error categories live in [`events`] (re-exported here and in `crate::targets`); the
//! rows a call produces ([`TurnRecord`], [`CallRecord`], [`TurnKind`], [`Pacing`]) in [`record`] (re-exported here
//! and in `crate::caller::record`); which slice of a sharded run a process runs in [`shard`].

pub mod events;
pub mod network;
pub mod record;
pub mod shard;

pub use events::{AgentEvent, ErrorCategory, ResponseStatus, Stage};
pub use record::{CallRecord, Pacing, ToolCallLog, TurnKind, TurnRecord};
pub use shard::Shard;

/// A latency metric of docs/metrics.md. Every one is a duration in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// `user_eos` → first audible agent sample.
    Ttfa,
    /// `user_eos` → first non-empty agent audio chunk.
    Ttfb,
    /// First received agent sample → first audible sample.
    LeadingSilence,
    /// `user_eos` → the provider's end-of-speech signal.
    Endpointing,
    /// `user_eos` → tool call complete.
    ToolCall,
    /// How long before `user_eos` the agent's reply became audible.
    TalkOver,
    /// Longest stretch the caller heard nothing.
    MaxSilence,
    /// `user_onset` → last agent sample the caller heard (barge-in turns).
    BargeInStop,
    /// `user_onset` → the provider's interruption signal (barge-in turns).
    BargeInAck,
    /// Agent audio received after the signal that cut it.
    PostCancelAudio,
    /// Pipeline: `user_eos` → final transcript.
    Stt,
    /// Pipeline: LLM request → first token.
    LlmTtft,
    /// Pipeline: TTS request → first audio byte.
    TtsTtfb,
}

impl Metric {
    /// Every metric, in the order reports list them.
    pub const ALL: [Metric; 13] = [
        Metric::Ttfa,
        Metric::Ttfb,
        Metric::LeadingSilence,
        Metric::Endpointing,
        Metric::ToolCall,
        Metric::TalkOver,
        Metric::MaxSilence,
        Metric::BargeInStop,
        Metric::BargeInAck,
        Metric::PostCancelAudio,
        Metric::Stt,
        Metric::LlmTtft,
        Metric::TtsTtfb,
    ];

    /// The name files, SLO keys and JSON use (`ttfa`, `barge_in_stop`).
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Ttfa => "ttfa",
            Metric::Ttfb => "ttfb",
            Metric::LeadingSilence => "leading_silence",
            Metric::Endpointing => "endpointing",
            Metric::ToolCall => "tool_call",
            Metric::TalkOver => "talk_over",
            Metric::MaxSilence => "max_silence",
            Metric::BargeInStop => "barge_in_stop",
            Metric::BargeInAck => "barge_in_ack",
            Metric::PostCancelAudio => "post_cancel_audio",
            Metric::Stt => "stt",
            Metric::LlmTtft => "llm_ttft",
            Metric::TtsTtfb => "tts_ttfb",
        }
    }

    /// The name for people (`ttfa` → "TTFA"), as every report writes it.
    pub const fn label(self) -> &'static str {
        match self {
            Metric::Ttfa => "TTFA",
            Metric::Ttfb => "TTFB",
            Metric::LeadingSilence => "leading silence",
            Metric::Endpointing => "endpointing",
            Metric::ToolCall => "tool call",
            Metric::TalkOver => "talk-over",
            Metric::MaxSilence => "max silence",
            Metric::BargeInStop => "barge-in stop",
            Metric::BargeInAck => "barge-in ack",
            Metric::PostCancelAudio => "post-cancel audio",
            Metric::Stt => "STT",
            Metric::LlmTtft => "LLM TTFT",
            Metric::TtsTtfb => "TTS TTFB",
        }
    }

    /// The unit records and reports give it in: every latency metric is in milliseconds (`post_cancel_audio` is
    /// milliseconds of audio). Histograms hold microseconds.
    pub const fn unit(self) -> &'static str {
        "ms"
    }

    /// The metric of a name; `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Metric {
    /// The metric's name ([`Metric::name`]), as files and keys write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Metric {
    /// As its name, the way every file writes it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The latency metrics' names, in the order reports list them ([`Metric::ALL`]'s names): for "did you mean".
pub const METRICS: &[&str] = &{
    let mut names = [""; Metric::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Metric::ALL[i].name();
        i += 1;
    }
    names
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_the_list_agree() {
        assert_eq!(METRICS.len(), Metric::ALL.len());
        for (m, name) in Metric::ALL.into_iter().zip(METRICS) {
            assert_eq!((m.name(), Metric::from_name(name)), (*name, Some(m)));
        }
        assert_eq!(METRICS[0], "ttfa");
        assert_eq!(Metric::BargeInStop.label(), "barge-in stop");
        assert_eq!(Metric::from_name("unknown"), None);
        // `Ord` (histogram keys, report order) is the declaration order, which must be `ALL`'s.
        assert!(Metric::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(serde_json::to_string(&Metric::LlmTtft).unwrap(), "\"llm_ttft\"");
    }
}
