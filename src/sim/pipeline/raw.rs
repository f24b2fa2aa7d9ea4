//! The pipeline sim's raw responder: the faults that break HTTP/1.1 itself (docs/sim.md "Faults"), which hyper
//! will not write — a chunk-size line that is not hexadecimal, a body cut off, a `Content-Length` that lies, a
//! response head that never ends — and the SSE faults, written byte by byte over plain TCP.
//!
//! It listens on its own loopback port and [`super::point`] aims only the faulty stage at it ([`stage`]), so the
//! other stages keep the real sim and a turn reaches the fault the way it would reach a broken provider. Every
//! request on a connection is read whole (head bounded by 64 kB, body by the sim's 32 MB); a `HEAD` (the client's
//! warm-up) gets an empty `200`, and every other request gets the fault. Its bodies are fixed: the fault is in the
//! framing, not in what is said.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::scenario::schema::SimFault;

/// Largest request head read, bytes.
const MAX_HEAD: usize = 64 * 1024;

/// The stage a raw fault is played on (`stt`, `llm`, `tts`), or `None` when the fault is not a raw one.
pub(crate) fn stage(fault: Option<SimFault>) -> Option<&'static str> {
    match fault? {
        SimFault::ContentLengthLong | SimFault::ContentLengthShort | SimFault::HeadNeverEnds => Some("stt"),
        SimFault::BrokenChunked | SimFault::SseCutMidEvent | SimFault::SseStall => Some("llm"),
        SimFault::BodyCut => Some("tts"),
        _ => None,
    }
}

/// Serves the fault on every connection until `stop`.
pub(crate) async fn serve(listener: TcpListener, fault: SimFault, stop: watch::Receiver<bool>) {
    let stop2 = stop.clone();
    let handle = move |stream: TcpStream, _n: u64| connection(stream, fault, stop2.clone());
    crate::sim::wire::accept_until_stopped(listener, stop, Duration::ZERO, handle).await;
}

/// Reads one request (head and `Content-Length` body); `None` when the client closed or sent too much.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut tmp = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match s.read(&mut tmp).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(super::http::MAX_BODY);
    while buf.len() < head_end + len {
        match s.read(&mut tmp).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    buf.drain(..head_end + len);
    Some(head)
}

/// Waits until the client closes the connection (reading and discarding) or the sim stops.
async fn until_closed(s: &mut TcpStream, stop: &mut watch::Receiver<bool>) {
    let mut tmp = [0u8; 4096];
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            r = s.read(&mut tmp) => if matches!(r, Ok(0) | Err(_)) { return },
        }
    }
}

/// One chunk of a chunked body.
fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// One SSE event of an OpenAI chat stream carrying `delta`.
fn sse(delta: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-sim\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}\n\n"
    )
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n";

async fn connection(mut s: TcpStream, fault: SimFault, mut stop: watch::Receiver<bool>) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let head = tokio::select! {
            _ = stop.changed() => return,
            h = read_request(&mut s, &mut buf) => match h { Some(h) => h, None => return },
        };
        if head.starts_with("HEAD ") {
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                return;
            }
            continue;
        }
        let go_on = match fault {
            SimFault::BrokenChunked => {
                // One good event, then a chunk-size line that is not hexadecimal.
                let w = format!(
                    "{SSE_HEAD}{}zz;not-a-size\r\ndata: {{}}\r\n",
                    chunk(&sse(r#"{"role":"assistant","content":""}"#))
                );
                let _ = s.write_all(w.as_bytes()).await;
                until_closed(&mut s, &mut stop).await;
                false
            }
            SimFault::SseCutMidEvent => {
                // Two events, then half of a third, then the chunked stream's proper end.
                let cut = r#"data: {"id":"chatcmpl-sim","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" thin"#;
                let w = format!(
                    "{SSE_HEAD}{}{}{}0\r\n\r\n",
                    chunk(&sse(r#"{"role":"assistant","content":""}"#)),
                    chunk(&sse(r#"{"content":"Sure"}"#)),
                    chunk(cut)
                );
                s.write_all(w.as_bytes()).await.is_ok()
            }
            SimFault::SseStall => {
                // Two events, then nothing, the connection held open.
                let w = format!(
                    "{SSE_HEAD}{}{}",
                    chunk(&sse(r#"{"role":"assistant","content":""}"#)),
                    chunk(&sse(r#"{"content":"Sure"}"#))
                );
                let _ = s.write_all(w.as_bytes()).await;
                until_closed(&mut s, &mut stop).await;
                false
            }
            SimFault::ContentLengthLong => {
                // 100 bytes promised that never come, then the close.
                let body = r#"{"text":"I'd like to book a table."}"#;
                let w = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len() + 100
                );
                let _ = s.write_all(w.as_bytes()).await;
                false
            }
            SimFault::ContentLengthShort => {
                // The length covers half of the JSON; the rest follows on the connection as stray bytes.
                let body = r#"{"text":"I'd like to book a table."}"#;
                let w = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len() / 2
                );
                s.write_all(w.as_bytes()).await.is_ok()
            }
            SimFault::HeadNeverEnds => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-sim-pad: ").await;
                loop {
                    let mut tmp = [0u8; 1024];
                    tokio::select! {
                        _ = stop.changed() => break,
                        r = s.read(&mut tmp) => if matches!(r, Ok(0) | Err(_)) { break },
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {
                            if s.write_all(b"a").await.is_err() {
                                break;
                            }
                        }
                    }
                }
                false
            }
            SimFault::BodyCut => {
                // Two seconds of 24 kHz audio promised, a quarter of it sent, then the close.
                let tone: Vec<u8> =
                    (0..12_000).flat_map(|i: i32| ((((i % 48) - 24) * 600) as i16).to_le_bytes()).collect();
                let head = "HTTP/1.1 200 OK\r\ncontent-type: audio/pcm\r\ncontent-length: 96000\r\n\r\n";
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&tone).await;
                false
            }
            _ => false,
        };
        if !go_on {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_faults_have_a_stage_and_others_none() {
        assert_eq!(stage(Some(SimFault::SseStall)), Some("llm"));
        assert_eq!(stage(Some(SimFault::HeadNeverEnds)), Some("stt"));
        assert_eq!(stage(Some(SimFault::BodyCut)), Some("tts"));
        assert_eq!(stage(Some(SimFault::ToolIndexBomb)), None);
        assert_eq!(stage(None), None);
        assert_eq!(chunk("abc"), "3\r\nabc\r\n");
    }
}
