//! The protocol-neutral side of the sim: what the agent did ([`Signal`]), and one generic server loop that drives the
//! shared agent brain ([`super::realtime::Conn`] in neutral mode: VAD, the script's turns, reply planning, barge-in,
//! ground truth, the profiles) under any wire protocol.
//!
//! A protocol's sim is a [`Wire`]: it turns client messages into calls on the brain (audio, a hand-ended turn, a
//! tool result) and renders the brain's signals as its own messages. Everything about timing stays in the brain,
//! and the loop here is the OpenAI sim's loop: wait on the socket and the brain's next deadline, run what is due,
//! render, flush once per wake-up. So a step's ground-truth instant and its bytes on the wire are as close here as
//! they are in the OpenAI sim, whatever the protocol.

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
use super::realtime::{Conn, Ctx};

/// What the agent did, in the order it did it.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// A chunk of reply audio, base64 in the session's output format.
    Audio {
        /// The encoded chunk.
        b64: Arc<str>,
    },
    /// Transcript of the agent's speech (sent just before the audio it belongs to).
    Transcript(Arc<str>),
    /// The caller's words, at the end of their turn.
    UserTranscript(String),
    /// A barge-in: drop unplayed audio (sent at the sim's `speech_started` instant).
    Interrupted,
    /// A complete function call.
    ToolCall {
        /// Call id.
        call_id: String,
        /// Function name.
        name: String,
        /// Argument JSON text.
        arguments: String,
    },
    /// A response ended.
    ResponseDone {
        /// Cut by a barge-in or the client.
        cancelled: bool,
        /// It sent audio.
        spoke: bool,
        /// It was a tool-call response (the spoken reply follows the tool result).
        tool: bool,
    },
}

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
    /// Handles one client frame (text or binary). `Err` closes the session with that code.
    fn on_message(&mut self, conn: &mut Conn, msg: Message, at: Instant, out: &mut Vec<Message>) -> Result<(), Close>;
    /// Renders one signal of the brain.
    fn render(&mut self, conn: &mut Conn, sig: Signal, out: &mut Vec<Message>);
    /// The wire's own next deadline (keep-alive pings), if any.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Runs the wire's own timer.
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Message>) {}
}

/// How a protocol's sim accepts a connection: the upgrade path it serves, and a new session for it.
pub(crate) trait Accept: Send + Sync + 'static {
    /// The wire state and its brain for a new connection (`query` is the upgrade URL's query string).
    fn open(&self, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, query: &str) -> (Box<dyn Wire>, Conn);
    /// The upgrade path (`/…`).
    fn path(&self) -> &'static str;
}

/// Accepts connections until `stop`; then closes every session and waits for them.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    accept: Arc<dyn Accept>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let _ = stream.set_nodelay(true);
                let (ctx, shared, stop, accept) = (ctx.clone(), shared.clone(), stop.clone(), accept.clone());
                let idx = n;
                n += 1;
                conns.spawn(async move { connection(stream, ctx, shared, accept, idx, stop).await });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain).await.is_err() {
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
    let path = accept.path();
    let mut query = String::new();
    // The handshake API fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path().trim_end_matches('/') != path.trim_end_matches('/') {
            let mut e = ErrorResponse::new(Some(format!(
                "voicebench sim: no such path {}; connect to {path}",
                req.uri().path()
            )));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        query = req.uri().query().unwrap_or_default().to_string();
        Ok(resp)
    };
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let (wire, conn) = accept.open(ctx, shared, idx, &query);
    run(ws, wire, conn, stop).await;
}

/// The session loop: the OpenAI sim's, with the protocol's wire in place of its JSON events.
async fn run(mut ws: Ws, mut wire: Box<dyn Wire>, mut conn: Conn, mut stop: watch::Receiver<bool>) {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let deadline = [conn.deadline(), wire.deadline()].into_iter().flatten().min();
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
                conn.tick(now);
                wire.on_timer(now, &mut out);
            }
            msg = ws.next() => {
                let at = Instant::now();
                match msg {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        if let Err(c) = wire.on_message(&mut conn, m, at, &mut out) {
                            for s in conn.take_signals() {
                                wire.render(&mut conn, s, &mut out);
                            }
                            for m in out.drain(..) {
                                let _ = ws.feed(m).await;
                            }
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
        for s in conn.take_signals() {
            wire.render(&mut conn, s, &mut out);
        }
        if out.is_empty() {
            continue;
        }
        let mut failed = false;
        for m in out.drain(..) {
            if ws.feed(m).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || ws.flush().await.is_err() {
            return;
        }
    }
}
