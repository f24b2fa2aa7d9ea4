//! The impaired network inside the caller (docs/network.md): every outgoing frame and every agent event crosses a
//! seeded one-way [`Link`] per direction that delays, loses, reorders and rate-limits packets, and the caller acts
//! on them only when they arrive. Metrics stay defined at the caller's mouth and ear: `user_eos` is when the caller
//! stopped talking (the agent hears it one uplink delay later), and the agent's audio is placed on the playback
//! timeline when it reaches the caller, so TTFA carries both one-way delays, as a caller experiences it.
//!
//! - Uplink: each frame is a 20 ms packet, sent when its delay has passed. A lost frame reaches the agent as
//!   silence in its slot (a telephony gateway conceals the gap; the agent's audio clock never skips).
//! - Downlink: the agent's audio is cut into packets of one frame's length, each with its own delay and fate; a lost
//!   packet is heard as silence of its length. The agent's other events (its flushes, ends of responses, errors)
//!   ride the same path in order and are never lost; they take the arrival instant, so a flush cuts the playback
//!   where the caller heard it stop. Facts about the agent's own side (its end-of-speech signal, pipeline stages,
//!   transcripts) keep their receive stamps. Tool calls bypass the path both ways: the tools run beside the agent,
//!   not behind the caller's phone.
//! - Delivery is in order (as a receiver's jitter buffer delivers): a packet whose draw would overtake an earlier
//!   one waits for it. `reorder` alone delivers a packet after its successor: it is held one and a half frames longer.
//!
//! The draws are hand-written on the crate's [`SplitMix64`] (a Lomax tail, a two-state Gilbert-Elliott chain): no
//! network emulator crate works inside a process on a caller's own frames, and netem needs root and a real device.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::model::AgentEvent;
use crate::model::network::{DirEffect, Jitter, NetEffect, NetworkConfig, PACKET_OVERHEAD_BYTES};
use crate::stats::SplitMix64;

/// Most packets one direction holds in flight: beyond it a packet is dropped (a router's full queue), so an agent
/// that floods audio cannot grow the caller's memory.
pub const MAX_IN_FLIGHT: usize = 20_000;

/// One direction's seeded impairment: the delay, loss and reordering draws and the link's serialisation queue.
#[derive(Debug, Clone)]
pub struct Link {
    cfg: NetworkConfig,
    rng: SplitMix64,
    /// Gilbert-Elliott: whether the chain is in its (losing) bad state.
    bad: bool,
    /// When the link finishes serialising what it has been given.
    link_free: Option<Instant>,
    /// The latest arrival of an in-order packet: no later packet arrives before it.
    last_in_order: Option<Instant>,
    frame: Duration,
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fate {
    /// When it reaches the far end (a lost packet: when its slot would have, filled with silence).
    pub at: Instant,
    /// Whether it was lost.
    pub lost: bool,
    /// Whether it was picked to be delivered after its successor.
    pub reorder: bool,
}

impl Link {
    /// A link with `cfg`'s values, drawing from `seed`, for packets of `frame`.
    pub fn new(cfg: NetworkConfig, seed: u64, frame: Duration) -> Link {
        let mut rng = SplitMix64::new(seed);
        // Start the loss chain in its stationary state (bad with probability `loss`).
        let bad = cfg.loss_burst > 1.0 && rng.next_f64() < cfg.loss;
        Link { cfg, rng, bad, link_free: None, last_in_order: None, frame }
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// One packet's one-way delay, ms (before queueing): `latency` plus the jitter draw, never below zero.
    pub fn draw_delay_ms(&mut self) -> f64 {
        let j = self.cfg.jitter_ms;
        let x = if j <= 0.0 {
            0.0
        } else {
            match self.cfg.jitter {
                Jitter::Uniform => (self.rng.next_f64() * 2.0 - 1.0) * j,
                Jitter::Normal => self.rng.standard_normal() * j,
                // Lomax(shape 3, scale 2j) has mean j: shifted by −j it has mean 0, least value −j.
                Jitter::Pareto => {
                    let u = 1.0 - self.rng.next_f64();
                    2.0 * j * (u.powf(-1.0 / 3.0) - 1.0) - j
                }
            }
        };
        (self.cfg.latency_ms + x).max(0.0)
    }

    /// Whether the next packet is lost: Bernoulli at `loss_burst` 1, else the Gilbert-Elliott chain (bad → good
    /// with probability 1/burst, good → bad with `loss`/(burst·(1 − loss)), so the loss rate is `loss` and runs of
    /// losses last `burst` packets on average).
    pub fn draw_lost(&mut self) -> bool {
        let c = &self.cfg;
        if c.loss <= 0.0 {
            return false;
        }
        let u = self.rng.next_f64();
        if c.loss_burst <= 1.0 {
            return u < c.loss;
        }
        let r = 1.0 / c.loss_burst;
        let p = c.loss * r / (1.0 - c.loss);
        self.bad = if self.bad { u >= r } else { u < p };
        self.bad
    }

    /// A packet of `bytes` payload sent at `sent`. A `reliable` one (a control event) is never lost or reordered.
    pub fn send(&mut self, sent: Instant, bytes: usize, reliable: bool) -> Fate {
        let lost = !reliable && self.draw_lost();
        let reorder = !reliable && self.cfg.reorder > 0.0 && self.rng.next_f64() < self.cfg.reorder;
        let delay = Duration::from_secs_f64(self.draw_delay_ms() / 1000.0);
        let on_wire = match self.cfg.bandwidth_kbps {
            Some(kbps) => {
                let bits = ((bytes + PACKET_OVERHEAD_BYTES) * 8) as f64;
                let done = self.link_free.map_or(sent, |f| f.max(sent)) + Duration::from_secs_f64(bits / kbps / 1000.0);
                self.link_free = Some(done);
                done
            }
            None => sent,
        };
        let mut at = on_wire + delay;
        if reorder {
            at += self.frame + self.frame / 2;
        } else {
            at = self.last_in_order.map_or(at, |l| l.max(at));
            self.last_in_order = Some(at);
        }
        Fate { at, lost, reorder }
    }
}

/// A packet in flight.
#[derive(Debug)]
struct InFlight<T> {
    at: Instant,
    seq: u64,
    sent: Instant,
    lost: bool,
    /// A packet of audio (counted in the effect), not a control event.
    counted: bool,
    item: T,
}

/// A direction's packets in flight, in arrival order, and what the link did to those delivered.
#[derive(Debug)]
struct Lane<T> {
    link: Link,
    /// Sorted by arrival, then sequence.
    queue: VecDeque<InFlight<T>>,
    next_seq: u64,
    /// The highest sequence number of a packet delivered so far.
    delivered_max: Option<u64>,
    effect: DirEffect,
    delivered: u64,
    delay_sum_ms: f64,
}

impl<T> Lane<T> {
    fn new(link: Link) -> Lane<T> {
        Lane {
            link,
            queue: VecDeque::new(),
            next_seq: 0,
            delivered_max: None,
            effect: DirEffect::default(),
            delivered: 0,
            delay_sum_ms: 0.0,
        }
    }

