//! Generic PCM over WebSocket (`ws-pcm`): the smallest protocol an open speech-to-speech server can be put behind
//! (docs/ws-pcm.md has the recipe for Sesame-style CSM pipelines, Moshi and others).
//!
//! Binary frames both ways are raw PCM16 LE mono at the target's `sample_rate` (default 16000). Text frames are
//! optional JSON: voicebench first sends `{"type":"start","call_id":…,"sample_rate":…}` (servers may ignore it; the
//! `call_id` is the session id), and understands `{"type":"clear"}` (drop unplayed audio: a barge-in),
//! `{"type":"transcript","role":"agent","text":…}` and `{"type":"error","message":…}` from the server. A key
//! (`api_key_env`) goes in an `Authorization: Bearer` header.
//!
//! The reader stamps every frame before decoding it. A reply starts with the first audio after the previous one
//! ended and ends when its audio stops ([`super::playout`]) or at a `clear` (cancelled).

use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::playout::Replies;
use super::ws::{self, Decoder, Out, WsProtocol, WsSession};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, SessionError};
use crate::audio::frames::{from_le_bytes, to_le_bytes};
use crate::scenario::{Scenario, Target};

/// The default rate.
pub const DEFAULT_RATE: u32 = 16_000;

/// The target's rate.
pub fn rate(target: &Target) -> u32 {
    target.sample_rate.as_ref().map_or(DEFAULT_RATE, |r| *r.get_ref())
}

/// Encodes caller samples as one binary PCM16 LE frame.
pub fn encode_frame(samples: &[i16]) -> Frame {
    Frame { samples: samples.into(), wire: Message::Binary(to_le_bytes(samples).into()) }
}

/// The ws-pcm decoder: binary frames are audio, text frames optional JSON; replies end when their audio stops.
#[derive(Debug, Clone)]
pub struct Decode {
    /// Reply bookkeeping and end detection.
    pub replies: Replies,
}

impl Decode {
    /// A decoder for audio at `rate`.
    pub fn new(rate: u32) -> Self {
        Self { replies: Replies::new(rate) }
    }

    fn on_text(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        let Some(v) = ws::frame_json(at, msg, false, out) else { return };
        match v["type"].as_str().unwrap_or("") {
            "clear" => {
                out.event(AgentEvent::Interrupted { at });
                self.replies.flush(at);
                if let Some(done) = self.replies.end() {
                    out.event(AgentEvent::ResponseDone {
                        at: done,
                        status: ResponseStatus::Cancelled,
                        had_tool_call: false,
                    });
                }
            }
            "transcript" if v["role"] != "user" => out.event(AgentEvent::Transcript {
                at,
                text: ws::cut(v["text"].as_str().unwrap_or_default(), ws::MAX_FRAGMENT).to_string(),
                segment: true,
            }),
            "error" => out.event(AgentEvent::Error {
                at,
                category: ErrorCategory::ProviderError,
                message: v["message"].as_str().map_or_else(|| v.to_string(), String::from),
            }),
            _ => {}
        }
    }
}

impl Decoder for Decode {
    type Command = ();

    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        let Message::Binary(b) = msg else { return self.on_text(at, msg, out) };
        if !b.len().is_multiple_of(2) {
            out.protocol_error(at, format!("a PCM16 frame of {} bytes (odd)", b.len()));
        }
        let samples = from_le_bytes(b);
        if !samples.is_empty() {
            let (item, _) = self.replies.audio(at, samples.len());
            out.event(AgentEvent::Audio { at, item, samples });
        }
    }

    fn due(&self) -> Option<Instant> {
        self.replies.due()
    }

    fn on_timer(&mut self, _now: Instant, out: &mut Out) {
        if let Some(at) = self.replies.end() {
            out.event(AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false });
        }
    }
}

/// ws-pcm's sending side: nothing beyond the defaults (frames as encoded, no tool calls, no truncation).
pub struct Side;

impl WsProtocol for Side {
    type Command = ();
    const NAME: &'static str = "ws-pcm";
}

/// A ws-pcm session.
pub type WsPcm = WsSession<Side>;

impl WsPcm {
    /// Connects and sends the start message, within the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let url = target.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
        let key_env = target.api_key_env.as_ref().map(|v| v.get_ref().as_str());
        let (req, secrets) = ws::keyed_request(&url, key_env, "Authorization", "Bearer ")?;
        let rate = rate(target);
        let call_id = format!("call_{}", ws::fresh_hex(24));
        ws::within(scenario, async move {
            let (sink, stream) = ws::dial(req, &secrets).await?;
            let start = json!({"type": "start", "call_id": call_id, "sample_rate": rate, "encoding": "pcm_s16le",
                "channels": 1});
            ws::send(&sink, Message::Text(start.to_string().into())).await?;
            let conn = ws::spawn_reader(stream, sink, Decode::new(rate), secrets);
            Ok(WsSession { conn, input_rate: rate, output_rate: rate, session_id: Some(call_id), side: Side })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn frames_decode_and_clear_cancels_the_reply() {
        let mut r = Decode::new(16_000);
        let t0 = Instant::now();
        let decode_frame = |at, m: &Message, d: &mut Decode| {
            let mut out = Out::default();
            d.on_frame(at, m, &mut out);
            out.events
        };
        let pcm = encode_frame(&[1, -2, 300]);
        assert_eq!(pcm.wire, Message::Binary(vec![1, 0, 0xFE, 0xFF, 0x2C, 1].into()));
        let out = decode_frame(t0, &pcm.wire, &mut r);
        assert!(matches!(&out[..], [AgentEvent::Audio { item: 0, samples, .. }] if samples == &vec![1, -2, 300]));
        let out = decode_frame(t0, &Message::text(r#"{"type":"transcript","role":"agent","text":"hi"}"#), &mut r);
        assert!(matches!(&out[..], [AgentEvent::Transcript { text, .. }] if text == "hi"));
        let out = decode_frame(t0, &Message::text(r#"{"type":"clear"}"#), &mut r);
        assert!(matches!(
            out[..],
            [AgentEvent::Interrupted { .. }, AgentEvent::ResponseDone { status: ResponseStatus::Cancelled, .. }]
        ));
        let out = decode_frame(t0, &Message::Binary(vec![0, 0].into()), &mut r);
        assert!(matches!(&out[..], [AgentEvent::Audio { item: 1, .. }]), "audio after a clear is a new reply");
        let out = decode_frame(t0, &Message::Binary(vec![0, 0, 0].into()), &mut r);
        assert!(matches!(out[0], AgentEvent::Error { category: ErrorCategory::Protocol, .. }));
    }
}
