//! The terminal summary printed at the end of a run: one block per target (latency table, then rates), then the
//! run's frame pacing and event-loop lag, and a warning when the harness was overloaded. Plain text with aligned columns; no colours, so it reads the same in a CI log.

use std::fmt::Write as _;

use super::summary::{Summary, TargetSummary};
use crate::metrics::Stats;
use crate::model::Metric;

/// Metrics always shown, in order (labelled by [`Metric::label`]).
const ROWS: &[Metric] = &[
    Metric::Ttfa,
    Metric::Ttfb,
    Metric::LeadingSilence,
    Metric::Endpointing,
    Metric::ToolCall,
    Metric::MaxSilence,
    Metric::BargeInStop,
    Metric::BargeInAck,
];

/// Metrics shown only when the target has samples (talk-over, wasted audio, pipeline stages).
const OPTIONAL_ROWS: &[Metric] =
    &[Metric::TalkOver, Metric::PostCancelAudio, Metric::Stt, Metric::LlmTtft, Metric::TtsTtfb];

const LABEL: usize = 20;
const COL: usize = 9;

/// The whole summary as text, ending with a newline.
pub fn terminal_table(summary: &Summary) -> String {
    let mut out = String::new();
    for t in &summary.targets {
        target_block(&mut out, t);
        out.push('\n');
    }
    let p = &summary.pacing;
    let _ = writeln!(
        out,
        "pacing: {} frames, lateness p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        p.frames, p.p50_ms, p.p99_ms, p.max_ms
    );
    if let Some(h) = &summary.harness {
        let l = &h.loop_lag;
        let _ = writeln!(out, "event-loop lag: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms", l.p50_ms, l.p99_ms, l.max_ms);
        if let Some(w) = h.warning() {
            let _ = writeln!(out, "OVERLOADED harness: {w}");
            if summary.run.priority.as_deref() != Some("realtime") {
                let _ = writeln!(
                    out,
                    "  the harness ran at normal priority: `voicebench run --realtime` (as root or with CAP_SYS_NICE) \
                     lets its frames preempt other work on this machine (docs/bench.md)"
                );
            }
        }
    }
    if let Some(l) = &summary.load {
        let _ = writeln!(
            out,
            "open loop ({} arrivals): {} calls intended, {} started ({} late by 10 ms or more), {} dropped (no slot of {} within {} ms); start lateness p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.arrivals,
            l.intended,
            l.started,
            l.late,
            l.dropped,
            l.max_in_flight,
            l.max_start_delay_ms,
            l.start_lateness.p50_ms,
            l.start_lateness.p99_ms,
            l.start_lateness.max_ms
        );
    }
    if summary.incomplete {
        out.push_str("incomplete: the run was killed; these figures were rebuilt from its rows\n");
    } else if summary.interrupted {
        out.push_str("interrupted: these figures cover the calls measured before the run was stopped\n");
    }
    out
}

