//! Sharded runs (issue 17, docs/scale.md): four shard processes of one scenario against the embedded sims, then
//! `voicebench merge`. The merged figures must be what one computation over the pooled rows gives (every percentile
//! the exact order statistic, every count the sum), the merged HdrHistograms the exact sum of the shards', and
//! report, compare and gate must take the merged directory. Shards of different runs, a shard given twice and a
//! missing shard are refused with the fix; a shard is also read from a Kubernetes Indexed Job's variables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::{root, text, voicebench};

/// Calls per target of the sharded run; four shards of two calls each.
const CALLS: u32 = 8;

/// The scenario: the fixed-profile target and a native-profile one (its latencies drawn from the shard's seed
/// stream), with SLOs a healthy run meets.
fn scenario(dir: &Path) -> PathBuf {
    let targets = "[[target]]\nname = \"fixed\"\nprotocol = \"openai-realtime\"\nsim = \"fixed\"\n\
        sim_options = { reply_delay_ms = 400, leading_silence_ms = 0, vad_silence_ms = 500, interrupt_delay_ms = 100, tool_delay_ms = 300, tool_arg_deltas = 8 }\n\n\
        [[target]]\nname = \"native\"\nprotocol = \"elevenlabs\"\nsim = \"native\"\n";
    let toml =
        voicebench::run::bench::short_scenario_toml(&root().join("audio-corpus"), targets, "\"ttfa.p95\" = 5000\n")
            .replace("calls = 1", &format!("calls = {CALLS}"))
            .replace("concurrency = 1", "concurrency = 8");
    let path = dir.join("s.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The shared run: four shards (the fourth from `JOB_COMPLETION_INDEX`/`VOICEBENCH_SHARDS`, as an Indexed Job's
/// pod), and a shard of the same scenario with another seed, all at once.
struct Shards {
    dir: PathBuf,
    outputs: Vec<(i32, String)>,
}

fn shards() -> &'static Shards {
    static RUN: OnceLock<Shards> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        let s = scenario(&dir);
        let spawn = |out: &str, args: &[&str], env: &[(&str, &str)]| {
            Command::new(env!("CARGO_BIN_EXE_voicebench"))
                .args(["run", s.to_str().unwrap(), "--out", out, "-q"])
                .args(args)
                .env_remove("JOB_COMPLETION_INDEX")
                .envs(env.iter().copied())
                .current_dir(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let children = vec![
            spawn("s1", &["--shard", "1/4"], &[]),
            spawn("s2", &["--shard", "2/4"], &[]),
            spawn("s3", &["--shard", "3/4"], &[]),
            spawn("s4", &[], &[("JOB_COMPLETION_INDEX", "3"), ("VOICEBENCH_SHARDS", "4")]),
            spawn("other-seed", &["--shard", "2/4", "--seed", "8"], &[]),
        ];
        let outputs = children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().unwrap();
                let (code, out, err) = text(&o);
                (code, out + &err)
            })
            .collect();
        Shards { dir, outputs }
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Merges `dirs` into `out` under the shared run's directory.
fn merge(out: &str, dirs: &[&str], extra: &[&str]) -> (i32, String) {
    let s = shards();
    let mut args = vec!["merge"];
    args.extend(dirs);
    args.extend(["--out", out]);
    args.extend(extra);
    let (code, out, err) = text(&voicebench(&s.dir, &args));
    (code, out + &err)
}

/// The merged directory of the four shards, made once.
fn merged() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let s = shards();
        for (i, (code, output)) in s.outputs.iter().enumerate() {
            assert_eq!(*code, 0, "shard run {i}: {output}");
        }
        let (code, output) = merge("merged", &["s1", "s2", "s3", "s4"], &[]);
        assert_eq!(code, 0, "{output}");
        s.dir.join("merged")
    })
}

/// The exact order statistic of `q` by the documented rule (docs/metrics.md): the sample of rank max(1, ⌈q·n⌉), in
/// whole µs.
fn order_statistic(sorted_us: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).max(1);
    sorted_us[rank - 1] as f64 / 1000.0
}

