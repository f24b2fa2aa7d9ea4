//! HdrHistogram's percentile-distribution text (`.hgrm`), as the Java `outputPercentileDistribution` and
//! HdrHistogram_py write it, so HdrHistogram's plotter (hdrhistogram.github.io/HdrHistogram/plotFiles.html) and
//! existing tooling read our files. Values are printed in ms from µs histograms.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Percentile ticks per half distance, HdrHistogram's default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// µs → ms, the scaling ratio of every `.hgrm` we write.
pub const US_PER_MS: f64 = 1000.0;

/// The percentile distribution of `h`, values divided by `scale` (use [`US_PER_MS`] for µs histograms):
///
/// ```text
///        Value     Percentile TotalCount 1/(1-Percentile)
///
///        1.000 0.000000000000          1           1.00
///      …
///     1000.447 1.000000000000       1000
/// #[Mean    =      500.504, StdDeviation   =      288.680]
/// #[Max     =     1000.447, Total count    =         1000]
/// #[Buckets =           11, SubBuckets     =         2048]
/// ```
pub fn percentile_distribution(h: &Histogram<u64>, scale: f64) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = write!(out, "{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) =
        if h.is_empty() { (0.0, 0.0, 0.0) } else { (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale) };
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(out, "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]");
    let _ = writeln!(out, "#[Max     = {max:12.digits$}, Total count    = {:12}]", h.len());
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]", h.buckets());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn layout_matches_hdrhistogram() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let text = percentile_distribution(&h, US_PER_MS);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        assert_eq!(lines[2], "       1.000 0.000000000000          1           1.00");
        let last = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(last.contains(" 1.000000000000       1000"), "{last}");
        assert_eq!(last.split_whitespace().count(), 3);
        assert!(text.contains("#[Mean    =      500."), "{text}");
        assert!(text.contains("Total count    =         1000]"), "{text}");
        assert!(text.ends_with("SubBuckets     =         2048]\n"), "{text}");
    }

    #[test]
    fn empty_histogram_has_header_and_footer() {
        let text = percentile_distribution(&new_histogram(), US_PER_MS);
        assert!(text.contains("Total count    =            0]"));
    }
}
