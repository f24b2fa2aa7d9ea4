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
//! A target's `sim_options.fault` (docs/sim.md "Faults") is played here on one stage: a redirect or an echoed key by
//! the handlers ([`fault_answer`]), a fault in HTTP's own framing by the raw responder ([`raw`]) on a second port
//! that only the fault's stage is pointed at.
//!
//! With `sim_options.azure` the server plays Azure OpenAI's front door ([`super::azure`]): the same services under
//! `/openai/deployments/{deployment}/…`, behind the `api-key` header and an `api-version` query parameter.

pub mod http;
mod live;
mod llm;
mod raw;
pub mod recognise;
mod stt;
mod tts;

use std::sync::Arc;

use serde_json::{Value as Json, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use self::http::{Conn, Request};
use self::recognise::Known;
use super::profile::{ProfileKind, lognormal};
use super::{GroundTruth, GroundTruthKind, Shared, SimError};
use crate::audio::vad::EnergyVad;
use crate::audio::{Pcm, read_wav, resample::resample, rms_dbfs};
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
    /// Probability that a reply's text says the wrong numbers.
    pub misspeak_rate: f64,
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
                misspeak_rate: 0.0,
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
                misspeak_rate: 0.03,
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
            if let Some(r) = o.misspeak_rate {
                p.misspeak_rate = r.clamp(0.0, 1.0);
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
    /// The fault the services play (`sim_options.fault`).
    fault: Option<crate::scenario::schema::SimFault>,
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
    fn new(
        scenario: &Scenario,
        target: &Target,
        profile: StageProfile,
        seed: u64,
        transcriber: bool,
    ) -> Result<Self, SimError> {
        let mut known = Vec::new();
        let mut known_turn = Vec::new();
        let mut seen: Vec<std::path::PathBuf> = Vec::new();
        // A transcriber also knows the agent's reply lines: it transcribes what the caller heard of the agent.
        let agent = scenario.turns.iter().filter(|_| transcriber).filter_map(|t| Some((t.index, t.reply.as_ref()?)));
        for (index, audio) in scenario.turns.iter().map(|t| (t.index, &t.audio)).chain(agent) {
            if seen.contains(&audio.path) {
                continue;
            }
            seen.push(audio.path.clone());
            let pcm = read_wav(&audio.path)?;
            known.push(Known::new(&pcm, audio.text.as_deref().unwrap_or(&audio.id)));
            known_turn.push(index);
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
            fault: super::fault::of(target)?,
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
    start_as(scenario, target, fixed, seed, false).await
}

/// Starts the pipeline sim for a target; a `transcriber` also recognises the agent's reply lines.
pub(crate) async fn start_as(
    scenario: &Scenario,
    target: &Target,
    fixed: bool,
    seed: u64,
    transcriber: bool,
) -> Result<super::SimHandle, SimError> {
    let name = target.name.get_ref().clone();
    let profile =
        StageProfile::resolve(ProfileKind::Native, fixed, target.sim_options.as_ref().map(|o| o.get_ref()))
            .map_err(|b| SimError::BadOption { target: name.clone(), field: b.field, value: b.value, why: b.why })?;
    let ctx = Arc::new(Ctx::new(scenario, target, profile, seed, transcriber)?);
    let listener = super::listen(0).map_err(SimError::Bind)?;
    let addr = listener.local_addr().map_err(SimError::Bind)?;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        log: std::sync::Mutex::new(Vec::new()),
        turns: scenario.turns.len(),
    });
    let (stop, stop_rx) = watch::channel(false);
    // A fault in HTTP's own framing is played by the raw responder, on its own port, for one stage.
    let fault_stage = match (raw::stage(ctx.fault), ctx.fault) {
        (Some(stage), Some(fault)) => {
            let raw_listener = super::listen(0).map_err(SimError::Bind)?;
            let raw_addr = raw_listener.local_addr().map_err(SimError::Bind)?;
            super::spawn(raw::serve(raw_listener, fault, stop_rx.clone()));
            Some((stage, raw_addr))
        }
        _ => None,
    };
    let task = super::spawn(serve(listener, ctx, shared.clone(), stop_rx));
    Ok(super::SimHandle { addr, url: format!("http://{addr}/v1"), target: name, shared, stop, task, fault_stage })
}

/// Points a pipeline target's stages at the sim (stages the target leaves out default to OpenAI-compatible).
/// In Azure mode each OpenAI stage gets an Azure deployment URL (`/openai/deployments/sim-{stage}?api-version=…`)
/// and keeps its key.
/// A key-echoing fault keeps the stages' `api_key_env` too, so the client sends the key the sim echoes; a raw fault
/// (`fault_stage`) aims that one stage at the raw responder.
pub(crate) fn point(
    target: &mut Target,
    base: &str,
    addr: std::net::SocketAddr,
    azure: bool,
    fault_stage: Option<(&'static str, std::net::SocketAddr)>,
) {
    let keyed = azure || super::fault::echoes_key(super::fault::named(target));
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
        } else if let Some((_, raw)) = fault_stage.filter(|(st, _)| *st == which) {
            format!("http://{raw}/v1")
        } else {
            base.to_string()
        };
        s.url = Some(Spanned::new(0..0, url));
        if !keyed {
            s.api_key_env = None;
        }
    };
    fill(&mut target.stt, "stt", true);
    fill(&mut target.llm, "llm", false);
    fill(&mut target.tts, "tts", false);
}

