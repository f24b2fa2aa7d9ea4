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
            eprintln!("Error: {}", voicebench::secret::scrub(&error_chain(&e)));
            2
        }
    };
    std::process::exit(code);
}

/// The error and its causes joined by `: `, as anyhow's `{:#}` prints them, but a cause whose text the message
/// before it already ends with is left out: errors that quote their source (`cannot read X: no such file`) would
/// otherwise print it twice.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
