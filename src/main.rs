//! The `voicebench` binary: parse arguments, run, print `Error: …` with the whole context chain, exit 0/1/2.

use clap::Parser;

fn main() {
    // Every TLS client here (tokio-tungstenite's `wss://`, the pipelines' HTTPS) runs on rustls, which needs a
    // process-wide crypto provider: install aws-lc-rs's once, before any connection, so none panics choosing one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // A panic's message passes through the secret scrubber like every other output.
    voicebench::secret::install_panic_hook();
    let cli = voicebench::cli::Cli::parse();
    let code = match voicebench::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", voicebench::secret::scrub(&format!("{e:#}")));
            2
        }
    };
    std::process::exit(code);
}
