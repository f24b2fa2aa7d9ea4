//! The one server and session loop of every speech-to-speech wire of the sim (OpenAI Realtime, Gemini Live,
//! ElevenLabs, Twilio, ws-pcm): accept, upgrade, then drive the shared agent brain ([`super::brain::Brain`]: VAD,
//! the script's turns, reply planning, barge-in, ground truth, the profiles) under the protocol's [`Wire`].
//!
//! A protocol's sim is an [`Accept`] (its upgrade path and checks, a new session) and a [`Wire`]: it turns client
//! messages into calls on the brain (audio, a hand-ended turn, a tool result) and renders the brain's events as its
//! own messages. Everything about timing stays in the brain: the loop waits on the socket and the next deadline
//! (the brain's or the wire's own), runs what is due, renders, and flushes once per wake-up, so a step's
//! ground-truth instant and its bytes on the wire are as close as they can be, whatever the protocol.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::brain::{Brain, Ctx, Event};
use super::replies::WireFormat;
use super::{Shared, fault};
use crate::scenario::schema::SimFault;
use tokio_tungstenite::tungstenite::http::{HeaderMap, Uri};

/// Closes the session with a WebSocket close code, the way Gemini reports errors.
#[derive(Debug, Clone)]
pub(crate) struct Close {
    /// The code (1007 invalid payload, 1008 policy, …).
    pub code: u16,
    /// The reason text.
    pub reason: String,
}

impl Close {
    pub(crate) fn new(code: u16, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
}

/// One protocol's side of a simulated session.
pub(crate) trait Wire: Send + 'static {
    /// What the server sends as soon as the session opens (OpenAI's `session.created`), if anything.
    fn start(&mut self, _brain: &mut Brain, _out: &mut Out) {}
    /// Handles one client frame (text or binary). `Err` closes the session with that code.
    fn on_message(&mut self, brain: &mut Brain, msg: Message, at: Instant, out: &mut Out) -> Result<(), Close>;
    /// Renders one event of the brain.
    fn render(&mut self, brain: &mut Brain, ev: Event, out: &mut Out);
    /// The wire's own next deadline (keep-alive pings, delayed events), if any.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Runs the wire's own timer.
    fn on_timer(&mut self, _brain: &mut Brain, _now: Instant, _out: &mut Out) {}
}

/// The upgrade request as a wire sees it.
pub(crate) struct Upgrade {
    /// Path and query.
    pub uri: Uri,
    /// Its headers.
    pub headers: HeaderMap,
}

/// How a protocol's sim accepts a connection: the upgrade path it serves, and a new session for it.
pub(crate) trait Accept: Send + Sync + 'static {
    /// The upgrade path (`/…`).
    fn path(&self) -> &'static str;
    /// Whether the upgrade is accepted: by default, when it asks for [`Self::path`]; else the HTTP status and body.
    fn check(&self, up: &Upgrade) -> Result<(), (u16, String)> {
        let path = self.path();
        if up.uri.path().trim_end_matches('/') != path.trim_end_matches('/') {
            return Err((404, format!("voicebench sim: no such path {}; connect to {path}", up.uri.path())));
        }
        Ok(())
    }
    /// The wire state and its brain for a new connection.
    fn open(&self, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, up: &Upgrade) -> (Box<dyn Wire>, Brain);
}

/// The accept of a wire with fixed audio formats and no upgrade checks beyond its path.
pub(crate) struct Plain {
    /// The upgrade path.
    pub path: &'static str,
    /// Caller audio format.
    pub input: WireFormat,
    /// Agent audio format.
    pub output: WireFormat,
    /// The scenario's tools are declared from the start (an agent configured on the provider's side).
    pub tools: bool,
    /// A new session's wire state, given the input format.
    pub wire: fn(WireFormat) -> Box<dyn Wire>,
}

impl Accept for Plain {
    fn path(&self) -> &'static str {
        self.path
    }

    fn open(&self, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, _up: &Upgrade) -> (Box<dyn Wire>, Brain) {
        ((self.wire)(self.input), Brain::new(ctx, shared, idx, self.input, self.output, self.tools))
    }
}

