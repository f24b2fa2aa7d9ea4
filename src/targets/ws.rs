//! WebSocket plumbing shared by the five WebSocket adapters (OpenAI Realtime, Gemini Live, ElevenLabs, Twilio,
//! ws-pcm): dialing (small read buffer, bounded messages, a refused upgrade categorised by its HTTP status, every
//! message scrubbed of secrets), the shared sink, set-up reads, what a close code means, and the one read loop
//! ([`spawn_reader`]) that each protocol plugs its [`Decoder`] into.
//!
//! The read loop owns the socket's receiving half and the decoder (so the decoder's state is task-local: no lock).
//! It stamps every frame with the clock before the decoder sees it, runs the decoder's timer (end of a quiet reply,
//! a Twilio mark echo) and the session side's commands (a tool result that needs state only the decoder has), sends
//! what the decoder asks to send (pongs, mark echoes, `response.create`) before delivering its events, and reports
//! a close, a read error or the end of the stream once, as `Closed` (after an error event for an error close code
//! or a protocol violation). Every text it delivers is scrubbed of the session's secrets, and error messages and
//! close reasons are bounded ([`crate::model::events::bound_text`]).

use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::secret::{Secrets, without_query};
use super::{AgentEvent, ErrorCategory, Frame, Session, SessionError};
use crate::model::events::bound_text;
use crate::scenario::Scenario;

/// The largest message (and frame) a provider may send: 16 MiB, far above any real event (OpenAI's audio deltas
/// are kilobytes) and far below what would hurt. A larger one ends the call as a protocol error.
pub const MAX_MESSAGE: usize = 16 << 20;
/// The longest id (session, item, call, mark name) kept from the wire; a longer one is cut.
pub const MAX_ID: usize = 256;
/// The most audio items (or open tool calls, or pending marks) a session tracks; beyond it the provider is broken.
pub const MAX_ITEMS: usize = 4096;
/// The most bytes of tool-call arguments taken from the wire; a longer call is a protocol error.
pub const MAX_ARGUMENTS: usize = 64 * 1024;
/// The longest transcript fragment kept from one message, bytes (a turn keeps at most `caller::turns::MAX_SAID`).
pub const MAX_FRAGMENT: usize = 4096;

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Its sending half, shared by the caller's side and the reader task (pongs, mark echoes).
pub type Sink = Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>;
/// Its receiving half.
pub type Stream = SplitStream<Ws>;

/// A request for `url`, or a Connect error that does not quote the URL's secrets.
pub fn request(url: &str, secrets: &Secrets) -> Result<Request<()>, SessionError> {
    url.into_client_request().map_err(|e| {
        SessionError::new(ErrorCategory::Connect, secrets.scrub(&format!("bad URL {}: {e}", without_query(url))))
    })
}

/// The key in environment variable `var`, added to `secrets`; an Auth error naming the variable when it is unset.
pub fn env_key(var: &str, secrets: &mut Secrets) -> Result<String, SessionError> {
    let key = std::env::var(var)
        .map_err(|_| SessionError::new(ErrorCategory::Auth, format!("environment variable {var} is not set")))?;
    secrets.add(&key);
    Ok(key)
}

/// A header value `prefix` + the key in `var` (added to `secrets`); a bad value is reported without the key.
pub fn key_header(var: &str, prefix: &str, secrets: &mut Secrets) -> Result<HeaderValue, SessionError> {
    let key = env_key(var, secrets)?;
    HeaderValue::from_str(&format!("{prefix}{key}"))
        .map_err(|_| SessionError::new(ErrorCategory::Auth, format!("{var} holds characters a header cannot")))
}

/// A request for `url` carrying the key of `key_env` (if the target names one) in header `name` after `prefix`,
/// and the secrets to scrub from every message of the session (the URL's credential parameters and the key).
pub fn keyed_request(
    url: &str,
    key_env: Option<&str>,
    name: &'static str,
    prefix: &str,
) -> Result<(Request<()>, Secrets), SessionError> {
    let mut secrets = Secrets::from_url(url);
    let mut req = request(url, &secrets)?;
    if let Some(var) = key_env {
        req.headers_mut().insert(name, key_header(var, prefix, &mut secrets)?);
    }
    Ok((req, secrets))
}

