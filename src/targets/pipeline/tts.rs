//! The pipeline's text-to-speech stage (docs/protocols.md §5.4–5.5), and the sentence splitter that feeds it.
//!
//! * OpenAI-compatible `POST /v1/audio/speech` with `response_format: "pcm"` (raw 24 kHz s16le), streamed
//!   chunked: the first body bytes are the stage's time to first byte.
//! * ElevenLabs `POST /v1/text-to-speech/{voice}/stream?output_format=pcm_24000` (HTTP streaming; `xi-api-key`).
//!
//! Both deliver raw PCM16 at 24 kHz; [`Speech::next`] hands each piece of audio on, stamped at its arrival, as
//! whole samples (a sample split across two network reads is carried over).

use serde_json::json;
use tokio::time::Instant;

use super::http::{Client, HttpError};

/// The rate both TTS forms are asked for.
pub const TTS_RATE: u32 = 24_000;

/// A failed synthesis.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The HTTP exchange failed.
    #[error("speech request: {0}")]
    Http(#[from] HttpError),
    /// The service answered with an error status.
    #[error("speech: HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// The body.
        body: String,
    },
}

/// Which TTS API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsApi {
    /// OpenAI-compatible `/audio/speech`.
    OpenAi,
    /// ElevenLabs streaming.
    ElevenLabs,
}

/// A synthesis in progress: its audio, read as it arrives.
pub struct Speech {
    resp: super::http::Response,
    /// When the request's last byte was written.
    pub sent: Instant,
    carry: Option<u8>,
}

impl Speech {
    /// Sends the request for `text` and waits for the response head.
    pub async fn start(
        client: &Client,
        api: TtsApi,
        key: Option<&str>,
        api_key_header: bool,
        model: Option<&str>,
        voice: Option<&str>,
        text: &str,
    ) -> Result<Self, TtsError> {
        let (path, body, auth_name, auth) = match api {
            TtsApi::OpenAi => (
                "/audio/speech".to_string(),
                json!({"model": model.unwrap_or("gpt-4o-mini-tts"), "input": text,
                       "voice": voice.unwrap_or("alloy"), "response_format": "pcm"}),
                if api_key_header { "api-key" } else { "Authorization" },
                key.map(|k| if api_key_header { k.to_string() } else { format!("Bearer {k}") }),
            ),
            TtsApi::ElevenLabs => (
                format!(
                    "/text-to-speech/{}/stream?output_format=pcm_{TTS_RATE}",
                    voice.unwrap_or("21m00Tcm4TlvDq8ikWAM")
                ),
                json!({"text": text, "model_id": model.unwrap_or("eleven_flash_v2_5")}),
                "xi-api-key",
                key.map(String::from),
            ),
        };
        let body = body.to_string();
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", "application/octet-stream")];
        if let Some(v) = &auth {
            headers.push((auth_name, v.as_str()));
        }
        let mut resp = client.request("POST", &path, &headers, body.as_bytes()).await?;
        if resp.status != 200 {
            return Err(TtsError::Status { status: resp.status, body: resp.error_body().await });
        }
        let sent = resp.sent;
        Ok(Self { resp, sent, carry: None })
    }

    /// The next piece of audio (whole samples) and the instant its bytes arrived; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(Instant, Vec<i16>)>, TtsError> {
        while let Some((at, bytes)) = self.resp.chunk().await? {
            let mut all = Vec::with_capacity(bytes.len() + 1);
            all.extend(self.carry.take());
            all.extend_from_slice(&bytes);
            if all.len() % 2 == 1 {
                self.carry = all.pop();
            }
            if all.is_empty() {
                continue;
            }
            return Ok(Some((at, all.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())));
        }
        Ok(None)
    }
}

/// Cuts streamed LLM text into sentences, so synthesis can start on the first while the model goes on.
#[derive(Debug, Default)]
pub struct Sentences {
    buf: String,
}

impl Sentences {
    /// Adds text; returns the sentences it completed (a `.`, `!`, `?` or `…` followed by whitespace).
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        loop {
            let chars: Vec<(usize, char)> = self.buf.char_indices().collect();
            let cut = chars.windows(2).find_map(|w| {
                let ((_, a), (j, b)) = (w[0], w[1]);
                (matches!(a, '.' | '!' | '?' | '…') && b.is_whitespace()).then_some(j)
            });
            match cut {
                Some(j) => {
                    let s: String = self.buf.drain(..j).collect();
                    let s = s.trim().to_string();
                    if !s.is_empty() {
                        out.push(s);
                    }
                }
                None => break,
            }
        }
        out
    }

    /// The rest, at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.buf).trim().to_string();
        (!s.is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_cut_at_terminal_punctuation_followed_by_space() {
        let mut s = Sentences::default();
        assert!(s.push("We have a table at 7.30").is_empty());
        assert_eq!(s.push(" tonight. And"), vec!["We have a table at 7.30 tonight.".to_string()]);
        assert_eq!(s.push(" another? Yes! Ok"), vec!["And another?".to_string(), "Yes!".to_string()]);
        assert_eq!(s.finish(), Some("Ok".to_string()));
        assert_eq!(s.finish(), None);
    }
}
