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

use super::data::{self, bin_fractions, cdf_steps, nice_step, quantile};
use super::{PlotError, metric_title};
use crate::caller::record::TurnRecord;
use crate::metrics::stages::SEGMENTS;

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

/// A plot's data, ready to draw.
pub(crate) enum Figure {
    /// Empirical CDFs overlaid.
    Cdf { series: Vec<Series>, metric: String, log: bool },
    /// Histograms overlaid, with an optional vertical limit line (ms).
    Hist { series: Vec<Series>, metric: String, limit: Option<f64> },
    /// Per target: `(turn, p50, p95, n)`.
    ByTurn { series: Vec<(String, RGBColor, Vec<(u32, f64, f64, usize)>)>, turn_ids: BTreeMap<u32, String> },
    /// Per pipeline target: label, mean of each segment, turns.
    Stages { bars: Vec<(String, [f64; 7], usize)> },
    /// One call's turns.
    Timeline { turns: Vec<TurnRecord>, color: RGBColor },
    /// Per target: label, colour, `(tool, succeeded, expected)`.
    Tools { series: Vec<(String, RGBColor, Vec<(String, u32, u32)>)> },
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
            Figure::Stages { bars } => (1200, 190 + 90 * bars.len() as u32),
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
            Figure::Cdf { series, metric, log } => draw_cdf(root, title, series, metric, *log),
            Figure::Hist { series, metric, limit } => draw_hist(root, title, series, metric, *limit),
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

/// Key points for a log axis: 1, 2, 5 × 10^k inside `[lo, hi]`.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let x = decade * m;
            if x >= lo && x <= hi {
                v.push(x);
            }
        }
        decade *= 10.0;
    }
    v
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

fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    metric: &str,
    log: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let lo = series.iter().map(|s| s.values[0]).fold(f64::INFINITY, f64::min);
    let hi = series.iter().map(|s| *s.values.last().unwrap_or(&0.0)).fold(0.0, f64::max);
    let x_desc = format!("{} (ms){}", metric_title(metric), if log { ", log scale" } else { "" });
    let y_ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, font(TITLE_PX)).margin(16).x_label_area_size(50).y_label_area_size(70);
    if log {
        let lo = (lo.max(1.0) * 0.8).max(0.5);
        let hi = (hi * 1.25).max(lo * 10.0);
        let mut chart = builder.build_cartesian_2d(Axis::log(lo, hi), Axis::linear(0.0, 1.0, y_ticks))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("fraction of turns ≤ x")
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(LABEL_PX))
            .bold_line_style(GRID)
            .x_label_formatter(&|v| ms(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        cdf_body(&mut chart, series, lo)?;
    } else {
        let lo = if lo >= 0.0 { 0.0 } else { lo * 1.05 };
        let step = nice_step(hi * 1.05 - lo, 10.0);
        let hi = ((hi * 1.02) / step).ceil() * step;
        let mut chart =
            builder.build_cartesian_2d(Axis::linear(lo, hi, ticks(lo, hi, step)), Axis::linear(0.0, 1.0, y_ticks))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("fraction of turns ≤ x")
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(LABEL_PX))
            .bold_line_style(GRID)
            .x_label_formatter(&|v| ms(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        cdf_body(&mut chart, series, lo)?;
    }
    Ok(())
}

/// The curves, p50/p95 markers and legend of a CDF on either x scale. `x0` is the axis' left end (where each
/// staircase starts at 0).
fn cdf_body<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    series: &[Series],
    x0: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for q in [0.5, 0.95] {
        let (l, r) = (chart.x_range().start, chart.x_range().end);
        chart.draw_series(DashedLineSeries::new([(l, q), (r, q)], 4, 4, MUTED.stroke_width(1)))?;
        chart.draw_series(std::iter::once(Text::new(
            if q == 0.5 { "p50" } else { "p95" },
            (r, q),
            anchored(SMALL_PX, HPos::Right, VPos::Bottom).color(&MUTED),
        )))?;
    }
    for s in series {
        let color = s.color;
        let mut pts = vec![(x0, 0.0)];
        pts.extend(cdf_steps(&s.values).into_iter().map(|(x, y)| (x.max(x0), y)));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(3)))?
            .label(stats_label(s))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        let p50 = quantile(&s.values, 0.5).max(x0);
        let p95 = quantile(&s.values, 0.95).max(x0);
        chart.draw_series(std::iter::once(Circle::new((p50, 0.5), 7, color.filled())))?;
        chart.draw_series(std::iter::once(TriangleMarker::new((p95, 0.95), 9, color.filled())))?;
    }
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

