//! Property tests of every WebSocket protocol decoder (issue 15): arbitrary frames (JSON shaped like each
//! protocol's events, arbitrary text, arbitrary bytes) interleaved with timer firings and session commands never
//! panic, and what comes out is bounded (ids, arguments, item indices, error text).
//!
//! CI runs proptest's default case count (256 sequences a decoder, a few seconds in all). A long campaign sets
//! `PROPTEST_CASES`, e.g. `PROPTEST_CASES=200000 cargo test --release --lib targets::fuzz`; a failure is shrunk and
//! printed, and its seed is kept under `proptest-regressions/` to be replayed by the next run.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::ws::{self, Decoder, Out};
use super::{AgentEvent, elevenlabs, gemini_live, openai_realtime, twilio, ws_pcm};
use crate::model::events::MAX_ERROR_TEXT;
use crate::scenario::schema::AudioFormat;

/// Field names and event types of the five protocols: the keys and strings the JSON generator draws from, so that
/// generated messages reach the decoders' arms rather than their `_ => {}`.
const WORDS: &[&str] = &[
    "type",
    "event",
    "delta",
    "item_id",
    "item",
    "call_id",
    "name",
    "arguments",
    "response",
    "status",
    "output",
    "status_details",
    "error",
    "code",
    "message",
    "response.output_audio.delta",
    "response.audio.delta",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "function_call",
    "input_audio_buffer.speech_started",
    "cancelled",
    "failed",
    "serverContent",
    "modelTurn",
    "parts",
    "inlineData",
    "mimeType",
    "audio/pcm",
    "data",
    "interrupted",
    "turnComplete",
    "toolCall",
    "functionCalls",
    "id",
    "args",
    "sessionResumptionUpdate",
    "resumable",
    "newHandle",
    "goAway",
    "timeLeft",
    "outputTranscription",
    "text",
    "audio",
    "audio_event",
    "audio_base_64",
    "event_id",
    "interruption",
    "interruption_event",
    "client_tool_call",
    "tool_call_id",
    "tool_name",
    "parameters",
    "ping",
    "ping_event",
    "error_event",
    "user_transcript",
    "media",
    "payload",
    "mark",
    "clear",
    "transcript",
    "role",
    "agent",
];

/// A string: a protocol word, valid base64 of random bytes (odd lengths included), or anything.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(String::from),
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| B64.encode(b)),
        1 => ".{0,40}",
        1 => prop::collection::vec("[a-z]", 300..400).prop_map(|v| v.concat()),
    ]
}

/// JSON shaped like the protocols' events: objects keyed by protocol words, nested a few levels.
fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        string().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((prop::sample::select(WORDS), inner), 0..6)
                .prop_map(|kv| Json::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// One step of a session: a frame at an offset (ms) from the start, or a timer firing.
#[derive(Debug, Clone)]
enum Step {
    Frame(u64, Message),
    Timer(u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let frame = prop_oneof![
        4 => json().prop_map(|v| Message::text(v.to_string())),
        1 => ".{0,64}".prop_map(Message::text),
        1 => prop::collection::vec(any::<u8>(), 0..96).prop_map(|b| Message::Binary(b.into())),
        1 => json().prop_map(|v| Message::Binary(v.to_string().into_bytes().into())),
    ];
    let step = prop_oneof![
        6 => (0..20_000u64, frame).prop_map(|(t, m)| Step::Frame(t, m)),
        1 => (0..20_000u64).prop_map(Step::Timer),
    ];
    prop::collection::vec(step, 1..24)
}

/// Runs `steps` through `d`, with `command` after every step, and checks what came out is bounded.
fn run<D: Decoder>(mut d: D, steps: &[Step], mut command: impl FnMut(usize) -> Option<D::Command>) {
    let t0 = Instant::now();
    let mut out = Out::default();
    for (k, step) in steps.iter().enumerate() {
        match step {
            Step::Frame(ms, m) => d.on_frame(t0 + Duration::from_millis(*ms), m, &mut out),
            Step::Timer(ms) => {
                if d.due().is_some() {
                    d.on_timer(t0 + Duration::from_millis(*ms), &mut out)
                }
            }
        }
        if let Some(c) = command(k) {
            d.on_command(c, &mut out);
        }
    }
    for e in &out.events {
        match e {
            AgentEvent::Audio { item, samples, .. } => {
                assert!((*item as usize) < ws::MAX_ITEMS && !samples.is_empty());
            }
            AgentEvent::ToolCall { call_id, name, arguments, .. } => {
                assert!(call_id.len() <= ws::MAX_ID && name.len() <= ws::MAX_ID);
                assert!(arguments.len() <= ws::MAX_ARGUMENTS);
            }
            AgentEvent::Error { message, .. } => {
                // The read loop bounds the text; the decoder's own part stays near the bound too.
                assert!(crate::model::events::bound_text(message).len() <= MAX_ERROR_TEXT + 64);
            }
            _ => {}
        }
    }
    for m in &out.send {
        assert!(m.len() <= 4 * ws::MAX_ID + ws::MAX_ARGUMENTS, "a reply of {} bytes", m.len());
    }
}

proptest! {
    #[test]
    fn openai_realtime_never_panics(steps in steps(), ulaw in any::<bool>(), cmds in prop::collection::vec(any::<(u8, u32, u32)>(), 24)) {
        let format = if ulaw { AudioFormat::G711Ulaw } else { AudioFormat::Pcm16 };
        run(openai_realtime::Decode::new(format), &steps, |k| match cmds[k % cmds.len()] {
            (0..=40, ..) => Some(openai_realtime::Command::Respond),
            (41..=80, item, played_ms) => Some(openai_realtime::Command::Truncate { item: item % 8, played_ms }),
            _ => None,
        });
    }

    #[test]
    fn gemini_live_never_panics(steps in steps(), ids in prop::collection::vec(string(), 24)) {
        run(gemini_live::DecodeState::default(), &steps, |k| {
            (k % 3 == 0).then(|| gemini_live::Command::ToolResult { call_id: ids[k].clone(), output: ids[k].clone() })
        });
    }

    #[test]
    fn elevenlabs_never_panics(steps in steps(), ulaw in any::<bool>(), rate in 8_000u32..48_000) {
        let format = if ulaw { elevenlabs::Format::Ulaw } else { elevenlabs::Format::Pcm(rate) };
        run(elevenlabs::DecodeState::new(format), &steps, |_| None);
    }

    #[test]
    fn twilio_never_panics(steps in steps()) {
        run(twilio::reader_for_tests(), &steps, |_| None);
    }

    #[test]
    fn ws_pcm_never_panics(steps in steps(), rate in 8_000u32..48_000) {
        run(ws_pcm::Decode::new(rate), &steps, |_| None);
    }

    #[test]
    fn close_and_json_helpers_never_panic(code in any::<u16>(), reason in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let (_, msg) = ws::close_error(code, &reason);
        let head = format!("close {code}");
        prop_assert!(msg.starts_with(&head));
        let mut out = Out::default();
        ws::frame_json(Instant::now(), &Message::Binary(bytes.into()), true, &mut out);
        prop_assert!(out.events.len() <= 1);
        prop_assert!(ws::cut(&reason, 7).len() <= 7);
    }
}
