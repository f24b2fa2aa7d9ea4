//! The breakdowns: TTFA by turn index, the pipeline's TTFA by stage, one call's timeline and tool success by
//! tool.

use super::*;

pub(super) fn draw_by_turn<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[TurnSeries],
    turn_ids: &BTreeMap<u32, String>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let label = |i: u32| turn_ids.get(&i).map_or(format!("{i}"), |id| format!("{i} {id}"));
    draw_p50_p95(root, title, series, "turn (index and id); a gap is a turn with no reply to time", &label)
}

/// TTFA p50 and p95 per window of run time (x: the window's start).
pub(super) fn draw_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[TurnSeries],
    window_s: u32,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let label = |i: u32| format!("{} s", i * window_s);
    draw_p50_p95(root, title, series, "run time (window start); a gap is a window without a TTFA", &label)
}

/// p50 (solid, ●) and p95 (dashed, ▲) lines over integer x points, joined only between consecutive points.
fn draw_p50_p95<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[TurnSeries],
    x_desc: &str,
    x_label: &dyn Fn(u32) -> String,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let first = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).min().unwrap_or(0);
    let last = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).max().unwrap_or(0);
    // At most ~12 labelled ticks, however many points.
    let every = ((last - first) / 12 + 1).max(1);
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
        Axis::linear(
            f64::from(first) - 0.5,
            f64::from(last) + 0.5,
            (first..=last).step_by(every as usize).map(f64::from).collect(),
        ),
        Axis::linear(0.0, ymax, ticks(0.0, ymax, ystep)),
    )?;
    let label = |v: &f64| x_label(v.round() as u32);
    chart
        .configure_mesh()
        .x_desc(x_desc)
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

pub(super) fn draw_stages<DB: DrawingBackend>(
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

pub(super) fn draw_timeline<DB: DrawingBackend>(
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

pub(super) fn draw_tools<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[ToolSeries],
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
