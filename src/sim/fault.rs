//! The sim's fault catalogue (`sim_options.fault`, docs/sim.md "Faults"): which faults a protocol's sim can
//! play, and the bytes of the ones that are data (a gzip stream, a body too large, an oversized message).

use crate::scenario::schema::SimFault;
use crate::scenario::{Protocol, Target};

use super::SimError;

/// The fault a target's sim plays, if any; refused when its protocol's sim cannot play it.
pub(crate) fn of(target: &Target) -> Result<Option<SimFault>, SimError> {
    let Some(fault) = target.sim_options.as_ref().and_then(|o| o.get_ref().fault) else { return Ok(None) };
    let protocol = *target.protocol.get_ref();
    let pipeline_fault = matches!(fault, SimFault::ToolIndexBomb | SimFault::Body20mb | SimFault::UnrequestedGzip);
    let why = if (protocol == Protocol::Pipeline) != pipeline_fault {
        Some(if pipeline_fault { "it is a pipeline (HTTP) fault" } else { "it is a WebSocket fault" })
    } else if matches!(fault, SimFault::ErrorRateLimit | SimFault::ErrorServer) && protocol != Protocol::OpenaiRealtime
    {
        Some("error events are OpenAI Realtime's")
    } else if fault == SimFault::InvalidBase64 && protocol == Protocol::WsPcm {
        Some("ws-pcm carries raw binary audio, no base64")
    } else {
        None
    };
    match why {
        Some(why) => Err(SimError::Fault {
            target: target.name.get_ref().clone(),
            fault: fault.name(),
            protocol: protocol.as_str(),
            why,
        }),
        None => Ok(Some(fault)),
    }
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
    fn crc_and_gzip_framing() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let g = gzip(b"hello");
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(g.len(), 10 + 5 + 5 + 8);
    }
}
