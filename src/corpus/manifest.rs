//! The corpus manifest (`audio-corpus/manifest.json`): one entry per WAV, with its transcript, voice, speech bounds
//! from the project's energy VAD, pauses, and SHA-256.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// How the WAVs are encoded.
    pub format: String,
    /// The energy VAD parameters the bounds were computed with.
    pub vad: VadParams,
    /// Every WAV of the corpus.
    pub utterances: Vec<Utterance>,
}

/// Energy VAD parameters, as recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VadParams {
    /// Window, ms.
    pub window_ms: u32,
    /// Gate, dBFS.
    pub gate_dbfs: f64,
    /// Minimum speech, ms.
    pub min_speech_ms: u32,
    /// Minimum silence that separates segments, ms.
    pub min_silence_ms: u32,
}

impl From<crate::audio::vad::EnergyVad> for VadParams {
    fn from(v: crate::audio::vad::EnergyVad) -> Self {
        Self {
            window_ms: v.window_ms,
            gate_dbfs: v.gate_dbfs,
            min_speech_ms: v.min_speech_ms,
            min_silence_ms: v.min_silence_ms,
        }
    }
}

impl From<VadParams> for crate::audio::vad::EnergyVad {
    fn from(v: VadParams) -> Self {
        Self {
            window_ms: v.window_ms,
            gate_dbfs: v.gate_dbfs,
            min_speech_ms: v.min_speech_ms,
            min_silence_ms: v.min_silence_ms,
        }
    }
}

/// One WAV of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utterance {
    /// Unique id: `<role>/<voice>/<line>`.
    pub id: String,
    /// The line of the script (lines.toml), e.g. `request`.
    pub line: String,
    /// `caller` or `agent`.
    pub role: String,
    /// Voice or variant id, e.g. `joe`, `joe-pink`.
    pub voice: String,
    /// The clean voice a variant was made from, or null.
    pub variant_of: Option<String>,
    /// What made the audio (engine, model, version; variant processing).
    pub engine: String,
    /// WAV path relative to the corpus directory.
    pub file: String,
    /// Transcript.
    pub text: String,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Speaking rate relative to the engine's normal speed.
    pub speaking_rate: f64,
    /// Number of samples.
    pub samples: usize,
    /// Duration, ms.
    pub duration_ms: f64,
    /// Time of the first voiced sample, ms.
    pub speech_start_ms: f64,
    /// Time of the end of the last voiced sample, ms.
    pub speech_end_ms: f64,
    /// Index of the first voiced sample.
    pub speech_start_sample: usize,
    /// One past the index of the last voiced sample.
    pub speech_end_sample: usize,
    /// Silent gaps of at least the VAD's min_silence_ms inside the speech.
    pub pauses: Vec<Pause>,
    /// Where the bounds were measured: `self`, or the clean source for noisy variants (noise masks the gate).
    pub bounds_from: String,
    /// SHA-256 of the WAV file, hex.
    pub sha256: String,
}

/// A pause inside an utterance, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// Start (end of the previous speech), ms.
    pub start_ms: f64,
    /// End (start of the next speech), ms.
    pub end_ms: f64,
}

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not valid.
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// The manifest's file name inside a corpus directory.
    pub const FILE: &'static str = "manifest.json";

    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| ManifestError::Parse {
            path,
            line: e.line(),
            col: e.column(),
            message: e.to_string(),
        })
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serialises");
        s.push('\n');
        s
    }

    /// The utterance of `line` in `voice` for `role`.
    pub fn find(&self, role: &str, line: &str, voice: &str) -> Option<&Utterance> {
        self.utterances.iter().find(|u| u.role == role && u.line == line && u.voice == voice)
    }

    /// Distinct line ids of a role, in manifest order.
    pub fn lines(&self, role: &str) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for u in self.utterances.iter().filter(|u| u.role == role) {
            if !v.contains(&u.line.as_str()) {
                v.push(&u.line);
            }
        }
        v
    }

    /// Distinct voice ids of a role, in manifest order.
    pub fn voices(&self, role: &str) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for u in self.utterances.iter().filter(|u| u.role == role) {
            if !v.contains(&u.voice.as_str()) {
                v.push(&u.voice);
            }
        }
        v
    }
}
