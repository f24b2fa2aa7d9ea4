//! The "agent behind Twilio" of the sim: a Twilio Media Streams agent server (docs/protocols.md §4), over the shared
//! agent brain, so the Twilio path (voicebench impersonating Twilio) is testable end to end.
//!
//! `GET /twilio` (any path suffix a TwiML `<Stream url>` would carry is not needed here). The harness sends
//! `connected`, `start` (whose `callSid` becomes the ground truth's session id; `mediaFormat` must be
//! `audio/x-mulaw` 8000 Hz mono, else the server closes with 1003), 20 ms `media` frames, `mark` echoes and `stop`.
//! The agent answers with `media` (μ-law 8 kHz, `streamSid` on every message), a `mark` after each spoken
//! response, and `clear` on a barge-in. Twilio carries no tool calls: this agent has no tools the harness could
//! see, so tool turns get a spoken reply. Every counter the harness sends must be a JSON string, as Twilio's are;
//! a number closes the session with 1003.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::brain::{Brain, Event};
use super::replies::WireFormat;
use super::wire::{Close, Out, Plain, Wire};

/// The upgrade path.
pub const PATH: &str = "/twilio";

/// Accepts Media Streams connections from (a harness acting as) Twilio: μ-law 8 kHz both ways.
pub(crate) fn accept() -> Plain {
    Plain {
        path: PATH,
        input: WireFormat::Pcmu,
        output: WireFormat::Pcmu,
        tools: false,
        wire: |_| Box::new(Twilio::default()),
    }
}

#[derive(Default)]
struct Twilio {
    stream_sid: Option<String>,
    marks_sent: u64,
    /// Marks echoed back by the harness (played or cleared).
    marks_echoed: u64,
    bytes: Vec<u8>,
}

fn bad(reason: impl Into<String>) -> Close {
    Close::new(1003, reason)
}

impl Twilio {
    fn sid(&self) -> &str {
        self.stream_sid.as_deref().unwrap_or_default()
    }
}

impl Wire for Twilio {
    fn on_message(&mut self, conn: &mut Brain, msg: Message, at: Instant, _out: &mut Out) -> Result<(), Close> {
        let Message::Text(t) = msg else { return Err(bad("Twilio sends text frames")) };
        let v: Value = serde_json::from_str(&t).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(n) = v.get("sequenceNumber")
            && !n.is_string()
        {
            return Err(bad("sequenceNumber must be a string"));
        }
        match v["event"].as_str().unwrap_or("") {
            "connected" => Ok(()),
            "start" => {
                let s = &v["start"];
                let f = &s["mediaFormat"];
                if f["encoding"] != "audio/x-mulaw" || f["sampleRate"] != 8000 || f["channels"] != 1 {
                    return Err(bad(format!("unsupported mediaFormat {f}")));
                }
                let (Some(stream), Some(call)) = (s["streamSid"].as_str(), s["callSid"].as_str()) else {
                    return Err(bad("start without streamSid/callSid"));
                };
                self.stream_sid = Some(stream.to_string());
                conn.set_session_id(call.to_string());
                Ok(())
            }
            "media" => {
                if self.stream_sid.is_none() {
                    return Err(bad("media before start"));
                }
                let m = &v["media"];
                if !m["chunk"].is_string() || !m["timestamp"].is_string() {
                    return Err(bad("media.chunk and media.timestamp must be strings"));
                }
                self.bytes.clear();
                let ok = m["payload"].as_str().is_some_and(|p| STANDARD.decode_vec(p, &mut self.bytes).is_ok());
                if !ok {
                    return Err(bad("media.payload is not base64"));
                }
                let bytes = std::mem::take(&mut self.bytes);
                conn.audio(&bytes, at);
                self.bytes = bytes;
                Ok(())
            }
            "mark" => {
                self.marks_echoed += 1;
                Ok(())
            }
            "dtmf" => Ok(()),
            "stop" => Err(Close::new(1000, "call ended")),
            other => Err(bad(format!("unknown event `{other}`"))),
        }
    }

    fn render(&mut self, _conn: &mut Brain, sig: Event, out: &mut Out) {
        let sid = self.sid().to_string();
        match sig {
            Event::Audio { b64, .. } => out.push(Message::text(format!(
                r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"{b64}"}}}}"#
            ))),
            Event::Interrupted => out.push(Message::text(json!({"event": "clear", "streamSid": sid}).to_string())),
            Event::ResponseDone { cancelled: false, spoke: true, .. } => {
                self.marks_sent += 1;
                let name = format!("reply_{}", self.marks_sent);
                out.push(Message::text(json!({"event": "mark", "streamSid": sid, "mark": {"name": name}}).to_string()));
            }
            _ => {}
        }
    }
}
