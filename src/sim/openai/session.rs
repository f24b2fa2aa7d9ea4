//! OpenAI Realtime session configuration for the sim's OpenAI wire, in both dialects: the initial session, its
//! JSON, and `session.update` validated and applied.
//!
//! Validation fails the way the real service does (docs/protocols.md §1.2, §1.9; tests/fixtures/protocols/
//! errors_and_close_codes_captured.json): a GA `session.update` without `session.type` is `missing_required_parameter`; an unknown field anywhere rejects
//! the whole update with `unknown_parameter` and the old config stays; wrong types are `invalid_type`; bad enum
//! values `invalid_value`. Every error is an `error` event; the session stays open.

use serde_json::{Map, Value, json};

use crate::sim::replies::WireFormat;

/// The two event-name dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// GA (no `OpenAI-Beta` header).
    Ga,
    /// Beta (`OpenAI-Beta: realtime=v1`).
    Beta,
}

/// An `error` event's `error` object, without the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// `error.code` (`null` for some real errors).
    pub code: Option<&'static str>,
    /// `error.message`.
    pub message: String,
    /// `error.param`.
    pub param: Option<String>,
}

impl ApiError {
    /// An error with a code.
    pub fn new(code: &'static str, message: impl Into<String>, param: Option<String>) -> Self {
        Self { code: Some(code), message: message.into(), param }
    }

    pub(super) fn missing(param: &str) -> Self {
        Self::new("missing_required_parameter", format!("Missing required parameter: '{param}'."), Some(param.into()))
    }

    fn unknown(param: &str) -> Self {
        Self::new("unknown_parameter", format!("Unknown parameter: '{param}'."), Some(param.into()))
    }

    pub(super) fn wrong_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::new(
            "invalid_type",
            format!("Invalid type for '{param}': expected {expected}, but got {} instead.", type_name(got)),
            Some(param.into()),
        )
    }

    fn bad_value(param: &str, got: &Value, allowed: &[&str]) -> Self {
        let list = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
        let shown = match got {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        Self::new(
            "invalid_value",
            format!("Invalid value: '{shown}'. Supported values are: {list}."),
            Some(param.into()),
        )
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// Rejects keys of `obj` not in `allowed`.
pub(super) fn only(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::unknown(&join(prefix, k))),
        None => Ok(()),
    }
}

pub(super) fn as_obj<'a>(v: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::wrong_type(param, "an object", v))
}

pub(super) fn as_str<'a>(v: &'a Value, param: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| ApiError::wrong_type(param, "a string", v))
}

pub(super) fn as_bool(v: &Value, param: &str) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| ApiError::wrong_type(param, "a boolean", v))
}

pub(super) fn as_f64(v: &Value, param: &str) -> Result<f64, ApiError> {
    v.as_f64().ok_or_else(|| ApiError::wrong_type(param, "a number", v))
}

pub(super) fn as_u64(v: &Value, param: &str) -> Result<u64, ApiError> {
    v.as_u64().ok_or_else(|| ApiError::wrong_type(param, "an integer", v))
}

pub(super) fn one_of<'a>(v: &'a Value, param: &str, allowed: &[&str]) -> Result<&'a str, ApiError> {
    let s = as_str(v, param)?;
    if allowed.contains(&s) { Ok(s) } else { Err(ApiError::bad_value(param, v, allowed)) }
}

/// `server_vad` / `semantic_vad` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnDetection {
    /// `server_vad` or `semantic_vad`.
    pub kind: String,
    /// 0–1.
    pub threshold: f64,
    /// ms.
    pub prefix_padding_ms: u64,
    /// ms.
    pub silence_duration_ms: u64,
    /// ms (accepted, echoed; the sim does not time out).
    pub idle_timeout_ms: Option<u64>,
    /// Respond automatically at the end of a turn.
    pub create_response: bool,
    /// Cancel the active response on speech.
    pub interrupt_response: bool,
    /// semantic_vad eagerness.
    pub eagerness: String,
}

