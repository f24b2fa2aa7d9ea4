//! The pipeline HTTP client against small servers on loopback: framing, stamping, URL joining, and the hostile
//! cases a reviewer listed (a base URL with a query, IPv6, a proxy, a redirect, a gzip body, a stale connection).

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn settings() -> HttpSettings {
    HttpSettings::from_lookup(Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2), |_| None)
}

#[test]
fn sse_events_split_across_reads() {
    let mut p = SseParser::default();
    assert!(p.feed(b"data: {\"a\"").unwrap().is_empty());
    let ev = p.feed(b":1}\n\ndata: [DONE]\r\n\r\n: comment\n\n").unwrap();
    assert_eq!(ev, vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]);
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

#[test]
fn paths_append_before_the_base_query() {
    let c = Client::new("https://h.example/openai/deployments/d?api-version=2024-10-21", &settings()).unwrap();
    assert_eq!(
        c.url("/chat/completions").as_str(),
        "https://h.example/openai/deployments/d/chat/completions?api-version=2024-10-21"
    );
    let c = Client::new("http://127.0.0.1:8080/v1/", &settings()).unwrap();
    assert_eq!(
        c.url("/text-to-speech/v/stream?output_format=pcm_24000").as_str(),
        "http://127.0.0.1:8080/v1/text-to-speech/v/stream?output_format=pcm_24000"
    );
    let c = Client::new("https://h.example/d?api-version=1", &settings()).unwrap();
    assert_eq!(c.url("/x?y=2").as_str(), "https://h.example/d/x?api-version=1&y=2");
    assert!(Client::new("ftp://x/", &settings()).is_err());
    assert!(Client::new("http://:80/", &settings()).is_err());
}

