//! `voicebench corpus check`: every WAV is present, decodes, has the manifest's SHA-256, length and speech bounds;
//! optionally, the bounds agree with an independent neural VAD (earshot).

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::crosscheck::neural_bounds;
use super::manifest::{Manifest, Utterance};
use crate::audio::{Pcm, vad::EnergyVad, wav::decode_wav};

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One utterance's problem, naming its file.
fn check_one(dir: &Path, u: &Utterance, vad: &EnergyVad) -> Result<Pcm, String> {
    let path = dir.join(&u.file);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sum = sha256_hex(&bytes);
    if sum != u.sha256 {
        return Err(format!("{}: altered: its SHA-256 is {sum}, the manifest says {}", path.display(), u.sha256));
    }
    let pcm = decode_wav(&path, &bytes).map_err(|e| e.to_string())?;
    if pcm.rate != u.sample_rate || pcm.samples.len() != u.samples {
        return Err(format!(
            "{}: {} samples at {} Hz, the manifest says {} at {} Hz",
            path.display(),
            pcm.samples.len(),
            pcm.rate,
            u.samples,
            u.sample_rate
        ));
    }
    if u.bounds_from == "self" {
        let ann = vad.annotate(&pcm).ok_or_else(|| format!("{}: no speech found", path.display()))?;
        if (ann.speech.start, ann.speech.end) != (u.speech_start_sample, u.speech_end_sample) {
            return Err(format!(
                "{}: speech bounds are samples {}..{}, the manifest says {}..{}",
                path.display(),
                ann.speech.start,
                ann.speech.end,
                u.speech_start_sample,
                u.speech_end_sample
            ));
        }
    }
    Ok(pcm)
}

/// Runs the check and prints a report; returns the exit code (0 all good, 2 problems).
pub fn run(dir: &Path, cross_check: bool, tolerance_ms: f64) -> Result<i32> {
    let manifest = Manifest::load(dir).with_context(|| format!("reading the corpus manifest in {}", dir.display()))?;
    let vad: EnergyVad = manifest.vad.into();
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for u in &manifest.utterances {
        match check_one(dir, u, &vad) {
            Err(p) => problems.push(p),
            // Variants carry their clean source's bounds by construction; only independently measured bounds are
            // cross-checked.
            Ok(pcm) if cross_check && u.variant_of.is_none() => {
                let measured = pcm;
                match neural_bounds(&measured) {
                    Some((s, e)) => rows.push((u.id.clone(), s - u.speech_start_ms, e - u.speech_end_ms)),
                    None => problems.push(format!("{}: earshot found no speech at all", dir.join(&u.file).display())),
                }
            }
            Ok(_) => {}
        }
    }
    // WAVs on disk that the manifest does not know.
    let known: std::collections::HashSet<_> = manifest.utterances.iter().map(|u| dir.join(&u.file)).collect();
    for entry in walk_wavs(dir)? {
        if !known.contains(&entry) {
            problems.push(format!(
                "{}: not in the manifest (rebuild with `voicebench corpus build`, or delete it)",
                entry.display()
            ));
        }
    }
    if cross_check {
        println!("{:<34} {:>10} {:>10}   (earshot − energy VAD, ms)", "utterance", "Δ start", "Δ end");
        for (id, ds, de) in &rows {
            let flag = if ds.abs() > tolerance_ms || de.abs() > tolerance_ms { "  ✗ over tolerance" } else { "" };
            println!("{id:<34} {ds:>+10.1} {de:>+10.1}{flag}");
        }
        if let Some((id, d)) =
            rows.iter().flat_map(|(id, s, e)| [(id, *s), (id, *e)]).max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        {
            println!("worst case: {d:+.1} ms ({id}); tolerance ±{tolerance_ms} ms");
        }
        for (id, ds, de) in &rows {
            if ds.abs() > tolerance_ms || de.abs() > tolerance_ms {
                problems.push(format!("{id}: earshot disagrees with the manifest's speech bounds by {ds:+.1} / {de:+.1} ms (tolerance ±{tolerance_ms} ms)"));
            }
        }
    }
    if problems.is_empty() {
        println!("{}: {} utterances ok", dir.display(), manifest.utterances.len());
        Ok(0)
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{}: {} problem(s) in {} utterances", dir.display(), problems.len(), manifest.utterances.len());
        Ok(2)
    }
}

fn walk_wavs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "wav") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
