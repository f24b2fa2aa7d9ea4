//! Which plots a report gets, in display order, with their titles and captions: one small function per kind of
//! plot, each returning nothing when the report has no data for it. Drawing is `draw`'s job, files `render_report`'s.

use super::data;
use super::draw::{Figure, Series};
use super::{BARGE_IN_LIMIT_MS, joined, slug, target_color};
use crate::model::Metric;
use crate::report::read::Report;

/// A plot to draw: what [`super::Plot`] records, and the figure.
pub(super) struct Planned {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub target: Option<String>,
    /// The call a per-call plot draws (the timeline).
    pub call: Option<u32>,
    pub fig: Figure,
}

fn planned(id: impl Into<String>, title: String, caption: String, fig: Figure) -> Planned {
    Planned { id: id.into(), title, caption, target: None, call: None, fig }
}

/// Every plot the report's data supports, in display order.
pub(super) fn plan(report: &Report) -> Vec<Planned> {
    let mut out = ttfa(report);
    out.extend(over_time(report));
    out.extend(stages(report));
    out.extend(barge_in(report));
    out.extend(tools(report));
    out.extend(timelines(report));
    out.extend(histograms(report));
    out
}

fn label(report: &Report, t: &str) -> String {
    data::target_label(report, t)
}

/// One series per target with values of `metric` (targets without any left out).
fn series_of(report: &Report, metric: Metric) -> Vec<Series> {
    report
        .targets
        .iter()
        .map(|t| Series {
            label: label(report, t),
            color: target_color(report, t),
            values: data::metric_values(report, t, metric),
        })
        .filter(|s| !s.values.is_empty())
        .collect()
}

fn names(series: &[Series]) -> String {
    joined(&series.iter().map(|s| s.label.clone()).collect::<Vec<_>>())
}

/// TTFA CDFs (linear and log x) and TTFA by turn index.
fn ttfa(report: &Report) -> Vec<Planned> {
    let ttfa = series_of(report, Metric::Ttfa);
    if ttfa.is_empty() {
        return Vec::new();
    }
    let names = names(&ttfa);
    let n: usize = ttfa.iter().map(|s| s.values.len()).sum();
    let mut out = Vec::new();
    for log in [false, true] {
        let (id, scale) = if log { ("ttfa_cdf_log", "log") } else { ("ttfa_cdf", "linear") };
        out.push(planned(
            id,
            format!("TTFA CDF ({scale} x): {names}"),
            format!(
                "Fraction of turns whose time to first audio (user_eos → first audible agent sample) is at most x \
                 ms, {scale} x axis; {n} turns. ● marks each target's p50, ▲ its p95 (nearest rank, as the \
                 summary)."
            ),
            Figure::Cdf { series: ttfa.clone(), metric: Metric::Ttfa, log },
        ));
    }
    let by_turn: Vec<_> = report
        .targets
        .iter()
        .map(|t| (label(report, t), target_color(report, t), data::ttfa_by_turn(report, t)))
        .filter(|s| !s.2.is_empty())
        .collect();
    let per_point = by_turn.iter().flat_map(|s| s.2.iter().map(|p| p.3));
    let (fewest, most) = per_point.fold((usize::MAX, 0), |(a, b), n| (a.min(n), b.max(n)));
    let per_point = if fewest == most { format!("{most}") } else { format!("{fewest} to {most}") };
    out.push(planned(
        "ttfa_by_turn",
        format!("TTFA by turn: {names}"),
        format!(
            "p50 (solid, ●) and p95 (dashed, ▲) of TTFA at each turn of the scenario over all calls ({per_point} \
             turns per point): drift within a call shows as a slope. A turn with no reply to time (a \
             backchannel) leaves a gap."
        ),
        Figure::ByTurn { series: by_turn, turn_ids: data::turn_ids(report) },
    ));
    out
}

/// TTFA p50/p95 per 10 s of run time, when the run spans at least three windows (degradation under load shows as a
/// slope), with the windows that had failed turns named in the caption.
fn over_time(report: &Report) -> Option<Planned> {
    let window_s = crate::metrics::windows::WINDOW_S;
    let mut failures = Vec::new();
    let series: Vec<_> = report
        .targets
        .iter()
        .map(|t| {
            let (points, failed) = data::ttfa_over_time(report, t);
            if !failed.is_empty() {
                let list: Vec<String> = failed.iter().map(|(s, n)| format!("{s} s: {n}")).collect();
                failures.push(format!("{} ({})", label(report, t), list.join(", ")));
            }
            (label(report, t), target_color(report, t), points)
        })
        .filter(|s| !s.2.is_empty())
        .collect();
    let windows = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).collect::<std::collections::BTreeSet<_>>();
    if windows.len() < 3 {
        return None;
    }
    let names = joined(&series.iter().map(|s| s.0.clone()).collect::<Vec<_>>());
    let failed = if failures.is_empty() {
        "No turn failed.".to_owned()
    } else {
        format!("Failed turns by window: {}.", failures.join("; "))
    };
    Some(planned(
        "ttfa_over_time",
        format!("TTFA over the run: {names}"),
        format!(
            "p50 (solid, ●) and p95 (dashed, ▲) of TTFA per {window_s} s of run time (a turn counts at its call's \
             start plus its end of speech), as summary.json's over_time: an agent that slows under load shows as a \
             slope. {failed}"
        ),
        Figure::OverTime { series, window_s },
    ))
}

