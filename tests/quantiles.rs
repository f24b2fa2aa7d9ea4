//! One quantile rule: the same percentile of the same samples is the same number in `calls.csv` (pacing),
//! `summary.json`, the pages (`report.md`), compare and the gate, and it is the exact order statistic of the raw
//! samples (nearest rank, `voicebench::stats`), never the top of a histogram bucket. These tests hold each output
//! against it, with sample counts where the old `round((n−1)q)` rule gave a different sample (even counts for the
//! median) and values a 3-significant-digit histogram cannot hold exactly (553 490 µs reads 553 983 there).

use voicebench::caller::record::{CallRecord, Pacing, TurnRecord};
use voicebench::model::Metric;
use voicebench::report::{Recorder, RunMeta, Summary, TargetMeta};
use voicebench::stats::{SplitMix64, pooled, quantile};

use super::report::fixture;
use super::{text, voicebench};

/// Every path a percentile takes, fed the same samples, gives the exact order statistic.
#[test]
fn every_path_gives_the_same_percentile_of_the_same_samples() {
    let mut rng = SplitMix64::new(5);
    for (n, base) in [(2usize, 1), (4, 1), (10, 1), (40, 1), (100, 1), (101, 1), (240, 1), (2, 553_490), (101, 553_490)]
        .into_iter()
        .chain([40, 100, 240, 1000].map(|n| (n, 553_490)))
    {
        // Distinct µs values in 8 calls: below 2048 (exact in a 3-digit histogram) or around 553.49 ms (where a
        // bucket is 512 µs wide).
        let us: Vec<u64> = (0..n).map(|i| base + i as u64 * 7 + rng.next_u64() % 7).collect();
        let calls: Vec<Vec<u64>> = (0..8).map(|c| us.iter().skip(c).step_by(8).copied().collect()).collect();
        let calls: Vec<Vec<u64>> = calls.into_iter().filter(|c| !c.is_empty()).collect();
        let sorted = pooled(&calls);
        // summary.json's figures: the turns through the recorder's set, one call per group.
        let mut set = voicebench::metrics::HistogramSet::new(["t"]);
        for (call, values) in calls.iter().enumerate() {
            for v in values {
                let ms = *v as f64 / 1000.0;
                set.record_turn(&TurnRecord {
                    target: "t".into(),
                    call: call as u32,
                    ttfa_ms: Some(ms),
                    ..Default::default()
                });
            }
        }
        let stats = set.target("t").unwrap().stats(Metric::Ttfa, voicebench::metrics::Scope::All).unwrap();
        // The gate and compare resample exactly these.
        let turns: Vec<TurnRecord> = calls
            .iter()
            .enumerate()
            .flat_map(|(c, v)| v.iter().map(move |us| (c, *us)))
            .map(|(c, us)| TurnRecord {
                target: "t".into(),
                call: c as u32,
                ttfa_ms: Some(us as f64 / 1000.0),
                ..Default::default()
            })
            .collect();
        assert_eq!(voicebench::metrics::call_samples(&turns, "t", Metric::Ttfa), calls, "n = {n}");
        let lateness: Vec<u32> = us.iter().rev().map(|v| *v as u32).collect();
        let pacing = Pacing::from_lateness(lateness.clone());
        // summary.json's pacing: the same values as one call's frame lateness.
        set.record_call(&CallRecord {
            target: "t".into(),
            pacing: Pacing::from_lateness(lateness),
            ..Default::default()
        });
        let run_pacing = Summary::build(&meta(), &set, std::time::SystemTime::now(), false).pacing;
        let as_ms: Vec<f64> = us.iter().rev().map(|v| *v as f64 / 1000.0).collect();
        let gate = voicebench::gate::compare::compare(
            Metric::Ttfa,
            &calls,
            &calls,
            &[("p50", 0.5), ("p95", 0.95)],
            10,
            1,
            0.05,
        );
        for (q, gate) in [(0.5, &gate[0]), (0.95, &gate[1]), (0.99, &None)] {
            let want = quantile(&sorted, q).unwrap();
            let ms = want as f64 / 1000.0;
            // summary.json.
            let stat = if q == 0.5 {
                "p50"
            } else if q == 0.95 {
                "p95"
            } else {
                "p99"
            };
            assert_eq!(stats.get(stat), Some(ms), "summary, n = {n}, q = {q}");
            // calls.csv: a call's pacing; summary.json: the run's.
            if q != 0.95 {
                let p = if q == 0.5 { pacing.p50_us } else { pacing.p99_us };
                assert_eq!(u64::from(p), want, "calls.csv pacing, n = {n}, q = {q}");
                let run = if q == 0.5 { run_pacing.p50_ms } else { run_pacing.p99_ms };
                assert_eq!(run, ms, "summary.json pacing, n = {n}, q = {q}");
            }
            // The benchmark's percentiles of raw values.
            assert_eq!(voicebench::run::bench::quantile(&as_ms, q), ms, "bench, n = {n}, q = {q}");
            // The gate's point estimate.
            if let Some(g) = gate {
                assert_eq!(g.base, ms, "gate, n = {n}, q = {q}");
            }
            // Compare's point estimate.
            let row = voicebench::compare::ratio_row(Metric::Ttfa, "p", q, &calls, &calls, 0, 1);
            assert_eq!((row.reference, row.other), (ms, ms), "compare, n = {n}, q = {q}");
        }
    }
}

