//! WAV reading and writing (hound), with errors that name the file and say how to fix it.
//!
//! voicebench works on mono 16-bit PCM. Anything else is rejected with the `sox` command that converts it, rather
//! than silently mixed down or requantised, so that the audio the user supplied is the audio that is measured.

use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Mono 16-bit PCM audio at a known sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    /// Samples per second.
    pub rate: u32,
    /// The samples, in order.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Creates PCM audio from samples.
    pub fn new(rate: u32, samples: Vec<i16>) -> Self {
        Self { rate, samples }
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0 / self.rate as f64
    }

    /// The sample index of a time offset in milliseconds (floored).
    pub fn index_at_ms(&self, ms: f64) -> usize {
        ((ms * self.rate as f64 / 1000.0).floor().max(0.0) as usize).min(self.samples.len())
    }

    /// The time, in milliseconds, of a sample index.
    pub fn ms_at(&self, index: usize) -> f64 {
        index as f64 * 1000.0 / self.rate as f64
    }
}

/// What can go wrong reading or writing audio. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a WAV file at all.
    #[error("{path}: not a WAV file ({reason}); voicebench reads RIFF/WAVE files with 16-bit PCM samples")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What the decoder found wrong.
        reason: String,
    },
    /// A WAV file in a format voicebench does not take as input.
    #[error("{path}: {what}; convert it with `{fix}`")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
        /// A command that fixes it.
        fix: String,
    },
    /// The file decodes but holds no samples.
    #[error("{path}: the WAV file holds no audio samples")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Lowest and highest sample rates voicebench accepts.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Reads a mono 16-bit PCM WAV file.
pub fn read_wav(path: &Path) -> Result<Pcm, AudioError> {
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io { path: path.to_owned(), source })?;
    decode_wav(path, &bytes)
}

/// Decodes WAV bytes; `path` is only used in error messages.
pub fn decode_wav(path: &Path, bytes: &[u8]) -> Result<Pcm, AudioError> {
    let not_wav = |reason: String| AudioError::NotWav { path: path.to_owned(), reason };
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| not_wav(describe_hound(&e)))?;
    let spec = reader.spec();
    let fix = format!(
        "sox {} -r {} -c 1 -b 16 -e signed-integer out.wav",
        path.display(),
        spec.sample_rate.clamp(8000, 48000)
    );
    let unsupported = |what: String| AudioError::Unsupported { path: path.to_owned(), what, fix: fix.clone() };
    if spec.channels != 1 {
        return Err(unsupported(format!("it has {} channels, voicebench needs mono", spec.channels)));
    }
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        let kind = match spec.sample_format {
            hound::SampleFormat::Int => "integer",
            hound::SampleFormat::Float => "floating-point",
        };
        return Err(unsupported(format!(
            "it holds {}-bit {kind} samples, voicebench needs 16-bit signed integer PCM",
            spec.bits_per_sample
        )));
    }
    if !RATE_RANGE.contains(&spec.sample_rate) {
        return Err(unsupported(format!(
            "its sample rate is {} Hz, voicebench takes {}–{} Hz",
            spec.sample_rate,
            RATE_RANGE.start(),
            RATE_RANGE.end()
        )));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_wav(format!("damaged sample data: {}", describe_hound(&e))))?;
    if samples.is_empty() {
        return Err(AudioError::Empty { path: path.to_owned() });
    }
    Ok(Pcm { rate: spec.sample_rate, samples })
}

fn describe_hound(e: &hound::Error) -> String {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => "the file is truncated".into(),
        hound::Error::FormatError(msg) => msg.to_string(),
        hound::Error::Unsupported => "an encoding hound cannot decode (compressed or μ-law WAV?)".into(),
        other => other.to_string(),
    }
}

/// Encodes mono 16-bit PCM as WAV bytes.
pub fn encode_wav(pcm: &Pcm) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + pcm.samples.len() * 2));
    {
        // Writing to memory cannot fail but for a WAV larger than 4 GiB, which we never produce.
        let mut w = hound::WavWriter::new(&mut out, spec).expect("WAV header to memory");
        let mut w16 = w.get_i16_writer(pcm.samples.len() as u32);
        for &s in &pcm.samples {
            w16.write_sample(s);
        }
        w16.flush().expect("WAV samples to memory");
        w.finalize().expect("WAV trailer to memory");
    }
    out.into_inner()
}

/// Writes mono 16-bit PCM to a WAV file, through a temporary name so a crash never leaves half a file.
pub fn write_wav(path: &Path, pcm: &Pcm) -> Result<(), AudioError> {
    let io = |source| AudioError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("wav.tmp");
    std::fs::write(&tmp, encode_wav(pcm)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pcm = Pcm::new(16_000, (0..1600).map(|i| (i * 7 % 2000) as i16 - 1000).collect());
        let bytes = encode_wav(&pcm);
        assert_eq!(decode_wav(Path::new("x.wav"), &bytes).unwrap(), pcm);
    }

    #[test]
    fn rejects_non_wav_and_stereo() {
        let e = decode_wav(Path::new("notes.txt"), b"hello, this is text").unwrap_err();
        assert!(e.to_string().starts_with("notes.txt: not a WAV file"), "{e}");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut buf = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let e = decode_wav(Path::new("st.wav"), buf.get_ref()).unwrap_err();
        assert!(e.to_string().contains("2 channels") && e.to_string().contains("sox st.wav"), "{e}");
    }

    #[test]
    fn rejects_truncated() {
        let pcm = Pcm::new(16_000, vec![100; 1000]);
        let bytes = encode_wav(&pcm);
        let e = decode_wav(Path::new("cut.wav"), &bytes[..30]).unwrap_err();
        assert!(matches!(e, AudioError::NotWav { .. }), "{e}");
    }
}
