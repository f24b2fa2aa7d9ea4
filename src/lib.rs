//! voicebench: a benchmark harness for voice agents.
//!
//! The library holds everything; `src/main.rs` only parses arguments, runs, and maps errors to exit codes. No
//! terminal formatting lives below [`cli`] but for the report renderers, which return strings.

pub mod audio;
pub mod caller;
pub mod cli;
pub mod corpus;
pub mod gate;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod targets;
