//! `recordings/index.json`: the calls a run recorded (stereo WAVs, [`crate::caller::recording`]) and why each was
//! kept. Written by the run ([`crate::run::recordings`]), read by the pages.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The index file, relative to the report directory.
pub const INDEX: &str = "recordings/index.json";

/// One kept recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Target.
    pub target: String,
    /// Call index.
    pub call: u32,
    /// The WAV, relative to the report directory.
    pub file: String,
    /// `failed`, `slowest` or `all`.
    pub why: String,
    /// The call's worst TTFA, ms.
    pub ttfa_max_ms: Option<f64>,
}

/// Reads `dir/recordings/index.json`: empty when there is none or it cannot be read.
pub fn read_index(dir: &Path) -> Vec<Entry> {
    std::fs::read_to_string(dir.join(INDEX)).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}
