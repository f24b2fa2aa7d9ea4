//! Twilio Media Streams, reversed: voicebench *is* Twilio and dials the team's own agent server
//! (docs/protocols.md §4).
//!
//! Connect to the target's `url` (the agent's `<Connect><Stream url>`), send `connected` and `start` (fresh
//! `streamSid`, `callSid`, `accountSid`; μ-law 8 kHz mono; `customParameters` naming the caller as voicebench),
//! then one `media` message per caller frame (20 ms by default: 160 bytes of μ-law), with string counters as Twilio
//! sends them, and `stop` when the call ends. The `callSid` is the session id.
//!
//! The reader stamps every frame before decoding it. Agent `media` is queued on a playout timeline at 8000
//! samples/s ([`super::playout`]); a `mark` is echoed when the audio queued before it has played, or at once when a
//! `clear` discards it; `clear` flushes playback ([`AgentEvent::Interrupted`]) and ends the reply as cancelled.
//! Twilio never says a reply is over: it ends when its audio stops. Twilio carries no tool calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value as Json, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::playout::Replies;
use super::secret::Secrets;
use super::ws::{self, Decoder, Out, WsProtocol, WsSession};
use super::{AgentEvent, ErrorCategory, Frame, ResponseStatus, SessionError};
use crate::audio::mulaw;
use crate::scenario::{Scenario, Target};

/// μ-law 8 kHz both ways.
pub const RATE: u32 = 8_000;

/// Encodes caller samples (8 kHz) as the base64 μ-law payload of a `media` message (the envelope carries
/// per-call counters, so it is written at send time).
pub fn encode_frame(samples: &[i16]) -> Frame {
    Frame { samples: samples.into(), wire: Message::Text(Utf8Bytes::from(B64.encode(mulaw::encode_all(samples)))) }
}

/// The harness's `media` message: counters as JSON strings, as Twilio sends them.
pub fn media_message(seq: u64, chunk: u64, timestamp_ms: u64, payload: &str, stream_sid: &str) -> String {
    format!(
        r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{timestamp_ms}","payload":"{payload}"}},"streamSid":"{stream_sid}"}}"#
    )
}

/// The Twilio decoder: agent `media` on a playout timeline, marks echoed when the audio before them has played.
#[derive(Debug)]
pub struct DecodeState {
    /// Reply bookkeeping, end detection and the playout clock.
    pub replies: Replies,
    /// Marks not yet echoed: name and when the audio before them has played (at most [`ws::MAX_ITEMS`]).
    pub marks: Vec<(String, Instant)>,
}

impl Default for DecodeState {
    fn default() -> Self {
        Self { replies: Replies::new(RATE), marks: Vec::new() }
    }
}

impl DecodeState {
    /// The next instant something is due: a mark echo or the end of a quiet reply.
    pub fn due(&self) -> Option<Instant> {
        self.marks.iter().map(|m| m.1).chain(self.replies.due()).min()
    }

    /// Runs what is due at `now`: mark names to echo, and events.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<AgentEvent>) -> Vec<String> {
        let mut echo = Vec::new();
        self.marks.retain(|(name, due)| {
            if *due <= now {
                echo.push(name.clone());
                false
            } else {
                true
            }
        });
        if self.replies.due().is_some_and(|d| d <= now)
            && let Some(at) = self.replies.end()
        {
            out.push(AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false });
        }
        echo
    }
}

