//! Checks a parsed scenario and resolves it: every problem becomes a [`Diagnostic`] at the offending key or value,
//! and all problems are reported at once, not one per run.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::content::{ContentCheck, StateExpect, compile_patterns};
use super::matcher::{Matcher, parse_date, toml_to_json};
use super::schema::{self, Expect, Protocol, ScenarioFile, Start};
use super::{
    AgentSpec, AudioRef, Bound, Defaults, ExpectedCall, LATENCY_METRICS, RATES, STATS, Scenario, ScenarioError, Slo,
    SloKey, StartSpec, ToolSpec, TurnSpec,
};
use crate::audio::{read_wav, vad::EnergyVad};
use crate::corpus::manifest::Manifest;
use crate::diag::{Diagnostic, suggest};
use crate::model::Metric;
use crate::redact::{self, Redactor};

mod secrets;
mod shape;
mod targets;
mod turns;

use targets::check_targets;
use turns::{check_agent, check_expect_state, check_redact, check_turns, find_corpus};

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

/// The diagnostic of a file that is not UTF-8: where the first bad byte is, at line:col of the text before it.
pub(super) fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> Diagnostic {
    let at = e.valid_up_to();
    let text = String::from_utf8_lossy(&bytes[..at]).into_owned();
    let line_end = bytes[at..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| at + i);
    let src = format!("{text}{}", String::from_utf8_lossy(&bytes[at..line_end]));
    Diagnostic::at(
        path,
        &src,
        at..at + 1,
        format!("the file is not UTF-8 text: byte 0x{:02x} cannot start or continue a character", bytes[at]),
        Some("a scenario is TOML, which is UTF-8: save the file as UTF-8".to_string()),
    )
}

pub(super) fn validate(path: &Path, src: &str) -> Result<Scenario, ScenarioError> {
    // Key literals are masked before anything else reads the text, so no diagnostic can print one.
    let (masked, key_diags) = secrets::mask_keys(path, src);
    let src = masked.as_str();
    let shape = shape::read(path, src);
    let mut diags = key_diags;
    diags.extend(shape.diags);
    let file: ScenarioFile = match shape.file {
        Some(file) if shape.checks_can_run => file,
        _ => {
            diags.sort_by_key(|d| (d.line, d.col));
            return Err(ScenarioError::Invalid(diags));
        }
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let mut c = Checker { file: path, src, dir, diags };

    check_name(&mut c, &file.name);
    let defaults = check_defaults(&mut c, &file.defaults);
    check_targets(&mut c, &file.targets);
    let agent = check_agent(&mut c, &file.agent);
    let corpus = find_corpus(&mut c, &file);
    let turns = check_turns(&mut c, &file, &agent, corpus.as_ref().map(|(d, m)| (d.as_path(), m)), &defaults);
    let slo = check_slo(&mut c, &file.slo);
    let expect_state = check_expect_state(&mut c, &file, &agent);
    let redactor = check_redact(&mut c, &file, &turns);
    let transcribe = file.transcribe.as_ref().and_then(|t| targets::check_transcribe(&mut c, t));

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
        expect_state,
        redactor,
        transcribe,
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
