//! The caller's playback timeline and the streaming "audible" detector.
//!
//! Providers send audio faster than real time; the caller hears it in real time. A chunk starts playing when it
//! arrives or when the audio before it finishes, whichever is later. When the protocol says to drop unplayed
//! audio, the timeline is cut at that instant, as a real client would do, and later chunks of the cut items are
//! dropped (and counted: post-cancel audio).

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::time::{Duration, Instant};

use crate::audio::dbfs_to_amplitude;

/// A chunk as placed on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// When it starts playing.
    pub start: Instant,
    /// When it stops playing.
    pub end: Instant,
    /// Silence the caller heard just before it, if the timeline had run dry (an underrun).
    pub gap_before: Option<Duration>,
}

/// Result of cutting the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The last instant of agent audio the caller heard.
    pub heard_end: Instant,
    /// The item that was playing.
    pub item: u32,
    /// How much of that item the caller heard, ms.
    pub played_ms: u32,
}

/// One call's playback timeline.
#[derive(Debug)]
pub struct Playback {
    rate: u32,
    end: Option<Instant>,
    /// Per item: (start, samples) of each chunk placed, for "how much of the item was heard".
    chunks: HashMap<u32, Vec<(Instant, usize)>>,
    cut_items: HashSet<u32>,
    last_item: Option<u32>,
}

fn samples_to_duration(n: usize, rate: u32) -> Duration {
    Duration::from_nanos((n as u128 * 1_000_000_000 / rate as u128) as u64)
}

impl Playback {
    /// An empty timeline for audio at `rate`.
    pub fn new(rate: u32) -> Self {
        Self { rate, end: None, chunks: HashMap::new(), cut_items: HashSet::new(), last_item: None }
    }

    /// When queued audio finishes (None before any audio).
    pub fn end(&self) -> Option<Instant> {
        self.end
    }

    /// Whether agent audio is playing at `t`.
    pub fn playing_at(&self, t: Instant) -> bool {
        self.end.is_some_and(|e| e > t)
    }

    /// Whether `item` was cut (its later chunks are not played).
    pub fn is_cut(&self, item: u32) -> bool {
        self.cut_items.contains(&item)
    }

    /// Places a chunk of `n` samples of `item` arriving at `at`; `None` if the item was cut (drop it).
    pub fn push(&mut self, at: Instant, item: u32, n: usize) -> Option<Placed> {
        if self.cut_items.contains(&item) {
            return None;
        }
        let (start, gap_before) = match self.end {
            Some(e) if e > at => (e, None),
            Some(e) => (at, Some(at - e)),
            None => (at, None),
        };
        let end = start + samples_to_duration(n, self.rate);
        self.end = Some(end);
        self.chunks.entry(item).or_default().push((start, n));
        self.last_item = Some(item);
        Some(Placed { start, end, gap_before })
    }

    /// Cuts the timeline at `at` (drop everything not yet played). `None` when nothing was playing.
    pub fn cut(&mut self, at: Instant) -> Option<Cut> {
        let end = self.end?;
        if end <= at {
            return None;
        }
        let item = self.last_item?;
        // Every item with audio still queued is cut.
        for (it, chunks) in &self.chunks {
            if chunks.iter().any(|(s, n)| *s + samples_to_duration(*n, self.rate) > at) {
                self.cut_items.insert(*it);
            }
        }
        self.end = Some(at);
        let played: usize = self.chunks[&item]
            .iter()
            .map(|(s, n)| {
                let heard = at.saturating_duration_since(*s);
                ((heard.as_nanos() * self.rate as u128 / 1_000_000_000) as usize).min(*n)
            })
            .sum();
        Some(Cut { heard_end: at, item, played_ms: (played as u64 * 1000 / self.rate as u64) as u32 })
    }
}

/// Streaming detector of the first audible sample (docs/metrics.md): a 10 ms window whose mean-removed RMS is above
/// −40 dBFS, sustained for 30 ms; refined to the first sample above the gate in the window before or at the start.
/// Gives the same answer as [`crate::audio::vad::EnergyVad::first_audible`] on the whole signal.
#[derive(Debug, Clone)]
pub struct AudibleDetector {
    win: usize,
    gate: f64,
    need: usize,
    pending: Vec<i16>,
    /// Samples of the last few complete windows, oldest first, with the index of their first sample.
    history: VecDeque<(usize, Vec<i16>)>,
    consumed: usize,
    run: usize,
    found: Option<usize>,
}

impl AudibleDetector {
    /// A detector for audio at `rate`.
    pub fn new(rate: u32) -> Self {
        let v = crate::audio::vad::EnergyVad::default();
        Self {
            win: (rate as usize * v.window_ms as usize / 1000).max(1),
            gate: dbfs_to_amplitude(v.gate_dbfs),
            need: (v.min_speech_ms / v.window_ms) as usize,
            pending: Vec::new(),
            history: VecDeque::new(),
            consumed: 0,
            run: 0,
            found: None,
        }
    }