#[test]
fn settings_read_proxies_and_roots_from_the_lookup() {
    let env = |k: &str| match k {
        "https_proxy" => Some("http://127.0.0.1:3128".to_string()),
        "ALL_PROXY" => Some("http://127.0.0.1:9".to_string()),
        "NO_PROXY" => Some("localhost".to_string()),
        "SSL_CERT_FILE" => Some("/etc/corp.pem".to_string()),
        _ => None,
    };
    let s = HttpSettings::from_lookup(Duration::ZERO, Duration::ZERO, Duration::ZERO, env);
    assert_eq!(s.https_proxy.as_deref(), Some("http://127.0.0.1:3128"));
    assert_eq!(s.http_proxy.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(s.no_proxy.as_deref(), Some("localhost"));
    assert_eq!(s.extra_roots.as_deref(), Some(std::path::Path::new("/etc/corp.pem")));
}

/// Reads one request head and its `Content-Length` body; returns the head's text.
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(head);
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Chunked then content-length bodies over one kept-alive connection, chunks stamped at arrival; the warm-up's
/// connection is the one the requests use.
#[tokio::test]
async fn chunked_and_length_bodies_over_one_warm_kept_alive_connection() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let head = read_request(&mut s).await.unwrap();
        assert!(head.starts_with("HEAD /v1 HTTP/1.1\r\n"), "{head}");
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let head = read_request(&mut s).await.unwrap();
        assert!(head.starts_with("POST /v1/x HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("accept-encoding: identity"), "{head}");
        s.write_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        s.write_all(b"6;ext=1\r\n world\r\n0\r\n\r\n").await.unwrap();
        let head = read_request(&mut s).await.unwrap();
        assert!(head.starts_with("GET /v1/y HTTP/1.1\r\n"), "{head}");
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop").await.unwrap();
        let head = read_request(&mut s).await.unwrap();
        assert!(head.starts_with("POST /v1/z HTTP/1.1\r\n"), "{head}");
        // A 204 without a length is complete at its head.
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        // A further request would need a new connection: count accepts.
        let more = tokio::time::timeout(Duration::from_millis(200), l.accept()).await.is_ok();
        drop(s);
        more
    });
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    c.warm().await.unwrap();
    let mut r = c.request("POST", "/x", &[("Content-Type", "text/plain")], b"body").await.unwrap();
    assert_eq!(r.status, 200, "the 100 is not the answer");
    let (t1, a) = r.chunk().await.unwrap().unwrap();
    let (t2, b) = r.chunk().await.unwrap().unwrap();
    assert_eq!((a.as_slice(), b.as_slice()), (&b"hello"[..], &b" world"[..]));
    assert!(t2 - t1 >= Duration::from_millis(25), "stamped at arrival");
    assert!(r.chunk().await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut r = c.request("GET", "/y", &[], b"").await.unwrap();
    assert_eq!((r.status, r.body().await.unwrap()), (404, b"nop".to_vec()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut r =
        tokio::time::timeout(Duration::from_secs(1), c.request("POST", "/z", &[], b"x")).await.unwrap().unwrap();
    assert_eq!(r.status, 204);
    assert!(tokio::time::timeout(Duration::from_secs(1), r.body()).await.unwrap().unwrap().is_empty());
    assert!(!server.await.unwrap(), "every request used the warm connection");
}

/// A server that answers each accepted connection's first request with `answer` and reports the request heads.
async fn one_shot_server(
    answer: &'static [u8],
) -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(head) = read_request(&mut s).await {
                    let _ = tx.send(head);
                    let _ = s.write_all(answer).await;
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_base_url_query_reaches_the_server_after_the_path() {
    let (addr, mut heads) = one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let c = Client::new(&format!("http://{addr}/openai/deployments/dep?api-version=2025-04-01-preview"), &settings())
        .unwrap();
    let mut r = c.request("POST", "/chat/completions", &[], b"{}").await.unwrap();
    assert_eq!(r.body().await.unwrap(), b"ok");
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("POST /openai/deployments/dep/chat/completions?api-version=2025-04-01-preview HTTP/1.1\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn an_ipv6_loopback_url_works_and_its_host_header_keeps_the_brackets() {
    let l = match TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: cannot bind [::1] here ({e})");
            return;
        }
    };
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let head = read_request(&mut s).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6").await.unwrap();
        head
    });
    let c = Client::new(&format!("http://[::1]:{port}/v1"), &settings()).unwrap();
    let mut r = c.request("GET", "/models", &[], b"").await.unwrap();
    assert_eq!(r.body().await.unwrap(), b"v6");
    let head = server.await.unwrap();
    assert!(head.lines().any(|l| l.eq_ignore_ascii_case(&format!("host: [::1]:{port}"))), "{head}");
}

#[tokio::test]
async fn a_redirect_is_followed_and_a_loop_is_cut() {
    let (target, mut heads) = one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhere").await;
    let location: &'static str = Box::leak(
        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/moved\r\nContent-Length: 0\r\n\r\n")
            .into_boxed_str(),
    );
    let (first, _) = one_shot_server(location.as_bytes()).await;
    let c = Client::new(&format!("http://{first}/v1"), &settings()).unwrap();
    let mut r = c.request("POST", "/x", &[], b"{}").await.unwrap();
    assert_eq!((r.status, r.body().await.unwrap()), (200, b"here".to_vec()));
    assert!(heads.recv().await.unwrap().starts_with("POST /moved HTTP/1.1"), "307 keeps the method and body");
    // Another host: not followed (the key headers would go with it); the 3xx is the answer, a Protocol error that
    // names where it pointed without its query (which may hold a key).
    let (other, _) = one_shot_server(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:9/x?api_key=sekrit\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let c = Client::new(&format!("http://{other}/v1"), &settings()).unwrap();
    let e = c.request("POST", "/x", &[("api-key", "k")], b"{}").await.err().expect("not followed");
    let text = e.to_string();
    assert!(matches!(e, HttpError::Protocol { .. }) && text.contains("http://localhost:9/x"), "{text}");
    assert!(text.contains("307") && !text.contains("sekrit"), "{text}");
    let (looping, mut seen) =
        one_shot_server(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n").await;
    let c = Client::new(&format!("http://{looping}/v1"), &settings()).unwrap();
    let e = c.request("GET", "/x", &[], b"").await.err().expect("a redirect loop fails");
    assert!(matches!(e, HttpError::Protocol { .. }), "{e}");
    let mut n = 0;
    while seen.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, MAX_REDIRECTS + 1, "the first request and {MAX_REDIRECTS} redirects");
}

#[tokio::test]
async fn a_gzip_body_is_refused_not_passed_on() {
    let (addr, _) =
        one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00")
            .await;
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    let e = c.request("POST", "/audio/speech", &[], b"{}").await.err().expect("refused");
    assert!(matches!(&e, HttpError::Encoding { encoding, .. } if encoding == "gzip"), "{e}");
    let (addr, _) = one_shot_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n",
    )
    .await;
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    let e = c.request("POST", "/audio/speech", &[], b"{}").await.err().expect("refused");
    assert!(matches!(&e, HttpError::Encoding { encoding, .. } if encoding == "gzip"), "{e}");
}

