//! Open-loop load (docs/metrics.md "Load", docs/scale.md): calls started on a schedule, as k6's arrival-rate
//! executors and wrk2 do, rather than as earlier calls finish. Every call has an intended start; a call that starts
//! late because the calls in flight reached `--max-in-flight`, or is dropped because no slot freed within
//! `--max-start-delay`, is counted and shown, never hidden (coordinated omission).
//!
//! - **Schedule.** Stages, each a duration and a rate of calls started per second *per target*, ramped linearly
//!   from the previous stage's rate (the first from 0), as k6's `ramping-arrival-rate`; `--rate R --duration D` is
//!   one stage held at R. Arrival *k* is due when the expected number of arrivals Λ(t) = ∫ rate reaches *k*
//!   (constant: evenly spaced, the first at 0), or, Poisson, at Λ⁻¹ of the *k*-th point of a unit-rate Poisson
//!   process drawn from the run's seed (time rescaling: an inhomogeneous Poisson process with that rate). Arrival
//!   *k* starts call *k* of every target.
//! - **Admission** ([`open_loop`]): at its intended start, an arrival takes a slot from `max_in_flight` (all targets
//!   together, as `concurrency` in the closed loop); when none is free it waits, first come first served, up to
//!   `max_start_delay` after its intended start, and is dropped past it. Waiting never delays the arrivals behind it:
//!   each waits on its own.
//!
//! Written here rather than taken from a crate: no load-generation crate exposes a schedule of intended instants
//! with this admission rule (k6 and wrk2 are programs); the arithmetic is the quadratic of a linear ramp.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::metrics::Distribution;
use crate::stats::SplitMix64;

/// A call that started this much after its intended instant or more is counted late.
pub const LATE: Duration = Duration::from_millis(10);

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly, at the rate.
    Constant,
    /// A Poisson process of that rate, seeded (independent callers, as a phone line sees them).
    Poisson,
}

/// One stage: the rate ramps linearly from `from` to `to` (calls per second per target) over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long.
    pub duration: Duration,
    /// Rate at its start.
    pub from: f64,
    /// Rate at its end.
    pub to: f64,
}

/// An open-loop load.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// How arrivals are spaced.
    pub arrivals: Arrivals,
    /// Calls in flight at most, all targets together.
    pub max_in_flight: u32,
    /// How long after its intended start a call may wait for a slot before it is dropped.
    pub max_start_delay: Duration,
}

/// Why a load could not be read. Each names the flag and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// A rate that is not `N/s`, `N/m`, `N/h` or `N`.
    #[error("`{0}` is not a rate: write calls per second as 2/s (or 120/m, 0.5, …), more than 0 and at most 10000/s")]
    Rate(String),
    /// A duration humantime cannot read.
    #[error("`{0}` is not a duration: write 30s, 5m, 1h30m, 500ms")]
    Duration(String),
    /// A stage that is not `DURATION:RATE`.
    #[error("`{0}` is not a stage: write DURATION:RATE stages separated by commas, e.g. 30s:2/s,5m:10/s")]
    Stage(String),
    /// Flags that do not go together.
    #[error("{0}")]
    Flags(String),
}

/// The most calls per second per target a stage may ask for.
const MAX_RATE: f64 = 10_000.0;

/// A rate: `2/s`, `120/m`, `3600/h` or a bare number (per second).
pub fn parse_rate(s: &str) -> Result<f64, LoadError> {
    let t = s.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, unit)) => (
            n,
            match unit.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(LoadError::Rate(s.into())),
            },
        ),
        None => (t, 1.0),
    };
    let r = n.trim().parse::<f64>().map_err(|_| LoadError::Rate(s.into()))? / per;
    if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
        return Err(LoadError::Rate(s.into()));
    }
    Ok(r)
}

/// A duration: `30s`, `5m`, `1h30m`, `500ms` (humantime), more than zero.
pub fn parse_duration(s: &str) -> Result<Duration, LoadError> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(LoadError::Duration(s.into())),
    }
}

