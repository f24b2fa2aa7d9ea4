//! `voicebench corpus build`: from `lines.toml` to WAVs and `manifest.json`.
//!
//! 1. Synthesis (unless `--raw DIR`): `scripts/corpus/install-engines.sh` installs the TTS engines (Debian packages
//!    and a pip venv), then `scripts/corpus/synthesize.py` writes each part of each line, per voice, at the engine's
//!    native rate: `RAW/<voice>/<line>.<part>.wav`.
//! 2. Assembly (here, in Rust): each part is resampled, levelled and trimmed to its speech (±20 ms, with 10 ms fades), (callers 16 kHz, agent
//!    24 kHz), joined with the line's pause, padded with 300 ms of silence at both ends, and set to an active-speech
//!    level of −20 dBFS (peaks limited to −1 dBFS).
//! 3. Variants: pink noise and babble at a stated SNR, and a telephone copy (8 kHz through G.711 μ-law).
//! 4. Annotation: the energy VAD gives speech bounds and pauses. Variants take the bounds of their clean source
//!    (noise would lift the silence above the −40 dBFS gate; the telephone band drops a final "s" below it; the
//!    caller stopped talking at the same instant either way). Each file is hashed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use super::check::sha256_hex;
use super::manifest::{MANIFEST_VERSION, Manifest, Pause, Utterance, VadParams};
use crate::audio::noise::{mix_at_snr, pink};
use crate::audio::{
    Pcm, clamp_i16, dbfs_to_amplitude, mulaw, read_wav, resample::resample, vad::EnergyVad, wav::encode_wav,
};

/// Sample rate of caller utterances.
pub const CALLER_RATE: u32 = 16_000;
/// Sample rate of agent replies.
pub const AGENT_RATE: u32 = 24_000;
/// Sample rate of the telephone variant.
pub const TELEPHONE_RATE: u32 = 8_000;
const EDGE_MARGIN_MS: f64 = 20.0;
const FADE_MS: f64 = 10.0;
const PAD_MS: f64 = 300.0;
const TARGET_LEVEL_DBFS: f64 = -20.0;
const PEAK_DBFS: f64 = -1.0;

/// `lines.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesFile {
    /// Voices.
    pub voice: Vec<VoiceDef>,
    /// Variants of caller voices.
    #[serde(default)]
    pub variant: Vec<VariantDef>,
    /// Lines of the script.
    pub line: Vec<LineDef>,
}

/// A TTS voice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceDef {
    /// Id.
    pub id: String,
    /// `caller` or `agent`.
    pub role: String,
    /// Engine.
    pub engine: String,
    /// Engine's model or voice name.
    pub model: String,
    /// Speaking rate.
    #[serde(default = "one")]
    pub speaking_rate: f64,
    /// Why this voice is here.
    #[serde(default)]
    pub note: String,
}

fn one() -> f64 {
    1.0
}

/// A variant made from a clean caller voice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDef {
    /// Id.
    pub id: String,
    /// Clean voice.
    pub from: String,
    /// `pink`, `babble` or `telephone`.
    pub kind: String,
    /// SNR against active speech, dB (noise kinds).
    #[serde(default)]
    pub snr_db: Option<f64>,
    /// Babble: voices whose lines make the babble.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Why this variant is here.
    #[serde(default)]
    pub note: String,
}

/// A line of the script.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDef {
    /// Id.
    pub id: String,
    /// `caller` or `agent`.
    pub role: String,
    /// Text, said in one go.
    #[serde(default)]
    pub text: Option<String>,
    /// Or: parts with a pause between them.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Pause between parts, ms.
    #[serde(default)]
    pub pause_ms: f64,
}

impl LineDef {
    fn parts(&self) -> Vec<&str> {
        match &self.text {
            Some(t) => vec![t.as_str()],
            None => self.parts.iter().map(String::as_str).collect(),
        }
    }

    fn text(&self) -> String {
        self.parts().join(" ")
    }
}

/// Reads `lines.toml`.
pub fn read_lines(dir: &Path) -> Result<LinesFile> {
    let path = dir.join("lines.toml");
    let src = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lines: LinesFile = toml::from_str(&src).map_err(|e| {
        let (l, c) = crate::diag::line_col(&src, e.span().map_or(0, |s| s.start));
        anyhow::anyhow!("{}:{l}:{c}: {}", path.display(), e.message())
    })?;
    for l in &lines.line {
        ensure!(
            l.text.is_some() == l.parts.is_empty(),
            "{}: line `{}` needs either `text` or `parts`",
            path.display(),
            l.id
        );
    }
    Ok(lines)
}

