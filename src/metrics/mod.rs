//! Aggregation of a run's records (docs/metrics.md, "Aggregation"): one distribution per (target, metric, turn
//! kind) and per (target, metric, all kinds), the run's frame pacing and event-loop lag, and the counts behind
//! every rate; and each target's figures per 10 s of run time ([`windows`]).
//!
//! Values are **microseconds**. Each distribution is an HdrHistogram at 3 significant digits that resizes itself
//! (a 40-second stall is recorded as faithfully as a 300 ms reply; it is what the `.hgrm` files and the interval log
//! hold) beside an exact count per distinct value ([`Exact`]), from which every reported percentile is read: the
//! order statistic of the raw samples, never a bucket's edge, never averaged. Two sets from shards of one run merge
//! exactly with [`HistogramSet::merge`], counts by addition.

mod exact;
mod histograms;
pub mod stages;
mod tally;
pub mod windows;

pub use exact::Exact;
pub use histograms::{
    Distribution, HistKey, HistogramSet, Scope, Stats, TargetMetrics, call_samples, ms_to_us, new_histogram,
};
pub use tally::{Counts, Tally, meets_slos};

/// Significant digits of every histogram.
pub const SIGFIG: u8 = 3;
