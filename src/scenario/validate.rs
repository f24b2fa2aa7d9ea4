//! Checks a parsed scenario and resolves it: every problem becomes a [`Diagnostic`] at the offending key or value,
//! and all problems are reported at once, not one per run.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::matcher::{Matcher, parse_date, toml_to_json};
use super::schema::{self, Expect, Protocol, ScenarioFile, Start};
use super::{
    AgentSpec, AudioRef, Bound, Defaults, ExpectedCall, LATENCY_METRICS, RATES, STATS, Scenario, ScenarioError, Slo,
    SloKey, StartSpec, ToolSpec, TurnSpec,
};
use crate::audio::{read_wav, vad::EnergyVad};
use crate::corpus::manifest::Manifest;
use crate::diag::{Diagnostic, from_toml_error, suggest};
use crate::model::Metric;

/// Profiles of the embedded simulated providers.
pub const SIM_PROFILES: &[&str] = &["native", "fixed", "pipeline"];

struct Checker<'a> {
    file: &'a Path,
    src: &'a str,
    dir: PathBuf,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diags.push(Diagnostic::at(self.file, self.src, span, message, hint.into()));
    }
}

fn spanned_ok<T>(s: &Spanned<T>) -> Range<usize> {
    s.span()
}

pub(super) fn validate(path: &Path, src: &str) -> Result<Scenario, ScenarioError> {
    let file: ScenarioFile =
        toml::from_str(src).map_err(|e| ScenarioError::Invalid(vec![from_toml_error(path, src, &e)]))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let mut c = Checker { file: path, src, dir, diags: Vec::new() };

    check_name(&mut c, &file.name);
    let defaults = check_defaults(&mut c, &file.defaults);
    check_targets(&mut c, &file.targets);
    let agent = check_agent(&mut c, &file.agent);
    let corpus = find_corpus(&mut c, &file);
    let turns = check_turns(&mut c, &file, &agent, corpus.as_ref().map(|(d, m)| (d.as_path(), m)), &defaults);
    let slo = check_slo(&mut c, &file.slo);

    if !c.diags.is_empty() {
        c.diags.sort_by_key(|d| (d.line, d.col));
        return Err(ScenarioError::Invalid(c.diags));
    }
    Ok(Scenario {
        path: path.to_owned(),
        name: file.name.into_inner(),
        description: file.description,
        corpus_dir: corpus.map(|(d, _)| d),
        defaults,
        targets: file.targets.into_iter().map(Spanned::into_inner).collect(),
        agent,
        turns,
        slo,
    })
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn check_name(c: &mut Checker, name: &Spanned<String>) {
    if !is_identifier(name.get_ref()) {
        c.err(
            name.span(),
            format!("scenario name `{}` cannot be used in file names", name.get_ref()),
            "use 1–64 letters, digits, `_`, `-` or `.`, e.g. `booking`".to_string(),
        );
    }
}

fn check_defaults(c: &mut Checker, d: &schema::Defaults) -> Defaults {
    if *d.calls.get_ref() == 0 {
        c.err(d.calls.span(), "`calls` must be at least 1", None);
    }
    if *d.concurrency.get_ref() == 0 {
        c.err(d.concurrency.span(), "`concurrency` must be at least 1", None);
    }
    let f = *d.frame_ms.get_ref();
    if !(5..=200).contains(&f) {
        c.err(
            d.frame_ms.span(),
            format!("`frame_ms = {f}` is out of range"),
            "use 5–200 ms; 20 ms is what telephony gateways and most SDKs send".to_string(),
        );
    }
    if *d.turn_timeout_ms.get_ref() < 1000 {
        c.err(
            d.turn_timeout_ms.span(),
            "`turn_timeout_ms` must be at least 1000",
            "a reply can take seconds; the default is 15000".to_string(),
        );
    }
    if *d.connect_timeout_ms.get_ref() < 100 {
        c.err(d.connect_timeout_ms.span(), "`connect_timeout_ms` must be at least 100", None);
    }
    for (v, name) in [(&d.first_byte_timeout_ms, "first_byte_timeout_ms"), (&d.idle_timeout_ms, "idle_timeout_ms")] {
        if *v.get_ref() < 100 {
            c.err(v.span(), format!("`{name}` must be at least 100"), None);
        }
    }
    if *d.gap_ms.get_ref() > 60_000 {
        c.err(d.gap_ms.span(), "`gap_ms` above 60000 ms is not a conversation", None);
    }
    Defaults {
        calls: *d.calls.get_ref(),
        concurrency: *d.concurrency.get_ref(),
        frame_ms: f,
        turn_timeout_ms: *d.turn_timeout_ms.get_ref(),
        connect_timeout_ms: *d.connect_timeout_ms.get_ref(),
        first_byte_timeout_ms: *d.first_byte_timeout_ms.get_ref(),
        idle_timeout_ms: *d.idle_timeout_ms.get_ref(),
        seed: d.seed,
        voice: d.voice.get_ref().clone(),
        gap_ms: *d.gap_ms.get_ref(),
    }
}

fn check_env_name(c: &mut Checker, v: &Spanned<String>) {
    let s = v.get_ref();
    let ok = !s.is_empty()
        && !s.starts_with(|ch: char| ch.is_ascii_digit())
        && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !ok {
        let hint = if s.starts_with("sk-") || s.len() > 40 {
            "this looks like a key, not a variable name: export the key (`export OPENAI_API_KEY=…`) and write `api_key_env = \"OPENAI_API_KEY\"`".to_string()
        } else {
            "name an environment variable, e.g. `OPENAI_API_KEY`".to_string()
        };
        // Never echo the value: it may be a secret.
        c.err(v.span(), "`api_key_env` must be the name of an environment variable", hint);
    }
}

fn check_url(c: &mut Checker, url: &Spanned<String>, schemes: &[&str], what: &str) {
    let u = url.get_ref();
    let scheme = u.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if schemes.contains(&s) && u.len() > s.len() + 3 => {}
        _ => c.err(
            url.span(),
            format!("`{u}` is not a {what} URL"),
            format!(
                "the URL must start with {}",
                schemes.iter().map(|s| format!("`{s}://`")).collect::<Vec<_>>().join(" or ")
            ),
        ),
    }
}

