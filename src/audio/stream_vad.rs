//! The streaming energy VAD — the sim's server VAD and the pipeline client's local endpointing: the project's
//! energy VAD run incrementally on audio as it arrives, with OpenAI `server_vad` semantics (threshold, silence
//! duration), in audio time.
//!
//! * Audio is cut into 10 ms windows; a window is voiced when its mean-removed RMS is above the gate.
//! * **Threshold mapping**: `gate_dbfs = −60 + 40 · threshold`, so the default 0.5 is −40 dBFS — exactly the
//!   reference VAD's gate (src/audio/vad.rs), which means the sim hears speech where the corpus annotations say it
//!   is; 0 is −60 dBFS (hears almost anything), 1 is −20 dBFS (only loud, close speech). On top of that the gate
//!   never sits less than 10 dB above a tracked noise floor (minimum-tracking, rising 1 dB/s), so a noisy line does
//!   not hold the VAD in speech forever; on clean audio (digital silence) the floor is irrelevant.
//! * An onset needs 30 ms of consecutive voiced windows (the reference's `min_speech_ms`); it is reported at the
//!   first voiced sample of that run, refined to the sample, and detected at the end of the third window.
//! * While in speech, once `silence_ms` of audio has passed since the last voiced sample a [`VadEvent::Silence`]
//!   is reported (once per pause, and a second time if the pause goes on for [`StreamVad::set_long_pause`] more). The caller of the VAD decides whether that ends the turn
//!   ([`StreamVad::end_speech`]) or is a pause inside it (the VAD stays in speech).
//!
//! `prefix_padding_ms` is not the VAD's business: the connection subtracts it for `audio_start_ms`.

use crate::audio::{dbfs_to_amplitude, rms_dbfs};

/// What the VAD noticed, in audio milliseconds since the session's first sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VadEvent {
    /// Speech started.
    Onset {
        /// First voiced sample, ms.
        start_ms: f64,
        /// Audio time at which the onset was confirmed, ms.
        detect_ms: f64,
    },
    /// `silence_ms` of silence since the last voiced sample.
    Silence {
        /// End of the last voiced sample, ms.
        last_voiced_ms: f64,
        /// Audio time now (end of the window that completed the silence), ms.
        now_ms: f64,
    },
}

/// Incremental energy VAD.
#[derive(Debug, Clone)]
pub struct StreamVad {
    rate: u32,
    win: usize,
    buf: Vec<i16>,
    /// Samples consumed before `buf`.
    pos: u64,
    gate_dbfs: f64,
    floor_db: f64,
    silence_ms: f64,
    run: u32,
    run_start: u64,
    in_speech: bool,
    last_voiced_end: u64,
    /// Silence events reported in the current pause (0, 1 at `silence_ms`, 2 at `silence_ms + long_extra_ms`).
    reported: u8,
    long_extra_ms: f64,
}

/// Onset needs this many consecutive voiced 10 ms windows.
const ONSET_WINDOWS: u32 = 3;

/// The energy gate for an OpenAI `threshold` (0–1), dBFS.
pub fn gate_for_threshold(threshold: f64) -> f64 {
    -60.0 + 40.0 * threshold.clamp(0.0, 1.0)
}

impl StreamVad {
    /// A VAD for audio at `rate` Hz.
    pub fn new(rate: u32, threshold: f64, silence_ms: f64) -> Self {
        let win = (rate as usize / 100).max(1);
        Self {
            rate,
            win,
            buf: Vec::with_capacity(win),
            pos: 0,
            gate_dbfs: gate_for_threshold(threshold),
            floor_db: -100.0,
            silence_ms,
            run: 0,
            run_start: 0,
            in_speech: false,
            last_voiced_end: 0,
            reported: 0,
            long_extra_ms: f64::INFINITY,
        }
    }

    /// Changes the threshold and silence duration (a `session.update`).
    pub fn configure(&mut self, threshold: f64, silence_ms: f64) {
        self.gate_dbfs = gate_for_threshold(threshold);
        self.silence_ms = silence_ms;
    }

    /// Changes the input rate (a format change); audio time so far is kept.
    pub fn set_rate(&mut self, rate: u32) {
        if rate != self.rate {
            let ms = self.now_ms();
            self.rate = rate;
            self.win = (rate as usize / 100).max(1);
            self.buf.clear();
            self.pos = (ms * rate as f64 / 1000.0).round() as u64;
            self.in_speech = false;
            self.run = 0;
        }
    }

    /// Audio received so far, ms.
    pub fn now_ms(&self) -> f64 {
        self.ms(self.pos + self.buf.len() as u64)
    }

    /// The caller decided the speech is over: look for a new onset from here.
    pub fn end_speech(&mut self) {
        self.in_speech = false;
        self.run = 0;
        self.reported = 0;
    }

