//! The audio corpus: the manifest format, building it from TTS engines, and checking files against it.

pub mod build;
pub mod check;
pub mod crosscheck;
pub mod manifest;
