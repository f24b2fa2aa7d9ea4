//! The counts behind a target's rates (tool success, barge-in success, false stop, premature take-over, errors,
//! goodput). Rates are derived from counts, never stored, so shards merge by addition and a rate with no
//! denominator is `None`, never a default pass.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{CallRecord, ErrorCategory, TurnRecord};
use crate::scenario::{Bound, Slo, SloKey};

/// The counters behind a target's rates, in `summary.json`'s order (its `counts` object): one struct for the
/// recorder's tally and the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Calls that ended with an error.
    pub calls_failed: u64,
    /// Turns that failed (including unreached turns of failed calls).
    pub turns_failed: u64,
    /// Turns a failed call never reached.
    pub turns_unreached: u64,
    /// Turns meeting every SLO (0 without SLOs).
    pub turns_good: u64,
    /// Tool calls expected.
    pub tools_expected: u64,
    /// Expected tool calls made in the right turn with matching arguments.
    pub tools_succeeded: u64,
    /// Tool calls made a turn early.
    pub tools_early: u64,
    /// Tool calls made a turn late.
    pub tools_late: u64,
    /// Tool calls no turn expected.
    pub tools_unexpected: u64,
    /// Tool calls with malformed arguments.
    pub tools_malformed: u64,
    /// Barge-in turns judged.
    pub barge_in_turns: u64,
    /// Barge-in turns that failed.
    pub barge_in_failed: u64,
    /// Backchannel turns judged.
    pub backchannel_turns: u64,
    /// Backchannel turns with a false stop.
    pub false_stops: u64,
    /// No-take-over turns judged.
    pub no_takeover_turns: u64,
    /// No-take-over turns with a premature take-over.
    pub premature_takeovers: u64,
    /// Turns whose content checks were judged (`say` / `not_say` on a transcript).
    #[serde(default)]
    pub content_turns: u64,
    /// Judged turns whose content checks failed.
    #[serde(default)]
    pub content_failed: u64,
    /// Calls whose end state was judged against `[[expect_state]]`.
    #[serde(default)]
    pub task_calls: u64,
    /// Judged calls whose end state was not as expected.
    #[serde(default)]
    pub task_failed: u64,
}

impl Counts {
    /// Adds another shard's counters.
    pub fn add(&mut self, o: &Counts) {
        self.calls_failed += o.calls_failed;
        self.turns_failed += o.turns_failed;
        self.turns_unreached += o.turns_unreached;
        self.turns_good += o.turns_good;
        self.tools_expected += o.tools_expected;
        self.tools_succeeded += o.tools_succeeded;
        self.tools_early += o.tools_early;
        self.tools_late += o.tools_late;
        self.tools_unexpected += o.tools_unexpected;
        self.tools_malformed += o.tools_malformed;
        self.barge_in_turns += o.barge_in_turns;
        self.barge_in_failed += o.barge_in_failed;
        self.backchannel_turns += o.backchannel_turns;
        self.false_stops += o.false_stops;
        self.no_takeover_turns += o.no_takeover_turns;
        self.premature_takeovers += o.premature_takeovers;
        self.content_turns += o.content_turns;
        self.content_failed += o.content_failed;
        self.task_calls += o.task_calls;
        self.task_failed += o.task_failed;
    }
}

/// Counts for one target.
///
/// A failed call's turns that never produced a row (it failed to connect, or the socket closed mid-call) count as
/// attempted and failed, under the call's error category: failures are results and never disappear from the error
/// rate. Turns cut short because the user interrupted the run are not counted that way. This relies on a call's
/// record arriving after its turns' records, as the caller emits them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    /// Calls recorded.
    pub calls: u64,
    /// Turns attempted: turn rows, plus the turns a failed call never reached.
    pub turns: u64,
    /// The counters behind the rates, as `summary.json` writes them.
    pub counts: Counts,
    /// Whether turns were judged against SLOs (goodput is `None` otherwise).
    pub slo_judged: bool,
    /// Failed turns by category (unreached turns under their call's category).
    pub turn_errors: BTreeMap<ErrorCategory, u64>,
    /// Failed calls by category.
    pub call_errors: BTreeMap<ErrorCategory, u64>,
    /// Pipeline turns' TTFA segments (see [`super::stages`]).
    #[serde(default)]
    pub stages: super::stages::StageSums,
    /// What an impaired network did to the calls' packets (docs/network.md), summed.
    #[serde(default)]
    pub network: crate::model::network::NetEffect,
    /// Turn rows seen per call whose call record has not arrived yet.
    #[serde(skip)]
    rows_per_call: HashMap<u32, u32>,
}

