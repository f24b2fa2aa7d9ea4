//! The run's progress on stderr: an indicatif bar on a terminal (calls done, errors, live TTFA p50/p95), a plain
//! line every tenth of the calls otherwise.

use std::io::IsTerminal;

use crate::caller::record::{CallRecord, TurnRecord};

/// Progress: an indicatif bar on a terminal (calls done, errors, live TTFA p50/p95), plain lines otherwise.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    errors: u64,
    ttfa: crate::metrics::Exact,
    next_line: u64,
    enabled: bool,
}

impl Progress {
    pub(super) fn new(total: u64, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} calls  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Self { bar, total, done: 0, errors: 0, ttfa: crate::metrics::Exact::new(), next_line: 0, enabled }
    }

    fn status(&self) -> String {
        let q = |p: f64| match self.ttfa.quantile(p) {
            Some(us) => format!("{:.0}", us as f64 / 1000.0),
            None => "–".into(),
        };
        format!("errors {}  TTFA p50 {} ms  p95 {} ms", self.errors, q(0.5), q(0.95))
    }

    pub(super) fn turn(&mut self, t: &TurnRecord) {
        if let Some(us) = t.value(crate::model::Metric::Ttfa).and_then(crate::metrics::ms_to_us) {
            self.ttfa.record(us);
        }
        if t.error.is_some() {
            self.errors += 1;
        }
    }

    pub(super) fn call(&mut self, c: &CallRecord) {
        self.done += 1;
        if c.error.is_some() && c.turns_ok == 0 && c.connect_ms.is_some() && c.duration_ms == 0.0 {
            self.errors += 1;
        }
        if let Some(b) = &self.bar {
            b.set_position(self.done);
            b.set_message(self.status());
        } else if self.enabled && (self.done >= self.next_line || self.done == self.total) {
            eprintln!("[{}/{} calls] {}", self.done, self.total, self.status());
            self.next_line = self.done + (self.total / 10).max(1);
        }
    }

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
