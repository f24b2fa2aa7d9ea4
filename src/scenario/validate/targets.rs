//! The `[[targets]]` of a scenario: protocols, URLs, key variables, auth, turn detection and the pipeline's stages.

use super::*;

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
        Some(s) if schemes.contains(&s) && u.len() > s.len() + 3 => {
            if let Err(why) = check_authority(&u[s.len() + 3..]) {
                c.err(url.span(), format!("`{u}` is not a valid {what} URL: {why}"), None);
            }
        }
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

/// The part of a URL after `scheme://`: a host (a name, an IPv4 address or a bracketed IPv6 one), an optional port
/// in 1–65535, no spaces or control characters; `Err` says what is wrong.
fn check_authority(rest: &str) -> Result<(), String> {
    if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("it contains {c:?}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("an IPv6 address without its closing `]`")?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{addr}]` is not an IPv6 address"));
        }
        (addr, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if !host_port.starts_with('[')
        && !host.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '%' | '~'))
    {
        return Err(format!("`{host}` is not a host name"));
    }
    match port.map(|p| p.parse::<u16>()) {
        None => Ok(()),
        Some(Ok(p)) if p > 0 => Ok(()),
        Some(_) => Err(format!("the port `{}` is not a number in 1–65535", port.unwrap_or_default())),
    }
}

pub(super) fn check_targets(c: &mut Checker, targets: &[Spanned<schema::Target>]) {
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
        let name = t.get_ref().name.get_ref();
        if !is_identifier(name) {
            c.err(
                t.get_ref().name.span(),
                format!("target name `{name}` cannot be used in file names"),
                "use letters, digits, `_`, `-` or `.`".to_string(),
            );
        }
        if !names.insert(name.clone()) {
            c.err(
                t.get_ref().name.span(),
                format!("two targets are named `{name}`"),
                "target names must be unique".to_string(),
            );
        }
        check_endpoint(c, t.get_ref());
        check_protocol_keys(c, t.get_ref());
        if let Some(n) = &t.get_ref().network
            && let Err(why) = crate::scenario::network::resolve(n.get_ref())
        {
            c.err(n.span(), why, "see docs/network.md for the presets and keys".to_string());
        }
        if *t.get_ref().protocol.get_ref() == Protocol::Pipeline {
            check_pipeline(c, t);
        } else {
            let t = t.get_ref();
            for (k, st) in [("stt", &t.stt), ("llm", &t.llm), ("tts", &t.tts)] {
                not_for(c, t, st.as_ref().map(spanned_ok), k, "pipeline");
            }
            not_for(c, t, t.endpointing.as_ref().map(spanned_ok), "endpointing", "pipeline");
        }
    }
}

/// A key present on a target whose protocol does not take it.
fn not_for(c: &mut Checker, t: &schema::Target, present: Option<Range<usize>>, key: &str, protos: &str) {
    if let Some(span) = present {
        c.err(
            span,
            format!("`{key}` does not apply to a `{}` target", t.protocol.get_ref().as_str()),
            format!("`{key}` is for {protos} targets; remove it"),
        );
    }
}

