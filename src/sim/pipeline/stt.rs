//! The pipeline sim's batch speech-to-text service: `POST /v1/audio/transcriptions` (multipart WAV), answered
//! `stt_delay_ms` after the request's last byte with the transcript of the caller utterance the audio matches, as
//! JSON or as `transcript.text.delta` … `transcript.text.done` server-sent events.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::http::multipart_parts;
use super::recognise::recognise;
use super::{Exchange, finish, mark_first, truth, wait_or_cancel};
use crate::audio::wav::decode_wav;
use crate::scenario::schema::SimFault;
use crate::sim::GroundTruthKind;

/// `POST /v1/audio/transcriptions`. Returns false when the client went away.
pub(super) async fn transcribe(x: &mut Exchange<'_>) -> std::io::Result<bool> {
    let Exchange { c, req, ctx, shared, idx, rng } = x;
    let (ctx, shared, idx) = (*ctx, *shared, *idx);
    let parts = multipart_parts(req.header("content-type").unwrap_or(""), &req.body);
    let field = |n: &str| parts.iter().find(|p| p.0 == n).map(|p| String::from_utf8_lossy(&p.2).into_owned());
    let Some(file) = parts.iter().find(|p| p.0 == "file") else {
        c.error(400, "multipart field `file` is required").await?;
        return Ok(true);
    };
    let pcm = match decode_wav(std::path::Path::new("upload.wav"), &file.2) {
        Ok(p) => p,
        Err(e) => {
            c.error(400, &format!("could not decode the audio: {e}")).await?;
            return Ok(true);
        }
    };
    let heard = recognise(&ctx.known, &pcm);
    let turn = heard.as_ref().map(|h| ctx.known_turn[h.index]);
    let text = heard.map(|h| h.text).unwrap_or_default();
    let i = truth(shared, idx, turn, GroundTruthKind::Stt, req.complete_at);
    shared.update(i, |g| g.text = Some(text.clone()));
    let delay = ctx.profile.draw(rng, ctx.profile.stt_delay_ms, 0.35);
    if !wait_or_cancel(c, shared, i, req.complete_at + Duration::from_secs_f64(delay / 1000.0)).await {
        return Ok(false);
    }
    mark_first(shared, i, Instant::now());
    if ctx.fault == Some(SimFault::Body20mb) {
        c.respond(200, "text/html", &crate::sim::fault::html(crate::sim::fault::BODY_BYTES)).await?;
        finish(shared, i, false);
        return Ok(true);
    }
    if field("stream").as_deref() == Some("true") {
        c.start_stream("text/event-stream").await?;
        let mut sse = String::new();
        for w in text.split_whitespace() {
            sse.push_str(&format!("data: {}\n\n", json!({"type": "transcript.text.delta", "delta": format!("{w} ")})));
        }
        sse.push_str(&format!("data: {}\n\n", json!({"type": "transcript.text.done", "text": text})));
        c.chunk(sse.as_bytes()).await?;
        c.end_stream().await?;
    } else {
        c.respond(200, "application/json", json!({"text": text}).to_string().as_bytes()).await?;
    }
    finish(shared, i, false);
    Ok(true)
}