fn draw_hist<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    metric: &str,
    limit: Option<f64>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let lo = series.iter().map(|s| s.values[0]).fold(f64::INFINITY, f64::min).min(0.0);
    let mut hi = series.iter().map(|s| *s.values.last().unwrap_or(&0.0)).fold(f64::NEG_INFINITY, f64::max);
    // A long tail would squash the bulk into a few bins: past 1.5 × the largest p99, cut and say so.
    let p99 = series.iter().map(|s| quantile(&s.values, 0.99)).fold(f64::NEG_INFINITY, f64::max);
    let clip = (hi > p99 * 1.5 && p99 > lo).then_some(p99 * 1.5);
    if let Some(c) = clip {
        hi = c;
    }
    if let Some(l) = limit {
        hi = hi.max(l * 1.1);
    }
    if hi <= lo {
        hi = lo + 10.0;
    }
    let bin = nice_step(hi - lo, 40.0);
    let (lo, hi) = ((lo / bin).floor() * bin, (hi / bin).ceil() * bin);
    let bins = ((hi - lo) / bin).round().max(1.0) as usize;
    let fractions: Vec<Vec<f64>> = series.iter().map(|s| bin_fractions(&s.values, lo, hi, bins)).collect();
    let ymax = fractions.iter().flatten().fold(0.0f64, |a, &b| a.max(b)) * 100.0 * 1.15;
    let ymax = if ymax > 0.0 { ymax } else { 1.0 };
    let step = nice_step(hi - lo, 10.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(TITLE_PX))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            Axis::linear(lo, hi, ticks(lo, hi, step)),
            Axis::linear(0.0, ymax, ticks(0.0, ymax, nice_step(ymax, 8.0))),
        )?;
    let clipped: usize = clip.map_or(0, |c| series.iter().map(|s| s.values.iter().filter(|v| **v > c).count()).sum());
    let x_desc = if clipped > 0 {
        format!("{} (ms); {clipped} value(s) above {} ms not shown", metric_title(metric), ms(hi))
    } else {
        format!("{} (ms)", metric_title(metric))
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("share of turns (%)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_x_mesh()
        .x_label_formatter(&|v| ms(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
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
        let mut outline = vec![(lo, 0.0)];
        for (i, v) in f.iter().enumerate() {
            outline.push((x(i), v * 100.0));
            outline.push((x(i + 1), v * 100.0));
        }
        outline.push((hi, 0.0));
        chart
            .draw_series(LineSeries::new(outline, color.stroke_width(2)))?
            .label(stats_label(s))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], color.mix(0.6).filled()));
    }
    if let Some(l) = limit {
        chart.draw_series(DashedLineSeries::new([(l, 0.0), (l, ymax)], 8, 5, BLACK.stroke_width(2)))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{} ms limit: still audible → barge-in failed", ms(l)),
            (l, ymax * 0.97),
            anchored(LABEL_PX, HPos::Right, VPos::Top),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .label_font(font(LABEL_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(MUTED)
        .draw()?;
    Ok(())
}

fn draw_by_turn<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[(String, RGBColor, Vec<(u32, f64, f64, usize)>)],
    turn_ids: &BTreeMap<u32, String>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let last = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).max().unwrap_or(0);
    let ymax = series.iter().flat_map(|s| s.2.iter().map(|p| p.2)).fold(0.0, f64::max) * 1.15;
    let ystep = nice_step(ymax, 8.0);
    let ymax = (ymax / ystep).ceil() * ystep;
    let x_ticks: Vec<f64> = (0..=last).map(f64::from).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(TITLE_PX))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            Axis::linear(-0.5, f64::from(last) + 0.5, x_ticks),
            Axis::linear(0.0, ymax, ticks(0.0, ymax, ystep)),
        )?;
    let label = |v: &f64| {
        let i = v.round() as u32;
        turn_ids.get(&i).map_or(format!("{i}"), |id| format!("{i} {id}"))
    };
    chart
        .configure_mesh()
        .x_desc("turn (index and id)")
        .y_desc("TTFA (ms)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .x_label_formatter(&label)
        .y_label_formatter(&|v| ms(*v))
        .draw()?;
    for (name, color, pts) in series {
        let color = *color;
        let p50: Vec<(f64, f64)> = pts.iter().map(|p| (f64::from(p.0), p.1)).collect();
        let p95: Vec<(f64, f64)> = pts.iter().map(|p| (f64::from(p.0), p.2)).collect();
        chart
            .draw_series(LineSeries::new(p50.clone(), color.stroke_width(3)))?
            .label(format!("{name} p50"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        chart.draw_series(p50.iter().map(|&p| Circle::new(p, 6, color.filled())))?;
        chart
            .draw_series(DashedLineSeries::new(p95.clone(), 10, 6, color.stroke_width(2)))?
            .label(format!("{name} p95"))
            .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, color.stroke_width(2)));
        chart.draw_series(p95.iter().map(|&p| TriangleMarker::new(p, 7, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(12)
        .label_font(font(LABEL_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(MUTED)
        .draw()?;
    Ok(())
}

fn draw_stages<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    bars: &[(String, [f64; 7], usize)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (_, h) = root.dim_in_pixel();
    let (plot_area, legend_area) = root.split_vertically(h - 50);
    let total_max = bars.iter().map(|b| b.1.iter().sum::<f64>()).fold(0.0, f64::max);
    let step = nice_step(total_max * 1.25, 10.0);
    let xmax = (total_max * 1.25 / step).ceil() * step;
    let n = bars.len();
    let y_keys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let y_label_px = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(10) as u32 * 9 + 20;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, font(TITLE_PX))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(y_label_px)
        .build_cartesian_2d(
            Axis::linear(0.0, xmax, ticks(0.0, xmax, step)),
            Axis::linear(-0.6, n as f64 - 0.4, y_keys),
        )?;
    let name = |v: &f64| bars.get(v.round() as usize).map_or(String::new(), |b| b.0.clone());
    chart
        .configure_mesh()
        .x_desc("mean time from the caller's end of speech (ms)")
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(LABEL_PX))
        .bold_line_style(GRID)
        .disable_y_mesh()
        .x_label_formatter(&|v| ms(*v))
        .y_label_formatter(&name)
        .draw()?;
    // Pixels per ms, to decide which segments have room for their value.
    let plot_px = f64::from(chart.plotting_area().dim_in_pixel().0);
    for (i, (_, means, turns)) in bars.iter().enumerate() {
        let y = i as f64;
        let mut at = 0.0;
        for (k, &v) in means.iter().enumerate() {
            let v = v.max(0.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(at, y - 0.3), (at + v, y + 0.3)],
                SEGMENT_COLORS[k].filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(at, y - 0.3), (at + v, y + 0.3)],
                WHITE.stroke_width(1),
            )))?;
            if v / xmax * plot_px > 42.0 {
                chart.draw_series(std::iter::once(Text::new(
                    format!("{v:.0}"),
                    (at + v / 2.0, y),
                    anchored(SMALL_PX, HPos::Center, VPos::Center),
                )))?;
            }
            at += v;
        }
        chart.draw_series(std::iter::once(Text::new(
            format!("= {at:.0} ms ({turns} turns)"),
            (at + xmax * 0.01, y),
            anchored(LABEL_PX, HPos::Left, VPos::Center),
        )))?;
    }
    let items: Vec<(String, RGBColor)> =
        SEGMENTS.iter().zip(SEGMENT_COLORS).map(|(s, c)| (s.replace('_', " "), c)).collect();
    legend_row(&legend_area, &items)?;
    Ok(())
}

