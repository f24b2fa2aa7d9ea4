//! The pipeline sim's live speech-to-text: `GET /v1/listen`, the Deepgram v1 live WebSocket. The streaming energy
//! VAD with the client's `endpointing` as its silence; `SpeechStarted` (with `vad_events=true`), interim `Results`
//! about once a second, and, `stt_delay_ms` after the end of speech, a final `Results` with `speech_final: true`;
//! `Finalize` → a `from_finalize` result after `stt_delay_ms`; `CloseStream` → `Metadata` and close.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::recognise::recognise;
use super::{Ctx, finish, mark_first, truth};
use crate::audio::stream_vad::{StreamVad, VadEvent};
use crate::audio::{Pcm, mulaw};
use crate::sim::{GroundTruthKind, Shared};
use crate::stats::SplitMix64;

fn results(text: &str, start: f64, dur: f64, is_final: bool, speech_final: bool, from_finalize: bool) -> String {
    let words: Vec<Json> = text
        .split_whitespace()
        .map(|w| json!({"word": w.to_lowercase(), "punctuated_word": w, "start": start, "end": start + dur, "confidence": 0.99}))
        .collect();
    json!({"type": "Results", "channel_index": [0, 1], "duration": dur, "start": start, "is_final": is_final,
           "speech_final": speech_final, "from_finalize": from_finalize,
           "channel": {"alternatives": [{"transcript": text, "confidence": 0.99, "words": words}]},
           "metadata": {"request_id": "sim", "model_info": {"name": "sim", "version": "0", "arch": "sim"}, "model_uuid": "sim"}})
    .to_string()
}

/// A final result due later: (due, text, speech_final, from_finalize, truth index).
type Pending = (Instant, String, bool, bool, usize);

/// One live session's state.
struct Live {
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    idx: u64,
    rate: u32,
    mu: bool,
    vad_events: bool,
    interim: bool,
    rng: SplitMix64,
    vad: StreamVad,
    evs: Vec<VadEvent>,
    segment: Vec<i16>,
    in_speech: bool,
    total_samples: u64,
    pending: Vec<Pending>,
    next_interim: f64,
}

impl Live {
    fn new(query: &str, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64) -> Self {
        let param = |k: &str| {
            query.split('&').filter_map(|kv| kv.split_once('=')).find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
        };
        let rate: u32 = param("sample_rate").and_then(|v| v.parse().ok()).unwrap_or(16_000);
        let endpointing: f64 = param("endpointing").and_then(|v| v.parse().ok()).unwrap_or(10.0);
        Self {
            rng: SplitMix64::new(ctx.seed ^ idx.wrapping_mul(0xD1B5_4A32_D192_ED03)),
            ctx,
            shared,
            idx,
            rate,
            mu: param("encoding").as_deref() == Some("mulaw"),
            vad_events: param("vad_events").as_deref() == Some("true"),
            interim: param("interim_results").as_deref() == Some("true"),
            vad: StreamVad::new(rate, 0.5, endpointing.max(10.0)),
            evs: Vec::new(),
            segment: Vec::new(),
            in_speech: false,
            total_samples: 0,
            pending: Vec::new(),
            next_interim: 0.0,
        }
    }

    /// What was heard of the speech in progress, if it matches a known utterance.
    fn heard(&self) -> Option<super::recognise::Heard> {
        recognise(&self.ctx.known, &Pcm::new(self.rate, self.segment.clone()))
    }

    /// Caller audio; returns the messages to send.
    fn on_audio(&mut self, b: &[u8], out: &mut Vec<String>) {
        let samples: Vec<i16> = if self.mu {
            mulaw::decode_all(b)
        } else {
            b.chunks_exact(2).map(|x| i16::from_le_bytes([x[0], x[1]])).collect()
        };
        self.total_samples += samples.len() as u64;
        self.vad.push(&samples, true, &mut self.evs);
        self.segment.extend_from_slice(&samples);
        if !self.in_speech && self.evs.is_empty() {
            // Out of speech: keep only a little pre-roll.
            let keep = self.rate as usize / 5;
            if self.segment.len() > keep {
                self.segment.drain(..self.segment.len() - keep);
            }
        }
        for ev in std::mem::take(&mut self.evs) {
            match ev {
                VadEvent::Onset { start_ms, .. } => {
                    self.in_speech = true;
                    self.next_interim = 1000.0;
                    if self.vad_events {
                        out.push(
                            json!({"type": "SpeechStarted", "channel": [0], "timestamp": start_ms / 1000.0})
                                .to_string(),
                        );
                    }
                }
                VadEvent::Silence { .. } => self.end_of_speech(),
            }
        }
        if self.in_speech && self.interim {
            let heard_ms = self.segment.len() as f64 * 1000.0 / self.rate as f64;
            if heard_ms >= self.next_interim {
                self.next_interim += 1000.0;
                if let Some(h) = self.heard() {
                    out.push(results(&h.text, 0.0, heard_ms / 1000.0, false, false, false));
                }
            }
        }
    }