fn meta() -> RunMeta {
    RunMeta {
        scenario_name: "pacing".into(),
        scenario_path: "scenarios/pacing.toml".into(),
        scenario_sha256: "0".repeat(64),
        corpus_sha256: None,
        version: voicebench::report::VERSION.into(),
        started_at: std::time::SystemTime::now(),
        seed: 1,
        calls: 1,
        ramp_up_ms: None,
        priority: None,
        concurrency: 1,
        frame_ms: 20,
        targets: vec![TargetMeta {
            name: "t".into(),
            protocol: "ws-pcm".into(),
            simulated: true,
            model: None,
            network: None,
            telephone: false,
        }],
        slo: Vec::new(),
        shard: None,
        load: None,
    }
}

/// One call's frame lateness: `calls.csv`'s pacing p50/p99 equal `summary.json`'s (the run's histogram holds
/// exactly that call's frames). With 100 frames the old rule's median was the 51st value, the summary's the 50th.
#[test]
fn calls_csv_pacing_equals_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path(), meta()).unwrap();
    // Around half a second, where a 3-digit histogram's buckets are 512 µs wide.
    let lateness: Vec<u32> = (1..=100u32).map(|i| 550_000 + (i * 37) % 101 * 13).collect();
    let call = CallRecord {
        target: "t".into(),
        simulated: true,
        call: 1,
        turns_total: 1,
        turns_ok: 1,
        pacing: Pacing::from_lateness(lateness.clone()),
        ..Default::default()
    };
    rec.record_turn(&TurnRecord { target: "t".into(), simulated: true, call: 1, ..Default::default() }).unwrap();
    rec.record_call(&call).unwrap();
    let summary = rec.finish(false).unwrap();
    let mut rows = csv::Reader::from_path(dir.path().join("calls.csv")).unwrap();
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let col = |name: &str| -> f64 { row[headers.iter().position(|h| h == name).unwrap()].parse().unwrap() };
    let mut sorted = lateness.clone();
    sorted.sort_unstable();
    let doc: Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(doc, summary);
    for (q, csv_col, summary_ms) in
        [(0.5, "pacing_p50_us", doc.pacing.p50_ms), (0.99, "pacing_p99_us", doc.pacing.p99_ms)]
    {
        let want = f64::from(quantile(&sorted, q).unwrap());
        assert_eq!(col(csv_col), want, "{csv_col}");
        assert_eq!((summary_ms * 1000.0).round(), want, "summary.json pacing at {q}");
    }
    assert_eq!(col("pacing_p50_us"), 550_650.0, "the 50th of 550 013, 550 026, …, 551 300");
    assert_eq!(doc.pacing.p50_ms, 550.65, "the raw sample, not its bucket's top (550.911)");
}

