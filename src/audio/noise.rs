//! Seeded noise and mixing: pink noise and babble at a stated signal-to-noise ratio, for the corpus's noisy variants.
//!
//! SNR is defined against the *active speech* level (power over the VAD's voiced regions), not the whole file, so
//! "15 dB" means the same thing for a short "mm-hmm" as for a long sentence.

use super::{Pcm, clamp_i16};
use crate::stats::SplitMix64;

/// Pink (1/f) noise of unit-ish amplitude, by Paul Kellet's refined filter over white noise.
pub fn pink(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut b = [0.0f64; 7];
    (0..len)
        .map(|_| {
            let white = rng.next_f64() * 2.0 - 1.0;
            b[0] = 0.99886 * b[0] + white * 0.0555179;
            b[1] = 0.99332 * b[1] + white * 0.0750759;
            b[2] = 0.96900 * b[2] + white * 0.1538520;
            b[3] = 0.86650 * b[3] + white * 0.3104856;
            b[4] = 0.55000 * b[4] + white * 0.5329522;
            b[5] = -0.7616 * b[5] - white * 0.0168980;
            let out = b.iter().sum::<f64>() + white * 0.5362;
            b[6] = white * 0.115926;
            out
        })
        .collect()
}

/// Mean power of `samples` restricted to `regions` (half-open sample ranges); the whole signal when empty.
pub fn power_over(samples: &[f64], regions: &[(usize, usize)]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    if regions.is_empty() {
        return samples.iter().map(|x| x * x).sum::<f64>() / samples.len().max(1) as f64;
    }
    for &(a, b) in regions {
        for x in &samples[a.min(samples.len())..b.min(samples.len())] {
            sum += x * x;
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

/// Adds `noise` to `speech` so that active-speech power over `speech_regions` is `snr_db` above the noise's power.
/// The noise is looped if shorter than the speech.
pub fn mix_at_snr(speech: &Pcm, speech_regions: &[(usize, usize)], noise: &[f64], snr_db: f64) -> Pcm {
    let s: Vec<f64> = speech.samples.iter().map(|&x| x as f64).collect();
    let ps = power_over(&s, speech_regions);
    let pn = power_over(noise, &[]);
    let gain = if pn > 0.0 { (ps / pn / 10f64.powf(snr_db / 10.0)).sqrt() } else { 0.0 };
    let samples = s.iter().enumerate().map(|(i, &x)| clamp_i16(x + gain * noise[i % noise.len().max(1)])).collect();
    Pcm::new(speech.rate, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pink_is_deterministic_and_low_heavy() {
        let a = pink(48_000, 7);
        assert_eq!(a, pink(48_000, 7));
        assert_ne!(a, pink(48_000, 8));
        // Pink noise: neighbouring samples are strongly correlated, unlike white noise.
        let num: f64 = a.windows(2).map(|w| w[0] * w[1]).sum();
        let den: f64 = a.iter().map(|x| x * x).sum();
        assert!(num / den > 0.5, "lag-1 autocorrelation {}", num / den);
    }

    #[test]
    fn mixes_at_the_stated_snr() {
        let speech = Pcm::new(
            16_000,
            (0..16_000)
                .map(|i| if (4000..12000).contains(&i) { if i % 2 == 0 { 3000 } else { -3000 } } else { 0 })
                .collect(),
        );
        let noise = pink(16_000, 1);
        let mixed = mix_at_snr(&speech, &[(4000, 12000)], &noise, 20.0);
        let n: Vec<f64> = mixed.samples.iter().zip(&speech.samples).map(|(&m, &s)| m as f64 - s as f64).collect();
        let snr = 10.0 * (3000.0f64.powi(2) / power_over(&n, &[])).log10();
        assert!((snr - 20.0).abs() < 0.2, "measured SNR {snr}");
    }
}