/// Decodes one agent message (already stamped) into agent events; returns mark names to echo now. Pure, for the
/// fixture tests.
pub fn decode_message(at: Instant, v: &Json, st: &mut DecodeState) -> (Vec<AgentEvent>, Vec<String>) {
    let mut out = Vec::new();
    let mut echo = Vec::new();
    let protocol = |message: String| AgentEvent::Error { at, category: ErrorCategory::Protocol, message };
    match v["event"].as_str().unwrap_or("") {
        "media" => match v["media"]["payload"].as_str().and_then(|p| B64.decode(p).ok()) {
            Some(bytes) if !bytes.is_empty() => {
                let samples = mulaw::decode_all(&bytes);
                let (item, _) = st.replies.audio(at, samples.len());
                out.push(AgentEvent::Audio { at, item, samples });
            }
            Some(_) => {}
            None => out.push(protocol("media.payload is not base64".into())),
        },
        "mark" => {
            let name = ws::cut(v["mark"]["name"].as_str().unwrap_or_default(), ws::MAX_ID).to_string();
            match st.replies.play_end().filter(|e| *e > at) {
                Some(_) if st.marks.len() >= ws::MAX_ITEMS => {
                    out.push(protocol(format!("more than {} marks waiting for playout", ws::MAX_ITEMS)))
                }
                Some(due) => st.marks.push((name, due)),
                None => echo.push(name),
            }
        }
        "clear" => {
            out.push(AgentEvent::Interrupted { at });
            st.replies.flush(at);
            echo.extend(st.marks.drain(..).map(|m| m.0));
            if let Some(done) = st.replies.end() {
                out.push(AgentEvent::ResponseDone {
                    at: done,
                    status: ResponseStatus::Cancelled,
                    had_tool_call: false,
                });
            }
        }
        _ => {}
    }
    (out, echo)
}

/// Ids and counters of one stream.
#[derive(Debug)]
struct Ids {
    stream_sid: String,
    call_sid: String,
    account_sid: String,
    /// `sequenceNumber` of the next message (shared with the reader's mark echoes).
    seq: AtomicU64,
}

impl Ids {
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The echo of mark `name`.
    fn mark(&self, name: &str) -> Message {
        let m = json!({"event": "mark", "sequenceNumber": self.next().to_string(), "streamSid": self.stream_sid,
            "mark": {"name": name}});
        Message::Text(m.to_string().into())
    }
}

/// The read loop's half: the decoder state and the ids its mark echoes carry.
struct Reader {
    st: DecodeState,
    ids: Arc<Ids>,
}

impl Reader {
    fn emit(&self, (events, echo): (Vec<AgentEvent>, Vec<String>), out: &mut Out) {
        out.send.extend(echo.iter().map(|name| self.ids.mark(name)));
        out.events.extend(events);
    }
}

impl Decoder for Reader {
    type Command = ();

    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out) {
        if let Some(v) = ws::frame_json(at, msg, true, out) {
            let r = decode_message(at, &v, &mut self.st);
            self.emit(r, out);
        }
    }

    fn due(&self) -> Option<Instant> {
        self.st.due()
    }

    fn on_timer(&mut self, now: Instant, out: &mut Out) {
        let mut events = Vec::new();
        let echo = self.st.on_timer(now, &mut events);
        self.emit((events, echo), out);
    }
}

/// Twilio's sending side: the stream's ids and counters (each `media` message carries them).
pub struct Side {
    ids: Arc<Ids>,
    chunk: u64,
    samples_sent: u64,
    stopped: bool,
}

impl WsProtocol for Side {
    type Command = ();
    const NAME: &'static str = "Twilio Media Streams";

    async fn send_frame(s: &mut Twilio, frame: &Frame) -> Result<(), SessionError> {
        let t = &mut s.side;
        t.chunk += 1;
        let timestamp = t.samples_sent * 1000 / RATE as u64;
        t.samples_sent += frame.samples.len() as u64;
        let payload = frame.wire.to_text().unwrap_or_default();
        let text = media_message(t.ids.next(), t.chunk, timestamp, payload, &t.ids.stream_sid);
        s.conn.send(Message::Text(text.into())).await
    }

    async fn close(s: &mut Twilio) {
        let t = &mut s.side;
        if !t.stopped {
            t.stopped = true;
            let stop = json!({"event": "stop", "sequenceNumber": t.ids.next().to_string(),
                "streamSid": t.ids.stream_sid,
                "stop": {"accountSid": t.ids.account_sid, "callSid": t.ids.call_sid}});
            let _ = s.conn.send(Message::Text(stop.to_string().into())).await;
        }
        s.conn.close().await
    }
}

/// A reader with made-up ids, for the property tests.
#[cfg(test)]
pub(crate) fn reader_for_tests() -> impl Decoder<Command = ()> {
    let ids =
        Ids { stream_sid: "MZ0".into(), call_sid: "CA0".into(), account_sid: "AC0".into(), seq: AtomicU64::new(1) };
    Reader { st: DecodeState::default(), ids: Arc::new(ids) }
}

/// A call placed by voicebench acting as Twilio.
pub type Twilio = WsSession<Side>;

