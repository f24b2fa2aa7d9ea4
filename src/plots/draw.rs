//! The drawing of each plot, generic over plotters' backend so one function draws both the PNG (bitmap into a
//! buffer, encoded by the `png` crate) and the SVG. Files are written to a temporary name and renamed, so a
//! failed draw never leaves a blank image behind.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::data::{self, bin_fractions, cdf_steps, nice_step, quantile};
use crate::metrics::stages::SEGMENTS;
use crate::model::{Metric, TurnRecord};

type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const FONT: &str = "sans-serif";
const TITLE_PX: u32 = 24;
const LABEL_PX: u32 = 16;
const SMALL_PX: u32 = 14;
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// One labelled set of samples (sorted, ms) in its colour.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: String,
    pub color: RGBColor,
    pub values: Vec<f64>,
}

/// One target's TTFA by turn: label, colour, `(turn, p50, p95, n)` per turn.
pub(crate) type TurnSeries = (String, RGBColor, Vec<(u32, f64, f64, usize)>);

/// One target's tool success: label, colour, `(tool, succeeded, expected)` per tool.
pub(crate) type ToolSeries = (String, RGBColor, Vec<(String, u32, u32)>);

/// A plot's data, ready to draw.
pub(crate) enum Figure {
    /// Empirical CDFs overlaid.
    Cdf { series: Vec<Series>, metric: Metric, log: bool },
    /// Histograms overlaid, with an optional vertical limit line (ms).
    Hist { series: Vec<Series>, metric: Metric, limit: Option<f64> },
    /// Per target: `(turn, p50, p95, n)`.
    ByTurn { series: Vec<TurnSeries>, turn_ids: BTreeMap<u32, String> },
    /// Per pipeline target: label, mean of each segment, turns.
    Stages { bars: Vec<(String, [f64; 7], usize)> },
    /// One call's turns.
    Timeline { turns: Vec<TurnRecord>, color: RGBColor },
    /// Per target: label, colour, `(tool, succeeded, expected)`.
    Tools { series: Vec<ToolSeries> },
}

/// Segment colours of the stage breakdown (Okabe–Ito, in chain order; not target colours).
const SEGMENT_COLORS: [RGBColor; 7] = [
    RGBColor(0x99, 0x99, 0x99),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
];

fn font(px: u32) -> TextStyle<'static> {
    (FONT, px).into_font().color(&INK)
}

fn anchored(px: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    font(px).pos(Pos::new(h, v))
}

/// "1234" / "12.5" / "0.8": enough digits for a tick or a label.
fn ms(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Points `lo, lo+step, …` up to `hi` (for explicit ticks).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut x = (lo / step).ceil() * step;
    while x <= hi + step * 1e-9 {
        v.push(if x.abs() < step * 1e-9 { 0.0 } else { x });
        x += step;
    }
    v
}

