//! The plots of a report directory: TTFA CDFs (linear and log x), a histogram per latency metric, TTFA by turn
//! index, barge-in stop against its 2 s limit, the pipeline's TTFA by stage, one representative call's timeline
//! per target and tool-call success by tool. Each is drawn twice, PNG (text from an embedded font, so no system
//! fonts are needed) and SVG, into `<out>/plots/`.
//!
//! Input is only [`Report`] (a directory read back), so plots can be drawn for any report, old or new. Plots
//! without data are skipped, never drawn empty. Targets keep one colour everywhere (their order in
//! `report.targets`, Okabe–Ito palette), and a simulated target is labelled "(simulated)" in every title and legend.

mod data;
mod draw;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::model::Metric;
use crate::report::read::Report;
use draw::{Figure, Series};

/// One rendered plot: both files, relative to the report directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// File stem and anchor, e.g. `ttfa_cdf`, `hist_ttfb`, `timeline_sim-native`.
    pub id: String,
    /// The plot's title, naming every target (a simulated one as "name (simulated)"). It is drawn on the plot,
    /// unless it names too many targets to fit: then the drawn title counts them and how many are simulated, and the
    /// legend names each.
    pub title: String,
    /// One or two sentences saying what the plot shows and how it was chosen.
    pub caption: String,
    /// The target a per-target plot is about (`None` when it overlays several).
    pub target: Option<String>,
    /// `plots/<id>.png`.
    pub png: PathBuf,
    /// `plots/<id>.svg`.
    pub svg: PathBuf,
}

/// Why a plot could not be written.
#[derive(thiserror::Error, Debug)]
pub enum PlotError {
    /// A file or directory could not be created or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Drawing failed inside plotters.
    #[error("cannot draw plot `{id}`: {message}")]
    Draw {
        /// The plot's id.
        id: String,
        /// plotters' error.
        message: String,
    },
    /// The PNG encoder failed.
    #[error("cannot encode {path}: {source}")]
    Png {
        /// The PNG file.
        path: PathBuf,
        /// The cause.
        source: png::EncodingError,
    },
    /// The embedded font did not load (a build problem, not a data one).
    #[error("the embedded plot font (assets/fonts/DejaVuSans.ttf) is not a valid font")]
    Font,
    /// Nothing to draw.
    #[error("plot `{id}` has no data: {what}")]
    NoData {
        /// The plot's id.
        id: String,
        /// What was missing.
        what: String,
    },
}

/// The font every PNG's text is drawn with (DejaVu Sans; licence beside it). SVG names the family instead.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers [`FONT`] as plotters' "sans-serif", once per process (plotters' font table is global).
fn ensure_font() -> Result<(), PlotError> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Okabe–Ito: distinguishable with every common colour-vision deficiency. Blue and vermillion first, yellow
/// (weak on white) last.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xF0, 0xE4, 0x42),
];