/// Dials `req` (bounded by nothing: callers wrap the whole set-up in the scenario's connect timeout).
pub async fn dial(req: Request<()>, secrets: &Secrets) -> Result<(Sink, Stream), SessionError> {
    let shown = without_query(&req.uri().to_string()).to_string();
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .map_err(|e| dial_error(&e, &shown, secrets))?;
    let (sink, stream) = ws.split();
    Ok((Arc::new(tokio::sync::Mutex::new(sink)), stream))
}

/// A failed dial, categorised by the HTTP status of a refused upgrade (401/403 auth, 429 rate limit with its
/// `Retry-After`, 5xx provider error, anything else connect), with the start of the refusal's body.
pub fn dial_error(e: &WsError, shown: &str, secrets: &Secrets) -> SessionError {
    let (category, detail) = match e {
        WsError::Http(resp) => {
            let status = resp.status();
            let category = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorCategory::Auth,
                StatusCode::TOO_MANY_REQUESTS => ErrorCategory::RateLimit,
                s if s.is_server_error() => ErrorCategory::ProviderError,
                _ => ErrorCategory::Connect,
            };
            let mut detail = format!("HTTP {status}");
            if let Some(after) = resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
                detail.push_str(&format!(" (Retry-After: {})", cut(after, 64)));
            }
            let body = resp.body().as_deref().unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
            if !text.trim().is_empty() {
                detail.push_str(&format!(": {}", text.trim()));
            }
            (category, detail)
        }
        WsError::Capacity(_) | WsError::Protocol(_) | WsError::Utf8(_) => (ErrorCategory::Protocol, e.to_string()),
        _ => (ErrorCategory::Connect, e.to_string()),
    };
    SessionError::new(category, secrets.scrub(&format!("connecting to {shown}: {detail}")))
}

/// What a read error means for the call: a protocol error (too big, not UTF-8, a broken frame) or a plain
/// disconnect (a reset, an I/O error), and the message.
pub fn read_error(e: &WsError) -> (ErrorCategory, String) {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            (ErrorCategory::Protocol, format!("a message of {size} bytes, over the bound of {max_size}"))
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => (ErrorCategory::Disconnect, e.to_string()),
        WsError::Capacity(_) | WsError::Protocol(_) | WsError::Utf8(_) | WsError::AttackAttempt => {
            (ErrorCategory::Protocol, e.to_string())
        }
        _ => (ErrorCategory::Disconnect, e.to_string()),
    }
}

/// `s` cut to at most `max` bytes at a character boundary (ids and names off the wire).
pub use crate::secret::cut;

/// Runs a set-up future within the scenario's `connect_timeout_ms`.
pub async fn within<T>(
    scenario: &Scenario,
    f: impl Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    let limit = Duration::from_millis(scenario.defaults.connect_timeout_ms as u64);
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(SessionError::new(ErrorCategory::Connect, format!("no session within {} ms", limit.as_millis()))),
    }
}

/// Sends one message.
pub async fn send(sink: &Sink, msg: Message) -> Result<(), SessionError> {
    sink.lock()
        .await
        .send(msg)
        .await
        .map_err(|e| SessionError::new(ErrorCategory::Disconnect, format!("WebSocket: {e}")))
}

/// The next JSON message during set-up (text or binary frames). A close frame is reported with its code and reason,
/// categorised like one in the middle of a call.
pub async fn next_json(stream: &mut Stream, secrets: &Secrets) -> Result<Json, SessionError> {
    loop {
        let bytes = match stream.next().await {
            Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            Some(Ok(Message::Close(c))) => {
                let (code, reason) = close_parts(c.as_ref());
                let (cat, msg) = close_error(code, &reason);
                let cat = if cat == ErrorCategory::Disconnect { ErrorCategory::Connect } else { cat };
                return Err(SessionError::new(cat, secrets.scrub(&format!("during set-up: {msg}"))));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let (cat, msg) = read_error(&e);
                let cat = if cat == ErrorCategory::Disconnect { ErrorCategory::Connect } else { cat };
                return Err(SessionError::new(cat, secrets.scrub(&format!("during set-up: {msg}"))));
            }
            None => return Err(SessionError::new(ErrorCategory::Connect, "closed during set-up")),
        };
        return serde_json::from_slice(&bytes)
            .map_err(|e| SessionError::new(ErrorCategory::Protocol, format!("not JSON during set-up: {e}")));
    }
}

