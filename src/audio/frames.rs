//! Cutting audio into the fixed-duration frames a caller sends, and PCM16 byte encoding.

use super::Pcm;

/// Samples in one frame of `frame_ms` at `rate`, or `None` when the frame is not a whole number of samples.
pub fn samples_per_frame(rate: u32, frame_ms: u32) -> Option<usize> {
    let num = rate as u64 * frame_ms as u64;
    (frame_ms > 0 && num.is_multiple_of(1000)).then_some((num / 1000) as usize)
}

/// Cuts audio into frames of `frame_ms`; the last frame is padded with silence to full length.
///
/// Panics if `frame_ms` is not a whole number of samples at the audio's rate (validation rules that out).
pub fn frames(pcm: &Pcm, frame_ms: u32) -> Vec<Vec<i16>> {
    let n = samples_per_frame(pcm.rate, frame_ms).expect("frame_ms is a whole number of samples");
    pcm.samples
        .chunks(n)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(n, 0);
            f
        })
        .collect()
}

/// Little-endian PCM16 bytes, the wire format of every PCM protocol voicebench speaks.
pub fn to_le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Samples from little-endian PCM16 bytes (a trailing odd byte is ignored).
pub fn from_le_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes() {
        assert_eq!(samples_per_frame(24_000, 20), Some(480));
        assert_eq!(samples_per_frame(8_000, 20), Some(160));
        assert_eq!(samples_per_frame(22_050, 20), Some(441));
        assert_eq!(samples_per_frame(22_050, 10), None);
        assert_eq!(samples_per_frame(16_000, 0), None);
    }

    #[test]
    fn cuts_and_pads() {
        let p = Pcm::new(8_000, (0..400).map(|i| i as i16).collect());
        let f = frames(&p, 20);
        assert_eq!(f.len(), 3);
        assert_eq!(f[2].len(), 160);
        assert_eq!(f[2][79], 399);
        assert_eq!(f[2][80], 0);
        assert_eq!(from_le_bytes(&to_le_bytes(&p.samples)), p.samples);
    }
}
