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

mod breakdowns;
mod distributions;

use breakdowns::{draw_by_turn, draw_stages, draw_timeline, draw_tools};
use distributions::{draw_cdf, draw_hist};

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
    /// Per target: `(window, p50, p95, turns)`, windows of `window_s` seconds of run time.
    OverTime { series: Vec<TurnSeries>, window_s: u32 },
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
            Figure::OverTime { series, window_s } => breakdowns::draw_over_time(root, title, series, *window_s),
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

#[cfg(test)]
mod tests {
    use super::distributions::hist_range;
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
