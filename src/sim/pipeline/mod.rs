//! The pipeline sim: one loopback server that plays every service a pipeline target calls, following the
//! scenario's script, with known stage times, and logging ground truth for every request.
//!
//! * `POST /v1/audio/transcriptions` (multipart WAV; `json`, or `stream=true` SSE `transcript.text.delta` …
//!   `transcript.text.done`): answers `stt_delay_ms` after the request's last byte with the transcript of the
//!   caller utterance the audio matches ([`recognise`]).
//! * `GET /v1/listen` (Deepgram v1 live WebSocket): the streaming energy VAD with the client's `endpointing` as its
//!   silence; `SpeechStarted` (with `vad_events=true`), interim `Results` about once a second, and, `stt_delay_ms`
//!   after the end of speech, a final `Results` with `speech_final: true`; `Finalize` → a `from_finalize` result
//!   after `stt_delay_ms`; `CloseStream` → `Metadata` and close. `UtteranceEnd` is not sent.
//! * `POST /v1/chat/completions` (`stream: true`): the turn is the caller utterance the last user message matches
//!   (word overlap). A turn with `[[turn.tool_call]]`s, not yet answered, gets its calls (`sim_args`) streamed as
//!   the recorded OpenAI stream shapes them — id/name first, then `tool_arg_deltas` argument fragments, then
//!   `finish_reason: "tool_calls"`; otherwise the text of the turn's reply, one word-token every `token_ms`. The
//!   first tool-call chunk or content token goes out `llm_ttft_ms` after the request. Only declared tools are
//!   called.
//! * `POST /v1/audio/speech` (`pcm`: 24 kHz s16le; `wav`) and `POST /v1/text-to-speech/{voice}/stream`
//!   (ElevenLabs, `output_format=pcm_24000|pcm_16000`): the sentence is found in the scenario's agent lines and
//!   the matching share of that line's audio is streamed — cut at character-proportional points snapped to the
//!   quietest 10 ms window within ±150 ms, trimmed to its first audible sample, after `leading_silence_ms` of
//!   silence — the first bytes `tts_ttfb_ms` after the request, then `chunk_ms` chunks at `realtime_factor`× real
//!   time.
//!
//! A client that closes its connection mid-response (a barge-in's cancellation) is logged `status = "cancelled"`.
//!
//! With `sim_options.azure` the server plays Azure OpenAI's front door ([`super::azure`]): the same services under
//! `/openai/deployments/{deployment}/…`, behind the `api-key` header and an `api-version` query parameter.

pub mod http;
pub mod recognise;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use self::http::{Conn, Request, multipart_parts};
use self::recognise::{Known, recognise};
use super::profile::{ProfileKind, chance, log_uniform, lognormal};
use super::{GroundTruth, GroundTruthKind, Shared, SimError, ToolCallTruth};
use crate::audio::stream_vad::{StreamVad, VadEvent};
use crate::audio::vad::EnergyVad;
use crate::audio::wav::decode_wav;
use crate::audio::{Pcm, mulaw, read_wav, resample::resample, rms_dbfs};
use crate::scenario::schema::SimOptions;
use crate::scenario::{Scenario, Target};
use crate::stats::SplitMix64;

/// Stage times and faults of the pipeline sim.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageProfile {
    /// `fixed` (exact) or `pipeline` (skewed draws around the values).
    pub fixed: bool,
    /// Request complete (or end of speech, live) → transcript, ms.
    pub stt_delay_ms: f64,
    /// Request → first token or tool-call chunk, ms.
    pub llm_ttft_ms: f64,
    /// Between content tokens, ms.
    pub token_ms: f64,
    /// Request → first audio byte, ms.
    pub tts_ttfb_ms: f64,
    /// Silence before each synthesis's first audible sample, ms.
    pub leading_silence_ms: f64,
    /// Audio per chunk, ms.
    pub chunk_ms: f64,
    /// Audio is sent this many times faster than real time.
    pub realtime_factor: f64,
    /// Argument fragments per tool call.
    pub tool_arg_deltas: u32,
    /// Probability of one wrong argument.
    pub tool_arg_error_rate: f64,
}

