//! The pipeline sim's "speech recognition": which of the scenario's caller utterances is this audio?
//!
//! The sim knows every caller WAV of the scenario. It compares 10 ms log-energy envelopes: both signals are cut to
//! their voiced span (windows above −40 dBFS, the corpus VAD's gate), then the received envelope is correlated with
//! the start of each candidate's (the received audio may be only a prefix, when the client's endpointer cut a
//! pause). The best Pearson correlation wins; a received span longer than a candidate's by more than 10 % rules
//! that candidate out. A prefix shorter than 80 % of the candidate's span returns the same share of its words.

use crate::audio::{Pcm, resample::resample, rms_dbfs};

/// Envelope window, ms.
const WIN_MS: u32 = 10;
/// Voiced-window gate, dBFS.
const GATE_DBFS: f64 = -40.0;

/// One known utterance.
#[derive(Debug, Clone)]
pub struct Known {
    /// Its transcript.
    pub text: String,
    env: Vec<f64>,
}

/// The voiced span of a 10 ms log-energy envelope (floored at −70 dBFS).
fn envelope(pcm: &Pcm) -> Vec<f64> {
    let pcm = if pcm.rate == 16_000 { pcm.clone() } else { resample(pcm, 16_000) };
    let win = (16_000 * WIN_MS / 1000) as usize;
    let env: Vec<f64> = pcm.samples.chunks(win).map(|w| rms_dbfs(w).max(-70.0)).collect();
    let first = env.iter().position(|e| *e > GATE_DBFS);
    let last = env.iter().rposition(|e| *e > GATE_DBFS);
    match (first, last) {
        (Some(a), Some(b)) => env[a..=b].to_vec(),
        _ => Vec::new(),
    }
}

impl Known {
    /// An utterance from its audio and transcript.
    pub fn new(pcm: &Pcm, text: &str) -> Self {
        Self { text: text.to_string(), env: envelope(pcm) }
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 3 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// What was recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    /// Index of the utterance in the list.
    pub index: usize,
    /// The transcript (a prefix of its words, for a prefix of its audio).
    pub text: String,
    /// Correlation of the match.
    pub score: f64,
}

/// Recognises `pcm` among `known`; `None` for silence or an empty list.
pub fn recognise(known: &[Known], pcm: &Pcm) -> Option<Heard> {
    let env = envelope(pcm);
    if env.is_empty() {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, k) in known.iter().enumerate() {
        if k.env.is_empty() || env.len() as f64 > k.env.len() as f64 * 1.1 + 3.0 {
            continue;
        }
        // Allow a few windows of misalignment at the start.
        let mut score = f64::MIN;
        for shift in 0..4usize {
            if shift < env.len() {
                score = score.max(pearson(&env[shift..], &k.env));
            }
            if shift < k.env.len() {
                score = score.max(pearson(&env, &k.env[shift..]));
            }
        }
        // Prefer candidates of similar length when scores tie (short prefixes correlate with many).
        let ratio = env.len() as f64 / k.env.len() as f64;
        let score = score - 0.05 * (1.0 - ratio.min(1.0));
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    let (index, score) = best?;
    let k = &known[index];
    let ratio = env.len() as f64 / k.env.len() as f64;
    let text = if ratio < 0.8 {
        let words: Vec<&str> = k.text.split_whitespace().collect();
        let n = ((words.len() as f64 * ratio).round() as usize).clamp(1, words.len());
        words[..n].join(" ")
    } else {
        k.text.clone()
    };
    Some(Heard { index, text, score })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::read_wav;
    use crate::corpus::manifest::Manifest;

    /// Every caller line of every voice variant of the corpus is recognised as itself among its voice's lines,
    /// after the resampling, padding and framing the pipeline client applies.
    #[test]
    fn every_corpus_caller_line_is_recognised() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-corpus");
        let m = Manifest::load(&dir).unwrap();
        let mut voices: std::collections::BTreeMap<String, Vec<(String, Pcm, String)>> = Default::default();
        for u in m.utterances.iter().filter(|u| u.id.starts_with("caller/")) {
            let voice = u.id.split('/').nth(1).unwrap().to_string();
            let pcm = read_wav(&dir.join(&u.file)).unwrap();
            voices.entry(voice).or_default().push((u.id.clone(), pcm, u.text.clone()));
        }
        let (mut ok, mut total) = (0, 0);
        let mut misses = Vec::new();
        for lines in voices.values() {
            let known: Vec<Known> = lines.iter().map(|(_, p, t)| Known::new(p, t)).collect();
            for (i, (id, pcm, _)) in lines.iter().enumerate() {
                // As the client sends it: 16 kHz, 200 ms of pre-roll silence and 500 ms of trailing silence.
                let mut s = vec![0i16; 3200];
                s.extend(resample(pcm, 16_000).samples);
                s.extend(vec![0i16; 8000]);
                let h = recognise(&known, &Pcm::new(16_000, s)).unwrap();
                total += 1;
                if h.index == i {
                    ok += 1;
                } else {
                    misses.push((id.clone(), lines[h.index].0.clone(), h.score));
                }
            }
        }
        eprintln!("recognised {ok}/{total}; misses: {misses:?}");
        assert_eq!(ok, total, "{misses:?}");
        assert!(total >= 50);
    }

    #[test]
    fn a_prefix_returns_the_first_words() {
        let tone = |n: usize| -> Vec<i16> {
            (0..n).map(|i| ((i as f64 * 0.2).sin() * 8000.0 * (1.0 + (i as f64 / 1600.0).sin())) as i16).collect()
        };
        let full = Pcm::new(16_000, tone(32_000));
        let known = vec![Known::new(&full, "one two three four five six seven eight nine ten")];
        let half = Pcm::new(16_000, full.samples[..16_000].to_vec());
        let h = recognise(&known, &half).unwrap();
        assert_eq!(h.text, "one two three four five");
        assert!(recognise(&known, &Pcm::new(16_000, vec![0; 16_000])).is_none());
    }
}