/// Stages: `30s:2/s,5m:10/s`, each ramping from the rate before it (the first from 0).
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, LoadError> {
    let mut from = 0.0;
    let mut out = Vec::new();
    for part in s.split(',') {
        let (d, r) = part.split_once(':').ok_or_else(|| LoadError::Stage(part.trim().into()))?;
        let to = parse_rate(r)?;
        out.push(Stage { duration: parse_duration(d)?, from, to });
        from = to;
    }
    Ok(out)
}

impl Load {
    /// Total length of the schedule.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The expected number of arrivals (per target) over the whole schedule, Λ(end).
    pub fn expected(&self) -> f64 {
        self.stages.iter().map(|s| (s.from + s.to) / 2.0 * s.duration.as_secs_f64()).sum()
    }

    /// The intended start of each arrival, from the schedule's start, in order; ends with the schedule.
    pub fn schedule(&self, seed: u64) -> Schedule {
        Schedule {
            stages: self.stages.clone(),
            poisson: self.arrivals == Arrivals::Poisson,
            rng: SplitMix64::new(seed ^ 0xA771_7A15),
            k: 0,
            level: 0.0,
        }
    }
}

/// The intended arrival instants of a [`Load`] (an iterator; lazy, so an hour at a high rate costs nothing up front).
#[derive(Debug, Clone)]
pub struct Schedule {
    stages: Vec<Stage>,
    poisson: bool,
    rng: SplitMix64,
    k: u64,
    /// Λ of the next arrival: k (constant) or the sum of k+1 unit exponentials (Poisson).
    level: f64,
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.poisson {
            // 1 − U is in (0, 1]: the logarithm is finite.
            self.level += -(1.0 - self.rng.next_f64()).ln();
        } else {
            self.level = self.k as f64;
        }
        self.k += 1;
        inverse_lambda(&self.stages, self.level).map(Duration::from_secs_f64)
    }
}

/// The time (s) at which Λ(t) = `level`, or `None` past the schedule's end.
fn inverse_lambda(stages: &[Stage], mut level: f64) -> Option<f64> {
    let mut t0 = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let area = (s.from + s.to) / 2.0 * d;
        if level < area {
            // Solve from·t + (to − from)·t²/(2d) = level for t in [0, d].
            let a = (s.to - s.from) / (2.0 * d);
            let t = if a.abs() < 1e-12 {
                level / s.from
            } else {
                (-s.from + (s.from * s.from + 4.0 * a * level).max(0.0).sqrt()) / (2.0 * a)
            };
            return Some(t0 + t.clamp(0.0, d));
        }
        level -= area;
        t0 += d;
    }
    None
}

/// What the open loop did: every arrival is started (on time or late) or dropped.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Calls the schedule asked for (arrivals × targets).
    pub intended: u64,
    /// Calls started.
    pub started: u64,
    /// Calls started [`LATE`] or more after their intended instant.
    pub late: u64,
    /// Calls dropped: no slot within `max_start_delay`.
    pub dropped: u64,
    /// How late each started call started, µs.
    pub start_lateness: Distribution,
}