fn check_targets(c: &mut Checker, targets: &[Spanned<schema::Target>]) {
    if targets.is_empty() {
        c.err(
            0..0,
            "the scenario has no [[target]]",
            "add one, e.g.\n[[target]]\nname = \"sim-native\"\nprotocol = \"openai-realtime\"\nsim = \"native\""
                .to_string(),
        );
    }
    let mut names = HashSet::new();
    for t in targets {
        let tspan = t.span();
        let t = t.get_ref();
        let name = t.name.get_ref();
        if !is_identifier(name) {
            c.err(
                t.name.span(),
                format!("target name `{name}` cannot be used in file names"),
                "use letters, digits, `_`, `-` or `.`".to_string(),
            );
        }
        if !names.insert(name.clone()) {
            c.err(t.name.span(), format!("two targets are named `{name}`"), "target names must be unique".to_string());
        }
        let proto = *t.protocol.get_ref();
        let pipeline = proto == Protocol::Pipeline;
        match (&t.sim, &t.url) {
            (Some(s), Some(u)) => {
                c.err(u.span(), format!("target `{name}` has both `sim` and `url`"), "keep `sim = \"…\"` for the embedded simulated provider, or `url` for a real endpoint".to_string());
                let _ = s;
            }
            (Some(sim), None) => {
                let p = sim.get_ref().as_str();
                let allowed: &[&str] = if pipeline { &["pipeline", "fixed"] } else { &["native", "fixed"] };
                if !SIM_PROFILES.contains(&p) {
                    c.err(sim.span(), format!("unknown sim profile `{p}`"), suggest(p, "profiles", SIM_PROFILES));
                } else if !allowed.contains(&p) {
                    c.err(sim.span(), format!("sim profile `{p}` does not fit a `{}` target", proto.as_str()), format!("use one of: {}", allowed.join(", ")));
                }
                let azure = t.sim_options.as_ref().is_some_and(|o| o.get_ref().azure == Some(true));
                if let Some(k) = &t.api_key_env
                    && !azure
                {
                    c.err(k.span(), "a simulated target needs no API key", "remove `api_key_env`, replace `sim` with the real `url`, or set `sim_options = { azure = true }` to have the sim check the key as Azure does".to_string());
                }
            }
            (None, Some(url)) => {
                if pipeline {
                    c.err(url.span(), "a pipeline target has no `url` of its own", "put a `url` in each of its [target.stt], [target.llm] and [target.tts] tables".to_string());
                } else {
                    check_url(c, url, &["ws", "wss"], "WebSocket");
                }
            }
            (None, None) if !pipeline => c.err(
                t.name.span(),
                format!("target `{name}` has neither `url` nor `sim`"),
                "add `url = \"wss://…\"` for a real endpoint, or `sim = \"native\"` for the embedded simulated provider".to_string(),
            ),
            (None, None) => {}
        }
        if let Some(k) = &t.api_key_env {
            check_env_name(c, k);
        }
        if let Some(a) = &t.auth {
            check_auth(c, a);
            if proto != Protocol::OpenaiRealtime {
                c.err(
                    a.span(),
                    format!("`auth` does not apply to a `{}` target", proto.as_str()),
                    "`auth` is for openai-realtime targets and for the stages of a pipeline target".to_string(),
                );
            }
        }
        if let Some(o) = &t.sim_options
            && o.get_ref().azure == Some(true)
            && !matches!(proto, Protocol::OpenaiRealtime | Protocol::Pipeline)
        {
            c.err(o.span(), "`azure` applies to openai-realtime and pipeline sims", None);
        }
        let only = |c: &mut Checker, present: Option<Range<usize>>, key: &str, protos: &str| {
            if let Some(span) = present {
                c.err(
                    span,
                    format!("`{key}` does not apply to a `{}` target", proto.as_str()),
                    format!("`{key}` is for {protos} targets; remove it"),
                );
            }
        };
        if proto != Protocol::OpenaiRealtime {
            only(c, t.dialect.as_ref().map(spanned_ok), "dialect", "openai-realtime");
        }
        if proto != Protocol::OpenaiRealtime && proto != Protocol::GeminiLive {
            only(c, t.turn_detection.as_ref().map(spanned_ok), "turn_detection", "openai-realtime and gemini-live");
        }
        if matches!(proto, Protocol::GeminiLive | Protocol::Twilio | Protocol::WsPcm) {
            let why = match proto {
                Protocol::Twilio => "twilio (always G.711 μ-law 8 kHz, as Twilio sends it)",
                Protocol::WsPcm => "ws-pcm (PCM16 at `sample_rate`)",
                _ => "gemini-live (PCM16: 16 kHz in, 24 kHz out)",
            };
            if let Some(f) = &t.audio_format {
                c.err(
                    f.span(),
                    format!(
                        "`audio_format` does not apply to a `{}` target: its audio is fixed by {why}",
                        proto.as_str()
                    ),
                    "remove it; `audio_format` is for openai-realtime and elevenlabs targets".to_string(),
                );
            }
        }
        if proto == Protocol::GeminiLive
            && let Some(td) = &t.turn_detection
        {
            let td = td.get_ref();
            let kind = td.kind.get_ref().as_str();
            if !["server_vad", "none"].contains(&kind) {
                c.err(
                    td.kind.span(),
                    format!("gemini-live has no `{kind}` turn detection"),
                    "use `server_vad` (automatic activity detection) or `none` (voicebench sends activityStart / activityEnd)"
                        .to_string(),
                );
            }
            if let Some(th) = &td.threshold {
                c.err(
                    th.span(),
                    "gemini-live takes no VAD `threshold`",
                    "remove it; Gemini's sensitivity is not a number".to_string(),
                );
            }
        }
        if proto != Protocol::Elevenlabs {
            only(c, t.agent_id.as_ref().map(spanned_ok), "agent_id", "elevenlabs");
        } else if t.agent_id.is_none() && t.sim.is_none() {
            c.err(
                t.name.span(),
                format!("elevenlabs target `{name}` needs `agent_id`"),
                "copy the agent id from the ElevenLabs dashboard".to_string(),
            );
        }
        if proto != Protocol::WsPcm {
            only(c, t.sample_rate.as_ref().map(spanned_ok), "sample_rate", "ws-pcm");
        } else if let Some(r) = &t.sample_rate
            && ![8000, 16000, 24000, 48000].contains(r.get_ref())
        {
            c.err(
                r.span(),
                format!("sample_rate {} is not supported", r.get_ref()),
                "use 8000, 16000, 24000 or 48000".to_string(),
            );
        }
        if let Some(td) = &t.turn_detection {
            check_turn_detection(c, td.get_ref());
        }
        if !pipeline {
            for (k, st) in [("stt", &t.stt), ("llm", &t.llm), ("tts", &t.tts)] {
                only(c, st.as_ref().map(spanned_ok), k, "pipeline");
            }
            only(c, t.endpointing.as_ref().map(spanned_ok), "endpointing", "pipeline");
        } else {
            let sim = t.sim.is_some();
            for (k, st, providers) in [
                ("stt", &t.stt, &["openai", "deepgram"][..]),
                ("llm", &t.llm, &["openai"][..]),
                ("tts", &t.tts, &["openai", "elevenlabs"][..]),
            ] {
                match st {
                    None if !sim => c.err(
                        tspan.clone(),
                        format!("pipeline target `{name}` has no [target.{k}] table"),
                        format!("add [target.{k}] with `provider` and `url`, or use `sim = \"pipeline\"`"),
                    ),
                    None => {}
                    Some(st) => check_stage(c, k, st.get_ref(), providers, sim),
                }
            }
            if let Some(e) = &t.endpointing {
                let m = e.get_ref().mode.get_ref().as_str();
                if !["local", "stt"].contains(&m) {
                    c.err(
                        e.get_ref().mode.span(),
                        format!("unknown endpointing mode `{m}`"),
                        suggest(m, "modes", &["local", "stt"]),
                    );
                } else if m == "stt" && t.stt.as_ref().is_none_or(|s| s.get_ref().provider.get_ref() != "deepgram") {
                    c.err(
                        e.get_ref().mode.span(),
                        "endpointing `stt` needs a streaming STT with its own endpointing",
                        "use `provider = \"deepgram\"` in [target.stt], or `mode = \"local\"`".to_string(),
                    );
                }
            }
        }
    }
}

