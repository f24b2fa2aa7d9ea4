//! The run's first stage: everything resolved before any call is dialled — the command line over the scenario's
//! defaults, the targets selected, each one's keys looked up (only whether they are set; a key's value is never
//! read here nor printed) or its sim started, every utterance encoded as the target's wire frames, and the report
//! directory created with the recorder open, so a bad target name, a missing WAV or an unwritable path fails at
//! once, before anything is measured.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::time::Duration;

use super::load::Load;
use super::recordings::Recordings;
use super::{RunOptions, default_out_dir};
use crate::audio::{frames::frames, read_wav, resample::resample};
use crate::caller::CallPlan;
use crate::caller::recording::RecordMode;
use crate::model::Shard;
use crate::report::{Recorder, RunMeta, ShardSummary, TargetMeta};
use crate::scenario::{Scenario, Target};
use crate::sim::SimHandle;
use crate::targets;

/// A target ready to call.
pub(super) struct Prepared {
    /// The target, its URLs pointed at the embedded sim when it is simulated.
    pub(super) target: Target,
    pub(super) plan: Arc<CallPlan>,
    /// Where its calls' recordings go.
    pub(super) recordings: Arc<Recordings>,
    /// What transcribes what its callers heard, when the scenario asks.
    pub(super) transcriber: Option<Arc<super::transcribe::Transcriber>>,
}

/// Above this many calls in flight, calls are not recorded unless `--record` asks.
pub const MAX_RECORDED_IN_FLIGHT: u32 = 200;

/// A run resolved once, then run by [`RunPlan::execute`].
pub struct RunPlan {
    pub(super) scenario: Arc<Scenario>,
    /// The targets that can run, in the scenario's order.
    pub(super) prepared: Arc<Vec<Prepared>>,
    /// The sims started for the simulated targets (shut down when the run finishes).
    pub(super) sims: Vec<SimHandle>,
    /// Targets skipped, with the reason.
    pub(super) skipped: Vec<(String, String)>,
    pub(super) calls: u32,
    /// Open loop: the schedule (the calls are its arrivals in this shard's slice); `None`: closed loop.
    pub(super) load: Option<Load>,
    /// The run's seed, which the open loop's schedule is drawn from in every shard alike.
    pub(super) run_seed: u64,
    /// The slice of the calls this process runs (all of them without a shard).
    pub(super) shard: Shard,
    pub(super) concurrency: u32,
    /// Closed loop: the calls' starts are spread evenly over this long.
    pub(super) ramp_up: Option<Duration>,
    /// The seed stream this process draws from: the run's seed, or its shard's.
    pub(super) seed: u64,
    pub(super) progress: bool,
    pub(super) out_dir: PathBuf,
    pub(super) recorder: Recorder,
}

