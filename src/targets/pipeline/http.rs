//! The pipeline's HTTP client for its stage services, on reqwest, built for measurement: every body chunk is
//! stamped with the clock the moment it comes off the response stream (before any parsing), connections are kept
//! alive and opened ahead of the first request (a production pipeline holds warm connections, so connection set-up
//! never lands in a stage time), and dropping a response mid-body closes its connection — which is how a barge-in
//! cancels an in-flight request on the server's side.
//!
//! What reqwest (hyper underneath) does for us: HTTP/1.1 framing (`Content-Length`, chunked, read-to-close, 1xx
//! interim responses, bodiless 204/304/HEAD answers), keep-alive pooling, TLS through rustls with the platform's
//! trust store (rustls-platform-verifier), proxies (`CONNECT` tunnels for `https://`, absolute-form requests for
//! `http://`), redirects, URL parsing (userinfo becomes basic auth, IPv6 literals keep their brackets in `Host`).
//!
//! What we add:
//! * **Settings from an injectable environment** ([`HttpSettings::from_lookup`]): proxies from `HTTPS_PROXY`,
//!   `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case, upper first), read by us rather than by reqwest so tests
//!   need not touch the process environment; trust: the platform store, plus Mozilla's bundled roots (so a machine
//!   without a CA bundle still reaches public providers), plus the PEM certificates in `SSL_CERT_FILE` (a corporate
//!   CA).
//! * **URL joining through [`Url`]**: a stage path is appended to the base URL's path and the base's query string is
//!   kept (`…/deployments/d?api-version=X` + `/chat/completions` → `…/deployments/d/chat/completions?api-version=X`).
//! * **At most [`MAX_REDIRECTS`] redirects, same host only** (a key in `api-key` would otherwise follow a redirect
//!   to another host); a redirect not followed is a [`HttpError::Protocol`] naming where it pointed, without its
//!   query (which may hold a key).
//! * **Broken framing is not a disconnect**: a body whose chunked framing is malformed is a
//!   [`HttpError::Protocol`]; a body that ends before its `Content-Length` or its last chunk is a
//!   [`HttpError::Disconnect`].
//! * **Identity bodies only**: every request says `Accept-Encoding: identity`, and a response that arrives with a
//!   `Content-Encoding` or a `Transfer-Encoding` other than chunked is refused with [`HttpError::Encoding`] — compressed
//!   bytes are never passed on as audio or text (and decoding would move the arrival stamps).
//! * **Timeouts** from the scenario: connect (`connect_timeout_ms`), first byte (`first_byte_timeout_ms`: request
//!   sent → response head) and idle (`idle_timeout_ms`: between body chunks).
//! * **Warm connections**: [`Client::warm`] sends a `HEAD` to the base URL at set-up and discards the answer (any
//!   status): the connection it opened (TCP, TLS, proxy tunnel) goes back to the pool, and the first real request
//!   takes it. Each stage has its own client, so its own pool and its own warm connection.
//! * **No silent resend of a POST**: reqwest's retry policy is set to never; hyper-util's pool retries a request
//!   only when it was handed a pooled connection that turned out dead *before any byte of the request was written*
//!   (`retry_canceled_requests`); a request that was written and then lost (the server read it and closed) fails
//!   with [`HttpError::Disconnect`] and is never sent again (tested below: the server sees exactly one request).
//!
//! `sent` is stamped just before the request is handed to the client (a stage request's body is a few kB of JSON or
//! one turn's WAV, written at once on a warm connection).

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// The most body bytes one response may send (a transcript, a chat stream, a turn's synthesised audio: about six
/// minutes of 24 kHz speech); past it the response is a Protocol error, so a provider cannot bloat a run.
pub const MAX_BODY: usize = 16 << 20;
/// The most bytes of an error response's body that are read (the row keeps at most 1 KiB of it anyway).
pub const MAX_ERROR_BODY: usize = 64 << 10;
/// The longest line an SSE stream may send before its newline.
pub const MAX_SSE_LINE: usize = 1 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an `http(s)://` URL.
    #[error("bad URL `{url}`: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        why: String,
    },
    /// The client could not be set up (a proxy URL, `SSL_CERT_FILE`, the TLS configuration).
    #[error("HTTP client set-up: {0}")]
    Setup(String),
    /// Connecting (TCP, proxy tunnel or TLS) failed.
    #[error("connecting to {endpoint}: {why}")]
    Connect {
        /// `scheme://host:port`.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// No answer, or no next chunk, in time.
    #[error("{endpoint}: {what} within {ms} ms")]
    Timeout {
        /// `scheme://host:port/path`.
        endpoint: String,
        /// What did not happen.
        what: &'static str,
        /// The limit.
        ms: u64,
    },
    /// The connection broke while the request was in flight or its body was being read.
    #[error("{endpoint}: {why}")]
    Disconnect {
        /// `scheme://host:port/path`.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// The server's answer breaks HTTP (too many redirects, a malformed response).
    #[error("{endpoint}: {why}")]
    Protocol {
        /// `scheme://host:port/path`.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// The body arrived compressed although identity was asked for.
    #[error(
        "{endpoint}: the response body arrived encoded `{encoding}` although `Accept-Encoding: identity` was sent; refusing it (compressed bytes are not audio or text)"
    )]
    Encoding {
        /// `scheme://host:port/path`.
        endpoint: String,
        /// The encoding.
        encoding: String,
    },
}

