//! The audio corpus: `corpus check` passes on the committed corpus and names an altered or missing file;
//! `corpus build --raw` assembles, varies, annotates and hashes; the bounds survive an independent neural VAD.

use std::path::Path;

use voicebench::audio::{Pcm, wav::write_wav};
use voicebench::corpus::crosscheck::neural_bounds;
use voicebench::corpus::manifest::Manifest;
use voicebench::stats::SplitMix64;

use super::{root, text, voicebench};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn committed_corpus_checks_out() {
    let (code, out, err) = text(&voicebench(&root(), &["corpus", "check"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("64 utterances ok"), "{out}");
}

#[test]
fn altered_or_missing_wav_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audio-corpus");
    copy_dir(&root().join("audio-corpus"), &dir);
    // Flip one sample in the middle of one file.
    let victim = dir.join("caller/joe/request.wav");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    std::fs::remove_file(dir.join("agent/agent/booked.wav")).unwrap();
    let (code, out, err) = text(&voicebench(tmp.path(), &["corpus", "check", "--corpus", "audio-corpus"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("audio-corpus/caller/joe/request.wav: altered"), "{err}");
    assert!(err.contains("audio-corpus/agent/agent/booked.wav"), "{err}");
    assert!(err.contains("2 problem(s)"), "{err}");
}

/// The energy VAD's bounds against earshot's. The neural VAD ignores weak unvoiced edges (an initial "s" or "h",
/// a final "t" release) that the −40 dBFS gate counts, so it may place bounds *inside* the manifest's; what it must
/// never do is find speech well *outside* them (which would mean the manifest cuts speech off).
#[test]
fn bounds_agree_with_an_independent_vad() {
    let dir = root().join("audio-corpus");
    let m = Manifest::load(&dir).unwrap();
    let mut within = 0;
    let mut worst: (f64, String) = (0.0, String::new());
    let clean: Vec<_> = m.utterances.iter().filter(|u| u.variant_of.is_none()).collect();
    for u in &clean {
        let pcm = voicebench::audio::read_wav(&dir.join(&u.file)).unwrap();
        let (s, e) = neural_bounds(&pcm).unwrap_or_else(|| panic!("{}: earshot hears no speech", u.id));
        let (ds, de) = (s - u.speech_start_ms, e - u.speech_end_ms);
        assert!(
            ds > -30.0 && de < 30.0,
            "{}: earshot finds speech outside the manifest bounds: {ds:+.1} / {de:+.1} ms",
            u.id
        );
        assert!(ds.abs() < 100.0 && de.abs() < 100.0, "{}: bounds {ds:+.1} / {de:+.1} ms from earshot's", u.id);
        if ds.abs() <= 30.0 && de.abs() <= 30.0 {
            within += 1;
        }
        for d in [ds, de] {
            if d.abs() > worst.0.abs() {
                worst = (d, u.id.clone());
            }
        }
    }
    eprintln!("earshot within ±30 ms at both ends: {within}/{}; worst {:+.1} ms ({})", clean.len(), worst.0, worst.1);
    assert!(within * 4 >= clean.len() * 3, "only {within}/{} within ±30 ms", clean.len());
}

/// A crude voiced sound with known edges: a pulse train through a resonance.
fn vowel(rate: u32, ms: u32, seed: u64) -> Vec<i16> {
    let n = (rate * ms / 1000) as usize;
    let mut rng = SplitMix64::new(seed);
    let (mut y1, mut y2) = (0.0f64, 0.0f64);
    let r = 0.97f64;
    let w = 2.0 * std::f64::consts::PI * 700.0 / rate as f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let x = if (t * 130.0).fract() < 0.05 { 1.0 } else { 0.0 } + 0.01 * (rng.next_f64() - 0.5);
            let y = x + 2.0 * r * w.cos() * y1 - r * r * y2;
            y2 = y1;
            y1 = y;
            (y * 900.0).clamp(-32000.0, 32000.0) as i16
        })
        .collect()
}

#[test]
fn build_from_raw_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audio-corpus");
    let raw = tmp.path().join("raw");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lines.toml"),
        r#"
[[voice]]
id = "a"
role = "caller"
engine = "test"
model = "vowel"
[[voice]]
id = "b"
role = "caller"
engine = "test"
model = "vowel"
[[voice]]
id = "ag"
role = "agent"
engine = "test"
model = "vowel"
[[variant]]
id = "a-pink"
from = "a"
kind = "pink"
snr_db = 20.0
[[variant]]
id = "a-babble"
from = "a"
kind = "babble"
snr_db = 15.0
sources = ["b"]
[[variant]]
id = "a-tel"
from = "a"
kind = "telephone"
[[line]]
id = "one"
role = "caller"
text = "one"
[[line]]
id = "two"
role = "caller"
parts = ["two", "three"]
pause_ms = 700
[[line]]
id = "reply"
role = "agent"
text = "reply"
"#,
    )
    .unwrap();
    // Raw engine output at 22.05 kHz with 250 ms of leading and 400 ms of trailing silence.
    let rate = 22_050;
    let padded = |v: Vec<i16>| {
        let mut s = vec![0i16; rate as usize / 4];
        s.extend(v);
        s.extend(vec![0i16; rate as usize * 2 / 5]);
        Pcm::new(rate, s)
    };
    for (voice, lines) in
        [("a", vec!["one.0", "two.0", "two.1"]), ("b", vec!["one.0", "two.0", "two.1"]), ("ag", vec!["reply.0"])]
    {
        for (k, l) in lines.iter().enumerate() {
            write_wav(&raw.join(voice).join(format!("{l}.wav")), &padded(vowel(rate, 600 + 100 * k as u32, k as u64)))
                .unwrap();
        }
    }
    let (code, out, err) = text(&voicebench(tmp.path(), &["corpus", "build", "--raw", "raw"]));
    assert_eq!(code, 0, "{out}{err}");
    let m = Manifest::load(&dir).unwrap();
    // 2 lines × (2 voices + 3 variants) + 1 agent line
    assert_eq!(m.utterances.len(), 11, "{:#?}", m.utterances.iter().map(|u| &u.id).collect::<Vec<_>>());
    let two = m.find("caller", "two", "a").unwrap();
    assert_eq!(two.sample_rate, 16_000);
    assert_eq!(two.pauses.len(), 1, "{two:?}");
    let pause = two.pauses[0].end_ms - two.pauses[0].start_ms;
    assert!((pause - 700.0).abs() < 25.0, "pause {pause} ms");
    // Padding: 300 ms of silence, then speech (the trim margin is sub-gate, so the bound sits near 320 ms).
    assert!((two.speech_start_ms - 320.0).abs() < 15.0, "{two:?}");
    let tel = m.find("caller", "two", "a-tel").unwrap();
    assert_eq!(tel.sample_rate, 8_000);
    assert_eq!(tel.speech_start_ms, two.speech_start_ms);
    assert_eq!(tel.bounds_from, "clean source caller/a/two");
    assert_eq!(m.find("agent", "reply", "ag").unwrap().sample_rate, 24_000);
    let (code, out, err) = text(&voicebench(tmp.path(), &["corpus", "check"]));
    assert_eq!(code, 0, "{out}{err}");
}