/// A numeric axis with exactly the ticks given, linear or log. (plotters' `with_key_points` does the same but its
/// wrapper has no label formatter in 0.3.7, so a chart on it cannot draw its mesh.)
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    fn linear(lo: f64, hi: f64, ticks: Vec<f64>) -> Axis {
        Axis { lo, hi, log: false, ticks }
    }

    fn log(lo: f64, hi: f64) -> Axis {
        Axis { lo, hi, log: true, ticks: log_ticks(lo, hi) }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = if self.log {
            let v = value.max(self.lo * 1e-3);
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (value - self.lo) / (self.hi - self.lo)
        };
        // Far outside the axis: clamp, so a stray value cannot overflow the pixel maths.
        let f = if f.is_finite() { f.clamp(-4.0, 5.0) } else { 0.0 };
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl Figure {
    /// Pixel size.
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Stages { bars } => (1200, 200 + 90 * bars.len() as u32),
            Figure::Timeline { .. } => (1600, 460),
            _ => (1200, 700),
        }
    }

    /// Draws onto any backend.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match self {
            Figure::Cdf { series, metric, log } => draw_cdf(root, title, series, *metric, *log),
            Figure::Hist { series, metric, limit } => draw_hist(root, title, series, *metric, *limit),
            Figure::ByTurn { series, turn_ids } => draw_by_turn(root, title, series, turn_ids),
            Figure::Stages { bars } => draw_stages(root, title, bars),
            Figure::Timeline { turns, color } => draw_timeline(root, title, turns, *color),
            Figure::Tools { series } => draw_tools(root, title, series),
        }?;
        root.present()?;
        Ok(())
    }

    /// Writes `<dir>/<id>.png` and `<dir>/<id>.svg`.
    pub(crate) fn render(&self, dir: &Path, id: &str, title: &str) -> Result<(), PlotError> {
        let (w, h) = self.size();
        let draw_err =
            |e: Box<dyn std::error::Error + Send + Sync>| PlotError::Draw { id: id.into(), message: e.to_string() };
        let mut rgb = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root, title).map_err(draw_err)?;
        }
        let png_path = dir.join(format!("{id}.png"));
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let png_err = |source| PlotError::Png { path: png_path.clone(), source };
            let mut writer = enc.write_header().map_err(png_err)?;
            writer.write_image_data(&rgb).map_err(png_err)?;
            writer.finish().map_err(png_err)?;
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            self.draw(&root, title).map_err(draw_err)?;
        }
        write_atomic(&png_path, &png_bytes)?;
        write_atomic(&dir.join(format!("{id}.svg")), svg.as_bytes())
    }
}

/// Writes to `<path>.tmp`, then renames over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|source| PlotError::Io { action: "write", path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| PlotError::Io { action: "write", path: path.to_owned(), source })
}

/// Key points for a log axis: 1, 2, 5 × 10^k over wide spans; every 1…9 × 10^k under ~1.5 decades, and 1.2, 1.5,
/// 2.5 too under a factor of 5 (else a one-decade axis has two or three labels).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mults: &[f64] = if hi / lo < 5.0 {
        &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    } else if hi / lo < 30.0 {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let mut v = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in mults {
            let x = decade * m;
            if x >= lo && x <= hi {
                v.push(x);
            }
        }
        decade *= 10.0;
    }
    v
}

/// A tick label: the value with no more decimals than it needs (at most 3).
fn tick(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A legend's line for a series: label, n, p50 and p95.
fn stats_label(s: &Series) -> String {
    format!(
        "{}: n {}, p50 {} ms, p95 {} ms",
        s.label,
        s.values.len(),
        ms(quantile(&s.values, 0.5)),
        ms(quantile(&s.values, 0.95))
    )
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Line,
    Dashed,
    /// A solid box.
    Box,
    /// A light box with a solid outline (an overlaid histogram).
    Outlined,
    Down,
    Diamond,
    Cross,
}

/// One legend entry.
struct Key {
    label: String,
    color: RGBColor,
    mark: Mark,
}

fn key(label: impl Into<String>, color: RGBColor, mark: Mark) -> Key {
    Key { label: label.into(), color, mark }
}

/// Draws a legend under the plot, centred, wrapping into rows, and returns the area left above it. Legends live
/// outside the data so they can never hide it.
fn legend_below<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    keys: &[Key],
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error + Send + Sync>>
where
    DB::ErrorType: 'static,
{
    const SWATCH: i32 = 30;
    const GAP: i32 = 28;
    const ROW: i32 = 26;
    let (w, h) = root.dim_in_pixel();
    let style = font(LABEL_PX);
    let mut widths = Vec::new();
    for k in keys {
        widths.push(root.estimate_text_size(&k.label, &style)?.0 as i32 + SWATCH + 8);
    }
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0;
    for (i, &wi) in widths.iter().enumerate() {
        let row = rows.last_mut().expect("one row");
        if !row.is_empty() && used + GAP + wi > w as i32 - 40 {
            rows.push(vec![i]);
            used = wi;
        } else {
            used += if row.is_empty() { wi } else { GAP + wi };
            row.push(i);
        }
    }
    let legend_h = rows.len() as u32 * ROW as u32 + 12;
    let (top, bottom) = root.split_vertically(h.saturating_sub(legend_h));
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|&i| widths[i]).sum::<i32>() + GAP * (row.len() as i32 - 1);
        let mut x = ((w as i32 - total) / 2).max(0);
        let y = r as i32 * ROW + ROW / 2;
        for &i in row {
            let Key { label, color, mark } = &keys[i];
            draw_mark(&bottom, *mark, *color, (x + SWATCH / 2, y))?;
            bottom.draw(&Text::new(
                label.clone(),
                (x + SWATCH + 6, y),
                anchored(LABEL_PX, HPos::Left, VPos::Center),
            ))?;
            x += widths[i] + GAP;
        }
    }
    Ok(top)
}

