//! The `voicebench` binary: parse arguments, run, print `Error: …` with the whole context chain, exit 0/1/2.

use clap::Parser;

fn main() {
    // tokio-tungstenite and reqwest with rustls pick no crypto provider on their own; `wss://` panics without one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = voicebench::cli::Cli::parse();
    let code = match voicebench::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
