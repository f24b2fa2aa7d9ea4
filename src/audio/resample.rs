//! Sample-rate conversion (rubato's FFT resampler) that keeps time aligned.
//!
//! The resampler's own delay is removed, so a sample at time *t* in the input lands at time *t* in the output: the
//! corpus's speech bounds and the caller's schedule survive a change of rate to within one output sample.

use rubato::{FftFixedIn, Resampler};

use super::{Pcm, clamp_i16};

/// Resamples mono PCM to `to` Hz. Returns a copy when the rate already matches.
pub fn resample(pcm: &Pcm, to: u32) -> Pcm {
    if pcm.rate == to || pcm.samples.is_empty() {
        return Pcm::new(to, pcm.samples.clone());
    }
    let input: Vec<f64> = pcm.samples.iter().map(|&s| s as f64).collect();
    let out = resample_f64(&input, pcm.rate, to);
    Pcm::new(to, out.into_iter().map(clamp_i16).collect())
}

/// Resamples floating-point samples from `from` Hz to `to` Hz, delay-compensated, length `ceil(n·to/from)`.
pub fn resample_f64(input: &[f64], from: u32, to: u32) -> Vec<f64> {
    const CHUNK: usize = 1024;
    let expected = (input.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    // Rates in 8–48 kHz and a 1024-sample chunk are always valid for rubato; a failure here is a bug.
    let mut rs = FftFixedIn::<f64>::new(from as usize, to as usize, CHUNK, 2, 1).expect("valid resampler parameters");
    let delay = rs.output_delay();
    let mut out: Vec<f64> = Vec::with_capacity(expected + delay + CHUNK);
    let mut pos = 0;
    while pos < input.len() {
        let need = rs.input_frames_next();
        if input.len() - pos >= need {
            let block = rs.process(&[&input[pos..pos + need]], None).expect("resample block");
            out.extend_from_slice(&block[0]);
            pos += need;
        } else {
            let block = rs.process_partial(Some(&[&input[pos..]]), None).expect("resample tail");
            out.extend_from_slice(&block[0]);
            pos = input.len();
        }
    }
    while out.len() < expected + delay {
        let block = rs.process_partial::<&[f64]>(None, None).expect("resample flush");
        if block[0].is_empty() {
            break;
        }
        out.extend_from_slice(&block[0]);
    }
    let mut out = out.split_off(delay.min(out.len()));
    out.resize(expected, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(rate: u32, start: usize, len: usize, total: usize) -> Pcm {
        let mut s = vec![0i16; total];
        for (i, v) in s[start..start + len].iter_mut().enumerate() {
            *v = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin()) as i16;
        }
        Pcm::new(rate, s)
    }

    fn first_loud(p: &Pcm) -> usize {
        p.samples.iter().position(|&s| s.unsigned_abs() > 2000).unwrap()
    }

    #[test]
    fn keeps_length_and_timing() {
        for (from, to) in [(16_000, 24_000), (24_000, 8_000), (22_050, 16_000), (8_000, 16_000)] {
            let p = burst(from, from as usize / 2, from as usize / 4, from as usize);
            let q = resample(&p, to);
            assert_eq!(q.samples.len(), to as usize, "{from}->{to}");
            let t_in = p.ms_at(first_loud(&p));
            let t_out = q.ms_at(first_loud(&q));
            assert!((t_in - t_out).abs() < 0.5, "{from}->{to}: onset moved from {t_in} to {t_out} ms");
        }
    }

    #[test]
    fn same_rate_is_identity() {
        let p = burst(16_000, 10, 100, 400);
        assert_eq!(resample(&p, 16_000), p);
    }
}
