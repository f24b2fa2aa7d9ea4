//! Command-line interface (clap derive; the help text is these doc comments).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// voicebench: measure how fast a voice agent answers, whether it stops when interrupted, and whether it calls
/// the right tool — native speech-to-speech endpoints and STT→LLM→TTS pipelines, head to head.
#[derive(Debug, Parser)]
#[command(name = "voicebench", version, about, max_term_width = 110)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// voicebench's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files: syntax, keys, values, WAVs, tools, matchers, targets. Exits 0 when all are valid, 2
    /// otherwise, printing every problem as file:line:col with a hint.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Build or check the audio corpus (the caller's utterances and the simulated agent's replies).
    Corpus {
        /// Build or check.
        #[command(subcommand)]
        action: CorpusAction,
    },
}

/// `voicebench corpus …`
#[derive(Debug, Subcommand)]
pub enum CorpusAction {
    /// Verify every WAV against the manifest: present, decodable, same SHA-256, same length and speech bounds.
    /// With --cross-check, also compare the bounds with an independent neural VAD (earshot).
    Check {
        /// The corpus directory.
        #[arg(long, default_value = "audio-corpus")]
        corpus: PathBuf,
        /// Compare every utterance's speech bounds with earshot's and report the differences.
        #[arg(long)]
        cross_check: bool,
        /// With --cross-check: the largest allowed difference, ms.
        #[arg(long, default_value_t = 30.0)]
        tolerance_ms: f64,
    },
    /// Regenerate the corpus: install the TTS engines (apt, pip venv), synthesise every line of
    /// audio-corpus/lines.toml, assemble, make the noisy and telephone variants, annotate with the energy VAD, and
    /// write manifest.json.
    Build {
        /// The corpus directory (holding lines.toml).
        #[arg(long, default_value = "audio-corpus")]
        corpus: PathBuf,
        /// Use already-synthesised raw audio from this directory instead of running the engines.
        #[arg(long)]
        raw: Option<PathBuf>,
    },
}

/// Runs a parsed command line; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Corpus { action } => match action {
            CorpusAction::Check { corpus, cross_check, tolerance_ms } => {
                crate::corpus::check::run(&corpus, cross_check, tolerance_ms)
            }
            CorpusAction::Build { corpus, raw } => crate::corpus::build::run(&corpus, raw.as_deref()).map(|()| 0),
        },
    }
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut failed = 0;
    for f in files {
        match crate::scenario::load(f) {
            Ok(s) => {
                let n_tools: usize = s.turns.iter().map(|t| t.tool_calls.len()).sum();
                println!(
                    "{}: ok — scenario `{}`, {} target(s), {} turn(s), {} expected tool call(s), {} SLO(s)",
                    f.display(),
                    s.name,
                    s.targets.len(),
                    s.turns.len(),
                    n_tools,
                    s.slo.len()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}\n");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} scenario file(s) invalid", files.len());
        2
    } else {
        0
    }
}