impl TurnDetection {
    /// The silence that ends a turn, ms. semantic_vad is approximated by a silence window per eagerness
    /// (high 300 ms, medium/auto the server_vad silence, low 1000 ms).
    pub fn silence_ms(&self) -> f64 {
        if self.kind == "semantic_vad" {
            match self.eagerness.as_str() {
                "high" => 300.0,
                "low" => 1000.0,
                _ => self.silence_duration_ms as f64,
            }
        } else {
            self.silence_duration_ms as f64
        }
    }
}

/// The effective session configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Model id.
    pub model: String,
    /// `["audio"]` or `["text"]` (beta: `["text","audio"]`).
    pub modalities: Vec<String>,
    /// Instructions.
    pub instructions: String,
    /// Tools as sent.
    pub tools: Vec<Value>,
    /// Tool choice as sent.
    pub tool_choice: Value,
    /// Token cap.
    pub max_output_tokens: Value,
    /// GA truncation.
    pub truncation: Value,
    /// Tracing.
    pub tracing: Value,
    /// GA prompt.
    pub prompt: Value,
    /// GA include.
    pub include: Value,
    /// Input audio format.
    pub input_format: WireFormat,
    /// Output audio format.
    pub output_format: WireFormat,
    /// Input transcription settings (null = off).
    pub transcription: Value,
    /// Noise reduction (null = off).
    pub noise_reduction: Value,
    /// Turn detection (None = push-to-talk).
    pub turn_detection: Option<TurnDetection>,
    /// Voice.
    pub voice: String,
    /// Speed.
    pub speed: f64,
    /// Beta temperature.
    pub temperature: f64,
}

impl SessionConfig {
    /// The configuration a new session starts with, before any `session.update` (the captured GA defaults).
    pub fn initial(
        model: String,
        instructions: String,
        format: WireFormat,
        turn_detection: Option<TurnDetection>,
        voice: String,
    ) -> Self {
        Self {
            model,
            modalities: vec!["audio".into()],
            instructions,
            tools: Vec::new(),
            tool_choice: json!("auto"),
            max_output_tokens: json!("inf"),
            truncation: json!("auto"),
            tracing: Value::Null,
            prompt: Value::Null,
            include: Value::Null,
            input_format: format,
            output_format: format,
            transcription: Value::Null,
            noise_reduction: Value::Null,
            turn_detection,
            voice,
            speed: 1.0,
            temperature: 0.8,
        }
    }
}

/// Server default instructions (elided like the capture).
pub const DEFAULT_INSTRUCTIONS: &str = "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. \
[voicebench simulated provider: server default instructions elided]";

