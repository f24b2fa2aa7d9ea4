//! voicebench: a benchmark harness for voice agents.
//!
//! The library holds everything; `src/main.rs` only parses arguments, runs, and maps errors to exit codes. No
//! terminal formatting lives below [`cli`] but for the report renderers, which return strings.

pub mod audio;
pub mod caller;
pub mod cli;
pub mod compare;
pub mod corpus;
pub mod diag;
pub mod gate;
pub mod metrics;
pub mod model;
pub mod pages;
pub mod plots;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod secret;
pub mod sim;
pub mod stats;
pub mod targets;

/// A wire-protocol fixture from `tests/fixtures/protocols/` (captured or documented event sequences; where each
/// came from is in that folder's SOURCES.md), parsed; panics naming the file when it is missing. Tests only.
#[cfg(test)]
pub(crate) fn protocol_fixture(name: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protocols").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