impl Tally {
    /// Counts one turn, judging it against `slos` for goodput when there are any.
    pub fn record_turn(&mut self, t: &TurnRecord, slos: &[Slo]) {
        self.turns += 1;
        *self.rows_per_call.entry(t.call).or_default() += 1;
        if let Some(category) = t.error {
            self.counts.turns_failed += 1;
            *self.turn_errors.entry(category).or_default() += 1;
        }
        self.counts.tools_expected += u64::from(t.tools_expected);
        self.counts.tools_succeeded += u64::from(t.tools_succeeded);
        self.counts.tools_early += u64::from(t.tools_early);
        self.counts.tools_late += u64::from(t.tools_late);
        self.counts.tools_unexpected += u64::from(t.tools_unexpected);
        self.counts.tools_malformed += u64::from(t.tools_malformed);
        count_flag(t.barge_in_failed, &mut self.counts.barge_in_turns, &mut self.counts.barge_in_failed);
        count_flag(t.false_stop, &mut self.counts.backchannel_turns, &mut self.counts.false_stops);
        count_flag(t.premature_takeover, &mut self.counts.no_takeover_turns, &mut self.counts.premature_takeovers);
        count_flag(t.content_ok.map(|ok| !ok), &mut self.counts.content_turns, &mut self.counts.content_failed);
        self.stages.record(t);
        if !slos.is_empty() {
            self.slo_judged = true;
            self.counts.turns_good += u64::from(meets_slos(t, slos));
        }
    }

    /// Counts one call; a failed call's unreached turns count as failed turns.
    pub fn record_call(&mut self, c: &CallRecord) {
        self.calls += 1;
        if let Some(n) = &c.network {
            self.network.add(n);
        }
        count_flag(c.task_ok.map(|ok| !ok), &mut self.counts.task_calls, &mut self.counts.task_failed);
        let rows = self.rows_per_call.remove(&c.call).unwrap_or(0);
        let Some(category) = c.error else { return };
        self.counts.calls_failed += 1;
        *self.call_errors.entry(category).or_default() += 1;
        let unreached = u64::from(c.turns_total.saturating_sub(rows));
        if category != ErrorCategory::Interrupted && unreached > 0 {
            self.turns += unreached;
            self.counts.turns_failed += unreached;
            self.counts.turns_unreached += unreached;
            *self.turn_errors.entry(category).or_default() += unreached;
        }
    }

    /// Adds another shard's counts.
    pub fn merge(&mut self, o: &Tally) {
        self.calls += o.calls;
        self.turns += o.turns;
        self.counts.add(&o.counts);
        self.network.add(&o.network);
        self.slo_judged |= o.slo_judged;
        self.stages.merge(&o.stages);
        for (k, v) in &o.turn_errors {
            *self.turn_errors.entry(*k).or_default() += v;
        }
        for (k, v) in &o.call_errors {
            *self.call_errors.entry(*k).or_default() += v;
        }
        for (k, v) in &o.rows_per_call {
            *self.rows_per_call.entry(*k).or_default() += v;
        }
    }

    /// Succeeded expected tool calls / expected tool calls; `None` when no call was expected.
    pub fn tool_success_rate(&self) -> Option<f64> {
        ratio(self.counts.tools_succeeded, self.counts.tools_expected)
    }

    /// Barge-in turns where the agent stopped in time / barge-in turns judged.
    pub fn barge_in_success_rate(&self) -> Option<f64> {
        ratio(self.counts.barge_in_turns - self.counts.barge_in_failed, self.counts.barge_in_turns)
    }

    /// Backchannel turns where the agent stopped / backchannel turns judged.
    pub fn false_stop_rate(&self) -> Option<f64> {
        ratio(self.counts.false_stops, self.counts.backchannel_turns)
    }

    /// No-take-over turns where the agent took over / no-take-over turns judged.
    pub fn premature_takeover_rate(&self) -> Option<f64> {
        ratio(self.counts.premature_takeovers, self.counts.no_takeover_turns)
    }

    /// Turns whose content checks passed / turns judged.
    pub fn content_success_rate(&self) -> Option<f64> {
        ratio(self.counts.content_turns - self.counts.content_failed, self.counts.content_turns)
    }

    /// Calls whose end state was as expected / calls judged.
    pub fn task_success_rate(&self) -> Option<f64> {
        ratio(self.counts.task_calls - self.counts.task_failed, self.counts.task_calls)
    }

    /// Failed turns / turns attempted; 0 when nothing was attempted.
    pub fn error_rate(&self) -> f64 {
        ratio(self.counts.turns_failed, self.turns).unwrap_or(0.0)
    }

    /// Turns meeting every SLO / turns attempted; `None` without SLOs or turns.
    pub fn goodput(&self) -> Option<f64> {
        if self.slo_judged { ratio(self.counts.turns_good, self.turns) } else { None }
    }
}

