//! Tests of the plots: a synthetic report (two targets, one a simulated pipeline with stage stamps, barge-in and
//! tool turns) is drawn into a temporary directory, and every file is checked: PNGs decode at their size and are
//! not blank, SVGs are SVG and carry their title, and plots without data are skipped.

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::model::{TurnKind, TurnRecord};

/// Call `call` of `target`: three turns (plain, tool, barge-in), TTFAs scaled by `scale`.
fn call_turns(target: &str, simulated: bool, pipeline: bool, call: u32, scale: f64) -> Vec<TurnRecord> {
    let mut out = Vec::new();
    let mut t0 = 1000.0;
    for turn in 0..3u32 {
        let ttfa = scale * (600.0 + 40.0 * f64::from(call) + 25.0 * f64::from(turn));
        let onset = t0;
        let eos = onset + 1500.0;
        let kind = [TurnKind::Plain, TurnKind::Tool, TurnKind::BargeIn][turn as usize];
        let mut r = TurnRecord {
            target: target.into(),
            simulated,
            call,
            turn,
            turn_id: ["greet", "ask_table", "barge_in"][turn as usize].into(),
            kind: Some(kind),
            user_onset_ms: onset,
            user_eos_ms: eos,
            ttfa_ms: Some(ttfa),
            ttfb_ms: Some(ttfa - 20.0),
            leading_silence_ms: Some(20.0),
            endpointing_ms: Some(200.0 + f64::from(call)),
            agent_audio_start_ms: Some(eos + ttfa),
            agent_audio_end_ms: Some(eos + ttfa + 2500.0),
            ..Default::default()
        };
        if kind == TurnKind::Tool {
            r.tool_call_ms = Some(300.0);
            r.tools_expected = 1;
            r.tools_expected_names = "check_availability".into();
            // Every third call fails the tool.
            if !call.is_multiple_of(3) {
                r.tools_succeeded = 1;
                r.tools_succeeded_names = "check_availability".into();
            }
        }
        if kind == TurnKind::BargeIn {
            r.barge_in_stop_ms = Some(scale * (300.0 + 200.0 * f64::from(call)));
            r.barge_in_failed = Some(scale * (300.0 + 200.0 * f64::from(call)) > 2000.0);
        }
        if pipeline {
            let e = r.endpointing_ms.unwrap();
            r.stt_ms = Some(e + 100.0);
            r.llm_start_ms = Some(e + 150.0);
            r.llm_ttft_ms = Some(ttfa * 0.4);
            r.tts_start_ms = Some(e + 150.0 + ttfa * 0.4 + 30.0);
            r.tts_ttfb_ms = Some(ttfa - (e + 150.0 + ttfa * 0.4 + 30.0) - 20.0);
        }
        out.push(r);
        t0 = eos + ttfa + 3000.0;
    }
    out
}

fn report(with_pipeline: bool) -> Report {
    let mut turns = Vec::new();
    for call in 0..6 {
        turns.extend(call_turns("native-a", false, false, call, 1.0));
        turns.extend(call_turns("sim pipe/b", true, with_pipeline, call, 1.8));
    }
    Report {
        dir: ".".into(),
        summary: None,
        turns,
        calls: vec![],
        targets: vec!["native-a".into(), "sim pipe/b".into()],
    }
}

/// Width, height and number of distinct colours of a PNG.
fn decode_png(path: &Path) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let colours: HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    (info.width, info.height, colours.len())
}

#[test]
fn every_plot_is_drawn_decodes_and_names_simulated_targets() {
    let dir = tempfile::tempdir().unwrap();
    let plots = render_report(&report(true), dir.path()).unwrap();
    let ids: Vec<&str> = plots.iter().map(|p| p.id.as_str()).collect();
    for want in ["ttfa_cdf", "ttfa_cdf_log", "ttfa_by_turn", "ttfa_stages", "barge_in_stop", "tool_success"] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert!(ids.contains(&"timeline_native-a") && ids.contains(&"timeline_sim-pipe-b"), "{ids:?}");
    assert!(ids.contains(&"hist_ttfa") && ids.contains(&"hist_llm_ttft") && ids.contains(&"hist_endpointing"));
    // Metrics without data get no histogram; barge-in stop has its own plot.
    assert!(!ids.contains(&"hist_talk_over") && !ids.contains(&"hist_barge_in_stop"), "{ids:?}");
    for p in &plots {
        assert_eq!(p.png, Path::new("plots").join(format!("{}.png", p.id)));
        assert_eq!(p.svg, Path::new("plots").join(format!("{}.svg", p.id)));
        let (w, h, colours) = decode_png(&dir.path().join(&p.png));
        let want = if p.id.starts_with("timeline_") {
            (1600, 460)
        } else if p.id == "ttfa_stages" {
            (1200, 290)
        } else {
            (1200, 700)
        };
        assert_eq!((w, h), want, "{}", p.id);
        // Text, axes and at least one target colour: far more than the white background.
        assert!(colours > 20, "{}: {colours} colours", p.id);
        let svg = std::fs::read_to_string(dir.path().join(&p.svg)).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}", p.id);
        assert!(svg.trim_end().ends_with("</svg>"), "{}", p.id);
        // The title is in the SVG as text (XML-escaped).
        let escaped = p.title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(svg.contains(&escaped), "{}: title {:?} not in the SVG", p.id, p.title);
        // The simulated target is labelled so wherever it is named.
        if p.title.contains("sim pipe/b") {
            assert!(p.title.contains("sim pipe/b (simulated)"), "{}", p.title);
        }
        assert!(!p.title.contains("native-a (simulated)"), "{}", p.title);
        assert!(!p.caption.is_empty());
        // No temporary file is left.
        assert!(!dir.path().join("plots").join(format!("{}.png.tmp", p.id)).exists());
    }
    let timeline = plots.iter().find(|p| p.id == "timeline_sim-pipe-b").unwrap();
    assert_eq!(timeline.target.as_deref(), Some("sim pipe/b"));
    assert!(timeline.caption.contains("closest"), "{}", timeline.caption);
    assert!(plots.iter().find(|p| p.id == "ttfa_stages").unwrap().title.contains("sim pipe/b (simulated)"));
    // Display order: the CDFs first.
    assert_eq!(&ids[..2], &["ttfa_cdf", "ttfa_cdf_log"]);
}

