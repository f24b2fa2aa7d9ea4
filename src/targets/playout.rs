//! Where a reply ends, for protocols that never say so (ElevenLabs agents, Twilio Media Streams, ws-pcm), and the
//! caller's playout timeline those adapters need (Twilio marks are echoed when the audio before them has played).
//!
//! A reply is *open* from its first audio chunk. It is over when no audio has come for [`QUIET`] past the later of
//! its last chunk's arrival and the end of its playout (providers send faster than real time, so a pause in sending
//! is not a pause in what the caller hears), or at once when the protocol flushes playback. The end is stamped
//! with the last chunk's arrival, the last instant the adapter knows the reply was still coming: the caller's
//! tracker takes the later of that and the playout end as the reply's end, exactly as for an explicit done event.

use tokio::time::{Duration, Instant};

/// Quiet time after a reply's last audio (arrival and playout) that ends it.
pub const QUIET: Duration = Duration::from_millis(300);

/// One adapter's reply state and playout clock.
#[derive(Debug, Clone)]
pub struct Replies {
    rate: u32,
    /// Index of the current (or next) reply: the audio item of [`crate::targets::AgentEvent::Audio`].
    item: u32,
    open: bool,
    last_at: Option<Instant>,
    play_end: Option<Instant>,
}

impl Replies {
    /// Audio at `rate` samples per second.
    pub fn new(rate: u32) -> Self {
        Self { rate, item: 0, open: false, last_at: None, play_end: None }
    }

    /// A chunk of `samples` arrived at `at`: returns its item, and where its playout ends.
    pub fn audio(&mut self, at: Instant, samples: usize) -> (u32, Instant) {
        self.open = true;
        self.last_at = Some(at);
        let start = self.play_end.map_or(at, |e| e.max(at));
        let end = start + Duration::from_nanos(samples as u64 * 1_000_000_000 / self.rate as u64);
        self.play_end = Some(end);
        (self.item, end)
    }

    /// When the open reply ends if nothing more comes.
    pub fn due(&self) -> Option<Instant> {
        if !self.open {
            return None;
        }
        let last = self.last_at?;
        Some(self.play_end.map_or(last, |e| e.max(last)) + QUIET)
    }

    /// Ends the open reply (quiet time passed, or a flush): its end stamp, or None if no reply was open. The next
    /// audio starts a new item.
    pub fn end(&mut self) -> Option<Instant> {
        if !std::mem::take(&mut self.open) {
            return None;
        }
        self.item += 1;
        self.last_at
    }

    /// Playback was flushed at `at`: nothing queued plays any more.
    pub fn flush(&mut self, at: Instant) {
        if self.play_end.is_some_and(|e| e > at) {
            self.play_end = Some(at);
        }
    }

    /// The end of everything queued for playout so far.
    pub fn play_end(&self) -> Option<Instant> {
        self.play_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reply_ends_after_its_playout_and_the_quiet_time() {
        let t0 = Instant::now();
        let mut r = Replies::new(8000);
        // Four 100 ms chunks sent 25 ms apart (4× real time).
        for k in 0..4u64 {
            let (item, _) = r.audio(t0 + Duration::from_millis(25 * k), 800);
            assert_eq!(item, 0);
        }
        assert_eq!(r.play_end(), Some(t0 + Duration::from_millis(400)));
        assert_eq!(r.due(), Some(t0 + Duration::from_millis(700)));
        tokio::time::advance(Duration::from_millis(700)).await;
        assert_eq!(r.end(), Some(t0 + Duration::from_millis(75)));
        assert_eq!(r.end(), None, "an ended reply does not end twice");
        assert_eq!(r.due(), None);
        let (item, _) = r.audio(Instant::now(), 80);
        assert_eq!(item, 1, "the next audio is a new reply");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_senders_end_on_arrival_and_flushes_cut_the_playout() {
        let t0 = Instant::now();
        let mut r = Replies::new(16_000);
        r.audio(t0, 160); // 10 ms
        r.audio(t0 + Duration::from_millis(200), 160);
        assert_eq!(r.due(), Some(t0 + Duration::from_millis(210) + QUIET));
        r.audio(t0 + Duration::from_millis(200), 16_000);
        r.flush(t0 + Duration::from_millis(300));
        assert_eq!(r.play_end(), Some(t0 + Duration::from_millis(300)));
        assert_eq!(r.due(), Some(t0 + Duration::from_millis(300) + QUIET), "a flush ends the playout now");
    }
}
