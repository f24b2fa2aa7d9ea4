//! Building the human-facing outputs of a report directory: `plots/`, `report.md` and `index.html`. `voicebench
//! run` builds them when a run ends (interrupted runs included); `voicebench report DIR` on old runs and merged
//! shards.
//!
//! The pages show verdicts but do not make them: the caller computes the gate's checks and the head to head once
//! ([`Verdicts`]), acts on them as it must (exit codes, the terminal, `compare.md`) and hands them in.
//!
//! A plot that cannot be made is a warning, not a failure: the pages are still written, saying what is missing, and
//! the rows on disk are never touched.

use std::path::{Path, PathBuf};

use super::{Figure, Page, RecordedCall, render_html, render_markdown};
use crate::compare::Comparison;
use crate::gate::GateReport;
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

/// What the pages show that is judged rather than read, computed by the caller.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    /// The checks of the run's SLOs (`None`: no SLOs, or they could not be checked: see `warnings`).
    pub gate: Option<GateReport>,
    /// The head to head of the run's targets (`None`: fewer than two, or it could not be made).
    pub compare: Option<Comparison>,
    /// What could not be made, and why; the page's build adds its own.
    pub warnings: Vec<String>,
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
    /// What could not be made, and why (the verdicts' warnings first).
    pub warnings: Vec<String>,
}

/// The report files linked from the page, when present, in this order.
const LINKED: &[&str] = &[
    "summary.json",
    "turns.csv",
    "turns.jsonl",
    "calls.csv",
    "calls.jsonl",
    "recordings/index.json",
    "histograms.hlog",
    "report.md",
    "compare.md",
    "compare.json",
];

/// Builds plots, `report.md` and `index.html` in `report`'s directory (read with its `summary.json`), showing the
/// verdicts the caller made.
pub fn render_dir(report: &Report, verdicts: Verdicts) -> Result<Rendered, PagesError> {
    let dir = report.dir.as_path();
    let Some(summary) = &report.summary else {
        return Err(PagesError::Read(ReadError::NotAReport {
            dir: dir.to_owned(),
            missing: "summary.json",
            hint: "a run writes it when it ends; a run that crashed has none: run it again".into(),
        }));
    };
    let Verdicts { gate, compare, mut warnings } = verdicts;

    // The recordings the directory still holds (an index entry whose file is gone is not shown).
    let index: Vec<_> =
        crate::report::recordings::read_index(dir).into_iter().filter(|e| dir.join(&e.file).is_file()).collect();
    let plots = match crate::plots::render_report(report, dir) {
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
            listen: index
                .iter()
                .find(|e| Some(&e.target) == p.target.as_ref() && Some(e.call) == p.call)
                .map(|e| e.file.clone()),
        })
        .collect();
    let recordings: Vec<RecordedCall> = index
        .iter()
        .map(|e| {
            let turns: Vec<&crate::model::TurnRecord> =
                report.turns.iter().filter(|t| t.target == e.target && t.call == e.call).collect();
            RecordedCall {
                target: e.target.clone(),
                call: e.call,
                why: e.why.clone(),
                file: e.file.clone(),
                turns: super::call_transcript(&turns),
            }
        })
        .collect();

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
        summary,
        gate: gate.as_ref(),
        compare: compare.as_ref(),
        figures: &figures,
        files: page_files(&files),
        recordings,
    };
    write(&markdown, render_markdown(&page))?;
    let html = dir.join("index.html");
    write(&html, render_html(&page, dir))?;
    let plot_files = plots.iter().flat_map(|p| [&p.png, &p.svg]).map(|p| p.to_string_lossy().into_owned()).collect();
    Ok(Rendered { html, markdown, plots: plot_files, warnings })
}