fn check_turn_detection(c: &mut Checker, td: &schema::TurnDetection) {
    let kind = td.kind.get_ref().as_str();
    const KINDS: &[&str] = &["server_vad", "semantic_vad", "none"];
    if !KINDS.contains(&kind) {
        c.err(td.kind.span(), format!("unknown turn_detection type `{kind}`"), suggest(kind, "types", KINDS));
        return;
    }
    if let Some(th) = &td.threshold {
        if kind != "server_vad" {
            c.err(th.span(), "`threshold` is a server_vad setting", None);
        } else if !(0.0..=1.0).contains(th.get_ref()) {
            c.err(th.span(), format!("threshold {} is outside 0–1", th.get_ref()), None);
        }
    }
    if let Some(e) = &td.eagerness {
        const E: &[&str] = &["low", "medium", "high", "auto"];
        if kind != "semantic_vad" {
            c.err(e.span(), "`eagerness` is a semantic_vad setting", None);
        } else if !E.contains(&e.get_ref().as_str()) {
            c.err(e.span(), format!("unknown eagerness `{}`", e.get_ref()), suggest(e.get_ref(), "values", E));
        }
    }
}

fn check_stage(c: &mut Checker, which: &str, st: &schema::Stage, providers: &[&str], sim: bool) {
    let p = st.provider.get_ref().as_str();
    if !providers.contains(&p) {
        c.err(st.provider.span(), format!("`{p}` is not a {which} provider"), suggest(p, "providers", providers));
    }
    match (&st.url, sim) {
        (Some(u), true) => c.err(
            u.span(),
            "a simulated pipeline's stages take no `url`",
            "remove `url`; the embedded sim serves every stage".to_string(),
        ),
        (None, false) => c.err(
            st.provider.span(),
            format!("[target.{which}] needs a `url`"),
            "e.g. `url = \"https://api.openai.com/v1\"`".to_string(),
        ),
        (Some(u), false) => {
            let schemes: &[&str] = if which == "stt" && p == "deepgram" { &["ws", "wss"] } else { &["http", "https"] };
            check_url(c, u, schemes, if schemes[0] == "ws" { "WebSocket" } else { "HTTP" });
        }
        (None, true) => {}
    }
    if let Some(k) = &st.api_key_env {
        check_env_name(c, k);
    }
    if let Some(a) = &st.auth {
        check_auth(c, a);
        if p != "openai" {
            c.err(
                a.span(),
                format!("`auth` does not apply to a `{p}` stage"),
                "`auth` chooses between Bearer and Azure's `api-key` header for `openai` stages".to_string(),
            );
        }
    }
}