/// A close frame's code (1005 when it had none) and reason.
pub fn close_parts(c: Option<&CloseFrame>) -> (u16, String) {
    c.map_or((1005, String::new()), |c| (u16::from(c.code), c.reason.to_string()))
}

/// What a close code means for the call: the category, and the message (always carrying the code). Providers that
/// report errors only by closing (Gemini: 1007 invalid argument, 1008 policy / not supported, 1011 internal)
/// are reported as errors of the right kind, never as a plain disconnect.
pub fn close_error(code: u16, reason: &str) -> (ErrorCategory, String) {
    let r = reason.to_ascii_lowercase();
    let cat = if r.contains("api key") || r.contains("unauthenticated") || r.contains("permission") || code == 4001 {
        ErrorCategory::Auth
    } else if r.contains("quota") || r.contains("resource_exhausted") || r.contains("rate limit") || code == 1013 {
        ErrorCategory::RateLimit
    } else {
        match code {
            1007 => ErrorCategory::Protocol,
            1008 | 1011 | 1003 | 1009 | 1010 | 1014 | 4000..=4999 => ErrorCategory::ProviderError,
            _ => ErrorCategory::Disconnect,
        }
    };
    let msg = if reason.is_empty() { format!("close {code}") } else { format!("close {code}: {reason}") };
    (cat, msg)
}

/// Reports a close frame (or a lost socket) on the event channel: an error event for error codes, then `Closed`.
pub async fn report_close(tx: &mpsc::Sender<AgentEvent>, at: Instant, c: Option<&CloseFrame>, secrets: &Secrets) {
    let (code, reason) = close_parts(c);
    let (category, msg) = close_error(code, &reason);
    let msg = secrets.scrub(&msg);
    if category != ErrorCategory::Disconnect {
        let _ = tx.send(AgentEvent::Error { at, category, message: msg.clone() }).await;
    }
    let _ = tx.send(AgentEvent::Closed { at, reason: msg }).await;
}

/// What a decoder produced from one frame, timer or command: events for the caller, and messages to send back
/// (sent first, in order).
#[derive(Debug, Default)]
pub struct Out {
    /// Agent events, in order.
    pub events: Vec<AgentEvent>,
    /// Messages to send on the socket (pongs, mark echoes, follow-up requests).
    pub send: Vec<Message>,
}

impl Out {
    /// Adds an event.
    pub fn event(&mut self, e: AgentEvent) {
        self.events.push(e);
    }

    /// Adds a protocol error event.
    pub fn protocol_error(&mut self, at: Instant, message: impl Into<String>) {
        self.events.push(AgentEvent::Error { at, category: ErrorCategory::Protocol, message: message.into() });
    }
}

/// One protocol's half of the read loop: it turns frames into events and keeps whatever state that needs.
pub trait Decoder: Send + 'static {
    /// What the session side asks of the reader (state that only the decoder holds, such as the item ids a
    /// truncation names). `()` for a protocol with none.
    type Command: Send + 'static;

    /// One data frame (text or binary: pings, pongs and raw frames never reach it), stamped at `at` before decoding.
    fn on_frame(&mut self, at: Instant, msg: &Message, out: &mut Out);

    /// When [`Decoder::on_timer`] is next due, if ever.
    fn due(&self) -> Option<Instant> {
        None
    }

    /// The instant [`Decoder::due`] named has come.
    fn on_timer(&mut self, _now: Instant, _out: &mut Out) {}

    /// A command from the session side.
    fn on_command(&mut self, _cmd: Self::Command, _out: &mut Out) {}
}

/// The JSON of a text frame (and of a binary one, with `binary`): `None` for other frames, and for one that is not
/// JSON after a protocol error saying so.
pub fn frame_json(at: Instant, msg: &Message, binary: bool, out: &mut Out) -> Option<Json> {
    let parsed = match msg {
        Message::Text(t) => serde_json::from_str(t),
        Message::Binary(b) if binary => serde_json::from_slice(b),
        _ => return None,
    };
    parsed.map_err(|e| out.protocol_error(at, format!("not JSON: {e}"))).ok()
}

/// The session side of a connection: the shared sink, the event channel and the reader's command channel.
pub struct Conn<C> {
    /// The sending half (shared with the reader).
    pub sink: Sink,
    /// Events from the reader.
    pub events: mpsc::Receiver<AgentEvent>,
    commands: mpsc::Sender<C>,
}

