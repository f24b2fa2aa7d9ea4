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
mod plan;

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
    /// The call a per-call plot draws (the timeline).
    pub call: Option<u32>,
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
    let mut plots = Vec::new();
    for p in plan::plan(report) {
        p.fig.render(&dir, &p.id, &p.title)?;
        plots.push(Plot {
            png: PathBuf::from("plots").join(format!("{}.png", p.id)),
            svg: PathBuf::from("plots").join(format!("{}.svg", p.id)),
            id: p.id,
            title: p.title,
            caption: p.caption,
            target: p.target,
            call: p.call,
        });
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
        call: None,
        png: PathBuf::from(format!("{stem}.png")),
        svg: PathBuf::from(format!("{stem}.svg")),
    })
}

#[cfg(test)]
mod tests;
