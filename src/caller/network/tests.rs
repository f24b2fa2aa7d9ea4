//! The impairment's tests on tokio's paused clock: over 10,000 frames the configured latency, jitter, loss,
//! bursts, reordering and bandwidth give the configured distributions (within four standard errors), and a reply's
//! TTFA moves by exactly the one-way delays its frames met.

use super::*;
use crate::caller::turns::{CallId, Tracker};
use crate::model::ResponseStatus;
use crate::scenario::{AudioRef, Expect, StartSpec, TurnSpec};

const N: usize = 10_000;
const FRAME: Duration = Duration::from_millis(20);

fn cfg(latency_ms: f64, jitter_ms: f64, jitter: Jitter) -> NetworkConfig {
    NetworkConfig { latency_ms, jitter_ms, jitter, ..NetworkConfig::none() }
}

/// Sends `N` uplink frames every 20 ms and returns (delay ms, lost) of each in arrival order, and the path.
fn deliver(c: &NetworkConfig, seed: u64) -> (Vec<(f64, bool)>, NetPath) {
    let t0 = Instant::now();
    let mut p = NetPath::new(c, (seed, seed + 1), FRAME, 320, 8000, 1);
    let mut sent = Vec::new();
    for k in 0..N {
        let at = t0 + FRAME * k as u32;
        p.send_up(UpFrame::Utterance(0, k), at);
        sent.push(at);
    }
    let end = t0 + Duration::from_secs(3600);
    let mut out = Vec::new();
    while let Some(t) = p.up.next_at() {
        assert!(t <= end);
        let (at, lost, f) = p.up.pop(t).unwrap();
        let UpFrame::Utterance(0, k) = f else { panic!("{f:?}") };
        out.push(((at - sent[k]).as_secs_f64() * 1000.0, lost));
    }
    (out, p)
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64;
    (m, v.sqrt())
}

#[tokio::test(start_paused = true)]
async fn uniform_jitter_spreads_delays_evenly_around_the_latency() {
    let (d, p) = deliver(&cfg(40.0, 8.0, Jitter::Uniform), 1);
    let d: Vec<f64> = d.iter().map(|x| x.0).collect();
    let (m, sd) = mean_sd(&d);
    let want_sd = 8.0 / 3f64.sqrt();
    assert!((m - 40.0).abs() < 4.0 * want_sd / (N as f64).sqrt(), "mean {m}");
    assert!((sd - want_sd).abs() < 0.1, "sd {sd}");
    assert!(d.iter().all(|v| (32.0..=48.0).contains(v)));
    // Jitter under half a frame never makes a frame wait for the one before it: nothing is late or reordered.
    let e = p.effect().up;
    assert_eq!((e.packets, e.lost, e.reordered, e.late), (N as u64, 0, 0, 0));
    assert!((e.delay_mean_ms - m).abs() < 1e-6);
}

#[tokio::test(start_paused = true)]
async fn normal_and_pareto_jitter_have_their_configured_moments_and_tail() {
    // Draws (before in-order delivery): normal has σ = jitter; the Pareto tail has mean `latency`, least value
    // `latency − jitter`, and P(delay ≤ latency + x) = 1 − (1 + (x + j)/(2j))^−3.
    let mut l = Link::new(cfg(100.0, 10.0, Jitter::Normal), 7, FRAME);
    let d: Vec<f64> = (0..N).map(|_| l.draw_delay_ms()).collect();
    let (m, sd) = mean_sd(&d);
    assert!((m - 100.0).abs() < 4.0 * 10.0 / (N as f64).sqrt(), "mean {m}");
    assert!((sd - 10.0).abs() < 4.0 * 10.0 / (2.0 * N as f64).sqrt(), "sd {sd}");

    let j = 20.0;
    let mut l = Link::new(cfg(150.0, j, Jitter::Pareto), 9, FRAME);
    let d: Vec<f64> = (0..N).map(|_| l.draw_delay_ms()).collect();
    assert!(d.iter().all(|v| *v >= 150.0 - j - 1e-9));
    for x in [0.0, j, 3.0 * j, 10.0 * j] {
        let want = 1.0 - (1.0 + (x + j) / (2.0 * j)).powi(-3);
        let got = d.iter().filter(|v| **v <= 150.0 + x).count() as f64 / N as f64;
        let se = (want * (1.0 - want) / N as f64).sqrt();
        assert!((got - want).abs() < 4.0 * se + 1e-3, "P(≤ latency+{x}) = {got}, want {want}");
    }
    // The mean of a shape-3 tail converges slowly (infinite third moment): a looser bound.
    let (m, _) = mean_sd(&d);
    assert!((m - 150.0).abs() < 1.5, "mean {m}");

    // Delivered in order: with σ = 10 ms a frame sometimes waits for the one before it (20 ms earlier), so the
    // delivered delays are never below the draws' least, never out of order, and their mean is a little higher.
    let (dd, p) = deliver(&cfg(100.0, 10.0, Jitter::Normal), 3);
    let e = p.effect().up;
    assert_eq!(e.reordered, 0);
    let (dm, _) = mean_sd(&dd.iter().map(|x| x.0).collect::<Vec<_>>());
    assert!((100.0 - 0.4..101.0).contains(&dm), "delivered mean {dm}");
    // The receiver gives up on a packet 2.326 σ past the mean (the draw's 99th percentile): 1 % come too late, and
    // no packet is held past that deadline by one before it.
    let want = 0.01;
    let got = e.late as f64 / N as f64;
    assert!((got - want).abs() < 4.0 * (want * (1.0 - want) / N as f64).sqrt(), "late {got}");
    let worst = dd.iter().map(|x| x.0).fold(0.0, f64::max);
    assert!(worst <= 100.0 + 23.26 + 1e-6, "worst delay {worst}");
}