/// Timeouts, proxies and trust for a stage client.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// TCP + TLS (+ proxy tunnel) set-up limit.
    pub connect_timeout: Duration,
    /// Request sent → response head.
    pub first_byte_timeout: Duration,
    /// Between body chunks.
    pub idle_timeout: Duration,
    /// Proxy for `https://` URLs (`HTTPS_PROXY`, else `ALL_PROXY`).
    pub https_proxy: Option<String>,
    /// Proxy for `http://` URLs (`HTTP_PROXY`, else `ALL_PROXY`).
    pub http_proxy: Option<String>,
    /// Hosts reached directly (`NO_PROXY`).
    pub no_proxy: Option<String>,
    /// A PEM file of extra trusted roots (`SSL_CERT_FILE`).
    pub extra_roots: Option<std::path::PathBuf>,
}

impl HttpSettings {
    /// Settings with the given timeouts and proxies/trust from `lookup` (`std::env::var` in production): the upper
    /// case name first, then the lower case one, empty values ignored.
    pub fn from_lookup(
        connect_timeout: Duration,
        first_byte_timeout: Duration,
        idle_timeout: Duration,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let var =
            |name: &str| lookup(name).or_else(|| lookup(&name.to_ascii_lowercase())).filter(|v| !v.trim().is_empty());
        let all = var("ALL_PROXY");
        Self {
            connect_timeout,
            first_byte_timeout,
            idle_timeout,
            https_proxy: var("HTTPS_PROXY").or_else(|| all.clone()),
            http_proxy: var("HTTP_PROXY").or(all),
            no_proxy: var("NO_PROXY"),
            extra_roots: lookup("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(Into::into),
        }
    }

    /// The scenario's timeouts with proxies and trust from the process environment.
    pub fn from_env(connect_timeout: Duration, first_byte_timeout: Duration, idle_timeout: Duration) -> Self {
        Self::from_lookup(connect_timeout, first_byte_timeout, idle_timeout, |k| std::env::var(k).ok())
    }
}

/// At most [`MAX_REDIRECTS`] redirects, and only to the same host: reqwest drops `Authorization` on a redirect to
/// another host but not the `api-key` / `xi-api-key` headers, so a redirect elsewhere is not followed (the 3xx is
/// the answer: [`Client::request`] fails it as a Protocol error naming where it pointed, without its query).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().and_then(|u| u.host_str().map(String::from));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if first.is_some() && attempt.url().host_str() != first.as_deref() {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Mozilla's roots as certificates, parsed once.
fn bundled_roots() -> Vec<reqwest::Certificate> {
    static ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok())
                .collect()
        })
        .clone()
}

