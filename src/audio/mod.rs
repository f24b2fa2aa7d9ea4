//! Audio primitives: WAV in/out, resampling, G.711 μ-law, framing, the energy VAD and test-signal generators.
//!
//! Everything here works on mono 16-bit PCM held as [`Pcm`]; nothing here knows about protocols or timing.

pub mod frames;
pub mod mulaw;
pub mod noise;
pub mod resample;
pub mod stream_vad;
pub mod telephone;
pub mod vad;
pub mod wav;

pub use wav::{AudioError, Pcm, read_wav, write_wav};

/// Full scale of a signed 16-bit sample, the 0 dBFS reference of every level in voicebench.
pub const FULL_SCALE: f64 = 32768.0;

/// Converts a level in dBFS to a linear amplitude on the i16 scale.
pub fn dbfs_to_amplitude(dbfs: f64) -> f64 {
    FULL_SCALE * 10f64.powf(dbfs / 20.0)
}

/// RMS level, in dBFS, of `samples` after removing their mean (−inf for digital silence).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / n;
    let power = samples.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / n;
    10.0 * (power / (FULL_SCALE * FULL_SCALE)).log10()
}

/// Saturating conversion of a floating-point sample on the i16 scale.
pub fn clamp_i16(x: f64) -> i16 {
    x.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
}
