//! Simulation profiles: the timing and fault parameters of the embedded provider, and the seeded draws from them.
//!
//! Two profiles exist for the OpenAI Realtime sim:
//!
//! * `fixed`: every delay is exactly its value; rates are 0 unless set. For tests and for checking the harness
//!   against known numbers: reply delay 400 ms, leading silence 0 ms, VAD silence 500 ms, interrupt delay 100 ms,
//!   tool delay 300 ms, 6 argument deltas sent back to back, realtime factor 4, 100 ms chunks.
//! * `native`: a realistic speech-to-speech model. A latency value given in `sim_options` sets the *median* of its
//!   distribution (schema.rs says so). Defaults and their sources:
//!   * reply delay (VAD end of speech → first audio delta): lognormal, median 450 ms, σ = 0.42 (clamped to
//!     150–3000 ms). The seed gives "a 300–700 ms round trip" for native speech-to-speech models; with this
//!     σ, 70 % of draws fall in 300–700 ms (p15 ≈ 290, p85 ≈ 700), p5 ≈ 225 ms and p99 ≈ 1.2 s, the tail that
//!     published TTFA distributions of hosted realtime models show.
//!   * VAD silence 500 ms: the SDK's documented `silence_duration_ms` default (docs/protocols.md §1.2). A captured GA
//!     session shows 200 ms; measured with the booking corpus, 200 ms ends turns at comma pauses ("…this Friday,
//!     December fourth, at seven p.m."): 6 of 18 premature take-overs, 8 of 160 turns timing out. So TTFA here is
//!     ~500 ms endpointing + the reply delay + leading silence, p50 ≈ 1.1–1.2 s.
//!   * leading silence: log-uniform over ×½…×2 of the median 60 ms, i.e. 30–120 ms (TTS/codec onset padding seen in
//!     real replies: the first deltas carry near-silence before the voice starts).
//!   * interrupt delay (barge-in onset detected → `speech_started` sent and response cancelled): log-uniform over
//!     ×1/√2…×√2 of 212 ms, i.e. 150–300 ms (server VAD needs a few frames of speech plus the round trip).
//!   * tool delay (end of speech → first argument delta): lognormal, median 600 ms, σ = 0.25 (clamped 200–2000),
//!     so p5 ≈ 400 ms and p95 ≈ 900 ms: a function call needs the model's first tokens, which come a little later
//!     than the first audio would. Argument deltas then arrive 15 ms apart (≈ token streaming rate).
//!   * false-stop rate 0.03, premature take-over rate 0.03, wrong-argument rate 0.05: small, non-zero fault rates
//!     so the harness's detectors have something to find in every few dozen calls.
//!   * realtime factor 4 and 100 ms chunks for both profiles (hosted models stream audio several times faster
//!     than real time; 100 ms is a common delta size).
//!
//! Draws use [`SplitMix64`] seeded from the run seed and the connection index, so a run is reproducible.

use crate::scenario::schema::SimOptions;
use crate::stats::SplitMix64;

/// Which profile a sim runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// Every delay exactly its value.
    Fixed,
    /// Realistic skewed distributions around the values.
    Native,
}

/// The resolved parameters of a sim profile (the profile's defaults overridden by `sim_options`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Profile {
    /// The profile.
    pub kind: ProfileKind,
    /// End of speech → first audio delta, ms (median under `native`).
    pub reply_delay_ms: f64,
    /// Silence before the reply's first audible sample, ms (median under `native`).
    pub leading_silence_ms: f64,
    /// server_vad silence that ends a turn, ms, unless the target or the session sets one.
    pub vad_silence_ms: f64,
    /// Barge-in onset detected → `speech_started` sent, ms (median under `native`).
    pub interrupt_delay_ms: f64,
    /// End of speech → first tool-call argument delta, ms (median under `native`).
    pub tool_delay_ms: f64,
    /// Argument deltas per tool call.
    pub tool_arg_deltas: u32,
    /// Probability of one wrong argument in a tool call.
    pub tool_arg_error_rate: f64,
    /// Probability of treating a backchannel as a barge-in.
    pub false_stop_rate: f64,
    /// Probability of replying during a pause inside an utterance (per pause).
    pub takeover_rate: f64,
    /// Probability that a reply's transcript says the wrong numbers.
    pub misspeak_rate: f64,
    /// Reply audio is sent this many times faster than real time.
    pub realtime_factor: f64,
    /// Audio per delta, ms.
    pub chunk_ms: f64,
}

