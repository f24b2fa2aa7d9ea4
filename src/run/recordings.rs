//! Which calls' recordings a run keeps, and where: `recordings/<target>/call-<N>.wav` for every call that failed
//! (a turn with an error or a failed content check, a failed task, a call that ended early) or every call under
//! `--record all`, written when the call ends and named in its `calls.jsonl` row; and the slowest call of each
//! target (the highest worst-turn TTFA) as `recordings/<target>/slowest.wav`, rewritten as a slower call ends.
//! `recordings/index.json` lists them all with why each was kept ([`crate::report::recordings`]); the page reads it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::caller::recording::{RecordMode, Recording};
use crate::model::CallRecord;
use crate::report::recordings::{Entry, INDEX};

#[derive(Debug, Default)]
struct State {
    /// What was kept so far; a target's `slowest` entry holds the worst TTFA any later call must beat.
    entries: Vec<Entry>,
    errors: Vec<String>,
}

/// The run's recordings.
#[derive(Debug)]
pub struct Recordings {
    mode: RecordMode,
    dir: PathBuf,
    state: Mutex<State>,
}

/// Whether a call failed in any way a recording helps to understand.
pub fn failed(c: &CallRecord) -> bool {
    c.error.is_some() || c.turns_ok < c.turns_total || c.content_failed > 0 || c.task_ok == Some(false)
}

/// A target name as a directory name (names are validated, but a path must never leave `recordings/`).
fn dir_name(target: &str) -> String {
    target.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

impl Recordings {
    /// Recordings under `out_dir/recordings` in `mode`.
    pub fn new(out_dir: &Path, mode: RecordMode) -> Recordings {
        Recordings { mode, dir: out_dir.to_owned(), state: Mutex::new(State::default()) }
    }

    /// Whether calls should record at all.
    pub fn enabled(&self) -> bool {
        self.mode != RecordMode::None
    }

    fn write(&self, rec: &Recording, rel: &str) -> Result<(), String> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        rec.write(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// A call ended with `rec`: keeps it if the mode says so, and sets the call's `recording` when it is written now.
    pub fn offer(&self, call: &mut CallRecord, rec: Recording) {
        let target = dir_name(&call.target);
        let why = match self.mode {
            RecordMode::None => return,
            RecordMode::All => Some("all"),
            RecordMode::Failures if failed(call) => Some("failed"),
            RecordMode::Failures => None,
        };
        let entry = |file: String, why: &str| Entry {
            target: call.target.clone(),
            call: call.call,
            file,
            why: why.to_string(),
            ttfa_max_ms: call.ttfa_max_ms,
        };
        if let Some(why) = why {
            // Its own file: written without holding the lock, so calls ending together write side by side.
            let file = format!("recordings/{target}/call-{}.wav", call.call);
            let written = self.write(&rec, &file);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match written {
                Ok(()) => {
                    call.recording = Some(file.clone());
                    st.entries.push(entry(file, why));
                }
                Err(e) => st.errors.push(e),
            }
            return;
        }
        // Not failed: kept only while it is its target's slowest call (the lock held across the write, so two
        // calls cannot both think they are the slowest and overwrite each other's file).
        let Some(ttfa) = call.ttfa_max_ms else { return };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slowest = |e: &Entry| e.target == call.target && e.why == "slowest";
        if st.entries.iter().find(|e| slowest(e)).and_then(|e| e.ttfa_max_ms).is_some_and(|t| t >= ttfa) {
            return;
        }
        let file = format!("recordings/{target}/slowest.wav");
        match self.write(&rec, &file) {
            Ok(()) => {
                st.entries.retain(|e| !slowest(e));
                st.entries.push(entry(file, "slowest"));
            }
            Err(e) => st.errors.push(e),
        }
    }

    /// Writes `recordings/index.json` (when anything was recorded); returns the problems met writing, if any.
    pub fn finish(&self) -> Vec<String> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.entries.is_empty() {
            st.entries.sort_by(|a, b| (&a.target, a.call, &a.why).cmp(&(&b.target, b.call, &b.why)));
            let path = self.dir.join(INDEX);
            let json = serde_json::to_string_pretty(&st.entries).unwrap_or_default();
            if let Err(e) = std::fs::write(&path, json) {
                st.errors.push(format!("cannot write {}: {e}", path.display()));
            }
        }
        std::mem::take(&mut st.errors)
    }
}