/// `scheme://host:port/path` of a URL: no userinfo, no query (either may hold a secret).
fn endpoint(u: &Url) -> String {
    format!("{}://{}{}", u.scheme(), authority(u), u.path())
}

fn authority(u: &Url) -> String {
    // `host_str` keeps an IPv6 literal's brackets.
    let host = u.host_str().unwrap_or("");
    match u.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// An error's message and its causes, without the URL reqwest puts in it (it may hold a key in its query).
fn describe(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = cur {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
        cur = s.source();
    }
    if out.is_empty() { "the request failed".into() } else { out }
}

/// Whether a body error is the server breaking HTTP's framing (a chunk-size line that is not hexadecimal, a bad
/// chunk end: hyper reports those as invalid input or data) rather than the connection ending early (an unexpected
/// end of file, a reset), which is a Disconnect.
fn broken_framing(e: &reqwest::Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData);
        }
        cur = s.source();
    }
    false
}

/// Connections to one service, kept alive between requests.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: std::sync::Arc<Url>,
    settings: std::sync::Arc<HttpSettings>,
}

impl Client {
    /// A client for a base URL (`http(s)://[user:pass@]host[:port][/prefix][?query]`).
    pub fn new(base: &str, settings: &HttpSettings) -> Result<Self, HttpError> {
        let bad = |why: &str| HttpError::Url { url: base.to_string(), why: why.to_string() };
        let url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad("expected http(s)://host[:port]/path"));
        }
        let setup = |e: reqwest::Error| HttpError::Setup(describe(&e).replace("the request failed", &e.to_string()));
        let mut b = reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .retry(reqwest::retry::never())
            .redirect(redirect_policy())
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .tls_certs_merge(bundled_roots());
        let no_proxy = || settings.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        if let Some(p) = &settings.https_proxy {
            let proxy = reqwest::Proxy::https(p).map_err(|e| HttpError::Setup(format!("HTTPS_PROXY `{p}`: {e}")))?;
            b = b.proxy(proxy.no_proxy(no_proxy()));
        }
        if let Some(p) = &settings.http_proxy {
            let proxy = reqwest::Proxy::http(p).map_err(|e| HttpError::Setup(format!("HTTP_PROXY `{p}`: {e}")))?;
            b = b.proxy(proxy.no_proxy(no_proxy()));
        }
        if let Some(path) = &settings.extra_roots {
            let pem = std::fs::read(path)
                .map_err(|e| HttpError::Setup(format!("SSL_CERT_FILE `{}`: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| HttpError::Setup(format!("SSL_CERT_FILE `{}`: {e}", path.display())))?;
            b = b.tls_certs_merge(certs);
        }
        Ok(Self { http: b.build().map_err(setup)?, base: url.into(), settings: settings.clone().into() })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The base URL with `path` (`/x/y`, optionally with its own `?query`) appended to its path; the base's query
    /// comes first, then the path's.
    pub fn url(&self, path: &str) -> Url {
        let (p, q) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let mut u = Url::clone(&self.base);
        let joined = format!("{}{}", u.path().trim_end_matches('/'), p);
        u.set_path(&joined);
        let query = match (self.base.query().filter(|q| !q.is_empty()), q.filter(|q| !q.is_empty())) {
            (Some(a), Some(b)) => Some(format!("{a}&{b}")),
            (a, b) => a.or(b).map(String::from),
        };
        u.set_query(query.as_deref());
        u
    }

    /// Opens a connection now and leaves it in the pool, so the first request does not pay for the handshake: a
    /// `HEAD` to the base URL whose answer (any status) is discarded.
    pub async fn warm(&self) -> Result<(), HttpError> {
        let ep = endpoint(&self.base);
        let req = self.http.head(Url::clone(&self.base)).header("Accept-Encoding", "identity");
        match tokio::time::timeout(self.settings.connect_timeout + self.settings.first_byte_timeout, req.send()).await {
            Ok(Ok(r)) => {
                // HEAD has no body; reading it returns the connection to the pool at once.
                let _ = r.bytes().await;
                Ok(())
            }
            Ok(Err(e)) => Err(self.error(&self.base, e)),
            Err(_) => Err(HttpError::Connect { endpoint: ep, why: "no answer to the warm-up HEAD in time".into() }),
        }
    }

    fn error(&self, url: &Url, e: reqwest::Error) -> HttpError {
        let why = describe(&e);
        if e.is_connect() {
            HttpError::Connect { endpoint: format!("{}://{}", url.scheme(), authority(url)), why }
        } else if e.is_redirect() {
            HttpError::Protocol { endpoint: endpoint(url), why: format!("more than {MAX_REDIRECTS} redirects") }
        } else if e.is_builder() {
            HttpError::Url { url: endpoint(url), why }
        } else if e.is_timeout() {
            HttpError::Timeout {
                endpoint: endpoint(url),
                what: "no connection",
                ms: self.settings.connect_timeout.as_millis() as u64,
            }
        } else {
            HttpError::Disconnect { endpoint: endpoint(url), why }
        }
    }

    /// Sends a request to the base URL + `path` and waits for the response head (within the first-byte timeout).
    /// `sent` in the result is the instant the request was handed over to be written.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let url = self.url(path);
        let ep = endpoint(&url);
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| HttpError::Url { url: ep.clone(), why: format!("bad method `{method}`") })?;
        let mut map = HeaderMap::new();
        map.insert("accept-encoding", HeaderValue::from_static("identity"));
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| HttpError::Url { url: ep.clone(), why: format!("bad header name `{k}`") })?;
            // Never echo the value: it may be a key.
            let value = HeaderValue::from_str(v).map_err(|_| HttpError::Url {
                url: ep.clone(),
                why: format!("the `{k}` header's value is not valid"),
            })?;
            map.insert(name, value);
        }
        let req = self.http.request(method, url.clone()).headers(map).body(body.to_vec());
        let sent = Instant::now();
        let limit = self.settings.first_byte_timeout;
        let resp = match tokio::time::timeout(limit, req.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(self.error(&url, e)),
            Err(_) => {
                return Err(HttpError::Timeout {
                    endpoint: ep,
                    what: "no response head",
                    ms: limit.as_millis() as u64,
                });
            }
        };
        let head_at = Instant::now();
        let encoded = |name: &str| {
            resp.headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
        };
        let codings: Vec<String> = encoded("content-encoding")
            .into_iter()
            .chain(encoded("transfer-encoding"))
            .flat_map(|v| v.split(',').map(|c| c.trim().to_ascii_lowercase()).collect::<Vec<_>>())
            .filter(|c| !c.is_empty() && c != "identity" && c != "chunked")
            .collect();
        if !codings.is_empty() {
            return Err(HttpError::Encoding { endpoint: endpoint(resp.url()), encoding: codings.join(", ") });
        }
        if resp.status().is_redirection() {
            // The policy did not follow it: it pointed to another origin (or nowhere).
            let to = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .map_or_else(|| "no valid Location".to_string(), |u| endpoint(&u));
            return Err(HttpError::Protocol {
                endpoint: endpoint(resp.url()),
                why: format!(
                    "HTTP {}: redirected to {to}, another origin; not followed (the request's key would go with it)",
                    resp.status().as_u16()
                ),
            });
        }
        Ok(Response {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            sent,
            head_at,
            endpoint: endpoint(resp.url()),
            idle: self.settings.idle_timeout,
            inner: Some(resp),
            read: 0,
        })
    }
}

