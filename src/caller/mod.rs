//! The caller: a protocol-free scripted caller that paces audio on absolute deadlines, plays the agent's audio on a
//! playback timeline, answers tool calls from the scenario, and measures every per-turn metric of METRICS.md.

pub mod record;
