//! G.711 μ-law: the 8-bit telephone encoding (Twilio Media Streams, OpenAI `audio/pcmu`).
//!
//! The classic segment/bias algorithm (ITU-T G.711), bit-exact with the reference tables.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample as μ-law.
pub fn encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Decodes one μ-law byte to a 16-bit linear sample.
pub fn decode(byte: u8) -> i16 {
    let u = !byte as i32;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes a block of samples.
pub fn encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode(s)).collect()
}

/// Decodes a block of μ-law bytes.
pub fn decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // Values from the ITU-T G.711 tables.
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(-1), 0x7F);
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(encode(i16::MIN), 0x00);
        assert_eq!(decode(0xFF), 0);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x00), -32124);
        assert_eq!(decode(0x7F), 0);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let x = decode(b);
            // 0x7F and 0xFF both decode to 0 (negative and positive zero).
            let back = encode(x);
            assert!(back == b || (x == 0 && (b == 0x7F || b == 0xFF)), "{b:#x} -> {x} -> {back:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        for s in (-32000i32..32000).step_by(37) {
            let err = (decode(encode(s as i16)) as i32 - s).abs();
            // The step doubles per segment; the error is at most half the largest step (1024/2) plus rounding.
            assert!(err <= (s.abs() / 16).max(8), "{s}: error {err}");
        }
    }
}