#[test]
fn four_shards_merge_to_the_figures_of_their_pooled_rows() {
    let s = shards();
    let dir = merged();
    // Each shard ran its slice: every Nth call, whole-run indices; the Indexed Job's pod is shard 4/4.
    let mut seeds = BTreeSet::new();
    for (i, name) in ["s1", "s2", "s3", "s4"].iter().enumerate() {
        let sum = json(&s.dir.join(name).join("summary.json"));
        assert_eq!(sum["shard"]["index"], i + 1, "{name}: {}", sum["shard"]);
        assert_eq!(sum["shard"]["count"], 4);
        seeds.insert(sum["shard"]["seed"].as_u64().unwrap());
        let calls: BTreeSet<u64> =
            rows(&s.dir.join(name).join("turns.jsonl")).iter().map(|r| r["call"].as_u64().unwrap()).collect();
        let want: BTreeSet<u64> = (0..u64::from(CALLS)).filter(|c| c % 4 == i as u64).collect();
        assert_eq!(calls, want, "{name} ran the wrong calls");
        let errors = super::summary::validate(&super::summary::schema(), &sum);
        assert!(errors.is_empty(), "{name}'s summary.json breaks the schema: {errors:?}");
    }
    assert_eq!(seeds.len(), 4, "each shard draws from its own seed stream");

    // The merged rows are the shards' rows, each call once.
    let turns = rows(&dir.join("turns.jsonl"));
    let shard_rows: usize =
        ["s1", "s2", "s3", "s4"].iter().map(|n| rows(&s.dir.join(n).join("turns.jsonl")).len()).sum();
    assert_eq!(turns.len(), shard_rows);
    let keys: BTreeSet<(String, u64, u64)> = turns
        .iter()
        .map(|r| (r["target"].as_str().unwrap().to_owned(), r["call"].as_u64().unwrap(), r["turn"].as_u64().unwrap()))
        .collect();
    assert_eq!(keys.len(), turns.len(), "a turn appears twice in the merged rows");

    // Every figure of the merged summary is the one computed here over the pooled rows.
    let sum = json(&dir.join("summary.json"));
    let errors = super::summary::validate(&super::summary::schema(), &sum);
    assert!(errors.is_empty(), "the merged summary.json breaks the schema: {errors:?}");
    assert_eq!(sum["merged"]["count"], 4);
    assert_eq!(sum["merged"]["shards"].as_array().unwrap().len(), 4);
    assert!(sum.get("shard").is_none() && sum.get("incomplete").is_none(), "{sum}");
    for t in sum["targets"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let mine: Vec<&Value> = turns.iter().filter(|r| r["target"] == name).collect();
        let metrics = t["metrics"].as_object().unwrap();
        assert!(metrics.contains_key("ttfa"), "{name}: {t}");
        for (metric, stats) in metrics {
            let mut us: Vec<u64> = mine
                .iter()
                .filter_map(|r| r[format!("{metric}_ms").as_str()].as_f64())
                .map(|ms| (ms * 1000.0).round() as u64)
                .collect();
            us.sort_unstable();
            assert_eq!(stats["count"].as_u64().unwrap(), us.len() as u64, "{name} {metric} count");
            for (stat, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)] {
                let want = order_statistic(&us, q);
                let got = stats[stat].as_f64().unwrap();
                assert!((got - want).abs() < 1e-9, "{name} {metric} {stat}: merged {got}, pooled rows {want}");
            }
        }
        // Counts are the shards' sums; the error rate is the pooled rows' own.
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut calls = 0;
        for n in ["s1", "s2", "s3", "s4"] {
            let shard = json(&s.dir.join(n).join("summary.json"));
            let st = shard["targets"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap().clone();
            calls += st["calls"].as_u64().unwrap();
            for (k, v) in st["counts"].as_object().unwrap() {
                *counts.entry(k.clone()).or_default() += v.as_u64().unwrap();
            }
        }
        assert_eq!(t["calls"].as_u64().unwrap(), calls, "{name} calls");
        assert_eq!(t["calls"].as_u64().unwrap(), u64::from(CALLS), "{name}: every call of the run");
        for (k, v) in &counts {
            assert_eq!(t["counts"][k].as_u64().unwrap(), *v, "{name} count {k}");
        }
        let failed = mine.iter().filter(|r| !r["error"].is_null()).count() as f64;
        let rate = t["error_rate"].as_f64().unwrap();
        assert!((rate - failed / t["turns"].as_f64().unwrap()).abs() < 1e-12, "{name}: error rate {rate}");
        assert_eq!(t["turns"].as_u64().unwrap(), mine.len() as u64, "{name}: turns (no call failed before a turn)");
    }

    // The merged HdrHistograms are the exact sum of the shards'.
    let read =
        |d: &Path| voicebench::report::hlog::histogram_set(&std::fs::read(d.join("histograms.hlog")).unwrap()).unwrap();
    let mut summed = read(&s.dir.join("s1"));
    for n in ["s2", "s3", "s4"] {
        summed.merge(&read(&s.dir.join(n))).unwrap();
    }
    let logged = read(dir);
    for t in summed.targets() {
        for (key, h) in t.histograms() {
            assert_eq!(logged.target(&t.name).unwrap().histogram(key.metric, key.scope), Some(h), "{}", t.name);
        }
    }
    assert_eq!(logged.pacing(), summed.pacing(), "pacing");
    assert!(sum["harness"]["pacing"]["samples"].as_u64().unwrap() > 0);

    // calls.jsonl: each shard's rows once; recordings copied under recordings/shard-<I>/, every path resolving.
    let lines = |d: &std::path::Path| std::fs::read_to_string(d.join("calls.jsonl")).unwrap().lines().count();
    let shard_dirs: Vec<PathBuf> = ["s1", "s2", "s3", "s4"].iter().map(|n| s.dir.join(n)).collect();
    assert_eq!(lines(dir), shard_dirs.iter().map(|d| lines(d)).sum::<usize>());
    let index: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("recordings/index.json")).unwrap()).unwrap();
    let shard_recordings: usize = shard_dirs
        .iter()
        .map(|d| std::fs::read_to_string(d.join("recordings/index.json")).map_or(0, |t| t.matches("\"file\"").count()))
        .sum();
    assert_eq!(index.len(), shard_recordings);
    assert!(!index.is_empty(), "each shard records its targets' slowest call");
    for e in &index {
        let file = e["file"].as_str().unwrap();
        assert!(file.starts_with("recordings/shard-") && dir.join(file).is_file(), "{e}");
    }
    for line in std::fs::read_to_string(dir.join("calls.jsonl")).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(f) = row["recording"].as_str() {
            assert!(dir.join(f).is_file(), "{f}");
        }
    }
}

