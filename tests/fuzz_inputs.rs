//! Fuzzing on stable Rust (proptest) of the two readers a user feeds files to: the scenario loader (any text →
//! a scenario or diagnostics, never a panic) and the WAV reader (any bytes → audio or an error, never a panic).
//!
//! CI runs a bounded number of cases per property (64, a few seconds). A long campaign sets the count, e.g.
//! `PROPTEST_CASES=200000 cargo test --test tests fuzz_inputs:: -- --nocapture`; a failure prints the shrunk input
//! and proptest saves its seed under `proptest-regressions/` so the case is replayed on the next run.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::root;

/// 64 cases per property, or `PROPTEST_CASES`.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// The booking scenario, the seed the mutations start from (its references resolve from its own path).
fn booking() -> (PathBuf, String) {
    let path = root().join("scenarios/booking.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// One edit of a text: delete a range, insert a fragment, or duplicate a range (cut at char boundaries).
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Fragments that reach deep into the schema: keys, tables, arrays, odd values and odd bytes.
    let fragment = prop_oneof![
        Just("[[turns]]\n".to_string()),
        Just("[[targets]]\n".to_string()),
        Just("url = \"ws://127.0.0.1:99999/x\"\n".to_string()),
        Just("wav = \"/\"\n".to_string()),
        Just("protocol = \"openai-realtime\"\n".to_string()),
        Just("= = =\n".to_string()),
        Just("\"\u{0}\u{ffff}\"".to_string()),
        Just("1e999".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("{ a = [1, \"b\", {c = 2}] }".to_string()),
        "\\PC{0,40}",
    ];
    prop_oneof![
        (any::<usize>(), 0usize..200).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), fragment).prop_map(|(a, f)| Edit::Insert(a, f)),
        (any::<usize>(), 0usize..400).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(mut s: String, edits: &[Edit]) -> String {
    for e in edits {
        match e {
            Edit::Delete(a, n) => {
                let a = boundary(&s, *a);
                let b = boundary(&s, (a + n).min(s.len()));
                s.replace_range(a..b.max(a), "");
            }
            Edit::Insert(a, f) => {
                let a = boundary(&s, *a);
                s.insert_str(a, f);
            }
            Edit::Duplicate(a, n) => {
                let a = boundary(&s, *a);
                let b = boundary(&s, (a + n).min(s.len())).max(a);
                let piece = s[a..b].to_string();
                s.insert_str(b, &piece);
            }
        }
    }
    s
}

/// Loading must end in a scenario or in diagnostics that render; a panic fails the property.
fn load(path: &Path, text: &str) {
    match voicebench::scenario::parse(path, text) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_a_scenario_or_a_diagnostic(text in "\\PC{0,400}") {
        load(&root().join("scenarios/fuzz.toml"), &text);
    }

    #[test]
    fn any_mutation_of_a_real_scenario_is_a_scenario_or_a_diagnostic(edits in prop::collection::vec(edit(), 1..6)) {
        let (path, text) = booking();
        load(&path, &apply(text, &edits));
    }

    #[test]
    fn any_bytes_are_audio_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = voicebench::audio::wav::decode_wav(Path::new("fuzz.wav"), &bytes);
    }

    #[test]
    fn any_header_of_a_wav_is_audio_or_an_error(
        fields in prop::collection::vec((0usize..44, any::<u8>()), 0..8),
        body in prop::collection::vec(any::<u8>(), 0..1024),
        cut in any::<usize>(),
    ) {
        // A valid 16 kHz mono 16-bit header, then random bytes of it overwritten (sizes, rates, formats) and the
        // whole cut anywhere.
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&16_000u32.to_le_bytes());
        wav.extend_from_slice(&32_000u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(body.len() as u32).to_le_bytes());
        wav.extend_from_slice(&body);
        for (at, b) in fields {
            wav[at] = b;
        }
        wav.truncate(cut % (wav.len() + 1));
        let _ = voicebench::audio::wav::decode_wav(Path::new("fuzz.wav"), &wav);
    }
}
