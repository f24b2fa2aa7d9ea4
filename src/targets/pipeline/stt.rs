//! The pipeline's speech-to-text stage (docs/protocols.md §5.1–5.2).
//!
//! * OpenAI-compatible `POST /v1/audio/transcriptions`: after the local endpointer ends the caller's turn, the
//!   turn's audio goes up as a WAV in `multipart/form-data`; the answer is `{"text": …}`, or with `stream = true`
//!   an SSE stream of `transcript.text.delta` events closed by `transcript.text.done`.
//! * Deepgram live (`wss://…/v1/listen`): audio streams as binary frames while the caller speaks; `Results` with
//!   `is_final` accumulate the turn's text; the turn ends at `speech_final: true` or `UtteranceEnd` (STT
//!   endpointing), or — with local endpointing — at the answer to our `Finalize` (`from_finalize: true`).
//!   [`DeepgramDecoder`] is the pure decoding step, tested on the protocol fixture.

use serde_json::Value as Json;
use tokio::time::Instant;

use super::http::{Client, HttpError, SseParser, multipart};
use crate::audio::{Pcm, wav::encode_wav};

/// A failed transcription.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    /// The HTTP exchange failed.
    #[error("transcription request: {0}")]
    Http(#[from] HttpError),
    /// The service answered with an error status.
    #[error("transcription: HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// The body (an error message).
        body: String,
    },
    /// The answer is not what the protocol says.
    #[error("transcription: {0}")]
    Protocol(String),
}

/// A transcript and when it was complete.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The text.
    pub text: String,
    /// When the final text arrived (the response's last byte, or `transcript.text.done`).
    pub at: Instant,
}

/// Transcribes one turn's audio with an OpenAI-compatible service.
pub async fn transcribe(
    client: &Client,
    auth: Option<&(&'static str, String)>,
    model: Option<&str>,
    stream: bool,
    audio: &Pcm,
) -> Result<Transcript, SttError> {
    let wav = encode_wav(audio);
    let model = model.unwrap_or("whisper-1");
    let mut fields = vec![("model", model), ("response_format", "json")];
    if stream {
        fields.push(("stream", "true"));
    }
    let (ctype, body) = multipart(&fields, ("file", "turn.wav", "audio/wav", &wav));
    let mut headers = vec![("Content-Type", ctype.as_str())];
    if let Some((name, value)) = auth {
        headers.push((name, value.as_str()));
    }
    let mut resp = client.request("POST", "/audio/transcriptions", &headers, &body).await?;
    if resp.status != 200 {
        return Err(SttError::Status { status: resp.status, body: resp.error_body().await });
    }
    let is_sse = resp.header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
    if is_sse {
        let mut sse = SseParser::default();
        let mut text = String::new();
        while let Some((at, bytes)) = resp.chunk().await? {
            for data in sse.feed(&bytes).map_err(|e| SttError::Protocol(e.to_string()))? {
                let v: Json = serde_json::from_str(&data).map_err(|e| {
                    SttError::Protocol(format!("bad SSE event ({e}): {}", crate::secret::bound(&data, 256)))
                })?;
                match v.get("type").and_then(Json::as_str) {
                    Some("transcript.text.delta") => {
                        text.push_str(v.get("delta").and_then(Json::as_str).unwrap_or(""));
                    }
                    Some("transcript.text.done") => {
                        let t = v.get("text").and_then(Json::as_str).map_or(text.clone(), String::from);
                        // Drain the rest so the connection can be reused.
                        let _ = resp.body().await;
                        return Ok(Transcript { text: t, at });
                    }
                    _ => {}
                }
            }
        }
        Err(SttError::Protocol("the stream ended without transcript.text.done".into()))
    } else {
        let mut last = resp.head_at;
        let mut body = Vec::new();
        while let Some((at, b)) = resp.chunk().await? {
            last = at;
            body.extend_from_slice(&b);
        }
        let v: Json = serde_json::from_slice(&body).map_err(|e| {
            let shown = crate::secret::bound(&String::from_utf8_lossy(&body[..body.len().min(512)]), 256);
            SttError::Protocol(format!("response is not JSON ({e}; {} bytes): {shown}", body.len()))
        })?;
        let text =
            v.get("text").and_then(Json::as_str).ok_or_else(|| SttError::Protocol(format!("no `text` in {v}")))?;
        Ok(Transcript { text: text.to_string(), at: last })
    }
}

/// What a Deepgram live message means to the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum DeepgramEvent {
    /// Speech started (`vad_events=true`).
    SpeechStarted,
    /// A partial transcript (not final).
    Interim(String),
    /// The end of the caller's turn, with the turn's accumulated final text.
    EndOfTurn {
        /// The text.
        text: String,
        /// `speech_final`, `utterance_end` or `finalize`.
        by: &'static str,
    },
    /// A server error.
    Error(String),
}