#[tokio::test(start_paused = true)]
async fn random_and_bursty_loss_have_their_configured_rate_and_burst_length() {
    let runs = |lost: &[bool]| -> Vec<usize> {
        let mut out = Vec::new();
        let mut n = 0;
        for &l in lost.iter().chain([false].iter()) {
            if l {
                n += 1;
            } else if n > 0 {
                out.push(n);
                n = 0;
            }
        }
        out
    };
    // Bernoulli: rate within 4 standard errors; runs as long as chance makes them (mean 1/(1−p)).
    let c = NetworkConfig { loss: 0.05, ..cfg(20.0, 0.0, Jitter::Uniform) };
    let (d, p) = deliver(&c, 11);
    let lost: Vec<bool> = d.iter().map(|x| x.1).collect();
    let rate = lost.iter().filter(|l| **l).count() as f64 / N as f64;
    assert!((rate - 0.05).abs() < 4.0 * (0.05f64 * 0.95 / N as f64).sqrt(), "rate {rate}");
    assert_eq!(p.effect().up.lost, lost.iter().filter(|l| **l).count() as u64);
    let r = runs(&lost);
    let mean_run = r.iter().sum::<usize>() as f64 / r.len() as f64;
    assert!((mean_run - 1.0 / 0.95).abs() < 0.1, "mean run {mean_run}");

    // Gilbert-Elliott, 3 % in bursts of 3: the rate's standard error grows by √((1+ρ)/(1−ρ)), ρ = 1 − p − r.
    let c = NetworkConfig { loss: 0.03, loss_burst: 3.0, ..cfg(20.0, 0.0, Jitter::Uniform) };
    let (d, _) = deliver(&c, 12);
    let lost: Vec<bool> = d.iter().map(|x| x.1).collect();
    let rate = lost.iter().filter(|l| **l).count() as f64 / N as f64;
    let (rr, pp) = (1.0 / 3.0, 0.03 / 3.0 / 0.97);
    let rho = 1.0 - rr - pp;
    let se = (0.03f64 * 0.97 / N as f64 * (1.0 + rho) / (1.0 - rho)).sqrt();
    assert!((rate - 0.03).abs() < 4.0 * se, "rate {rate} (se {se})");
    let r = runs(&lost);
    let mean_run = r.iter().sum::<usize>() as f64 / r.len() as f64;
    // Run lengths are geometric with mean 3 (σ = √6): four standard errors of the mean of this many runs.
    assert!((mean_run - 3.0).abs() < 4.0 * 6f64.sqrt() / (r.len() as f64).sqrt(), "mean run {mean_run}");
}