fn target_block(out: &mut String, t: &TargetSummary) {
    let mut header = t.name.clone();
    if t.simulated {
        header.push_str(" (simulated)");
    }
    header.push_str(&format!("  {}", t.protocol));
    if let Some(model) = &t.model {
        header.push_str(&format!("  {model}"));
    }
    let _ = writeln!(out, "{header}  {} calls, {} turns", t.calls, t.turns);
    if let Some(line) = super::summary::line_of(t) {
        let _ = writeln!(out, "  {:<LABEL$}{line}", "line");
    }
    if let Some(n) = &t.network {
        for m in n.measured_lines() {
            let _ = writeln!(out, "  {:<LABEL$}{m}", "network");
        }
    }
    let _ = writeln!(
        out,
        "  {:<LABEL$}{:>7}{:>COL$}{:>COL$}{:>COL$}{:>COL$}{:>COL$}",
        "latency (ms)", "n", "p50", "p90", "p95", "p99", "max"
    );
    let optional = OPTIONAL_ROWS.iter().filter(|m| t.metric(**m).is_some());
    for &metric in ROWS.iter().chain(optional) {
        latency_row(out, metric.label(), t.metric(metric));
    }
    if let Some(b) = &t.stages {
        let parts: Vec<String> = b.mean_ms.iter().map(|(k, v)| format!("{} {v:.0}", k.replace('_', " "))).collect();
        let _ = writeln!(
            out,
            "  {:<LABEL$}{} = {:.0} ms (means of {} turns)",
            "TTFA by stage",
            parts.join(" + "),
            b.ttfa_mean_ms,
            b.turns
        );
    }

    let c = &t.counts;
    rate_row(
        out,
        "tool success",
        t.tool_success_rate,
        format!("{}/{} expected calls", c.tools_succeeded, c.tools_expected),
    );
    let passed = c.barge_in_turns - c.barge_in_failed;
    rate_row(out, "barge-in success", t.barge_in_success_rate, format!("{passed}/{} barge-ins", c.barge_in_turns));
    rate_row(out, "false stop", t.false_stop_rate, format!("{}/{} backchannels", c.false_stops, c.backchannel_turns));
    let takeover = format!("{}/{} paused utterances", c.premature_takeovers, c.no_takeover_turns);
    rate_row(out, "premature take-over", t.premature_takeover_rate, takeover);
    if c.content_turns > 0 {
        let said = format!("{}/{} replies said what they must", c.content_turns - c.content_failed, c.content_turns);
        rate_row(out, "content success", t.content_success_rate, said);
    }
    if c.task_calls > 0 {
        let state = format!("{}/{} calls left the expected state", c.task_calls - c.task_failed, c.task_calls);
        rate_row(out, "task success", t.task_success_rate, state);
    }
    let mut errors = format!("{}/{} turns", c.turns_failed, t.turns);
    if !t.errors.is_empty() {
        let by: Vec<String> = t.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        errors.push_str(&format!(": {}", by.join(", ")));
    }
    rate_row(out, "error rate", Some(t.error_rate), errors);
    if t.goodput.is_some() {
        rate_row(out, "goodput", t.goodput, format!("{}/{} turns meet every SLO", c.turns_good, t.turns));
    }
    let extra = [("early", c.tools_early), ("late", c.tools_late), ("unexpected", c.tools_unexpected)];
    let extra: Vec<String> = extra
        .iter()
        .chain(&[("malformed", c.tools_malformed)])
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !extra.is_empty() {
        let _ = writeln!(out, "  {:<LABEL$}{}", "other tool calls", extra.join(", "));
    }
}

fn latency_row(out: &mut String, label: &str, stats: Option<&Stats>) {
    match stats {
        Some(s) => {
            let _ = write!(out, "  {label:<LABEL$}{:>7}", s.count);
            for v in [s.p50, s.p90, s.p95, s.p99, s.max] {
                let _ = write!(out, "{v:>COL$.1}");
            }
            out.push('\n');
        }
        None => {
            let _ = writeln!(out, "  {label:<LABEL$}{:>7}{:>COL$}", 0, "—");
        }
    }
}

