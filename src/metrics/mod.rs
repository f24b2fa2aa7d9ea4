//! Aggregation of a run's records (docs/metrics.md, "Aggregation"): one HdrHistogram per (target, metric, turn
//! kind) and per (target, metric, all kinds), the run's frame-pacing histogram, and the counts behind every rate.
//!
//! Histograms hold **microseconds** at 3 significant digits and resize themselves, so a 40-second stall is recorded
//! as faithfully as a 300 ms reply. Percentiles are read from histograms and never averaged; two sets from shards of
//! one run merge exactly with [`HistogramSet::merge`] (`Histogram::add`), counts by addition.

mod histograms;
pub mod stages;
mod tally;

pub use histograms::{HistKey, HistogramSet, Scope, Stats, TargetMetrics, call_samples, ms_to_us, new_histogram};
pub use tally::{Counts, Tally, meets_slos};

/// Significant digits of every histogram.
pub const SIGFIG: u8 = 3;
