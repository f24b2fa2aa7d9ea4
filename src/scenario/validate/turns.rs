//! The `[agent]` (its tools and their answers), the corpus the turns draw on, and the `[[turns]]` with their
//! audio, timing, expectations and expected tool calls.

use super::*;

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

pub(super) fn check_agent(c: &mut Checker, a: &schema::Agent) -> AgentSpec {
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
        if let Some(r) = &t.records
            && !is_identifier(r.get_ref())
        {
            c.err(
                r.span(),
                format!("`records = \"{}\"` is not a table name", r.get_ref()),
                "use 1–64 letters, digits, `_`, `-` or `.`, e.g. `records = \"bookings\"`".to_string(),
            );
        }
        tools.push(ToolSpec {
            name: name.clone(),
            description: t.description.clone(),
            parameters: toml_to_json(&toml::Value::Table(params.clone())),
            results,
            default_result: toml_to_json(&t.default_result),
            records: t.records.as_ref().map(|r| r.get_ref().clone()),
        });
    }
    AgentSpec { instructions: a.instructions.clone(), today: a.today.as_ref().map(|t| t.get_ref().clone()), tools }
}

/// The corpus directory and its manifest, when any turn needs it.
pub(super) fn find_corpus(c: &mut Checker, f: &ScenarioFile) -> Option<(PathBuf, Manifest)> {
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
    if path.is_dir() {
        c.err(
            wav.span(),
            format!("{} is a directory, not a WAV file", path.display()),
            "name a .wav file (paths are relative to the scenario file's directory)".to_string(),
        );
        return None;
    }
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

pub(super) fn check_turns(
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
    let uses_sim = f.targets.iter().any(|t| t.get_ref().sim.is_some());
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, st) in f.turns.iter().enumerate() {
        let tspan = st.span();
        let t = st.get_ref();
        let audio = turn_audio(c, f, st, i, corpus, d);
        let id =
            t.id.as_ref()
                .map(|s| s.get_ref().clone())
                .or_else(|| t.utterance.as_ref().map(|u| u.get_ref().clone()))
                .unwrap_or_else(|| format!("turn{}", i + 1));
        if !ids.insert(id.clone()) && t.id.is_some() {
            c.err(t.id.as_ref().map_or(tspan.clone(), |s| s.span()), format!("two turns have the id `{id}`"), None);
        }
        let start = turn_start(c, st, i, d);
        let expect = t.expect.as_ref().map_or(Expect::Respond, |e| *e.get_ref());
        let espan = t.expect.as_ref().map_or(tspan.clone(), |e| e.span());
        match expect {
            Expect::Stop | Expect::Ignore if !matches!(start, StartSpec::AfterAgentStart { .. }) => c.err(
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
        let calls = expected_calls(c, t, agent, uses_sim);
        let reply = t.reply.as_ref().and_then(|r| {
            let agent_voices = corpus.map(|(_, m)| m.voices("agent")).unwrap_or_default();
            let v = agent_voices.first().copied().unwrap_or("agent").to_string();
            corpus_audio(c, corpus, "agent", r, &v, r.span())
        });
        let content = content_check(c, t, expect);
        if let Some(audio) = audio {
            out.push(TurnSpec { index: i, id, audio, start, expect, tool_calls: calls, reply, content });
        }
    }
    out
}

/// The caller's audio of turn `i` (0-based): a corpus line in a voice, or a WAV file; exactly one of them.
fn turn_audio(
    c: &mut Checker,
    f: &ScenarioFile,
    st: &Spanned<schema::Turn>,
    i: usize,
    corpus: Option<(&Path, &Manifest)>,
    d: &Defaults,
) -> Option<AudioRef> {
    let tspan = st.span();
    let t = st.get_ref();
    let voice = t.voice.as_ref().map_or(d.voice.as_str(), |v| v.get_ref().as_str());
    let voice_span = t.voice.as_ref().map_or_else(|| f.defaults.voice.span(), |v| v.span());
    let voice_span =
        if voice_span.is_empty() { t.utterance.as_ref().map_or(tspan.clone(), |u| u.span()) } else { voice_span };
    match (&t.utterance, &t.wav) {
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
                tspan,
                format!("turn {} has no `utterance` or `wav`", i + 1),
                "add `utterance = \"greeting\"` (a corpus line) or `wav = \"my.wav\"`".to_string(),
            );
            None
        }
    }
}

/// When turn `i` starts: `gap_ms` after the agent is done, or `delay_ms` after it started (never the first turn).
fn turn_start(c: &mut Checker, st: &Spanned<schema::Turn>, i: usize, d: &Defaults) -> StartSpec {
    let t = st.get_ref();
    let start_span = t.start.as_ref().map_or(st.span(), |s| s.span());
    match t.start.as_ref().map_or(Start::AfterAgentDone, |s| *s.get_ref()) {
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
                c.err(
                    g.span(),
                    "`gap_ms` goes with `start = \"after_agent_done\"`",
                    "with `after_agent_start` the utterance starts `delay_ms` after the agent's first audible sample"
                        .to_string(),
                );
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
                        start_span,
                        "`start = \"after_agent_start\"` needs `delay_ms`",
                        "e.g. `delay_ms = 1500` to interrupt 1.5 s into the agent's reply".to_string(),
                    );
                    StartSpec::AfterAgentStart { delay_ms: 0 }
                }
            }
        }
    }
}