fn check_auth(c: &mut Checker, a: &Spanned<String>) {
    const AUTH: &[&str] = &["bearer", "api-key"];
    let v = a.get_ref().as_str();
    if !AUTH.contains(&v) {
        c.err(a.span(), format!("unknown auth `{v}`"), suggest(v, "values", AUTH));
    }
}

fn compile_matchers(
    c: &mut Checker,
    args: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    props: Option<&[String]>,
    tool: &str,
) -> Vec<(String, Matcher)> {
    let mut out = Vec::new();
    for (k, v) in args {
        if let Some(props) = props
            && !props.iter().any(|p| p == k.get_ref())
        {
            c.err(
                k.span(),
                format!("tool `{tool}` has no parameter `{}`", k.get_ref()),
                suggest(k.get_ref(), "parameters", props),
            );
        }
        match Matcher::compile(v.get_ref()) {
            Ok(m) => out.push((k.get_ref().clone(), m)),
            Err((msg, hint)) => c.err(v.span(), msg, hint),
        }
    }
    out
}

fn tool_properties(params: &toml::Table) -> Vec<String> {
    params.get("properties").and_then(|p| p.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

fn check_agent(c: &mut Checker, a: &schema::Agent) -> AgentSpec {
    if let Some(t) = &a.today
        && !(t.get_ref().len() == 10 && parse_date(t.get_ref()).is_some_and(|d| d.year.is_some()))
    {
        c.err(
            t.span(),
            format!("`today = \"{}\"` is not an ISO date", t.get_ref()),
            "write it as YYYY-MM-DD".to_string(),
        );
    }
    let mut tools = Vec::new();
    let mut seen = HashSet::new();
    for t in &a.tools {
        let t = t.get_ref();
        let name = t.name.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            c.err(
                t.name.span(),
                format!("tool name `{name}` is not a valid function name"),
                "use 1–64 letters, digits, `_` or `-`".to_string(),
            );
        }
        if !seen.insert(name.clone()) {
            c.err(t.name.span(), format!("two tools are named `{name}`"), None);
        }
        let params = t.parameters.get_ref();
        if params.get("type").and_then(|v| v.as_str()) != Some("object") {
            c.err(
                t.parameters.span(),
                format!("tool `{name}`: `parameters` must be a JSON Schema object"),
                "start it with `type = \"object\"` and list `properties`".to_string(),
            );
        }
        let props = tool_properties(params);
        if let Some(req) = params.get("required").and_then(|r| r.as_array()) {
            for r in req.iter().filter_map(|r| r.as_str()) {
                if !props.iter().any(|p| p == r) {
                    c.err(
                        t.parameters.span(),
                        format!("tool `{name}`: required parameter `{r}` is not in `properties`"),
                        None,
                    );
                }
            }
        }
        let results = t
            .results
            .iter()
            .map(|r| (compile_matchers(c, &r.when, Some(&props), name), toml_to_json(&r.output)))
            .collect();
        tools.push(ToolSpec {
            name: name.clone(),
            description: t.description.clone(),
            parameters: toml_to_json(&toml::Value::Table(params.clone())),
            results,
            default_result: toml_to_json(&t.default_result),
        });
    }
    AgentSpec { instructions: a.instructions.clone(), today: a.today.as_ref().map(|t| t.get_ref().clone()), tools }
}

/// The corpus directory and its manifest, when any turn needs it.
fn find_corpus(c: &mut Checker, f: &ScenarioFile) -> Option<(PathBuf, Manifest)> {
    let first_use =
        f.turns.iter().find_map(|t| t.get_ref().utterance.as_ref().or(t.get_ref().reply.as_ref()).map(|u| u.span()))?;
    let dir = match &f.corpus {
        Some(p) => {
            let d = c.dir.join(p.get_ref());
            if !d.join(Manifest::FILE).is_file() {
                c.err(
                    p.span(),
                    format!("no corpus at `{}`: {} is missing", p.get_ref(), d.join(Manifest::FILE).display()),
                    "point `corpus` at the directory holding manifest.json (relative to this file)".to_string(),
                );
                return None;
            }
            d
        }
        None => {
            let found = c.dir.ancestors().map(|a| a.join("audio-corpus")).find(|d| d.join(Manifest::FILE).is_file());
            match found {
                Some(d) => d,
                None => {
                    c.err(first_use, "this turn names a corpus utterance, but no audio corpus was found", format!("no audio-corpus/manifest.json in {} or its parents; set `corpus = \"path/to/audio-corpus\"` at the top of the file, or use `wav = \"…\"`", c.dir.display()));
                    return None;
                }
            }
        }
    };
    match Manifest::load(&dir) {
        Ok(m) => Some((dir, m)),
        Err(e) => {
            let span = f.corpus.as_ref().map_or(first_use, |p| p.span());
            c.err(
                span,
                format!("cannot read the corpus manifest: {e}"),
                "rebuild it with `voicebench corpus build`".to_string(),
            );
            None
        }
    }
}

fn corpus_audio(
    c: &mut Checker,
    corpus: Option<(&Path, &Manifest)>,
    role: &str,
    line: &Spanned<String>,
    voice: &str,
    voice_span: Range<usize>,
) -> Option<AudioRef> {
    let (dir, m) = corpus?;
    let Some(u) = m.find(role, line.get_ref(), voice) else {
        let lines = m.lines(role);
        if !lines.contains(&line.get_ref().as_str()) {
            let what = if role == "agent" { "agent lines" } else { "caller lines" };
            c.err(
                line.span(),
                format!("the corpus has no {role} line `{}`", line.get_ref()),
                suggest(line.get_ref(), what, &lines),
            );
        } else {
            let voices = m.voices(role);
            c.err(
                voice_span,
                format!("the corpus has no `{}` line in voice `{voice}`", line.get_ref()),
                suggest(voice, "voices", &voices),
            );
        }
        return None;
    };
    let path = dir.join(&u.file);
    if let Err(e) = read_wav(&path) {
        c.err(
            line.span(),
            format!("corpus utterance `{}`: {e}", u.id),
            "run `voicebench corpus check`, and `voicebench corpus build` to regenerate".to_string(),
        );
        return None;
    }
    Some(AudioRef {
        path,
        id: u.id.clone(),
        text: Some(u.text.clone()),
        sample_rate: u.sample_rate,
        duration_ms: u.duration_ms,
        speech_start_ms: u.speech_start_ms,
        speech_end_ms: u.speech_end_ms,
        pauses_ms: u.pauses.iter().map(|p| (p.start_ms, p.end_ms)).collect(),
    })
}

fn wav_audio(c: &mut Checker, wav: &Spanned<String>, text: Option<&String>) -> Option<AudioRef> {
    let path = c.dir.join(wav.get_ref());
    if !path.is_file() {
        c.err(
            wav.span(),
            format!("WAV file not found: {}", path.display()),
            "paths are relative to the scenario file's directory".to_string(),
        );
        return None;
    }
    let pcm = match read_wav(&path) {
        Ok(p) => p,
        Err(e) => {
            c.err(wav.span(), e.to_string(), None);
            return None;
        }
    };
    let Some(ann) = EnergyVad::default().annotate(&pcm) else {
        c.err(
            wav.span(),
            format!("{}: no speech found (nothing above −40 dBFS for 30 ms)", path.display()),
            "check the file is not silent or far too quiet".to_string(),
        );
        return None;
    };
    Some(AudioRef {
        path: path.clone(),
        id: wav.get_ref().clone(),
        text: text.cloned(),
        sample_rate: pcm.rate,
        duration_ms: pcm.duration_ms(),
        speech_start_ms: pcm.ms_at(ann.speech.start),
        speech_end_ms: pcm.ms_at(ann.speech.end),
        pauses_ms: ann.pauses.iter().map(|p| (pcm.ms_at(p.start), pcm.ms_at(p.end))).collect(),
    })
}

fn check_turns(
    c: &mut Checker,
    f: &ScenarioFile,
    agent: &AgentSpec,
    corpus: Option<(&Path, &Manifest)>,
    d: &Defaults,
) -> Vec<TurnSpec> {
    if f.turns.is_empty() {
        c.err(
            0..0,
            "the scenario has no [[turn]]",
            "add the caller's utterances as [[turn]] tables with `utterance = \"…\"` or `wav = \"…\"`".to_string(),
        );
    }
    let tool_names: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
    let uses_sim = f.targets.iter().any(|t| t.get_ref().sim.is_some());
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, st) in f.turns.iter().enumerate() {
        let tspan = st.span();
        let t = st.get_ref();
        let expect = t.expect.as_ref().map_or(Expect::Respond, |e| *e.get_ref());
        let voice = t.voice.as_ref().map_or(d.voice.as_str(), |v| v.get_ref().as_str());
        let voice_span = t.voice.as_ref().map_or_else(|| f.defaults.voice.span(), |v| v.span());
        let voice_span =
            if voice_span.is_empty() { t.utterance.as_ref().map_or(tspan.clone(), |u| u.span()) } else { voice_span };
        let audio = match (&t.utterance, &t.wav) {
            (Some(u), None) => {
                if t.text.is_some() {
                    c.err(
                        u.span(),
                        "`text` is only for `wav` turns",
                        "a corpus utterance carries its own transcript".to_string(),
                    );
                }
                corpus_audio(c, corpus, "caller", u, voice, voice_span)
            }
            (None, Some(w)) => {
                if let Some(v) = &t.voice {
                    c.err(
                        v.span(),
                        "`voice` is only for corpus utterances",
                        "a `wav` turn is already one voice; remove `voice`".to_string(),
                    );
                }
                wav_audio(c, w, t.text.as_ref())
            }
            (Some(_), Some(w)) => {
                c.err(
                    w.span(),
                    format!("turn {} has both `utterance` and `wav`", i + 1),
                    "keep one: `utterance` names a corpus line, `wav` a file".to_string(),
                );
                None
            }
            (None, None) => {
                c.err(
                    tspan.clone(),
                    format!("turn {} has no `utterance` or `wav`", i + 1),
                    "add `utterance = \"greeting\"` (a corpus line) or `wav = \"my.wav\"`".to_string(),
                );
                None
            }
        };
        let id =
            t.id.as_ref()
                .map(|s| s.get_ref().clone())
                .or_else(|| t.utterance.as_ref().map(|u| u.get_ref().clone()))
                .unwrap_or_else(|| format!("turn{}", i + 1));
        if !ids.insert(id.clone()) && t.id.is_some() {
            c.err(t.id.as_ref().map_or(tspan.clone(), |s| s.span()), format!("two turns have the id `{id}`"), None);
        }
        let start_kind = t.start.as_ref().map_or(Start::AfterAgentDone, |s| *s.get_ref());
        let start_span = t.start.as_ref().map_or(tspan.clone(), |s| s.span());
        let start = match start_kind {
            Start::AfterAgentDone => {
                if let Some(dl) = &t.delay_ms {
                    c.err(
                        dl.span(),
                        "`delay_ms` goes with `start = \"after_agent_start\"`",
                        "for a barge-in or backchannel set `start = \"after_agent_start\"`; otherwise use `gap_ms`"
                            .to_string(),
                    );
                }
                StartSpec::AfterAgentDone { gap_ms: t.gap_ms.as_ref().map_or(d.gap_ms, |g| *g.get_ref()) }
            }
            Start::AfterAgentStart => {
                if let Some(g) = &t.gap_ms {
                    c.err(g.span(), "`gap_ms` goes with `start = \"after_agent_done\"`", "with `after_agent_start` the utterance starts `delay_ms` after the agent's first audible sample".to_string());
                }
                if i == 0 {
                    c.err(
                        start_span.clone(),
                        "the first turn cannot start after the agent started: the agent has not spoken yet",
                        "use the default `start = \"after_agent_done\"`".to_string(),
                    );
                }
                match &t.delay_ms {
                    Some(dl) => StartSpec::AfterAgentStart { delay_ms: *dl.get_ref() },
                    None => {
                        c.err(
                            start_span.clone(),
                            "`start = \"after_agent_start\"` needs `delay_ms`",
                            "e.g. `delay_ms = 1500` to interrupt 1.5 s into the agent's reply".to_string(),
                        );
                        StartSpec::AfterAgentStart { delay_ms: 0 }
                    }
                }
            }
        };
        let espan = t.expect.as_ref().map_or(tspan.clone(), |e| e.span());
        match expect {
            Expect::Stop | Expect::Ignore if start_kind != Start::AfterAgentStart => c.err(
                espan.clone(),
                format!(
                    "`expect = \"{}\"` needs the utterance to overlap the agent",
                    if expect == Expect::Stop { "stop" } else { "ignore" }
                ),
                "set `start = \"after_agent_start\"` and `delay_ms`".to_string(),
            ),
            Expect::NoTakeover if audio.as_ref().is_some_and(|a| a.pauses_ms.is_empty()) => c.err(
                espan.clone(),
                "`expect = \"no_takeover\"` needs an utterance with a pause inside it, and this one has none",
                "use an utterance with a pause of at least 200 ms (e.g. corpus line `name_number`)".to_string(),
            ),
            _ => {}
        }
        if expect == Expect::Ignore && !t.tool_calls.is_empty() {
            c.err(t.tool_calls[0].span(), "an `ignore` turn (a backchannel) cannot expect a tool call", None);
        }
        let mut calls = Vec::new();
        for tc in &t.tool_calls {
            let tc = tc.get_ref();
            let name = tc.name.get_ref();
            let tool = agent.tools.iter().find(|x| &x.name == name);
            if tool.is_none() {
                let hint = if tool_names.is_empty() {
                    "define it under [[agent.tool]]".to_string()
                } else {
                    suggest(name, "tools", &tool_names)
                };
                c.err(tc.name.span(), format!("unknown tool `{name}`"), hint);
            }
            let props: Option<Vec<String>> = tool
                .and_then(|t| t.parameters.get("properties"))
                .and_then(|p| p.as_object())
                .map(|o| o.keys().cloned().collect());
            let args = compile_matchers(c, &tc.args, props.as_deref(), name);
            let sim_args = sim_arguments(c, tc, &args, agent.today.as_deref(), uses_sim);
            calls.push(ExpectedCall { name: name.clone(), args, sim_args });
        }
        let reply = t.reply.as_ref().and_then(|r| {
            let agent_voices = corpus.map(|(_, m)| m.voices("agent")).unwrap_or_default();
            let v = agent_voices.first().copied().unwrap_or("agent").to_string();
            corpus_audio(c, corpus, "agent", r, &v, r.span())
        });
        if let Some(audio) = audio {
            out.push(TurnSpec { index: i, id, audio, start, expect, tool_calls: calls, reply });
        }
    }
    out
}