fn count_flag(flag: Option<bool>, judged: &mut u64, hit: &mut u64) {
    if let Some(v) = flag {
        *judged += 1;
        *hit += u64::from(v);
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Whether one turn meets every SLO at once. A failed turn meets none. A latency SLO (`ttfa.p95 <= 800`) holds
/// for a turn when the turn's value is within the threshold, or the turn has no such value (the metric does not
/// apply to it). A rate SLO holds when the turn is not one of the failures the rate counts.
pub fn meets_slos(t: &TurnRecord, slos: &[Slo]) -> bool {
    if t.error.is_some() {
        return false;
    }
    slos.iter().all(|slo| {
        let within = |v: f64| match slo.bound {
            Bound::AtMost => v <= slo.threshold,
            Bound::AtLeast => v >= slo.threshold,
        };
        match slo.key {
            SloKey::Rate("tool_success_rate") => t.tools_succeeded >= t.tools_expected,
            SloKey::Rate("barge_in_success_rate") => t.barge_in_failed != Some(true),
            SloKey::Rate("false_stop_rate") => t.false_stop != Some(true),
            SloKey::Rate("premature_takeover_rate") => t.premature_takeover != Some(true),
            SloKey::Rate("content_success_rate") => t.content_ok != Some(false),
            // `task_success_rate` is a call's, not a turn's.
            // `error_rate` (a failed turn already meets none) and `goodput` itself.
            SloKey::Rate(_) => true,
            SloKey::Latency(metric, _) => t.value(metric).is_none_or(within),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Metric;
    use crate::model::TurnKind;

    #[test]
    fn no_expected_tool_calls_is_no_rate() {
        let mut t = Tally::default();
        t.record_turn(&TurnRecord { kind: Some(TurnKind::Plain), ..Default::default() }, &[]);
        assert_eq!(t.tool_success_rate(), None);
        assert_eq!(t.barge_in_success_rate(), None);
        assert_eq!(t.error_rate(), 0.0);
        assert_eq!(t.goodput(), None);
    }

    #[test]
    fn rates_count_what_they_say() {
        let mut t = Tally::default();
        t.record_turn(&TurnRecord { tools_expected: 2, tools_succeeded: 1, ..Default::default() }, &[]);
        t.record_turn(&TurnRecord { barge_in_failed: Some(false), ..Default::default() }, &[]);
        t.record_turn(&TurnRecord { barge_in_failed: Some(true), ..Default::default() }, &[]);
        t.record_turn(&TurnRecord { false_stop: Some(true), ..Default::default() }, &[]);
        t.record_turn(&TurnRecord { error: Some(ErrorCategory::Timeout), ..Default::default() }, &[]);
        assert_eq!(t.tool_success_rate(), Some(0.5));
        assert_eq!(t.barge_in_success_rate(), Some(0.5));
        assert_eq!(t.false_stop_rate(), Some(1.0));
        assert_eq!(t.premature_takeover_rate(), None);
        assert_eq!(t.error_rate(), 0.2);
        assert_eq!(t.turn_errors[&ErrorCategory::Timeout], 1);
    }

    #[test]
    fn a_call_that_never_connected_counts_its_turns_as_failed() {
        let mut t = Tally::default();
        let ok = TurnRecord { call: 0, ..Default::default() };
        t.record_turn(&ok, &[]);
        t.record_turn(&ok, &[]);
        t.record_call(&CallRecord { call: 0, turns_total: 2, turns_ok: 2, ..Default::default() });
        t.record_call(&CallRecord {
            call: 1,
            turns_total: 2,
            error: Some(ErrorCategory::Connect),
            ..Default::default()
        });
        assert_eq!((t.turns, t.counts.turns_failed, t.counts.turns_unreached), (4, 2, 2));
        assert_eq!(t.error_rate(), 0.5);
        assert_eq!(t.turn_errors[&ErrorCategory::Connect], 2);
        assert_eq!(t.call_errors[&ErrorCategory::Connect], 1);
        // An interrupted run's unreached turns were never attempted.
        t.record_call(&CallRecord {
            call: 2,
            turns_total: 2,
            error: Some(ErrorCategory::Interrupted),
            ..Default::default()
        });
        assert_eq!((t.turns, t.counts.calls_failed), (4, 2));
    }

    #[test]
    fn goodput_needs_every_slo_at_once() {
        let slos = vec![
            Slo { key: SloKey::Latency(Metric::Ttfa, "p95"), threshold: 800.0, bound: Bound::AtMost },
            Slo { key: SloKey::Rate("tool_success_rate"), threshold: 0.9, bound: Bound::AtLeast },
        ];
        let mut t = Tally::default();
        t.record_turn(&TurnRecord { ttfa_ms: Some(500.0), ..Default::default() }, &slos);
        t.record_turn(&TurnRecord { ttfa_ms: Some(900.0), ..Default::default() }, &slos);
        t.record_turn(&TurnRecord { ttfa_ms: Some(500.0), tools_expected: 1, ..Default::default() }, &slos);
        t.record_turn(&TurnRecord { error: Some(ErrorCategory::Timeout), ..Default::default() }, &slos);
        assert_eq!(t.goodput(), Some(0.25));
    }
}
