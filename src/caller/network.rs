//! The impaired network inside the caller (docs/network.md): every outgoing frame and every agent event crosses a
//! seeded one-way [`Link`] per direction that delays, loses, reorders and rate-limits packets, and the caller acts
//! on them only when they arrive. Metrics stay defined at the caller's mouth and ear: `user_eos` is when the caller
//! stopped talking (the agent hears it one uplink delay later), and the agent's audio is placed on the playback
//! timeline when it reaches the caller, so TTFA carries both one-way delays, as a caller experiences it.
//!
//! - Uplink: each frame is a 20 ms packet, sent when its delay has passed. A lost frame reaches the agent as
//!   silence in its slot (a telephony gateway conceals the gap; the agent's audio clock never skips).
//! - Downlink: the agent's audio leaves a media gateway at playout pace (a provider's faster-than-real-time burst
//!   waits in the gateway's buffer, as in Twilio's or a WebRTC media server's), cut into packets of one frame's
//!   length, each with its own delay and fate; a lost packet is heard as silence of its length. A flush empties the
//!   gateway's buffer: what it had sent still reaches the caller, so the caller hears the agent stop one downlink
//!   delay after the agent did. The agent's other events (ends of responses, errors) ride the same path in order
//!   and are never lost; they take the arrival instant. Facts about the agent's own side (its end-of-speech signal, pipeline stages,
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
    /// How long past the mean latency the receiver waits for a packet, ms.
    playout_ms: f64,
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fate {
    /// When it reaches the far end (a lost packet: when its slot would have, filled with silence).
    pub at: Instant,
    /// Whether it was lost.
    pub lost: bool,
    /// Whether it arrived after the receiver's playout deadline (concealed with silence at the deadline).
    pub late: bool,
    /// Whether it was picked to be delivered after its successor.
    pub reorder: bool,
    /// When its last bit left the sender (its send instant on an unlimited link).
    pub wire_done: Instant,
}

impl Link {
    /// A link with `cfg`'s values, drawing from `seed`, for packets of `frame`.
    pub fn new(cfg: NetworkConfig, seed: u64, frame: Duration) -> Link {
        let mut rng = SplitMix64::new(seed);
        // Start the loss chain in its stationary state (bad with probability `loss`).
        let bad = cfg.loss_burst > 1.0 && rng.next_f64() < cfg.loss;
        let playout_ms = cfg.playout_ms();
        Link { cfg, rng, bad, link_free: None, last_in_order: None, frame, playout_ms }
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

    /// A packet of `bytes` payload sent at `sent`.
    pub fn send(&mut self, sent: Instant, bytes: usize) -> Fate {
        let lost = self.draw_lost();
        let reorder = self.cfg.reorder > 0.0 && self.rng.next_f64() < self.cfg.reorder;
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
        // The receiver waits for a packet until its playout deadline (a jitter buffer's depth past the mean
        // latency), then conceals it with silence there: a late packet never holds up those behind it.
        let deadline = on_wire + Duration::from_secs_f64((self.cfg.latency_ms + self.playout_ms) / 1000.0);
        let mut at = on_wire + delay;
        let late = !lost && at > deadline;
        // A late packet, or a lost one that would have been, is given up on at its deadline.
        at = at.min(deadline);
        if reorder && !late {
            // Held behind the packets before it, then one and a half frames more: its successor overtakes it.
            at = self.last_in_order.map_or(at, |l| l.max(at)) + self.frame + self.frame / 2;
        } else {
            at = self.last_in_order.map_or(at, |l| l.max(at));
            self.last_in_order = Some(at);
        }
        Fate { at, lost, late, reorder: reorder && !late, wire_done: on_wire }
    }
}

/// What a queued item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A packet of audio: drawn for loss and reordering, counted in the effect.
    Packet,
    /// A control message: never lost, after the packets sent before it.
    Control,
    /// A control message that closes what came before it (the end of a response): after every packet queued before
    /// it, so the caller learns the response ended once its audio has arrived.
    Trailer,
}

