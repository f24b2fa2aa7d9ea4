//! An independent second opinion on speech bounds: earshot, a small neural VAD (pure Rust, weights in the crate).
//!
//! earshot scores 16 ms frames of 16 kHz audio; a frame is speech when its score is at least 0.5 (earshot's own
//! recommended threshold; nothing here is tuned against the energy VAD). Two things keep its answer honest:
//! - **Onsets only.** earshot looks back over ~80 ms (a 48 ms window and two frames of context), so it notices
//!   speech promptly but lets go of it late. The start of speech is its first speech frame; the end of speech is
//!   the first speech frame of the *time-reversed* audio, where its prompt side faces the end.
//! - **Four phases.** Frame edges quantise an answer to 16 ms; the audio is run four times, delayed by 0, 4, 8 and
//!   12 ms, and the four answers averaged, for a 4 ms grid.

use crate::audio::{Pcm, resample::resample};

/// earshot's frame, samples at 16 kHz.
const FRAME: usize = 256;
/// Phase step, samples at 16 kHz (4 ms).
const PHASE: usize = 64;

/// Per-frame earshot scores of 16 kHz samples.
pub fn scores_16k(samples: &[i16]) -> Vec<f32> {
    let mut det = earshot::Detector::default();
    samples
        .chunks(FRAME)
        .map(|c| {
            let mut f = [0i16; FRAME];
            f[..c.len()].copy_from_slice(c);
            det.predict_i16(&f)
        })
        .collect()
}

/// Time of the first speech frame's start, ms, averaged over four phases.
fn onset_ms(samples: &[i16]) -> Option<f64> {
    let mut sum = 0.0;
    for k in 0..4 {
        let mut delayed = vec![0i16; k * PHASE];
        delayed.extend_from_slice(samples);
        let first = scores_16k(&delayed).iter().position(|&x| x >= 0.5)?;
        sum += (first * FRAME) as f64 / 16.0 - (k * PHASE) as f64 / 16.0;
    }
    Some(sum / 4.0)
}

/// earshot's speech bounds of an utterance, ms: (start, end).
pub fn neural_bounds(pcm: &Pcm) -> Option<(f64, f64)> {
    let p16 = resample(pcm, 16_000);
    let start = onset_ms(&p16.samples)?;
    let mut rev = p16.samples.clone();
    rev.reverse();
    let end = p16.duration_ms() - onset_ms(&rev)?;
    Some((start.max(0.0), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    #[test]
    fn silence_has_no_speech() {
        assert_eq!(neural_bounds(&Pcm::new(16_000, vec![0; 16_000])), None);
    }

    /// A crude voiced sound (a 120 Hz pulse train through a resonance, with vibrato): earshot should call it speech,
    /// and its reversed-onset estimate of the end should land near the true end, not ~80 ms late.
    #[test]
    fn finds_a_voiced_burst() {
        let rate = 16_000;
        let (a, b) = (8_000usize, 24_000usize);
        let mut rng = SplitMix64::new(3);
        let mut s = vec![0i16; 32_000];
        let (mut y1, mut y2) = (0.0f64, 0.0f64);
        for (i, v) in s.iter_mut().enumerate().take(b).skip(a) {
            let t = i as f64 / rate as f64;
            let f0 = 120.0 + 15.0 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let phase = (t * f0).fract();
            let x = if phase < 0.05 { 1.0 } else { 0.0 } + 0.02 * (rng.next_f64() - 0.5);
            // two-pole resonance around 700 Hz
            let r = 0.97f64;
            let w = 2.0 * std::f64::consts::PI * 700.0 / rate as f64;
            let y = x + 2.0 * r * w.cos() * y1 - r * r * y2;
            y2 = y1;
            y1 = y;
            *v = (y * 600.0).clamp(-30000.0, 30000.0) as i16;
        }
        let (start, end) = neural_bounds(&Pcm::new(rate, s)).expect("earshot takes the synthetic vowel for speech");
        assert!((start - 500.0).abs() < 60.0, "start {start}");
        assert!((end - 1500.0).abs() < 60.0, "end {end}");
    }
}
