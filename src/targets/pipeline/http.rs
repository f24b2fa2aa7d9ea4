//! A small HTTP/1.1 client for the pipeline's stage services, built for measurement: every body chunk is stamped
//! with the clock the moment its bytes come off the socket, connections are kept alive and opened ahead of the
//! first request (a production pipeline holds warm connections, so connection set-up never lands in a stage time),
//! and dropping a response mid-body closes its connection — which is how a barge-in cancels an in-flight request
//! on the server's side.
//!
//! Scope: `http://` and `https://` (rustls, webpki roots), request bodies with `Content-Length`, responses with
//! `Content-Length`, `Transfer-Encoding: chunked` or read-to-close. No redirects, no compression (we never ask for
//! it), no HTTP/2.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http(s)://host[:port]/path`.
    #[error("bad URL `{0}`: expected http(s)://host[:port]/path")]
    Url(String),
    /// Connecting (TCP or TLS) failed.
    #[error("connecting to {host}:{port}: {source}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server's bytes are not HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

/// A parsed `http(s)://host:port/prefix` base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// TLS or not.
    pub tls: bool,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix without a trailing slash (`/v1`), possibly empty.
    pub prefix: String,
}

impl BaseUrl {
    /// Parses a base URL.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(url.to_string());
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h.trim_matches(['[', ']']).to_string(), p.parse().map_err(|_| bad())?)
            }
            _ => (authority.to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self { tls, host, port, prefix: path.trim_end_matches('/').to_string() })
    }

    /// `host` or `host:port` as the `Host` header wants it.
    fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default { self.host.clone() } else { format!("{}:{}", self.host, self.port) }
    }
}

/// A plain or TLS stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection and the bytes read from it but not yet consumed.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// When the last read returned: the arrival stamp of bytes already buffered.
    read_at: Instant,
}

/// Connections to one service, kept alive between requests.
#[derive(Clone)]
pub struct Client {
    base: Arc<BaseUrl>,
    idle: Arc<Mutex<Vec<Conn>>>,
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
        })
        .clone()
}

impl Client {
    /// A client for a base URL (`http(s)://host[:port]/prefix`).
    pub fn new(base: &str) -> Result<Self, HttpError> {
        Ok(Self { base: Arc::new(BaseUrl::parse(base)?), idle: Arc::new(Mutex::new(Vec::new())) })
    }

    /// The base URL.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    async fn connect(&self) -> Result<Conn, HttpError> {
        let b = &self.base;
        let err = |source| HttpError::Connect { host: b.host.clone(), port: b.port, source };
        let tcp = TcpStream::connect((b.host.as_str(), b.port)).await.map_err(err)?;
        let _ = tcp.set_nodelay(true);
        let stream = if b.tls {
            let name = rustls::pki_types::ServerName::try_from(b.host.clone())
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp).await.map_err(err)?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn { stream, buf: Vec::new(), read_at: Instant::now() })
    }

    /// Opens a connection now and parks it, so the first request does not pay for the handshake.
    pub async fn warm(&self) -> Result<(), HttpError> {
        let c = self.connect().await?;
        self.idle.lock().expect("pool").push(c);
        Ok(())
    }

    /// Sends a request to `prefix + path` and reads the response head. `sent` in the result is the instant the
    /// request's last byte was written. A kept-alive connection the server has closed meanwhile is retried once on
    /// a fresh one (only when nothing of the response arrived, so no request is ever doubled after a reply).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let mut head = format!("{method} {}{path} HTTP/1.1\r\nHost: {}\r\n", self.base.prefix, self.base.host_header());
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let pooled = self.idle.lock().expect("pool").pop();
        let fresh = pooled.is_none();
        let conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        match self.exchange(conn, head.as_bytes(), body).await {
            Ok(r) => Ok(r),
            Err(e) if !fresh && is_stale(&e) => self.exchange(self.connect().await?, head.as_bytes(), body).await,
            Err(e) => Err(e),
        }
    }

    async fn exchange(&self, mut conn: Conn, head: &[u8], body: &[u8]) -> Result<Response, HttpError> {
        let mut all = Vec::with_capacity(head.len() + body.len());
        all.extend_from_slice(head);
        all.extend_from_slice(body);
        conn.stream.write_all(&all).await?;
        conn.stream.flush().await?;
        let sent = Instant::now();
        // Read until the head is complete.
        loop {
            let mut hdrs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hdrs);
            match resp.parse(&conn.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let headers: Vec<(String, String)> = resp
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    conn.buf.drain(..n);
                    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                    let framing = if get("transfer-encoding")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
                    {
                        Framing::Chunked { left: 0, done: false }
                    } else if let Some(len) = get("content-length") {
                        Framing::Length(len.trim().parse().map_err(|_| HttpError::Malformed("Content-Length".into()))?)
                    } else {
                        Framing::Close
                    };
                    let keep = !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
                        && !matches!(framing, Framing::Close);
                    let head_at = Instant::now();
                    return Ok(Response {
                        status,
                        headers,
                        sent,
                        head_at,
                        conn: Some(conn),
                        framing,
                        keep,
                        pool: self.idle.clone(),
                    });
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(HttpError::Malformed(e.to_string())),
            }
            if fill(&mut conn).await? == 0 {
                return Err(HttpError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before answering",
                )));
            }
        }
    }
}