async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let stop2 = stop.clone();
    let handle = move |stream: TcpStream, n: u64| {
        let (ctx, shared, stop) = (ctx.clone(), shared.clone(), stop2.clone());
        // Connections count from 1 here (ground truth `http-1`, …).
        connection(stream, ctx, shared, n + 1, stop)
    };
    super::wire::accept_until_stopped(listener, stop, Duration::ZERO, handle).await;
}

/// One HTTP connection: its requests one after the other, or the Deepgram live socket it upgrades to.
async fn connection(stream: TcpStream, ctx: Arc<Ctx>, shared: Arc<Shared>, idx: u64, stop: watch::Receiver<bool>) {
    // Requests on one connection come one after the other: they share its random stream.
    let rng = Arc::new(tokio::sync::Mutex::new(SplitMix64::new(ctx.seed ^ idx.wrapping_mul(0x9E37_79B9_7F4A_7C15))));
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
        live::deepgram(ws, up.query, ctx, shared, idx).await;
    }
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
    if fault_answer(c, req, ctx, &path).await? {
        return Ok(());
    }
    {
        let mut x = Exchange { c, req, ctx, shared, idx, rng };
        match (req.method.as_str(), path.as_str()) {
            ("POST", "/v1/audio/transcriptions") => stt::transcribe(&mut x).await?,
            ("POST", "/v1/chat/completions") => llm::chat(&mut x).await?,
            ("POST", "/v1/audio/speech") => tts::speech(&mut x, false).await?,
            ("POST", p) if p.starts_with("/v1/text-to-speech/") => tts::speech(&mut x, true).await?,
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

/// Answers a request with the target's fault when the fault is played on its stage (a redirect or an echoed key on
/// the LLM, a 401 on the STT); `false` when the request is served normally.
async fn fault_answer(c: &mut Conn, req: &Request, ctx: &Ctx, path: &str) -> std::io::Result<bool> {
    use crate::scenario::schema::SimFault as F;
    let Some(fault) = ctx.fault else { return Ok(false) };
    let key = || super::fault::presented_key(|n| req.header(n), &req.query);
    let llm = path == "/v1/chat/completions";
    match fault {
        F::KeyEcho401 if path == "/v1/audio/transcriptions" => {
            let body = json!({"error": {"message": format!("Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.", key()),
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
            c.respond(401, "application/json", body.to_string().as_bytes()).await?;
        }
        F::Http302 if llm => {
            c.respond_with(302, "text/plain", &[("location", "http://127.0.0.2:9/v1/chat/completions")], b"moved")
                .await?;
        }
        F::KeyEchoUrl if llm => {
            let k = key();
            let to = format!("http://127.0.0.2:9/v1/chat/completions?api_key={k}");
            let here = format!("http://{}{}?api_key={k}", req.header("host").unwrap_or("127.0.0.1"), req.path);
            let body = json!({"error": {"message": format!("moved permanently: {here} is now {to}")}});
            c.respond_with(302, "application/json", &[("location", &to)], body.to_string().as_bytes()).await?;
        }
        F::KeyEchoSseError if llm => {
            c.start_stream("text/event-stream").await?;
            let role = json!({"id": "chatcmpl-sim", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
            c.chunk(format!("data: {role}\n\n").as_bytes()).await?;
            let err = json!({"error": {"message": format!("Incorrect API key provided: {}", key()),
                "type": "invalid_request_error", "code": "invalid_api_key"}});
            c.chunk(format!("data: {err}\n\ndata: [DONE]\n\n").as_bytes()).await?;
            c.end_stream().await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
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