/// What a wire queues to send in one wake-up.
pub(crate) type Out = Vec<Message>;

/// Accepts connections until `stop`; then closes every session and waits for them.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    accept: Arc<dyn Accept>,
    stop: watch::Receiver<bool>,
) {
    let stop2 = stop.clone();
    let handle = move |stream: TcpStream, idx: u64| {
        let _ = stream.set_nodelay(true);
        let (ctx, shared, stop, accept) = (ctx.clone(), shared.clone(), stop2.clone(), accept.clone());
        async move { connection(stream, ctx, shared, accept, idx, stop).await }
    };
    accept_until_stopped(listener, stop, Duration::from_secs(2), handle).await;
}

/// The accept loop of every sim server: each connection handled on its own task by `handle(stream, n)` (n counts
/// from 0 in accept order) until `stop`; then the sessions get `grace` to finish and the rest are aborted.
pub(crate) async fn accept_until_stopped<F, Fut>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    handle: F,
) where
    F: Fn(TcpStream, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                conns.spawn(handle(stream, n));
                n += 1;
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        conns.abort_all();
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connection(
    stream: TcpStream,
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    accept: Arc<dyn Accept>,
    idx: u64,
    stop: watch::Receiver<bool>,
) {
    let fault = ctx.fault;
    match fault {
        Some(SimFault::NoHandshake) => return hold(stop).await,
        Some(SimFault::Slowloris) => return slowloris(stream, stop).await,
        _ => {}
    }
    let mut upgrade = None;
    // The handshake API fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let up = Upgrade { uri: req.uri().clone(), headers: req.headers().clone() };
        if let Some(e) = fault.and_then(|f| refusal(f, &key_of(&up))) {
            return Err(e);
        }
        if let Err((status, body)) = accept.check(&up) {
            let mut e = ErrorResponse::new(Some(body));
            *e.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(e);
        }
        upgrade = Some(up);
        Ok(resp)
    };
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let Some(up) = upgrade else { return };
    let (wire, mut brain) = accept.open(ctx, shared, idx, &up);
    let key = key_of(&up);
    if fault == Some(SimFault::KeyEchoSessionId) {
        brain.set_session_id(format!("sess_{key}"));
    }
    match fault {
        Some(SimFault::StallWithoutReading) => {
            let _ws = ws;
            hold(stop).await
        }
        Some(SimFault::StallAfterAccept) => drain(ws, stop).await,
        _ => run(ws, wire, brain, Faults { fault, key, ..Faults::default() }, stop).await,
    }
}

/// The key the client presented on the upgrade (for the key-echoing faults).
fn key_of(up: &Upgrade) -> String {
    fault::presented_key(|n| up.headers.get(n).and_then(|v| v.to_str().ok()), up.uri.query().unwrap_or(""))
}

/// `m` as a first frame and continuation frames (`fragmented-message`): three parts of its payload.
fn fragments(m: Message) -> Vec<Message> {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let (kind, payload) = match m {
        Message::Text(t) => (Data::Text, tokio_tungstenite::tungstenite::Bytes::from(t)),
        Message::Binary(b) => (Data::Binary, b),
        other => return vec![other],
    };
    let n = payload.len();
    let cuts = [0, n / 3, 2 * n / 3, n];
    (0..3)
        .map(|i| {
            let opcode = OpCode::Data(if i == 0 { kind } else { Data::Continue });
            Message::Frame(Frame::message(payload.slice(cuts[i]..cuts[i + 1]), opcode, i == 2))
        })
        .collect()
}

/// What the session loop does after rendering, under a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Go on.
    Go,
    /// Send what is queued, then close 1011.
    Close1011,
    /// Send what is queued, then reset the TCP connection.
    Reset,
}

/// A fault's state in one session.
#[derive(Default)]
struct Faults {
    fault: Option<SimFault>,
    /// The key the client presented (echoed by the key-echoing faults).
    key: String,
    /// The mid-reply fault has fired.
    fired: bool,
    /// Nothing more goes out (after an error event).
    muted: bool,
    /// The error event that muted the session: the one message still sent after muting (the session loop clears
    /// whatever else the same round queued).
    last_words: Option<Message>,
}