impl StageProfile {
    /// The profile's defaults with `sim_options` over them. `pipeline` medians follow published stage budgets:
    /// final transcript 220–650 ms after end of speech (with 500 ms local endpointing the STT's own share is a
    /// median 150 ms), LLM first token 300–700 ms (median 450), TTS first byte 100–300 ms (median 180).
    pub fn resolve(kind: ProfileKind, fixed: bool, o: Option<&SimOptions>) -> Result<Self, super::profile::BadOption> {
        let _ = kind;
        let mut p = if fixed {
            Self {
                fixed,
                stt_delay_ms: 200.0,
                llm_ttft_ms: 400.0,
                token_ms: 20.0,
                tts_ttfb_ms: 150.0,
                leading_silence_ms: 0.0,
                chunk_ms: 40.0,
                realtime_factor: 2.0,
                tool_arg_deltas: 6,
                tool_arg_error_rate: 0.0,
            }
        } else {
            Self {
                fixed,
                stt_delay_ms: 150.0,
                llm_ttft_ms: 450.0,
                token_ms: 20.0,
                tts_ttfb_ms: 180.0,
                leading_silence_ms: 40.0,
                chunk_ms: 40.0,
                realtime_factor: 1.5,
                tool_arg_deltas: 6,
                tool_arg_error_rate: 0.03,
            }
        };
        if let Some(o) = o {
            let ms = |v: Option<f64>, f: &'static str, d: f64| -> Result<f64, super::profile::BadOption> {
                match v {
                    Some(x) if !(0.0..=60_000.0).contains(&x) => {
                        Err(super::profile::BadOption { field: f, value: x, why: "must be 0–60000 ms" })
                    }
                    Some(x) => Ok(x),
                    None => Ok(d),
                }
            };
            p.stt_delay_ms = ms(o.stt_delay_ms, "stt_delay_ms", p.stt_delay_ms)?;
            p.llm_ttft_ms = ms(o.llm_ttft_ms, "llm_ttft_ms", p.llm_ttft_ms)?;
            p.token_ms = ms(o.token_ms, "token_ms", p.token_ms)?;
            p.tts_ttfb_ms = ms(o.tts_ttfb_ms, "tts_ttfb_ms", p.tts_ttfb_ms)?;
            p.leading_silence_ms = ms(o.leading_silence_ms, "leading_silence_ms", p.leading_silence_ms)?;
            p.chunk_ms = ms(o.chunk_ms, "chunk_ms", p.chunk_ms)?.max(5.0);
            if let Some(f) = o.realtime_factor {
                if !(0.5..=100.0).contains(&f) {
                    return Err(super::profile::BadOption {
                        field: "realtime_factor",
                        value: f,
                        why: "must be 0.5–100",
                    });
                }
                p.realtime_factor = f;
            }
            if let Some(n) = o.tool_arg_deltas {
                p.tool_arg_deltas = n.max(1);
            }
            if let Some(r) = o.tool_arg_error_rate {
                p.tool_arg_error_rate = r.clamp(0.0, 1.0);
            }
        }
        Ok(p)
    }

    fn draw(&self, rng: &mut SplitMix64, median: f64, sigma: f64) -> f64 {
        if self.fixed || median <= 0.0 {
            median
        } else {
            lognormal(rng, median, sigma).clamp(median * 0.3, median * 5.0)
        }
    }
}

/// One scripted turn, as the LLM and TTS sims know it.
#[derive(Debug)]
struct TurnScript {
    words: Vec<String>,
    tools: Vec<(String, Json)>,
    reply_text: Option<String>,
}

/// An agent line the TTS can speak: its text and its 24 kHz audio.
#[derive(Debug)]
struct Voice {
    norm: String,
    audio: Pcm,
    /// First and last audible samples.
    span: (usize, usize),
}

