//! Open-loop load (issue 17, docs/metrics.md "Load") over real sockets: calls started on a schedule against the
//! embedded sim. Past `--max-in-flight`, arrivals that find no slot within `--max-start-delay` are dropped and
//! counted in summary.json and on the terminal; below capacity every arrival starts. (The admission's timing, late
//! starts included, is tested on tokio's paused clock in `run::load`.)

use std::path::Path;

use serde_json::Value;

use super::{text, voicebench, write_fixed_scenario};

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn call_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("calls.csv")).unwrap().lines().count() - 1
}

#[test]
fn an_open_loop_counts_the_calls_it_could_not_start_and_drops_none_below_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_fixed_scenario(dir.path(), "s.toml", "");
    let s = s.to_str().unwrap().to_owned();
    let (d, s2) = (dir.path().to_owned(), s.clone());
    // Over capacity: 4 calls/s for 2 s (8 arrivals) with 3 slots; each call holds its slot ~19 s, so the 4th
    // arrival onwards finds none within 500 ms.
    let over = std::thread::spawn(move || {
        let args = ["run", &s2, "--out", "over", "-q", "--rate", "4/s", "--duration", "2s", "--max-in-flight", "3"];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--max-start-delay", "500ms"]);
        text(&voicebench(&d, &args))
    });
    // Below capacity: 2 calls/s for 2 s, the default 1000 slots; the harness asks for real-time priority.
    let below = text(&voicebench(
        dir.path(),
        &[
            "run",
            &s,
            "--out",
            "below",
            "-q",
            "--rate",
            "2/s",
            "--duration",
            "2s",
            "--arrivals",
            "constant",
            "--realtime",
        ],
    ));
    let over = over.join().unwrap();

    assert_eq!(over.0, 0, "{}{}", over.1, over.2);
    let sum = summary(&dir.path().join("over"));
    let l = &sum["load"];
    assert_eq!(
        (l["intended"].as_u64(), l["started"].as_u64(), l["dropped"].as_u64()),
        (Some(8), Some(3), Some(5)),
        "{l}"
    );
    assert_eq!(l["late"], 0, "a dropped call is not also late: {l}");
    assert_eq!(l["max_in_flight"], 3);
    assert_eq!(call_rows(&dir.path().join("over")), 3, "only started calls have rows");
    assert!(over.1.contains("8 calls intended, 3 started") && over.1.contains("5 dropped"), "{}", over.1);
    let errors = super::summary::validate(&super::summary::schema(), &sum);
    assert!(errors.is_empty(), "summary.json breaks the schema: {errors:?}");

    assert_eq!(below.0, 0, "{}{}", below.1, below.2);
    // Granted as root or with CAP_SYS_NICE, refused (and said so) otherwise; never silently normal.
    let priority = summary(&dir.path().join("below"))["run"]["priority"].clone();
    match priority.as_str() {
        Some("realtime") => {}
        Some("refused") => assert!(below.2.contains("real-time refused"), "{}", below.2),
        other => panic!("--realtime recorded priority {other:?}"),
    }
    assert_eq!(summary(&dir.path().join("over"))["run"]["priority"], "normal");
    let l = &summary(&dir.path().join("below"))["load"];
    assert_eq!(
        (l["intended"].as_u64(), l["started"].as_u64(), l["dropped"].as_u64()),
        (Some(4), Some(4), Some(0)),
        "{l}"
    );
    assert!(l["late"].as_u64().unwrap() <= 1, "a call started 10 ms late below capacity: {l}");
    assert_eq!(l["start_lateness"]["samples"], 4);
    assert_eq!(call_rows(&dir.path().join("below")), 4);
    // Every turn is in one 10 s window of the run's time, and the windows' turns add up to the target's.
    let t = &summary(&dir.path().join("below"))["targets"][0];
    let windows = t["over_time"].as_array().unwrap();
    assert!(!windows.is_empty(), "{t}");
    assert!(windows.iter().all(|w| w["start_s"].as_u64().unwrap() % 10 == 0), "{windows:?}");
    let turns: u64 = windows.iter().map(|w| w["turns"].as_u64().unwrap()).sum();
    assert_eq!(turns, t["turns"].as_u64().unwrap(), "{windows:?}");
}

#[test]
fn open_loop_flags_that_do_not_go_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_fixed_scenario(dir.path(), "s.toml", "");
    let s = s.to_str().unwrap();
    for (args, want) in [
        (vec!["--rate", "2/s"], "--rate needs --duration"),
        (vec!["--rate", "2/s", "--duration", "5s", "--calls", "3"], "closed loop"),
        (vec!["--stages", "10s:2/s", "--rate", "1/s"], "--stages replaces"),
        (vec!["--rate", "2/d", "--duration", "5s"], "is not a rate"),
        (vec!["--stages", "10s-2/s"], "DURATION:RATE"),
        (vec!["--max-in-flight", "5"], "shape an open loop"),
        (vec!["--rate", "0.01/s", "--duration", "1s", "--shard", "2/2"], "starts no call in this shard"),
    ] {
        let mut all = vec!["run", s, "-q", "--out", "x"];
        all.extend(&args);
        let (code, out, err) = text(&voicebench(dir.path(), &all));
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_loop_ramp_up_starts_its_calls_evenly_and_is_refused_with_an_open_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_fixed_scenario(tmp.path(), "fixed.toml", "");
    let out = tmp.path().join("out");
    let args = ["run", path.to_str().unwrap(), "--calls", "4", "--concurrency", "4", "--ramp-up", "3s", "-q"];
    let (code, _, err) = text(&voicebench(tmp.path(), &[&args[..], &["--out", out.to_str().unwrap()]].concat()));
    assert_eq!(code, 0, "{err}");
    // The i-th of 4 starts after i/4 of 3 s (plus its phase within a frame and its connection).
    let csv = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let mut starts: Vec<(u32, f64)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[col("call")].parse().unwrap(), rec[col("started_ms")].parse().unwrap())
        })
        .collect();
    starts.sort_by_key(|s| s.0);
    for (i, (_, ms)) in starts.iter().enumerate() {
        let due = 750.0 * i as f64;
        assert!((due..due + 300.0).contains(ms), "call {i} started at {ms} ms, due at {due}");
    }
    assert_eq!(summary(&out)["run"]["ramp_up_ms"], 3000.0);
    let (code, _, err) = text(&voicebench(
        tmp.path(),
        &["run", path.to_str().unwrap(), "--rate", "2/s", "--duration", "2s", "--ramp-up", "3s"],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--ramp-up spreads a closed loop's starts"), "{err}");
}
