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

use super::Shared;
use super::brain::{Brain, Ctx, Event};
use super::replies::WireFormat;
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
    let mut upgrade = None;
    // The handshake API fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let up = Upgrade { uri: req.uri().clone(), headers: req.headers().clone() };
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
    let (wire, brain) = accept.open(ctx, shared, idx, &up);
    run(ws, wire, brain, stop).await;
}

/// Renders what the brain did since the last call.
fn render(wire: &mut dyn Wire, brain: &mut Brain, out: &mut Vec<Message>) {
    for e in brain.take_events() {
        wire.render(brain, e, out);
    }
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
async fn run(mut ws: Ws, mut wire: Box<dyn Wire>, mut brain: Brain, mut stop: watch::Receiver<bool>) {
    let mut out: Vec<Message> = Vec::new();
    wire.start(&mut brain, &mut out);
    if !send(&mut ws, &mut out).await {
        return;
    }
    loop {
        let deadline = [brain.deadline(), wire.deadline()].into_iter().flatten().min();
        tokio::select! {
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
                render(wire.as_mut(), &mut brain, &mut out);
                wire.on_timer(&mut brain, now, &mut out);
            }
            msg = ws.next() => {
                let at = Instant::now();
                match msg {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        let closed = wire.on_message(&mut brain, m, at, &mut out);
                        render(wire.as_mut(), &mut brain, &mut out);
                        if let Err(c) = closed {
                            send(&mut ws, &mut out).await;
                            let frame = CloseFrame { code: CloseCode::from(c.code), reason: Utf8Bytes::from(c.reason) };
                            let _ = ws.close(Some(frame)).await;
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        }
        if !send(&mut ws, &mut out).await {
            return;
        }
    }
}