/// Everything the server needs, shared by its connections.
struct Ctx {
    profile: StageProfile,
    known: Vec<Known>,
    /// Known utterance → turn index.
    known_turn: Vec<usize>,
    turns: Vec<TurnScript>,
    voices: Vec<Voice>,
    fallback_text: String,
    seed: u64,
    /// Azure mode: the front door's checks, and Azure's paths.
    azure: Option<super::azure::AzureGate>,
}

fn norm_words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn norm(s: &str) -> String {
    norm_words(s).join(" ")
}

/// Waits until `due`; when the client went away meanwhile, logs entry `i` cancelled and says so.
async fn wait_or_cancel(c: &mut Conn, shared: &Shared, i: usize, due: Instant) -> bool {
    if c.wait_until(due).await {
        return true;
    }
    finish(shared, i, true);
    false
}

impl Ctx {
    fn new(scenario: &Scenario, target: &Target, profile: StageProfile, seed: u64) -> Result<Self, SimError> {
        let mut known = Vec::new();
        let mut known_turn = Vec::new();
        let mut seen: Vec<std::path::PathBuf> = Vec::new();
        for t in &scenario.turns {
            if seen.contains(&t.audio.path) {
                continue;
            }
            seen.push(t.audio.path.clone());
            let pcm = read_wav(&t.audio.path)?;
            known.push(Known::new(&pcm, t.audio.text.as_deref().unwrap_or(&t.audio.id)));
            known_turn.push(t.index);
        }
        let mut voices: Vec<Voice> = Vec::new();
        for r in scenario.turns.iter().filter_map(|t| t.reply.as_ref()) {
            let Some(text) = &r.text else { continue };
            if voices.iter().any(|v| v.norm == norm(text)) {
                continue;
            }
            let audio = resample(&read_wav(&r.path)?, 24_000);
            let vad = EnergyVad::default();
            let first = vad.first_audible(&audio).unwrap_or(0);
            let rev = Pcm::new(24_000, audio.samples.iter().rev().copied().collect());
            let last = audio.samples.len() - vad.first_audible(&rev).unwrap_or(0);
            voices.push(Voice { norm: norm(text), audio, span: (first, last.max(first)) });
        }
        let turns = scenario
            .turns
            .iter()
            .map(|t| TurnScript {
                words: norm_words(t.audio.text.as_deref().unwrap_or("")),
                tools: t.tool_calls.iter().map(|c| (c.name.clone(), c.sim_args.clone())).collect(),
                reply_text: t.reply.as_ref().and_then(|r| r.text.clone()),
            })
            .collect();
        let fallback_text = scenario
            .turns
            .iter()
            .filter_map(|t| t.reply.as_ref()?.text.clone())
            .min_by_key(|t| t.len())
            .unwrap_or_else(|| "Okay.".to_string());
        Ok(Self {
            profile,
            known,
            known_turn,
            turns,
            voices,
            fallback_text,
            seed,
            azure: super::azure::AzureGate::of(target),
        })
    }

