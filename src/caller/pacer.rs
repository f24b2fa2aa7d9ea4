//! The absolute-deadline pacer: frame *k* is due at `t0 + (k+1)·frame_ms`, the moment a microphone or a telephony
//! gateway would have it. Deadlines never depend on when the previous frame went out, so lateness never
//! accumulates; every frame's lateness is recorded.
//!
//! [`Pacer::wait`] waits for the next deadline with the pacer's [`Ticker`]: in a run, the process's
//! sub-millisecond [`SlotTimer`]; under tokio's paused test clock, tokio's own timer (which the test clock drives).

use tokio::time::{Duration, Instant};

use super::slots::{SlotTimer, Waiter};

/// How a caller waits for its next deadline.
#[derive(Debug, Clone)]
pub enum Ticker {
    /// tokio's timer: millisecond granularity on the real clock, exact under the paused test clock.
    Tokio,
    /// The process's slot timer ([`SlotTimer`]): within about 250 µs of the deadline, real clock only.
    Slots(Waiter),
}

impl Ticker {
    /// The slot timer's, for a real run.
    pub fn slots() -> Ticker {
        Ticker::Slots(SlotTimer::global().waiter())
    }
}

/// Paces one call's outgoing frames.
#[derive(Debug, Clone)]
pub struct Pacer {
    t0: Instant,
    frame: Duration,
    next: u64,
    lateness_us: Vec<u32>,
    ticker: Ticker,
}

impl Pacer {
    /// A pacer whose audio time 0 is `t0`, waiting with tokio's timer (deterministic under the paused clock).
    pub fn new(t0: Instant, frame_ms: u32) -> Self {
        Self::with_ticker(t0, frame_ms, Ticker::Tokio)
    }

    /// A pacer whose audio time 0 is `t0`, waiting with `ticker`.
    pub fn with_ticker(t0: Instant, frame_ms: u32, ticker: Ticker) -> Self {
        Self { t0, frame: Duration::from_millis(frame_ms as u64), next: 0, lateness_us: Vec::new(), ticker }
    }

    /// Waits until the next frame is due. Cancel-safe: dropping the future and calling again waits for the same
    /// deadline.
    pub async fn wait(&self) {
        let due = self.next_due();
        match &self.ticker {
            Ticker::Tokio => tokio::time::sleep_until(due).await,
            Ticker::Slots(w) => w.wait_until(due.into_std()).await,
        }
    }

    /// Audio time zero of the call.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Frame duration.
    pub fn frame(&self) -> Duration {
        self.frame
    }

    /// Index of the next frame to send.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// When frame `k` is due: the end of the audio it carries.
    pub fn due(&self, k: u64) -> Instant {
        self.t0 + self.frame * (k as u32 + 1)
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        self.due(self.next)
    }

    /// The wall time of the start of frame `k`'s audio.
    pub fn audio_start(&self, k: u64) -> Instant {
        self.t0 + self.frame * k as u32
    }

    /// The first frame whose audio starts at or after `t` (and not before `self.next_index()`).
    pub fn first_frame_at_or_after(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.t0).as_nanos();
        let f = self.frame.as_nanos();
        (since.div_ceil(f) as u64).max(self.next)
    }

    /// Records that the next frame was sent at `now`; returns its index.
    pub fn sent(&mut self, now: Instant) -> u64 {
        let k = self.next;
        let late = now.saturating_duration_since(self.due(k)).as_micros().min(u32::MAX as u128) as u32;
        self.lateness_us.push(late);
        self.next += 1;
        k
    }

    /// Lateness of every frame sent, µs.
    pub fn lateness_us(&self) -> &[u32] {
        &self.lateness_us
    }

    /// Takes the lateness record.
    pub fn take_lateness(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.lateness_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ten_minutes_of_audio_do_not_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20);
        let frames = 10 * 60 * 50;
        for _ in 0..frames {
            p.wait().await;
            p.sent(Instant::now());
        }
        assert_eq!(p.next_index(), frames);
        // The last frame went out exactly at 10:00.000, and none was late.
        assert_eq!(Instant::now() - t0, Duration::from_secs(600));
        assert!(p.lateness_us().iter().all(|&l| l == 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_caught_up_not_carried() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20);
        for k in 0..500u64 {
            p.wait().await;
            if k == 100 {
                // The sender is stuck for 75 ms once.
                tokio::time::advance(Duration::from_millis(75)).await;
            }
            p.sent(Instant::now());
        }
        let late = p.lateness_us();
        assert_eq!(late[100], 75_000);
        // The backlog goes out at once (frames 101–103 were already due), then the schedule holds again.
        assert_eq!(late[101], 55_000);
        assert_eq!(late[103], 15_000);
        assert!(late[104..].iter().all(|&l| l == 0), "{:?}", &late[100..110]);
        assert_eq!(Instant::now() - t0, Duration::from_millis(500 * 20));
    }

    #[test]
    fn frame_arithmetic() {
        let t0 = Instant::now();
        let p = Pacer::new(t0, 20);
        assert_eq!(p.due(0), t0 + Duration::from_millis(20));
        assert_eq!(p.audio_start(3), t0 + Duration::from_millis(60));
        assert_eq!(p.first_frame_at_or_after(t0 + Duration::from_millis(60)), 3);
        assert_eq!(p.first_frame_at_or_after(t0 + Duration::from_millis(61)), 4);
        assert_eq!(p.first_frame_at_or_after(t0), 0);
    }
}