#[tokio::test(start_paused = true)]
async fn reordering_delivers_a_frame_after_its_successor_and_bandwidth_queues() {
    let c = NetworkConfig { reorder: 0.05, ..cfg(30.0, 0.0, Jitter::Uniform) };
    let (_, p) = deliver(&c, 13);
    let e = p.effect().up;
    // A held frame is overtaken unless its successor was held too.
    let want = 0.05 * 0.95;
    let got = e.reordered as f64 / N as f64;
    assert!((got - want).abs() < 4.0 * (want * (1.0 - want) / N as f64).sqrt(), "reordered {got}");

    // 160 bytes + 40 of headers at 100 kbit/s: 16 ms on the wire, under the 20 ms between frames: no queue.
    let c = NetworkConfig { bandwidth_kbps: Some(100.0), ..cfg(50.0, 0.0, Jitter::Uniform) };
    let mut p = NetPath::new(&c, (1, 2), FRAME, 160, 8000, 1);
    let t0 = Instant::now();
    for k in 0..100u32 {
        p.send_up(UpFrame::Silence, t0 + FRAME * k);
    }
    let arrivals: Vec<Instant> = std::iter::from_fn(|| p.up.pop(t0 + Duration::from_secs(60)).map(|x| x.0)).collect();
    assert!(arrivals.iter().enumerate().all(|(k, a)| *a == t0 + FRAME * k as u32 + Duration::from_millis(66)));
    // At 64 kbit/s a frame takes 25 ms: each waits 5 ms longer than the one before.
    let c = NetworkConfig { bandwidth_kbps: Some(64.0), ..cfg(50.0, 0.0, Jitter::Uniform) };
    let mut p = NetPath::new(&c, (1, 2), FRAME, 160, 8000, 1);
    for k in 0..100u32 {
        p.send_up(UpFrame::Silence, t0 + FRAME * k);
    }
    let last = std::iter::from_fn(|| p.up.pop(t0 + Duration::from_secs(60)).map(|x| x.0)).last().unwrap();
    assert_eq!(last - (t0 + FRAME * 99), Duration::from_millis(50 + 25 + 99 * 5));
}

/// One turn: speech from 300 to 1300 ms of a 1600 ms utterance at 8 kHz.
fn one_turn() -> Vec<TurnSpec> {
    vec![TurnSpec {
        index: 0,
        id: "t0".into(),
        audio: AudioRef {
            path: Default::default(),
            id: "u0".into(),
            text: None,
            sample_rate: 8000,
            duration_ms: 1600.0,
            speech_start_ms: 300.0,
            speech_end_ms: 1300.0,
            pauses_ms: vec![],
        },
        start: StartSpec::AfterAgentDone { gap_ms: 0 },
        expect: Expect::Respond,
        tool_calls: vec![],
        reply: None,
        content: Default::default(),
    }]
}

/// A call over `cfg` (or a clean line): an agent that answers 500 ms after the frame carrying the caller's end of
/// speech reaches it. Returns the TTFA and the one-way delays that frame and the reply's first packet met.
async fn call_over(cfg: Option<&NetworkConfig>) -> (f64, Duration, Duration) {
    let t0 = Instant::now();
    let mut tr = Tracker::new(
        one_turn(),
        vec![],
        t0,
        8000,
        Duration::from_secs(5),
        CallId { target: "t".into(), simulated: true, call: 0 },
    );
    assert_eq!(tr.schedule(0, FRAME), Some(0));
    let mut net = cfg.map(|c| NetPath::new(c, seeds(5, "t", 0), FRAME, 160, 8000, 1));
    let eos_frame = 64; // carries 1280–1300 ms: the last voiced sample
    let loud: Vec<i16> = (0..3200).map(|i| if i % 2 == 0 { 8000 } else { -8000 }).collect();
    let (mut up_delay, mut down_delay) = (Duration::ZERO, Duration::ZERO);
    let mut reply_at = None;
    for k in 0..400u32 {
        let now = t0 + FRAME * k;
        tokio::time::sleep_until(now).await;
        // The frame leaves the caller's mouth now.
        match &mut net {
            Some(n) => n.send_up(UpFrame::Utterance(0, k as usize), now),
            None if k == eos_frame => reply_at = Some(now + Duration::from_millis(500)),
            None => {}
        }
        // What arrives at the agent, and what reaches the caller, by now.
        if let Some(n) = &mut net {
            while let Some(at) = n.up.next_at().filter(|a| *a <= now) {
                let (_, _, f) = n.up.pop(at).unwrap();
                if f == UpFrame::Utterance(0, eos_frame as usize) {
                    up_delay = at - (t0 + FRAME * eos_frame);
                    reply_at = Some(at + Duration::from_millis(500));
                }
            }
        }
        if let Some(r) = reply_at.filter(|r| *r <= now) {
            reply_at = None;
            let audio = AgentEvent::Audio { at: r, item: 0, samples: loud.clone() };
            let done = AgentEvent::ResponseDone { at: r, status: ResponseStatus::Completed, had_tool_call: false };
            match &mut net {
                Some(n) => {
                    let first = n.down.link.clone().send(r, 160).at;
                    down_delay = first - r;
                    assert!(n.send_down(audio).is_none() && n.send_down(done).is_none());
                }
                None => {
                    tr.on_event(&audio);
                    tr.on_event(&done);
                }
            }
        }
        if let Some(n) = &mut net {
            while let Some(ev) = n.arrive_down(now) {
                tr.on_event(&ev);
            }
        }
        if tr.poll(now) {
            break;
        }
    }
    let r = tr.take_records().pop().expect("the turn finished");
    (r.ttfa_ms.expect("a TTFA"), up_delay, down_delay)
}