/// The tool calls a turn expects: each a known tool, with argument matchers compiled against its parameters.
fn expected_calls(c: &mut Checker, t: &schema::Turn, agent: &AgentSpec, uses_sim: bool) -> Vec<ExpectedCall> {
    let tool_names: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
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
        let props = tool.and_then(|t| t.parameter_names());
        let args = compile_matchers(c, &tc.args, props.as_deref(), name);
        let sim_args = sim_arguments(c, tc, &args, agent.today.as_deref(), uses_sim);
        calls.push(ExpectedCall { name: name.clone(), args, sim_args });
    }
    calls
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

/// A turn's `say` / `not_say`, compiled; only turns that expect a reply can have them.
fn content_check(c: &mut Checker, t: &schema::Turn, expect: Expect) -> ContentCheck {
    let mut check = ContentCheck::default();
    for (v, key) in [(&t.say, "say"), (&t.not_say, "not_say")] {
        let Some(v) = v else { continue };
        if expect == Expect::Ignore {
            c.err(v.span(), format!("an `ignore` turn (a backchannel) gets no reply to check with `{key}`"), None);
            continue;
        }
        match compile_patterns(v.get_ref()) {
            Ok(p) if key == "say" => check.say = p,
            Ok(p) => check.not_say = p,
            Err((at, msg, hint)) => {
                // The entry at fault, when the value is an array and the array's element spans are known.
                let span = at.and_then(|i| element_span(c.src, v.span(), i)).unwrap_or_else(|| v.span());
                c.err(span, format!("`{key}`: {msg}"), hint)
            }
        }
    }
    check
}

/// The span of element `i` of the TOML array at `span`, found by reparsing it with spans.
fn element_span(src: &str, span: Range<usize>, i: usize) -> Option<Range<usize>> {
    let text = src.get(span.clone())?;
    #[derive(serde::Deserialize)]
    struct X {
        x: Vec<Spanned<toml::Value>>,
    }
    let x: X = toml::from_str(&format!("x = {text}")).ok()?;
    let e = x.x.get(i)?.span();
    Some(span.start + e.start - 4..span.start + e.end - 4)
}

/// `[[expect_state]]`: each names a table some tool `records`, with matchers on that tool's arguments.
pub(super) fn check_expect_state(c: &mut Checker, f: &ScenarioFile, agent: &AgentSpec) -> Vec<StateExpect> {
    let tables: Vec<&str> = agent.tools.iter().filter_map(|t| t.records.as_deref()).collect();
    let mut out = Vec::new();
    for e in &f.expect_state {
        let e = e.get_ref();
        let table = e.table.get_ref();
        let tool = agent.tools.iter().find(|t| t.records.as_deref() == Some(table.as_str()));
        if tool.is_none() {
            let hint = if tables.is_empty() {
                "give the tool whose calls make the rows `records = \"…\"` under its [[agent.tool]]".to_string()
            } else {
                suggest(table, "tables", &tables)
            };
            c.err(e.table.span(), format!("no tool records a table `{table}`"), hint);
        }
        let props = tool.and_then(|t| t.parameter_names());
        let tool_name = tool.map_or(table.as_str(), |t| t.name.as_str());
        let matchers = compile_matchers(c, &e.matches, props.as_deref(), tool_name);
        out.push(StateExpect { table: table.clone(), matchers, count: e.count.as_ref().map_or(1, |n| *n.get_ref()) });
    }
    out
}

/// `redact`: the kinds to mask (default phone and name), with the names the scenario itself gives.
pub(super) fn check_redact(c: &mut Checker, f: &ScenarioFile, turns: &[TurnSpec]) -> Redactor {
    let kinds = match &f.redact {
        None => redact::default_kinds(),
        Some(list) => {
            let mut kinds = Vec::new();
            for v in list.get_ref() {
                match v.get_ref() {
                    toml::Value::String(s) => match s.as_str() {
                        "phone" => kinds.push(redact::Kind::Phone),
                        "name" => kinds.push(redact::Kind::Name),
                        "email" => kinds.push(redact::Kind::Email),
                        "dates" => kinds.push(redact::Kind::Dates),
                        other => c.err(
                            v.span(),
                            format!("unknown redaction `{other}`"),
                            format!("{}, or `{{ regex = \"…\" }}`", suggest(other, "kinds", redact::KIND_NAMES)),
                        ),
                    },
                    toml::Value::Table(t) if t.len() == 1 && t.get("regex").is_some_and(|r| r.is_str()) => {
                        let s = t["regex"].as_str().unwrap_or_default();
                        match regex::RegexBuilder::new(s).size_limit(1 << 20).build() {
                            Ok(re) => kinds.push(redact::Kind::Pattern(re)),
                            Err(e) => {
                                let (message, hint) = super::super::matcher::regex_error(s, &e);
                                c.err(v.span(), message, hint)
                            }
                        }
                    }
                    other => c.err(
                        v.span(),
                        format!("a redaction cannot be {}", other.type_str()),
                        "write `\"phone\"`, `\"name\"`, `\"email\"`, `\"dates\"` or `{ regex = \"…\" }`".to_string(),
                    ),
                }
            }
            kinds
        }
    };
    // The names the scenario gives: what the simulated agent sends, and the text name matchers expect.
    let mut names = Vec::new();
    for call in turns.iter().flat_map(|t| &t.tool_calls) {
        if let serde_json::Value::Object(o) = &call.sim_args {
            for (k, v) in o {
                if k.to_ascii_lowercase().contains("name")
                    && let Some(s) = v.as_str()
                {
                    names.push(s.to_string());
                }
            }
        }
    }
    Redactor::new(kinds, names)
}