/// Where the target is: an embedded sim (with a profile that fits the protocol) or a URL, never both or neither;
/// its key variable and auth.
fn check_endpoint(c: &mut Checker, t: &schema::Target) {
    let name = t.name.get_ref();
    let proto = *t.protocol.get_ref();
    let pipeline = proto == Protocol::Pipeline;
    match (&t.sim, &t.url) {
        (Some(_), Some(u)) => c.err(
            u.span(),
            format!("target `{name}` has both `sim` and `url`"),
            "keep `sim = \"…\"` for the embedded simulated provider, or `url` for a real endpoint".to_string(),
        ),
        (Some(sim), None) => {
            let p = sim.get_ref().as_str();
            let allowed: &[&str] = if pipeline { &["pipeline", "fixed"] } else { &["native", "fixed"] };
            if !SIM_PROFILES.contains(&p) {
                c.err(sim.span(), format!("unknown sim profile `{p}`"), suggest(p, "profiles", SIM_PROFILES));
            } else if !allowed.contains(&p) {
                c.err(
                    sim.span(),
                    format!("sim profile `{p}` does not fit a `{}` target", proto.as_str()),
                    format!("use one of: {}", allowed.join(", ")),
                );
            }
            let azure = t.sim_options.as_ref().is_some_and(|o| o.get_ref().azure == Some(true));
            let echoes = t.sim_options.as_ref().and_then(|o| o.get_ref().fault).is_some_and(|f| f.echoes_key());
            if let Some(k) = &t.api_key_env
                && !azure
                && !echoes
            {
                c.err(k.span(), "a simulated target needs no API key", "remove `api_key_env`, replace `sim` with the real `url`, or set `sim_options = { azure = true }` to have the sim check the key as Azure does".to_string());
            }
        }
        (None, Some(url)) if pipeline => c.err(
            url.span(),
            "a pipeline target has no `url` of its own",
            "put a `url` in each of its [target.stt], [target.llm] and [target.tts] tables".to_string(),
        ),
        (None, Some(url)) => check_url(c, url, &["ws", "wss"], "WebSocket"),
        (None, None) if !pipeline => c.err(
            t.name.span(),
            format!("target `{name}` has neither `url` nor `sim`"),
            "add `url = \"wss://…\"` for a real endpoint, or `sim = \"native\"` for the embedded simulated provider"
                .to_string(),
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
}

/// The keys that belong to one protocol or a few: dialect, turn detection, audio format, agent id, sample rate.
fn check_protocol_keys(c: &mut Checker, t: &schema::Target) {
    let proto = *t.protocol.get_ref();
    if proto != Protocol::OpenaiRealtime {
        not_for(c, t, t.dialect.as_ref().map(spanned_ok), "dialect", "openai-realtime");
    }
    if proto != Protocol::OpenaiRealtime && proto != Protocol::GeminiLive {
        not_for(c, t, t.turn_detection.as_ref().map(spanned_ok), "turn_detection", "openai-realtime and gemini-live");
    }
    let fixed_audio = match proto {
        Protocol::Twilio => Some("twilio (always G.711 μ-law 8 kHz, as Twilio sends it)"),
        Protocol::WsPcm => Some("ws-pcm (PCM16 at `sample_rate`)"),
        Protocol::GeminiLive => Some("gemini-live (PCM16: 16 kHz in, 24 kHz out)"),
        _ => None,
    };
    if let (Some(why), Some(f)) = (fixed_audio, &t.audio_format) {
        c.err(
            f.span(),
            format!("`audio_format` does not apply to a `{}` target: its audio is fixed by {why}", proto.as_str()),
            "remove it; `audio_format` is for openai-realtime and elevenlabs targets".to_string(),
        );
    }
    if proto == Protocol::GeminiLive
        && let Some(td) = &t.turn_detection
    {
        check_gemini_turn_detection(c, td.get_ref());
    }
    if proto != Protocol::Elevenlabs {
        not_for(c, t, t.agent_id.as_ref().map(spanned_ok), "agent_id", "elevenlabs");
    } else if t.agent_id.is_none() && t.sim.is_none() {
        c.err(
            t.name.span(),
            format!("elevenlabs target `{}` needs `agent_id`", t.name.get_ref()),
            "copy the agent id from the ElevenLabs dashboard".to_string(),
        );
    }
    if proto != Protocol::WsPcm {
        not_for(c, t, t.sample_rate.as_ref().map(spanned_ok), "sample_rate", "ws-pcm");
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
}

/// Gemini's automatic activity detection: `server_vad` or `none`, and no numeric threshold.
fn check_gemini_turn_detection(c: &mut Checker, td: &schema::TurnDetection) {
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

/// A pipeline target's three stages (each present unless simulated) and its endpointing mode.
fn check_pipeline(c: &mut Checker, target: &Spanned<schema::Target>) {
    let t = target.get_ref();
    let name = t.name.get_ref();
    let sim = t.sim.is_some();
    for (k, st, providers) in [
        ("stt", &t.stt, &["openai", "deepgram"][..]),
        ("llm", &t.llm, &["openai"][..]),
        ("tts", &t.tts, &["openai", "elevenlabs"][..]),
    ] {
        match st {
            None if !sim => c.err(
                target.span(),
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

/// `transcribe`: a service URL (http or https) with an optional model and key variable, or the sim; not both.
pub(super) fn check_transcribe(
    c: &mut Checker,
    t: &Spanned<schema::Transcribe>,
) -> Option<super::super::TranscribeSpec> {
    let tr = t.get_ref();
    if let Some(v) = &tr.api_key_env {
        check_env_name(c, v);
    }
    match (&tr.url, tr.sim) {
        (Some(url), Some(true)) => {
            c.err(
                url.span(),
                "`transcribe` has both `url` and `sim = true`",
                "keep one: a service's URL, or the sim".to_string(),
            );
            None
        }
        (Some(url), _) => {
            check_url(c, url, &["http", "https"], "transcribe.url");
            Some(super::super::TranscribeSpec::Service {
                url: url.get_ref().clone(),
                model: tr.model.clone(),
                api_key_env: tr.api_key_env.as_ref().map(|v| v.get_ref().clone()),
            })
        }
        (None, Some(true)) => Some(super::super::TranscribeSpec::Sim),
        (None, _) => {
            c.err(
                t.span(),
                "`transcribe` needs a `url` (an OpenAI-compatible `…/v1`) or `sim = true`",
                "e.g. `transcribe = { url = \"http://127.0.0.1:8000/v1\", model = \"whisper-1\" }`".to_string(),
            );
            None
        }
    }
}