/// A response whose body is read as it arrives. Dropping it before the end closes its connection.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// When the request was handed over to be written.
    pub sent: Instant,
    /// When the response head had arrived.
    pub head_at: Instant,
    endpoint: String,
    idle: Duration,
    inner: Option<reqwest::Response>,
    /// Body bytes read so far (bounded by [`MAX_BODY`]).
    read: usize,
}

impl Response {
    /// A header's value (first of its name), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next piece of the body and the instant it came off the stream (before any parsing), or `None` at the
    /// end (the connection then goes back to the pool). Fails after the idle timeout without a chunk.
    pub async fn chunk(&mut self) -> Result<Option<(Instant, Vec<u8>)>, HttpError> {
        let Some(r) = self.inner.as_mut() else { return Ok(None) };
        match tokio::time::timeout(self.idle, r.chunk()).await {
            Ok(Ok(Some(b))) => {
                let at = Instant::now();
                self.read = self.read.saturating_add(b.len());
                if self.read > MAX_BODY {
                    self.inner = None;
                    return Err(HttpError::Protocol {
                        endpoint: self.endpoint.clone(),
                        why: format!("the response body went past {} MiB; dropped", MAX_BODY >> 20),
                    });
                }
                Ok(Some((at, b.to_vec())))
            }
            Ok(Ok(None)) => {
                self.inner = None;
                Ok(None)
            }
            Ok(Err(e)) => {
                self.inner = None;
                let (endpoint, why) = (self.endpoint.clone(), describe(&e));
                Err(if broken_framing(&e) {
                    HttpError::Protocol { endpoint, why: format!("malformed body framing: {why}") }
                } else {
                    HttpError::Disconnect { endpoint, why }
                })
            }
            Err(_) => {
                self.inner = None;
                Err(HttpError::Timeout {
                    endpoint: self.endpoint.clone(),
                    what: "no body data",
                    ms: self.idle.as_millis() as u64,
                })
            }
        }
    }