/// Accumulates `is_final` segments into turns.
#[derive(Debug, Default)]
pub struct DeepgramDecoder {
    text: String,
    /// Whether `Finalize` was sent and its answer is awaited.
    pub finalizing: bool,
}

impl DeepgramDecoder {
    /// Decodes one text message.
    pub fn feed(&mut self, msg: &str) -> Vec<DeepgramEvent> {
        let Ok(v) = serde_json::from_str::<Json>(msg) else {
            return vec![DeepgramEvent::Error(format!("unparseable message: {msg}"))];
        };
        match v.get("type").and_then(Json::as_str) {
            Some("SpeechStarted") => vec![DeepgramEvent::SpeechStarted],
            Some("Results") => {
                let t = v["channel"]["alternatives"][0]["transcript"].as_str().unwrap_or("").trim().to_string();
                let is_final = v["is_final"].as_bool().unwrap_or(false);
                if !is_final {
                    return if t.is_empty() { vec![] } else { vec![DeepgramEvent::Interim(t)] };
                }
                if !t.is_empty() {
                    if !self.text.is_empty() {
                        self.text.push(' ');
                    }
                    self.text.push_str(&t);
                }
                let by = if v["from_finalize"].as_bool() == Some(true) && self.finalizing {
                    Some("finalize")
                } else if v["speech_final"].as_bool() == Some(true) && !self.finalizing {
                    Some("speech_final")
                } else {
                    None
                };
                match by {
                    Some(by) if !self.text.is_empty() => {
                        self.finalizing = false;
                        vec![DeepgramEvent::EndOfTurn { text: std::mem::take(&mut self.text), by }]
                    }
                    _ => vec![],
                }
            }
            Some("UtteranceEnd") if !self.text.is_empty() && !self.finalizing => {
                vec![DeepgramEvent::EndOfTurn { text: std::mem::take(&mut self.text), by: "utterance_end" }]
            }
            Some("Error") => vec![DeepgramEvent::Error(
                v.get("description").or(v.get("message")).and_then(Json::as_str).unwrap_or("error").to_string(),
            )],
            _ => vec![],
        }
    }
}

/// The Deepgram live URL with the query the pipeline needs: raw PCM16 at `rate`, interim results, VAD events,
/// and the STT's endpointing set to the target's silence (used when endpointing is the STT's).
pub fn deepgram_url(base: &str, model: Option<&str>, rate: u32, endpointing_ms: u32) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut u = format!(
        "{base}{sep}encoding=linear16&sample_rate={rate}&channels=1&interim_results=true&vad_events=true&endpointing={endpointing_ms}&utterance_end_ms=1000&smart_format=true"
    );
    if let Some(m) = model {
        u.push_str("&model=");
        u.push_str(m);
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_sequence_ends_the_turn_at_speech_final() {
        let f = crate::protocol_fixture("deepgram_live_assembled.json");
        let mut d = DeepgramDecoder::default();
        let mut evs = Vec::new();
        for step in f["v1_sequence"].as_array().unwrap() {
            if step["dir"] == "server"
                && let Some(m) = step.get("msg")
            {
                evs.extend(d.feed(&m.to_string()));
            }
        }
        assert!(evs.contains(&DeepgramEvent::SpeechStarted), "{evs:?}");
        assert!(evs.iter().any(|e| matches!(e, DeepgramEvent::Interim(_))), "{evs:?}");
        let ends: Vec<_> = evs.iter().filter(|e| matches!(e, DeepgramEvent::EndOfTurn { .. })).collect();
        assert_eq!(ends.len(), 1, "one turn, ended once: {evs:?}");
        let DeepgramEvent::EndOfTurn { text, .. } = ends[0] else { unreachable!() };
        assert!(!text.is_empty());
    }

    #[test]
    fn final_segments_accumulate_and_finalize_answers_end_the_turn() {
        let r = |t: &str, fin: bool, sf: bool, ff: bool| {
            format!(
                r#"{{"type":"Results","is_final":{fin},"speech_final":{sf},"from_finalize":{ff},"channel":{{"alternatives":[{{"transcript":"{t}"}}]}}}}"#
            )
        };
        let mut d = DeepgramDecoder::default();
        assert!(d.feed(&r("my name", true, false, false)).is_empty());
        assert_eq!(
            d.feed(&r("is Sam", true, true, false)),
            vec![DeepgramEvent::EndOfTurn { text: "my name is Sam".into(), by: "speech_final" }]
        );
        d.feed(&r("eight people", true, false, false));
        d.finalizing = true;
        assert!(d.feed(&r("", true, true, false)).is_empty(), "speech_final is not ours to act on while finalizing");
        assert_eq!(
            d.feed(&r("please", true, false, true)),
            vec![DeepgramEvent::EndOfTurn { text: "eight people please".into(), by: "finalize" }]
        );
        assert!(d.feed(r#"{"type":"UtteranceEnd","last_word_end":2.1}"#).is_empty(), "nothing left to end");
    }
}