/// Runs the open loop: for each intended instant of `schedule` (from `start`), and each of `targets` targets,
/// `spawn(call, target)` once a slot of `load.max_in_flight` is free, or drops the call past `load.max_start_delay`.
/// `spawn` must start the call and return a future that ends with it (the slot is held until then). Stops taking
/// arrivals when `stop` resolves; returns once every started call has ended.
pub async fn open_loop<F, Fut>(
    load: &Load,
    schedule: impl Iterator<Item = (u32, Duration)>,
    targets: usize,
    start: Instant,
    stop: impl Future<Output = ()>,
    spawn: F,
) -> LoadOutcome
where
    F: Fn(u32, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(load.max_in_flight.max(1) as usize));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Admission>();
    let mut calls = tokio::task::JoinSet::new();
    let mut out = LoadOutcome::default();
    tokio::pin!(stop);
    'arrivals: for (call, offset) in schedule {
        let due = start + offset;
        tokio::select! {
            biased;
            () = &mut stop => break 'arrivals,
            () = tokio::time::sleep_until(due) => {}
        }
        for target in 0..targets {
            out.intended += 1;
            let fut = spawn(call, target);
            let (slots, tx, deadline) = (slots.clone(), tx.clone(), due + load.max_start_delay);
            calls.spawn(async move {
                let permit = tokio::select! {
                    p = slots.acquire_owned() => p.ok(),
                    () = tokio::time::sleep_until(deadline) => None,
                };
                let Some(_permit) = permit else {
                    let _ = tx.send(Admission::Dropped);
                    return;
                };
                let _ = tx.send(Admission::Started(Instant::now().saturating_duration_since(due)));
                fut.await;
            });
            while calls.try_join_next().is_some() {}
        }
        while let Ok(a) = rx.try_recv() {
            out.count(a);
        }
    }
    drop(tx);
    while calls.join_next().await.is_some() {}
    while let Some(a) = rx.recv().await {
        out.count(a);
    }
    out
}