impl<C: Send + 'static> Conn<C> {
    /// Hands the reader a command; a Disconnect error once the reader has stopped.
    pub async fn command(&self, c: C) -> Result<(), SessionError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| SessionError::new(ErrorCategory::Disconnect, "the connection's reader has stopped"))
    }

    /// Sends one message.
    pub async fn send(&self, msg: Message) -> Result<(), SessionError> {
        send(&self.sink, msg).await
    }

    /// Sends a close frame (errors ignored: the call is over either way).
    pub async fn close(&self) {
        let _ = send(&self.sink, Message::Close(None)).await;
    }
}

/// Starts the read loop for `stream` with `decoder`, and returns the session side.
pub fn spawn_reader<D: Decoder>(stream: Stream, sink: Sink, decoder: D, secrets: Secrets) -> Conn<D::Command> {
    let (tx, events) = mpsc::channel(1024);
    let (commands, rx) = mpsc::channel(64);
    tokio::spawn(read_loop(stream, sink.clone(), tx, rx, decoder, secrets));
    Conn { sink, events, commands }
}

/// Masks the secrets in every text an event carries, and bounds error text and close reasons.
fn scrub_event(e: &mut AgentEvent, secrets: &Secrets) {
    match e {
        AgentEvent::Error { message: text, .. } | AgentEvent::Closed { reason: text, .. } => {
            *text = bound_text(&secrets.scrub(text))
        }
        AgentEvent::ToolCall { call_id, name, arguments, .. } => {
            for text in [call_id, name, arguments] {
                *text = secrets.scrub(text);
            }
        }
        AgentEvent::Transcript { text, .. } => *text = secrets.scrub(text),
        _ => {}
    }
}

