//! What the tracker knows about one started turn, grouped by what becomes known together: the utterance's
//! schedule (fixed when the turn starts), the reply as the caller hears it, the barge-in's resolution and the tool
//! calls' score. A turn that has not started has no state at all, so none of these hold "not yet scheduled".

use tokio::time::{Duration, Instant};

use crate::targets::{ErrorCategory, Stage};

/// When a turn's utterance sounds: all fixed at once when the turn is scheduled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Utterance {
    /// The frame the utterance starts at.
    pub start_frame: u64,
    /// When its first frame is due.
    pub start: Instant,
    /// When its speech starts (the WAV's speech onset after `start`), moved later by the lateness of the frame that
    /// carried it once that frame has gone out.
    pub onset: Instant,
    /// When its speech ends (the caller's end of speech), moved later by the lateness of the frame that carried it.
    pub eos: Instant,
    /// The frames that carry the onset and the end of speech.
    pub onset_frame: u64,
    /// See `onset_frame`.
    pub eos_frame: u64,
}

impl Utterance {
    /// Frame `k` went out `late` after it was due: an onset or end of speech it carries reached the wire that much
    /// later than scheduled, which is the harness's delay, not the agent's, so the instant moves with it.
    pub fn sent(&mut self, k: u64, late: Duration) {
        if k == self.onset_frame {
            self.onset += late;
        }
        if k == self.eos_frame {
            self.eos += late;
        }
    }
}

/// The reply's audio as the caller hears it, from its first chunk on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heard {
    /// When the reply's first chunk arrived.
    pub first_chunk_at: Instant,
    /// The reply's first audible sample on the playback timeline, once the detector has found it.
    pub first_audible: Option<Instant>,
    /// The end of the last audio heard (moved back to the cut when the reply is cut).
    pub end: Instant,
    /// The longest silence heard between two chunks of the reply.
    pub max_gap: Duration,
}

/// The agent's reply to a turn.
#[derive(Debug, Default)]
pub(super) struct Reply {
    /// Its audio, once the first chunk has arrived.
    pub heard: Option<Heard>,
    /// When the agent signalled the caller's end of speech (speech stopped, or a pipeline's end of turn).
    pub speech_stopped: Option<Instant>,
    /// Pipeline stage boundaries before the reply's first audio, indexed by [`Stage`] (the latest of each).
    pub stages: [Option<Instant>; 6],
    /// When the last response of the reply was done (a response that only called a tool does not end it).
    pub done: Option<Instant>,
}

impl Reply {
    /// When the reply has finished for the caller: the response is done and its audio has played out.
    pub fn end(&self) -> Option<Instant> {
        let done = self.done?;
        Some(self.heard.map_or(done, |h| h.end.max(done)))
    }

    /// Whether the reply's first audio has not arrived by `t` (so a stage or end-of-speech at `t` precedes it).
    pub fn before_audio(&self, t: Instant) -> bool {
        self.heard.is_none_or(|h| t <= h.first_chunk_at)
    }

    /// A stage boundary at `at`.
    pub fn stage(&mut self, at: Instant, stage: Stage) {
        self.stages[stage as usize] = Some(at);
        if stage == Stage::EndOfTurn {
            self.speech_stopped = Some(at);
        }
    }

    /// A chunk placed on the playback timeline from `start` to `end`, arrived at `at`.
    pub fn chunk(&mut self, at: Instant, start: Instant, end: Instant) -> &mut Heard {
        let h =
            self.heard.get_or_insert(Heard { first_chunk_at: at, first_audible: None, end, max_gap: Duration::ZERO });
        // Silence the caller heard inside the reply (an underrun, or the wait between two responses).
        if start > h.end {
            h.max_gap = h.max_gap.max(start - h.end);
        }
        h.end = end;
        h
    }
}

/// How a barge-in turn's interruption was resolved (meaningful only for turns that expect the agent to stop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Barge {
    /// Not yet known.
    Pending,
    /// The agent was not talking when the caller barged in: nothing to stop.
    NotApplicable,
    /// The agent's audio stopped at `stop`; `ack` is the provider's flush signal, if it sent one.
    Stopped {
        /// The flush signal (speech started / interrupted), if any.
        ack: Option<Instant>,
        /// The last instant of agent audio the caller heard.
        stop: Instant,
    },
}

/// The score of the tool calls attributed to a turn.
#[derive(Debug)]
pub(super) struct ToolScore {
    /// When the first tool call arrived.
    pub first_at: Option<Instant>,
    /// Per expected call: whether a call has satisfied it.
    pub satisfied: Vec<bool>,
    /// Calls that satisfied an expected call of this turn.
    pub succeeded: u32,
    /// Calls a later turn expects.
    pub early: u32,
    /// Calls an earlier turn expected and did not get.
    pub late: u32,
    /// Calls no turn expects.
    pub unexpected: u32,
    /// Calls whose arguments are not a JSON object or break the tool's schema, or of an unknown tool.
    pub malformed: u32,
}

impl ToolScore {
    /// A score for a turn that expects `expected` calls.
    pub fn new(expected: usize) -> Self {
        Self {
            first_at: None,
            satisfied: vec![false; expected],
            succeeded: 0,
            early: 0,
            late: 0,
            unexpected: 0,
            malformed: 0,
        }
    }
}

/// A started turn.
#[derive(Debug)]
pub(super) struct Turn {
    /// Its utterance's schedule.
    pub utt: Utterance,
    /// The agent's reply to it.
    pub reply: Reply,
    /// Its barge-in's resolution.
    pub barge: Barge,
    /// Its tool calls' score.
    pub tools: ToolScore,
    /// Agent audio (samples) of cut items that still arrived after a cut this turn's utterance caused.
    pub post_cancel_samples: usize,
    /// Whether the agent stopped for this turn's backchannel.
    pub false_stop: bool,
    /// The first error the provider reported for this turn.
    pub error: Option<(ErrorCategory, String)>,
    /// Whether its record has been written.
    pub finalized: bool,
}

impl Turn {
    /// A turn that starts now, with `expected` tool calls and any error reported before it started.
    pub fn new(utt: Utterance, expected: usize, error: Option<(ErrorCategory, String)>) -> Self {
        Self {
            utt,
            reply: Reply::default(),
            barge: Barge::Pending,
            tools: ToolScore::new(expected),
            post_cancel_samples: 0,
            false_stop: false,
            error,
            finalized: false,
        }
    }
}