impl RunPlan {
    /// Resolves a run of `scenario` as `opts` asks. `notice` receives one-line notices (skipped targets, the
    /// report directory).
    pub async fn resolve(scenario: &Scenario, opts: &RunOptions, notice: &(dyn Fn(&str) + Sync)) -> Result<RunPlan> {
        let names: Vec<&str> = scenario.targets.iter().map(|t| t.name.get_ref().as_str()).collect();
        for want in &opts.targets {
            if !names.contains(&want.as_str()) {
                bail!("unknown target `{want}`; the scenario's targets are: {}", names.join(", "));
            }
        }
        let seed = opts.seed.unwrap_or(scenario.defaults.seed);
        let calls = opts.calls.unwrap_or(scenario.defaults.calls);
        let concurrency = opts.concurrency.unwrap_or(scenario.defaults.concurrency).max(1);
        if calls == 0 {
            bail!("--calls must be at least 1");
        }
        let shard = opts.shard.unwrap_or(Shard { index: 1, count: 1 });
        let run_seed = seed;
        let seed = shard.seed(run_seed);
        // Open loop: the calls are the schedule's arrivals (in this shard's slice), counted once up front.
        let calls = match &opts.load {
            None => calls,
            Some(load) => {
                let arrivals = load.schedule(run_seed).count();
                let n = u32::try_from(arrivals).ok().filter(|n| *n <= 100_000_000);
                let Some(n) = n else {
                    bail!("the schedule starts {arrivals} calls per target: more than 100,000,000")
                };
                n
            }
        };
        if shard.calls_of(calls) == 0 {
            match &opts.load {
                Some(_) if shard.count > 1 => bail!(
                    "the schedule starts no call in this shard ({shard}): it starts {calls} per target over {} shards; raise the rate or the duration",
                    shard.count
                ),
                Some(_) => bail!("the schedule starts no call: raise the rate or the duration"),
                None => bail!(
                    "shard {shard} has no calls: the run has {calls} calls per target, fewer than its {} shards (use --calls {} or more, or fewer shards)",
                    shard.count,
                    shard.count
                ),
            }
        }

        let out_dir = opts.out.clone().unwrap_or_else(|| default_out_dir(scenario));
        // Recordings: what `--record` says; by default failed calls and each target's slowest, unless so many calls
        // are in flight that holding their audio (~3 MB a minute each) would crowd the machine.
        let in_flight = opts.load.as_ref().map_or(concurrency, |l| l.max_in_flight);
        let mode = match opts.record {
            Some(m) => m,
            None if in_flight > MAX_RECORDED_IN_FLIGHT => {
                notice(&format!(
                    "not recording calls: {in_flight} in flight hold ~3 MB of audio a minute each (`--record failures` records anyway)"
                ));
                RecordMode::None
            }
            None => RecordMode::Failures,
        };
        let recordings = Arc::new(Recordings::new(&out_dir, mode));

        // Resolve targets: start sims, check keys, skip what cannot run (with the reason).
        let mut skipped = Vec::new();
        let mut sims: Vec<SimHandle> = Vec::new();
        let mut prepared = Vec::new();
        let mut cache = HashMap::new();
        let selected =
            || scenario.targets.iter().filter(|t| opts.targets.is_empty() || opts.targets.contains(t.name.get_ref()));
        // Every key the run can know is registered before anything is dialled, so nothing a provider echoes or an
        // error quotes can carry one into a row, a page or the terminal.
        crate::secret::register(&run_secrets(selected()));
        let transcriber = super::transcribe::Transcriber::start(scenario, seed, &mut sims).await?.map(Arc::new);
        for t in selected() {
            let target = match resolve_target(scenario, t, seed, &mut sims).await {
                Ok(target) => target,
                Err(why) => {
                    skipped.push((t.name.get_ref().clone(), why));
                    continue;
                }
            };
            let network = match &opts.network {
                Some(p) => crate::scenario::network::resolve(&toml::Value::String(p.clone())),
                None => t.network.as_ref().map_or(Ok(None), |n| crate::scenario::network::resolve(n.get_ref())),
            }
            .map_err(|why| anyhow::anyhow!("target `{}`: {why}", t.name.get_ref()))?;
            let mut plan = plan_for(scenario, &target, &mut cache)?;
            plan.network = network;
            plan.seed = seed;
            plan.record = recordings.enabled() || transcriber.is_some();
            let (recordings, transcriber) = (recordings.clone(), transcriber.clone());
            prepared.push(Prepared { target, plan: Arc::new(plan), recordings, transcriber });
        }
        for (name, why) in &skipped {
            notice(&format!("skipping target `{name}`: {why}"));
        }
        if prepared.is_empty() {
            bail!(
                "no target can run ({})",
                skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect::<Vec<_>>().join("; ")
            );
        }

        let mut meta = RunMeta::from_scenario(scenario).context("reading the scenario's provenance")?;
        meta.calls = calls;
        meta.concurrency = concurrency;
        meta.seed = run_seed;
        meta.priority = Some(crate::caller::priority::status().label().to_owned());
        meta.ramp_up_ms = opts.ramp_up.filter(|_| opts.load.is_none()).map(|r| r.as_secs_f64() * 1000.0);
        meta.shard = opts.shard.filter(|s| s.count > 1).map(|s| ShardSummary::of(s, run_seed));
        meta.load = opts.load.as_ref().map(super::load::summary_of);
        if let Some(l) = &opts.load {
            meta.concurrency = l.max_in_flight;
        }
        meta.targets = prepared
            .iter()
            .map(|p| {
                let mut m = TargetMeta::from_target(&p.target);
                m.network = p.plan.network.clone();
                m
            })
            .collect();
        let recorder = Recorder::create(&out_dir, meta)
            .with_context(|| format!("creating the report directory {}", out_dir.display()))?;
        notice(&format!("writing to {}", out_dir.display()));
        Ok(RunPlan {
            scenario: Arc::new(scenario.clone()),
            prepared: Arc::new(prepared),
            sims,
            skipped,
            calls,
            load: opts.load.clone(),
            run_seed,
            shard,
            concurrency,
            ramp_up: opts.ramp_up.filter(|_| opts.load.is_none()),
            seed,
            progress: opts.progress,
            out_dir,
            recorder,
        })
    }

    /// The report directory, created and open.
    pub fn out_dir(&self) -> &std::path::Path {
        &self.out_dir
    }
}

