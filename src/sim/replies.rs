//! The simulated agent's reply audio: loaded once per sim, trimmed to its first audible sample, cut into deltas and
//! base64-encoded once per output format, shared by every connection (`Arc`), with the transcript spread over the
//! chunks.
//!
//! The reply WAVs carry ~300 ms of padding before the voice. The sim cuts each reply at its first audible sample
//! (docs/metrics.md's definition, [`EnergyVad::first_audible`], measured on the audio exactly as the client will decode
//! it), so that the leading silence the caller hears is exactly the profile's drawn `leading_silence_ms`, which the
//! sim sends as explicit silence chunks before the reply.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::audio::vad::EnergyVad;
use crate::audio::{AudioError, Pcm, frames, mulaw, read_wav, resample::resample};
use crate::scenario::AudioRef;

/// The wire format of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// PCM16 LE, 24 kHz (`audio/pcm`, beta `pcm16`).
    Pcm24,
    /// G.711 μ-law, 8 kHz (`audio/pcmu`, beta `g711_ulaw`).
    Pcmu,
    /// PCM16 LE, 16 kHz (Gemini Live input, generic PCM over WebSocket; never OpenAI Realtime).
    Pcm16,
}

impl WireFormat {
    /// Sample rate.
    pub fn rate(self) -> u32 {
        match self {
            WireFormat::Pcm24 => 24_000,
            WireFormat::Pcmu => 8_000,
            WireFormat::Pcm16 => 16_000,
        }
    }

    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            WireFormat::Pcm24 | WireFormat::Pcm16 => 2,
            WireFormat::Pcmu => 1,
        }
    }

    /// Samples to wire bytes.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            WireFormat::Pcm24 | WireFormat::Pcm16 => frames::to_le_bytes(samples),
            WireFormat::Pcmu => mulaw::encode_all(samples),
        }
    }

    /// Wire bytes to samples (callers check the length first).
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        match self {
            WireFormat::Pcm24 | WireFormat::Pcm16 => {
                out.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])))
            }
            WireFormat::Pcmu => out.extend(bytes.iter().map(|&b| mulaw::decode(b))),
        }
    }
}

/// One audio delta, pre-encoded.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Base64 of the wire bytes.
    pub b64: Arc<str>,
    /// Audio duration, ms.
    pub ms: f64,
    /// Transcript text sent just before this chunk.
    pub transcript: Option<Arc<str>>,
}

/// A reply encoded for one wire format and chunk size.
#[derive(Debug)]
pub struct Encoded {
    /// The reply's chunks, from its first audible sample.
    pub chunks: Vec<Chunk>,
    /// Total duration of `chunks`, ms.
    pub total_ms: f64,
    /// A full chunk of silence, for leading silence.
    pub silence_chunk: Arc<str>,
    /// Samples in a full chunk.
    pub chunk_samples: usize,
    /// The first half second of the audio as the client decodes it, for the exact first-audible instant.
    pub head: Arc<[i16]>,
    /// Sample rate of the audio.
    pub rate: u32,
}

impl Encoded {
    /// Where the caller's detector finds the first audible sample when `lead_samples` of silence precede the
    /// reply, ms from the start of the response's audio. Window-based detection is not shift-invariant (the
    /// 10 ms windows fall elsewhere), so this is computed on the exact stream, not assumed to be the lead.
    pub fn first_audible_ms(&self, lead_samples: usize) -> f64 {
        let mut s = vec![0i16; lead_samples];
        s.extend_from_slice(&self.head);
        let i = EnergyVad::default().first_audible(&Pcm::new(self.rate, s)).unwrap_or(lead_samples);
        i as f64 * 1000.0 / self.rate as f64
    }

    /// Leading-silence chunks adding up to `ms` (whole samples), as `(base64, ms)`.
    pub fn silence(&self, format: WireFormat, ms: f64) -> Vec<(Arc<str>, f64)> {
        let rate = format.rate() as f64;
        let mut n = (ms * rate / 1000.0).round() as usize;
        let mut out = Vec::new();
        while n > 0 {
            let k = n.min(self.chunk_samples);
            let b64 = if k == self.chunk_samples {
                self.silence_chunk.clone()
            } else {
                Arc::from(STANDARD.encode(format.encode(&vec![0i16; k])))
            };
            out.push((b64, k as f64 * 1000.0 / rate));
            n -= k;
        }
        out
    }
}

/// A reply: its audio at 24 kHz, its text, and lazily its encodings.
#[derive(Debug)]
pub struct Reply {
    /// Corpus id or path.
    pub id: String,
    /// What the agent says.
    pub text: Option<String>,
    pcm24: Pcm,
    /// End of speech relative to the first audible sample of the 24 kHz audio, ms.
    speech_ms: f64,
    pcm: OnceLock<Arc<Encoded>>,
    pcmu: OnceLock<Arc<Encoded>>,
    pcm16: OnceLock<Arc<Encoded>>,
}

impl Reply {
    fn load(r: &AudioRef) -> Result<Self, AudioError> {
        let pcm = read_wav(&r.path)?;
        let pcm24 = resample(&pcm, 24_000);
        Ok(Self {
            id: r.id.clone(),
            text: r.text.clone(),
            pcm24,
            speech_ms: (r.speech_end_ms - r.speech_start_ms).max(0.0),
            pcm: OnceLock::new(),
            pcmu: OnceLock::new(),
            pcm16: OnceLock::new(),
        })
    }