fn rate_row(out: &mut String, label: &str, rate: Option<f64>, detail: String) {
    match rate {
        Some(r) => {
            let _ = writeln!(out, "  {label:<LABEL$}{:>7.1}%  ({detail})", r * 100.0);
        }
        None => {
            let _ = writeln!(out, "  {label:<LABEL$}{:>7}   (none measured)", "—");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::summary::{
        Counts, HarnessSummary, LatenessSummary, Ordered, PacingSummary, RunInfo, ScenarioInfo,
    };

    fn stats(p50: f64) -> Stats {
        Stats {
            count: 40,
            min: p50 / 2.0,
            p50,
            p90: p50 * 1.5,
            p95: p50 * 1.75,
            p99: p50 * 2.0,
            p999: p50 * 2.1,
            max: p50 * 2.2,
            mean: p50 * 1.1,
        }
    }

    fn fixed() -> Summary {
        let counts = Counts {
            calls_failed: 1,
            turns_failed: 2,
            turns_unreached: 0,
            turns_good: 0,
            tools_expected: 10,
            tools_succeeded: 9,
            tools_early: 0,
            tools_late: 1,
            tools_unexpected: 0,
            tools_malformed: 0,
            barge_in_turns: 5,
            barge_in_failed: 1,
            backchannel_turns: 0,
            false_stops: 0,
            no_takeover_turns: 0,
            premature_takeovers: 0,
            content_turns: 0,
            content_failed: 0,
            task_calls: 0,
            task_failed: 0,
        };
        Summary {
            voicebench: "0.1.0".into(),
            scenario: ScenarioInfo {
                name: "booking".into(),
                path: "scenarios/booking.toml".into(),
                sha256: "ab".into(),
                corpus_sha256: None,
            },
            run: RunInfo { seed: 1, calls: 10, concurrency: 2, frame_ms: 20, ramp_up_ms: None, priority: None },
            slo: Ordered::default(),
            started_at: "2025-01-01T00:00:00.000Z".into(),
            finished_at: "2025-01-01T00:01:00.000Z".into(),
            interrupted: false,
            incomplete: false,
            pacing: PacingSummary { frames: 30000, p50_ms: 0.21, p99_ms: 0.8, max_ms: 3.1 },
            harness: None,
            load: None,
            shard: None,
            merged: None,
            targets: vec![TargetSummary {
                name: "sim-native".into(),
                protocol: "openai-realtime".into(),
                simulated: true,
                model: Some("gpt-realtime".into()),
                calls: 10,
                turns: 40,
                metrics: Ordered(vec![
                    ("ttfa".into(), stats(500.0)),
                    ("ttfb".into(), stats(400.0)),
                    ("stt".into(), stats(120.0)),
                ]),
                by_kind: Ordered(vec![]),
                tool_success_rate: Some(0.9),
                barge_in_success_rate: Some(0.8),
                false_stop_rate: None,
                premature_takeover_rate: None,
                content_success_rate: None,
                task_success_rate: None,
                goodput: None,
                error_rate: 0.05,
                errors: BTreeMap::from([("timeout".into(), 2)]),
                call_errors: BTreeMap::from([("timeout".into(), 1)]),
                counts,
                over_time: Vec::new(),
                stages: None,
                telephone: false,
                network: None,
            }],
        }
    }

    #[test]
    fn fixed_summary_renders() {
        let text = terminal_table(&fixed());
        let expected = "\
sim-native (simulated)  openai-realtime  gpt-realtime  10 calls, 40 turns
  latency (ms)              n      p50      p90      p95      p99      max
  TTFA                     40    500.0    750.0    875.0   1000.0   1100.0
  TTFB                     40    400.0    600.0    700.0    800.0    880.0
  leading silence           0        —
  endpointing               0        —
  tool call                 0        —
  max silence               0        —
  barge-in stop             0        —
  barge-in ack              0        —
  STT                      40    120.0    180.0    210.0    240.0    264.0
  tool success           90.0%  (9/10 expected calls)
  barge-in success       80.0%  (4/5 barge-ins)
  false stop                —   (none measured)
  premature take-over       —   (none measured)
  error rate              5.0%  (2/40 turns: timeout 2)
  other tool calls    1 late

pacing: 30000 frames, lateness p50 0.210 ms, p99 0.800 ms, max 3.100 ms
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn an_overloaded_harness_says_so_and_names_the_figures_it_reaches() {
        let mut s = fixed();
        let lateness = |p50_ms, p99_ms, max_ms| LatenessSummary { samples: 3000, p50_ms, p99_ms, max_ms };
        s.harness = Some(HarnessSummary::judge(lateness(0.21, 0.8, 3.1), lateness(1.1, 1.6, 4.0), &["ttfa"]));
        let text = terminal_table(&s);
        assert!(text.contains("event-loop lag: p50 1.100 ms, p99 1.600 ms, max 4.000 ms\n"), "{text}");
        assert!(!text.contains("OVERLOADED"), "{text}");
        s.harness = Some(HarnessSummary::judge(lateness(1.4, 42.1, 110.0), lateness(1.1, 12.0, 30.0), &["ttfa"]));
        let text = terminal_table(&s);
        assert!(
            text.contains(
                "OVERLOADED harness: frames left late: pacing p99 42.10 ms > 5 ms; the event loop fell behind: lag \
                 p99 12.00 ms > 10 ms; these figures carry the harness's lateness, not the provider's: ttfa\n"
            ),
            "{text}"
        );
        // At normal priority the way out is named; at real-time priority there is nothing more to ask for.
        assert!(text.contains("the harness ran at normal priority: `voicebench run --realtime`"), "{text}");
        s.run.priority = Some("realtime".into());
        assert!(!terminal_table(&s).contains("--realtime"), "{}", terminal_table(&s));
    }

    #[test]
    fn real_targets_are_not_marked_simulated() {
        let mut s = fixed();
        s.targets[0].simulated = false;
        assert!(terminal_table(&s).starts_with("sim-native  openai-realtime"));
    }
}
