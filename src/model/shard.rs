//! Shards: one run of a scenario split over N processes or machines (`voicebench run --shard I/N`, or a Kubernetes
//! Indexed Job's `JOB_COMPLETION_INDEX`), then combined exactly by `voicebench merge` (docs/scale.md).
//!
//! Shard *I* of *N* (1-based, as Playwright's and Jest's `--shard` count) runs the calls whose index *i* satisfies
//! `i mod N = I − 1`: every shard gets every *N*th call, so shards of a run take the same time however many calls
//! there are, and call indices stay those of the whole run (a merged directory has each call once). Each shard draws
//! its call phases and its simulated latencies from its own seed stream ([`Shard::seed`]): shards started with the
//! same `--seed` would otherwise replay one another's draws, and the merged samples would not be independent.

use serde::{Deserialize, Serialize};

use crate::stats::SplitMix64;

/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 100_000;

/// Which slice of a run this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This shard, 1 to `count`.
    pub index: u32,
    /// How many shards the run is split into.
    pub count: u32,
}

/// Why a shard could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("`{0}` is not a shard: write I/N, e.g. 2/4 for the second of four shards (1-based)")]
    Syntax(String),
    /// `I` outside 1..=N, or N out of range.
    #[error("shard {index}/{count} does not exist: I must be 1 to N, and N 1 to {MAX_SHARDS}")]
    Range {
        /// I.
        index: u64,
        /// N.
        count: u64,
    },
    /// `JOB_COMPLETION_INDEX` set without the shard count.
    #[error(
        "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but VOICEBENCH_SHARDS is not: set it to the Job's \
         `completions` (deploy/kubernetes/run-job.yaml does), or pass --shard I/N"
    )]
    NoCount,
    /// An environment variable that is not a number.
    #[error("{var}=`{value}` is not a whole number")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value (an index or count, never a secret).
        value: String,
    },
}

/// The variable a Kubernetes Indexed Job sets in each pod: the pod's completion index, 0-based.
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";
/// The variable that carries the shard count next to [`INDEX_VAR`] (Kubernetes sets no such variable itself).
pub const COUNT_VAR: &str = "VOICEBENCH_SHARDS";

impl Shard {
    /// A shard from `I/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let (i, n) = s.trim().split_once('/').ok_or_else(|| ShardError::Syntax(s.to_owned()))?;
        let num = |x: &str| x.trim().parse::<u64>().map_err(|_| ShardError::Syntax(s.to_owned()));
        Shard::new(num(i)?, num(n)?)
    }

    /// Shard `index` (1-based) of `count`, checked.
    pub fn new(index: u64, count: u64) -> Result<Shard, ShardError> {
        if count == 0 || count > u64::from(MAX_SHARDS) || index == 0 || index > count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Shard { index: index as u32, count: count as u32 })
    }

    /// The shard an Indexed Job's pod is: [`INDEX_VAR`] (0-based) and [`COUNT_VAR`], read through `env`; `None`
    /// when [`INDEX_VAR`] is unset (not in an Indexed Job).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, ShardError> {
        let Some(index) = env(INDEX_VAR) else { return Ok(None) };
        let count = env(COUNT_VAR).ok_or(ShardError::NoCount)?;
        let num = |var: &'static str, v: &str| {
            v.trim().parse::<u64>().map_err(|_| ShardError::Env { var, value: v.chars().take(40).collect() })
        };
        let (index, count) = (num(INDEX_VAR, &index)?, num(COUNT_VAR, &count)?);
        Shard::new(index.saturating_add(1), count).map(Some)
    }

    /// Whether call `call` (0-based, of the whole run) belongs to this shard.
    pub fn includes(self, call: u32) -> bool {
        call % self.count == self.index - 1
    }

    /// How many of `calls` calls this shard runs.
    pub fn calls_of(self, calls: u32) -> u32 {
        let (whole, rest) = (calls / self.count, calls % self.count);
        whole + u32::from(self.index <= rest)
    }

    /// This shard's seed stream: the run's seed for a run in one piece (shard 1/1), else a seed mixed from the run's
    /// seed and the shard's index, so no two shards draw alike.
    pub fn seed(self, seed: u64) -> u64 {
        if self.count == 1 {
            return seed;
        }
        SplitMix64::new(seed ^ u64::from(self.index).wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_fix() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse(" 1 / 1 "), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/4", "5/4", "1/0", "1/100001"] {
            assert!(matches!(Shard::parse(bad), Err(ShardError::Range { .. })), "{bad}");
        }
        for bad in ["2", "a/4", "2/4/1", "-1/4", ""] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(matches!(e, ShardError::Syntax(_)) && e.to_string().contains("I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_partition_the_calls() {
        for calls in [0u32, 1, 3, 10, 11, 1000] {
            for count in [1u32, 2, 3, 4, 7] {
                let mut seen = vec![0u32; calls as usize];
                for index in 1..=count {
                    let s = Shard { index, count };
                    let mine: Vec<u32> = (0..calls).filter(|c| s.includes(*c)).collect();
                    assert_eq!(mine.len() as u32, s.calls_of(calls), "{s} of {calls}");
                    mine.iter().for_each(|c| seen[*c as usize] += 1);
                }
                assert!(seen.iter().all(|n| *n == 1), "{calls} calls over {count} shards: {seen:?}");
            }
        }
    }

    #[test]
    fn each_shard_has_its_own_seed_stream() {
        let seeds: Vec<u64> = (1..=64).map(|i| Shard { index: i, count: 64 }.seed(42)).collect();
        let mut distinct = seeds.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 64);
        assert_eq!(Shard { index: 1, count: 1 }.seed(42), 42, "a run in one piece keeps its seed");
        assert_eq!(Shard { index: 3, count: 4 }.seed(42), Shard { index: 3, count: 4 }.seed(42));
    }

    #[test]
    fn an_indexed_job_pod_is_its_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(Shard::from_env(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0"), ("VOICEBENCH_SHARDS", "4")])),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert_eq!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "3")])), Err(ShardError::NoCount));
        assert!(matches!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "4"), ("VOICEBENCH_SHARDS", "4")])),
            Err(ShardError::Range { index: 5, count: 4 })
        ));
        assert!(matches!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "x"), ("VOICEBENCH_SHARDS", "4")])),
            Err(ShardError::Env { var: "JOB_COMPLETION_INDEX", .. })
        ));
    }
}
