//! The sim's fault catalogue (`sim_options.fault`, docs/sim.md "Faults"): which faults a protocol's sim can
//! play, and the bytes of the ones that are data (a gzip stream, a body too large, an oversized message).

use crate::scenario::schema::SimFault;
use crate::scenario::{Protocol, Target};

use super::SimError;

/// The fault a target's sim plays, if any; refused when its protocol's sim cannot play it.
pub(crate) fn of(target: &Target) -> Result<Option<SimFault>, SimError> {
    let Some(fault) = target.sim_options.as_ref().and_then(|o| o.get_ref().fault) else { return Ok(None) };
    let protocol = *target.protocol.get_ref();
    match refusal(fault, protocol) {
        Some(why) => Err(SimError::Fault {
            target: target.name.get_ref().clone(),
            fault: fault.name(),
            protocol: protocol.as_str(),
            why,
        }),
        None => Ok(Some(fault)),
    }
}

/// The protocols whose sims play `fault` (the others refuse it, saying why).
pub fn protocols_playing(fault: SimFault) -> Vec<Protocol> {
    Protocol::ALL.into_iter().filter(|p| refusal(fault, *p).is_none()).collect()
}

/// Why `protocol`'s sim cannot play `fault`, or `None` when it can.
fn refusal(fault: SimFault, protocol: Protocol) -> Option<&'static str> {
    use SimFault as F;
    let pipeline = protocol == Protocol::Pipeline;
    // The WebSocket protocols whose clients present a key (Twilio's Media Streams carry none).
    let keyed_ws =
        matches!(protocol, Protocol::OpenaiRealtime | Protocol::GeminiLive | Protocol::Elevenlabs | Protocol::WsPcm);
    match fault {
        F::ToolIndexBomb
        | F::Body20mb
        | F::UnrequestedGzip
        | F::BrokenChunked
        | F::BodyCut
        | F::SseCutMidEvent
        | F::SseStall
        | F::ContentLengthLong
        | F::ContentLengthShort
        | F::HeadNeverEnds
        | F::KeyEchoSseError => (!pipeline).then_some("it is a pipeline (HTTP) fault"),
        // Both kinds of wire: the WebSocket upgrade, or the pipeline's LLM (302) and STT (401) requests.
        F::Http302 => None,
        F::KeyEcho401 | F::KeyEchoUrl => {
            (!pipeline && !keyed_ws).then_some("the client presents no key on this wire (Twilio Media Streams)")
        }
        F::ErrorRateLimit | F::ErrorServer | F::KeyEchoErrorEvent => {
            (protocol != Protocol::OpenaiRealtime).then_some("error events are OpenAI Realtime's")
        }
        F::KeyEchoSessionId => {
            (!matches!(protocol, Protocol::OpenaiRealtime | Protocol::GeminiLive | Protocol::Elevenlabs))
                .then_some("only OpenAI Realtime, Gemini Live and ElevenLabs send a session id the client keeps")
        }
        F::KeyEchoCloseReason if pipeline => Some("it is a WebSocket fault"),
        F::KeyEchoCloseReason => {
            (!keyed_ws).then_some("the client presents no key on this wire (Twilio Media Streams)")
        }
        F::InvalidBase64 if protocol == Protocol::WsPcm => Some("ws-pcm carries raw binary audio, no base64"),
        F::OddByteLength if protocol == Protocol::Twilio => {
            Some("Twilio's audio is μ-law, one byte per sample: every length is whole samples")
        }
        _ if pipeline => Some("it is a WebSocket fault"),
        _ => None,
    }
}

/// Whether a fault echoes the client's key (the sim then keeps the target's `api_key_env`, so the client sends it).
pub(crate) fn echoes_key(fault: Option<SimFault>) -> bool {
    fault.is_some_and(SimFault::echoes_key)
}

/// The fault of a target, if it names one (without the protocol check [`of`] makes).
pub(crate) fn named(target: &Target) -> Option<SimFault> {
    target.sim_options.as_ref().and_then(|o| o.get_ref().fault)
}

/// The key a client presented, as a key-echoing fault echoes it: a bearer token, an `api-key` / `xi-api-key`
/// header, or a `key` / `api_key` query parameter; a placeholder when there is none.
pub(crate) fn presented_key<'a>(header: impl Fn(&str) -> Option<&'a str>, query: &'a str) -> String {
    let bearer = header("authorization").map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
    let param = || {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| matches!(*k, "key" | "api_key"))
            .map(|(_, v)| v)
    };
    bearer
        .or_else(|| header("api-key"))
        .or_else(|| header("xi-api-key"))
        .or_else(param)
        .map_or_else(|| "no-key-presented".to_string(), String::from)
}

/// Reply audio the `audio-flood` fault sends at once, ms.
pub(crate) const FLOOD_MS: f64 = 186_000.0;

/// The size of the `oversized-message` fault's message.
pub(crate) const OVERSIZED_BYTES: usize = 64 << 20;

/// The size of the `body-20mb` fault's body.
pub(crate) const BODY_BYTES: usize = 20 << 20;

/// A JSON text message of about `n` bytes.
pub(crate) fn oversized(n: usize) -> String {
    let mut s = String::with_capacity(n + 32);
    s.push_str(r#"{"type":"padding","pad":""#);
    s.extend(std::iter::repeat_n('a', n));
    s.push_str(r#""}"#);
    s
}

/// An HTML page of about `n` bytes.
pub(crate) fn html(n: usize) -> Vec<u8> {
    let mut b = b"<!DOCTYPE html><html><body><p>".to_vec();
    while b.len() < n {
        b.extend_from_slice(b"upstream error: please retry later. ");
    }
    b.extend_from_slice(b"</p></body></html>");
    b
}

/// `bytes` as a gzip stream (stored deflate blocks: valid gzip, no compression).
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = bytes.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = b.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&crc32(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_played_by_some_protocol_and_refused_elsewhere_with_a_reason() {
        use crate::scenario::schema::SimFault as F;
        // ALL holds every variant: serde's refusal of an unknown name lists them all.
        let err = serde_json::from_value::<F>(serde_json::json!("nope")).unwrap_err().to_string();
        let mut known: Vec<&str> = err.split('`').skip(3).step_by(2).collect();
        let mut listed: Vec<String> = F::ALL.iter().map(|f| f.name()).collect();
        known.sort_unstable();
        listed.sort_unstable();
        assert_eq!(known, listed, "{err}");
        let (protocols, all) = (Protocol::ALL, F::ALL);
        for f in all {
            assert!(protocols.iter().any(|p| refusal(f, *p).is_none()), "{f:?} is played by no protocol");
        }
        assert!(refusal(F::SseStall, Protocol::GeminiLive).is_some());
        assert!(refusal(F::FragmentedMessage, Protocol::Pipeline).is_some());
        assert!(refusal(F::KeyEchoCloseReason, Protocol::Twilio).is_some());
        assert!(refusal(F::Http302, Protocol::Pipeline).is_none());
    }

    #[test]
    fn the_presented_key_is_found_where_clients_put_it() {
        let h = |v: &'static str| move |n: &str| (n == "authorization").then_some(v);
        assert_eq!(presented_key(h("Bearer sk-1"), ""), "sk-1");
        assert_eq!(presented_key(|_| None, "a=1&key=AIza"), "AIza");
        assert_eq!(presented_key(|n| (n == "xi-api-key").then_some("xi"), ""), "xi");
        assert_eq!(presented_key(|_| None, ""), "no-key-presented");
    }

    #[test]
    fn crc_and_gzip_framing() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let g = gzip(b"hello");
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(g.len(), 10 + 5 + 5 + 8);
    }
}