/// A legend swatch centred at a pixel.
fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    c: RGBColor,
    (x, y): (i32, i32),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    match mark {
        Mark::Line => area.draw(&PathElement::new(vec![(x - 14, y), (x + 14, y)], c.stroke_width(3)))?,
        Mark::Dashed => area.draw(&DashedPathElement::new(vec![(x - 14, y), (x + 14, y)], 6, 4, c.stroke_width(2)))?,
        Mark::Box => area.draw(&Rectangle::new([(x - 12, y - 8), (x + 12, y + 8)], c.filled()))?,
        Mark::Outlined => {
            area.draw(&Rectangle::new([(x - 12, y - 8), (x + 12, y + 8)], c.mix(0.3).filled()))?;
            area.draw(&Rectangle::new([(x - 12, y - 8), (x + 12, y + 8)], c.stroke_width(2)))?;
        }
        Mark::Down => area.draw(&Polygon::new(vec![(x - 7, y - 7), (x + 7, y - 7), (x, y + 7)], c.filled()))?,
        Mark::Diamond => area.draw(&Polygon::new(vec![(x, y - 8), (x + 8, y), (x, y + 8), (x - 8, y)], c.filled()))?,
        Mark::Cross => {
            area.draw(&PathElement::new(vec![(x - 7, y - 7), (x + 7, y + 7)], c.stroke_width(3)))?;
            area.draw(&PathElement::new(vec![(x + 7, y - 7), (x - 7, y + 7)], c.stroke_width(3)))?;
        }
    }
    Ok(())
}

/// The chart builder every plot starts from: title, margins (room on the right for the last tick label), label
/// areas.
fn builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_label_px: u32,
) -> ChartBuilder<'a, 'b, DB> {
    // A title naming many targets shrinks to fit rather than running off the image.
    let width = area.dim_in_pixel().0.saturating_sub(24);
    let mut px = TITLE_PX;
    while px > 12 && area.estimate_text_size(title, &font(px)).is_ok_and(|(w, _)| w > width) {
        px -= 1;
    }
    // Still too long (many targets): the targets go to the legend, which names each one, and the title keeps the
    // count and how many are simulated.
    let short;
    let title = if px == 12 && area.estimate_text_size(title, &font(px)).is_ok_and(|(w, _)| w > width) {
        px = TITLE_PX;
        let (head, tail) = title.split_once(": ").unwrap_or((title, ""));
        let n = tail.split(" vs ").count();
        let sim = tail.matches("(simulated)").count();
        short = match sim {
            0 => format!("{head}: {n} targets (see the legend)"),
            s if s == n => format!("{head}: {n} targets, all simulated (see the legend)"),
            s => format!("{head}: {n} targets, {s} of them simulated (see the legend)"),
        };
        short.as_str()
    } else {
        title
    };
    let mut b = ChartBuilder::on(area);
    b.caption(title, font(px)).margin(14).margin_right(36).x_label_area_size(52).y_label_area_size(y_label_px);
    b
}

fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    metric: Metric,
    log: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let lo = series.iter().map(|s| s.values[0]).fold(f64::INFINITY, f64::min);
    let hi = series.iter().map(|s| *s.values.last().unwrap_or(&0.0)).fold(0.0, f64::max);
    let x_desc = format!("{} (ms){}", metric.label(), if log { ", log scale" } else { "" });
    let y_ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
    let x = if log {
        // Values ≤ 0 cannot sit on a log axis: they are drawn at its left end.
        let lo = (lo.max(1.0) / 1.15).max(0.5);
        let hi = (hi * 1.15).max(lo * 2.0);
        Axis::log(lo, hi)
    } else {
        // From 0 (an absolute latency scale) unless the data sit far from it.
        let lo = if lo >= 0.0 && lo < 0.5 * hi {
            0.0
        } else if lo >= 0.0 {
            lo - (hi - lo) * 0.05
        } else {
            lo * 1.05
        };
        let step = nice_step(hi * 1.02 - lo, 10.0).max(1e-6);
        let (lo, hi) = ((lo / step).floor() * step, ((hi * 1.02) / step).ceil().max(1.0) * step);
        Axis::linear(lo, hi, ticks(lo, hi, step))
    };
    let x0 = x.lo;
    let mut chart = builder(root, title, 70).build_cartesian_2d(x, Axis::linear(0.0, 1.0, y_ticks))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("fraction of turns ≤ x")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    let (l, r) = (chart.x_range().start, chart.x_range().end);
    for (q, name) in [(0.5, "p50 ●"), (0.95, "p95 ▲")] {
        chart.draw_series(DashedLineSeries::new([(l, q), (r, q)], 4, 4, MUTED.stroke_width(1)))?;
        chart.draw_series(std::iter::once(Text::new(
            name,
            (r, q),
            anchored(SMALL_PX, HPos::Right, VPos::Bottom).color(&MUTED),
        )))?;
    }
    for s in series {
        let color = s.color;
        let pts: Vec<(f64, f64)> = cdf_steps(&s.values).into_iter().map(|(x, y)| (x.max(x0), y)).collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(3)))?
            .label(stats_label(s))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        let p50 = quantile(&s.values, 0.5).max(x0);
        let p95 = quantile(&s.values, 0.95).max(x0);
        chart.draw_series(std::iter::once(Circle::new((p50, 0.5), 7, color.filled())))?;
        chart.draw_series(std::iter::once(TriangleMarker::new((p95, 0.95), 9, color.filled())))?;
    }
    // A CDF leaves its lower right empty: the legend goes there.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .margin(12)
        .label_font(font(LABEL_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(MUTED)
        .draw()?;
    Ok(())
}

/// The x range and bin width of overlaid histograms: the data's range padded by 5 % (from 0 when the data start
/// near it), a long tail cut at 1.5 × the largest p99, at least `limit × 1.1`; bins of a round width, about
/// 2·√n (10 to 50) of them across the data (at most ~150 across the axis). Returns `(lo, hi, bin, cut)`, `cut` the value past which samples are not shown.
fn hist_range(series: &[Series], limit: Option<f64>) -> (f64, f64, f64, Option<f64>) {
    let min = series.iter().map(|s| s.values[0]).fold(f64::INFINITY, f64::min);
    let mut max = series.iter().map(|s| *s.values.last().unwrap_or(&0.0)).fold(f64::NEG_INFINITY, f64::max);
    let p99 = series.iter().map(|s| quantile(&s.values, 0.99)).fold(f64::NEG_INFINITY, f64::max);
    let cut = (max > p99 * 1.5 && p99 > min).then_some(p99 * 1.5);
    if let Some(c) = cut {
        max = c;
    }
    // Bins follow the data's spread, not the axis (which a limit line may stretch far past the data).
    let data_span = max - min;
    if let Some(l) = limit {
        max = max.max(l * 1.1);
    }
    let (mut lo, mut hi) = if max - min < 1e-9 {
        // All one value: a window around it.
        let half = (min.abs() * 0.1).max(5.0);
        (if min >= 0.0 { (min - half).max(0.0) } else { min - half }, min + half)
    } else {
        let pad = (max - min) * 0.05;
        (if min >= 0.0 && min < 0.25 * max { 0.0 } else { min - pad }, max + pad)
    };
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(1) as f64;
    let bins = (2.0 * n.sqrt()).clamp(10.0, 50.0);
    let bin = if data_span > 1e-9 { nice_step(data_span, bins) } else { nice_step(hi - lo, bins) };
    let bin = bin.max(nice_step(hi - lo, 150.0));
    lo = (lo / bin).floor() * bin;
    hi = (hi / bin).ceil() * bin;
    (lo, hi, bin, cut)
}

fn draw_hist<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    metric: Metric,
    limit: Option<f64>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (lo, hi, bin, cut) = hist_range(series, limit);
    let bins = ((hi - lo) / bin).round().max(1.0) as usize;
    let fractions: Vec<Vec<f64>> = series.iter().map(|s| bin_fractions(&s.values, lo, hi, bins)).collect();
    let top = fractions.iter().flatten().fold(0.0f64, |a, &b| a.max(b)) * 100.0;
    let ystep = nice_step(top, 8.0);
    let ymax = if top > 0.0 { top * 1.12 } else { 1.0 };
    let y_ticks: Vec<f64> = ticks(0.0, ymax, ystep).into_iter().filter(|v| *v <= 100.0).collect();
    let keys: Vec<Key> = series.iter().map(|s| key(stats_label(s), s.color, Mark::Outlined)).collect();
    let area = legend_below(root, &keys)?;
    let mut chart = builder(&area, title, 70).build_cartesian_2d(
        Axis::linear(lo, hi, ticks(lo, hi, nice_step(hi - lo, 10.0))),
        Axis::linear(0.0, ymax, y_ticks),
    )?;
    let hidden: usize = cut.map_or(0, |c| series.iter().map(|s| s.values.iter().filter(|v| **v > c).count()).sum());
    let mut x_desc = format!("{} (ms), bins of {} ms", metric.label(), tick(&bin));
    if series.iter().all(|s| s.values[0] == s.values[s.values.len() - 1] && s.values[0] == series[0].values[0]) {
        x_desc.push_str(&format!("; every value is {} ms", ms(series[0].values[0])));
    }
    if hidden > 0 {
        x_desc.push_str(&format!("; {hidden} value(s) above {} ms not shown", ms(hi)));
    }
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("share of turns (%)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_x_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    for (s, f) in series.iter().zip(&fractions) {
        let color = s.color;
        let x = |i: usize| lo + i as f64 * bin;
        chart.draw_series(
            f.iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, v)| Rectangle::new([(x(i), 0.0), (x(i + 1), v * 100.0)], color.mix(0.25).filled())),
        )?;
        // The outline of each run of non-empty bins (not along the axis, where it would hide the other targets).
        let mut i = 0;
        while i < f.len() {
            if f[i] == 0.0 {
                i += 1;
                continue;
            }
            let mut run = vec![(x(i), 0.0)];
            while i < f.len() && f[i] > 0.0 {
                run.push((x(i), f[i] * 100.0));
                run.push((x(i + 1), f[i] * 100.0));
                i += 1;
            }
            run.push((x(i), 0.0));
            chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
        }
    }
    if let Some(l) = limit {
        chart.draw_series(DashedLineSeries::new([(l, 0.0), (l, ymax)], 8, 5, BLACK.stroke_width(2)))?;
        // Left of the line, a few pixels off it.
        chart.draw_series(std::iter::once(
            EmptyElement::at((l, ymax * 0.97))
                + Text::new(
                    format!("{} ms limit: still audible → barge-in failed", ms(l)),
                    (-8, 0),
                    anchored(LABEL_PX, HPos::Right, VPos::Top),
                ),
        ))?;
    }
    Ok(())
}