/// Renders what the brain did since the last call; a mid-reply fault fires at the first reply audio.
fn render(wire: &mut dyn Wire, brain: &mut Brain, out: &mut Out, f: &mut Faults) -> After {
    for e in brain.take_events() {
        if f.muted {
            continue;
        }
        let Event::Audio { ms, .. } = &e else {
            wire.render(brain, e, out);
            continue;
        };
        let ms = *ms;
        let Some(fault) = f.fault.filter(|_| !f.fired) else {
            wire.render(brain, e, out);
            continue;
        };
        f.fired = true;
        match fault {
            SimFault::AudioFlood => {
                for _ in 0..(fault::FLOOD_MS / ms.max(1.0)).ceil() as usize {
                    wire.render(brain, e.clone(), out);
                }
            }
            SimFault::InvalidBase64 => wire.render(brain, Event::Audio { b64: "!!not*base64!!".into(), ms }, out),
            SimFault::OddByteLength => wire.render(brain, Event::Audio { b64: "AAAA".into(), ms }, out),
            SimFault::ErrorRateLimit | SimFault::ErrorServer | SimFault::KeyEchoErrorEvent => {
                let (ty, code, message) = match fault {
                    SimFault::ErrorRateLimit => ("rate_limit_error", "rate_limit_exceeded", String::new()),
                    SimFault::ErrorServer => ("server_error", "server_error", String::new()),
                    _ => {
                        ("invalid_request_error", "invalid_api_key", format!("Incorrect API key provided: {}.", f.key))
                    }
                };
                let message = if message.is_empty() {
                    "The server had an error while processing your request.".to_string()
                } else {
                    message
                };
                f.last_words = Some(Message::text(
                    serde_json::json!({"type": "error", "event_id": "event_sim_fault", "error": {"type": ty,
                        "code": code, "message": message, "param": null, "event_id": null}})
                    .to_string(),
                ));
                f.muted = true;
            }
            SimFault::FragmentedMessage => {
                let before = out.len();
                wire.render(brain, e, out);
                let rendered: Vec<Message> = out.drain(before..).collect();
                for m in rendered {
                    out.extend(fragments(m));
                }
            }
            other => {
                wire.render(brain, e, out);
                match other {
                    SimFault::Close1011MidReply => return After::Close1011,
                    SimFault::TcpResetMidReply => return After::Reset,
                    SimFault::MalformedJsonMidReply => {
                        out.push(Message::text(r#"{"type": "response.output_audio.delta", "delta": "#))
                    }
                    SimFault::OversizedMessage => out.push(Message::text(fault::oversized(fault::OVERSIZED_BYTES))),
                    _ => {}
                }
            }
        }
    }
    After::Go
}

/// Holds a connection open, doing nothing, until the sim stops.
async fn hold(mut stop: watch::Receiver<bool>) {
    let _ = stop.changed().await;
}

/// Reads and discards every message until the client closes or the sim stops (`stall-after-accept`).
async fn drain(mut ws: Ws, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            m = ws.next() => if !matches!(m, Some(Ok(_))) { return },
        }
    }
}

