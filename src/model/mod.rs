//! The shared vocabulary of measuring and reporting, importing nothing from the crate: the latency metrics' names,
//! in report order, and their labels for people. The scenario's SLO keys, the caller's records, the histograms,
//! the gate, compare, the plots and the pages all take their metric list from here.
//!
//! Issue 14 moves more here (one `Metric` enum with names and units in place of the name list, the label function
//! and `TurnRecord::metric`; the records themselves; `ErrorCategory` and the agent events, today in
//! `crate::targets`); for now it holds what breaks the scenario → caller import.

/// The latency metrics of METRICS.md, in the order reports list them.
pub const METRICS: &[&str] = &[
    "ttfa",
    "ttfb",
    "leading_silence",
    "endpointing",
    "tool_call",
    "talk_over",
    "max_silence",
    "barge_in_stop",
    "barge_in_ack",
    "post_cancel_audio",
    "stt",
    "llm_ttft",
    "tts_ttfb",
];

/// A latency metric's name for people (`ttfa` → "TTFA"), as every report writes it; unknown names come back as
/// they are.
pub fn metric_label(metric: &str) -> &str {
    match metric {
        "ttfa" => "TTFA",
        "ttfb" => "TTFB",
        "leading_silence" => "leading silence",
        "endpointing" => "endpointing",
        "tool_call" => "tool call",
        "talk_over" => "talk-over",
        "max_silence" => "max silence",
        "barge_in_stop" => "barge-in stop",
        "barge_in_ack" => "barge-in ack",
        "post_cancel_audio" => "post-cancel audio",
        "stt" => "STT",
        "llm_ttft" => "LLM TTFT",
        "tts_ttfb" => "TTS TTFB",
        m => m,
    }
}