/// A `sim_options` value out of its range.
#[derive(Debug, Clone, PartialEq)]
pub struct BadOption {
    /// The option.
    pub field: &'static str,
    /// Its value.
    pub value: f64,
    /// What range it must be in.
    pub why: &'static str,
}

impl Profile {
    /// The profile's defaults.
    pub fn defaults(kind: ProfileKind) -> Self {
        match kind {
            ProfileKind::Fixed => Self {
                kind,
                reply_delay_ms: 400.0,
                leading_silence_ms: 0.0,
                vad_silence_ms: 500.0,
                interrupt_delay_ms: 100.0,
                tool_delay_ms: 300.0,
                tool_arg_deltas: 6,
                tool_arg_error_rate: 0.0,
                false_stop_rate: 0.0,
                takeover_rate: 0.0,
                misspeak_rate: 0.0,
                realtime_factor: 4.0,
                chunk_ms: 100.0,
            },
            ProfileKind::Native => Self {
                kind,
                reply_delay_ms: 450.0,
                leading_silence_ms: 60.0,
                vad_silence_ms: 500.0,
                interrupt_delay_ms: 212.0,
                tool_delay_ms: 600.0,
                tool_arg_deltas: 6,
                tool_arg_error_rate: 0.05,
                false_stop_rate: 0.03,
                takeover_rate: 0.03,
                misspeak_rate: 0.03,
                realtime_factor: 4.0,
                chunk_ms: 100.0,
            },
        }
    }

    /// The profile's defaults overridden by `sim_options`, each value checked.
    pub fn resolve(kind: ProfileKind, o: Option<&SimOptions>) -> Result<Self, BadOption> {
        let mut p = Self::defaults(kind);
        let Some(o) = o else { return Ok(p) };
        let ms = |field: &'static str, v: Option<f64>, dst: &mut f64| -> Result<(), BadOption> {
            if let Some(v) = v {
                if !(0.0..=60_000.0).contains(&v) {
                    return Err(BadOption { field, value: v, why: "a delay must be 0–60000 ms" });
                }
                *dst = v;
            }
            Ok(())
        };
        ms("reply_delay_ms", o.reply_delay_ms, &mut p.reply_delay_ms)?;
        ms("leading_silence_ms", o.leading_silence_ms, &mut p.leading_silence_ms)?;
        ms("vad_silence_ms", o.vad_silence_ms, &mut p.vad_silence_ms)?;
        ms("interrupt_delay_ms", o.interrupt_delay_ms, &mut p.interrupt_delay_ms)?;
        ms("tool_delay_ms", o.tool_delay_ms, &mut p.tool_delay_ms)?;
        let rate = |field: &'static str, v: Option<f64>, dst: &mut f64| -> Result<(), BadOption> {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return Err(BadOption { field, value: v, why: "a probability must be 0–1" });
                }
                *dst = v;
            }
            Ok(())
        };
        rate("tool_arg_error_rate", o.tool_arg_error_rate, &mut p.tool_arg_error_rate)?;
        rate("false_stop_rate", o.false_stop_rate, &mut p.false_stop_rate)?;
        rate("takeover_rate", o.takeover_rate, &mut p.takeover_rate)?;
        rate("misspeak_rate", o.misspeak_rate, &mut p.misspeak_rate)?;
        if let Some(n) = o.tool_arg_deltas {
            if !(1..=1000).contains(&n) {
                return Err(BadOption { field: "tool_arg_deltas", value: n as f64, why: "must be 1–1000" });
            }
            p.tool_arg_deltas = n;
        }
        if let Some(f) = o.realtime_factor {
            if !(0.1..=1000.0).contains(&f) {
                return Err(BadOption { field: "realtime_factor", value: f, why: "must be 0.1–1000" });
            }
            p.realtime_factor = f;
        }
        if let Some(c) = o.chunk_ms {
            if !(5.0..=2000.0).contains(&c) {
                return Err(BadOption { field: "chunk_ms", value: c, why: "must be 5–2000 ms" });
            }
            p.chunk_ms = c;
        }
        Ok(p)
    }

    /// A reply delay, ms.
    pub fn draw_reply_delay(&self, rng: &mut SplitMix64) -> f64 {
        match self.kind {
            ProfileKind::Fixed => self.reply_delay_ms,
            ProfileKind::Native => lognormal(rng, self.reply_delay_ms, 0.42).clamp(self.reply_delay_ms / 3.0, 3000.0),
        }
    }

    /// A leading silence, ms.
    pub fn draw_leading_silence(&self, rng: &mut SplitMix64) -> f64 {
        match self.kind {
            ProfileKind::Fixed => self.leading_silence_ms,
            ProfileKind::Native => log_uniform(rng, self.leading_silence_ms, 2.0),
        }
    }

    /// An interrupt delay, ms.
    pub fn draw_interrupt_delay(&self, rng: &mut SplitMix64) -> f64 {
        match self.kind {
            ProfileKind::Fixed => self.interrupt_delay_ms,
            ProfileKind::Native => log_uniform(rng, self.interrupt_delay_ms, std::f64::consts::SQRT_2),
        }
    }

    /// A tool delay, ms.
    pub fn draw_tool_delay(&self, rng: &mut SplitMix64) -> f64 {
        match self.kind {
            ProfileKind::Fixed => self.tool_delay_ms,
            ProfileKind::Native => lognormal(rng, self.tool_delay_ms, 0.25).clamp(self.tool_delay_ms / 3.0, 2000.0),
        }
    }

    /// Gap between two argument deltas of a tool call, ms.
    pub fn arg_delta_gap_ms(&self) -> f64 {
        match self.kind {
            ProfileKind::Fixed => 0.0,
            ProfileKind::Native => 15.0,
        }
    }
}