    /// The first audible sample's index, once found.
    pub fn found(&self) -> Option<usize> {
        self.found
    }

    /// Feeds samples; returns the first audible sample's index (within everything fed) when it is found.
    pub fn feed(&mut self, samples: &[i16]) -> Option<usize> {
        if self.found.is_some() {
            return self.found;
        }
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= self.win && self.found.is_none() {
            let w: Vec<i16> = self.pending.drain(..self.win).collect();
            let start = self.consumed;
            self.consumed += self.win;
            let voiced = crate::audio::rms_dbfs(&w) > crate::audio::vad::EnergyVad::default().gate_dbfs;
            self.history.push_back((start, w));
            if self.history.len() > self.need + 1 {
                self.history.pop_front();
            }
            self.run = if voiced { self.run + 1 } else { 0 };
            if self.run == self.need {
                // The run began `need - 1` windows ago; search from the window before it.
                let first = self.history.len() - self.need;
                let from = first.saturating_sub(1);
                // Same search as the VAD: the windows before and at the run's start, mean removed over both.
                let base = self.history[from].0;
                let span: Vec<i16> = self
                    .history
                    .iter()
                    .skip(from)
                    .take(first + 1 - from)
                    .flat_map(|(_, w)| w.iter().copied())
                    .collect();
                let m = span.iter().map(|&x| x as f64).sum::<f64>() / span.len() as f64;
                if let Some(i) = span.iter().position(|&x| (x as f64 - m).abs() > self.gate) {
                    self.found = Some(base + i);
                }
                if self.found.is_none() {
                    self.found = Some(self.history[first].0);
                }
            }
        }
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Pcm, read_wav, vad::EnergyVad};

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[tokio::test(start_paused = true)]
    async fn bursty_arrival_plays_in_real_time() {
        let t = Instant::now();
        let mut p = Playback::new(24_000);
        // Three 100 ms chunks arrive together: they play back to back.
        let a = p.push(t, 0, 2400).unwrap();
        let b = p.push(t, 0, 2400).unwrap();
        let c = p.push(t + ms(5), 0, 2400).unwrap();
        assert_eq!((a.start, a.end), (t, t + ms(100)));
        assert_eq!((b.start, b.end), (t + ms(100), t + ms(200)));
        assert_eq!(c.start, t + ms(200));
        assert_eq!(c.gap_before, None);
        // The next chunk arrives after the buffer ran dry: an underrun of 50 ms.
        let d = p.push(t + ms(350), 0, 2400).unwrap();
        assert_eq!(d.start, t + ms(350));
        assert_eq!(d.gap_before, Some(ms(50)));
        assert!(p.playing_at(t + ms(449)));
        assert!(!p.playing_at(t + ms(450)));
    }

    #[tokio::test(start_paused = true)]
    async fn flush_cuts_and_drops_the_rest_of_the_item() {
        let t = Instant::now();
        let mut p = Playback::new(24_000);
        for _ in 0..10 {
            p.push(t, 3, 2400); // one second of audio, all arrived at t
        }
        let cut = p.cut(t + ms(250)).unwrap();
        assert_eq!(cut, Cut { heard_end: t + ms(250), item: 3, played_ms: 250 });
        assert!(!p.playing_at(t + ms(251)));
        assert_eq!(p.push(t + ms(300), 3, 2400), None, "post-cancel audio of the cut item is dropped");
        // A new item plays.
        let n = p.push(t + ms(400), 4, 2400).unwrap();
        assert_eq!(n.start, t + ms(400));
        // Nothing to cut once audio has finished.
        assert_eq!(p.cut(t + ms(600)), None);
    }

    #[test]
    fn audible_detector_matches_the_vad_in_any_chunking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-corpus");
        for f in ["agent/agent/hello.wav", "caller/joe/backchannel.wav", "caller/robot/greeting.wav"] {
            let pcm = read_wav(&dir.join(f)).unwrap();
            let want = EnergyVad::default().first_audible(&pcm).unwrap();
            for chunk in [1usize, 7, 240, 480, 2399, 100_000] {
                let mut d = AudibleDetector::new(pcm.rate);
                let mut got = None;
                for c in pcm.samples.chunks(chunk) {
                    got = d.feed(c);
                    if got.is_some() {
                        break;
                    }
                }
                assert_eq!(got, Some(want), "{f} in chunks of {chunk}");
            }
        }
        let silence = Pcm::new(24_000, vec![0; 24_000]);
        assert_eq!(AudibleDetector::new(24_000).feed(&silence.samples), None);
    }
}