/// A packet in flight.
#[derive(Debug)]
struct InFlight<T> {
    at: Instant,
    /// A control message's own arrival (its send instant plus its delay), before it is put behind packets.
    own_at: Instant,
    wire_done: Instant,
    in_order: bool,
    seq: u64,
    sent: Instant,
    lost: bool,
    /// Given up at the playout deadline (delivered as silence, like a lost one).
    late: bool,
    kind: Kind,
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
    /// The arrival of the last in-order item delivered.
    last_arrival: Option<Instant>,
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
            last_arrival: None,
        }
    }

    /// Puts an item sent at `sent` on the link. With [`MAX_IN_FLIGHT`] items in flight a packet is dropped (counted
    /// lost) and a control message is handed back, to be delivered at once: nothing queues beyond the bound.
    fn push(&mut self, sent: Instant, bytes: usize, kind: Kind, item: T) -> Option<T> {
        if self.queue.len() >= MAX_IN_FLIGHT {
            if kind != Kind::Packet {
                return Some(item);
            }
            self.effect.packets += 1;
            self.effect.lost += 1;
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let f = if kind == Kind::Packet {
            let fate = self.link.send(sent, bytes);
            let (at, wire_done, in_order) = (fate.at, fate.wire_done, !fate.reorder);
            let lost = fate.lost;
            InFlight { at, own_at: at, wire_done, in_order, seq, sent, lost, late: fate.late && !lost, kind, item }
        } else {
            // A control message is never later than a packet the receiver still waits for.
            let cap = self.link.cfg.latency_ms + self.link.playout_ms;
            let own_at = sent + Duration::from_secs_f64(self.link.draw_delay_ms().min(cap) / 1000.0);
            let mut f = InFlight {
                at: own_at,
                own_at,
                wire_done: sent,
                in_order: true,
                seq,
                sent,
                lost: false,
                late: false,
                kind,
                item,
            };
            f.at = self.behind(&f);
            self.link.last_in_order = Some(self.link.last_in_order.map_or(f.at, |l| l.max(f.at)));
            f
        };
        let pos = self.queue.partition_point(|q| (q.at, q.seq) <= (f.at, f.seq));
        self.queue.insert(pos, f);
        None
    }

    /// Where a control message `c` arrives behind what is queued before it ([`follow`]).
    fn behind(&self, c: &InFlight<T>) -> Instant {
        follow(c, self.last_arrival, self.queue.iter().filter(|q| q.seq < c.seq))
    }

    /// Drops the packets not yet sent at `t` (still in the sender's buffer): the link forgets them, as if they had
    /// never been given to it, and the control messages queued behind them move up.
    fn discard_unsent(&mut self, t: Instant) {
        self.queue.retain(|p| !(p.kind == Kind::Packet && p.sent > t));
        let mut items: Vec<InFlight<T>> = self.queue.drain(..).collect();
        items.sort_by_key(|q| q.seq);
        for i in 0..items.len() {
            if items[i].kind != Kind::Packet {
                items[i].at = follow(&items[i], self.last_arrival, items[..i].iter());
            }
        }
        items.sort_by_key(|q| (q.at, q.seq));
        self.queue = items.into();
        let l = &mut self.link;
        l.last_in_order = self.queue.iter().filter(|p| p.in_order).map(|p| p.at).max().or(self.last_arrival);
        l.link_free = self.queue.iter().map(|p| p.wire_done).max().or(l.link_free.map(|f| f.min(t)));
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
        if p.in_order {
            self.last_arrival = Some(p.at);
        }
        if p.kind == Kind::Packet {
            self.count(&p);
        }
        Some((p.at, p.lost || p.late, p.item))
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
        if p.late {
            e.late += 1;
            return;
        }
        let d = p.at.saturating_duration_since(p.sent).as_secs_f64() * 1000.0;
        self.delivered += 1;
        self.delay_sum_ms += d;
        e.delay_max_ms = e.delay_max_ms.max(d);
    }

    /// What the link did to the packets delivered so far.
    fn effect(&self) -> DirEffect {
        let mut e = self.effect.clone();
        e.delay_mean_ms = if self.delivered > 0 { self.delay_sum_ms / self.delivered as f64 } else { 0.0 };
        e
    }
}

/// Where a control message `c` arrives: not before its own arrival or the last item delivered (`last_arrival`), nor
/// before the items `before` it that it must follow (a trailer: all of them; a control message: those sent by its
/// send instant).
fn follow<'a, T: 'a>(
    c: &InFlight<T>,
    last_arrival: Option<Instant>,
    before: impl Iterator<Item = &'a InFlight<T>>,
) -> Instant {
    let mut at = last_arrival.map_or(c.own_at, |l| l.max(c.own_at));
    for q in before {
        if c.kind == Kind::Trailer || q.sent <= c.sent {
            at = at.max(q.at);
        }
    }
    at
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
    ear_rate: u32,
    /// The sending gateway's playout: when it will have sent all the agent audio it holds.
    gateway_free: Option<Instant>,
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
            ear_rate: ear_rate.max(1),
            gateway_free: None,
        }
    }

    fn duration_of(&self, samples: usize) -> Duration {
        Duration::from_nanos((samples as u128 * 1_000_000_000 / self.ear_rate as u128) as u64)
    }

    /// The caller's frame, spoken at `sent`, onto the uplink.
    pub fn send_up(&mut self, frame: UpFrame, sent: Instant) {
        let _ = self.up.push(sent, self.up_bytes, Kind::Packet, frame);
    }

    /// An agent event, received at its stamp, onto the downlink. The agent's audio leaves a media gateway at its
    /// playout pace (a provider's faster-than-real-time burst waits in the gateway, as Twilio's or a WebRTC media
    /// server's buffer holds it), cut into packets of one frame's length; a flush empties the gateway's buffer (the
    /// packets not yet sent never cross). Other events are control messages, in order with the audio. Tool calls
    /// are not for the path (the caller handles them at once). Returns a control message the path is too full to
    /// hold (an agent flooding the caller): the caller delivers it at once.
    #[must_use]
    pub fn send_down(&mut self, ev: AgentEvent) -> Option<AgentEvent> {
        match ev {
            AgentEvent::Audio { at, item, samples } => {
                let push = |this: &mut NetPath, chunk: Vec<i16>| {
                    let sent = this.gateway_free.map_or(at, |g| g.max(at));
                    this.gateway_free = Some(sent + this.duration_of(chunk.len()));
                    let bytes = chunk.len() * this.down_sample_bytes;
                    let _ =
                        this.down.push(sent, bytes, Kind::Packet, AgentEvent::Audio { at: sent, item, samples: chunk });
                };
                if samples.len() <= self.down_packet {
                    push(self, samples);
                } else {
                    for chunk in samples.chunks(self.down_packet) {
                        push(self, chunk.to_vec());
                    }
                }
                None
            }
            other => {
                let at = stamp(&other);
                if matches!(other, AgentEvent::SpeechStarted { .. } | AgentEvent::Interrupted { .. }) {
                    self.down.discard_unsent(at);
                    self.gateway_free = self.gateway_free.map(|g| g.min(at));
                }
                let kind = if matches!(other, AgentEvent::ResponseDone { .. }) { Kind::Trailer } else { Kind::Control };
                self.down.push(at, 0, kind, other)
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
            // A flush arrives behind the audio the gateway sent before it; the caller hears that audio to its end
            // (`Tracker::flush_point`).
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
