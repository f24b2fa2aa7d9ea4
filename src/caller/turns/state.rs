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
    /// When its speech starts: the WAV's speech onset after `start`, moved later by the sending lateness (see
    /// [`Utterance::sent`]).
    pub onset: Instant,
    /// When its speech ends (the caller's end of speech), moved likewise.
    pub eos: Instant,
    /// The onset as scheduled, and the frame that carries it.
    pub onset_at: (Instant, u64),
    /// The end of speech as scheduled, and the frame that carries it.
    pub eos_at: (Instant, u64),
    /// The least lateness of the frames sent so far in each instant's window.
    pub late: [Option<Duration>; 2],
}

/// How many frames from the one carrying an onset or an end of speech count towards its sending lateness.
pub(super) const LATENESS_WINDOW: u64 = 10;

impl Utterance {
    /// An utterance scheduled at `start` (its first frame `start_frame`) with speech from `onset` to `eos`, the
    /// frames carrying them given.
    pub fn new(start_frame: u64, start: Instant, onset: (Instant, u64), eos: (Instant, u64)) -> Self {
        Utterance { start_frame, start, onset: onset.0, eos: eos.0, onset_at: onset, eos_at: eos, late: [None; 2] }
    }

    /// Frame `k` went out `late` after it was due. The harness's own lateness must not be charged to the agent:
    /// the onset and the end of speech move later by the *least* lateness among the frame that carries each and
    /// the [`LATENESS_WINDOW`] − 1 after it. The least, because an agent's VAD hears the speech end only with the
    /// frames that follow it (its silence window): the lateness every one of them shares (tokio's timer sends each
    /// frame about 1 ms late) delays what the agent can know, while one frame delayed alone (a scheduling hiccup
    /// on a loaded machine) is caught up by the next and delays nothing.
    pub fn sent(&mut self, k: u64, late: Duration) {
        for (i, (at, frame)) in [self.onset_at, self.eos_at].into_iter().enumerate() {
            if (frame..frame + LATENESS_WINDOW).contains(&k) {
                let least = self.late[i].map_or(late, |l| l.min(late));
                self.late[i] = Some(least);
                *(if i == 0 { &mut self.onset } else { &mut self.eos }) = at + least;
            }
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
    /// The transcript of its reply as the provider reported it (bounded: [`super::MAX_SAID`] bytes).
    pub said: String,
    /// Whether any transcript of its reply came.
    pub transcribed: bool,
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
            said: String::new(),
            transcribed: false,
        }
    }
}