/// A row of colour swatches and names, centred in `area`.
fn legend_row<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, items: &[(String, RGBColor)]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let widths: Vec<i32> = items.iter().map(|(s, _)| s.chars().count() as i32 * 9 + 50).collect();
    let mut x = (w as i32 - widths.iter().sum::<i32>()).max(0) / 2;
    let y = h as i32 / 2;
    for ((name, color), width) in items.iter().zip(widths) {
        area.draw(&Rectangle::new([(x, y - 8), (x + 22, y + 8)], color.filled()))?;
        area.draw(&Text::new(name.clone(), (x + 28, y), anchored(LABEL_PX, HPos::Left, VPos::Center)))?;
        x += width;
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
    let (_, h) = root.dim_in_pixel();
    let (plot_area, legend_area) = root.split_vertically(h - 50);
    let end = turns
        .iter()
        .flat_map(|t| [Some(t.user_eos_ms), t.agent_audio_end_ms, t.agent_audio_start_ms])
        .flatten()
        .fold(0.0, f64::max);
    let step = nice_step(end, 16.0);
    let xmax = (end * 1.02 / step).ceil() * step;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, font(TITLE_PX))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(170)
        .build_cartesian_2d(
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
        .x_label_formatter(&|v| ms(*v))
        .y_label_formatter(&lane)
        .draw()?;
    for (i, t) in turns.iter().enumerate() {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(t.user_onset_ms, 2.25), (t.user_eos_ms, 2.75)],
            CALLER.mix(0.8).filled(),
        )))?;
        // Turn ids in two staggered rows so neighbours do not overlap.
        let y = if i % 2 == 0 { 2.85 } else { 3.15 };
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
            marker(&mut chart, t.user_eos_ms + e, ENDPOINT, 0)?;
        }
        if let Some(tc) = t.tool_call_ms {
            marker(&mut chart, t.user_eos_ms + tc, TOOL, 1)?;
        }
        if data::is_barge_in(t)
            && let Some(s) = t.barge_in_stop_ms
        {
            marker(&mut chart, t.user_onset_ms + s, CUT, 2)?;
        }
    }
    // Legend: lanes and markers.
    let (w, lh) = legend_area.dim_in_pixel();
    let y = lh as i32 / 2;
    let items: [(&str, u8, RGBColor); 5] = [
        ("caller speech", 9, CALLER),
        ("agent audio as heard", 9, color),
        ("endpointing (user_eos + endpointing)", 0, ENDPOINT),
        ("tool call complete", 1, TOOL),
        ("barge-in cut (onset + stop)", 2, CUT),
    ];
    let widths: Vec<i32> = items.iter().map(|(s, ..)| s.chars().count() as i32 * 9 + 56).collect();
    let mut x = (w as i32 - widths.iter().sum::<i32>()).max(0) / 2;
    for ((name, shape, c), width) in items.iter().zip(widths) {
        let c = *c;
        match shape {
            0 => legend_area.draw(&Polygon::new(vec![(x + 4, y - 8), (x + 18, y - 8), (x + 11, y + 6)], c.filled()))?,
            1 => legend_area
                .draw(&Polygon::new(vec![(x + 11, y - 8), (x + 19, y), (x + 11, y + 8), (x + 3, y)], c.filled()))?,
            2 => {
                legend_area.draw(&PathElement::new(vec![(x + 4, y - 7), (x + 18, y + 7)], c.stroke_width(3)))?;
                legend_area.draw(&PathElement::new(vec![(x + 18, y - 7), (x + 4, y + 7)], c.stroke_width(3)))?;
            }
            _ => legend_area.draw(&Rectangle::new([(x, y - 8), (x + 22, y + 8)], c.filled()))?,
        }
        legend_area.draw(&Text::new(name.to_string(), (x + 28, y), anchored(LABEL_PX, HPos::Left, VPos::Center)))?;
        x += width;
    }
    Ok(())
}