impl SessionConfig {
    /// Whether the session declares a function tool `name` and lets the model call tools.
    pub fn allows_tool(&self, name: &str) -> bool {
        if self.tool_choice.as_str() == Some("none") {
            return false;
        }
        self.tools.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(name))
    }

    fn fmt_ga(f: WireFormat) -> Value {
        match f {
            WireFormat::Pcm24 => json!({"type": "audio/pcm", "rate": 24000}),
            WireFormat::Pcmu => json!({"type": "audio/pcmu"}),
            WireFormat::Pcm16 => json!({"type": "audio/pcm", "rate": 16000}),
        }
    }

    /// The beta format name.
    pub fn fmt_beta(f: WireFormat) -> &'static str {
        match f {
            WireFormat::Pcm24 | WireFormat::Pcm16 => "pcm16",
            WireFormat::Pcmu => "g711_ulaw",
        }
    }

    /// GA output format object.
    pub fn output_format_ga(&self) -> Value {
        Self::fmt_ga(self.output_format)
    }

    fn turn_detection_json(&self, dialect: Dialect) -> Value {
        let Some(t) = &self.turn_detection else { return Value::Null };
        if t.kind == "semantic_vad" {
            return json!({"type": "semantic_vad", "eagerness": t.eagerness, "create_response": t.create_response,
                "interrupt_response": t.interrupt_response});
        }
        let mut v = json!({"type": "server_vad", "threshold": t.threshold, "prefix_padding_ms": t.prefix_padding_ms,
            "silence_duration_ms": t.silence_duration_ms, "idle_timeout_ms": t.idle_timeout_ms,
            "create_response": t.create_response, "interrupt_response": t.interrupt_response});
        if dialect == Dialect::Beta {
            v.as_object_mut().map(|o| o.remove("idle_timeout_ms"));
        }
        v
    }

    /// The `session` object of `session.created` / `session.updated`.
    pub fn to_json(&self, dialect: Dialect, id: &str, expires_at: u64) -> Value {
        match dialect {
            Dialect::Ga => json!({
                "type": "realtime", "object": "realtime.session", "id": id, "model": self.model,
                "output_modalities": self.modalities, "instructions": self.instructions, "tools": self.tools,
                "tool_choice": self.tool_choice, "max_output_tokens": self.max_output_tokens,
                "tracing": self.tracing, "truncation": self.truncation, "prompt": self.prompt,
                "expires_at": expires_at,
                "audio": {
                    "input": {"format": Self::fmt_ga(self.input_format), "transcription": self.transcription,
                        "noise_reduction": self.noise_reduction,
                        "turn_detection": self.turn_detection_json(dialect)},
                    "output": {"format": Self::fmt_ga(self.output_format), "voice": self.voice, "speed": self.speed}
                },
                "include": self.include
            }),
            Dialect::Beta => json!({
                "id": id, "object": "realtime.session", "model": self.model, "expires_at": expires_at,
                "modalities": self.modalities, "instructions": self.instructions, "voice": self.voice,
                "input_audio_format": Self::fmt_beta(self.input_format),
                "output_audio_format": Self::fmt_beta(self.output_format),
                "input_audio_transcription": self.transcription, "input_audio_noise_reduction": self.noise_reduction,
                "turn_detection": self.turn_detection_json(dialect), "tools": self.tools,
                "tool_choice": self.tool_choice, "temperature": self.temperature,
                "max_response_output_tokens": self.max_output_tokens, "speed": self.speed, "tracing": self.tracing
            }),
        }
    }

    /// Applies a `session.update`'s `session` object: all of it, or (on any error) none of it.
    /// `defaults` fills turn-detection fields the update leaves out; `voice_locked` is true once audio was output.
    pub fn apply_update(
        &mut self,
        dialect: Dialect,
        session: &Value,
        defaults: &TurnDetection,
        voice_locked: bool,
    ) -> Result<(), ApiError> {
        let mut next = self.clone();
        let s = as_obj(session, "session")?;
        match dialect {
            Dialect::Ga => next.apply_ga(s, defaults)?,
            Dialect::Beta => next.apply_beta(s, defaults)?,
        }
        if voice_locked && next.voice != self.voice {
            return Err(ApiError::new(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                Some("session.voice".into()),
            ));
        }
        *self = next;
        Ok(())
    }

    fn apply_common(&mut self, k: &str, v: &Value) -> Result<bool, ApiError> {
        let p = join("session", k);
        match k {
            "model" => self.model = as_str(v, &p)?.to_string(),
            "instructions" => self.instructions = as_str(v, &p)?.to_string(),
            "tools" => {
                let arr = v.as_array().ok_or_else(|| ApiError::wrong_type(&p, "an array", v))?;
                for (i, t) in arr.iter().enumerate() {
                    let tp = format!("{p}[{i}]");
                    let o = as_obj(t, &tp)?;
                    match o.get("type").map(|t| one_of(t, &join(&tp, "type"), &["function", "mcp"])).transpose()? {
                        Some("mcp") => {}
                        _ => {
                            only(o, &["type", "name", "description", "parameters"], &tp)?;
                            as_str(o.get("name").ok_or_else(|| ApiError::missing(&join(&tp, "name")))?, &tp)?;
                        }
                    }
                }
                self.tools = arr.clone();
            }
            "tool_choice" => {
                match v {
                    Value::String(_) => {
                        one_of(v, &p, &["none", "auto", "required"])?;
                    }
                    Value::Object(_) => {}
                    _ => return Err(ApiError::wrong_type(&p, "a string or an object", v)),
                }
                self.tool_choice = v.clone();
            }
            "tracing" => self.tracing = v.clone(),
            "speed" => {
                let x = as_f64(v, &p)?;
                if !(0.25..=1.5).contains(&x) {
                    return Err(ApiError::new(
                        "decimal_above_max_value",
                        format!("Invalid '{p}': expected a number between 0.25 and 1.5, got {x}."),
                        Some(p),
                    ));
                }
                self.speed = x;
            }
            "voice" => self.voice = as_str(v, &p)?.to_string(),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn apply_ga(&mut self, s: &Map<String, Value>, defaults: &TurnDetection) -> Result<(), ApiError> {
        only(
            s,
            &[
                "type",
                "model",
                "output_modalities",
                "instructions",
                "audio",
                "tools",
                "tool_choice",
                "max_output_tokens",
                "truncation",
                "tracing",
                "prompt",
                "include",
            ],
            "session",
        )?;
        let ty = s.get("type").ok_or_else(|| ApiError::missing("session.type"))?;
        if one_of(ty, "session.type", &["realtime", "transcription"])? == "transcription" {
            return Err(ApiError::new(
                "invalid_value",
                "The voicebench simulated provider does not simulate transcription sessions; use 'realtime'.",
                Some("session.type".into()),
            ));
        }
        for (k, v) in s {
            if self.apply_common(k, v)? {
                continue;
            }
            let p = join("session", k);
            match k.as_str() {
                "output_modalities" => self.modalities = modalities(v, &p, &[&["audio"], &["text"]])?,
                "max_output_tokens" => self.max_output_tokens = max_tokens(v, &p)?,
                "truncation" => self.truncation = v.clone(),
                "prompt" => self.prompt = v.clone(),
                "include" => self.include = v.clone(),
                "audio" => {
                    let a = as_obj(v, &p)?;
                    only(a, &["input", "output"], &p)?;
                    if let Some(i) = a.get("input") {
                        let ip = join(&p, "input");
                        let i = as_obj(i, &ip)?;
                        only(i, &["format", "transcription", "noise_reduction", "turn_detection"], &ip)?;
                        if let Some(f) = i.get("format") {
                            self.input_format = ga_format(f, &join(&ip, "format"))?;
                        }
                        if let Some(t) = i.get("transcription") {
                            self.transcription = transcription(t, &join(&ip, "transcription"))?;
                        }
                        if let Some(n) = i.get("noise_reduction") {
                            self.noise_reduction = noise_reduction(n, &join(&ip, "noise_reduction"))?;
                        }
                        if let Some(t) = i.get("turn_detection") {
                            self.turn_detection = turn_detection(t, &join(&ip, "turn_detection"), defaults)?;
                        }
                    }
                    if let Some(o) = a.get("output") {
                        let op = join(&p, "output");
                        let o = as_obj(o, &op)?;
                        only(o, &["format", "voice", "speed"], &op)?;
                        if let Some(f) = o.get("format") {
                            self.output_format = ga_format(f, &join(&op, "format"))?;
                        }
                        if let Some(v) = o.get("voice") {
                            self.voice = as_str(v, &join(&op, "voice"))?.to_string();
                        }
                        if let Some(sp) = o.get("speed") {
                            self.apply_common("speed", sp)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_beta(&mut self, s: &Map<String, Value>, defaults: &TurnDetection) -> Result<(), ApiError> {
        only(
            s,
            &[
                "model",
                "modalities",
                "instructions",
                "voice",
                "input_audio_format",
                "output_audio_format",
                "input_audio_transcription",
                "input_audio_noise_reduction",
                "turn_detection",
                "tools",
                "tool_choice",
                "temperature",
                "max_response_output_tokens",
                "speed",
                "tracing",
                "include",
            ],
            "session",
        )?;
        for (k, v) in s {
            if self.apply_common(k, v)? {
                continue;
            }
            let p = join("session", k);
            match k.as_str() {
                "modalities" => {
                    self.modalities = modalities(v, &p, &[&["text", "audio"], &["audio", "text"], &["text"]])?
                }
                "input_audio_format" => self.input_format = beta_format(v, &p)?,
                "output_audio_format" => self.output_format = beta_format(v, &p)?,
                "input_audio_transcription" => self.transcription = transcription(v, &p)?,
                "input_audio_noise_reduction" => self.noise_reduction = noise_reduction(v, &p)?,
                "turn_detection" => self.turn_detection = turn_detection(v, &p, defaults)?,
                "temperature" => {
                    let t = as_f64(v, &p)?;
                    if !(0.6..=1.2).contains(&t) {
                        return Err(ApiError::new(
                            "invalid_value",
                            format!("Invalid '{p}': expected a number between 0.6 and 1.2, got {t}."),
                            Some(p),
                        ));
                    }
                    self.temperature = t;
                }
                "max_response_output_tokens" => self.max_output_tokens = max_tokens(v, &p)?,
                "include" => self.include = v.clone(),
                _ => {}
            }
        }
        Ok(())
    }
}

fn modalities(v: &Value, p: &str, allowed: &[&[&str]]) -> Result<Vec<String>, ApiError> {
    let arr = v.as_array().ok_or_else(|| ApiError::wrong_type(p, "an array", v))?;
    let mut out = Vec::new();
    for (i, m) in arr.iter().enumerate() {
        out.push(one_of(m, &format!("{p}[{i}]"), &["audio", "text"])?.to_string());
    }
    if allowed.iter().any(|a| a.len() == out.len() && a.iter().zip(&out).all(|(x, y)| x == y)) {
        Ok(out)
    } else {
        let shown = allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" and ");
        Err(ApiError::new(
            "invalid_value",
            format!("Invalid modalities: {out:?}. Supported combinations are: {shown}."),
            Some(p.into()),
        ))
    }
}

fn max_tokens(v: &Value, p: &str) -> Result<Value, ApiError> {
    match v {
        Value::String(s) if s == "inf" => Ok(v.clone()),
        Value::Number(n) if n.as_u64().is_some_and(|n| (1..=4096).contains(&n)) => Ok(v.clone()),
        _ => Err(ApiError::new(
            "invalid_value",
            format!("Invalid '{p}': expected an integer between 1 and 4096, or 'inf'."),
            Some(p.into()),
        )),
    }
}

fn ga_format(v: &Value, p: &str) -> Result<WireFormat, ApiError> {
    let o = as_obj(v, p)?;
    only(o, &["type", "rate"], p)?;
    let ty = o.get("type").ok_or_else(|| ApiError::missing(&join(p, "type")))?;
    let f = match one_of(ty, &join(p, "type"), &["audio/pcm", "audio/pcmu", "audio/pcma"])? {
        "audio/pcm" => WireFormat::Pcm24,
        "audio/pcmu" => WireFormat::Pcmu,
        _ => {
            return Err(ApiError::new(
                "invalid_value",
                "The voicebench simulated provider does not implement 'audio/pcma'; use 'audio/pcm' or 'audio/pcmu'.",
                Some(join(p, "type")),
            ));
        }
    };
    if let Some(r) = o.get("rate") {
        let rp = join(p, "rate");
        let rate = as_u64(r, &rp)?;
        if f != WireFormat::Pcm24 || rate != 24000 {
            return Err(ApiError::bad_value(&rp, r, &["24000"]));
        }
    }
    Ok(f)
}

fn beta_format(v: &Value, p: &str) -> Result<WireFormat, ApiError> {
    match one_of(v, p, &["pcm16", "g711_ulaw", "g711_alaw"])? {
        "pcm16" => Ok(WireFormat::Pcm24),
        "g711_ulaw" => Ok(WireFormat::Pcmu),
        _ => Err(ApiError::new(
            "invalid_value",
            "The voicebench simulated provider does not implement 'g711_alaw'; use 'pcm16' or 'g711_ulaw'.",
            Some(p.into()),
        )),
    }
}

fn transcription(v: &Value, p: &str) -> Result<Value, ApiError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let o = as_obj(v, p)?;
    only(o, &["model", "language", "prompt", "delay"], p)?;
    Ok(v.clone())
}

fn noise_reduction(v: &Value, p: &str) -> Result<Value, ApiError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let o = as_obj(v, p)?;
    only(o, &["type"], p)?;
    if let Some(t) = o.get("type") {
        one_of(t, &join(p, "type"), &["near_field", "far_field"])?;
    }
    Ok(v.clone())
}

fn turn_detection(v: &Value, p: &str, d: &TurnDetection) -> Result<Option<TurnDetection>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    let o = as_obj(v, p)?;
    let ty = o.get("type").ok_or_else(|| ApiError::missing(&join(p, "type")))?;
    let kind = one_of(ty, &join(p, "type"), &["server_vad", "semantic_vad"])?;
    let mut t = TurnDetection { kind: kind.to_string(), ..d.clone() };
    if kind == "server_vad" {
        only(
            o,
            &[
                "type",
                "threshold",
                "prefix_padding_ms",
                "silence_duration_ms",
                "idle_timeout_ms",
                "create_response",
                "interrupt_response",
            ],
            p,
        )?;
    } else {
        only(o, &["type", "eagerness", "create_response", "interrupt_response"], p)?;
    }
    for (k, v) in o {
        let kp = join(p, k);
        match k.as_str() {
            "threshold" => {
                let x = as_f64(v, &kp)?;
                if !(0.0..=1.0).contains(&x) {
                    return Err(ApiError::new(
                        "invalid_value",
                        format!("Invalid '{kp}': expected a number between 0 and 1, got {x}."),
                        Some(kp),
                    ));
                }
                t.threshold = x;
            }
            "prefix_padding_ms" => t.prefix_padding_ms = as_u64(v, &kp)?,
            "silence_duration_ms" => t.silence_duration_ms = as_u64(v, &kp)?,
            "idle_timeout_ms" => t.idle_timeout_ms = if v.is_null() { None } else { Some(as_u64(v, &kp)?) },
            "create_response" => t.create_response = as_bool(v, &kp)?,
            "interrupt_response" => t.interrupt_response = as_bool(v, &kp)?,
            "eagerness" => t.eagerness = one_of(v, &kp, &["low", "medium", "high", "auto"])?.to_string(),
            _ => {}
        }
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> (SessionConfig, TurnDetection) {
        let td = TurnDetection {
            kind: "server_vad".into(),
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            idle_timeout_ms: None,
            create_response: true,
            interrupt_response: true,
            eagerness: "auto".into(),
        };
        let c = SessionConfig::initial(
            "gpt-realtime".into(),
            String::new(),
            WireFormat::Pcm24,
            Some(td.clone()),
            "alloy".into(),
        );
        (c, td)
    }

    #[test]
    fn ga_update_rules() {
        let (mut c, d) = cfg();
        let e = c.apply_update(Dialect::Ga, &json!({"instructions": "x"}), &d, false).unwrap_err();
        assert_eq!((e.code, e.param.as_deref()), (Some("missing_required_parameter"), Some("session.type")));
        assert_eq!(e.message, "Missing required parameter: 'session.type'.");
        let e =
            c.apply_update(Dialect::Ga, &json!({"type": "realtime", "instructions": "x", "voice": "marin"}), &d, false);
        assert_eq!(e.unwrap_err().message, "Unknown parameter: 'session.voice'.");
        assert_eq!(c.instructions, "", "a rejected update changes nothing");
        let u = json!({"type": "realtime", "instructions": "be brief",
            "audio": {"input": {"format": {"type": "audio/pcmu"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700}},
                "output": {"voice": "marin"}}});
        c.apply_update(Dialect::Ga, &u, &d, false).unwrap();
        assert_eq!(c.input_format, WireFormat::Pcmu);
        assert_eq!(c.turn_detection.as_ref().unwrap().silence_duration_ms, 700);
        assert_eq!(c.turn_detection.as_ref().unwrap().prefix_padding_ms, 300);
        let e = c.apply_update(Dialect::Ga, &json!({"type":"realtime","audio":{"output":{"voice":"x"}}}), &d, true);
        assert_eq!(e.unwrap_err().code, Some("cannot_update_voice"));
        let e = c.apply_update(
            Dialect::Ga,
            &json!({"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","threshold":"hi"}}}}),
            &d,
            false,
        );
        assert_eq!(e.unwrap_err().code, Some("invalid_type"));
    }
}
