//! voicebench's integration tests: one binary (one link), one module per area.

mod azure;
mod content;
mod corpus;
mod faults;
mod fuzz_inputs;
mod gate;
mod load;
mod network;
mod pipeline;
mod protocols;
mod quantiles;
mod report;
mod run;
mod shards;
mod summary;
mod validate;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Held by the tests that measure timing against ground truth (and by the heaviest load generator among them, the
/// gate's 20-trial false-positive run), so they never overlap each other: each measures the harness and the sim,
/// not another test's calls competing for the same 2 cores. Other tests still run beside them. A panicking holder
/// poisons the lock; the next test takes it anyway.
pub fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes the short fixed-profile call (`voicebench::run::bench::fixed_scenario_toml`) with `extra_targets` as
/// `dir/name`, and returns its path.
pub fn write_fixed_scenario(dir: &Path, name: &str, extra_targets: &str) -> PathBuf {
    let path = dir.join(name);
    let toml = voicebench::run::bench::fixed_scenario_toml(&root().join("audio-corpus"), extra_targets);
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs the voicebench binary with arguments, from `dir`.
pub fn voicebench(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voicebench")).args(args).current_dir(dir).output().expect("voicebench runs")
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Exit code, stdout and stderr of a run, as text.
pub fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
