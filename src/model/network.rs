//! The network between the caller and the agent, as a scenario names it and every report records it: one-way
//! latency, jitter and its distribution, random or bursty (Gilbert-Elliott) loss, reordering and bandwidth
//! ([`NetworkConfig`]), the named presets with the sources of their values ([`PRESETS`]), and what the impairment
//! measurably did to a call ([`NetEffect`]). The caller applies it (`crate::caller::network`); docs/network.md
//! documents every field and cites every preset.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// How the one-way delay spreads around its mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Uniform on `latency ± jitter` (netem's default).
    Uniform,
    /// Normal with mean `latency` and standard deviation `jitter`.
    Normal,
    /// A long right tail (cellular and Wi-Fi queues): `latency − jitter` plus a Lomax (Pareto II, shape 3, scale
    /// `2·jitter`) draw, so the mean is `latency`, the least delay `latency − jitter` and the standard deviation
    /// `√3·jitter`.
    Pareto,
}

impl Jitter {
    /// The name the scenario uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::Uniform => "uniform",
            Jitter::Normal => "normal",
            Jitter::Pareto => "pareto",
        }
    }
}

/// One direction's impairment (both directions get the same values, drawn from independent seeded streams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The preset these values started from, when any (`lan`, `wifi`, `4g`, `pstn`, `bad-cellular`).
    #[serde(default)]
    pub preset: Option<Cow<'static, str>>,
    /// Mean one-way delay, ms.
    pub latency_ms: f64,
    /// Spread of the one-way delay, ms (see [`Jitter`]); a delay never goes below zero.
    pub jitter_ms: f64,
    /// How the delay spreads.
    pub jitter: Jitter,
    /// Fraction of packets lost, 0–1.
    pub loss: f64,
    /// Mean length of a run of lost packets: 1 is random (Bernoulli) loss; above 1, a two-state Gilbert-Elliott
    /// chain with every packet lost in the bad state and none in the good one.
    pub loss_burst: f64,
    /// Fraction of packets delivered after the packet that follows them, 0–1.
    pub reorder: f64,
    /// Link rate, kbit/s: each packet (payload plus 40 bytes of IP/UDP/RTP headers) occupies the link for its
    /// serialisation time, and packets queue behind it. `None`: unlimited.
    #[serde(default)]
    pub bandwidth_kbps: Option<f64>,
    /// How long past the mean latency the receiver waits for a packet before it conceals it with silence (a jitter
    /// buffer's depth), ms. `None`: the jitter draw's 99th percentile above the mean, so 1 % of packets come too
    /// late ([`NetworkConfig::playout_ms`]).
    #[serde(default)]
    pub playout_ms: Option<f64>,
}

/// Header bytes counted per packet against the bandwidth (IPv4 20 + UDP 8 + RTP 12).
pub const PACKET_OVERHEAD_BYTES: usize = 40;

/// A named preset: its values and where they come from (docs/network.md cites each in full).
#[derive(Debug, Clone)]
pub struct Preset {
    /// Its values; `preset` holds its name (`--network NAME`, `network = "NAME"`).
    pub config: NetworkConfig,
    /// One line: what it stands for and its sources.
    pub about: &'static str,
}

/// No impairment at all: what a `network` table without a preset starts from, and what a preset leaves unset.
const NONE: NetworkConfig = NetworkConfig {
    preset: None,
    latency_ms: 0.0,
    jitter_ms: 0.0,
    jitter: Jitter::Uniform,
    loss: 0.0,
    loss_burst: 1.0,
    reorder: 0.0,
    bandwidth_kbps: None,
    playout_ms: None,
};

