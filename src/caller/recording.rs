//! A call's recording: a stereo WAV aligned on the call's t0, the caller on the left as it was sent (frame *k* at
//! `k · frame_ms`, whatever instant it actually left) and the agent on the right as the caller heard it (each chunk
//! where the playback timeline played it, and nothing past the instant a flush cut it).
//!
//! The caller channel costs one reference per frame (the frames are shared, encoded once per target); the agent
//! channel keeps the received samples, about 2.9 MB a minute of reply at 24 kHz, and is freed when the call ends.
//! Both channels are written at the agent's output rate (the caller's audio is resampled to it).

use std::path::Path;
use std::sync::Arc;

use crate::audio::{Pcm, resample::resample};

/// Which calls are recorded (`--record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordMode {
    /// None.
    None,
    /// Calls with a failed turn (an error, a failed content check) or a failed task, plus the slowest call of each
    /// target (by its worst TTFA).
    #[default]
    Failures,
    /// Every call.
    All,
}

impl std::str::FromStr for RecordMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(RecordMode::None),
            "failures" => Ok(RecordMode::Failures),
            "all" => Ok(RecordMode::All),
            other => Err(format!("`{other}` is not a recording mode: use failures, all or none")),
        }
    }
}

/// The longest recording kept, seconds of call (a call that runs longer is recorded up to here).
pub const MAX_SECONDS: u64 = 30 * 60;

/// One call's audio, as it is being recorded.
#[derive(Debug)]
pub struct Recording {
    in_rate: u32,
    out_rate: u32,
    frame_ms: u32,
    /// Frame k's samples (at `in_rate`), in frame order.
    caller: Vec<Arc<[i16]>>,
    /// The agent's audio at `out_rate`, from t0: (first sample index, samples).
    agent: Vec<(u64, Vec<i16>)>,
}

impl Recording {
    /// An empty recording: the caller sends at `in_rate` in frames of `frame_ms`, the agent speaks at `out_rate`.
    pub fn new(in_rate: u32, out_rate: u32, frame_ms: u32) -> Recording {
        Recording { in_rate, out_rate, frame_ms, caller: Vec::new(), agent: Vec::new() }
    }

    fn max_frames(&self) -> usize {
        (MAX_SECONDS * 1000 / u64::from(self.frame_ms.max(1))) as usize
    }

    /// Frame `k` (the next one: frames are sent in order) carried `samples`.
    pub fn sent(&mut self, samples: &Arc<[i16]>) {
        if self.caller.len() < self.max_frames() {
            self.caller.push(samples.clone());
        }
    }

    /// The sample rate of both channels (the agent's output rate).
    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// The sample of either channel at `ms` after t0 (0 before t0).
    pub fn index(&self, ms: f64) -> u64 {
        (ms.max(0.0) * f64::from(self.out_rate) / 1000.0).round() as u64
    }

    /// Agent samples that play from `start_ms` after t0 (the playback timeline's placement).
    pub fn heard(&mut self, start_ms: f64, samples: &[i16]) {
        let at = self.index(start_ms);
        if at < MAX_SECONDS * u64::from(self.out_rate) {
            self.agent.push((at, samples.to_vec()));
        }
    }

    /// A flush at `at_ms` after t0: the caller heard nothing of the agent's audio after it.
    pub fn cut(&mut self, at_ms: f64) {
        let at = self.index(at_ms);
        self.agent.retain(|(start, _)| *start < at);
        for (start, s) in &mut self.agent {
            let keep = (at - *start) as usize;
            s.truncate(keep);
        }
    }

    /// The agent's channel alone, from t0 to the end of its last audio (silence where it said nothing).
    pub fn agent_channel(&self) -> Vec<i16> {
        let end = self.agent.iter().map(|(s, x)| *s as usize + x.len()).max().unwrap_or(0);
        let mut right = vec![0i16; end];
        for (start, s) in &self.agent {
            let start = *start as usize;
            right[start..start + s.len()].copy_from_slice(s);
        }
        right
    }

    /// The two channels at the output rate: (caller, agent), the same length.
    pub fn channels(&self) -> (Vec<i16>, Vec<i16>) {
        let sent: Vec<i16> = self.caller.iter().flat_map(|f| f.iter().copied()).collect();
        let mut left = if self.in_rate == self.out_rate {
            sent
        } else {
            resample(&Pcm::new(self.in_rate, sent), self.out_rate).samples
        };
        let mut right = self.agent_channel();
        let len = left.len().max(right.len());
        left.resize(len, 0);
        right.resize(len, 0);
        (left, right)
    }

    /// Writes the stereo WAV (16-bit, `out_rate`) to `path`.
    pub fn write(&self, path: &Path) -> Result<(), hound::Error> {
        let (left, right) = self.channels();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: self.out_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec)?;
        for (l, r) in left.iter().zip(&right) {
            w.write_sample(*l)?;
            w.write_sample(*r)?;
        }
        w.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_aligned_on_t0_and_a_cut_drops_what_was_not_heard() {
        // Caller at 8 kHz, agent at 16 kHz, 20 ms frames.
        let mut r = Recording::new(8_000, 16_000, 20);
        let loud: Arc<[i16]> = vec![1000; 160].into();
        let quiet: Arc<[i16]> = vec![0; 160].into();
        for k in 0..10 {
            r.sent(if k == 5 { &loud } else { &quiet });
        }
        r.heard(40.0, &[500; 1600]); // 40–140 ms
        r.heard(140.0, &[700; 1600]); // 140–240 ms
        r.cut(100.0);
        let (left, right) = r.channels();
        assert_eq!(left.len(), right.len());
        assert_eq!(left.len(), 3200); // 200 ms of caller frames at 16 kHz
        // Frame 5 is 100–120 ms: its loud samples land there (the resampler's edges aside).
        assert!(left[1610..1910].iter().all(|&s| s > 900), "{:?}", &left[1600..1620]);
        assert!(left[..1550].iter().all(|&s| s.abs() < 50));
        // The agent from 40 ms to the cut at 100 ms, nothing after.
        assert!(right[640..1600].iter().all(|&s| s == 500));
        assert!(right[..640].iter().chain(&right[1600..]).all(|&s| s == 0));
    }

    #[test]
    fn a_recording_is_a_stereo_wav() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recording::new(24_000, 24_000, 20);
        r.sent(&Arc::from(vec![3i16; 480]));
        r.heard(0.0, &[7; 240]);
        let p = dir.path().join("call.wav");
        r.write(&p).unwrap();
        let mut w = hound::WavReader::open(&p).unwrap();
        assert_eq!((w.spec().channels, w.spec().sample_rate), (2, 24_000));
        let s: Vec<i16> = w.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(&s[..4], &[3, 7, 3, 7]);
        assert_eq!(s.len(), 960);
    }
}