/// The server reads a POST on a kept-alive connection and closes without answering: the request fails and is not
/// sent again (on that connection or a new one).
#[tokio::test]
async fn a_post_on_a_stale_pooled_connection_is_not_resent() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                // The warm-up HEAD is answered; the POST is read and dropped with the connection.
                while let Some(head) = read_request(&mut s).await {
                    let post = head.starts_with("POST");
                    let _ = tx.send(head);
                    if post {
                        return;
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
                }
            });
        }
    });
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    c.warm().await.unwrap();
    assert!(rx.recv().await.unwrap().starts_with("HEAD"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = c.request("POST", "/chat/completions", &[], b"{\"run\":\"once\"}").await.err().expect("no answer");
    assert!(matches!(e, HttpError::Disconnect { .. }), "{e}");
    assert!(rx.recv().await.unwrap().starts_with("POST /v1/chat/completions"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "the POST was sent exactly once");
}

#[tokio::test]
async fn no_head_in_time_is_a_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    });
    let s =
        HttpSettings::from_lookup(Duration::from_secs(1), Duration::from_millis(150), Duration::from_secs(1), |_| None);
    let c = Client::new(&format!("http://{addr}/v1"), &s).unwrap();
    let e = c.request("POST", "/x", &[], b"").await.err().expect("timeout");
    assert!(matches!(e, HttpError::Timeout { ms: 150, .. }), "{e}");
}

/// The TLS test fixtures (tests/fixtures/tls).
fn tls_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// A TLS server on loopback with the fixture certificate, answering each request with `answer`.
async fn tls_server(answer: &'static [u8]) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_fixture("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                loop {
                    let Ok(n) = tls.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = got.starts_with(b"HEAD ");
                        got.drain(..end + 4);
                        // A HEAD is answered with the head alone.
                        let cut = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |i| i + 4);
                        let _ = tls.write_all(if head { &answer[..cut] } else { answer }).await;
                    }
                }
            });
        }
    });
    addr
}

/// `HTTPS_PROXY` (through the injectable lookup): the client tunnels through a `CONNECT` proxy on loopback, which
/// sees the tunnel; the server's certificate is trusted through `SSL_CERT_FILE` alone.
#[tokio::test]
async fn https_goes_through_the_connect_proxy_and_trusts_ssl_cert_file() {
    let server = tls_server(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret").await;
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = proxy.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let Some(head) = read_request(&mut s).await else { return };
                let _ = seen_tx.send(head.clone());
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let Ok(mut up) = tokio::net::TcpStream::connect(target).await else { return };
                s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
            });
        }
    });
    let ca = tls_fixture("ca.pem").to_string_lossy().into_owned();
    let proxy_url = format!("http://{proxy_addr}");
    let lookup = |k: &str| match k {
        "HTTPS_PROXY" => Some(proxy_url.clone()),
        "SSL_CERT_FILE" => Some(ca.clone()),
        _ => None,
    };
    let s = HttpSettings::from_lookup(Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2), lookup);
    let c = Client::new(&format!("https://localhost:{}/v1", server.port()), &s).unwrap();
    c.warm().await.unwrap();
    let mut r = c.request("POST", "/chat/completions", &[], b"{}").await.unwrap();
    assert_eq!((r.status, r.body().await.unwrap()), (200, b"secret".to_vec()));
    let head = seen.recv().await.unwrap();
    assert!(head.starts_with(&format!("CONNECT localhost:{} HTTP/1.1", server.port())), "{head}");
    assert!(seen.try_recv().is_err(), "the warm tunnel carried the request too");
    // Without SSL_CERT_FILE the test CA is not trusted.
    let s = HttpSettings::from_lookup(Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2), |_| None);
    let c = Client::new(&format!("https://localhost:{}/v1", server.port()), &s).unwrap();
    let e = c.request("POST", "/x", &[], b"").await.err().expect("untrusted");
    assert!(matches!(e, HttpError::Connect { .. }), "{e}");
}