    /// Puts a packet sent at `sent` on the link. A `reliable` one is a control event: never lost, not counted.
    fn push(&mut self, sent: Instant, bytes: usize, reliable: bool, item: T) {
        let full = self.queue.len() >= MAX_IN_FLIGHT;
        let fate = self.link.send(sent, bytes, reliable);
        let seq = self.next_seq;
        self.next_seq += 1;
        let lost = !reliable && (fate.lost || full);
        let pos = self.queue.partition_point(|q| (q.at, q.seq) <= (fate.at, seq));
        self.queue.insert(pos, InFlight { at: fate.at, seq, sent, lost, counted: !reliable, item });
    }

    fn next_at(&self) -> Option<Instant> {
        self.queue.front().map(|q| q.at)
    }

    /// The next packet that has arrived by `now`: (arrival, lost, item).
    fn pop(&mut self, now: Instant) -> Option<(Instant, bool, T)> {
        if self.queue.front().is_none_or(|q| q.at > now) {
            return None;
        }
        let p = self.queue.pop_front()?;
        if p.counted {
            self.count(&p);
        }
        Some((p.at, p.lost, p.item))
    }

    fn count(&mut self, p: &InFlight<T>) {
        let e = &mut self.effect;
        e.packets += 1;
        if self.delivered_max.is_some_and(|m| m > p.seq) {
            e.reordered += 1;
        }
        self.delivered_max = Some(self.delivered_max.map_or(p.seq, |m| m.max(p.seq)));
        if p.lost {
            e.lost += 1;
            return;
        }
        let d = p.at.saturating_duration_since(p.sent).as_secs_f64() * 1000.0;
        self.delivered += 1;
        self.delay_sum_ms += d;
        e.delay_max_ms = e.delay_max_ms.max(d);
        let frame_ms = self.link.frame.as_secs_f64() * 1000.0;
        e.late += u64::from(d > self.link.cfg.latency_ms + frame_ms);
    }