/// The frozen report directory: each latency percentile computed here from `turns.jsonl` is the number in
/// `summary.json`, the gate's SLO check, `compare.json` and `report.md`.
#[test]
fn the_frozen_report_s_percentiles_agree_everywhere() {
    let (tmp, dir) = fixture();
    let o = voicebench(tmp.path(), &["report", dir.to_str().unwrap()]);
    let (code, out, err) = text(&o);
    assert_eq!(code, 0, "{out}{err}");
    let report = voicebench::report::read::Report::read(&dir, true).unwrap();
    let summary = report.summary.clone().unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let cmp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    let (reference, other) = (cmp["reference"].as_str().unwrap(), cmp["pairs"][0]["other"].as_str().unwrap());
    assert_eq!(report.targets, [reference, other]);
    let mut checked = 0;
    for target in &report.targets {
        let row = md.lines().find(|l| l.starts_with(&format!("| {target} (simulated) |"))).unwrap();
        for metric in [Metric::Ttfa, Metric::BargeInStop, Metric::Endpointing] {
            let calls = voicebench::metrics::call_samples(&report.turns, target, metric);
            let sorted = pooled(&calls);
            if sorted.is_empty() {
                continue;
            }
            for (stat, q) in [("p50", 0.5), ("p95", 0.95)] {
                let want = quantile(&sorted, q).unwrap() as f64 / 1000.0;
                let at = format!("{target} {metric}.{stat}");
                // summary.json.
                let stats = summary.target(target).unwrap().metric(metric).unwrap();
                assert_eq!(stats.get(stat), Some(want), "{at}: summary.json");
                // The gate, given an SLO on that statistic.
                let slo = voicebench::gate::parse_slo(&format!("{metric}.{stat}=100000ms")).unwrap();
                let opts = voicebench::gate::GateOptions { slo_overrides: vec![slo], ..Default::default() };
                let g = voicebench::gate::evaluate(&dir, &opts).unwrap();
                let check =
                    g.checks.iter().find(|c| &c.target == target && c.name.starts_with(&format!("{metric}.{stat} <=")));
                assert_eq!(check.unwrap().measured, Some(want), "{at}: gate");
                // compare.json (the head to head the pages embed).
                let side = if target == reference { "reference" } else { "other" };
                let crow = cmp["pairs"][0]["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["metric"] == metric.name() && r["stat"] == stat);
                assert_eq!(crow.unwrap()[side].as_f64(), Some(want), "{at}: compare.json");
                // report.md: the summary table's TTFA p50/p95, and the SLO check's detail.
                if metric == Metric::Ttfa {
                    assert!(row.contains(&format!("| {want:.0} |")), "{at}: report.md row {row}");
                }
                checked += 1;
            }
        }
        let p95 = summary.target(target).unwrap().metric(Metric::Ttfa).unwrap().p95;
        assert!(md.contains(&format!("p95 ttfa = {p95} ms")), "{target}: report.md SLO detail");
    }
    assert!(checked >= 8, "{checked} figures checked");
}

/// `voicebench report` rebuilds a summary from the rows of a killed run, and the gate recounts every report from
/// its rows: both must give the figures the run wrote. The frozen report's `summary.json` (written by a run) equals,
/// metric by metric and kind by kind, the summary rebuilt from its `turns.jsonl` and `calls.csv`.
#[test]
fn the_frozen_summary_is_what_its_rows_rebuild() {
    let (_tmp, dir) = fixture();
    let report = voicebench::report::read::Report::read(&dir, true).unwrap();
    let written = report.summary.clone().unwrap();
    let set = voicebench::report::recover::replay(&report, voicebench::report::recover::summary_slos(&written));
    for t in &written.targets {
        let m = set.target(&t.name).unwrap();
        let rebuilt = voicebench::report::TargetSummary::build(m, &t.protocol, t.simulated, t.model.clone());
        assert_eq!(
            serde_json::to_value(&rebuilt.metrics).unwrap(),
            serde_json::to_value(&t.metrics).unwrap(),
            "{}: metrics rebuilt from the rows:\n{}",
            t.name,
            serde_json::to_string_pretty(&rebuilt.metrics).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&rebuilt.by_kind).unwrap(),
            serde_json::to_value(&t.by_kind).unwrap(),
            "{}: by_kind rebuilt from the rows:\n{}",
            t.name,
            serde_json::to_string_pretty(&rebuilt.by_kind).unwrap()
        );
        assert_eq!(rebuilt.counts, t.counts, "{}", t.name);
    }
}