impl Twilio {
    /// Dials the agent server and starts the stream, within the scenario's `connect_timeout_ms`.
    pub async fn connect(scenario: &Scenario, target: &Target) -> Result<Self, SessionError> {
        let url = target.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
        let secrets = Secrets::from_url(&url);
        let req = ws::request(&url, &secrets)?;
        let ids = Arc::new(Ids {
            stream_sid: format!("MZ{}", ws::fresh_hex(32)),
            call_sid: format!("CA{}", ws::fresh_hex(32)),
            account_sid: format!("AC{}", ws::fresh_hex(32)),
            seq: AtomicU64::new(1),
        });
        let name = target.name.get_ref().clone();
        let scenario_name = scenario.name.clone();
        ws::within(scenario, async move {
            let (sink, stream) = ws::dial(req, &secrets).await?;
            let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
            ws::send(&sink, Message::Text(connected.to_string().into())).await?;
            let start = json!({"event": "start", "sequenceNumber": ids.next().to_string(),
                "start": {"accountSid": ids.account_sid, "streamSid": ids.stream_sid, "callSid": ids.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"caller": "voicebench", "target": name, "scenario": scenario_name},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1}},
                "streamSid": ids.stream_sid});
            ws::send(&sink, Message::Text(start.to_string().into())).await?;
            let reader = Reader { st: DecodeState::default(), ids: ids.clone() };
            let conn = ws::spawn_reader(stream, sink, reader, secrets);
            let session_id = Some(ids.call_sid.clone());
            let side = Side { ids, chunk: 0, samples_sent: 0, stopped: false };
            Ok(WsSession { conn, input_rate: RATE, output_rate: RATE, session_id, side })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    const FIXTURE: &str = "twilio_media_streams_assembled.json";

    #[tokio::test(start_paused = true)]
    async fn agent_messages_of_the_fixture_parse_and_marks_wait_for_playout() {
        let f = crate::protocol_fixture(FIXTURE);
        let t0 = Instant::now();
        let mut st = DecodeState::default();
        let mut msgs: Vec<Json> = f["server_to_twilio"].as_array().unwrap().clone();
        // The fixture's payload is a placeholder: 100 ms of real μ-law instead.
        msgs[0]["media"]["payload"] = json!(B64.encode(mulaw::encode_all(&[1000i16; 800])));
        let (out, echo) = decode_message(t0, &msgs[0], &mut st);
        assert!(matches!(&out[..], [AgentEvent::Audio { item: 0, samples, .. }] if samples.len() == 800));
        assert!(echo.is_empty());
        let (_, echo) = decode_message(t0, &msgs[1], &mut st);
        assert!(echo.is_empty(), "the mark waits until the 100 ms before it have played");
        assert_eq!(st.due(), Some(t0 + Duration::from_millis(100)));
        let mut evs = Vec::new();
        assert_eq!(st.on_timer(t0 + Duration::from_millis(100), &mut evs), vec!["resp_1:chunk_7".to_string()]);
        // More audio, a mark behind it, then clear: flush, the mark echoed at once, the reply cancelled.
        decode_message(t0 + Duration::from_millis(150), &msgs[0], &mut st);
        decode_message(t0 + Duration::from_millis(150), &msgs[1], &mut st);
        let (out, echo) = decode_message(t0 + Duration::from_millis(180), &msgs[2], &mut st);
        assert_eq!(echo, vec!["resp_1:chunk_7".to_string()]);
        assert!(matches!(out[0], AgentEvent::Interrupted { .. }));
        assert!(matches!(out[1], AgentEvent::ResponseDone { status: ResponseStatus::Cancelled, .. }));
    }

    #[test]
    fn harness_messages_match_the_fixture_shapes() {
        let f = crate::protocol_fixture(FIXTURE);
        let ours = encode_frame(&[0i16; 160]);
        assert_eq!(B64.decode(ours.wire.to_text().unwrap()).unwrap().len(), 160, "20 ms = 160 bytes of μ-law");
        let theirs = &f["twilio_to_server"][2];
        let mine: Json =
            serde_json::from_str(&media_message(2, 1, 5, "<base64 160 bytes mu-law>", "MZ<32 hex>")).unwrap();
        assert_eq!(&mine, theirs, "the media message is the fixture's, field for field");
    }
}
