//! The project's energy VAD: the reference for every utterance's speech bounds (docs/metrics.md).
//!
//! Audio is cut into 10 ms windows; a window is *voiced* when its mean-removed RMS is above −40 dBFS. Voiced runs
//! closer than `min_silence_ms` are merged (so stop consonants and short breaths don't split a word), then segments
//! shorter than `min_speech_ms` are dropped (clicks). Segment edges are then refined to the sample: the first and
//! last samples, next to the edge windows, whose mean-removed amplitude exceeds the gate. So a burst that starts at
//! sample 1234 is reported at 1234, not at the window boundary 1120.

use super::{Pcm, dbfs_to_amplitude};

/// Energy VAD parameters. The defaults are the ones docs/metrics.md defines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyVad {
    /// Analysis window, ms.
    pub window_ms: u32,
    /// A window is voiced when its mean-removed RMS exceeds this level, dBFS.
    pub gate_dbfs: f64,
    /// Segments shorter than this are dropped, ms.
    pub min_speech_ms: u32,
    /// Voiced runs separated by less than this are one segment, ms; longer gaps are pauses.
    pub min_silence_ms: u32,
}

impl Default for EnergyVad {
    fn default() -> Self {
        Self { window_ms: 10, gate_dbfs: -40.0, min_speech_ms: 30, min_silence_ms: 200 }
    }
}

/// A stretch of speech in sample indices: `start` is the first voiced sample, `end` is one past the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// First voiced sample.
    pub start: usize,
    /// One past the last voiced sample.
    pub end: usize,
}

impl EnergyVad {
    fn window_len(&self, rate: u32) -> usize {
        ((rate as u64 * self.window_ms as u64) / 1000).max(1) as usize
    }

    /// Which windows are voiced.
    pub fn voiced_windows(&self, pcm: &Pcm) -> Vec<bool> {
        let w = self.window_len(pcm.rate);
        pcm.samples.chunks(w).map(|c| super::rms_dbfs(c) > self.gate_dbfs).collect()
    }

    /// Speech segments of `pcm`, refined to the sample.
    pub fn segments(&self, pcm: &Pcm) -> Vec<Segment> {
        let w = self.window_len(pcm.rate);
        let voiced = self.voiced_windows(pcm);
        let min_gap = (self.min_silence_ms / self.window_ms).max(1) as usize;
        // Runs of voiced windows, as [first, last] window indices.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, &v) in voiced.iter().enumerate() {
            if !v {
                continue;
            }
            match runs.last_mut() {
                Some((_, last)) if i - *last <= min_gap => *last = i,
                _ => runs.push((i, i)),
            }
        }
        let gate = dbfs_to_amplitude(self.gate_dbfs);
        let min_samples = (pcm.rate as u64 * self.min_speech_ms as u64 / 1000) as usize;
        runs.into_iter()
            .map(|(a, b)| {
                let n = pcm.samples.len();
                let lo = a.saturating_sub(1) * w;
                let hi = ((a + 1) * w).min(n);
                let start = first_above(&pcm.samples[lo..hi], gate).map_or(a * w, |i| lo + i);
                let lo = b * w;
                let hi = ((b + 2) * w).min(n);
                let end = last_above(&pcm.samples[lo..hi], gate).map_or(hi, |i| lo + i + 1);
                Segment { start, end }
            })
            .filter(|s| s.end - s.start >= min_samples)
            .collect()
    }

    /// Speech bounds and pauses of an utterance.
    pub fn annotate(&self, pcm: &Pcm) -> Option<Annotation> {
        let segs = self.segments(pcm);
        let (first, last) = (segs.first()?, segs.last()?);
        let pauses = segs.windows(2).map(|p| Segment { start: p[0].end, end: p[1].start }).collect();
        Some(Annotation { speech: Segment { start: first.start, end: last.end }, pauses, segments: segs })
    }

    /// The first audible sample (docs/metrics.md, "Audible"): the start of the first run of voiced windows lasting at
    /// least `min_speech_ms`, refined to the sample. `None` when nothing is audible.
    pub fn first_audible(&self, pcm: &Pcm) -> Option<usize> {
        let w = self.window_len(pcm.rate);
        let voiced = self.voiced_windows(pcm);
        let min_len = (self.min_speech_ms / self.window_ms).max(1) as usize;
        let mut run = 0;
        for (i, &v) in voiced.iter().enumerate() {
            run = if v { run + 1 } else { 0 };
            if run == min_len {
                let a = i + 1 - min_len;
                let lo = a.saturating_sub(1) * w;
                let hi = ((a + 1) * w).min(pcm.samples.len());
                let gate = dbfs_to_amplitude(self.gate_dbfs);
                return Some(first_above(&pcm.samples[lo..hi], gate).map_or(a * w, |j| lo + j));
            }
        }
        None
    }
}