    /// While in speech: from the onset's first voiced sample to the last voiced sample so far, ms. A pipeline's
    /// interruption rule ("speech must last N ms to interrupt the agent") reads this.
    pub fn speech_span_ms(&self) -> Option<f64> {
        self.in_speech.then(|| self.ms(self.last_voiced_end) - self.ms(self.run_start))
    }

    /// A pause that lasts `extra_ms` beyond `silence_ms` is reported a second time (for the current speech).
    pub fn set_long_pause(&mut self, extra_ms: f64) {
        self.long_extra_ms = extra_ms;
    }

    fn ms(&self, sample: u64) -> f64 {
        sample as f64 * 1000.0 / self.rate as f64
    }

    /// Feeds samples; events are appended to `out`. With `detect` false the audio only advances the clock.
    pub fn push(&mut self, mut samples: &[i16], detect: bool, out: &mut Vec<VadEvent>) {
        while !samples.is_empty() {
            let take = (self.win - self.buf.len()).min(samples.len());
            self.buf.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.buf.len() == self.win {
                if detect {
                    let w = std::mem::take(&mut self.buf);
                    self.window(&w, out);
                    self.buf = w;
                }
                self.buf.clear();
                self.pos += self.win as u64;
            }
        }
    }

    fn window(&mut self, w: &[i16], out: &mut Vec<VadEvent>) {
        let start = self.pos;
        let end_ms = self.ms(start + w.len() as u64);
        let e = rms_dbfs(w).max(-100.0);
        let gate = self.gate_dbfs.max(self.floor_db + 10.0);
        let voiced = e > gate;
        if e < self.floor_db {
            self.floor_db = e;
        } else {
            self.floor_db += 0.01;
        }
        if voiced {
            let amp = dbfs_to_amplitude(gate);
            let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
            let first = w.iter().position(|&x| (x as f64 - mean).abs() > amp).unwrap_or(0);
            let last = w.iter().rposition(|&x| (x as f64 - mean).abs() > amp).unwrap_or(w.len() - 1);
            let vend = start + last as u64 + 1;
            if self.in_speech {
                self.last_voiced_end = vend;
                self.reported = 0;
            } else {
                if self.run == 0 {
                    self.run_start = start + first as u64;
                }
                self.run += 1;
                if self.run >= ONSET_WINDOWS {
                    self.in_speech = true;
                    self.reported = 0;
                    self.last_voiced_end = vend;
                    out.push(VadEvent::Onset { start_ms: self.ms(self.run_start), detect_ms: end_ms });
                }
            }
        } else if self.in_speech {
            let lv = self.ms(self.last_voiced_end);
            let silent = end_ms - lv;
            let due = match self.reported {
                0 => silent >= self.silence_ms - 1e-9,
                1 => silent >= self.silence_ms + self.long_extra_ms - 1e-9,
                _ => false,
            };
            if due {
                self.reported += 1;
                out.push(VadEvent::Silence { last_voiced_ms: lv, now_ms: end_ms });
            }
        } else {
            self.run = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, amp: f64) -> Vec<i16> {
        (0..n).map(|i| (amp * (i as f64 * 0.3).sin()) as i16).collect()
    }

    #[test]
    fn threshold_mapping() {
        assert_eq!(gate_for_threshold(0.5), -40.0);
        assert_eq!(gate_for_threshold(0.0), -60.0);
        assert_eq!(gate_for_threshold(1.0), -20.0);
    }

    #[test]
    fn onset_and_silence_in_audio_time() {
        let mut v = StreamVad::new(24_000, 0.5, 300.0);
        let mut ev = Vec::new();
        let mut a = vec![0i16; 24_000 / 2]; // 500 ms silence
        a.extend(tone(24_000, 3000.0)); // 1 s tone
        a.extend(vec![0i16; 24_000]); // 1 s silence
        for f in a.chunks(480) {
            v.push(f, true, &mut ev);
        }
        assert_eq!(ev.len(), 2, "{ev:?}");
        match ev[0] {
            VadEvent::Onset { start_ms, detect_ms } => {
                assert!((start_ms - 500.0).abs() < 0.1, "{start_ms}");
                assert!((detect_ms - 530.0).abs() < 0.1, "{detect_ms}");
            }
            _ => panic!(),
        }
        match ev[1] {
            VadEvent::Silence { last_voiced_ms, now_ms } => {
                assert!((last_voiced_ms - 1500.0).abs() < 0.2, "{last_voiced_ms}");
                assert!((now_ms - 1800.0).abs() < 10.1, "{now_ms}");
            }
            _ => panic!(),
        }
    }

    #[test]
    fn quiet_sound_below_the_gate_is_silence() {
        let mut v = StreamVad::new(8_000, 0.5, 300.0);
        let mut ev = Vec::new();
        v.push(&tone(8_000, dbfs_to_amplitude(-50.0)), true, &mut ev);
        assert!(ev.is_empty());
        let mut v = StreamVad::new(8_000, 0.1, 300.0);
        v.push(&tone(8_000, dbfs_to_amplitude(-50.0)), true, &mut ev);
        assert_eq!(ev.len(), 1);
    }
}