/// Reads the upgrade request, then trickles a `101` answer one byte every 500 ms (`slowloris`).
async fn slowloris(mut stream: TcpStream, mut stop: watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    for b in answer.iter().cycle().take(1 << 20) {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if stream.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The HTTP refusal of an upgrade-refusing fault; `key` is the key the client presented.
fn refusal(fault: SimFault, key: &str) -> Option<ErrorResponse> {
    let echo;
    let (status, body) = match fault {
        SimFault::KeyEcho401 => {
            echo = format!(
                r#"{{"error":{{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided: {key}."}}}}"#
            );
            (401, echo.as_str())
        }
        SimFault::KeyEchoUrl => {
            echo = format!(r#"{{"error":{{"message":"moved to ws://127.0.0.2:9/v1/realtime?api_key={key}"}}}}"#);
            (302, echo.as_str())
        }
        SimFault::Http401 => (
            401,
            r#"{"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided."}}"#,
        ),
        SimFault::Http403 => (
            403,
            r#"{"error":{"type":"invalid_request_error","code":"forbidden","message":"Your organization does not have access."}}"#,
        ),
        SimFault::Http429 => (
            429,
            r#"{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"Rate limit reached."}}"#,
        ),
        SimFault::Http500 => (500, r#"{"error":{"type":"server_error","message":"The server had an error."}}"#),
        SimFault::Http302 => (302, ""),
        _ => return None,
    };
    let mut e = ErrorResponse::new(Some(body.to_string()));
    *e.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if fault == SimFault::Http429 {
        e.headers_mut().insert("retry-after", tokio_tungstenite::tungstenite::http::HeaderValue::from_static("1"));
    }
    if fault == SimFault::Http302 {
        let to = tokio_tungstenite::tungstenite::http::HeaderValue::from_static("http://127.0.0.1:9/elsewhere");
        e.headers_mut().insert("location", to);
    }
    if fault == SimFault::KeyEchoUrl
        && let Ok(to) = tokio_tungstenite::tungstenite::http::HeaderValue::from_str(&format!(
            "ws://127.0.0.2:9/v1/realtime?api_key={key}"
        ))
    {
        e.headers_mut().insert("location", to);
    }
    Some(e)
}

/// Sends what is queued, flushing once; false when the socket failed.
async fn send(ws: &mut Ws, out: &mut Vec<Message>) -> bool {
    if out.is_empty() {
        return true;
    }
    for m in out.drain(..) {
        if ws.feed(m).await.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

/// The session loop: wait on the socket and the next deadline, run what is due, render, flush once.
async fn run(mut ws: Ws, mut wire: Box<dyn Wire>, mut brain: Brain, mut f: Faults, mut stop: watch::Receiver<bool>) {
    let mut out: Out = Vec::new();
    let fault = f.fault;
    if fault == Some(SimFault::MalformedJsonAtSetup) {
        out.push(Message::text("{\"type\": \"session.created\", \"session\": {"));
    }
    wire.start(&mut brain, &mut out);
    if !send(&mut ws, &mut out).await {
        return;
    }
    loop {
        let deadline = [brain.deadline(), wire.deadline()].into_iter().flatten().min();
        let after = tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = ws
                    .close(Some(CloseFrame { code: CloseCode::Away, reason: Utf8Bytes::from_static("simulator shutting down") }))
                    .await;
                return;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))),
                if deadline.is_some() => {
                let now = Instant::now();
                brain.tick(now);
                let after = render(wire.as_mut(), &mut brain, &mut out, &mut f);
                wire.on_timer(&mut brain, now, &mut out);
                after
            }
            msg = ws.next() => {
                let at = Instant::now();
                match msg {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) if fault == Some(SimFault::KeyEchoCloseReason) => {
                        // The way Gemini refuses a bad key: close 1008 at the first message, here quoting the key.
                        let reason = crate::secret::cut(&format!("API key not valid: {}", f.key), 120).to_string();
                        let frame = CloseFrame { code: CloseCode::Policy, reason: Utf8Bytes::from(reason) };
                        let _ = ws.close(Some(frame)).await;
                        return;
                    }
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        let closed = wire.on_message(&mut brain, m, at, &mut out);
                        let after = render(wire.as_mut(), &mut brain, &mut out, &mut f);
                        if let Err(c) = closed {
                            send(&mut ws, &mut out).await;
                            let frame = CloseFrame { code: CloseCode::from(c.code), reason: Utf8Bytes::from(c.reason) };
                            let _ = ws.close(Some(frame)).await;
                            return;
                        }
                        after
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => After::Go,
                }
            }
        };
        if f.muted {
            out.clear();
            out.extend(f.last_words.take());
        }
        if !send(&mut ws, &mut out).await {
            return;
        }
        match after {
            After::Go => {}
            After::Close1011 => {
                let frame = CloseFrame { code: CloseCode::Error, reason: Utf8Bytes::from_static("internal error") };
                let _ = ws.close(Some(frame)).await;
                return;
            }
            After::Reset => {
                // A zero linger does not block on drop: it makes the close a reset (RST), which is the fault.
                #[allow(deprecated)]
                let _ = ws.get_ref().set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}