/// The summary entry of a load, before any arrival (the counts are filled in as the run ends).
pub fn summary_of(load: &Load) -> crate::report::LoadSummary {
    use crate::report::summary::{LatenessSummary, Ordered};
    crate::report::LoadSummary {
        arrivals: match load.arrivals {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
        .into(),
        stages: load
            .stages
            .iter()
            .map(|s| {
                Ordered(vec![
                    ("duration_s".into(), s.duration.as_secs_f64()),
                    ("from_per_s".into(), s.from),
                    ("to_per_s".into(), s.to),
                ])
            })
            .collect(),
        max_in_flight: load.max_in_flight,
        max_start_delay_ms: load.max_start_delay.as_secs_f64() * 1000.0,
        intended: 0,
        started: 0,
        late: 0,
        dropped: 0,
        start_lateness: LatenessSummary { samples: 0, p50_ms: 0.0, p99_ms: 0.0, max_ms: 0.0 },
    }
}

/// What became of one arrival.
enum Admission {
    Started(Duration),
    Dropped,
}

impl LoadOutcome {
    fn count(&mut self, a: Admission) {
        match a {
            Admission::Started(late) => {
                self.started += 1;
                if late >= LATE {
                    self.late += 1;
                }
                self.start_lateness.record(late.as_micros() as u64);
            }
            Admission::Dropped => self.dropped += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn load(stages: &str, arrivals: Arrivals) -> Load {
        Load {
            stages: parse_stages(stages).unwrap(),
            arrivals,
            max_in_flight: 1000,
            max_start_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn rates_durations_and_stages_parse_or_say_how() {
        assert_eq!(parse_rate("2/s"), Ok(2.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["0/s", "-1", "2/d", "x/s", "1e9/s", "inf"] {
            assert!(matches!(parse_rate(bad), Err(LoadError::Rate(_))), "{bad}");
        }
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err() && parse_duration("soon").is_err());
        let s = parse_stages("30s:2/s, 5m:10/s").unwrap();
        assert_eq!(s[0], Stage { duration: Duration::from_secs(30), from: 0.0, to: 2.0 });
        assert_eq!(s[1], Stage { duration: Duration::from_secs(300), from: 2.0, to: 10.0 });
        let e = parse_stages("30s-2/s").unwrap_err();
        assert!(e.to_string().contains("DURATION:RATE"), "{e}");
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_from_zero() {
        let l = Load {
            stages: vec![Stage { duration: Duration::from_secs(10), from: 4.0, to: 4.0 }],
            ..load("1s:1/s", Arrivals::Constant)
        };
        let t: Vec<f64> = l.schedule(1).map(|d| d.as_secs_f64()).collect();
        assert_eq!(t.len(), 40);
        for (k, x) in t.iter().enumerate() {
            assert!((x - k as f64 * 0.25).abs() < 1e-9, "arrival {k} at {x}");
        }
    }

    #[test]
    fn a_ramp_delivers_its_area_with_arrivals_denser_at_the_top() {
        // 0 → 10/s over 10 s: 50 arrivals, Λ(t) = t²/2, so arrival k at √(2k).
        let t: Vec<f64> = load("10s:10/s", Arrivals::Constant).schedule(1).map(|d| d.as_secs_f64()).collect();
        assert_eq!(t.len(), 50);
        for (k, x) in t.iter().enumerate() {
            assert!((x - (2.0 * k as f64).sqrt()).abs() < 1e-9, "arrival {k} at {x}");
        }
        // Two stages: the second holds 10/s for 5 s after the ramp: 50 more.
        assert_eq!(load("10s:10/s,5s:10/s", Arrivals::Constant).schedule(1).count(), 100);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_and_exponential_gaps() {
        let l = Load {
            stages: vec![Stage { duration: Duration::from_secs(2000), from: 5.0, to: 5.0 }],
            ..load("1s:1/s", Arrivals::Poisson)
        };
        let t: Vec<f64> = l.schedule(42).map(|d| d.as_secs_f64()).collect();
        // 10,000 expected; a Poisson count's sd is 100: within 4 sd.
        assert!((t.len() as f64 - 10_000.0).abs() < 400.0, "{} arrivals", t.len());
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.2).abs() < 0.01, "mean gap {mean}");
        // Exponential: P(gap > mean) = e⁻¹ ≈ 0.368.
        let over = gaps.iter().filter(|g| **g > 0.2).count() as f64 / gaps.len() as f64;
        assert!((over - (-1.0f64).exp()).abs() < 0.02, "P(gap > 0.2 s) = {over}");
        // Seeded: the same seed, the same arrivals.
        assert_eq!(l.schedule(42).take(100).collect::<Vec<_>>(), l.schedule(42).take(100).collect::<Vec<_>>());
    }

    /// Runs an open loop on the paused clock against calls that last `base` plus `per_call` for each call in flight
    /// when they start (an agent that slows down under load); returns the outcome.
    async fn simulate(rate: f64, secs: u64, max_in_flight: u32, base: Duration, per_call: Duration) -> LoadOutcome {
        let l = Load {
            stages: vec![Stage { duration: Duration::from_secs(secs), from: rate, to: rate }],
            arrivals: Arrivals::Constant,
            max_in_flight,
            max_start_delay: Duration::from_secs(1),
        };
        let in_flight = Arc::new(AtomicU32::new(0));
        let schedule = l.schedule(7).enumerate().map(|(k, d)| (k as u32, d));
        open_loop(&l, schedule, 1, Instant::now(), std::future::pending(), |_, _| {
            let in_flight = in_flight.clone();
            async move {
                let n = in_flight.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(base + per_call * n).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn below_capacity_every_call_starts_on_time() {
        // 2 calls/s of 1 s each: ~2 in flight, far below the 20 slots.
        let o = simulate(2.0, 60, 20, Duration::from_secs(1), Duration::from_millis(10)).await;
        assert_eq!((o.intended, o.started, o.late, o.dropped), (120, 120, 0, 0));
        assert_eq!(o.start_lateness.stats().unwrap().max, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_that_slows_under_load_gets_late_and_dropped_calls_counted() {
        // 10 calls/s; each call takes 1 s plus 0.5 s per call already in flight: the calls in flight climb to the
        // 20 slots, then arrivals wait (late) and, past 1 s, are dropped.
        let o = simulate(10.0, 60, 20, Duration::from_secs(1), Duration::from_millis(500)).await;
        assert_eq!(o.intended, 600);
        assert_eq!(o.started + o.dropped, o.intended, "every arrival is started or dropped: {o:?}");
        assert!(o.late > 0 && o.dropped > 0, "{o:?}");
        assert!(o.start_lateness.stats().unwrap().max <= 1000.0, "no call starts past the 1 s limit: {o:?}");
    }
}