/// The concrete arguments a simulated provider sends: `sim_args` where given, else derived from the matchers.
fn sim_arguments(
    c: &mut Checker,
    tc: &schema::ExpectedToolCall,
    args: &[(String, Matcher)],
    today: Option<&str>,
    uses_sim: bool,
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let given = tc.sim_args.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default();
    let year = today.and_then(|t| t.get(..4)).unwrap_or("2026").to_string();
    for (k, m) in args {
        if let Some(v) = given.get(k) {
            out.insert(k.clone(), toml_to_json(v));
            continue;
        }
        let v = match m {
            Matcher::Exact(v) => v.clone(),
            Matcher::CaseInsensitive(s) => serde_json::Value::String(s.clone()),
            Matcher::Number { value, .. } if value.fract() == 0.0 => serde_json::Value::from(*value as i64),
            Matcher::Number { value, .. } => serde_json::Value::from(*value),
            Matcher::Date(d) => serde_json::Value::String(format!(
                "{}-{:02}-{:02}",
                d.year.map_or(year.clone(), |y| y.to_string()),
                d.month,
                d.day
            )),
            Matcher::Time(m) => serde_json::Value::String(format!("{:02}:{:02}", m / 60, m % 60)),
            Matcher::Any => serde_json::Value::String("any".into()),
            Matcher::Regex(_) => {
                if uses_sim {
                    c.err(
                        tc.name.span(),
                        format!("a simulated target cannot invent a value for `{k}` from its regex"),
                        format!("add `sim_args = {{ {k} = \"…\" }}` with the value the simulated agent should send"),
                    );
                }
                continue;
            }
        };
        out.insert(k.clone(), v);
    }
    for (k, v) in &given {
        out.entry(k.clone()).or_insert_with(|| toml_to_json(v));
    }
    serde_json::Value::Object(out)
}