fn is_stale(e: &HttpError) -> bool {
    matches!(e, HttpError::Io(io) if matches!(io.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe))
}

/// Reads more bytes into the connection's buffer; 0 at end of stream.
async fn fill(conn: &mut Conn) -> Result<usize, HttpError> {
    let mut tmp = [0u8; 16 * 1024];
    let n = conn.stream.read(&mut tmp).await?;
    conn.read_at = Instant::now();
    conn.buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

#[derive(Debug)]
enum Framing {
    Length(usize),
    Chunked { left: usize, done: bool },
    Close,
}

/// A response whose body is read as it arrives.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// When the request's last byte was written.
    pub sent: Instant,
    /// When the response head had arrived.
    pub head_at: Instant,
    conn: Option<Conn>,
    framing: Framing,
    keep: bool,
    pool: Arc<Mutex<Vec<Conn>>>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The next piece of the body and the instant its bytes were read (before any parsing), or `None` at the end.
    /// At the end a kept-alive connection goes back to the pool.
    pub async fn chunk(&mut self) -> Result<Option<(Instant, Vec<u8>)>, HttpError> {
        let Some(conn) = self.conn.as_mut() else { return Ok(None) };
        loop {
            // Bytes are stamped at the read that delivered them.
            let at = conn.read_at;
            match &mut self.framing {
                Framing::Length(left) => {
                    if *left == 0 {
                        return Ok(self.finish());
                    }
                    if !conn.buf.is_empty() {
                        let n = (*left).min(conn.buf.len());
                        *left -= n;
                        let out: Vec<u8> = conn.buf.drain(..n).collect();
                        return Ok(Some((at, out)));
                    }
                }
                Framing::Close => {
                    if !conn.buf.is_empty() {
                        return Ok(Some((at, std::mem::take(&mut conn.buf))));
                    }
                }
                Framing::Chunked { left, done } => {
                    if *done {
                        return Ok(self.finish());
                    }
                    if *left > 0 {
                        if !conn.buf.is_empty() {
                            let n = (*left).min(conn.buf.len());
                            *left -= n;
                            let out: Vec<u8> = conn.buf.drain(..n).collect();
                            // At `left == 0` the chunk's trailing CRLF is consumed with the next size line.
                            return Ok(Some((at, out)));
                        }
                    } else if let Some(pos) = find_crlf(&conn.buf) {
                        let line = String::from_utf8_lossy(&conn.buf[..pos]).trim().to_string();
                        if line.is_empty() {
                            // The CRLF after a chunk's data.
                            conn.buf.drain(..pos + 2);
                            continue;
                        }
                        let size_text = line.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(size_text, 16)
                            .map_err(|_| HttpError::Malformed(format!("chunk size line `{line}`")))?;
                        conn.buf.drain(..pos + 2);
                        if size == 0 {
                            // Trailers, then the final CRLF.
                            loop {
                                if let Some(p) = find_crlf(&conn.buf) {
                                    let empty = p == 0;
                                    conn.buf.drain(..p + 2);
                                    if empty {
                                        break;
                                    }
                                } else if fill(conn).await? == 0 {
                                    break;
                                }
                            }
                            *done = true;
                            continue;
                        }
                        *left = size;
                        continue;
                    }
                }
            }
            let n = fill(conn).await?;
            if n == 0 {
                return match self.framing {
                    Framing::Close => {
                        self.keep = false;
                        Ok(self.finish())
                    }
                    _ => Err(HttpError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection mid-body",
                    ))),
                };
            }
        }
    }

    /// The whole remaining body.
    pub async fn body(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        while let Some((_, c)) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Option<(Instant, Vec<u8>)> {
        if let Some(c) = self.conn.take()
            && self.keep
            && c.buf.is_empty()
        {
            self.pool.lock().expect("pool").push(c);
        }
        None
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Splits a `text/event-stream` body into events' `data:` payloads as bytes arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds bytes; returns the data of every event they completed (multi-line data joined with `\n`).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(i) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                self.data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            }
        }
        out
    }
}

