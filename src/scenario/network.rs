//! A target's `network` key as the scenario writes it — a preset name (`"pstn"`), `"none"`, or a table of values
//! that may start from a preset (`{ preset = "4g", loss = 0.05 }`) — resolved to the [`NetworkConfig`] the caller
//! applies. docs/network.md documents the keys; every mistake is a sentence naming the key and the fix.

use crate::model::network::{Jitter, NetworkConfig, preset, preset_names};

/// The keys a `network` table takes.
pub const KEYS: &[&str] =
    &["preset", "latency_ms", "jitter_ms", "jitter", "loss", "loss_burst", "reorder", "bandwidth_kbps", "playout_ms"];

/// The impairment `value` names: `None` for `"none"`.
pub fn resolve(value: &toml::Value) -> Result<Option<NetworkConfig>, String> {
    let presets =
        || format!("{}, or `none`", preset_names().iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "));
    let by_name = |name: &str| -> Result<Option<NetworkConfig>, String> {
        match name {
            "none" => Ok(None),
            n => preset(n)
                .map(|p| Some(p.config()))
                .ok_or_else(|| format!("unknown network preset `{n}`; use {}", presets())),
        }
    };
    let table = match value {
        toml::Value::String(s) => return by_name(s),
        toml::Value::Table(t) => t,
        other => return Err(format!("`network` must be a preset name or a table, not `{other}`")),
    };
    let mut cfg = match table.get("preset") {
        Some(toml::Value::String(s)) => by_name(s)?.unwrap_or_else(NetworkConfig::none),
        Some(other) => return Err(format!("`preset` must be a preset name, not `{other}`")),
        None => NetworkConfig::none(),
    };
    for (k, v) in table {
        let num = || match v {
            toml::Value::Float(f) => Ok(*f),
            toml::Value::Integer(i) => Ok(*i as f64),
            other => Err(format!("`{k}` must be a number, not `{other}`")),
        };
        match k.as_str() {
            "preset" => {}
            "latency_ms" => cfg.latency_ms = num()?,
            "jitter_ms" => cfg.jitter_ms = num()?,
            "loss" => cfg.loss = num()?,
            "loss_burst" => cfg.loss_burst = num()?,
            "reorder" => cfg.reorder = num()?,
            "bandwidth_kbps" => cfg.bandwidth_kbps = Some(num()?),
            "playout_ms" => cfg.playout_ms = Some(num()?),
            "jitter" => {
                cfg.jitter = match v.as_str() {
                    Some("uniform") => Jitter::Uniform,
                    Some("normal") => Jitter::Normal,
                    Some("pareto") => Jitter::Pareto,
                    _ => return Err(format!("`jitter` must be `uniform`, `normal` or `pareto`, not `{v}`")),
                }
            }
            other => {
                return Err(format!(
                    "unknown `network` key `{other}`; the keys are {}",
                    KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    cfg.check()?;
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<NetworkConfig>, String> {
        let t: toml::Table = toml::from_str(&format!("network = {s}")).unwrap();
        resolve(&t["network"])
    }

    #[test]
    fn presets_tables_and_mistakes() {
        assert_eq!(parse("\"none\""), Ok(None));
        assert_eq!(parse("\"pstn\"").unwrap().unwrap().latency_ms, 70.0);
        let c = parse("{ preset = \"4g\", loss = 0.05, jitter = \"normal\" }").unwrap().unwrap();
        assert_eq!((c.preset.as_deref(), c.latency_ms, c.loss, c.jitter), (Some("4g"), 40.0, 0.05, Jitter::Normal));
        let c = parse("{ latency_ms = 25 }").unwrap().unwrap();
        assert_eq!((c.preset, c.latency_ms, c.bandwidth_kbps), (None, 25.0, None));
        assert!(parse("\"3g\"").unwrap_err().starts_with("unknown network preset `3g`; use `lan`, `wifi`"));
        assert!(parse("{ latncy_ms = 5 }").unwrap_err().starts_with("unknown `network` key `latncy_ms`"));
        assert_eq!(parse("{ loss = \"high\" }").unwrap_err(), "`loss` must be a number, not `\"high\"`");
        assert_eq!(parse("{ loss = 0.7 }").unwrap_err(), "`loss` must be 0–0.5, not 0.7");
        assert_eq!(parse("3").unwrap_err(), "`network` must be a preset name or a table, not `3`");
    }
}