    /// The turn whose utterance best matches a user message.
    fn turn_of(&self, text: &str) -> Option<usize> {
        let w = norm_words(text);
        if w.is_empty() {
            return None;
        }
        self.turns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let hit = w.iter().filter(|x| t.words.contains(x)).count() as f64;
                (i, hit / w.len().max(1) as f64 - 0.001 * (t.words.len() as f64 - w.len() as f64).abs())
            })
            .filter(|(_, s)| *s > 0.3)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// The audio for a sentence: the matching share of an agent line, trimmed to its first audible sample.
    fn speech_for(&self, text: &str) -> (Vec<i16>, bool) {
        let want = norm(text);
        for v in &self.voices {
            if want.is_empty() {
                break;
            }
            let Some(pos) = v.norm.find(&want) else { continue };
            let total = v.norm.len().max(1) as f64;
            let (a, b) = v.span;
            let span = (b - a) as f64;
            let at = |frac: f64| a + (span * frac) as usize;
            let start = if pos == 0 { a } else { snap(&v.audio.samples, at(pos as f64 / total)) };
            let end_c = pos + want.len();
            let end = if end_c >= v.norm.len() { b } else { snap(&v.audio.samples, at(end_c as f64 / total)) };
            let slice = &v.audio.samples[start.min(end)..end.max(start)];
            let cut = EnergyVad::default().first_audible(&Pcm::new(24_000, slice.to_vec())).unwrap_or(0);
            return (slice[cut..].to_vec(), true);
        }
        // Unknown text: the shortest line, whole.
        let v = self.voices.iter().min_by_key(|v| v.span.1 - v.span.0);
        (v.map(|v| v.audio.samples[v.span.0..v.span.1].to_vec()).unwrap_or_default(), false)
    }
}

/// The quietest 10 ms window within ±150 ms of `at` (24 kHz), as a sample index.
fn snap(s: &[i16], at: usize) -> usize {
    let win = 240;
    let reach = 3600;
    let lo = at.saturating_sub(reach);
    let hi = (at + reach).min(s.len().saturating_sub(win));
    (lo..=hi.max(lo))
        .step_by(win / 2)
        .min_by(|&x, &y| {
            let e = |i: usize| rms_dbfs(&s[i..(i + win).min(s.len())]);
            e(x).total_cmp(&e(y))
        })
        .map_or(at.min(s.len()), |i| (i + win / 2).min(s.len()))
}

/// Starts the pipeline sim for a target.
pub(crate) async fn start(
    scenario: &Scenario,
    target: &Target,
    fixed: bool,
    seed: u64,
) -> Result<super::SimHandle, SimError> {
    let name = target.name.get_ref().clone();
    let profile =
        StageProfile::resolve(ProfileKind::Native, fixed, target.sim_options.as_ref().map(|o| o.get_ref()))
            .map_err(|b| SimError::BadOption { target: name.clone(), field: b.field, value: b.value, why: b.why })?;
    let ctx = Arc::new(Ctx::new(scenario, target, profile, seed)?);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(SimError::Bind)?;
    let addr = listener.local_addr().map_err(SimError::Bind)?;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        log: std::sync::Mutex::new(Vec::new()),
        turns: scenario.turns.len(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, ctx, shared.clone(), stop_rx));
    Ok(super::SimHandle { addr, url: format!("http://{addr}/v1"), target: name, shared, stop, task })
}

/// Points a pipeline target's stages at the sim (stages the target leaves out default to OpenAI-compatible).
/// In Azure mode each OpenAI stage gets an Azure deployment URL (`/openai/deployments/sim-{stage}?api-version=…`)
/// and keeps its key.
pub(crate) fn point(target: &mut Target, base: &str, addr: std::net::SocketAddr, azure: bool) {
    use crate::scenario::schema::Stage;
    use toml::Spanned;
    let fill = |st: &mut Option<Spanned<Stage>>, which: &str, deepgram_ok: bool| {
        let stage = st.get_or_insert_with(|| {
            Spanned::new(
                0..0,
                Stage {
                    provider: Spanned::new(0..0, "openai".into()),
                    url: None,
                    api_key_env: None,
                    auth: None,
                    model: None,
                    voice: None,
                    stream: None,
                },
            )
        });
        let s = stage.get_mut();
        let url = if deepgram_ok && s.provider.get_ref() == "deepgram" {
            format!("ws://{addr}/v1/listen")
        } else if azure && s.provider.get_ref() == "openai" {
            format!("http://{addr}/openai/deployments/sim-{which}?api-version={}", super::azure::API_VERSION)
        } else {
            base.to_string()
        };
        s.url = Some(Spanned::new(0..0, url));
        if !azure {
            s.api_key_env = None;
        }
    };
    fill(&mut target.stt, "stt", true);
    fill(&mut target.llm, "llm", false);
    fill(&mut target.tts, "tts", false);
}

