//! The baseline store: named copies of report directories' raw samples, so a later run can be tested against them
//! (criterion keeps raw samples for the same reason: a summary cannot be bootstrapped).
//!
//! `<store>/<name>/` holds `turns.jsonl`, `calls.csv` and `summary.json`. The store is `.voicebench/baselines`
//! (relative to the working directory) unless `VOICEBENCH_BASELINES` names another.

use std::fs;
use std::path::{Path, PathBuf};

use super::GateError;
use crate::report::read::ReadError;

/// The store when `VOICEBENCH_BASELINES` is unset.
pub const DEFAULT_STORE: &str = ".voicebench/baselines";

/// The environment variable that overrides the store.
pub const STORE_ENV: &str = "VOICEBENCH_BASELINES";

/// The files a baseline keeps.
pub const FILES: &[&str] = &["turns.jsonl", "calls.csv", "summary.json"];

/// The store: `$VOICEBENCH_BASELINES`, or [`DEFAULT_STORE`].
pub fn default_store() -> PathBuf {
    match std::env::var_os(STORE_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_STORE),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Copies `report_dir`'s `turns.jsonl`, `calls.csv` and `summary.json` into `<store>/<name>/`, replacing a
/// baseline of that name. Returns the baseline's directory.
pub fn save_baseline(report_dir: &Path, name: &str, store: &Path) -> Result<PathBuf, GateError> {
    if !valid_name(name) {
        return Err(GateError::BadBaselineName { name: name.to_owned() });
    }
    for f in FILES {
        if !report_dir.join(f).is_file() {
            return Err(GateError::Read(ReadError::NotAReport {
                dir: report_dir.to_owned(),
                missing: f,
                hint: "only a finished run's report directory can be saved as a baseline".into(),
            }));
        }
    }
    let dest = store.join(name);
    // Saving a baseline onto itself (`voicebench gate <store>/main --save-baseline main`) changes nothing.
    if let (Ok(a), Ok(b)) = (report_dir.canonicalize(), dest.canonicalize())
        && a == b
    {
        return Ok(dest);
    }
    fs::create_dir_all(store).map_err(GateError::io("create directory", store))?;
    // Copied under a temporary name and renamed, so the store never holds half a baseline.
    let tmp = store.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(GateError::io("remove", &tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(GateError::io("create directory", &tmp))?;
    for f in FILES {
        let to = tmp.join(f);
        fs::copy(report_dir.join(f), &to).map_err(GateError::io("copy to", &to))?;
    }
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(GateError::io("replace", &dest))?;
    }
    fs::rename(&tmp, &dest).map_err(GateError::io("create", &dest))?;
    Ok(dest)
}

/// The baselines in `store`, by name, sorted.
pub fn list_baselines(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("turns.jsonl").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| valid_name(n))
        .collect();
    names.sort();
    names
}

/// What `--baseline ARG` means: a report directory (one holding `turns.jsonl`), else the baseline named `ARG` in
/// `store`. A name with nothing saved under it is an error that says how to save one.
pub fn resolve_baseline(arg: &str, store: &Path) -> Result<PathBuf, GateError> {
    let path = Path::new(arg);
    if path.join("turns.jsonl").is_file() {
        return Ok(path.to_owned());
    }
    if valid_name(arg) {
        let saved = store.join(arg);
        if saved.join("turns.jsonl").is_file() {
            return Ok(saved);
        }
    }
    if path.is_dir() {
        return Err(GateError::Read(ReadError::NotAReport {
            dir: path.to_owned(),
            missing: "turns.jsonl",
            hint: "give a report directory or the name of a saved baseline".into(),
        }));
    }
    if valid_name(arg) {
        return Err(GateError::NoBaseline {
            name: arg.to_owned(),
            store: store.to_owned(),
            saved: list_baselines(store),
        });
    }
    Err(GateError::Io {
        action: "read baseline",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such report directory"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for f in FILES {
            fs::write(dir.join(f), format!("{f}\n")).unwrap();
        }
    }

    #[test]
    fn save_then_resolve_by_name_and_by_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, store) = (tmp.path().join("run"), tmp.path().join("store"));
        report(&run);
        let saved = save_baseline(&run, "main", &store).unwrap();
        assert_eq!(saved, store.join("main"));
        for f in FILES {
            assert_eq!(fs::read_to_string(saved.join(f)).unwrap(), format!("{f}\n"));
        }
        assert_eq!(resolve_baseline("main", &store).unwrap(), store.join("main"));
        assert_eq!(resolve_baseline(run.to_str().unwrap(), &store).unwrap(), run);
        assert_eq!(list_baselines(&store), ["main"]);
        // Saving again replaces it; saving it onto itself is a no-op.
        fs::write(run.join("turns.jsonl"), "new\n").unwrap();
        save_baseline(&run, "main", &store).unwrap();
        assert_eq!(fs::read_to_string(store.join("main/turns.jsonl")).unwrap(), "new\n");
        save_baseline(&store.join("main"), "main", &store).unwrap();
        assert_eq!(fs::read_to_string(store.join("main/turns.jsonl")).unwrap(), "new\n");
        assert_eq!(list_baselines(&store), ["main"]);
    }

    #[test]
    fn a_missing_name_says_how_to_create_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        report(&tmp.path().join("run"));
        save_baseline(&tmp.path().join("run"), "main", &store).unwrap();
        let e = resolve_baseline("mains", &store).unwrap_err().to_string();
        assert!(e.contains("voicebench gate DIR --save-baseline mains"), "{e}");
        assert!(e.contains("did you mean `main`"), "{e}");
        assert!(e.contains(STORE_ENV), "{e}");
        let e = resolve_baseline("main", &tmp.path().join("empty")).unwrap_err().to_string();
        assert!(e.contains("the store is empty"), "{e}");
    }

    #[test]
    fn bad_names_and_incomplete_reports_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        report(&run);
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(matches!(save_baseline(&run, bad, tmp.path()), Err(GateError::BadBaselineName { .. })), "{bad}");
        }
        fs::remove_file(run.join("summary.json")).unwrap();
        let e = save_baseline(&run, "x", tmp.path()).unwrap_err().to_string();
        assert!(e.contains("summary.json is missing"), "{e}");
    }
}
