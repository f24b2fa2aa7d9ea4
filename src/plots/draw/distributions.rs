//! The distributions of a metric: the CDF (linear or log x, p50 and p95 marked) and overlaid histograms (with
//! their range and bin width chosen from the data).

use super::*;

pub(super) fn draw_cdf<DB: DrawingBackend>(
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
pub(super) fn hist_range(series: &[Series], limit: Option<f64>) -> (f64, f64, f64, Option<f64>) {
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

pub(super) fn draw_hist<DB: DrawingBackend>(
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