/// An utterance's speech bounds (first voiced sample to one past the last) and the pauses inside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// From the first voiced sample to one past the last.
    pub speech: Segment,
    /// Silent gaps inside the speech, each at least `min_silence_ms` long.
    pub pauses: Vec<Segment>,
    /// The voiced segments themselves.
    pub segments: Vec<Segment>,
}

fn mean(s: &[i16]) -> f64 {
    s.iter().map(|&x| x as f64).sum::<f64>() / s.len().max(1) as f64
}

fn first_above(s: &[i16], gate: f64) -> Option<usize> {
    let m = mean(s);
    s.iter().position(|&x| (x as f64 - m).abs() > gate)
}

fn last_above(s: &[i16], gate: f64) -> Option<usize> {
    let m = mean(s);
    s.iter().rposition(|&x| (x as f64 - m).abs() > gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Silence with square-wave bursts (±amp) at the given sample ranges: every edge is known to the sample.
    fn bursts(rate: u32, total: usize, ranges: &[(usize, usize)], amp: i16) -> Pcm {
        let mut s = vec![0i16; total];
        for &(a, b) in ranges {
            for (i, v) in s[a..b].iter_mut().enumerate() {
                *v = if i % 2 == 0 { amp } else { -amp };
            }
        }
        Pcm::new(rate, s)
    }

    #[test]
    fn edges_exact_to_the_sample() {
        let vad = EnergyVad::default();
        for rate in [8_000, 16_000, 24_000] {
            let (a, b) = (rate as usize / 10 + 37, rate as usize + 911);
            let p = bursts(rate, rate as usize * 2, &[(a, b)], 4000);
            assert_eq!(vad.segments(&p), vec![Segment { start: a, end: b }], "rate {rate}");
        }
    }

    #[test]
    fn sine_edges_within_two_samples() {
        let rate = 16_000;
        let (a, b) = (3_333usize, 20_001usize);
        let mut s = vec![0i16; 32_000];
        for (i, v) in s[a..b].iter_mut().enumerate() {
            // cos starts at its peak, so the first sample is loud; the end falls where it falls.
            *v = (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / rate as f64).cos()) as i16;
        }
        let seg = EnergyVad::default().segments(&Pcm::new(rate, s.clone()));
        assert_eq!(seg.len(), 1);
        assert_eq!(seg[0].start, a);
        let last_loud = (a..b).rev().find(|&i| (s[i] as f64).abs() > dbfs_to_amplitude(-40.0)).unwrap();
        assert_eq!(seg[0].end, last_loud + 1);
        assert!(b - seg[0].end <= 30, "end {} vs burst end {b}", seg[0].end);
    }

    #[test]
    fn short_gap_merges_long_gap_is_a_pause() {
        let vad = EnergyVad::default();
        let r = 16_000;
        // 100 ms gap: merged. 700 ms gap: a pause.
        let p = bursts(r, r as usize * 4, &[(1600, 8000), (9600, 16000), (27200, 40000)], 3000);
        let ann = vad.annotate(&p).unwrap();
        assert_eq!(ann.speech, Segment { start: 1600, end: 40000 });
        assert_eq!(ann.pauses, vec![Segment { start: 16000, end: 27200 }]);
        assert_eq!(ann.segments.len(), 2);
    }

    #[test]
    fn clicks_and_quiet_noise_are_not_speech() {
        let vad = EnergyVad::default();
        let r = 16_000;
        // a 20 ms click (shorter than min_speech) and a −45 dBFS hum
        let quiet = (dbfs_to_amplitude(-45.0)) as i16;
        let mut p = bursts(r, r as usize, &[(1000, 1320)], 8000);
        for (i, v) in p.samples[5000..12000].iter_mut().enumerate() {
            *v = if i % 2 == 0 { quiet } else { -quiet };
        }
        assert!(vad.annotate(&p).is_none(), "{:?}", vad.segments(&p));
        // −35 dBFS is speech
        let loud = dbfs_to_amplitude(-35.0) as i16;
        let p = bursts(r, r as usize, &[(4000, 9000)], loud);
        assert_eq!(vad.segments(&p), vec![Segment { start: 4000, end: 9000 }]);
    }

    #[test]
    fn dc_offset_is_removed() {
        let r = 16_000;
        let mut p = bursts(r, r as usize, &[(4000, 9000)], 2000);
        for v in &mut p.samples {
            *v += 5000;
        }
        assert_eq!(EnergyVad::default().segments(&p), vec![Segment { start: 4000, end: 9000 }]);
    }

    #[test]
    fn first_audible_needs_30_ms() {
        let vad = EnergyVad::default();
        let r = 24_000;
        // a 20 ms blip, then sustained sound from sample 12_345
        let p = bursts(r, r as usize, &[(2400, 2880), (12_345, 20_000)], 5000);
        assert_eq!(vad.first_audible(&p), Some(12_345));
        assert_eq!(vad.first_audible(&bursts(r, 4800, &[], 0)), None);
    }
}