/// The stage breakdown of pipeline targets.
fn stages(report: &Report) -> Option<Planned> {
    let bars: Vec<_> = report
        .targets
        .iter()
        .filter_map(|t| data::stage_means(report, t).map(|(m, n)| (label(report, t), m, n)))
        .collect();
    if bars.is_empty() {
        return None;
    }
    let names = joined(&bars.iter().map(|b| b.0.clone()).collect::<Vec<_>>());
    Some(planned(
        "ttfa_stages",
        format!("TTFA by stage (means): {names}"),
        "Mean of each segment of a pipeline turn's TTFA, over the turns that have every stage stamp; the means \
         add up to the mean TTFA (percentiles would not)."
            .into(),
        Figure::Stages { bars },
    ))
}

/// Barge-in stop latency against the limit.
fn barge_in(report: &Report) -> Option<Planned> {
    let barge = series_of(report, Metric::BargeInStop);
    if barge.is_empty() {
        return None;
    }
    let failed = report.turns.iter().filter(|t| t.barge_in_failed == Some(true)).count();
    Some(planned(
        "barge_in_stop",
        format!("Barge-in stop: {}", names(&barge)),
        format!(
            "Distribution of barge-in stop latency (caller's onset → last agent sample heard) per target; the \
             dashed line is the {BARGE_IN_LIMIT_MS:.0} ms limit past which a barge-in fails ({failed} failed)."
        ),
        Figure::Hist { series: barge, metric: Metric::BargeInStop, limit: Some(BARGE_IN_LIMIT_MS) },
    ))
}

/// Tool-call success by tool.
fn tools(report: &Report) -> Option<Planned> {
    let tools: Vec<_> = report
        .targets
        .iter()
        .map(|t| (label(report, t), target_color(report, t), data::tool_success(report, t)))
        .filter(|s| !s.2.is_empty())
        .collect();
    if tools.is_empty() {
        return None;
    }
    let names = joined(&tools.iter().map(|s| s.0.clone()).collect::<Vec<_>>());
    Some(planned(
        "tool_success",
        format!("Tool-call success by tool: {names}"),
        "Per tool, the share of expected calls made in the right turn with matching arguments; the bar's label \
         is succeeded/expected."
            .into(),
        Figure::Tools { series: tools },
    ))
}

/// One representative call per target.
fn timelines(report: &Report) -> Vec<Planned> {
    let mut out = Vec::new();
    for t in &report.targets {
        let Some((call, target_median, call_median)) = data::representative_call(report, t) else { continue };
        let turns: Vec<_> = data::call_turns(report, t, call).into_iter().cloned().collect();
        out.push(Planned {
            id: format!("timeline_{}", slug(t)),
            title: format!("Call {call} timeline: {}", label(report, t)),
            caption: format!(
                "One representative call: call {call}, the call whose median TTFA ({call_median:.0} ms) is closest \
                 to the target's median ({target_median:.0} ms). Lanes: the caller's speech, the agent's audio as \
                 the caller heard it, and events (endpointing, tool call complete, barge-in cut)."
            ),
            target: Some(t.clone()),
            call: Some(call),
            fig: Figure::Timeline { turns, color: target_color(report, t) },
        });
    }
    out
}

/// A histogram per latency metric with data (barge-in stop has its own plot).
fn histograms(report: &Report) -> Vec<Planned> {
    let mut out = Vec::new();
    for metric in Metric::ALL.into_iter().filter(|m| *m != Metric::BargeInStop) {
        let series = series_of(report, metric);
        if series.is_empty() {
            continue;
        }
        out.push(planned(
            format!("hist_{metric}"),
            format!("{} distribution: {}", metric.label(), names(&series)),
            format!(
                "Histogram of {} (ms, as docs/metrics.md defines it), as a share of each target's turns with a \
                 value, targets overlaid.",
                metric.label()
            ),
            Figure::Hist { series, metric, limit: None },
        ));
    }
    out
}