    /// The whole remaining body (at most [`MAX_BODY`] bytes, or a Protocol error).
    pub async fn body(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        while let Some((_, c)) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// An error response's body for its message: at most [`MAX_ERROR_BODY`] bytes of it, whatever went wrong
    /// reading the rest (the connection is dropped then, not drained).
    pub async fn error_body(&mut self) -> String {
        let mut out = Vec::new();
        while out.len() < MAX_ERROR_BODY {
            match self.chunk().await {
                Ok(Some((_, c))) => out.extend_from_slice(&c),
                _ => break,
            }
        }
        if out.len() >= MAX_ERROR_BODY {
            self.inner = None;
            out.truncate(MAX_ERROR_BODY);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Splits a `text/event-stream` body into events' `data:` payloads as bytes arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    data: Vec<String>,
}

/// An SSE stream sent a line or an event longer than [`MAX_SSE_LINE`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("an SSE line or event went past {} KiB without ending", MAX_SSE_LINE >> 10)]
pub struct SseOverflow;

impl SseParser {
    /// Feeds bytes; returns the data of every event they completed (multi-line data joined with `\n`), or
    /// [`SseOverflow`] when a line or an event grows past [`MAX_SSE_LINE`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseOverflow> {
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
                if self.data.iter().map(String::len).sum::<usize>() > MAX_SSE_LINE {
                    return Err(SseOverflow);
                }
            }
        }
        if self.buf.len() > MAX_SSE_LINE {
            return Err(SseOverflow);
        }
        Ok(out)
    }

    /// Whether an event was begun and not ended (a line without its newline, or data lines without the blank line
    /// that ends the event): a stream that ends here was cut inside an event.
    pub fn inside_event(&self) -> bool {
        !self.buf.trim().is_empty() || !self.data.is_empty()
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
mod tests;