/// A target as the run will call it: a simulated one pointed at its sim (started here, pushed on `sims`), a real
/// one as written once every key variable it names is set. `Err` is why it cannot run.
async fn resolve_target(
    scenario: &Scenario,
    t: &Target,
    seed: u64,
    sims: &mut Vec<SimHandle>,
) -> std::result::Result<Target, String> {
    if t.sim.is_some() {
        let h = crate::sim::start(scenario, t, seed).await.map_err(|e| e.to_string())?;
        let pointed = h.point(t);
        sims.push(h);
        return Ok(pointed);
    }
    let stages = [&t.stt, &t.llm, &t.tts];
    let keys = t.api_key_env.iter().chain(stages.iter().filter_map(|s| s.as_ref()?.get_ref().api_key_env.as_ref()));
    let missing: Vec<&str> =
        keys.filter(|v| std::env::var_os(v.get_ref()).is_none()).map(|v| v.get_ref().as_str()).collect();
    if !missing.is_empty() {
        let verb = if missing.len() == 1 { "is" } else { "are" };
        return Err(format!("{} {verb} not set", missing.join(", ")));
    }
    Ok(t.clone())
}

/// The secrets of `targets`: the values of the key variables they and their stages name (when set), and the
/// credential-like query parameters of their URLs.
fn run_secrets<'a>(targets: impl Iterator<Item = &'a Target>) -> crate::secret::Secrets {
    let mut secrets = crate::secret::Secrets::default();
    for t in targets {
        let stages: Vec<&crate::scenario::schema::Stage> =
            [&t.stt, &t.llm, &t.tts].into_iter().filter_map(|s| s.as_ref().map(|s| s.get_ref())).collect();
        let vars = t.api_key_env.iter().chain(stages.iter().filter_map(|s| s.api_key_env.as_ref()));
        for v in vars {
            if let Some(value) = std::env::var_os(v.get_ref()) {
                secrets.add(&value.to_string_lossy());
            }
        }
        for url in t.url.iter().chain(stages.iter().filter_map(|s| s.url.as_ref())) {
            secrets.extend(&crate::secret::Secrets::from_url(url.get_ref()));
        }
    }
    secrets
}

/// Encodes every turn's utterance as wire frames for a target.
fn plan_for(
    scenario: &Scenario,
    target: &Target,
    cache: &mut HashMap<(PathBuf, u32, bool), Arc<Vec<i16>>>,
) -> Result<CallPlan> {
    let rate = targets::input_rate(target);
    let f = scenario.defaults.frame_ms;
    let telephone = target.telephone.unwrap_or(false);
    let mut per_turn = Vec::new();
    for t in &scenario.turns {
        // On a phone line: the corpus's telephone recording of the voice when it has one, through the line.
        let path = if telephone {
            telephone_variant(&t.audio).unwrap_or_else(|| t.audio.path.clone())
        } else {
            t.audio.path.clone()
        };
        let key = (path.clone(), rate, telephone);
        let samples = match cache.get(&key) {
            Some(s) => s.clone(),
            None => {
                let pcm = read_wav(&path).with_context(|| format!("turn `{}`", t.id))?;
                let pcm = if telephone { crate::audio::telephone::line(&pcm, rate) } else { resample(&pcm, rate) };
                let s = Arc::new(pcm.samples);
                cache.insert(key, s.clone());
                s
            }
        };
        let fr = frames(&crate::audio::Pcm::new(rate, samples.to_vec()), f);
        per_turn.push(Arc::new(fr.iter().map(|x| targets::encode_frame(target, x)).collect::<Vec<_>>()));
    }
    let silence = targets::encode_frame(target, &vec![0; (rate as usize * f as usize) / 1000]);
    let mut turns = scenario.turns.clone();
    let mut expect_state = scenario.expect_state.clone();
    if !targets::shows_tool_calls(target) {
        // Audio-only protocols: the agent's tool calls cannot be seen, so they are not scored (n/a, not failed),
        // and neither is the state they would have left.
        turns.iter_mut().for_each(|t| t.tool_calls.clear());
        expect_state.clear();
    }
    Ok(CallPlan {
        target: target.name.get_ref().clone(),
        simulated: target.sim.is_some(),
        turns,
        tools: scenario.agent.tools.clone(),
        frames: per_turn,
        silence,
        frame_ms: f,
        turn_timeout: Duration::from_millis(scenario.defaults.turn_timeout_ms as u64),
        expect_state,
        redactor: scenario.redactor.clone(),
        record: false,
        network: None,
        telephone,
        seed: 0,
    })
}

/// The corpus's telephone recording of a caller utterance (`caller/<voice>-tel/<line>.wav` beside
/// `caller/<voice>/<line>.wav`, the same speech at 8 kHz through μ-law), when the corpus has one.
fn telephone_variant(audio: &crate::scenario::AudioRef) -> Option<PathBuf> {
    let mut parts = audio.id.split('/');
    let (Some("caller"), Some(voice), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let voice_dir = audio.path.parent()?;
    let path = voice_dir.parent()?.join(format!("{voice}-tel")).join(audio.path.file_name()?);
    (!voice.ends_with("-tel") && path.is_file()).then_some(path)
}