#[tokio::test(start_paused = true)]
async fn ttfa_moves_by_exactly_the_one_way_delays_the_frames_met() {
    // Reply sent 500 ms after the end-of-speech frame left (its slot starts 20 ms before the end of speech).
    let (clean, ..) = call_over(None).await;
    assert_eq!(clean, 480.0);
    let fixed = cfg(60.0, 0.0, Jitter::Uniform);
    let (ttfa, up, down) = call_over(Some(&fixed)).await;
    assert_eq!((up, down), (Duration::from_millis(60), Duration::from_millis(60)));
    assert_eq!(ttfa, clean + 120.0);
    // With jitter each call's shift is the two delays its own packets drew.
    let jittery = cfg(60.0, 8.0, Jitter::Uniform);
    let (ttfa, up, down) = call_over(Some(&jittery)).await;
    assert_ne!(up, down);
    let shift = (up + down).as_secs_f64() * 1000.0;
    assert!((ttfa - (clean + shift)).abs() < 1e-6, "ttfa {ttfa}, clean {clean}, shift {shift}");
}

#[tokio::test(start_paused = true)]
async fn the_agents_burst_leaves_the_gateway_at_playout_pace_and_a_flush_empties_it() {
    let t0 = Instant::now();
    let mut p = NetPath::new(&cfg(50.0, 0.0, Jitter::Uniform), (1, 2), FRAME, 160, 8000, 1);
    // Two seconds of audio received at once (a provider's burst), a transcript, then a flush 1 s later.
    assert!(p.send_down(AgentEvent::Audio { at: t0, item: 0, samples: vec![100; 16_000] }).is_none());
    assert!(p.send_down(AgentEvent::Transcript { at: t0, text: "hello".into(), segment: false }).is_none());
    let f = t0 + Duration::from_millis(1000);
    assert!(p.send_down(AgentEvent::SpeechStarted { at: f }).is_none());
    assert!(
        p.send_down(AgentEvent::ResponseDone { at: f, status: ResponseStatus::Cancelled, had_tool_call: false })
            .is_none()
    );
    let mut audio = Vec::new();
    let mut others = Vec::new();
    while let Some(released) = p.next_arrival() {
        let r = released - t0;
        match p.arrive_down(released).unwrap() {
            AgentEvent::Audio { at, samples, .. } => audio.push((at - t0, samples.len())),
            // An agent-side fact keeps its receive stamp.
            AgentEvent::Transcript { at, .. } => others.push(("transcript", r, at - t0)),
            AgentEvent::SpeechStarted { at } => others.push(("flush", r, at - t0)),
            AgentEvent::ResponseDone { at, .. } => others.push(("done", r, at - t0)),
            ev => panic!("{ev:?}"),
        }
    }
    // Packets sent every 20 ms up to the flush (0 … 1000 ms), each arriving 50 ms later; the rest never crossed.
    assert_eq!(audio.len(), 51);
    assert!(
        audio.iter().enumerate().all(|(k, (at, n))| *at == FRAME * k as u32 + Duration::from_millis(50) && *n == 160)
    );
    assert_eq!(p.effect().down.packets, 51);
    // The transcript is not held behind audio the gateway had not sent yet; the flush and the end of the response
    // arrive behind the audio sent before them.
    let ms = Duration::from_millis;
    assert_eq!(others, [("transcript", ms(50), ms(0)), ("flush", ms(1050), ms(1050)), ("done", ms(1050), ms(1050))]);
}

#[tokio::test(start_paused = true)]
async fn an_agent_flooding_the_caller_cannot_grow_the_path() {
    let t0 = Instant::now();
    let mut p = NetPath::new(&cfg(100.0, 0.0, Jitter::Uniform), (1, 2), FRAME, 160, 8000, 1);
    // 30,000 packets' worth of audio at once: the gateway paces them, the path holds MAX_IN_FLIGHT of them.
    assert!(p.send_down(AgentEvent::Audio { at: t0, item: 0, samples: vec![100; 160 * 30_000] }).is_none());
    assert_eq!(p.down.queue.len(), MAX_IN_FLIGHT);
    // A control message that cannot queue comes back, to be delivered at once.
    let back = p.send_down(AgentEvent::Transcript { at: t0, text: "x".into(), segment: false });
    assert!(matches!(back, Some(AgentEvent::Transcript { .. })));
    assert_eq!(p.down.queue.len(), MAX_IN_FLIGHT);
    // The dropped packets are counted lost.
    while let Some(at) = p.next_arrival() {
        p.arrive_down(at);
    }
    let e = p.effect().down;
    assert_eq!((e.packets, e.lost), (30_000, 30_000 - MAX_IN_FLIGHT as u64));
}
