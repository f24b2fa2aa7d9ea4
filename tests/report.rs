//! Reports people look at: snapshots of `report.md`, the terminal summary and the head-to-head table (from a
//! frozen real run in tests/fixtures/report-small), `voicebench report` rebuilding a directory's pages and plots
//! from the directory alone, and `voicebench compare` on two runs of sim profiles whose true ratio is known.

use std::path::{Path, PathBuf};

use voicebench::run::bench::{join, native_run};

use super::{root, text, voicebench};

/// A copy of the frozen report directory (rendering writes into it).
pub(crate) fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("report-small");
    std::fs::create_dir(&dir).unwrap();
    for f in ["summary.json", "turns.jsonl", "calls.csv"] {
        std::fs::copy(root().join("tests/fixtures/report-small").join(f), dir.join(f)).unwrap();
    }
    (tmp, dir)
}

fn summary(dir: &Path) -> voicebench::report::Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn report_rebuilds_pages_from_the_directory_alone() {
    let (tmp, dir) = fixture();
    let o = voicebench(tmp.path(), &["report", dir.to_str().unwrap()]);
    let (code, out, err) = text(&o);
    assert_eq!(code, 0, "{out}{err}");
    for f in ["index.html", "report.md", "compare.md", "compare.json"] {
        assert!(dir.join(f).is_file(), "{f} missing; {out}{err}");
    }

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    insta::assert_snapshot!("report_md", md);

    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<h1>voicebench: booking</h1>"));
    assert!(html.contains("sim-native (simulated)") && html.contains("sim-pipeline (simulated)"));
    assert!(!html.contains("http://") && !html.contains("https://"), "the page must not reach the network");
    assert!(!html.contains("<script"), "no script: nothing to fail in a browser");
    // Links go only to files that exist (the fixture has no ground truth and no histograms.hlog).
    for href in html.split("href=\"").skip(1).filter_map(|s| s.split('"').next()) {
        if !href.starts_with('#') {
            assert!(dir.join(href).is_file(), "dead link {href}");
        }
    }
    // Every plot the page names is on disk, decodes, and is embedded.
    let plots: Vec<PathBuf> = std::fs::read_dir(dir.join("plots")).unwrap().map(|e| e.unwrap().path()).collect();
    let pngs: Vec<&PathBuf> = plots.iter().filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    assert!(pngs.len() >= 7, "plots: {plots:?}");
    for png in &pngs {
        let (w, h) = png_size(png);
        assert!(w >= 600 && h >= 200, "{}: {w}×{h}", png.display());
        // The SVG is the same drawing: same size, whole document.
        let svg = png.with_extension("svg");
        let s = std::fs::read_to_string(&svg).unwrap();
        assert!(s.contains("<svg") && s.trim_end().ends_with("</svg>"), "{}", svg.display());
        let attr = |name: &str| -> u32 {
            let at = s.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("{}: no {name}", svg.display()));
            s[at + name.len() + 3..].split('"').next().unwrap().parse().unwrap()
        };
        assert_eq!((attr("width"), attr("height")), (w, h), "{}", svg.display());
    }
    assert_eq!(html.matches("data:image/svg+xml;base64,").count(), pngs.len(), "every plot embedded once");
}

/// Width and height of a PNG, after decoding every pixel row.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let first = &buf[..info.line_size];
    assert!(buf[..info.buffer_size()].chunks(info.line_size).any(|row| row != first), "{}: blank", path.display());
    (info.width, info.height)
}

#[test]
fn terminal_and_compare_snapshots() {
    let (tmp, dir) = fixture();
    insta::assert_snapshot!("terminal", voicebench::report::terminal_table(&summary(&dir)));
    let o = voicebench(tmp.path(), &["compare", dir.to_str().unwrap()]);
    let (code, out, err) = text(&o);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("compare_terminal", out);
    let o = voicebench(tmp.path(), &["compare", dir.to_str().unwrap(), "--format", "markdown"]);
    insta::assert_snapshot!("compare_markdown", text(&o).1);
    // Only one kind of turn: the TTFA figures are those of the plain turns alone; a misspelt kind gets a suggestion.
    let o = voicebench(tmp.path(), &["compare", dir.to_str().unwrap(), "--kind", "plain"]);
    let (code, out, err) = text(&o);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Only plain turns.") && !out.contains("tool call p50"), "{out}");
    let o = voicebench(tmp.path(), &["compare", dir.to_str().unwrap(), "--kind", "plan"]);
    let (code, _, err) = text(&o);
    assert_eq!((code, err.contains("did you mean `plain`")), (2, true), "{err}");
    // The reference can be chosen; a wrong label says which exist.
    let o = voicebench(tmp.path(), &["compare", dir.to_str().unwrap(), "--reference", "sim-pipelin"]);
    let (code, _, err) = text(&o);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `sim-pipeline`"), "{err}");
}