/// True with probability `p` (always draws, so the stream of draws does not depend on `p`).
pub fn chance(rng: &mut SplitMix64, p: f64) -> bool {
    rng.next_f64() < p
}

/// A lognormal draw with the given median and log-σ.
pub fn lognormal(rng: &mut SplitMix64, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// A log-uniform draw over `[median / spread, median · spread]`.
pub fn log_uniform(rng: &mut SplitMix64, median: f64, spread: f64) -> f64 {
    let u = rng.next_f64() * 2.0 - 1.0;
    median * spread.powf(u)
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut SplitMix64) -> f64 {
    rng.standard_normal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(v: Vec<f64>, q: f64) -> f64 {
        crate::stats::quantile_unsorted(&v, q)
    }

    #[test]
    fn native_reply_delay_matches_its_documentation() {
        let p = Profile::defaults(ProfileKind::Native);
        let mut rng = SplitMix64::new(7);
        let v: Vec<f64> = (0..20_000).map(|_| p.draw_reply_delay(&mut rng)).collect();
        let med = quantile(v.clone(), 0.5);
        let p99 = quantile(v.clone(), 0.99);
        let inside = v.iter().filter(|&&x| (300.0..=700.0).contains(&x)).count() as f64 / v.len() as f64;
        assert!((430.0..470.0).contains(&med), "median {med}");
        assert!((1050.0..1350.0).contains(&p99), "p99 {p99}");
        assert!(inside > 0.65, "share in 300–700 ms: {inside}");
    }

    #[test]
    fn native_ranges() {
        let p = Profile::defaults(ProfileKind::Native);
        let mut rng = SplitMix64::new(3);
        for _ in 0..2000 {
            let l = p.draw_leading_silence(&mut rng);
            assert!((29.9..=120.1).contains(&l), "{l}");
            let i = p.draw_interrupt_delay(&mut rng);
            assert!((149.0..=300.5).contains(&i), "{i}");
        }
    }

    #[test]
    fn options_override_and_are_checked() {
        let o = SimOptions { reply_delay_ms: Some(250.0), chunk_ms: Some(40.0), ..Default::default() };
        let p = Profile::resolve(ProfileKind::Fixed, Some(&o)).unwrap();
        assert_eq!((p.reply_delay_ms, p.chunk_ms, p.tool_arg_deltas), (250.0, 40.0, 6));
        let bad = SimOptions { takeover_rate: Some(1.5), ..Default::default() };
        assert_eq!(Profile::resolve(ProfileKind::Native, Some(&bad)).unwrap_err().field, "takeover_rate");
    }
}