fn draw_by_turn<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[TurnSeries],
    turn_ids: &BTreeMap<u32, String>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let last = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).max().unwrap_or(0);
    let top = series.iter().flat_map(|s| s.2.iter().map(|p| p.2)).fold(0.0, f64::max) * 1.1;
    let ystep = nice_step(top, 8.0);
    let ymax = (top / ystep).ceil().max(1.0) * ystep;
    let mut keys = Vec::new();
    for (name, color, _) in series {
        keys.push(key(format!("{name} p50"), *color, Mark::Line));
        keys.push(key(format!("{name} p95"), *color, Mark::Dashed));
    }
    let area = legend_below(root, &keys)?;
    let mut chart = builder(&area, title, 70).build_cartesian_2d(
        Axis::linear(-0.5, f64::from(last) + 0.5, (0..=last).map(f64::from).collect()),
        Axis::linear(0.0, ymax, ticks(0.0, ymax, ystep)),
    )?;
    let label = |v: &f64| {
        let i = v.round() as u32;
        turn_ids.get(&i).map_or(format!("{i}"), |id| format!("{i} {id}"))
    };
    chart
        .configure_mesh()
        .x_desc("turn (index and id); a gap is a turn with no reply to time")
        .y_desc("TTFA (ms)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .x_label_formatter(&label)
        .y_label_formatter(&tick)
        .draw()?;
    for (_, color, pts) in series {
        let color = *color;
        // Lines join consecutive turns only: a turn without a TTFA (a backchannel) breaks them.
        let mut runs: Vec<Vec<&(u32, f64, f64, usize)>> = Vec::new();
        for p in pts {
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|q| q.0 + 1 == p.0) => run.push(p),
                _ => runs.push(vec![p]),
            }
        }
        for run in &runs {
            chart.draw_series(LineSeries::new(run.iter().map(|p| (f64::from(p.0), p.1)), color.stroke_width(3)))?;
            chart.draw_series(DashedLineSeries::new(
                run.iter().map(|p| (f64::from(p.0), p.2)),
                10,
                6,
                color.stroke_width(2),
            ))?;
        }
        chart.draw_series(pts.iter().map(|p| Circle::new((f64::from(p.0), p.1), 6, color.filled())))?;
        chart.draw_series(pts.iter().map(|p| TriangleMarker::new((f64::from(p.0), p.2), 7, color.filled())))?;
    }
    Ok(())
}