/// The presets, mildest first.
pub const PRESETS: &[Preset] = &[
    Preset {
        config: NetworkConfig {
            preset: Some(Cow::Borrowed("lan")),
            latency_ms: 1.0,
            jitter_ms: 0.5,
            bandwidth_kbps: Some(100_000.0),
            ..NONE
        },
        about: "a wired office LAN: ITU-T G.1050's best impairment level (LAN jitter under 1.5 ms, no loss)",
    },
    Preset {
        config: NetworkConfig {
            preset: Some(Cow::Borrowed("wifi")),
            latency_ms: 10.0,
            jitter_ms: 5.0,
            jitter: Jitter::Pareto,
            loss: 0.005,
            loss_burst: 2.0,
            bandwidth_kbps: Some(20_000.0),
            ..NONE
        },
        about: "home Wi-Fi on fixed broadband: Ookla's fixed-line ping (~14 ms round trip) plus a Wi-Fi hop with a long tail (Sui et al., MobiSys 2016)",
    },
    Preset {
        config: NetworkConfig {
            preset: Some(Cow::Borrowed("4g")),
            latency_ms: 40.0,
            jitter_ms: 10.0,
            jitter: Jitter::Pareto,
            loss: 0.01,
            loss_burst: 2.0,
            bandwidth_kbps: Some(5_000.0),
            ..NONE
        },
        about: "LTE: 3GPP TS 23.203 QCI 1 (conversational voice: 100 ms delay budget, 1e-2 loss), Loadero's 4G profile",
    },
    Preset {
        config: NetworkConfig {
            preset: Some(Cow::Borrowed("pstn")),
            latency_ms: 70.0,
            jitter_ms: 3.0,
            jitter: Jitter::Normal,
            loss: 0.001,
            bandwidth_kbps: Some(100.0),
            ..NONE
        },
        about: "a regional phone call through a VoIP carrier: ITU-T G.114 App. II (~70 ms of the 150 ms mouth-to-ear budget in the network), Y.1541 class 0 (1e-3 loss), G.711 at 80 kbit/s",
    },
    Preset {
        config: NetworkConfig {
            preset: Some(Cow::Borrowed("bad-cellular")),
            latency_ms: 150.0,
            jitter_ms: 50.0,
            jitter: Jitter::Pareto,
            loss: 0.03,
            loss_burst: 3.0,
            reorder: 0.01,
            bandwidth_kbps: Some(128.0),
            ..NONE
        },
        about: "a poor mobile link: G.114's 150 ms limit, G.1050's unmanaged levels (100+ ms jitter, 1 % reordering), Loadero's 3G profile",
    },
];

impl Preset {
    /// Its name.
    pub fn name(&self) -> &str {
        self.config.preset.as_deref().unwrap_or_default()
    }

    /// The preset's values as a configuration.
    pub fn config(&self) -> NetworkConfig {
        self.config.clone()
    }
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name() == name)
}

/// The preset names, for errors and help.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(Preset::name).collect()
}

impl NetworkConfig {
    /// No impairment at all (every value zero): the base a table without a preset starts from.
    pub fn none() -> NetworkConfig {
        NONE
    }

    /// The receiver's wait past the mean latency, ms: `playout_ms` when set, else the 99th percentile of the jitter
    /// draw above its mean (uniform: `jitter`; normal: 2.326·`jitter`; Pareto: 6.28·`jitter`).
    pub fn playout_ms(&self) -> f64 {
        self.playout_ms.unwrap_or(match self.jitter {
            Jitter::Uniform => self.jitter_ms,
            Jitter::Normal => 2.326 * self.jitter_ms,
            // Lomax(3, 2j) − j exceeds x with probability (1 + (x + j)/(2j))^−3: 0.01 at x = (2·100^(1/3) − 3)·j.
            Jitter::Pareto => (2.0 * 100f64.cbrt() - 3.0) * self.jitter_ms,
        })
    }