#[test]
fn plots_without_data_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // No stage stamps: no stage plot.
    let ids: Vec<String> = render_report(&report(false), dir.path()).unwrap().into_iter().map(|p| p.id).collect();
    assert!(!ids.iter().any(|i| i == "ttfa_stages"), "{ids:?}");
    assert!(!ids.iter().any(|i| i == "hist_stt"), "{ids:?}");
    assert!(!dir.path().join("plots/ttfa_stages.png").exists());
    // No barge-in and no tools: neither plot.
    let mut r = report(false);
    for t in &mut r.turns {
        t.barge_in_stop_ms = None;
        t.barge_in_failed = None;
        t.tools_expected_names.clear();
        t.tools_succeeded_names.clear();
    }
    let ids: Vec<String> = render_report(&r, dir.path()).unwrap().into_iter().map(|p| p.id).collect();
    assert!(!ids.iter().any(|i| i == "barge_in_stop" || i == "tool_success"), "{ids:?}");
    // No turns at all: nothing, and no error.
    r.turns.clear();
    assert!(render_report(&r, dir.path()).unwrap().is_empty());
}

#[test]
fn a_cdf_overlay_writes_both_files_and_refuses_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let series = vec![
        ("base (simulated)".to_owned(), (1..200).map(|i| f64::from(i) * 7.0).collect()),
        ("new (simulated)".to_owned(), (1..150).map(|i| f64::from(i) * 8.5).collect()),
        ("empty".to_owned(), vec![]),
    ];
    let p = cdf_overlay(&series, Metric::Ttfa, dir.path(), "compare_ttfa").unwrap();
    assert_eq!(p.png, Path::new("compare_ttfa.png"));
    let (w, h, colours) = decode_png(&dir.path().join(&p.png));
    assert_eq!((w, h), (1200, 700));
    assert!(colours > 20);
    let svg = std::fs::read_to_string(dir.path().join(&p.svg)).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("base (simulated)") && !svg.contains("empty:"));
    let e = cdf_overlay(&[("x".into(), vec![])], Metric::Ttfa, dir.path(), "none").unwrap_err();
    assert!(matches!(e, PlotError::NoData { .. }), "{e}");
    assert!(!dir.path().join("none.png").exists());
}

#[test]
fn a_write_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let e = render_report(&report(true), &file).unwrap_err();
    assert!(matches!(e, PlotError::Io { .. }) && e.to_string().contains("not-a-dir"), "{e}");
}

#[test]
fn a_long_title_is_drawn_whole() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<(String, Vec<f64>)> =
        (0..9).map(|i| (format!("a-rather-long-target-name-{i} (simulated)"), vec![100.0 + f64::from(i); 5])).collect();
    let p = cdf_overlay(&series, Metric::Ttfb, dir.path(), "many").unwrap();
    let svg = std::fs::read_to_string(dir.path().join(&p.svg)).unwrap();
    // Nine series: the ninth colour wraps round the palette, and every label is in the legend.
    assert!(svg.contains("a-rather-long-target-name-8 (simulated)"));
    // The title would not fit: the drawn one counts the targets and says they are simulated.
    assert!(svg.contains("TTFB CDF: 9 targets, all simulated (see the legend)"), "{}", p.title);
    let (w, h, _) = decode_png(&dir.path().join(&p.png));
    assert_eq!((w, h), (1200, 700));
    if let Some(out) = std::env::var_os("VOICEBENCH_PLOTS_LOOK") {
        std::fs::copy(dir.path().join(&p.png), Path::new(&out).join("many.png")).unwrap();
    }
}

/// Draws the plots of a real report directory: `VOICEBENCH_PLOTS_DIR=reports/… cargo test --lib
/// plots::tests::render_dir -- --ignored` (for looking at them).
#[test]
#[ignore]
fn render_dir() {
    let dir = std::env::var_os("VOICEBENCH_PLOTS_DIR").expect("set VOICEBENCH_PLOTS_DIR");
    let report = Report::read(Path::new(&dir), false).unwrap();
    for p in render_report(&report, Path::new(&dir)).unwrap() {
        println!("{}  {}\n    {}", p.png.display(), p.title, p.caption);
    }
}
