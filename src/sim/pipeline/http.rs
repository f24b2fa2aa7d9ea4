//! The pipeline sim's HTTP side on hyper (HTTP/1.1, keep-alive, upgrades): [`serve_connection`] reads each request
//! (head size bounded by hyper's buffer limit, body by [`MAX_BODY`]), hands it with a [`Conn`] — the request's
//! answering end — to a handler task, and streams what the handler sends. A WebSocket upgrade (Deepgram's live
//! socket) is answered `101` here and its connection handed back to the caller.
//!
//! A client that goes away mid-response (the way a pipeline cancels a request on a barge-in, which the sim logs) is
//! noticed through hyper: it drops the request's future when it reads the client's close while the answer is pending,
//! and drops the body stream when the close comes while it streams; either way [`Conn::wait_until`] returns `false`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Largest request body accepted (a turn's WAV is far smaller), bytes.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Read buffer per connection, which bounds a request head, bytes.
const MAX_HEAD: usize = 64 * 1024;

/// A request, body included.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string (after `?`), possibly empty.
    pub query: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// When its last byte had arrived.
    pub complete_at: Instant,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// A response body: whole, or streamed from the handler.
pub enum Body {
    /// Sent at once with a `Content-Length`.
    Full(Option<Bytes>),
    /// Chunked, as the handler sends it.
    Stream(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
}

/// The answering end of one request.
pub struct Conn {
    head: Option<oneshot::Sender<Response<Body>>>,
    body: Option<mpsc::Sender<Bytes>>,
}

impl Conn {
    /// Resolves when the client has gone away (or the answer is complete).
    async fn closed(&mut self) {
        if let Some(b) = &self.body {
            b.closed().await
        } else if let Some(h) = &mut self.head {
            h.closed().await
        } else {
            std::future::pending().await
        }
    }

    /// Waits until `deadline`; `false` if the client closed the connection meanwhile.
    pub async fn wait_until(&mut self, deadline: Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => true,
            _ = self.closed() => false,
        }
    }

    fn send_head(&mut self, status: u16, content_type: &str, body: Body) -> std::io::Result<()> {
        let mut r = Response::new(body);
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(v) = HeaderValue::from_str(content_type) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
        self.head.take().ok_or_else(gone)?.send(r).map_err(|_| gone())
    }

    /// Sends a whole response.
    pub async fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
        self.send_head(status, content_type, Body::Full(Some(Bytes::copy_from_slice(body))))
    }

    /// Sends a whole response with a `Content-Encoding` (the `unrequested-gzip` fault).
    pub async fn respond_encoded(
        &mut self,
        status: u16,
        content_type: &str,
        encoding: &'static str,
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut r = Response::new(Body::Full(Some(Bytes::copy_from_slice(body))));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(v) = HeaderValue::from_str(content_type) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
        r.headers_mut().insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        self.head.take().ok_or_else(gone)?.send(r).map_err(|_| gone())
    }

    /// Sends a whole response with extra headers (a redirect's `Location`).
    pub async fn respond_with(
        &mut self,
        status: u16,
        content_type: &str,
        headers: &[(&'static str, &str)],
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut r = Response::new(Body::Full(Some(Bytes::copy_from_slice(body))));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(v) = HeaderValue::from_str(content_type) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                r.headers_mut().insert(*name, v);
            }
        }
        self.head.take().ok_or_else(gone)?.send(r).map_err(|_| gone())
    }

    /// An OpenAI-style error response.
    pub async fn error(&mut self, status: u16, message: &str) -> std::io::Result<()> {
        let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": status}});
        self.respond(status, "application/json", body.to_string().as_bytes()).await
    }

    /// Starts a chunked `200` response.
    pub async fn start_stream(&mut self, content_type: &str) -> std::io::Result<()> {
        let (tx, rx) = mpsc::channel(16);
        self.send_head(200, content_type, Body::Stream(rx))?;
        self.body = Some(tx);
        Ok(())
    }

    /// Sends one chunk.
    pub async fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.body.as_ref().ok_or_else(gone)?.send(Bytes::copy_from_slice(bytes)).await.map_err(|_| gone())
    }

    /// Ends a chunked response.
    pub async fn end_stream(&mut self) -> std::io::Result<()> {
        self.body = None;
        Ok(())
    }
}

/// A WebSocket upgrade accepted on a connection: the upgraded I/O and the request's path and query.
pub struct Upgrade {
    /// The connection after the `101`.
    pub io: TokioIo<Upgraded>,
    /// The request's path.
    pub path: String,
    /// The request's query string.
    pub query: String,
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::Full(Some(Bytes::copy_from_slice(text.as_bytes()))));
    *r.status_mut() = status;
    r
}

/// Serves one connection: each request goes to `handle` (spawned, with its answering [`Conn`]) until the client
/// closes; a WebSocket upgrade is accepted and returned.
pub async fn serve_connection<H, F>(stream: TcpStream, handle: H) -> Option<Upgrade>
where
    H: Fn(Conn, Request) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let upgrade: Arc<Mutex<Option<(OnUpgrade, String, String)>>> = Arc::default();
    let up = upgrade.clone();
    let svc = service_fn(move |mut req: hyper::Request<Incoming>| {
        let handle = handle.clone();
        let up = up.clone();
        async move {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let wants_ws = req
                .headers()
                .get(UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            if wants_ws {
                let Some(key) = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
                    return Ok::<_, Infallible>(plain(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key"));
                };
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
                *up.lock().expect("upgrade") = Some((hyper::upgrade::on(&mut req), path, query));
                let mut r = Response::new(Body::Full(None));
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                r.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
                r.headers_mut().insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                if let Ok(v) = HeaderValue::from_str(&accept) {
                    r.headers_mut().insert("sec-websocket-accept", v);
                }
                return Ok(r);
            }
            let method = req.method().as_str().to_string();
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes().to_vec(),
                Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large or truncated")),
            };
            let request = Request { method, path, query, headers, body, complete_at: Instant::now() };
            let (tx, rx) = oneshot::channel();
            tokio::spawn(handle(Conn { head: Some(tx), body: None }, request));
            Ok(rx.await.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "the sim's handler failed")))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    let _ = conn.await;
    let pending = upgrade.lock().expect("upgrade").take();
    let (on, path, query) = pending?;
    let io = on.await.ok()?;
    Some(Upgrade { io: TokioIo::new(io), path, query })
}

fn find(b: &[u8], pat: &[u8]) -> Option<usize> {
    b.windows(pat.len()).position(|w| w == pat)
}

/// Parses a `multipart/form-data` body into (name, filename, bytes) parts.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1).map(|b| b.trim_matches('"')) else {
        return Vec::new();
    };
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(h) = find(rest, b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&rest[..h]).into_owned();
        let data = &rest[h + 4..];
        let end = find(data, format!("\r\n{delim}").as_bytes()).unwrap_or(data.len());
        let attr = |k: &str| {
            head.split([';', '\n'])
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.split('"').next().unwrap_or("").to_string())
        };
        if let Some(name) = attr("name") {
            out.push((name, attr("filename"), data[..end].to_vec()));
        }
        rest = &data[end..];
    }
    out
}