    /// What the link did to the packets delivered so far.
    fn effect(&self) -> DirEffect {
        let mut e = self.effect.clone();
        e.delay_mean_ms = if self.delivered > 0 { self.delay_sum_ms / self.delivered as f64 } else { 0.0 };
        e
    }
}

/// What goes up: frame `n` of turn `i`'s utterance, or a frame of silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpFrame {
    /// Frame `n` of turn `i`'s utterance.
    Utterance(usize, usize),
    /// Silence: the caller's microphone between utterances, or a lost frame concealed.
    Silence,
}

/// The caller's network, both ways.
#[derive(Debug)]
pub struct NetPath {
    up: Lane<UpFrame>,
    down: Lane<AgentEvent>,
    /// Payload bytes of one uplink frame.
    up_bytes: usize,
    /// Samples per downlink packet at the ear's rate, and payload bytes per sample.
    down_packet: usize,
    down_sample_bytes: usize,
}

/// Seeds of a call's two directions: the run's seed stream, the target, the call (independent, reproducible).
pub fn seeds(seed: u64, target: &str, call: u32) -> (u64, u64) {
    let base = crate::stats::fnv(&format!("network/{target}/{call}/{seed}"));
    (base, base ^ 0x9E37_79B9_7F4A_7C15)
}

impl NetPath {
    /// A path with `cfg` both ways, seeded by `seeds`, for `frame`-long packets: uplink frames of `up_bytes`
    /// payload, downlink audio at `ear_rate` Hz with `sample_bytes` per sample on the wire (1 for μ-law).
    pub fn new(
        cfg: &NetworkConfig,
        seeds: (u64, u64),
        frame: Duration,
        up_bytes: usize,
        ear_rate: u32,
        sample_bytes: usize,
    ) -> NetPath {
        let down_packet = ((ear_rate as u128 * frame.as_nanos()) / 1_000_000_000).max(1) as usize;
        NetPath {
            up: Lane::new(Link::new(cfg.clone(), seeds.0, frame)),
            down: Lane::new(Link::new(cfg.clone(), seeds.1, frame)),
            up_bytes,
            down_packet,
            down_sample_bytes: sample_bytes,
        }
    }

    /// The caller's frame, spoken at `sent`, onto the uplink.
    pub fn send_up(&mut self, frame: UpFrame, sent: Instant) {
        self.up.push(sent, self.up_bytes, false, frame);
    }

    /// An agent event, received at its stamp, onto the downlink: audio cut into packets, others as control events.
    /// Tool calls are not for the path (the caller handles them at once).
    pub fn send_down(&mut self, ev: AgentEvent) {
        match ev {
            AgentEvent::Audio { at, item, samples } => {
                if samples.len() <= self.down_packet {
                    let bytes = samples.len() * self.down_sample_bytes;
                    self.down.push(at, bytes, false, AgentEvent::Audio { at, item, samples });
                    return;
                }
                for chunk in samples.chunks(self.down_packet) {
                    let bytes = chunk.len() * self.down_sample_bytes;
                    self.down.push(at, bytes, false, AgentEvent::Audio { at, item, samples: chunk.to_vec() });
                }
            }
            other => {
                let at = stamp(&other);
                self.down.push(at, 0, true, other);
            }
        }
    }

    /// The next instant something arrives, either way.
    pub fn next_arrival(&self) -> Option<Instant> {
        match (self.up.next_at(), self.down.next_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next uplink frame that has reached the agent by `now` (a lost one as silence).
    pub fn arrive_up(&mut self, now: Instant) -> Option<UpFrame> {
        self.up.pop(now).map(|(_, lost, f)| if lost { UpFrame::Silence } else { f })
    }

    /// The next downlink event that has reached the caller by `now`, stamped with its arrival (audio, flushes, ends
    /// of responses, errors, closes) or its receive instant (the agent's own end-of-speech, stages, transcripts).
    /// A lost audio packet arrives as silence of its length.
    pub fn arrive_down(&mut self, now: Instant) -> Option<AgentEvent> {
        let (arrived, lost, ev) = self.down.pop(now)?;
        Some(match ev {
            AgentEvent::Audio { item, mut samples, .. } => {
                if lost {
                    samples.iter_mut().for_each(|s| *s = 0);
                }
                AgentEvent::Audio { at: arrived, item, samples }
            }
            AgentEvent::SpeechStarted { .. } => AgentEvent::SpeechStarted { at: arrived },
            AgentEvent::Interrupted { .. } => AgentEvent::Interrupted { at: arrived },
            AgentEvent::ResponseDone { status, had_tool_call, .. } => {
                AgentEvent::ResponseDone { at: arrived, status, had_tool_call }
            }
            AgentEvent::Error { category, message, .. } => AgentEvent::Error { at: arrived, category, message },
            AgentEvent::Closed { reason, .. } => AgentEvent::Closed { at: arrived, reason },
            other => other,
        })
    }

    /// Whether anything is still in flight either way.
    pub fn in_flight(&self) -> bool {
        !self.up.queue.is_empty() || !self.down.queue.is_empty()
    }

    /// What the path did to the packets delivered so far.
    pub fn effect(&self) -> NetEffect {
        NetEffect { up: self.up.effect(), down: self.down.effect() }
    }
}

/// An event's receive stamp.
fn stamp(ev: &AgentEvent) -> Instant {
    match ev {
        AgentEvent::Audio { at, .. }
        | AgentEvent::SpeechStarted { at }
        | AgentEvent::SpeechStopped { at }
        | AgentEvent::Interrupted { at }
        | AgentEvent::ToolCall { at, .. }
        | AgentEvent::ResponseDone { at, .. }
        | AgentEvent::Stage { at, .. }
        | AgentEvent::Transcript { at, .. }
        | AgentEvent::Error { at, .. }
        | AgentEvent::Closed { at, .. } => *at,
    }
}

#[cfg(test)]
mod tests;