    /// What is wrong with these values, if anything (a sentence naming the field and its range).
    pub fn check(&self) -> Result<(), String> {
        let in_range = |name: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(format!("`{name}` must be {lo}–{hi}, not {v}"))
            }
        };
        in_range("latency_ms", self.latency_ms, 0.0, 10_000.0)?;
        in_range("jitter_ms", self.jitter_ms, 0.0, 10_000.0)?;
        in_range("loss", self.loss, 0.0, 0.5)?;
        in_range("loss_burst", self.loss_burst, 1.0, 1000.0)?;
        in_range("reorder", self.reorder, 0.0, 0.5)?;
        if let Some(b) = self.bandwidth_kbps {
            in_range("bandwidth_kbps", b, 8.0, 10_000_000.0)?;
        }
        if let Some(p) = self.playout_ms {
            in_range("playout_ms", p, 0.0, 10_000.0)?;
        }
        Ok(())
    }

    /// One line for the terminal and the page: `pstn: 70 ± 3 ms (normal), loss 0.1 %, 100 kbit/s`.
    pub fn describe(&self) -> String {
        let mut s = match &self.preset {
            Some(p) => format!("{p}: "),
            None => String::new(),
        };
        s.push_str(&format!("{} ± {} ms one way ({})", self.latency_ms, self.jitter_ms, self.jitter.as_str()));
        if self.loss > 0.0 {
            s.push_str(&format!(", loss {} %", self.loss * 100.0));
            if self.loss_burst > 1.0 {
                s.push_str(&format!(" in bursts of {} packets", self.loss_burst));
            }
        }
        if self.reorder > 0.0 {
            s.push_str(&format!(", reordering {} %", self.reorder * 100.0));
        }
        if let Some(b) = self.bandwidth_kbps {
            s.push_str(&format!(", {b} kbit/s"));
        }
        if self.jitter_ms > 0.0 || self.playout_ms.is_some() {
            s.push_str(&format!(", playout {:.0} ms", self.playout_ms()));
        }
        s
    }
}

/// What the impairment did to one direction of one call (or, summed, of a target's calls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirEffect {
    /// Packets that crossed (20 ms frames up; the agent's audio cut into frames of the same length down).
    pub packets: u64,
    /// Of them, lost on the way (the receiver got silence in their place).
    pub lost: u64,
    /// Delivered after a packet sent after them.
    pub reordered: u64,
    /// Arrived after the receiver's playout deadline (`latency_ms` + `playout_ms`): concealed with silence at the
    /// deadline, like a lost one.
    pub late: u64,
    /// Mean one-way delay of the packets delivered in time, ms (draw, queueing behind the link and behind earlier
    /// packets).
    pub delay_mean_ms: f64,
    /// Their worst one-way delay, ms.
    pub delay_max_ms: f64,
}

impl DirEffect {
    /// Lost packets as a percentage of those that crossed (0 when none did).
    pub fn lost_pct(&self) -> f64 {
        if self.packets > 0 { self.lost as f64 * 100.0 / self.packets as f64 } else { 0.0 }
    }

    /// Adds another call's (or shard's) effect: counts sum, the mean is weighted by delivered packets.
    pub fn add(&mut self, o: &DirEffect) {
        let (a, b) = (self.packets - self.lost - self.late, o.packets - o.lost - o.late);
        if a + b > 0 {
            self.delay_mean_ms = (self.delay_mean_ms * a as f64 + o.delay_mean_ms * b as f64) / (a + b) as f64;
        }
        self.packets += o.packets;
        self.lost += o.lost;
        self.reordered += o.reordered;
        self.late += o.late;
        self.delay_max_ms = self.delay_max_ms.max(o.delay_max_ms);
    }
}

/// What the impairment did to one call, both ways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetEffect {
    /// Caller → agent.
    pub up: DirEffect,
    /// Agent → caller.
    pub down: DirEffect,
}

impl NetEffect {
    /// Adds another call's effect.
    pub fn add(&mut self, o: &NetEffect) {
        self.up.add(&o.up);
        self.down.add(&o.down);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_passes_its_own_check_and_describes_itself() {
        for p in PRESETS {
            assert_eq!(p.config().check(), Ok(()), "{}", p.name());
            assert!(p.config().describe().starts_with(p.name()));
        }
        let mut bad = NetworkConfig::none();
        bad.loss = 0.9;
        assert_eq!(bad.check().unwrap_err(), "`loss` must be 0–0.5, not 0.9");
    }

    #[test]
    fn effects_add_with_a_weighted_mean() {
        let mut a = DirEffect { packets: 10, lost: 0, delay_mean_ms: 10.0, delay_max_ms: 12.0, ..Default::default() };
        a.add(&DirEffect { packets: 30, lost: 10, delay_mean_ms: 40.0, delay_max_ms: 50.0, late: 2, reordered: 1 });
        assert_eq!((a.packets, a.lost, a.late, a.reordered), (40, 10, 2, 1));
        // Weighted by the packets delivered in time: 10 and 30 − 10 lost − 2 late.
        assert!((a.delay_mean_ms - (10.0 * 10.0 + 18.0 * 40.0) / 28.0).abs() < 1e-9);
        assert_eq!(a.delay_max_ms, 50.0);
    }
}