/// One caller line of a variant: its clean source through the variant's noise or channel, and how, in words.
fn variant_audio(
    var: &VariantDef,
    base: &Pcm,
    regions: &[(usize, usize)],
    clean: &BTreeMap<(String, String), Pcm>,
    callers: &[&LineDef],
    li: usize,
    seed: u64,
) -> Result<(Pcm, String)> {
    Ok(match var.kind.as_str() {
        "pink" => {
            let snr = var.snr_db.context("pink variant needs snr_db")?;
            (mix_at_snr(base, regions, &pink(base.samples.len(), seed), snr), format!("pink noise at {snr} dB SNR"))
        }
        "babble" => {
            let snr = var.snr_db.context("babble variant needs snr_db")?;
            ensure!(!var.sources.is_empty(), "babble variant `{}` needs `sources`", var.id);
            let noise = babble(clean, &var.sources, callers, li, base.samples.len())?;
            (mix_at_snr(base, regions, &noise, snr), format!("babble of {} at {snr} dB SNR", var.sources.join("+")))
        }
        "telephone" => {
            let narrow = resample(base, TELEPHONE_RATE);
            let pcm = Pcm::new(TELEPHONE_RATE, mulaw::decode_all(&mulaw::encode_all(&narrow.samples)));
            (pcm, "8 kHz G.711 μ-law round trip".into())
        }
        k => bail!("variant `{}`: unknown kind `{k}` (pink, babble, telephone)", var.id),
    })
}