    /// The VAD ended the speech: its final is due `stt_delay_ms` from now.
    fn end_of_speech(&mut self) {
        self.vad.end_speech();
        self.in_speech = false;
        let heard = self.heard();
        let turn = heard.as_ref().map(|h| self.ctx.known_turn[h.index]);
        let text = heard.map(|h| h.text).unwrap_or_default();
        let now = Instant::now();
        let i = truth(&self.shared, self.idx, turn, GroundTruthKind::SttLive, now);
        self.shared.update(i, |g| g.text = Some(text.clone()));
        let delay = self.ctx.profile.draw(&mut self.rng, self.ctx.profile.stt_delay_ms, 0.35);
        self.pending.push((now + Duration::from_secs_f64(delay / 1000.0), text, true, false, i));
        self.segment.clear();
    }

    /// `Finalize`: flush what was heard of the speech in progress (nothing when the VAD already ended it: its
    /// speech_final is pending) and answer after any pending final.
    fn finalize(&mut self) {
        let text = if self.in_speech {
            self.vad.end_speech();
            self.in_speech = false;
            let t = self.heard().map(|h| h.text);
            self.segment.clear();
            t.unwrap_or_default()
        } else {
            String::new()
        };
        let now = Instant::now();
        let i = truth(&self.shared, self.idx, None, GroundTruthKind::SttLive, now);
        self.shared.update(i, |g| g.text = Some(text.clone()));
        let delay = self.ctx.profile.draw(&mut self.rng, self.ctx.profile.stt_delay_ms, 0.35);
        let after = self.pending.iter().map(|p| p.0).max().unwrap_or(now);
        self.pending.push((after.max(now + Duration::from_secs_f64(delay / 1000.0)), text, false, true, i));
    }

    fn metadata(&self) -> String {
        json!({"type": "Metadata", "transaction_key": "deprecated", "request_id": "sim", "sha256": "", "created": "",
            "duration": self.total_samples as f64 / self.rate as f64, "channels": 1})
        .to_string()
    }
}

/// `GET /v1/listen`: the Deepgram v1 live socket.
pub(super) async fn deepgram<S>(ws: WebSocketStream<S>, query: String, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut live = Live::new(&query, ctx, shared, idx);
    let (mut sink, mut src) = ws.split();
    let mut out = Vec::new();
    loop {
        let next_due = live.pending.iter().map(|p| p.0).min();
        tokio::select! {
            _ = async { tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)).await }, if next_due.is_some() => {
                let now = Instant::now();
                let (ready, rest): (Vec<_>, Vec<_>) = live.pending.drain(..).partition(|p| p.0 <= now);
                live.pending = rest;
                for (_, text, sf, ff, i) in ready {
                    let at = Instant::now();
                    if sink.send(Message::Text(results(&text, 0.0, 1.0, true, sf, ff).into())).await.is_err() {
                        return;
                    }
                    mark_first(&live.shared, i, at);
                    finish(&live.shared, i, false);
                }
            }
            m = src.next() => {
                let Some(Ok(m)) = m else { return };
                match m {
                    Message::Binary(b) => live.on_audio(&b, &mut out),
                    Message::Text(t) => {
                        let v: Json = serde_json::from_str(&t).unwrap_or(Json::Null);
                        match v["type"].as_str() {
                            Some("Finalize") => live.finalize(),
                            Some("CloseStream") => {
                                let _ = sink.send(Message::Text(live.metadata().into())).await;
                                let _ = sink.close().await;
                                return;
                            }
                            _ => {}
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
                for m in out.drain(..) {
                    if sink.send(Message::Text(m.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
