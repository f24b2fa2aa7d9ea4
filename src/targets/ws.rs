//! WebSocket plumbing shared by the Gemini Live, ElevenLabs, Twilio and ws-pcm adapters: dialing (small read
//! buffer, failures categorised and scrubbed of secrets), the shared sink, set-up reads, and what a close code means.

use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::secret::{Secrets, without_query};
use super::{AgentEvent, ErrorCategory, SessionError};
use crate::scenario::Scenario;

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

/// Dials `req` (bounded by nothing: callers wrap the whole set-up in the scenario's connect timeout).
pub async fn dial(req: Request<()>, secrets: &Secrets) -> Result<(Sink, Stream), SessionError> {
    let shown = without_query(&req.uri().to_string()).to_string();
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await.map_err(|e| {
        let msg = e.to_string();
        let cat = if msg.contains("401") || msg.contains("403") {
            ErrorCategory::Auth
        } else if msg.contains("429") {
            ErrorCategory::RateLimit
        } else {
            ErrorCategory::Connect
        };
        SessionError::new(cat, secrets.scrub(&format!("connecting to {shown}: {msg}")))
    })?;
    let (sink, stream) = ws.split();
    Ok((Arc::new(tokio::sync::Mutex::new(sink)), stream))
}

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
            Some(Err(e)) => return Err(SessionError::new(ErrorCategory::Connect, secrets.scrub(&e.to_string()))),
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
}
