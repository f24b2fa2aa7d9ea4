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

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::playout::Replies;
use super::secret::Secrets;
use super::ws::{self, Sink, Stream};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, Session, SessionError};
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

/// Decodes one server frame (already stamped) into agent events. Pure, for the tests.
pub fn decode_frame(at: Instant, msg: &Message, replies: &mut Replies) -> Vec<AgentEvent> {
    let mut out = Vec::new();
    match msg {
        Message::Binary(b) => {
            if !b.len().is_multiple_of(2) {
                out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::Protocol,
                    message: format!("a PCM16 frame of {} bytes (odd)", b.len()),
                });
            }
            let samples = from_le_bytes(b);
            if !samples.is_empty() {
                let (item, _) = replies.audio(at, samples.len());
                out.push(AgentEvent::Audio { at, item, samples });
            }
        }
        Message::Text(t) => {
            let v: Json = match serde_json::from_str(t) {
                Ok(v) => v,
                Err(e) => {
                    out.push(AgentEvent::Error {
                        at,
                        category: ErrorCategory::Protocol,
                        message: format!("a text frame that is not JSON: {e}"),
                    });
                    return out;
                }
            };
            match v["type"].as_str().unwrap_or("") {
                "clear" => {
                    out.push(AgentEvent::Interrupted { at });
                    replies.flush(at);
                    if let Some(done) = replies.end() {
                        out.push(AgentEvent::ResponseDone {
                            at: done,
                            status: ResponseStatus::Cancelled,
                            had_tool_call: false,
                        });
                    }
                }
                "transcript" if v["role"] != "user" => {
                    out.push(AgentEvent::Transcript { at, text: v["text"].as_str().unwrap_or_default().to_string() })
                }
                "error" => out.push(AgentEvent::Error {
                    at,
                    category: ErrorCategory::ProviderError,
                    message: v["message"].as_str().map_or_else(|| v.to_string(), String::from),
                }),
                _ => {}
            }
        }
        _ => {}
    }
    out
}

/// A ws-pcm session.
pub struct WsPcm {
    sink: Sink,
    events: mpsc::Receiver<AgentEvent>,
    call_id: String,
    rate: u32,
}

impl WsPcm {
    /// Connects and sends the start message, within the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let url = target.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
        let mut secrets = Secrets::from_url(&url);
        let mut req = ws::request(&url, &secrets)?;
        if let Some(var) = &target.api_key_env {
            let key = std::env::var(var.get_ref()).map_err(|_| {
                SessionError::new(ErrorCategory::Auth, format!("environment variable {} is not set", var.get_ref()))
            })?;
            secrets.add(&key);
            let value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                SessionError::new(ErrorCategory::Auth, format!("{} holds characters a header cannot", var.get_ref()))
            })?;
            req.headers_mut().insert("Authorization", value);
        }
        let rate = rate(target);
        let call_id = format!("call_{}", ws::fresh_hex(24));
        ws::within(scenario, async move {
            let (sink, stream) = ws::dial(req, &secrets).await?;
            let start = json!({"type": "start", "call_id": call_id, "sample_rate": rate, "encoding": "pcm_s16le",
                "channels": 1});
            ws::send(&sink, Message::Text(start.to_string().into())).await?;
            let (tx, events) = mpsc::channel(1024);
            tokio::spawn(reader(stream, tx, rate, secrets));
            Ok(Self { sink, events, call_id, rate })
        })
        .await
    }
}

async fn reader(mut stream: Stream, tx: mpsc::Sender<AgentEvent>, rate: u32, secrets: Secrets) {
    let replies = Arc::new(Mutex::new(Replies::new(rate)));
    loop {
        let due = replies.lock().expect("replies").due();
        let evs = tokio::select! {
            m = stream.next() => {
                // The receive instant: before any parsing or decoding.
                let at = Instant::now();
                match m {
                    Some(Ok(Message::Close(c))) => {
                        ws::report_close(&tx, at, c.as_ref(), &secrets).await;
                        return;
                    }
                    Some(Ok(m)) => decode_frame(at, &m, &mut replies.lock().expect("replies")),
                    Some(Err(e)) => {
                        let _ = tx.send(AgentEvent::Closed { at, reason: secrets.scrub(&e.to_string()) }).await;
                        return;
                    }
                    None => {
                        let _ = tx.send(AgentEvent::Closed { at, reason: "connection closed".into() }).await;
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if due.is_some() => {
                match replies.lock().expect("replies").end() {
                    Some(at) => vec![AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false }],
                    None => vec![],
                }
            }
        };
        for e in evs {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}

impl Session for WsPcm {
    fn input_rate(&self) -> u32 {
        self.rate
    }

    fn output_rate(&self) -> u32 {
        self.rate
    }

    fn session_id(&self) -> Option<&str> {
        Some(&self.call_id)
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        ws::send(&self.sink, frame.wire.clone()).await
    }

    async fn send_tool_result(&mut self, _call_id: &str, _output: &str) -> Result<(), SessionError> {
        Err(SessionError::new(ErrorCategory::Protocol, "ws-pcm carries no tool calls"))
    }

    async fn truncate(&mut self, _item: u32, _played_ms: u32) -> Result<(), SessionError> {
        Ok(())
    }

    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent> {
        &mut self.events
    }

    async fn close(&mut self) {
        let _ = ws::send(&self.sink, Message::Close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn frames_decode_and_clear_cancels_the_reply() {
        let t0 = Instant::now();
        let mut r = Replies::new(16_000);
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
