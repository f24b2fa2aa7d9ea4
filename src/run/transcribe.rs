//! What the caller heard, transcribed: after each call, the agent's audio of every reply as the caller heard it
//! (its recording's right channel from the reply's first audible sample to where it stopped or was cut) is sent to
//! an OpenAI-compatible `/audio/transcriptions` (the scenario's `transcribe`), and each turn row gets `heard_text`
//! and `unheard_words`: the words the provider's own transcript reported that the heard audio does not contain
//! (text of a reply cut by a barge-in but still reported, or a transcript that disagrees with the audio). Turns the
//! provider sends no transcript for (Twilio Media Streams) are judged by their content checks on the heard text.
//!
//! Rows of a transcribed call are written when the call ends, not as each turn ends (they wait for the transcripts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use crate::audio::Pcm;
use crate::caller::recording::Recording;
use crate::model::TurnRecord;
use crate::redact::Redactor;
use crate::scenario::{Scenario, TranscribeSpec, TurnSpec};
use crate::sim::SimHandle;
use crate::targets::pipeline::http::{Client, HttpSettings};
use crate::targets::pipeline::stt;

/// A transcription service, shared by every call of a run.
pub struct Transcriber {
    client: Client,
    auth: Option<(&'static str, String)>,
    model: Option<String>,
    /// Replies whose transcription failed (the row's `heard_text` is empty).
    pub failed: AtomicU64,
    /// The first failure's message.
    first_error: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Transcriber").field("model", &self.model).finish_non_exhaustive()
    }
}

/// The shortest heard reply sent for transcription, ms (less is nothing to transcribe).
const MIN_HEARD_MS: f64 = 100.0;

impl Transcriber {
    /// The scenario's transcriber: its service (the key from its variable, registered as a secret), or a simulated
    /// one started here and pushed on `sims`.
    pub async fn start(scenario: &Scenario, seed: u64, sims: &mut Vec<SimHandle>) -> Result<Option<Transcriber>> {
        let Some(spec) = &scenario.transcribe else { return Ok(None) };
        let (url, model, key) = match spec {
            TranscribeSpec::Sim => {
                let h = crate::sim::start_transcriber(scenario, seed)
                    .await
                    .context("starting the simulated transcriber")?;
                let url = h.url().to_string();
                sims.push(h);
                (url, None, None)
            }
            TranscribeSpec::Service { url, model, api_key_env } => {
                let key = match api_key_env {
                    Some(var) => Some(std::env::var(var).with_context(|| {
                        format!("transcribe: environment variable {var} is not set (export the service's key)")
                    })?),
                    None => None,
                };
                (url.clone(), model.clone(), key)
            }
        };
        if let Some(k) = &key {
            let mut s = crate::secret::Secrets::default();
            s.add(k);
            crate::secret::register(&s);
        }
        crate::secret::register(&crate::secret::Secrets::from_url(&url));
        let d = &scenario.defaults;
        let settings = HttpSettings::from_lookup(
            std::time::Duration::from_millis(u64::from(d.connect_timeout_ms)),
            std::time::Duration::from_millis(u64::from(d.first_byte_timeout_ms)),
            std::time::Duration::from_millis(u64::from(d.idle_timeout_ms)),
            |k| std::env::var(k).ok(),
        );
        let client = Client::new(&url, &settings).map_err(|e| anyhow::anyhow!("transcribe: {e}"))?;
        Ok(Some(Transcriber {
            client,
            auth: key.map(|k| ("Authorization", format!("Bearer {k}"))),
            model,
            failed: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
        }))
    }

    /// The first failure, if any reply could not be transcribed.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn heard(&self, pcm: &Pcm) -> Option<String> {
        match stt::transcribe(&self.client, self.auth.as_ref(), self.model.as_deref(), false, pcm).await {
            Ok(t) => Some(crate::secret::bound(&crate::secret::scrub(&t.text), 4096)),
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| crate::secret::scrub(&e.to_string()));
                None
            }
        }
    }

    /// Transcribes what the caller heard of each reply of `turns` (one call's rows) from `recording`, and judges
    /// the content checks of turns the provider gave no transcript for on it. Returns how many turns it judged
    /// that way, and how many of those failed.
    pub async fn annotate(
        &self,
        turns: &mut [TurnRecord],
        recording: &Recording,
        specs: &[TurnSpec],
        redactor: &Redactor,
    ) -> (u32, u32) {
        let agent = recording.agent_channel();
        let (mut judged, mut failed) = (0, 0);
        for r in turns.iter_mut() {
            let (Some(start), Some(end)) = (r.agent_audio_start_ms, r.agent_audio_end_ms) else { continue };
            if end - start < MIN_HEARD_MS {
                continue;
            }
            let at = |ms: f64| (recording.index(ms) as usize).min(agent.len());
            let pcm = Pcm::new(recording.out_rate(), agent[at(start)..at(end)].to_vec());
            let Some(text) = self.heard(&pcm).await else { continue };
            let heard = redactor.text(text.trim());
            r.unheard_words = r.agent_text.as_deref().map(|said| unheard_words(said, &heard));
            if r.content_ok.is_none()
                && r.error.is_none()
                && let Some(spec) = specs.get(r.turn as usize).filter(|s| !s.content.is_empty())
            {
                let v = spec.content.judge(text.trim());
                judged += 1;
                failed += u32::from(!v.ok);
                r.content_ok = Some(v.ok);
                r.content_detail = Some(redactor.text(&format!("{} (on the heard audio)", v.detail)));
            }
            r.heard_text = Some(heard);
        }
        (judged, failed)
    }
}

/// The words of `said` (as many times as it says them) that `heard` does not contain, case and punctuation
/// ignored.
pub fn unheard_words(said: &str, heard: &str) -> u32 {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '[' && c != ']')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut have: HashMap<String, u32> = HashMap::new();
    for w in words(heard) {
        *have.entry(w).or_default() += 1;
    }
    let mut missing = 0;
    for w in words(said) {
        match have.get_mut(&w) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing += 1,
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    #[test]
    fn unheard_words_are_the_reported_words_the_audio_lacks() {
        let said = "No problem. For eight people this Friday, I can offer seven thirty.";
        assert_eq!(super::unheard_words(said, "no problem for eight people this friday i can offer seven thirty"), 0);
        assert_eq!(super::unheard_words(said, "No problem. For eight people"), 7);
        assert_eq!(super::unheard_words("eight eight", "eight"), 1);
        assert_eq!(super::unheard_words("Call [phone] now", "call [phone] now"), 0);
    }
}