/// An event marker on the timeline's events lane: 0 a down triangle, 1 a diamond, 2 a cross.
fn marker<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    x: f64,
    c: RGBColor,
    shape: u8,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let at = EmptyElement::at((x, 0.5));
    match shape {
        0 => chart.draw_series(std::iter::once(at + Polygon::new(vec![(-7, -8), (7, -8), (0, 6)], c.filled())))?,
        1 => {
            chart.draw_series(std::iter::once(at + Polygon::new(vec![(0, -8), (8, 0), (0, 8), (-8, 0)], c.filled())))?
        }
        _ => chart.draw_series(std::iter::once(
            at + PathElement::new(vec![(-7, -7), (7, 7)], c.stroke_width(3))
                + PathElement::new(vec![(7, -7), (-7, 7)], c.stroke_width(3)),
        ))?,
    };
    Ok(())
}

fn draw_tools<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[(String, RGBColor, Vec<(String, u32, u32)>)],
) -> DrawResult
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
    let n = tools.len();
    let keys: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(TITLE_PX))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            Axis::linear(-0.5, n as f64 - 0.5, keys),
            Axis::linear(0.0, 118.0, ticks(0.0, 100.0, 10.0)),
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
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let group = 0.8;
    let width = group / series.len() as f64;
    for (k, (label, color, v)) in series.iter().enumerate() {
        let color = *color;
        let mut bars = Vec::new();
        let mut texts = Vec::new();
        for (name, ok, expected) in v {
            let Some(i) = tools.iter().position(|t| t == name) else { continue };
            let x0 = i as f64 - group / 2.0 + k as f64 * width;
            let pct = if *expected > 0 { f64::from(*ok) / f64::from(*expected) * 100.0 } else { 0.0 };
            bars.push(Rectangle::new([(x0 + width * 0.05, 0.0), (x0 + width * 0.95, pct)], color.filled()));
            texts.push(Text::new(
                format!("{ok}/{expected} ({pct:.0}%)"),
                (x0 + width / 2.0, pct + 1.0),
                anchored(LABEL_PX, HPos::Center, VPos::Bottom),
            ));
        }
        chart
            .draw_series(bars)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 22, y + 7)], color.filled()));
        chart.draw_series(texts)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .label_font(font(LABEL_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(MUTED)
        .draw()?;
    Ok(())
}