/// The read loop: see the module doc.
async fn read_loop<D: Decoder>(
    mut stream: Stream,
    sink: Sink,
    tx: mpsc::Sender<AgentEvent>,
    mut commands: mpsc::Receiver<D::Command>,
    mut dec: D,
    secrets: Secrets,
) {
    let mut out = Out::default();
    loop {
        let due = dec.due();
        let mut last = false;
        tokio::select! {
            m = stream.next() => {
                // The receive instant: before any parsing or decoding.
                let at = Instant::now();
                match m {
                    Some(Ok(Message::Close(c))) => {
                        report_close(&tx, at, c.as_ref(), &secrets).await;
                        return;
                    }
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => dec.on_frame(at, &m, &mut out),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        let (category, message) = read_error(&e);
                        if category != ErrorCategory::Disconnect {
                            out.event(AgentEvent::Error { at, category, message: message.clone() });
                        }
                        out.event(AgentEvent::Closed { at, reason: message });
                        last = true;
                    }
                    None => {
                        out.event(AgentEvent::Closed { at, reason: "connection closed".into() });
                        last = true;
                    }
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                dec.on_timer(Instant::now(), &mut out);
            }
            c = commands.recv() => match c {
                Some(c) => dec.on_command(c, &mut out),
                // The session is gone (its events with it): nobody is listening, and the socket can go.
                None => return,
            },
        }
        for m in out.send.drain(..) {
            let _ = send(&sink, m).await;
        }
        for mut e in out.events.drain(..) {
            scrub_event(&mut e, &secrets);
            if tx.send(e).await.is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// What one protocol adds to a [`WsSession`] once connected (its set-up is its own `connect`): the hooks where
/// sending differs. The defaults send a frame as encoded, refuse tool results, ignore truncation and send a close
/// frame.
#[allow(async_fn_in_trait)]
pub trait WsProtocol: Sized {
    /// The read loop's command type (its [`Decoder::Command`]).
    type Command: Send + 'static;
    /// The protocol's name, for errors.
    const NAME: &'static str;

    /// Sends one frame of caller audio.
    async fn send_frame(s: &mut WsSession<Self>, frame: &Frame) -> Result<(), SessionError> {
        s.conn.send(frame.wire.clone()).await
    }

    /// Answers a tool call.
    async fn send_tool_result(_s: &mut WsSession<Self>, _call_id: &str, _output: &str) -> Result<(), SessionError> {
        Err(SessionError::new(ErrorCategory::Protocol, format!("{} carries no tool calls", Self::NAME)))
    }

    /// Reports how much of an audio item the caller heard.
    async fn truncate(_s: &mut WsSession<Self>, _item: u32, _played_ms: u32) -> Result<(), SessionError> {
        Ok(())
    }

    /// Ends the session.
    async fn close(s: &mut WsSession<Self>) {
        s.conn.close().await
    }
}

/// An established WebSocket session of protocol `P`: the connection, what the set-up learned, and the protocol's
/// own sending state.
pub struct WsSession<P: WsProtocol> {
    /// The connection and its read loop.
    pub conn: Conn<P::Command>,
    /// Rate of the caller's audio.
    pub input_rate: u32,
    /// Rate of the agent's audio.
    pub output_rate: u32,
    /// The provider's session id (bounded and scrubbed), or the one voicebench made up.
    pub session_id: Option<String>,
    /// The protocol's sending state.
    pub side: P,
}

impl<P: WsProtocol> Session for WsSession<P> {
    fn input_rate(&self) -> u32 {
        self.input_rate
    }

    fn output_rate(&self) -> u32 {
        self.output_rate
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        P::send_frame(self, frame).await
    }

    async fn send_tool_result(&mut self, call_id: &str, output: &str) -> Result<(), SessionError> {
        P::send_tool_result(self, call_id, output).await
    }

    async fn truncate(&mut self, item: u32, played_ms: u32) -> Result<(), SessionError> {
        P::truncate(self, item, played_ms).await
    }

    fn events(&mut self) -> &mut mpsc::Receiver<AgentEvent> {
        &mut self.conn.events
    }

    async fn close(&mut self) {
        P::close(self).await
    }
}

/// A fresh id of `hex` hexadecimal digits: unique within the process, different across runs.
pub fn fresh_hex(hex: usize) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut rng = crate::stats::SplitMix64::new(t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ std::process::id() as u64);
    let mut s = String::with_capacity(hex);
    while s.len() < hex {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(hex);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_errors_of_their_kind() {
        let (c, m) = close_error(1007, "realtime_input.media_chunks is deprecated. Use audio, video, or text instead.");
        assert_eq!(c, ErrorCategory::Protocol);
        assert!(m.starts_with("close 1007: realtime_input.media_chunks"), "{m}");
        assert_eq!(
            close_error(1008, "Operation is not implemented, or supported, or enabled.").0,
            ErrorCategory::ProviderError
        );
        assert_eq!(close_error(1008, "API key not valid. Please pass a valid API key.").0, ErrorCategory::Auth);
        assert_eq!(close_error(1011, "Internal error encountered.").0, ErrorCategory::ProviderError);
        assert_eq!(close_error(1000, "").0, ErrorCategory::Disconnect);
        assert_eq!(close_error(1000, "").1, "close 1000");
        assert_ne!(fresh_hex(32), fresh_hex(32));
        assert_eq!(fresh_hex(32).len(), 32);
    }

    const KEY: &str = "sk-canary-0123456789";

    /// A server on 127.0.0.1:0 that answers every upgrade with `response` (raw HTTP); returns its ws:// URL.
    async fn refusing(response: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        url
    }

    fn secrets() -> Secrets {
        let mut s = Secrets::default();
        s.add(KEY);
        s
    }

    #[tokio::test]
    async fn refused_upgrades_are_categorised_by_their_status() {
        let cases = [
            ("401 Unauthorized", "", ErrorCategory::Auth),
            ("403 Forbidden", "", ErrorCategory::Auth),
            ("429 Too Many Requests", "Retry-After: 7\r\n", ErrorCategory::RateLimit),
            ("500 Internal Server Error", "", ErrorCategory::ProviderError),
            ("503 Service Unavailable", "", ErrorCategory::ProviderError),
            ("302 Found", "Location: http://127.0.0.1:1/\r\n", ErrorCategory::Connect),
            ("404 Not Found", "", ErrorCategory::Connect),
        ];
        for (status, extra, want) in cases {
            // The body echoes the key and says "429" whatever the status: only the status may decide.
            let body = format!("{{\"error\": \"bad key {KEY} (429)\"}}");
            let response = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let url = refusing(response).await;
            let err = match dial(request(&url, &secrets()).unwrap(), &secrets()).await {
                Err(e) => e,
                Ok(_) => panic!("{status}: the upgrade was refused"),
            };
            assert_eq!(err.category, want, "{status}: {}", err.message);
            assert!(err.message.contains(&status[..3]) && !err.message.contains(KEY), "{status}: {}", err.message);
            if status.starts_with("429") {
                assert!(err.message.contains("Retry-After: 7"), "{}", err.message);
            }
        }
        // Nobody listening: a connect error.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let req = request(&format!("ws://127.0.0.1:{port}/"), &secrets()).unwrap();
        assert_eq!(dial(req, &secrets()).await.err().map(|e| e.category), Some(ErrorCategory::Connect));
    }

    /// A WebSocket server on 127.0.0.1:0 that sends `msgs` to its first client, then waits for it to go.
    async fn sending(msgs: Vec<Message>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
            for m in msgs {
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(_)) = ws.next().await {}
        });
        url
    }

    /// Every event the read loop delivers (with the ws-pcm decoder) until the socket is reported closed.
    async fn events_from(url: &str) -> Vec<AgentEvent> {
        let (sink, stream) = dial(request(url, &secrets()).unwrap(), &secrets()).await.unwrap();
        let mut conn = spawn_reader(stream, sink, super::super::ws_pcm::Decode::new(16_000), secrets());
        let mut out = Vec::new();
        while let Some(e) = tokio::time::timeout(Duration::from_secs(10), conn.events.recv()).await.unwrap() {
            let closed = matches!(e, AgentEvent::Closed { .. });
            out.push(e);
            if closed {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn an_oversized_message_is_a_protocol_error() {
        let url =
            sending(vec![Message::Binary(vec![0u8; 2].into()), Message::Binary(vec![0u8; MAX_MESSAGE + 2].into())])
                .await;
        let out = events_from(&url).await;
        match &out[..] {
            [
                AgentEvent::Audio { .. },
                AgentEvent::Error { category: ErrorCategory::Protocol, message, .. },
                AgentEvent::Closed { .. },
            ] => {
                assert_eq!(
                    message,
                    &format!("a message of {} bytes, over the bound of {MAX_MESSAGE}", MAX_MESSAGE + 2)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_fragmented_message_over_the_bound_is_a_protocol_error() {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        // Seventeen 1 MiB fragments: each frame is small, the message is not.
        let mib = vec![0u8; 1 << 20];
        let mut frames = vec![Message::Frame(Frame::message(mib.clone(), OpCode::Data(Data::Binary), false))];
        frames.extend(
            (1..17).map(|k| Message::Frame(Frame::message(mib.clone(), OpCode::Data(Data::Continue), k == 16))),
        );
        let out = events_from(&sending(frames).await).await;
        assert!(
            matches!(&out[..], [AgentEvent::Error { category: ErrorCategory::Protocol, message, .. }, AgentEvent::Closed { .. }]
                if message.contains("over the bound of 16777216")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn a_dropped_session_lets_its_socket_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
            // One event, then silence: the provider never closes, and nothing would make the reader notice.
            ws.send(Message::text(r#"{"type":"transcript","text":"hi"}"#)).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        });
        let (sink, stream) = dial(request(&url, &secrets()).unwrap(), &secrets()).await.unwrap();
        let mut conn = spawn_reader(stream, sink, super::super::ws_pcm::Decode::new(16_000), secrets());
        assert!(matches!(conn.events.recv().await, Some(AgentEvent::Transcript { .. })));
        drop(conn);
        tokio::time::timeout(Duration::from_secs(2), server).await.expect("the socket was let go").unwrap();
    }

    #[tokio::test]
    async fn provider_error_text_is_bounded_and_scrubbed() {
        let text = format!("{KEY} {}", "e".repeat(20_480 - KEY.len() - 1));
        let error = serde_json::json!({"type": "error", "message": text}).to_string();
        let transcript = serde_json::json!({"type": "transcript", "role": "agent", "text": format!("key {KEY}")});
        let url =
            sending(vec![Message::text(transcript.to_string()), Message::text(error), Message::Close(None)]).await;
        let out = events_from(&url).await;
        match &out[..] {
            [
                AgentEvent::Transcript { text, .. },
                AgentEvent::Error { category: ErrorCategory::ProviderError, message, .. },
                AgentEvent::Closed { .. },
            ] => {
                assert_eq!(text, "key ***");
                assert!(message.starts_with("*** eee"), "{}", &message[..20]);
                assert!(message.ends_with("… (truncated, 20463 bytes)"), "{}", &message[message.len() - 40..]);
            }
            other => panic!("{other:?}"),
        }
    }
}
