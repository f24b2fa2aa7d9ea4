//! The generic PCM-over-WebSocket (`ws-pcm`) wire of the sim, over the shared agent brain: what an open model
//! server (a Sesame-style CSM pipeline, Moshi behind a small bridge) looks like once put behind this protocol
//! (docs/ws-pcm.md).
//!
//! `GET /ws`. Binary frames both ways are raw PCM16 LE mono at the target's `sample_rate` (the sim speaks 16000,
//! the default, and 24000). Text frames are JSON: the client's optional first `{"type":"start","call_id":…,
//! "sample_rate":…}` (its `call_id` becomes the ground truth's session id; a rate that differs from the server's
//! closes with 1003), the server's `{"type":"clear"}` on a barge-in and `{"type":"transcript","role":"agent"|"user",
//! "text":…}`. There is no end-of-reply message: clients see a reply end when its audio stops.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::brain::{Brain, Event};
use super::replies::WireFormat;
use super::wire::{Close, Out, Plain, Wire};

/// The upgrade path.
pub const PATH: &str = "/ws";

/// Accepts generic PCM sessions at one rate (16 kHz or 24 kHz PCM).
pub(crate) fn accept(format: WireFormat) -> Plain {
    let wire = |f: WireFormat| -> Box<dyn Wire> { Box::new(WsPcm { rate: f.rate(), audio: false, bytes: Vec::new() }) };
    Plain { path: PATH, input: format, output: format, tools: false, wire }
}

struct WsPcm {
    rate: u32,
    audio: bool,
    bytes: Vec<u8>,
}

impl Wire for WsPcm {
    fn on_message(&mut self, conn: &mut Brain, msg: Message, at: Instant, _out: &mut Out) -> Result<(), Close> {
        match msg {
            Message::Binary(b) => {
                if !b.len().is_multiple_of(2) {
                    return Err(Close::new(1003, "PCM16 frames have an even number of bytes"));
                }
                self.audio = true;
                conn.audio(&b, at);
                Ok(())
            }
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| Close::new(1003, format!("not JSON: {e}")))?;
                if v["type"] == "start" {
                    if self.audio {
                        return Err(Close::new(1003, "start after audio"));
                    }
                    if let Some(r) = v["sample_rate"].as_u64()
                        && r != self.rate as u64
                    {
                        return Err(Close::new(1003, format!("this server speaks {} Hz, not {r}", self.rate)));
                    }
                    if let Some(id) = v["call_id"].as_str() {
                        conn.set_session_id(id.to_string());
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn render(&mut self, _conn: &mut Brain, sig: Event, out: &mut Out) {
        match sig {
            Event::Audio { b64, .. } => {
                self.bytes.clear();
                if STANDARD.decode_vec(b64.as_bytes(), &mut self.bytes).is_ok() {
                    out.push(Message::Binary(self.bytes.clone().into()));
                }
            }
            Event::Interrupted => out.push(Message::text(r#"{"type":"clear"}"#)),
            Event::Transcript(t) => {
                out.push(Message::text(json!({"type": "transcript", "role": "agent", "text": &*t}).to_string()))
            }
            Event::UserTranscript { text: t, .. } => {
                out.push(Message::text(json!({"type": "transcript", "role": "user", "text": t}).to_string()))
            }
            _ => {}
        }
    }
}