fn check_slo(c: &mut Checker, slo: &BTreeMap<Spanned<String>, Spanned<f64>>) -> Vec<Slo> {
    let mut out = Vec::new();
    let mut all_keys: Vec<String> = RATES.iter().map(|(r, _)| r.to_string()).collect();
    all_keys.extend(LATENCY_METRICS.iter().map(|m| format!("{m}.p95")));
    for (k, v) in slo {
        let key = k.get_ref();
        let value = *v.get_ref();
        if let Some((rate, bound)) = RATES.iter().find(|(r, _)| r == key) {
            if !(0.0..=1.0).contains(&value) {
                c.err(
                    v.span(),
                    format!("`{key}` is a rate between 0 and 1, not {value}"),
                    "write 0.95 for 95 %".to_string(),
                );
            }
            out.push(Slo { key: SloKey::Rate(rate), threshold: value, bound: *bound });
            continue;
        }
        let Some((metric, stat)) = key.split_once('.') else {
            c.err(k.span(), format!("unknown SLO `{key}`"), suggest(key, "SLOs", &all_keys));
            continue;
        };
        let Some(latency) = Metric::from_name(metric) else {
            c.err(
                k.span(),
                format!("unknown metric `{metric}` in SLO `{key}`"),
                suggest(metric, "metrics", LATENCY_METRICS),
            );
            continue;
        };
        let Some(stat) = STATS.iter().find(|s| **s == stat) else {
            c.err(k.span(), format!("unknown statistic `{stat}` in SLO `{key}`"), suggest(stat, "statistics", STATS));
            continue;
        };
        if !(value > 0.0 && value.is_finite()) {
            c.err(v.span(), format!("`{key}` must be a positive number of milliseconds"), None);
        } else {
            out.push(Slo { key: SloKey::Latency(latency, stat), threshold: value, bound: Bound::AtMost });
        }
    }
    out
}
