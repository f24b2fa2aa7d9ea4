//! A target's figures over the run's time (docs/metrics.md "Load"): TTFA p50/p95, turns and failed turns per
//! [`WINDOW`] of run time, so that an agent that degrades under load shows it as the run goes rather than only in
//! the run's pooled percentiles.
//!
//! A turn's time in the run is its call's start (from the run's start, `calls.csv`'s `started_ms`) plus its
//! `user_eos_ms` (or `user_onset_ms`, for a turn that never reached its end of speech). A turn row comes before
//! its call's row, so a call's turns wait in [`Windows`] until the call's record gives its start; only the calls
//! in flight wait (and, replaying a report's rows, where every turn comes first, every turn: the rows are in memory
//! then anyway). A merged run's calls start on each shard's own clock: shards started together (a Kubernetes Job,
//! a CI matrix) line up to within their start skew.

use std::collections::{BTreeMap, HashMap};

use super::exact::Exact;
use super::histograms::ms_to_us;
use crate::model::{CallRecord, Metric, TurnRecord};

/// The width of a window, seconds.
pub const WINDOW_S: u32 = 10;

/// One window's turns.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// TTFA samples, µs.
    pub ttfa: Exact,
    /// Turns attempted (with a row).
    pub turns: u64,
    /// Turns that ended in an error.
    pub failed: u64,
}

/// A turn waiting for its call's start: when in its call it happened, its TTFA and whether it failed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    at_ms: f64,
    ttfa_us: Option<u64>,
    failed: bool,
}

/// A target's windows.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    windows: BTreeMap<u32, Window>,
    pending: HashMap<u32, Vec<Pending>>,
    /// Turns in `pending`, kept as they come and go rather than summed per turn.
    pending_turns: usize,
}

/// At most this many turns wait for their calls' records (a bound on what a run whose call records never come
/// could hold; past it, turns are left out of the windows, never out of the pooled figures).
const MAX_PENDING: usize = 10_000_000;

impl Windows {
    /// Holds a turn until its call's record says when the call started.
    pub fn record_turn(&mut self, turn: &TurnRecord) {
        if self.pending_turns >= MAX_PENDING {
            return;
        }
        self.pending_turns += 1;
        let at_ms = if turn.user_eos_ms > 0.0 { turn.user_eos_ms } else { turn.user_onset_ms };
        let ttfa_us = turn.value(Metric::Ttfa).and_then(ms_to_us);
        self.pending.entry(turn.call).or_default().push(Pending { at_ms, ttfa_us, failed: turn.error.is_some() });
    }

    /// Places the call's waiting turns in their windows.
    pub fn record_call(&mut self, call: &CallRecord) {
        let turns = self.pending.remove(&call.call).unwrap_or_default();
        self.pending_turns -= turns.len();
        for p in turns {
            let t = (call.started_ms + p.at_ms).max(0.0) / 1000.0;
            let w = self.windows.entry((t / f64::from(WINDOW_S)) as u32).or_default();
            w.turns += 1;
            w.failed += u64::from(p.failed);
            if let Some(us) = p.ttfa_us {
                w.ttfa.record(us);
            }
        }
    }

    /// The windows with turns, by index (window *i* covers [i·10 s, (i+1)·10 s) of run time).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Window)> {
        self.windows.iter().map(|(i, w)| (*i, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_land_in_the_window_of_their_call_start_plus_their_time_in_the_call() {
        let mut w = Windows::default();
        let turn = |call, eos: f64, ttfa: Option<f64>, failed: bool| TurnRecord {
            call,
            user_eos_ms: eos,
            ttfa_ms: ttfa,
            error: failed.then_some(crate::model::ErrorCategory::Timeout),
            ..Default::default()
        };
        w.record_turn(&turn(0, 3_000.0, Some(800.0), false));
        w.record_turn(&turn(0, 12_000.0, Some(900.0), false));
        w.record_turn(&turn(1, 1_000.0, None, true));
        assert_eq!(w.iter().count(), 0, "nothing placed before the call's start is known");
        w.record_call(&CallRecord { call: 0, started_ms: 5_000.0, ..Default::default() });
        w.record_call(&CallRecord { call: 1, started_ms: 25_000.0, ..Default::default() });
        let got: Vec<(u32, u64, u64, u64)> = w.iter().map(|(i, x)| (i, x.turns, x.failed, x.ttfa.len())).collect();
        // 5 + 3 = 8 s → window 0; 5 + 12 = 17 s → window 1; 25 + 1 = 26 s → window 2.
        assert_eq!(got, vec![(0, 1, 0, 1), (1, 1, 0, 1), (2, 1, 1, 0)]);
    }
}
