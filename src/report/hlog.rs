//! The run's histograms as one HdrHistogram interval log (`histograms.hlog`): one tagged interval per target ×
//! metric × kind (tag `target/metric/kind`, kind `all` for every kind) plus the run's frame pacing (tag `pacing`),
//! event-loop lag (tag `loop_lag`) and, open loop, the calls' start lateness (tag `start_lateness`), each V2-deflate encoded, values in µs. The whole run is one interval. This is
//! the form shards of a run are merged from ([`histogram_set`] + [`HistogramSet::merge`]): HdrHistogram addition
//! is exact, to the histograms' 3 significant digits.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::metrics::{HistKey, HistogramSet, Scope};
use crate::model::Metric;

/// The tag of the run's frame-pacing histogram.
pub const PACING_TAG: &str = "pacing";

/// The tag of the run's event-loop lag histogram.
pub const LOOP_LAG_TAG: &str = "loop_lag";

/// The tag of an open-loop run's call start lateness histogram.
pub const START_LATENESS_TAG: &str = "start_lateness";

/// The log's legend line, as HdrHistogram's Java `HistogramLogWriter` writes it.
const LEGEND: &str = "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Why an interval log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    /// A histogram could not be encoded.
    #[error("cannot encode histogram `{tag}`: {message}")]
    Encode {
        /// Its tag.
        tag: String,
        /// Why.
        message: String,
    },
    /// The log could not be parsed or a histogram in it decoded.
    #[error("cannot decode interval log: {0}")]
    Decode(String),
}

/// The tag of `target`'s histogram under `key`: `target/metric/kind`. Characters a tag cannot hold (`,`, space,
/// line breaks) become `_` (target names are identifiers, so this never happens in practice).
pub fn tag(target: &str, key: HistKey) -> String {
    let raw = format!("{target}/{}/{}", key.metric, key.scope.as_str());
    raw.chars().map(|c| if matches!(c, ',' | ' ' | '\r' | '\n') { '_' } else { c }).collect()
}

/// Parses a tag written by [`tag`] back into (target, key).
pub fn parse_tag(tag: &str) -> Option<(&str, HistKey)> {
    let mut parts = tag.rsplitn(3, '/');
    let scope = Scope::parse(parts.next()?)?;
    let metric = parts.next()?;
    let target = parts.next()?;
    Some((target, HistKey { metric: Metric::from_name(metric)?, scope }))
}

/// The interval log of a run that went from `started` to `finished`.
pub fn interval_log(set: &HistogramSet, started: SystemTime, finished: SystemTime) -> Result<Vec<u8>, HlogError> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let io = |e: std::io::Error| HlogError::Encode { tag: String::new(), message: e.to_string() };
    {
        IntervalLogWriterBuilder::new()
            .add_comment("[Histogram log format version 1.3]")
            .add_comment(&format!(
                "voicebench {}: one interval for the whole run; values in microseconds; tags target/metric/kind",
                super::VERSION
            ))
            .with_start_time(started)
            .with_base_time(started)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut buf, &mut serializer)
            .map_err(io)?;
    }
    buf.extend_from_slice(LEGEND.as_bytes());
    let length = finished.duration_since(started).unwrap_or_default();
    let mut log = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut buf, &mut serializer)
        .map_err(io)?;
    let mut write = |tag: &str, h: &Histogram<u64>| {
        log.write_histogram(h, Duration::ZERO, length, Tag::new(tag))
            .map_err(|e| HlogError::Encode { tag: tag.to_owned(), message: e.to_string() })
    };
    for t in set.targets() {
        for (key, h) in t.histograms() {
            write(&tag(&t.name, key), h)?;
        }
    }
    if !set.pacing().is_empty() {
        write(PACING_TAG, set.pacing())?;
    }
    if !set.loop_lag().is_empty() {
        write(LOOP_LAG_TAG, set.loop_lag().histogram())?;
    }
    if !set.start_lateness().is_empty() {
        write(START_LATENESS_TAG, set.start_lateness().histogram())?;
    }
    Ok(buf)
}

