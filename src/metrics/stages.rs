//! The TTFA of a pipeline turn, split into the segments of its chain. Each segment is a difference of stamps on
//! one clock, so a turn's segments add up to its TTFA; their **means** add up to the mean TTFA (percentiles do
//! not add, so the breakdown is given in means, beside the per-stage percentiles).
//!
//! `endpointing` (user_eos → end of turn decided) · `transcription` (→ final transcript) · `tool_round` (→ the
//! spoken reply's chat request: the tool-call request and the tool results; 0 on plain turns) · `llm_ttft` (→
//! first token) · `first_sentence` (→ the first sentence's TTS request: the rest of the first sentence) ·
//! `tts_ttfb` (→ first audio byte) · `leading_silence` (→ first audible sample).

use serde::{Deserialize, Serialize};

use crate::model::TurnRecord;

/// Segment names, in chain order.
pub const SEGMENTS: [&str; 7] =
    ["endpointing", "transcription", "tool_round", "llm_ttft", "first_sentence", "tts_ttfb", "leading_silence"];

/// A turn's segments, when it has every stage stamp and an audible reply.
pub fn segments(t: &TurnRecord) -> Option<[f64; 7]> {
    let e = t.endpointing_ms?;
    let stt = t.stt_ms?;
    let llm_start = t.llm_start_ms?;
    let ttft = t.llm_ttft_ms?;
    let tts_start = t.tts_start_ms?;
    let ttfb = t.tts_ttfb_ms?;
    let lead = t.leading_silence_ms?;
    t.ttfa_ms.filter(|v| *v >= 0.0)?;
    Some([e, stt - e, llm_start - stt, ttft, tts_start - llm_start - ttft, ttfb, lead])
}

/// Sums of the segments over a target's pipeline turns (mergeable across shards by addition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSums {
    /// Turns with every segment.
    pub turns: u64,
    /// Per segment, the sum over those turns, ms.
    pub sums_ms: [f64; 7],
    /// Their TTFA, summed, ms.
    pub ttfa_ms: f64,
    /// The largest |TTFA − Σ segments| of a turn, ms (playback queued behind earlier audio shows up here).
    pub max_residual_ms: f64,
}

impl StageSums {
    /// Adds a turn (ignored unless it has every segment).
    pub fn record(&mut self, t: &TurnRecord) {
        let (Some(s), Some(ttfa)) = (segments(t), t.ttfa_ms) else { return };
        self.turns += 1;
        for (a, v) in self.sums_ms.iter_mut().zip(s) {
            *a += v;
        }
        self.ttfa_ms += ttfa;
        self.max_residual_ms = self.max_residual_ms.max((ttfa - s.iter().sum::<f64>()).abs());
    }

    /// Adds another shard's sums.
    pub fn merge(&mut self, o: &StageSums) {
        self.turns += o.turns;
        for (a, v) in self.sums_ms.iter_mut().zip(o.sums_ms) {
            *a += v;
        }
        self.ttfa_ms += o.ttfa_ms;
        self.max_residual_ms = self.max_residual_ms.max(o.max_residual_ms);
    }

    /// Per-segment means, ms (`None` without turns).
    pub fn means(&self) -> Option<[f64; 7]> {
        (self.turns > 0).then(|| self.sums_ms.map(|s| s / self.turns as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_add_up_to_ttfa() {
        let t = TurnRecord {
            endpointing_ms: Some(510.0),
            stt_ms: Some(700.0),
            llm_start_ms: Some(1300.0),
            llm_ttft_ms: Some(400.0),
            tts_start_ms: Some(1760.0),
            tts_ttfb_ms: Some(150.0),
            leading_silence_ms: Some(20.0),
            ttfa_ms: Some(1930.0),
            ..Default::default()
        };
        let s = segments(&t).unwrap();
        assert_eq!(s, [510.0, 190.0, 600.0, 400.0, 60.0, 150.0, 20.0]);
        let mut sums = StageSums::default();
        sums.record(&t);
        sums.record(&TurnRecord { ttfa_ms: Some(100.0), ..Default::default() });
        assert_eq!(sums.turns, 1);
        assert_eq!(sums.max_residual_ms, 0.0);
        let mut other = sums.clone();
        other.merge(&sums);
        assert_eq!(other.means().unwrap(), s);
    }
}
