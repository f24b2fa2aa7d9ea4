//! Building the human-facing outputs of a report directory from the directory alone: `plots/`, `report.md`,
//! `index.html`, and for a multi-target run `compare.md` / `compare.json`. `voicebench run` calls it when a run
//! ends (interrupted runs included); `voicebench report DIR` calls it on old runs and merged shards.
//!
//! A plot or comparison that cannot be made is a warning, not a failure: the pages are still written, saying what
//! is missing, and the rows on disk are never touched.

use std::path::{Path, PathBuf};

use super::{Figure, Page, render_html, render_markdown};
use crate::gate::GateOptions;
use crate::report::read::{ReadError, Report};

/// Why the pages could not be built (a plot or a comparison that cannot be made is a warning instead).
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// The report directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A page could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The page.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn write(path: &Path, text: String) -> Result<(), PagesError> {
    std::fs::write(path, text).map_err(|source| PagesError::Write { path: path.to_owned(), source })
}

/// What [`render_dir`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// `index.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// Plot files written (PNG and SVG), relative to the directory.
    pub plots: Vec<String>,
    /// The comparison, when the run has two targets or more.
    pub compare: Option<crate::compare::Comparison>,
    /// What could not be made, and why.
    pub warnings: Vec<String>,
}

/// The report files linked from the page, when present, in this order.
const LINKED: &[&str] = &[
    "summary.json",
    "turns.csv",
    "turns.jsonl",
    "calls.csv",
    "histograms.hlog",
    "report.md",
    "compare.md",
    "compare.json",
];

/// Builds plots, comparison, `report.md` and `index.html` in `dir` (a report directory with `summary.json`).
pub fn render_dir(dir: &Path) -> Result<Rendered, PagesError> {
    let report = Report::read(dir, true)?;
    let summary = report.summary.clone().expect("read with need_summary");
    let mut warnings = Vec::new();

    let plots = match crate::plots::render_report(&report, dir) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("plots: {e}"));
            Vec::new()
        }
    };
    let figures: Vec<Figure> = plots
        .iter()
        .map(|p| Figure {
            title: p.title.clone(),
            caption: p.caption.clone(),
            target: p.target.clone(),
            png: p.png.to_string_lossy().into_owned(),
            svg: p.svg.to_string_lossy().into_owned(),
        })
        .collect();

    let gate = if summary.slo.is_empty() {
        None
    } else {
        match crate::gate::evaluate(dir, &GateOptions::default()) {
            Ok(g) => Some(g),
            Err(e) => {
                warnings.push(format!("SLO verdicts: {e}"));
                None
            }
        }
    };

    let compare = if report.targets.len() >= 2 {
        // One directory's targets have distinct names: the sides come from the rows already read.
        let sides = crate::compare::sides_of(&report);
        let made = crate::compare::compare(&sides, &crate::compare::CompareOptions::default());
        match made.and_then(|c| crate::compare::write_outputs(&c, dir).map(|_| c)) {
            Ok(c) => Some(c),
            Err(e) => {
                warnings.push(format!("comparison: {e}"));
                None
            }
        }
    } else {
        None
    };

    let markdown = dir.join("report.md");
    let mut files: Vec<String> = LINKED.iter().map(|s| s.to_string()).collect();
    let mut truth: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ground_truth.") && n.ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default();
    truth.sort();
    files.extend(truth);
    let page_files = |files: &[String]| -> Vec<String> {
        files.iter().filter(|f| f.as_str() == "report.md" || dir.join(f).is_file()).cloned().collect()
    };
    let page = Page {
        summary: &summary,
        gate: gate.as_ref(),
        compare: compare.as_ref(),
        figures: &figures,
        files: page_files(&files),
    };
    write(&markdown, render_markdown(&page))?;
    let html = dir.join("index.html");
    write(&html, render_html(&page, dir))?;
    let plot_files = plots.iter().flat_map(|p| [&p.png, &p.svg]).map(|p| p.to_string_lossy().into_owned()).collect();
    Ok(Rendered { html, markdown, plots: plot_files, compare, warnings })
}