#[test]
fn report_compare_and_gate_take_the_merged_directory() {
    let s = shards();
    let dir = merged();
    let d = dir.to_str().unwrap();
    for f in ["index.html", "report.md", "compare.json"] {
        assert!(dir.join(f).is_file(), "merge built no {f}");
    }
    let (code, out, err) = text(&voicebench(&s.dir, &["report", d]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = text(&voicebench(&s.dir, &["compare", d]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("native"), "{out}");
    let (code, out, err) = text(&voicebench(&s.dir, &["gate", d]));
    assert_eq!(code, 0, "the scenario's SLO holds on the merged run: {out}{err}");
    let (code, out, err) = text(&voicebench(&s.dir, &["gate", d, "--slo", "ttfa.p50=1ms"]));
    assert_eq!(code, 1, "a breached SLO fails the merged run's gate: {out}{err}");
    let (code, out, err) = text(&voicebench(&s.dir, &["gate", d, "--baseline", s.dir.join("s1").to_str().unwrap()]));
    assert!(code == 0 || code == 1, "the merged run gates against a shard as baseline: {out}{err}");
}

#[test]
fn merge_refuses_what_is_not_one_run_and_says_what_is_missing() {
    let s = shards();
    merged();
    let (code, out) = merge("m-missing", &["s1", "s2", "s4"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard 3 of 4 is missing") && out.contains("--allow-missing"), "{out}");

    let (code, out) = merge("m-partial", &["s1", "s2", "s4"], &["--allow-missing"]);
    assert_eq!(code, 0, "{out}");
    let sum = json(&s.dir.join("m-partial/summary.json"));
    assert_eq!(sum["incomplete"], true);
    assert_eq!(sum["merged"]["missing"], serde_json::json!([3]));
    let (code, out, err) = text(&voicebench(&s.dir, &["gate", "m-partial"]));
    assert_eq!(code, 2, "the gate refuses an incomplete merge: {out}{err}");

    let (code, out) = merge("m-twice", &["s1", "s2", "s2"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("are both shard 2/4"), "{out}");

    let (code, out) = merge("m-seed", &["s1", "other-seed", "s3", "s4"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not shards of one run: the seed differs (7 vs 8)"), "{out}");

    let (code, out) = merge("m-whole", &["s1", "merged"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is not a shard"), "{out}");

    let (code, out) = merge("s1", &["s1", "s2", "s3", "s4"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is one of the shards"), "{out}");
}

#[test]
fn a_shard_that_cannot_be_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let s = s.to_str().unwrap();
    for (args, want) in [
        (vec!["--shard", "5/4"], "shard 5/4 does not exist"),
        (vec!["--shard", "two/4"], "write I/N"),
        (vec!["--shard", "3/4", "--calls", "2"], "shard 3/4 has no calls"),
    ] {
        let mut all = vec!["run", s, "-q", "--out", "x"];
        all.extend(&args);
        let (code, out, err) = text(&voicebench(dir.path(), &all));
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", s, "-q", "--out", "x"])
        .env("JOB_COMPLETION_INDEX", "0")
        .env_remove("VOICEBENCH_SHARDS")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (code, _, err) = text(&o);
    assert_eq!(code, 2);
    assert!(err.contains("VOICEBENCH_SHARDS is not"), "{err}");
}
