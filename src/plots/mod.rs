//! Placeholder of the plots module's interface while it is built on its own branch (`plots`); that branch's
//! module replaces this file when it merges. Draws nothing.

use std::path::{Path, PathBuf};

/// One rendered plot: both files, relative to the report directory.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File stem.
    pub id: String,
    /// Title.
    pub title: String,
    /// Caption.
    pub caption: String,
    /// Target, for per-target plots.
    pub target: Option<String>,
    /// PNG path.
    pub png: PathBuf,
    /// SVG path.
    pub svg: PathBuf,
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Not built yet.
    #[error("plots are not built in this version")]
    NotBuilt,
}

/// Draws every plot the report supports.
pub fn render_report(_report: &crate::gate::load::Report, _out_dir: &Path) -> Result<Vec<Plot>, PlotError> {
    Ok(Vec::new())
}

/// An overlaid CDF.
pub fn cdf_overlay(
    _series: &[(String, Vec<f64>)],
    _metric: &str,
    _out_dir: &Path,
    _stem: &str,
) -> Result<Plot, PlotError> {
    Err(PlotError::NotBuilt)
}