/// A target's colour: its place in `report.targets`.
fn target_color(report: &Report, target: &str) -> RGBColor {
    let i = report.targets.iter().position(|t| t == target).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// A file-name-safe form of a target name.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// "a (simulated) vs b" for titles.
fn joined(labels: &[String]) -> String {
    labels.join(" vs ")
}

/// The barge-in limit of docs/metrics.md: still audible this long after the caller's onset is a failed barge-in.
const BARGE_IN_LIMIT_MS: f64 = 2000.0;

/// Draws every plot the report's data supports into `<out_dir>/plots/` (created), returns them in display order.
/// Plots without data (e.g. no pipeline target → no stage plot) are skipped, not drawn empty.
pub fn render_report(report: &Report, out_dir: &Path) -> Result<Vec<Plot>, PlotError> {
    ensure_font()?;
    let dir = out_dir.join("plots");
    std::fs::create_dir_all(&dir).map_err(|source| PlotError::Io { action: "create", path: dir.clone(), source })?;
    let targets: Vec<&String> = report.targets.iter().collect();
    let label = |t: &str| data::target_label(report, t);
    let series_of = |metric: Metric| -> Vec<Series> {
        targets
            .iter()
            .map(|t| Series {
                label: label(t),
                color: target_color(report, t),
                values: data::metric_values(report, t, metric),
            })
            .filter(|s| !s.values.is_empty())
            .collect()
    };
    let mut plots = Vec::new();
    let mut emit = |id: String, title: String, caption: String, target: Option<String>, fig: Figure| {
        fig.render(&dir, &id, &title)?;
        plots.push(Plot {
            png: PathBuf::from("plots").join(format!("{id}.png")),
            svg: PathBuf::from("plots").join(format!("{id}.svg")),
            id,
            title,
            caption,
            target,
        });
        Ok::<(), PlotError>(())
    };

    // TTFA CDFs.
    let ttfa = series_of(Metric::Ttfa);
    if !ttfa.is_empty() {
        let names = joined(&ttfa.iter().map(|s| s.label.clone()).collect::<Vec<_>>());
        let n: usize = ttfa.iter().map(|s| s.values.len()).sum();
        for log in [false, true] {
            let (id, scale) = if log { ("ttfa_cdf_log", "log") } else { ("ttfa_cdf", "linear") };
            emit(
                id.into(),
                format!("TTFA CDF ({scale} x): {names}"),
                format!(
                    "Fraction of turns whose time to first audio (user_eos → first audible agent sample) is at most x \
                     ms, {scale} x axis; {n} turns. ● marks each target's p50, ▲ its p95 (nearest rank, as the \
                     summary)."
                ),
                None,
                Figure::Cdf { series: ttfa.clone(), metric: Metric::Ttfa, log },
            )?;
        }
        // TTFA by turn index.
        let by_turn: Vec<_> = targets
            .iter()
            .map(|t| (label(t), target_color(report, t), data::ttfa_by_turn(report, t)))
            .filter(|s| !s.2.is_empty())
            .collect();
        let per_point = by_turn.iter().flat_map(|s| s.2.iter().map(|p| p.3));
        let (fewest, most) = per_point.fold((usize::MAX, 0), |(a, b), n| (a.min(n), b.max(n)));
        let per_point = if fewest == most { format!("{most}") } else { format!("{fewest} to {most}") };
        emit(
            "ttfa_by_turn".into(),
            format!("TTFA by turn: {names}"),
            format!(
                "p50 (solid, ●) and p95 (dashed, ▲) of TTFA at each turn of the scenario over all calls ({per_point} \
                 turns per point): drift within a call shows as a slope. A turn with no reply to time (a \
                 backchannel) leaves a gap."
            ),
            None,
            Figure::ByTurn { series: by_turn, turn_ids: data::turn_ids(report) },
        )?;
    }

    // Stage breakdown of pipeline targets.
    let bars: Vec<_> =
        targets.iter().filter_map(|t| data::stage_means(report, t).map(|(m, n)| (label(t), m, n))).collect();
    if !bars.is_empty() {
        let names = joined(&bars.iter().map(|b| b.0.clone()).collect::<Vec<_>>());
        emit(
            "ttfa_stages".into(),
            format!("TTFA by stage (means): {names}"),
            "Mean of each segment of a pipeline turn's TTFA, over the turns that have every stage stamp; the means \
             add up to the mean TTFA (percentiles would not)."
                .into(),
            None,
            Figure::Stages { bars },
        )?;
    }

    // Barge-in stop against the limit.
    let barge = series_of(Metric::BargeInStop);
    if !barge.is_empty() {
        let names = joined(&barge.iter().map(|s| s.label.clone()).collect::<Vec<_>>());
        let failed = report.turns.iter().filter(|t| t.barge_in_failed == Some(true)).count();
        emit(
            "barge_in_stop".into(),
            format!("Barge-in stop: {names}"),
            format!(
                "Distribution of barge-in stop latency (caller's onset → last agent sample heard) per target; the \
                 dashed line is the {BARGE_IN_LIMIT_MS:.0} ms limit past which a barge-in fails ({failed} failed)."
            ),
            None,
            Figure::Hist { series: barge, metric: Metric::BargeInStop, limit: Some(BARGE_IN_LIMIT_MS) },
        )?;
    }

    // Tool success by tool.
    let tools: Vec<_> = targets
        .iter()
        .map(|t| (label(t), target_color(report, t), data::tool_success(report, t)))
        .filter(|s| !s.2.is_empty())
        .collect();
    if !tools.is_empty() {
        let names = joined(&tools.iter().map(|s| s.0.clone()).collect::<Vec<_>>());
        emit(
            "tool_success".into(),
            format!("Tool-call success by tool: {names}"),
            "Per tool, the share of expected calls made in the right turn with matching arguments; the bar's label \
             is succeeded/expected."
                .into(),
            None,
            Figure::Tools { series: tools },
        )?;
    }

    // One representative call per target.
    for t in &targets {
        let Some((call, target_median, call_median)) = data::representative_call(report, t) else { continue };
        let turns: Vec<_> = data::call_turns(report, t, call).into_iter().cloned().collect();
        emit(
            format!("timeline_{}", slug(t)),
            format!("Call {call} timeline: {}", label(t)),
            format!(
                "One representative call: call {call}, the call whose median TTFA ({call_median:.0} ms) is closest \
                 to the target's median ({target_median:.0} ms). Lanes: the caller's speech, the agent's audio as \
                 the caller heard it, and events (endpointing, tool call complete, barge-in cut)."
            ),
            Some((*t).clone()),
            Figure::Timeline { turns, color: target_color(report, t) },
        )?;
    }

    // A histogram per latency metric with data (barge-in stop has its own plot above).
    for metric in Metric::ALL.into_iter().filter(|m| *m != Metric::BargeInStop) {
        let series = series_of(metric);
        if series.is_empty() {
            continue;
        }
        let names = joined(&series.iter().map(|s| s.label.clone()).collect::<Vec<_>>());
        emit(
            format!("hist_{metric}"),
            format!("{} distribution: {names}", metric.label()),
            format!(
                "Histogram of {} (ms, as docs/metrics.md defines it), as a share of each target's turns with a value, \
                 targets overlaid.",
                metric.label()
            ),
            None,
            Figure::Hist { series, metric, limit: None },
        )?;
    }
    Ok(plots)
}

/// An overlaid CDF of one metric for several labelled sample sets (ms), for `voicebench compare`: writes
/// `<out_dir>/<stem>.png/.svg`, plot paths relative to out_dir.
pub fn cdf_overlay(
    series: &[(String, Vec<f64>)],
    metric: Metric,
    out_dir: &Path,
    stem: &str,
) -> Result<Plot, PlotError> {
    ensure_font()?;
    let series: Vec<Series> = series
        .iter()
        .enumerate()
        .map(|(i, (label, v))| Series {
            label: label.clone(),
            color: PALETTE[i % PALETTE.len()],
            values: data::sorted(v.iter().copied()),
        })
        .filter(|s| !s.values.is_empty())
        .collect();
    if series.is_empty() {
        return Err(PlotError::NoData { id: stem.into(), what: format!("no {metric} samples in any series") });
    }
    std::fs::create_dir_all(out_dir).map_err(|source| PlotError::Io {
        action: "create",
        path: out_dir.to_owned(),
        source,
    })?;
    let names = joined(&series.iter().map(|s| s.label.clone()).collect::<Vec<_>>());
    let title = format!("{} CDF: {names}", metric.label());
    let n: usize = series.iter().map(|s| s.values.len()).sum();
    Figure::Cdf { series, metric, log: false }.render(out_dir, stem, &title)?;
    Ok(Plot {
        id: stem.into(),
        title,
        caption: format!(
            "Fraction of samples at most x ms, {n} samples; ● marks each set's p50, ▲ its p95 (nearest rank)."
        ),
        target: None,
        png: PathBuf::from(format!("{stem}.png")),
        svg: PathBuf::from(format!("{stem}.svg")),
    })
}

#[cfg(test)]
mod tests;