async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => {
                let Ok((stream, _)) = a else { continue };
                let (ctx, shared) = (ctx.clone(), shared.clone());
                n += 1;
                let idx = n;
                let stop = stop.clone();
                conns.spawn(async move {
                    // Requests on one connection come one after the other: they share its random stream.
                    let rng = Arc::new(tokio::sync::Mutex::new(SplitMix64::new(
                        ctx.seed ^ idx.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    )));
                    let (c2, s2) = (ctx.clone(), shared.clone());
                    let handle = move |conn: Conn, req: Request| {
                        let (ctx, shared, rng, mut stop) = (c2.clone(), s2.clone(), rng.clone(), stop.clone());
                        async move {
                            let mut rng = rng.lock().await;
                            // A sim that stops drops its requests unlogged.
                            tokio::select! {
                                _ = route(conn, req, &ctx, &shared, idx, &mut rng) => {}
                                _ = stop.changed() => {}
                            }
                        }
                    };
                    if let Some(up) = http::serve_connection(stream, handle).await
                        && up.path == "/v1/listen"
                    {
                        let ws = WebSocketStream::from_raw_socket(up.io, Role::Server, None).await;
                        deepgram(ws, up.query, ctx, shared, idx).await;
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Ground-truth entry for one request.
fn truth(shared: &Shared, conn: u64, turn: Option<usize>, kind: GroundTruthKind, at: Instant) -> usize {
    // An unmatched request counts as a turn past the script, as the realtime sim's do.
    let mut g = GroundTruth::new(&format!("http-{conn}"), conn, turn.unwrap_or(shared.turns), kind);
    g.request_at = Some(at);
    g.request_ms = Some(shared.ms(at));
    shared.push(g)
}

fn mark_first(shared: &Shared, i: usize, at: Instant) {
    let ms = shared.ms(at);
    shared.update(i, |g| {
        g.first_byte_at.get_or_insert(at);
        g.first_byte_ms.get_or_insert(ms);
    });
}

fn finish(shared: &Shared, i: usize, cancelled: bool) {
    let at = Instant::now();
    let ms = shared.ms(at);
    shared.update(i, |g| {
        g.status = Some(if cancelled { "cancelled" } else { "completed" }.into());
        if cancelled {
            g.status_reason = Some("client_closed".into());
        }
        g.response_done_at = Some(at);
        g.response_done_ms = Some(ms);
    });
}

/// Answers one request.
async fn route(mut c: Conn, req: Request, ctx: &Ctx, shared: &Shared, idx: u64, rng: &mut SplitMix64) {
    let _ = answer(&mut c, &req, ctx, shared, idx, rng).await;
}

async fn answer(
    c: &mut Conn,
    req: &Request,
    ctx: &Ctx,
    shared: &Shared,
    idx: u64,
    rng: &mut SplitMix64,
) -> std::io::Result<()> {
    // Azure mode: its checks, then its deployment paths mapped onto the sim's own.
    let path = match &ctx.azure {
        Some(gate) => {
            if let Err((status, body)) = gate.check(req.header("api-key"), &req.query) {
                return c.respond(status, "application/json", body.as_bytes()).await;
            }
            match super::azure::deployment_path(&req.path) {
                Some(p) => p,
                None => {
                    let body = json!({"error": {"code": "404", "message": "Resource not found"}}).to_string();
                    return c.respond(404, "application/json", body.as_bytes()).await;
                }
            }
        }
        None => req.path.clone(),
    };
    {
        let mut x = Exchange { c, req, ctx, shared, idx, rng };
        match (req.method.as_str(), path.as_str()) {
            ("POST", "/v1/audio/transcriptions") => transcribe(&mut x).await?,
            ("POST", "/v1/chat/completions") => chat(&mut x).await?,
            ("POST", "/v1/audio/speech") => speech(&mut x, false).await?,
            ("POST", p) if p.starts_with("/v1/text-to-speech/") => speech(&mut x, true).await?,
            (_, p) if ["/v1/audio/transcriptions", "/v1/chat/completions", "/v1/audio/speech"].contains(&p) => {
                x.c.error(405, "use POST").await?;
                true
            }
            _ => {
                x.c.error(404, &format!("the pipeline sim does not serve {}", req.path)).await?;
                true
            }
        };
    }
    Ok(())
}

/// One request being answered: the connection, the request, and what the server knows.
struct Exchange<'a> {
    c: &'a mut Conn,
    req: &'a Request,
    ctx: &'a Ctx,
    shared: &'a Shared,
    idx: u64,
    rng: &'a mut SplitMix64,
}

/// `POST /v1/audio/transcriptions`. Returns false when the client went away.
async fn transcribe(x: &mut Exchange<'_>) -> std::io::Result<bool> {
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

fn chunk_json(id: &str, delta: Json, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "sim-pipeline",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

/// `POST /v1/chat/completions`.
async fn chat(x: &mut Exchange<'_>) -> std::io::Result<bool> {
    let Exchange { c, req, ctx, shared, idx, rng } = x;
    let (ctx, shared, idx) = (*ctx, *shared, *idx);
    let Ok(body) = serde_json::from_slice::<Json>(&req.body) else {
        c.error(400, "the body is not JSON").await?;
        return Ok(true);
    };
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let declared: Vec<String> = body["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["function"]["name"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    let last_user = msgs.iter().rposition(|m| m["role"] == "user");
    let turn = last_user.and_then(|u| ctx.turn_of(msgs[u]["content"].as_str().unwrap_or("")));
    let answered = last_user.is_some_and(|u| {
        msgs[u..].iter().any(|m| m["role"] == "assistant" && m.get("tool_calls").is_some_and(|t| !t.is_null()))
    });
    let calls: Vec<(String, Json)> = match turn {
        Some(t) if !answered => ctx.turns[t].tools.iter().filter(|(n, _)| declared.contains(n)).cloned().collect(),
        _ => Vec::new(),
    };
    let i = truth(shared, idx, turn, GroundTruthKind::Llm, req.complete_at);
    let id = format!("chatcmpl-sim{idx}x{i}");
    c.start_stream("text/event-stream").await?;
    let ttft = ctx.profile.draw(rng, ctx.profile.llm_ttft_ms, 0.3);
    let first_at = req.complete_at + Duration::from_secs_f64(ttft / 1000.0);
    if calls.is_empty() {
        let text = turn.and_then(|t| ctx.turns[t].reply_text.clone()).unwrap_or_else(|| ctx.fallback_text.clone());
        shared.update(i, |g| g.text = Some(text.clone()));
        c.chunk(chunk_json(&id, json!({"role": "assistant", "content": ""}), None).as_bytes()).await?;
        let token = if ctx.profile.fixed { ctx.profile.token_ms } else { log_uniform(rng, ctx.profile.token_ms, 1.6) };
        let words: Vec<&str> = text.split_whitespace().collect();
        for (k, w) in words.iter().enumerate() {
            let due = first_at + Duration::from_secs_f64(k as f64 * token / 1000.0);
            if !wait_or_cancel(c, shared, i, due).await {
                return Ok(false);
            }
            if k == 0 {
                mark_first(shared, i, Instant::now());
            }
            let piece = if k == 0 { (*w).to_string() } else { format!(" {w}") };
            c.chunk(chunk_json(&id, json!({"content": piece}), None).as_bytes()).await?;
        }
        let end = first_at + Duration::from_secs_f64(words.len() as f64 * token / 1000.0);
        if !wait_or_cancel(c, shared, i, end).await {
            return Ok(false);
        }
        c.chunk(chunk_json(&id, json!({}), Some("stop")).as_bytes()).await?;
    } else {
        if !wait_or_cancel(c, shared, i, first_at).await {
            return Ok(false);
        }
        mark_first(shared, i, Instant::now());
        let mut out = String::new();
        let mut truths = Vec::new();
        for (k, (name, args)) in calls.iter().enumerate() {
            let mut args = args.clone();
            let mut wrong = None;
            if chance(rng, ctx.profile.tool_arg_error_rate)
                && let Some(obj) = args.as_object_mut()
                && let Some(key) = obj.keys().next().cloned()
            {
                obj.insert(key.clone(), json!("wrong"));
                wrong = Some(key);
            }
            let text = args.to_string();
            let call_id = format!("call_sim{idx}x{i}x{k}");
            out.push_str(&chunk_json(
                &id,
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": k, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            let n = ctx.profile.tool_arg_deltas.max(1) as usize;
            let chars: Vec<char> = text.chars().collect();
            let per = chars.len().div_ceil(n).max(1);
            let mut deltas = 0;
            for piece in chars.chunks(per) {
                let piece: String = piece.iter().collect();
                out.push_str(&chunk_json(
                    &id,
                    json!({"tool_calls": [{"index": k, "function": {"arguments": piece}}]}),
                    None,
                ));
                deltas += 1;
            }
            truths.push(ToolCallTruth {
                call_id,
                name: name.clone(),
                arguments: text,
                wrong_arg: wrong,
                deltas,
                first_delta_at: None,
                first_delta_ms: None,
                done_at: None,
                done_ms: None,
            });
        }
        out.push_str(&chunk_json(&id, json!({}), Some("tool_calls")));
        c.chunk(out.as_bytes()).await?;
        shared.update(i, |g| g.tool_calls = truths);
    }
    let usage = json!({"id": id, "object": "chat.completion.chunk", "choices": [],
                       "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}});
    c.chunk(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes()).await?;
    c.end_stream().await?;
    finish(shared, i, false);
    Ok(true)
}

/// `POST /v1/audio/speech` and the ElevenLabs stream.
async fn speech(x: &mut Exchange<'_>, elevenlabs: bool) -> std::io::Result<bool> {
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

/// `GET /v1/listen`: the Deepgram v1 live socket.
async fn deepgram<S>(ws: WebSocketStream<S>, query: String, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let param = |k: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
    };
    let rate: u32 = param("sample_rate").and_then(|v| v.parse().ok()).unwrap_or(16_000);
    let mu = param("encoding").as_deref() == Some("mulaw");
    let endpointing: f64 = param("endpointing").and_then(|v| v.parse().ok()).unwrap_or(10.0);
    let vad_events = param("vad_events").as_deref() == Some("true");
    let interim = param("interim_results").as_deref() == Some("true");
    let mut rng = SplitMix64::new(ctx.seed ^ idx.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let (mut sink, mut src) = ws.split();
    let mut vad = StreamVad::new(rate, 0.5, endpointing.max(10.0));
    let mut evs = Vec::new();
    let mut segment: Vec<i16> = Vec::new();
    let mut in_speech = false;
    let mut total_samples: u64 = 0;
    // A pending final: (due, text, speech_final, from_finalize, truth index).
    let mut pending: Vec<(Instant, String, bool, bool, usize)> = Vec::new();
    let mut next_interim: f64 = 0.0;
    loop {
        let next_due = pending.iter().map(|p| p.0).min();
        tokio::select! {
            _ = async { tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)).await }, if next_due.is_some() => {
                let now = Instant::now();
                let (ready, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|p| p.0 <= now);
                pending = rest;
                for (_, text, sf, ff, i) in ready {
                    let at = Instant::now();
                    if sink.send(Message::Text(results(&text, 0.0, 1.0, true, sf, ff).into())).await.is_err() {
                        return;
                    }
                    mark_first(&shared, i, at);
                    finish(&shared, i, false);
                }
            }
            m = src.next() => {
                let Some(Ok(m)) = m else { return };
                match m {
                    Message::Binary(b) => {
                        let samples: Vec<i16> = if mu { mulaw::decode_all(&b) } else { b.chunks_exact(2).map(|x| i16::from_le_bytes([x[0], x[1]])).collect() };
                        total_samples += samples.len() as u64;
                        vad.push(&samples, true, &mut evs);
                        segment.extend_from_slice(&samples);
                        if !in_speech && evs.is_empty() {
                            // Out of speech: keep only a little pre-roll.
                            let keep = rate as usize / 5;
                            if segment.len() > keep {
                                segment.drain(..segment.len() - keep);
                            }
                        }
                        for ev in evs.drain(..) {
                            match ev {
                                VadEvent::Onset { start_ms, .. } => {
                                    in_speech = true;
                                    next_interim = 1000.0;
                                    if vad_events {
                                        let m = json!({"type": "SpeechStarted", "channel": [0], "timestamp": start_ms / 1000.0});
                                        if sink.send(Message::Text(m.to_string().into())).await.is_err() { return; }
                                    }
                                }
                                VadEvent::Silence { .. } => {
                                    vad.end_speech();
                                    in_speech = false;
                                    let heard = recognise(&ctx.known, &Pcm::new(rate, segment.clone()));
                                    let turn = heard.as_ref().map(|h| ctx.known_turn[h.index]);
                                    let text = heard.map(|h| h.text).unwrap_or_default();
                                    let now = Instant::now();
                                    let i = truth(&shared, idx, turn, GroundTruthKind::SttLive, now);
                                    shared.update(i, |g| g.text = Some(text.clone()));
                                    let delay = ctx.profile.draw(&mut rng, ctx.profile.stt_delay_ms, 0.35);
                                    pending.push((now + Duration::from_secs_f64(delay / 1000.0), text, true, false, i));
                                    segment.clear();
                                }
                            }
                        }
                        if in_speech && interim {
                            let heard_ms = segment.len() as f64 * 1000.0 / rate as f64;
                            if heard_ms >= next_interim {
                                next_interim += 1000.0;
                                if let Some(h) = recognise(&ctx.known, &Pcm::new(rate, segment.clone())) {
                                    let t = results(&h.text, 0.0, heard_ms / 1000.0, false, false, false);
                                    if sink.send(Message::Text(t.into())).await.is_err() { return; }
                                }
                            }
                        }
                    }
                    Message::Text(t) => {
                        let v: Json = serde_json::from_str(&t).unwrap_or(Json::Null);
                        match v["type"].as_str() {
                            Some("Finalize") => {
                                // Flush what was heard of the speech in progress (nothing when the VAD already
                                // ended it: its speech_final is pending) and answer after any pending final.
                                let text = if in_speech {
                                    vad.end_speech();
                                    in_speech = false;
                                    let t = recognise(&ctx.known, &Pcm::new(rate, segment.clone())).map(|h| h.text);
                                    segment.clear();
                                    t.unwrap_or_default()
                                } else {
                                    String::new()
                                };
                                let now = Instant::now();
                                let i = truth(&shared, idx, None, GroundTruthKind::SttLive, now);
                                shared.update(i, |g| g.text = Some(text.clone()));
                                let delay = ctx.profile.draw(&mut rng, ctx.profile.stt_delay_ms, 0.35);
                                let due = pending.iter().map(|p| p.0).max().unwrap_or(now).max(now + Duration::from_secs_f64(delay / 1000.0));
                                pending.push((due, text, false, true, i));
                            }
                            Some("CloseStream") => {
                                let m = json!({"type": "Metadata", "transaction_key": "deprecated", "request_id": "sim", "sha256": "", "created": "", "duration": total_samples as f64 / rate as f64, "channels": 1});
                                let _ = sink.send(Message::Text(m.to_string().into())).await;
                                let _ = sink.close().await;
                                return;
                            }
                            _ => {}
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
        }
    }
}