/// A `multipart/form-data` body and its content type.
pub fn multipart(fields: &[(&str, &str)], file: (&str, &str, &str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "voicebench-7d1c0e5fa3b24f96";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    let (name, filename, ctype, bytes) = file;
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn base_urls_parse() {
        let b = BaseUrl::parse("https://api.openai.com/v1").unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port, b.prefix.as_str()), (true, "api.openai.com", 443, "/v1"));
        let b = BaseUrl::parse("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port, b.prefix.as_str()), (false, "127.0.0.1", 8080, "/v1"));
        let b = BaseUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.prefix.as_str()), ("::1", 9000, ""));
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("http://:80/").is_err());
    }

    #[test]
    fn sse_events_split_across_reads() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: {\"a\"").is_empty());
        let ev = p.feed(b":1}\n\ndata: [DONE]\r\n\r\n: comment\n\n");
        assert_eq!(ev, vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]);
    }

    /// A server that answers two requests on one connection: chunked, then content-length.
    #[tokio::test]
    async fn chunked_and_length_bodies_over_one_kept_alive_connection() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("POST /v1/x HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            s.write_all(b"6;ext=1\r\n world\r\n0\r\n\r\n").await.unwrap();
            let n = s.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /v1/y HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop").await.unwrap();
            // A third request would need a new connection: count accepts.
            tokio::time::timeout(std::time::Duration::from_millis(200), l.accept()).await.is_ok()
        });
        let c = Client::new(&format!("http://{addr}/v1")).unwrap();
        let mut r = c.request("POST", "/x", &[("Content-Type", "text/plain")], b"body").await.unwrap();
        assert_eq!(r.status, 200);
        let (t1, a) = r.chunk().await.unwrap().unwrap();
        let (t2, b) = r.chunk().await.unwrap().unwrap();
        assert_eq!((a.as_slice(), b.as_slice()), (&b"hello"[..], &b" world"[..]));
        assert!(t2 - t1 >= std::time::Duration::from_millis(25), "stamped at arrival");
        assert!(r.chunk().await.unwrap().is_none());
        let mut r = c.request("GET", "/y", &[], b"").await.unwrap();
        assert_eq!((r.status, r.body().await.unwrap()), (404, b"nop".to_vec()));
        assert!(!server.await.unwrap(), "both requests used one connection");
    }

    #[test]
    fn multipart_has_fields_and_file() {
        let (ct, body) = multipart(&[("model", "whisper-1")], ("file", "a.wav", "audio/wav", b"RIFF"));
        let b = String::from_utf8_lossy(&body);
        let boundary = ct.split("boundary=").nth(1).unwrap();
        assert!(b.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"));
        assert!(b.contains("filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n"));
        assert!(b.ends_with(&format!("--{boundary}--\r\n")));
    }
}