#[test]
fn compare_needs_two_sides_and_real_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let o = voicebench(tmp.path(), &["compare", "no-such-dir"]);
    let (code, _, err) = text(&o);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-dir"), "{err}");
}

/// Two runs of the native sim profile, one with every latency doubled: the measured ratio of TTFA p50s and its
/// interval against the true ratio, from the sims' own ground truth of the same turns.
#[test]
fn compare_finds_the_true_ratio_of_two_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = root().join("audio-corpus");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (fast_dir, slow_dir) = (tmp.path().join("fast"), tmp.path().join("slow"));
    let (fast, slow) = rt.block_on(async {
        let a = native_run(&corpus, &fast_dir, 12, 11, 1.0);
        let b = native_run(&corpus, &slow_dir, 12, 12, 2.0);
        let (a, b) = tokio::join!(a, b);
        (a.unwrap(), b.unwrap())
    });
    let truth_p50 = |o: &voicebench::run::RunOutcome| {
        let mut t: Vec<f64> = join(o, 0.0, 0.0).ttfa.iter().map(|(_, t)| *t).collect();
        t.sort_by(f64::total_cmp);
        t[((0.5 * t.len() as f64).ceil() as usize).max(1) - 1]
    };
    let true_ratio = truth_p50(&slow) / truth_p50(&fast);

    let out = tmp.path().join("cmp");
    let (a, b) = (fast.out_dir.to_str().unwrap(), slow.out_dir.to_str().unwrap());
    let o = voicebench(tmp.path(), &["compare", a, b, "--format", "json", "--out", out.to_str().unwrap()]);
    let (code, stdout, err) = text(&o);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = doc["pairs"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "ttfa" && r["stat"] == "p50")
        .unwrap()
        .clone();
    let (ratio, lo, hi) =
        (row["value"].as_f64().unwrap(), row["ci"][0].as_f64().unwrap(), row["ci"][1].as_f64().unwrap());
    eprintln!("TTFA p50 ratio {ratio:.3} [{lo:.3}–{hi:.3}], true {true_ratio:.3} (profiles: 2× every latency)");
    assert!(lo <= true_ratio && true_ratio <= hi, "CI [{lo}, {hi}] misses the true ratio {true_ratio}");
    assert!((ratio - true_ratio).abs() / true_ratio < 0.02, "ratio {ratio} vs true {true_ratio}");
    assert!(lo > 1.5 && hi < 2.6, "interval [{lo}, {hi}] too wide to be useful");
    assert_eq!(row["significant"], true);
    // Labels tell the two `report` directories apart; the outputs and the overlaid CDF are written.
    assert_eq!(doc["sides"].as_array().unwrap().len(), 2);
    assert_ne!(doc["sides"][0]["label"], doc["sides"][1]["label"]);
    for f in ["compare.md", "compare.json", "plots/compare-ttfa.png", "plots/compare-ttfa.svg"] {
        assert!(out.join(f).is_file(), "{f}: {err}");
    }
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("answered") && md.contains("sooner than") && md.contains("significant"), "{md}");
}

/// A run whose harness was overloaded says so on its pages, in a banner naming the figures it reaches, rather than
/// let its lateness pass for the provider's; a run that kept up has no such banner.
#[test]
fn an_overloaded_harness_gets_a_banner() {
    use voicebench::report::summary::{HarnessSummary, LatenessSummary};
    let (tmp, dir) = fixture();
    let mut s = summary(&dir);
    let lateness = |p99_ms: f64| LatenessSummary { samples: 5000, p50_ms: 1.2, p99_ms, max_ms: p99_ms * 3.0 };
    s.harness = Some(HarnessSummary::judge(lateness(42.1), lateness(3.0), &["ttfa", "barge_in_stop"]));
    std::fs::write(dir.join("summary.json"), voicebench::report::summary::summary_json(&s)).unwrap();
    let (code, out, err) = text(&voicebench(tmp.path(), &["report", dir.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(
            "> **Overloaded harness:** frames left late: pacing p99 42.10 ms > 5 ms; these figures carry the \
             harness's lateness, not the provider's: ttfa, barge_in_stop"
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("<strong>Overloaded harness:</strong> frames left late"), "banner missing");

    s.harness = Some(HarnessSummary::judge(lateness(2.0), lateness(3.0), &["ttfa"]));
    std::fs::write(dir.join("summary.json"), voicebench::report::summary::summary_json(&s)).unwrap();
    let (code, out, err) = text(&voicebench(tmp.path(), &["report", dir.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!std::fs::read_to_string(dir.join("report.md")).unwrap().contains("Overloaded"));
    assert!(!std::fs::read_to_string(dir.join("index.html")).unwrap().contains("Overloaded"));
}