/// Userinfo in a base URL becomes basic auth, not part of the request line, and stays out of error messages.
#[tokio::test]
async fn userinfo_becomes_basic_auth_and_stays_out_of_errors() {
    use base64::Engine;
    let (addr, mut heads) = one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let c = Client::new(&format!("http://user:pa%20ss@{addr}/v1"), &settings()).unwrap();
    let mut r = c.request("POST", "/x", &[], b"{}").await.unwrap();
    assert!(r.body().await.unwrap().is_empty());
    let head = heads.recv().await.unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("user:pa ss");
    assert!(head.starts_with("POST /v1/x HTTP/1.1\r\n"), "{head}");
    assert!(head.lines().any(|l| l.eq_ignore_ascii_case(&format!("authorization: Basic {basic}"))), "{head}");
    let dead = Client::new("http://user:hunter22@127.0.0.1:9/v1?api-version=1", &settings()).unwrap();
    let e = dead.request("POST", "/x", &[], b"").await.err().expect("nothing listens on port 9").to_string();
    assert!(!e.contains("hunter22") && !e.contains("user:"), "{e}");
}

/// A 20 MB body (an STT answering 200 with an HTML page): reading it whole stops at [`MAX_BODY`] with a Protocol
/// error, and an error response's body is read only as far as [`MAX_ERROR_BODY`].
#[tokio::test]
async fn a_huge_body_is_cut_off_not_kept() {
    let size = 20 << 20;
    let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
    answer.extend(std::iter::repeat_n(b'<', size));
    let answer: &'static [u8] = Box::leak(answer.into_boxed_slice());
    let (addr, _) = one_shot_server(answer).await;
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    let mut r = c.request("POST", "/audio/transcriptions", &[], b"{}").await.unwrap();
    let e = r.body().await.expect_err("cut off");
    assert!(matches!(&e, HttpError::Protocol { why, .. } if why.contains("16 MiB")), "{e}");
    let mut r = c.request("POST", "/audio/transcriptions", &[], b"{}").await.unwrap();
    assert_eq!(r.error_body().await.len(), MAX_ERROR_BODY);
}

#[test]
fn an_sse_line_that_never_ends_is_an_error() {
    let mut p = SseParser::default();
    let chunk = vec![b'x'; 64 << 10];
    let mut fed = 0;
    let err = loop {
        match p.feed(&chunk) {
            Ok(ev) => assert!(ev.is_empty()),
            Err(e) => break e,
        }
        fed += chunk.len();
        assert!(fed <= MAX_SSE_LINE + chunk.len(), "never refused");
    };
    assert_eq!(err, SseOverflow);
}

/// A chunk-size line that is not hexadecimal is the server breaking HTTP (Protocol); a body that ends before its
/// `Content-Length` is the connection ending early (Disconnect).
#[tokio::test]
async fn broken_chunk_framing_is_protocol_and_a_short_body_a_disconnect() {
    let (addr, _) =
        one_shot_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\nxx\r\n").await;
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    let mut r = c.request("GET", "/x", &[], b"").await.unwrap();
    let e = r.body().await.expect_err("broken framing fails");
    assert!(matches!(e, HttpError::Protocol { .. }), "{e}");
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort").await;
    });
    let c = Client::new(&format!("http://{addr}/v1"), &settings()).unwrap();
    let mut r = c.request("GET", "/x", &[], b"").await.unwrap();
    let e = r.body().await.expect_err("a short body fails");
    assert!(matches!(e, HttpError::Disconnect { .. }), "{e}");
}

#[test]
fn an_sse_stream_cut_inside_an_event_is_seen() {
    let mut p = SseParser::default();
    assert_eq!(p.feed(b"data: {\"a\":1}\n\n").unwrap(), vec!["{\"a\":1}".to_string()]);
    assert!(!p.inside_event());
    p.feed(b"data: {\"b\":").unwrap();
    assert!(p.inside_event());
    let mut p = SseParser::default();
    p.feed(b"data: x\n").unwrap();
    assert!(p.inside_event(), "data lines without the blank line that ends the event");
}
