//! The telephone leg: audio as a phone line carries it, 8 kHz G.711 μ-law, each way. The caller's utterances cross
//! it before they are framed for the target (and are resampled to the target's rate when it does not take 8 kHz);
//! the agent's audio crosses it before the caller hears it, so the caller's ear runs at 8 kHz.

use super::resample::resample;
use super::{Pcm, mulaw};

/// The phone line's sample rate.
pub const RATE: u32 = 8000;

/// `pcm` through the phone line, delivered at `to` Hz: resampled to 8 kHz (band-limited), μ-law encoded and
/// decoded, and resampled to `to`.
pub fn line(pcm: &Pcm, to: u32) -> Pcm {
    let narrow = resample(pcm, RATE);
    let coded = Pcm::new(RATE, mulaw::decode_all(&mulaw::encode_all(&narrow.samples)));
    resample(&coded, to)
}

/// A chunk of the agent's audio at `from` Hz as the caller's phone plays it: 8 kHz through μ-law. Each chunk is
/// resampled on its own (rubato, delay-compensated), so a chunk boundary may carry a sub-millisecond edge.
pub fn to_ear(samples: &[i16], from: u32) -> Vec<i16> {
    let narrow =
        if from == RATE { samples.to_vec() } else { resample(&Pcm::new(from, samples.to_vec()), RATE).samples };
    narrow.into_iter().map(|s| mulaw::decode(mulaw::encode(s))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, ms: u32) -> Pcm {
        let n = rate * ms / 1000;
        Pcm::new(
            rate,
            (0..n)
                .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as i16)
                .collect(),
        )
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn the_line_passes_speech_band_and_drops_what_is_above_it() {
        // 1 kHz passes (μ-law costs ~38 dB SNR); 6 kHz is above the 4 kHz Nyquist of the line and is gone.
        let low = line(&tone(24_000, 1000.0, 200), 24_000);
        assert_eq!(low.samples.len(), 4800);
        let ratio = rms(&low.samples[480..4320]) / rms(&tone(24_000, 1000.0, 200).samples[480..4320]);
        assert!((ratio - 1.0).abs() < 0.05, "1 kHz kept at {ratio}");
        let high = line(&tone(24_000, 6000.0, 200), 24_000);
        assert!(rms(&high.samples[480..4320]) < 8000.0 * 0.05, "6 kHz left {}", rms(&high.samples));
        // The ear gets 8 kHz samples, μ-law values only.
        let ear = to_ear(&tone(24_000, 1000.0, 100).samples, 24_000);
        assert_eq!(ear.len(), 800);
        assert!(ear.iter().all(|&s| mulaw::decode(mulaw::encode(s)) == s));
    }
}