    /// The reply encoded for `format` in chunks of `chunk_ms` (encoded on first use, then shared).
    pub fn encoded(&self, format: WireFormat, chunk_ms: f64) -> Arc<Encoded> {
        let cell = match format {
            WireFormat::Pcm24 => &self.pcm,
            WireFormat::Pcmu => &self.pcmu,
            WireFormat::Pcm16 => &self.pcm16,
        };
        cell.get_or_init(|| Arc::new(self.encode(format, chunk_ms))).clone()
    }

    fn encode(&self, format: WireFormat, chunk_ms: f64) -> Encoded {
        let rate = format.rate();
        // The audio exactly as the client will decode it, then cut at its first audible sample.
        let at_rate = resample(&self.pcm24, rate);
        let samples: Vec<i16> = match format {
            WireFormat::Pcm24 | WireFormat::Pcm16 => at_rate.samples,
            WireFormat::Pcmu => mulaw::decode_all(&mulaw::encode_all(&at_rate.samples)),
        };
        let decoded = Pcm::new(rate, samples);
        let cut = EnergyVad::default().first_audible(&decoded).unwrap_or(0);
        let body = &decoded.samples[cut..];
        let chunk_samples = ((chunk_ms * rate as f64 / 1000.0).round() as usize).max(1);
        let mut chunks: Vec<Chunk> = body
            .chunks(chunk_samples)
            .map(|c| Chunk {
                b64: Arc::from(STANDARD.encode(format.encode(c))),
                ms: c.len() as f64 * 1000.0 / rate as f64,
                transcript: None,
            })
            .collect();
        if let Some(text) = &self.text {
            let words: Vec<&str> = text.split_whitespace().collect();
            let speech_chunks = ((self.speech_ms / chunk_ms).ceil() as usize).clamp(1, chunks.len().max(1));
            // Deltas, as OpenAI and Gemini send them: concatenated they give the text, so every word after the
            // first carries its leading space, even at the start of a chunk.
            let mut per_chunk: Vec<String> = vec![String::new(); speech_chunks];
            for (w, word) in words.iter().enumerate() {
                let c = (w * speech_chunks / words.len()).min(speech_chunks - 1);
                if w > 0 {
                    per_chunk[c].push(' ');
                }
                per_chunk[c].push_str(word);
            }
            for (c, t) in per_chunk.into_iter().enumerate() {
                if !t.is_empty()
                    && let Some(ch) = chunks.get_mut(c)
                {
                    ch.transcript = Some(Arc::from(t));
                }
            }
        }
        let total_ms = chunks.iter().map(|c| c.ms).sum();
        let silence_chunk = Arc::from(STANDARD.encode(format.encode(&vec![0i16; chunk_samples])));
        let head: Arc<[i16]> = body[..body.len().min(rate as usize / 2)].into();
        Encoded { chunks, total_ms, silence_chunk, chunk_samples, head, rate }
    }
}

/// Every reply of a scenario, loaded once (replies shared between turns are loaded once too).
#[derive(Debug, Default)]
pub struct ReplyBank {
    /// Per turn: its reply.
    pub per_turn: Vec<Option<Arc<Reply>>>,
}

impl ReplyBank {
    /// Loads the replies of `turns` (turn order), and pre-encodes them for 24 kHz PCM.
    pub fn load(replies: &[Option<&AudioRef>], chunk_ms: f64) -> Result<Self, AudioError> {
        let mut by_path: HashMap<PathBuf, Arc<Reply>> = HashMap::new();
        let mut per_turn = Vec::with_capacity(replies.len());
        for r in replies {
            let Some(r) = r else {
                per_turn.push(None);
                continue;
            };
            let reply = match by_path.get(&r.path) {
                Some(x) => x.clone(),
                None => {
                    let x = Arc::new(Reply::load(r)?);
                    x.encoded(WireFormat::Pcm24, chunk_ms);
                    by_path.insert(r.path.clone(), x.clone());
                    x
                }
            };
            per_turn.push(Some(reply));
        }
        Ok(Self { per_turn })
    }
}

/// The text with its numbers changed ("eight" → "six", "seven thirty" → "nine thirty", "555" → "444"): what a
/// `misspeak_rate` reply's transcript says instead of the truth. Word by word, so transcript deltas change the same
/// way whole texts do.
pub fn misspeak(text: &str) -> String {
    const SWAP: &[(&str, &str)] = &[
        ("one", "two"),
        ("two", "three"),
        ("three", "two"),
        ("four", "five"),
        ("five", "four"),
        ("six", "eight"),
        ("seven", "nine"),
        ("eight", "six"),
        ("nine", "seven"),
        ("ten", "eleven"),
        ("fifteen", "fifty"),
        ("thirty", "forty"),
        ("forty-five", "fifteen"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_ascii_lowercase();
        match SWAP.iter().find(|(a, _)| *a == lower) {
            Some((_, b)) if word.starts_with(|c: char| c.is_uppercase()) => {
                out.push_str(&b[..1].to_uppercase());
                out.push_str(&b[1..]);
            }
            Some((_, b)) => out.push_str(b),
            None if word.chars().all(|c| c.is_ascii_digit()) => {
                out.extend(word.chars().map(|c| if c == '9' { '0' } else { (c as u8 + 1) as char }))
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod misspeak_tests {
    #[test]
    fn numbers_change_and_nothing_else_does() {
        assert_eq!(
            super::misspeak("No problem. For eight people this Friday, I can offer seven thirty or eight forty-five."),
            "No problem. For six people this Friday, I can offer nine forty or six fifteen."
        );
        assert_eq!(super::misspeak(" Eight, 555"), " Six, 666");
        assert_eq!(super::misspeak("Got it, thank you."), "Got it, thank you.");
    }
}