/// A segment's name as the stage plot writes it.
fn segment_title(s: &str) -> String {
    match s {
        "llm_ttft" => "LLM TTFT".into(),
        "tts_ttfb" => "TTS TTFB".into(),
        other => other.replace('_', " "),
    }
}

fn draw_stages<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    bars: &[(String, [f64; 7], usize)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let keys: Vec<Key> =
        SEGMENTS.iter().zip(SEGMENT_COLORS).map(|(s, c)| key(segment_title(s), c, Mark::Box)).collect();
    let area = legend_below(root, &keys)?;
    let total_max = bars.iter().map(|b| b.1.iter().map(|v| v.max(0.0)).sum::<f64>()).fold(0.0, f64::max);
    // Room on the right for "= total ms (n turns)".
    let step = nice_step(total_max * 1.3, 10.0);
    let xmax = (total_max * 1.3 / step).ceil().max(1.0) * step;
    let n = bars.len();
    let mut y_label_px = 0;
    for b in bars {
        y_label_px = y_label_px.max(root.estimate_text_size(&b.0, &font(LABEL_PX))?.0 + 24);
    }
    let mut chart = builder(&area, title, y_label_px).build_cartesian_2d(
        Axis::linear(0.0, xmax, ticks(0.0, xmax, step)),
        Axis::linear(-0.6, n as f64 - 0.4, (0..n).map(|i| i as f64).collect()),
    )?;
    let name = |v: &f64| bars.get(v.round() as usize).map_or(String::new(), |b| b.0.clone());
    chart
        .configure_mesh()
        .x_desc("mean time from the caller's end of speech (ms); segments add up to the mean TTFA")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_y_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&name)
        .draw()?;
    let plot_px = f64::from(chart.plotting_area().dim_in_pixel().0);
    for (i, (_, means, turns)) in bars.iter().enumerate() {
        let y = i as f64;
        let mut at = 0.0;
        for (k, &v) in means.iter().enumerate() {
            let v = v.max(0.0);
            let rect = [(at, y - 0.3), (at + v, y + 0.3)];
            chart.draw_series(std::iter::once(Rectangle::new(rect, SEGMENT_COLORS[k].filled())))?;
            chart.draw_series(std::iter::once(Rectangle::new(rect, WHITE.stroke_width(1))))?;
            // The value inside the segment when it fits; white on the dark colours.
            if v / xmax * plot_px > 30.0 {
                let dark = matches!(k, 3 | 5);
                let style = anchored(SMALL_PX, HPos::Center, VPos::Center);
                let style = if dark { style.color(&WHITE) } else { style };
                chart.draw_series(std::iter::once(Text::new(format!("{v:.0}"), (at + v / 2.0, y), style)))?;
            }
            at += v;
        }
        chart.draw_series(std::iter::once(Text::new(
            format!(" = {at:.0} ms ({turns} turns)"),
            (at, y),
            anchored(LABEL_PX, HPos::Left, VPos::Center),
        )))?;
    }
    Ok(())
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    turns: &[TurnRecord],
    color: RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    const CALLER: RGBColor = RGBColor(0x77, 0x77, 0x77);
    const ENDPOINT: RGBColor = RGBColor(0x00, 0x00, 0x00);
    const TOOL: RGBColor = RGBColor(0x00, 0x9E, 0x73);
    const CUT: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
    let keys = [
        key("caller speech (onset → user_eos)", CALLER, Mark::Box),
        key("agent audio as heard", color, Mark::Box),
        key("endpointing (user_eos + endpointing)", ENDPOINT, Mark::Down),
        key("tool call complete", TOOL, Mark::Diamond),
        key("barge-in cut (onset + stop)", CUT, Mark::Cross),
    ];
    let area = legend_below(root, &keys)?;
    let end = turns
        .iter()
        .flat_map(|t| [Some(t.user_eos_ms), t.agent_audio_end_ms, t.agent_audio_start_ms])
        .flatten()
        .fold(0.0, f64::max);
    let step = nice_step(end, 16.0);
    let xmax = (end * 1.02 / step).ceil().max(1.0) * step;
    let mut chart = builder(&area, title, 170).build_cartesian_2d(
        Axis::linear(0.0, xmax, ticks(0.0, xmax, step)),
        Axis::linear(0.0, 3.4, vec![0.5, 1.5, 2.5]),
    )?;
    let lane = |v: &f64| match (*v * 2.0).round() as i32 {
        1 => "events".to_owned(),
        3 => "agent audio (heard)".to_owned(),
        5 => "caller speech".to_owned(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .x_desc("ms from the call's t0")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_y_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&lane)
        .draw()?;
    for (i, t) in turns.iter().enumerate() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(t.user_onset_ms, 2.25), (t.user_eos_ms, 2.75)],
            CALLER.mix(0.8).filled(),
        )))?;
        // Turn ids in two staggered rows so neighbours do not overlap.
        let y = if i % 2 == 0 { 2.88 } else { 3.18 };
        chart.draw_series(std::iter::once(Text::new(
            format!("{} {}", t.turn, t.turn_id),
            (t.user_onset_ms, y),
            anchored(SMALL_PX, HPos::Left, VPos::Center),
        )))?;
        if let (Some(a), Some(b)) = (t.agent_audio_start_ms, t.agent_audio_end_ms) {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(a, 1.25), (b.max(a), 1.75)],
                color.mix(0.85).filled(),
            )))?;
        }
        if let Some(e) = t.endpointing_ms {
            marker(&mut chart, t.user_eos_ms + e, ENDPOINT, Mark::Down)?;
        }
        if let Some(tc) = t.tool_call_ms {
            marker(&mut chart, t.user_eos_ms + tc, TOOL, Mark::Diamond)?;
        }
        if data::is_barge_in(t)
            && let Some(s) = t.barge_in_stop_ms
        {
            marker(&mut chart, t.user_onset_ms + s, CUT, Mark::Cross)?;
        }
    }
    Ok(())
}