/// Runs the whole build.
pub fn run(dir: &Path, raw: Option<&Path>) -> Result<()> {
    let lines = read_lines(dir)?;
    let raw_dir = match raw {
        Some(r) => r.to_path_buf(),
        None => synthesize(dir)?,
    };
    let engines: BTreeMap<String, serde_json::Value> = std::fs::read_to_string(raw_dir.join("engines.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let vad = EnergyVad::default();
    let mut entries: Vec<(Utterance, Pcm)> = Vec::new();
    let mut clean: BTreeMap<(String, String), Pcm> = BTreeMap::new();
    for v in &lines.voice {
        let rate = if v.role == "agent" { AGENT_RATE } else { CALLER_RATE };
        let engine = engines
            .get(&v.id)
            .and_then(|e| e.get("version"))
            .and_then(|x| x.as_str())
            .map_or_else(|| format!("{} {}", v.engine, v.model), |ver| format!("{ver}, voice {}", v.model));
        for l in lines.line.iter().filter(|l| l.role == v.role) {
            let pcm = assemble(&raw_dir, v, l, rate, &vad)?;
            eprintln!("  {}/{}/{}: {:.0} ms", v.role, v.id, l.id, pcm.duration_ms());
            clean.insert((v.id.clone(), l.id.clone()), pcm.clone());
            entries.push((entry(v.role.as_str(), &v.id, None, &engine, l, v.speaking_rate, "self"), pcm));
        }
    }
    for var in &lines.variant {
        let src_voice = lines
            .voice
            .iter()
            .find(|v| v.id == var.from)
            .with_context(|| format!("variant `{}`: no voice `{}`", var.id, var.from))?;
        let callers: Vec<&LineDef> = lines.line.iter().filter(|l| l.role == src_voice.role).collect();
        for (li, l) in callers.iter().enumerate() {
            let base = &clean[&(var.from.clone(), l.id.clone())];
            let ann = vad.annotate(base).context("clean source has no speech")?;
            let regions: Vec<(usize, usize)> = ann.segments.iter().map(|s| (s.start, s.end)).collect();
            let seed = fnv(&format!("{}/{}", var.id, l.id));
            let (pcm, how) = variant_audio(var, base, &regions, &clean, &callers, li, seed)?;
            let bounds = format!("clean source caller/{}/{}", var.from, l.id);
            let mut e = entry(&src_voice.role, &var.id, Some(&var.from), "", l, src_voice.speaking_rate, &bounds);
            e.engine = format!(
                "{} + {how}",
                entries.iter().find(|(u, _)| u.voice == var.from).map_or("", |(u, _)| u.engine.as_str())
            );
            // Same speech, through noise or a telephone channel: the caller stopped talking when the clean source
            // did. (Band-limiting drops an "s" below the gate; noise lifts silence above it.) Time maps 1:1.
            annotate_into(&mut e, base, &vad)?;
            if pcm.rate != base.rate {
                let ratio = pcm.rate as f64 / base.rate as f64;
                e.speech_start_sample = (e.speech_start_sample as f64 * ratio).floor() as usize;
                e.speech_end_sample = (e.speech_end_sample as f64 * ratio).ceil() as usize;
            }
            entries.push((e, pcm));
        }
    }
    // Write WAVs, annotate, hash.
    let mut utterances = Vec::new();
    for (mut u, pcm) in entries {
        if u.bounds_from == "self" {
            annotate_into(&mut u, &pcm, &vad)?;
        }
        u.sample_rate = pcm.rate;
        u.samples = pcm.samples.len();
        u.duration_ms = round3(pcm.duration_ms());
        let bytes = encode_wav(&pcm);
        u.sha256 = sha256_hex(&bytes);
        let path = dir.join(&u.file);
        std::fs::create_dir_all(path.parent().expect("file has a parent"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        utterances.push(u);
    }
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        format: "WAV, mono, 16-bit signed PCM".into(),
        vad: VadParams::from(vad),
        utterances,
    };
    let mpath = dir.join(Manifest::FILE);
    std::fs::write(&mpath, manifest.to_json()).with_context(|| format!("writing {}", mpath.display()))?;
    let total: u64 = manifest.utterances.iter().map(|u| 44 + 2 * u.samples as u64).sum();
    println!("{}: {} utterances, {:.1} MB", mpath.display(), manifest.utterances.len(), total as f64 / 1e6);
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn entry(
    role: &str,
    voice: &str,
    variant_of: Option<&str>,
    engine: &str,
    l: &LineDef,
    rate: f64,
    bounds_from: &str,
) -> Utterance {
    Utterance {
        id: format!("{role}/{voice}/{}", l.id),
        line: l.id.clone(),
        role: role.into(),
        voice: voice.into(),
        variant_of: variant_of.map(String::from),
        engine: engine.into(),
        file: format!("{role}/{voice}/{}.wav", l.id),
        text: l.text(),
        sample_rate: 0,
        speaking_rate: rate,
        samples: 0,
        duration_ms: 0.0,
        speech_start_ms: 0.0,
        speech_end_ms: 0.0,
        speech_start_sample: 0,
        speech_end_sample: 0,
        pauses: Vec::new(),
        bounds_from: bounds_from.into(),
        sha256: String::new(),
    }
}

fn annotate_into(u: &mut Utterance, pcm: &Pcm, vad: &EnergyVad) -> Result<()> {
    let ann = vad.annotate(pcm).with_context(|| format!("{}: no speech found after assembly", u.id))?;
    u.speech_start_sample = ann.speech.start;
    u.speech_end_sample = ann.speech.end;
    u.speech_start_ms = round3(pcm.ms_at(ann.speech.start));
    u.speech_end_ms = round3(pcm.ms_at(ann.speech.end));
    u.pauses = ann
        .pauses
        .iter()
        .map(|p| Pause { start_ms: round3(pcm.ms_at(p.start)), end_ms: round3(pcm.ms_at(p.end)) })
        .collect();
    Ok(())
}

/// Levels, trims, resamples, joins and pads one line in one voice.
///
/// Each part is levelled *before* it is trimmed, so the trim sees the final level: a tail that is above the gate
/// at the engine's loudness but below it after levelling would otherwise stay in the file as a long, faint
/// stretch that one VAD calls speech and another does not.
fn assemble(raw: &Path, v: &VoiceDef, l: &LineDef, rate: u32, vad: &EnergyVad) -> Result<Pcm> {
    let margin = (EDGE_MARGIN_MS * rate as f64 / 1000.0) as usize;
    let fade = (FADE_MS * rate as f64 / 1000.0) as usize;
    let mut out: Vec<i16> = vec![0; (PAD_MS * rate as f64 / 1000.0) as usize];
    for (i, _) in l.parts().iter().enumerate() {
        let path = raw.join(&v.id).join(format!("{}.{i}.wav", l.id));
        let pcm = resample(
            &read_wav(&path).with_context(|| format!("raw audio for voice `{}`, line `{}`", v.id, l.id))?,
            rate,
        );
        let pcm = level(&pcm, vad);
        let ann =
            vad.annotate(&pcm).with_context(|| format!("{}: the engine produced no audible speech", path.display()))?;
        let a = ann.speech.start.saturating_sub(margin);
        let b = (ann.speech.end + margin).min(pcm.samples.len());
        if i > 0 {
            // The pause as heard: the margins count towards it.
            let gap = (l.pause_ms - 2.0 * EDGE_MARGIN_MS).max(0.0);
            out.extend(std::iter::repeat_n(0, (gap * rate as f64 / 1000.0) as usize));
        }
        let mut part = pcm.samples[a..b].to_vec();
        // Short linear fades where the trim cuts, so no edge clicks; they fall inside the sub-gate margins.
        let n = part.len();
        for k in 0..fade.min(n / 2) {
            let g = k as f64 / fade as f64;
            part[k] = clamp_i16(part[k] as f64 * g);
            part[n - 1 - k] = clamp_i16(part[n - 1 - k] as f64 * g);
        }
        out.extend_from_slice(&part);
    }
    out.extend(std::iter::repeat_n(0, (PAD_MS * rate as f64 / 1000.0) as usize));
    let pcm = Pcm::new(rate, out);
    Ok(level(&pcm, vad))
}

/// Sets active-speech RMS to the target level, limiting peaks.
fn level(pcm: &Pcm, vad: &EnergyVad) -> Pcm {
    let segs = vad.segments(pcm);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for s in &segs {
        for &x in &pcm.samples[s.start..s.end] {
            sum += (x as f64).powi(2);
            n += 1;
        }
    }
    let rms = (sum / n.max(1) as f64).sqrt();
    let peak = pcm.samples.iter().map(|&x| (x as f64).abs()).fold(1.0, f64::max);
    let gain = (dbfs_to_amplitude(TARGET_LEVEL_DBFS) / rms.max(1.0)).min(dbfs_to_amplitude(PEAK_DBFS) / peak);
    Pcm::new(pcm.rate, pcm.samples.iter().map(|&x| clamp_i16(x as f64 * gain)).collect())
}

/// Babble for line `li`: the *other* lines of each source voice, overlaid and looped to `len`.
fn babble(
    clean: &BTreeMap<(String, String), Pcm>,
    sources: &[String],
    lines: &[&LineDef],
    li: usize,
    len: usize,
) -> Result<Vec<f64>> {
    let mut noise = vec![0.0f64; len];
    for (k, voice) in sources.iter().enumerate() {
        // Each talker says a different line, none of them the caller's own.
        let mut talk: Vec<i16> = Vec::new();
        let mut j = li + 1 + k;
        while talk.len() < len {
            let l = lines[j % lines.len()];
            j += 1;
            if l.id == lines[li].id {
                continue;
            }
            let p = clean
                .get(&(voice.clone(), l.id.clone()))
                .with_context(|| format!("babble source voice `{voice}` has no line `{}`", l.id))?;
            talk.extend_from_slice(&p.samples);
        }
        // Offset each talker so their pauses don't line up.
        let off = (k * 3001) % talk.len().max(1);
        for (i, n) in noise.iter_mut().enumerate() {
            *n += talk[(i + off) % talk.len()] as f64;
        }
    }
    Ok(noise)
}

/// Installs the engines and synthesises every part; returns the raw directory.
fn synthesize(dir: &Path) -> Result<PathBuf> {
    let scripts = dir.parent().unwrap_or(Path::new(".")).join("scripts/corpus");
    let install = scripts.join("install-engines.sh");
    let synth = scripts.join("synthesize.py");
    ensure!(
        install.is_file() && synth.is_file(),
        "the corpus build scripts are missing: expected {} and {}",
        install.display(),
        synth.display()
    );
    eprintln!("installing TTS engines ({})…", install.display());
    let out = Command::new("bash")
        .arg(&install)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", install.display()))?;
    ensure!(out.status.success(), "{} failed ({})", install.display(), out.status);
    let python = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    ensure!(!python.is_empty(), "{} did not print the venv's python path", install.display());
    let raw = std::env::temp_dir().join(format!("voicebench-corpus-raw-{}", std::process::id()));
    eprintln!("synthesising into {}…", raw.display());
    let status = Command::new(&python)
        .arg(&synth)
        .arg(dir.join("lines.toml"))
        .arg(&raw)
        .status()
        .with_context(|| format!("running {python}"))?;
    ensure!(status.success(), "{} failed ({status})", synth.display());
    Ok(raw)
}
