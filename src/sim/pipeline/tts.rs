//! The pipeline sim's text-to-speech services: `POST /v1/audio/speech` (`pcm`, `wav`) and the ElevenLabs stream
//! (`pcm_24000`, `pcm_16000`, `ulaw_8000`): the matching share of the agent line's audio after the leading
//! silence, in `chunk_ms` chunks at `realtime_factor`× real time.

use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::norm;
use super::{Exchange, finish, mark_first, truth, wait_or_cancel};
use crate::audio::resample::resample;
use crate::audio::{Pcm, mulaw};
use crate::sim::GroundTruthKind;
use crate::sim::profile::log_uniform;

/// `POST /v1/audio/speech` and the ElevenLabs stream.
pub(super) async fn speech(x: &mut Exchange<'_>, elevenlabs: bool) -> std::io::Result<bool> {
    let Exchange { c, req, ctx, shared, idx, rng } = x;
    let (ctx, shared, idx) = (*ctx, *shared, *idx);
    let Ok(body) = serde_json::from_slice::<Json>(&req.body) else {
        c.error(400, "the body is not JSON").await?;
        return Ok(true);
    };
    let text = if elevenlabs { body["text"].as_str() } else { body["input"].as_str() }.unwrap_or("").to_string();
    let (format, rate) = if elevenlabs {
        match req.param("output_format").unwrap_or("mp3_44100_128") {
            "pcm_24000" => ("pcm", 24_000),
            "pcm_16000" => ("pcm", 16_000),
            "ulaw_8000" => ("ulaw", 8_000),
            other => {
                c.error(400, &format!("the sim serves pcm_24000, pcm_16000 and ulaw_8000, not {other}")).await?;
                return Ok(true);
            }
        }
    } else {
        match body["response_format"].as_str().unwrap_or("mp3") {
            "pcm" => ("pcm", 24_000),
            "wav" => ("wav", 24_000),
            other => {
                c.error(400, &format!("the sim serves response_format pcm and wav, not {other}")).await?;
                return Ok(true);
            }
        }
    };
    let (audio, found) = ctx.speech_for(&text);
    let lead = if ctx.profile.fixed {
        ctx.profile.leading_silence_ms
    } else {
        log_uniform(rng, ctx.profile.leading_silence_ms.max(1.0), 2.0)
    };
    let mut samples = vec![0i16; (lead * 24.0) as usize];
    samples.extend_from_slice(&audio);
    let pcm = if rate == 24_000 { Pcm::new(24_000, samples) } else { resample(&Pcm::new(24_000, samples), rate) };
    let want = norm(&text);
    let turn = ctx
        .turns
        .iter()
        .position(|t| t.reply_text.as_deref().is_some_and(|r| !want.is_empty() && norm(r).contains(&want)));
    let i = truth(shared, idx, turn, GroundTruthKind::Tts, req.complete_at);
    shared.update(i, |g| {
        g.text = Some(text.clone());
        g.leading_silence_ms = Some(lead);
        g.audio_planned_ms = pcm.duration_ms();
        if !found {
            g.status_reason = Some("unknown text: the shortest agent line was spoken".into());
        }
    });
    let ttfb = ctx.profile.draw(rng, ctx.profile.tts_ttfb_ms, 0.35);
    let t0 = req.complete_at + Duration::from_secs_f64(ttfb / 1000.0);
    if !wait_or_cancel(c, shared, i, t0).await {
        return Ok(false);
    }
    if ctx.fault == Some(crate::scenario::schema::SimFault::UnrequestedGzip) {
        mark_first(shared, i, Instant::now());
        let bytes: Vec<u8> = pcm.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let gz = crate::sim::fault::gzip(&bytes);
        c.respond_encoded(200, "application/octet-stream", "gzip", &gz).await?;
        shared.update(i, |g| g.audio_sent_ms = pcm.duration_ms());
        finish(shared, i, false);
        return Ok(true);
    }
    c.start_stream(if format == "wav" { "audio/wav" } else { "application/octet-stream" }).await?;
    let per = ((ctx.profile.chunk_ms * rate as f64 / 1000.0) as usize).max(1);
    let mut sent = 0.0;
    for (k, ch) in pcm.samples.chunks(per).enumerate() {
        let due = t0 + Duration::from_secs_f64(k as f64 * ctx.profile.chunk_ms / ctx.profile.realtime_factor / 1000.0);
        shared.update(i, |g| g.audio_sent_ms = sent);
        if !wait_or_cancel(c, shared, i, due).await {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        if k == 0 {
            mark_first(shared, i, Instant::now());
            if format == "wav" {
                bytes.extend_from_slice(&wav_stream_header(rate));
            }
        }
        if format == "ulaw" {
            bytes.extend(mulaw::encode_all(ch));
        } else {
            bytes.extend(ch.iter().flat_map(|s| s.to_le_bytes()));
        }
        if c.chunk(&bytes).await.is_err() {
            shared.update(i, |g| g.audio_sent_ms = sent);
            finish(shared, i, true);
            return Ok(false);
        }
        sent += ch.len() as f64 * 1000.0 / rate as f64;
    }
    shared.update(i, |g| g.audio_sent_ms = sent);
    c.end_stream().await?;
    finish(shared, i, false);
    Ok(true)
}

/// A WAV header for a stream of unknown length (sizes 0xFFFFFFFF).
fn wav_stream_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}