/// An event marker on the timeline's events lane.
fn marker<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    x: f64,
    c: RGBColor,
    mark: Mark,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let at = EmptyElement::at((x, 0.5));
    match mark {
        Mark::Down => {
            chart.draw_series(std::iter::once(at + Polygon::new(vec![(-7, -7), (7, -7), (0, 7)], c.filled())))?
        }
        Mark::Diamond => {
            chart.draw_series(std::iter::once(at + Polygon::new(vec![(0, -8), (8, 0), (0, 8), (-8, 0)], c.filled())))?
        }
        _ => chart.draw_series(std::iter::once(
            at + PathElement::new(vec![(-7, -7), (7, 7)], c.stroke_width(3))
                + PathElement::new(vec![(7, -7), (-7, 7)], c.stroke_width(3)),
        ))?,
    };
    Ok(())
}

fn draw_tools<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, series: &[ToolSeries]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut tools: Vec<String> = Vec::new();
    for (_, _, v) in series {
        for (name, ..) in v {
            if !tools.contains(name) {
                tools.push(name.clone());
            }
        }
    }
    let keys: Vec<Key> = series.iter().map(|(l, c, _)| key(l.clone(), *c, Mark::Box)).collect();
    let area = legend_below(root, &keys)?;
    let n = tools.len();
    let mut chart = builder(&area, title, 70).build_cartesian_2d(
        Axis::linear(-0.5, n as f64 - 0.5, (0..n).map(|i| i as f64).collect()),
        Axis::linear(0.0, 110.0, ticks(0.0, 100.0, 10.0)),
    )?;
    let tool_name = |v: &f64| tools.get(v.round() as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .x_desc("tool")
        .y_desc("expected calls that succeeded (%)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_x_mesh()
        .x_label_formatter(&tool_name)
        .y_label_formatter(&tick)
        .draw()?;
    // Bars of one tool side by side, at most 0.8 of the slot and at most 0.25 each (two tools and one target
    // should not make a wall of colour).
    let width = (0.8 / series.len() as f64).min(0.25);
    let group = width * series.len() as f64;
    for (k, (_, color, v)) in series.iter().enumerate() {
        let color = *color;
        for (name, ok, expected) in v {
            let Some(i) = tools.iter().position(|t| t == name) else { continue };
            let x0 = i as f64 - group / 2.0 + k as f64 * width;
            let pct = if *expected > 0 { f64::from(*ok) / f64::from(*expected) * 100.0 } else { 0.0 };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0 + width * 0.06, 0.0), (x0 + width * 0.94, pct)],
                color.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{ok}/{expected} ({pct:.0}%)"),
                (x0 + width / 2.0, pct + 1.0),
                anchored(LABEL_PX, HPos::Center, VPos::Bottom),
            )))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>) -> Series {
        Series { label: "a".into(), color: BLACK, values }
    }

    #[test]
    fn log_ticks_are_round_and_dense_enough_on_a_short_axis() {
        let t = log_ticks(652.0, 3163.0);
        assert_eq!(t, vec![700.0, 800.0, 900.0, 1000.0, 1200.0, 1500.0, 2000.0, 2500.0, 3000.0]);
        assert_eq!(log_ticks(1.0, 10_000.0).len(), 13);
        let a = Axis::log(100.0, 10_000.0);
        assert_eq!(a.map(&1000.0, (0, 200)), 100);
        // Values at or below zero land left of the axis, clamped, not at i32::MIN.
        assert!(a.map(&0.0, (0, 200)) >= -800);
    }

    #[test]
    fn tick_labels_carry_only_the_digits_they_need() {
        assert_eq!(tick(&50.0), "50");
        assert_eq!(tick(&2.5), "2.5");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(ticks(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn histogram_ranges_follow_the_data() {
        // A narrow distribution far from 0 is not squashed against a 0-based axis.
        let (lo, hi, bin, cut) = hist_range(&[series((0..56).map(|i| 490.0 + f64::from(i % 18)).collect())], None);
        assert!(lo >= 480.0 && hi <= 520.0 && bin <= 2.0 && cut.is_none(), "{lo} {hi} {bin}");
        // A limit stretches the axis but not the bins.
        let (lo, hi, bin, _) =
            hist_range(&[series((0..8).map(|i| 180.0 + 15.0 * f64::from(i)).collect())], Some(2000.0));
        assert!(lo == 0.0 && hi >= 2200.0 && bin <= 20.0, "{lo} {hi} {bin}");
        // One far outlier is cut and counted.
        let mut v: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i)).collect();
        v.push(100_000.0);
        let (_, hi, _, cut) = hist_range(&[series(v)], None);
        assert!(cut.is_some() && hi < 1000.0, "{hi}");
        // All one value: a window around it.
        let (lo, hi, _, _) = hist_range(&[series(vec![0.0; 8])], None);
        assert!(lo == 0.0 && hi > 0.0);
    }
}
