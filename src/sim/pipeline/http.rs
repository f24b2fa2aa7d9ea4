//! The pipeline sim's HTTP/1.1 server side: read a request (head and a `Content-Length` or chunked body), answer
//! with a fixed body or a chunked stream, and notice a client that goes away mid-response — the way a pipeline
//! cancels a request on a barge-in, which the sim logs.
//!
//! One connection serves requests one after the other (keep-alive). No pipelining: while a response is being
//! delayed or streamed the client sends nothing, so any readable event on the socket is its close.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

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

/// One connection.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

fn find(b: &[u8], pat: &[u8]) -> Option<usize> {
    b.windows(pat.len()).position(|w| w == pat)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self { stream, buf: Vec::new() }
    }

    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads the next request; `None` when the client closed the connection between requests.
    pub async fn read_request(&mut self) -> std::io::Result<Option<Request>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(bad("truncated request head")) };
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("/").to_string();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target, String::new()),
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if self.fill().await? == 0 {
                        return Err(bad("truncated chunked body"));
                    }
                };
                let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if self.fill().await? == 0 {
                        return Err(bad("truncated chunk"));
                    }
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
            while self.buf.len() < len {
                if self.fill().await? == 0 {
                    return Err(bad("truncated body"));
                }
            }
            body = self.buf.drain(..len).collect();
        }
        Ok(Some(Request { method, path, query, headers, body, complete_at: Instant::now() }))
    }

    /// Waits until `deadline`; `false` if the client closed the connection meanwhile.
    pub async fn wait_until(&mut self, deadline: Instant) -> bool {
        let mut tmp = [0u8; 512];
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                r = self.stream.read(&mut tmp) => match r {
                    Ok(0) | Err(_) => return false,
                    // A client that sends during a response is pipelining, which we do not: keep the bytes.
                    Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                }
            }
        }
    }

    /// Sends a whole response.
    pub async fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            reason(status),
            body.len()
        );
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        self.stream.write_all(&all).await
    }

    /// An OpenAI-style error response.
    pub async fn error(&mut self, status: u16, message: &str) -> std::io::Result<()> {
        let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": status}});
        self.respond(status, "application/json", body.to_string().as_bytes()).await
    }

    /// Starts a chunked response.
    pub async fn start_stream(&mut self, content_type: &str) -> std::io::Result<()> {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n");
        self.stream.write_all(head.as_bytes()).await
    }

    /// Sends one chunk.
    pub async fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut all = format!("{:x}\r\n", bytes.len()).into_bytes();
        all.extend_from_slice(bytes);
        all.extend_from_slice(b"\r\n");
        self.stream.write_all(&all).await
    }

    /// Ends a chunked response.
    pub async fn end_stream(&mut self) -> std::io::Result<()> {
        self.stream.write_all(b"0\r\n\r\n").await
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// Whether the first bytes on a fresh connection are a WebSocket upgrade (peeked, not consumed).
pub async fn is_websocket(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        if n == 0 {
            return false;
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            return head.contains("upgrade: websocket");
        }
        if n == buf.len() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