/// One interval of a log: its tag and histogram.
#[derive(Debug, Clone)]
pub struct TaggedHistogram {
    /// The interval's tag (`target/metric/kind`, or `pacing`), if it has one.
    pub tag: Option<String>,
    /// The histogram, µs.
    pub histogram: Histogram<u64>,
}

/// Every histogram in an interval log, with its tag, in log order.
pub fn read_interval_log(bytes: &[u8]) -> Result<Vec<TaggedHistogram>, HlogError> {
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| HlogError::Decode(format!("{e:?}")))?;
        let LogEntry::Interval(interval) = entry else { continue };
        let tag = interval.tag().map(|t| t.as_str().to_owned());
        let encoded = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| HlogError::Decode(format!("histogram {tag:?}: {e}")))?;
        let h: Histogram<u64> = deserializer
            .deserialize(&mut encoded.as_slice())
            .map_err(|e| HlogError::Decode(format!("histogram {tag:?}: {e:?}")))?;
        out.push(TaggedHistogram { tag, histogram: h });
    }
    Ok(out)
}

/// The histograms of an interval log as a [`HistogramSet`] (counts and rates are not in the log: they come from
/// `summary.json`). Intervals with the same tag add up; untagged or unknown tags are skipped.
pub fn histogram_set(bytes: &[u8]) -> Result<HistogramSet, HlogError> {
    let mut set = HistogramSet::default();
    let add_err = |e: hdrhistogram::errors::AdditionError| HlogError::Decode(format!("{e:?}"));
    for TaggedHistogram { tag, histogram: h } in read_interval_log(bytes)? {
        match tag.as_deref() {
            Some(PACING_TAG) => set.add_pacing(&h).map_err(add_err)?,
            Some(LOOP_LAG_TAG) => set.add_loop_lag_histogram(&h).map_err(add_err)?,
            Some(START_LATENESS_TAG) => set.add_start_lateness_histogram(&h).map_err(add_err)?,
            Some(tag) => {
                if let Some((target, key)) = parse_tag(tag) {
                    set.target_mut(target).add_histogram(key, &h).map_err(add_err)?;
                }
            }
            None => {}
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallRecord, TurnKind, TurnRecord};

    #[test]
    fn round_trips_exactly() {
        let mut set = HistogramSet::new(["a", "b"]);
        for i in 0..300 {
            let kind = if i % 3 == 0 { TurnKind::Tool } else { TurnKind::Plain };
            let target = if i % 2 == 0 { "a" } else { "b" };
            set.record_turn(&TurnRecord {
                target: target.into(),
                kind: Some(kind),
                ttfa_ms: Some(100.0 + f64::from(i) * 7.3),
                ttfb_ms: Some(90.0 + f64::from(i)),
                ..Default::default()
            });
        }
        let mut call = CallRecord { target: "a".into(), ..Default::default() };
        call.pacing.lateness_us = (0..1000).collect();
        set.record_call(&call);
        for us in [900, 1100, 25_000] {
            set.record_loop_lag(us);
        }

        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let log = interval_log(&set, t0, t0 + Duration::from_secs(60)).unwrap();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[BaseTime: 1700000000.000 (seconds since epoch)]"), "{text}");
        assert!(text.contains("Tag=a/ttfa/tool,0.000,60.000,"), "{text}");

        let back = histogram_set(&log).unwrap();
        for t in set.targets() {
            for (key, h) in t.histograms() {
                let other = back.target(&t.name).unwrap().histogram(key.metric, key.scope).unwrap();
                assert_eq!(h, other, "{}", tag(&t.name, key));
            }
        }
        assert_eq!(back.pacing(), set.pacing());
        assert_eq!(back.loop_lag().histogram(), set.loop_lag().histogram());
    }

    #[test]
    fn tags_parse_back() {
        let key = HistKey { metric: Metric::BargeInStop, scope: Scope::Kind(TurnKind::BargeIn) };
        assert_eq!(tag("sim-native", key), "sim-native/barge_in_stop/barge_in");
        assert_eq!(parse_tag("sim-native/barge_in_stop/barge_in"), Some(("sim-native", key)));
        assert_eq!(parse_tag("pacing"), None);
    }
}
